#!/usr/bin/env bash
# The portable build (the default: x86-64-v2 baseline, hot kernels chosen at run time, see
# src/core/isa.hpp) against a -march=native build of the same source, on this machine:
#  - GRU4Rec training, preset rsc15, on rsc15-100k's train_full (GRU_EPOCHS epochs)
#  - SASRec training, preset ml1m (BCE), on ML-1M leave-one-out (SAS_EPOCHS epochs)
#  - the serving head (int8, exact top-20 after the first pass), batch 1 and 8, on the
#    GRU4Rec model's output layer (bench/head_speed_main.cc): head1/head8 on rsc15-100k's
#    model (2,933 items), head1_40k/head8_40k on a model of a generated log with about
#    40k items (the catalogue of docs/performance.md's serving figures; memory-bound)
# Each repeat runs every workload on both builds, alternating which goes first; training
# time is seqrec's own "trained ... in X s" (fit only), the head time the median of 7
# chunks. Medians over REPEATS and the ratio portable / native are reported, with the CPU
# and the instruction-set level each build ran.
# LEVELS (e.g. "avx2 baseline") times the portable build again with SEQREC_ISA set to each
# (what a CPU without AVX-512, or without AVX2, would run), against the same native runs.
#
# Usage: bench/portable_vs_native.sh [OUT_JSON]     (default bench/results/portable_vs_native.json)
# Env: REPEATS (5), GRU_EPOCHS (5), SAS_EPOCHS (5), THREADS (2), LEVELS (""),
#      WORKLOADS ("gru sas head1 head8 head1_40k head8_40k"),
#      WORK (/tmp/seqrec-portable-bench). Needs ../shared/data (rsc15-100k, ml-1m).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/portable_vs_native.json}
REPEATS=${REPEATS:-5}
GRU_EPOCHS=${GRU_EPOCHS:-5}
SAS_EPOCHS=${SAS_EPOCHS:-5}
THREADS=${THREADS:-2}
LEVELS=${LEVELS:-}
WORKLOADS=${WORKLOADS:-gru sas head1 head8 head1_40k head8_40k}
WORK=${WORK:-/tmp/seqrec-portable-bench}
D=../shared/data
for f in "$D/rsc15-100k/yoochoose-clicks-100k_train_full.txt" "$D/ml-1m/ml-1m.txt"; do
  [ -f "$f" ] || { echo "portable_vs_native: $f is missing (../shared/data)" >&2; exit 1; }
done
mkdir -p "$WORK" "$(dirname "$OUT")"

# The two builds (build/ is the default one; build-native/ is configured here).
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f build/CMakeCache.txt ] || cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
[ -f build-native/CMakeCache.txt ] ||
  cmake -S . -B build-native "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSEQREC_NATIVE=ON \
    -DSEQREC_BUILD_TESTS=OFF >/dev/null
grep -q "SEQREC_NATIVE:BOOL=OFF" build/CMakeCache.txt ||
  { echo "portable_vs_native: build/ is not the portable build (SEQREC_NATIVE=ON)" >&2; exit 1; }
cmake --build build --target seqrec seqrec_lib >/dev/null
cmake --build build-native --target seqrec seqrec_lib >/dev/null
# The head benchmark, compiled with each build's own flags.
g++ -std=c++20 -O3 -march=x86-64-v2 -mtune=generic -fopenmp -Iinclude -Isrc bench/head_speed_main.cc \
  build/libseqrec_lib.a -ldnnl -lfmt -o build/head_speed
g++ -std=c++20 -O3 -march=native -fopenmp -Iinclude -Isrc bench/head_speed_main.cc \
  build-native/libseqrec_lib.a -ldnnl -lfmt -o build-native/head_speed

# Data and the model the head benchmark serves (made once, reused).
[ -f "$WORK/ml1m/split.json" ] ||
  build/seqrec -q prepare "$D/ml-1m/ml-1m.txt" --protocol sequential -o "$WORK/ml1m" --force
[ -f "$WORK/gru.seqrec" ] ||
  build/seqrec -q --threads "$THREADS" train "$D/rsc15-100k/yoochoose-clicks-100k_train_full.txt" \
    -m gru4rec --preset rsc15 --epochs 1 -o "$WORK/gru.seqrec"
if [[ " $WORKLOADS " == *_40k* ]] && [ ! -f "$WORK/gru40k.seqrec" ]; then
  build/seqrec -q generate --events 2000000 --items 40000 -o "$WORK/log40k.tsv"
  build/seqrec -q --threads "$THREADS" train "$WORK/log40k.tsv" -m gru4rec --preset rsc15 \
    --epochs 1 -o "$WORK/gru40k.seqrec"
fi

