//! Paying for a purchase: once, the purchase's own total, whatever the
//! form says, and only while it holds its copies.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::db::purchases;
use crate::db::reservations::Scope;
use crate::domain::{Price, PurchaseStatus};
use crate::error::AppError;
use crate::extract::{CsrfForm, RequireUser};
use crate::routes::purchases::{expire, own_purchase};
use crate::session::Ctx;
use crate::state::S;
use crate::views::purchases::PAYMENT_METHODS;
use crate::views::{self, redirect, Chrome};

pub fn router() -> Router<S> {
    Router::new().route("/payment/{purchase_id}", get(payment_form).post(pay))
}

#[derive(Deserialize)]
struct PayForm {
    payment_method: Option<String>,
}

async fn payment_form(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let p = own_purchase(&st.db, user.id, &id).await?;
    expire(&st, Scope::Purchase(p.id)).await?;
    let p = own_purchase(&st.db, user.id, &id).await?;
    match p.status {
        PurchaseStatus::PendingPayment => {}
        PurchaseStatus::Paid | PurchaseStatus::Shipping => {
            return Ok(redirect(&format!("/delivery/{}", p.id)))
        }
        PurchaseStatus::Expired | PurchaseStatus::Cancelled => return Ok(redirect("/purchases")),
    }
    let chrome = Chrome::take(&st, &mut ctx).await?;
    let body = views::purchases::payment(&chrome.csrf, &p, crate::db::now());
    Ok(views::page(&chrome, "Payment", body))
}

async fn pay(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<PayForm>,
) -> Result<Response, AppError> {
    let p = own_purchase(&st.db, user.id, &id).await?;
    // One of the offered methods; anything else is the first of them.
    let method = PAYMENT_METHODS
        .iter()
        .map(|(value, _)| *value)
        .find(|value| f.payment_method.as_deref() == Some(*value))
        .unwrap_or(PAYMENT_METHODS[0].0);
    match p.status {
        PurchaseStatus::PendingPayment => {}
        PurchaseStatus::Paid | PurchaseStatus::Shipping => {
            return Ok(redirect(&format!("/delivery/{}", p.id)))
        }
        PurchaseStatus::Expired | PurchaseStatus::Cancelled => {
            ctx.flash(&st, &not_paid(&p)).await?;
            return Ok(redirect("/purchases"));
        }
    }
    let paid = crate::db::retrying(&st.db, || {
        purchases::pay(&st.db, p.id, p.total_cents, method)
    })
    .await?;
    if paid {
        let paid = Price::from_cents(p.total_cents);
        ctx.flash(
            &st,
            &format!("Paid {paid}. Now choose how it is delivered."),
        )
        .await?;
        return Ok(redirect(&format!("/delivery/{}", p.id)));
    }
    // Not paid: its time ran out (it expires now, if nothing else ended
    // it first), or it was paid, cancelled or expired meanwhile.
    expire(&st, Scope::Purchase(p.id)).await?;
    let now = own_purchase(&st.db, user.id, &id).await?;
    if matches!(now.status, PurchaseStatus::Paid | PurchaseStatus::Shipping) {
        return Ok(redirect(&format!("/delivery/{}", p.id)));
    }
    ctx.flash(&st, &not_paid(&now)).await?;
    Ok(redirect("/purchases"))
}

/// Why a purchase that has ended cannot be paid.
fn not_paid(p: &purchases::Purchase) -> String {
    let why = match p.status {
        PurchaseStatus::Cancelled => "was cancelled",
        _ => "was not paid in time and has expired",
    };
    format!(
        "Your purchase of “{}” {why}; nothing was charged. Its copies are back in the catalog.",
        p.book_title
    )
}
