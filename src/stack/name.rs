//! The stack's name and region: at the top level, or under `[stack]`.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::field::{string_newtype, Invalid};

/// A stack's name: 1 to 32 lowercase letters, digits or '-', starting with
/// a letter. It names and tags every resource the stack owns, so it also
/// obeys what AWS asks of the names made from it: RDS identifiers
/// (`<name>-db`) "can't end with a hyphen or contain two consecutive
/// hyphens" (CreateDBInstance, `DBInstanceIdentifier`); S3 reserves the
/// bucket name prefixes `xn--`, `sthree-` and `amzn-s3-demo-` ("General
/// purpose bucket naming rules"), and ELB load balancer names must not
/// begin with `internal-` (CreateLoadBalancer, `Name`). Every name made
/// from it is checked in full later, against the rules of the value it
/// becomes (`topology::check`); these stay here for their early, specific
/// messages.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackName(String);

impl StackName {
    pub fn parse(s: &str) -> Result<StackName, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(Invalid::Rule(
                "use 1 to 32 lowercase letters, digits or '-', starting with a letter",
            ));
        }
        if s.ends_with('-') || s.contains("--") {
            return Err(Invalid::Rule(
                "end with a letter or digit and hold no '--': the database is named `<name>-db`, and RDS identifiers allow neither",
            ));
        }
        let reserved = ["internal", "sthree", "amzn-s3-demo"];
        if reserved
            .iter()
            .any(|r| s == *r || s.starts_with(&format!("{r}-")))
        {
            return Err(Invalid::Rule(
                "do not start with `internal`, `sthree` or `amzn-s3-demo`: AWS reserves them in load balancer and bucket names",
            ));
        }
        Ok(StackName(s.to_string()))
    }
}

string_newtype!(StackName);

/// `[stack]`: the other place `name` and `region` may be given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStack {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

/// The name, from the top level or `[stack]` but not both, and the region:
/// the one beside the name if given, else the other.
pub(super) fn name_and_region(
    src: &Source,
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    stack: Option<RawStack>,
) -> Result<(StackName, Option<String>), StackError> {
    let (name, region) = match (name, stack) {
        (Some(_), Some(RawStack { name: Some(n), .. })) => {
            return Err(src.at_value(
                &n,
                "`name` is given both at the top level and under [stack]; keep one",
            ))
        }
        (Some(n), s) => (n, region.or(s.and_then(|s| s.region))),
        (None, Some(s)) => match s.name {
            Some(n) => (n, s.region.or(region)),
            None => {
                return Err(src.at(
                    0,
                    "the stack has no `name` (top level or under [stack])",
                ))
            }
        },
        (None, None) => {
            return Err(src.at(
                0,
                "the stack has no `name` (top level or under [stack]); it tags every resource the stack owns",
            ))
        }
    };
    let name = src.parse(&name, "name", StackName::parse)?;
    let region = match region {
        Some(r) if r.get_ref().is_empty() => {
            return Err(src.at_value(&r, "`region` must not be empty"))
        }
        r => r.map(Spanned::into_inner),
    };
    Ok((name, region))
}
