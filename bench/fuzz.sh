#!/usr/bin/env bash
# Long fuzzing runs of every libFuzzer harness (fuzz/, docs/reliability.md), and a JSON
# record of them: per harness the executions, seconds, coverage (cov: edges, ft: features),
# corpus size and findings.
#
# Usage: bench/fuzz.sh [BUDGET] [HARNESS...]
#   BUDGET   time=SECONDS or runs=N per harness (default time=600); a bare number is seconds
#   HARNESS  event_log model_file http_parser json_request features (default: all)
#   OUT      the JSON record (default bench/results/fuzz.json)
#   PARALLEL harnesses run at once (default 1; one core each)
#   BUILD_DIR default build-fuzz (built by fuzz/build.sh; clang++-14 and libclang-rt-14-dev)
# The corpora grow in BUILD_DIR/fuzz-work/ from run to run; findings (crash-*, timeout-*,
# oom-*, leak-*) are left in BUILD_DIR/fuzz-artifacts/HARNESS/. Reproduce one with
# `BUILD_DIR/fuzz/fuzz_HARNESS FILE`. Exit status 1 when anything was found.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-time=600}
[ $# -gt 0 ] && shift
case $budget in time=* | runs=*) ;; *) budget=time=$budget ;; esac
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(event_log model_file http_parser json_request features)
OUT=${OUT:-bench/results/fuzz.json}
PARALLEL=${PARALLEL:-1}
BUILD_DIR=${BUILD_DIR:-build-fuzz}

bash fuzz/build.sh "$BUILD_DIR" >/dev/null
bash fuzz/make_corpus.sh "$BUILD_DIR/fuzz-corpus" "$BUILD_DIR/seqrec" >/dev/null
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
status=0
running=0
for h in "${harnesses[@]}"; do
  bash fuzz/run_fuzzer.sh "$BUILD_DIR/fuzz/fuzz_$h" "$h" "$BUILD_DIR" "$budget" >/dev/null 2>&1 &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done

mkdir -p "$(dirname "$OUT")"
/usr/bin/python3 - "$OUT" "$started" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)" \
  "$budget" "$(nproc)" "$PARALLEL" "$BUILD_DIR" "${harnesses[@]}" <<'PY'
import json, sys
out, started, commit, budget, cores, parallel, build, *names = sys.argv[1:]
runs = [json.load(open(f"{build}/fuzz-logs/{h}.json")) for h in names]
res = {"benchmark": "fuzz", "date": started, "commit": commit, "budget_per_harness": budget,
       "cores": int(cores), "parallel": int(parallel), "harnesses": runs,
       "findings": sum(len(r["new_findings"]) for r in runs)}
json.dump(res, open(out, "w"), indent=2)
open(out, "a").write("\n")
for r in runs:
    print(f'{r["harness"]:13} {r["executions"] or 0:>10} execs {r["seconds"]:>6} s  cov {r["cov"]}  ft {r["ft"]}'
          f'  corpus {r["corpus"]}  findings {len(r["new_findings"])}' + (f'  ({r["finding"]})' if "finding" in r else ""))
PY
exit "$status"
