//! The listening sockets, and what systemd is told about the server.
//!
//! Socket activation (`man sd_listen_fds`): systemd opens the sockets
//! itself and passes them to the service as file descriptors 3, 4, ...
//! with `LISTEN_FDS` (how many), `LISTEN_PID` (the process they are for)
//! and `LISTEN_FDNAMES` (their names, colon-separated, from each socket
//! unit's `FileDescriptorName=`). The names served are `http` (the site)
//! and `https`; a single fd without a name is `http`. Several fds may carry
//! one name (an IPv4 and an IPv6 socket). Because systemd keeps the sockets
//! open while the service restarts, a connection arriving between the old
//! process and the new one waits in the kernel's accept queue for the new
//! one instead of being refused.
//!
//! Without those variables the server binds `--listen` (and the HTTPS
//! address, when TLS is on) itself.
//!
//! `NOTIFY_SOCKET` (`Type=notify`): the server sends `READY=1` once it
//! accepts connections and `STOPPING=1` when it begins to stop
//! (`man sd_notify`).

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
use std::sync::{Mutex, PoisonError};

use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::TcpListener;

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The variables read (and removed) by [`take_env`].
const VARS: [&str; 4] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// What a passed socket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Http,
    Https,
}

impl Name {
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Http => "http",
            Name::Https => "https",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("LISTEN_FDS={0:?} is not a number of file descriptors")]
    BadCount(String),
    #[error("LISTEN_FDNAMES names {names} file descriptors, LISTEN_FDS passes {fds}")]
    NameCount { names: usize, fds: usize },
    #[error("fd {fd} is named {name:?}: only `http` and `https` are served (FileDescriptorName=)")]
    UnknownName { fd: RawFd, name: String },
    #[error("{fds} file descriptors were passed without names: name them `http` and `https` (FileDescriptorName=)")]
    Unnamed { fds: usize },
    #[error("fd {fd} ({name}) is not a listening TCP socket: {why}")]
    NotListening {
        fd: RawFd,
        name: &'static str,
        why: String,
    },
    #[error("listening on {addr} ({name})")]
    Bind {
        addr: SocketAddr,
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The sockets the server accepts on.
#[derive(Debug)]
pub struct Listeners {
    pub http: Vec<TcpListener>,
    pub https: Vec<TcpListener>,
    /// Passed by systemd (the addresses given were not used).
    pub inherited: bool,
}

/// The sockets to serve on: those systemd passed, if it passed any (then
/// `http` and `https` are not used, and `https` holds whatever sockets
/// were named so, even none), else `http` bound here and, when given,
/// `https`. Takes the passed sockets: a second call binds.
pub async fn listeners(
    http: SocketAddr,
    https: Option<SocketAddr>,
) -> Result<Listeners, ListenError> {
    take_env();
    let passed = lock().as_mut().and_then(|e| e.fds.take());
    match passed {
        Some(Ok(fds)) if !fds.is_empty() => {
            let mut l = Listeners {
                http: Vec::new(),
                https: Vec::new(),
                inherited: true,
            };
            for (name, socket) in fds {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
                let tokio =
                    TcpListener::from_std(socket).map_err(|e| ListenError::NotListening {
                        fd,
                        name: name.as_str(),
                        why: e.to_string(),
                    })?;
                match name {
                    Name::Http => l.http.push(tokio),
                    Name::Https => l.https.push(tokio),
                }
            }
            Ok(l)
        }
        Some(Err(e)) => Err(e),
        _ => {
            let bind = |addr: SocketAddr, name: &'static str| async move {
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ListenError::Bind { addr, name, source })
            };
            let mut l = Listeners {
                http: vec![bind(http, "http").await?],
                https: Vec::new(),
                inherited: false,
            };
            if let Some(addr) = https {
                l.https.push(bind(addr, "https").await?);
            }
            Ok(l)
        }
    }
}

/// Tells systemd (`Type=notify`) how the server is: `READY=1`,
/// `STOPPING=1`. Nothing without `NOTIFY_SOCKET`; a failure is logged.
pub fn notify(state: &str) {
    take_env();
    let Some(addr) = lock().as_ref().and_then(|e| e.notify.clone()) else {
        return;
    };
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "telling systemd (NOTIFY_SOCKET)");
    }
}

/// What the environment said, taken once.
struct Env {
    /// The passed sockets, checked; `None` once [`listeners`] took them.
    fds: Option<Result<Vec<(Name, std::net::TcpListener)>, ListenError>>,
    notify: Option<std::os::unix::net::SocketAddr>,
}

