#!/usr/bin/env bash
# Runs one libFuzzer harness on its corpus and records what it did.
#
# Usage: fuzz/run_fuzzer.sh BINARY NAME BUILD_DIR time=SECONDS|runs=N [libFuzzer flags...]
#   seeds      BUILD_DIR/fuzz-corpus/NAME (fuzz/make_corpus.sh), read only
#   work       BUILD_DIR/fuzz-work/NAME: the inputs that found new coverage, kept between
#              runs, so that each run starts where the last one stopped
#   findings   BUILD_DIR/fuzz-artifacts/NAME/ (crash-*, timeout-*, oom-*, leak-*)
#   log, JSON  BUILD_DIR/fuzz-logs/NAME.log and NAME.json: executions, seconds, coverage
#              (cov: edges, ft: features), corpus size, exit status, new findings
# Exit status: libFuzzer's (0 when nothing was found).
set -uo pipefail
bin=$1 name=$2 build=$3 budget=$4
shift 4
src=$(cd "$(dirname "$0")" && pwd)
seeds=$build/fuzz-corpus/$name
work=$build/fuzz-work/$name
art=$build/fuzz-artifacts/$name
logs=$build/fuzz-logs
mkdir -p "$work" "$art" "$logs" "$seeds"
case $budget in
  time=*) limit=(-max_total_time="${budget#time=}") ;;
  runs=*) limit=(-runs="${budget#runs=}") ;;
  *) echo "run_fuzzer: budget must be time=SECONDS or runs=N, not '$budget'" >&2; exit 2 ;;
esac
dict=()
[ -f "$src/$name.dict" ] && dict=(-dict="$src/$name.dict")
# Leaks are findings too; a UBSan report stops the run like a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ls "$art" > "$logs/$name.before"
start=$(date +%s)
"$bin" "${limit[@]}" "${dict[@]}" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
  -close_fd_mask=1 -artifact_prefix="$art/" "$@" "$work" "$seeds" > "$logs/$name.log" 2>&1
rc=$?
end=$(date +%s)
py=/usr/bin/python3
[ -x $py ] || py=python3
$py - "$logs/$name.log" "$logs/$name.before" "$art" "$name" "$budget" "$rc" $((end - start)) \
  > "$logs/$name.json" <<'PY'
import json, os, re, sys
log, before, art, name, budget, rc, secs = sys.argv[1:]
text = open(log, errors="replace").read()
def stat(key):
    m = re.search(r"stat::%s:\s*(\d+)" % key, text)
    return int(m.group(1)) if m else None
last = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", text, re.M)
old = set(open(before).read().split())
new = sorted(f for f in os.listdir(art) if f not in old)
res = {"harness": name, "budget": budget, "exit_code": int(rc), "seconds": int(secs),
       "executions": stat("number_of_executed_units"),
       "cov": int(last[-1][1]) if last else None, "ft": int(last[-1][2]) if last else None,
       "corpus": int(last[-1][3]) if last else None, "peak_rss_mb": stat("peak_rss_mb"),
       "new_findings": [os.path.join(art, f) for f in new]}
if int(rc) != 0:
    m = re.search(r"^(==\d+==ERROR: .*|SUMMARY: .*|.*runtime error: .*|fuzz invariant broken: .*)$",
                  text, re.M)
    res["finding"] = m.group(1) if m else "exit code %s" % rc
print(json.dumps(res))
PY
rm -f "$logs/$name.before"
cat "$logs/$name.json"
if [ "$rc" -ne 0 ]; then
  echo "run_fuzzer: $name found a problem; the log is $logs/$name.log:" >&2
  grep -m1 -B2 -A30 -E "ERROR:|runtime error|fuzz invariant broken|uncaught exception|deadly signal" \
    "$logs/$name.log" >&2 || tail -n 40 "$logs/$name.log" >&2
fi
exit "$rc"
