//! The catalog, a book, and the delivery providers: open to anyone.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::fail::{path_id, ErrorBody, Fail};
use super::types::{BookJson, PageJson, ProviderJson, ProvidersJson};
use crate::db::books::{self, MAX_PAGE, PAGE_SIZE};
use crate::db::delivery;
use crate::domain::money;
use crate::error::AppError;
use crate::routes::catalog::{catalog_page, CatalogQuery};
use crate::state::S;

/// One page of the catalog: newest first, or the books whose title (then
/// author) starts with `q`. A page that is not a number is the first.
#[utoipa::path(get, path = "/api/books", tag = "catalog",
    params(
        ("page" = Option<String>, Query, description = "1 to 500 (default 1)"),
        ("q" = Option<String>, Query, description = "the start of a title or an author"),
    ),
    responses(
        (status = 200, body = PageJson),
        (status = 404, description = "a page out of 1..=500", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(st): State<S>,
    q: Result<Query<CatalogQuery>, QueryRejection>,
) -> Result<Response, Fail> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let c = match catalog_page(&st, &q).await {
        Ok(c) => c,
        Err(AppError::NotFound) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Json(ErrorBody {
                    error: "no such page".into(),
                    fields: None,
                    max_page: Some(MAX_PAGE),
                }),
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

#[utoipa::path(get, path = "/api/books/{id}", tag = "catalog",
    params(("id" = i64, Path, description = "the book's id", example = 1)),
    responses(
        (status = 200, body = BookJson),
        (status = 404, description = "no such book", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn one(State(st): State<S>, Path(id): Path<String>) -> Result<Json<BookJson>, Fail> {
    let id = path_id("id", &id)?;
    let b = books::get(&st.db, id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(BookJson::from(&b)))
}

#[utoipa::path(get, path = "/api/delivery-providers", tag = "catalog",
    responses(
        (status = 200, body = ProvidersJson),
        (status = 503, description = "the database is unavailable", body = ErrorBody),
    ))]
pub async fn providers(State(st): State<S>) -> Result<Json<ProvidersJson>, Fail> {
    let list = delivery::providers(&st.db).await?;
    Ok(Json(ProvidersJson {
        providers: list
            .iter()
            .map(|p| ProviderJson {
                id: p.id,
                name: p.name.clone(),
                coverage_area: p.coverage_area.clone(),
                cost: money(p.cost_cents),
                cost_cents: p.cost_cents,
            })
            .collect(),
    }))
}
