#!/usr/bin/env bash
# Load test of `seqrec serve` with wrk (Debian's `wrk`), against 127.0.0.1 only, bounded in
# time. The workload: POST /v1/events with one event for one of SESSIONS live sessions and
# K=20, i.e. one state update plus a top-20 over the whole catalogue per request.
#
# Two runs of DURATION seconds each (after a short warm-up):
#  - "rate": a fixed offered rate of about RATE requests/s. wrk has no constant-rate mode
#    (that is wrk2, not in Debian): RATE_CONNS connections each wait RATE_CONNS*1000/RATE
#    ms before every request (wrk's delay() hook), so the rate is at most RATE and falls
#    short of it by the latency and timer slack, so a 3 s calibration run first scales the
#    number of connections to make up for it; the rate achieved is reported ("rps").
#    Latency is measured from the request's send to its response (the delay not counted).
#  - "peak": PEAK_CONNS connections without delay (closed loop): maximum throughput. wrk
#    runs on the same cores as the server, so on a 2-core machine it takes a share of them;
#    the server's own CPU time is reported too (requests per server CPU-second).
# Besides wrk's client-side latency, each run reports the server-side latency from the
# server's own histogram (GET /metrics, time from request headers to response written):
# the upper bound of the bucket holding p50/p99/p99.9 ("p99_le_ms": 0.5 = at most 0.5 ms),
# and for GRU4Rec/SASRec the mean number of requests scored per pass over the output layer
# ("mean_batch") and the items rescored exactly per request after the int8 pass. The pair
# of runs is repeated REPEATS times ("runs"); "rate" and "peak" hold the medians. The
# server's peak RSS (VmHWM) is reported at the end.
#
# Usage: bench/serve_load.sh MODEL_TYPE|MODEL_FILE [OUT_JSON]
#   MODEL_TYPE (pop, sr, vsknn, gru4rec, sasrec, ...) is trained on the generated data
#   (TRAIN_ARGS are passed to `seqrec train`), a MODEL_FILE is served as it is.
# Environment (defaults): SEQREC (build-serve/seqrec, else build/seqrec), WORK
#   (/tmp/seqrec-serve-load: data and models, reused across runs), EVENTS (4000000),
#   ITEMS (40000: about 39.5k items survive preprocessing), DURATION (15), RATE (1000),
#   RATE_CONNS (20), PEAK_CONNS (16), WRK_THREADS (2), SERVER_THREADS (the server's
#   default --threads: worker threads; connections do not hold them), K (20),
#   SESSIONS (10000), TRAIN_ARGS (""), SERVE_ARGS (extra `seqrec serve` options, e.g.
#   "--max-batch 1" or "--head-storage fp32"), REPEATS (3), PREFILL (0: events added to
#   every session before the runs, e.g. 50 to give SASRec user-length histories),
#   STORE (memory: sessions in the server; redis: a redis-server started on a free loopback
#   port without persistence, and the server(s) run with --session-store), REPLICAS (1; 2
#   with STORE=redis: two servers share the Redis, and each run drives both with one wrk
#   each, half the connections and half the rate each: "rps" is their sum, the client
#   latency percentiles the larger of the two (an upper bound of the merged ones), the
#   server-side percentiles those of the two servers' histograms added up, the CPU time the
#   servers' sum; Redis' own CPU time is reported apart).
# Writes OUT_JSON (default bench/results/serve_load_<name>.json) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,41p "$0"; exit 2; }
command -v wrk >/dev/null || { echo "serve_load: wrk is not installed (scripts/setup)" >&2; exit 1; }
SEQREC=${SEQREC:-}
if [ -z "$SEQREC" ]; then
  for b in build-serve/seqrec build/seqrec; do [ -x "$b" ] && { SEQREC=$b; break; }; done
