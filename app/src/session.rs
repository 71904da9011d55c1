//! Sessions, stored in the database so that any instance serves any user.
//! Only a login makes one: an anonymous visitor's form token and flash
//! message travel in signed cookies ([`crate::anon`]).
//! The cookie carries a random token; the database holds only its SHA-256,
//! so a copy of the table logs nobody in. A session ends 7 days after it
//! began, or after `AppState::session_idle` without a request.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::anon::{self, Outgoing};
use crate::db::now;
use crate::error::AppError;
use crate::state::{AppState, S};
use crate::views::Chrome;

pub const COOKIE_NAME: &str = "bookstore_session";
/// A session's whole life, however active.
pub const SESSION_SECS: i64 = 7 * 24 * 3600;
/// How stale `seen_at` may get before a request writes it again: one
/// write per session per minute at most, not one per request.
const SEEN_EVERY: i64 = 60;

pub use crate::domain::User;

#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the cookie's token, as stored.
    pub key: String,
    /// The token itself, when this request created the session.
    pub token: Option<String>,
    pub csrf: String,
    pub flash: Option<String>,
    pub user: Option<User>,
}

/// The request's session (if any) and whether it came over HTTPS.
/// Read once per request (cached in its extensions), whichever extractors
/// ask for it.
#[derive(Clone)]
pub struct Ctx {
    pub session: Option<Session>,
    pub secure: bool,
    /// Without a session: the anonymous forms' token, when the visitor
    /// has the cookie it is made from.
    pub anon_csrf: Option<String>,
    /// Without a session: a signed flash message from a cookie.
    pub anon_flash: Option<String>,
    /// Cookies to set on the response, whatever it is.
    pub out: Option<Outgoing>,
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What the database stores for a cookie's token.
pub fn token_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn load(parts: &Parts, state: &S) -> Result<Ctx, AppError> {
    let secure = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let anonymous = || {
        let nonce = anon::cookie_value(&parts.headers, anon::ANON_COOKIE)
            .filter(|n| n.len() == 64 && !n.contains('.'));
        Ctx {
            session: None,
            secure,
            anon_csrf: nonce.map(|n| state.secret.csrf_for(&n)),
            anon_flash: state.secret.flash_of(&parts.headers),
            out: parts.extensions.get::<Outgoing>().cloned(),
        }
    };
    let Some(token) = cookie_value(&parts.headers) else {
        return Ok(anonymous());
    };
    let key = token_key(&token);
    let now = now();
    let idle = state.session_idle.as_secs() as i64;
    let row = sqlx::query(
        "SELECT s.csrf, s.flash, s.user_id, u.name, u.email, u.is_admin, s.seen_at FROM sessions s \
         LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.expires_at > ? AND s.seen_at > ?",
    )
    .bind(&key)
    .bind(now)
    .bind(now - idle)
    .fetch_optional(&state.db.pool())
    .await?;
    let Some(r) = row else {
        return Ok(anonymous());
    };
    let seen: i64 = r.get(6);
    if now - seen >= SEEN_EVERY.min(idle / 2).max(1) {
        sqlx::query("UPDATE sessions SET seen_at = ? WHERE id = ?")
            .bind(now)
            .bind(&key)
            .execute(&state.db.pool())
            .await?;
    }
    let session = Session {
        key,
        token: None,
        csrf: r.get(0),
        flash: r.get(1),
        user: r.get::<Option<i64>, _>(2).map(|uid| User {
            id: uid,
            name: r.get(3),
            email: r.get(4),
            is_admin: r.get::<i64, _>(5) != 0,
        }),
    };
    Ok(Ctx {
        session: Some(session),
        secure,
        anon_csrf: None,
        anon_flash: None,
        out: parts.extensions.get::<Outgoing>().cloned(),
    })
}

impl FromRequestParts<S> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Ctx>() {
            return Ok(c.clone());
        }
        let c = load(parts, state).await?;
        parts.extensions.insert(c.clone());
        Ok(c)
    }
}

impl Ctx {
    pub fn user(&self) -> Option<&User> {
        self.session.as_ref().and_then(|s| s.user.as_ref())
    }

    pub fn require_user(&self) -> Result<&User, AppError> {
        self.user().ok_or(AppError::Login)
    }

    /// The token this visitor's forms carry: the session's, else the
    /// anonymous one (none before the visitor has its cookie).
    pub fn csrf(&self) -> &str {
        match (&self.session, &self.anon_csrf) {
            (Some(s), _) => s.csrf.as_str(),
            (None, Some(t)) => t.as_str(),
            (None, None) => "",
        }
    }

