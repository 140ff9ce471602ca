"""Events from files, DataFrames and arrays; prepare; bad input raises, never crashes."""

import math

import numpy as np
import pandas as pd
import pytest

import seqrec


def same_events(a, b):
    assert a.n_events == b.n_events
    assert a.n_sequences == b.n_sequences
    assert list(a.item_ids) == list(b.item_ids)
    assert list(a.sequence_ids) == list(b.sequence_ids)
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.items, b.items)


def test_dataframe_equals_file(log_file, log_df):
    from_file = seqrec.read_events(log_file)
    from_df = seqrec.Events.from_dataframe(log_df, session="SessionId", item="ItemId", time="Time")
    same_events(from_file, from_df)
    assert np.allclose(from_file.times, from_df.times)


def test_arrays_and_shuffled_rows(log_df):
    ev = seqrec.Events.from_arrays(log_df.SessionId.to_numpy(), log_df.ItemId.to_numpy(),
                                   log_df.Time.to_numpy())
    assert ev.n_events == len(log_df)
    # Rows in any order: events are grouped by session and ordered by time.
    shuffled = log_df.sample(frac=1.0, random_state=3)
    ev2 = seqrec.Events.from_dataframe(shuffled, session="SessionId", item="ItemId", time="Time")
    a = {s: list(x) for s, x in zip(ev.sequence_ids, ev.sequences())}
    b = {s: list(x) for s, x in zip(ev2.sequence_ids, ev2.sequences())}
    assert a == b


def test_to_dataframe_round_trip(log_df):
    ev = seqrec.Events.from_dataframe(log_df, session="SessionId", item="ItemId", time="Time")
    df = ev.to_dataframe()
    assert list(df.columns) == ["session", "item", "time"]
    assert len(df) == ev.n_events
    again = seqrec.Events.from_dataframe(df, time="time")
    same_events(ev, again)


def test_string_ids_and_datetimes():
    df = pd.DataFrame({
        "user": ["u1", "u1", "u2", "u2", "u2"],
        "item": ["a", "b", "a", "c", "b"],
        "ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-02 09:00",
                              "2024-01-02 09:05", "2024-01-02 09:03"]),
    })
    ev = seqrec.Events.from_dataframe(df, session="user", item="item", time="ts")
    assert ev.sequences() == [["a", "b"], ["a", "b", "c"]]  # ordered by time
    assert ev.times[0] == pd.Timestamp("2024-01-01 10:00").timestamp()


def test_milliseconds_are_detected(log_df):
    df = log_df.assign(Time=log_df.Time * 1000)
    ev = seqrec.Events.from_dataframe(df, session="SessionId", item="ItemId", time="Time")
    assert "milliseconds" in ev.time_note
    assert ev.times.max() < 7258118400.0


def test_prepare_and_split_folder(split, split_dir, tmp_path):
    assert split.protocol == "session"
    assert split.test.n_events > 0 and split.valid.n_events > 0
    assert split.train.n_items == split.test.n_items
    back = seqrec.load_split(split_dir)
    same_events(split.train, back.train)
    same_events(split.test, back.test)
    same_events(split.train_tr, back.train_tr)
    with pytest.raises(seqrec.InputError):
        split.save(split_dir)  # not empty
    seq = seqrec.prepare(split.train, protocol="sequential", user_core=2, item_core=2)
    assert seq.protocol == "sequential"


bad_frames = {
    "missing column": (pd.DataFrame({"s": [1, 1], "i": [1, 2]}), dict(session="s", item="x")),
    "NaN time": (pd.DataFrame({"s": [1, 1], "i": [1, 2], "t": [1.0, math.nan]}),
                 dict(session="s", item="i", time="t")),
    "mixed id types": (pd.DataFrame({"s": [1, 1], "i": [1, "1"]}), dict(session="s", item="i")),
    "mixed id types 2": (pd.DataFrame({"s": [1, "x"], "i": [1, 2]}), dict(session="s", item="i")),
    "float ids": (pd.DataFrame({"s": [1, 1], "i": [1.0, 2.0]}), dict(session="s", item="i")),
    "missing id": (pd.DataFrame({"s": [1, 1], "i": ["a", None]}), dict(session="s", item="i")),
    "string times": (pd.DataFrame({"s": [1, 1], "i": [1, 2], "t": ["x", "y"]}),
                     dict(session="s", item="i", time="t")),
    "empty": (pd.DataFrame({"s": [], "i": []}), dict(session="s", item="i")),
    "tab in id": (pd.DataFrame({"s": [1, 1], "i": ["a\tb", "c"]}), dict(session="s", item="i")),
    "empty id": (pd.DataFrame({"s": ["", "x"], "i": [1, 2]}), dict(session="s", item="i")),
    "unhashable ids": (pd.DataFrame({"s": [[1], [2]], "i": [1, 2]}), dict(session="s", item="i")),
    "nullable NA": (pd.DataFrame({"s": pd.array([1, None], dtype="Int64"), "i": [1, 2]}),
                    dict(session="s", item="i")),
    "duplicate column": (pd.DataFrame([[1, 2, 3]], columns=["s", "s", "i"]),
                         dict(session="s", item="i")),
    "infinite time": (pd.DataFrame({"s": [1, 1], "i": [1, 2], "t": [1.0, math.inf]}),
                      dict(session="s", item="i", time="t")),
    "complex times": (pd.DataFrame({"s": [1, 1], "i": [1, 2], "t": [1 + 1j, 2 + 0j]}),
                      dict(session="s", item="i", time="t")),
    "timedelta times": (pd.DataFrame({"s": [1, 1], "i": [1, 2],
                                      "t": pd.to_timedelta([1, 2], unit="s")}),
                        dict(session="s", item="i", time="t")),
    "NaT time": (pd.DataFrame({"s": [1, 1], "i": [1, 2],
                               "t": pd.to_datetime(["2020-01-01", None])}),
                 dict(session="s", item="i", time="t")),
    "datetime ids": (pd.DataFrame({"s": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                                   "i": [1, 2]}), dict(session="s", item="i")),
    "bad time_unit": (pd.DataFrame({"s": [1], "i": [1], "t": [1.0]}),
                      dict(session="s", item="i", time="t", time_unit="parsecs")),
    "empty with rows of nothing": (pd.DataFrame({"s": pd.Series([], dtype=object),
                                                 "i": pd.Series([], dtype=object)}),
                                   dict(session="s", item="i")),
}


