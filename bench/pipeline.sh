#!/usr/bin/env bash
# End-to-end pipeline benchmark: generate N events, then time `prepare` and
# `train pop` + `eval` with wall time and peak RSS of each step (GNU time).
# Usage: bench/pipeline.sh [EVENTS] [ITEMS] [OUT_JSON]   (defaults: 10000000 40000 stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
ITEMS=${2:-40000}
OUT=${3:-/dev/stdout}
B=./build/seqrec
[ -x "$B" ] || bash scripts/build >/dev/null
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

measure() {  # name, command...: prints "name wall_s rss_kb"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/$name.time" "$@" > "$W/$name.log" 2>&1 || { cat "$W/$name.log" >&2; exit 1; }
  read -r wall rss < "$W/$name.time"
  echo "$name $wall $rss"
}

$B -q generate --events "$EVENTS" --items "$ITEMS" --mean-length 5 -o "$W/log.tsv"
{
  measure prepare $B -q prepare "$W/log.tsv" -o "$W/split" --cache-dir "$W/cache"
  measure prepare_cached $B -q prepare "$W/log.tsv" -o "$W/split2" --cache-dir "$W/cache"
  measure train_pop $B -q train "$W/split" -m pop -o "$W/pop.seqrec"
  measure eval_pop $B -q eval -m "$W/pop.seqrec" "$W/split" --json "$W/eval.json"
} > "$W/results.txt"
python3 - "$W/results.txt" "$W/eval.json" "$EVENTS" "$ITEMS" "$(nproc)" > "$OUT" <<'PY'
import json, sys
res = {}
for line in open(sys.argv[1]):
    name, wall, rss = line.split()
    res[name] = {"wall_s": float(wall), "peak_rss_mib": round(int(rss) / 1024, 1)}
ev = json.load(open(sys.argv[2]))
print(json.dumps({"benchmark": "pipeline", "events": int(sys.argv[3]), "items": int(sys.argv[4]),
                  "cores": int(sys.argv[5]), "steps": res,
                  "prepare_plus_eval_s": round(res["prepare"]["wall_s"] + res["train_pop"]["wall_s"] + res["eval_pop"]["wall_s"], 2),
                  "eval_predictions": ev["n_predictions"], "recall@20": ev["recall@20"]}, indent=2))
PY
