#!/usr/bin/env bash
# Change feed benchmarks: how long a durable write takes to reach SSE
# subscribers while 16 writers run, what 1,000 idle subscribers cost in
# memory, and how much they (and 1,000 busy ones) slow writes down.
# Loopback only; every run is bounded (DURATION seconds each, default 10;
# about 90 seconds in all).
#
#   bench/changes.sh                                  # prints markdown tables
#   DURATION=3 SUBSCRIBERS=1 HOLD=200 bench/changes.sh   # a quick run
set -Eeuo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
SUBSCRIBERS=${SUBSCRIBERS:-"1 10"}
WRITERS=${WRITERS:-16}
HOLD=${HOLD:-1000}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Each held stream is a socket here and one in the server.
want=$(( 2 * HOLD + 256 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
cargo build --release --quiet
cargo build --release --quiet --example feed_latency
BIN=$PWD/target/release/csvd
MEASURE=$PWD/target/release/examples/feed_latency
work=$(mktemp -d)
PID=
HPID=
cleanup() {
  [ -n "$HPID" ] && kill "$HPID" 2>/dev/null
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "bench/changes.sh: failed at line $LINENO" >&2' ERR

# start DIR [FLAGS…]: starts csvd, sets PID, URL and ADDR once it listens.
start() {
  local dir=$1; shift
  rm -f "$work/stdout"   # not the previous server's address
  "$BIN" serve "$dir" --bind 127.0.0.1:0 --log-level error "$@" >"$work/stdout" &
  PID=$!
  for _ in $(seq 200); do
    URL=$(sed -n 's/^csvd listening on //p' "$work/stdout")
    ADDR=${URL#http://}
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  echo "csvd did not start" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
post() { curl -sf -X POST -H 'Content-Type: application/json' -d '{"name":"first"}' "$URL/$1" >/dev/null; }

# hold PATH: HOLD SSE streams on PATH, held by a helper; waits until every
# one has its opening and sets HPID.
hold() {
  # Not the previous helper's words: the new one may not have begun.
  rm -f "$work/hold"
  "$MEASURE" hold "$ADDR" "$1" "$HOLD" >"$work/hold" 2>"$work/hold.err" &
  HPID=$!
  for _ in $(seq 600); do
    grep -qs '^ready' "$work/hold" && break
    kill -0 "$HPID" 2>/dev/null || { cat "$work/hold.err" >&2; exit 1; }
    sleep 0.05
  done
  read -r _ held_open held_secs held_failed < <(grep '^ready' "$work/hold") \
    || { echo "the helper did not open its $HOLD streams in 30 s" >&2; cat "$work/hold.err" >&2; exit 1; }
  [ "$held_open" = "$HOLD" ] || { echo "only $held_open of $HOLD streams opened ($held_failed failed)" >&2; cat "$work/hold.err" >&2; }
}
# unhold: stops the helper; sets held_events and held_ended.
unhold() {
  kill -TERM "$HPID"; wait "$HPID" || true; HPID=
  held_events=0; held_ended='?'
  read -r _ held_events _ _ _ held_ended < <(grep '^events' "$work/hold") \
    || { echo "the helper holding the streams said nothing at its end:" >&2; cat "$work/hold.err" >&2; }
}

# rate: durable POSTs per second from wrk, 16 connections, to /p.
rate() {
  wrk -t2 -c16 -d"${DURATION}s" -s bench/post.lua "$URL/p" | awk '/Requests\/sec/ {printf "%d", $2}'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f %%", (b > 0 ? 100 * (a - b) / b : 0) }'; }

echo "| measure | figure | target |"
echo "|---|---|---|"

# 1. Write → event latency, SUBSCRIBERS streams on /_changes/t while
# WRITERS threads POST to /t, each on a keep-alive connection of its own.
for k in $SUBSCRIBERS; do
  mkdir -p "$work/lat-$k"
  start "$work/lat-$k"
  "$MEASURE" latency "$ADDR" "$k" "$WRITERS" "$DURATION" >"$work/lat"
  stop
  v() { awk -v k="$1" '$1 == k {print $2}' "$work/lat"; }
  echo "| $k subscriber(s), $WRITERS writers: write's 2xx → event, ms, p50 / p99 / p99.9 / max | $(v ack_p50) / $(v ack_p99) / $(v ack_p999) / $(v ack_max) | p50 < 5, p99 < 50 |"
  echo "| … the same from the request sent, ms, p50 / p99 / p99.9 / max | $(v send_p50) / $(v send_p99) / $(v send_p999) / $(v send_max) | |"
  echo "| … events that arrived before the writer had read its 2xx (earliest: $(v ack_min) ms) | $(v negative) % | |"
  echo "| … durable POSTs/s meanwhile; events received / expected | $(v rate); $(v events) / $(( $(v writes) * k )) | |"
done

# 2. HOLD idle subscribers: the server's memory, then write throughput.
mkdir -p "$work/hold-data"
start "$work/hold-data" --max-subscribers $(( 2 * HOLD )) --max-connections $(( 2 * HOLD ))
post other
post p
sleep 0.5
before=$(rss_kb)
hold "/_changes/other?since=now"
sleep 1
after=$(rss_kb)
unhold
echo "| server RSS, before → with $HOLD idle SSE subscribers | $(( before / 1024 )) MiB → $(( after / 1024 )) MiB | < 50 MB |"
echo "| … per subscriber; time to open them all | $(( (after - before) / HOLD )) KiB; ${held_secs} s | |"

# Alternating the runs without and with idle subscribers twice and keeping
# each one's best: the machine is shared, and alternation cancels drift.
none=0; other=0
for _ in 1 2; do
  r=$(rate); [ "$r" -gt "$none" ] && none=$r
  hold "/_changes/other?since=now"
  r=$(rate); [ "$r" -gt "$other" ] && other=$r
  unhold
done
hold "/_changes/p?since=now"
t0=$(date +%s.%N)
busy=$(rate)
t1=$(date +%s.%N)
unhold
echo "| POST/s, wrk 16 connections, no subscribers (best of 2) | $none | |"
echo "| … with $HOLD idle subscribers on another table (\`/_changes/other?since=now\`; best of 2) | $other ($(pct "$other" "$none")) | slowed < 10 % |"
echo "| … with $HOLD subscribers on the written table, each sent every event | $busy ($(pct "$busy" "$none")) | |"
echo "| … events those $HOLD received, /s (of $(( busy * HOLD )) /s written × subscribers); streams ended | $(awk -v e="$held_events" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", e / (b - a) }'); $held_ended | |"
stop
