//! `/healthz`, for the load balancer: 200 when the database answers and
//! the data directory takes writes, 503 otherwise. The body names only
//! which of the two failed; the error itself (it names the database user
//! and host, or the directory) is logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::S;

/// How long the database may take to answer.
const DB_TIMEOUT: Duration = Duration::from_secs(2);

static PROBES: AtomicU64 = AtomicU64::new(0);

pub fn router() -> Router<S> {
    Router::new().route("/healthz", get(healthz))
}

fn unavailable(reason: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}

async fn healthz(State(st): State<S>) -> Response {
    let pinged = tokio::time::timeout(DB_TIMEOUT, st.db.ping())
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
    if let Err(e) = pinged {
        tracing::warn!(error = %e, "health check: database unavailable");
        return unavailable("database unavailable");
    }
    // A name of its own per check: checks at once do not remove each
    // other's file.
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = st
        .data_dir
        .join(format!(".healthz-{}-{n}", std::process::id()));
    let written = match tokio::fs::write(&probe, b"ok").await {
        Ok(()) => tokio::fs::remove_file(&probe).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, dir = %st.data_dir.display(), "health check: data directory not writable");
        return unavailable("data directory not writable");
    }
    Json(json!({"status": "ok"})).into_response()
}
