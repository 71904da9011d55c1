//! The single shape's boot script and release command, in the sandbox of
//! [`super::userdata`]: the emulator as AWS through the real AWS CLI (an
//! instance, its data volume and Elastic IP made there), stubs keeping a
//! block device's state (`blkid` finds what `mkfs.xfs` wrote), the
//! instance metadata service and the app's `/healthz` (answered by the
//! stand-in binary `current` points at), and `systemd-analyze verify` on
//! every unit the script writes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_ec2::types::{Filter, Placement};
use bookstore_infra::userdata::{render, Shape, UserDataVars};

use crate::common::Emulator;
use crate::userdata::{
    assert_ok, aws_env, env_file, position, put_binary, read, run_boot, sandbox, secrets,
    systemd_verify_unit, venv_bin, Sandbox, PRETEND_BINARY,
};

const DATA: &str = "var/lib/bookstore";
const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// Stubs the single shape needs beyond the scaled shape's, with state in
/// `$STATE`: the block device (`fs-<device>`: its type, then its UUID), the
/// metadata service (the instance id in `instance-id`), `/healthz`
/// (unhealthy when the current binary says so), and `sleep` (instant; it
/// runs `on-sleep` once, standing in for what happens meanwhile).
const SINGLE_STUBS: &[(&str, &str)] = &[
    (
        "blkid",
        r#"for a; do d="$a"; done
f="$STATE/fs-$(basename "$d")"
[ -e "$f" ] || exit 2
case "$*" in *TYPE*) sed -n 1p "$f" ;; *UUID*) sed -n 2p "$f" ;; esac"#,
    ),
    (
        "mkfs.xfs",
        r#"for a; do d="$a"; done
printf 'xfs\n0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n' >"$STATE/fs-$(basename "$d")""#,
    ),
    ("chown", ""),
    (
        "sleep",
        r#"if [ -e "$STATE/on-sleep" ]; then mv "$STATE/on-sleep" "$STATE/on-sleep.ran"; sh "$STATE/on-sleep.ran"; fi"#,
    ),
    (
        "curl",
        r#"case "$*" in
*api/token*) echo imds-token ;;
*meta-data/instance-id*) cat "$STATE/instance-id" ;;
*placement/availability-zone*) echo us-east-1a ;;
*/healthz*) ! grep -q unhealthy "$BOOKSTORE_ROOT/opt/bookstore/current/bookstore" ;;
*) exit 22 ;;
esac"#,
    ),
];

/// An instance booting as the single shape: the sandbox, the instance,
/// volume and address in the emulator, the stand-in binary in S3.
struct Single {
    e: Emulator,
    sb: Sandbox,
    instance: String,
    volume: String,
    allocation: String,
    device: PathBuf,
    vars: UserDataVars,
}

fn ec2(e: &Emulator) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(e.conf())
}

fn launch(e: &Emulator) -> String {
    let c = ec2(e);
    e.block_on(async {
        let image = c
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_id()
            .unwrap()
            .to_string();
        c.run_instances()
            .image_id(image)
            .min_count(1)
            .max_count(1)
            .placement(Placement::builder().availability_zone("us-east-1a").build())
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_string()
    })
}

