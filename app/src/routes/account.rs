//! The home page, registration, login and logout.
//!
//! Logins are limited per client address (every attempt) and per email
//! (failures, counted even when the right password follows); registrations
//! per client address. Over a limit the form comes back as 429 with
//! `Retry-After`. Password hashing runs under `AppState::hashing`: when
//! every permit is taken, the request is refused (503) rather than queued.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::db::users::{self, Credentials, Inserted};
use crate::domain;
use crate::error::AppError;
use crate::extract::{ClientAddr, CsrfForm};
use crate::limit::retry_secs;
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
    let cookie = ctx.ensure_session(&st).await?;
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
    if let Err(wait) = st.registrations.hit(&client, Instant::now()) {
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
    let cookie = ctx.ensure_session(&st).await?;
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
    ctx: Ctx,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let email = f.email.as_deref().unwrap_or("").trim().to_lowercase();
    let pw = f.password.unwrap_or_default();
    let u = match verify_login(&st, &client, &email, pw).await? {
        Ok(u) => u,
        Err(LoginRefused::Limited(wait)) => return Ok(login_refused(&ctx, &email, wait)),
        Err(LoginRefused::Wrong) => return Ok(login_again(&ctx, &email, LOGIN_FAILED)),
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
    Ok(r)
}

/// Why a login (or a token asked for with a password) was refused.
pub enum LoginRefused {
    /// Over the client's or the email's limit: retry after this.
    Limited(Duration),
    /// A wrong email or password.
    Wrong,
}

/// Checks an email (trimmed, lower-cased) and password under the login
/// limits: every attempt counts for the client; failures count for the
/// email, and an email at its limit is refused even with the right
/// password. The site's login and the API's tokens both ask here.
pub async fn verify_login(
    st: &AppState,
    client: &str,
    email: &str,
    pw: String,
) -> Result<Result<Credentials, LoginRefused>, AppError> {
    let now = Instant::now();
    if let Err(wait) = st.login_attempts.hit(client, now) {
        tracing::warn!(%client, "login attempts over the client's limit");
        return Ok(Err(LoginRefused::Limited(wait)));
    }
    if let Err(wait) = st.login_failures.check(email, now) {
        tracing::warn!(%client, "failed logins over the email's limit");
        return Ok(Err(LoginRefused::Limited(wait)));
    }
    let found = users::find_by_email(&st.db, email).await?;
    let stored = found.as_ref().map(|u| u.password.clone());
    let ok = password::limited(&st.hashing, move || {
        password::verify(&pw, stored.as_deref())
    })
    .await?;
    let (true, Some(u)) = (ok, found) else {
        st.login_failures.record(email, Instant::now());
        return Ok(Err(LoginRefused::Wrong));
    };
    st.login_failures.clear(email);
    Ok(Ok(u))
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
