//! The instances' boot script: statically checked, then run in a sandbox
//! standing in for an instance: the emulator as AWS (through the real AWS
//! CLI), stubs for `mount`, `mountpoint`, `systemctl`, `dnf`, `id`,
//! `groupadd` and `useradd` that record their arguments and keep the state
//! a real machine would (a user exists once added, a path is a mount point
//! once mounted), and a temporary root. The systemd unit it writes is read
//! by systemd's own `systemd-analyze verify`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bookstore_infra::userdata::{render, UserDataVars};
use common::Emulator;
use serde_json::Value;

pub(super) fn venv_bin(name: &str) -> PathBuf {
    let p = common::root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/ensure-emulator (.ci/run does)",
        p.display()
    );
    p
}

fn vars(bucket: &str, key: &str, sha: &str) -> UserDataVars {
    UserDataVars {
        shape: None,
        stack: "demo".into(),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        key: key.into(),
        sha256: sha.into(),
        file_system_id: Some("fs-0123abcd".into()),
        access_point_id: Some("fsap-0123abcd".into()),
        data_dir: "/var/lib/bookstore/data".into(),
        port: Some(8080),
        db_host: Some("demo-db.abc.us-east-1.rds.amazonaws.com".into()),
        db_port: Some(3306),
        db_name: Some("bookstore".into()),
        db_user: Some("bookstore".into()),
        db_secret_arn: Some(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCd".into(),
        ),
        db_app_user: Some("bookstore_app".into()),
        db_app_secret_arn: Some(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:bookstore-infra/demo/db-app-password-AbCd"
                .into(),
        ),
        app_uid: 50000,
        volume_id: None,
        allocation_id: None,
        tls_domains: None,
        acme_directory: None,
        acme_contact: None,
    }
}

/// A stand-in for the app's binary: prints a certificate bundle when asked
/// (`rds-ca-bundle`), and for `migrate` records in `$STATE/migrate` the
/// URL it was given and the sha256 of the password its password command
/// prints and of the app user's password file (never the passwords).
pub(super) const PRETEND_BINARY: &[u8] = br#"#!/bin/sh
# pretend bookstore binary
echo "bookstore $*" >>"$CALLS"
case "$1" in
rds-ca-bundle)
    printf -- '-----BEGIN CERTIFICATE-----
AAAA
-----END CERTIFICATE-----
' ;;
migrate)
    file=
    prev=
    for a; do [ "$prev" = --app-password-file ] && file="$a"; prev="$a"; done
    {
        echo "url=$BOOKSTORE_DATABASE_URL"
        echo "password=$(sh -c "$BOOKSTORE_DATABASE_PASSWORD_COMMAND" | sha256sum | cut -d' ' -f1)"
        echo "app_password=$(head -n1 "$file" | tr -d '
' | sha256sum | cut -d' ' -f1)"
    } >>"$STATE/migrate" ;;
esac
"#;

/// The two secrets an instance reads, as RDS and the stack make them: the
/// master user's (JSON, by RDS) and the app user's (the password alone).
pub(super) struct Secrets {
    pub(super) master_arn: String,
    pub(super) master_password: String,
    pub(super) app_arn: String,
    pub(super) app_password: String,
}

