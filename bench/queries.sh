#!/usr/bin/env bash
# Benchmarks of reads and queries on a large table, side by side with nginx (a static file) and
# json-server 0.17 (the same data, the same queries), printed as markdown tables.
#
#   bench/queries.sh [ROWS] [SECONDS]      # defaults: 1000000 rows, 10 s per load run
#   BIN=path bench/queries.sh ...          # measures another build of csvd
#
# Builds csvd --release, generates a ROWS-row CSV (about 95 bytes a row) in a temporary
# directory, installs what it lacks (wrk and nginx with apt-get, json-server 0.17 with npm, in
# the temporary directory), runs everything on 127.0.0.1 on free ports, and stops it all and
# removes the directory on exit. Takes about 5 minutes with the defaults.
set -euo pipefail

ROWS=${1:-1000000}
SECONDS_EACH=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/csvd-bench.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { echo "$*" >&2; }

# Installs a Debian package when its command is missing.
need() {
    command -v "$1" >/dev/null && return
    say "installing $2 ..."
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need curl curl
need wrk wrk
need nginx nginx
need node nodejs
need npm npm

free_port() {
    node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Requests per second of `wrk` against a URL (32 connections, one thread).
rps() {
    wrk -t1 -c32 -d"${SECONDS_EACH}s" --timeout 30s "$1" | awk '/Requests\/sec/ {print $2}'
}

# Milliseconds of one request (the body is read and dropped).
ms() {
    curl -s -o /dev/null -w '%{time_total}' "$1" | awk '{printf "%.1f", $1 * 1000}'
}

# The median of the timings of N requests.
median_ms() {
    local url=$1 n=$2
    for _ in $(seq "$n"); do ms "$url"; echo; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# BIN=path measures another build of csvd (none is built then).
if [ -n "${BIN:-}" ]; then
    CSVD=$BIN
else
    say "building csvd --release ..."
    (cd "$ROOT" && cargo build --release --quiet)
    CSVD="$ROOT/target/release/csvd"
fi

say "generating $ROWS rows ..."
mkdir -p "$WORK/data" "$WORK/www"
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
}' > "$WORK/data/people.csv"
CSV_BYTES=$(stat -c %s "$WORK/data/people.csv")

"$CSVD" serve "$WORK/data" --bind 127.0.0.1:0 --log-level warn > "$WORK/csvd.out" 2> "$WORK/csvd.err" &
CSVD_PID=$!
PIDS+=("$CSVD_PID")
for _ in $(seq 100); do grep -q listening "$WORK/csvd.out" 2>/dev/null && break; sleep 0.1; done
C="http://$(sed -n 's|.*http://||p' "$WORK/csvd.out" | head -1)"
say "loading the table into csvd ($C) ..."
LOAD_MS=$(ms "$C/people/1")

head -c 100 /dev/zero | tr '\0' x > "$WORK/www/hello.txt"
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<EOF
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
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
PIDS+=("$!")
sleep 0.5

say "GET /people/<id> against nginx, two rounds of ${SECONDS_EACH} s each ..."
ID=$((ROWS / 2))
N1=$(rps "http://127.0.0.1:$NGINX_PORT/hello.txt")
R1=$(rps "$C/people/$ID")
N2=$(rps "http://127.0.0.1:$NGINX_PORT/hello.txt")
R2=$(rps "$C/people/$ID")
NGINX_RPS=$(awk -v a="$N1" -v b="$N2" 'BEGIN {printf "%.0f", (a + b) / 2}')
ROW_RPS=$(awk -v a="$R1" -v b="$R2" 'BEGIN {printf "%.0f", (a + b) / 2}')

say "streaming the table ..."
# Peak memory of the process during a request, above what it held before (Linux: clear_refs
# resets the high-water mark).
stream() {
    local url=$1 before out peak
    echo 5 > "/proc/$CSVD_PID/clear_refs"
    before=$(awk '/VmRSS/ {print $2}' "/proc/$CSVD_PID/status")
    out=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' "$url")
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$CSVD_PID/status")
    echo "$out $((peak - before))"
}
best_stream() {
    local url=$1 best_rate=0 worst_kb=0
    for _ in 1 2 3; do
        read -r bytes secs kb < <(stream "$url")
        rate=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.0f", b / s / 1e6}')
        [ "$rate" -gt "$best_rate" ] && best_rate=$rate
        [ "$kb" -gt "$worst_kb" ] && worst_kb=$kb
    done
    echo "$best_rate $(awk -v k="$worst_kb" 'BEGIN {printf "%.1f", k / 1024}')"
}
read -r CSV_RATE CSV_MEM < <(best_stream "$C/people.csv")
read -r JSON_RATE JSON_MEM < <(best_stream "$C/people.json")
read -r ND_RATE ND_MEM < <(best_stream "$C/people.ndjson")

say "filter + sort + limit ..."
SORTED=(
    "city=Paris&_sort=score&_order=desc&_limit=20"
    "age_gte=50&_sort=name,-id&_limit=20"
    "name_like=%5Epark%201&_sort=-age&_limit=20"
    "active=true&_sort=email&_limit=20"
)
SORT_ROWS=""
for q in "${SORTED[@]}"; do
    first=$(ms "$C/people?$q")
    warm=$(median_ms "$C/people?$q" 5)
    SORT_ROWS+="| \`?$q\` | $first | $warm |"$'\n'
done

say "installing json-server 0.17 ..."
mkdir -p "$WORK/js"
(cd "$WORK/js" && npm install --no-audit --no-fund --loglevel=error json-server@0.17 >/dev/null)
JS_VERSION=$(node -p "require('$WORK/js/node_modules/json-server/package.json').version")
# The same data as json-server reads it: csvd's own JSON, typed by the typing rule.
{ printf '{"people":'; curl -s "$C/people.json"; printf '}'; } > "$WORK/db.json"
JS_PORT=$(free_port)
(cd "$WORK/js" && exec node --max-old-space-size=8192 node_modules/json-server/lib/cli/bin.js \
    --quiet --port "$JS_PORT" --host 127.0.0.1 "$WORK/db.json" > "$WORK/js.out" 2>&1) &
PIDS+=("$!")
J="http://127.0.0.1:$JS_PORT"
say "waiting for json-server to load the data ..."
for _ in $(seq 600); do curl -sf -o /dev/null "$J/people/1" && break; sleep 0.5; done

# "yes" when both servers answer the same rows (and the same X-Total-Count when json-server
# gives one).
same() {
    node -e '
const canon = v => JSON.stringify(v, (k, x) => x && typeof x === "object" && !Array.isArray(x)
    ? Object.fromEntries(Object.keys(x).sort().map(key => [key, x[key]])) : x);
const get = async url => { const r = await fetch(url);
    return { total: r.headers.get("x-total-count"), body: canon(await r.json()) }; };
(async () => {
    const a = await get(process.argv[1]);
    const b = await get(process.argv[2]);
    if (a.body !== b.body) console.log("**no**");
    else if (b.total !== null && a.total !== b.total) console.log("rows yes, X-Total-Count no");
    else console.log("yes");
})();' "$1" "$2"
}

say "GET /people/<id> against json-server ..."
JS_ROW_RPS=$(rps "$J/people/$ID")

say "the same queries on both ..."
COMPARED=(
    "city=Paris&_sort=score&_order=desc&_limit=20"
    "age_gte=50&age_lte=52&_sort=name&_limit=20"
    "q=kim%2042&_limit=20"
    "name_like=%5Epark%201&_page=3&_limit=10"
    "id=777"
    "city_ne=Paris&city_ne=Lima&_start=100&_end=120"
    "active=true&zip_like=%5E000&_sort=age,id&_order=desc,asc&_limit=20"
    "_sort=email&_limit=20"
    "score_gte=99.5&_sort=id&_order=desc&_page=2&_limit=20"
    "_page=5000&_limit=100"
)
COMPARE_ROWS=""
for q in "${COMPARED[@]}"; do
    verdict=$(same "$C/people?$q" "$J/people?$q")
    cm=$(median_ms "$C/people?$q" 3)
    jm=$(median_ms "$J/people?$q" 3)
    COMPARE_ROWS+="| \`?$q\` | $verdict | $cm | $jm | $(ratio "$jm" "$cm") |"$'\n'
done
ROW_SAME=$(same "$C/people/$ID" "$J/people/$ID")

cat <<EOF

### Setup

\`bench/queries.sh $ROWS $SECONDS_EACH\` on $(nproc) cores ($(uname -m)), $(date -u +%Y-%m-%d):
a table of $ROWS rows, $((CSV_BYTES / 1000000)) MB of CSV; $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'),
nginx $(nginx -v 2>&1 | sed 's|.*/||'), json-server $JS_VERSION on node $(node --version).
csvd loaded the table in $LOAD_MS ms.

### Reads

| measure | csvd | against | ratio |
|---|---|---|---|
| \`GET /people/$ID\`, requests/s (wrk, 32 connections) | $ROW_RPS | nginx, 1 worker, 100-byte file: $NGINX_RPS | $(ratio "$ROW_RPS" "$NGINX_RPS") |
| \`GET /people/$ID\`, requests/s (same result: $ROW_SAME) | $ROW_RPS | json-server: $JS_ROW_RPS | $(ratio "$ROW_RPS" "$JS_ROW_RPS") |
| \`GET /people.csv\`, MB/s | $CSV_RATE | target 300 | |
| \`GET /people.csv\`, peak extra memory, MB | $CSV_MEM | target 16 | |
| \`GET /people.json\`, MB/s (peak extra MB) | $JSON_RATE ($JSON_MEM) | | |
| \`GET /people.ndjson\`, MB/s (peak extra MB) | $ND_RATE ($ND_MEM) | | |

### Filter, sort and limit (ms)

The first query on its columns copies them (one pass over the rows); later ones read the copies.

| query | first | then (median of 5) |
|---|---|---|
$SORT_ROWS
### Side by side with json-server $JS_VERSION (ms, median of 3)

| query | same result | csvd | json-server | csvd faster by |
|---|---|---|---|---|
$COMPARE_ROWS
EOF
