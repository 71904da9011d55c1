//! The home page, registration, login and logout.
//!
//! Logins are limited per client address (every attempt) and per email
//! (failures, counted even when the right password follows); registrations
//! per client address. The limits are shared by every instance
//! ([`crate::limit`]). Over a limit the form comes back as 429 with
//! `Retry-After`. Password hashing runs under `AppState::hashing`: when
//! every permit is taken, the request is refused (503) rather than queued.
//!
//! An attempt counts towards its email's failures before the password is
//! checked (a success clears the count), so guesses sent at once cannot
//! all pass. A browser that logged in to the account before carries a
//! signed cookie, and its failures count on a budget of its own: another
//! client's guesses do not lock the owner out of their usual browser.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::db::users::{self, Credentials, Inserted};
use crate::domain;
use crate::error::AppError;
use crate::extract::{ClientAddr, CsrfForm};
use crate::limit::{self, retry_secs};
use crate::password;
use crate::session::{clear_cookie, new_session, session_cookie, Ctx, User};
use crate::state::{AppState, S};
use crate::views::{self, account, redirect, Chrome};

pub const REGISTERED: &str = "Your account is ready. Log in to continue.";
pub const EMAIL_TAKEN: &str = "An account with this email already exists.";
pub const LOGIN_FAILED: &str = "Login failed: wrong email or password.";

pub fn router() -> Router<S> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct RegisterForm {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    email: Option<String>,
    password: Option<String>,
}

/// A form with nothing but its token.
#[derive(Deserialize)]
struct TokenOnly {}

async fn home(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let chrome = Chrome::take(&st, &mut ctx).await?;
    let body = account::home(chrome.user.as_ref());
    Ok(views::page(&chrome, "Welcome", body))
}

async fn register_form(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let cookie = ctx.ensure_form_token(&st);
    let chrome = Chrome::take(&st, &mut ctx).await?;
    let body = account::register_form(&chrome.csrf, "", "", None);
    Ok(views::page_with_cookie(&chrome, "Register", body, cookie))
}

/// `r` answered 429, retry after `wait`.
fn too_many(mut r: Response, wait: Duration) -> Response {
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_secs(wait)));
    r
}

async fn register(
    State(st): State<S>,
    ClientAddr(client): ClientAddr,
    ctx: Ctx,
    CsrfForm(f): CsrfForm<RegisterForm>,
) -> Result<Response, AppError> {
    let name_typed = f.name.as_deref().unwrap_or("");
    let email_typed = f.email.as_deref().unwrap_or("");
    let again = |msg: &str| {
        let chrome = Chrome::of(&ctx);
        let body = account::register_form(&chrome.csrf, name_typed, email_typed, Some(msg));
        views::page(&chrome, "Register", body)
    };
    // Every attempt counts, whatever becomes of it.
    if let Err(wait) = limit::hit(&st.db, &limit::REGISTRATIONS, &client).await? {
        tracing::warn!(%client, "registrations over the client's limit");
        let msg = format!(
            "Too many registrations from your address. Try again in {}.",
            account::wait_text(retry_secs(wait))
        );
        return Ok(too_many(again(&msg), wait));
    }
    let (name, email, pw) = match domain::input::registration(
        f.name.as_deref(),
        f.email.as_deref(),
        f.password.as_deref(),
    ) {
        Ok(v) => v,
        Err(e) => return Ok(again(&e.sentence())),
    };
    let hash = password::limited(&st.hashing, move || password::hash(&pw)).await??;
    match users::insert(&st.db, &name, email.as_str(), &hash).await? {
        Inserted::Created => {
            ctx.flash(&st, REGISTERED).await?;
            Ok(redirect("/login"))
        }
        Inserted::EmailTaken => Ok(again(EMAIL_TAKEN)),
    }
}

async fn login_form(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let cookie = ctx.ensure_form_token(&st);
    let chrome = Chrome::take(&st, &mut ctx).await?;
    let body = account::login_form(&chrome.csrf, "", None);
    Ok(views::page_with_cookie(&chrome, "Log in", body, cookie))
}

/// The login form again, with `email` and the message.
fn login_again(ctx: &Ctx, email: &str, msg: &str) -> Response {
    let chrome = Chrome::of(ctx);
    let body = account::login_form(&chrome.csrf, email, Some(msg));
    views::page(&chrome, "Log in", body)
}

