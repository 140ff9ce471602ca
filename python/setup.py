"""Builds the seqrec Python package through the project's CMake build.

    /usr/bin/python3 -m pip install --no-build-isolation ./python     (from the repository root)

No package index is needed: --no-build-isolation builds with the installed setuptools and
wheel (Debian: python3-setuptools, python3-wheel), and the C++ build needs what
scripts/setup installs. The extension is built for the Python running pip; CMake is the
repository's (its build folder is SEQREC_BUILD_DIR, default build/ at the root, reused when it
was configured before). docs/python.md has the details.
"""

import os
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        for line in f:
            if line.startswith("project(seqrec VERSION"):
                return line.split("VERSION")[1].split()[0]
    return "0.0.0"


class CMakeBuild(build_py):
    """Builds the _seqrec module and the seqrec program with CMake, then copies the assembled
    package (build/python/seqrec) into the wheel."""

    def run(self):
        if not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")):
            sys.exit("seqrec: build from the repository (python/ next to CMakeLists.txt)")
        build = os.environ.get("SEQREC_BUILD_DIR", os.path.join(ROOT, "build"))
        cfg = ["cmake", "-S", ROOT, "-B", build, f"-DPython3_EXECUTABLE={sys.executable}",
               "-DSEQREC_PYTHON=ON"]
        if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
            cfg += ["-DCMAKE_BUILD_TYPE=Release"]
            if shutil.which("ninja"):
                cfg += ["-G", "Ninja"]
        subprocess.check_call(cfg)
        jobs = os.environ.get("SEQREC_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", "--build", build, "--target", "seqrec_python", "-j", jobs])
        src = os.path.join(build, "python", "seqrec")
        dst = os.path.join(self.build_lib, "seqrec")
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".files.stamp", "__pycache__"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a platform wheel: it holds a compiled module


setup(
    name="seqrec",
    version=version(),
    description="Session-based and sequential recommendation (GRU4Rec, SASRec, baselines)",
    packages=["seqrec"],
    package_dir={"seqrec": "seqrec"},
    python_requires=">=3.9",
    install_requires=["numpy"],
    extras_require={"pandas": ["pandas"], "progress": ["tqdm"]},
    cmdclass={"build_py": CMakeBuild},
    distclass=BinaryDistribution,
    zip_safe=False,
)
