"""Live sessions in-process: the serving core of ``seqrec serve`` without HTTP."""

import json

from . import _seqrec
from ._models import Model
from ._seqrec import InputError
from ._util import options


def _id(value, what):
    """An id as text: a string or an integer (as in read_events and from_dataframe); None,
    NaN and other floats are refused rather than becoming "None" or "nan"."""
    if isinstance(value, str):
        return value
    if value is None:
        raise InputError(f"{what}: an id is None")
    if isinstance(value, bool) or isinstance(value, float) or type(value).__name__.startswith("float"):
        raise InputError(f"{what}: {value!r} is not an id (ids are strings or integers)")
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what}: {value!r} is not UTF-8") from None
    return str(value)


def _ids(values, what):
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        raise InputError(f"{what}: expected a list of item ids, got a single string")
    return [_id(v, f"{what}[{i}]") for i, v in enumerate(values)]


def _k(k):
    """k as a C++ int: beyond int32 it is clamped, so that the core's own range check
    ("k ... is above max_k ...") answers instead of an OverflowError."""
    if k is None:
        return None
    if isinstance(k, bool) or not hasattr(k, "__index__"):
        raise InputError(f"k: expected an integer, got {k!r}")
    return max(-(2**31), min(2**31 - 1, k.__index__()))


class Recommender:
    """Session state and recommendations, thread-safe: the recommender of ``seqrec serve``.

    ``Recommender(model, exact=False, **options)``: ``model`` a fitted model (the
    recommender keeps its own copy; refitting the model does not change it, see
    :meth:`replace_model`); ``options`` the server's limits (docs/http-api.md):
    ``max_sessions``, ``session_ttl``, ``max_session_memory`` (MiB), ``max_history``,
    ``default_k``, ``max_k``, ``session_shards``, ``max_batch``, ``batch_lanes``,
    ``head_storage``, ``max_added_items``, ``items_file``. ``exact=True`` scores with the model's own scoring (the numbers of
    ``seqrec eval``) instead of the server's batched output layer. Every method may be
    called from several threads at once; the GIL is released while it runs.

    Each answer is a dict: "items" and "scores" (best first), "unknown_items", "k",
    "exclude_seen", "session_length", "new_session", "session_reset".
    """

    def __init__(self, model, exact=False, **options_):
        if not isinstance(model, Model):
            raise InputError(f"Recommender: expected a fitted seqrec model, got {type(model).__name__}")
        self._core = _seqrec.RecommenderCore(model._core, options(options_), bool(exact))

    @staticmethod
    def _opts(k, exclude_seen, allowed, forbidden):
        return (_k(k), exclude_seen, _ids(allowed, "allowed"),
                _ids(forbidden, "forbidden") or [])

    def add_event(self, session, item, timestamp=None, k=None, exclude_seen=None, allowed=None,
                  forbidden=()):
        """Add one event to ``session`` (created on first use) and recommend its next items."""
        return self._core.add_events(_id(session, "session"), [_id(item, "item")], [timestamp],
                                     *self._opts(k, exclude_seen, allowed, forbidden))

    def add_events(self, session, items, timestamps=None, k=None, exclude_seen=None,
                   allowed=None, forbidden=()):
        """Add events in order to ``session`` and recommend its next items."""
        items = _ids(items, "items")
        ts = list(timestamps) if timestamps is not None else []
        return self._core.add_events(_id(session, "session"), items, ts,
                                     *self._opts(k, exclude_seen, allowed, forbidden))

    def recommend(self, session, k=None, exclude_seen=None, allowed=None, forbidden=()):
        """Recommend for ``session`` as it is (an unknown session is created empty)."""
        return self._core.add_events(_id(session, "session"), [], [],
                                     *self._opts(k, exclude_seen, allowed, forbidden))

    def recommend_items(self, items, k=None, exclude_seen=None, allowed=None, forbidden=()):
        """Recommend after a list of items, without session state."""
        return self._core.recommend_items(_ids(items, "items"),
                                          *self._opts(k, exclude_seen, allowed, forbidden))

    def add_item(self, id, features=None):
        """Add an item to the live catalogue by its features, recommendable from the next
        call on (POST /v1/items). ``features``: a dict of the columns of the feature file
        the model was trained with (``{"title": "Toy Story 5 (2027)", "genres":
        "Animation|Comedy"}``; multi-valued columns also as lists). Only a dssm or sasrec
        model trained with item features can add items; ``features=None`` brings a retired
        trained item back. Returns a dict: "id", "index", "restored", "unknown_values"
        (values the feature file never had), "live_items". Raises InputError for bad
        features, seqrec.Error when the id is live already or the bound is reached."""
        if features is not None and not isinstance(features, dict):
            raise InputError(f"add_item: features must be a dict, got {type(features).__name__}")
        text = "" if features is None else json.dumps(features)
        return self._core.add_item(str(id), text)

    def remove_item(self, id):
        """Retire an item (trained or added): never recommended again until added again.
        Raises seqrec.Error when the id is not in the live catalogue."""
        return self._core.remove_item(str(id))

    def drop_session(self, session):
        """Forget a session; False when there was none."""
        return self._core.drop_session(_id(session, "session"))

    def session(self, session):
        """The session's state (length, kept history, idle time), or None."""
        return self._core.session_info(_id(session, "session"))

    def expire_idle(self):
        """Drop sessions idle for longer than the TTL now; returns how many."""
        return self._core.expire_idle()

    def reload(self, path):
        """Swap in the model file at ``path`` (validated first; sessions kept when the
        catalogue is the same)."""
        return self._core.reload(str(path))

    def replace_model(self, model):
        """Swap in a copy of another fitted model."""
        self._core.replace_model(model._core)

    def stats(self):
        """Counters: live sessions, evictions, events, unknown items, reloads."""
        return self._core.stats()

    def model_info(self):
        """What is served: type, catalogue size, scoring path, configuration."""
        return self._core.model_info()