pub(super) fn create_secret(e: &Emulator, name: &str, value: &str) -> String {
    let created = aws_env(Command::new(venv_bin("aws")), e)
        .args(["secretsmanager", "create-secret", "--name", name])
        .args([
            "--secret-string",
            value,
            "--query",
            "ARN",
            "--output",
            "text",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string()
}

pub(super) fn secrets(e: &Emulator) -> Secrets {
    let master_password = "s3cr3t \"quoted\" pass!".to_string();
    let master = serde_json::json!({"username": "bookstore", "password": master_password});
    let app_password = "AppUserPassw0rdFromTheStacksSecret0123456".to_string();
    Secrets {
        master_arn: create_secret(e, "rds!db-1", &master.to_string()),
        app_arn: create_secret(e, "bookstore-infra/demo/db-app-password", &app_password),
        master_password,
        app_password,
    }
}

pub(super) fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn shellcheck_finds_nothing() {
    let sha = "b".repeat(64);
    let script = render(&vars("b", &format!("bookstore/{sha}/bookstore"), &sha)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("boot.sh");
    std::fs::write(&p, &script).unwrap();
    let out = Command::new(venv_bin("shellcheck"))
        .arg("--severity=style")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new("bash").arg("-n").arg(&p).output().unwrap();
    assert!(out.status.success());
}

pub(super) struct Sandbox {
    _dir: tempfile::TempDir,
    pub(super) root: PathBuf,
    pub(super) stubs: PathBuf,
    pub(super) state: PathBuf,
    pub(super) log: PathBuf,
}

/// The stubs, as shell: each records its arguments in `$CALLS`, then acts
/// on `$STATE` like the command on a machine.
const STUBS: &[(&str, &str)] = &[
    // Installing amazon-efs-utils provides the mount helper.
    (
        "dnf",
        "printf '#!/bin/sh\\nexit 0\\n' >\"$STUBS/mount.efs\"; chmod +x \"$STUBS/mount.efs\"",
    ),
    ("groupadd", ""),
    (
        "useradd",
        "for a; do u=\"$a\"; done; touch \"$STATE/user-$u\"",
    ),
    ("id", "test -e \"$STATE/user-$1\""),
    (
        "mount",
        "for a; do p=\"$a\"; done; echo \"$p\" >>\"$STATE/mounts\"",
    ),
    (
        "mountpoint",
        "for a; do p=\"$a\"; done; grep -qxF \"$p\" \"$STATE/mounts\" 2>/dev/null",
    ),
    ("systemctl", ""),
    // The instance metadata service (IMDSv2): a token, then the instance id.
    (
        "curl",
        r#"case "$*" in
*api/token*) echo imds-token ;;
*meta-data/instance-id*) echo i-0123456789abcdef0 ;;
*) exit 22 ;;
esac"#,
    ),
    // The journal: the entries in $STATE/journal (one JSON object a line,
    // as `-o json` prints them), after the cursor given, then it stops
    // (as if the follow was interrupted).
    (
        "journalctl",
        r#"after=; prev=
for a; do [ "$prev" = --after-cursor ] && after="$a"; prev="$a"; done
if [ -z "$after" ]; then cat "$STATE/journal"; exit 0; fi
n=$(grep -nF "\"__CURSOR\":\"$after\"" "$STATE/journal" | cut -d: -f1)
tail -n +$((n + 1)) "$STATE/journal""#,
    ),
    // The real AWS CLI, recorded.
    ("aws", "exec \"$REAL_AWS\" \"$@\""),
];

pub(super) fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let stubs = dir.path().join("stubs");
    let state = dir.path().join("state");
    let log = dir.path().join("calls.log");
    for d in [&root, &stubs, &state] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (name, body) in STUBS {
        let p = stubs.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{name} $*\" >> \"$CALLS\"\n{body}\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Sandbox {
        _dir: dir,
        root,
        stubs,
        state,
        log,
    }
}

pub(super) fn run_boot(e: &Emulator, sb: &Sandbox, script: &str) -> std::process::Output {
    let p = sb.root.join("boot.sh");
    std::fs::write(&p, script).unwrap();
    run_in(e, sb, &p)
}

