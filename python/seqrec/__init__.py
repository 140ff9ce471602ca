"""seqrec: session-based and sequential recommendation (GRU4Rec, SASRec, baselines).

The C++ engine of the ``seqrec`` command-line program as a Python package: read logs or
pandas DataFrames, prepare the evaluation protocols, train models, recommend, evaluate with
the same numbers as ``seqrec eval``, compare models and serve live sessions in-process.
See docs/python.md for a walkthrough.

    import seqrec
    events = seqrec.Events.from_dataframe(df, session="session_id", item="item_id", time="ts")
    split = seqrec.prepare(events, protocol="session")
    model = seqrec.GRU4Rec(preset="rsc15").fit(split.train, seed=1)
    seqrec.evaluate(model, split.test)["metrics"]["recall@20"]
    model.recommend(["item-1", "item-7"], k=10)
"""

import os as _os

# The seqrec program re-executes itself with this spin count (docs/architecture.md): with
# libgomp's default, threads waiting for work spin long enough to slow a busy machine down.
# It must be set before the OpenMP runtime starts, that is before _seqrec is imported.
if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

from . import _seqrec  # noqa: E402
from ._seqrec import Error, InputError, IoError, IsADirectoryError, NotFoundError  # noqa: E402
from ._data import Events, Split, load_split, prepare, read_events  # noqa: E402
from ._models import Model, load, model_classes  # noqa: E402
from ._eval import Evaluation, TuneResult, compare, evaluate, tune  # noqa: E402
from ._serve import Recommender  # noqa: E402

__version__ = _seqrec.__version__

# One class per registered model type (GRU4Rec, SASRec, Pop, SR, VSKNN, ...).
globals().update(model_classes())

__all__ = [
    "Error",
    "InputError",
    "IoError",
    "NotFoundError",
    "IsADirectoryError",
    "Events",
    "Split",
    "read_events",
    "prepare",
    "load_split",
    "Model",
    "load",
    "evaluate",
    "Evaluation",
    "compare",
    "tune",
    "TuneResult",
    "Recommender",
    "binary_path",
    *model_classes(),
]


def binary_path():
    """The path of the ``seqrec`` program shipped with this package (used by
    :func:`compare`, which trains in child processes; a saved model is served with
    ``seqrec serve``)."""
    return _os.path.join(_os.path.dirname(__file__), "bin", "seqrec")
