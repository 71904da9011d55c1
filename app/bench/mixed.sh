#!/usr/bin/env bash
# Benchmark: a mixed load that no cache of a few pages can flatter, on
# MariaDB with 100,000 books, 64 connections, wrk on the same machine. Each
# request picks at random (see mixed.lua) a catalog page (1..500), a search
# by title prefix (pages 1..3), a page of /api/books, one /api/books/ID, or
# a logged-in visitor's /purchases, /book/my_books or /api/purchases (the
# visitor sells 10 books and has 20 purchases). Per binary it prints
# requests/s, p50 and p99 latency, the server's peak memory during the run,
# and the answers that were not 2xx: any is a bug, and the kinds of request
# that get them are then listed.
#
# Usage: app/bench/mixed.sh [SECONDS] [CONNECTIONS] [BOOKS]   (default 20 s, 64, 100000)
#   BINS="before=/tmp/bookstore-old after=target/release/bookstore" compares
#   binaries in one run on the same database, seeded once; without BINS the
#   current release build (built first) runs alone, as `current`.
#   ROUNDS=N (default 2): each binary once per round, a fresh server (and a
#   fresh login) each time, the order reversed every other round; the
#   summary is the mean.
#   MIXED_ONLY=catalog|search|api-books|api-book|visitor: one kind alone.
# Needs: wrk (Debian package `wrk`), curl, MariaDB on 127.0.0.1:3306 (root,
# no password).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs="${1:-20}"
conns="${2:-64}"
books="${3:-100000}"
warm=$((secs < 10 ? 1 : 2))
bench_bins

db=bookstore_bench_mixed
url="mysql://root@127.0.0.1:3306/$db"
mysql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
data="$(mktemp -d)"
pid=
trap 'stop_server; rm -rf "$data" "$results"; mysql -e "DROP DATABASE IF EXISTS $db"' EXIT
email=visitor@example.com
password=visitor-password

# The hidden CSRF token of the form in the page $1, and the session cookie
# ("bookstore_session=...") set by the answer whose headers are in $1.
csrf_of() { grep -o '<input[^>]*name="csrf_token"[^>]*>' "$1" | head -1 | grep -o 'value="[^"]*"' | sed 's/^value="//; s/"$//' || true; }
cookie_of() { tr -d '\r' <"$1" | sed -n 's/^[Ss]et-[Cc]ookie: *\(bookstore_session=[^;]*\).*/\1/p' | tail -1; }

# form PATH: GET the form with the current cookie; updates cookie and csrf.
form() {
    curl -s -D "$data/h" -o "$data/b" ${cookie:+-H "Cookie: $cookie"} "$base$1"
    local c
    c="$(cookie_of "$data/h")"
    [[ -z "$c" ]] || cookie="$c"
    csrf="$(csrf_of "$data/b")"
    [[ -n "$cookie" && -n "$csrf" ]] || { echo "GET $1 gave no session cookie or no csrf_token" >&2; return 1; }
}

# post PATH FIELD=VALUE...: prints the status; the headers are in $data/h.
post() {
    local path="$1" args=() f
    shift
    for f in "$@" "csrf_token=$csrf"; do args+=(--data-urlencode "$f"); done
    curl -s -D "$data/h" -o "$data/b" -w '%{http_code}' -H "Cookie: $cookie" "${args[@]}" "$base$path"
}

register() {
    cookie=
    form /register
    local status
    status="$(post /register name=Visitor "email=$email" "password=$password")"
    [[ "$status" == 303 ]] || { echo "POST /register answered $status, not 303" >&2; return 1; }
}

# Logs the visitor in: sets cookie to the logged-in session.
login() {
    cookie=
    form /login
    local status c
    status="$(post /login "email=$email" "password=$password")"
    c="$(cookie_of "$data/h")"
    [[ "$status" == 303 && -n "$c" ]] || { echo "POST /login answered $status without a new session cookie" >&2; return 1; }
    cookie="$c"
    status="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/api/purchases")"
    [[ "$status" == 200 ]] || { echo "logged in, but /api/purchases answered $status" >&2; return 1; }
}

