//! A seller's books: the list, adding, editing (with the form's
//! stale-edit protection), deleting, and the cover. The same checks,
//! messages and database functions as the site's forms.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::{Authed, Read, Sell};
use super::body::{JsonBody, Loose};
use super::fail::{path_id, AuthRefusals, BodyRefusals, ErrorBody, Fail};
use super::types::{BookInputJson, BookJson, BooksJson, ImageBytes};
use crate::db::books::{self, Book, StockChange, StoredCover};
use crate::db::last_insert_id;
use crate::domain::input::{self, BookFields, BookInput, Invalids};
use crate::error::AppError;
use crate::extract::Upload;
use crate::routes::books::{
    admit, checked_cover, delete_unsold, own_book, remove_cover, write_cover, COVER_QUOTA,
    HAS_PURCHASES, QUOTA_FULL,
};
use crate::state::{AppState, S};

#[utoipa::path(get, path = "/api/my/books", tag = "selling",
    security(("bearer" = ["read"]), ("session" = [])),
    responses((status = 200, description = "the caller's books, newest first", body = BooksJson), AuthRefusals))]
pub async fn mine(State(st): State<S>, a: Authed<Read>) -> Result<Json<BooksJson>, Fail> {
    let list = books::by_seller(&st.db, a.user().id).await?;
    Ok(Json(BooksJson {
        books: list.iter().map(BookJson::from).collect(),
    }))
}

fn checked(b: &BookInputJson) -> Result<BookInput, Fail> {
    input::book(BookFields {
        title: b.title.as_deref(),
        author: b.author.as_deref(),
        description: b.description.as_deref(),
        price: Loose::opt(&b.price),
        stock: Loose::opt(&b.stock),
    })
    .map_err(Fail::Invalid)
}

/// Puts a book in the catalog.
#[utoipa::path(post, path = "/api/books", tag = "selling",
    request_body = BookInputJson,
    security(("bearer" = ["sell"]), ("session" = [], "csrf" = [])),
    responses((status = 201, description = "in the catalog", body = BookJson), AuthRefusals, BodyRefusals))]
pub async fn add(
    State(st): State<S>,
    a: Authed<Sell>,
    body: JsonBody<BookInputJson>,
) -> Result<Response, Fail> {
    if body.value.stock_shown.is_some() {
        return Err(Fail::Invalid(Invalids::one(
            "stock_shown",
            "stock_shown belongs to an edit.",
        )));
    }
    let b = checked(&body.value)?;
    let mut tx = st.db.pool().begin().await?;
    books::insert(&mut *tx, a.user().id, &b, None).await?;
    let id = last_insert_id(st.db.backend, &mut tx).await?;
    tx.commit().await?;
    st.catalog.clear();
    let book = books::get(&st.db, id).await?.ok_or(AppError::NotFound)?;
    Ok((StatusCode::CREATED, Json(BookJson::from(&book))).into_response())
}

/// The caller's book `id`: 404 when there is none, 403 when another
/// seller's.
async fn own(st: &AppState, uid: i64, id: &str) -> Result<Book, Fail> {
    path_id("id", id)?;
    Ok(own_book(st, uid, id).await?)
}

/// Changes a book: every field, as the edit form sends them. With
/// `stock_shown` (the stock the client last saw) the stock changes by
/// `stock - stock_shown` from what it is now, never below 0.
#[utoipa::path(put, path = "/api/books/{id}", tag = "selling",
    params(("id" = i64, Path, example = 1)),
    request_body = BookInputJson,
    security(("bearer" = ["sell"]), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "saved", body = BookJson),
        (status = 404, description = "no such book", body = ErrorBody),
        AuthRefusals, BodyRefusals))]
pub async fn edit(
    State(st): State<S>,
    a: Authed<Sell>,
    Path(id): Path<String>,
    body: JsonBody<BookInputJson>,
) -> Result<Json<BookJson>, Fail> {
    let current = own(&st, a.user().id, &id).await?;
    let b = checked(&body.value)?;
    let stock = match Loose::opt(&body.value.stock_shown) {
        None => StockChange::Set(b.stock),
        Some(v) => StockChange::By(b.stock - input::stock_shown(v).map_err(Fail::Invalid)?),
    };
    let n = books::update(&st.db.pool(), current.id, a.user().id, &b, stock, None).await?;
    st.catalog.clear();
    if n == 0 {
        return Err(AppError::NotFound.into());
    }
    let book = books::get(&st.db, current.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(BookJson::from(&book)))
}

