"""Model classes: one per registered model type, made from the model registry's parameter
tables (keyword arguments, defaults, checks, docstrings and presets all come from there)."""

import collections
import os
import sys
import tempfile

import numpy as np

from . import _seqrec
from ._data import Events
from ._seqrec import InputError
from ._util import integer, item_ids, options, path_text, threads as _threads

# Class names of the built-in types; a later type gets its name capitalised.
_CLASS_NAMES = {"gru4rec": "GRU4Rec", "sasrec": "SASRec", "pop": "Pop", "sr": "SR", "vsknn": "VSKNN"}

Recommendation = collections.namedtuple("Recommendation", ["items", "scores", "unknown_items"])
Recommendation.__doc__ = """One session's recommendations: ``items`` (a list of str ids, best
first), ``scores`` (a float32 NumPy array), and ``unknown_items`` (ids of the session not in
the catalogue)."""

_TYPE_VALUE = {
    "int": int,
    "float": float,
    "bool": lambda s: s == "true",
    "str": str,
    "int_list": lambda s: [int(x) for x in s.split(",") if x],
}


def _class_name(type_):
    return _CLASS_NAMES.get(type_, "".join(p.capitalize() for p in type_.split("_")))


def _doc(info):
    lines = [f"{_class_name(info['type'])}: {info['description']} (model type '{info['type']}').", "",
             "Parameters (keyword arguments; defaults as in ``seqrec models``):", ""]
    for p in info["params"]:
        extra = []
        if p["range"]:
            extra.append(p["range"])
        if p["choices"]:
            extra.append("one of " + ", ".join(p["choices"]))
        if p["aliases"]:
            extra.append("also spelled " + ", ".join(p["aliases"]))
        default = p["default"] if p["default"] != "" else '""'
        tail = f" [{'; '.join(extra)}]" if extra else ""
        lines.append(f"    {p['name']} ({p['type']}, default {default}): {p['help']}{tail}")
    if info["presets"]:
        lines += ["", "Presets (``preset=NAME``):", ""]
        for pr in info["presets"]:
            vals = ", ".join(f"{k}={v}" for k, v in pr["values"].items())
            lines.append(f"    {pr['name']}: {pr['description']} ({vals})")
    return "\n".join(lines)


