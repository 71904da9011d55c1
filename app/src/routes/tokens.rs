//! `/account/tokens`: a user's API tokens, as a code host lists personal
//! access tokens. A new token is shown on the page that made it, once;
//! the database keeps only its SHA-256.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::db::tokens;
use crate::domain::{Scope, User};
use crate::error::AppError;
use crate::extract::{CsrfForm, RequireUser};
use crate::routes::purchases::path_id;
use crate::session::Ctx;
use crate::state::{AppState, S};
use crate::tokens::Refused;
use crate::views::tokens::TokenPage;
use crate::views::{self, redirect, Chrome};

pub fn router() -> Router<S> {
    Router::new()
        .route("/account/tokens", get(list).post(create))
        .route("/account/tokens/{id}/revoke", post(revoke))
}

async fn render(
    st: &AppState,
    chrome: &Chrome,
    user: &User,
    made: Option<&str>,
    error: Option<&str>,
    name: &str,
) -> Result<Response, AppError> {
    let list = tokens::list(&st.db, user.id).await?;
    let body = views::tokens::page(&TokenPage {
        csrf: &chrome.csrf,
        tokens: &list,
        now: crate::db::now(),
        admin: user.is_admin,
        made,
        error,
        name,
    });
    Ok(views::page(chrome, "API tokens", body))
}

async fn list(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    let chrome = Chrome::take(&st, &mut ctx).await?;
    render(&st, &chrome, &user, None, None, "").await
}

async fn create(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    CsrfForm(f): CsrfForm<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let chrome = Chrome::of(&ctx);
    let name = f.get("name").map(String::as_str).unwrap_or("");
    let scopes = Scope::ALL
        .into_iter()
        .filter(|s| f.contains_key(&format!("scope_{s}")))
        .map(Scope::as_str);
    let days = f.get("expires_in_days").map(String::as_str);
    let wanted = match crate::tokens::check(&user, Some(name), scopes, days) {
        Ok(w) => w,
        Err(e) => return render(&st, &chrome, &user, None, Some(&e.sentence()), name).await,
    };
    match crate::tokens::issue(&st, &user, &wanted).await? {
        Ok(made) => render(&st, &chrome, &user, Some(&made.token), None, "").await,
        Err(Refused::TooMany) => {
            render(
                &st,
                &chrome,
                &user,
                None,
                Some(crate::tokens::TOO_MANY),
                name,
            )
            .await
        }
        Err(Refused::Throttled(wait)) => {
            let msg = "You made 20 tokens in the last hour, the most allowed. Try again later.";
            let mut r = render(&st, &chrome, &user, None, Some(msg), name).await?;
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(crate::limit::retry_secs(wait)),
            );
            Ok(r)
        }
    }
}

async fn revoke(
    State(st): State<S>,
    RequireUser(user): RequireUser,
    ctx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    if !tokens::revoke(&st.db, user.id, id).await? {
        return Err(AppError::NotFound);
    }
    ctx.flash(&st, "The token is revoked.").await?;
    Ok(redirect("/account/tokens"))
}
