//! Buying, paying, cancelling and choosing delivery, and the buyer's
//! purchases: the same database functions and rules as the site's forms.
//! An unpaid purchase holds its copies until `reserved_until`, then
//! expires; a buyer holds a bounded number of them
//! ([`crate::db::reservations`]). Reservations that ran out are expired
//! before a purchase is shown, bought or paid, as the forms do.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::json;

use super::auth::{Authed, Buy, Read};
use super::body::{IdemKey, JsonBody, Loose};
use super::fail::{path_id, AuthRefusals, BodyRefusals, ErrorBody, Fail};
use super::once::{once, Outcome};
use super::types::{BuyJson, DeliveryJson, PayJson, PurchaseJson, PurchasesJson};
use crate::db::delivery;
use crate::db::purchases::{self, Bought, Purchase};
use crate::db::reservations::{self, Scope};
use crate::domain::input::Invalids;
use crate::domain::{PurchaseStatus, Quantity};
use crate::error::AppError;
use crate::routes::purchases::{expire, NOT_ENOUGH};
use crate::state::{AppState, S};

#[utoipa::path(get, path = "/api/purchases", tag = "buying",
    security(("bearer" = ["read"]), ("session" = [])),
    responses((status = 200, description = "the caller's purchases, newest first", body = PurchasesJson), AuthRefusals))]
pub async fn list(State(st): State<S>, a: Authed<Read>) -> Result<Json<PurchasesJson>, Fail> {
    expire(&st, Scope::User(a.user().id)).await?;
    let list = purchases::for_user(&st.db, a.user().id).await?;
    Ok(Json(PurchasesJson {
        purchases: list.iter().map(PurchaseJson::from).collect(),
    }))
}

/// The caller's purchase `id`: anyone else's is "not found". Its
/// reservation expires first if it ran out.
async fn own(st: &AppState, uid: i64, id: &str) -> Result<Purchase, Fail> {
    let id = path_id("id", id)?;
    expire(st, Scope::Purchase(id)).await?;
    let p = purchases::find(&st.db, id).await?;
    p.filter(|p| p.user_id == uid)
        .ok_or(Fail::App(AppError::NotFound))
}

#[utoipa::path(get, path = "/api/purchases/{id}", tag = "buying",
    params(("id" = i64, Path, example = 1)),
    security(("bearer" = ["read"]), ("session" = [])),
    responses((status = 200, body = PurchaseJson),
        (status = 404, description = "no such purchase of the caller's", body = ErrorBody),
        AuthRefusals))]
pub async fn one(
    State(st): State<S>,
    a: Authed<Read>,
    Path(id): Path<String>,
) -> Result<Json<PurchaseJson>, Fail> {
    Ok(Json(PurchaseJson::from(&own(&st, a.user().id, &id).await?)))
}

/// Buys `quantity` copies of a book: the stock is taken and the purchase
/// recorded at the book's price, in one transaction. The purchase holds
/// its copies until its `reserved_until`; pay before then. A buyer's
/// unpaid purchases are limited in number and in copies together.
#[utoipa::path(post, path = "/api/purchases", tag = "buying",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "retrying with the same key and body answers the first answer again; another body: 409")),
    request_body = BuyJson,
    security(("bearer" = ["buy"]), ("session" = [], "csrf" = [])),
    responses((status = 201, description = "bought; pay next", body = PurchaseJson),
        (status = 400, description = "a malformed Idempotency-Key, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "no such book", body = ErrorBody),
        (status = 409, description = "not enough copies; the caller's unpaid purchases are as many as allowed, or would hold more copies than allowed (pay or cancel one first); or the Idempotency-Key was used with another request", body = ErrorBody),
        AuthRefusals, BodyRefusals))]
