"""Interaction data: logs read with the CLI's reader, pandas DataFrames and NumPy arrays in,
the two preparation protocols of ``seqrec prepare``, and DataFrames out."""

import numpy as np

from . import _seqrec
from ._seqrec import InputError
from ._util import options, path_text


def read_events(path, **options_):
    """Read an interaction log with the CLI's reader.

    Keyword arguments are the reader options of ``seqrec prepare`` / ``seqrec train``
    (docs/cli.md): ``format`` ("auto", "tsv", "inter", "sequences", "pairs"),
    ``delimiter``, ``header``, ``session_col``, ``item_col``, ``time_col``,
    ``time_unit`` ("auto", "s", "ms", "us", "ns", "days"), ``sequence_ids``,
    ``cache_dir``. Raises NotFoundError for a missing file and InputError naming the file
    and line for malformed content.
    """
    p = path_text(path, "read_events")
    return Events(_seqrec.read_events(p, options(options_)))


def _codes(values, column, source):
    """(codes, ids) of an id column, ids numbered in order of first appearance: the ids as
    a list of str, or for an integer column as an int64 array (made text in C++)."""
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    kind = s.dtype.kind
    if kind == "f":
        raise InputError(
            f"{source}: column '{column}' holds floats ({s.dtype}); ids must be integers, "
            "strings or other exact values (convert with .astype('int64') or .astype(str))"
        )
    if kind in "mM" or kind == "c":
        raise InputError(f"{source}: column '{column}' has dtype {s.dtype}, which is not an id type")
    try:
        codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
    except TypeError as e:  # unhashable values (lists, dicts, ...)
        raise InputError(f"{source}: column '{column}' holds values that cannot be ids ({e}); "
                         "ids must be integers, strings or other exact values") from None
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise InputError(
            f"{source}: column '{column}' has a missing value (NaN/None) at row {int(missing[0]) + 1}"
        )
    if kind in "iu" and (kind == "i" or len(uniques) == 0
                         or int(uniques.max()) <= np.iinfo(np.int64).max):
        # Integer ids: their decimal texts are distinct, non-empty and free of tabs and line
        # breaks, so the checks below cannot fail; the texts are made in C++ (much faster than
        # a Python str per id: docs/performance.md).
        return codes, np.asarray(uniques, dtype=np.int64)
    if kind == "O":
        kinds = pd.Series(uniques).map(type).unique()
        if len(kinds) > 1:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            raise InputError(
                f"{source}: column '{column}' mixes id types ({names}); use one type "
                f"(e.g. .astype(str))"
            )
        if kinds.size and issubclass(kinds[0], float):
            raise InputError(
                f"{source}: column '{column}' holds floats; ids must be integers, strings or "
                "other exact values"
            )
    ids = pd.Index(uniques).astype(str)
    bad = ids.str.contains(r"[\t\n\r]", regex=True) | (ids.str.len() == 0)
    if bad.any():
        raise InputError(
            f"{source}: column '{column}' has an id that is empty or holds a tab or line break: "
            f"{ids[np.argmax(bad)]!r}"
        )
    if not ids.is_unique:
        raise InputError(
            f"{source}: column '{column}' has distinct ids with the same text "
            f"(e.g. {ids[ids.duplicated()][0]!r}); use one id type"
        )
    return codes, ids.tolist()


def _times(values, column, source):
    """Seconds as float64 from a numeric or datetime column."""
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    kind = s.dtype.kind
    if isinstance(s.dtype, pd.DatetimeTZDtype) or kind == "M":
        if s.isna().any():
            row = int(np.flatnonzero(s.isna().to_numpy())[0]) + 1
            raise InputError(f"{source}: row {row}: time is NaT (missing)")
        ns = s.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(s.dtype, pd.DatetimeTZDtype) else s
        return ns.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    if kind not in "iuf":
        raise InputError(
            f"{source}: column '{column}' has dtype {s.dtype}; times must be numbers (seconds "
            "unless time_unit says otherwise) or datetimes"
        )
    t = s.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(t)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise InputError(f"{source}: row {row}: time is {'NaN' if np.isnan(t[row - 1]) else 'infinite'}")
    return t


