#!/usr/bin/env bash
# Same behaviour across a refactoring: trains every model type and preset with two seqrec
# binaries (one thread, fixed seed, a small generated log) and checks that the trained
# tensors are bit-identical and that eval and recommend answer the same; and that a
# checkpoint written by the old binary resumes in the new one to the same weights.
#
#   bash bench/same_weights.sh OLD_SEQREC NEW_SEQREC [WORKDIR]
#
# Prints one line per case (same / DIFFERENT) and a JSON summary to
# bench/results/same_weights.json; exits 1 when any case differs. Old spellings of
# parameters (n_epochs, num_epochs, lr) are used on purpose, so that binaries from before the
# one-spelling change run the same commands. Run it with no other job on the machine's cores.
set -euo pipefail
OLD=$(readlink -f "$1")
NEW=$(readlink -f "$2")
W=${3:-$(mktemp -d /tmp/same_weights.XXXXXX)}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W"
cd "$W"
"$NEW" -q generate -o log.tsv --events 30000 --items 400 --seed 3
"$NEW" -q prepare log.tsv -o split
"$NEW" -q generate -o seq.tsv --events 20000 --items 300 --seed 4
"$NEW" -q prepare seq.tsv -o seqsplit --protocol sequential --user-core 2 --item-core 2
# Twenty test sessions (item ids in order, one per line) for `recommend`.
for d in split seqsplit; do
  awk -F'\t' 'NR > 1 { if ($1 != s) { if (n++ >= 20) exit; if (s != "") print line; line = ""; s = $1 }
               line = line (line == "" ? "" : " ") $2 } END { print line }' "$d/test.tsv" \
    >"$d.sessions"
done

# label | data | train arguments
CASES=(
  "pop|split|-m pop"
  "sr|split|-m sr"
  "vsknn|split|-m vsknn"
  "gru4rec|split|-m gru4rec --n-epochs 2"
  "gru4rec-bprmax-embed|split|-m gru4rec --loss bpr-max --layers 32 --constrained-embedding false --embedding 16 --n-sample 64 --dropout-p-embed 0.2 --dropout-p-hidden 0.3 --momentum 0.2 --n-epochs 2"
  "gru4rec-top1max-gruemb|split|-m gru4rec --loss top1-max --layers 24,24 --constrained-embedding false --n-sample 32 --n-epochs 2"
  "sasrec-bce|seqsplit|-m sasrec --maxlen 20 --hidden-units 16 --num-epochs 3 --batch-size 32"
  "sasrec-ce|seqsplit|-m sasrec --maxlen 20 --hidden-units 16 --num-epochs 3 --loss ce --lr 0.002"
  "sasrec-ssm-pop|seqsplit|-m sasrec --maxlen 20 --hidden-units 16 --num-epochs 3 --loss sampled_softmax --sampling pop --n-negatives 32"
  "sasrec-gbce-plus|seqsplit|-m sasrec --preset ml1m_plus --maxlen 20 --num-epochs 3 --loss gbce --n-negatives 16"
  "sasrec-early-stop|seqsplit|-m sasrec --maxlen 20 --hidden-units 16 --num-epochs 8 --validation --monitor --patience 1"
  "gru4rec-early-stop|split|-m gru4rec --layers 32 --n-sample 64 --learning-rate 0.3 --n-epochs 6 --validation --monitor --patience 1"
)
for p in rsc15 yoochoose rees46 diginetica bprmax retailrocket coveo; do
  CASES+=("gru4rec-$p|split|-m gru4rec --preset $p --n-epochs 1 --n-sample 128")
done
for p in ml1m amazon beauty ml1m_plus beauty_plus; do
  CASES+=("sasrec-$p|seqsplit|-m sasrec --preset $p --num-epochs 2")
done

same=0
differ=0
results=()
for c in "${CASES[@]}"; do
  IFS='|' read -r label data args <<<"$c"
  # shellcheck disable=SC2086
  for side in old new; do
    bin=$OLD
    [ "$side" = new ] && bin=$NEW
    "$bin" -q --threads 1 train "$data" $args --seed 7 -o "$label.$side.seqrec" \
      >"$label.$side.train.log" 2>&1 || { echo "$label: $side failed:"; tail -3 "$label.$side.train.log"; exit 2; }
    # The metrics table without its last column (seconds).
    "$bin" -q --threads 1 eval -m "$label.$side.seqrec" "$data" 2>/dev/null |
      awk '{ $NF = ""; print }' >"$label.$side.metrics"
    "$bin" -q --threads 1 recommend -m "$label.$side.seqrec" -i "$data.sessions" -k 10 \
      >"$label.$side.rec" 2>&1
    /usr/bin/python3 "$HERE/tensor_digest.py" "$label.$side.seqrec" >"$label.$side.digest"
  done
  if cmp -s "$label.old.digest" "$label.new.digest" && cmp -s "$label.old.metrics" "$label.new.metrics" \
    && cmp -s "$label.old.rec" "$label.new.rec"; then
    echo "same       $label ($(wc -l <"$label.new.digest") tensors)"
    same=$((same + 1))
    results+=("{\"case\": \"$label\", \"same\": true}")
  else
    echo "DIFFERENT  $label"
    diff "$label.old.digest" "$label.new.digest" | head -5 || true
    differ=$((differ + 1))
    results+=("{\"case\": \"$label\", \"same\": false}")
  fi
done
# Old checkpoints resume in the new binary: epoch-2 checkpoints written by OLD, resumed to 4
# epochs by NEW, against OLD's uninterrupted 4-epoch run.
for c in "gru4rec|split|-m gru4rec --layers 32 --n-sample 64 --dropout-p-hidden 0.2 --momentum 0.2 --n-epochs" \
  "sasrec|seqsplit|-m sasrec --maxlen 20 --hidden-units 16 --num-heads 2 --num-epochs"; do
  IFS='|' read -r label data args <<<"$c"
  label="resume-$label"
  mon=(--validation --monitor --patience 3 --seed 7)
  # shellcheck disable=SC2086
  "$OLD" -q --threads 1 train "$data" $args 2 "${mon[@]}" --checkpoint "$label.ckpt" -o "$label.2.seqrec"
  # shellcheck disable=SC2086
  "$OLD" -q --threads 1 train "$data" $args 4 "${mon[@]}" -o "$label.old.seqrec"
  # shellcheck disable=SC2086
  "$NEW" -q --threads 1 train "$data" $args 4 "${mon[@]}" --resume "$label.ckpt" -o "$label.new.seqrec"
  /usr/bin/python3 "$HERE/tensor_digest.py" "$label.old.seqrec" >"$label.old.digest"
  /usr/bin/python3 "$HERE/tensor_digest.py" "$label.new.seqrec" >"$label.new.digest"
  if cmp -s "$label.old.digest" "$label.new.digest"; then
    echo "same       $label (old checkpoint resumed by the new binary)"
    same=$((same + 1))
    results+=("{\"case\": \"$label\", \"same\": true}")
  else
    echo "DIFFERENT  $label"
    differ=$((differ + 1))
    results+=("{\"case\": \"$label\", \"same\": false}")
  fi
done

mkdir -p "$HERE/results"
{
  echo "{\"old\": \"$("$OLD" --version | head -1)\", \"new\": \"$("$NEW" --version | head -1)\","
  echo " \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\","
  echo " \"same\": $same, \"different\": $differ, \"cases\": ["
  (IFS=,; echo "  ${results[*]}")
  echo "]}"
} >"$HERE/results/same_weights.json"
echo "$same same, $differ different (work files in $W)"
[ "$differ" -eq 0 ]
