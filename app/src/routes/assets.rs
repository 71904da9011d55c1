//! The files the site serves: its two stylesheets, built into the
//! program, and the uploaded covers (streamed from disk, a bounded number
//! at once).
//!
//! A stylesheet has a strong ETag (a prefix of its SHA-256) and answers
//! `If-None-Match` with 304. Pages link to it at a versioned URL
//! (`?v=<etag>`), which browsers may keep for a year without asking
//! again: a new release's stylesheet has a new URL. The bare URL and
//! any other version are answered too, with the current bytes and a
//! cache lifetime that makes browsers check again.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    RETRY_AFTER, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use crate::assets::{Asset, BOOTSTRAP, BOOTSTRAP_PATH, SHOP, SHOP_PATH};
use crate::domain::Cover;
use crate::error::AppError;
use crate::state::S;

/// Cached for a year, never checked again: the URL names the content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The bare URL: cached for a day.
const BARE: &str = "public, max-age=86400";
/// A version other than this release's (a page from another instance
/// during a deploy): checked again at each use.
const OTHER_VERSION: &str = "no-cache";

pub fn router() -> Router<S> {
    Router::new()
        .route(BOOTSTRAP_PATH, get(bootstrap))
        .route(SHOP_PATH, get(shop))
        .route("/covers/{name}", get(cover))
}

#[derive(Deserialize)]
struct Version {
    v: Option<String>,
}

async fn bootstrap(Query(q): Query<Version>, headers: HeaderMap) -> Response {
    serve(&BOOTSTRAP, q.v.as_deref(), &headers)
}

async fn shop(Query(q): Query<Version>, headers: HeaderMap) -> Response {
    serve(&SHOP, q.v.as_deref(), &headers)
}

fn serve(asset: &'static Asset, version: Option<&str>, headers: &HeaderMap) -> Response {
    let cache = match version {
        Some(v) if v == asset.version() => IMMUTABLE,
        Some(_) => OTHER_VERSION,
        None => BARE,
    };
    let etag = HeaderValue::from_str(&asset.etag).expect("hex digits in quotes");
    let cache = HeaderValue::from_static(cache);
    if none_match(headers, asset.version()) {
        return (
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag), (CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (ETAG, etag),
            (CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

/// Whether `If-None-Match` names this version (or `*`). The comparison is
/// the weak one, as for every `If-None-Match`: a compressed copy's ETag
/// is the weak form of the same tag.
fn none_match(headers: &HeaderMap, version: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == "*"
                || tag
                    .strip_prefix("W/")
                    .unwrap_or(tag)
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    == Some(version)
        })
}

/// An uploaded cover. Names are never reused, so the file at a name
/// never changes; anything but a cover's name is not found.
///
/// Streamed from disk in chunks (no cover is held in memory whole), at
/// most `--cover-downloads` at once per instance (beyond
/// them: 503 with `Retry-After`), each within `--cover-send-secs`: a
/// reader too slow for it gets a cut response (shorter than its
/// `Content-Length`), and its permit goes to the next one.
async fn cover(State(st): State<S>, Path(name): Path<String>) -> Result<Response, AppError> {
    let cover = Cover::parse(&name).ok_or(AppError::NotFound)?;
    let Ok(permit) = st.covers.clone().try_acquire_owned() else {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "1")],
            crate::views::errors::page(
                "Busy",
                "Too many downloads at once; try again in a moment.",
            ),
        )
            .into_response());
    };
    let path = st.data_dir.join("covers").join(cover.as_str());
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| AppError::NotFound)?;
    let len = file.metadata().await.map_err(|_| AppError::NotFound)?.len();
    // The file is read by a task of its own into a channel of one chunk:
    // when the client stops reading, the send waits, and at the deadline
    // the task ends, closing the file and freeing the permit.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let deadline = tokio::time::Instant::now() + st.cover_send;
    tokio::spawn(async move {
        let _permit = permit;
        let mut chunks = ReaderStream::new(file);
        while let Some(chunk) = chunks.next().await {
            match tokio::time::timeout_at(deadline, tx.send(chunk)).await {
                Ok(Ok(())) => {}
                // The client went away, or took too long.
                Ok(Err(_)) | Err(_) => return,
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static(cover.mime())),
            (CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            // An upload is never run as a page or script, whatever its bytes.
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox")),
            (CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::IF_NONE_MATCH;

    #[test]
    fn if_none_match_compares_weakly() {
        let v = SHOP.version();
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, v));
        h.insert(IF_NONE_MATCH, format!("\"x\", W/\"{v}\"").parse().unwrap());
        assert!(none_match(&h, v));
        h.insert(IF_NONE_MATCH, "\"other\"".parse().unwrap());
        assert!(!none_match(&h, v));
        h.insert(IF_NONE_MATCH, "*".parse().unwrap());
        assert!(none_match(&h, v));
    }
}
