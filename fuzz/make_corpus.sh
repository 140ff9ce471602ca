#!/usr/bin/env bash
# Makes the seed corpora of the libFuzzer harnesses (fuzz/*.cpp); nothing here is committed.
#
# Usage: fuzz/make_corpus.sh OUT_DIR [SEQREC_BINARY]
#   OUT_DIR/event_log     the first lines of every file in ../shared/data (when present),
#                         small generated logs in each format, hand-written edge cases, and
#                         binary cache files; each after the harness's 12 option bytes
#   OUT_DIR/model_file    models of every type trained by seqrec on generated data, GRU4Rec
#                         and SASRec checkpoints, the committed fixtures (tests/data/models),
#                         each as it is and as "JSON header \0 data" (see fuzz_model_file.cpp)
#   OUT_DIR/http_parser   requests: simple, with bodies, chunked, pipelined, HTTP/1.0, ...
#   OUT_DIR/json_request  request bodies of POST /v1/events and /v1/recommend
#   OUT_DIR/features      feature files: the first lines of ml-1m's movies.dat and users.dat
#                         and the first items of Beauty's item2attributes JSON (when
#                         ../shared/data is present), hand-written RecBole, CSV and TSV
#                         tables; each after the harness's 4 option bytes
# SEQREC_BINARY defaults to build/seqrec. Takes a few seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:?usage: make_corpus.sh OUT_DIR [SEQREC_BINARY]}
seqrec=${2:-$root/build/seqrec}
shared=${SEQREC_SHARED_DATA:-$root/../shared/data}
py=/usr/bin/python3
[ -x $py ] || py=python3
[ -x "$seqrec" ] || { echo "make_corpus: no seqrec binary at $seqrec" >&2; exit 1; }
export GOMP_SPINCOUNT=0 OMP_NUM_THREADS=1
# The fuzz build's seqrec is instrumented: leaks at exit are not this script's business.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

rm -rf "$out"
mkdir -p "$out"/{event_log,model_file,http_parser,json_request,features}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- event_log: 12 option bytes (see fuzz_event_log.cpp), then the file ----
n=0
log_seed() {  # OPTION_BYTES_AS_PRINTF_ESCAPES FILE
  n=$((n + 1))
  { printf "$1"; cat "$2"; } > "$out/event_log/seed_$n"
}
auto='\0\0\0\0\0\0\0\0\0\0\0\0'
if [ -d "$shared" ]; then
  while IFS= read -r -d '' f; do
    case $f in *.json) continue ;; esac
    head -n 40 "$f" | head -c 3000 > "$work/head"
    log_seed "$auto" "$work/head"
  done < <(find "$shared" -type f ! -name README.md -print0 | sort -z)
fi
"$seqrec" -q generate --events 400 --items 40 --mean-length 4 --seed 7 -o "$work/gen.tsv"
log_seed "$auto" "$work/gen.tsv"
tr '\t' ',' < "$work/gen.tsv" > "$work/gen.csv"
log_seed '\0\0\0\0\0\0\0\001\0\0\0\0' "$work/gen.csv"
# Sessions in the sequences format, and user-item pairs.
tail -n +2 "$work/gen.tsv" | awk -F'\t' '{s[$1] = s[$1] " " $2} END {for (k in s) print k s[k]}' \
  | head -n 60 > "$work/gen.txt"
log_seed '\003\0\0\0\0\0\0\0\003\0\0\0' "$work/gen.txt"
tail -n +2 "$work/gen.tsv" | cut -f1,2 | tr '\t' ' ' | head -n 200 > "$work/pairs.txt"
log_seed '\004\0\0\0\0\0\0\0\003\0\0\0' "$work/pairs.txt"
{ printf 'user_id:token\titem_id:token\ttimestamp:float\n'; tail -n +2 "$work/gen.tsv" | head -n 200; } \
  > "$work/gen.inter"
