//! `/healthz`, for the load balancer: 200 when the database answers and
//! the data directory takes writes, 503 otherwise. The body names only
//! which of the two failed; the error itself (it names the database user
//! and host, or the directory) is logged.
//!
//! The real check runs at most once a second per instance, whoever asks
//! and however often: requests meanwhile get the last result (and those
//! arriving while a check runs wait for it), so a flood of `/healthz`
//! is not a flood of database pings and file writes on the shared disk.
//! The body says when the result was found (`checked_at`, Unix ms).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::{AppState, S};

/// How long the database may take to answer.
const DB_TIMEOUT: Duration = Duration::from_secs(2);

static PROBES: AtomicU64 = AtomicU64::new(0);

pub fn router() -> Router<S> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(st): State<S>) -> Response {
    match st.health.get_or_make(|| check(&st)).await {
        (at, Ok(())) => Json(json!({"status": "ok", "checked_at": at})).into_response(),
        (at, Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": reason, "checked_at": at})),
        )
            .into_response(),
    }
}

async fn check(st: &AppState) -> Result<(), &'static str> {
    let pinged = tokio::time::timeout(DB_TIMEOUT, st.db.ping())
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
    if let Err(e) = pinged {
        tracing::warn!(error = %e, "health check: database unavailable");
        return Err("database unavailable");
    }
    // A name of its own per check: instances sharing the directory do
    // not remove each other's file.
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
        return Err("data directory not writable");
    }
    Ok(())
}
