"""seqrec.tune: the best parameters and the trials, the log resumed, clear errors."""

import json
import os

import pytest

import seqrec

SPACE = {
    "model": "gru4rec",
    "fixed": {"n_sample": 32, "sample_store_size": 1000},
    "params": [
        {"name": "layers", "type": "int", "low": 8, "high": 24, "step": 8},
        {"name": "learning_rate", "type": "float", "low": 0.02, "high": 0.2, "log": True},
        {"name": "loss", "type": "categorical", "values": ["cross-entropy", "bpr-max"]},
    ],
}


@pytest.fixture
def space_file(tmp_path):
    p = tmp_path / "space.json"
    p.write_text(json.dumps(SPACE))
    return p


def test_tune_returns_best_params_and_trials_and_resumes(split_dir, space_file, tmp_path):
    out = tmp_path / "tune"
    r = seqrec.tune(split_dir, "gru4rec", out, trials=3, epochs=2, space=space_file,
                    threads=1, n_startup=2)
    assert isinstance(r, seqrec.TuneResult)
    assert len(r.trials) == 3
    assert [t["number"] for t in r.trials] == [0, 1, 2]
    assert set(r.best_params) == {"layers", "learning_rate", "loss"}
    assert r["metric"] == "recall@20"
    assert 0.0 <= r["best_value"] <= 1.0
    assert os.path.exists(r["best_config_path"])
    assert r["best_config"]["n_sample"] == 32
    df = r.to_dataframe()
    assert len(df) == 3 and "layers" in df.columns
    # The same call with more trials continues the log.
    again = seqrec.tune(split_dir, "gru4rec", out, trials=4, epochs=2, space=space_file,
                        threads=1, n_startup=2)
    assert again["resumed"] == 3
    assert len(again.trials) == 4
    assert again.trials[:3] == r.trials
    # best.json trains.
    model = seqrec.GRU4Rec(**{k: v for k, v in r["best_config"].items()})
    model.fit(os.path.join(str(split_dir)), threads=1, progress=False)


def test_tune_errors(split_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"params": [{"name": "lerning_rate", "type": "float",
                                           "low": 0.1, "high": 0.2}]}))
    with pytest.raises(seqrec.InputError, match="unknown parameter 'lerning_rate'"):
        seqrec.tune(split_dir, "gru4rec", tmp_path / "o1", trials=1, space=bad)
    with pytest.raises(seqrec.InputError, match="trials"):
        seqrec.tune(split_dir, "gru4rec", tmp_path / "o2", trials=0)
    with pytest.raises(seqrec.InputError, match="did you mean"):
        seqrec.tune(split_dir, "gru4rec", tmp_path / "o3", trials=1, n_startp=2)
