#!/bin/bash
# Boot script of the bookstore instance of the `single` shape (Amazon Linux
# 2023): the one instance of an Auto Scaling group of one, with the stack's
# Elastic IP and data volume, serving HTTP (and HTTPS with ACME
# certificates) itself on sockets systemd holds. Run by cloud-init as root;
# rendered as scaled.sh is (values single-quoted, common.sh spliced in; an
# optional value absent is ''). Paths are under $BOOKSTORE_ROOT (empty on an
# instance) so the script can be tried in a sandbox.
set -euo pipefail

ROOT="${BOOKSTORE_ROOT:-}"
STACK=@@STACK@@
REGION=@@REGION@@
BUCKET=@@BUCKET@@
KEY=@@KEY@@
SHA256=@@SHA256@@
DATA_DIR=@@DATA_DIR@@
APP_UID=@@APP_UID@@
VOLUME_ID=@@VOLUME_ID@@
ALLOCATION_ID=@@ALLOCATION_ID@@
TLS_DOMAINS=@@TLS_DOMAINS@@
ACME_DIRECTORY=@@ACME_DIRECTORY@@
ACME_CONTACT=@@ACME_CONTACT@@
DB_HOST=@@DB_HOST@@
DB_PORT=@@DB_PORT@@
DB_NAME=@@DB_NAME@@
DB_USER=@@DB_USER@@
DB_SECRET_ARN=@@DB_SECRET_ARN@@
DB_APP_USER=@@DB_APP_USER@@
DB_APP_SECRET_ARN=@@DB_APP_SECRET_ARN@@

# @@COMMON@@

# The release command, `bookstore-release [--install-only] KEY SHA256`: this
# very script, copied to /usr/local/sbin/bookstore-release at boot (so it
# knows the stack's bucket and domains), run by the tool through SSM Run
# Command and by the boot for the release the launch template names. It
# installs s3://$BUCKET/KEY, once its sha256 is SHA256, as
# /opt/bookstore/releases/SHA256/bookstore and points /opt/bookstore/current
# at it (one rename); then, unless --install-only, restarts bookstore.service
# (systemd holds its sockets meanwhile: no connection is refused) and waits
# HEALTH_SECONDS (60) for /healthz, switching back to the release it
# replaced if it stays unhealthy. Progress and errors go to stderr; success
# prints `released SHA256` on stdout. Exit status: 0 done (or SHA256 is
# current already), 1 failed before switching, 2 usage, 3 checksum mismatch
# (1, 2 and 3 change nothing), 4 unhealthy and switched back to a healthy
# release, 5 unhealthy and no healthy release to switch back to.
# `bookstore-release --upload-tls` copies the app's TLS state to S3 (run by
# bookstore-tls-upload.service).
TLS_DIR="$DATA_DIR/tls"
TLS_FILES=(--exclude '*' --include account.json --include key.pem --include cert.pem --include certificate.json)
top="$ROOT/opt/bookstore"
switch() { ln -sfn "releases/$1" "$top/current.new" && mv -T "$top/current.new" "$top/current"; }
healthy() {
    local i url=http://127.0.0.1/healthz to=() domain="${TLS_DOMAINS%%,*}"
    # With TLS, port 80 redirects: ask port 443 for the first domain.
    if [ -n "$domain" ]; then
        url="https://$domain/healthz" to=(-k --resolve "$domain:443:127.0.0.1")
    fi
    for ((i = 0; i < ${HEALTH_SECONDS:-60}; i += 2)); do
        curl -fs -o /dev/null --max-time 5 "${to[@]}" "$url" && return 0
        sleep 2
    done
    return 1
}
release() {
    local only='' sha prev new
    [ "${1:-}" = --install-only ] && only=1 && shift
    if [ $# != 2 ] || ! [[ $2 =~ ^[0-9a-f]{64}$ ]]; then
        log "usage: bookstore-release [--install-only] KEY SHA256"
        exit 2
    fi
    sha="$2"
    mkdir -p "$top/releases"
    exec 9>"$top/.lock"
    flock -n 9 || { log "another release is running"; exit 1; }
    new="$top/releases/$sha/bookstore"
    if [ -f "$new" ] && [ "$(sha256sum "$new" | cut -d' ' -f1)" = "$sha" ]; then
        log "$sha is installed already"
    else
        fetch_verified "$1" "$sha" "$new" || exit $?
    fi
    prev="$(readlink "$top/current" || true)"
    prev="${prev#releases/}"
    if [ "$prev" = "$sha" ]; then
        log "$sha is the current release"
        return 0
    fi
    switch "$sha"
    log "current release: $sha (was ${prev:-none})"
    [ -z "$only" ] || return 0
    if systemctl restart bookstore.service && healthy; then
        for d in "$top"/releases/*; do
            case "${d##*/}" in "$sha" | "$prev") ;; *) rm -rf "$d" ;; esac
        done
        echo "released $sha"
        return 0
    fi
    log "$sha is not healthy after ${HEALTH_SECONDS:-60} s"
    [ -n "$prev" ] || { log "no earlier release to switch back to"; exit 5; }
    switch "$prev"
    if systemctl restart bookstore.service && healthy; then
        log "switched back to $prev, which is healthy"
        exit 4
    fi
    log "switched back to $prev, which is not healthy either"
    exit 5
}
case "${0##*/}" in
bookstore-release)
    log() { echo "bookstore-release[$STACK]: $*" >&2; }
    if [ "${1:-}" = --upload-tls ]; then
        aws s3 sync --region "$REGION" --only-show-errors --sse AES256 "$ROOT$TLS_DIR/" "s3://$BUCKET/tls/" "${TLS_FILES[@]}"
    else
        release "$@"
    fi
    exit 0
    ;;
