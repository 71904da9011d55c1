//! `[domain]`: the name the shop answers to, its certificate and DNS record.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::field::{string_newtype, Invalid};

/// A DNS name in lowercase: dot-separated labels of letters, digits and '-'
/// (the first may be `*`), at least two, 253 characters at most.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// Accepts any case and keeps the name in lowercase.
    pub fn parse(s: &str) -> Result<DomainName, Invalid> {
        let s = s.to_ascii_lowercase();
        let ok = s.len() <= 253
            && s.contains('.')
            && s.split('.').enumerate().all(|(i, l)| {
                (!l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                    || (i == 0 && l == "*")
            });
        ok.then_some(DomainName(s))
            .ok_or(Invalid::NotA("a domain name"))
    }

    /// Whether this name is `zone` or a name under it.
    pub fn is_within(&self, zone: &DomainName) -> bool {
        self.0 == zone.0 || self.0.ends_with(&format!(".{}", zone.0))
    }
}

string_newtype!(DomainName);

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub name: DomainName,
    pub alternative_names: Vec<DomainName>,
    /// A Route 53 hosted zone name (e.g. `example.com`) holding the domain.
    pub hosted_zone: Option<DomainName>,
    /// Point the domain at the load balancer (needs `hosted_zone`).
    pub alias: bool,
    pub validation_timeout: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    alternative_names: Vec<Spanned<String>>,
    hosted_zone: Option<Spanned<String>>,
    alias: Option<bool>,
    validation_timeout: Option<Spanned<i64>>,
}

pub(super) fn parse(src: &Source, d: Spanned<RawDomain>) -> Result<Domain, StackError> {
    let span = d.span().start;
    let d = d.into_inner();
    let name = src.parse(&d.name, "domain.name", DomainName::parse)?;
    let alternative_names = d
        .alternative_names
        .iter()
        .map(|a| src.parse(a, "domain.alternative_names", DomainName::parse))
        .collect::<Result<Vec<_>, _>>()?;
    let hosted_zone = match &d.hosted_zone {
        Some(z) => {
            let zone = src.parse(z, "domain.hosted_zone", DomainName::parse)?;
            if !name.is_within(&zone) {
                return Err(src.at_value(
                    z,
                    format!("`domain.hosted_zone` = {zone:?} does not contain {name:?}"),
                ));
            }
            Some(zone)
        }
        None => None,
    };
    let alias = d.alias.unwrap_or(hosted_zone.is_some());
    if alias && hosted_zone.is_none() {
        return Err(src.at(
            span,
            "`domain.alias` needs `domain.hosted_zone`, the zone to write the record in",
        ));
    }
    Ok(Domain {
        name,
        alternative_names,
        hosted_zone,
        alias,
        validation_timeout: src.int(
            &d.validation_timeout,
            "domain.validation_timeout",
            10..=86400,
            1800,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use crate::stack::tests::{err, p};

    #[test]
    fn domain_checks() {
        let s = p(
            "name = \"d\"\n[domain]\nname = \"Shop.Example.com\"\nhosted_zone = \"example.com\"\n",
        )
        .unwrap();
        let d = s.domain.unwrap();
        assert_eq!(d.name, "shop.example.com");
        assert!(d.alias);
        let e = err(
            "name = \"d\"\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"other.org\"\n",
        );
        assert!(
            e.starts_with("stacks/t.toml:4:15:") && e.contains("does not contain"),
            "{e}"
        );
        let e = err("name = \"d\"\n[domain]\nname = \"not a domain\"\n");
        assert!(e.starts_with("stacks/t.toml:3:8:"), "{e}");
        let e = err("name = \"d\"\n[domain]\nname = \"a.example.com\"\nalias = true\n");
        assert!(e.contains("needs `domain.hosted_zone`"), "{e}");
    }
}
