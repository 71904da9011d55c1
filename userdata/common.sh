# The parts of the boot script both shapes share (`scaled.sh`, `single.sh`):
# functions only, spliced into a shape's script where it says so, after its
# values. They read the shape's variables (ROOT, STACK, REGION, BUCKET,
# APP_UID, DB_*, bin) and do nothing until called.

log() { echo "bookstore-boot[$STACK]: $*" >&2; }

# Downloads s3://$BUCKET/$1 with the instance role and installs it as $2's
# file $3 once its sha256 is $2. Nothing is installed when the download
# fails (status 1) or the sum differs (status 3). Errors are handled here:
# it is also called where `set -e` does not apply.
fetch_verified() {
    local tmp got
    tmp="$(mktemp -d)"
    log "downloading s3://$BUCKET/$1"
    if ! aws s3api get-object --region "$REGION" --bucket "$BUCKET" --key "$1" "$tmp/bookstore" >/dev/null; then
        rm -rf "$tmp"
        return 1
    fi
    got="$(sha256sum "$tmp/bookstore" | cut -d' ' -f1)"
    if [ "$got" != "$2" ]; then
        log "checksum mismatch for s3://$BUCKET/$1: expected $2, got $got"
        rm -rf "$tmp"
        return 3
    fi
    if ! install -D -m 0755 "$tmp/bookstore" "$3"; then
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$tmp"
}

# The app runs as its own system user, with the uid and gid its data is
# written as (the file system's access point's, or the data volume's).
app_user() {
    if ! id bookstore >/dev/null 2>&1; then
        groupadd --system --gid "$APP_UID" bookstore
        useradd --system --uid "$APP_UID" --gid "$APP_UID" --no-create-home --shell /sbin/nologin bookstore
    fi
}

# A value of the instance metadata service (IMDSv2: a token first).
imds() {
    local token
    token="$(curl -sf -X PUT http://169.254.169.254/latest/api/token \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' --retry 5 --retry-connrefused)"
    curl -sf -H "X-aws-ec2-metadata-token: $token" \
        "http://169.254.169.254/latest/meta-data/$1" --retry 5 --retry-connrefused
}

# The database has two users. The master user (its password in the secret
# RDS manages and rotates) applies the migrations and keeps the app's own
# user, in a step of its own before the web server starts (db_migrate). The
# web server connects as the app's user, which may only read and write
# rows, and is never given the master password. Both verify the server's
# certificate against the Amazon RDS authorities the app is built with,
# for the database's host name.
db_prepare() {
    "$bin" rds-ca-bundle >"$ROOT/etc/bookstore/rds-ca.pem"
    chmod 0644 "$ROOT/etc/bookstore/rds-ca.pem"
    DB_TLS="ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/bookstore/rds-ca.pem"

    # The master password, read whenever the migrate step connects (again when
    # it was rotated), by root only; it is never written down.
    cat >"$ROOT/usr/local/lib/bookstore/db-master-password" <<EOF
#!/bin/bash
set -euo pipefail
aws secretsmanager get-secret-value --region '$REGION' --secret-id '$DB_SECRET_ARN' \\
    --query SecretString --output text |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])'
EOF
    chmod 0700 "$ROOT/usr/local/lib/bookstore/db-master-password"

    # The app user's password, from the stack's own secret, in a file only
    # root reads: systemd hands it to the web server as a credential.
    (
        umask 077
        aws secretsmanager get-secret-value --region "$REGION" --secret-id "$DB_APP_SECRET_ARN" \
            --query SecretString --output text >"$ROOT/etc/bookstore/db-app-password.new"
        mv "$ROOT/etc/bookstore/db-app-password.new" "$ROOT/etc/bookstore/db-app-password"
    )
    cat >"$ROOT/usr/local/lib/bookstore/db-password" <<'EOF'
#!/bin/sh
# The app user's password, as systemd hands it to the service (LoadCredential=).
exec cat "$CREDENTIALS_DIRECTORY/db-password"
EOF
    chmod 0755 "$ROOT/usr/local/lib/bookstore/db-password"
}

# The migrate step: the schema and the app's user, as the master user,
# before the web server starts (it never changes the schema). Instances
# booting together take turns (the step holds a lock in the database); a
# database still starting or rebooting is waited for.
migrate() {
    BOOKSTORE_DATABASE_URL="mysql://$DB_USER@$DB_HOST:$DB_PORT/$DB_NAME?$DB_TLS" \
        BOOKSTORE_DATABASE_PASSWORD_COMMAND="$ROOT/usr/local/lib/bookstore/db-master-password" \
        "$bin" migrate --app-user "$DB_APP_USER" \
        --app-password-file "$ROOT/etc/bookstore/db-app-password"
}
db_migrate() {
    local tries=1
    until migrate; do
        if [ "$tries" -ge 30 ]; then
            log "the migrate step failed $tries times; the web server is not started"
            exit 1
        fi
        log "the migrate step failed (attempt $tries), trying again in 10 s"
        tries=$((tries + 1))
        sleep 10
    done
}