/// Runs a script as the instance would: the stubs and the AWS CLI on the
/// path, the emulator as AWS.
pub(super) fn run_in(e: &Emulator, sb: &Sandbox, p: &Path) -> std::process::Output {
    let venv = venv_bin("aws");
    let path = format!(
        "{}:{}:{}",
        sb.stubs.display(),
        venv.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    aws_env(Command::new("bash"), e)
        .arg(p)
        .env("PATH", path)
        .env("BOOKSTORE_ROOT", &sb.root)
        .env("CALLS", &sb.log)
        .env("STATE", &sb.state)
        .env("STUBS", &sb.stubs)
        .env("REAL_AWS", &venv)
        .output()
        .unwrap()
}

/// A command whose AWS is the emulator.
pub(super) fn aws_env(mut c: Command, e: &Emulator) -> Command {
    c.env("AWS_ENDPOINT_URL", &e.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    c
}

pub(super) fn put_binary(e: &Emulator, bytes: &[u8]) -> (String, String, String) {
    use sha2::{Digest, Sha256};
    let sha = hex::encode(Sha256::digest(bytes));
    let bucket = "demo-artifacts-123456789012-us-east-1".to_string();
    let key = format!("bookstore/{sha}/bookstore");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(e.conf())
            .force_path_style(true)
            .build(),
    );
    e.block_on(async {
        let _ = s3.create_bucket().bucket(&bucket).send().await;
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .unwrap();
    });
    (bucket, key, sha)
}

pub(super) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(super) fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Index of the first recorded call starting with `prefix`.
pub(super) fn position(calls: &str, prefix: &str) -> usize {
    calls
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call `{prefix}...` in:\n{calls}"))
}

/// A sandbox that has run the boot script once, successfully, with the
/// binary it installs in the emulator's S3.
fn booted() -> (Emulator, Sandbox, String, &'static [u8]) {
    let e = Emulator::start();
    let sb = sandbox();
    let binary: &'static [u8] = PRETEND_BINARY;
    let (bucket, key, sha) = put_binary(&e, binary);
    let s = secrets(&e);
    let mut v = vars(&bucket, &key, &sha);
    v.db_secret_arn = Some(s.master_arn);
    v.db_app_secret_arn = Some(s.app_arn);
    let script = render(&v).unwrap();
    assert_ok(&run_boot(&e, &sb, &script));
    (e, sb, script, binary)
}

/// The data directory's mount unit, as systemd names it
/// (`systemd-escape --path --suffix=mount /var/lib/bookstore/data`).
const DATA_MOUNT: &str = "var-lib-bookstore-data.mount";

/// What `systemd-analyze verify --root` says of the app's unit in `root`:
/// (exit status and diagnostics, the unit's dependencies as systemd
/// resolved them). `root` gets the units systemd ships (sysinit.target...)
/// and the mount units systemd's fstab generator makes from `root`'s
/// /etc/fstab, as at boot.
fn systemd_verify(root: &Path) -> (bool, String, Vec<String>) {
    systemd_verify_unit(root, "bookstore.service")
}

/// [`systemd_verify`] for any unit the boot script writes.
pub(super) fn systemd_verify_unit(root: &Path, unit: &str) -> (bool, String, Vec<String>) {
    let generator = Path::new("/usr/lib/systemd/system-generators/systemd-fstab-generator");
    let system = Path::new("/usr/lib/systemd/system");
    assert!(
        generator.exists() && system.join("sysinit.target").exists(),
        "systemd's units and tools are missing: apt-get install -y systemd (.ci/run does)"
    );
    let lib = root.join("usr/lib/systemd");
    if !lib.join("system").exists() {
        std::fs::create_dir_all(&lib).unwrap();
        let cp = Command::new("cp")
            .arg("-a")
            .arg(system)
            .arg(&lib)
            .output()
            .unwrap();
        assert_ok(&cp);
        // At boot the generator writes into /run/systemd/generator, which
        // `verify --root` does not read: its units go to /etc instead.
        let out = tempfile::tempdir().unwrap();
        let gen = Command::new(generator)
            .args([out.path(), out.path(), out.path()])
            .env("SYSTEMD_FSTAB", root.join("etc/fstab"))
            .output()
            .unwrap();
        assert_ok(&gen);
        for f in std::fs::read_dir(out.path()).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "mount") {
                std::fs::copy(
                    &f,
                    root.join("etc/systemd/system").join(f.file_name().unwrap()),
                )
                .unwrap();
            }
        }
    }
    let verify = |debug: bool| {
        let mut c = Command::new("systemd-analyze");
        c.arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(format!("/etc/systemd/system/{unit}"));
        if debug {
            c.env("SYSTEMD_LOG_LEVEL", "debug");
        } else {
            c.env_remove("SYSTEMD_LOG_LEVEL");
        }
        c.output()
            .expect("systemd-analyze (apt-get install -y systemd)")
    };
    // `verify` exits 0 on a directive it ignores ("Failed to parse ...,
    // ignoring"): any diagnostic at all counts as a failure.
    let out = verify(false);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = out.status.success() && said.trim().is_empty();
    // With debug logging it dumps the unit as loaded (on stdout),
    // dependencies included.
    let dump = String::from_utf8_lossy(&verify(true).stdout).into_owned();
    let deps = dump
        .lines()
        .skip_while(|l| l.trim() != format!("-> Unit {unit}:"))
        .skip(1)
        .take_while(|l| !l.trim().starts_with("-> "))
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("Requires: ") || l.starts_with("After: "))
        .collect();
    (clean, format!("{}\n{said}", out.status), deps)
}