/// Deletes a book that nobody bought (and its cover).
#[utoipa::path(delete, path = "/api/books/{id}", tag = "selling",
    params(("id" = i64, Path, example = 1)),
    security(("bearer" = ["sell"]), ("session" = [], "csrf" = [])),
    responses((status = 204, description = "deleted"),
        (status = 404, description = "no such book", body = ErrorBody),
        (status = 409, description = "the book has purchases and stays on record", body = ErrorBody),
        AuthRefusals))]
pub async fn delete(
    State(st): State<S>,
    a: Authed<Sell>,
    Path(id): Path<String>,
) -> Result<StatusCode, Fail> {
    let b = own(&st, a.user().id, &id).await?;
    let deleted = delete_unsold(&st, &b).await?;
    st.catalog.clear();
    if !deleted {
        return Err(Fail::says(StatusCode::CONFLICT, HAS_PURCHASES));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a book's cover: the image itself is the body (JPEG, PNG or WebP,
/// checked by its content; at most 2 MB). The cover it replaces is removed.
#[utoipa::path(put, path = "/api/books/{id}/cover", tag = "selling",
    params(("id" = i64, Path, example = 1)),
    request_body(content = ImageBytes, content_type = "application/octet-stream",
        description = "the image (any Content-Type: it is checked by content)"),
    security(("bearer" = ["sell"]), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "the book with its new cover", body = BookJson),
        (status = 400, description = "the body could not be read", body = ErrorBody),
        (status = 404, description = "no such book", body = ErrorBody),
        (status = 413, description = "over 2 MB", body = ErrorBody),
        (status = 422, description = "not an image, empty, or the seller's covers would exceed 20 MB", body = ErrorBody),
        AuthRefusals))]
pub async fn cover(
    State(st): State<S>,
    a: Authed<Sell>,
    Path(id): Path<String>,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<BookJson>, Fail> {
    let uid = a.user().id;
    let current = own(&st, uid, &id).await?;
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Fail::field(e.status(), "cover", "The cover is larger than 2 MB.")
        } else {
            Fail::says(StatusCode::BAD_REQUEST, "The body could not be read.")
        }
    })?;
    let refuse = |msg: &str| Fail::Invalid(Invalids::one("cover", msg));
    if bytes.is_empty() {
        return Err(refuse("Send the image as the body."));
    }
    if bytes.len() > crate::extract::MAX_UPLOAD {
        return Err(Fail::field(
            StatusCode::PAYLOAD_TOO_LARGE,
            "cover",
            "The cover is larger than 2 MB.",
        ));
    }
    let c = match checked_cover(Some(Upload::Bytes(bytes.to_vec()))) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(refuse("Send the image as the body.")),
        Err(msg) => return Err(refuse(msg)),
    };
    let size = c.bytes.len() as i64;
    if let Err(msg) = admit(&st, uid, size, current.cover_bytes).await? {
        return Err(if msg == QUOTA_FULL {
            refuse(&msg)
        } else {
            Fail::TooMany(std::time::Duration::from_secs(3600), msg)
        });
    }
    let name = write_cover(&st, &c).await?;
    let saved = async {
        let (mut tx, used) = books::lock_seller(&st.db, uid).await?;
        let Some((old, old_bytes)) = books::cover_in(&mut tx, current.id, uid).await? else {
            tx.rollback().await?;
            return Ok(Err(Fail::App(AppError::NotFound)));
        };
        if used - old_bytes + size > COVER_QUOTA {
            tx.rollback().await?;
            return Ok(Err(refuse(QUOTA_FULL)));
        }
        let stored = StoredCover {
            name: &name,
            bytes: size,
        };
        books::set_cover(&mut tx, current.id, uid, stored).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Ok(old))
    }
    .await;
    st.catalog.clear();
    match saved {
        Ok(Ok(old)) => {
            if let Some(old) = old.filter(|o| *o != name) {
                remove_cover(&st, &old).await;
            }
        }
        Ok(Err(f)) => {
            remove_cover(&st, &name).await;
            return Err(f);
        }
        Err(e) => {
            remove_cover(&st, &name).await;
            return Err(e.into());
        }
    }
    let book = books::get(&st.db, current.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(BookJson::from(&book)))
}
