//! API tokens: making one (shown once, stored as its SHA-256) and the
//! rules it is made under, for the account page and the API alike.

use std::time::Duration;

use crate::db::tokens::{self, Issued};
use crate::domain::input::Invalids;
use crate::domain::{count, text, Scope, Scopes, User};
use crate::error::AppError;
use crate::state::AppState;

/// What every token starts with, so that secret scanners and people
/// recognise one.
pub const PREFIX: &str = "bks_";
/// Live (neither revoked nor expired) tokens a user may have.
pub const MAX_LIVE: i64 = 20;
/// Days a token lasts unless told otherwise, and at most.
pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 365;
/// How stale a token's last-used time may get before a request writes it
/// again: at most one write per token per minute.
pub const TOUCH_EVERY: i64 = 60;

pub const TOO_MANY: &str =
    "You have 20 live tokens, the most allowed: revoke one before making another.";

/// A token as asked for, checked.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub scopes: Scopes,
    pub days: i64,
}

/// Checks a request for a token by `user`: a name, at least one known
/// scope (admin only for administrators), an expiry in days.
pub fn check<'a>(
    user: &User,
    name: Option<&str>,
    scopes: impl IntoIterator<Item = &'a str>,
    days: Option<&str>,
) -> Result<Wanted, Invalids> {
    let mut bad = Invalids::default();
    let name = text("Name", name, 1, 100)
        .map_err(|e| bad.0.push(field("name", e.0)))
        .ok();
    let mut set = Vec::new();
    let mut unknown = false;
    for s in scopes {
        match Scope::parse(s.trim()) {
            Some(s) => set.push(s),
            None => unknown = true,
        }
    }
    let set = Scopes::of(set);
    if unknown {
        bad.0.push(field(
            "scopes",
            "Scopes are read, buy, sell and admin.".into(),
        ));
    } else if set.is_empty() {
        bad.0
            .push(field("scopes", "Choose at least one scope.".into()));
    } else if set.has(Scope::Admin) && !user.is_admin {
        bad.0.push(field(
            "scopes",
            "Only administrators can grant the admin scope.".into(),
        ));
    }
    let days = match days.map(str::trim).filter(|d| !d.is_empty()) {
        None => Some(DEFAULT_DAYS),
        Some(d) => count("Expiry", Some(d), 1, MAX_DAYS)
            .map_err(|e| bad.0.push(field("expires_in_days", e.0)))
            .ok(),
    };
    match (name, days) {
        (Some(name), Some(days)) if bad.0.is_empty() => Ok(Wanted {
            name,
            scopes: set,
            days,
        }),
        _ => Err(bad),
    }
}

fn field(field: &'static str, message: String) -> crate::domain::input::FieldError {
    crate::domain::input::FieldError { field, message }
}

/// A token just made: the only time the token itself is known.
#[derive(Debug, Clone)]
pub struct Made {
    pub id: i64,
    pub token: String,
    pub prefix: String,
    pub expires_at: i64,
}

/// Why no token was made.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The user has `MAX_LIVE` live tokens.
    TooMany,
    /// The user made too many tokens lately: retry after this.
    Throttled(Duration),
}

/// Makes a token for `user`. Counts against the user's hourly limit.
pub async fn issue(
    st: &AppState,
    user: &User,
    w: &Wanted,
) -> Result<Result<Made, Refused>, AppError> {
    let key = user.id.to_string();
    if let Err(wait) = crate::limit::hit(&st.db, &crate::limit::TOKEN_CREATIONS, &key).await? {
        tracing::warn!(user = user.id, "token creations over the user's limit");
        return Ok(Err(Refused::Throttled(wait)));
    }
    let token = format!("{PREFIX}{}", crate::session::random_token());
    let prefix = token[..PREFIX.len() + 8].to_string();
    let expires_at = crate::db::now() + w.days * 24 * 3600;
    let issued = tokens::insert_capped(
        &st.db,
        user.id,
        &w.name,
        &hash(&token),
        &prefix,
        w.scopes,
        expires_at,
        MAX_LIVE,
    )
    .await?;
    Ok(match issued {
        Issued::Created(id) => Ok(Made {
            id,
            token,
            prefix,
            expires_at,
        }),
        Issued::TooMany => Err(Refused::TooMany),
    })
}

/// What the database stores for a token.
pub fn hash(token: &str) -> String {
    crate::session::token_key(token)
}

/// Whether `s` looks like a token at all (before any database lookup).
pub fn well_formed(s: &str) -> bool {
    s.strip_prefix(PREFIX)
        .is_some_and(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(admin: bool) -> User {
        User {
            id: 1,
            name: "A".into(),
            email: "a@example.com".into(),
            is_admin: admin,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let w = check(&user(false), Some("ci"), ["read", "buy"], None).unwrap();
        assert_eq!(w.days, DEFAULT_DAYS);
        assert!(w.scopes.has(Scope::Buy));
        let e = check(&user(false), Some(""), ["admin"], Some("0")).unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field).collect();
        assert_eq!(fields, ["name", "scopes", "expires_in_days"]);
        assert!(check(&user(true), Some("x"), ["admin"], Some("365")).is_ok());
        assert!(check(&user(true), Some("x"), ["root"], None).is_err());
        assert!(check(&user(true), Some("x"), [], None).is_err());
        let t = format!("{PREFIX}{}", crate::session::random_token());
        assert!(well_formed(&t));
        assert!(!well_formed("bks_xyz"));
        assert_ne!(hash(&t), t);
    }
}
