#!/usr/bin/env bash
# The cold-start protocol on MovieLens-1M (issue 16): leave-one-out on the raw ids with 20%
# of the items held out of training (`prepare --cold-items 0.2`), full ranking with the
# user's seen items excluded (the sequential default), and the evaluator's breakdown by
# warm/cold target and by the target's training frequency. Models: pop, SASRec (full CE,
# the ml1m_plus preset) ID-only and feature-aware (--item-features movies.dat, same width
# and length; with the id embedding and without it, --id-embedding false), and DSSM with movies.dat (genres, title words, year) as item features.
# Before them, the epoch time of feature-aware vs ID-only SASRec: TIMING_PAIRS one-epoch
# fits of each, alternating A/B/A/B, medians and their ratio. Writes one JSON per model
# under bench/results/ and prints a markdown summary (the rows of docs/results.md § Cold
# start).
#
# Usage: bench/cold_start.sh
# Env: DATA (../shared/data/ml-1m/ml-1m_rawids.txt), FEATURES (../shared/data/ml-1m/movies.dat),
#      COLD (0.2), SEED (1: the cold items and the training seed), SASREC_EPOCHS (200),
#      DSSM_EPOCHS (20), TIMING_PAIRS (3), TEXT_BUCKETS (32768: hash space of the titles),
#      THREADS (0 = all cores), BUILD (build),
#      RESULTS (bench/results/cold_start_ml1m).
# The defaults are the full runs; docs/results.md says which epochs its figures used.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/ml-1m/ml-1m_rawids.txt}
FEATURES=${FEATURES:-../shared/data/ml-1m/movies.dat}
COLD=${COLD:-0.2}
SEED=${SEED:-1}
SASREC_EPOCHS=${SASREC_EPOCHS:-200}
DSSM_EPOCHS=${DSSM_EPOCHS:-20}
TIMING_PAIRS=${TIMING_PAIRS:-3}
TEXT_BUCKETS=${TEXT_BUCKETS:-32768}
THREADS=${THREADS:-0}
BUILD=${BUILD:-build}
RESULTS=${RESULTS:-bench/results/cold_start_ml1m}
for f in "$DATA" "$FEATURES"; do
  if [ ! -f "$f" ]; then
    echo "cold_start: $f not found (set DATA=/FEATURES=); nothing measured" >&2
    exit 2
  fi
done
cmake --build "$BUILD" --target seqrec >/dev/null
SEQ=$BUILD/seqrec
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$(dirname "$RESULTS")"
"$SEQ" -q prepare "$DATA" --protocol sequential --cold-items "$COLD" --seed "$SEED" \
  --cache-dir none -o "$W/split" >"$W/prepare.log"
cp "$W/split/split.json" "${RESULTS}_split.json"

train() {  # NAME, then the train flags
  local name=$1
  shift
  "$SEQ" -q --threads "$THREADS" train "$W/split" --seed "$SEED" -o "$W/$name.seqrec" "$@" \
    >"$W/$name.train.log" 2>&1 || { tail -5 "$W/$name.train.log" >&2; exit 1; }
  "$SEQ" -q --threads "$THREADS" eval -m "$W/$name.seqrec" "$W/split" --cutoffs 10,20 \
    --json "${RESULTS}_$name.json" --force >"$W/$name.eval.txt"
  cat "$W/$name.eval.txt" >&2
}
# Epoch time, ID-only vs feature-aware SASRec (ml1m_plus: d 64, maxlen 200, full CE):
# one-epoch fits alternating A/B/A/B; the fit time of one epoch includes reading the data
# (and the feature file), under a second here.
FEAT=(--item-features "$FEATURES" --text-buckets "$TEXT_BUCKETS")
fit_seconds() {  # the train flags; prints the fit seconds
  "$SEQ" --threads "$THREADS" train "$W/split" --seed "$SEED" -o "$W/timing.seqrec" --force \
    -m sasrec --preset ml1m_plus --epochs 1 "$@" 2>/dev/null |
    sed -n 's/^trained sasrec in \([0-9.]*\) s.*/\1/p'
}
: >"${RESULTS}_timing.txt"
for i in $(seq "$TIMING_PAIRS"); do
  echo "id $(fit_seconds)" >>"${RESULTS}_timing.txt"
  echo "feat $(fit_seconds "${FEAT[@]}")" >>"${RESULTS}_timing.txt"
done
echo "load average after the timing: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

train pop -m pop
train sasrec -m sasrec --preset ml1m_plus --epochs "$SASREC_EPOCHS"
train sasrec_feat -m sasrec --preset ml1m_plus --epochs "$SASREC_EPOCHS" "${FEAT[@]}"
train sasrec_feat_noid -m sasrec --preset ml1m_plus --epochs "$SASREC_EPOCHS" "${FEAT[@]}" \
  --id-embedding false
train dssm -m dssm --item-features "$FEATURES" --epochs "$DSSM_EPOCHS"

/usr/bin/python3 - "$RESULTS" <<'PY'
import json, sys
base = sys.argv[1]
split = json.load(open(base + "_split.json"))
c = split["cold_items"]
print(f"Split: {c['count']} of {c['catalogue']} items cold (seed {c['seed']}); "
      f"{c['test_cold_targets']} of {c['test_targets']} test targets are cold.\n")
print("| model | all HR@20 / NDCG@10 | warm HR@20 / NDCG@10 | cold HR@20 / NDCG@10 "
      "| train events 1-4: HR@20 / NDCG@10 | chance (cold) HR@20 | fit s |")
print("|---|---|---|---|---|---|---|")
for name in ["pop", "sasrec", "sasrec_feat", "sasrec_feat_noid", "dssm"]:
    r = json.load(open(f"{base}_{name}.json"))
    g = {x["name"]: x for x in r["groups"]}
    def cell(x):
        if x["n_predictions"] == 0:
            return "no target"
        if not x["scorable"]:
            return "cannot score"
        m = x["metrics"]
        return f"{m['hr@20']:.4f} / {m['ndcg@10']:.4f} (n={x['n_predictions']})"
    epochs = r["model"]["config"].get("epochs", "-")
    print(f"| {name} (epochs {epochs}) | {r['hr@20']:.4f} / {r['ndcg@10']:.4f} | "
          f"{cell(g['warm'])} | {cell(g['cold'])} | {cell(g['1-4'])} | "
          f"{g['cold']['chance']['recall@20']:.4f} | {r['train'].get('train_seconds', 0):.0f} |")
t = {"id": [], "feat": []}
for line in open(base + "_timing.txt"):
    k, v = line.split()
    t[k].append(float(v))
med = lambda v: sorted(v)[len(v) // 2]
print(f"\nOne-epoch fit, ml1m_plus (d 64, maxlen 200, full CE), alternating: ID-only "
      f"{t['id']} s, feature-aware {t['feat']} s; medians {med(t['id']):.1f} s and "
      f"{med(t['feat']):.1f} s, ratio {med(t['feat']) / med(t['id']):.2f}x")
PY