fn single() -> Single {
    let e = Emulator::start();
    let sb = sandbox();
    for (name, body) in SINGLE_STUBS {
        let p = sb.stubs.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{name} $*\" >> \"$CALLS\"\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let instance = launch(&e);
    std::fs::write(sb.state.join("instance-id"), &instance).unwrap();
    let c = ec2(&e);
    let (volume, allocation) = e.block_on(async {
        let v = c
            .create_volume()
            .availability_zone("us-east-1a")
            .size(8)
            .encrypted(true)
            .send()
            .await
            .unwrap();
        let a = c.allocate_address().send().await.unwrap();
        (
            v.volume_id().unwrap().to_string(),
            a.allocation_id().unwrap().to_string(),
        )
    });
    // A Nitro instance's name for it.
    let device = sb.root.join(format!(
        "dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{}",
        volume.replace('-', "")
    ));
    std::fs::create_dir_all(device.parent().unwrap()).unwrap();
    std::fs::write(&device, "").unwrap();
    let (bucket, key, sha) = put_binary(&e, PRETEND_BINARY);
    let vars = UserDataVars {
        shape: Some(Shape::Single),
        stack: "demo".into(),
        region: "us-east-1".into(),
        bucket,
        key,
        sha256: sha,
        file_system_id: None,
        access_point_id: None,
        data_dir: format!("/{DATA}"),
        port: None,
        db_host: None,
        db_port: None,
        db_name: None,
        db_user: None,
        db_secret_arn: None,
        db_app_user: None,
        db_app_secret_arn: None,
        app_uid: 50000,
        volume_id: Some(volume.clone()),
        allocation_id: Some(allocation.clone()),
        tls_domains: None,
        acme_directory: None,
        acme_contact: None,
    };
    Single {
        e,
        sb,
        instance,
        volume,
        allocation,
        device,
        vars,
    }
}

impl Single {
    fn with_tls(mut self) -> Self {
        self.vars.tls_domains = Some("shop.example.com,www.shop.example.com".into());
        self.vars.acme_directory =
            Some("https://acme-staging-v02.api.letsencrypt.org/directory".into());
        self.vars.acme_contact = Some("mailto:ops@example.com".into());
        self
    }

    fn boot(&self) -> Output {
        std::fs::write(&self.sb.log, "").unwrap();
        run_boot(&self.e, &self.sb, &render(&self.vars).unwrap())
    }

    fn calls(&self) -> String {
        read(&self.sb.log)
    }

    /// Runs the release command the boot installed, as SSM would.
    fn release(&self, args: &[&str]) -> Output {
        std::fs::write(&self.sb.log, "").unwrap();
        let venv = venv_bin("aws");
        let path = format!(
            "{}:{}:{}",
            self.sb.stubs.display(),
            venv.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        aws_env(Command::new("bash"), &self.e)
            .arg(self.sb.root.join("usr/local/sbin/bookstore-release"))
            .args(args)
            .env("PATH", path)
            .env("BOOKSTORE_ROOT", &self.sb.root)
            .env("CALLS", &self.sb.log)
            .env("STATE", &self.sb.state)
            .env("STUBS", &self.sb.stubs)
            .env("REAL_AWS", &venv)
            .env("HEALTH_SECONDS", "6")
            .output()
            .unwrap()
    }

    fn current(&self) -> String {
        std::fs::read_link(self.sb.root.join("opt/bookstore/current"))
            .unwrap()
            .display()
            .to_string()
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(self.e.conf())
                .force_path_style(true)
                .build(),
        )
    }
}

fn unit(root: &Path, name: &str) -> String {
    read(&root.join("etc/systemd/system").join(name))
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn the_single_scripts_are_shellcheck_clean() {
    let mut v = single_vars_offline();
    let dir = tempfile::tempdir().unwrap();
    for (i, tls_and_mysql) in [false, true].into_iter().enumerate() {
        if tls_and_mysql {
            v.tls_domains = Some("shop.example.com".into());
            v.db_host = Some("db.example.com".into());
            v.db_port = Some(3306);
            v.db_name = Some("bookstore".into());
            v.db_user = Some("bookstore".into());
            v.db_secret_arn = Some("arn:aws:secretsmanager:us-east-1:1:secret:a".into());
            v.db_app_user = Some("bookstore_app".into());
            v.db_app_secret_arn = Some("arn:aws:secretsmanager:us-east-1:1:secret:b".into());
        }
        let p = dir.path().join(format!("boot-{i}.sh"));
        std::fs::write(&p, render(&v).unwrap()).unwrap();
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
    }
}

fn single_vars_offline() -> UserDataVars {
    let sha = "b".repeat(64);
    UserDataVars {
        shape: Some(Shape::Single),
        stack: "demo".into(),
        region: "us-east-1".into(),
        bucket: "b".into(),
        key: format!("bookstore/{sha}/bookstore"),
        sha256: sha,
        file_system_id: None,
        access_point_id: None,
        data_dir: "/var/lib/bookstore".into(),
        port: None,
        db_host: None,
        db_port: None,
        db_name: None,
        db_user: None,
        db_secret_arn: None,
        db_app_user: None,
        db_app_secret_arn: None,
        app_uid: 50000,
        volume_id: Some("vol-0123456789abcdef0".into()),
        allocation_id: Some("eipalloc-0123456789abcdef0".into()),
        tls_domains: None,
        acme_directory: None,
        acme_contact: None,
    }
}

#[test]
fn a_blank_volume_is_formatted_once_and_mounted_by_uuid() {
    let s = single();
    assert_ok(&s.boot());
    let calls = s.calls();
    let dev = s.device.display().to_string();
    let data = s.sb.root.join(DATA);
    assert!(
        calls.contains(&format!("mkfs.xfs -L bookstore-data {dev}")),
        "{calls}"
    );
    // Probed first (nothing there), formatted, then mounted by its UUID.
    let probe = position(&calls, &format!("blkid -p -o value -s TYPE {dev}"));
    let mkfs = position(&calls, "mkfs.xfs");
    let mount = position(
        &calls,
        &format!("mount -t xfs UUID={UUID} {}", data.display()),
    );
    assert!(probe < mkfs && mkfs < mount, "{calls}");
    assert!(calls.contains(&format!("chown 50000:50000 {}", data.display())));
    let fstab_line = format!("UUID={UUID} /{DATA} xfs defaults,nofail 0 2");
    assert_eq!(
        read(&s.sb.root.join("etc/fstab")),
        format!("{fstab_line}\n")
    );
    // The service starts after the mount: systemd knows it from fstab.
    assert!(
        position(&calls, "systemctl enable --now bookstore.service") > mount,
        "{calls}"
    );

    // A reboot: the file system is there, mounted again, never formatted.
    std::fs::remove_file(s.sb.state.join("mounts")).unwrap();
    assert_ok(&s.boot());
    let calls = s.calls();
    assert!(!calls.contains("mkfs"), "formatted again:\n{calls}");
    position(&calls, &format!("mount -t xfs UUID={UUID} "));
    assert_eq!(
        read(&s.sb.root.join("etc/fstab")),
        format!("{fstab_line}\n")
    );

    // A device holding something blkid names no file system of (a
    // partition table, say) is left alone, and the boot stops.
    let odd = single();
    std::fs::write(
        odd.sb.state.join(format!(
            "fs-{}",
            odd.device.file_name().unwrap().to_str().unwrap()
        )),
        "\n\n",
    )
    .unwrap();
    let out = odd.boot();
    assert_eq!(out.status.code(), Some(1));
    let calls = odd.calls();
    assert!(
        !calls.contains("mkfs") && !calls.contains("mount -t"),
        "{calls}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not touching it"));
}

/// The volume's attachment (instance, device) and the address's instance,
/// as the emulator has them.
fn attachment(s: &Single) -> (Option<(String, String)>, Option<String>) {
    let c = ec2(&s.e);
    s.e.block_on(async {
        let v = c
            .describe_volumes()
            .volume_ids(&s.volume)
            .send()
            .await
            .unwrap();
        let a = v.volumes()[0].attachments().first().map(|a| {
            (
                a.instance_id().unwrap().to_string(),
                a.device().unwrap().to_string(),
            )
        });
        let addr = c
            .describe_addresses()
            .filters(
                Filter::builder()
                    .name("allocation-id")
                    .values(&s.allocation)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        (a, addr.addresses()[0].instance_id().map(str::to_string))
    })
}

#[test]
fn the_volume_is_attached_and_the_address_taken_even_from_a_dying_predecessor() {
    let s = single();
    // The instance this one replaces still holds the volume; it is
    // terminated (which detaches it) while the boot waits.
    let predecessor = launch(&s.e);
    let c = ec2(&s.e);
    s.e.block_on(async {
        c.attach_volume()
            .volume_id(&s.volume)
            .instance_id(&predecessor)
            .device("/dev/sdf")
            .send()
            .await
            .unwrap();
        c.associate_address()
            .allocation_id(&s.allocation)
            .instance_id(&predecessor)
            .send()
            .await
            .unwrap();
    });
    std::fs::write(
        s.sb.state.join("on-sleep"),
        format!("\"$REAL_AWS\" ec2 terminate-instances --instance-ids {predecessor} >/dev/null\n"),
    )
    .unwrap();
    let out = s.boot();
    assert_ok(&out);
    let calls = s.calls();
    assert_eq!(
        calls.matches("aws ec2 attach-volume").count(),
        2,
        "refused once (VolumeInUse), then attached:\n{calls}"
    );
    assert!(calls.contains("sleep 10"), "{calls}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in use (attempt 1)"));
    assert!(calls.contains(&format!(
        "aws ec2 associate-address --region us-east-1 --allocation-id {} --instance-id {} --allow-reassociation",
        s.allocation, s.instance
    )));
    assert_eq!(
        attachment(&s),
        (
            Some((s.instance.clone(), "/dev/sdf".to_string())),
            Some(s.instance.clone())
        )
    );

    // A second boot finds the volume attached here and does not ask again.
    assert_ok(&s.boot());
    assert!(!s.calls().contains("attach-volume"), "{}", s.calls());
    assert_eq!(attachment(&s).0.unwrap().0, s.instance);
}

#[test]
fn an_attachment_refused_for_another_reason_stops_the_boot() {
    let mut s = single();
    // A volume in another zone: AttachVolume refuses it for good.
    let c = ec2(&s.e);
    let elsewhere = s.e.block_on(async {
        c.create_volume()
            .availability_zone("us-east-1b")
            .size(8)
            .send()
            .await
            .unwrap()
            .volume_id()
            .unwrap()
            .to_string()
    });
    s.vars.volume_id = Some(elsewhere.clone());
    let out = s.boot();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("attaching {elsewhere} failed: ")),
        "{err}"
    );
    assert!(err.contains("InvalidVolume.ZoneMismatch"), "{err}");
    let calls = s.calls();
    assert_eq!(calls.matches("aws ec2 attach-volume").count(), 1, "{calls}");
    assert!(
        !calls.contains("sleep 10") && !calls.contains("mkfs"),
        "{calls}"
    );
    assert!(!calls.contains("systemctl"), "{calls}");
}

