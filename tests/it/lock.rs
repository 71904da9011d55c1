//! The run lock against the emulator, through the realism proxy (which makes
//! S3's conditional writes atomic, as S3 does): racing runs in separate
//! processes, waiting for a lock, a heartbeat that finds its lock taken
//! over, a run stopped past its lease that must not touch anything, and
//! which holders may be taken over: by the heartbeat's age on S3's clock,
//! or at once when the holder's process is verifiably gone from this very
//! machine.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bookstore_infra::cloud::Cloud;
use bookstore_infra::lock::{self, Holder, Lock, LockError};
use common::realism::{Behaviours, Realism};
use common::Emulator;

/// The contender example cargo builds next to the tool.
fn contender_bin() -> std::path::PathBuf {
    let tool = std::path::PathBuf::from(common::BIN);
    let p = tool.parent().unwrap().join("examples/lock_contender");
    assert!(
        p.exists(),
        "{} is missing: plain `cargo test` builds the examples; with a target filter \
         (`cargo test --test lock`) run `cargo build --example lock_contender` first",
        p.display()
    );
    p
}

struct Contender {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Contender {
    fn start(endpoint: &str, stack: &str, stale_secs: u64, wait_ms: u64, start_at: u128) -> Self {
        let mut child = Command::new(contender_bin())
            .args([
                endpoint,
                stack,
                &stale_secs.to_string(),
                &wait_ms.to_string(),
                &start_at.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the contender");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Contender {
            child,
            stdin,
            out,
            stderr,
        }
    }

    /// The next RESULT line.
    fn result(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "the contender ended without a result: {}",
                self.stderr.lock().unwrap()
            );
            if let Some(r) = line.strip_prefix("RESULT ") {
                return r.trim().to_string();
            }
        }
    }

    /// Lets go of a held lock (closes its stdin) and waits for the
    /// contender to end: its last result, if it printed one more.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        let mut last = String::new();
        let mut line = String::new();
        while self.out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(r) = line.strip_prefix("RESULT ") {
                last = r.trim().to_string();
            }
            line.clear();
        }
        self.child.wait().unwrap();
        last
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Writes `h` as the stack's lock, unconditionally (a run on another host).
fn plant(e: &Emulator, cloud: &Cloud, stack: &str, h: &Holder) {
    e.block_on(async {
        let p = lock::place(cloud, stack).await.unwrap();
        cloud
            .s3
            .put_object()
            .bucket(&p.bucket)
            .key(&p.key)
            .body(serde_json::to_vec(h).unwrap().into())
            .send()
            .await
            .unwrap();
    });
}

