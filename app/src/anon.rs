//! What a visitor carries in cookies instead of rows in the database:
//! the token of an anonymous form, a message for the next page, and the
//! mark of a browser that logged in to an account before. Each is signed
//! with a key every instance shares ([`Secret`], kept in the database),
//! so an instance checks what another one issued, and nobody can make
//! one up.
//!
//! - An anonymous form's CSRF token is the signature of a random nonce
//!   kept in the `bookstore_anon` cookie (double submit: a site that
//!   cannot read the cookie cannot send the token, and one that plants a
//!   cookie cannot sign it). `GET /login` writes nothing anywhere.
//! - A flash message is the message and its signature, shown once.
//! - A known browser is a nonce signed with the account's email; its
//!   failed logins count on a budget of its own.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::{Backend, Db};

pub const ANON_COOKIE: &str = "bookstore_anon";
pub const FLASH_COOKIE: &str = "bookstore_flash";
pub const DEVICE_COOKIE: &str = "bookstore_device";

/// How long an anonymous form's token lasts.
const ANON_SECS: i64 = 24 * 3600;
/// How long an unshown flash message waits.
const FLASH_SECS: i64 = 300;
/// How long a browser is remembered as having logged in.
const DEVICE_SECS: i64 = 365 * 24 * 3600;

/// The key signing what visitors carry. Never printed: no `Debug`.
pub struct Secret([u8; 32]);

type HmacSha256 = Hmac<Sha256>;

impl Secret {
    /// The shared key: made by the first instance that asks (a random
    /// one, inserted unless a row is there), then read by all.
    pub async fn load(db: &Db) -> Result<Secret, sqlx::Error> {
        let sql = match db.backend {
            Backend::Sqlite => {
                "INSERT INTO app_secrets (name, value) VALUES ('signing', ?) \
                 ON CONFLICT (name) DO NOTHING"
            }
            Backend::MySql => {
                "INSERT INTO app_secrets (name, value) VALUES ('signing', ?) \
                 ON DUPLICATE KEY UPDATE name = name"
            }
        };
        sqlx::query(sql)
            .bind(random_hex())
            .execute(&db.pool())
            .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM app_secrets WHERE name = 'signing'")
                .fetch_one(&db.pool())
                .await?;
        let bytes = hex::decode(stored.trim()).unwrap_or_default();
        let mut key = [0u8; 32];
        if bytes.len() == 32 {
            key.copy_from_slice(&bytes);
        } else {
            // A value not written by the app: its digest is the key.
            use sha2::Digest;
            key.copy_from_slice(&Sha256::digest(stored.as_bytes()));
        }
        Ok(Secret(key))
    }

    /// A key for tests.
    pub fn from_bytes(key: [u8; 32]) -> Secret {
        Secret(key)
    }

    fn mac(&self, purpose: &str, parts: &[&str]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("any key length");
        m.update(purpose.as_bytes());
        for p in parts {
            m.update(&[0]);
            m.update(p.as_bytes());
        }
        m
    }

    fn sign(&self, purpose: &str, parts: &[&str]) -> String {
        hex::encode(self.mac(purpose, parts).finalize().into_bytes())
    }

    /// Whether `sig` (hex) is the signature of `parts`, compared in
    /// constant time.
    fn signed(&self, purpose: &str, parts: &[&str], sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) => self.mac(purpose, parts).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    /// The CSRF token of anonymous forms for the cookie's nonce.
    pub fn csrf_for(&self, nonce: &str) -> String {
        self.sign("csrf", &[nonce])
    }

    /// A cookie carrying `msg` to the next page.
    pub fn flash_cookie(&self, msg: &str, secure: bool) -> HeaderValue {
        let body = hex::encode(msg.as_bytes());
        let sig = self.sign("flash", &[&body]);
        cookie(FLASH_COOKIE, &format!("{body}.{sig}"), FLASH_SECS, secure)
    }

    /// The message of a flash cookie, if its signature holds.
    pub fn flash_of(&self, headers: &HeaderMap) -> Option<String> {
        let v = cookie_value(headers, FLASH_COOKIE)?;
        let (body, sig) = v.split_once('.')?;
        if !self.signed("flash", &[body], sig) {
            return None;
        }
        String::from_utf8(hex::decode(body).ok()?).ok()
    }

    /// A cookie saying this browser logged in to `email`.
    pub fn device_cookie(&self, email: &str, secure: bool) -> HeaderValue {
        let nonce = random_hex();
        let sig = self.sign("device", &[email, &nonce]);
        cookie(
            DEVICE_COOKIE,
            &format!("{nonce}.{sig}"),
            DEVICE_SECS,
            secure,
        )
    }

    /// The browser's own nonce when it logged in to `email` before.
    pub fn device_of(&self, headers: &HeaderMap, email: &str) -> Option<String> {
        let v = cookie_value(headers, DEVICE_COOKIE)?;
        let (nonce, sig) = v.split_once('.')?;
        self.signed("device", &[email, nonce], sig)
            .then(|| nonce.to_string())
    }
}

/// 32 random bytes, in hex.
pub fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// An anonymous form's nonce cookie, new.
pub fn anon_cookie(nonce: &str, secure: bool) -> HeaderValue {
    cookie(ANON_COOKIE, nonce, ANON_SECS, secure)
}

/// Removes a cookie.
pub fn removal(name: &str, secure: bool) -> HeaderValue {
    cookie(name, "", 0, secure)
}

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("ascii cookie")
}

/// The value of the first cookie called `name`, if short and plain.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() <= 4096 && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'))
}

/// Cookies a request's handler asked to set, whatever response it gives
/// (a flash stored, a flash shown): set by [`cookies_out`].
#[derive(Clone, Default)]
pub struct Outgoing(Arc<Mutex<Vec<HeaderValue>>>);

impl Outgoing {
    pub fn push(&self, c: HeaderValue) {
        self.0.lock().unwrap().push(c);
    }
}

/// Gives each request an [`Outgoing`] and sets its cookies on the response.
pub async fn cookies_out(mut req: Request, next: Next) -> Response {
    let out = Outgoing::default();
    req.extensions_mut().insert(out.clone());
    let mut res = next.run(req).await;
    let cookies = std::mem::take(&mut *out.0.lock().unwrap());
    for c in cookies {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &HeaderValue) -> HeaderMap {
        let pair = cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
        h
    }

    #[test]
    fn signed_values_hold_only_with_the_key() {
        let s = Secret::from_bytes([7; 32]);
        let other = Secret::from_bytes([8; 32]);
        let nonce = "ab".repeat(32);
        assert_eq!(s.csrf_for(&nonce), s.csrf_for(&nonce));
        assert_ne!(s.csrf_for(&nonce), other.csrf_for(&nonce));
        let f = s.flash_cookie("Your account is ready.", false);
        assert_eq!(
            s.flash_of(&headers(&f)).as_deref(),
            Some("Your account is ready.")
        );
        assert_eq!(other.flash_of(&headers(&f)), None);
        let forged = HeaderValue::from_str(&format!(
            "{FLASH_COOKIE}={}.{}",
            hex::encode("Pay here"),
            "00".repeat(32)
        ))
        .unwrap();
        assert_eq!(s.flash_of(&headers(&forged)), None);
        let d = s.device_cookie("a@example.com", true);
        assert!(d.to_str().unwrap().ends_with("; Secure"));
        assert!(s.device_of(&headers(&d), "a@example.com").is_some());
        assert!(s.device_of(&headers(&d), "b@example.com").is_none());
    }
}
