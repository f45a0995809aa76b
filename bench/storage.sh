#!/usr/bin/env bash
# Storage benchmarks: durable POST throughput by connection count, the price
# of fsync, the cost of table size for writes, and start-up on a 100 MB table.
# Loopback only; every run is bounded (DURATION seconds each, default 5).
#
#   bench/storage.sh            # prints a markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
BIG_ROWS=${BIG_ROWS:-1000000}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# BIN=path measures another build of csvd (none is built then).
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=$PWD/target/release/csvd; }
work=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# start DIR [FLAGS…]: starts csvd, sets PID and URL once it listens.
start() {
  local dir=$1; shift
  "$BIN" serve "$dir" --bind 127.0.0.1:0 --log-level error "$@" >"$work/stdout" &
  PID=$!
  for _ in $(seq 200); do
    URL=$(sed -n 's/^csvd listening on //p' "$work/stdout")
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  echo "csvd did not start" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# rate CONNECTIONS LUA PATH: requests per second from wrk.
rate() {
  local threads=$(( $1 < 2 ? 1 : 2 ))
  ROWS=${ROWS:-1000} wrk -t"$threads" -c"$1" -d"${DURATION}s" -s "bench/$2" "$URL$3" \
    | awk '/Requests\/sec/ {printf "%d", $2}'
}

# table ROWS FILE: a CSV of ROWS rows of about 100 bytes.
table() {
  awk -v n="$1" 'BEGIN { print "id,name,email,city,score,note";
    for (i = 1; i <= n; i++) printf "%d,Person %d,person%d@example.com,City %d,%d,some note about row %d\n", i, i, i, i % 97, i % 1000, i }' >"$2"
}

echo "| benchmark | figure |"
echo "|---|---|"

# The disk's own rate: one 100-byte write + fsync at a time.
disk=$(dd if=/dev/zero of="$work/fsync-probe" bs=100 count=3000 oflag=dsync 2>&1 \
  | awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print int(3000 / $(i-1)) }')
echo "| disk: 100-byte write + fsync, one at a time | ${disk} /s |"

for sync in always never; do
  mkdir -p "$work/d-$sync"
  start "$work/d-$sync" --sync "$sync"
  for c in 1 16 64; do
    r=$(rate "$c" post.lua /p)
    echo "| POST, --sync $sync, $c connection(s) | $r /s |"
    eval "post_${sync}_$c=$r"
  done
  stop
done

# The cost of growth, alternating the two sizes twice and keeping each
# size's best run: the machine is shared, and alternation cancels drift.
for rows in 1000 "$BIG_ROWS"; do
  mkdir -p "$work/g-$rows"
  table "$rows" "$work/g-$rows/t.csv"
  eval "post_rows_$rows=0; put_rows_$rows=0"
done
for round in 1 2; do
  for rows in 1000 "$BIG_ROWS"; do
    start "$work/g-$rows"
    curl -sf "$URL/t/1" >/dev/null
    p=$(rate 16 post.lua /t)
    u=$(ROWS=$rows rate 16 put.lua /t)
    stop
    [ "$p" -gt "$(eval echo \$post_rows_$rows)" ] && eval "post_rows_$rows=$p"
    [ "$u" -gt "$(eval echo \$put_rows_$rows)" ] && eval "put_rows_$rows=$u"
  done
done
for rows in 1000 "$BIG_ROWS"; do
  echo "| POST on a $rows-row table, 16 connections (best of 2) | $(eval echo \$post_rows_$rows) /s |"
  echo "| PUT on a $rows-row table, 16 connections (best of 2) | $(eval echo \$put_rows_$rows) /s |"
done

# Start-up: from launch to the first answer from a 100 MB table, and memory.
mkdir -p "$work/s"
table "$BIG_ROWS" "$work/s/t.csv"
size=$(stat -c %s "$work/s/t.csv")
t0=$(date +%s.%N)
start "$work/s"
curl -sf "$URL/t/1" >/dev/null
t1=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
stop
echo "| start-up to first answer, $BIG_ROWS rows ($(( size / 1000000 )) MB CSV) | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }') |"
echo "| resident memory after loading it | $(( rss_kb / 1024 )) MiB ($(awk -v r="$rss_kb" -v s="$size" 'BEGIN { printf "%.1f", r * 1024 / s }')× the CSV) |"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
echo
echo "| ratio | value | target |"
echo "|---|---|---|"
echo "| 64 connections / 1 connection (durable POST) | $(ratio "$post_always_64" "$post_always_1")× | ≥ 10× |"
echo "| 64 connections / disk fsync rate | $(ratio "$post_always_64" "$disk")× | ≥ 5× |"
echo "| POST: $BIG_ROWS rows / 1,000 rows | $(ratio "$(eval echo \$post_rows_$BIG_ROWS)" "$post_rows_1000")× | ≥ 0.8× |"
echo "| PUT: $BIG_ROWS rows / 1,000 rows | $(ratio "$(eval echo \$put_rows_$BIG_ROWS)" "$put_rows_1000")× | ≥ 0.8× |"
echo "| --sync never / always, 1 connection (the price of fsync) | $(ratio "$post_never_1" "$post_always_1")× | |"
