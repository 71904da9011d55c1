//! A new binary takes over the listening socket, and no request is lost.
//!
//! The test plays systemd's part (socket activation, `Type=notify`,
//! `systemctl restart`): it holds the listening socket, starts the real
//! binary with it as fd 3 (`LISTEN_FDS=1`, `LISTEN_FDNAMES=http`,
//! `LISTEN_PID` its pid), waits for `READY=1` on its `NOTIFY_SOCKET`, and
//! restarts it the way systemd does: SIGTERM, wait for the process to
//! exit, start the new one on the same socket. Meanwhile keep-alive
//! clients ([`load`]) ask for the home page and the catalog without pause,
//! and every failure they meet is counted.

mod load;

use std::ffi::{CString, OsStr, OsString};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

use crate::common::{free_port, Client, TestDb, BIN};
use load::{Load, Tally};

/// The pages the clients ask for, in turn.
const PAGES: &[&str] = &["/", "/book/catalog"];
const CLIENTS: usize = 8;
const RESTARTS: usize = 3;

/// How the server gets its socket.
#[derive(Clone, Copy)]
enum Socket<'a> {
    /// Passed as fd 3, by a parent that keeps it open (systemd's part).
    Passed(&'a std::net::TcpListener),
    /// Bound by each process itself on this address.
    Bound(SocketAddr),
}

/// What systemd does for the service: its notify socket, its log files.
struct Manager {
    db: TestDb,
    notify_path: PathBuf,
    notify: UnixDatagram,
    started: usize,
}

impl Manager {
    fn new() -> Self {
        let db = TestDb::sqlite();
        let notify_path = db.dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        Manager {
            db,
            notify_path,
            notify,
            started: 0,
        }
    }

    fn log(&self, n: usize) -> PathBuf {
        self.db.dir.path().join(format!("server-{n}.log"))
    }

    /// All the servers' logs, for a failure's message.
    fn logs(&self) -> String {
        (1..=self.started)
            .map(|n| {
                let log = std::fs::read_to_string(self.log(n)).unwrap_or_default();
                format!("--- server {n}:\n{log}")
            })
            .collect()
    }

    /// Starts a server and waits for its `READY=1`, as `Type=notify` does.
    /// Returns it and what the service manager was told meanwhile.
    async fn start(&mut self, socket: Socket<'_>) -> (Child, Vec<String>) {
        self.started += 1;
        let data = self.db.dir.path().join("data");
        let mut args: Vec<OsString> = vec!["serve".into(), "--data-dir".into(), data.into()];
        let mut env = vec![
            ("BOOKSTORE_DATABASE_URL", OsStr::new(&self.db.url)),
            ("NOTIFY_SOCKET", self.notify_path.as_os_str()),
        ];
        let mut cmd = Command::new(BIN);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.log(self.started)).unwrap())
            .kill_on_drop(true);
        match socket {
            Socket::Passed(listener) => {
                // `--listen` names the passed socket's own address, which
                // no process can bind again: a server that bound instead of
                // taking fd 3 would exit.
                let listen = listener.local_addr().unwrap().to_string();
                args.extend(["--listen".into(), listen.into()]);
                env.extend([
                    ("LISTEN_FDS", OsStr::new("1")),
                    ("LISTEN_FDNAMES", OsStr::new("http")),
                ]);
                pass_as_fd_3(&mut cmd, listener.as_raw_fd(), &args, &env);
            }
            Socket::Bound(addr) => {
                args.extend(["--listen".into(), addr.to_string().into()]);
                cmd.args(&args).envs(env.iter().copied());
            }
        }
        let mut child = cmd.spawn().unwrap();
        let mut told = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(60);
        while !told.iter().any(|m| m == "READY=1") {
            let got = tokio::select! {
                got = self.notify.recv(&mut buf) => got.unwrap(),
                status = child.wait() => panic!("server exited ({status:?}):\n{}", self.logs()),
                _ = tokio::time::sleep_until(deadline.into()) => panic!("no READY=1:\n{}", self.logs()),
            };
            told.push(String::from_utf8_lossy(&buf[..got]).into_owned());
        }
        (child, told)
    }
}

/// Restarts as `systemctl restart` does: SIGTERM, wait for the exit (it
/// must be a clean one), start the new server.
async fn restart(m: &mut Manager, old: &mut Child, socket: Socket<'_>) -> (Instant, Child) {
    let pid = old.id().unwrap() as libc::pid_t;
    // SAFETY: signalling our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(40), old.wait())
        .await
        .expect("the old server did not exit")
        .unwrap();
    let exited = Instant::now();
    assert!(status.success(), "the old server: {status}\n{}", m.logs());
    let (new, told) = m.start(socket).await;
    assert_eq!(
        told.first().map(String::as_str),
        Some("STOPPING=1"),
        "{told:?}"
    );
    (exited, new)
}

