#!/usr/bin/env python3
"""One JSON line for one SASRec accuracy run, from the files seqrec wrote.

usage: sasrec_accuracy_row.py TRAIN_LOG FULL_JSON SAMPLED_JSON DATASET PRESET LOSS SEED
                              MODE [TRAIN_FLAGS]

TRAIN_LOG is `seqrec train`'s stderr (it names the training time, the peak RSS and, for an
early-stopped run, every validation round); FULL_JSON and SAMPLED_JSON are
`seqrec eval --json` of the full-ranking and the 100-negative sampled protocol. Used by
bench/sasrec_accuracy.sh, and to turn runs made by hand with the same commands into the
same rows.
"""
import json
import re
import sys


def metrics(path):
    with open(path) as f:
        d = json.load(f)
    return d.get("metrics", d)


def main():
    if len(sys.argv) < 9:
        sys.exit(__doc__)
    log, full, samp, dataset, preset, loss, seed, mode = sys.argv[1:9]
    flags = sys.argv[9] if len(sys.argv) > 9 else ""
    text = open(log).read()
    trained = re.search(r"trained sasrec in ([0-9.]+) s \(peak RSS ([0-9.]+) MiB\)", text)
    if not trained:
        sys.exit(f"{log}: no 'trained sasrec in ... s (peak RSS ... MiB)' line; did training fail?")
    # The evaluated weights: those the trainer restored (the best validation round), or,
    # when it restored none, the last round's (the best was the last epoch, or no --monitor).
    restored = re.search(r"restored the best weights \(epoch (\d+), validation ([0-9.]+)\)", text)
    rounds = re.findall(r"epoch (\d+): validation ndcg@10 = ([0-9.]+)", text)
    best = restored.groups() if restored else (rounds[-1] if rounds else None)
    best = (int(best[0]), float(best[1])) if best else None
    epochs = re.findall(r"sasrec: epoch (\d+)/\d+ loss", text)
    f, s = metrics(full), metrics(samp)
    row = {
        "dataset": dataset, "preset": preset, "loss": loss, "seed": int(seed), "mode": mode,
        "train_flags": flags,
        "epochs_run": int(epochs[-1]) if epochs else None,
        "best_epoch": best[0] if best else None,
        "valid_ndcg@10": best[1] if best else None,
        "train_seconds": float(trained.group(1)), "peak_rss_mib": float(trained.group(2)),
        "full_ndcg@10": f["ndcg@10"], "full_hr@10": f["hr@10"],
        "sampled100_ndcg@10": s["ndcg@10"], "sampled100_hr@10": s["hr@10"],
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
