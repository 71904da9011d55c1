//! `Idempotency-Key` for the requests that buy or pay: the same key with
//! the same request gets the first answer again and nothing is done twice;
//! with another request, 409. Keys last 24 hours.
//!
//! The key is claimed (a row inserted under the primary key user + key)
//! in the transaction that does the work, and the answer is stored in it
//! before it commits. A second request with the key waits on that row
//! until the first commits, then finds it taken and answers what it holds;
//! if the first rolls back, the second does the work itself.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sqlx::{Any, Transaction};

use super::body::IdemKey;
use super::fail::Fail;
use crate::db::idempotency;
use crate::db::{retryable, BUSY_RETRIES};
use crate::state::AppState;

/// How long a key is remembered.
pub const KEY_TTL_SECS: i64 = 24 * 3600;

/// The header set on an answer given again.
pub const REPLAYED: &str = "idempotent-replayed";

/// What an operation came to, in its transaction.
pub enum Outcome {
    /// Done: commit, and answer this (stored under the key, if any).
    Done(StatusCode, serde_json::Value),
    /// Nothing done: roll back and refuse (not stored: a retry tries again).
    Refused(Fail),
}

/// An operation's work in its transaction.
pub type Work<'t> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, sqlx::Error>> + Send + 't>>;

/// Runs `op` in a transaction, once per `key` (when one was sent) for
/// `uid`. `digest` identifies the request (see `JsonBody`). A write that
/// lost to another one (SQLite busy, an InnoDB deadlock) is tried again.
pub async fn once<F>(
    st: &AppState,
    uid: i64,
    key: &IdemKey,
    digest: &str,
    mut op: F,
) -> Result<Response, Fail>
where
    F: for<'t> FnMut(&'t mut Transaction<'static, Any>) -> Work<'t>,
{
    let mut attempt = 0;
    loop {
        match attempt_once(st, uid, key, digest, &mut op).await {
            Ok(Some(r)) => return Ok(r),
            // The key's row vanished between the claim and the read (its
            // holder rolled back, or it expired): claim it again.
            Ok(None) => {}
            Err(Retry::Sql(e)) if attempt < BUSY_RETRIES && retryable(&st.db, &e) => {}
            Err(Retry::Sql(e)) => return Err(e.into()),
            Err(Retry::Fail(f)) => return Err(f),
        }
        attempt += 1;
        if attempt > BUSY_RETRIES {
            return Err(Fail::says(
                StatusCode::CONFLICT,
                "This request is being done by another one; try again.",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
    }
}

enum Retry {
    Sql(sqlx::Error),
    Fail(Fail),
}

impl From<sqlx::Error> for Retry {
    fn from(e: sqlx::Error) -> Self {
        Retry::Sql(e)
    }
}

async fn attempt_once<F>(
    st: &AppState,
    uid: i64,
    key: &IdemKey,
    digest: &str,
    op: &mut F,
) -> Result<Option<Response>, Retry>
where
    F: for<'t> FnMut(&'t mut Transaction<'static, Any>) -> Work<'t>,
{
    let mut tx = st.db.pool().begin().await?;
    if let Some(k) = &key.0 {
        if !idempotency::claim(&mut tx, uid, k, digest).await? {
            tx.rollback().await?;
            return answered(st, uid, k, digest).await;
        }
    }
    match op(&mut tx).await? {
        Outcome::Done(status, body) => {
            let text = body.to_string();
            if let Some(k) = &key.0 {
                idempotency::finish(&mut tx, uid, k, status.as_u16(), &text).await?;
            }
            tx.commit().await?;
            Ok(Some((status, Json(body)).into_response()))
        }
        Outcome::Refused(f) => {
            tx.rollback().await?;
            Err(Retry::Fail(f))
        }
    }
}

/// The answer stored under a key another request claimed first.
async fn answered(
    st: &AppState,
    uid: i64,
    key: &str,
    digest: &str,
) -> Result<Option<Response>, Retry> {
    let Some(s) = idempotency::find(&st.db, uid, key).await? else {
        return Ok(None);
    };
    let cutoff = crate::db::now() - KEY_TTL_SECS;
    if s.created_at < cutoff {
        idempotency::forget_if_older(&st.db, uid, key, cutoff).await?;
        return Ok(None);
    }
    if s.request_hash != digest {
        return Err(Retry::Fail(Fail::field(
            StatusCode::CONFLICT,
            "Idempotency-Key",
            "This Idempotency-Key was used with another request.",
        )));
    }
    let status = StatusCode::from_u16(s.status as u16).unwrap_or(StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    Ok(Some(r))
}

/// Forgets the keys older than their time (run hourly).
pub async fn prune(st: &AppState) -> Result<u64, sqlx::Error> {
    idempotency::prune(&st.db, crate::db::now() - KEY_TTL_SECS).await
}