#[test]
fn plain_http_without_domains_on_sqlite_on_the_volume() {
    let s = single();
    assert_ok(&s.boot());
    let root = &s.sb.root;
    let env = env_file(&root.join("etc/bookstore/bookstore.env"));
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("BOOKSTORE_DATABASE_URL"),
        Some("sqlite:/var/lib/bookstore/bookstore.db")
    );
    assert_eq!(get("BOOKSTORE_DATA_DIR"), Some("/var/lib/bookstore"));
    assert_eq!(get("BOOKSTORE_TLS_DOMAINS"), None);
    assert_eq!(get("BOOKSTORE_DATABASE_PASSWORD_COMMAND"), None);
    assert!(!root
        .join("etc/systemd/system/bookstore-https.socket")
        .exists());
    assert!(!root
        .join("etc/systemd/system/bookstore-tls-upload.path")
        .exists());
    let service = unit(root, "bookstore.service");
    assert!(has_line(&service, "Sockets=bookstore-http.socket"));
    assert!(!service.contains("LoadCredential"));
    let calls = s.calls();
    assert!(
        !calls.contains("s3 cp") && !calls.contains("migrate"),
        "{calls}"
    );
    let systemctl: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        [
            "systemctl daemon-reload",
            "systemctl enable --now bookstore-http.socket",
            "systemctl enable --now bookstore.service",
            "systemctl enable --now bookstore-logs.service",
        ]
    );
}

