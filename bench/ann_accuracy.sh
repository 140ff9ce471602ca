#!/usr/bin/env bash
# What --retrieval ann costs in accuracy on the real data (docs/results.md#approximate-retrieval-ann):
# trains quick models (reduced epochs: the point is the ANN list against the exact list of the
# same model, not the model's best accuracy) and runs `seqrec eval --retrieval ann` with the
# serving defaults (M 16, ef_construction 200, ef_search 128, candidates 4) and
# --ann-min-items 1 (these catalogues are below the serving minimum of 10,000). Writes
# bench/results/ann_accuracy.jsonl, one line per data set.
# Usage: bench/ann_accuracy.sh [THREADS]   Env: BUILD (build), EXTRA (more eval flags),
#        MODELS (a folder that keeps the trained models: reused when present)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
BUILD=${BUILD:-build}
S="$BUILD/seqrec --threads $THREADS -q"
D=../shared/data
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=${MODELS:-$W}
mkdir -p "$M"
ANN="--retrieval ann --ann-min-items 1 ${EXTRA:-}"
out=bench/results/ann_accuracy.jsonl
: > "$out.tmp"
row() {  # row NAME MODEL_DESCRIPTION EVAL_JSON
  python3 - "$1" "$2" "$3" >> "$out.tmp" <<'PY'
import json, sys
j = json.load(open(sys.argv[3]))
r = j["retrieval"]
print(json.dumps({"data": sys.argv[1], "model": sys.argv[2], "n_items": j["model"]["n_items"],
                  "predictions": r["predictions"], "list_recall@20": r["list_recall@20"],
                  "exact": r["exact"], "ann": r["ann"], "options": r["options"],
                  "index_build_seconds": r["index_build_seconds"], "index_bytes": r["index_bytes"],
                  "exact_seconds": r["exact_seconds"], "ann_seconds": r["ann_seconds"]}))
PY
  tail -1 "$out.tmp" >&2
}
# rsc15-100k: GRU4Rec, the rsc15 preset (its own epochs).
[ -f "$M/rsc.seqrec" ] ||
  $S train $D/rsc15-100k/yoochoose-clicks-100k_train_full.txt -m gru4rec --preset rsc15 --seed 1 -o "$M/rsc.seqrec"
$S eval -m "$M/rsc.seqrec" $D/rsc15-100k/yoochoose-clicks-100k_test.txt $ANN --json "$W/rsc.json" >/dev/null
row rsc15-100k "gru4rec --preset rsc15" "$W/rsc.json"
# yoochoose1_64: GRU4Rec, the rsc15 preset, 3 epochs instead of 10.
[ -f "$M/yc.seqrec" ] ||
  $S train $D/yoochoose1_64/train.tsv -m gru4rec --preset rsc15 --epochs 3 --seed 1 -o "$M/yc.seqrec"
$S eval -m "$M/yc.seqrec" $D/yoochoose1_64/test.tsv $ANN --json "$W/yc.json" >/dev/null
row yoochoose1_64 "gru4rec --preset rsc15 --epochs 3" "$W/yc.json"
# ml-1m: SASRec, the ml1m preset with full cross-entropy (ml1m_plus), 5 epochs instead of
# early stopping; sequential protocol, seen items excluded.
[ -d "$M/ml1m" ] || $S prepare $D/ml-1m/ml-1m.txt --protocol sequential -o "$M/ml1m" >/dev/null
[ -f "$M/ml.seqrec" ] ||
  $S train "$M/ml1m" -m sasrec --preset ml1m_plus --epochs 5 --seed 1 -o "$M/ml.seqrec"
$S eval -m "$M/ml.seqrec" "$M/ml1m" --cutoffs 10,20 $ANN --json "$W/ml.json" >/dev/null
row ml-1m "sasrec --preset ml1m_plus --epochs 5" "$W/ml.json"
mv "$out.tmp" "$out"
