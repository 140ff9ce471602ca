"""The built package itself: a portable extension module (docs/python.md, "Install")."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import seqrec

# An AVX/AVX-512 instruction: a ymm/zmm register or an opmask register operand.
WIDE = re.compile(r"%[yz]mm\d|%k[1-7]\b")
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")


def test_extension_is_portable():
    """The module is built like the library (-march=x86-64-v2, kernels dispatched at run
    time): every function that uses AVX or AVX-512 registers is one of the per-level kernel
    variants (namespaces isa_avx2 / isa_avx512), so the module loads and runs on any
    x86-64-v2 CPU."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    so = seqrec._seqrec.__file__
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", so], capture_output=True,
                         text=True, check=True).stdout
    wide, func = set(), None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            func = m.group(1)
        elif func is not None and WIDE.search(line):
            wide.add(func)
    assert wide, "no AVX kernels found: is this the portable build with its dispatched kernels?"
    stray = sorted(f for f in wide if "::isa_avx2::" not in f and "::isa_avx512::" not in f)
    assert not stray, f"{len(stray)} functions outside the kernel variants use AVX: {stray[:5]}"


def test_runs_at_the_baseline_level(log_file):
    """SEQREC_ISA=baseline (the x86-64-v2 kernels, as on a CPU without AVX) gives a working
    module."""
    code = ("import seqrec; print(seqrec._seqrec.isa()); "
            f"ev = seqrec.read_events({str(log_file)!r}); "
            "m = seqrec.GRU4Rec(layers=[16], epochs=1, n_sample=32).fit(ev, progress=False); "
            "print(len(m.recommend(ev.sequences()[0], k=5).items))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "SEQREC_ISA": "baseline"})
    assert r.returncode == 0, r.stderr
    assert "kernels baseline" in r.stdout and r.stdout.split()[-1] == "5"
