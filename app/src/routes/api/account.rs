//! Registering, the caller, API tokens, and the administrators' list of
//! users.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::{Admin, AnyScope, Authed, Read};
use super::body::{JsonBody, Loose};
use super::fail::{path_id, AuthRefusals, BodyRefusals, ErrorBody, Fail};
use super::types::{
    MeJson, NewTokenJson, RegisterJson, TokenJson, TokenRequestJson, TokensJson, UserJson,
    UsersJson,
};
use crate::db::tokens::{self, TokenRow};
use crate::db::users::{self, Inserted};
use crate::domain::input;
use crate::domain::User;
use crate::error::AppError;
use crate::extract::ClientAddr;
use crate::limit;
use crate::password;
use crate::routes::account::{verify_login, LoginRefused, EMAIL_TAKEN, LOGIN_FAILED};
use crate::state::S;
use crate::tokens::Refused;

fn user_json(u: &User) -> UserJson {
    UserJson {
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone(),
        is_admin: u.is_admin,
    }
}

/// Makes an account, as the registration form does (never an admin).
#[utoipa::path(post, path = "/api/register", tag = "account",
    request_body = RegisterJson,
    responses((status = 201, description = "the new account", body = UserJson),
        (status = 409, description = "an account with this email exists", body = ErrorBody),
        (status = 429, description = "too many registrations from this address", body = ErrorBody),
        (status = 503, description = "the database is unavailable, or the shop too busy", body = ErrorBody),
        BodyRefusals))]
pub async fn register(
    State(st): State<S>,
    ClientAddr(client): ClientAddr,
    body: JsonBody<RegisterJson>,
) -> Result<Response, Fail> {
    // Every attempt counts, whatever becomes of it.
    if let Err(wait) = limit::hit(&st.db, &limit::REGISTRATIONS, &client).await? {
        tracing::warn!(%client, "registrations over the client's limit");
        return Err(Fail::TooMany(
            wait,
            "Too many registrations from your address.".into(),
        ));
    }
    let f = &body.value;
    let (name, email, pw) =
        input::registration(f.name.as_deref(), f.email.as_deref(), f.password.as_deref())
            .map_err(Fail::Invalid)?;
    let hash = password::limited(&st.hashing, move || password::hash(&pw)).await??;
    match users::insert(&st.db, &name, email.as_str(), &hash).await? {
        Inserted::Created => {}
        Inserted::EmailTaken => {
            return Err(Fail::field(StatusCode::CONFLICT, "email", EMAIL_TAKEN))
        }
    }
    let u = users::find_by_email(&st.db, email.as_str())
        .await?
        .ok_or(AppError::Internal("a new account vanished".into()))?;
    let json = UserJson {
        id: u.id,
        name: u.name,
        email: u.email,
        is_admin: u.is_admin != 0,
    };
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// Who the credentials are, and what they may do.
#[utoipa::path(get, path = "/api/me", tag = "account",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = MeJson), AuthRefusals))]
pub async fn me(a: Authed<AnyScope>) -> Json<MeJson> {
    Json(MeJson {
        user: user_json(a.user()),
        scopes: a.0.scopes.list().iter().map(|s| s.to_string()).collect(),
        csrf_token: a.0.csrf.clone(),
    })
}

/// Makes an API token with the account's email and password (limited as
/// logins are). The token is in this answer and never again.
#[utoipa::path(post, path = "/api/tokens", tag = "account",
    request_body = TokenRequestJson,
    responses((status = 201, description = "the token, shown this once", body = NewTokenJson),
        (status = 401, description = "a wrong email or password", body = ErrorBody),
        (status = 409, description = "the user has 20 live tokens already", body = ErrorBody),
        (status = 429, description = "too many attempts (as logins), or tokens made this hour", body = ErrorBody),
        (status = 503, description = "the database is unavailable, or the shop too busy", body = ErrorBody),
        BodyRefusals))]
pub async fn create_token(
    State(st): State<S>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: JsonBody<TokenRequestJson>,
) -> Result<Response, Fail> {
    let f = &body.value;
    let typed = f.email.as_deref().unwrap_or("");
    let pw = f.password.clone().unwrap_or_default();
    let u = match verify_login(&st, &client, &headers, typed, pw).await? {
        Ok(found) => found.user,
        Err(LoginRefused::Limited(wait)) => {
            return Err(Fail::TooMany(wait, "Too many login attempts.".into()))
        }
        Err(LoginRefused::Wrong) => return Err(Fail::says(StatusCode::UNAUTHORIZED, LOGIN_FAILED)),
    };
    let user = User {
        id: u.id,
        name: u.name,
        email: u.email,
        is_admin: u.is_admin != 0,
    };
    let scopes: Vec<&str> = f.scopes.iter().flatten().map(|s| s.as_str()).collect();
    let wanted = crate::tokens::check(
        &user,
        f.name.as_deref(),
        scopes,
        Loose::opt(&f.expires_in_days),
    )
    .map_err(Fail::Invalid)?;
    let made = match crate::tokens::issue(&st, &user, &wanted).await? {
        Ok(m) => m,
        Err(Refused::TooMany) => {
            return Err(Fail::says(StatusCode::CONFLICT, crate::tokens::TOO_MANY))
        }
        Err(Refused::Throttled(wait)) => {
            return Err(Fail::TooMany(
                wait,
                "You made 20 tokens in the last hour, the most allowed.".into(),
            ))
        }
    };
    let info = TokenJson::from(&TokenRow {
        id: made.id,
        name: wanted.name,
        prefix: made.prefix,
        scopes: wanted.scopes,
        created_at: crate::db::now(),
        expires_at: made.expires_at,
        last_used_at: None,
    });
    Ok((
        StatusCode::CREATED,
        Json(NewTokenJson {
            token: made.token,
            info,
        }),
    )
        .into_response())
}

/// The caller's tokens that are not revoked (expired ones included).
#[utoipa::path(get, path = "/api/tokens", tag = "account",
    security(("bearer" = ["read"]), ("session" = [])),
    responses((status = 200, body = TokensJson), AuthRefusals))]
pub async fn list_tokens(State(st): State<S>, a: Authed<Read>) -> Result<Json<TokensJson>, Fail> {
    let list = tokens::list(&st.db, a.user().id).await?;
    Ok(Json(TokensJson {
        tokens: list.iter().map(TokenJson::from).collect(),
    }))
}

/// Revokes one of the caller's tokens (any of the caller's credentials
/// may: whoever notices a leak stops it).
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "account",
    params(("id" = i64, Path, example = 1)),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 204, description = "revoked"),
        (status = 404, description = "no such live token of the caller's", body = ErrorBody),
        AuthRefusals))]
pub async fn revoke_token(
    State(st): State<S>,
    a: Authed<AnyScope>,
    Path(id): Path<String>,
) -> Result<StatusCode, Fail> {
    let id = path_id("id", &id)?;
    if !tokens::revoke(&st.db, a.user().id, id).await? {
        return Err(AppError::NotFound.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Every user, oldest first: administrators only.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin",
    security(("bearer" = ["admin"]), ("session" = [])),
    responses((status = 200, body = UsersJson), AuthRefusals))]
pub async fn users(State(st): State<S>, _: Authed<Admin>) -> Result<Json<UsersJson>, Fail> {
    let list = users::list(&st.db).await?;
    Ok(Json(UsersJson {
        users: list
            .iter()
            .map(|u| UserJson {
                id: u.id,
                name: u.name.clone(),
                email: u.email.clone(),
                is_admin: u.is_admin != 0,
            })
            .collect(),
    }))
}
