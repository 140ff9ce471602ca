"""Model classes from the registry: parameters, training, predictions, files, pickling."""

import json
import os
import pickle
import signal
import threading

import numpy as np
import pytest

import seqrec

from conftest import run_cli, shared_data

FAST_GRU = dict(layers=[16], batch_size=32, epochs=2, n_sample=64)


def test_one_class_per_registered_type():
    for name in ["GRU4Rec", "SASRec", "Pop", "SR", "VSKNN"]:
        cls = getattr(seqrec, name)
        assert issubclass(cls, seqrec.Model)
        assert cls.__doc__ and "Parameters" in cls.__doc__
    assert "learning_rate" in seqrec.GRU4Rec.__doc__
    assert len(seqrec.model_classes()) == len(seqrec._seqrec.model_types())


def test_parameters_checked_by_the_table():
    m = seqrec.GRU4Rec(layers=[32], learning_rate=0.05)
    p = m.get_params()
    assert p["layers"] == [32] and p["learning_rate"] == pytest.approx(0.05)
    with pytest.raises(seqrec.InputError) as e:
        seqrec.GRU4Rec(learning_rte=0.1)
    assert "learning_rate" in str(e.value)  # the nearest parameter
    with pytest.raises(seqrec.InputError) as e:
        seqrec.GRU4Rec(learning_rate=-1)
    assert "learning_rate" in str(e.value)
    with pytest.raises(seqrec.InputError):
        seqrec.GRU4Rec(preset="no-such-preset")
    with pytest.raises(seqrec.InputError):
        seqrec.GRU4Rec(layers="a,b")
    with pytest.raises(seqrec.InputError):
        seqrec.GRU4Rec(layers=None)
    # Aliases, presets, set_params.
    assert seqrec.GRU4Rec(n_epochs=3).get_params()["epochs"] == 3
    preset = next(iter(seqrec.GRU4Rec.presets()))
    g = seqrec.GRU4Rec(preset=preset)
    assert g.config != seqrec.GRU4Rec().config  # the preset changed something
    g.set_params(epochs=4)
    assert g.get_params()["epochs"] == 4 and g.get_params()["preset"] == preset
    with pytest.raises(seqrec.InputError):
        g.set_params(epochs=-1)
    assert g.get_params()["epochs"] == 4  # unchanged after a refused value
    clone = seqrec.GRU4Rec(**g.get_params())
    assert clone.config == g.config


def test_baselines_fit_recommend_evaluate(split):
    for cls in (seqrec.Pop, seqrec.SR, seqrec.VSKNN):
        m = cls().fit(split.train, progress=False)
        assert m.fitted and m.n_items == split.train.n_items
        some = list(split.test.sequences()[0][:2])
        r = m.recommend(some, k=5)
        assert len(r.items) == 5 and r.scores.dtype == np.float32
        assert list(r.scores) == sorted(r.scores, reverse=True)
        r = m.recommend(some + ["no-such-item"], k=5, exclude_seen=True)
        assert r.unknown_items == ["no-such-item"] and not set(some) & set(r.items)
        r = m.recommend(some, k=5, forbidden=[r.items[0]])
        assert len(r.items) == 5
        r = m.recommend(some, k=3, allowed=list(m.item_ids[:10]))
        assert set(r.items) <= set(m.item_ids[:10])
        res = seqrec.evaluate(m, split.test)
        assert 0 <= res.metrics["recall@20"] <= 1
        assert res.to_dataframe().shape[0] == 1


def test_batch_equals_single(split):
    m = seqrec.VSKNN().fit(split.train, progress=False)
    sessions = split.test.sequences()[:50] + [["unknown"]]
    ids, scores = m.recommend_batch(sessions, k=10)
    assert ids.shape == (51, 10) and scores.dtype == np.float32
    for s, row, sc in zip(sessions[:50], ids, scores):
        r = m.recommend(s, k=10)
        assert list(r.items) == list(row)
        assert np.array_equal(r.scores, sc)
    assert all(x is None for x in ids[-1]) and np.isnan(scores[-1]).all()
    full = m.score(sessions[:5])
    assert full.shape == (5, m.n_items) and full.dtype == np.float32
    top = np.argsort(-full[0], kind="stable")[:10]
    assert set(m.item_ids[top]) == set(ids[0])