esac

units="$ROOT/etc/systemd/system"
install -d -m 0755 "$ROOT/usr/local/lib/bookstore" "$ROOT/etc/bookstore" "$units" "$ROOT/usr/local/sbin"
INSTANCE_ID="$(imds instance-id)"
log "instance $INSTANCE_ID in $(imds placement/availability-zone)"
app_user

# The data volume, attached here once the instance it was attached to lets
# it go (its termination detaches it); already here on a second boot.
on="$(aws ec2 describe-volumes --region "$REGION" --volume-ids "$VOLUME_ID" \
    --query 'Volumes[0].Attachments[0].InstanceId' --output text)"
tries=1
until [ "$on" = "$INSTANCE_ID" ] || out="$(aws ec2 attach-volume --region "$REGION" \
    --volume-id "$VOLUME_ID" --instance-id "$INSTANCE_ID" --device /dev/sdf 2>&1)"; do
    case "$out" in *VolumeInUse* | *IncorrectState*) ;; *)
        log "attaching $VOLUME_ID failed: $out"
        exit 1
        ;;
    esac
    if [ "$tries" -ge 60 ]; then
        log "$VOLUME_ID is still in use after $tries attempts: $out"
        exit 1
    fi
    log "$VOLUME_ID is in use (attempt $tries), trying again in 10 s"
    tries=$((tries + 1))
    sleep 10
done
# Nitro instances see it as an NVMe device named by the volume id, Xen
# ones as the device asked for.
dev=
for ((i = 0; i < 120; i++)); do
    for d in "$ROOT/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${VOLUME_ID//-/}" \
        "$ROOT/dev/xvdf" "$ROOT/dev/sdf"; do
        [ -e "$d" ] && dev="$d" && break 2
    done
    sleep 1
done
[ -n "$dev" ] || { log "$VOLUME_ID shows no device"; exit 1; }

# Formatted only when blank (blkid finds nothing, status 2): never again.
rc=0
fs="$(blkid -p -o value -s TYPE "$dev")" || rc=$?
if [ "$rc" = 2 ]; then
    log "formatting the blank $VOLUME_ID"
    mkfs.xfs -L bookstore-data "$dev"
    fs=xfs
elif [ "$rc" != 0 ] || [ -z "$fs" ]; then
    log "$VOLUME_ID holds no file system blkid knows (status $rc); not touching it"
    exit 1
fi
uuid="$(blkid -p -o value -s UUID "$dev")"
mkdir -p "$ROOT$DATA_DIR"
touch "$ROOT/etc/fstab"
fstab_line="UUID=$uuid $DATA_DIR $fs defaults,nofail 0 2"
grep -qxF "$fstab_line" "$ROOT/etc/fstab" || echo "$fstab_line" >>"$ROOT/etc/fstab"
if ! mountpoint -q "$ROOT$DATA_DIR"; then
    mount -t "$fs" "UUID=$uuid" "$ROOT$DATA_DIR"
fi
chown "$APP_UID:$APP_UID" "$ROOT$DATA_DIR"

aws ec2 associate-address --region "$REGION" --allocation-id "$ALLOCATION_ID" \
    --instance-id "$INSTANCE_ID" --allow-reassociation >/dev/null

# The release, with the release command (this script).
install -m 0755 "$0" "$ROOT/usr/local/sbin/bookstore-release"
release --install-only "$KEY" "$SHA256"
bin="$top/current/bookstore"

