//! The JSON API: the whole shop for programs. Every answer is JSON,
//! errors included (`{"error": ..., "fields": {...}}`), also for paths
//! under `/api` that do not exist. The OpenAPI 3.1 document at
//! `/api/openapi.json` is generated from these handlers and their types,
//! so it cannot drift from them.
//!
//! - [`auth`]: bearer tokens, or the session's cookie with `X-CSRF-Token`
//!   for writes; scopes.
//! - [`body`]: JSON bodies, the `Idempotency-Key` header; [`once`]: doing
//!   a purchase or a payment once per key; [`fail`]: the errors.
//! - [`catalog`], [`selling`], [`buying`], [`account`]: the routes;
//!   [`types`]: what they read and answer.

pub mod account;
pub mod auth;
pub mod body;
pub mod buying;
pub mod catalog;
pub mod fail;
pub mod once;
pub mod selling;
pub mod types;

use std::sync::{Arc, LazyLock};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, AppError};
use crate::state::S;

/// The largest cover body accepted (a cover is at most 2 MB; a little
/// more is read so that "too large" can be told apart).
pub const COVER_BODY_LIMIT: usize = crate::extract::MAX_UPLOAD + 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bookstore API",
        description = "The bookstore's catalog, selling, buying, payment and delivery for programs. \
            Authenticate with `Authorization: Bearer <token>` (tokens come from `POST /api/tokens` \
            or the account's token page), or with the site's session cookie, in which case every \
            write must carry the session's CSRF token in `X-CSRF-Token` (see `GET /api/me`). \
            Errors are `{\"error\": \"...\", \"fields\": {\"field\": \"...\"}}`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "catalog", description = "books and delivery providers, open to anyone"),
        (name = "selling", description = "a seller's books (scope `sell`; `read` to list)"),
        (name = "buying", description = "purchases, payment, delivery (scope `buy`; `read` to list)"),
        (name = "account", description = "registering, the caller, API tokens"),
        (name = "admin", description = "administrators only (scope `admin`)"),
    ),
    components(schemas(fail::ErrorBody)),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`bks_...`). Its scopes (read, buy, sell, admin) are \
                         listed as each operation's roles.",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session::COOKIE_NAME,
                "The site's session cookie; every write must also send the session's CSRF \
                 token in the X-CSRF-Token header.",
            ))),
        );
        c.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "With the session's cookie, every write carries the session's CSRF token \
                 (`csrf_token` in `GET /api/me`); without it the write is refused (403).",
            ))),
        );
    }
}

fn api() -> OpenApiRouter<S> {
    let cover = OpenApiRouter::new()
        .routes(routes!(selling::cover))
        .layer(DefaultBodyLimit::max(COVER_BODY_LIMIT));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(catalog::list, selling::add))
        .routes(routes!(catalog::one, selling::edit, selling::delete))
        .routes(routes!(catalog::providers))
        .routes(routes!(selling::mine))
        .routes(routes!(buying::list, buying::buy))
        .routes(routes!(buying::one))
        .routes(routes!(buying::pay))
        .routes(routes!(buying::cancel))
        .routes(routes!(buying::deliver))
        .routes(routes!(account::register))
        .routes(routes!(account::me))
        .routes(routes!(account::create_token, account::list_tokens))
        .routes(routes!(account::revoke_token))
        .routes(routes!(account::users))
        .merge(cover)
}

/// The document, made once.
static DOC: LazyLock<Arc<String>> = LazyLock::new(|| {
    let (_, doc) = api().split_for_parts();
    Arc::new(
        doc.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    )
});

/// The OpenAPI 3.1 document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn router() -> Router<S> {
    let (routes, _) = api().split_for_parts();
    routes
        .route(
            "/api/openapi.json",
            get(|| async {
                (
                    [(CONTENT_TYPE, "application/json")],
                    DOC.as_str().to_owned(),
                )
            }),
        )
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .layer(from_fn(json_errors))
}

async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

/// An error answered by axum itself (a method not allowed, a path it
/// cannot read, a body over the limit) is plain text: under `/api` it
/// becomes JSON like every other error, keeping its status and headers.
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let msg = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge.public().2.to_string(),
        s => s
            .canonical_reason()
            .unwrap_or("the request cannot be served")
            .to_lowercase(),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let body = Json(fail::ErrorBody {
        error: msg,
        fields: None,
        max_page: None,
    });
    let mut out = (status, body).into_response();
    for (k, v) in parts.headers.iter() {
        if !out.headers().contains_key(k) {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Reached without credentials.
    const OPEN: &[(&str, &str)] = &[
        ("get", "/api/books"),
        ("get", "/api/books/{id}"),
        ("get", "/api/delivery-providers"),
        ("post", "/api/register"),
        ("post", "/api/tokens"),
    ];

    #[test]
    fn every_operation_documents_its_credentials_and_json_errors() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let what = format!("{method} {path}");
                let responses = op["responses"].as_object().unwrap();
                let open = OPEN.contains(&(method.as_str(), path.as_str()));
                assert_eq!(op.get("security").is_none(), open, "{what}");
                if !open {
                    for s in ["401", "403", "429", "503"] {
                        assert!(responses.contains_key(s), "{what}: {s}");
                    }
                }
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &r["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema,
                            &Value::from("#/components/schemas/ErrorBody"),
                            "{what} {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(operations, 20);
    }
}