pub async fn buy(
    State(st): State<S>,
    a: Authed<Buy>,
    key: IdemKey,
    body: JsonBody<BuyJson>,
) -> Result<Response, Fail> {
    let b = &body.value;
    let mut bad = Invalids::default();
    let book_id = match Loose::opt(&b.book_id).map(|v| v.trim().parse::<i64>()) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            bad.0.push(field("book_id", "Book must be a whole number."));
            None
        }
        None => {
            bad.0.push(field("book_id", "Book is required."));
            None
        }
    };
    let qty = match Quantity::parse(Loose::opt(&b.quantity)) {
        Ok(q) => Some(q),
        Err(e) => {
            bad.0.push(field("quantity", &e.0));
            None
        }
    };
    let (Some(book_id), Some(qty)) = (book_id, qty) else {
        return Err(Fail::Invalid(bad));
    };
    let uid = a.user().id;
    // Reservations of this book and of this buyer that ran out give their
    // copies back first.
    expire(&st, Scope::Book(book_id)).await?;
    expire(&st, Scope::User(uid)).await?;
    let backend = st.db.backend;
    let limits = st.reservations;
    let r = once(&st, uid, &key, &body.digest, |tx| {
        Box::pin(async move {
            let bought =
                purchases::take_and_record_in(tx, backend, uid, book_id, qty.get(), limits).await?;
            Ok(match bought {
                Bought::Recorded(id) => match purchases::find_in(tx, id).await? {
                    Some(p) => Outcome::Done(StatusCode::CREATED, json!(PurchaseJson::from(&p))),
                    None => {
                        Outcome::Refused(AppError::Internal("a purchase vanished".into()).into())
                    }
                },
                Bought::NotEnough => {
                    Outcome::Refused(Fail::field(StatusCode::CONFLICT, "quantity", NOT_ENOUGH))
                }
                Bought::Gone => Outcome::Refused(Fail::field(
                    StatusCode::NOT_FOUND,
                    "book_id",
                    "There is no such book.",
                )),
                Bought::TooManyPurchases => Outcome::Refused(Fail::says(
                    StatusCode::CONFLICT,
                    format!(
                        "You have {} unpaid purchases, the most allowed: pay for one or \
                         cancel it before buying more.",
                        limits.max_purchases
                    ),
                )),
                Bought::TooManyCopies => Outcome::Refused(Fail::field(
                    StatusCode::CONFLICT,
                    "quantity",
                    format!(
                        "Your unpaid purchases may hold {} copies in all, and this one does \
                         not fit: pay for one or cancel it, or buy fewer copies.",
                        limits.max_copies
                    ),
                )),
            })
        })
    })
    .await?;
    // The stock shown changed (a replayed answer changes nothing, and
    // clearing once more costs only a reread).
    st.catalog.clear();
    Ok(r)
}

fn field(field: &'static str, msg: &str) -> crate::domain::input::FieldError {
    crate::domain::input::FieldError {
        field,
        message: msg.to_string(),
    }
}

/// Pays for a purchase waiting for payment: its own total, once, and only
/// while it holds its copies (the database compares `reserved_until`, so
/// a purchase is paid or expires, never both).
#[utoipa::path(post, path = "/api/purchases/{id}/payment", tag = "buying",
    params(("id" = i64, Path, example = 1),
        ("Idempotency-Key" = Option<String>, Header,
        description = "retrying with the same key and body answers the first answer again; another body: 409")),
    request_body = PayJson,
    security(("bearer" = ["buy"]), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "paid; choose delivery next", body = PurchaseJson),
        (status = 400, description = "a malformed Idempotency-Key, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "no such purchase of the caller's", body = ErrorBody),
        (status = 409, description = "not waiting for payment (already paid, cancelled, or expired: not paid in time), or the Idempotency-Key was used with another request", body = ErrorBody),
        AuthRefusals, BodyRefusals))]
pub async fn pay(
    State(st): State<S>,
    a: Authed<Buy>,
    key: IdemKey,
    Path(id): Path<String>,
    body: JsonBody<PayJson>,
) -> Result<Response, Fail> {
    let uid = a.user().id;
    let p = own(&st, uid, &id).await?;
    let method = body.value.payment_method.unwrap_or_default().as_str();
    let (pid, total) = (p.id, p.total_cents);
    let r = once(&st, uid, &key, &body.digest, |tx| {
        Box::pin(async move {
            if !purchases::pay_in(tx, pid, total, method).await? {
                let now = purchases::find_in(tx, pid).await?;
                let msg = not_payable(now.map(|p| p.status));
                return Ok(Outcome::Refused(Fail::says(StatusCode::CONFLICT, msg)));
            }
            Ok(match purchases::find_in(tx, pid).await? {
                Some(p) => Outcome::Done(StatusCode::OK, json!(PurchaseJson::from(&p))),
                None => Outcome::Refused(AppError::Internal("a purchase vanished".into()).into()),
            })
        })
    })
    .await;
    if r.is_err() {
        // Its time may have run out just now: its copies go back.
        expire(&st, Scope::Purchase(pid)).await?;
    }
    r
}

