#!/usr/bin/env bash
# What `seqrec serve --reload-replay-events N` costs in accuracy (docs/http-api.md#post-v1reload).
# After a reload with the same catalogue, a GRU4Rec session's new state is built from its
# last N kept events only. The worst case is a reload right before every prediction: each
# test prefix is then scored from its last N events. This script measures exactly that:
# every prefix of every test session (the next item is the target, as in `seqrec eval`'s
# session protocol) is truncated to its last N events, recommended with
# `seqrec recommend -k 20 --input`, and Recall@20 / MRR@20 are computed from the lists
# (N = 0: the whole prefix, i.e. no bound). A real reload affects only the predictions made
# right after it, so the differences are upper bounds.
#
# Usage: bench/reload_replay_accuracy.sh [MODEL_FILE]
#   without MODEL_FILE, GRU4Rec (preset rsc15, EPOCHS epochs) is trained on TRAIN first.
# Environment (defaults): SEQREC (build/seqrec), DATA (../shared/data/rsc15-100k),
#   TRAIN ($DATA/yoochoose-clicks-100k_train_full.txt), TEST ($DATA/yoochoose-clicks-100k_test.txt),
#   EPOCHS (5), NS ("0 1 2 3 5 10 20 50 100"), WORK (/tmp/seqrec-replay-accuracy).
# Prints one JSON object per N and writes them to bench/results/reload_replay_accuracy.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SEQREC=${SEQREC:-build/seqrec}
DATA=${DATA:-../shared/data/rsc15-100k}
TRAIN=${TRAIN:-$DATA/yoochoose-clicks-100k_train_full.txt}
TEST=${TEST:-$DATA/yoochoose-clicks-100k_test.txt}
EPOCHS=${EPOCHS:-5}
NS=${NS:-"0 1 2 3 5 10 20 50 100"}
WORK=${WORK:-/tmp/seqrec-replay-accuracy}
PY=/usr/bin/python3
[ -f "$TEST" ] || { echo "reload_replay_accuracy: $TEST not found (../shared/data absent?)" >&2; exit 1; }
mkdir -p "$WORK" bench/results
MODEL=${1:-}
if [ -z "$MODEL" ]; then
  MODEL=$WORK/gru4rec.seqrec
  [ -f "$MODEL" ] || "$SEQREC" --quiet train "$TRAIN" -m gru4rec --preset rsc15 \
    --n-epochs "$EPOCHS" -o "$MODEL"
fi
OUT=bench/results/reload_replay_accuracy.json
: > "$OUT"
# N = 0 first: its prefixes (the whole ones) tell which prefixes a bound truncates.
NS="0 $(echo "$NS" | tr ' ' '\n' | grep -vx 0 | tr '\n' ' ')"
for N in $NS; do
  # Prefixes truncated to their last N events, and the targets.
  "$PY" - "$TEST" "$N" "$WORK/prefixes_$N.txt" "$WORK/targets.txt" <<'PYEOF'
import sys
test, n, out, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sessions, order = {}, []
with open(test) as f:
    header = f.readline().rstrip("\n").split("\t")
    si, ii = header.index("SessionId"), header.index("ItemId")
    ti = header.index("Time")
    rows = []
    for line in f:
        p = line.rstrip("\n").split("\t")
        rows.append((p[si], float(p[ti]), p[ii]))
# Each session in time order (the file's order within a session, as eval reads it).
for s, t, i in rows:
    if s not in sessions:
        sessions[s] = []
        order.append(s)
    sessions[s].append(i)
with open(out, "w") as o, open(targets, "w") as g:
    for s in order:
        items = sessions[s]
        for k in range(1, len(items)):
            prefix = items[:k] if n == 0 else items[max(0, k - n):k]
            o.write(" ".join(prefix) + "\n")
            g.write(items[k] + "\n")
PYEOF
  "$SEQREC" recommend -m "$MODEL" --input "$WORK/prefixes_$N.txt" -k 20 --json > "$WORK/rec_$N.jsonl"
  "$PY" - "$WORK/rec_$N.jsonl" "$WORK/targets.txt" "$N" "$WORK/prefixes_0.txt" <<'PYEOF' | tee -a "$OUT"
import json, sys
recs, targets, n, full = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
hits = rr = count = cut = 0
lens = [len(l.split()) for l in open(full)]
for line, target, length in zip(open(recs), open(targets), lens):
    items = [x["item"] for x in json.loads(line)["items"]]
    target = target.strip()
    count += 1
    if n and length > n:
        cut += 1
    if target in items:
        hits += 1
        rr += 1.0 / (items.index(target) + 1)
print(json.dumps({"replay_events": n, "predictions": count, "prefixes_truncated": cut,
                  "recall@20": round(hits / count, 6), "mrr@20": round(rr / count, 6)}))
PYEOF
done
