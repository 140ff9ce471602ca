#!/usr/bin/env bash
# bf16 mixed-precision training (issue 21): peak GEMM throughput fp32 vs bf16, training speed
# of GRU4Rec `bprmax` (rsc15-100k) and SASRec `ml1m_plus` (ML-1M) in fp32 and bf16, run
# alternately (fp32, bf16, fp32, bf16, ...) so that both see the same machine load, and the
# accuracy of every preset in both precisions over several seeds.
# One JSON object per measurement on stdout, appended to bench/results/bf16.jsonl.
#
# Usage: bench/bf16.sh [PARTS]    PARTS (default "peak gru4rec sasrec"): any of
#   peak      bench/bf16_gemm_peak.c: oneDNN fp32 sgemm vs bf16 matmul GFLOP/s (best of 7)
#   gru4rec   bprmax on rsc15-100k train_full: ROUNDS x (fp32, bf16) of EPOCHS epochs;
#             events/s = training pairs (events - sessions) x epochs / median epoch seconds
#   sasrec    ml1m_plus on ML-1M: ROUNDS x (fp32, bf16) of EPOCHS epochs, median s/epoch
#   accuracy  each preset of PRESETS in fp32 and bf16 for each seed of SEEDS:
#             GRU4Rec rsc15/yoochoose/bprmax: Recall@20, MRR@20 on rsc15-100k (yoochoose
#             preset on yoochoose1_64); SASRec ml1m/ml1m_plus (ML-1M), beauty_plus (Beauty):
#             NDCG@10, HR@10 full ranking; then the bf16/fp32 ratio of the means per preset
# Env: SEQREC_BIN (default build/seqrec), THREADS (2), ROUNDS (2), EPOCHS (1),
#      SEEDS ("1 2 3"), PRESETS ("rsc15 yoochoose bprmax ml1m ml1m_plus beauty_plus"),
#      ACC_EPOCHS (empty = each preset's own epochs), DATA (../shared/data)
# Every line carries the load average and the CPU's bf16 features: the machine may be loaded
# by other work, so compare the two precisions of one run (ratios), not runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS=${1:-peak gru4rec sasrec}
B=${SEQREC_BIN:-./build/seqrec}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
EPOCHS=${EPOCHS:-1}
SEEDS=${SEEDS:-1 2 3}
PRESETS=${PRESETS:-rsc15 yoochoose bprmax ml1m ml1m_plus beauty_plus}
ACC_EPOCHS=${ACC_EPOCHS:-}
DATA=${DATA:-../shared/data}
[ -x "$B" ] || { echo "bf16: build seqrec first (or set SEQREC_BIN)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p bench/results
OUT=bench/results/bf16.jsonl
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
FEAT=$(grep -o -w -E 'avx512_bf16|amx_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
if [ -z "${GOMP_SPINCOUNT:-}" ] && [ -z "${OMP_WAIT_POLICY:-}" ]; then
  export GOMP_SPINCOUNT=10000
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
emit() {  # emit JSON-FIELDS...: one line with the common fields
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(cpu=sys.argv[2], cpu_bf16=sys.argv[3].split(), load=sys.argv[4], threads=int(sys.argv[5])); print(json.dumps(d))' \
    "$1" "$CPU" "$FEAT" "$(load)" "$THREADS" | tee -a "$OUT"
}
# seconds of each epoch of a training log, from the rate of its final progress line
# ("gru4rec epoch 1/1 100.0% 52.5k/52.5k events 3151 events/s in 0:17"): UNITS / rate
# (a rate of 10,000 or more is printed with a k: "20.1k events/s")
epoch_secs() {  # LOG UNITS
  grep -aoE 'epoch [0-9]+/[0-9]+ +100\.0% .* [0-9.]+k? [a-z]+/s in' "$1" |
    sed -E 's/.* ([0-9.]+)(k?) [a-z]+\/s in$/\1 \2/' |
    awk -v u="$2" '{r = $1 * ($2 == "k" ? 1000 : 1); printf "%.3f\n", u / r}'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "null"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ROUNDS x (fp32, bf16) trainings of MODEL's PRESET on TRAIN, alternated; one JSON line per
# precision: median seconds per epoch (UNITS / the progress line's rate), median process
# CPU seconds, and for gru4rec events/s (UNITS = training pairs).
speed_runs() {  # MODEL PRESET DATA_NAME TRAIN UNITS
  local model=$1 preset=$2 name=$3 train=$4 units=$5 r prec med cpu used rate
  for r in $(seq "$ROUNDS"); do
    for prec in fp32 bf16; do
      /usr/bin/time -f "%e %U %S" -o "$W/t.$model.$prec.$r" "$B" --threads "$THREADS" train "$train" \
        -m "$model" --preset "$preset" --epochs "$EPOCHS" --precision "$prec" -o "$W/$model.seqrec" \
        > /dev/null 2> "$W/log.$model.$prec.$r"
      epoch_secs "$W/log.$model.$prec.$r" "$units" > "$W/s.$model.$prec.$r"
      echo "bf16: $model $prec round $r: $(tr '\n' ' ' < "$W/s.$model.$prec.$r")s/epoch; wall/user/sys $(cat "$W/t.$model.$prec.$r"); load $(load)" >&2
    done
  done
  for prec in fp32 bf16; do
    med=$(cat "$W"/s.$model.$prec.* | median)
    cpu=$(cat "$W"/t.$model.$prec.* | awk '{print $2 + $3}' | median)
    used=$(grep -aoE "$model: precision [a-z0-9]+" "$W/log.$model.$prec.1" | awk '{print $3}')
    rate=""
    [ "$model" = gru4rec ] && rate=", \"events_per_s\": $(python3 -c "print(round($units/$med))")"
    emit "{\"part\": \"$model\", \"preset\": \"$preset\", \"data\": \"$name\", \"precision\": \"$prec\", \"precision_used\": \"$used\", \"rounds\": $ROUNDS, \"epochs\": $EPOCHS, \"median_epoch_s\": $med$rate, \"median_process_cpu_s\": $cpu}"
  done
}

for part in $PARTS; do
  case $part in
  peak)
    cc -O2 bench/bf16_gemm_peak.c -o "$W/peak" -ldnnl -fopenmp
    for shape in "2048 2304 512" "2048 2304 100" "128 2048 512"; do
      r=$(OMP_NUM_THREADS=$THREADS "$W/peak" $shape)
      emit "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(part="peak", ratio=round(d["bf16_gflops"]/d["fp32_gflops"],3)); print(json.dumps(d))' "$r")"
    done
    ;;
  gru4rec)
    TRAIN=$DATA/rsc15-100k/yoochoose-clicks-100k_train_full.txt
    [ -f "$TRAIN" ] || { echo "bf16: $TRAIN absent, skipping gru4rec" >&2; continue; }
    # training pairs = events - sessions (every event but a session's first is a target)
    PAIRS=$(awk -F'\t' 'NR>1 {e++; s[$1]=1} END {print e-length(s)}' "$TRAIN")
    speed_runs gru4rec bprmax rsc15-100k "$TRAIN" "$PAIRS"
    ;;
  sasrec)
    ML=$DATA/ml-1m/ml-1m.txt
    [ -f "$ML" ] || { echo "bf16: $ML absent, skipping sasrec" >&2; continue; }
    "$B" -q prepare "$ML" --protocol sequential -o "$W/ml" > /dev/null
    # sequences trained per epoch (the progress unit): users with >= 2 events
    USERS=$(awk -F'\t' 'NR>1 {c[$1]++} END {n=0; for (u in c) if (c[u] >= 2) n++; print n}' "$W/ml/train_full.tsv")
    speed_runs sasrec ml1m_plus ml-1m "$W/ml" "$USERS"
    ;;
  accuracy)
    for preset in $PRESETS; do
      ep=()
      [ -n "$ACC_EPOCHS" ] && ep=(--epochs "$ACC_EPOCHS")
      case $preset in
      rsc15 | bprmax)
        model=gru4rec; train=$DATA/rsc15-100k/yoochoose-clicks-100k_train_full.txt
        test=$DATA/rsc15-100k/yoochoose-clicks-100k_test.txt; data=rsc15-100k; ev=(--cutoffs 20) ;;
      yoochoose)
        model=gru4rec; train=$DATA/yoochoose1_64/train.tsv; test=$DATA/yoochoose1_64/test.tsv
        data=yoochoose1_64; ev=(--cutoffs 20) ;;
      ml1m | ml1m_plus | beauty_plus)
        model=sasrec; data=ml-1m; src=$DATA/ml-1m/ml-1m.txt
        [ "$preset" = beauty_plus ] && { data=beauty; src=$DATA/beauty/Beauty.txt; }
        [ -d "$W/$data" ] || "$B" -q prepare "$src" --protocol sequential -o "$W/$data" > /dev/null
        train=$W/$data; test=$W/$data; ev=(--cutoffs 10) ;;
      *) echo "bf16: unknown preset $preset" >&2; exit 1 ;;
      esac
      for seed in $SEEDS; do
        for prec in fp32 bf16; do
          t0=$(date +%s.%N)
          "$B" --threads "$THREADS" -q train "$train" -m "$model" --preset "$preset" --seed "$seed" \
            --precision "$prec" "${ep[@]}" -o "$W/a.seqrec" > /dev/null
          t1=$(date +%s.%N)
          "$B" --threads "$THREADS" -q eval -m "$W/a.seqrec" "$test" "${ev[@]}" --json "$W/a.json" > /dev/null
          emit "$(python3 - "$W/a.json" "$preset" "$data" "$seed" "$prec" "$t0" "$t1" "${ACC_EPOCHS:-preset}" <<'PY'
