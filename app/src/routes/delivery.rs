//! Choosing how a paid purchase is delivered: once; the first choice stays.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::db::delivery;
use crate::domain::PurchaseStatus;
use crate::error::AppError;
use crate::extract::{CsrfForm, RequireUser};
use crate::routes::purchases::own_purchase;
use crate::session::Ctx;
use crate::state::S;
use crate::views::{self, redirect, Chrome};

pub fn router() -> Router<S> {
    Router::new().route(
        "/delivery/{purchase_id}",
        get(delivery_form).post(choose_delivery),
    )
}

#[derive(Deserialize)]
struct DeliveryForm {
    provider_id: Option<String>,
}

async fn delivery_form(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let p = own_purchase(&st.db, user.id, &id).await?;
    match p.status {
        PurchaseStatus::PendingPayment => return Ok(redirect(&format!("/payment/{}", p.id))),
        PurchaseStatus::Expired | PurchaseStatus::Cancelled => return Ok(redirect("/purchases")),
        PurchaseStatus::Paid | PurchaseStatus::Shipping => {}
    }
    let body = match &p.provider {
        Some(provider) => views::purchases::shipping(&p, provider),
        None => {
            let providers = delivery::providers(&st.db).await?;
            views::purchases::choose_provider(ctx.csrf(), &p, &providers)
        }
    };
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(views::page(&chrome, "Delivery", body))
}

async fn choose_delivery(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DeliveryForm>,
) -> Result<Response, AppError> {
    let p = own_purchase(&st.db, user.id, &id).await?;
    match p.status {
        PurchaseStatus::PendingPayment => {
            ctx.flash(&st, "Pay for the purchase first.").await?;
            return Ok(redirect(&format!("/payment/{}", p.id)));
        }
        PurchaseStatus::Expired | PurchaseStatus::Cancelled => return Ok(redirect("/purchases")),
        PurchaseStatus::Paid | PurchaseStatus::Shipping => {}
    }
    let chosen = match f.provider_id.as_deref().map(str::parse::<i64>) {
        Some(Ok(pid)) => delivery::provider(&st.db, pid).await?,
        _ => None,
    };
    let Some(provider) = chosen else {
        ctx.flash(&st, "Choose one of the delivery providers.")
            .await?;
        return Ok(redirect(&format!("/delivery/{}", p.id)));
    };
    if p.provider.is_none() && delivery::assign(&st.db, p.id, provider.id).await? {
        ctx.flash(
            &st,
            &format!("“{}” ships with {}.", p.book_title, provider.name),
        )
        .await?;
    }
    Ok(redirect("/purchases"))
}
