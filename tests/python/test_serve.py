"""A model trained in Python is served by `seqrec serve`; live sessions in-process."""

import json
import os
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest

import seqrec

from conftest import seqrec_binary


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("model_cls", [seqrec.VSKNN, seqrec.GRU4Rec])
def test_python_model_served_by_cli(split, tmp_path, model_cls):
    kw = dict(layers=[16], epochs=1, batch_size=32) if model_cls is seqrec.GRU4Rec else {}
    m = model_cls(**kw).fit(split.train, progress=False, threads=1)
    f = tmp_path / "model.seqrec"
    m.save(f)
    port_file = tmp_path / "port"
    proc = subprocess.Popen([seqrec_binary(), "serve", str(f), "--port", "0", "--port-file",
                             str(port_file), "--threads", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                pytest.fail(f"seqrec serve exited: {proc.stderr.read()}")
            time.sleep(0.05)
        port = int(port_file.read_text())
        for s in split.test.sequences()[:20]:
            got = post(port, "/v1/recommend", {"items": s, "k": 10})
            want = m.recommend(s, k=10)
            served = [x["item"] for x in got["items"]]
            if model_cls is seqrec.VSKNN:
                assert served == list(want.items)  # the same scoring path
            else:
                # The server scores through its own packing of the output layer: the same
                # items up to rounding (near-ties may swap).
                assert len(set(served) & set(want.items)) >= 8
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_live_sessions_in_process(split):
    m = seqrec.VSKNN().fit(split.train, progress=False)
    rec = seqrec.Recommender(m, max_sessions=100)
    s = split.test.sequences()[0]
    r = None
    for item in s:
        r = rec.add_event("user-1", item)
    assert r["session_length"] == len(s)
    again = rec.recommend("user-1", k=5)
    assert again["items"] == r["items"][:5]
    assert again["items"] == list(m.recommend(s, k=5).items)
    assert rec.session("user-1")["length"] == len(s)
    assert rec.add_event("user-2", "no-such-item")["unknown_items"] == ["no-such-item"]
    assert rec.drop_session("user-1") and rec.session("user-1") is None
    assert rec.stats()["live_sessions"] == 1
    with pytest.raises(seqrec.InputError):
        rec.recommend("", k=5)
    with pytest.raises(seqrec.InputError):
        rec.recommend("user-2", k=0)
    with pytest.raises(seqrec.InputError):
        seqrec.Recommender(m, max_k=0)
    with pytest.raises(seqrec.InputError):
        seqrec.Recommender(seqrec.Pop())  # not fitted
    # None, NaN and floats are not ids (they would become "None" / "nan"); an absurd k gets
    # the core's range message, not an OverflowError.
    for bad in (None, float("nan"), 1.5, np.float32(2.0)):
        with pytest.raises(seqrec.InputError):
            rec.add_event(bad, s[0])
        with pytest.raises(seqrec.InputError):
            rec.add_event("user-3", bad)
        with pytest.raises(seqrec.InputError):
            rec.add_events("user-3", [s[0], bad])
        with pytest.raises(seqrec.InputError):
            rec.recommend("user-3", k=5, forbidden=[bad])
    with pytest.raises(seqrec.InputError, match="k"):
        rec.recommend("user-2", k=10**12)
    with pytest.raises(seqrec.InputError):
        rec.recommend("user-2", k="5")
    assert rec.session("user-3") is None
    assert rec.add_event(7, s[0])["session_length"] == 1  # integer ids are text: "7"
    assert rec.session("7")["length"] == 1

    # Many threads at once, one session each: every answer as alone.
    sessions = split.test.sequences()[:40]
    want = [list(m.recommend(x, k=10).items) for x in sessions]
    got = [None] * len(sessions)

    def work(i):
        res = rec.add_events(f"s{i}", sessions[i], k=10)
        got[i] = res["items"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def test_gru4rec_recommender_head_equals_exact(split):
    m = seqrec.GRU4Rec(layers=[16], epochs=1, batch_size=32).fit(split.train, progress=False)
    fast = seqrec.Recommender(m)
    exact = seqrec.Recommender(m, exact=True)
    for i, s in enumerate(split.test.sequences()[:20]):
        a = fast.add_events(f"a{i}", s, k=10)
        b = exact.add_events(f"b{i}", s, k=10)
        assert len(set(a["items"]) & set(b["items"])) >= 8  # near-ties may swap
        assert np.allclose(a["scores"][:5], b["scores"][:5], rtol=1e-3, atol=1e-4)
