"""Progress output, per-epoch callbacks and Ctrl-C (docs/python.md, "Models")."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import seqrec

FAST_GRU = dict(layers=[16], batch_size=32, n_sample=64, epochs=2)


def test_fit_shows_a_tqdm_bar(split, capfd):
    pytest.importorskip("tqdm", reason="tqdm is not installed (Debian: python3-tqdm)")
    seqrec.GRU4Rec(**FAST_GRU).fit(split.train, threads=1, progress=True)
    err = capfd.readouterr().err
    assert "gru4rec: 100%" in err and "2/2" in err and "epoch" in err  # tqdm's bar
    assert "gru4rec epoch 1/2" not in err  # not the CLI's lines as well


def test_fit_without_tqdm_prints_the_cli_lines(split, capfd, monkeypatch):
    # tqdm absent: importing it fails as when it is not installed.
    for name in ("tqdm", "tqdm.auto"):
        monkeypatch.setitem(sys.modules, name, None)
    seqrec.GRU4Rec(**FAST_GRU).fit(split.train, threads=1, progress=True)
    err = capfd.readouterr().err
    assert "gru4rec epoch 1/2" in err and "gru4rec epoch 2/2" in err
    assert "100%|" not in err


def test_no_progress_is_silent(split, capfd):
    seqrec.GRU4Rec(**FAST_GRU).fit(split.train, threads=1, progress=False)
    assert capfd.readouterr().err == ""


def test_callback_false_stops_with_the_bar(split, capfd):
    seen = []

    def cb(epoch, metrics):
        seen.append(epoch)
        return False

    m = seqrec.GRU4Rec(**{**FAST_GRU, "epochs": 5}).fit(split.train, threads=1, progress=True,
                                                        callback=cb)
    assert seen == [1] and m.fitted


# ---- Ctrl-C in a separate process: the interpreter gets a real SIGINT while the call runs ----

CHILD = textwrap.dedent("""
    import sys, seqrec
    what, log, out = sys.argv[1], sys.argv[2], sys.argv[3]
    ev = seqrec.read_events(log)
    if what == "fit":
        m = seqrec.GRU4Rec(layers=[64], batch_size=8, n_sample=64, epochs=100000)
        print("ready", flush=True)
        m.fit(ev, progress=False, checkpoint=out + "/ck.seqrec")
        m.save(out + "/model.seqrec")
    elif what == "evaluate":
        split = seqrec.prepare(ev, protocol="session")
        m = seqrec.VSKNN().fit(split.train, progress=False)
        test = split.train  # every prefix of the training sessions: seconds per call
        print("ready", flush=True)
        for _ in range(100000):  # the loop outlasts the test
            r = seqrec.evaluate(m, test, cutoffs=[20])
        open(out + "/result.txt", "w").write(str(r.metrics))
    elif what == "compare":
        print("ready", flush=True)
        seqrec.compare(log, out + "/report", models=["gru4rec"], seeds=1, epochs=100000,
                       sets={"gru4rec.layers": 64, "gru4rec.batch_size": 8})
""")


@pytest.mark.parametrize("what", ["fit", "evaluate", "compare"])
def test_ctrl_c_stops_within_a_second(what, log_file, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, str(script), what, str(log_file), str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        time.sleep(1.5)  # well inside the long call
        assert p.poll() is None, p.stderr.read()
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert p.returncode != 0 and "KeyboardInterrupt" in err, err
    assert elapsed < 2.0, f"{what} took {elapsed:.2f} s to stop after SIGINT"
    left = sorted(os.path.relpath(os.path.join(d, f), out)
                  for d, _, files in os.walk(out) for f in files)
    # Nothing half-written: no model, no result, no temporary file; a checkpoint is only
    # ever a complete one (written atomically, after a whole epoch).
    assert not [f for f in left if f.startswith("model") or f.startswith("result")], left
    assert not [f for f in left if ".tmp" in f or f.endswith("~")], left
    if what == "compare":
        assert not [f for f in left if f.endswith(("report.html", "report.md", "results.json"))]
        time.sleep(0.2)
        # the training child was stopped too
        ps = subprocess.run(["pgrep", "-f", str(out / "report")], capture_output=True, text=True)
        assert ps.stdout.strip() == "", ps.stdout
