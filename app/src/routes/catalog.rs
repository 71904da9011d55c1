//! `/book/catalog`: every book, newest first, or a search by title or
//! author; 20 a page. The JSON API serves the same pages.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::db::books::{self, CatalogPage, COUNT_CAP, MAX_PAGE, PAGE_SIZE};
use crate::error::AppError;
use crate::session::Ctx;
use crate::state::S;
use crate::views::{self, Chrome};

/// The longest search text used (longer ones are cut).
const MAX_TEXT: usize = 100;

pub fn router() -> Router<S> {
    Router::new().route("/book/catalog", get(catalog))
}

/// `?page=N&q=text`; a query that cannot be read is the first page.
#[derive(Deserialize, Default)]
pub struct CatalogQuery {
    pub page: Option<String>,
    pub q: Option<String>,
}

/// One page of the catalog. Without a search text: newest first. With one:
/// the books whose title starts with it (by title), then those whose author
/// does (by author). Every query walks an index in order and stops after
/// the page (or after `COUNT_CAP` books for the total), so its cost does not
/// grow with the size of the catalog.
/// A page number out of 1..=`MAX_PAGE` is `AppError::NotFound`; one that
/// is not a number is the first page.
/// Pages come from `st.catalog` when read less than its maximum age ago.
pub async fn catalog_page(st: &S, q: &CatalogQuery) -> Result<Arc<CatalogPage>, AppError> {
    let page = match q.page.as_deref().map(|p| p.trim().parse::<i64>()) {
        Some(Ok(p)) if (1..=MAX_PAGE).contains(&p) => p,
        Some(Ok(_)) => return Err(AppError::NotFound),
        _ => 1,
    };
    let text = q.q.as_deref().unwrap_or("").trim();
    let text = match text.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let key = (page, text.to_string());
    st.catalog
        .get_or_load(&key, || read_page(st, page, text))
        .await
}

async fn read_page(st: &S, page: i64, text: &str) -> Result<Arc<CatalogPage>, AppError> {
    let offset = (page - 1) * PAGE_SIZE;
    // One row more than a page tells whether there is a next one.
    let want = PAGE_SIZE + 1;
    let (mut rows, counted) = if text.is_empty() {
        books::newest(&st.db, want, offset).await?
    } else {
        books::search(&st.db, &like_prefix(text), want, offset).await?
    };
    let has_next = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok(Arc::new(CatalogPage {
        page,
        text: text.to_string(),
        books: rows,
        total: counted.min(COUNT_CAP),
        total_exact: counted <= COUNT_CAP,
        has_next,
    }))
}

/// A `LIKE` pattern for the texts starting with `text`: `!` escapes the
/// wildcards (it means the same in SQLite and MySQL).
fn like_prefix(text: &str) -> String {
    let mut like = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            like.push('!');
        }
        like.push(c);
    }
    like.push('%');
    like
}

async fn catalog(
    State(st): State<S>,
    mut ctx: Ctx,
    q: Result<Query<CatalogQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let c = catalog_page(&st, &q).await?;
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(views::page(
        &chrome,
        "Catalog",
        views::catalog::body(&chrome, &c),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_literal() {
        assert_eq!(like_prefix("100%_!"), "100!%!_!!%");
        assert_eq!(like_prefix("Dune"), "Dune%");
    }
}
