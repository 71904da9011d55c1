//! Reading one value of the stack file: a whole number in a range, a string
//! of some shape, a newtype's `parse`; each refusal located at the value.

use std::ops::RangeInclusive;

use serde_spanned::Spanned;

use super::error::{Source, StackError};

/// Why a string is refused: the end of a sentence that begins with the key
/// and the value as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// `` `key` = "value": <rule> ``
    Rule(&'static str),
    /// `` `key` = "value" is not <what> ``
    NotA(&'static str),
}

impl Invalid {
    /// The whole message about `key` = `value`.
    pub fn message(self, key: &str, value: &str) -> String {
        match self {
            Invalid::Rule(rule) => format!("`{key}` = {value:?}: {rule}"),
            Invalid::NotA(what) => format!("`{key}` = {value:?} is not {what}"),
        }
    }
}

/// An identifier AWS gives or accepts (an AMI id, an instance type or
/// class): 1 to 64 letters, digits, '.', '-' or '_'.
pub(super) fn aws_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Source<'_> {
    /// `value` through `parse`; a refusal names `key` and is located at the value.
    pub(super) fn parse<T>(
        &self,
        value: &Spanned<String>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Result<T, StackError> {
        parse(value.get_ref())
            .map_err(|why| self.at_value(value, why.message(key, value.get_ref())))
    }

    /// An optional string through `parse`, or `default` (one `parse`
    /// accepts) when the key is not given.
    pub(super) fn parse_or<T>(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
        default: &str,
    ) -> Result<T, StackError> {
        match value {
            Some(v) => self.parse(v, key, parse),
            None => Ok(parse(default).expect("the default is valid")),
        }
    }

    /// An optional string `ok` accepts (`rule` says which when it does
    /// not), or `default`.
    pub(super) fn text(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        ok: impl Fn(&str) -> bool,
        rule: &'static str,
        default: &str,
    ) -> Result<String, StackError> {
        let parse = |s: &str| ok(s).then(|| s.to_string()).ok_or(Invalid::Rule(rule));
        self.parse_or(value, key, parse, default)
    }

    /// An optional whole number within `range`, or `default`.
    pub(super) fn int(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Result<u32, StackError> {
        match value {
            Some(x) if !range.contains(x.get_ref()) => Err(self.at_value(
                x,
                format!(
                    "`{key}` = {}: must be between {} and {}",
                    x.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
            Some(x) => Ok(*x.get_ref() as u32),
            None => Ok(default as u32),
        }
    }
}

/// The read-only string API of a newtype over a checked `String`: callers
/// read it as a `&str` (`as_str`, `Deref`), compare it with strings, and
/// print, debug-print and serialize it as the string it wraps.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self.0.as_str(), f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.0.as_str(), f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}
pub(super) use string_newtype;