static ENV: Mutex<Option<Env>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<Env>> {
    ENV.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` and `NOTIFY_SOCKET`,
/// takes the sockets passed (close-on-exec from now on, so that no child
/// process inherits them) and removes the variables from the environment.
/// Later calls do nothing. `main` calls it before the runtime starts any
/// thread: changing the environment while another thread may read it is
/// not safe.
pub fn take_env() {
    let mut env = lock();
    if env.is_some() {
        return;
    }
    let var = |k: &str| std::env::var(k).ok();
    let fds = passed(
        std::process::id(),
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
    )
    .and_then(|fds| {
        fds.into_iter()
            .map(|(fd, name)| Ok((name, take(fd, name)?)))
            .collect()
    });
    let notify = var("NOTIFY_SOCKET").and_then(|path| {
        let addr = match path.strip_prefix('@') {
            Some(name) => <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes()),
            None => std::os::unix::net::SocketAddr::from_pathname(&path),
        };
        addr.ok()
    });
    for k in VARS {
        std::env::remove_var(k);
    }
    *env = Some(Env {
        fds: Some(fds),
        notify,
    });
}

/// The fds passed and their names, from the variables' values: none when
/// `LISTEN_PID` is not `pid` (they are another process's).
fn passed(
    pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
) -> Result<Vec<(RawFd, Name)>, ListenError> {
    if listen_pid.and_then(|p| p.trim().parse::<u32>().ok()) != Some(pid) {
        return Ok(Vec::new());
    }
    let Some(count) = listen_fds else {
        return Ok(Vec::new());
    };
    let n: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=1024).contains(n))
        .ok_or_else(|| ListenError::BadCount(count.to_string()))?;
    let fds = FIRST_FD..FIRST_FD + n;
    match names.filter(|s| !s.is_empty()) {
        None | Some("unknown") if n <= 1 => Ok(fds.map(|fd| (fd, Name::Http)).collect()),
        None => Err(ListenError::Unnamed { fds: n as usize }),
        Some(names) => {
            let names: Vec<&str> = names.split(':').collect();
            if names.len() != n as usize {
                return Err(ListenError::NameCount {
                    names: names.len(),
                    fds: n as usize,
                });
            }
            fds.zip(names)
                .map(|(fd, name)| match name {
                    "http" => Ok((fd, Name::Http)),
                    "https" => Ok((fd, Name::Https)),
                    _ => Err(ListenError::UnknownName {
                        fd,
                        name: name.to_string(),
                    }),
                })
                .collect()
        }
    }
}

/// Takes fd `fd` as a listener, once it is known to be a listening TCP
/// socket: close-on-exec and non-blocking from now on.
fn take(fd: RawFd, name: Name) -> Result<std::net::TcpListener, ListenError> {
    let refuse = |why: String| ListenError::NotListening {
        fd,
        name: name.as_str(),
        why,
    };
    check(fd).map_err(refuse)?;
    // SAFETY: systemd passed the fd to this process, it is open (checked
    // just now) and nothing else in the process owns it: only this
    // function takes the passed fds, once.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    socket
        .set_cloexec(true)
        .and_then(|()| socket.set_nonblocking(true))
        .map_err(|e| refuse(e.to_string()))?;
    Ok(socket.into())
}

/// Why fd `fd` is not a listening TCP socket, if it is not.
fn check(fd: RawFd) -> Result<(), String> {
    // SAFETY: the fd is only borrowed for these queries; if it is not open
    // they fail with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = SockRef::from(&borrowed);
    // Linux's EBADF and ENOTSOCK.
    let ty = sock.r#type().map_err(|e| match e.raw_os_error() {
        Some(9) => "it is not open".to_string(),
        Some(88) => "it is not a socket".to_string(),
        _ => e.to_string(),
    })?;
    if ty != Type::STREAM {
        return Err("it is not a stream socket".into());
    }
    let domain = sock.domain().map_err(|e| e.to_string())?;
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err("it is not an IPv4 or IPv6 socket".into());
    }
    if !sock.is_listener().map_err(|e| e.to_string())? {
        return Err("it does not listen".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_fds_are_named_from_listen_fdnames() {
        let p = |pid, fds, names| passed(7, pid, fds, names);
        assert!(p(Some("8"), Some("2"), Some("http:https"))
            .unwrap()
            .is_empty());
        assert!(p(None, Some("1"), None).unwrap().is_empty());
        assert_eq!(p(Some("7"), Some("1"), None).unwrap(), [(3, Name::Http)]);
        assert_eq!(
            p(Some("7"), Some("3"), Some("https:http:http")).unwrap(),
            [(3, Name::Https), (4, Name::Http), (5, Name::Http)]
        );
        assert!(p(Some("7"), Some("0"), None).unwrap().is_empty());
        let err = |pid, fds, names| p(pid, fds, names).unwrap_err().to_string();
        assert!(err(Some("7"), Some("x"), None).contains("\"x\""));
        assert!(err(Some("7"), Some("2"), None).contains("without names"));
        assert!(err(Some("7"), Some("2"), Some("http")).contains("names 1"));
        let e = err(Some("7"), Some("2"), Some("http:admin"));
        assert!(e.contains("fd 4") && e.contains("\"admin\""), "{e}");
    }

    #[test]
    fn only_a_listening_tcp_socket_is_taken() {
        let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(check(listening.as_raw_fd()), Ok(()));
        let tcp = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        assert_eq!(check(tcp.as_raw_fd()), Err("it does not listen".into()));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            check(udp.as_raw_fd()),
            Err("it is not a stream socket".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        assert_eq!(
            check(unix.as_raw_fd()),
            Err("it is not an IPv4 or IPv6 socket".into())
        );
        assert_eq!(check(4000), Err("it is not open".into()));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(check(file.as_raw_fd()), Err("it is not a socket".into()));
        let e = take(file.as_raw_fd(), Name::Https).unwrap_err().to_string();
        assert!(
            e.contains(&format!("fd {} (https)", file.as_raw_fd())),
            "{e}"
        );
    }
}
