#!/usr/bin/env bash
# The evidence of issue 20 (docs/tune.md, docs/results.md), as JSON lines in OUT_JSONL
# (default bench/results/tune.jsonl):
#  1. GRU4Rec tuned from the official space on rsc15-100k in TRIALS (<= 40) trials, its
#     best.json trained on train_full and tested (session protocol, conservative ties,
#     full ranking), next to the official preset's Recall@20 0.6824 / MRR@20 0.3597.
#  2. Pruning: the same tune (same seed and trials) with and without pruning: CPU seconds
#     of each (user + sys of the process) and the best validation score of each.
#  3. Rankings untuned vs tuned with the same budget on two data sets (rsc15-100k, session;
#     ml-100k, sequential): `seqrec compare` with and without `--tune TUNE_TRIALS`.
#  4. SASRec on ML-1M tuned in TRIALS trials vs the ml1m_plus preset (not in the default
#     PARTS: hours of CPU; PARTS="4" runs it).
# Usage: bench/tune.sh [OUT_JSONL]
# Env: SMALL=1 runs a small version (6 trials of 2 epochs, 2-trial compare tuning, one
#      seed) that says little about accuracy but exercises everything; TRIALS, EPOCHS,
#      TUNE_TRIALS, SEEDS, THREADS (default 2) override; PARTS (default "1 2 3") picks parts.
set -euo pipefail
cd "$(dirname "$0")/.."
D=../shared/data
[ -d "$D/rsc15-100k" ] || { echo "bench: ../shared/data/rsc15-100k absent, nothing to do" >&2; exit 0; }
B=./build/seqrec
[ -x "$B" ] || bash scripts/build >/dev/null
OUT=${1:-bench/results/tune.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
if [ "${SMALL:-0}" = 1 ]; then
  TRIALS=${TRIALS:-6} EPOCHS=${EPOCHS:-2} TUNE_TRIALS=${TUNE_TRIALS:-2} SEEDS=${SEEDS:-1}
else
  TRIALS=${TRIALS:-40} EPOCHS=${EPOCHS:-10} TUNE_TRIALS=${TUNE_TRIALS:-20} SEEDS=${SEEDS:-3}
fi
THREADS=${THREADS:-2}
PARTS=${PARTS:-"1 2 3"}
W=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$W"' EXIT
CPU=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')

# rsc15-100k comes as GRU4Rec's split files; compare turns them into a split folder (the
# popularity model trains in a second).
$B -q --threads "$THREADS" compare "$D/rsc15-100k" --models pop --seeds 1 --no-curves \
  --patience 0 -o "$W/rsc15-conv" >/dev/null
RSC=$W/rsc15-conv/work/split

tune_run() {  # name out extra-args...
  local name=$1 out=$2; shift 2
  /usr/bin/time -f "%e %U %S %M" -o "$W/$name.time" $B -q --threads "$THREADS" tune "$RSC" \
    -m gru4rec --trials "$TRIALS" --epochs "$EPOCHS" --seed 1 -o "$out" "$@" >/dev/null
}

for part in $PARTS; do
case $part in
1)
  tune_run tuned "$W/tune" --prune true
  $B -q --threads "$THREADS" train "$RSC" -m gru4rec --config "$W/tune/best.json" --seed 1 \
    -o "$W/best.seqrec" >/dev/null
  $B -q --threads "$THREADS" eval -m "$W/best.seqrec" "$RSC" --cutoffs 20 --json "$W/best.json" >/dev/null
  python3 - "$W/best.json" "$W/tune/tune_result.json" "$W/tuned.time" "$TRIALS" "$EPOCHS" "$CPU" >> "$OUT" <<'PY'
import json, sys
e = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
wall, user, sys_, rss = open(sys.argv[3]).read().split()
print(json.dumps({"part": "gru4rec_rsc15_tuned_vs_official", "data": "rsc15-100k",
                  "trials": int(sys.argv[4]), "epoch_budget": int(sys.argv[5]),
                  "test_recall@20": e["recall@20"], "test_mrr@20": e["mrr@20"],
                  "official_recall@20": 0.6824, "official_mrr@20": 0.3597,
                  "reaches_official": e["recall@20"] >= 0.6824 and e["mrr@20"] >= 0.3597,
                  "best_validation": t["best"]["value"], "best_params": t["best"]["params"],
                  "best_epoch": t["best"]["best_epoch"], "pruned": t["pruned"],
                  "tune_wall_s": float(wall), "tune_cpu_s": float(user) + float(sys_),
                  "cpu": sys.argv[6]}))
PY
  ;;
2)
  [ -d "$W/tune" ] || tune_run tuned "$W/tune" --prune true
  tune_run unpruned "$W/tune-noprune" --prune false
  python3 - "$W/tune/tune_result.json" "$W/tuned.time" "$W/tune-noprune/tune_result.json" \
    "$W/unpruned.time" "$CPU" >> "$OUT" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); ta = open(sys.argv[2]).read().split()
