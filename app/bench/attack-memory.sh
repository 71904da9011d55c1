#!/usr/bin/env bash
# Benchmark: the server's memory under the floods that used to grow it,
# on SQLite, one server, the client on the same machine.
#
# 1. N failed logins (default 100,000), each with its own large random
#    email (EMAIL_KIB, default 16 KiB; URL-safe letters, so the body is
#    that size plus the other fields) and its own client address
#    (`X-Forwarded-For`), so that every one is a new key for every limit.
#    A 16 KiB email does not fit in the 16 KiB body limit of a form: those
#    are refused (413) before anything is read; EMAIL_KIB=15 gets them
#    through to the limits.
# 2. N anonymous `GET /login` without cookies.
#
# For each it prints the answers by status, the idle RSS before, the peak
# RSS (VmHWM) during, the rows of the `sessions` and `limits` tables after,
# and the requests per second. Not part of the test suite: a measurement,
# with no pass or fail.
#
# Usage: app/bench/attack-memory.sh [N] [CONCURRENCY]   (default 100000, 8)
#   BIN=path: the binary to measure (default: the release build, built first).
#   EMAIL_KIB=K: the size of each email (default 16); EMAIL_BYTES=B in bytes
#   (an address of at most 254 characters reaches the password check).
# Needs: python3, sqlite3 (or python3's sqlite3 module), curl.
set -euo pipefail
n="${1:-100000}"
conc="${2:-8}"
kib="${EMAIL_KIB:-16}"
size="${EMAIL_BYTES:-$((kib * 1024))}"
cd "$(dirname "$0")/../.."
if [[ -z "${BIN:-}" ]]; then
    cargo build --quiet --release -p bookstore
    BIN="$PWD/${CARGO_TARGET_DIR:-target}/release/bookstore"
fi

work="$(mktemp -d)"
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
db="$work/bookstore.db"
BOOKSTORE_DATABASE_URL="sqlite:$db" BOOKSTORE_LOG=error \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" &
pid=$!
for _ in $(seq 1 600); do
    curl -sf "$base/healthz" >/dev/null && break
    sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "the server did not start" >&2; exit 1; }

rss() { awk "/$1/ {printf \"%.1f\", \$2 / 1024}" "/proc/$pid/status"; }
rows() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM $1').fetchone()[0])" "$db"; }

# flood KIND: sends N requests of KIND (login or form) from CONC threads.
flood() {
    python3 - "$1" "$port" "$n" "$conc" "$size" <<'PY'
import base64, http.client, os, random, sys, threading, time, urllib.parse, collections, re
kind, port, n, conc, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
statuses = collections.Counter()
lock = threading.Lock()

def random_local(n):
    # URL-safe: lower-case letters and digits only, so the body is its size.
    return base64.b32encode(os.urandom(n * 5 // 8 + 5)).decode().lower()[:n]

def token(c):
    c.request("GET", "/login")
    r = c.getresponse()
    body = r.read().decode()
    cookie = r.getheader("set-cookie").split(";")[0]
    t = re.search(r'name="csrf_token" value="([0-9a-f]+)"', body).group(1)
    return cookie, t

def worker(count, seed):
    rnd = random.Random(seed)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    cookie, t = token(c) if kind == "login" else (None, None)
    local = collections.Counter()
    for i in range(count):
        if kind == "login":
            email = random_local(size - 12) + "@example.com"
            body = urllib.parse.urlencode({"csrf_token": t, "email": email, "password": "wrong password"})
            ip = "%d.%d.%d.%d" % (rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "X-Forwarded-For": ip}
            try:
                c.request("POST", "/login", body=body, headers=headers)
                r = c.getresponse(); r.read()
                local[r.status] += 1
                if r.getheader("connection", "").lower() == "close":
                    c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except Exception as e:
                local[type(e).__name__] += 1
                c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        else:
            try:
                c.request("GET", "/login")
                r = c.getresponse(); r.read()
                local[r.status] += 1
            except Exception as e:
                local[type(e).__name__] += 1
                c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    with lock:
        statuses.update(local)

start = time.time()
threads = [threading.Thread(target=worker, args=(n // conc + (1 if k < n % conc else 0), k)) for k in range(conc)]
for th in threads: th.start()
for th in threads: th.join()
secs = time.time() - start
print("  answers: " + ", ".join("%s x %d" % (k, v) for k, v in sorted(statuses.items(), key=str)))
print("  %.0f requests/s over %.0f s" % (n / secs, secs))
PY
}

measure() {
    local idle
    idle="$(rss VmRSS)"
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    flood "$1"
    echo "  RSS idle $idle MiB, peak $(rss VmHWM) MiB, after $(rss VmRSS) MiB"
    echo "  rows: sessions $(rows sessions), limits $(rows limits)"
}

echo "$n failed logins, $size-byte random emails, a new client address each, $conc at once:"
measure login
echo "$n anonymous GET /login, no cookies, $conc at once:"
measure form
