#!/usr/bin/env bash
# Soak test of `seqrec serve`: a mixed valid and hostile load for a while, on 127.0.0.1
# only, bounded in connections, to check that the server neither crashes, nor hangs, nor
# grows, nor answers 5xx under it. Run it after every change to the server.
#
# It generates a small log, trains a small model on it (GRU4Rec by default, so reloads make
# sessions replay), writes an API key, starts `seqrec serve --port 0 --api-key-file KEY` with
# the default limits, and runs bench/soak_load.py against it (valid events/recommend/session
# reads/health; malformed JSON, huge headers, bad Host, wrong content types, cross-site and
# keyless admin requests, unknown sessions, oversized bodies, garbage; slowloris connections;
# dropped and reset connections; a reload every RELOAD_EVERY s, alternately POST /v1/reload
# (followed at once by a second one, which must get 429) and SIGHUP; a monitor sampling RSS,
# threads, file descriptors and /health every second). Then it reads the server's own
# counts (GET /metrics), stops it with SIGTERM and checks that it exits 0.
#
# Usage: bench/soak.sh [--minutes M] [--model TYPE] [--reload-every S] [--valid-clients N]
#                      [--hostile-clients N] [--slowloris N] [--out FILE]
#   --minutes M        how long the load runs (default 1; fractions allowed)
#   --model TYPE       model type trained for it (default gru4rec)
#   --reload-every S   seconds between reloads (default 20)
#   --valid-clients N  threads sending valid requests on keep-alive connections (default 4)
#   --hostile-clients N threads sending hostile requests (default 2)
#   --slowloris N      slowloris connections held open (default 50)
#   --out FILE         the JSON report (default bench/results/soak.json)
# Environment: SEQREC (build/seqrec), SERVE_ARGS (more `seqrec serve` options).
# Exit status: 0 when the server survived (no crash, no hang, no unexpected 5xx, exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=1
MODEL=gru4rec
RELOAD_EVERY=20
VALID=4
HOSTILE=2
SLOWLORIS=50
OUT=bench/results/soak.json
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --reload-every) RELOAD_EVERY=$2; shift 2 ;;
    --valid-clients) VALID=$2; shift 2 ;;
    --hostile-clients) HOSTILE=$2; shift 2 ;;
    --slowloris) SLOWLORIS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n 2,28p "$0"; exit 0 ;;
    *) echo "soak: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
SEQREC=${SEQREC:-build/seqrec}
[ -x "$SEQREC" ] || { echo "soak: no seqrec binary at $SEQREC (build it, or set SEQREC)" >&2; exit 1; }
SERVE_ARGS=${SERVE_ARGS:-}
SECONDS_TOTAL=$($PY -c "import sys; print(max(1.0, float(sys.argv[1]) * 60))" "$MINUTES")

WORK=$(mktemp -d /tmp/seqrec-soak.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "soak: training a $MODEL model on a generated log in $WORK" >&2
"$SEQREC" -q generate --events 20000 --items 500 --seed 7 -o "$WORK/log.tsv" >&2
case "$MODEL" in
  gru4rec) TRAIN_ARGS="--layers 32 --batch-size 16 --n-sample 64 --n-epochs 2" ;;
  sasrec) TRAIN_ARGS="--maxlen 10 --hidden-units 16 --num-epochs 2 --batch-size 32" ;;
  *) TRAIN_ARGS="" ;;
esac
# shellcheck disable=SC2086
"$SEQREC" -q train "$WORK/log.tsv" -m "$MODEL" $TRAIN_ARGS -o "$WORK/model.seqrec" >&2
awk -F'\t' 'NR > 1 {print $2}' "$WORK/log.tsv" | sort -u > "$WORK/items.txt"
(umask 077 && $PY -c 'import secrets; print(secrets.token_hex(32))' > "$WORK/key")
KEY=$(cat "$WORK/key")

# shellcheck disable=SC2086
"$SEQREC" serve "$WORK/model.seqrec" --port 0 --port-file "$WORK/port" \
  --api-key-file "$WORK/key" $SERVE_ARGS > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  [ -s "$WORK/port" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "soak: the server did not start" >&2; exit 1; }
  sleep 0.1
done
PORT=$(cat "$WORK/port")
echo "soak: server pid $SERVER_PID on port $PORT; load for $SECONDS_TOTAL s" >&2

LOAD_RC=0
$PY bench/soak_load.py --port "$PORT" --pid "$SERVER_PID" --items "$WORK/items.txt" --key "$KEY" \
  --seconds "$SECONDS_TOTAL" --valid-clients "$VALID" --hostile-clients "$HOSTILE" \
  --slowloris "$SLOWLORIS" --reload-every "$RELOAD_EVERY" --out "$WORK/load.json" || LOAD_RC=$?

# The server's own view, then a graceful stop.
curl -s --max-time 10 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt" || true
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "")
kill -TERM "$SERVER_PID" 2>/dev/null || true
EXIT_CODE=
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  EXIT_CODE=hung_on_stop
  kill -KILL "$SERVER_PID" 2>/dev/null || true
fi
set +e
wait "$SERVER_PID" 2>/dev/null
RC=$?
set -e
[ -n "$EXIT_CODE" ] || EXIT_CODE=$RC
SERVER_PID=

mkdir -p "$(dirname "$OUT")"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT+dirty"
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
$PY - "$WORK" "$OUT" "$COMMIT" "$CPU" "$(nproc)" "$MODEL" "$EXIT_CODE" "${HWM_KB:-}" "$LOAD_RC" <<'EOF'
import json, re, sys, time
work, out, commit, cpu, cores, model, exit_code, hwm, load_rc = sys.argv[1:10]
r = json.load(open(f"{work}/load.json"))
server = {}
for line in open(f"{work}/metrics.txt", errors="replace"):
    m = re.match(r'seqrec_http_requests_total\{route="([^"]*)",method="([^"]*)",status="(\d+)"\} (\d+)', line)
    if m:
        server[m.group(3)] = server.get(m.group(3), 0) + int(m.group(4))
log = open(f"{work}/server.log", errors="replace").read().splitlines()
internal = [l for l in log if "internal error" in l]
report = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "commit": commit, "cpu": cpu, "cores": int(cores), "model": model,
    "duration_seconds": r.pop("seconds"),
    "server_exit_code": int(exit_code) if exit_code.lstrip("-").isdigit() else exit_code,
    "server_peak_rss_kb": int(hwm) if hwm.isdigit() else None,
    "server_status_counts": dict(sorted(server.items())),
    "server_log_internal_errors": internal[:20],
    "server_log_tail": log[-8:],
    **r,
}
ok = (not report["crashed"] and report["hangs"] == 0 and report["server_exit_code"] == 0
      and report["server_errors_5xx"] == 0 and not internal)
report["survived"] = ok
json.dump(report, open(out, "w"), indent=1)
t = report["status_totals"]
print(f"soak: {report['duration_seconds']} s, survived: {ok}; valid {t.get('valid')}; "
      f"latency {report['valid_latency'].get('all_valid')}; RSS {report['rss']['first_kb']} -> "
      f"{report['rss']['last_kb']} kB (max {report['rss']['max_kb']}); hangs {report['hangs']}; "
      f"exit {report['server_exit_code']}; report: {out}", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
