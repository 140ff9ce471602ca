#!/usr/bin/env bash
# ANN retrieval (--retrieval ann) against exact int8 scoring on generated catalogues
# (bench/ann_bench_main.cc, catalogue and queries in bench/ann_data.hpp): index build time
# and memory, recall@20 against the exact top-20 over an ef_search sweep, peak throughput
# and p50/p99 latency at 1,000 requests/s on THREADS worker threads, exact and ANN
# alternated in the same process. Then, when faiss is installed (libfaiss-dev; not a
# dependency of seqrec), the library comparison (bench/ann_faiss_main.cc), and the
# recall/latency plot (bench/ann_plot_main.cc, the report's SVG writer).
# Writes bench/results/ann_<items>_d<dim>.json, ann_faiss_<items>_d<dim>.json and
# ann_tradeoff.svg; docs/performance.md#approximate-retrieval-ann has the figures.
#
# Usage: bench/ann.sh [CONFIG...]   CONFIG = ITEMS:DIM (default 1000000:64 1000000:128)
# Env: BUILD (default build) the CMake build folder with libseqrec_lib.a; THREADS (2);
#      SECONDS_PER_POINT (3); SWEEP (ef_search values, default 20,40,80,160,320,640);
#      DATA (clustered; gaussian for the no-structure case); FAISS=0 skips the comparison;
#      FAISS_CONFIG (1000000:64); M (16), EF_CONSTRUCTION (200).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_POINT:-3}
SWEEP=${SWEEP:-20,40,80,160,320,640}
DATA=${DATA:-clustered}
M=${M:-16}
EFC=${EF_CONSTRUCTION:-200}
CONFIGS=("$@")
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(1000000:64 1000000:128)
if [ ! -f "$BUILD/libseqrec_lib.a" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" seqrec_lib >/dev/null
# The programs are compiled for the same target as the library (portable unless the build
# was configured with SEQREC_NATIVE=ON).
march="-march=x86-64-v2 -mtune=generic"
grep -q "SEQREC_NATIVE:BOOL=ON" "$BUILD/CMakeCache.txt" && march="-march=native"
build() {  # build NAME SOURCE EXTRA...
  local exe="$BUILD/$1" src=$2
  shift 2
  if [ ! -x "$exe" ] || [ "$exe" -ot "$BUILD/libseqrec_lib.a" ] || [ "$exe" -ot "$src" ] ||
     [ "$exe" -ot bench/ann_data.hpp ]; then
    g++ -std=c++20 -O3 $march -fopenmp -Iinclude -Isrc -Ibench "$src" "$@" -o "$exe"
  fi
}
build ann_bench bench/ann_bench_main.cc "$BUILD/libseqrec_lib.a" -ldnnl -lfmt
build ann_plot bench/ann_plot_main.cc "$BUILD/libseqrec_lib.a" -ldnnl -lfmt
mkdir -p bench/results
cpu=$(grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //')
results=()
for cfg in "${CONFIGS[@]}"; do
  items=${cfg%%:*} dim=${cfg##*:}
  tag="$((items / 1000))k_d${dim}"
  [ "$DATA" != clustered ] && tag="${tag}_${DATA}"
  out="bench/results/ann_${tag}.json"
  echo "== ANN vs exact: $items items, d=$dim ($DATA), $THREADS threads -> $out" >&2
  "$BUILD/ann_bench" --items "$items" --dim "$dim" --data "$DATA" --threads "$THREADS" \
    --m "$M" --ef-construction "$EFC" --sweep "$SWEEP" --seconds "$SECS" > "$out.tmp"
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); j['cpu']=sys.argv[2]; \
j['command']='bench/ann.sh $cfg'; json.dump(j, open(sys.argv[1],'w'), indent=1)" "$out.tmp" "$cpu"
  mv "$out.tmp" "$out"
  results+=("$out")
done
"$BUILD/ann_plot" bench/results/ann_tradeoff.svg bench/results/ann_[0-9]*k_d*.json
echo "plot: bench/results/ann_tradeoff.svg" >&2

if [ "${FAISS:-1}" != 0 ]; then
  if [ -f /usr/include/faiss/IndexHNSW.h ]; then
    fc=${FAISS_CONFIG:-1000000:64}
    items=${fc%%:*} dim=${fc##*:}
    out="bench/results/ann_faiss_$((items / 1000))k_d${dim}.json"
    build ann_faiss bench/ann_faiss_main.cc -lfaiss -lblas -llapack
    echo "== hnswlib vs faiss HNSW vs faiss IVF-Flat: $items items, d=$dim -> $out" >&2
    "$BUILD/ann_faiss" --items "$items" --dim "$dim" --data "$DATA" --threads "$THREADS" \
      --m "$M" --ef-construction "$EFC" > "$out"
  else
    echo "faiss not installed (apt-get install libfaiss-dev): library comparison skipped" >&2
  fi
fi