#[test]
fn tls_settings_reach_the_app_and_its_tls_state_comes_from_s3_once() {
    let s = single().with_tls();
    let s3 = s.s3();
    let bucket = s.vars.bucket.clone();
    let files = ["account.json", "key.pem", "cert.pem", "certificate.json"];
    s.e.block_on(async {
        for f in files {
            s3.put_object()
                .bucket(&bucket)
                .key(format!("tls/{f}"))
                .body(format!("saved {f}\n").into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    });
    assert_ok(&s.boot());
    let root = &s.sb.root;
    let tls = root.join(DATA).join("tls");
    for f in files {
        assert_eq!(read(&tls.join(f)), format!("saved {f}\n"));
    }
    assert_eq!(
        std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let calls = s.calls();
    assert!(
        calls.contains(&format!("chown -R 50000:50000 {}", tls.display())),
        "{calls}"
    );
    // The files are there before the app starts.
    assert!(
        position(&calls, "aws s3 cp")
            < position(&calls, "systemctl enable --now bookstore.service"),
        "{calls}"
    );
    let env = env_file(&root.join("etc/bookstore/bookstore.env"));
    for (k, v) in [
        (
            "BOOKSTORE_TLS_DOMAINS",
            "shop.example.com,www.shop.example.com",
        ),
        (
            "BOOKSTORE_ACME_DIRECTORY",
            "https://acme-staging-v02.api.letsencrypt.org/directory",
        ),
        ("BOOKSTORE_ACME_CONTACT", "mailto:ops@example.com"),
        ("BOOKSTORE_TLS_DIR", "/var/lib/bookstore/tls"),
        ("BOOKSTORE_DATA_DIR", "/var/lib/bookstore"),
    ] {
        assert!(
            env.contains(&(k.to_string(), v.to_string())),
            "{k}={v} not in {env:?}"
        );
    }
    let https = unit(root, "bookstore-https.socket");
    for line in [
        "ListenStream=443",
        "FileDescriptorName=https",
        "Service=bookstore.service",
    ] {
        assert!(has_line(&https, line), "{line}:\n{https}");
    }
    let http = unit(root, "bookstore-http.socket");
    for line in [
        "ListenStream=80",
        "FileDescriptorName=http",
        "Service=bookstore.service",
    ] {
        assert!(has_line(&http, line), "{line}:\n{http}");
    }
    let service = unit(root, "bookstore.service");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Sockets=bookstore-http.socket bookstore-https.socket",
        "Requires=bookstore-http.socket bookstore-https.socket",
        "User=bookstore",
        "ExecStart=/opt/bookstore/current/bookstore serve",
        "EnvironmentFile=/etc/bookstore/bookstore.env",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/bookstore",
        "IPAddressDeny=169.254.169.254 fd00:ec2::254",
    ] {
        assert!(has_line(&service, line), "{line}:\n{service}");
    }
    assert!(calls.contains("systemctl enable --now bookstore-http.socket bookstore-https.socket"));
    assert!(calls.contains("systemctl enable --now bookstore-tls-upload.path"));

    // What the app writes goes back to S3, encrypted.
    let path = unit(root, "bookstore-tls-upload.path");
    assert!(has_line(&path, "PathModified=/var/lib/bookstore/tls"));
    assert!(has_line(&path, "Unit=bookstore-tls-upload.service"));
    let upload = unit(root, "bookstore-tls-upload.service");
    assert!(has_line(
        &upload,
        "ExecStart=/usr/local/sbin/bookstore-release --upload-tls"
    ));
    std::fs::write(tls.join("cert.pem"), "renewed\n").unwrap();
    std::fs::write(tls.join("scratch.tmp"), "not the app's state\n").unwrap();
    assert_ok(&s.release(&["--upload-tls"]));
    s.e.block_on(async {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key("tls/cert.pem")
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.server_side_encryption().map(|e| e.as_str()),
            Some("AES256")
        );
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(&body[..], b"renewed\n");
        assert!(s3
            .head_object()
            .bucket(&bucket)
            .key("tls/scratch.tmp")
            .send()
            .await
            .is_err());
    });

    // A volume that has its TLS state keeps it: nothing is fetched.
    assert_ok(&s.boot());
    assert!(!s.calls().contains("s3 cp"), "{}", s.calls());
    assert_eq!(read(&tls.join("cert.pem")), "renewed\n");
}

#[test]
fn systemd_accepts_the_sockets_the_service_and_the_tls_units() {
    let s = single().with_tls();
    assert_ok(&s.boot());
    for u in [
        "bookstore.service",
        "bookstore-http.socket",
        "bookstore-https.socket",
        "bookstore-tls-upload.path",
        "bookstore-tls-upload.service",
        "bookstore-logs.service",
    ] {
        let (clean, said, _) = systemd_verify_unit(&s.sb.root, u);
        assert!(clean, "systemd-analyze verify {u}: {said}");
    }
    let (_, _, deps) = systemd_verify_unit(&s.sb.root, "bookstore.service");
    for dep in [
        "Requires: var-lib-bookstore.mount",
        "After: var-lib-bookstore.mount",
        "Requires: bookstore-https.socket",
        "After: bookstore-http.socket",
    ] {
        assert!(
            deps.iter().any(|d| d.starts_with(&format!("{dep} "))),
            "{dep}: {deps:#?}"
        );
    }
    // The check sees a broken socket unit.
    let p = s.sb.root.join("etc/systemd/system/bookstore-https.socket");
    std::fs::write(&p, read(&p).replace("ListenStream=443", "ListenStrem=443")).unwrap();
    let (clean, said, _) = systemd_verify_unit(&s.sb.root, "bookstore-https.socket");
    assert!(!clean && said.contains("ListenStrem"), "{said}");
}

#[test]
fn the_release_command_switches_checks_health_and_rolls_back() {
    let s = single();
    assert_ok(&s.boot());
    let first = s.vars.sha256.clone();
    assert_eq!(s.current(), format!("releases/{first}"));
    let root = &s.sb.root;
    let installed = root.join(format!("opt/bookstore/releases/{first}/bookstore"));
    assert_eq!(std::fs::read(&installed).unwrap(), PRETEND_BINARY);
    // The boot only installs: systemd starts what `current` points at.
    assert!(!s.calls().contains("systemctl restart"), "{}", s.calls());

    // A healthy release: switched to, restarted, reported on stdout.
    let mut second = PRETEND_BINARY.to_vec();
    second.extend_from_slice(b"# release 2\n");
    let (_, key2, sha2) = put_binary(&s.e, &second);
    let out = s.release(&[&key2, &sha2]);
    assert_ok(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("released {sha2}\n")
    );
    assert_eq!(s.current(), format!("releases/{sha2}"));
    let calls = s.calls();
    assert_eq!(
        calls.matches("systemctl restart bookstore.service").count(),
        1
    );
    position(
        &calls,
        "curl -fs -o /dev/null --max-time 5 http://127.0.0.1/healthz",
    );
    // Again: it is current, nothing is done.
    let out = s.release(&[&key2, &sha2]);
    assert_ok(&out);
    assert!(!s.calls().contains("systemctl"), "{}", s.calls());

    // A checksum that does not match: nothing changes.
    let mut third = PRETEND_BINARY.to_vec();
    third.extend_from_slice(b"# release 3\n");
    let (_, key3, sha3) = put_binary(&s.e, &third);
    let wrong = "0".repeat(64);
    let out = s.release(&[&key3, &wrong]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "checksum mismatch for s3://{}/{key3}: expected {wrong}, got {sha3}",
        s.vars.bucket
    )));
    assert_eq!(s.current(), format!("releases/{sha2}"));
    assert!(!root
        .join(format!("opt/bookstore/releases/{wrong}"))
        .exists());
    assert!(!s.calls().contains("systemctl"), "{}", s.calls());

    // Bad arguments: usage, nothing done.
    assert_eq!(s.release(&[&key3]).status.code(), Some(2));
    assert_eq!(s.release(&[&key3, "ABC"]).status.code(), Some(2));

    // An unhealthy release: switched back to the healthy one, status 4.
    let mut bad = PRETEND_BINARY.to_vec();
    bad.extend_from_slice(b"# unhealthy\n");
    let (_, key4, sha4) = put_binary(&s.e, &bad);
    let out = s.release(&[&key4, &sha4]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!("{sha4} is not healthy after 6 s")),
        "{err}"
    );
    assert!(
        err.contains(&format!("switched back to {sha2}, which is healthy")),
        "{err}"
    );
    assert_eq!(s.current(), format!("releases/{sha2}"));
    let calls = s.calls();
    assert_eq!(
        calls.matches("systemctl restart bookstore.service").count(),
        2
    );
    assert_eq!(calls.matches("/healthz").count(), 3 + 1, "{calls}");

    // The release before the current one is kept (to switch back to), older
    // ones go after a success.
    let releases = |s: &Single| {
        let mut v: Vec<String> = std::fs::read_dir(s.sb.root.join("opt/bookstore/releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let (_, key5, sha5) = put_binary(&s.e, &third);
    assert_eq!(sha5, sha3);
    assert_ok(&s.release(&[&key5, &sha5]));
    let mut want = vec![sha2.clone(), sha3.clone()];
    want.sort();
    assert_eq!(releases(&s), want);
}

#[test]
fn on_mysql_the_single_shape_migrates_first_and_serves_as_the_app_user() {
    let mut s = single();
    let secrets = secrets(&s.e);
    s.vars.db_host = Some("demo-db.abc.us-east-1.rds.amazonaws.com".into());
    s.vars.db_port = Some(3306);
    s.vars.db_name = Some("bookstore".into());
    s.vars.db_user = Some("bookstore".into());
    s.vars.db_secret_arn = Some(secrets.master_arn.clone());
    s.vars.db_app_user = Some("bookstore_app".into());
    s.vars.db_app_secret_arn = Some(secrets.app_arn.clone());
    let out = s.boot();
    assert_ok(&out);
    let calls = s.calls();
    let start = position(&calls, "systemctl enable --now bookstore.service");
    assert!(position(&calls, "bookstore migrate --app-user bookstore_app") < start);
    let root = &s.sb.root;
    let env = read(&root.join("etc/bookstore/bookstore.env"));
    assert!(env.contains("BOOKSTORE_DATABASE_URL=mysql://bookstore_app@demo-db.abc.us-east-1.rds.amazonaws.com:3306/bookstore?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/bookstore/rds-ca.pem\n"));
    assert!(
        env.contains("BOOKSTORE_DATABASE_PASSWORD_COMMAND=/usr/local/lib/bookstore/db-password\n")
    );
    let service = unit(root, "bookstore.service");
    assert!(has_line(
        &service,
        "LoadCredential=db-password:/etc/bookstore/db-app-password"
    ));
    // Neither password is in the script, what it said, or the units.
    let script = render(&s.vars).unwrap();
    for text in [
        script.as_str(),
        &String::from_utf8_lossy(&out.stderr),
        &env,
        &service,
        &calls,
    ] {
        assert!(!text.contains(&secrets.master_password));
        assert!(!text.contains(&secrets.app_password));
    }
    assert_eq!(
        read(&root.join("etc/bookstore/db-app-password")).trim_end(),
        secrets.app_password
    );
}
