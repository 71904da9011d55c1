#!/usr/bin/env bash
# Benchmark: restarting the server under load, on one machine, without a
# load balancer. wrk keeps CONNECTIONS keep-alive connections busy on the
# home page and the catalog (20 books, SQLite) for SECONDS, while
# holder.py restarts the server RESTARTS times as systemd does with socket
# activation (SIGTERM, wait for the exit, start the new binary on the
# socket it holds; `Type=notify`: the new server is started when it sends
# READY=1). Then the same without the held socket (each server binds the
# port itself), and the same load without restarts, for comparison.
#
# Prints per run the requests answered, the failed ones (wrk's connect,
# read, write and timeout errors, and non-2xx answers) and the worst and
# 99th percentile latency; per restart how long the old server took to
# stop and the new one to be ready.
#
# Usage: app/bench/handover.sh [SECONDS] [CONNECTIONS] [RESTARTS]   (default 20 s, 32, 5)
#   BINS="name=path": the binary (the first one given); without it the
#   current release build, built first.
# Needs: wrk (Debian package `wrk`), python3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
secs="${1:-20}"
conns="${2:-32}"
restarts="${3:-5}"
bench_bins
bin="${bin_paths[0]}"

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export BOOKSTORE_DATABASE_URL="sqlite:$dir/bookstore.db" BOOKSTORE_DATA_DIR="$dir/data" BOOKSTORE_LOG=warn
"$bin" migrate >/dev/null
python3 - "$dir/bookstore.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Seller', 'seller@example.com', 'x', 0, 0)")
db.executemany("INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) VALUES (?, ?, 'A book.', ?, 10, 1, 0)",
               [(f"Book {n}", f"Author {n}", 1000 + n) for n in range(1, 21)])
db.commit()
PY

# run NAME RESTARTS [--bound]
run() {
    local port out line
    port="$(free_port)"
    out="$(python3 app/bench/holder.py --bin "$bin" --port "$port" --restarts "$2" --secs "$secs" ${3:-} --log "$dir" -- \
        wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s app/bench/handover.lua "http://127.0.0.1:$port")"
    line="$(grep '^handover: ' <<<"$out")"
    grep '^restart ' <<<"$out" | sed 's/^/  /' || true
    awk -v name="$1" -v r="$2" '{
        failed = $5 + $7 + $9 + $11 + $13
        printf "%-26s %2d restarts  %8d requests  %6d failed (connect %d, read %d, write %d, timeout %d, non-2xx %d)  max %8.1f ms  p99 %6.2f ms\n",
            name, r, $3, failed, $5, $7, $9, $11, $13, $15, $17 }' <<<"$line"
}

books="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from books").fetchone()[0])' "$dir/bookstore.db")"
echo "handover.sh: ${secs}s a run, $conns connections, $books books on SQLite, $(nproc) cores"
run "socket held (systemd)" "$restarts"
run "each server binds" "$restarts" --bound
run "no restart" 0
