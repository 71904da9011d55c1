//! Extractors: who is asking, and forms that cannot skip the CSRF check.
//!
//! A POST handler takes its form as [`CsrfForm`] or [`CsrfMultipart`]: the
//! token is checked before the handler runs, so no handler can forget it.
//! Bodies are bounded by the route's `DefaultBodyLimit` (413 beyond it).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::AppError;
use crate::session::{Ctx, User};
use crate::state::S;

/// The visitor, if logged in.
pub struct CurrentUser(pub Option<User>);

/// A logged-in visitor; anyone else is sent to the login page.
pub struct RequireUser(pub User);

/// A logged-in administrator; other visitors get 403 (or the login page).
pub struct RequireAdmin(pub User);

impl FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, AppError> {
        let ctx = Ctx::from_request_parts(parts, st).await?;
        Ok(CurrentUser(ctx.user().cloned()))
    }
}

impl FromRequestParts<S> for RequireUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, AppError> {
        let ctx = Ctx::from_request_parts(parts, st).await?;
        ctx.user().cloned().map(RequireUser).ok_or(AppError::Login)
    }
}

impl FromRequestParts<S> for RequireAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, AppError> {
        let RequireUser(u) = RequireUser::from_request_parts(parts, st).await?;
        if !u.is_admin {
            return Err(AppError::Forbidden(
                "Only administrators can see this page.",
            ));
        }
        Ok(RequireAdmin(u))
    }
}

/// The client's address as the load balancer saw it: the right-most
/// entry of the last `X-Forwarded-For` line (the one it appended), else
/// the peer ([`crate::limit::client_key`]).
pub struct ClientAddr(pub String);

impl FromRequestParts<S> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientAddr(crate::limit::client_key(&parts.headers, peer)))
    }
}

fn body_error(status: StatusCode) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge
    } else {
        AppError::BadForm
    }
}

#[derive(Deserialize)]
struct Token {
    csrf_token: Option<String>,
}

/// A URL-encoded form whose `csrf_token` is the session's; `T` is the rest
/// of it (a struct, or `HashMap<String, String>`).
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<S> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, st: &S) -> Result<Self, AppError> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, st).await?;
        let urlencoded = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(|e| body_error(e.status()))?;
        if !urlencoded {
            // No token can be read: as a form without one.
            return Err(AppError::Csrf);
        }
        let token: Token = serde_urlencoded::from_bytes(&bytes).map_err(|_| AppError::Csrf)?;
        ctx.check_csrf(token.csrf_token.as_deref())?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| AppError::BadForm)?;
        Ok(CsrfForm(form))
    }
}

/// A form sent as `multipart/form-data` (or URL-encoded) with at most one
/// file, in the field `file_field`. The token is checked as soon as its
/// field arrives; a file before it is refused unread.
pub struct CsrfMultipart {
    pub fields: HashMap<String, String>,
    pub file: Option<Upload>,
}

/// An uploaded file, kept only up to the handler's size limit.
pub enum Upload {
    Bytes(Vec<u8>),
    /// It was larger than `MAX_UPLOAD`; its bytes were not kept.
    TooLarge,
}

/// The name of the file field of every upload form.
pub const FILE_FIELD: &str = "cover";
/// The largest file kept.
pub const MAX_UPLOAD: usize = 2 * 1024 * 1024;

impl FromRequest<S> for CsrfMultipart {
    type Rejection = AppError;

    async fn from_request(req: Request, st: &S) -> Result<Self, AppError> {
        let multipart = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let CsrfForm(fields) =
                CsrfForm::<HashMap<String, String>>::from_request(req, st).await?;
            return Ok(CsrfMultipart { fields, file: None });
        }
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, st).await?;
        let mut m = Multipart::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(|e| body_error(e.status()))?;
        let mut fields = HashMap::new();
        let mut file = None;
        let mut checked = false;
        while let Some(mut part) = m.next_field().await.map_err(|e| body_error(e.status()))? {
            let name = part.name().unwrap_or_default().to_string();
            if name == FILE_FIELD {
                if !checked {
                    return Err(AppError::Csrf);
                }
                let mut kept = Vec::new();
                let mut too_large = false;
                while let Some(chunk) = part.chunk().await.map_err(|e| body_error(e.status()))? {
                    if too_large {
                        continue;
                    }
                    if kept.len() + chunk.len() > MAX_UPLOAD {
                        too_large = true;
                        kept = Vec::new();
                    } else {
                        kept.extend_from_slice(&chunk);
                    }
                }
                file = match (too_large, kept.is_empty()) {
                    (true, _) => Some(Upload::TooLarge),
                    (false, true) => None,
                    (false, false) => Some(Upload::Bytes(kept)),
                };
                continue;
            }
            let text = part.text().await.map_err(|e| body_error(e.status()))?;
            if name == "csrf_token" {
                ctx.check_csrf(Some(&text))?;
                checked = true;
            }
            fields.insert(name, text);
        }
        if !checked {
            return Err(AppError::Csrf);
        }
        Ok(CsrfMultipart { fields, file })
    }
}