import json, sys
f, preset, data, seed, prec, t0, t1, ep = sys.argv[1:]
d = json.load(open(f))
m = d.get("metrics", d)
if "results" in d:
    m = d["results"][0]["metrics"] if isinstance(d["results"], list) else d["results"]["metrics"]
keep = {k: v for k, v in m.items() if k.lower() in ("recall@20", "mrr@20", "ndcg@10", "hr@10", "recall@10")}
print(json.dumps({"part": "accuracy", "preset": preset, "data": data, "seed": int(seed),
                  "precision": prec, "epochs": ep, "train_s": round(float(t1) - float(t0), 1),
                  "metrics": keep}))
PY
)" | tee -a "$W/acc.jsonl"
        done
      done
    done
    # this run's rows only
    python3 - "$W/acc.jsonl" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if '"accuracy"' in l]
by = collections.defaultdict(list)
for r in rows: by[(r["preset"], r["precision"])].append(r["metrics"])
for (preset, prec), ms in sorted(by.items()):
    if prec != "bf16" or (preset, "fp32") not in by: continue
    f = by[(preset, "fp32")]
    mean = lambda xs, k: sum(x[k] for x in xs) / len(xs)
    rel = {k: round(mean(ms, k) / mean(f, k) - 1, 4) for k in ms[0] if mean(f, k)}
    print(json.dumps({"part": "accuracy_summary", "preset": preset, "runs_bf16": len(ms),
                      "runs_fp32": len(f), "bf16_vs_fp32_relative": rel}), file=sys.stderr)
PY
    ;;
  *) echo "bf16: unknown part $part" >&2; exit 1 ;;
  esac
done
