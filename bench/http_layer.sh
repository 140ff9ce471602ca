#!/usr/bin/env bash
# The HTTP layer of `seqrec serve` alone (bench/http_layer_server.cc: a handler that does
# no work), on our epoll server and on cpp-httplib's (the server before), driven by wrk
# on 127.0.0.1: what the layer adds to a request's latency, and its peak rate.
#
# Runs per server, DURATION seconds each:
#  - "rate": RATE_CONNS keep-alive connections each sending a request every
#    RATE_CONNS*1000/RATE ms (wrk's delay(), as in serve_load.sh): connections idle between
#    requests, where httplib's keep-alive loop sleeps 1 ms between polls;
#  - "peak": PEAK_CONNS connections without delay.
# Usage: bench/http_layer.sh [OUT_JSON]    Environment (defaults): DURATION (5), RATE (1000),
#   RATE_CONNS (20), PEAK_CONNS (16), THREADS (8: epoll server workers, as `seqrec serve`
#   on 2 cores), HTTPLIB_THREADS (64: httplib needs a thread per connection), WRK_THREADS
#   (1), SERVERS ("epoll httplib").
# Builds build/http_layer_server (g++, -O2) from the sources; needs wrk and, for the
# httplib server, Debian's libcpp-httplib-dev (the tests' dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
RATE=${RATE:-1000}
RATE_CONNS=${RATE_CONNS:-20}
PEAK_CONNS=${PEAK_CONNS:-16}
THREADS=${THREADS:-8}
HTTPLIB_THREADS=${HTTPLIB_THREADS:-64}
WRK_THREADS=${WRK_THREADS:-1}
SERVERS=${SERVERS:-epoll httplib}
OUT=${1:-/dev/null}
BIN=build/http_layer_server
mkdir -p build
HTTPLIB_FLAGS=$(pkg-config --cflags --libs cpp-httplib 2>/dev/null || true)
if [ -n "$HTTPLIB_FLAGS" ]; then HTTPLIB_FLAGS="-DWITH_HTTPLIB $HTTPLIB_FLAGS"; fi
# shellcheck disable=SC2086
g++ -std=c++20 -O2 -Isrc -Iinclude bench/http_layer_server.cc src/serve/http/event_server.cpp \
  src/serve/http/request_parser.cpp src/serve/http/json_api.cpp -pthread $HTTPLIB_FLAGS -o "$BIN"

TMPD=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$TMPD"
}
trap cleanup EXIT
echo 1 > "$TMPD/items"
export ITEMS_FILE="$TMPD/items" SESSIONS=100 K=20
DELAY=$(( RATE_CONNS * 1000 / RATE ))
results=()
for kind in $SERVERS; do
  rm -f "$TMPD/port"
  threads=$THREADS
  [ "$kind" = httplib ] && threads=$HTTPLIB_THREADS
  "$BIN" "$kind" "$threads" "$TMPD/port" &
  SERVER=$!
  for _ in $(seq 1 100); do [ -s "$TMPD/port" ] && break; sleep 0.05; done
  URL="http://127.0.0.1:$(cat "$TMPD/port")"
  DELAY_MS=0 wrk -t1 -c4 -d1s -s bench/serve_load.lua "$URL" >/dev/null
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  rate=$(DELAY_MS=$DELAY wrk -t"$WRK_THREADS" -c"$RATE_CONNS" -d"${DURATION}s" -s bench/serve_load.lua "$URL" | grep '^WRKJSON ' | sed 's/^WRKJSON //')
  peak=$(DELAY_MS=0 wrk -t"$WRK_THREADS" -c"$PEAK_CONNS" -d"${DURATION}s" -s bench/serve_load.lua "$URL" | grep '^WRKJSON ' | sed 's/^WRKJSON //')
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  results+=("{\"server\":\"$kind\",\"threads\":$threads,\"loadavg_before\":\"$load\",\"rate\":$rate,\"peak\":$peak}")
done
{
  echo "["
  for i in "${!results[@]}"; do
    [ "$i" -gt 0 ] && echo ","
    echo "${results[$i]}"
  done
  echo "]"
} | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d, indent=1))' | tee "$OUT"
