//! Buying a book, the buyer's list of purchases, and cancelling one.
//!
//! A purchase takes its copies with a conditional stock decrement and is
//! recorded in the same transaction, so concurrent buyers never oversell.
//! A book deleted while it is being bought is "not found", never an error.
//! An unpaid purchase holds its copies for a while
//! ([`crate::db::reservations`]); a buyer holds a bounded number of them.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::db::purchases::{self, Bought, Purchase};
use crate::db::reservations::{self, Scope};
use crate::db::retrying;
use crate::db::Db;
use crate::domain::Quantity;
use crate::error::AppError;
use crate::extract::{CsrfForm, RequireUser};
use crate::session::Ctx;
use crate::state::{AppState, S};
use crate::views::{self, redirect, Chrome};

pub const NOT_ENOUGH: &str = "Not enough copies left for that quantity.";

pub fn router() -> Router<S> {
    Router::new()
        .route("/buy/{book_id}", post(buy))
        .route("/purchases", get(my_purchases))
        .route("/purchases/{id}/cancel", post(cancel))
}

/// Nothing but the token.
#[derive(Deserialize)]
struct TokenOnly {}

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
    // Reservations of this book and of this buyer that ran out give
    // their copies back first.
    expire(&st, Scope::Book(book_id)).await?;
    expire(&st, Scope::User(user.id)).await?;
    let limits = st.reservations;
    let bought = retrying(&st.db, || {
        purchases::take_and_record(&st.db, user.id, book_id, qty.get(), limits)
    })
    .await?;
    let refused = match bought {
        Bought::Recorded(id) => {
            st.catalog.clear();
            return Ok(redirect(&format!("/payment/{id}")));
        }
        Bought::Gone => return Err(AppError::NotFound),
        Bought::NotEnough => NOT_ENOUGH.to_string(),
        Bought::TooManyPurchases => format!(
            "You have {} unpaid purchases, the most allowed: pay for one or cancel it \
             (in My purchases) before buying more.",
            limits.max_purchases
        ),
        Bought::TooManyCopies => format!(
            "Your unpaid purchases may hold {} copies in all, and this one does not fit: \
             pay for one or cancel it (in My purchases), or buy fewer copies.",
            limits.max_copies
        ),
    };
    ctx.flash(&st, &refused).await?;
    Ok(redirect("/book/catalog"))
}

/// Expires the reservations of `scope` that ran out; the catalog shows
/// their copies again.
pub async fn expire(st: &AppState, scope: Scope) -> Result<(), AppError> {
    if reservations::expire_due(&st.db, st.reservations.hold, scope).await? > 0 {
        st.catalog.clear();
    }
    Ok(())
}

/// The buyer cancels an unpaid purchase: its copies go back on sale.
async fn cancel(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<TokenOnly>,
) -> Result<Response, AppError> {
    let p = own_purchase(&st.db, user.id, &id).await?;
    let msg = if reservations::cancel(&st.db, p.id, user.id).await? {
        st.catalog.clear();
        format!("Your purchase of “{}” is cancelled.", p.book_title)
    } else {
        // Paid, expired or cancelled meanwhile: the list says which.
        format!("Your purchase of “{}” was no longer unpaid.", p.book_title)
    };
    ctx.flash(&st, &msg).await?;
    Ok(redirect("/purchases"))
}

async fn my_purchases(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    expire(&st, Scope::User(user.id)).await?;
    let list = purchases::for_user(&st.db, user.id).await?;
    let chrome = Chrome::take(&st, &mut ctx).await?;
    let body = views::purchases::list(&chrome.csrf, &list, crate::db::now());
    Ok(views::page(&chrome, "My purchases", body))
}