class Events:
    """Interaction sequences over an item catalogue: a log, or one part of a split.

    Made by :func:`read_events`, :meth:`from_dataframe`, :meth:`from_arrays` or as a
    part of a :class:`Split`. Sequences (sessions or user histories) hold their events in
    time order; ids are kept as text (``str(id)``).
    """

    def __init__(self, core):
        self._core = core

    @classmethod
    def from_dataframe(cls, df, session="session", item="item", time=None, time_unit="auto"):
        """Events from a pandas DataFrame.

        ``session`` (a session or user id), ``item`` and the optional ``time`` name the
        columns. Ids may be of any exact type (integers, strings, ...; one type per column)
        and become text (``str``). Times are numbers (seconds, or the unit ``time_unit``
        names: "s", "ms", "us", "ns", "days"; "auto" detects milliseconds and finer as
        ``seqrec`` does) or datetimes. Sequences are ordered by first appearance, events
        within one by time (stably), items by first appearance: the same as reading the
        frame written as a file. Raises InputError for a missing column, an empty frame,
        missing ids or times, mixed id types and non-numeric times.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise InputError(f"from_dataframe: expected a pandas DataFrame, got {type(df).__name__}")
        for role, col in (("session", session), ("item", item), ("time", time)):
            if col is not None and col not in df.columns:
                cols = ", ".join(map(str, df.columns))
                raise InputError(f"DataFrame: no {role} column '{col}' (columns: {cols})")
            if col is not None and (df.columns == col).sum() > 1:
                raise InputError(f"DataFrame: more than one column is named '{col}'")
        return cls._build(df[session], df[item], None if time is None else df[time],
                          "DataFrame", (session, item, time), time_unit)

    @classmethod
    def from_arrays(cls, session, item, time=None, time_unit="auto"):
        """Events from equally long arrays (NumPy arrays, lists or pandas Series) of session
        ids, item ids and optional times; see :meth:`from_dataframe`."""
        return cls._build(session, item, time, "arrays", ("session", "item", "time"), time_unit)

    @classmethod
    def _build(cls, session, item, time, source, names, time_unit):
        for name, col in zip(names, (session, item, time)):
            if col is None and name == names[2]:
                continue
            if isinstance(col, (str, bytes)) or not hasattr(col, "__len__"):
                raise InputError(f"{source}: the {name} column must be an array, a list or a "
                                 f"Series, got {type(col).__name__}")
            if getattr(col, "ndim", 1) != 1:
                raise InputError(f"{source}: the {name} column must be one-dimensional, got "
                                 f"shape {getattr(col, 'shape', None)}")
        n = len(item)
        if n == 0:
            raise InputError(f"{source}: no events (empty)")
        if len(session) != n or (time is not None and len(time) != n):
            raise InputError(f"{source}: the session, item and time columns differ in length")
        s_codes, s_ids = _codes(session, names[0], source)
        i_codes, i_ids = _codes(item, names[1], source)
        t = None if time is None else _times(time, names[2], source)
        opts = options({"time_unit": time_unit})
        return cls(_seqrec.events_from_codes(s_codes, s_ids, i_codes, i_ids, t, source, opts))

    # ---- what they hold ----
    @property
    def n_events(self):
        """Number of events."""
        return self._core.n_events

    @property
    def n_sequences(self):
        """Number of sequences (sessions or users)."""
        return self._core.n_sequences

    def __len__(self):
        return self._core.n_sequences

    @property
    def n_items(self):
        """Size of the item catalogue."""
        return self._core.n_items

    @property
    def item_ids(self):
        """The catalogue: item ids (str) by item index, as a NumPy object array."""
        return np.array(self._core.item_ids(), dtype=object)

    @property
    def sequence_ids(self):
        """Session/user id of each sequence, as a NumPy object array."""
        return np.array(self._core.sequence_ids(), dtype=object)

    @property
    def offsets(self):
        """CSR offsets (n_sequences + 1, int64, read-only view): sequence i is
        ``items[offsets[i]:offsets[i+1]]``."""
        return self._core.offsets()

    @property
    def items(self):
        """Item index of every event (int32, read-only view; see :attr:`item_ids`)."""
        return self._core.items()

    @property
    def times(self):
        """Time of every event in seconds (float64, read-only view), or None without times."""
        return self._core.times() if self._core.has_times else None

    @property
    def protocol(self):
        """"session" or "sequential" for a part of a split, else ""."""
        return self._core.protocol

    @property
    def time_note(self):
        """What reading noticed about the time unit ("" when nothing)."""
        return self._core.time_note

    def stats(self):
        """Counts and the length distribution (as ``seqrec prepare`` prints them)."""
        return self._core.stats()

    def sequences(self):
        """The sequences as a list of lists of item ids."""
        ids = self.item_ids
        off = self.offsets
        items = self.items
        return [ids[items[off[i]:off[i + 1]]].tolist() for i in range(len(off) - 1)]

    def to_dataframe(self):
        """A DataFrame with columns ``session``, ``item`` (str ids) and ``time`` (seconds,
        when there are times), one row per event, sequences in order."""
        import pandas as pd

        off = self.offsets
        lengths = np.diff(off)
        data = {
            "session": np.repeat(self.sequence_ids, lengths),
            "item": self.item_ids[self.items],
        }
        if self._core.has_times:
            data["time"] = np.array(self.times)
        return pd.DataFrame(data)

    def __repr__(self):
        return (f"<seqrec.Events: {self.n_sequences} sequences, {self.n_events} events, "
                f"{self.n_items} items{', with times' if self._core.has_times else ''}>")


class Split:
    """A prepared split (``seqrec prepare``): ``train`` (train_full) and ``test`` for the
    final run, ``train_tr`` and ``valid`` for the validation run; all over one catalogue."""

    def __init__(self, core):
        self._core = core
        self.train = Events(core.train)
        self.test = Events(core.test)
        self.train_tr = Events(core.train_tr)
        self.valid = Events(core.valid)

    @property
    def protocol(self):
        """"session" or "sequential"."""
        return self._core.protocol

    @property
    def stats(self):
        """What the filters removed, the size of each part, what was detected (split.json)."""
        return self._core.stats

    def save(self, folder, force=False):
        """Write the split folder ``seqrec prepare -o`` writes (items.tsv, train_full.tsv,
        test.tsv, train_tr.tsv, valid.tsv, split.json), which ``seqrec train``/``eval``
        read. The folder must be new or empty unless ``force``."""
        self._core.save(path_text(folder, "Split.save"), bool(force))
        return folder

    def __repr__(self):
        return (f"<seqrec.Split ({self.protocol}): train {self.train.n_events} events, "
                f"test {self.test.n_events}, valid {self.valid.n_events}>")


def prepare(events, protocol="auto", force=False, **options_):
    """Filter and split events like ``seqrec prepare``.

    ``protocol``: "session" (GRU4Rec's time split: test = sessions ending in the last
    ``test_days``), "sequential" (leave-one-out per user), or "auto". Other keyword
    arguments are prepare's options: ``min_session_length``, ``min_item_support``,
    ``test_days``, ``valid_days`` (session); ``user_core``, ``item_core`` (sequential);
    ``remove_repeats``. A degenerate test set is an InputError unless ``force``.
    """
    if isinstance(events, (str, bytes)) or hasattr(events, "__fspath__"):
        events = read_events(events)
    if not isinstance(events, Events):
        raise InputError(f"prepare: expected seqrec.Events, got {type(events).__name__}")
    opts = options({"protocol": protocol, **options_})
    return Split(_seqrec.prepare(events._core, opts, bool(force)))


def load_split(folder, **read_options):
    """Read a split folder written by ``seqrec prepare`` or :meth:`Split.save`."""
    return Split(_seqrec.load_split(path_text(folder, "load_split"), options(read_options)))
