#!/usr/bin/env bash
# Benchmark: the catalog page (20 books) on MariaDB, 64 connections, wrk on
# the same machine. Prints requests/s, latency percentiles and the server's
# peak memory. Usage: app/bench/catalog.sh [SECONDS] [CONNECTIONS]
# With PROFILE=FILE it also records the server with `perf record` during the
# run and prints where its time went (kernel or app, then the top symbols).
# Needs: wrk (Debian package `wrk`), MariaDB on 127.0.0.1:3306 (root, no password).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-20}"
conns="${2:-64}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
cargo build --quiet --release -p bookstore
bin="${CARGO_TARGET_DIR:-target}/release/bookstore"
db=bookstore_bench
mysql() { command mysql -uroot -h127.0.0.1 -P3306 "$@"; }
mysql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
data="$(mktemp -d)"
BOOKSTORE_DATABASE_URL="mysql://root@127.0.0.1:3306/$db" BOOKSTORE_LOG=warn \
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"; mysql -e "DROP DATABASE IF EXISTS $db"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
mysql "$db" -e "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0);
  INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
  SELECT CONCAT('Book ', n), CONCAT('Author ', n), 'A book.', 1000 + n, 10, 1, 0
  FROM (SELECT 1 n UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8
        UNION SELECT 9 UNION SELECT 10 UNION SELECT 11 UNION SELECT 12 UNION SELECT 13 UNION SELECT 14 UNION SELECT 15
        UNION SELECT 16 UNION SELECT 17 UNION SELECT 18 UNION SELECT 19 UNION SELECT 20) t;"
curl -sf "http://127.0.0.1:$port/book/catalog" | grep -o '<tr><td' | wc -l | sed 's/^/books on the page: /'
wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$port/book/catalog" >/dev/null   # warm-up
if [[ -n "${PROFILE:-}" ]]; then
    perf record -q -F 999 -g -p "$pid" -o "$PROFILE" -- sleep "$secs" 2>/dev/null &
    perf_pid=$!
fi
out="$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/book/catalog")"
echo "$out"
rss_kb="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
echo
echo "summary: $(echo "$out" | awk '/Requests\/sec/ {print $2}') requests/s, p50 $(echo "$out" | awk '$1=="50%" {print $2}'), p99 $(echo "$out" | awk '$1=="99%" {print $2}'), peak RSS $((rss_kb / 1024)) MiB, $(nproc) cores, $conns connections"
if [[ -n "${PROFILE:-}" ]]; then
    wait "$perf_pid"
    echo
    echo "profile ($PROFILE): share of the server's samples by object, then by symbol"
    perf report -i "$PROFILE" --no-children -g none --sort dso 2>/dev/null | grep '%' | grep -v '^#' | head -5 |
        sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//'
    perf report -i "$PROFILE" --no-children -g none --sort symbol 2>/dev/null | grep '%' | grep -v '^#' | head -10 |
        sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//'
fi