/// The ETag of the stack's lock object.
fn etag_of(e: &Emulator, cloud: &Cloud, stack: &str) -> String {
    e.block_on(async {
        let p = lock::place(cloud, stack).await.unwrap();
        cloud
            .s3
            .get_object()
            .bucket(&p.bucket)
            .key(&p.key)
            .send()
            .await
            .unwrap()
            .e_tag()
            .expect("an ETag")
            .to_string()
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn elsewhere(heartbeat: u64) -> Holder {
    Holder {
        host: "ci-runner-elsewhere".into(),
        pid: 4242,
        command: "up".into(),
        started: heartbeat,
        heartbeat,
        nonce: format!("planted-{heartbeat}"),
        boot_id: "5b1c0f6e-0d5e-4a8e-9a59-3c1f00000000".into(),
        pid_ns: "pid:[4026531836]".into(),
    }
}

#[test]
fn racing_runs_over_one_stale_or_free_lock_let_exactly_one_proceed() {
    const PROCS: usize = 6;
    const ROUNDS: usize = 15;
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let cloud = e.cloud_via(&proxy.endpoint);
    // The first use creates the lock bucket.
    let first = e.block_on(Lock::acquire(
        &cloud,
        "race",
        "setup",
        Duration::from_secs(60),
    ));
    e.block_on(first.unwrap().release()).unwrap();

    let started = Instant::now();
    for round in 0..ROUNDS {
        // Every third round the lock is free (a create race), otherwise the
        // lock of a run of this machine killed with SIGKILL is there, stale
        // at once to every contender (a takeover race).
        let free = round % 3 == 0;
        if free {
            e.block_on(lock::force_unlock(&cloud, "race")).unwrap();
        } else {
            plant(&e, &cloud, "race", &local(dead_pid(), now()));
        }
        let at = unix_ms() + 700;
        let mut all: Vec<Contender> = (0..PROCS)
            .map(|_| Contender::start(&proxy.endpoint, "race", 60, 0, at))
            .collect();
        let results: Vec<String> = all.iter_mut().map(Contender::result).collect();
        let winners: Vec<usize> = (0..PROCS)
            .filter(|i| results[*i].starts_with("acquired"))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round} ({}): {results:?}",
            if free { "free" } else { "stale" }
        );
        let w = winners[0];
        let wpid = all[w].child.id();
        for (i, r) in results.iter().enumerate() {
            if i != w {
                assert_eq!(r, &format!("held pid={wpid}"), "round {round}: {results:?}");
            }
        }
        // The lock is the winner's: the object it wrote, untouched since.
        let h = e
            .block_on(lock::holder(&cloud, "race"))
            .unwrap()
            .expect("a lock");
        assert_eq!(
            (h.pid, h.command.as_str(), h.host.clone()),
            (wpid, "contender", lock::hostname()),
            "round {round}"
        );
        assert_eq!(
            results[w],
            format!("acquired pid={wpid} etag={}", etag_of(&e, &cloud, "race")),
            "round {round}"
        );
        let mut finals: Vec<String> = all.into_iter().map(Contender::finish).collect();
        let released = finals.remove(w);
        assert_eq!(released, "released", "round {round}");
        // A loser says nothing more: it never held the lock to release.
        assert!(
            finals.iter().all(String::is_empty),
            "round {round}: {finals:?}"
        );
        assert!(e.block_on(lock::holder(&cloud, "race")).unwrap().is_none());
    }
    eprintln!(
        "{ROUNDS} rounds of {PROCS} processes in {:.1?}",
        started.elapsed()
    );
}

#[test]
fn lock_wait_proceeds_once_the_holder_finishes() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let mut holder = Contender::start(&proxy.endpoint, "queue", 60, 0, 0);
    let r = holder.result();
    assert!(r.starts_with("acquired"), "{r}");
    let hpid = holder.child.id();

    // Without waiting long enough: refused, naming the holder.
    let t = Instant::now();
    let mut short = Contender::start(&proxy.endpoint, "queue", 60, 800, 0);
    assert_eq!(short.result(), format!("held pid={hpid}"));
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    assert!(
        short
            .stderr
            .lock()
            .unwrap()
            .contains(&format!("pid {hpid}")),
        "it said who holds the lock: {}",
        short.stderr.lock().unwrap()
    );
    short.child.wait().unwrap();

    // Waiting: proceeds once the holder lets go, not before.
    let mut waiter = Contender::start(&proxy.endpoint, "queue", 60, 30_000, 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        waiter.stderr.lock().unwrap().contains("waiting up to"),
        "{}",
        waiter.stderr.lock().unwrap()
    );
    let let_go = Instant::now();
    assert_eq!(holder.finish(), "released");
    let r = waiter.result();
    assert!(
        r.starts_with(&format!("acquired pid={} ", waiter.child.id())),
        "{r}"
    );
    let took = let_go.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(waiter.finish(), "released");
}

#[test]
fn a_heartbeat_never_overwrites_a_lock_taken_over() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let cloud = e.cloud_via(&proxy.endpoint);
    let mine = e
        .block_on(Lock::acquire(&cloud, "hb", "up", Duration::from_secs(60)))
        .unwrap();
    let fence = mine.fence();
    // Our own heartbeat goes through and changes the ETag.
    let before = e.block_on(fence.etag());
    e.block_on(fence.heartbeat()).unwrap();
    assert_ne!(e.block_on(fence.etag()), before);

    // Another run takes it over (as after our lease ran out).
    let theirs = elsewhere(now());
    plant(&e, &cloud, "hb", &theirs);
    let writes = |p: &Realism| {
        p.seen()
            .iter()
            .filter(|s| s.op.starts_with("PUT:object?") || s.op.starts_with("DELETE:object?"))
            .count()
    };
    let w0 = writes(&proxy);
    let lost = e.block_on(fence.heartbeat()).unwrap_err();
    match &lost {
        LockError::Lost {
            holder: Some(h), ..
        } => assert_eq!(h.nonce, theirs.nonce),
        other => panic!("{other}"),
    }
    assert!(lost.to_string().contains("ci-runner-elsewhere"), "{lost}");
    // The fence refuses from now on, without asking S3 again.
    assert!(matches!(
        e.block_on(fence.check()),
        Err(LockError::Lost { .. })
    ));
    // Releasing leaves their lock alone.
    assert!(matches!(
        e.block_on(mine.release()),
        Err(LockError::Lost { .. })
    ));
    assert_eq!(writes(&proxy), w0, "no write once the lock was lost");
    let now_held = e.block_on(lock::holder(&cloud, "hb")).unwrap().unwrap();
    assert_eq!(now_held, theirs);
}

