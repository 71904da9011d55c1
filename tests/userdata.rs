//! The instances' boot script: statically checked, then run in a sandbox
//! standing in for an instance: the emulator as AWS (through the real AWS
//! CLI), stubs for `mount`, `systemctl`, `dnf`, `groupadd` and `useradd`
//! that record their arguments, and a temporary root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bookstore_infra::userdata::{render, UserDataVars};
use common::Emulator;

fn venv_bin(name: &str) -> PathBuf {
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
        stack: "demo".into(),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        key: key.into(),
        sha256: sha.into(),
        file_system_id: "fs-0123abcd".into(),
        access_point_id: "fsap-0123abcd".into(),
        data_dir: "/var/lib/bookstore/data".into(),
        port: 8080,
        db_host: "demo-db.abc.us-east-1.rds.amazonaws.com".into(),
        db_port: 3306,
        db_name: "bookstore".into(),
        db_user: "bookstore".into(),
        db_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCd".into(),
        app_uid: 50000,
    }
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

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stubs: PathBuf,
    log: PathBuf,
}

fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let stubs = dir.path().join("stubs");
    let log = dir.path().join("calls.log");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&stubs).unwrap();
    for (name, code) in [
        ("mount", 0),
        ("groupadd", 0),
        ("systemctl", 0),
        ("dnf", 0),
        ("useradd", 0),
        ("id", 1),
        ("mountpoint", 1),
    ] {
        let p = stubs.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{name} $*\" >> \"$CALLS\"\nexit {code}\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Sandbox {
        _dir: dir,
        root,
        stubs,
        log,
    }
}

fn run_boot(e: &Emulator, sb: &Sandbox, script: &str) -> std::process::Output {
    let p = sb.root.join("boot.sh");
    std::fs::write(&p, script).unwrap();
    run_in(e, sb, &p)
}

/// Runs a script as the instance would: the stubs and the AWS CLI on the
/// path, the emulator as AWS.
fn run_in(e: &Emulator, sb: &Sandbox, p: &Path) -> std::process::Output {
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
        .output()
        .unwrap()
}

/// A command whose AWS is the emulator.
fn aws_env(mut c: Command, e: &Emulator) -> Command {
    c.env("AWS_ENDPOINT_URL", &e.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    c
}

fn put_binary(e: &Emulator, bytes: &[u8]) -> (String, String, String) {
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

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_boot_script_installs_verifies_mounts_and_starts() {
    let e = Emulator::start();
    let sb = sandbox();
    let binary = b"\x7fELF pretend bookstore binary";
    let (bucket, key, sha) = put_binary(&e, binary);
    // The secret RDS keeps for the database, as RDS writes it.
    let password = "s3cr3t \"quoted\" pass!";
    let secret = serde_json::json!({"username": "bookstore", "password": password}).to_string();
    let created = aws_env(Command::new(venv_bin("aws")), &e)
        .args(["secretsmanager", "create-secret", "--name", "rds!db-1"])
        .args([
            "--secret-string",
            &secret,
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
    let arn = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let mut v = vars(&bucket, &key, &sha);
    v.db_secret_arn = arn.clone();
    let out = run_boot(&e, &sb, &render(&v).unwrap());
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
            "systemctl enable --now bookstore.service"
        ]
    );

    let unit = read(&sb.root.join("etc/systemd/system/bookstore.service"));
    for line in [
        "User=bookstore",
        "ExecStart=/usr/local/bin/bookstore serve",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/bookstore/data",
        "EnvironmentFile=/etc/bookstore/bookstore.env",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }
    let env = read(&sb.root.join("etc/bookstore/bookstore.env"));
    assert!(env.contains("BOOKSTORE_LISTEN=0.0.0.0:8080"));
    assert!(env.contains("BOOKSTORE_DATABASE_URL=mysql://bookstore@demo-db.abc.us-east-1.rds.amazonaws.com:3306/bookstore?ssl-mode=required\n"));
    assert!(
        env.contains("BOOKSTORE_DATABASE_PASSWORD_COMMAND=/usr/local/lib/bookstore/db-password")
    );
    assert!(
        !env.to_lowercase().contains("password="),
        "no password in the environment file"
    );
    // The password helper the app runs prints the secret's password, and
    // only that.
    let helper = sb.root.join("usr/local/lib/bookstore/db-password");
    assert!(read(&helper).contains(&arn));
    let got = run_in(&e, &sb, &helper);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        String::from_utf8(got.stdout).unwrap(),
        format!("{password}\n")
    );
}

#[test]
fn a_binary_that_does_not_match_its_checksum_is_not_installed() {
    let e = Emulator::start();
    let sb = sandbox();
    let (bucket, key, _) = put_binary(&e, b"the real binary");
    let wrong = "0".repeat(64);
    let out = run_boot(&e, &sb, &render(&vars(&bucket, &key, &wrong)).unwrap());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!sb.root.join("usr/local/bin/bookstore").exists());
    let calls = std::fs::read_to_string(&sb.log).unwrap_or_default();
    assert!(!calls.contains("systemctl"), "{calls}");
    assert!(!calls.contains("mount -t"), "{calls}");
}