fn login_refused(ctx: &Ctx, email: &str, wait: Duration) -> Response {
    let msg = format!(
        "Too many login attempts. Try again in {}.",
        account::wait_text(retry_secs(wait))
    );
    too_many(login_again(ctx, email, &msg), wait)
}

async fn login(
    State(st): State<S>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ctx: Ctx,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let typed = f.email.as_deref().unwrap_or("");
    let pw = f.password.unwrap_or_default();
    let LoggedIn { user: u, login } = match verify_login(&st, &client, &headers, typed, pw).await? {
        Ok(found) => found,
        Err(LoginRefused::Limited(wait)) => {
            return Ok(login_refused(&ctx, &shown_email(typed), wait))
        }
        Err(LoginRefused::Wrong) => {
            return Ok(login_again(&ctx, &shown_email(typed), LOGIN_FAILED))
        }
    };
    // A new session at login: a planted cookie is worth nothing.
    ctx.end(&st).await?;
    let user = User {
        id: u.id,
        name: u.name,
        email: u.email,
        is_admin: u.is_admin != 0,
    };
    let s = new_session(&st, Some(user)).await?;
    let mut r = redirect("/book/catalog");
    r.headers_mut().append(
        SET_COOKIE,
        session_cookie(s.token.as_deref().unwrap_or(""), ctx.secure),
    );
    r.headers_mut()
        .append(SET_COOKIE, st.secret.device_cookie(&login, ctx.secure));
    Ok(r)
}

/// The address a refused login form shows again: normalised, or nothing
/// when it cannot be any account's.
fn shown_email(typed: &str) -> String {
    domain::login_email(typed).unwrap_or_default()
}

/// Why a login (or a token asked for with a password) was refused.
pub enum LoginRefused {
    /// Over the client's or the email's limit: retry after this.
    Limited(Duration),
    /// A wrong email or password.
    Wrong,
}

/// Who a login found, and the address (normalised) it was made with: the
/// browser's signed cookie names it.
pub struct LoggedIn {
    pub user: Credentials,
    pub login: String,
}

/// Checks an email as typed (normalised here, [`domain::login_email`])
/// and a password under the login limits. Every attempt counts for the
/// client. Failures count for the email (on the browser's own budget when
/// its signed cookie says it logged in to this account before); the
/// attempt counts before the password is checked, so guesses sent at once
/// cannot all pass, and a success clears the count. An email at its limit
/// is refused even with the right password. The site's login and the
/// API's tokens both ask here.
pub async fn verify_login(
    st: &AppState,
    client: &str,
    headers: &HeaderMap,
    typed: &str,
    pw: String,
) -> Result<Result<LoggedIn, LoginRefused>, AppError> {
    if let Err(wait) = limit::hit(&st.db, &limit::LOGIN_ATTEMPTS, client).await? {
        tracing::warn!(%client, "login attempts over the client's limit");
        return Ok(Err(LoginRefused::Limited(wait)));
    }
    let Some(email) = domain::login_email(typed) else {
        // No account has such an address: nothing to count or look up.
        return Ok(Err(LoginRefused::Wrong));
    };
    let (rule, key) = match st.secret.device_of(headers, &email) {
        Some(device) => (limit::KNOWN_DEVICE_FAILURES, format!("{email}\0{device}")),
        None => (limit::LOGIN_FAILURES, email.clone()),
    };
    if let Err(wait) = limit::hit(&st.db, &rule, &key).await? {
        tracing::warn!(%client, bucket = rule.bucket, "failed logins over the email's limit");
        return Ok(Err(LoginRefused::Limited(wait)));
    }
    let found = users::find_by_email(&st.db, &email).await?;
    let stored = found.as_ref().map(|u| u.password.clone());
    let ok = password::limited(&st.hashing, move || {
        password::verify(&pw, stored.as_deref())
    })
    .await?;
    let (true, Some(user)) = (ok, found) else {
        return Ok(Err(LoginRefused::Wrong));
    };
    limit::clear(&st.db, &rule, &key).await?;
    Ok(Ok(LoggedIn { user, login: email }))
}

/// Only by POST with the session's token: a link on another site must not
/// log anyone out.
async fn logout(
    State(st): State<S>,
    ctx: Ctx,
    CsrfForm(_): CsrfForm<TokenOnly>,
) -> Result<Response, AppError> {
    ctx.end(&st).await?;
    let mut r = redirect("/login");
    r.headers_mut().append(SET_COOKIE, clear_cookie(ctx.secure));
    Ok(r)
}
