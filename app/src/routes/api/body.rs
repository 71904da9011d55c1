//! Request bodies and headers of the API: JSON read whole, checked
//! against its type with the path of whatever is wrong, and the
//! `Idempotency-Key` header.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::fail::Fail;
use crate::error::AppError;
use crate::state::S;

/// A JSON body of type `T`, and a digest of the request it came in (its
/// method, path and body, keys in any order) for `Idempotency-Key`.
pub struct JsonBody<T> {
    pub value: T,
    pub digest: String,
}

impl<T: DeserializeOwned + Send> FromRequest<S> for JsonBody<T> {
    type Rejection = Fail;

    async fn from_request(req: Request, st: &S) -> Result<Self, Fail> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        let what = format!("{} {}", req.method(), req.uri().path());
        let bytes = Bytes::from_request(req, st).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Fail::App(AppError::TooLarge)
            } else {
                Fail::says(StatusCode::BAD_REQUEST, "The body could not be read.")
            }
        })?;
        if !json {
            return Err(Fail::says(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send a JSON body with Content-Type: application/json.",
            ));
        }
        let raw: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Fail::says(
                StatusCode::BAD_REQUEST,
                format!("The body is not valid JSON: {e}."),
            )
        })?;
        let mut canonical = format!("{what}\n");
        canonical_json(&raw, &mut canonical);
        let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
        let value = serde_path_to_error::deserialize(raw).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.inner().to_string();
            // An unknown field is named by the message, not the path.
            let field = match msg.strip_prefix("unknown field `") {
                Some(rest) => rest.split('`').next().unwrap_or("").to_string(),
                None if path == "." => "body".to_string(),
                None => path,
            };
            Fail::Field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field.clone(),
                format!("{field}: {msg}"),
            )
        })?;
        Ok(JsonBody { value, digest })
    }
}

/// `v` as JSON with every object's keys in order: the same request
/// however its keys were ordered.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A field sent as a string or a number, kept as text so that the site's
/// own checks (and messages) apply to it: `"3"`, `3` and `-1` all reach
/// them, `true` and `[]` do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loose(pub String);

impl Loose {
    pub fn opt(v: &Option<Loose>) -> Option<&str> {
        v.as_ref().map(|l| l.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII
/// characters.
pub struct IdemKey(pub Option<String>);

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl FromRequestParts<S> for IdemKey {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Fail> {
        let Some(v) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(IdemKey(None));
        };
        let ok = (1..=255).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Fail::field(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            ));
        }
        Ok(IdemKey(Some(
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_in_any_order_is_one_request() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a": "s", "b": [1, {"x": 1, "y": 2}]}"#).unwrap();
        let (mut x, mut y) = (String::new(), String::new());
        canonical_json(&a, &mut x);
        canonical_json(&b, &mut y);
        assert_eq!(x, y);
        assert_eq!(x, r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#);
    }
}
