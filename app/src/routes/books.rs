//! A seller's books: the list, adding, editing and deleting one, and the
//! covers uploaded with them.
//!
//! Covers are files under `<data dir>/covers`, named at random and never
//! reused. A seller's covers may take `COVER_QUOTA` bytes in all, and at
//! most `AppState::uploads` are accepted per seller per hour. A cover
//! replaced or deleted is removed from disk once the database no longer
//! names it.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::db::books::{self, Book, BookInput, StockChange, StoredCover};
use crate::domain::input::BookFields;
use crate::domain::{self, Cover, Price};
use crate::error::AppError;
use crate::extract::{CsrfForm, CsrfMultipart, RequireUser, Upload};
use crate::session::Ctx;
use crate::state::{AppState, S};
use crate::views::books::{BookForm, Values};
use crate::views::{self, redirect, Chrome};

/// The body the upload forms accept: a cover of up to 2 MB and the fields.
pub const UPLOAD_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The bytes all of a seller's covers may take.
pub const COVER_QUOTA: i64 = 20 * 1024 * 1024;

pub(crate) const QUOTA_FULL: &str =
    "Your covers may take 20 MB in all, and this one does not fit: \
     delete a book or replace a cover with a smaller one first. Nothing was saved.";
pub(crate) const HAS_PURCHASES: &str = "This book has purchases and stays on record (paid \
     ones, or unpaid ones still holding copies); set its stock to 0 to stop selling it.";

pub fn router() -> Router<S> {
    let upload = || DefaultBodyLimit::max(UPLOAD_BODY_LIMIT);
    Router::new()
        .route("/book/my_books", get(my_books))
        .route(
            "/book/add_book",
            get(add_form).merge(post(add).layer(upload())),
        )
        .route(
            "/book/edit_book/{id}",
            get(edit_form).merge(post(edit).layer(upload())),
        )
        .route("/book/delete_book/{id}", post(delete))
}

async fn my_books(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    let list = books::by_seller(&st.db, user.id).await?;
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(views::page(
        &chrome,
        "My books",
        views::books::my_books(&chrome, &list),
    ))
}

/// The form to sell a book, empty or as sent with what is wrong with it.
fn add_page(chrome: &Chrome, values: Values<'_>, error: Option<&str>) -> Response {
    let f = BookForm {
        action: "/book/add_book",
        submit: "Add the book",
        values,
        error,
        cover: None,
    };
    views::page(chrome, "Sell a book", views::books::form(chrome, &f))
}

fn edit_page(chrome: &Chrome, b: &Book, values: Values<'_>, error: Option<&str>) -> Response {
    let action = format!("/book/edit_book/{}", b.id);
    let f = BookForm {
        action: &action,
        submit: "Save",
        values,
        error,
        cover: b.cover.as_deref(),
    };
    views::page(chrome, "Edit book", views::books::form(chrome, &f))
}

async fn add_form(
    State(st): State<S>,
    RequireUser(_): RequireUser,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(add_page(&chrome, Values::default(), None))
}

fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    f.get(k).map(String::as_str)
}

/// The book the form describes, or every problem with it in one sentence.
fn validate(f: &HashMap<String, String>) -> Result<BookInput, String> {
    domain::input::book(BookFields {
        title: field(f, "title"),
        author: field(f, "author"),
        description: field(f, "description"),
        price: field(f, "price"),
        stock: field(f, "stock"),
    })
    .map_err(|e| e.sentence())
}

/// An uploaded image, checked but not yet stored.
pub(crate) struct NewCover {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ext: &'static str,
}

/// The form's image, if it sent one; `Err` says why it is refused.
pub(crate) fn checked_cover(file: Option<Upload>) -> Result<Option<NewCover>, &'static str> {
    match file {
        None => Ok(None),
        Some(Upload::TooLarge) => Err("The cover is larger than 2 MB."),
        Some(Upload::Bytes(bytes)) => match domain::image_kind(&bytes) {
            Some(ext) => Ok(Some(NewCover { bytes, ext })),
            None => Err("The cover must be a JPEG, PNG or WebP image."),
        },
    }
}