# The app's ACME account and certificates live on the volume; a fresh
# volume (an empty tls directory) takes them from S3, so the CA is not asked
# again, and whatever the app writes there is copied back
# (bookstore-tls-upload.path). Port 80 always, 443 with TLS: sockets systemd
# holds, so a restart loses no connection.
sockets=bookstore-http.socket
if [ -n "$TLS_DOMAINS" ]; then
    sockets="$sockets bookstore-https.socket"
    mkdir -p "$ROOT$TLS_DIR"
    if [ -z "$(ls -A "$ROOT$TLS_DIR")" ]; then
        log "fetching s3://$BUCKET/tls/"
        aws s3 cp --region "$REGION" --recursive --only-show-errors "s3://$BUCKET/tls/" "$ROOT$TLS_DIR/" "${TLS_FILES[@]}"
    fi
    chmod 0700 "$ROOT$TLS_DIR"
    chown -R "$APP_UID:$APP_UID" "$ROOT$TLS_DIR"
    cat >"$units/bookstore-tls-upload.service" <<EOF
[Unit]
Description=copies the bookstore TLS state to S3
RequiresMountsFor=$DATA_DIR

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/bookstore-release --upload-tls
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
EOF
    cat >"$units/bookstore-tls-upload.path" <<EOF
[Unit]
Description=watches the bookstore TLS state

[Path]
PathModified=$TLS_DIR
Unit=bookstore-tls-upload.service

[Install]
WantedBy=multi-user.target
EOF
fi
socket() {
    cat >"$units/bookstore-$1.socket" <<EOF
[Unit]
Description=bookstore web shop, $1

[Socket]
ListenStream=$2
FileDescriptorName=$1
Service=bookstore.service

[Install]
WantedBy=sockets.target
EOF
}
socket http 80
[ -z "$TLS_DOMAINS" ] || socket https 443

url="sqlite:$DATA_DIR/bookstore.db"
credential=
if [ -n "$DB_HOST" ]; then
    db_prepare
    url="mysql://$DB_APP_USER@$DB_HOST:$DB_PORT/$DB_NAME?$DB_TLS"
    credential="LoadCredential=db-password:/etc/bookstore/db-app-password"
fi
{
    echo "BOOKSTORE_DATABASE_URL=$url"
    [ -z "$DB_HOST" ] || echo "BOOKSTORE_DATABASE_PASSWORD_COMMAND=/usr/local/lib/bookstore/db-password"
    echo "BOOKSTORE_DATA_DIR=$DATA_DIR"
    if [ -n "$TLS_DOMAINS" ]; then
        echo "BOOKSTORE_TLS_DIR=$TLS_DIR"
        echo "BOOKSTORE_TLS_DOMAINS=$TLS_DOMAINS"
        [ -z "$ACME_DIRECTORY" ] || echo "BOOKSTORE_ACME_DIRECTORY=$ACME_DIRECTORY"
        [ -z "$ACME_CONTACT" ] || echo "BOOKSTORE_ACME_CONTACT=$ACME_CONTACT"
    fi
    echo "BOOKSTORE_LOG_FORMAT=json"
    echo "AWS_REGION=$REGION"
} >"$ROOT/etc/bookstore/bookstore.env"
chmod 0600 "$ROOT/etc/bookstore/bookstore.env"

cat >"$units/bookstore.service" <<EOF
[Unit]
Description=bookstore web shop
Wants=network-online.target
After=network-online.target $sockets
Requires=$sockets
RequiresMountsFor=$DATA_DIR

[Service]
Type=notify
NotifyAccess=main
Sockets=$sockets
User=bookstore
Group=bookstore
EnvironmentFile=/etc/bookstore/bookstore.env
ExecStart=/opt/bookstore/current/bookstore serve
Restart=on-failure
RestartSec=2
TimeoutStartSec=120
KillSignal=SIGTERM
TimeoutStopSec=30
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
ReadWritePaths=$DATA_DIR
$credential
# No instance metadata service: a flaw in the app cannot take the
# instance role's credentials.
IPAddressDeny=169.254.169.254 fd00:ec2::254

[Install]
WantedBy=multi-user.target
EOF

ship_logs "$INSTANCE_ID"
[ -z "$DB_HOST" ] || db_migrate

systemctl daemon-reload
# shellcheck disable=SC2086 # the socket units' names
systemctl enable --now $sockets
[ -z "$TLS_DOMAINS" ] || systemctl enable --now bookstore-tls-upload.path
systemctl enable --now bookstore.service
systemctl enable --now bookstore-logs.service
log "bookstore started (${TLS_DOMAINS:-plain HTTP}), shipping its journal to $LOG_GROUP"