fi
[ -n "$SEQREC" ] && [ -x "$SEQREC" ] || { echo "serve_load: no seqrec binary (set SEQREC)" >&2; exit 1; }
WORK=${WORK:-/tmp/seqrec-serve-load}
EVENTS=${EVENTS:-4000000}
ITEMS=${ITEMS:-40000}
DURATION=${DURATION:-15}
RATE=${RATE:-1000}
RATE_CONNS=${RATE_CONNS:-20}
PEAK_CONNS=${PEAK_CONNS:-16}
WRK_THREADS=${WRK_THREADS:-2}
SERVER_THREADS=${SERVER_THREADS:-}
K=${K:-20}
SESSIONS=${SESSIONS:-10000}
TRAIN_ARGS=${TRAIN_ARGS:-}
SERVE_ARGS=${SERVE_ARGS:-}
REPEATS=${REPEATS:-3}
PREFILL=${PREFILL:-0}
STORE=${STORE:-memory}
REPLICAS=${REPLICAS:-1}
case "$STORE" in memory|redis) ;; *) echo "serve_load: STORE must be memory or redis" >&2; exit 1;; esac
if [ "$REPLICAS" != 1 ] && { [ "$REPLICAS" != 2 ] || [ "$STORE" != redis ]; }; then
  echo "serve_load: REPLICAS=2 needs STORE=redis (REPLICAS is 1 or 2)" >&2; exit 1
fi
if [ "$STORE" = redis ]; then
  command -v redis-server >/dev/null || { echo "serve_load: redis-server is not installed (scripts/setup)" >&2; exit 1; }
fi
mkdir -p "$WORK"

DATA="$WORK/data_${EVENTS}_${ITEMS}"
if [ ! -f "$DATA/split/test.tsv" ]; then
  mkdir -p "$DATA"
  echo "serve_load: generating $EVENTS events over $ITEMS items in $DATA" >&2
  "$SEQREC" -q generate --events "$EVENTS" --items "$ITEMS" --seed 11 -o "$DATA/log.tsv" >&2
  "$SEQREC" -q prepare "$DATA/log.tsv" -o "$DATA/split" --cache-dir none >/dev/null
fi
tail -n +2 "$DATA/split/test.tsv" | cut -f2 > "$DATA/test_items.txt"

if [ -f "$1" ]; then
  MODEL=$1
  NAME=$(basename "$1" .seqrec)
else
  NAME=$1
  MODEL="$DATA/$1.seqrec"
  if [ ! -f "$MODEL" ] || [ -n "$TRAIN_ARGS" ]; then
    echo "serve_load: training $1 $TRAIN_ARGS" >&2
    # shellcheck disable=SC2086
    "$SEQREC" -q train "$DATA/split" -m "$1" -o "$MODEL" $TRAIN_ARGS >&2
  fi
fi
OUT=${2:-bench/results/serve_load_${NAME}.json}
mkdir -p "$(dirname "$OUT")"

TMPD=$(mktemp -d)
SERVERS=()
REDIS=""
cleanup() {
  for pid in "${SERVERS[@]}" $REDIS; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}" $REDIS; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMPD"
}
trap cleanup EXIT
STORE_ARGS=""
if [ "$STORE" = redis ]; then
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMPD" \
    --logfile "$TMPD/redis.log" &
  REDIS=$!
  for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  redis-cli -p "$RPORT" ping | grep -q PONG || { echo "serve_load: redis-server did not start" >&2; exit 1; }
  STORE_ARGS="--session-store redis://127.0.0.1:$RPORT"
fi
URLS=()
for r in $(seq 1 "$REPLICAS"); do
  # shellcheck disable=SC2086
  "$SEQREC" serve "$MODEL" --host 127.0.0.1 --port 0 --port-file "$TMPD/port_$r" \
    ${SERVER_THREADS:+--threads "$SERVER_THREADS"} --max-sessions 1000000 --default-k "$K" \
    $STORE_ARGS $SERVE_ARGS 2>"$TMPD/log_$r" &
  SERVERS+=($!)
  for _ in $(seq 1 600); do
    [ -s "$TMPD/port_$r" ] && break
    kill -0 "${SERVERS[-1]}" 2>/dev/null || { cat "$TMPD/log_$r" >&2; exit 1; }
    sleep 0.1
  done
  URLS+=("http://127.0.0.1:$(cat "$TMPD/port_$r")")
