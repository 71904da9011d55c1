//! Errors that become answers: a page for the site, JSON for the API.
//! Nothing a visitor sees names a database, a user or a host.

use axum::http::header::{LOCATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("login required")]
    Login,
    #[error("the form's security token is missing or wrong")]
    Csrf,
    /// The request's body is over its route's limit.
    #[error("the request is too large")]
    TooLarge,
    /// A form the browser could not have sent.
    #[error("the form cannot be read")]
    BadForm,
    /// The same thing changed under this request (a book bought while it
    /// was deleted): the visitor may try again.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// Every password-hashing permit is taken.
    #[error("too busy")]
    Busy,
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                AppError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(d) if d.message().contains("Access denied") => {
                AppError::Unavailable(d.to_string())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl AppError {
    /// The status, a title and the sentence shown to the visitor. Logs
    /// what the visitor is not shown.
    pub fn public(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            AppError::Login => (StatusCode::UNAUTHORIZED, "Log in", "Log in first."),
            AppError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here."),
            AppError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why),
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "What you sent is larger than this page accepts; nothing was changed.",
            ),
            AppError::BadForm => (
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read; nothing was changed. Reload the page and try again.",
            ),
            AppError::Conflict(why) => (StatusCode::CONFLICT, "Changed meanwhile", why),
            AppError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "The shop cannot reach its database right now. Please try again in a moment.",
                )
            }
            AppError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side; nothing was changed. Please try again.",
                )
            }
            AppError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "The shop is busy right now; nothing was changed. Please try again in a moment.",
            ),
        }
    }
}

fn retry_after(status: StatusCode, e: &AppError, r: &mut Response) {
    if matches!(e, AppError::Busy) && status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if matches!(self, AppError::Login) {
            return (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
        }
        let (status, title, msg) = self.public();
        let mut r = (status, crate::views::errors::page(title, msg)).into_response();
        retry_after(status, &self, &mut r);
        r
    }
}

/// An error of the JSON API: the same statuses as the site, as
/// `{"error": "..."}`, never a page.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _, msg) = self.0.public();
        let msg = match self.0 {
            AppError::Login => "log in first",
            AppError::NotFound => "not found",
            _ => msg,
        };
        let mut r = (status, Json(json!({ "error": msg }))).into_response();
        retry_after(status, &self.0, &mut r);
        r
    }
}