# The app's journal goes to the stack's CloudWatch Logs group, one stream
# per instance (named by its id, $1), by a small service of its own:
# journalctl follows the app's unit, a Python filter batches the entries
# into `aws logs put-log-events` calls and records the cursor of the last
# entry shipped, so a restart resumes after it (at least once, in order).
# The instance role may write to this group only, and only to streams named
# like instance ids (AWS cannot tie a stream to the instance writing it).
ship_logs() {
    LOG_GROUP="/bookstore-infra/$STACK/app"
    cat >"$ROOT/etc/bookstore/logs.env" <<EOF
LOG_GROUP=$LOG_GROUP
LOG_STREAM=$1
AWS_REGION=$REGION
EOF
    chmod 0644 "$ROOT/etc/bookstore/logs.env"

    cat >"$ROOT/usr/local/lib/bookstore/ship-logs" <<'SHIP'
#!/bin/bash
# Follows the bookstore unit's journal and ships it to CloudWatch Logs.
# Needs LOG_GROUP, LOG_STREAM, AWS_REGION and STATE_DIRECTORY (systemd's).
set -euo pipefail
cursor="$STATE_DIRECTORY/cursor"
# The stream exists already after an earlier boot of this instance.
aws logs create-log-stream --region "$AWS_REGION" --log-group-name "$LOG_GROUP" \
    --log-stream-name "$LOG_STREAM" 2>/dev/null || true
after=()
if [ -s "$cursor" ]; then
    after=(--after-cursor "$(cat "$cursor")")
fi
journalctl -u bookstore.service -o json --no-pager -f "${after[@]}" |
    python3 "$(dirname "$0")/ship-logs.py" "$cursor"
SHIP
    chmod 0755 "$ROOT/usr/local/lib/bookstore/ship-logs"

    cat >"$ROOT/usr/local/lib/bookstore/ship-logs.py" <<'SHIP'
# Reads journalctl's JSON lines on stdin and ships them with PutLogEvents.
#
# A batch is sent 5 seconds after its first entry, or sooner when it reaches
# the API's limits (CloudWatch Logs API reference, PutLogEvents: at most
# 10,000 events and 1,048,576 bytes, each event counting its UTF-8 size plus
# 26 bytes; events in chronological order). The cursor of the last entry of
# a batch is written to the file named by argv[1] once the batch is accepted.
import json
import os
import select
import subprocess
import sys
import tempfile
import time

MAX_EVENTS, MAX_BYTES, OVERHEAD = 10000, 1048576, 26
MAX_MESSAGE = 256 * 1024 - OVERHEAD
FLUSH_SECONDS = 5
cursor_file = sys.argv[1]
batch, size, last_cursor, first_at = [], 0, None, None


def send():
    global batch, size, first_at
    if not batch:
        return
    batch.sort(key=lambda e: e["timestamp"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(batch, f)
    try:
        subprocess.run(
            ["aws", "logs", "put-log-events",
             "--region", os.environ["AWS_REGION"],
             "--log-group-name", os.environ["LOG_GROUP"],
             "--log-stream-name", os.environ["LOG_STREAM"],
             "--log-events", "file://" + f.name],
            check=True, stdout=subprocess.DEVNULL)
    finally:
        os.unlink(f.name)
    if last_cursor:
        tmp = cursor_file + ".tmp"
        with open(tmp, "w") as c:
            c.write(last_cursor)
        os.replace(tmp, cursor_file)
    batch, size, first_at = [], 0, None


while True:
    wait = None
    if first_at is not None:
        wait = max(0.0, first_at + FLUSH_SECONDS - time.monotonic())
    ready, _, _ = select.select([sys.stdin], [], [], wait)
    if not ready:
        send()
        continue
    line = sys.stdin.readline()
    if not line:
        send()
        break
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journald's form of a non-UTF-8 message
        message = bytes(message).decode("utf-8", "replace")
    if not message:
        continue
    message = message.encode("utf-8")[:MAX_MESSAGE].decode("utf-8", "ignore")
    cost = len(message.encode("utf-8")) + OVERHEAD
    if len(batch) >= MAX_EVENTS or size + cost > MAX_BYTES:
        send()
    micros = int(entry.get("__REALTIME_TIMESTAMP", time.time() * 1e6))
    batch.append({"timestamp": micros // 1000, "message": message})
    size += cost
    last_cursor = entry.get("__CURSOR", last_cursor)
    if first_at is None:
        first_at = time.monotonic()
SHIP

    cat >"$ROOT/etc/systemd/system/bookstore-logs.service" <<EOF
[Unit]
Description=ships the bookstore journal to CloudWatch Logs
Wants=network-online.target
After=network-online.target

[Service]
EnvironmentFile=/etc/bookstore/logs.env
ExecStart=/usr/local/lib/bookstore/ship-logs
Restart=always
RestartSec=5
DynamicUser=true
SupplementaryGroups=systemd-journal
StateDirectory=bookstore-logs
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
EOF
}
