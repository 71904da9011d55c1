//! Test harness: a real AWS API emulator (moto) on a free loopback port,
//! the tool's binary pointed at it, and SDK clients for independent checks.

#![allow(dead_code)]

pub mod http;
pub mod inventory;
pub mod realism;
pub mod xml;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bookstore-infra");

/// The tool's binary: the one cargo built, or `BOOKSTORE_INFRA_BIN` (a
/// copy, so a long test run is not affected by a rebuild meanwhile).
pub fn bin() -> String {
    std::env::var("BOOKSTORE_INFRA_BIN").unwrap_or_else(|_| BIN.to_string())
}
pub const REGION: &str = "us-east-1";

/// The tool's exit codes, as the README's table gives them.
pub mod exit {
    /// An error: the stack file, AWS, a refused confirmation.
    pub const ERROR: i32 = 1;
    /// `diff --detailed-exitcode`: there are changes.
    pub const CHANGES: i32 = 2;
    /// The stack's lock is held by another run, or was taken over.
    pub const LOCK_HELD: i32 = 3;
    /// A data-bearing resource would be replaced or deleted.
    pub const CONSENT_NEEDED: i32 = 4;
    /// `up --plan`: the saved plan is stale or for somewhere else.
    pub const STALE_PLAN: i32 = 5;
    /// The estimated monthly cost rises by more than allowed.
    pub const COST_LIMIT: i32 = 6;
    /// `status`: the stack is not healthy.
    pub const UNHEALTHY: i32 = 7;
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// How a test server's port is chosen, shared with the app's harness.
#[path = "../../support/port.rs"]
mod port;
pub use port::free_port;

/// A moto server of our own, stopped when dropped.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    rt: tokio::runtime::Runtime,
    conf: aws_config::SdkConfig,
    pub dir: tempfile::TempDir,
}

impl Emulator {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts an emulator with extra environment (`MOTO_ACM_VALIDATION_WAIT`...).
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        // moto's server, corrected where it would break any client
        // (scripts/emulator-server says where), unless MOTO_SERVER names another.
        let (bin, pre): (PathBuf, Vec<PathBuf>) = match std::env::var_os("MOTO_SERVER") {
            Some(b) => (PathBuf::from(b), Vec::new()),
            None => (
                root().join(".venv/bin/python"),
                vec![root().join("scripts/emulator-server")],
            ),
        };
        assert!(
            bin.exists(),
            "the AWS API emulator is not installed at {}: run scripts/ensure-emulator (.ci/run does)",
            bin.display()
        );
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log file");
        let mut child = Command::new(&bin)
            .args(&pre)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS managed policies exist in every account (the instance role
            // attaches AmazonSSMManagedInstanceCore); the emulator loads them
            // only when asked.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the emulator exited ({status}) before it listened on port {port}:\n{}",
                    std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the emulator did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let conf = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(&endpoint)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load(),
        );
        Emulator {
            child,
            endpoint,
            rt,
            conf,
            dir,
        }
    }

    /// The tool's command, pointed at this emulator.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(root())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env("BOOKSTORE_INFRA_POLL_MS", "50")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_via(&self.endpoint, args)
    }

    /// Runs the tool against `endpoint` (a realism proxy in front of this
    /// emulator) instead of the emulator itself.
    pub fn run_via(&self, endpoint: &str, args: &[&str]) -> Run {
        let out = self
            .cmd()
            .env("AWS_ENDPOINT_URL", endpoint)
            .args(args)
            .output()
            .expect("run the tool");
        Run::from(out, args)
    }

    /// [`Emulator::run_via`], and requires success.
    pub fn ok_via(&self, endpoint: &str, args: &[&str]) -> Run {
        let r = self.run_via(endpoint, args);
        assert_eq!(
            r.code,
            0,
            "`{}` failed:\n{}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r
    }

    /// [`Emulator::run_via`], and requires the exit code `code` (one of
    /// [`exit`]).
    pub fn fails_with_via(&self, code: i32, endpoint: &str, args: &[&str]) -> Run {
        let r = self.run_via(endpoint, args);
        assert_eq!(
            r.code,
            code,
            "`{}` exited {} instead of {code}:\n{}\n{}",
            args.join(" "),
            r.code,
            r.stdout,
            r.stderr
        );
        r
    }

    /// Runs and requires the exit code `code` (one of [`exit`]).
    pub fn fails_with(&self, code: i32, args: &[&str]) -> Run {
        self.fails_with_via(code, &self.endpoint, args)
    }

    /// The plan of `diff STACK --json`.
    pub fn plan_json(&self, stack: &str) -> serde_json::Value {
        let r = self.ok(&["diff", stack, "--json"]);
        serde_json::from_str(&r.stdout).expect("diff --json prints one JSON document")
    }

    /// Runs and requires success.
    pub fn ok(&self, args: &[&str]) -> Run {
        self.ok_via(&self.endpoint, args)
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.conf)
    }

    /// The tool's own clients, for driving one resource kind directly.
    pub fn cloud(&self) -> bookstore_infra::cloud::Cloud {
        cloud_of(&self.conf)
    }

    /// The tool's own clients, through `endpoint` (a realism proxy in front
    /// of this emulator).
    pub fn cloud_via(&self, endpoint: &str) -> bookstore_infra::cloud::Cloud {
        let conf = self
            .conf
            .clone()
            .into_builder()
            .endpoint_url(endpoint)
            .build();
        cloud_of(&conf)
    }

    pub fn conf(&self) -> &aws_config::SdkConfig {
        &self.conf
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.conf)
    }

    /// Writes a stand-in for the app binary into this test's directory:
    /// its path and sha256.
    pub fn binary(&self, content: &str) -> (String, String) {
        use sha2::{Digest, Sha256};
        let p = self.dir.path().join(format!("bookstore-{}", content.len()));
        std::fs::write(&p, content).unwrap();
        (
            p.to_string_lossy().into_owned(),
            hex::encode(Sha256::digest(content.as_bytes())),
        )
    }

    /// Writes a stack file into this test's directory.
    pub fn stack(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

/// The tool's own clients on `conf`, silent, polling every 50 ms.
pub fn cloud_of(conf: &aws_config::SdkConfig) -> bookstore_infra::cloud::Cloud {
    bookstore_infra::cloud::Cloud::from_conf(
        conf,
        std::sync::Arc::new(bookstore_infra::progress::Silent),
        Duration::from_millis(50),
    )
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output, _args: &[&str]) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Spawns the tool and returns once `n` lines of its progress output matched
/// `pat`, with the child still running.
pub fn spawn_until(mut cmd: Command, pat: &str, n: usize) -> (Child, Vec<String>) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    let mut seen = 0;
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    while seen < n {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains(pat) {
            seen += 1;
        }
        lines.push(line.clone());
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    (child, lines)
}

pub fn demo() -> &'static Path {
    Path::new("stacks/demo.toml")
}

#[allow(unused_imports)]
pub use http::decode;

/// The stack file `text`, shipping `binary` instead of its own.
pub fn with_binary(text: &str, binary: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("binary = "))
        .expect("a binary line")
        .to_string();
    text.replace(&line, &format!("binary = {binary:?}"))
}

/// (id, action) of every step of a JSON plan that does something.
pub fn changes(plan: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "no_op")
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["action"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The step of a JSON plan for logical id `id` (not a deletion of a surplus copy).
pub fn step<'p>(plan: &'p serde_json::Value, id: &str) -> &'p serde_json::Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {plan}"))
}

pub fn set(items: &[(&str, &str)]) -> std::collections::BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