done
SERVER=${SERVERS[0]}
LOG=$TMPD/log_1
PORT=$(cat "$TMPD/port_1")
# The worker threads the server runs (its default unless SERVER_THREADS is set).
SERVER_THREADS=$(sed -n 's/.*(\([0-9]*\) worker threads.*/\1/p' "$LOG" | head -1)
URL="http://127.0.0.1:$PORT"
N_ITEMS=$(curl -s "$URL/v1/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["n_items"])')
TYPE=$(curl -s "$URL/v1/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')

# CPU ticks of the servers together, and of Redis.
cpu_ticks() { for pid in "${SERVERS[@]}"; do awk '{print $14 + $15}' "/proc/$pid/stat"; done | awk '{s += $1} END {print s}'; }
redis_ticks() { if [ -n "$REDIS" ]; then awk '{print $14 + $15}' "/proc/$REDIS/stat"; else echo 0; fi; }
wrk_json() { grep '^WRKJSON ' | sed 's/^WRKJSON //'; }
# The metrics of every replica, one after the other (the analysis adds them up).
scrape() { for u in "${URLS[@]}"; do curl -s "$u/metrics"; done; }
# wrk -t THREADS -c CONNS -d DURATION against every replica at once (CONNS split between
# them), DELAY_MS from the environment; prints one WRKJSON object (merged for 2 replicas).
run_wrk() {
  local threads=$1 conns=$2 duration=$3
  if [ "$REPLICAS" = 1 ]; then
    wrk -t"$threads" -c"$conns" -d"$duration" --timeout 5s -s bench/serve_load.lua "$URL"
    return
  fi
  local per=$(( (conns + 1) / 2 )) tper=$(( (threads + 1) / 2 )) i=0 pids=()
  for u in "${URLS[@]}"; do
    i=$((i + 1))
    wrk -t"$tper" -c"$per" -d"$duration" --timeout 5s -s bench/serve_load.lua "$u" | wrk_json > "$TMPD/wrk_part_$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  python3 - "$TMPD/wrk_part_1" "$TMPD/wrk_part_2" <<'PYM'
import json, sys
parts = [json.loads(open(p).read()) for p in sys.argv[1:]]
out = dict(parts[0])
out["rps"] = sum(p["rps"] for p in parts)
out["requests"] = sum(p["requests"] for p in parts)
out["latency_ms"] = {q: max(p["latency_ms"][q] for p in parts) for q in parts[0]["latency_ms"]}
out["errors"] = {k: sum(p["errors"].get(k, 0) for p in parts) for k in parts[0]["errors"]}
print("WRKJSON " + json.dumps(out))
PYM
}
export ITEMS_FILE="$DATA/test_items.txt" SESSIONS K

if [ "$PREFILL" -gt 0 ]; then
  echo "serve_load: prefilling $SESSIONS sessions with $PREFILL events each" >&2
  python3 - "$PORT" "$DATA/test_items.txt" "$SESSIONS" "$PREFILL" <<'PY'
import http.client, json, random, sys
port, items_file, sessions, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
items = [l.strip() for l in open(items_file) if l.strip()]
random.seed(5)
c = http.client.HTTPConnection("127.0.0.1", port)
for s in range(1, sessions + 1):
    body = json.dumps({"session_id": "s%d" % s, "items": random.choices(items, k=n), "k": 1})
    for attempt in range(3):  # a keep-alive connection the server timed out: reconnect
        try:
            c.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            break
        except (ConnectionError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port)
    assert r.status == 200, r.status
PY
fi

echo "serve_load: $TYPE, $N_ITEMS items, K=$K, ${URLS[*]}, store $STORE, server options: ${SERVE_ARGS:-none}; warm-up" >&2
DELAY_MS=0 run_wrk 1 4 3s >/dev/null

DELAY=$(( RATE_CONNS * 1000 / RATE ))
# Each connection's cycle is the delay plus the latency plus timer slack, so the rate falls
# short of RATE: a 3 s calibration run measures by how much, and the connections are
# scaled up to make up for it.
CAL=$(DELAY_MS=$DELAY run_wrk 1 "$RATE_CONNS" 3s | wrk_json)
# Never more than twice the nominal number (a calibration run slowed down by other work on
# the machine would ask for far too many).
CONNS=$(python3 -c "import json,math; r=json.loads('$CAL')['rps']; c=max($RATE_CONNS, round($RATE_CONNS*$RATE/r)) if r > 0 else $RATE_CONNS; print(min(c, 2*$RATE_CONNS))")
for i in $(seq 1 "$REPEATS"); do
  cut -d' ' -f1-3 /proc/loadavg > "$TMPD/load_rate_$i"
  echo "serve_load: [$i/$REPEATS] rate run: $CONNS connections x 1 request per $DELAY ms, ${DURATION}s (load $(cat "$TMPD/load_rate_$i"))" >&2
  scrape > "$TMPD/m_rate_${i}_0"
  cpu_ticks > "$TMPD/c_rate_${i}_0"
  redis_ticks > "$TMPD/r_rate_${i}_0"
  DELAY_MS=$DELAY run_wrk 1 "$CONNS" "${DURATION}s" | wrk_json > "$TMPD/w_rate_$i"
  cpu_ticks > "$TMPD/c_rate_${i}_1"
  redis_ticks > "$TMPD/r_rate_${i}_1"
  scrape > "$TMPD/m_rate_${i}_1"
  cut -d' ' -f1-3 /proc/loadavg > "$TMPD/load_peak_$i"
  echo "serve_load: [$i/$REPEATS] peak run: $PEAK_CONNS connections, $WRK_THREADS wrk threads, ${DURATION}s (load $(cat "$TMPD/load_peak_$i"))" >&2
  scrape > "$TMPD/m_peak_${i}_0"
  cpu_ticks > "$TMPD/c_peak_${i}_0"
  redis_ticks > "$TMPD/r_peak_${i}_0"
  DELAY_MS=0 run_wrk "$WRK_THREADS" "$PEAK_CONNS" "${DURATION}s" | wrk_json > "$TMPD/w_peak_$i"
  cpu_ticks > "$TMPD/c_peak_${i}_1"
  redis_ticks > "$TMPD/r_peak_${i}_1"
  scrape > "$TMPD/m_peak_${i}_1"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
SESSIONS_LIVE=$(curl -s "$URL/metrics" | awk '$1 == "seqrec_sessions_live" {print $2}')
RSS_KB=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$SERVER/status")
SCORING=$(curl -s "$URL/v1/model" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("scoring")))')
TICKS=$(getconf CLK_TCK)

python3 - "$OUT" "$TMPD" <<PY
import json, re, statistics, sys
out_path, d = sys.argv[1], sys.argv[2]

def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'seqrec_http_request_duration_seconds_bucket\{route="/v1/events",method="POST",le="([^"]+)"\} (\d+)', line)
        if m:  # several replicas: their histograms added up
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            out[le] = out.get(le, 0) + int(m.group(2))
    return out

