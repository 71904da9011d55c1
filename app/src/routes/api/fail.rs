//! The API's errors: `{"error": "...", "fields": {"name": "..."}}`, the
//! same sentences as the site's forms, with each field's own message.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::input::Invalids;
use crate::domain::Scope;
use crate::error::{ApiError, AppError};

/// Every error the API answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, as one sentence.
    pub error: String,
    /// Each field (or header) in the request that is wrong, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// For a catalog page out of range: the last page there can be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_page: Option<i64>,
}

/// Why an API request was refused.
#[derive(Debug)]
pub enum Fail {
    /// As the site would refuse it (not found, conflict, unavailable...).
    App(AppError),
    /// The input is wrong, field by field (422).
    Invalid(Invalids),
    /// One field or header is wrong, with this status.
    Field(StatusCode, String, String),
    /// A status and a sentence.
    Says(StatusCode, String),
    /// No credentials at all (401).
    NoCredentials,
    /// A wrong, expired or revoked token (401).
    BadToken,
    /// The token lacks the scope (403).
    Scope(Scope),
    /// A write authenticated by the session's cookie without its CSRF token.
    Csrf,
    /// Too many requests: retry after this long (429).
    TooMany(Duration, String),
}

impl<E: Into<AppError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::App(e.into())
    }
}

impl Fail {
    pub fn says(status: StatusCode, msg: impl Into<String>) -> Fail {
        Fail::Says(status, msg.into())
    }

    pub fn field(status: StatusCode, field: &str, msg: impl Into<String>) -> Fail {
        Fail::Field(status, field.to_string(), msg.into())
    }
}

fn body(error: String, fields: Option<BTreeMap<String, String>>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error,
        fields,
        max_page: None,
    })
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::App(e) => ApiError(e).into_response(),
            Fail::Invalid(bad) => {
                let fields = bad
                    .0
                    .iter()
                    .map(|f| (f.field.to_string(), f.message.clone()))
                    .collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    body(bad.sentence(), Some(fields)),
                )
                    .into_response()
            }
            Fail::Field(status, field, msg) => {
                let fields = BTreeMap::from([(field, msg.clone())]);
                (status, body(msg, Some(fields))).into_response()
            }
            Fail::Says(status, msg) => (status, body(msg, None)).into_response(),
            Fail::NoCredentials => unauthorized("log in first"),
            Fail::BadToken => unauthorized("The API token is wrong, expired or revoked."),
            Fail::Scope(s) => (
                StatusCode::FORBIDDEN,
                body(format!("This token lacks the {s} scope."), None),
            )
                .into_response(),
            Fail::Csrf => (
                StatusCode::FORBIDDEN,
                body(
                    "A request authenticated by the site's cookie must carry its CSRF token \
                     in X-CSRF-Token (or use an API token)."
                        .into(),
                    None,
                ),
            )
                .into_response(),
            Fail::TooMany(wait, msg) => {
                let mut r = (StatusCode::TOO_MANY_REQUESTS, body(msg, None)).into_response();
                r.headers_mut().insert(
                    RETRY_AFTER,
                    HeaderValue::from(crate::limit::retry_secs(wait)),
                );
                r
            }
        }
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, body(msg.into(), None)).into_response();
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// An id in the path that is not a number: no such thing (404), naming it.
pub fn bad_id(field: &str) -> Fail {
    Fail::Field(
        StatusCode::NOT_FOUND,
        field.to_string(),
        format!("not found: {field} must be a whole number"),
    )
}

/// Parses an id from the path.
pub fn path_id(field: &str, v: &str) -> Result<i64, Fail> {
    v.parse::<i64>().map_err(|_| bad_id(field))
}

/// What any route taking credentials may also answer.
#[derive(utoipa::IntoResponses)]
pub enum AuthRefusals {
    /// No credentials, or a wrong, expired or revoked token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the route's scope, the caller is not an
    /// administrator, or a write authenticated by the cookie lacks its
    /// CSRF token.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Too many requests with a wrong token from this address.
    #[response(status = 429)]
    TooMany(ErrorBody),
    /// The database is unavailable, or the shop too busy.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// What any route reading a JSON body may also answer.
#[derive(utoipa::IntoResponses)]
pub enum BodyRefusals {
    /// The body is not JSON.
    #[response(status = 400)]
    NotJson(ErrorBody),
    /// The body is over the route's limit (16 KiB).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `application/json`.
    #[response(status = 415)]
    NotJsonType(ErrorBody),
    /// A field is wrong (named in `fields`), unknown, or of the wrong type.
    #[response(status = 422)]
    Invalid(ErrorBody),
}
