"""Evaluation with ``seqrec eval``'s protocols and numbers, and ``seqrec compare``."""

import os

from . import _seqrec
from ._data import Events, Split
from ._seqrec import InputError
from ._util import options, path_text, threads as _threads


class Evaluation(dict):
    """The result of :func:`evaluate`: the dict ``seqrec eval --json`` writes ("metrics",
    "protocol", "n_predictions", ...), with :attr:`metrics` and :meth:`to_dataframe`."""

    @property
    def metrics(self):
        """{"recall@20": ..., "mrr@20": ..., ...}"""
        return self["metrics"]

    def to_dataframe(self):
        """One row, one column per metric (with the model type as the index)."""
        import pandas as pd

        return pd.DataFrame([self["metrics"]], index=[self.get("model", {}).get("type", "model")])

    table_text = ""

    def table(self):
        """The table ``seqrec eval`` prints."""
        return self.table_text


def evaluate(model, test, cutoffs=None, ties=None, exclude_seen=None, sampled=None,
             protocol=None, seed=None, batch_size=None, threads=0, progress=False,
             validation=False, **read_options):
    """Evaluate ``model`` on ``test`` as ``seqrec eval`` does, with the same numbers.

    ``test``: :class:`Events` (e.g. ``split.test``; items the model does not know are
    dropped and counted in "n_skipped_unknown"), a :class:`Split` (its test part, or its
    valid part with ``validation=True``), or a path (a split folder or a log file, read
    like ``seqrec eval``, with ``read_options``). Options as eval's flags: ``cutoffs``
    (list of K, default 1,5,10,20), ``ties`` ("conservative", "standard", "median"),
    ``exclude_seen`` ("auto", "none", "except-target", "all"), ``sampled`` (negatives;
    sequential protocol), ``protocol`` ("auto" = the split's), ``seed`` (of the sampled
    negatives), ``batch_size``. Returns an :class:`Evaluation` (a dict).
    """
    from ._models import Model

    if not isinstance(model, Model):
        raise InputError(f"evaluate: expected a seqrec model, got {type(model).__name__}")
    opts = options({"cutoffs": cutoffs, "ties": ties, "exclude_seen": exclude_seen,
                    "sampled": sampled, "protocol": protocol, "eval_seed": seed,
                    "eval_batch": batch_size})
    if isinstance(test, Split):
        test = test.valid if validation else test.test
    if isinstance(test, Events):
        if read_options:
            import difflib

            name = next(iter(read_options))
            near = difflib.get_close_matches(name, ["cutoffs", "ties", "exclude_seen", "sampled",
                                                    "protocol", "seed", "batch_size", "threads",
                                                    "progress", "validation"], n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise InputError(f"'{name}' is not an option of evaluate{hint}; the reader's options "
                             "apply only when test is a path")
        r = _seqrec.evaluate(model._core, test._core, "", False, opts, [], _threads(threads),
                             bool(progress))
    else:
        p = path_text(test, "evaluate")
        r = _seqrec.evaluate(model._core, None, p, bool(validation), opts,
                             options(read_options), _threads(threads), bool(progress))
    result = Evaluation(r[0])
    result.table_text = r[1]
    return result


class CompareResult(dict):
    """results.json of a comparison (see docs/compare.md), with :meth:`to_dataframe`."""

    def to_dataframe(self):
        """One row per model and metric mean over the seeds (as far as results.json has them)."""
        import pandas as pd

        rows = []
        for m in self.get("models", []):
            row = {"label": m.get("label"), "type": m.get("type")}
            for key, val in (m.get("metrics") or m.get("summary") or {}).items():
                if isinstance(val, dict) and "mean" in val:
                    row[key] = val["mean"]
                elif isinstance(val, (int, float)):
                    row[key] = val
            rows.append(row)
        return pd.DataFrame(rows).set_index("label") if rows else pd.DataFrame()


def compare(data, out, models=None, presets=None, sets=None, configs=None, epochs=0, seeds=3,
            curves=True, metric="", protocol="auto", test_file=None, work_dir=None, threads=0,
            quiet=True, force=False, read=None, prepare=None, eval=None, patience=3,
            valid_metric="", tune=0, tune_time=0.0, tuning=None):
    """Run ``seqrec compare``: prepare ``data`` once, train each model over ``seeds`` seeds
    (in child processes of the bundled ``seqrec`` program), evaluate them all with one
    protocol and write the report (report.md, report.html, results.json) into ``out``.

    ``data``: a log file, a split folder, or a :class:`Split` (saved first into the folder
    ``out`` + "-split", or reused from there when it holds the same split). ``models``: ["gru4rec", "sasrec", ...] or "LABEL=TYPE" entries; ``presets``:
    {"LABEL": "PRESET"}; ``sets``: {"LABEL.PARAM": value}; ``configs``: {"LABEL": file};
    ``read``/``prepare``/``eval``: dicts of those option tables. ``patience`` and
    ``valid_metric``: early stopping of every model that trains in epochs (0 = the whole
    epoch budget); ``tune``/``tune_time``: tune every model first with that many trials /
    seconds of :func:`tune` (``tuning``: its options). Returns results.json as a
    :class:`CompareResult`. See docs/compare.md for every option.
    """
    from . import binary_path

    out = path_text(out, "compare")
    if isinstance(data, Split):
        # The report folder must be new or a compare's, so the split goes next to it.
        folder = os.path.normpath(out) + "-split"
        if os.path.isdir(folder):
            from ._data import load_split

            saved = load_split(folder)
            same = all(getattr(saved, p).n_events == getattr(data, p).n_events
                       and list(getattr(saved, p).item_ids) == list(getattr(data, p).item_ids)
                       for p in ("train", "test", "train_tr", "valid"))
            if not same:
                raise InputError(f"compare: {folder} holds another split; remove it or give "
                                 "the split folder as data")
        else:
            data.save(folder)
        data = folder
    data = path_text(data, "compare")

    def pairs(d, what):
        if d is None:
            return []
        if isinstance(d, dict):
            return [f"{k}={v if not isinstance(v, (list, tuple)) else ','.join(map(str, v))}"
                    for k, v in d.items()]
        raise InputError(f"compare: {what} must be a dict")

    r = _seqrec.compare(
        data, out, "" if test_file is None else path_text(test_file, "test_file"),
        "" if work_dir is None else path_text(work_dir, "work_dir"), protocol,
        [str(m) for m in (models or [])], pairs(presets, "presets"),
        pairs(sets, "sets"), pairs(configs, "configs"), int(epochs), int(seeds), bool(curves),
        metric, options(read or {}), options(prepare or {}), options(eval or {}),
        binary_path(), _threads(threads), bool(quiet), bool(force),
        options({"patience": patience, "valid_metric": valid_metric}), int(tune),
        float(tune_time), options(tuning or {}))
    return CompareResult(r)


class TuneResult(dict):
    """What :func:`tune` returns: a dict with ``best_params`` (the searched parameters of
    the best trial), ``best_config`` (every parameter, as written to ``best.json``),
    ``best_config_path``, ``best_value``, ``best_trial``, ``metric`` and ``trials`` (one
    dict per trial, the lines of ``trials.jsonl``)."""

    @property
    def best_params(self):
        return self["best_params"]

    @property
    def trials(self):
        return self["trials"]

    def to_dataframe(self):
        """The trials as a pandas DataFrame: one row per trial, a column per parameter."""
        import pandas as pd

        rows = []
        for t in self["trials"]:
            row = {k: t[k] for k in ("number", "state", "value", "best_epoch", "epochs", "seconds")}
            row.update(t["params"])
            rows.append(row)
        return pd.DataFrame(rows)


def tune(data, model, out, trials=20, time_budget=0.0, space=None, seed=1, epochs=0,
         preset=None, config=None, patience=3, valid_metric="", threads=0, quiet=True,
         read=None, **tuning):
    """Run ``seqrec tune``: search the parameters of ``model`` on the validation pair of
    ``data`` (a split folder, or a :class:`Split`, saved first into ``out`` + "-split"),
    with the TPE sampler and pruning of hopeless trials; the trials log, ``best.json`` and
    the report go to ``out``, and the same call again continues a stopped tune.

    ``space``: a space file (default: the model's, tune/spaces/MODEL.json); ``tuning``:
    further options of the tune table (``n_startup``, ``gamma``, ``candidates``,
    ``prune``, ``eta``, ``min_epochs``, ``rung_trials``). Ctrl-C stops it cleanly (the
    finished trials stay in the log). Returns a :class:`TuneResult`. See docs/tune.md.
    """
    out = path_text(out, "tune")
    if isinstance(data, Split):
        folder = os.path.normpath(out) + "-split"
        if not os.path.isdir(folder):
            data.save(folder)
        data = folder
    data = path_text(data, "tune")
    table = {"trials": trials, "time_budget": time_budget, "seed": seed, "epochs": epochs}
    table.update(tuning)
    r = _seqrec.tune(
        data, str(model), out, "" if space is None else path_text(space, "space"),
        preset or "", "" if config is None else path_text(config, "config"), options(table),
        options({"patience": patience, "valid_metric": valid_metric}), options(read or {}),
        _threads(threads), bool(quiet))
    return TuneResult(r)