/// Why a purchase could not be paid, by what it is now.
fn not_payable(now: Option<PurchaseStatus>) -> &'static str {
    match now {
        Some(PurchaseStatus::Paid | PurchaseStatus::Shipping) => {
            "This purchase is not waiting for payment: it is paid already."
        }
        Some(PurchaseStatus::Cancelled) => {
            "This purchase was cancelled; nothing was charged. Its copies are back in the catalog."
        }
        // Expired, or its time ran out and it expires now.
        _ => {
            "This purchase was not paid in time and has expired; nothing was charged. \
             Its copies are back in the catalog."
        }
    }
}

/// Cancels an unpaid purchase: its copies go back on sale.
#[utoipa::path(post, path = "/api/purchases/{id}/cancel", tag = "buying",
    params(("id" = i64, Path, example = 1)),
    security(("bearer" = ["buy"]), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "cancelled", body = PurchaseJson),
        (status = 404, description = "no such purchase of the caller's", body = ErrorBody),
        (status = 409, description = "not waiting for payment (paid, expired or cancelled already)", body = ErrorBody),
        AuthRefusals))]
pub async fn cancel(
    State(st): State<S>,
    a: Authed<Buy>,
    Path(id): Path<String>,
) -> Result<Json<PurchaseJson>, Fail> {
    let uid = a.user().id;
    let p = own(&st, uid, &id).await?;
    if !reservations::cancel(&st.db, p.id, uid).await? {
        let msg = match p.status {
            PurchaseStatus::Cancelled => "This purchase is cancelled already.",
            PurchaseStatus::Expired => {
                "This purchase was not paid in time and has expired already."
            }
            // Paid (perhaps just now, by another request).
            _ => "This purchase is not waiting for payment: it is paid already.",
        };
        return Err(Fail::says(StatusCode::CONFLICT, msg));
    }
    st.catalog.clear();
    let p = purchases::find(&st.db, p.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(PurchaseJson::from(&p)))
}

/// Chooses who delivers a paid purchase; the first choice stays.
#[utoipa::path(post, path = "/api/purchases/{id}/delivery", tag = "buying",
    params(("id" = i64, Path, example = 1)),
    request_body = DeliveryJson,
    security(("bearer" = ["buy"]), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "shipping with the provider", body = PurchaseJson),
        (status = 404, description = "no such purchase of the caller's", body = ErrorBody),
        (status = 409, description = "not paid yet, ended unpaid (expired or cancelled), or a provider was chosen already", body = ErrorBody),
        AuthRefusals, BodyRefusals))]
pub async fn deliver(
    State(st): State<S>,
    a: Authed<Buy>,
    Path(id): Path<String>,
    body: JsonBody<DeliveryJson>,
) -> Result<Json<PurchaseJson>, Fail> {
    let p = own(&st, a.user().id, &id).await?;
    match p.status {
        PurchaseStatus::PendingPayment => {
            return Err(Fail::says(
                StatusCode::CONFLICT,
                "Pay for the purchase first.",
            ))
        }
        PurchaseStatus::Expired | PurchaseStatus::Cancelled => {
            return Err(Fail::says(
                StatusCode::CONFLICT,
                "This purchase ended unpaid; nothing is delivered.",
            ))
        }
        PurchaseStatus::Paid | PurchaseStatus::Shipping => {}
    }
    let chosen = match Loose::opt(&body.value.provider_id).map(|v| v.trim().parse::<i64>()) {
        Some(Ok(pid)) => delivery::provider(&st.db, pid).await?,
        _ => None,
    };
    let Some(provider) = chosen else {
        return Err(Fail::Invalid(Invalids::one(
            "provider_id",
            "Choose one of the delivery providers.",
        )));
    };
    if p.provider.is_some() || !delivery::assign(&st.db, p.id, provider.id).await? {
        // Chosen first by another request, or no longer paid and waiting.
        let now = purchases::find(&st.db, p.id).await?;
        let msg = if now.is_some_and(|n| n.provider.is_some()) {
            "The delivery of this purchase is chosen already; the first choice stays."
        } else {
            "This purchase is not waiting for its delivery to be chosen."
        };
        return Err(Fail::says(StatusCode::CONFLICT, msg));
    }
    let p = purchases::find(&st.db, p.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(PurchaseJson::from(&p)))
}