#[test]
fn systemd_accepts_the_unit_and_starts_it_only_after_the_mount() {
    let (_e, sb, _, _) = booted();
    let (clean, said, deps) = systemd_verify(&sb.root);
    assert!(clean, "systemd-analyze verify: {said}");
    // systemd itself orders the service after the file system's mount unit
    // (made from the /etc/fstab line) and fails it without the mount.
    for dep in ["Requires", "After"] {
        assert!(
            deps.iter()
                .any(|d| d.starts_with(&format!("{dep}: {DATA_MOUNT} "))),
            "bookstore.service lacks {dep}={DATA_MOUNT}: {deps:#?}"
        );
    }

    // The check sees a broken directive (which systemd would ignore).
    let unit = sb.root.join("etc/systemd/system/bookstore.service");
    let good = read(&unit);
    std::fs::write(
        &unit,
        good.replace("Restart=on-failure", "Restart=sometimes"),
    )
    .unwrap();
    let (clean, said, _) = systemd_verify(&sb.root);
    assert!(
        !clean && said.contains("sometimes"),
        "a broken unit passed: {said}"
    );
}

#[test]
fn a_second_boot_changes_nothing_and_leaves_the_service_started() {
    let (e, sb, script, binary) = booted();
    let first = read(&sb.log);
    let fstab = read(&sb.root.join("etc/fstab"));
    std::fs::write(&sb.log, "").unwrap();
    let out = run_boot(&e, &sb, &script);
    assert_ok(&out);
    let calls = read(&sb.log);
    for (what, prefix) in [
        ("installs nothing", "dnf "),
        ("downloads nothing", "aws s3api get-object"),
        ("creates no group", "groupadd "),
        ("creates no user", "useradd "),
        ("mounts nothing", "mount "),
    ] {
        assert!(
            first.lines().any(|l| l.starts_with(prefix)),
            "the first boot did not call {prefix}: {first}"
        );
        assert!(
            !calls.lines().any(|l| l.starts_with(prefix)),
            "a second boot {what}:\n{calls}"
        );
    }
    // It asked, and found each done.
    position(&calls, "id bookstore");
    position(&calls, "mountpoint -q ");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is installed already"));
    assert_eq!(
        std::fs::read(sb.root.join("usr/local/bin/bookstore")).unwrap(),
        binary
    );
    assert_eq!(read(&sb.root.join("etc/fstab")), fstab, "one fstab line");
    let systemctl: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        [
            "systemctl daemon-reload",
            "systemctl enable --now bookstore.service",
            "systemctl enable --now bookstore-logs.service"
        ]
    );
    assert!(calls
        .trim_end()
        .ends_with("systemctl enable --now bookstore-logs.service"));
}

