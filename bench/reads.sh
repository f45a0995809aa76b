#!/usr/bin/env bash
# Reads of one row, side by side with nginx, and reads under load: while 16 durable writers
# run, and while a checkpoint rewrites a large table's file. Printed as markdown tables.
#
#   bench/reads.sh [ROWS] [SECONDS] [READERS]   # defaults: 1000000 rows, 5 s a run, 8 readers
#   BIN=path bench/reads.sh ...                 # measures another build of csvd
#
# Builds csvd --release and the latency probe (examples/read_latency.rs), generates a ROWS-row
# table (`big`, about 95 bytes a row) and a 1,000-row one (`small`) in a temporary directory,
# runs csvd, nginx (one worker, a 100-byte file) and the load on 127.0.0.1 on free ports, and
# stops it all and removes the directory on exit. Takes about 2 minutes with the defaults.
set -euo pipefail

ROWS=${1:-1000000}
SECONDS_EACH=${2:-5}
READERS=${3:-8}
WRITERS=16
CYCLES=3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/csvd-reads.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { echo "$*" >&2; }

need() {
    command -v "$1" >/dev/null && return
    say "installing $2 ..."
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need curl curl
need wrk wrk
need nginx nginx
need python3 python3

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Requests per second of `wrk` against a URL (32 connections, one thread).
rps() {
    wrk -t1 -c32 -d"${SECONDS_EACH}s" --timeout 30s "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (a + b) / 2}'; }

# BIN=path measures another build of csvd (the probe is still built here).
if [ -n "${BIN:-}" ]; then
    say "building the latency probe ..."
    (cd "$ROOT" && cargo build --release --quiet --example read_latency)
    CSVD=$BIN
else
    say "building csvd --release and the latency probe ..."
    (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example read_latency)
    CSVD="$ROOT/target/release/csvd"
fi
PROBE="$ROOT/target/release/examples/read_latency"

table() {
    awk -v rows="$1" 'BEGIN {
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
    }'
}
say "generating $ROWS rows ..."
mkdir -p "$WORK/data" "$WORK/www"
table "$ROWS" > "$WORK/data/big.csv"
table 1000 > "$WORK/data/small.csv"
CSV_BYTES=$(stat -c %s "$WORK/data/big.csv")

"$CSVD" serve "$WORK/data" --bind 127.0.0.1:0 --log-level warn --checkpoint-after 1 \
    > "$WORK/csvd.out" 2> "$WORK/csvd.err" &
PIDS+=("$!")
for _ in $(seq 100); do grep -q listening "$WORK/csvd.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's|.*http://||p' "$WORK/csvd.out" | head -1)
C="http://$ADDR"
say "loading the tables into csvd ($C) ..."
curl -sf -o /dev/null "$C/big/1"
curl -sf -o /dev/null "$C/small/1"

head -c 100 /dev/zero | tr '\0' x > "$WORK/www/hello.txt"
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
PIDS+=("$!")
sleep 0.5

say "GET /<t>/<id> against nginx, alternating, two rounds of ${SECONDS_EACH} s each ..."
N="http://127.0.0.1:$NGINX_PORT/hello.txt"
N1=$(rps "$N"); S1=$(rps "$C/small/500"); B1=$(rps "$C/big/$((ROWS / 2))")
N2=$(rps "$N"); S2=$(rps "$C/small/500"); B2=$(rps "$C/big/$((ROWS / 2))")
NGINX_RPS=$(mean "$N1" "$N2"); SMALL_RPS=$(mean "$S1" "$S2"); BIG_RPS=$(mean "$B1" "$B2")

# `key value` lines of the probe as shell variables (read_p99=1.2 → P_read_p99).
probe() {
    "$PROBE" "$@" | sed 's/^\([a-z0-9_]*\) \(.*\)$/P_\1=\2/'
}

say "reads alone, then reads with $WRITERS durable writers on the same table (${SECONDS_EACH} s each) ..."
eval "$(probe mixed "$ADDR" small 1000 "$READERS" 0 "$SECONDS_EACH" | sed 's/^P_/A_/')"
eval "$(probe mixed "$ADDR" small 1000 "$READERS" "$WRITERS" "$SECONDS_EACH" | sed 's/^P_/M_/')"
sleep 2
say "reads while $CYCLES checkpoints of the $ROWS-row table run ..."
eval "$(probe checkpoint "$ADDR" big "$ROWS" small 1000 "$READERS" "$CYCLES" | sed 's/^P_/K_/')"

cat <<OUT

\`bench/reads.sh $ROWS $SECONDS_EACH $READERS\` on $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%d): tables of
1,000 and $ROWS rows ($((CSV_BYTES / 1000000)) MB of CSV); $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), nginx $(nginx -v 2>&1 | sed 's|.*/||').

| requests/s (wrk, 1 thread, 32 connections; mean of 2 alternating runs) | | ratio to nginx |
|---|---|---|
| nginx, 1 worker, 100-byte file | $NGINX_RPS | |
| \`GET /small/500\` (1,000 rows) | $SMALL_RPS | $(ratio "$SMALL_RPS" "$NGINX_RPS") |
| \`GET /big/$((ROWS / 2))\` ($ROWS rows) | $BIG_RPS | $(ratio "$BIG_RPS" "$NGINX_RPS") |

| latency, ms ($READERS readers, random ids) | requests/s | p50 | p99 | p99.9 | max |
|---|---|---|---|---|---|
| \`GET /small/<id>\`, no writers | $A_read_rate | $A_read_p50 | $A_read_p99 | $A_read_p999 | $A_read_max |
| \`GET /small/<id>\`, $WRITERS durable writers on \`small\` | $M_read_rate | $M_read_p50 | $M_read_p99 | $M_read_p999 | $M_read_max |
| \`PATCH /small/<id>\` by those writers | $M_write_rate | $M_write_p50 | $M_write_p99 | $M_write_p999 | $M_write_max |
| \`GET /big/<id>\` and \`/small/<id>\` during checkpoints of \`big\` ($K_checkpoints, $K_checkpoint_seconds s) | $K_read_rate | $K_read_p50 | $K_read_p99 | $K_read_p999 | $K_read_max |
| \`PATCH /small/<id>\` (one writer, every 2 ms) during them | $K_write_rate | $K_write_p50 | $K_write_p99 | $K_write_p999 | $K_write_max |

The longest checkpoint of \`big\` took $K_checkpoint_longest_s s (from its start to \`csvd_checkpoints_total\` growing).
OUT