    /// Refuses a state-changing request whose token is not the session's
    /// (compared in constant time).
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), AppError> {
        let want = self.csrf().as_bytes();
        let got = token.unwrap_or("").as_bytes();
        let same = !want.is_empty()
            && want.len() == got.len()
            && want.iter().zip(got).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }

    /// The flash message, removed from the session (or its cookie) once shown.
    pub async fn take_flash(&mut self, st: &AppState) -> Result<Option<String>, AppError> {
        let Some(s) = self.session.as_mut() else {
            let f = self.anon_flash.take();
            if let (Some(_), Some(out)) = (&f, &self.out) {
                out.push(anon::removal(anon::FLASH_COOKIE, self.secure));
            }
            return Ok(f);
        };
        let Some(f) = s.flash.take() else {
            return Ok(None);
        };
        sqlx::query("UPDATE sessions SET flash = NULL WHERE id = ?")
            .bind(&s.key)
            .execute(&st.db.pool())
            .await?;
        Ok(Some(f))
    }

    /// Makes sure the visitor's forms have a token: without a session, an
    /// anonymous one from a new nonce cookie (nothing is stored); returns
    /// the cookie to set when one was made.
    pub fn ensure_form_token(&mut self, st: &AppState) -> Option<HeaderValue> {
        if self.session.is_some() || self.anon_csrf.is_some() {
            return None;
        }
        let nonce = random_token();
        self.anon_csrf = Some(st.secret.csrf_for(&nonce));
        Some(anon::anon_cookie(&nonce, self.secure))
    }

    /// Stores a message for the next page this session sees (without a
    /// session: in a signed cookie).
    pub async fn flash(&self, st: &AppState, msg: &str) -> Result<(), AppError> {
        if self.session.is_none() {
            if let Some(out) = &self.out {
                out.push(st.secret.flash_cookie(msg, self.secure));
            }
        }
        if let Some(s) = &self.session {
            sqlx::query("UPDATE sessions SET flash = ? WHERE id = ?")
                .bind(msg)
                .bind(&s.key)
                .execute(&st.db.pool())
                .await?;
        }
        Ok(())
    }

    /// Ends this session (logout, or a new one at login).
    pub async fn end(&self, st: &AppState) -> Result<(), AppError> {
        if let Some(s) = &self.session {
            sqlx::query("DELETE FROM sessions WHERE id = ?")
                .bind(&s.key)
                .execute(&st.db.pool())
                .await?;
        }
        Ok(())
    }
}

/// A new session; its `token` goes into the cookie.
pub async fn new_session(st: &AppState, user: Option<User>) -> Result<Session, AppError> {
    let token = random_token();
    let s = Session {
        key: token_key(&token),
        token: Some(token),
        csrf: random_token(),
        flash: None,
        user,
    };
    let now = now();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, csrf, flash, expires_at, seen_at) VALUES (?, ?, ?, NULL, ?, ?)",
    )
    .bind(&s.key)
    .bind(s.user.as_ref().map(|u| u.id))
    .bind(&s.csrf)
    .bind(now + SESSION_SECS)
    .bind(now)
    .execute(&st.db.pool())
    .await?;
    Ok(s)
}

/// Removes sessions that are over, by age or by idleness.
pub async fn sweep(st: &AppState) -> Result<u64, AppError> {
    let now = now();
    let n = sqlx::query("DELETE FROM sessions WHERE expires_at < ? OR seen_at < ?")
        .bind(now)
        .bind(now - st.session_idle.as_secs() as i64)
        .execute(&st.db.pool())
        .await?
        .rows_affected();
    Ok(n)
}

pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    let v = format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("ascii cookie")
}

pub fn clear_cookie(secure: bool) -> HeaderValue {
    let v = format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("ascii cookie")
}

/// The layout's chrome comes from the request's session.
impl Chrome {
    /// The chrome for this request, taking (and so removing) its flash.
    pub async fn take(st: &AppState, ctx: &mut Ctx) -> Result<Chrome, AppError> {
        let flash = ctx.take_flash(st).await?;
        Ok(Chrome {
            user: ctx.user().cloned(),
            csrf: ctx.csrf().to_string(),
            flash,
        })
    }

    /// The chrome without touching the flash (a form shown again).
    pub fn of(ctx: &Ctx) -> Chrome {
        Chrome {
            user: ctx.user().cloned(),
            csrf: ctx.csrf().to_string(),
            flash: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_key_is_not_the_token() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        let k = token_key(&t);
        assert_eq!(k.len(), 64);
        assert_ne!(k, t);
        assert_eq!(k, token_key(&t));
    }
}
