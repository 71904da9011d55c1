#!/usr/bin/env bash
# Benchmark: the app's own 404 page (GET /no-such-page, no database) and the
# catalog page (20 books) on MariaDB, 64 connections, wrk on the same
# machine. Per binary and page it prints requests/s, p50 and p99 latency,
# the server's peak memory during that page's run, then the ratio of the
# 404 page's requests/s to the catalog's (what the database costs).
#
# Usage: app/bench/catalog.sh [SECONDS] [CONNECTIONS]   (default 20 s, 64)
#   BINS="before=/tmp/bookstore-old after=target/release/bookstore" compares
#   binaries in one run on the same database contents; without BINS the
#   current release build (built first) runs alone, as `current`.
#   ROUNDS=N (default 2): each binary once per round, a fresh server each
#   time, the order reversed every other round; the summary is the mean.
#   PROFILE=FILE also records the server with `perf record` during each
#   catalog run (FILE, or FILE.NAME.ROUND with several runs) and prints
#   where its time went (kernel or app, then the top symbols).
# Needs: wrk (Debian package `wrk`), MariaDB on 127.0.0.1:3306 (root, no password).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs="${1:-20}"
conns="${2:-64}"
warm=$((secs < 10 ? 1 : 2))
bench_bins

db=bookstore_bench
url="mysql://root@127.0.0.1:3306/$db"
mysql -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
data="$(mktemp -d)"
pid=
trap 'stop_server; rm -rf "$data" "$results"; mysql -e "DROP DATABASE IF EXISTS $db"' EXIT

# The books, once the first server has created the tables.
seed() {
    mysql "$db" -e "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0);
      INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at)
      SELECT CONCAT('Book ', n), CONCAT('Author ', n), 'A book.', 1000 + n, 10, 1, 0
      FROM (SELECT 1 n UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8
            UNION SELECT 9 UNION SELECT 10 UNION SELECT 11 UNION SELECT 12 UNION SELECT 13 UNION SELECT 14 UNION SELECT 15
            UNION SELECT 16 UNION SELECT 17 UNION SELECT 18 UNION SELECT 19 UNION SELECT 20) t;"
}

# measure NAME PAGE PATH [PROFILE_FILE]
measure() {
    local target="$base$3" out perf_pid= f rss
    wrk -t2 -c"$conns" -d"${warm}s" "$target" >/dev/null # warm-up
    reset_peak
    if [[ -n "${4:-}" ]]; then
        perf record -q -F 999 -g -p "$pid" -o "$4" -- sleep "$secs" 2>/dev/null &
        perf_pid=$!
    fi
    out="$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$target")"
    rss="$(peak_mib)"
    read -r -a f <<<"$(wrk_fields "$out")"
    record "$1" "$2" "${f[@]:0:3}" "$rss" "${f[@]:3}"
    printf '  %-8s %8s req/s  p50 %8s ms  p99 %8s ms  peak RSS %4s MiB' "$2" "${f[0]}" "${f[1]}" "${f[2]}" "$rss"
    [[ "${f[4]}" == 0 ]] || printf '  socket errors %s' "${f[4]}"
    # Every 404 answer is a non-2xx one; anywhere else they are a bug.
    [[ "$2" == 404 || "${f[3]}" == 0 ]] || printf '  NON-2xx %s' "${f[3]}"
    echo
    if [[ -n "$perf_pid" ]]; then
        wait "$perf_pid" || true
        echo "  profile ($4): share of the server's samples by object, then by symbol"
        perf report -i "$4" --no-children -g none --sort dso 2>/dev/null | grep '%' | grep -v '^#' | head -5 |
            sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//; s/^/  /' || true
        perf report -i "$4" --no-children -g none --sort symbol 2>/dev/null | grep '%' | grep -v '^#' | head -10 |
            sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//; s/^/  /' || true
    fi
}

echo "catalog.sh: ${secs}s a page, $conns connections, $rounds round(s), $(nproc) cores"
seeded=
for round in $(seq 1 "$rounds"); do
    for i in $(round_order "$round"); do
        name="${bin_names[$i]}"
        echo "round $round, $name (${bin_paths[$i]})"
        start_server "${bin_paths[$i]}" "$url" "$data"
        [[ -n "$seeded" ]] || { seed; seeded=1; }
        status="$(curl -s -o /dev/null -w '%{http_code}' "$base/no-such-page")"
        [[ "$status" == 404 ]] || echo "  /no-such-page answered $status, not 404" >&2
        books="$(curl -sf "$base/book/catalog" | grep -o '<tr><td' | wc -l || true)"
        [[ "$books" == 20 ]] || echo "  /book/catalog shows $books books, not 20" >&2
        prof=
        if [[ -n "${PROFILE:-}" ]]; then
            prof="$PROFILE"
            ((${#bin_names[@]} == 1 && rounds == 1)) || prof="$PROFILE.$name.$round"
        fi
        measure "$name" 404 /no-such-page
        measure "$name" catalog /book/catalog "$prof"
        stop_server
    done
done

summary
echo
echo "404/catalog: requests/s of the 404 page over those of the catalog page"
for name in "${bin_names[@]}"; do
    awk -v b="$name" '$1 == b && $2 == "404" {a += $3} $1 == b && $2 == "catalog" {c += $3}
        END {printf "%-12s %.2f\n", b, c ? a / c : 0}' "$results"
done
