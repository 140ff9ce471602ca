#!/usr/bin/env bash
# Configures and builds the fuzz harnesses into build-fuzz/ (or $1) with clang: the library
# with -fsanitize=fuzzer-no-link,address,undefined, the harnesses with libFuzzer. Exits 3
# without doing anything when clang++-14 (or $FUZZ_CXX) or libFuzzer is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
cxx=${FUZZ_CXX:-clang++-14}
cc=${FUZZ_CC:-${cxx/clang++/clang}}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz/build.sh: $cxx not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 3
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
  "$cxx" -x c++ -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  echo "fuzz/build.sh: $cxx cannot link libFuzzer (apt-get install libclang-rt-14-dev)" >&2
  exit 3
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  # -O2 rather than the release build's -O3: quicker to compile, as fast to fuzz.
  CC=$cc CXX=$cxx cmake -S . -B "$dir" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O2 -DSEQREC_FUZZ=ON \
    -DSEQREC_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$dir" -j "${JOBS:-$(nproc)}"
