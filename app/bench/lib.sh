# Shared by the benchmarks in this directory (sourced, not run).
#
# BINS="name=path name2=path2": the binaries to compare (paths relative to
# the directory the benchmark was started from). Without it, the current
# release build, built first, is the only one, named `current`.
# ROUNDS=N: each binary runs once per round, with a fresh server each time;
# every other round runs them in reverse order.

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

bench_cwd="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds="${ROUNDS:-2}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number" >&2; exit 2; }

mysql() { command mysql -uroot -h127.0.0.1 -P3306 "$@"; }

# Fills bin_names and bin_paths from BINS (or builds the current binary).
bench_bins() {
    bin_names=()
    bin_paths=()
    if [[ -z "${BINS:-}" ]]; then
        cargo build --quiet --release -p bookstore
        bin_names=(current)
        bin_paths=("$PWD/${CARGO_TARGET_DIR:-target}/release/bookstore")
    else
        local item name path
        for item in $BINS; do
            name="${item%%=*}"
            path="${item#*=}"
            [[ "$item" == *=* && -n "$name" && -n "$path" ]] || { echo "BINS: '$item' is not name=path" >&2; exit 2; }
            [[ "$path" == /* ]] || path="$bench_cwd/$path"
            [[ -x "$path" ]] || { echo "BINS: $path is not an executable" >&2; exit 2; }
            bin_names+=("$name")
            bin_paths+=("$path")
        done
    fi
}

# The binaries' indexes in the order of round $1 (1-based).
round_order() {
    local n=${#bin_names[@]} i
    if (($1 % 2 == 1)); then
        for ((i = 0; i < n; i++)); do echo "$i"; done
    else
        for ((i = n - 1; i >= 0; i--)); do echo "$i"; done
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server BIN DATABASE_URL DATA_DIR: sets pid, port and base.
start_server() {
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    BOOKSTORE_DATABASE_URL="$2" BOOKSTORE_LOG=warn \
        "$1" serve --listen "127.0.0.1:$port" --data-dir "$3" &
    pid=$!
    local _
    for _ in $(seq 1 600); do
        curl -sf "$base/healthz" >/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "$1 exited before answering /healthz" >&2; pid=; return 1; }
        sleep 0.1
    done
    echo "$1 did not answer /healthz within 60 s" >&2
    return 1
}

stop_server() {
    if [[ -n "${pid:-}" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}

# The server's peak memory (VmHWM) is reset to its current size, so that
# each measurement gets its own peak.
reset_peak() { echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || echo "cannot reset the peak RSS of $pid" >&2; }
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }

# A latency as wrk prints it (12.5us, 3.1ms, 1.2s, 2.0m) in ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) print "?"; else printf "%.2f", n * f }'
}

# wrk_fields WRK_OUTPUT: "requests/s p50_ms p99_ms non2xx socket_errors"
wrk_fields() {
    local rps p50 p99 non2xx errs
    rps="$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1")"
    p50="$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$1")")"
    p99="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$1")")"
    non2xx="$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$1")"
    errs="$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' <<<"$1")"
    echo "${rps:-0} $p50 $p99 ${non2xx:-0} ${errs:-0}"
}

# Results, one line per measurement: binary page rps p50 p99 rss non2xx errors
results="$(mktemp)"
record() { echo "$*" >>"$results"; }

# The mean over the rounds per binary and page (peak RSS: the highest).
summary() {
    echo
    echo "summary over $rounds round(s), $(nproc) cores: mean requests/s, p50 and p99 (ms); highest peak RSS"
    awk '
        { k = $1 " " $2; if (!(k in n)) keys[++nk] = k
          n[k]++; rps[k] += $3; p50[k] += $4; p99[k] += $5
          if ($6 > rss[k]) rss[k] = $6; bad[k] += $7; errs[k] += $8 }
        END {
            printf "%-12s %-10s %10s %9s %9s %9s %9s %7s\n", "binary", "page", "req/s", "p50", "p99", "RSS MiB", "non-2xx", "errors"
            for (i = 1; i <= nk; i++) { k = keys[i]; split(k, a, " ")
                printf "%-12s %-10s %10.0f %9.2f %9.2f %9d %9d %7d\n", a[1], a[2], rps[k] / n[k], p50[k] / n[k], p99[k] / n[k], rss[k], bad[k], errs[k] }
        }' "$results"
}