#[test]
fn the_boot_script_installs_verifies_mounts_and_starts() {
    let e = Emulator::start();
    let sb = sandbox();
    let binary = PRETEND_BINARY;
    let (bucket, key, sha) = put_binary(&e, binary);
    let secrets = secrets(&e);
    let mut v = vars(&bucket, &key, &sha);
    v.db_secret_arn = Some(secrets.master_arn.clone());
    v.db_app_secret_arn = Some(secrets.app_arn.clone());
    let script = render(&v).unwrap();
    let out = run_boot(&e, &sb, &script);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Downloaded and verified: the installed binary is the object.
    let installed = std::fs::read(sb.root.join("usr/local/bin/bookstore")).unwrap();
    assert_eq!(installed, binary);
    let calls = read(&sb.log);
    assert!(calls.contains("dnf install -y amazon-efs-utils"), "{calls}");
    assert!(
        calls.contains("groupadd --system --gid 50000 bookstore")
            && calls.contains(
                "useradd --system --uid 50000 --gid 50000 --no-create-home --shell /sbin/nologin bookstore"
            ),
        "the app's user is the access point's uid: {calls}"
    );
    let data = sb.root.join("var/lib/bookstore/data");
    assert!(
        calls.contains(&format!(
            "mount -t efs -o tls,iam,accesspoint=fsap-0123abcd fs-0123abcd: {}",
            data.display()
        )),
        "{calls}"
    );
    assert!(data.is_dir());
    let fstab = read(&sb.root.join("etc/fstab"));
    assert!(fstab.contains(
        "fs-0123abcd:/ /var/lib/bookstore/data efs _netdev,tls,iam,accesspoint=fsap-0123abcd 0 0"
    ));
    let systemctl: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        [
            "systemctl daemon-reload",
            "systemctl enable --now bookstore.service",
            "systemctl enable --now bookstore-logs.service"
        ]
    );
    // The file system is mounted (after checking it is not yet) before the
    // service is started, and the unit written before systemd reloads.
    let start = position(&calls, "systemctl enable --now bookstore.service");
    let mount = position(&calls, "mount -t efs");
    assert!(position(&calls, "mountpoint -q ") < mount, "{calls}");
    assert!(
        mount < start,
        "the service starts before the mount:\n{calls}"
    );
    assert!(
        position(&calls, "systemctl daemon-reload") < start,
        "{calls}"
    );

    // The migrate step ran once, on its own, before the web server starts,
    // as the master user with the master password, verifying the
    // database's certificate, and was given the app user's password file.
    let pw_file = sb.root.join("etc/bookstore/db-app-password");
    let migrate = format!(
        "bookstore migrate --app-user bookstore_app --app-password-file {}",
        pw_file.display()
    );
    assert!(position(&calls, &migrate) < start, "{calls}");
    assert_eq!(calls.matches("bookstore migrate").count(), 1, "{calls}");
    let tls = "ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/bookstore/rds-ca.pem";
    assert_eq!(
        read(&sb.state.join("migrate")),
        format!(
            "url=mysql://bookstore@demo-db.abc.us-east-1.rds.amazonaws.com:3306/bookstore?{tls}\n\
             password={}\napp_password={}\n",
            sha256_hex(&format!("{}\n", secrets.master_password)),
            sha256_hex(&secrets.app_password),
        )
    );
    // The authorities the binary ships are where the URL says.
    assert!(read(&sb.root.join("etc/bookstore/rds-ca.pem"))
        .starts_with("-----BEGIN CERTIFICATE-----\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pw_file), 0o600, "the app's password is root's alone");
    assert_eq!(read(&pw_file).trim_end(), secrets.app_password);
    let master_helper = sb.root.join("usr/local/lib/bookstore/db-master-password");
    assert_eq!(mode(&master_helper), 0o700);

    let unit = read(&sb.root.join("etc/systemd/system/bookstore.service"));
    for line in [
        "User=bookstore",
        "ExecStart=/usr/local/bin/bookstore serve",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/bookstore/data",
        "EnvironmentFile=/etc/bookstore/bookstore.env",
        "LoadCredential=db-password:/etc/bookstore/db-app-password",
        "IPAddressDeny=169.254.169.254 fd00:ec2::254",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }
    // The web server: the app user, the app's password, TLS verified; no
    // word of the master user, its secret or its helper.
    let env = read(&sb.root.join("etc/bookstore/bookstore.env"));
    assert!(env.contains("BOOKSTORE_LISTEN=0.0.0.0:8080"));
    assert!(env.contains(&format!("BOOKSTORE_DATABASE_URL=mysql://bookstore_app@demo-db.abc.us-east-1.rds.amazonaws.com:3306/bookstore?{tls}\n")));
    assert!(
        env.contains("BOOKSTORE_DATABASE_PASSWORD_COMMAND=/usr/local/lib/bookstore/db-password\n")
    );
    for server_side in [&env, &unit] {
        for master in [
            "mysql://bookstore@",
            "db-master-password",
            "rds!db-1",
            &secrets.master_arn,
        ] {
            assert!(!server_side.contains(master), "{master} in:\n{server_side}");
        }
    }
    // The server's password helper prints what systemd hands it, the app
    // user's password; the master helper (root's) prints the master one.
    let creds = tempfile::tempdir().unwrap();
    std::fs::copy(&pw_file, creds.path().join("db-password")).unwrap();
    let helper = sb.root.join("usr/local/lib/bookstore/db-password");
    let got = Command::new("sh")
        .arg(&helper)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        String::from_utf8(got.stdout).unwrap().trim_end(),
        secrets.app_password
    );
    let got = run_in(&e, &sb, &master_helper);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let printed = String::from_utf8(got.stdout).unwrap();
    assert_eq!(printed, format!("{}\n", secrets.master_password));

    // Nowhere else is either password: not in the boot script, what it
    // said, the commands it ran, nor any file it wrote (the environment
    // file, the units, the helpers) but the app's password file. The
    // check finds them where they are.
    let password = secrets.master_password.as_str();
    // As it is, or as it is written inside a JSON string.
    let escaped = serde_json::to_string(password).unwrap();
    let escaped = escaped.trim_matches('"').to_string();
    let holds = |text: &str| {
        text.contains(password) || text.contains(&escaped) || text.contains(&secrets.app_password)
    };
    assert!(holds(&printed) && holds(&read(&pw_file)));
    let mut places = vec![
        ("the boot script".to_string(), script),
        (
            "its stdout".into(),
            String::from_utf8_lossy(&out.stdout).into(),
        ),
        (
            "its stderr".into(),
            String::from_utf8_lossy(&out.stderr).into(),
        ),
        (
            "the helper's stderr".into(),
            String::from_utf8_lossy(&got.stderr).into(),
        ),
        ("the commands run".into(), calls),
    ];
    for f in files(&sb.root).iter().chain(&files(&sb.state)) {
        if f == &sb.root.join("usr/local/bin/bookstore") || f == &pw_file {
            continue;
        }
        let bytes = std::fs::read(f).unwrap();
        places.push((
            f.display().to_string(),
            String::from_utf8_lossy(&bytes).into(),
        ));
    }
    assert!(places
        .iter()
        .any(|(p, _)| p.ends_with("etc/bookstore/bookstore.env")));
    let leaks: Vec<&str> = places
        .iter()
        .filter(|(_, text)| holds(text))
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(leaks.is_empty(), "a database password is in {leaks:?}");
}