# Once the first server has created the tables: the books (titles are one of
# ten words and 8 hex digits, authors "Author 0".."Author 4999"), then the
# visitor, its 10 books and 20 purchases.
seed() {
    local words="'Winter','Garden','River','Silent','Red','Last','City','Night','Stone','Glass'"
    mysql "$db" -e "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0);
      SET SESSION max_recursive_iterations = $books;
      INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $books)
      SELECT CONCAT(ELT(1 + n % 10, $words), ' ', LEFT(MD5(n), 8)), CONCAT('Author ', n % 5000),
             'A book.', 1000 + n % 500, 10, 1, 0 FROM s;" >/dev/null
    register
    mysql "$db" -e "SET @v = (SELECT id FROM users WHERE email = '$email');
      INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 10)
      SELECT CONCAT('Visitor book ', n), 'Visitor', 'A book.', 1500, 5, @v, n FROM s;
      SET @b = (SELECT MIN(id) FROM books);
      INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at)
      WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20)
      SELECT @v, @b + (n * 997) % $books, 1, 1000 + n, IF(n % 2 = 0, 'Paid', 'Pending Payment'), n FROM s;
      ANALYZE TABLE books, purchases, users;" >/dev/null
    # The ids of the first seller's books (one insert: no gaps) for /api/books/ID.
    read -r min_id max_id count <<<"$(mysql -N "$db" -e "SELECT MIN(id), MAX(id), COUNT(*) FROM books WHERE seller_id = 1")"
    ((max_id - min_id + 1 == count)) || echo "the books' ids have gaps: /api/books/ID may answer 404" >&2
}

# Requests of each kind, one at a time, and the answers that are not 2xx.
sweep() {
    local n path status kind words=(Winter Garden River Silent Red Last City Night Stone Glass)
    local visitor=(/purchases /book/my_books /api/purchases)
    for n in $(seq 1 20); do
        for kind in catalog search api-books api-book visitor; do
            case "$kind" in
            catalog) path="/book/catalog?page=$((1 + RANDOM % 500))" ;;
            search) path="/book/catalog?q=${words[RANDOM % 10]}+$(printf '%x' $((RANDOM % 16)))&page=$((1 + RANDOM % 3))" ;;
            api-books) path="/api/books?page=$((1 + RANDOM % 500))" ;;
            api-book) path="/api/books/$((min_id + (RANDOM * 32768 + RANDOM) % (max_id - min_id + 1)))" ;;
            visitor) path="${visitor[n % 3]}" ;;
            esac
            status="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base$path")"
            [[ "$status" == 2* ]] || echo "    $status GET $path"
        done
    done | sort | uniq -c | sort -rn | head -20
}

echo "mixed.sh: $books books, ${secs}s a run, $conns connections, $rounds round(s), $(nproc) cores"
seeded=
for round in $(seq 1 "$rounds"); do
    for i in $(round_order "$round"); do
        name="${bin_names[$i]}"
        echo "round $round, $name (${bin_paths[$i]})"
        start_server "${bin_paths[$i]}" "$url" "$data/files"
        [[ -n "$seeded" ]] || { seed; seeded=1; }
        login
        export MIXED_COOKIE="$cookie" MIXED_MIN_ID="$min_id" MIXED_MAX_ID="$max_id"
        wrk -t2 -c"$conns" -d"${warm}s" -s app/bench/mixed.lua "$base" >/dev/null # warm-up
        reset_peak
        out="$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s app/bench/mixed.lua "$base")"
        rss="$(peak_mib)"
        read -r -a f <<<"$(wrk_fields "$out")"
        record "$name" mixed "${f[@]:0:3}" "$rss" "${f[@]:3}"
        printf '  %8s req/s  p50 %8s ms  p99 %8s ms  peak RSS %4s MiB  non-2xx %s' "${f[0]}" "${f[1]}" "${f[2]}" "$rss" "${f[3]}"
        [[ "${f[4]}" == 0 ]] || printf '  socket errors %s' "${f[4]}"
        echo
        if [[ "${f[3]}" != 0 ]]; then
            echo "  BUG: ${f[3]} answers were not 2xx; 100 requests one at a time gave:"
            sweep
        fi
        stop_server
    done
done

summary
