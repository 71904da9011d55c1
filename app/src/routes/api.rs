//! The JSON API: `/api/books` (the catalog's pages), `/api/books/{id}`
//! and `/api/purchases` (the visitor's). Every answer is JSON, errors
//! included (`{"error": ...}`), also for paths under `/api` that do not
//! exist.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::ALLOW;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::db::books::{self, Book};
use crate::db::books::{MAX_PAGE, PAGE_SIZE};
use crate::db::purchases::{self, Purchase};
use crate::domain::money;
use crate::error::{ApiError, AppError};
use crate::routes::catalog::{catalog_page, CatalogQuery};
use crate::session::Ctx;
use crate::state::S;

pub fn router() -> Router<S> {
    Router::new()
        .route("/api/books", get(api_books).fallback(not_allowed))
        .route("/api/books/{id}", get(api_book).fallback(not_allowed))
        .route("/api/purchases", get(api_purchases).fallback(not_allowed))
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*rest}", any(not_found))
}

async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}

async fn not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(ALLOW, "GET, HEAD")],
        Json(json!({"error": "method not allowed"})),
    )
        .into_response()
}

#[derive(Serialize)]
struct BookJson<'a> {
    id: i64,
    title: &'a str,
    author: &'a str,
    description: &'a str,
    price: String,
    price_cents: i64,
    stock: i64,
    seller_id: i64,
    cover_url: Option<String>,
}

impl<'a> From<&'a Book> for BookJson<'a> {
    fn from(b: &'a Book) -> Self {
        BookJson {
            id: b.id,
            title: &b.title,
            author: &b.author,
            description: &b.description,
            price: money(b.price_cents),
            price_cents: b.price_cents,
            stock: b.stock,
            seller_id: b.seller_id,
            cover_url: b.cover.as_ref().map(|c| format!("/covers/{c}")),
        }
    }
}

#[derive(Serialize)]
struct PageJson<'a> {
    page: i64,
    per_page: i64,
    total: i64,
    total_exact: bool,
    has_next: bool,
    books: Vec<BookJson<'a>>,
}

async fn api_books(
    State(st): State<S>,
    q: Result<Query<CatalogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let c = match catalog_page(&st, &q).await {
        Ok(c) => c,
        Err(AppError::NotFound) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such page", "max_page": MAX_PAGE})),
            )
                .into_response())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(PageJson {
        page: c.page,
        per_page: PAGE_SIZE,
        total: c.total,
        total_exact: c.total_exact,
        has_next: c.has_next,
        books: c.books.iter().map(BookJson::from).collect(),
    })
    .into_response())
}

async fn api_book(State(st): State<S>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let b = books::get(&st.db, id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(BookJson::from(&b)).into_response())
}

#[derive(Serialize)]
struct PurchaseJson<'a> {
    id: i64,
    book_title: &'a str,
    quantity: i64,
    total_price: String,
    total_cents: i64,
    status: &'static str,
    delivery_provider: Option<&'a str>,
}

impl<'a> From<&'a Purchase> for PurchaseJson<'a> {
    fn from(p: &'a Purchase) -> Self {
        PurchaseJson {
            id: p.id,
            book_title: &p.book_title,
            quantity: p.quantity,
            total_price: money(p.total_cents),
            total_cents: p.total_cents,
            status: p.status.code(),
            delivery_provider: p.provider.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct PurchasesJson<'a> {
    purchases: Vec<PurchaseJson<'a>>,
}

/// The visitor's purchases, newest first; 401 without a login. The
/// session is read here, so that its errors are JSON too.
async fn api_purchases(
    State(st): State<S>,
    ctx: Result<Ctx, AppError>,
) -> Result<Response, ApiError> {
    let ctx = ctx?;
    let user = ctx.user().ok_or(AppError::Login)?;
    crate::routes::purchases::expire(&st, crate::db::reservations::Scope::User(user.id)).await?;
    let list = purchases::for_user(&st.db, user.id).await?;
    Ok(Json(PurchasesJson {
        purchases: list.iter().map(PurchaseJson::from).collect(),
    })
    .into_response())
}
