#!/usr/bin/env bash
# The whole unit + integration suite under AddressSanitizer and UBSan (SEQREC_SANITIZE=ON),
# in its own build folder (build-asan), and a JSON record of the run: date, commit,
# compiler, build and test minutes, passed/failed counts, the failed tests and every
# sanitizer report (its SUMMARY line and file).
#
# Usage: bench/sanitize.sh [OUT_JSON] [-- extra ctest arguments]
#   OUT_JSON  default bench/results/sanitize.json
#   JOBS      build and ctest parallelism (default: nproc)
#   BUILD_DIR default build-asan
# Exit status: 0 when every test passed and no sanitizer report was written, 1 otherwise.
# Reports go to files (ASAN_OPTIONS/UBSAN_OPTIONS log_path), not stderr, so that tests that
# read the program's stderr see what they expect; a UBSan report aborts the process
# (halt_on_error), so that it fails the test that triggered it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-bench/results/sanitize.json}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
JOBS=${JOBS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-build-asan}
REPORTS="$ROOT/$BUILD_DIR/sanitizer-reports"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

t0=$(date +%s)
# RelWithDebInfo: optimised like the release build (so the suite's run time stays
# reasonable) with line numbers in the reports.
cmake -S . -B "$BUILD_DIR" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSEQREC_SANITIZE=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
t1=$(date +%s)

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export ASAN_OPTIONS="log_path=$REPORTS/asan:detect_leaks=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="log_path=$REPORTS/lsan"
status=0
(cd "$BUILD_DIR" && ctest -j "$JOBS" --timeout 3600 --output-on-failure "$@") \
  >"$BUILD_DIR/sanitize-ctest.log" 2>&1 || status=$?
t2=$(date +%s)
tail -n 30 "$BUILD_DIR/sanitize-ctest.log"

mkdir -p "$(dirname "$OUT")"
/usr/bin/python3 - "$BUILD_DIR/sanitize-ctest.log" "$REPORTS" "$OUT" "$t0" "$t1" "$t2" \
  "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)" "$JOBS" \
  "$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")" <<'PY'
import json, os, re, subprocess, sys, datetime
log, reports, out, t0, t1, t2, commit, jobs, cxx = sys.argv[1:]
text = open(log, errors="replace").read()
m = re.search(r"(\d+)% tests passed, (\d+) tests? failed out of (\d+)", text)
total = int(m.group(3)) if m else 0
failed_n = int(m.group(2)) if m else -1
failed = re.findall(r"^\s*\d+ - (\S+) \((\w+(?: \w+)?)\)", text.split("The following tests FAILED:")[-1],
                    re.M) if "The following tests FAILED:" in text else []
findings = []
for name in sorted(os.listdir(reports)):
    body = open(os.path.join(reports, name), errors="replace").read()
    summary = [l for l in body.splitlines() if l.startswith("SUMMARY:")]
    first = next((l for l in body.splitlines() if "runtime error" in l or "ERROR:" in l), "")
    findings.append({"file": os.path.join(reports, name), "summary": summary[0] if summary else first})
try:
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
except Exception:
    version = cxx
res = {
    "benchmark": "sanitize",
    "date": datetime.datetime.utcfromtimestamp(int(t0)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": commit,
    "compiler": version,
    "flags": "-fsanitize=address,undefined -fno-omit-frame-pointer, RelWithDebInfo",
    "jobs": int(jobs),
    "build_minutes": round((int(t1) - int(t0)) / 60, 1),
    "test_minutes": round((int(t2) - int(t1)) / 60, 1),
    "tests": total,
    "passed": total - failed_n if failed_n >= 0 else 0,
    "failed": failed_n,
    "failed_tests": [{"name": n, "why": w} for n, w in failed],
    "sanitizer_reports": len(findings),
    "findings": findings,
}
json.dump(res, open(out, "w"), indent=2)
open(out, "a").write("\n")
print(json.dumps({k: res[k] for k in ("date", "commit", "tests", "passed", "failed", "sanitizer_reports")}))
PY
[ "$status" -eq 0 ] && [ -z "$(ls -A "$REPORTS")" ]