class Model:
    """Base of the model classes (``seqrec.GRU4Rec``, ``seqrec.SASRec``, ...).

    ``Model(preset=None, **params)``: parameters by their name (or an accepted alias),
    checked against the model's parameter table with the CLI's messages; ``preset`` names
    one of the type's presets (applied first). scikit-learn style: :meth:`get_params`,
    :meth:`set_params`, :meth:`fit` returns the model.
    """

    _type = None
    _info = None

    def __init__(self, preset=None, **params):
        if self._type is None:
            raise InputError("seqrec.Model is abstract: use a model class such as seqrec.GRU4Rec")
        self._preset = preset
        self._params = {}
        for k, v in params.items():
            self._params[self._canonical(k)] = v
        self._core = _seqrec.ModelCore(self._type, preset or "", options(self._params, none_unset=False))

    @classmethod
    def _canonical(cls, name):
        for p in cls._info["params"]:
            if name == p["name"] or name in p["aliases"]:
                return p["name"]
        return name  # unknown: the core names it, with the nearest parameter

    # ---- parameters ----
    @property
    def type(self):
        """The model type's registry name ("gru4rec", ...)."""
        return self._core.type

    @property
    def config(self):
        """Every parameter's value (the model's configuration, as stored in its file)."""
        return self._core.config()

    def get_params(self, deep=True):
        """Parameters as keyword arguments: ``preset`` and every parameter of the table."""
        return {"preset": self._preset, **self._core.config()}

    def set_params(self, **params):
        """Set parameters (and ``preset``); checked at once. Returns the model. A fitted
        model keeps its weights until the next fit()."""
        preset = params.pop("preset", self._preset)
        merged = dict(self._params)
        for k, v in params.items():
            merged[self._canonical(k)] = v
        self._core.reconfigure(preset or "", options(merged, none_unset=False))
        self._preset, self._params = preset, merged
        return self

    @classmethod
    def presets(cls):
        """The type's presets: {name: {parameter: value}}."""
        return {p["name"]: dict(p["values"]) for p in cls._info["presets"]}

    # ---- training ----
    def fit(self, train, valid=None, seed=42, threads=0, patience=0, valid_metric="recall@20",
            progress=True, callback=None, checkpoint=None, resume=None, item_features=None,
            feature_columns=None, text_buckets=None, text_grams=None, title_year=None):
        """Train on ``train`` (:class:`Events`, e.g. ``split.train``; or a split folder / log
        path, read like ``seqrec train``). Returns the model.

        ``valid``: Events to evaluate on after every epoch of an iterative model (e.g.
        ``split.valid`` when training on ``split.train_tr``) at ``valid_metric``; with
        ``patience`` > 0 training stops after that many epochs without improvement and the
        best epoch's weights are kept. ``threads``: 0 = all cores (with 1, runs are
        bit-identical to ``seqrec train --threads 1``). ``progress``: a tqdm bar over the
        epochs when tqdm is installed, else the CLI's progress lines on stderr.
        ``callback(epoch, metrics)`` is called after every epoch with {"loss": ..., and the
        validation metrics}; returning False stops training. ``checkpoint``/``resume``:
        checkpoint files as ``seqrec train --checkpoint/--resume``. Ctrl-C stops training
        (KeyboardInterrupt) without writing anything for the unfinished epoch.
        ``item_features``: an item feature file (dssm; sasrec becomes feature-aware), read
        as ``seqrec train --item-features`` with ``feature_columns``, ``text_buckets``,
        ``text_grams``, ``title_year``; stored in the model with its encoder, so that
        :class:`Recommender` can add items by their features.
        """
        if not isinstance(train, Events):
            from ._data import load_split, read_events

            p = path_text(train, "fit")
            train = load_split(p).train if os.path.isdir(p) else read_events(p)
        if valid is not None and not isinstance(valid, Events):
            raise InputError(f"fit: valid must be seqrec.Events, got {type(valid).__name__}")
        if callback is not None and not callable(callback):
            raise InputError("fit: callback must be callable")
        bar = None
        iterative = bool(self._info["epochs_param"])
        if progress and iterative:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                bar = tqdm(total=int(self.config[self._info["epochs_param"]]), unit="epoch",
                           desc=self._type)

        def on_epoch(epoch, loss, metrics):
            m = {"loss": loss, **metrics}
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in m.items()})
            if callback is not None:
                return callback(epoch, m) is not False
            return True

        try:
            self._core.fit(
                train._core, None if valid is None else valid._core,
                integer(seed, "seed", 0, 2**64 - 1), _threads(threads),
                integer(patience, "patience", 0, 1000000), valid_metric, bool(progress) and bar is None,
                on_epoch if (bar is not None or callback is not None) else None,
                "" if checkpoint is None else path_text(checkpoint, "checkpoint"),
                "" if resume is None else path_text(resume, "resume"),
                "" if item_features is None else path_text(item_features, "item_features"),
                {k: (str(v).lower() if isinstance(v, bool) else str(v))
                 for k, v in (("feature_columns", feature_columns),
                              ("text_buckets", text_buckets), ("text_grams", text_grams),
                              ("title_year", title_year)) if v is not None})
        finally:
            if bar is not None:
                bar.close()
        return self

    @property
    def fitted(self):
        """Whether the model has been trained or loaded."""
        return self._core.fitted

    # ---- files ----
    def save(self, path):
        """Write the model file ``seqrec train -o`` writes (atomically): ``seqrec serve``,
        ``eval`` and ``recommend`` read it, and :func:`seqrec.load` reads it back."""
        self._core.save(path_text(path, "save"))
        return path

    def __getstate__(self):
        state = {"type": self._type, "preset": self._preset, "params": self._params, "model": None}
        if self._core.fitted:
            with tempfile.TemporaryDirectory() as d:
                f = os.path.join(d, "model.seqrec")
                self._core.save(f)
                with open(f, "rb") as fh:
                    state["model"] = fh.read()
        return state

    def __setstate__(self, state):
        cls = model_classes()[_class_name(state["type"])]
        self.__class__ = cls
        self._preset, self._params = state["preset"], state["params"]
        if state["model"] is None:
            self._core = _seqrec.ModelCore(state["type"], self._preset or "", options(self._params, none_unset=False))
            return
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "model.seqrec")
            with open(f, "wb") as fh:
                fh.write(state["model"])
            self._core = _seqrec.load_model(f)

    # ---- predictions ----
    @property
    def item_ids(self):
        """The catalogue: item ids (str) by item index, as a NumPy object array."""
        ids = getattr(self, "_ids_cache", None)
        if ids is None or len(ids) != self._core.n_items:
            ids = np.array(self._core.item_ids(), dtype=object)
            self._ids_cache = ids
        return ids

    @property
    def n_items(self):
        return self._core.n_items

    @property
    def meta(self):
        """Training metadata (as stored in the model file)."""
        return self._core.meta()

    def recommend(self, items, k=20, exclude_seen=None, allowed=None, forbidden=()):
        """The top ``k`` next items after the session ``items`` (ids, oldest first), scored
        as ``seqrec recommend`` scores them. ``exclude_seen``: drop the session's items
        (None: yes for a model trained on a sequential split); ``allowed``: only these ids
        may be recommended; ``forbidden``: never these. Unknown ids are skipped and listed
        in ``unknown_items``; with no known item the result is empty."""
        return Recommendation(*self._core.recommend(
            _ids(items, "items"), integer(k, "k", 1, _K_MAX), exclude_seen,
            None if allowed is None else _ids(allowed, "allowed"),
            _ids(forbidden, "forbidden") if forbidden is not None else []))

    def recommend_batch(self, sessions, k=20, exclude_seen=None, allowed=None, forbidden=(),
                        threads=0):
        """Top-``k`` for many sessions at once, computed in C++ on all threads.

        ``sessions``: a list of sessions (lists of item ids) or :class:`Events`. The filters
        are :meth:`recommend`'s, applied to every session: ``exclude_seen`` (None: yes for a
        model trained on a sequential split), ``allowed`` (only these ids), ``forbidden``
        (never these); unknown ids in the filters are ignored. Returns ``(items, scores)``:
        object array of ids and float32 array, both ``len(sessions) x k``, best first; rows
        of sessions without known items (and columns beyond the eligible items) hold None
        and NaN. Each row equals ``recommend(session, k, ...)`` with the same filters."""
        idx, scores = self.recommend_indices(sessions, k, exclude_seen, allowed, forbidden,
                                             threads)
        ids = self.item_ids
        out = np.full(idx.shape, None, dtype=object)
        ok = idx >= 0
        out[ok] = ids[idx[ok]]
        return out, scores

    def recommend_indices(self, sessions, k=20, exclude_seen=None, allowed=None, forbidden=(),
                          threads=0):
        """As :meth:`recommend_batch` with item indices (int32, -1 for none) instead of ids."""
        return self._core.recommend_batch(
            _sessions(sessions), integer(k, "k", 1, _K_MAX),
            None if exclude_seen is None else bool(exclude_seen),
            None if allowed is None else _ids(allowed, "allowed"),
            _ids(forbidden, "forbidden") if forbidden is not None else [], _threads(threads))

    def score(self, sessions, threads=0):
        """Scores of every item after each session: float32, ``len(sessions) x n_items``
        (columns in :attr:`item_ids` order; a row of NaN for a session without known items)."""
        return self._core.score(_sessions(sessions), _threads(threads))

    def item_embeddings(self):
        """The output item vectors of a model with a dot-product output layer (GRU4Rec,
        SASRec) as a read-only ``n_items x dim`` float32 array (no copy), else None."""
        return self._core.item_embeddings()

    def item_bias(self):
        """The output layer's per-item bias (GRU4Rec), or None."""
        return self._core.item_bias()

    def tensors(self):
        """Every learned tensor by name (copies), as the model file stores them."""
        return self._core.tensors()

    def __repr__(self):
        changed = {k: v for k, v in self._params.items()}
        args = ", ".join(([f"preset={self._preset!r}"] if self._preset else [])
                         + [f"{k}={v!r}" for k, v in changed.items()])
        return f"{_class_name(self._type)}({args})"


_ids = item_ids
_K_MAX = 1000000  # the largest k (the Recommender's max_k)


def _sessions(sessions):
    if isinstance(sessions, Events):
        return sessions.sequences()
    if isinstance(sessions, (str, bytes)) or not hasattr(sessions, "__iter__"):
        raise InputError("sessions: expected a list of sessions (lists of item ids) or "
                         f"seqrec.Events, got {type(sessions).__name__}")
    return [_ids(s, "sessions") for s in sessions]


_CLASSES = None


def model_classes():
    """{class name: class} of every registered model type."""
    global _CLASSES
    if _CLASSES is None:
        classes = {}
        for info in _seqrec.model_types():
            name = _class_name(info["type"])
            classes[name] = type(name, (Model,), {
                "_type": info["type"], "_info": info, "__doc__": _doc(info),
                "__module__": "seqrec"})
        _CLASSES = classes
    return _CLASSES


def load(path):
    """Load a model file written by ``seqrec train`` or :meth:`Model.save`."""
    core = _seqrec.load_model(path_text(path, "load"))
    cls = model_classes()[_class_name(core.type)]
    m = cls.__new__(cls)
    m._core, m._preset, m._params = core, None, {}
    return m