b = json.load(open(sys.argv[3])); tb = open(sys.argv[4]).read().split()
cpu_a = float(ta[1]) + float(ta[2]); cpu_b = float(tb[1]) + float(tb[2])
print(json.dumps({"part": "pruning_cpu", "data": "rsc15-100k", "trials": a["trials"],
                  "pruned_trials": a["pruned"],
                  "cpu_s_with_pruning": cpu_a, "cpu_s_without_pruning": cpu_b,
                  "cpu_saving_factor": cpu_b / cpu_a if cpu_a > 0 else None,
                  "best_validation_with_pruning": a["best"]["value"],
                  "best_validation_without_pruning": b["best"]["value"],
                  "cpu": sys.argv[5]}))
PY
  ;;
3)
  $B -q prepare "$D/ml-100k/u.data" --protocol sequential -o "$W/ml100k" >/dev/null
  for data in rsc15 ml100k; do
    src=$RSC; [ $data = ml100k ] && src=$W/ml100k
    for mode in untuned tuned; do
      extra=(); [ $mode = tuned ] && extra=(--tune "$TUNE_TRIALS")
      /usr/bin/time -f "%e %U %S %M" -o "$W/cmp.time" $B -q --threads "$THREADS" compare "$src" \
        --seeds "$SEEDS" --epochs "$EPOCHS" "${extra[@]}" -o "$W/cmp-$data-$mode" >/dev/null
      python3 - "$W/cmp-$data-$mode/results.json" "$data" "$mode" "$W/cmp.time" "$CPU" >> "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall, user, sys_, rss = open(sys.argv[4]).read().split()
head = r["headline"]["metric"]
rank = sorted(((m["metrics"][head]["mean"], m["label"]) for m in r["models"]), reverse=True)
print(json.dumps({"part": "ranking", "data": sys.argv[2], "mode": sys.argv[3], "metric": head,
                  "ranking": [l for _, l in rank], "values": {l: v for v, l in rank},
                  "convergence": {m["label"]: m.get("convergence") for m in r["models"]},
                  "tuned_params": {m["label"]: (m.get("tuning") or {}).get("params") for m in r["models"]},
                  "wall_s": float(wall), "cpu_s": float(user) + float(sys_), "cpu": sys.argv[5]}))
PY
    done
  done
  ;;
4)
  # SASRec on ML-1M: tuned from its default space vs the ml1m_plus preset (sequential,
  # leave-one-out, full ranking, NDCG@10), both trained on train_full and tested.
  [ -d "$D/ml-1m" ] || { echo "bench: ../shared/data/ml-1m absent, part 4 skipped" >&2; continue; }
  $B -q prepare "$D/ml-1m/ml-1m.txt" --protocol sequential -o "$W/ml1m" >/dev/null
  /usr/bin/time -f "%e %U %S %M" -o "$W/sas.time" $B -q --threads "$THREADS" tune "$W/ml1m" \
    -m sasrec --trials "$TRIALS" --epochs "${SAS_EPOCHS:-200}" --seed 1 -o "$W/sas-tune" >/dev/null
  $B -q --threads "$THREADS" train "$W/ml1m" -m sasrec --config "$W/sas-tune/best.json" \
    -o "$W/sas-best.seqrec" >/dev/null
  $B -q --threads "$THREADS" eval -m "$W/sas-best.seqrec" "$W/ml1m" --json "$W/sas-best.json" >/dev/null
  $B -q --threads "$THREADS" train "$W/ml1m" -m sasrec --preset ml1m_plus -o "$W/sas-plus.seqrec" >/dev/null
  $B -q --threads "$THREADS" eval -m "$W/sas-plus.seqrec" "$W/ml1m" --json "$W/sas-plus.json" >/dev/null
  python3 - "$W/sas-best.json" "$W/sas-plus.json" "$W/sas-tune/tune_result.json" "$W/sas.time" \
    "$CPU" >> "$OUT" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2])); t = json.load(open(sys.argv[3]))
wall, user, sys_, rss = open(sys.argv[4]).read().split()
print(json.dumps({"part": "sasrec_ml1m_tuned_vs_ml1m_plus", "data": "ml-1m", "trials": t["trials"],
                  "tuned_ndcg@10": a["ndcg@10"], "ml1m_plus_ndcg@10": b["ndcg@10"],
                  "reaches_preset": a["ndcg@10"] >= b["ndcg@10"], "best_params": t["best"]["params"],
                  "tune_wall_s": float(wall), "tune_cpu_s": float(user) + float(sys_),
                  "cpu": sys.argv[5]}))
PY
  ;;
esac
done
cat "$OUT"
