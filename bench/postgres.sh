#!/usr/bin/env bash
# csvd on PostgreSQL against PostgreSQL itself, side by side on one database:
# POST at 64 connections over two csvd instances against pgbench's
# single-row INSERT at 64 clients; GET /<t>/<id> against pgbench's
# select by primary key; a filtered, sorted page of 1,000,000 rows against
# the SQL it becomes, run directly; GET /<t>.csv against psql's COPY.
# Loopback only; every run is bounded (DURATION seconds each, default 5).
#
#   bench/postgres.sh                 # a throwaway cluster (needs Debian's postgresql)
#   PGURL=postgres://u@h:p bench/postgres.sh   # an existing server (creates database csvd_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
BIG_ROWS=${BIG_ROWS:-1000000}
ROWS=${ROWS:-100000}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v pgbench >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
cargo build --release --quiet
BIN=$PWD/target/release/csvd
work=$(mktemp -d)
chmod 755 "$work"
PIDS=()
PGDATA=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$PGDATA" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -z "${PGURL:-}" ]; then
  PGBIN=$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  PGDATA=$work/pg
  mkdir -p "$PGDATA" && [ "$(id -u)" = 0 ] && chown postgres "$work" "$PGDATA"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PGDATA -c max_connections=300" start >/dev/null
  PGURL=postgres://postgres@127.0.0.1:$port
fi
psql -X -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS csvd_bench" -c "CREATE DATABASE csvd_bench"
DB=$PGURL/csvd_bench

# start NAME: a csvd instance on the database; sets URL_NAME.
start() {
  "$BIN" serve "$DB" --bind 127.0.0.1:0 --log-level error --db-connections 32 >"$work/$1.out" &
  PIDS+=($!)
  for _ in $(seq 200); do
    local url; url=$(sed -n 's/^csvd listening on //p' "$work/$1.out")
    [ -n "$url" ] && { eval "URL_$1=$url"; return 0; }
    sleep 0.05
  done
  echo "csvd did not start" >&2; exit 1
}
start a
start b

wrk_rate() { awk '/Requests\/sec/ {printf "%d", $2}'; }
pgbench_tps() { awk '/^tps/ {printf "%d", $3; exit}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "| measure | csvd | PostgreSQL directly | ratio | target |"
echo "|---|---|---|---|---|"

# POST at 64 connections, 32 on each instance, against pgbench's INSERT.
psql -X -q "$DB" -c "CREATE TABLE pb (id bigserial PRIMARY KEY, name text, email text, city text, note text)"
wrk -t1 -c32 -d"${DURATION}s" -s bench/post.lua "$URL_a/p" >"$work/wa" &
w1=$!
wrk -t1 -c32 -d"${DURATION}s" -s bench/post.lua "$URL_b/p" >"$work/wb" &
w2=$!
wait $w1 $w2
post=$(( $(wrk_rate <"$work/wa") + $(wrk_rate <"$work/wb") ))
cat >"$work/insert.sql" <<'SQL'
INSERT INTO pb (name, email, city, note) VALUES ('Kim Minji', 'minji@example.com', 'Seoul', 'benchmark row');
SQL
ins=$(pgbench -n -M prepared -c 64 -j 2 -T "$DURATION" -f "$work/insert.sql" "$DB" 2>/dev/null | pgbench_tps)
echo "| POST one row / INSERT one row, 64 connections, /s | $post | $ins | $(ratio "$post" "$ins") | ≥ 0.8 |"

# GET /<t>/<id> of random ids among $ROWS, against select by primary key.
awk -v n="$ROWS" 'BEGIN { print "id,name,email,city,score";
  for (i = 1; i <= n; i++) printf "%d,Person %d,person%d@example.com,City %d,%d\n", i, i, i, i % 97, i % 1000 }' \
  >"$work/people.csv"
