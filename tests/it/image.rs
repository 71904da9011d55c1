//! The app's container image, built by the tool without a daemon: the
//! same binary gives the same digest; tools nobody here wrote (skopeo,
//! umoci) read it; the binary runs from the unpacked file system as the
//! image's user and answers `/healthz`; and it is pushed through the ECR
//! API, surviving lost answers and sending only what the repository lacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::realism::{Behaviours, Realism};
use crate::common::{self, Emulator};
use bookstore_infra::image;
use bookstore_infra::resources::ecr;

/// The `bookstore` binary the workspace's test build made beside this
/// test binary (`target/debug/bookstore`).
fn app_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let bin = me
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("bookstore"))
        .unwrap();
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (`cargo test --workspace`)",
        bin.display()
    );
    bin
}

fn tool(args: &[&str]) -> String {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("image "))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_image_is_reproducible_read_by_skopeo_and_umoci_and_its_binary_serves() {
    let bin = app_binary();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let build = |out: &Path| {
        digest_line(&tool(&[
            "image",
            "--app-binary",
            bin.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]))
    };
    let (da, db) = (build(&a), build(&b));
    assert_eq!(da, db, "the same binary gives the same digest");
    assert_eq!(
        std::fs::read(a.join("index.json")).unwrap(),
        std::fs::read(b.join("index.json")).unwrap()
    );

    // skopeo reads the layout and computes the same digest.
    let oci = format!("oci:{}:latest", a.display());
    let inspect = run_json(Command::new("skopeo").args(["inspect", &oci]));
    assert_eq!(inspect["Digest"], da);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Architecture"], "amd64");
    let config = run_json(Command::new("skopeo").args(["inspect", "--config", &oci]));
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"][0], image::BINARY_PATH);

    // umoci checks every blob's digest as it unpacks.
    let bundle = dir.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", a.display()))
        .arg(&bundle)
        .output()
        .expect("umoci (Debian's package) is needed");
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    use std::os::unix::fs::MetadataExt;
    let data = std::fs::metadata(rootfs.join("var/lib/bookstore")).unwrap();
    assert_eq!((data.uid(), data.mode() & 0o7777), (65532, 0o750));
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(
        std::fs::read(rootfs.join("usr/local/bin/bookstore")).unwrap(),
        std::fs::read(&bin).unwrap()
    );

    // The binary starts from the unpacked file system alone (chroot), as
    // the image's user, with the image's environment, and serves.
    let port = common::free_port();
    let env: Vec<String> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut cmd = Command::new("/usr/sbin/chroot");
    cmd.arg("--userspec=65532:65532")
        .arg(&rootfs)
        .arg(image::BINARY_PATH)
        .arg("serve")
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for kv in &env {
        let (k, v) = kv.split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.env("BOOKSTORE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "BOOKSTORE_DATABASE_URL",
            "sqlite:/var/lib/bookstore/bookstore.db",
        );
    let mut child = cmd.spawn().expect("chroot (needs root)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the app in the image exited with {st}: {err}");
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            answer.clear();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "healthz: {answer}");
    assert!(
        rootfs.join("var/lib/bookstore/bookstore.db").exists(),
        "the app wrote its database as the image's user"
    );
}

/// A stand-in binary of `len` bytes that do not compress: its layer
/// needs more than one part.
fn binary_of(dir: &Path, name: &str, seed: u8, len: usize) -> PathBuf {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_push_through_the_ecr_api_survives_lost_answers_and_sends_only_what_is_missing() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::all());
    let cloud = e.cloud_via(&proxy.endpoint);
    let direct = aws_sdk_ecr::Client::new(e.conf());
    let repo = "pushed-app";
    e.block_on(direct.create_repository().repository_name(repo).send())
        .unwrap();

    let first = image::build(&binary_of(e.dir.path(), "one", 1, 12 << 20)).unwrap();
    let pushed = e
        .block_on(ecr::push(&cloud, "image", repo, &first, "one"))
        .unwrap();
    let all: Vec<String> = first.blobs().map(|b| b.digest.clone()).collect();
    assert_eq!(pushed.uploaded, all, "an empty repository gets every blob");

    // The first UploadLayerPart's answer was lost after ECR took the part;
    // the SDK's repeat was refused as out of order, and the push went on
    // from the byte ECR named rather than failing or starting over.
    // (Throttled attempts, which the SDK retries, left out.)
    let parts: Vec<(u16, Option<String>)> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.op == "UploadLayerPart" && s.code.as_deref() != Some("ThrottlingException"))
        .map(|s| (s.status, s.code))
        .collect();
    assert_eq!(parts[0].0, 500, "{parts:?}");
    assert_eq!(
        parts[1].1.as_deref(),
        Some("InvalidLayerPartException"),
        "{parts:?}"
    );
    assert!(parts[2].0 < 300, "{parts:?}");
    // The lost CompleteLayerUpload (its repeat: UploadNotFoundException)
    // and PutImage (ImageAlreadyExistsException) were met as done: ECR was
    // asked whether it had the layer, and no upload started over.
    let lost = proxy.lost();
    assert!(lost.contains("ecr:CompleteLayerUpload"), "{lost:?}");
    assert!(lost.contains("ecr:PutImage"), "{lost:?}");
    let initiated = || proxy.accepted("InitiateLayerUpload").len();
    assert_eq!(initiated(), 3, "one upload per blob");

    // What ECR holds, read directly: the manifest byte for byte, under
    // the image's digest, every blob available.
    let got = e
        .block_on(
            direct
                .batch_get_image()
                .repository_name(repo)
                .image_ids(
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_digest(first.digest())
                        .build(),
                )
                .send(),
        )
        .unwrap();
    let img = &got.images()[0];
    assert_eq!(
        img.image_manifest().unwrap().as_bytes(),
        first.manifest.bytes.as_slice()
    );
    assert_eq!(
        img.image_id().and_then(|i| i.image_digest()),
        Some(first.digest())
    );
    let check = e
        .block_on(
            direct
                .batch_check_layer_availability()
                .repository_name(repo)
                .set_layer_digests(Some(all.clone()))
                .send(),
        )
        .unwrap();
    assert_eq!(check.layers().len(), 3, "{check:?}");

    // A new binary: the runtime layer is the same and is not sent again.
    let second = image::build(&binary_of(e.dir.path(), "two", 2, 6 << 20)).unwrap();
    assert_eq!(second.layers[0].digest, first.layers[0].digest);
    let pushed = e
        .block_on(ecr::push(&cloud, "image", repo, &second, "two"))
        .unwrap();
    assert_eq!(pushed.skipped, vec![first.layers[0].digest.clone()]);
    assert_eq!(
        pushed.uploaded,
        vec![
            second.layers[1].digest.clone(),
            second.config.digest.clone()
        ]
    );
    assert_eq!(initiated(), 5, "two more uploads, not three");

    // Pushing the first image again sends nothing and changes nothing.
    let again = e
        .block_on(ecr::push(&cloud, "image", repo, &first, "one"))
        .unwrap();
    assert!(again.uploaded.is_empty(), "{again:?}");
    assert_eq!(initiated(), 5);
    let listed = e
        .block_on(direct.describe_images().repository_name(repo).send())
        .unwrap();
    let mut digests: Vec<&str> = listed
        .image_details()
        .iter()
        .filter_map(|d| d.image_digest())
        .collect();
    digests.sort();
    let mut want = vec![first.digest(), second.digest()];
    want.sort();
    assert_eq!(digests, want);
}
