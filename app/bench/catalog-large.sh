#!/usr/bin/env bash
# Benchmark: the catalog and its search with many books (100,000 by default),
# one request at a time, on MariaDB or SQLite. Prints p50 and p99 latency per
# page: the newest books, a middle and the last page, a title prefix that
# matches a tenth of the books, a rarer one, an author prefix that matches
# all of them, and a text that matches nothing.
# Usage: app/bench/catalog-large.sh [mysql|sqlite] [BOOKS] [SECONDS_PER_PAGE]
# Needs: wrk, curl; for mysql MariaDB on 127.0.0.1:3306 (root, no password),
# for sqlite the sqlite3 shell.
set -euo pipefail
cd "$(dirname "$0")/../.."
backend="${1:-mysql}"
books="${2:-100000}"
secs="${3:-3}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
cargo build --quiet --release -p bookstore
bin="${CARGO_TARGET_DIR:-target}/release/bookstore"
data="$(mktemp -d)"
db=bookstore_bench_large
mysql() { command mysql -uroot -h127.0.0.1 -P3306 "$@"; }
case "$backend" in
mysql)
    mysql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    url="mysql://root@127.0.0.1:3306/$db"
    cleanup_db() { mysql -e "DROP DATABASE IF EXISTS $db"; }
    ;;
sqlite)
    url="sqlite:$data/bookstore.db"
    cleanup_db() { :; }
    ;;
*) echo "usage: $0 [mysql|sqlite] [BOOKS] [SECONDS_PER_PAGE]" >&2; exit 2 ;;
esac
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BOOKSTORE_DATABASE_URL="$url" BOOKSTORE_LOG=warn \
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data/files" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; cleanup_db; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# Titles are one of ten words and 8 hex digits; authors "Author 0".."Author 4999".
words="'Winter','Garden','River','Silent','Red','Last','City','Night','Stone','Glass'"
case "$backend" in
mysql)
    mysql "$db" -e "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0);
      SET SESSION max_recursive_iterations = $books;
      INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $books)
      SELECT CONCAT(ELT(1 + n % 10, $words), ' ', LEFT(MD5(n), 8)), CONCAT('Author ', n % 5000),
             'A book.', 1000 + n % 500, 10, 1, 0 FROM s;
      ANALYZE TABLE books;" >/dev/null
    ;;
sqlite)
    sqlite3 "$data/bookstore.db" >/dev/null "PRAGMA busy_timeout = 5000;
      INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0);
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $books),
           w(i, word) AS (SELECT 0, 'Winter' UNION ALL SELECT 1, 'Garden' UNION ALL SELECT 2, 'River' UNION ALL
             SELECT 3, 'Silent' UNION ALL SELECT 4, 'Red' UNION ALL SELECT 5, 'Last' UNION ALL SELECT 6, 'City' UNION ALL
             SELECT 7, 'Night' UNION ALL SELECT 8, 'Stone' UNION ALL SELECT 9, 'Glass')
      INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
      SELECT w.word || ' ' || printf('%08x', (n * 2654435761) % 4294967296), 'Author ' || (n % 5000),
             'A book.', 1000 + n % 500, 10, 1, 0 FROM s JOIN w ON w.i = s.n % 10;
      ANALYZE;"
    ;;
esac
last=$(( (books + 19) / 20 ))
echo "$backend, $books books, $(nproc) cores, one connection, ${secs}s a page"
printf '%-36s %8s %10s %10s\n' page matches p50 p99
for path in "/book/catalog" "/book/catalog?page=50" "/book/catalog?page=$last" \
    "/book/catalog?q=Winter" "/book/catalog?q=Winter&page=50" "/book/catalog?q=Winter+a" \
    "/book/catalog?q=Author" "/book/catalog?q=Author+123" "/book/catalog?q=zzz"; do
    api="/api/books?${path#*\?}"; [[ "$path" == *\?* ]] || api="/api/books"
    matches="$(curl -sf "http://127.0.0.1:$port$api" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(("" if d.get("total_exact", True) else ">") + str(d["total"]))')"
    out="$(wrk -t1 -c1 -d"${secs}s" --latency "http://127.0.0.1:$port$path")"
    printf '%-36s %8s %10s %10s\n' "$path" "$matches" \
        "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')"
done
