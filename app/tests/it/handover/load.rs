//! A load generator that hides nothing: HTTP/1.1 keep-alive clients over
//! raw TCP, each counting every failure it meets.
//!
//! What counts as a failed request:
//! - a connection that cannot be made (refused, reset, 5 s without one);
//! - a request whose connection fails after its first byte was written:
//!   an error writing it, a reset, the connection closed before the whole
//!   answer came, bytes that are not HTTP, no answer within 10 s;
//! - an answer that is not 2xx.
//!
//! What does not: a client opening a new connection for its next request
//! because the server said `Connection: close` in its last answer, or
//! because the server had closed the idle connection before any byte of
//! the request was written (seen with a non-blocking peek just before
//! writing). Both are HTTP/1.1 as it is meant to be (RFC 9112 9.3, 9.6),
//! and browsers do the same; they are counted apart. A request is never
//! sent twice.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// When each 2xx answer was complete.
    pub ok: Vec<Instant>,
    /// Each failed request: what went wrong.
    pub failures: Vec<String>,
    /// New connections after an answer saying `Connection: close`.
    pub closed_by_answer: u64,
    /// New connections after finding the idle one closed by the server,
    /// before writing the request.
    pub closed_idle: u64,
    /// The longest a request took, from its first byte written (or its
    /// connection's start) to the last byte of its answer.
    pub slowest: Duration,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok.extend(other.ok);
        self.failures.extend(other.failures);
        self.closed_by_answer += other.closed_by_answer;
        self.closed_idle += other.closed_idle;
        self.slowest = self.slowest.max(other.slowest);
    }

    /// 2xx answers completed within `from..to`.
    pub fn ok_between(&self, from: Instant, to: Instant) -> usize {
        self.ok.iter().filter(|t| (from..to).contains(*t)).count()
    }
}

/// Clients running until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// `clients` keep-alive clients on `addr`, each asking for `paths` in
    /// turn, one request at a time, as fast as they are answered.
    pub fn start(addr: SocketAddr, clients: usize, paths: &'static [&'static str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|i| tokio::spawn(client(addr, paths, i, stop.clone())))
            .collect();
        Load { stop, clients }
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        for c in self.clients {
            all.add(c.await.unwrap());
        }
        all
    }
}

async fn client(
    addr: SocketAddr,
    paths: &'static [&'static str],
    first: usize,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<Conn> = None;
    let mut n = first;
    while !stop.load(Ordering::SeqCst) {
        let path = paths[n % paths.len()];
        n += 1;
        if let Some(c) = &conn {
            match c.peek() {
                Peek::Open => {}
                Peek::Closed => {
                    t.closed_idle += 1;
                    conn = None;
                }
                Peek::Bytes => {
                    t.failures.push("bytes on an idle connection".into());
                    conn = None;
                }
            }
        }
        let started = Instant::now();
        if conn.is_none() {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => conn = Some(Conn::new(s)),
                Ok(Err(e)) => {
                    t.failures.push(format!("connecting: {e}"));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                Err(_) => {
                    t.failures
                        .push("connecting: no connection within 5 s".into());
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        match tokio::time::timeout(ANSWER_TIMEOUT, c.exchange(path)).await {
            Ok(Ok(answer)) => {
                if (200..300).contains(&answer.status) {
                    t.ok.push(Instant::now());
                } else {
                    t.failures.push(format!("GET {path}: {}", answer.status));
                }
                if answer.close {
                    t.closed_by_answer += 1;
                    conn = None;
                }
            }
            Ok(Err(e)) => {
                t.failures.push(format!("GET {path}: {e}"));
                conn = None;
            }
            Err(_) => {
                t.failures
                    .push(format!("GET {path}: no answer within 10 s"));
                conn = None;
            }
        }
        t.slowest = t.slowest.max(started.elapsed());
    }
    t
}

enum Peek {
    Open,
    Closed,
    Bytes,
}

struct Answer {
    status: u16,
    close: bool,
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(s: TcpStream) -> Self {
        Conn { s, buf: Vec::new() }
    }

    /// Whether the server closed the connection: asked of the kernel (a
    /// non-blocking peek), not of the runtime's idea of readiness.
    fn peek(&self) -> Peek {
        let mut b = [0u8; 1];
        // SAFETY: a one-byte buffer of ours, an open socket of ours.
        let n = unsafe {
            libc::recv(
                self.s.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => Peek::Closed,
            n if n > 0 => Peek::Bytes,
            _ => match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Peek::Open,
                // Reset while idle: closed before the request, as above.
                _ => Peek::Closed,
            },
        }
    }

    async fn exchange(&mut self, path: &str) -> Result<Answer, String> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: bookstore.test\r\nUser-Agent: handover-test\r\n\r\n"
        );
        self.s
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("writing the request: {e}"))?;
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill("the head").await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        self.buf.drain(..end);
        let status = head
            .strip_prefix("http/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP/1.1 answer: {head:?}"))?;
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let close = header("connection") == Some("close");
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| format!("content-length {len}"))?;
            while self.buf.len() < len {
                self.fill("the body").await?;
            }
            self.buf.drain(..len);
        } else if header("transfer-encoding") == Some("chunked") {
            loop {
                let line = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill("a chunk").await?;
                };
                let size = std::str::from_utf8(&self.buf[..line])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .ok_or("a bad chunk size")?;
                while self.buf.len() < line + 2 + size + 2 {
                    self.fill("a chunk").await?;
                }
                self.buf.drain(..line + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else {
            return Err(format!("an answer without a length: {head:?}"));
        }
        Ok(Answer { status, close })
    }

    /// Reads more of the answer; the connection closing first is a failure.
    async fn fill(&mut self, reading: &str) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        match self.s.read(&mut chunk).await {
            Ok(0) => Err(format!("the connection closed before {reading}")),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("reading {reading}: {e}")),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
