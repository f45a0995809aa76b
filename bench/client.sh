#!/usr/bin/env bash
# The client: time from launch to a finished GET of a tiny file (so start-up,
# connecting and sending the first byte) for `csvd get`, HTTPie's `http GET`
# and `curl`, and the peak resident memory of `csvd post URL/t @big.csv` on a
# large CSV, streamed to a csvd server.
# Loopback only; every run is bounded (LIMIT seconds each).
#
#   bench/client.sh                   # RUNS=50 GETs each, BIG_MB=1000 MB upload
#   RUNS=20 BIG_MB=100 bench/client.sh
#   CSVD=/other/build/csvd bench/client.sh   # measure another build
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
BIG_MB=${BIG_MB:-1000}
LIMIT=${LIMIT:-600}

if [ -n "${CSVD:-}" ]; then
  BIN=$CSVD
else
  cargo build --release --quiet
  BIN=$PWD/target/release/csvd
fi
work=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The tiny listener: Python's http.server, serving a 3-byte file.
mkdir -p "$work/www"
printf 'hi\n' >"$work/www/tiny.txt"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work/www" && exec timeout "$LIMIT" python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
TINY=http://127.0.0.1:$port/tiny.txt
for _ in $(seq 200); do
  curl -sf -o /dev/null "$TINY" && break
  sleep 0.05
done

# HTTPie, in a virtual environment of its own.
HTTP=
if python3 -m venv "$work/venv" >/dev/null 2>&1 &&
  timeout 300 "$work/venv/bin/pip" install --quiet httpie >/dev/null 2>&1; then
  HTTP=$work/venv/bin/http
else
  echo "!!! pip could not install HTTPie: its column is skipped !!!" >&2
fi

# median_ms COMMAND…: the median wall time of RUNS runs, in milliseconds.
median_ms() {
  if command -v hyperfine >/dev/null; then
    hyperfine --runs "$RUNS" --warmup 3 --shell=none --export-json "$work/h.json" \
      --style none "$*" >/dev/null
    python3 -c 'import json, sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$work/h.json"
    return
  fi
  local times=() start end
  for _ in 1 2 3; do timeout "$LIMIT" "$@" >/dev/null 2>&1; done
  for _ in $(seq "$RUNS"); do
    start=$(date +%s%N)
    timeout "$LIMIT" "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    times+=($(((end - start) / 1000)))
  done
  printf '%s\n' "${times[@]}" | sort -n |
    awk '{ t[NR] = $1 } END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; printf "%.1f\n", m / 1000 }'
}

csvd_ms=$(median_ms "$BIN" get "$TINY")
curl_ms=$(median_ms curl -s "$TINY")
http_ms=skipped
[ -n "$HTTP" ] && http_ms=$(median_ms "$HTTP" GET "$TINY")

# The upload: a csvd server with room for the whole body.
mkdir -p "$work/data"
"$BIN" serve "$work/data" --bind 127.0.0.1:0 --log-level error \
  --max-body $((BIG_MB * 2000000)) --max-bulk-bytes 0 --request-timeout 3600 >"$work/stdout" &
PIDS+=($!)
URL=
for _ in $(seq 200); do
  URL=$(sed -n 's/^csvd listening on //p' "$work/stdout")
  [ -n "$URL" ] && break
  sleep 0.05
done
[ -n "$URL" ] || { echo "csvd did not start" >&2; exit 1; }
awk -v bytes="$((BIG_MB * 1000000))" 'BEGIN {
  print "id,name,email,age,city,score,active,zip,note"
  for (i = 1; size < bytes; i++) {
    line = i ",person " i ",p" i "@example.com," (20 + i % 60) ",city " (i % 97) "," (i % 1000) / 10 "," (i % 2 ? "true" : "false") "," (10000 + i % 89999) ",a note of some length " i
    print line
    size += length(line) + 1
  }
}' >"$work/big.csv"
size_mb=$(($(stat -c %s "$work/big.csv") / 1000000))
start=$(date +%s%N)
timeout "$LIMIT" /usr/bin/time -v "$BIN" post "$URL/t" "@$work/big.csv" >/dev/null 2>"$work/time.txt"
end=$(date +%s%N)
peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
summary=$(grep -m1 '^csvd: ' "$work/time.txt" || echo "no summary: $(head -c 300 "$work/time.txt")")

echo "| client | median of $RUNS runs, launch to a finished GET of a 3-byte file |"
echo "|---|---|"
echo "| csvd get | $csvd_ms ms |"
echo "| http GET (HTTPie) | $http_ms$([ -n "$HTTP" ] && echo " ms") |"
echo "| curl | $curl_ms ms |"
echo
echo "| upload | figure | target |"
echo "|---|---|---|"
echo "| csvd post URL/t @big.csv, $size_mb MB: client peak resident memory | $((peak_kb / 1024)) MiB | < 50 MiB |"
echo "| its wall time | $(((end - start) / 1000000)) ms | |"
echo
echo "The client said: \`$summary\`"
