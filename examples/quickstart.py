"""seqrec from Python in a few seconds: a DataFrame of clicks to a trained, evaluated,
compared and served model. Runs on generated data (no files needed):

    PYTHONPATH=build/python /usr/bin/python3 examples/quickstart.py

(once the package is installed, `/usr/bin/python3 examples/quickstart.py`).
"""

import os
import tempfile

import numpy as np
import pandas as pd

import seqrec


def clicks(n_sessions=3000, n_items=300, seed=1):
    """A DataFrame of sessions whose next item tends to follow the current one."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = 1_700_000_000
    for s in range(n_sessions):
        start = t0 + s * 20 * 86400 // n_sessions  # 20 days of sessions
        item = int(rng.integers(n_items))
        for j in range(int(rng.integers(2, 8))):
            rows.append((f"s{s}", f"item{item}", start + 30 * j))
            item = (item + int(rng.integers(1, 4))) % n_items if rng.random() < 0.8 else int(rng.integers(n_items))
    return pd.DataFrame(rows, columns=["session_id", "item_id", "ts"])


def main():
    df = clicks()
    events = seqrec.Events.from_dataframe(df, session="session_id", item="item_id", time="ts")
    print(events)

    # GRU4Rec's split: test = sessions of the last day; valid = the same inside train.
    split = seqrec.prepare(events, protocol="session", min_item_support=2)
    print(split)

    # Train with validation after every epoch and early stopping; then the final run.
    model = seqrec.GRU4Rec(layers=[32], batch_size=32, epochs=3, learning_rate=0.1)
    model.fit(split.train_tr, valid=split.valid, patience=2, seed=1, progress=False,
              callback=lambda epoch, m: print(f"  epoch {epoch}: {m}"))
    model.fit(split.train, seed=1, progress=False)

    result = seqrec.evaluate(model, split.test, cutoffs=[5, 20])
    print(result.table())

    # Baselines side by side, as a DataFrame.
    rows = {"gru4rec": result.metrics}
    for cls in (seqrec.Pop, seqrec.SR, seqrec.VSKNN):
        m = cls().fit(split.train, progress=False)
        rows[m.type] = seqrec.evaluate(m, split.test, cutoffs=[5, 20]).metrics
    print(pd.DataFrame(rows).T[["recall@20", "mrr@20"]].round(4))

    # Recommend: one session, then many at once.
    session = split.test.sequences()[0][:2]
    print("after", session, "->", list(model.recommend(session, k=5).items))
    ids, scores = model.recommend_batch(split.test.sequences()[:1000], k=20)
    print("batch:", ids.shape, scores.dtype)

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gru4rec.seqrec")
        model.save(path)  # `seqrec serve` serves this file
        again = seqrec.load(path)
        assert list(again.recommend(session, k=5).items) == list(model.recommend(session, k=5).items)

    # Live sessions in-process (what `seqrec serve` answers over HTTP).
    live = seqrec.Recommender(model)
    for item in session:
        answer = live.add_event("visitor-1", item, k=5)
    print("live:", answer["items"])


if __name__ == "__main__":
    main()