@pytest.mark.parametrize("case", sorted(bad_frames))
def test_bad_frames_raise_input_error(case):
    df, kw = bad_frames[case]
    with pytest.raises(seqrec.InputError) as e:
        seqrec.Events.from_dataframe(df, **kw)
    assert isinstance(e.value, ValueError) and isinstance(e.value, seqrec.Error)
    assert str(e.value)


def test_not_a_dataframe():
    with pytest.raises(seqrec.InputError):
        seqrec.Events.from_dataframe({"s": [1]})
    with pytest.raises(seqrec.InputError):
        seqrec.Events.from_dataframe(None)


@pytest.mark.parametrize("args", [
    ([1, 2, 3], [1, 2]),                         # lengths differ
    ([1, 2], [1, 2], [1.0]),                     # time length differs
    (np.ones((2, 2), dtype=int), np.ones((2, 2), dtype=int)),  # not one-dimensional
    (5, 6),                                      # scalars
    (None, None),
    ("ab", "cd"),                                # strings, not columns
    ([], []),                                    # empty
    ([1, 2], [1.5, 2.5]),                        # float ids
])
def test_bad_arrays_raise_input_error(args):
    with pytest.raises(seqrec.InputError):
        seqrec.Events.from_arrays(*args)


def test_bad_files(tmp_path):
    with pytest.raises(seqrec.NotFoundError) as e:
        seqrec.read_events(tmp_path / "nope.tsv")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, seqrec.IoError)
    bad = tmp_path / "bad.tsv"
    bad.write_text("SessionId\tItemId\tTime\n1\t2\tnot-a-time\n")
    with pytest.raises(seqrec.InputError) as e:
        seqrec.read_events(bad)
    assert "bad.tsv" in str(e.value)
    with pytest.raises(seqrec.InputError) as e:
        seqrec.read_events(bad, fromat="tsv")
    assert "format" in str(e.value)  # the nearest option is named
    with pytest.raises(seqrec.InputError):
        seqrec.read_events(bad, format="nonsense")
    with pytest.raises(seqrec.NotFoundError):
        seqrec.load_split(tmp_path / "no-split")
    with pytest.raises(seqrec.IsADirectoryError):  # a folder where a log file is read
        seqrec.read_events(tmp_path)


def test_prepare_errors(split):
    with pytest.raises(seqrec.InputError):
        seqrec.prepare(split.train, protocol="session", min_item_support=-1)
    with pytest.raises(seqrec.InputError):
        seqrec.prepare(split.train, protocl="session")
    with pytest.raises(seqrec.InputError):
        seqrec.prepare([1, 2, 3])


def test_integer_id_columns_of_every_width():
    """Integer ids (made text in C++) equal the same ids given as strings, for every integer
    dtype, negative and 64-bit ones included; a nullable integer column with a missing value
    is refused like any other."""
    import pandas as pd

    sess = [5, 5, -3, -3, 2**62, 2**62]
    items = [10, 11, 11, 12, 2**40, 10]
    want = seqrec.Events.from_arrays([str(x) for x in sess], [str(x) for x in items])
    for dt in ("int64", "int32", "uint64", "Int64"):
        if dt == "int32":
            s, i = [x % 1000 for x in sess], [x % 1000 for x in items]
            ref = seqrec.Events.from_arrays([str(x) for x in s], [str(x) for x in i])
        elif dt == "uint64":
            s, i = [abs(x) for x in sess], items
            ref = seqrec.Events.from_arrays([str(x) for x in s], [str(x) for x in i])
        else:
            s, i, ref = sess, items, want
        ev = seqrec.Events.from_dataframe(pd.DataFrame({"session": pd.array(s, dtype=dt),
                                                        "item": pd.array(i, dtype=dt)}))
        assert list(ev.item_ids) == list(ref.item_ids), dt
        assert list(ev.sequence_ids) == list(ref.sequence_ids), dt
        assert ev.sequences() == ref.sequences(), dt
    big = pd.DataFrame({"session": np.array([1, 1], dtype=np.uint64),
                        "item": np.array([2**64 - 1, 3], dtype=np.uint64)})
    assert list(seqrec.Events.from_dataframe(big).item_ids) == [str(2**64 - 1), "3"]
    with pytest.raises(seqrec.InputError, match="missing"):
        seqrec.Events.from_dataframe(pd.DataFrame({"session": pd.array([1, None], dtype="Int64"),
                                                   "item": [1, 2]}))
