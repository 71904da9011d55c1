//! What an API token may do.

use std::fmt;

use serde::Deserialize;
use utoipa::ToSchema;

/// One permission of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read the caller's own things: purchases, books, tokens, account.
    Read,
    /// Buy, pay and choose delivery.
    Buy,
    /// Add, change and delete the caller's books and their covers.
    Sell,
    /// The administrators' pages; granted to administrators only.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Buy, Scope::Sell, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Buy => "buy",
            Scope::Sell => "sell",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, stored as their names separated by spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    fn bit(s: Scope) -> u8 {
        1 << (s as u8)
    }

    pub fn of(list: impl IntoIterator<Item = Scope>) -> Scopes {
        Scopes(list.into_iter().fold(0, |a, s| a | Self::bit(s)))
    }

    pub fn has(self, s: Scope) -> bool {
        self.0 & Self::bit(s) != 0
    }

    pub fn without(self, s: Scope) -> Scopes {
        Scopes(self.0 & !Self::bit(s))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn list(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }

    /// As stored; unknown names are ignored when read back.
    pub fn stored(self) -> String {
        self.list()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn parse_stored(s: &str) -> Scopes {
        Scopes::of(s.split_whitespace().filter_map(Scope::parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        let s = Scopes::of([Scope::Sell, Scope::Read]);
        assert_eq!(s.stored(), "read sell");
        assert_eq!(Scopes::parse_stored("read sell bogus"), s);
        assert!(s.has(Scope::Read) && !s.has(Scope::Buy));
        assert!(!s.without(Scope::Read).has(Scope::Read));
        assert!(Scopes::default().is_empty());
    }
}
