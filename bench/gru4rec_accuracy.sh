#!/usr/bin/env bash
# GRU4Rec accuracy on rsc15-100k (train_full -> test, session protocol, conservative ties,
# full ranking) with a preset over several seeds, through the seqrec CLI. Prints JSON lines,
# one per seed, then the mean.
# Usage: bench/gru4rec_accuracy.sh [PRESET] [SEEDS] [THREADS]   (defaults: rsc15 "1 2 3" 2)
# Env: BUILD (default build), DATA (default ../shared/data/rsc15-100k), TRAIN/TEST (files).
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${1:-rsc15}
SEEDS=${2:-"1 2 3"}
THREADS=${3:-2}
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data/rsc15-100k}
TRAIN=${TRAIN:-$DATA/yoochoose-clicks-100k_train_full.txt}
TEST=${TEST:-$DATA/yoochoose-clicks-100k_test.txt}
ninja -C "$BUILD" seqrec >/dev/null
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for s in $SEEDS; do
  t0=$(date +%s.%N)
  "$BUILD/seqrec" --threads "$THREADS" -q train "$TRAIN" -m gru4rec --preset "$PRESET" --seed "$s" \
    -o "$W/m$s.seqrec" >/dev/null
  t1=$(date +%s.%N)
  "$BUILD/seqrec" --threads "$THREADS" -q eval -m "$W/m$s.seqrec" "$TEST" --json "$W/e$s.json" >/dev/null
  python3 - "$W/e$s.json" "$PRESET" "$s" "$t0" "$t1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d.get("metrics", d)
if "results" in d: m = d["results"][0]["metrics"] if isinstance(d["results"], list) else d["results"]["metrics"]
print(json.dumps({"preset": sys.argv[2], "seed": int(sys.argv[3]),
                  "train_seconds": round(float(sys.argv[5]) - float(sys.argv[4]), 2),
                  "recall@20": m.get("recall@20"), "mrr@20": m.get("mrr@20"),
                  "recall@10": m.get("recall@10"), "mrr@10": m.get("mrr@10")}))
PY
done | tee "$W/all.jsonl"
python3 - "$W/all.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("recall@20", "mrr@20", "recall@10", "mrr@10", "train_seconds")}
print(json.dumps({"preset": rows[0]["preset"], "seeds": [r["seed"] for r in rows], "mean": mean}))
PY
