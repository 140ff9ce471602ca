#!/usr/bin/env bash
# SASRec accuracy, leave-one-out, through the seqrec CLI: prepare the data once, then per
# seed train, evaluate with full ranking and with the papers' 100 sampled negatives (seen
# items excluded), and print one JSON line per seed followed by the mean and standard
# deviation over the seeds. The rows are those of docs/sasrec.md § Accuracy.
#
# Usage: bench/sasrec_accuracy.sh PRESET LOSS [SEEDS] [-- EXTRA TRAIN FLAGS...]
#   MODE=es (default): train on train_tr, validate NDCG@10 on the second-to-last items
#     every EVAL_EVERY epochs (1), stop after PATIENCE validations without improvement
#     (10), at most EPOCHS epochs (100), keep the best weights (Klenitskiy & Vasilev).
#   MODE=fixed: train on train_full for EPOCHS epochs (200) and keep the last (pmixer).
# Env: DATA (default ../shared/data/ml-1m/ml-1m.txt), THREADS (1), BUILD (build),
#      OUT (append the JSON lines to this file as well).
# Examples (one ML-1M run is 10-30 min on one core):
#   bench/sasrec_accuracy.sh ml1m_plus ce "1 2 3"
#   bench/sasrec_accuracy.sh ml1m_plus ce "1 2 3" -- --num-blocks 3 --num-heads 2
#   MODE=fixed bench/sasrec_accuracy.sh ml1m bce "1 2 3"
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${1:?usage: bench/sasrec_accuracy.sh PRESET LOSS [SEEDS] [-- FLAGS...]}
LOSS=${2:?usage: bench/sasrec_accuracy.sh PRESET LOSS [SEEDS] [-- FLAGS...]}
if [ -z "${3:-}" ] || [ "$3" = "--" ]; then
  SEEDS="1 2 3"
  shift 2
else
  SEEDS=$3
  shift 3
fi
if [ "${1:-}" = "--" ]; then shift; fi
EXTRA=("$@")
MODE=${MODE:-es}
DATA=${DATA:-../shared/data/ml-1m/ml-1m.txt}
THREADS=${THREADS:-1}
BUILD=${BUILD:-build}
if [ ! -f "$DATA" ]; then
  echo "sasrec_accuracy: $DATA not found (set DATA=...); nothing measured" >&2
  exit 2
fi
case $MODE in
  es) EPOCHS=${EPOCHS:-100} ;;
  fixed) EPOCHS=${EPOCHS:-200} ;;
  *) echo "sasrec_accuracy: MODE must be es or fixed, not '$MODE'" >&2; exit 2 ;;
esac
cmake --build "$BUILD" --target seqrec >/dev/null
SEQ=$BUILD/seqrec
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$SEQ" -q prepare "$DATA" --protocol sequential -o "$W/data" >/dev/null
NAME=$(basename "$DATA" .txt)
RUN=()
if [ "$MODE" = es ]; then
  RUN=(--validation --monitor --valid-metric ndcg@10 --eval-every "${EVAL_EVERY:-1}"
    --patience "${PATIENCE:-10}")
fi
for s in $SEEDS; do
  "$SEQ" --threads "$THREADS" train "$W/data" -m sasrec --preset "$PRESET" --loss "$LOSS" \
    --epochs "$EPOCHS" --seed "$s" "${RUN[@]}" "${EXTRA[@]}" -o "$W/m$s.seqrec" \
    >"$W/train$s.log" 2>&1 || { tail -5 "$W/train$s.log" >&2; exit 1; }
  for e in full samp; do
    S=()
    [ $e = samp ] && S=(--sampled 100)
    "$SEQ" -q --threads "$THREADS" eval -m "$W/m$s.seqrec" "$W/data" --cutoffs 10 "${S[@]}" \
      --json "$W/$e$s.json" >"$W/eval.log" 2>&1 || { cat "$W/eval.log" >&2; exit 1; }
  done
  python3 bench/sasrec_accuracy_row.py "$W/train$s.log" "$W/full$s.json" "$W/samp$s.json" \
    "$NAME" "$PRESET" "$LOSS" "$s" "$MODE" "--epochs $EPOCHS ${RUN[*]} ${EXTRA[*]}"
done | tee "$W/rows.jsonl"
python3 - "$W/rows.jsonl" <<'PY' | tee -a "$W/rows.jsonl"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ("full_ndcg@10", "full_hr@10", "sampled100_ndcg@10", "sampled100_hr@10", "train_seconds")
out = {k: rows[0][k] for k in ("dataset", "preset", "loss", "mode", "train_flags")}
out["seeds"] = [r["seed"] for r in rows]
out["mean"] = {k: statistics.mean(r[k] for r in rows) for k in keys}
out["std"] = {k: statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0 for k in keys}
print(json.dumps(out))
PY
[ -n "${OUT:-}" ] && cat "$W/rows.jsonl" >>"$OUT"
exit 0
