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

from conftest import run_cli, seqrec_binary


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


def test_head_storages_give_the_same_lists(split):
    # int8 and bf16 first passes, rescored exactly: the fp32 head's lists and scores.
    m = seqrec.GRU4Rec(layers=[16], epochs=1, batch_size=32).fit(split.train, progress=False)
    recs = {st: seqrec.Recommender(m, head_storage=st) for st in ("fp32", "int8", "bf16")}
    for i, s in enumerate(split.test.sequences()[:20]):
        got = {st: r.add_events(f"s{i}", s, k=10) for st, r in recs.items()}
        for st in ("int8", "bf16"):
            assert list(got[st]["items"]) == list(got["fp32"]["items"])
            assert got[st]["scores"] == pytest.approx(got["fp32"]["scores"], rel=1e-6)
    with pytest.raises(seqrec.InputError, match="bf16"):
        seqrec.Recommender(m, head_storage="fp16")


def _dssm_with_features(tmp_path):
    """A small dssm trained by the seqrec program on a generated log and a generated
    movies.dat-style feature file; returns (model file, item ids)."""
    log = tmp_path / "log.tsv"
    run = run_cli
    run("generate", "-o", log, "--events", "3000", "--items", "80", "--seed", "3")
    items = sorted({line.split("\t")[1] for line in log.read_text().splitlines()[1:]})
    genres = ["Action", "Comedy", "Drama", "Horror", "Animation"]
    movies = tmp_path / "movies.dat"
    movies.write_text("".join(f"{it}::movie {i % 7} night (199{i % 10})::{genres[i % 5]}\n"
                              for i, it in enumerate(items)))
    model = tmp_path / "dssm.seqrec"
    run("train", log, "-m", "dssm", "-o", model, "--item-features", movies, "--layers", "32,16",
        "--query-layers", "16", "--epochs", "1", "--n-negatives", "8")
    return model, items


def test_add_and_remove_items_in_process(tmp_path):
    model_file, items = _dssm_with_features(tmp_path)
    m = seqrec.load(model_file)
    rec = seqrec.Recommender(m, items_file=str(tmp_path / "items.jsonl"))
    n = len(items)
    r = rec.add_item("m9001", {"title": "Toy Story 5 (2027)", "genres": ["Animation", "Western"]})
    assert r["index"] == n and not r["restored"]
    assert sorted(r["unknown_values"]) == ["genres=Western", "year=2027"]
    got = rec.recommend_items([items[0]], k=n + 1)
    assert "m9001" in got["items"] and len(got["items"]) == n + 1
    out = rec.add_events("s1", ["m9001", items[1]], k=5)
    assert out["unknown_items"] == [] and len(out["items"]) == 5
    rec.remove_item(items[2])
    rec.remove_item("m9001")
    got = rec.recommend_items([items[0]], k=n + 1)
    assert "m9001" not in got["items"] and items[2] not in got["items"]
    assert len(got["items"]) == n - 1
    # The session holding the retired item still answers, with K live items.
    assert len(rec.add_events("s1", [items[3]], k=5)["items"]) == 5
    with pytest.raises(seqrec.InputError, match="features.colour"):
        rec.add_item("x", {"colour": "red"})
    with pytest.raises(seqrec.Error, match="not in the live catalogue"):
        rec.remove_item("nope")
    with pytest.raises(seqrec.Error, match="live already"):
        rec.add_item(items[0], {"title": "a"})
    assert rec.add_item(items[2])["restored"]
    s = rec.stats()
    assert s["items_added"] == 2 and s["items_retired"] == 2
    assert s["catalogue_live"] == n and rec.model_info()["catalogue"]["added"] == 1
    # The items file brings the catalogue back in a new recommender.
    rec2 = seqrec.Recommender(m, items_file=str(tmp_path / "items.jsonl"))
    assert rec2.stats()["catalogue_live"] == n
    assert "m9001" not in rec2.recommend_items([items[0]], k=n + 1)["items"]


def test_feature_aware_sasrec_adds_items_in_process(tmp_path):
    """A sasrec trained with --item-features adds items by their features like dssm."""
    log = tmp_path / "log.tsv"
    run_cli("generate", "-o", log, "--events", "3000", "--items", "80", "--seed", "3")
    items = sorted({line.split("\t")[1] for line in log.read_text().splitlines()[1:]})
    genres = ["Action", "Comedy", "Drama", "Horror", "Animation"]
    movies = tmp_path / "movies.dat"
    movies.write_text("".join(f"{it}::movie {i % 7} night (199{i % 10})::{genres[i % 5]}\n"
                              for i, it in enumerate(items)))
    model = tmp_path / "sasrec.seqrec"
    run_cli("train", log, "-m", "sasrec", "-o", model, "--item-features", movies, "--loss", "ce",
            "--hidden-units", "16", "--maxlen", "20", "--epochs", "1")
    rec = seqrec.Recommender(seqrec.load(model))
    n = len(items)
    r = rec.add_item("m9001", {"title": "night movie (1995)", "genres": "Comedy"})
    assert r["index"] == n and not r["restored"]
    got = rec.recommend_items([items[0]], k=n + 1)
    assert "m9001" in got["items"]
    assert np.all(np.isfinite(got["scores"]))
    out = rec.add_events("s1", ["m9001", items[1]], k=5)
    assert out["unknown_items"] == [] and len(out["items"]) == 5
    # The same trained in process: fit(..., item_features=...) stores the encoder too.
    m = seqrec.SASRec(loss="ce", hidden_units=16, maxlen=20, epochs=1)
    m.fit(str(log), item_features=str(movies), text_buckets=256, progress=False)
    assert "item_feature_encoder" in m.meta
    rec = seqrec.Recommender(m)
    assert rec.add_item("m9002", {"title": "night (1996)", "genres": "Drama"})["index"] == n
    assert "m9002" in rec.recommend_items([items[0]], k=n + 1)["items"]
    with pytest.raises(seqrec.InputError, match="does not use item features"):
        seqrec.Pop().fit(str(log), item_features=str(movies), progress=False)
    with pytest.raises(seqrec.InputError, match="need item_features"):
        seqrec.SASRec(epochs=1).fit(str(log), text_buckets=256, progress=False)


def test_items_need_a_model_with_features(split):
    m = seqrec.VSKNN().fit(split.train, progress=False)
    rec = seqrec.Recommender(m)
    with pytest.raises(seqrec.InputError, match="cannot add items by their features"):
        rec.add_item("x", {"title": "a"})
    item = split.train.sequences()[0][0]
    rec.remove_item(item)
    assert item not in rec.recommend_items([item], k=1000)["items"]
    rec.add_item(item)
    with pytest.raises(seqrec.InputError, match="features must be a dict"):
        rec.add_item("y", "title=a")
