#!/usr/bin/env bash
# SASRec training speed on ML-1M (the `ml1m` preset: maxlen 200, d 50, 2 blocks, 1 head,
# batch 128), for each loss: median seconds per epoch, sequences/s, peak RSS, achieved
# GEMM-equivalent GFLOP/s and its fraction of the machine's measured sgemm throughput, and
# the full-ranking evaluation time of the trained model (6,040 users).
# One JSON object per loss on stdout (and appended to bench/results/sasrec_speed.jsonl).
#
# Usage: bench/sasrec_speed.sh [EPOCHS (default 5)] [LOSSES (default "bce ce sampled_softmax gbce")]
# Env:   SEQREC_BIN (default build/seqrec), SASREC_DATA (default ../shared/data/ml-1m/ml-1m.txt),
#        THREADS (default 0 = all cores), EXTRA (more `seqrec train` flags)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-5}
LOSSES=${2:-bce ce sampled_softmax gbce}
B=${SEQREC_BIN:-./build/seqrec}
DATA=${SASREC_DATA:-../shared/data/ml-1m/ml-1m.txt}
THREADS=${THREADS:-0}
[ -f "$DATA" ] || { echo "sasrec_speed: $DATA absent, nothing to do" >&2; exit 0; }
[ -x "$B" ] || { echo "sasrec_speed: build seqrec first (or set SEQREC_BIN)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p bench/results
"$B" -q prepare "$DATA" --protocol sequential -o "$W/split" >/dev/null
cc -O2 bench/sasrec_gemm_peak.c -o "$W/peak" -ldnnl -fopenmp
PEAK=$(OMP_NUM_THREADS=$([ "$THREADS" = 0 ] && nproc || echo "$THREADS") "$W/peak")
echo "sasrec_speed: sgemm peak ${PEAK} GFLOP/s; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for loss in $LOSSES; do
  /usr/bin/time -f "%e %M %U" -o "$W/t" "$B" --threads "$THREADS" train "$W/split" -m sasrec \
    --preset ml1m --loss "$loss" --epochs "$EPOCHS" -o "$W/m.seqrec" ${EXTRA:-} \
    2> "$W/log" >/dev/null
  read -r twall trss tuser < "$W/t"
  /usr/bin/time -f "%e %M" -o "$W/e" "$B" -q --threads "$THREADS" eval -m "$W/m.seqrec" "$W/split" \
    --cutoffs 10 --json "$W/r.json" >/dev/null
  read -r ewall erss < "$W/e"
  python3 - "$W" "$loss" "$EPOCHS" "$PEAK" "$trss" "$ewall" "$erss" "$tuser" "$twall" <<'PY' | tee -a bench/results/sasrec_speed.jsonl
import json, re, statistics, sys, os
w, loss, epochs, peak, trss, ewall, erss, tuser, twall = sys.argv[1:]
log = open(os.path.join(w, "log")).read()
secs = [float(x) for x in re.findall(r"sasrec: epoch \d+/\d+ loss \S+ in ([0-9.]+) s", log)]
# Training tokens per user: min(m-1, 200) for users with m >= 2 (train_full.tsv).
lens = {}
with open(os.path.join(w, "split", "train_full.tsv")) as f:
    next(f)
    for line in f:
        u = line.split("\t", 1)[0]
        lens[u] = lens.get(u, 0) + 1
n_items = sum(1 for _ in open(os.path.join(w, "split", "items.tsv"))) - 1
d, L, blocks, K = 50, 200, 2, 256
ns = [min(m - 1, L) for m in lens.values() if m >= 2]
T = sum(ns)
# sgemm flops actually issued per epoch (forward + backward):
#   projections q,k,v,o and FFN w1,w2: 6 GEMMs of n x d x d, 3 passes (fwd, dX, dW)
#   attention: ~11 d n^2 per block (QK^T on 3/4 of the square, AV, and 4 backward GEMMs)
#   loss: CE 3 GEMMs of T x |I| x d; sampled 3 GEMMs of T x K x d; BCE none (dots)
flops = blocks * (36 * d * d * T + 11 * d * sum(n * n for n in ns))
if loss == "ce":
    flops += 6 * T * n_items * d
elif loss in ("sampled_softmax", "gbce"):
    flops += 6 * T * K * d
r = json.load(open(os.path.join(w, "r.json")))
med = statistics.median(secs)
gf = flops / med / 1e9
print(json.dumps({
    "bench": "sasrec_speed", "data": "ml-1m", "preset": "ml1m", "loss": loss,
    "epochs": len(secs), "s_per_epoch_median": round(med, 3),
    "s_per_epoch": [round(s, 3) for s in secs],
    "sequences_per_s": round(len(ns) / med, 1), "positions_per_s": round(T / med),
    "train_peak_rss_mib": round(int(trss) / 1024, 1),
    # CPU seconds per epoch over the whole run (includes spin-waiting threads; with
    # THREADS=1 it is the load-robust cost of an epoch on one core)
    "train_cpu_s_per_epoch": round(float(tuser) / max(1, len(secs)), 3),
    "train_wall_s": float(twall),
    "gemm_gflop_per_epoch": round(flops / 1e9, 1), "achieved_gflop_s": round(gf, 1),
    "sgemm_peak_gflop_s": float(peak), "fraction_of_sgemm_peak": round(gf / float(peak), 3),
    "eval_full_ranking_s": r.get("seconds"), "eval_wall_s": float(ewall),
    "eval_peak_rss_mib": round(int(erss) / 1024, 1),
    "ndcg@10": r.get("ndcg@10", r.get("metrics", {}).get("ndcg@10")),
    "hr@10": r.get("hr@10", r.get("metrics", {}).get("hr@10")),
    "load": open("/proc/loadavg").read().split()[:3]}))
PY
done