log_seed '\002\0\0\0\0\0\0\0\002\0\0\0' "$work/gen.inter"
# Milliseconds, dates (DIGINETICA), a byte order mark, CRLF, quotes, ratings, junk.
printf 'SessionId,ItemId,Time\n1,a,1462752000000\n1,b,1462752060000\n2,a,1462752120000\n2,c,1462752180000\n' > "$work/ms.csv"
log_seed "$auto" "$work/ms.csv"
printf 'session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n1;NA;31331;1031018;2016-05-09\n2;5;32118;243569;2016-05-10\n2;5;81766;300000;2016-05-10\n' > "$work/digi.csv"
log_seed "$auto" "$work/digi.csv"
printf '\xef\xbb\xbfSessionId\tItemId\tTime\r\n1\t10\t100\r\n1\t11\t101\r\n2\t10\t200\r\n' > "$work/bom.tsv"
log_seed "$auto" "$work/bom.tsv"
printf '"s,1","i,1","100"\n"s,1","i,2","101"\n"s 2","i,1","102"\n' > "$work/quoted.csv"
log_seed '\001\002\0\0\0\0\0\0\001\0\0\0' "$work/quoted.csv"
printf 'user item rating time\n1 5 4 881250949\n1 6 3 881250950\n2 5 5 881250951\n' > "$work/ratings.txt"
log_seed "$auto" "$work/ratings.txt"
printf '1\t2\t3\n1\t3\t\n\t\t\n1\t4\t-5\n1\t5\tnan\n1\t6\t1e400\n' > "$work/junk.tsv"
log_seed '\0\0\002\0\0\0\0\0\0\0\0\0' "$work/junk.tsv"
# The same generated log through the binary cache (mode 1), with each protocol.
head -n 150 "$work/gen.tsv" > "$work/gen150.tsv"
log_seed '\0\0\0\0\0\0\0\0\0\0\0\001' "$work/gen150.tsv"
log_seed '\0\0\0\0\0\0\0\0\0\001\0\0' "$work/gen150.tsv"
log_seed '\0\0\0\0\0\0\0\0\0\002\0\0' "$work/gen150.tsv"
log_seed '\0\0\0\0\0\0\0\0\0\012\0\0' "$work/gen150.tsv"
# Cache files (mode 2): the flags word and what follows the key of a real cache file.
for f in gen150.tsv gen.txt; do
  "$seqrec" -q prepare "$work/$f" --cache-dir "$work/cache_$f" -o "$work/split_$f" --force \
    >/dev/null 2>&1 || true
  for c in "$work/cache_$f"/*.bin; do
    [ -f "$c" ] || continue
    n=$((n + 1))
    $py - "$c" "$out/event_log/seed_$n" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
key_len = struct.unpack_from("<Q", b, 16)[0]
open(sys.argv[2], "wb").write(bytes(11) + b"\x02" + b[12:16] + b[24 + key_len:])
PY
  done
done

# ---- model_file: models trained on a generated log, checkpoints, the fixtures ----
"$seqrec" -q generate --events 600 --items 30 --mean-length 5 --seed 11 -o "$work/train.tsv"
models=()
train() {  # NAME ARGS...
  local name=$1
  shift
  if "$seqrec" -q train "$work/train.tsv" --cache-dir none -o "$work/$name.seqrec" "$@" \
    > "$work/$name.log" 2>&1; then
    models+=("$work/$name.seqrec")
  else
    echo "make_corpus: training $name failed:" >&2
    cat "$work/$name.log" >&2
  fi
}
train pop -m pop
train sr -m sr
train vsknn -m vsknn --k 5 --sample-size 20
train gru4rec -m gru4rec --layers 8 --epochs 1 --batch-size 4 --n-sample 4 \
  --checkpoint "$work/gru4rec_ck.seqrec"
train gru4rec_bpr -m gru4rec --layers 6,5 --loss bpr-max --constrained-embedding false \
  --embedding 4 --epochs 1 --batch-size 4 --n-sample 0
train sasrec -m sasrec --hidden-units 8 --num-blocks 1 --num-heads 2 --maxlen 6 --epochs 1 \
  --batch-size 8 --checkpoint "$work/sasrec_ck.seqrec"
for f in "$work"/gru4rec_ck.seqrec "$work"/sasrec_ck.seqrec "$root"/tests/data/models/*.seqrec; do
  [ -f "$f" ] && models+=("$f")
done
for f in "${models[@]}"; do
  base=$(basename "$f" .seqrec)
  cp "$f" "$out/model_file/raw_$base"
  # "JSON header \0 data section": the framing the harness rebuilds around mutations.
  $py - "$f" "$out/model_file/json_$base" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
header_len = struct.unpack_from("<Q", b, 16)[0]
start = (24 + header_len + 63) // 64 * 64
open(sys.argv[2], "wb").write(b[24:24 + header_len] + b"\0" + b[start:len(b) - 16])
PY
done

# ---- http_parser: 4 option bytes (limits, piece sizes), then the connection's bytes ----
n=0
http_seed() {  # OPTION_BYTES REQUEST_BYTES (printf escapes)
  n=$((n + 1))
  printf "$1$2" > "$out/http_parser/seed_$n"
}
body='{"session_id":"s1","items":["1","2"]}'
http_seed '\0\001\002\003' 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'
http_seed '\0\007\0\0' "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n$body"
http_seed '\0\011\0\0' 'POST /v1/recommend HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"ite\r\n7\r\nms":[]}\r\n0\r\nTrailer: x\r\n\r\n'
http_seed '\0\005\0\0' 'GET /v1/model HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\nDELETE /v1/sessions/a%20b HTTP/1.1\r\n\r\n'
http_seed '\0\003\0\0' 'GET http://example.com:8080/health?x=1#f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
http_seed '\0\013\0\0' 'POST /v1/events HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}'
http_seed '\0\017\0\0' '\r\n\nOPTIONS * HTTP/1.1\nHost: a\n\n'
http_seed '\001\0\0\0' 'POST /v1/events HTTP/1.1\r\nContent-Length: 5, 5\r\nX-A: 1\r\nX-B: 2\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n'
http_seed '\003\0\0\0' 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
http_seed '\0\0\0\0' 'GET / HTTP/2.0\r\n\r\n'

# ---- json_request: 1 option byte (endpoint, model), then the body ----
n=0
json_seed() {  # OPTION_BYTE BODY
  n=$((n + 1))
  { printf "$1"; printf '%s' "$2"; } > "$out/json_request/seed_$n"
}
# Item ids of the fixtures (all the same generated catalogue).
ids=$($py - "$root/tests/data/models/gru4rec_v1.seqrec" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[24:24 + struct.unpack_from("<Q", b, 16)[0]])
print(" ".join(json.dumps(i) for i in h["items"][:4]))
PY
)
set -- $ids
a=${1:-\"1\"} b=${2:-\"2\"} c=${3:-\"3\"}
for m in 0 2 4 6 8 10; do
  json_seed "\\$(printf %03o $m)" "{\"session_id\":\"s$m\",\"items\":[$a,$b],\"timestamps\":[1.5,2],\"k\":5}"
  json_seed "\\$(printf %03o $m)" "{\"session_id\":$m,\"items\":[$c,\"unknown\"],\"exclude_seen\":true,\"forbidden_items\":[$a]}"
  json_seed "\\$(printf %03o $((m + 1)))" "{\"items\":[$a,$b,$c],\"k\":3,\"allowed_items\":[$a,$b,$c,\"x\"]}"
  json_seed "\\$(printf %03o $((m + 1)))" "{\"items\":[$c],\"exclude_seen\":false,\"k\":1000000000000}"
done
json_seed '\0' '{"session_id":"s","items":[]}'
json_seed '\0' '{"session_id":"","items":[1]}'
json_seed '\001' '{"items":[[["deep"]]]}'
json_seed '\001' '[1,2]'
json_seed '\0' '{"session_id":"s","items":["1"],"timestamps":[1e999]}'
# ---- features: 4 option bytes (file name, columns, text, alignment; fuzz_features.cpp) ----
n=0
feature_seed() {  # OPTION_BYTES_AS_PRINTF_ESCAPES FILE
  n=$((n + 1))
  { printf "$1"; cat "$2"; } > "$out/features/seed_$n"
}
if [ -f "$shared/ml-1m/movies.dat" ]; then
  head -n 40 "$shared/ml-1m/movies.dat" > "$work/movies.dat"
  feature_seed '\001\0\0\0' "$work/movies.dat"
  feature_seed '\001\002\003\001' "$work/movies.dat"
  feature_seed '\0\0\040\005' "$work/movies.dat"
fi
if [ -f "$shared/ml-1m/users.dat" ]; then
  head -n 40 "$shared/ml-1m/users.dat" > "$work/users.dat"
  feature_seed '\002\0\0\0' "$work/users.dat"
  feature_seed '\002\003\0\002' "$work/users.dat"
fi
if [ -f "$shared/beauty/Beauty_item2attributes.json" ]; then
  # The first 40 items of the object, still a JSON object.
  $py - "$shared/beauty/Beauty_item2attributes.json" "$work/attrs.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
json.dump(dict(list(d.items())[:40]), open(sys.argv[2], "w"))
PY
  feature_seed '\007\0\0\0' "$work/attrs.json"
  feature_seed '\007\0\0\011' "$work/attrs.json"
fi
printf 'item_id:token\ttitle:token_seq\tprice:float\tvec:float_seq\n1\tred shoe\t9.5\t1 2 3\n2\tblue hat\t\t4 5 6\n3\t\t1e3\t\n' \
  > "$work/a.item"
feature_seed '\003\0\0\0' "$work/a.item"
feature_seed '\004\0\003\0' "$work/a.item"
printf 'movieId,title,genres\n1,"Toy Story, The (1995)",Animation|Comedy\n2,Heat (1995),Action\n3,"A ""quoted"" title",\n' \
  > "$work/movies.csv"
feature_seed '\005\0\0\0' "$work/movies.csv"
feature_seed '\005\004\0\0' "$work/movies.csv"
printf 'item_id\ttitle\tcategories\tprice\n10\tA lamp\thome garden\t12.0\n11\tA desk\thome\t80\n12\tpaper\toffice\t0.5\n' \
  > "$work/items.tsv"
feature_seed '\006\0\0\0' "$work/items.tsv"
feature_seed '\006\005\021\0' "$work/items.tsv"
printf 'id;v\n1;0.5 1.5\n2;2 3\n' > "$work/seq.txt"
feature_seed '\010\007\0\0' "$work/seq.txt"
printf '\0\200\0\0' > "$out/features/seed_spec"  # an empty spec taken from the input
echo "make_corpus: $(find "$out" -type f | wc -l) seeds in $out"
