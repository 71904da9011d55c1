//! The site's routes, one module per feature; each has its `router()`.

pub mod account;
pub mod admin;
pub mod api;
pub mod assets;
pub mod books;
pub mod catalog;
pub mod delivery;
pub mod health;
pub mod payment;
pub mod purchases;
pub mod tokens;

use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::state::S;

pub fn router() -> Router<S> {
    Router::new()
        .merge(account::router())
        .merge(catalog::router())
        .merge(books::router())
        .merge(purchases::router())
        .merge(payment::router())
        .merge(delivery::router())
        .merge(admin::router())
        .merge(tokens::router())
        .merge(api::router())
        .merge(assets::router())
        .merge(health::router())
}

/// The browser-side defences every response carries, unless the handler
/// chose its own (a cover sets a sandboxing policy). No page has inline
/// scripts or styles, so `'self'` suffices. Behind HTTPS (the load
/// balancer says so in `X-Forwarded-Proto`) browsers are told to keep to it.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (
            CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "same-origin"),
        (X_FRAME_OPTIONS, "DENY"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if https && !h.contains_key(STRICT_TRANSPORT_SECURITY) {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}
