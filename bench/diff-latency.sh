#!/usr/bin/env bash
# The calls and round trips of a no-change `diff` when every AWS request
# takes LATENCY_MS (a CI runner to its region): the stack is provisioned
# into the local emulator, then `diff` runs ROUNDS times through a proxy
# that answers each request LATENCY_MS late and records when each started
# and ended (bench/latency.py). Round trips are the requests made one
# after another; the wall time is about round trips x latency.
# Usage: bench/diff-latency.sh [LATENCY_MS] [ROUNDS] [STACK]; CHAIN=1 also
# prints the longest chain of requests made one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
latency="${1:-60}"
rounds="${2:-3}"
stack="${3:-stacks/production.toml}"
# The debug build the tests use: the requests a plan makes do not depend
# on optimisation, and the wall time here is the requests' latency.
cargo test --workspace --no-run --quiet 2>/dev/null
bin=target/debug/bookstore-infra
if ! grep -q '^topology = "network"' "$stack"; then scripts/build-app >/dev/null; fi
MOTO_ACM_VALIDATION_WAIT=1 BOOKSTORE_INFRA_POLL_MS=50 source scripts/emulator.sh
# A domain's hosted zone exists before the stack, as a real domain's would.
zone=$(sed -n 's/^hosted_zone = "\(.*\)"/\1/p' "$stack")
if [[ -n "$zone" ]]; then
    .venv/bin/python -c "import boto3,sys; boto3.client('route53', endpoint_url=sys.argv[1], region_name='us-east-1').create_hosted_zone(Name=sys.argv[2], CallerReference='bench')" \
        "$AWS_ENDPOINT_URL" "$zone" >/dev/null
fi
if ! out=$("$bin" up "$stack" --yes 2>&1); then
    printf '%s\nup of %s failed\n' "$out" "$stack" >&2
    exit 1
fi
proxy_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp -t latency.XXXXXX)"
python3 bench/latency.py serve "$proxy_port" "$EMULATOR_PORT" "$latency" "$log" &
proxy=$!
trap 'kill $proxy 2>/dev/null || true; kill $EMULATOR_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break; sleep 0.1; done
echo "stack: $stack, ${latency} ms per request, $rounds rounds"
for _ in $(seq 1 "$rounds"); do
    : >"$log"
    start=$(date +%s%N)
    AWS_ENDPOINT_URL="http://127.0.0.1:$proxy_port" "$bin" diff "$stack" --detailed-exitcode >/dev/null 2>&1 || {
        code=$?
        [[ $code -eq 2 ]] && echo "diff found changes on an unchanged stack" >&2
        exit "$code"
    }
    end=$(date +%s%N)
    echo "diff: $(python3 bench/latency.py report "$log" ${CHAIN:+--chain}) process_ms=$(((end - start) / 1000000))"
done
