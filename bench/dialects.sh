#!/usr/bin/env bash
# Dialects and encodings: what detection costs on a 100 MB UTF-8 table, and
# how fast a CP949 table loads against the same rows in UTF-8 — parsed in
# process (detected vs declared), and the server's start-up until the table
# answers. Loopback only; bounded by the file sizes.
#
#   bench/dialects.sh                  # 100 MB UTF-8, 1,000,000 Korean rows (31 MB)
#   BIG_ROWS=200000 KOREAN_ROWS=200000 bench/dialects.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_ROWS=${BIG_ROWS:-1200000}
KOREAN_ROWS=${KOREAN_ROWS:-1000000}

cargo build --release --quiet --bin csvd --example dialect_cost
BIN=$PWD/target/release/csvd
COST=$PWD/target/release/examples/dialect_cost
work=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# startup DIR TABLE: seconds from launch until GET /TABLE answers 200.
startup() {
  local started
  started=$(date +%s.%N)
  "$BIN" serve "$1" --bind 127.0.0.1:0 --log-level error >"$work/stdout" &
  PID=$!
  local url=
  for _ in $(seq 2000); do
    url=$(sed -n 's/^csvd listening on //p' "$work/stdout")
    [ -n "$url" ] && break
    sleep 0.01
  done
  [ -n "$url" ] || { echo "csvd did not start" >&2; exit 1; }
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/$2?_limit=1")" = 200 ]; do
    sleep 0.01
  done
  echo "$(date +%s.%N) - $started" | bc
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

# field KEY FILE: a value dialect_cost printed.
field() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

mkdir -p "$work/big" "$work/sep" "$work/utf8" "$work/cp949"
awk -v n="$BIG_ROWS" 'BEGIN { print "id,name,email,city,score,note";
  for (i = 1; i <= n; i++) printf "%d,Person %d,person%d@example.com,City %d,%d,some note about row %d\n", i, i, i, i % 97, i % 1000, i }' \
  >"$work/big/t.csv"
{ echo "sep=,"; cat "$work/big/t.csv"; } >"$work/sep/t.csv"
"$COST" korean "$KOREAN_ROWS" "$work/utf8/t.csv" "$work/cp949/t.csv"

"$COST" parse "$work/big/t.csv" >"$work/big.out"
"$COST" parse "$work/utf8/t.csv" >"$work/utf8.out"
"$COST" parse "$work/cp949/t.csv" >"$work/cp949.out"

mb() { echo "scale=1; $(stat -c %s "$1") / 1000000" | bc; }
echo "| file | size | parse, detected | parse, declared | detection adds | server start-up |"
echo "|---|---|---|---|---|---|"
for f in big utf8 cp949; do
  up=$(startup "$work/$f" t)
  echo "| $f: $(field rows "$work/$f.out") rows, $(field encoding "$work/$f.out") | $(mb "$work/$f/t.csv") MB | $(field detected_s "$work/$f.out") s | $(field declared_s "$work/$f.out") s | $(field detection_pct "$work/$f.out") % | $(printf %.2f "$up") s |"
done
up=$(startup "$work/sep" t)
echo "| big with a sep=, line (no delimiter to tell) | $(mb "$work/sep/t.csv") MB | | | | $(printf %.2f "$up") s |"
utf8=$(field detected_s "$work/utf8.out"); cp949=$(field detected_s "$work/cp949.out")
echo
echo "CP949 reads at $(echo "scale=2; $utf8 / $cp949" | bc)× the speed of the same rows in UTF-8 (parse, detected)."
