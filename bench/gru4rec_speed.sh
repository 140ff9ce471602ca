#!/usr/bin/env bash
# GRU4Rec training speed (events/s, s/epoch, peak RSS, profile, GEMM fraction) on a
# generated RSC15-like data set. Prints JSON (bench/gru4rec_speed_main.cc).
# Usage: bench/gru4rec_speed.sh [ARGS...]   e.g. --events 1000000 --items 37000
#        --preset rsc15 --preset bprmax --threads 2 --epochs 1
#        or --data FILE (a GRU4Rec-style log instead of generated data, e.g.
#        ../shared/data/rsc15-100k/yoochoose-clicks-100k_train_full.txt, the data of the
#        official implementation's figures in REFERENCE.md)
# The program runs with GOMP_SPINCOUNT=10000 unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is set,
# as the seqrec binary does (see docs/performance.md).
# Env: BUILD (default build) is the CMake build folder with libseqrec_lib.a.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/libseqrec_lib.a" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD" seqrec_lib >/dev/null
EXE="$BUILD/gru4rec_speed"
if [ ! -x "$EXE" ] || [ "$EXE" -ot "$BUILD/libseqrec_lib.a" ] || [ "$EXE" -ot bench/gru4rec_speed_main.cc ]; then
  # The program is compiled for the same target as the library (portable unless the build
  # was configured with SEQREC_NATIVE=ON).
  march="-march=x86-64-v2 -mtune=generic"
  grep -q "SEQREC_NATIVE:BOOL=ON" "$BUILD/CMakeCache.txt" && march="-march=native"
  g++ -std=c++20 -O3 $march -fopenmp -Iinclude -Isrc bench/gru4rec_speed_main.cc \
    "$BUILD/libseqrec_lib.a" -ldnnl -lfmt -o "$EXE"
fi
if [ -z "${GOMP_SPINCOUNT:-}" ] && [ -z "${OMP_WAIT_POLICY:-}" ]; then
  export GOMP_SPINCOUNT=10000
fi
exec "$EXE" "$@"
