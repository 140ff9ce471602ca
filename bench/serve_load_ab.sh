#!/usr/bin/env bash
# Server variants compared under the same conditions: bench/serve_load.sh run once per
# variant per round (REPEATS=1 each), the variants alternated round after round, so that
# a machine whose load changes affects them alike. Each variant is "NAME=SERVE_ARGS" (and
# SEQREC_<NAME> may name another binary for it, e.g. the server before a change copied to
# /tmp). One JSON line per run (serve_load.sh's output plus "variant" and "round") into
# OUT_JSONL; compare the medians per variant.
#
# Usage: bench/serve_load_ab.sh MODEL_FILE OUT_JSONL VARIANT...
#   e.g. bench/serve_load_ab.sh $M/gru4rec.seqrec out.jsonl int8= "bf16=--head-storage bf16"
# Environment: ROUNDS (3), DURATION (10), and serve_load.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
MODEL=$1
OUT=$2
shift 2
ROUNDS=${ROUNDS:-3}
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
: > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*}
    args=${spec#*=}
    bin_var="SEQREC_${name}"
    bin=${!bin_var:-${SEQREC:-build/seqrec}}
    SEQREC=$bin REPEATS=1 DURATION=${DURATION:-10} SERVE_ARGS="$args" \
      bash bench/serve_load.sh "$MODEL" "$TMPD/run.json" > "$TMPD/run.log" 2>&1 ||
      { cat "$TMPD/run.log" >&2; exit 1; }
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); j['variant']=sys.argv[2]; j['round']=int(sys.argv[3]); print(json.dumps(j))" \
      "$TMPD/run.json" "$name" "$round" >> "$OUT"
    echo "serve_load_ab: round $round $name: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for v in dict.fromkeys(r["variant"] for r in runs):
    rs = [r for r in runs if r["variant"] == v]
    med = lambda f: round(statistics.median(f(r) for r in rs), 3)
    print(json.dumps({"variant": v, "runs": len(rs),
                      "rate_rps": med(lambda r: r["rate"]["rps"]),
                      "rate_p50_ms": med(lambda r: r["rate"]["latency_ms"]["p50"]),
                      "rate_p99_ms": med(lambda r: r["rate"]["latency_ms"]["p99"]),
                      "server_cpu_us_per_request": med(lambda r: 1e6 / r["rate"]["requests_per_server_cpu_s"]),
                      "peak_rps": med(lambda r: r["peak"]["rps"]),
                      "loadavg_after": [r["loadavg_after"] for r in rs]}))
PY