def test_batch_filters_equal_single(split):
    """recommend_batch honours exclude_seen, allowed and forbidden like recommend()."""
    m = seqrec.SR().fit(split.train, progress=False)
    sessions = [s for s in split.test.sequences() if len(s) >= 2][:40]
    some = list(m.item_ids[:60])
    cases = [
        dict(exclude_seen=True),
        dict(exclude_seen=False, forbidden=some[:20] + ["not-an-item"]),
        dict(exclude_seen=True, allowed=some + ["not-an-item"]),
        dict(allowed=some[:3], forbidden=some[:1]),  # fewer eligible than k
    ]
    for kw in cases:
        ids, scores = m.recommend_batch(sessions, k=10, **kw)
        for s, row, sc in zip(sessions, ids, scores):
            r = m.recommend(s, k=10, **kw)
            n = len(r.items)
            assert list(row[:n]) == list(r.items), kw
            assert np.array_equal(sc[:n], r.scores), kw
            assert all(x is None for x in row[n:]) and np.isnan(sc[n:]).all(), kw
            if kw.get("exclude_seen"):
                assert not set(row[:n]) & set(s)
            if "forbidden" in kw:
                assert not set(row[:n]) & set(kw["forbidden"])
            if "allowed" in kw:
                assert set(row[:n]) <= set(kw["allowed"])
    # the default follows the model (no exclusion after a session split), like recommend()
    a, _ = m.recommend_batch(sessions[:5], k=10)
    b, _ = m.recommend_batch(sessions[:5], k=10, exclude_seen=False)
    assert (a == b).all()
    idx, _ = m.recommend_indices(sessions[:5], k=3, allowed=some[:2])
    assert idx.dtype == np.int32 and (idx[:, 2] == -1).all()
    with pytest.raises(seqrec.InputError):
        m.recommend_batch(sessions, k=5, allowed="abc")