# One run: prints "SECONDS PEAK_RSS_MIB" (training) or the head's JSON.
train_time() {  # BIN OUT ARGS...
  local bin=$1 out=$2
  shift 2
  "$bin" -q --threads "$THREADS" train "$@" -o "$out" 2>&1 |
    sed -n 's/.*trained [a-z0-9]* in \([0-9.]*\) s (peak RSS \([0-9.]*\) MiB).*/\1 \2/p' | tail -1
}
gru() { train_time "$1/seqrec" "$WORK/gru_$2.seqrec" "$D/rsc15-100k/yoochoose-clicks-100k_train_full.txt" \
  -m gru4rec --preset rsc15 --epochs "$GRU_EPOCHS"; }
sas() { train_time "$1/seqrec" "$WORK/sas_$2.seqrec" "$WORK/ml1m" -m sasrec --preset ml1m \
  --epochs "$SAS_EPOCHS"; }
head1() { "$1/head_speed" "$WORK/gru.seqrec" --batch 1 --seconds 3; }
head8() { "$1/head_speed" "$WORK/gru.seqrec" --batch 8 --seconds 3; }
head1_40k() { "$1/head_speed" "$WORK/gru40k.seqrec" --batch 1 --seconds 3; }
head8_40k() { "$1/head_speed" "$WORK/gru40k.seqrec" --batch 8 --seconds 3; }

RAW="$WORK/raw.jsonl"
: >"$RAW"
variants=(native portable)
for l in $LEVELS; do variants+=("portable_$l"); done
for r in $(seq 1 "$REPEATS"); do
  # Alternate the order: odd repeats native first, even repeats portable first.
  order=("${variants[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[$i]}"); done
  fi
  for w in $WORKLOADS; do
    for v in "${order[@]}"; do
      dir=build
      env_isa=""
      case $v in
        native) dir=build-native ;;
        portable_*) env_isa=${v#portable_} ;;
      esac
      res=$(SEQREC_ISA=$env_isa $w "$dir" "$v")
      echo "{\"repeat\": $r, \"workload\": \"$w\", \"variant\": \"$v\", \"result\": \"${res//\"/\\\"}\"}" >>"$RAW"
      echo "repeat $r $w $v: $res" >&2
    done
  done
done

python3 - "$RAW" "$OUT" "$(build/seqrec --version | tail -1)" "$(build-native/seqrec --version | tail -1)" <<'EOF'
import json, statistics, sys, platform, datetime
raw, out, isa_portable, isa_native = sys.argv[1:5]
rows = [json.loads(l) for l in open(raw)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def value(row):
    r = row["result"]
    if row["workload"].startswith("head"):
        return json.loads(r)["us_per_request_median"], None
    s, rss = r.split()
    return float(s), float(rss)
res = {}
for row in rows:
    v, rss = value(row)
    d = res.setdefault(row["workload"], {}).setdefault(row["variant"], {"runs": [], "rss_mib": []})
    d["runs"].append(v)
    if rss is not None: d["rss_mib"].append(rss)
units = {"gru": "s (fit)", "sas": "s (fit)", "head1": "us/request", "head8": "us/request",
         "head1_40k": "us/request", "head8_40k": "us/request"}
names = {"gru": "GRU4Rec training, preset rsc15, rsc15-100k",
         "sas": "SASRec training, preset ml1m (BCE), ML-1M",
         "head1": "serving head int8, batch 1, top-20 (GRU4Rec rsc15-100k output layer)",
         "head8": "serving head int8, batch 8, top-20 (GRU4Rec rsc15-100k output layer)",
         "head1_40k": "serving head int8, batch 1, top-20 (GRU4Rec output layer, generated log, ~40k items)",
         "head8_40k": "serving head int8, batch 8, top-20 (GRU4Rec output layer, generated log, ~40k items)"}
summary = {}
for w, vs in res.items():
    nat = statistics.median(vs["native"]["runs"])
    entry = {"what": names[w], "unit": units[w]}
    for v, d in vs.items():
        m = statistics.median(d["runs"])
        entry[v] = {"median": m, "runs": d["runs"]}
        if d["rss_mib"]: entry[v]["peak_rss_mib_max"] = max(d["rss_mib"])
        if v != "native":
            # ratio of medians, and the median of the per-repeat ratios (paired, alternated)
            paired = [p / n for p, n in zip(d["runs"], vs["native"]["runs"])]
            entry[v]["ratio_to_native"] = m / nat
            entry[v]["paired_ratio_median"] = statistics.median(paired)
    summary[w] = entry
doc = {"benchmark": "portable_vs_native", "date": datetime.date.today().isoformat(),
       "cpu": cpu, "logical_cpus": __import__("os").cpu_count(),
       "isa_portable": isa_portable, "isa_native": isa_native, "results": summary}
json.dump(doc, open(out, "w"), indent=1)
print(json.dumps(doc, indent=1))
EOF
