#!/usr/bin/env bash
# Memory and time of bulk writes: PUT /<table> (and POST) of large CSV, JSON
# and NDJSON bodies (and CSV without an id column, whose rows get ids), one
# at a time and four at once, and four at once with room for one, each run
# on a fresh server so that its peak resident memory (VmHWM) belongs to that
# run alone.
# Loopback only; every run is bounded (a few seconds each).
#
#   bench/bulk.sh                 # SIZES="10 49" MB of body; prints a markdown table
#   SIZES=20 FLAGS="--max-bulk-bytes 100000000" bench/bulk.sh
#   CSVD=/other/build/csvd bench/bulk.sh   # measure another build
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-10 49}
FLAGS=${FLAGS:-}
# Seconds a request may take before the run is called failed.
LIMIT=${LIMIT:-120}

# CSVD=/path/to/csvd measures another build (one from before a change, say).
if [ -n "${CSVD:-}" ]; then
  BIN=$CSVD
else
  cargo build --release --quiet
  BIN=$PWD/target/release/csvd
fi
work=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# start: a fresh csvd on an empty data directory; sets PID and URL.
start() {
  rm -rf "$work/data"
  mkdir -p "$work/data"
  # shellcheck disable=SC2086
  "$BIN" serve "$work/data" --bind 127.0.0.1:0 --log-level error $FLAGS >"$work/stdout" &
  PID=$!
  for _ in $(seq 200); do
    URL=$(sed -n 's/^csvd listening on //p' "$work/stdout")
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  echo "csvd did not start" >&2
  exit 1
}
stop() {
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
}
kb() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$PID/status"; }

# body FORMAT MB FILE: people rows (id, name, email, age, city, score,
# active, zip, note; about 95 bytes a row as CSV) until FILE holds MB MB.
body() {
  awk -v format="$1" -v bytes="$(($2 * 1000000))" 'BEGIN {
    srand(42)
    split("Seoul,Paris,Lima,Oslo,Cairo,Tokyo,Quito,Perth,Dakar,Hanoi", city, ",")
    split("kim,lee,park,choi,jung,kang,cho,yoon,jang,lim,han,oh,seo,shin,kwon", name, ",")
    if (format == "csv") { line = "id,name,email,age,city,score,active,zip,note\n"; printf "%s", line; size = length(line) }
    if (format == "csv-no-ids") { line = "name,email,age,city,score,active,zip,note\n"; printf "%s", line; size = length(line) }
    if (format == "json") { printf "["; size = 1 }
    for (i = 1; size < bytes; i++) {
      n = name[int(rand() * 15) + 1]
      if (format == "csv")
        line = sprintf("%d,%s %d,%s%d@example.com,%d,%s,%s,%s,%05d,note number %d about %s\n",
          i, n, i % 997, n, i, 18 + int(rand() * 60), city[int(rand() * 10) + 1],
          int(rand() * 1000) / 10, (rand() < 0.5 ? "true" : "false"), int(rand() * 99999),
          i, city[int(rand() * 10) + 1])
      else if (format == "csv-no-ids")
        line = sprintf("%s %d,%s%d@example.com,%d,%s,%s,%s,%05d,note number %d about %s\n",
          n, i % 997, n, i, 18 + int(rand() * 60), city[int(rand() * 10) + 1],
          int(rand() * 1000) / 10, (rand() < 0.5 ? "true" : "false"), int(rand() * 99999),
          i, city[int(rand() * 10) + 1])
      else
        line = sprintf("%s{\"id\":%d,\"name\":\"%s %d\",\"email\":\"%s%d@example.com\",\"age\":%d,\"city\":\"%s\",\"score\":%s,\"active\":%s,\"zip\":\"%05d\",\"note\":\"note number %d about %s\"}%s",
          (format == "json" && i > 1 ? "," : ""),
          i, n, i % 997, n, i, 18 + int(rand() * 60), city[int(rand() * 10) + 1],
          int(rand() * 1000) / 10, (rand() < 0.5 ? "true" : "false"), int(rand() * 99999),
          i, city[int(rand() * 10) + 1], (format == "ndjson" ? "\n" : ""))
      printf "%s", line
      size += length(line)
    }
    if (format == "json") printf "]\n"
  }' >"$3"
}

type_of() {
  case $1 in
    csv | csv-no-ids) echo text/csv ;;
    json) echo application/json ;;
    ndjson) echo application/x-ndjson ;;
  esac
}

# run METHOD FORMAT MB COUNT: COUNT requests at once, each sending one body
# to a table of its own; prints a table row.
run() {
  local method=$1 format=$2 mb=$3 count=$4 file="$work/body.$2" before peak after t0 t1 codes size
  [ -f "$file.$mb" ] || body "$format" "$mb" "$file.$mb"
  size=$(stat -c %s "$file.$mb")
  start
  # The server has answered once: what it holds at rest is the baseline.
  curl -sf -o /dev/null "$URL/_health"
  if [ -n "${PREFILL:-}" ]; then
    for i in $(seq "$count"); do
      curl -sf -o /dev/null -H 'Content-Type: application/json' -d '{"name":"first"}' "$URL/t$i"
    done
  fi
  before=$(kb VmRSS)
  t0=$(date +%s.%N)
  local clients=()
  for i in $(seq "$count"); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time "$LIMIT" -X "$method" \
      -H "Content-Type: $(type_of "$format")" --data-binary "@$file.$mb" "$URL/t$i" \
      >"$work/code.$i" &
    clients+=("$!")
  done
  wait "${clients[@]}"
  t1=$(date +%s.%N)
  peak=$(kb VmHWM)
  after=$(kb VmRSS)
  codes=$(cat "$work"/code.* | sort | uniq -c | awk '{printf "%s%d×%s", (NR > 1 ? ", " : ""), $1, $2}')
  rm -f "$work"/code.*
  stop
  awk -v m="$method" -v f="$format${NOTE:+ ($NOTE)}" -v s="$size" -v c="$count" -v b="$before" -v p="$peak" \
    -v a="$after" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" -v codes="$codes" 'BEGIN {
      extra = (p - b) * 1024
      printf "| %s %s | %.1f | %d | %s | %.0f | %.1f× | %.1f× | %.0f | %.2f |\n",
        m, f, s / 1e6, c, codes, extra / 1e6, extra / s, extra / (s * c), (a - b) * 1024 / 1e6, t
    }'
}

echo "| request | body MB | at once | answers | peak extra RSS MB | × one body | × all bodies | extra RSS after MB | seconds |"
echo "|---|---|---|---|---|---|---|---|---|"
for mb in $SIZES; do
  run PUT csv "$mb" 1
  run PUT csv "$mb" 4
  run POST csv "$mb" 1
  run PUT csv-no-ids "$mb" 1
  PREFILL=1 NOTE="to a table with rows" run POST csv-no-ids "$mb" 1
  run PUT json "$mb" 1
  run PUT ndjson "$mb" 1
  # A budget of room for one body only, and no waiting: the others are refused.
  if "$BIN" serve --help | grep -q -- --max-bulk-bytes; then
    FLAGS="$FLAGS --max-bulk-bytes $((mb * 1100000)) --bulk-wait 0" \
      NOTE="--max-bulk-bytes $((mb * 11 / 10)) MB --bulk-wait 0" run PUT csv "$mb" 4
  fi
done