def test_bad_arguments_raise_input_error(split, tmp_path):
    """Bad arguments get seqrec.InputError (a ValueError) from the package, never a crash or
    a binding's TypeError."""
    m = seqrec.Pop().fit(split.train, progress=False)
    s = split.test.sequences()[0]
    bad_calls = [
        lambda: m.recommend(None),
        lambda: m.recommend(s, k=0),
        lambda: m.recommend(s, k=10**12),
        lambda: m.recommend(s, k=2.5),
        lambda: m.recommend(s, k="5"),
        lambda: m.recommend([None]),
        lambda: m.recommend([float("nan")]),
        lambda: m.recommend(s, allowed=5),
        lambda: m.recommend_batch(None),
        lambda: m.recommend_batch([s], k=10**12),
        lambda: m.recommend_batch([s], threads=-1),
        lambda: m.recommend_batch([s, None]),
        lambda: m.score([s], threads=10**6),
        lambda: seqrec.evaluate(m, split.test, threads=-1),
        lambda: seqrec.evaluate(m, split.test, cutoffs=[0]),
        lambda: seqrec.evaluate(m, None),
        lambda: seqrec.Pop().fit(split.train, seed=-1, progress=False),
        lambda: seqrec.Pop().fit(split.train, threads=10**12, progress=False),
        lambda: seqrec.Pop().fit(None),
        lambda: seqrec.GRU4Rec(epochs=-1),
        lambda: seqrec.GRU4Rec(learning_rate=float("nan")),
        lambda: seqrec.GRU4Rec(epochs=10**30),
        lambda: seqrec.GRU4Rec(layers={"a": 1}),
        lambda: seqrec.GRU4Rec().recommend(s),  # not fitted
        lambda: seqrec.load(None),
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises(seqrec.InputError):
            call()
    garbage = tmp_path / "garbage.seqrec"
    garbage.write_text("garbage")
    with pytest.raises(seqrec.InputError):
        seqrec.load(garbage)
    # unknown items are skipped and listed, not an error
    r = m.recommend(["no-such-item"])
    assert r.items == [] and r.unknown_items == ["no-such-item"]


def test_gru4rec_python_equals_cli(split, split_dir, tmp_path):
    m = seqrec.GRU4Rec(**FAST_GRU).fit(split.train, seed=5, threads=1, progress=False)
    py_file = tmp_path / "py.seqrec"
    m.save(py_file)
    cli_file = tmp_path / "cli.seqrec"
    args = []
    for k, v in FAST_GRU.items():
        args += [f"--{k.replace('_', '-')}", ",".join(map(str, v)) if isinstance(v, list) else v]
    run_cli("--threads", 1, "-q", "train", split_dir, "-m", "gru4rec", "--seed", 5, "-o", cli_file, *args)
    a = seqrec.load(py_file).tensors()
    b = seqrec.load(cli_file).tensors()
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    # evaluate equals `seqrec eval --json`
    out = tmp_path / "eval.json"
    run_cli("-q", "eval", "-m", cli_file, split_dir, "--cutoffs", "5,20", "--json", out)
    cli = json.loads(out.read_text())
    mine = seqrec.evaluate(seqrec.load(cli_file), split.test, cutoffs=[5, 20])
    assert mine["n_predictions"] == cli["n_predictions"]
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k
    # the same through a path
    again = seqrec.evaluate(m, split_dir, cutoffs=[5, 20])
    assert again.metrics.keys() == mine.metrics.keys()


@pytest.mark.parametrize("cls,params", [
    (seqrec.SASRec, dict(maxlen=20, hidden_units=16, num_blocks=1, epochs=2, batch_size=64)),
    (seqrec.VSKNN, dict(k=50, sample_size=200)),
])
def test_more_types_python_equal_cli(cls, params, split, split_dir, tmp_path):
    """Trained from Python and by `seqrec train` with the same seed and one thread: the
    same tensors, and the same evaluation."""
    m = cls(**params).fit(split.train, seed=11, threads=1, progress=False)
    cli_file = tmp_path / "cli.seqrec"
    args = []
    for k, v in params.items():
        args += [f"--{k.replace('_', '-')}", v]
    run_cli("--threads", 1, "-q", "train", split_dir, "-m", m.type, "--seed", 11, "-o", cli_file,
            *args)
    cli_model = seqrec.load(cli_file)
    a, b = m.tensors(), cli_model.tensors()
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    out = tmp_path / "eval.json"
    run_cli("-q", "--threads", 1, "eval", "-m", cli_file, split_dir, "--json", out)
    cli = json.loads(out.read_text())
    mine = seqrec.evaluate(m, split.test, threads=1)
    assert mine["n_predictions"] == cli["n_predictions"]
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k


def test_save_load_pickle(split, tmp_path):
    m = seqrec.GRU4Rec(**FAST_GRU).fit(split.train, threads=1, progress=False)
    sessions = split.test.sequences()[:20]
    want = m.score(sessions)
    f = tmp_path / "m.seqrec"
    m.save(f)
    back = seqrec.load(f)
    assert isinstance(back, seqrec.GRU4Rec)
    assert np.array_equal(back.score(sessions), want)
    p = pickle.loads(pickle.dumps(m))
    assert isinstance(p, seqrec.GRU4Rec)
    assert np.array_equal(p.score(sessions), want)
    unfitted = pickle.loads(pickle.dumps(seqrec.SASRec(hidden_units=16)))
    assert not unfitted.fitted and unfitted.get_params()["hidden_units"] == 16
    emb = m.item_embeddings()
    assert emb.shape == (m.n_items, 16) and not emb.flags.writeable
    assert seqrec.Pop().fit(split.train, progress=False).item_embeddings() is None
    with pytest.raises(seqrec.NotFoundError):
        seqrec.load(tmp_path / "missing.seqrec")
    with pytest.raises(seqrec.IsADirectoryError) as e:  # a folder named as the model file
        seqrec.load(tmp_path)
    assert isinstance(e.value, IsADirectoryError) and isinstance(e.value, seqrec.IoError)
    assert str(tmp_path) in str(e.value)
    bad = tmp_path / "bad.seqrec"
    bad.write_bytes(b"not a model")
    with pytest.raises(seqrec.Error):
        seqrec.load(bad)
    with pytest.raises(seqrec.InputError):
        seqrec.GRU4Rec().recommend(["1"])  # not fitted
    with pytest.raises(seqrec.InputError):
        m.recommend(["1"], k=0)
    with pytest.raises(seqrec.InputError):
        m.recommend("12 13")


def test_callback_validation_and_stop(split):
    seen = []

    def cb(epoch, metrics):
        seen.append((epoch, metrics))
        return epoch < 2  # stop after the second epoch

    m = seqrec.GRU4Rec(**{**FAST_GRU, "epochs": 6})
    m.fit(split.train_tr, valid=split.valid, callback=cb, progress=False, threads=1)
    assert [e for e, _ in seen] == [1, 2]
    assert "loss" in seen[0][1] and "recall@20" in seen[0][1]
    with pytest.raises(ZeroDivisionError):
        m.fit(split.train, callback=lambda e, x: 1 / 0, progress=False)
    with pytest.raises(seqrec.InputError):
        m.fit(split.train, patience=2, progress=False)  # patience needs valid
    with pytest.raises(seqrec.InputError):
        m.fit(split.train, valid=split.valid, valid_metric="recall@x", progress=False)


def test_checkpoint_and_resume(split, tmp_path):
    ck = tmp_path / "ck.seqrec"
    full = seqrec.GRU4Rec(**{**FAST_GRU, "epochs": 3}).fit(split.train, seed=3, threads=1,
                                                           progress=False)
    part = seqrec.GRU4Rec(**{**FAST_GRU, "epochs": 3})
    part.fit(split.train, seed=3, threads=1, progress=False, checkpoint=ck,
             callback=lambda e, m: e < 1)
    assert ck.exists()
    resumed = seqrec.GRU4Rec(**{**FAST_GRU, "epochs": 3}).fit(split.train, seed=3, threads=1,
                                                              progress=False, resume=ck)
    a, b = full.tensors(), resumed.tensors()
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    with pytest.raises(seqrec.NotFoundError):
        part.fit(split.train, resume=tmp_path / "none.seqrec", progress=False)


def test_keyboard_interrupt_stops_training(split, tmp_path):
    m = seqrec.GRU4Rec(layers=[32], batch_size=8, epochs=100000)
    ck = tmp_path / "ck.seqrec"
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            m.fit(split.train, progress=False, checkpoint=ck)
    finally:
        timer.cancel()
    assert not m.fitted
    assert not [p for p in os.listdir(tmp_path) if p != "ck.seqrec"]  # no temporary files left
    # the library's flag is cleared: the next call runs
    seqrec.Pop().fit(split.train, progress=False)


def test_real_data_evaluate_equals_cli(tmp_path):
    base = os.path.join(shared_data(), "rsc15-100k")
    if not os.path.isdir(base):
        pytest.skip(f"{base} is absent (../shared/data not available)")
    train = os.path.join(base, "yoochoose-clicks-100k_train_full.txt")
    test = os.path.join(base, "yoochoose-clicks-100k_test.txt")
    model_file = tmp_path / "sr.seqrec"
    run_cli("-q", "train", train, "-m", "sr", "-o", model_file)
    out = tmp_path / "eval.json"
    run_cli("-q", "eval", "-m", model_file, test, "--json", out)
    cli = json.loads(out.read_text())
    m = seqrec.load(model_file)
    mine = seqrec.evaluate(m, seqrec.read_events(test))
    assert mine["n_predictions"] == cli["n_predictions"]
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k
    # Python-trained on the same file gives the same model file tensors
    py = seqrec.SR().fit(seqrec.read_events(train), progress=False)
    a, b = py.tensors(), m.tensors()
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    # a neural model (float scores): trained by the CLI, evaluated both ways
    gru_file = tmp_path / "gru.seqrec"
    run_cli("-q", "--threads", 1, "train", train, "-m", "gru4rec", "--epochs", 1, "--layers", 32,
            "--seed", 3, "-o", gru_file)
    run_cli("-q", "--threads", 1, "eval", "-m", gru_file, test, "--json", out)
    cli = json.loads(out.read_text())
    mine = seqrec.evaluate(seqrec.load(gru_file), test, threads=1)
    assert mine["n_predictions"] == cli["n_predictions"]
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k


def test_real_data_sequential_ml1m(tmp_path):
    path = os.path.join(shared_data(), "ml-1m", "ml-1m.txt")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (../shared/data not available)")
    split_dir = tmp_path / "split"
    run_cli("-q", "prepare", path, "-o", split_dir, "--protocol", "sequential")
    model_file = tmp_path / "pop.seqrec"
    run_cli("-q", "train", split_dir, "-m", "pop", "-o", model_file)
    out = tmp_path / "eval.json"
    run_cli("-q", "eval", "-m", model_file, split_dir, "--json", out, "--cutoffs", "10,20")
    cli = json.loads(out.read_text())
    m = seqrec.load(model_file)
    s = seqrec.load_split(split_dir)
    mine = seqrec.evaluate(m, s.test, cutoffs=[10, 20])
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k
    # the sampled protocol (100 negatives per user, seeded)
    run_cli("-q", "eval", "-m", model_file, split_dir, "--json", out, "--cutoffs", "10",
            "--sampled", 100)
    cli = json.loads(out.read_text())
    mine = seqrec.evaluate(m, s.test, cutoffs=[10], sampled=100)
    assert mine["n_predictions"] == cli["n_predictions"]
    for k, v in cli["metrics"].items():
        assert abs(mine.metrics[k] - v) <= 1e-12, k


def test_compare_writes_the_report(split, tmp_path):
    out = tmp_path / "report"
    r = seqrec.compare(split, out=out, models=["pop", "sr"], seeds=1, curves=False)
    assert (out / "report.html").exists() and (out / "results.json").exists()
    assert [m["label"] for m in r["models"]] == ["pop", "sr"]
    df = r.to_dataframe()
    assert list(df.index) == ["pop", "sr"] and "recall@20" in df.columns
    # The same split again reuses the saved folder (a compare continues); another is refused.
    seqrec.compare(split, out=out, models=["pop", "sr"], seeds=1, curves=False)
    other = seqrec.prepare(split.train, protocol="session")
    with pytest.raises(seqrec.InputError):
        seqrec.compare(other, out=out, models=["pop"], seeds=1, curves=False)


def test_evaluation_table_and_options(split):
    m = seqrec.SR().fit(split.train, progress=False)
    r = seqrec.evaluate(m, split, cutoffs=[10], ties="standard")
    assert "Recall@10" in r.table() and r["ties"] == "standard"
    v = seqrec.evaluate(m, split, validation=True)
    assert v["n_predictions"] != r["n_predictions"] or v.metrics != r.metrics
    with pytest.raises(seqrec.InputError):
        seqrec.evaluate(m, split.test, ties="random")
    with pytest.raises(seqrec.InputError):
        seqrec.evaluate(m, split.test, cutof=[5])
    with pytest.raises(seqrec.InputError):
        seqrec.evaluate("model", split.test)
