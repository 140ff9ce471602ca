#!/usr/bin/env bash
# Adding an item live (POST /v1/items, issue 16's target: "under 1 ms, and the next request
# can return it"), on an ML-1M-sized dssm model: a generated log over 3,706 items, a
# generated movies.dat-style feature file (title text + genres), dssm with its default
# widths (300-300-128). A client on one keep-alive connection adds N items one after the
# other; after each add, one POST /v1/recommend whose allow-list is the new item checks that
# the very next request can return it. Latencies are the client's (HTTP included), per add.
# Runs without and with --items-file (one fsync per add).
#
# Usage: bench/items_add.sh [OUT_JSON]   Environment (defaults): N (1000 adds), EVENTS
#   (200000 events in the log: the catalogue size is what matters), ITEMS (3706), EPOCHS (1),
#   SEQREC (build/seqrec), PYTHON (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
EVENTS=${EVENTS:-200000}
ITEMS=${ITEMS:-3706}
EPOCHS=${EPOCHS:-1}
SEQREC=${SEQREC:-build/seqrec}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${1:-/dev/stdout}
TMPD=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$TMPD"
}
trap cleanup EXIT

"$SEQREC" -q generate --events "$EVENTS" --items "$ITEMS" --seed 1 -o "$TMPD/log.tsv" --force
"$PYTHON" - "$TMPD/log.tsv" "$TMPD/movies.dat" <<'EOF'
import random, sys
items = sorted({l.split("\t")[1] for l in open(sys.argv[1]).read().splitlines()[1:]})
g = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
     "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
     "Thriller", "War", "Western"]
w = ["toy", "story", "night", "river", "king", "space", "love", "war", "blue", "house", "storm",
     "city", "last", "dark", "summer", "dead", "man", "woman", "return", "secret"]
r = random.Random(3)
with open(sys.argv[2], "w") as f:
    for it in items:
        title = " ".join(r.choice(w) for _ in range(r.randint(1, 4)))
        f.write(f"{it}::{title} ({r.randint(1920, 2000)})::{'|'.join(r.sample(g, r.randint(1, 3)))}\n")
EOF
"$SEQREC" -q train "$TMPD/log.tsv" -m dssm --item-features "$TMPD/movies.dat" --epochs "$EPOCHS" \
  -o "$TMPD/dssm.seqrec" --force >/dev/null

run_one() {  # $1 = label, the rest: extra serve flags
  local label=$1
  shift
  rm -f "$TMPD/port"
  "$SEQREC" serve "$TMPD/dssm.seqrec" --port 0 --port-file "$TMPD/port" --threads 4 \
    --max-added-items $((N + 10)) "$@" 2>"$TMPD/serve.log" &
  SERVER=$!
  for _ in $(seq 600); do [ -s "$TMPD/port" ] && break; sleep 0.1; done
  "$PYTHON" - "$(cat "$TMPD/port")" "$N" "$label" <<'EOF'
import http.client, json, random, sys, time
port, n, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port)
H = {"Content-Type": "application/json"}
def post(path, body):
    c.request("POST", path, json.dumps(body), H)
    r = c.getresponse()
    return r.status, json.loads(r.read())
r = random.Random(5)
genres = ["Action", "Comedy", "Drama", "Horror", "Animation", "Sci-Fi"]
lat, found = [], 0
some_item = None
for i in range(n):
    body = {"id": f"new{i}", "features": {"title": f"night river {r.randint(1, 99)} (2027)",
                                          "genres": "|".join(r.sample(genres, 2))}}
    t0 = time.perf_counter()
    st, ans = post("/v1/items", body)
    lat.append(time.perf_counter() - t0)
    assert st == 201, ans
    st, rec = post("/v1/recommend", {"items": [f"new{i}"], "k": 1, "allowed_items": [f"new{i}"]})
    found += st == 200 and [x["item"] for x in rec["items"]] == [f"new{i}"]
raw = list(lat)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
print(json.dumps({"label": label, "adds": n, "p50_ms": round(q(0.5), 4), "p90_ms": round(q(0.9), 4),
                  "p99_ms": round(q(0.99), 4), "max_ms": round(lat[-1] * 1e3, 4),
                  "first_100_p50_ms": round(sorted(raw[:100])[50] * 1e3, 4) if n >= 100 else None,
                  "next_request_returned_it": found}))
EOF
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  SERVER=
}

{
  echo "["
  run_one "memory"
  echo ","
  run_one "items-file" --items-file "$TMPD/items.jsonl"
  echo "]"
} > "$TMPD/out.json"
cat "$TMPD/out.json" > "$OUT"