mkdir -p "$work/dir" && mv "$work/people.csv" "$work/dir/"
"$BIN" copy "$work/dir" "$DB" --quiet 2>/dev/null
psql -X -q "$DB" -c "INSERT INTO pb (name, email, city, note) SELECT 'Person ' || i, 'p' || i || '@example.com', 'City ' || (i % 97), 'x' FROM generate_series(1, $ROWS) i"
cat >"$work/get.lua" <<LUA
request = function() return wrk.format("GET", "/people/" .. math.random(1, $ROWS)) end
LUA
wrk -t1 -c32 -d"${DURATION}s" -s "$work/get.lua" "$URL_a" >"$work/ga" &
w1=$!
wrk -t1 -c32 -d"${DURATION}s" -s "$work/get.lua" "$URL_b" >"$work/gb" &
w2=$!
wait $w1 $w2
get=$(( $(wrk_rate <"$work/ga") + $(wrk_rate <"$work/gb") ))
cat >"$work/select.sql" <<SQL
\set id random(1, $ROWS)
SELECT * FROM pb WHERE id = :id;
SQL
sel=$(pgbench -n -M prepared -c 64 -j 2 -T "$DURATION" -f "$work/select.sql" "$DB" 2>/dev/null | pgbench_tps)
echo "| GET /people/<id> / SELECT by primary key, 64 connections, /s | $get | $sel | $(ratio "$get" "$sel") | ≥ 0.8 |"

# A filtered, sorted page of BIG_ROWS rows, against the SQL it becomes.
awk -v n="$BIG_ROWS" 'BEGIN { srand(1); split("Seoul Busan Paris Lyon Oslo Rome Lima Kyiv Riga Bern", c, " ");
  print "id,name,city,score,note";
  for (i = 1; i <= n; i++) printf "%d,name%d,%s,%d,some note text %d\n", i, i, c[int(rand() * 10) + 1], int(rand() * 100000), i % 977 }' \
  >"$work/big.csv"
rm -rf "$work/dir" && mkdir -p "$work/dir" && mv "$work/big.csv" "$work/dir/"
"$BIN" copy "$work/dir" "$DB" --quiet 2>/dev/null
psql -X -q "$DB" -c "VACUUM ANALYZE"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
page=$(for _ in 1 2 3 4 5; do
  curl -s -o /dev/null -w '%{time_total}\n' "$URL_a/big?city=Paris&_sort=score&_limit=20"
done | median)
key=$(psql -X -A -t "$DB" -c "SELECT key FROM csvd_tables WHERE name = 'big'")
cat >"$work/page.sql" <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT key, columns, id_col, version, modified, row_count, max_int_id, next_seq FROM csvd_tables WHERE name = 'big';
SELECT count(*), coalesce(bool_or(nums[4] IS NOT NULL), false) FROM csvd_rows WHERE tab = $key AND coalesce(cells[3], '') = ANY('{Paris}'::text[]);
SELECT cells FROM (SELECT cells, seq, CASE WHEN cardinality(sorts) >= 4 THEN sorts[4] ELSE 0 END AS n0, coalesce(cells[4], '') AS t0 FROM csvd_rows WHERE tab = $key AND coalesce(cells[3], '') = ANY('{Paris}'::text[])) AS r ORDER BY (n0 IS NULL) ASC, n0 ASC, (CASE WHEN n0 IS NULL THEN t0 END) COLLATE "C" ASC, seq ASC LIMIT 20;
COMMIT;
SQL
sql=$(pgbench -n -t 5 -c 1 -f "$work/page.sql" "$DB" 2>/dev/null | awk '/latency average/ {print $4 / 1000; exit}')
echo "| \`?city=Paris&_sort=score&_limit=20\` on $BIG_ROWS rows, s (median of 5) | $page | $sql | $(ratio "$page" "$sql") | ≤ 1.5 |"

# GET /<t>.csv of BIG_ROWS rows against COPY … TO STDOUT through psql.
best() { sort -n | head -1; }
csv=$(for _ in 1 2 3; do curl -s -o /dev/null -w '%{time_total}\n' "$URL_a/big.csv"; done | best)
copy=$(for _ in 1 2 3; do
  /usr/bin/time -f '%e' psql -X -q "$DB" -c "COPY (SELECT coalesce(cells[1], ''), coalesce(cells[2], ''), coalesce(cells[3], ''), coalesce(cells[4], ''), coalesce(cells[5], '') FROM csvd_rows WHERE tab = $key ORDER BY seq) TO STDOUT (FORMAT csv)" 2>&1 >/dev/null
done | best)
echo "| GET /big.csv / psql COPY TO STDOUT, $BIG_ROWS rows, s (best of 3) | $csv | $copy | $(ratio "$copy" "$csv") (rate) | ≥ 0.8 |"
