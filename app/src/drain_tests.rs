//! How the server stops: in one process, over raw TCP, so that every byte
//! and every close is seen.

use super::*;
use axum::routing::get;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A server on a fresh loopback port: `/fast`, and `/slow` answering after
/// `slow`. Returns its address, the trigger of its stop signal and its
/// task (giving the connections cut).
async fn start(
    slow: Duration,
    drain: Duration,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<usize>,
) {
    let app = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(slow).await;
                "slow"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new();
    server.serve(listener, app);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(
        async move {
            let _ = rx.await;
        },
        drain,
    ));
    (addr, tx, task)
}

async fn send(s: &mut TcpStream, path: &str) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
}

/// One response's head (lower-cased) and body; the bodies here are short
/// and sent with a length.
async fn response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "EOF in the head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

/// The server closed the connection cleanly (EOF, not a reset), within `within`.
async fn closed(s: &mut TcpStream, within: Duration) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(within, s.read_to_end(&mut rest)).await;
    let n = read
        .expect("the server did not close")
        .expect("a clean close");
    assert_eq!(n, 0, "bytes after the last response");
}

#[tokio::test]
async fn a_request_in_flight_finishes_and_its_answer_says_connection_close() {
    let (addr, stop, task) = start(Duration::from_millis(400), Duration::from_secs(5)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, "/fast").await;
    let (head, _) = response(&mut s).await;
    assert!(!head.contains("connection: close"), "{head}");
    send(&mut s, "/slow").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let (head, body) = response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body, "slow");
    closed(&mut s, Duration::from_secs(1)).await;
    assert_eq!(task.await.unwrap(), 0, "no connection cut");
    // The listener was closed when the server stopped accepting (here no
    // one else holds it: no handover).
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_busy_connection_gets_its_next_answer_and_an_idle_one_is_closed_after_the_grace() {
    let (addr, stop, task) = start(Duration::ZERO, Duration::from_secs(5)).await;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut unused = TcpStream::connect(addr).await.unwrap();
    for s in [&mut busy, &mut idle] {
        send(s, "/fast").await;
        response(s).await;
    }
    let stopped = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(IDLE_GRACE / 5).await;
    // Within the grace: answered, and told to close.
    send(&mut busy, "/fast").await;
    let (head, body) = response(&mut busy).await;
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body, "fast");
    closed(&mut busy, Duration::from_secs(1)).await;
    // The idle and the never used connection: closed cleanly after it.
    closed(&mut idle, IDLE_GRACE * 3).await;
    closed(&mut unused, IDLE_GRACE * 3).await;
    assert!(stopped.elapsed() >= IDLE_GRACE, "{:?}", stopped.elapsed());
    assert_eq!(task.await.unwrap(), 0);
    assert!(
        stopped.elapsed() < IDLE_GRACE * 3,
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test]
async fn the_drain_time_bounds_a_request_that_takes_longer() {
    let drain = Duration::from_millis(300);
    let (addr, stop, task) = start(Duration::from_secs(30), drain).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, "/slow").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = Instant::now();
    stop.send(()).unwrap();
    assert_eq!(
        task.await.unwrap(),
        1,
        "the slow request's connection is cut"
    );
    let took = stopped.elapsed();
    assert!(took >= drain && took < drain * 3, "{took:?}");
}
