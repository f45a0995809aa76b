#!/usr/bin/env bash
# Instructions csvd runs in user space per `GET /<t>/<id>`, counted by callgrind: a figure that
# does not move with the machine's load (kernel time, the network stack's included, is not in
# it). Loopback only, bounded.
#
#   bench/instructions.sh [SECONDS]     # default 8 s of load; BIN=path measures another build;
#                                       # KEEP=path keeps the profile
#
# Starts csvd under `valgrind --tool=callgrind` on a 1,000-row table, warms it up for 3 s with
# wrk (one thread, 8 connections), zeroes the counters, loads it for SECONDS, dumps them and
# prints instructions per request. Takes about half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=${1:-8}

need() {
    command -v "$1" >/dev/null && return
    echo "installing $2 ..." >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need valgrind valgrind
need python3 python3

[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=$PWD/target/release/csvd; }
work=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/data"
awk 'BEGIN {
    print "id,name,email,city,zip"
    for (i = 1; i <= 1000; i++) printf "%d,name%d,user%d@example.com,City %d,%05d\n", i, i, i, i % 100, i
}' > "$work/data/small.csv"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/small/500"

valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    "$BIN" serve "$work/data" --bind "127.0.0.1:$port" --log-level warn >/dev/null 2>"$work/valgrind.log" &
PID=$!
for _ in $(seq 1 200); do
    curl -s -o /dev/null "$url" && break
    sleep 0.2
done
wrk -t1 -c8 -d3s "$url" >/dev/null
callgrind_control -z "$PID" >/dev/null
requests=$(wrk -t1 -c8 -d"${SECONDS_LOAD}s" "$url" | awk '/requests in/ {print $1}')
callgrind_control -d "$PID" >/dev/null
sleep 1
total=$(callgrind_annotate "$work/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "| build | requests | instructions | per request |"
echo "|---|---|---|---|"
awk -v b="$(basename "$BIN")" -v r="$requests" -v t="$total" \
    'BEGIN { printf "| %s | %d | %d | %.0f |\n", b, r, t, t / r }'
# KEEP=path keeps the callgrind profile for callgrind_annotate.
[ -z "${KEEP:-}" ] || cp "$work/cg.out.1" "$KEEP"
