//! Request counters and latencies, with the `metrics` crate, exported in
//! the Prometheus text format on a listener of their own (see
//! [`crate::config::Serve::metrics_listen`]).
//!
//! - `bookstore_requests_total{route,status}`: requests by matched route
//!   (`unmatched` for the pages that do not exist) and status;
//! - `bookstore_request_duration_seconds`: a latency histogram;
//! - `bookstore_db_pool_connections{state="open"|"idle"}`: the database
//!   pool, read when the metrics are rendered.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::db::Db;
use crate::state::S;

pub const REQUESTS: &str = "bookstore_requests_total";
pub const DURATION: &str = "bookstore_request_duration_seconds";
pub const POOL: &str = "bookstore_db_pool_connections";

/// The latency histogram's buckets, in seconds.
pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The media type of the Prometheus text format.
pub const CONTENT: &str = "text/plain; version=0.0.4";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; its handle renders
/// what was recorded.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder was installed first, and
            // none is: this runs once.
            let _ = metrics::set_global_recorder(recorder);
            metrics::describe_counter!(REQUESTS, "HTTP requests by route and status.");
            metrics::describe_histogram!(DURATION, metrics::Unit::Seconds, "Request latency.");
            metrics::describe_gauge!(POOL, "Database pool connections.");
            // Histogram samples wait in buffers until folded into their
            // buckets: fold them regularly, scraped or not.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("starting the metrics upkeep thread");
            handle
        })
        .clone()
}

/// Counts each request by route and status, and times it.
pub async fn track(State(st): State<S>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let res = next.run(req).await;
    // A 503 with Retry-After is the shop being busy, not the database.
    if res.status() == StatusCode::SERVICE_UNAVAILABLE && !res.headers().contains_key(RETRY_AFTER) {
        // Perhaps the password was rotated: look now, not at the next health check.
        st.db.check_soon();
    }
    metrics::counter!(REQUESTS, "route" => route, "status" => res.status().as_str().to_string())
        .increment(1);
    metrics::histogram!(DURATION).record(start.elapsed().as_secs_f64());
    res
}

/// The metrics, with the pool's gauges as they are now.
pub fn render(handle: &PrometheusHandle, db: &Db) -> String {
    let (open, idle) = db.pool_stats();
    metrics::gauge!(POOL, "state" => "open").set(open as f64);
    metrics::gauge!(POOL, "state" => "idle").set(idle as f64);
    handle.render()
}

/// The router of the metrics listener: `/metrics` and nothing else.
pub fn router(db: Db) -> Router {
    let handle = handle();
    Router::new().route(
        "/metrics",
        get(move || {
            let body = render(&handle, &db);
            async move { ([(CONTENT_TYPE, CONTENT)], body).into_response() }
        }),
    )
}

/// Serves `/metrics` at `addr` until the process ends.
pub async fn serve(addr: SocketAddr, db: Db) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for metrics"))?;
    tracing::info!(listen = %addr, "metrics serving");
    let app = router(db);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}
