//! Test harness: a real AWS API emulator (moto) on a free loopback port,
//! the tool's binary pointed at it, and SDK clients for independent checks.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bookstore-infra");
pub const REGION: &str = "us-east-1";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

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
        let bin = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv/bin/moto_server"));
        assert!(
            bin.exists(),
            "the AWS API emulator is not installed at {}: run scripts/ensure-emulator (.ci/run does)",
            bin.display()
        );
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log file");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
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
        let mut c = Command::new(BIN);
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
        let out = self.cmd().args(args).output().expect("run the tool");
        Run::from(out, args)
    }

    /// The plan of `diff STACK --json`.
    pub fn plan_json(&self, stack: &str) -> serde_json::Value {
        let r = self.ok(&["diff", stack, "--json"]);
        serde_json::from_str(&r.stdout).expect("diff --json prints one JSON document")
    }

    /// Runs and requires success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
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

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.conf)
    }

    /// The tool's own clients, for driving one resource kind directly.
    pub fn cloud(&self) -> bookstore_infra::cloud::Cloud {
        bookstore_infra::cloud::Cloud::from_conf(
            &self.conf,
            std::sync::Arc::new(bookstore_infra::progress::Silent),
            Duration::from_millis(50),
        )
    }

    pub fn conf(&self) -> &aws_config::SdkConfig {
        &self.conf
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.conf)
    }

    /// Writes a stack file into this test's directory.
    pub fn stack(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
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

/// One HTTP request that went through a [`RecordingProxy`].
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: u16,
}

impl Recorded {
    /// The form fields of a query-protocol request body, decoded.
    pub fn form(&self) -> BTreeMap<String, String> {
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }
}

pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A loopback HTTP/1.1 proxy in front of the emulator that records every
/// request (for APIs the emulator does not implement, the test can still
/// assert exactly what the tool asked for).
pub struct RecordingProxy {
    pub endpoint: String,
    pub log: Arc<Mutex<Vec<Recorded>>>,
}

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

impl RecordingProxy {
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let l = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (up, l) = (upstream.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &l);
                });
            }
        });
        RecordingProxy { endpoint, log }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// A request or status line and its headers.
type Head = (String, Vec<(String, String)>);

fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

fn content_length(h: &[(String, String)]) -> usize {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn serve(client: TcpStream, upstream: &str, log: &Mutex<Vec<Recorded>>) -> std::io::Result<()> {
    let mut out = client.try_clone()?;
    let mut r = BufReader::new(client);
    while let Some((line, headers)) = read_head(&mut r)? {
        let mut body = vec![0; content_length(&headers)];
        r.read_exact(&mut body)?;
        // One upstream connection per request, read to its end.
        let mut up = TcpStream::connect(upstream)?;
        let mut req = format!("{line}\r\n");
        for (k, v) in headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("connection"))
        {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        up.write_all(req.as_bytes())?;
        up.write_all(&body)?;
        let mut ur = BufReader::new(up);
        let (status_line, rh) = read_head(&mut ur)?.unwrap_or_default();
        let mut rbody = Vec::new();
        ur.read_to_end(&mut rbody)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut resp = format!("{status_line}\r\n");
        for (k, v) in rh.iter().filter(|(k, _)| {
            !k.eq_ignore_ascii_case("connection")
                && !k.eq_ignore_ascii_case("content-length")
                && !k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str(&format!("Content-Length: {}\r\n\r\n", rbody.len()));
        out.write_all(resp.as_bytes())?;
        out.write_all(&rbody)?;
        let mut parts = line.split(' ');
        log.lock().unwrap().push(Recorded {
            method: parts.next().unwrap_or_default().to_string(),
            path: parts.next().unwrap_or_default().to_string(),
            body: String::from_utf8_lossy(&body).into_owned(),
            status,
        });
    }
    Ok(())
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