def counter(path, name):
    return sum(float(line.split()[1]) for line in open(path) if line.startswith(name + " "))

def server_side(a, b):
    """Upper bounds (ms) of the server-side p50/p99 from the histogram between two scrapes."""
    ba, bb = buckets(a), buckets(b)
    les = sorted(bb)
    cum = [(le, bb[le] - ba.get(le, 0)) for le in les]
    total = cum[-1][1] if cum else 0
    res = {"requests": total}
    for q in (50, 99, 99.9):
        res["p%g_le_ms" % q] = next((le * 1e3 for le, c in cum if c >= total * q / 100), None) if total else None
    return res

ticks = $TICKS
runs = []
for i in range(1, $REPEATS + 1):
    run = {}
    for kind in ("rate", "peak"):
        r = json.loads(open(f"{d}/w_{kind}_{i}").read())
        m0, m1 = f"{d}/m_{kind}_{i}_0", f"{d}/m_{kind}_{i}_1"
        r["server_latency"] = server_side(m0, m1)
        c0, c1 = (float(open(f"{d}/c_{kind}_{i}_{j}").read()) for j in (0, 1))
        r["server_cpu_s"] = (c1 - c0) / ticks
        r["requests_per_server_cpu_s"] = round(r["requests"] / r["server_cpu_s"], 1) if r["server_cpu_s"] else None
        if "$STORE" == "redis":
            r0, r1 = (float(open(f"{d}/r_{kind}_{i}_{j}").read()) for j in (0, 1))
            r["redis_cpu_s"] = (r1 - r0) / ticks
            r["store_failures"] = counter(m1, "seqrec_session_store_failures_total") - counter(m0, "seqrec_session_store_failures_total")
            r["store_retries"] = counter(m1, "seqrec_session_store_retries_total") - counter(m0, "seqrec_session_store_retries_total")
        nb = counter(m1, "seqrec_scoring_batches_total") - counter(m0, "seqrec_scoring_batches_total")
        nr = counter(m1, "seqrec_scoring_batched_requests_total") - counter(m0, "seqrec_scoring_batched_requests_total")
        rs = counter(m1, "seqrec_scoring_rescored_items_total") - counter(m0, "seqrec_scoring_rescored_items_total")
        if nb > 0:
            r["mean_batch"] = round(nr / nb, 2)
            r["rescored_per_request"] = round(rs / nr, 1)
        r["loadavg_before"] = open(f"{d}/load_{kind}_{i}").read().strip()
        if kind == "rate":
            r.update({"target_rps": $RATE, "connections": $CONNS, "delay_ms": $DELAY})
        else:
            r.update({"connections": $PEAK_CONNS, "wrk_threads": $WRK_THREADS})
        run[kind] = r
    runs.append(run)

