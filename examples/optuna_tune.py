"""Tune GRU4Rec with Optuna driving seqrec, for users who prefer Optuna's samplers, storage
and dashboards to `seqrec tune` (which has its own TPE sampler, pruning and resumable log;
docs/tune.md). The search space is read from the same file `seqrec tune` uses
(tune/spaces/gru4rec.json), and each trial reports its validation curve to Optuna, whose
pruner may stop it.

    /usr/bin/python3 examples/optuna_tune.py SPLIT_DIR [--trials 20] [--epochs 10]

SPLIT_DIR is a folder from `seqrec prepare` (it needs the validation pair). Without an
argument, a small split is generated first. Needs Debian's python3-optuna
(scripts/setup installs it) and the seqrec package (PYTHONPATH=build/python for a build
tree).
"""

import argparse
import json
import math
import os
import subprocess
import tempfile

import optuna

import seqrec

HERE = os.path.dirname(os.path.abspath(__file__))
SPACE = os.path.join(HERE, "..", "tune", "spaces", "gru4rec.json")


def suggest(trial, entry):
    """One value of a `seqrec tune` space entry, from Optuna's trial."""
    name, kind = entry["name"], entry["type"]
    if kind == "categorical":
        values = entry["values"]
        # Optuna's categorical values must be None, bool, int, float or str.
        index = trial.suggest_categorical(name, list(range(len(values))))
        return values[index]
    low, high = entry["low"], entry["high"]
    if kind == "int":
        return trial.suggest_int(name, low, high, step=int(entry.get("step", 1)),
                                 log=bool(entry.get("log", False)))
    if "step" in entry:
        return trial.suggest_float(name, low, high, step=entry["step"])
    return trial.suggest_float(name, low, high, log=bool(entry.get("log", False)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("split", nargs="?", help="a split folder from `seqrec prepare`")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--metric", default="recall@20")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    split_dir = args.split
    if split_dir is None:
        tmp = tempfile.mkdtemp(prefix="seqrec_optuna_")
        log = os.path.join(tmp, "log.tsv")
        subprocess.run([seqrec.binary_path(), "-q", "generate", "--events", "20000", "--items",
                        "300", "-o", log], check=True)
        split_dir = os.path.join(tmp, "split")
        subprocess.run([seqrec.binary_path(), "-q", "prepare", log, "-o", split_dir], check=True)
    split = seqrec.load_split(split_dir)
    with open(SPACE) as f:
        space = json.load(f)

    def objective(trial):
        params = {e["name"]: suggest(trial, e) for e in space["params"]}
        params.update(space.get("fixed", {}))
        model = seqrec.GRU4Rec(epochs=args.epochs, **params)
        best = {"value": -math.inf, "epoch": 0}

        def on_epoch(epoch, metrics):
            value = metrics[args.metric]
            if value > best["value"]:
                best.update(value=value, epoch=epoch)
            trial.report(value, epoch)
            return not trial.should_prune()  # False ends fit()

        model.fit(split.train_tr, valid=split.valid, valid_metric=args.metric, patience=3,
                  seed=args.seed, threads=args.threads, progress=False, callback=on_epoch)
        trial.set_user_attr("best_epoch", best["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned()
        return best["value"]

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=10),
        pruner=optuna.pruners.SuccessiveHalvingPruner(reduction_factor=3))
    study.optimize(objective, n_trials=args.trials)

    best = study.best_trial
    params = {e["name"]: (e["values"][best.params[e["name"]]] if e["type"] == "categorical"
                          else best.params[e["name"]]) for e in space["params"]}
    # Optuna's stepped floats carry rounding noise (0.045000000000000005).
    params = {k: round(v, 10) if isinstance(v, float) else v for k, v in params.items()}
    params["epochs"] = best.user_attrs["best_epoch"]
    print(f"best validation {args.metric}: {best.value:.4f} (trial {best.number})")
    print(json.dumps(params, indent=2))
    # A parameter file that `seqrec train --config` and `seqrec compare --config` accept.
    with open("optuna_best.json", "w") as f:
        json.dump(params, f, indent=2)
    print("written to optuna_best.json")


if __name__ == "__main__":
    main()