/// Runs the clients on `addr` while the server restarts `RESTARTS` times;
/// returns what they saw and when each old server had exited.
async fn restarts_under_load(m: &mut Manager, socket: Socket<'_>) -> (Tally, Vec<Instant>) {
    let addr = match socket {
        Socket::Passed(l) => l.local_addr().unwrap(),
        Socket::Bound(addr) => addr,
    };
    let (mut server, _) = m.start(socket).await;
    let seller = Client::new(&format!("http://{addr}"));
    seller.signup("Seller", "seller@example.com").await;
    assert_eq!(seller.add_book("Handover", "9.99", "3").await.status, 303);
    let load = Load::start(addr, CLIENTS, PAGES);
    let mut exits = Vec::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..RESTARTS {
        let (exited, new) = restart(m, &mut server, socket).await;
        exits.push(exited);
        server = new;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let tally = load.stop().await;
    let _ = server.start_kill();
    (tally, exits)
}

fn summary(t: &Tally) -> String {
    let mut kinds: Vec<&String> = t.failures.iter().collect();
    kinds.sort();
    kinds.dedup();
    format!(
        "{} answered, {} failed ({kinds:?}), {} connections closed by an answer, {} found closed while idle, slowest {:?}",
        t.ok.len(),
        t.failures.len(),
        t.closed_by_answer,
        t.closed_idle,
        t.slowest
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_takes_over_the_passed_socket_and_no_request_is_lost() {
    let mut m = Manager::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (tally, exits) = restarts_under_load(&mut m, Socket::Passed(&listener)).await;
    eprintln!("with the socket passed: {}", summary(&tally));
    assert!(
        tally.failures.is_empty(),
        "{}\n{}",
        summary(&tally),
        m.logs()
    );
    // Every server after the first answered, each after the one before
    // had exited (no other process held the socket then).
    let ends = exits.iter().skip(1).copied().chain([Instant::now()]);
    for (i, (exited, end)) in exits.iter().zip(ends).enumerate() {
        let n = tally.ok_between(*exited, end);
        assert!(
            n > 0,
            "server {} answered nothing: {}",
            i + 2,
            summary(&tally)
        );
    }
    // Busy connections were told to close (the drain's way of handing
    // clients over), not cut.
    assert!(
        tally.closed_by_answer >= RESTARTS as u64,
        "{}",
        summary(&tally)
    );
}

/// The same restarts, each server binding the address itself (no socket
/// kept open across them): the clients must see requests fail, or the
/// test above proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_passed_socket_restarts_lose_requests() {
    let mut m = Manager::new();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (tally, _) = restarts_under_load(&mut m, Socket::Bound(addr)).await;
    eprintln!("with a socket bound by each server: {}", summary(&tally));
    assert!(
        tally.failures.iter().any(|f| f.contains("refused")),
        "{}",
        summary(&tally)
    );
}

/// Starts the program as systemd does a socket-activated service: the
/// listener `fd` as fd 3, and `LISTEN_PID` the new process's own pid,
/// known only in the child. So the child, between fork and exec (where
/// only async-signal-safe calls may be made), puts the listener on fd 3,
/// writes its pid into the environment prepared before the fork, and
/// execs the program itself with it (std would exec with the environment
/// it prepared, which a child cannot add to without allocating).
fn pass_as_fd_3(cmd: &mut Command, fd: RawFd, args: &[OsString], env: &[(&str, &OsStr)]) {
    let mut exec = Exec::new(BIN, args, env);
    // SAFETY: the closure calls only dup2, fcntl, getpid and execve, and
    // writes into memory it owns.
    unsafe {
        cmd.pre_exec(move || {
            let done = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            exec.set_pid(libc::getpid() as u32);
            libc::execve(exec.argv[0], exec.argv.as_ptr(), exec.envp.as_ptr());
            Err(std::io::Error::last_os_error())
        });
    }
}

/// A command line and environment ready for execve, prepared before the
/// fork: `LISTEN_PID=` and room for any pid last.
struct Exec {
    _strings: Vec<CString>,
    listen_pid: Box<[u8; 22]>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the strings the value owns; it is only
// used by the child it is moved into.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

impl Exec {
    fn new(program: &str, args: &[OsString], env: &[(&str, &OsStr)]) -> Self {
        let c = |b: &[u8]| CString::new(b).unwrap();
        let argv: Vec<CString> = std::iter::once(c(program.as_bytes()))
            .chain(args.iter().map(|a| c(a.as_bytes())))
            .collect();
        let set: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
        let envp: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| !set.iter().any(|s| k == *s) && k != "LISTEN_PID")
            .chain(
                env.iter()
                    .map(|(k, v)| (OsString::from(k), v.to_os_string())),
            )
            .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect();
        let mut listen_pid = Box::new([0u8; 22]);
        listen_pid[..11].copy_from_slice(b"LISTEN_PID=");
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain([std::ptr::null()])
                .collect::<Vec<_>>()
        };
        let argv_ptrs = ptrs(&argv);
        let mut envp_ptrs = ptrs(&envp);
        envp_ptrs.insert(envp.len(), listen_pid.as_ptr().cast());
        Exec {
            _strings: argv.into_iter().chain(envp).collect(),
            listen_pid,
            argv: argv_ptrs,
            envp: envp_ptrs,
        }
    }

    /// Writes `pid` (and the terminating NUL) after `LISTEN_PID=`.
    fn set_pid(&mut self, pid: u32) {
        let digits = pid.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut rest = pid;
        for i in (0..digits).rev() {
            self.listen_pid[11 + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.listen_pid[11 + digits] = 0;
    }
}
