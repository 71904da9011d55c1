//! Validated values, so handlers never work with raw form strings: each
//! is parsed once, at the edge, into a type that can only hold a valid one.

pub mod cover;
pub mod input;
pub mod purchase;
pub mod scope;

use std::fmt;

use thiserror::Error;

pub use cover::Cover;
pub use purchase::{PurchaseStatus, Reservations};
pub use scope::{Scope, Scopes};

/// A signed-in user, as the session found them.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

/// An email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: Option<&str>) -> Result<Email, Invalid> {
        email(value).map(Email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of money in cents, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

impl Price {
    pub fn parse(value: Option<&str>) -> Result<Price, Invalid> {
        price(value).map(Price)
    }

    /// Cents as stored in the database.
    pub fn from_cents(cents: i64) -> Price {
        Price(cents.max(0))
    }

    pub fn cents(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&money(self.0))
    }
}

/// How many copies one purchase takes: 1 to `Quantity::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 100;

    /// A missing quantity is one copy.
    pub fn parse(value: Option<&str>) -> Result<Quantity, Invalid> {
        count("Quantity", Some(value.unwrap_or("1")), 1, Self::MAX).map(Quantity)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Error, PartialEq)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// Trimmed text of at most `max` characters; `min` 1 means required.
pub fn text(field: &str, value: Option<&str>, min: usize, max: usize) -> Result<String, Invalid> {
    let v = value.unwrap_or("").trim();
    let n = v.chars().count();
    if n < min {
        return Err(invalid(format!("{field} is required.")));
    }
    if n > max {
        return Err(invalid(format!(
            "{field} is too long (at most {max} characters)."
        )));
    }
    Ok(v.to_string())
}

/// The longest address kept (RFC 5321's limit on a path).
pub const EMAIL_MAX: usize = 254;

/// The one form of an address, whatever was typed: trimmed, in Unicode
/// normalisation form NFKC (full-width and compatibility letters become
/// the plain ones), lower-case. Registration, login and `admin grant`
/// all use it; the database then compares exactly.
pub fn normalize_email(typed: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let once: String = typed.trim().nfkc().collect::<String>().to_lowercase();
    once.nfkc().collect()
}

/// The address a login looks up: normalised, or `None` when it cannot be
/// any account's (too long). Addresses with other than ASCII characters
/// are looked up exactly, as stored: accounts made before the rule below
/// keep working, and a lookalike finds only itself.
pub fn login_email(typed: &str) -> Option<String> {
    // Bounded before any work on it: a huge field costs nothing more.
    if typed.len() > 4 * EMAIL_MAX {
        return None;
    }
    let v = normalize_email(typed);
    (!v.is_empty() && v.chars().count() <= EMAIL_MAX).then_some(v)
}

