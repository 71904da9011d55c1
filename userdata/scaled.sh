#!/bin/bash
# Boot script of a bookstore app instance of the `scaled` shape (Amazon
# Linux 2023, behind the load balancer, data on EFS, database on RDS), run
# once by cloud-init as root. Rendered by bookstore-infra: each placeholder
# below is replaced by a single-quoted value checked to be shell-safe, and
# the line naming common.sh by that file. All paths are under
# $BOOKSTORE_ROOT (empty on an instance) so the script can be tried in a
# sandbox.
set -euo pipefail

ROOT="${BOOKSTORE_ROOT:-}"
STACK=@@STACK@@
REGION=@@REGION@@
BUCKET=@@BUCKET@@
KEY=@@KEY@@
SHA256=@@SHA256@@
FILE_SYSTEM_ID=@@FILE_SYSTEM_ID@@
ACCESS_POINT_ID=@@ACCESS_POINT_ID@@
DATA_DIR=@@DATA_DIR@@
PORT=@@PORT@@
DB_HOST=@@DB_HOST@@
DB_PORT=@@DB_PORT@@
DB_NAME=@@DB_NAME@@
DB_USER=@@DB_USER@@
DB_SECRET_ARN=@@DB_SECRET_ARN@@
DB_APP_USER=@@DB_APP_USER@@
DB_APP_SECRET_ARN=@@DB_APP_SECRET_ARN@@
APP_UID=@@APP_UID@@

# @@COMMON@@

# The EFS mount helper (TLS to the file system).
if ! command -v mount.efs >/dev/null 2>&1; then
    log "installing amazon-efs-utils"
    dnf install -y amazon-efs-utils
fi

# The app binary, with the instance role, checked against its sha256
# before anything is installed. A binary already installed with that
# sha256 (a second run of this script) is kept as it is.
bin="$ROOT/usr/local/bin/bookstore"
if [ -f "$bin" ] && [ "$(sha256sum "$bin" | cut -d' ' -f1)" = "$SHA256" ]; then
    log "bookstore $SHA256 is installed already"
else
    fetch_verified "$KEY" "$SHA256" "$bin" || exit 1
fi

app_user

# The shared file system, over TLS, through the app's access point.
mkdir -p "$ROOT$DATA_DIR" "$ROOT/etc"
touch "$ROOT/etc/fstab"
fstab_line="$FILE_SYSTEM_ID:/ $DATA_DIR efs _netdev,tls,iam,accesspoint=$ACCESS_POINT_ID 0 0"
grep -qxF "$fstab_line" "$ROOT/etc/fstab" || echo "$fstab_line" >>"$ROOT/etc/fstab"
if ! mountpoint -q "$ROOT$DATA_DIR"; then
    log "mounting $FILE_SYSTEM_ID at $DATA_DIR"
    mount -t efs -o "tls,iam,accesspoint=$ACCESS_POINT_ID" "$FILE_SYSTEM_ID:" "$ROOT$DATA_DIR"
fi

install -d -m 0755 "$ROOT/usr/local/lib/bookstore" "$ROOT/etc/bookstore"
db_prepare

cat >"$ROOT/etc/bookstore/bookstore.env" <<EOF
BOOKSTORE_LISTEN=0.0.0.0:$PORT
BOOKSTORE_DATABASE_URL=mysql://$DB_APP_USER@$DB_HOST:$DB_PORT/$DB_NAME?$DB_TLS
BOOKSTORE_DATABASE_PASSWORD_COMMAND=/usr/local/lib/bookstore/db-password
BOOKSTORE_DATA_DIR=$DATA_DIR
BOOKSTORE_LOG_FORMAT=json
AWS_REGION=$REGION
EOF
chmod 0600 "$ROOT/etc/bookstore/bookstore.env"

install -d -m 0755 "$ROOT/etc/systemd/system"
cat >"$ROOT/etc/systemd/system/bookstore.service" <<EOF
[Unit]
Description=bookstore web shop
Wants=network-online.target
After=network-online.target remote-fs.target
RequiresMountsFor=$DATA_DIR

[Service]
User=bookstore
Group=bookstore
EnvironmentFile=/etc/bookstore/bookstore.env
ExecStart=/usr/local/bin/bookstore serve
Restart=on-failure
RestartSec=2
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
LoadCredential=db-password:/etc/bookstore/db-app-password
# No instance metadata service: a flaw in the app cannot take the instance
# role's credentials, and with them the master password.
IPAddressDeny=169.254.169.254 fd00:ec2::254

[Install]
WantedBy=multi-user.target
EOF

INSTANCE_ID="$(imds instance-id)"
ship_logs "$INSTANCE_ID"

db_migrate

systemctl daemon-reload
systemctl enable --now bookstore.service
systemctl enable --now bookstore-logs.service
log "bookstore started on port $PORT, shipping its journal to $LOG_GROUP"
