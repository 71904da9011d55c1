# Sourced: starts the AWS API emulator on a free loopback port and points
# the AWS SDK at it; stops it when the sourcing shell exits.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/ensure-emulator"
EMULATOR_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
EMULATOR_LOG="$(mktemp -t emulator.XXXXXX.log)"
# AWS managed policies exist in every account (the instance role attaches
# AmazonSSMManagedInstanceCore); the emulator loads them only when asked.
MOTO_IAM_LOAD_MANAGED_POLICIES=true \
    "$root/.venv/bin/python" "$root/scripts/emulator-server" -H 127.0.0.1 -p "$EMULATOR_PORT" >"$EMULATOR_LOG" 2>&1 &
EMULATOR_PID=$!
trap 'kill $EMULATOR_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$EMULATOR_PORT") 2>/dev/null && break
    sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$EMULATOR_PORT"
export AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator AWS_REGION="${AWS_REGION:-us-east-1}"
unset AWS_PROFILE AWS_SESSION_TOKEN
export BOOKSTORE_INFRA_POLL_MS="${BOOKSTORE_INFRA_POLL_MS:-200}"