/// Whether the seller may store `size` more bytes of covers (`freed`
/// bytes being replaced), and one more upload this hour. `Err` is the
/// sentence to show; an allowed upload counts towards the hourly limit.
pub(crate) async fn admit(
    st: &AppState,
    uid: i64,
    size: i64,
    freed: i64,
) -> Result<Result<(), String>, AppError> {
    if books::cover_bytes_of(&st.db, uid).await? - freed + size > COVER_QUOTA {
        return Ok(Err(QUOTA_FULL.to_string()));
    }
    if let Err(wait) = crate::limit::hit(&st.db, &crate::limit::UPLOADS, &uid.to_string()).await? {
        let minutes = crate::limit::retry_secs(wait).div_ceil(60);
        return Ok(Err(format!(
            "You have uploaded 30 covers in the last hour, the most allowed. \
             Try again in {minutes} minute{}. Nothing was saved.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    Ok(Ok(()))
}

/// Writes a cover under a new name (complete or not at all); the name.
pub(crate) async fn write_cover(st: &AppState, c: &NewCover) -> Result<String, AppError> {
    let name = format!("{}.{}", &crate::session::random_token()[..32], c.ext);
    let dir = st.data_dir.join("covers");
    tokio::fs::create_dir_all(&dir).await?;
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, &c.bytes).await?;
    tokio::fs::rename(&tmp, dir.join(&name)).await?;
    Ok(name)
}

/// Removes a cover no book names any more. A failure leaves a stray
/// file, which is logged, not an error.
pub(crate) async fn remove_cover(st: &AppState, name: &str) {
    let Some(c) = Cover::parse(name) else {
        tracing::warn!(cover = name, "not removing a file that is not a cover");
        return;
    };
    let path = st.data_dir.join("covers").join(c.as_str());
    if let Err(e) = tokio::fs::remove_file(&path).await {
        tracing::warn!(cover = name, error = %e, "removing a cover");
    }
}

async fn add(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    CsrfMultipart { fields, file }: CsrfMultipart,
) -> Result<Response, AppError> {
    let again = |msg: &str| {
        Ok(add_page(
            &Chrome::of(&ctx),
            Values::sent(&fields),
            Some(msg),
        ))
    };
    let b = match validate(&fields) {
        Ok(b) => b,
        Err(msg) => return again(&msg),
    };
    let cover = match checked_cover(file) {
        Ok(c) => c,
        Err(msg) => return again(msg),
    };
    match cover {
        None => books::insert(&st.db.pool(), user.id, &b, None).await?,
        Some(c) => {
            let size = c.bytes.len() as i64;
            if let Err(msg) = admit(&st, user.id, size, 0).await? {
                return again(&msg);
            }
            let name = write_cover(&st, &c).await?;
            let saved = async {
                let (mut tx, used) = books::lock_seller(&st.db, user.id).await?;
                if used + size > COVER_QUOTA {
                    return Ok(false);
                }
                let stored = StoredCover {
                    name: &name,
                    bytes: size,
                };
                books::insert(&mut *tx, user.id, &b, Some(stored)).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await;
            match saved {
                Ok(true) => {}
                Ok(false) => {
                    remove_cover(&st, &name).await;
                    return again(QUOTA_FULL);
                }
                Err(e) => {
                    remove_cover(&st, &name).await;
                    return Err(e.into());
                }
            }
        }
    }
    st.catalog.clear();
    ctx.flash(&st, &format!("“{}” is in the catalog.", b.title))
        .await?;
    Ok(redirect("/book/my_books"))
}

/// The book, if it exists and `uid` sells it.
pub(crate) async fn own_book(st: &AppState, uid: i64, id: &str) -> Result<Book, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let b = books::get(&st.db, id).await?.ok_or(AppError::NotFound)?;
    if b.seller_id != uid {
        return Err(AppError::Forbidden(
            "Only the seller of a book can change or delete it.",
        ));
    }
    Ok(b)
}

async fn edit_form(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let b = own_book(&st, user.id, &id).await?;
    let price = Price::from_cents(b.price_cents).to_string();
    let stock = b.stock.to_string();
    let values = Values {
        title: &b.title,
        author: &b.author,
        description: &b.description,
        price: &price,
        stock: &stock,
        stock_shown: Some(&stock),
    };
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(edit_page(&chrome, &b, values, None))
}

/// What became of an edit with a new cover.
enum Replaced {
    /// Saved; the cover it replaced, if any.
    Saved(Option<String>),
    /// The seller's covers would not fit.
    Full,
    /// The book was deleted meanwhile.
    Gone,
}

async fn edit(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfMultipart { fields, file }: CsrfMultipart,
) -> Result<Response, AppError> {
    let current = own_book(&st, user.id, &id).await?;
    let again = |msg: &str| {
        Ok(edit_page(
            &Chrome::of(&ctx),
            &current,
            Values::sent(&fields),
            Some(msg),
        ))
    };
    let b = match validate(&fields) {
        Ok(b) => b,
        Err(msg) => return again(&msg),
    };
    let cover = match checked_cover(file) {
        Ok(c) => c,
        Err(msg) => return again(msg),
    };
    // Copies sold while the form was open stay sold: the seller's change
    // (new - shown) is applied to the stock as it is now, never below 0.
    // A form without the shown stock sets the number as given.
    let stock = match field(&fields, "stock_shown") {
        None => StockChange::Set(b.stock),
        Some(v) => match domain::input::stock_shown(v) {
            Ok(shown) => StockChange::By(b.stock - shown),
            Err(e) => return again(&e.sentence()),
        },
    };
    let Some(c) = cover else {
        if books::update(&st.db.pool(), current.id, user.id, &b, stock, None).await? > 0 {
            st.catalog.clear();
        }
        ctx.flash(&st, "Saved.").await?;
        return Ok(redirect("/book/my_books"));
    };
    let size = c.bytes.len() as i64;
    if let Err(msg) = admit(&st, user.id, size, current.cover_bytes).await? {
        return again(&msg);
    }
    let name = write_cover(&st, &c).await?;
    let saved = async {
        let (mut tx, used) = books::lock_seller(&st.db, user.id).await?;
        let Some((old, old_bytes)) = books::cover_in(&mut tx, current.id, user.id).await? else {
            tx.rollback().await?;
            return Ok(Replaced::Gone);
        };
        if used - old_bytes + size > COVER_QUOTA {
            tx.rollback().await?;
            return Ok(Replaced::Full);
        }
        let stored = StoredCover {
            name: &name,
            bytes: size,
        };
        books::update(&mut *tx, current.id, user.id, &b, stock, Some(stored)).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Replaced::Saved(old))
    }
    .await;
    match saved {
        Ok(Replaced::Saved(old)) => {
            st.catalog.clear();
            if let Some(old) = old.filter(|o| *o != name) {
                remove_cover(&st, &old).await;
            }
        }
        Ok(Replaced::Full) => {
            remove_cover(&st, &name).await;
            return again(QUOTA_FULL);
        }
        Ok(Replaced::Gone) => {
            remove_cover(&st, &name).await;
            return Err(AppError::NotFound);
        }
        Err(e) => {
            remove_cover(&st, &name).await;
            return Err(e.into());
        }
    }
    ctx.flash(&st, "Saved.").await?;
    Ok(redirect("/book/my_books"))
}

/// Deletes a book without purchases. A purchase may be committed while
/// the book is deleted: the delete is conditional, and a purchase the
/// database still finds (a foreign-key violation) keeps the book.
async fn delete(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let b = own_book(&st, user.id, &id).await?;
    let msg = match delete_unsold(&st, &b).await? {
        true => format!("“{}” was deleted.", b.title),
        false => HAS_PURCHASES.to_string(),
    };
    ctx.flash(&st, &msg).await?;
    Ok(redirect("/book/my_books"))
}

/// Deletes a seller's book unless it has purchases, and its cover with
/// it: `false` when purchases keep it. A book deleted meanwhile (by
/// another request of the seller's) counts as deleted. Reservations of
/// it that ran out no longer keep it; the catalog shows the change.
pub(crate) async fn delete_unsold(st: &AppState, b: &Book) -> Result<bool, AppError> {
    crate::routes::purchases::expire(st, crate::db::reservations::Scope::Book(b.id)).await?;
    let mut attempt = 0;
    let deleted = loop {
        match books::delete_unsold(&st.db, b.id, b.seller_id).await {
            Ok(n) => break n > 0,
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => break false,
            // MariaDB chose this statement as a deadlock's victim.
            Err(sqlx::Error::Database(d))
                if d.code().as_deref() == Some("40001") && attempt < 3 =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    };
    if deleted {
        st.catalog.clear();
        if let Some(c) = &b.cover {
            remove_cover(st, c).await;
        }
        return Ok(true);
    }
    Ok(!books::exists(&st.db, b.id).await?)
}
