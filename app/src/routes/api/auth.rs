//! Who calls the API, and what they may do.
//!
//! `Authorization: Bearer <token>` authenticates with an API token; the
//! request's cookies are then ignored. Without that header the site's
//! session cookie is used, and a write (anything but GET, HEAD, OPTIONS)
//! must carry the session's CSRF token in `X-CSRF-Token`, as the forms
//! carry it in their body: a cross-site page can make a browser send the
//! cookie, never the token. A session may do everything its user may.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;

use super::fail::Fail;
use crate::db::tokens;
use crate::domain::{Scope, Scopes, User};
use crate::extract::ClientAddr;
use crate::limit;
use crate::session::Ctx;
use crate::state::S;

/// The header a cookie-authenticated write carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub scopes: Scopes,
    /// The token's id, when a token authenticated the request.
    pub token_id: Option<i64>,
    /// The session's CSRF token, when the cookie authenticated it.
    pub csrf: Option<String>,
}

/// The scope a route needs.
pub trait Need {
    const SCOPE: Option<Scope>;
}

/// Any authenticated caller.
pub struct AnyScope;
pub struct Read;
pub struct Buy;
pub struct Sell;
pub struct Admin;

impl Need for AnyScope {
    const SCOPE: Option<Scope> = None;
}
impl Need for Read {
    const SCOPE: Option<Scope> = Some(Scope::Read);
}
impl Need for Buy {
    const SCOPE: Option<Scope> = Some(Scope::Buy);
}
impl Need for Sell {
    const SCOPE: Option<Scope> = Some(Scope::Sell);
}
impl Need for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}

/// A caller allowed `N`'s scope; anyone else is refused (401, 403, 429).
pub struct Authed<N>(pub Caller, PhantomData<N>);

impl<N> Authed<N> {
    pub fn user(&self) -> &User {
        &self.0.user
    }
}

impl<N: Need> FromRequestParts<S> for Authed<N> {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, Fail> {
        let caller = match parts.extensions.get::<Caller>() {
            Some(c) => c.clone(),
            None => {
                let c = authenticate(parts, st).await?;
                parts.extensions.insert(c.clone());
                c
            }
        };
        if let Some(s) = N::SCOPE {
            if !caller.scopes.has(s) {
                return Err(if s == Scope::Admin && !caller.user.is_admin {
                    Fail::App(crate::error::AppError::Forbidden(
                        "Only administrators can see this page.",
                    ))
                } else {
                    Fail::Scope(s)
                });
            }
        }
        Ok(Authed(caller, PhantomData))
    }
}

/// Everything a user may do: a session's scopes.
fn all_of(user: &User) -> Scopes {
    let all = Scopes::of(Scope::ALL);
    if user.is_admin {
        all
    } else {
        all.without(Scope::Admin)
    }
}

async fn authenticate(parts: &mut Parts, st: &S) -> Result<Caller, Fail> {
    let Some(auth) = parts.headers.get(AUTHORIZATION).cloned() else {
        return by_cookie(parts, st).await;
    };
    let ClientAddr(client) = ClientAddr::from_request_parts(parts, st).await?;
    if let Err(wait) = limit::check(&st.db, &limit::BEARER_FAILURES, &client).await? {
        tracing::warn!(%client, "bad API tokens over the client's limit");
        return Err(Fail::TooMany(
            wait,
            "Too many requests with a wrong token from your address; try again later.".into(),
        ));
    }
    let token = auth
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| crate::tokens::well_formed(t));
    let found = match token {
        Some(t) => tokens::find_live(&st.db, &crate::tokens::hash(t)).await?,
        None => None,
    };
    let Some(p) = found else {
        // Counted once it failed (a good token writes nothing here); over
        // the limit, the next request is refused before any lookup.
        let _over = limit::hit(&st.db, &limit::BEARER_FAILURES, &client).await?;
        return Err(Fail::BadToken);
    };
    let now = crate::db::now();
    if p.last_used_at
        .is_none_or(|t| now - t >= crate::tokens::TOUCH_EVERY)
    {
        tokens::touch(&st.db, p.id).await?;
    }
    Ok(Caller {
        user: p.user,
        scopes: p.scopes,
        token_id: Some(p.id),
        csrf: None,
    })
}

async fn by_cookie(parts: &mut Parts, st: &S) -> Result<Caller, Fail> {
    let ctx = Ctx::from_request_parts(parts, st).await?;
    let user = ctx.user().cloned().ok_or(Fail::NoCredentials)?;
    let reads = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        ctx.check_csrf(sent).map_err(|_| Fail::Csrf)?;
    }
    Ok(Caller {
        scopes: all_of(&user),
        user,
        token_id: None,
        csrf: Some(ctx.csrf().to_string()),
    })
}
