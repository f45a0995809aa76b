#!/usr/bin/env bash
# Resident memory of tables in memory: right after loading a ROWS-row table
# (three shapes: 5 short columns like a 51 MB export of short records, bench/storage.sh's
# ~84 MB table, bench/queries.sh's ~93 MB people table), then after WRITE_SECONDS
# of PUTs at random ids and POSTs on the short one. Loopback only, bounded.
#
#   bench/memory.sh             # prints a markdown table; ROWS=1000000, WRITE_SECONDS=10
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
WRITE_SECONDS=${WRITE_SECONDS:-10}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# BIN=path measures another build of csvd (none is built then).
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=$PWD/target/release/csvd; }
work=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {
  "$BIN" serve "$1" --bind 127.0.0.1:0 --log-level error >"$work/stdout" &
  PID=$!
  for _ in $(seq 200); do
    URL=$(sed -n 's/^csvd listening on //p' "$work/stdout")
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  echo "csvd did not start" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
times() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.2f", r * 1024 / s }'; }

mkdir -p "$work/short" "$work/storage" "$work/people"
# 5 short columns, about 51 bytes a line.
awk -v n="$ROWS" 'BEGIN { print "id,name,city,score,email";
  for (i = 1; i <= n; i++) printf "%d,User %07d,City %02d,%d,u%07d@example.org\n", i, i, i % 97, i % 1000, i }' \
  >"$work/short/t.csv"
# bench/storage.sh's table.
awk -v n="$ROWS" 'BEGIN { print "id,name,email,city,score,note";
  for (i = 1; i <= n; i++) printf "%d,Person %d,person%d@example.com,City %d,%d,some note about row %d\n", i, i, i, i % 97, i % 1000, i }' \
  >"$work/storage/t.csv"
# bench/queries.sh's people table.
awk -v rows="$ROWS" 'BEGIN {
    srand(42)
    split("Seoul,Paris,Lima,Oslo,Cairo,Tokyo,Quito,Perth,Dakar,Hanoi", city, ",")
    split("kim,lee,park,choi,jung,kang,cho,yoon,jang,lim,han,oh,seo,shin,kwon", name, ",")
    print "id,name,email,age,city,score,active,zip,note"
    for (i = 1; i <= rows; i++) {
        n = name[int(rand() * 15) + 1]
        printf "%d,%s %d,%s%d@example.com,%d,%s,%s,%s,%05d,note number %d about %s\n",
            i, n, i % 997, n, i, 18 + int(rand() * 60), city[int(rand() * 10) + 1],
            int(rand() * 1000) / 10, (rand() < 0.5 ? "true" : "false"), int(rand() * 99999),
            i, city[int(rand() * 10) + 1]
    }
}' >"$work/people/t.csv"

echo "| table | CSV MB | resident after loading | × the CSV |"
echo "|---|---|---|---|"
for shape in short storage people; do
  size=$(stat -c %s "$work/$shape/t.csv")
  start "$work/$shape"
  curl -sf "$URL/t/1" >/dev/null
  kb=$(rss_kb)
  echo "| $shape, $ROWS rows | $(( size / 1000000 )) | $(( kb / 1024 )) MiB | $(times "$kb" "$size")× |"
  if [ "$shape" = short ]; then
    ROWS=$ROWS wrk -t1 -c16 -d"${WRITE_SECONDS}s" -s bench/put.lua "$URL/t" >"$work/put.txt"
    wrk -t1 -c16 -d"${WRITE_SECONDS}s" -s bench/post.lua "$URL/t" >"$work/post.txt"
    puts=$(awk '/requests in/ {print $1}' "$work/put.txt")
    posts=$(awk '/requests in/ {print $1}' "$work/post.txt")
    kb=$(rss_kb)
    echo "| short, after $WRITE_SECONDS s of PUTs ($puts) then $WRITE_SECONDS s of POSTs ($posts) | $(( size / 1000000 )) | $(( kb / 1024 )) MiB | $(times "$kb" "$size")× |"
  fi
  stop
done