/// Every file under `dir`.
pub(super) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_binary_that_does_not_match_its_checksum_is_not_installed() {
    let e = Emulator::start();
    let sb = sandbox();
    let (bucket, key, _) = put_binary(&e, b"the real binary");
    let wrong = "0".repeat(64);
    let out = run_boot(&e, &sb, &render(&vars(&bucket, &key, &wrong)).unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "checksum mismatch for s3://{bucket}/{key}: expected {wrong}, got "
        )),
        "{err}"
    );
    assert!(!sb.root.join("usr/local/bin/bookstore").exists());
    let calls = std::fs::read_to_string(&sb.log).unwrap_or_default();
    assert!(!calls.contains("systemctl"), "{calls}");
    assert!(!calls.contains("mount -t"), "{calls}");
}

/// The environment a unit's `EnvironmentFile=` gives it, from the sandbox.
pub(super) fn env_file(p: &Path) -> Vec<(String, String)> {
    read(p)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the log shipper as its unit would, until the (stub) journal ends.
fn ship(e: &Emulator, sb: &Sandbox, state_dir: &Path) -> std::process::Output {
    let venv = venv_bin("aws");
    let path = format!(
        "{}:{}:{}",
        sb.stubs.display(),
        venv.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = aws_env(Command::new("bash"), e);
    c.arg(sb.root.join("usr/local/lib/bookstore/ship-logs"))
        .envs(env_file(&sb.root.join("etc/bookstore/logs.env")))
        .env("PATH", path)
        .env("STATE_DIRECTORY", state_dir)
        .env("CALLS", &sb.log)
        .env("STATE", &sb.state)
        .env("STUBS", &sb.stubs)
        .env("REAL_AWS", &venv);
    c.output().unwrap()
}

/// One journal entry as `journalctl -o json` prints it.
fn entry(cursor: &str, micros: i64, message: Value) -> String {
    serde_json::json!({
        "__CURSOR": cursor,
        "__REALTIME_TIMESTAMP": micros.to_string(),
        "_SYSTEMD_UNIT": "bookstore.service",
        "MESSAGE": message,
    })
    .to_string()
}

/// The messages of the instance's stream, oldest first.
fn shipped(e: &Emulator) -> Vec<(i64, String)> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(e.conf());
    e.block_on(async {
        logs.get_log_events()
            .log_group_name("/bookstore-infra/demo/app")
            .log_stream_name("i-0123456789abcdef0")
            .start_from_head(true)
            .send()
            .await
            .unwrap()
            .events()
            .iter()
            .map(|ev| (ev.timestamp().unwrap(), ev.message().unwrap().to_string()))
            .collect()
    })
}

#[test]
fn the_journal_is_shipped_to_the_stacks_log_group_once() {
    let (e, sb, _, _) = booted();
    // The boot asked the instance metadata service for the instance's id
    // (IMDSv2: a token first) and wrote the shipper's settings.
    let calls = read(&sb.log);
    assert!(
        position(
            &calls,
            "curl -sf -X PUT http://169.254.169.254/latest/api/token"
        ) < position(&calls, "curl -sf -H X-aws-ec2-metadata-token: imds-token"),
        "{calls}"
    );
    let env = env_file(&sb.root.join("etc/bookstore/logs.env"));
    assert_eq!(
        env,
        [
            ("LOG_GROUP", "/bookstore-infra/demo/app"),
            ("LOG_STREAM", "i-0123456789abcdef0"),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // systemd accepts the shipper's unit as it accepts the app's.
    let (clean, said, _) = systemd_verify_unit(&sb.root, "bookstore-logs.service");
    assert!(clean, "systemd-analyze verify: {said}");
    let unit = read(&sb.root.join("etc/systemd/system/bookstore-logs.service"));
    for line in [
        "ExecStart=/usr/local/lib/bookstore/ship-logs",
        "EnvironmentFile=/etc/bookstore/logs.env",
        "StateDirectory=bookstore-logs",
        "DynamicUser=true",
        "SupplementaryGroups=systemd-journal",
        "Restart=always",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }

    // The stack made the group; the shipper makes its stream.
    e.block_on(async {
        aws_sdk_cloudwatchlogs::Client::new(e.conf())
            .create_log_group()
            .log_group_name("/bookstore-infra/demo/app")
            .send()
            .await
            .unwrap();
    });
    // A minute ago: CloudWatch Logs takes no event older than 14 days.
    let t0 = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000)
        * 1000;
    let app =
        r#"{"timestamp":"2023-11-14T22:13:20Z","level":"INFO","fields":{"message":"listening"}}"#;
    let journal = [
        entry("c1", t0, Value::from(app)),
        entry("c2", t0 + 1_500, Value::from("plain line")),
        // journald's form of a message that is not UTF-8: its bytes.
        entry("c3", t0 + 3_000, serde_json::json!([104, 105, 255])),
    ];
    std::fs::write(sb.state.join("journal"), journal.join("\n") + "\n").unwrap();
    let state_dir = sb.state.join("bookstore-logs");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(&sb.log, "").unwrap();
    let out = ship(&e, &sb, &state_dir);
    assert_ok(&out);
    let calls = read(&sb.log);
    position(
        &calls,
        "aws logs create-log-stream --region us-east-1 --log-group-name /bookstore-infra/demo/app --log-stream-name i-0123456789abcdef0",
    );
    position(
        &calls,
        "journalctl -u bookstore.service -o json --no-pager -f",
    );
    assert!(!calls.contains("--after-cursor"), "{calls}");
    assert_eq!(
        shipped(&e),
        [
            (t0 / 1000, app.to_string()),
            (t0 / 1000 + 1, "plain line".to_string()),
            (t0 / 1000 + 3, "hi\u{fffd}".to_string()),
        ]
    );
    // One batch, and the cursor of its last entry kept.
    assert_eq!(
        calls.matches("aws logs put-log-events").count(),
        1,
        "{calls}"
    );
    assert_eq!(read(&state_dir.join("cursor")), "c3");

    // A restart resumes after the cursor: only the new entry goes.
    let more = entry("c4", t0 + 5_000, Value::from("after the restart"));
    std::fs::write(
        sb.state.join("journal"),
        journal.join("\n") + "\n" + &more + "\n",
    )
    .unwrap();
    std::fs::write(&sb.log, "").unwrap();
    assert_ok(&ship(&e, &sb, &state_dir));
    position(
        &read(&sb.log),
        "journalctl -u bookstore.service -o json --no-pager -f --after-cursor c3",
    );
    let all = shipped(&e);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[3].1, "after the restart");
    assert_eq!(read(&state_dir.join("cursor")), "c4");

    // Nothing new: nothing sent, the cursor kept.
    std::fs::write(&sb.log, "").unwrap();
    assert_ok(&ship(&e, &sb, &state_dir));
    assert!(!read(&sb.log).contains("put-log-events"));
    assert_eq!(shipped(&e).len(), 4);
}
