#!/usr/bin/env bash
# Scoring speed of the serving head's three storages (fp32, int8, bf16) on synthetic
# catalogues: 40k and 1M items, d = 64, 100, 128, batches of 1 and 8, the storages
# alternated in one process (bench/head_speed_main.cc --synthetic: ROUNDS rounds, each
# timing every storage for SECS / ROUNDS CPU seconds, in a rotated order; the median round is
# reported). Per request: the fused first pass plus the exact top-20 (window, rescoring),
# as `seqrec serve` runs it, on one thread, in the thread's own CPU time (robust on a
# shared machine; memory bandwidth shared with other work still shows).
#
# Usage: bench/head_speed.sh [OUT_JSONL]   (default bench/results/head_speed_storages.jsonl)
# Environment: SHAPES (40000:64,40000:100,40000:128,1000000:64,1000000:100,1000000:128),
#   SECS (3: CPU seconds per storage and batch, over all rounds), ROUNDS (7), BATCHES (1,8).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/head_speed_storages.jsonl}
SHAPES=${SHAPES:-40000:64,40000:100,40000:128,1000000:64,1000000:100,1000000:128}
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-7}
BATCHES=${BATCHES:-1,8}
[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target seqrec_lib >/dev/null
g++ -std=c++20 -O3 -march=x86-64-v2 -mtune=generic -fopenmp -Iinclude -Isrc \
  bench/head_speed_main.cc build/libseqrec_lib.a -ldnnl -lfmt -o build/head_speed
mkdir -p "$(dirname "$OUT")"
{
  echo "{\"cpu\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\", \"loadavg_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"date\": \"$(date -u +%FT%TZ)\"}"
  OMP_NUM_THREADS=1 build/head_speed --synthetic "$SHAPES" --precisions fp32,int8,bf16 \
    --batches "$BATCHES" --rounds "$ROUNDS" --seconds "$SECS"
  echo "{\"loadavg_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
} | tee "$OUT"