/// A new account's address: normalised ([`normalize_email`]), and ASCII
/// only. Lookalike letters from other scripts (a Cyrillic `а` for a Latin
/// `a`, an `ï` for an `i`) are refused rather than guessed at; a domain
/// with such letters is written in its `xn--` form.
pub fn email(value: Option<&str>) -> Result<String, Invalid> {
    let typed = value.unwrap_or("");
    if typed.len() > 4 * EMAIL_MAX {
        return Err(invalid(format!(
            "Email is too long (at most {EMAIL_MAX} characters)."
        )));
    }
    let v = text("Email", Some(&normalize_email(typed)), 1, EMAIL_MAX)?;
    if !v.is_ascii() {
        return Err(invalid(
            "Email must be written in ASCII letters, digits and signs \
             (a domain name with other letters in its xn-- form).",
        ));
    }
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.contains(|c: char| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !ok {
        return Err(invalid("Email is not a valid address."));
    }
    Ok(v)
}

pub fn password(value: Option<&str>) -> Result<String, Invalid> {
    let v = value.unwrap_or("");
    let n = v.chars().count();
    if n < 8 {
        return Err(invalid("Password must have at least 8 characters."));
    }
    if n > 128 {
        return Err(invalid("Password is too long (at most 128 characters)."));
    }
    Ok(v.to_string())
}

/// A price such as `12`, `12.5` or `12.50`, in cents.
pub fn price(value: Option<&str>) -> Result<i64, Invalid> {
    let v = value.unwrap_or("").trim();
    if v.is_empty() {
        return Err(invalid("Price is required."));
    }
    let bad = || invalid("Price must be a number like 12.50.");
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        if v.starts_with('-') {
            return Err(invalid("Price cannot be negative."));
        }
        return Err(bad());
    }
    if whole.len() > 7 {
        return Err(invalid("Price is too large (at most 1000000)."));
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let cents = whole * 100 + frac;
    if cents > 100_000_000 {
        return Err(invalid("Price is too large (at most 1000000)."));
    }
    Ok(cents)
}

/// A whole number in `min..=max`.
pub fn count(field: &str, value: Option<&str>, min: i64, max: i64) -> Result<i64, Invalid> {
    let v = value.unwrap_or("").trim();
    if v.is_empty() {
        return Err(invalid(format!("{field} is required.")));
    }
    let n: i64 = v
        .parse()
        .map_err(|_| invalid(format!("{field} must be a whole number.")))?;
    if n < min {
        return Err(invalid(if min == 0 {
            format!("{field} cannot be negative.")
        } else {
            format!("{field} must be at least {min}.")
        }));
    }
    if n > max {
        return Err(invalid(format!("{field} must be at most {max}.")));
    }
    Ok(n)
}

/// Cents as `12.50`.
pub fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The kind of an uploaded image, by its first bytes.
pub fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(price(Some("12.5")), Ok(1250));
        assert_eq!(price(Some("12")), Ok(1200));
        assert_eq!(price(Some(" 0.05 ")), Ok(5));
        assert!(price(Some("abc")).is_err());
        assert!(price(Some("-1")).unwrap_err().0.contains("negative"));
        assert!(price(Some("1.234")).is_err());
        assert!(price(Some("")).is_err());
        assert!(price(Some("1e3")).is_err());
        assert_eq!(money(1250), "12.50");
    }

    #[test]
    fn counts_and_text() {
        assert_eq!(count("Stock", Some("3"), 0, 10), Ok(3));
        assert!(count("Stock", Some("-1"), 0, 10)
            .unwrap_err()
            .0
            .contains("negative"));
        assert!(count("Stock", Some("x"), 0, 10).is_err());
        assert!(text("Title", Some(&"x".repeat(201)), 1, 200).is_err());
        assert!(text("Title", Some("  "), 1, 200).is_err());
        assert_eq!(email(Some("A@Example.com")), Ok("a@example.com".into()));
        assert!(email(Some("nope")).is_err());
        assert!(password(Some("short")).is_err());
    }

    #[test]
    fn newtypes_hold_only_valid_values() {
        assert_eq!(
            Email::parse(Some(" A@B.example ")).unwrap().as_str(),
            "a@b.example"
        );
        assert!(Email::parse(Some("a@b")).is_err());
        // One form whatever was typed; lookalikes from other scripts refused.
        assert_eq!(
            Email::parse(Some("\u{FF36}ictim@X.com")).unwrap().as_str(),
            "victim@x.com"
        );
        assert!(Email::parse(Some("v\u{EF}ctim@x.com")).is_err());
        assert!(Email::parse(Some("vi\u{0307}ctim@x.com")).is_err());
        assert!(Email::parse(Some("\u{430}dmin@x.com")).is_err());
        assert_eq!(login_email(" VICTIM@x.com "), Some("victim@x.com".into()));
        assert_eq!(
            login_email("v\u{EF}ctim@x.com"),
            Some("v\u{EF}ctim@x.com".into())
        );
        assert_eq!(
            login_email("vi\u{0308}ctim@x.com"),
            login_email("v\u{EF}ctim@x.com")
        );
        assert_eq!(login_email(&"a".repeat(2000)), None);
        assert_eq!(Price::parse(Some("3.5")).unwrap().cents(), 350);
        assert_eq!(Price::from_cents(1250).to_string(), "12.50");
        assert_eq!(Quantity::parse(None).unwrap().get(), 1);
        assert!(Quantity::parse(Some("0")).is_err());
        assert!(Quantity::parse(Some("101")).is_err());
    }

    #[test]
    fn images_by_content() {
        assert_eq!(image_kind(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(image_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(image_kind(b"GIF89a"), None);
        assert_eq!(image_kind(b"<svg"), None);
    }
}
