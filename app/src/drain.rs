//! Serving the site on its listeners, and stopping without losing a
//! request.
//!
//! When the stop signal comes (SIGTERM: `systemctl stop` or `restart`):
//!
//! - every listener stops accepting at once; connections arriving from
//!   then on wait in the listening socket's queue, which systemd keeps
//!   open for the next process (socket activation, [`crate::listen`]);
//! - every response from then on says `Connection: close`, and the
//!   connection is closed after it: a client busy on a keep-alive
//!   connection learns in the answer itself to open a new connection for
//!   its next request, instead of finding it closed under that request;
//! - a connection that carries no request for [`IDLE_GRACE`] is closed
//!   (cleanly: no request of it is cut), as any idle keep-alive connection
//!   may be at any time; requests in flight finish;
//! - the server returns once every connection is closed, or when the drain
//!   time is over, cutting those still open.
//!
//! Plain HTTP and HTTPS are served alike: [`Server::serve_with`] takes the
//! handshake that turns an accepted TCP stream into the connection HTTP is
//! spoken on, run in that connection's own task.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request};
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a connection may stay without a request once the server is
/// stopping: a client sending its next request within it gets the answer
/// (saying `Connection: close`). Short, as the process exits only after it
/// when a connection stays idle, and the next process waits for that.
pub const IDLE_GRACE: Duration = Duration::from_millis(500);

/// The server: the listeners' accept loops and their connections, each
/// listener with its router.
pub struct Server {
    /// Set when the server begins to stop (read on every response).
    stopping: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    /// Each connection (and each accept loop, for its connections to
    /// come) holds a receiver: the server is done when none is left.
    open: watch::Sender<()>,
    loops: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Server {
    pub fn new() -> Self {
        Server {
            stopping: Arc::new(AtomicBool::new(false)),
            stop: watch::channel(false).0,
            open: watch::channel(()).0,
            loops: Default::default(),
        }
    }

    /// Serves `app` over plain HTTP on `listener`, from now on.
    pub fn serve(&self, listener: TcpListener, app: Router) {
        self.serve_with(listener, app, |stream| async move { Ok(stream) });
    }

    /// Serves `app` on `listener`, from now on, each accepted stream first
    /// going through `handshake` (TLS: `TlsAcceptor::accept`, with a time
    /// limit), in the connection's own task, so that a slow client holds up
    /// no other and a handshake under way when the server stops is
    /// finished and its request answered; a failed handshake closes that
    /// connection.
    pub fn serve_with<H, F, Io>(&self, listener: TcpListener, app: Router, handshake: H)
    where
        H: Fn(TcpStream) -> F + Send + Sync + 'static,
        F: Future<Output = io::Result<Io>> + Send + 'static,
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = Conn {
            app,
            stopping: self.stopping.clone(),
            stop: self.stop.subscribe(),
            open: self.open.subscribe(),
        };
        let handshake = Arc::new(handshake);
        let accepting = tokio::spawn(async move {
            let mut stop = conn.stop.clone();
            loop {
                let accepted = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let conn = conn.clone();
                        let handshake = handshake.clone();
                        tokio::spawn(async move {
                            match handshake(stream).await {
                                Ok(io) => conn.run(io, peer).await,
                                Err(e) => tracing::debug!(%peer, error = %e, "handshake failed"),
                            }
                        });
                    }
                    Err(e) if is_connection_error(&e) => {}
                    // Out of file descriptors, most likely: wait for some.
                    Err(e) => {
                        tracing::error!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            // The listener is closed here; a socket systemd passed stays
            // open in systemd, with the connections waiting in its queue.
        });
        self.loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(accepting);
    }

    /// Serves until `signal`, then stops as the module says, taking at
    /// most `drain` to. Returns how many connections were cut.
    pub async fn run_until(self, signal: impl Future<Output = ()>, drain: Duration) -> usize {
        signal.await;
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
        let loops = std::mem::take(
            &mut *self
                .loops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for accepting in loops {
            let _ = accepting.await;
        }
        let open = self.open.receiver_count();
        tracing::info!(
            connections = open,
            drain_secs = drain.as_secs_f64(),
            "stopped accepting; finishing requests in flight"
        );
        let Server { open, .. } = self;
        match tokio::time::timeout(drain, open.closed()).await {
            Ok(()) => 0,
            Err(_) => {
                let cut = open.receiver_count();
                tracing::warn!(connections = cut, "drain time over: cutting connections");
                cut
            }
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// What a connection's task needs.
#[derive(Clone)]
struct Conn {
    app: Router,
    stopping: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
    open: watch::Receiver<()>,
}

impl Conn {
    async fn run<Io>(self, io: Io, peer: SocketAddr)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let used = Arc::new(AtomicBool::new(false));
        let seen = used.clone();
        let stopping = self.stopping.clone();
        let service = self
            .app
            .map_request(move |mut req: Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            })
            .map_response(move |mut res: Response| {
                if stopping.load(Ordering::Relaxed) {
                    res.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                res
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(conn);
        let mut stop = self.stop;
        let done = tokio::select! {
            done = conn.as_mut() => Some(done),
            _ = stop.wait_for(|s| *s) => None,
        };
        let done = match done {
            Some(done) => done,
            None => tokio::select! {
                done = conn.as_mut() => done,
                _ = tokio::time::sleep(IDLE_GRACE) => {
                    // A connection that never carried a request counts as
                    // idle (hyper waits for its first one).
                    if !used.load(Ordering::Relaxed) {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            },
        };
        if let Err(e) = done {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        drop(self.open);
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
#[path = "drain_tests.rs"]
mod tests;