def median_of(kind):
    rs = [run[kind] for run in runs]
    med = lambda xs: round(statistics.median(xs), 3) if xs else None
    m = {"rps": med([r["rps"] for r in rs]),
         "latency_ms": {p: med([r["latency_ms"][p] for r in rs]) for p in ("p50", "p90", "p99", "p99.9")},
         "server_p99_le_ms": med([r["server_latency"]["p99_le_ms"] for r in rs if r["server_latency"]["p99_le_ms"] is not None]),
         "requests_per_server_cpu_s": med([r["requests_per_server_cpu_s"] for r in rs if r["requests_per_server_cpu_s"]]),
         "errors": sum(sum(r["errors"].values()) for r in rs)}
    if all("mean_batch" in r for r in rs):
        m["mean_batch"] = med([r["mean_batch"] for r in rs])
        m["rescored_per_request"] = med([r["rescored_per_request"] for r in rs])
    return m

out = {
    "model": "$NAME", "type": "$TYPE", "n_items": $N_ITEMS, "k": $K,
    "workload": "POST /v1/events, 1 event per request, $SESSIONS sessions (prefilled with $PREFILL events), items from test.tsv",
    "server_args": "$SERVE_ARGS", "scoring": json.loads('$SCORING'),
    "store": "$STORE", "replicas": $REPLICAS,
    "duration_s": $DURATION, "repeats": $REPEATS, "server_threads": $SERVER_THREADS,
    "cores": $(nproc), "loadavg_after": "$LOAD_AFTER",
    "sessions_live_after": float("${SESSIONS_LIVE:-0}"),
    "server_peak_rss_mb": round(${RSS_KB:-0} / 1024, 1),
    "rate": median_of("rate"), "peak": median_of("peak"), "runs": runs,
}
json.dump(out, open(out_path, "w"), indent=2)
print(json.dumps({k: out[k] for k in out if k != "runs"}, indent=2))
PY