/// Whether a request only reads.
fn reads_only(s: &common::realism::Seen) -> bool {
    let op = s.op.as_str();
    [
        "Describe", "Get", "List", "Head", "GET:", "HEAD:", "Lookup", "Search",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

#[test]
fn a_run_stopped_past_its_lease_stops_without_touching_anything_after_a_takeover() {
    const STACK: &str = "stacks/network.toml";
    let e = Emulator::start();
    // The stopped run and the run taking over talk through proxies of their
    // own, so the stopped run's requests are told apart.
    let stopped_proxy = Realism::start(&e.endpoint, Behaviours::none());
    let other_proxy = Realism::start(&e.endpoint, Behaviours::none());
    let gate = stopped_proxy.hold_next_write("/lock.json");

    let mut cmd = e.cmd();
    cmd.env("AWS_ENDPOINT_URL", &stopped_proxy.endpoint)
        .args([
            "up",
            STACK,
            "--yes",
            "--lock-timeout",
            "2",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = cmd.spawn().expect("start the tool");
    let pid = run.id().to_string();
    // The lock is taken: stop the run before it hears so.
    assert!(
        gate.wait_reached(Duration::from_secs(60)),
        "the run never took the lock"
    );
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    gate.open();

    // Past the stale timeout, another run takes the lock over.
    std::thread::sleep(Duration::from_secs(4));
    let mut other = Contender::start(&other_proxy.endpoint, "net", 2, 0, 0);
    let r = other.result();
    assert!(r.starts_with("acquired"), "{r}");
    let other_pid = other.child.id();

    let mark = stopped_proxy.seen().len();
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let out = loop {
        if let Some(_status) = run.try_wait().unwrap() {
            break run.wait_with_output().unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the resumed run did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Its own exit code: the lock is held by another run.
    assert_eq!(out.status.code(), Some(common::exit::LOCK_HELD), "{stderr}");
    assert!(stderr.contains("lost the lock of stack `net`"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {other_pid}")),
        "it names the new holder: {stderr}"
    );
    let after: Vec<_> = stopped_proxy.seen().into_iter().skip(mark).collect();
    let writes: Vec<_> = after.iter().filter(|s| !reads_only(s)).collect();
    assert!(
        writes.is_empty(),
        "after resuming, the run only read: {writes:?}"
    );
    // The other run's lock is intact, and it gives it back normally.
    assert_eq!(other.finish(), "released");
}

#[test]
fn no_step_changes_anything_once_the_lock_was_taken_over() {
    use bookstore_infra::engine::executor::Executor;
    use bookstore_infra::engine::{plan, Desired};
    use bookstore_infra::resources::{registry, vpc};

    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let cloud = e.cloud_via(&proxy.endpoint);
    let lock = e
        .block_on(Lock::acquire(
            &cloud,
            "fenced",
            "up",
            Duration::from_secs(2),
        ))
        .unwrap();
    let fence = lock.fence();
    let registry = registry();
    let want = |cidr: &str| {
        Desired::new(
            vpc::KIND,
            format!("vpc-{}", &cidr[3..4]),
            serde_json::json!({"cidr": cidr, "dns_support": true, "dns_hostnames": true}),
        )
    };
    let exec = Executor {
        cloud: &cloud,
        registry: &registry,
        stack: "fenced",
        concurrency: 1,
        fence: Some(fence),
    };
    // While the lock is ours: the step goes ahead, past several lease
    // renewals.
    let first = vec![want("10.1.0.0/16")];
    let p = plan::plan("fenced", &registry, &first, &[]).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    e.block_on(exec.apply(&p, &first, &[], &[])).unwrap();
    assert_eq!(proxy.accepted("CreateVpc").len(), 1);

    // Taken over (the lease ran out, or --force-unlock and another run).
    let theirs = elsewhere(now());
    plant(&e, &cloud, "fenced", &theirs);
    std::thread::sleep(Duration::from_secs(2));
    let mark = proxy.seen().len();
    let second = vec![want("10.2.0.0/16")];
    let p = plan::plan("fenced", &registry, &second, &[]).unwrap();
    let err = e
        .block_on(exec.apply(&p, &second, &[], &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lost the lock of stack `fenced`"), "{err}");
    assert!(err.contains("ci-runner-elsewhere"), "{err}");
    let after: Vec<_> = proxy.seen().into_iter().skip(mark).collect();
    assert!(after.iter().all(reads_only), "{after:?}");
    assert_eq!(proxy.accepted("CreateVpc").len(), 1);
    assert!(matches!(
        e.block_on(lock.release()),
        Err(LockError::Lost { .. })
    ));
    assert_eq!(
        e.block_on(lock::holder(&cloud, "fenced")).unwrap(),
        Some(theirs)
    );
}

#[test]
fn the_proxy_applies_conditional_writes_atomically_as_s3_does() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let cloud = e.cloud_via(&proxy.endpoint);
    let first = e
        .block_on(Lock::acquire(
            &cloud,
            "cas",
            "setup",
            Duration::from_secs(60),
        ))
        .unwrap();
    e.block_on(first.release()).unwrap();
    let p = e.block_on(lock::place(&cloud, "cas")).unwrap();
    for round in 0..10 {
        let etag = e.block_on(async {
            cloud
                .s3
                .put_object()
                .bucket(&p.bucket)
                .key(&p.key)
                .body(format!("round {round}").into_bytes().into())
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_string()
        });
        // 16 writers naming the same ETag at once: one wins.
        let won = e.block_on(async {
            let puts = (0..16).map(|i| {
                let req = cloud
                    .s3
                    .put_object()
                    .bucket(&p.bucket)
                    .key(&p.key)
                    .if_match(&etag)
                    .body(format!("writer {i}").into_bytes().into());
                async move { req.send().await.is_ok() }
            });
            futures::future::join_all(puts).await
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}");
        // And of 16 creators of an absent key, one wins.
        let fresh = format!("{}-{round}", p.key);
        let won = e.block_on(async {
            let puts = (0..16).map(|i| {
                let req = cloud
                    .s3
                    .put_object()
                    .bucket(&p.bucket)
                    .key(&fresh)
                    .if_none_match("*")
                    .body(format!("creator {i}").into_bytes().into());
                async move { req.send().await.is_ok() }
            });
            futures::future::join_all(puts).await
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}");
    }
    assert!(proxy
        .seen()
        .iter()
        .any(|s| s.code.as_deref() == Some("PreconditionFailed") && s.status == 412));
}

#[test]
fn release_never_deletes_a_lock_that_is_no_longer_its_own() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let cloud = e.cloud_via(&proxy.endpoint);
    let mine = e
        .block_on(Lock::acquire(&cloud, "rel", "up", Duration::from_secs(60)))
        .unwrap();
    // Replaced before any heartbeat noticed (--force-unlock and another run).
    let theirs = elsewhere(now());
    plant(&e, &cloud, "rel", &theirs);
    let err = e.block_on(mine.release()).unwrap_err();
    assert!(matches!(err, LockError::Lost { .. }), "{err}");
    // The conditional delete was sent, and refused by its precondition.
    let deletes: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.op.starts_with("DELETE:object?"))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].status, 412, "{deletes:?}");
    assert_eq!(
        e.block_on(lock::holder(&cloud, "rel")).unwrap(),
        Some(theirs)
    );
}

#[test]
fn up_with_lock_wait_queues_behind_another_run_and_proceeds_when_it_finishes() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let text = std::fs::read_to_string(common::root().join("stacks/network.toml")).unwrap();
    let stack = e.stack("net.toml", &text);
    let mut holder = Contender::start(&proxy.endpoint, "net", 600, 0, 0);
    let r = holder.result();
    assert!(r.starts_with("acquired"), "{r}");
    let hpid = holder.child.id();
    let tool = |args: &[&str]| {
        let mut c = e.cmd();
        c.env("AWS_ENDPOINT_URL", &proxy.endpoint).args(args);
        c
    };

    // Refused with the lock-held code, naming the holder, having planned
    // nothing.
    let held = format!(
        "error: stack `net` is locked by another run: `contender` (pid {hpid} on {}, started ",
        lock::hostname()
    );
    let refused = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(common::exit::LOCK_HELD), "{err}");
        assert!(
            err.lines().any(|l| l.starts_with(&held)),
            "no {held:?} in:\n{err}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    };
    // Without --lock-wait: at once.
    refused(&tool(&["up", &stack, "--yes"]).output().unwrap());
    // Waiting too short: after the wait.
    let t = Instant::now();
    refused(
        &tool(&["up", &stack, "--yes", "--lock-wait", "1"])
            .output()
            .unwrap(),
    );
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());

    // Waiting long enough: still waiting while the holder runs, then applies.
    let mut waiting = tool(&["up", &stack, "--yes", "--lock-wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    assert!(waiting.try_wait().unwrap().is_none(), "it did not wait");
    assert!(
        !proxy.seen().iter().any(|s| s.op == "CreateVpc"),
        "it changed the cloud while another run held the lock"
    );
    assert_eq!(holder.finish(), "released");
    let out = waiting.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let waited = format!(
        "s for the lock of stack `net`, held by `contender` (pid {hpid} on {}, started ",
        lock::hostname()
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("waiting up to ") && l.contains(&waited)),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "Plan: 15 to add, 0 to change, 0 to destroy."),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(proxy.accepted("CreateVpc").len(), 1);
    // And it gave the lock back.
    let cloud = e.cloud_via(&proxy.endpoint);
    assert_eq!(e.block_on(lock::holder(&cloud, "net")).unwrap(), None);
}

/// Keeps the notes a run gives.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<String>>);

impl bookstore_infra::progress::Reporter for Notes {
    fn start(&self, _: &str, _: &str) {}
    fn status(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: bool, _: &str) {}
    fn note(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
}

/// A cloud through `proxy` whose notes are kept, the lock bucket made (by
/// a first lock, given back).
fn noted(e: &Emulator, proxy: &Realism) -> (Cloud, Arc<Notes>) {
    let notes = Arc::new(Notes::default());
    let conf = e
        .conf()
        .clone()
        .into_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    let cloud = Cloud::from_conf(&conf, notes.clone(), Duration::from_millis(50));
    let first = e.block_on(Lock::acquire(
        &cloud,
        "setup",
        "setup",
        Duration::from_secs(60),
    ));
    e.block_on(first.unwrap().release()).unwrap();
    (cloud, notes)
}

/// A pid that ran on this machine and is gone.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// This machine's holder for `pid`, as a run here would write it.
fn local(pid: u32, heartbeat: u64) -> Holder {
    let here = lock::Host::this();
    Holder {
        host: here.name,
        pid,
        command: "up".into(),
        started: heartbeat,
        heartbeat,
        nonce: format!("local-{pid}"),
        boot_id: here.boot_id.expect("this machine's boot id"),
        pid_ns: here.pid_ns.expect("this process's pid namespace"),
    }
}

fn refused(r: Result<Lock, LockError>) -> (Holder, Option<u64>, String) {
    match r {
        Err(e @ LockError::Held { .. }) => {
            let text = e.to_string();
            let LockError::Held { holder, age, .. } = e else {
                unreachable!()
            };
            (holder, age, text)
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the lock was taken over"),
    }
}

#[test]
fn a_fresh_holder_elsewhere_is_never_taken_over_whatever_the_clocks_say() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (cloud, notes) = noted(&e, &proxy);
    let timeout = Duration::from_secs(60);
    // The times in the lock are the holder's clock: ten hours behind this
    // machine's (as if this clock ran ten hours ahead), then ten hours
    // ahead. Only S3's clock, by which the object was just written, counts.
    for skew in [-36_000i64, 36_000] {
        let theirs = elsewhere(now().checked_add_signed(skew).unwrap());
        plant(&e, &cloud, "skew", &theirs);
        let (holder, age, text) = refused(e.block_on(Lock::acquire(&cloud, "skew", "up", timeout)));
        assert_eq!(holder, theirs);
        assert!(age.is_some_and(|a| a <= 5), "{age:?}");
        assert!(
            text.contains("last heartbeat ") && text.contains("s ago by S3's clock"),
            "{text}"
        );
        assert_eq!(
            e.block_on(lock::holder(&cloud, "skew")).unwrap(),
            Some(theirs)
        );
    }
    assert!(notes.0.lock().unwrap().is_empty(), "{:?}", notes.0.lock());
}

#[test]
fn a_holder_with_this_host_name_but_another_boot_or_none_is_not_taken_for_dead() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (cloud, _) = noted(&e, &proxy);
    let gone = dead_pid();
    // Same name, same pid namespace, its pid gone here, but another boot:
    // another machine of the same name, or this one before a reboot.
    let mut other_boot = local(gone, now());
    other_boot.boot_id = "00000000-0000-4000-8000-000000000000".into();
    // Same name and boot, another pid namespace: a container.
    let mut container = local(gone, now());
    container.pid_ns = "pid:[1]".into();
    // Written where /proc could not be read (macOS) or by an older version.
    let mut unknown = local(gone, now());
    unknown.boot_id = String::new();
    unknown.pid_ns = String::new();
    for theirs in [other_boot, container, unknown] {
        plant(&e, &cloud, "boot", &theirs);
        let (holder, _, _) =
            refused(e.block_on(Lock::acquire(&cloud, "boot", "up", Duration::from_secs(60))));
        assert_eq!(holder, theirs);
    }
    // The same lock with this boot and namespace: dead, taken at once.
    plant(&e, &cloud, "boot", &local(gone, now()));
    let mine = e
        .block_on(Lock::acquire(&cloud, "boot", "up", Duration::from_secs(60)))
        .unwrap();
    e.block_on(mine.release()).unwrap();
}

#[test]
fn a_dead_local_run_is_taken_over_at_once_and_a_live_one_never() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (cloud, notes) = noted(&e, &proxy);
    let timeout = Duration::from_secs(600);
    // A run of this machine killed with SIGKILL: its heartbeat is fresh.
    let gone = dead_pid();
    plant(&e, &cloud, "killed", &local(gone, now()));
    let t = Instant::now();
    let mine = e
        .block_on(Lock::acquire(&cloud, "killed", "up", timeout))
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let said = notes.0.lock().unwrap().join("\n");
    assert!(
        said.contains(&format!("taking over the lock of `up` (pid {gone} on "))
            && said.contains(
                "it was taken on this machine, in this boot, by a process that no longer runs"
            ),
        "{said}"
    );
    let h = e.block_on(lock::holder(&cloud, "killed")).unwrap().unwrap();
    assert_eq!(h.pid, std::process::id());
    e.block_on(mine.release()).unwrap();

    // A live process of this machine (this one, as another run) is held.
    plant(&e, &cloud, "killed", &local(std::process::id(), now()));
    refused(e.block_on(Lock::acquire(&cloud, "killed", "up", timeout)));
}

#[test]
fn a_heartbeat_stale_by_s3s_clock_is_taken_over_with_a_clear_message() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (cloud, notes) = noted(&e, &proxy);
    // Its body claims a heartbeat ten hours from now, by its own clock.
    let theirs = elsewhere(now() + 36_000);
    plant(&e, &cloud, "silent", &theirs);
    // Within the timeout by S3's clock: held.
    let timeout = Duration::from_secs(2);
    refused(e.block_on(Lock::acquire(&cloud, "silent", "up", timeout)));
    std::thread::sleep(Duration::from_secs(4));
    let mine = e
        .block_on(Lock::acquire(&cloud, "silent", "up", timeout))
        .unwrap();
    let said = notes.0.lock().unwrap().join("\n");
    let head = "taking over the lock of `up` (pid 4242 on ci-runner-elsewhere, started ";
    let line = said
        .lines()
        .find(|l| l.starts_with(head))
        .unwrap_or_else(|| panic!("{said}"));
    let age: u64 = line
        .split("its last heartbeat is ")
        .nth(1)
        .and_then(|r| r.strip_suffix("s old by S3's clock (the timeout is 2s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((3..=6).contains(&age), "{line}");
    let h = e.block_on(lock::holder(&cloud, "silent")).unwrap().unwrap();
    assert_eq!(h.pid, std::process::id());
    e.block_on(mine.release()).unwrap();
}
