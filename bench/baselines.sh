#!/usr/bin/env bash
# Accuracy of the baselines on the real data sets of ../shared/data, with the exact
# protocols of docs/evaluation.md. Writes one JSON object per (data, model) line to
# OUT_JSONL (default bench/results/baselines.jsonl) and prints a Markdown table.
# Usage: bench/baselines.sh [OUT_JSONL]
set -euo pipefail
cd "$(dirname "$0")/.."
D=../shared/data
[ -d "$D" ] || { echo "bench: ../shared/data absent, nothing to do" >&2; exit 0; }
B=./build/seqrec
[ -x "$B" ] || bash scripts/build >/dev/null
OUT=${1:-bench/results/baselines.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MODELS=${MODELS:-pop sr vsknn}

run() {  # name train test protocol-args...
  local name=$1 train=$2 test=$3; shift 3
  for m in $MODELS; do
    /usr/bin/time -f "%e %M" -o "$W/t" $B -q train "$train" -m "$m" -o "$W/$m.seqrec" >/dev/null
    read -r tw trss < "$W/t"
    /usr/bin/time -f "%e %M" -o "$W/e" $B -q eval -m "$W/$m.seqrec" "$test" --cutoffs 10,20 --json "$W/r.json" "$@" >/dev/null
    read -r ew erss < "$W/e"
    python3 - "$W/r.json" "$name" "$m" "$tw" "$trss" "$ew" "$erss" >> "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keep = {k: r[k] for k in r if "@" in k}
print(json.dumps({"data": sys.argv[2], "model": sys.argv[3], "protocol": r["protocol"],
                  "predictions": r["n_predictions"], "train_wall_s": float(sys.argv[4]),
                  "train_rss_mib": round(int(sys.argv[5]) / 1024, 1), "eval_wall_s": float(sys.argv[6]),
                  "eval_rss_mib": round(int(sys.argv[7]) / 1024, 1), **keep}))
PY
  done
}

run rsc15-100k $D/rsc15-100k/yoochoose-clicks-100k_train_full.txt $D/rsc15-100k/yoochoose-clicks-100k_test.txt
run yoochoose1_64 $D/yoochoose1_64/train.tsv $D/yoochoose1_64/test.tsv
$B -q prepare $D/ml-1m/ml-1m.txt --protocol sequential -o "$W/ml1m" >/dev/null
run ml-1m "$W/ml1m" "$W/ml1m"
$B -q prepare $D/beauty/Beauty.txt --protocol sequential -o "$W/beauty" >/dev/null
run beauty "$W/beauty" "$W/beauty"

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| data | protocol | model | Recall/HR@10 | MRR@10 | NDCG@10 | Recall/HR@20 | MRR@20 | NDCG@20 | train s | eval s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['data']} | {r['protocol']} | {r['model']} | {r['recall@10']:.4f} | {r['mrr@10']:.4f} | {r['ndcg@10']:.4f} | "
          f"{r['recall@20']:.4f} | {r['mrr@20']:.4f} | {r['ndcg@20']:.4f} | {r['train_wall_s']:.2f} | {r['eval_wall_s']:.2f} |")
PY
