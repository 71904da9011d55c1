//! Buying a book, and the buyer's list of purchases.
//!
//! A purchase takes its copies with a conditional stock decrement and is
//! recorded in the same transaction, so concurrent buyers never oversell.
//! A book deleted while it is being bought is "not found", never an error.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::db::purchases::{self, Bought, Purchase};
use crate::db::{Backend, Db};
use crate::domain::Quantity;
use crate::error::AppError;
use crate::extract::{CsrfForm, RequireUser};
use crate::session::Ctx;
use crate::state::S;
use crate::views::{self, redirect, Chrome};

pub const NOT_ENOUGH: &str = "Not enough copies left for that quantity.";

/// How many times a purchase is tried again while the database is busy.
pub(crate) const BUSY_RETRIES: u64 = 20;

pub fn router() -> Router<S> {
    Router::new()
        .route("/buy/{book_id}", post(buy))
        .route("/purchases", get(my_purchases))
}

#[derive(Deserialize)]
struct BuyForm {
    quantity: Option<String>,
}

/// An id from the path: anything but a number is a page that does not exist.
pub fn path_id(id: &str) -> Result<i64, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

/// The purchase, if it exists and is `uid`'s: anyone else gets a 404.
pub async fn own_purchase(db: &Db, uid: i64, id: &str) -> Result<Purchase, AppError> {
    let p = purchases::find(db, path_id(id)?)
        .await?
        .ok_or(AppError::NotFound)?;
    if p.user_id != uid {
        return Err(AppError::NotFound);
    }
    Ok(p)
}

/// A write that lost to another one and may simply be tried again: SQLite
/// has one writer at a time, and InnoDB may pick it as a deadlock victim.
pub(crate) fn retryable(db: &Db, e: &sqlx::Error) -> bool {
    match db.backend {
        Backend::Sqlite => e.to_string().contains("locked"),
        Backend::MySql => {
            matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("40001"))
        }
    }
}

async fn buy(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(book_id): Path<String>,
    CsrfForm(f): CsrfForm<BuyForm>,
) -> Result<Response, AppError> {
    let book_id = path_id(&book_id)?;
    let qty = match Quantity::parse(f.quantity.as_deref()) {
        Ok(q) => q,
        Err(e) => {
            ctx.flash(&st, &e.0).await?;
            return Ok(redirect("/book/catalog"));
        }
    };
    let mut attempt = 0;
    let bought = loop {
        match purchases::take_and_record(&st.db, user.id, book_id, qty.get()).await {
            Ok(b) => break b,
            Err(e) if attempt < BUSY_RETRIES && retryable(&st.db, &e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    match bought {
        Bought::Recorded(id) => Ok(redirect(&format!("/payment/{id}"))),
        Bought::NotEnough => {
            ctx.flash(&st, NOT_ENOUGH).await?;
            Ok(redirect("/book/catalog"))
        }
        Bought::Gone => Err(AppError::NotFound),
    }
}

async fn my_purchases(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    let list = purchases::for_user(&st.db, user.id).await?;
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(views::page(
        &chrome,
        "My purchases",
        views::purchases::list(&list),
    ))
}
