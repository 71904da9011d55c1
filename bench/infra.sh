#!/usr/bin/env bash
# Benchmark of the provisioning tool against the local AWS API emulator:
# API requests and wall time of `up` from empty and of `diff` on an
# unchanged stack. Usage: bench/infra.sh [ROUNDS] [STACK]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
stack="${2:-stacks/demo.toml}"
cargo build --quiet --release -p bookstore-infra
# The full topology ships the app binary: build it first.
if ! grep -q '^topology = "network"' "$stack"; then scripts/build-app >/dev/null; fi
bin=target/release/bookstore-infra
BOOKSTORE_INFRA_POLL_MS=50 source scripts/emulator.sh
mkdir -p bench/out
out="bench/out/infra-$(date +%Y%m%d-%H%M%S).txt"

stat() { grep -o "$1=[0-9]*" | head -1 | cut -d= -f2; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One warm-up round: the emulator loads each service on first use.
if ! warm=$("$bin" up "$stack" --yes 2>&1); then
    printf '%s\nthe warm-up up of %s failed\n' "$warm" "$stack" >&2
    exit 1
fi
"$bin" destroy "$stack" --yes --allow-delete db >/dev/null 2>&1

up_ms=(); up_calls=(); diff_ms=(); diff_calls=()
for _ in $(seq 1 "$rounds"); do
    s=$("$bin" --stats up "$stack" --yes 2>&1 >/dev/null | grep '^api_calls=')
    up_ms+=("$(echo "$s" | stat wall_ms)"); up_calls+=("$(echo "$s" | stat api_calls)")
    for _ in 1 2 3; do
        s=$("$bin" --stats diff "$stack" 2>&1 >/dev/null | grep '^api_calls=')
        diff_ms+=("$(echo "$s" | stat wall_ms)"); diff_calls+=("$(echo "$s" | stat api_calls)")
    done
    "$bin" destroy "$stack" --yes --allow-delete db >/dev/null 2>&1
done
{
    echo "stack: $stack, rounds: $rounds, emulator: moto $(.venv/bin/pip show moto 2>/dev/null | awk '/^Version/{print $2}'), $(nproc) cores"
    echo "up from empty:    median $(printf '%s\n' "${up_ms[@]}" | median) ms, $(printf '%s\n' "${up_calls[@]}" | median) API requests"
    echo "diff (unchanged): median $(printf '%s\n' "${diff_ms[@]}" | median) ms, $(printf '%s\n' "${diff_calls[@]}" | median) API requests"
    echo "last up, requests by operation:"
    "$bin" --stats up "$stack" --yes 2>&1 >/dev/null | grep '^api_calls=' | tr ' ' '\n' | sed 's/^/  /'
} | tee "$out"
