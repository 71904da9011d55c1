//! Stack files: TOML, typed, validated, defaults filled, before any API call.
//!
//! Every error names `file:line:column` and the key it is about.

use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde_spanned::Spanned;
use thiserror::Error;

/// A stack file error, located in the file.
#[derive(Debug, Error)]
pub struct StackError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// How private subnets reach the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nat {
    /// No NAT gateway: private subnets have no route out.
    None,
    /// One NAT gateway, in the first zone, shared by every private subnet.
    Single,
    /// One NAT gateway per zone: a zone outage does not cut the others off.
    PerAz,
}

/// A validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub name: String,
    pub region: Option<String>,
    pub network: Network,
    pub app: App,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub cidr: Ipv4Net,
    /// Explicit zone names, or `None` to take the first `az_count` the region offers.
    pub zones: Option<Vec<String>>,
    pub az_count: usize,
    pub nat: Nat,
    /// One per zone, in zone order.
    pub public_subnets: Vec<Ipv4Net>,
    pub private_subnets: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub port: u16,
}

// ---- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    stack: Option<RawStack>,
    #[serde(default)]
    network: Option<Spanned<RawNetwork>>,
    #[serde(default)]
    app: Option<RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    cidr: Option<Spanned<String>>,
    zones: Option<Spanned<Vec<String>>>,
    az_count: Option<Spanned<i64>>,
    nat: Option<Nat>,
    public_subnets: Option<Spanned<Vec<Spanned<String>>>>,
    private_subnets: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApp {
    port: Option<Spanned<i64>>,
}

/// Default VPC range.
pub const DEFAULT_CIDR: &str = "10.0.0.0/16";
/// Default number of availability zones.
pub const DEFAULT_AZ_COUNT: usize = 2;
/// Default port the app listens on.
pub const DEFAULT_APP_PORT: u16 = 8080;

/// Reads and validates a stack file.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|e| StackError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the stack file: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates stack file text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Stack, StackError> {
    let at = |offset: usize, message: String| -> StackError {
        let (line, column) = line_col(text, offset);
        StackError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        at(offset, e.message().trim().to_string())
    })?;

    // name: top level or [stack].
    let (name, region) = match (raw.name, raw.stack) {
        (Some(_), Some(RawStack { name: Some(n), .. })) => {
            return Err(at(
                n.span().start,
                "`name` is given both at the top level and under [stack]; keep one".into(),
            ))
        }
        (Some(n), s) => (n, raw.region.or(s.and_then(|s| s.region))),
        (None, Some(s)) => match s.name {
            Some(n) => (n, s.region.or(raw.region)),
            None => return Err(at(0, "the stack has no `name` (top level or under [stack])".into())),
        },
        (None, None) => {
            return Err(at(
                0,
                "the stack has no `name` (top level or under [stack]); it tags every resource the stack owns".into(),
            ))
        }
    };
    let name_ok = {
        let n = name.get_ref();
        !n.is_empty()
            && n.len() <= 32
            && n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !name_ok {
        return Err(at(
            name.span().start,
            format!(
                "`name` = {:?}: use 1 to 32 lowercase letters, digits or '-', starting with a letter",
                name.get_ref()
            ),
        ));
    }
    let region = match region {
        Some(r) if r.get_ref().is_empty() => {
            return Err(at(r.span().start, "`region` must not be empty".into()))
        }
        r => r.map(|r| r.into_inner()),
    };

    let (net_span, net) = match raw.network {
        Some(n) => (n.span().start, n.into_inner()),
        None => (0, RawNetwork::default()),
    };

    let cidr = match &net.cidr {
        Some(c) => {
            let v: Ipv4Net = c.get_ref().parse().map_err(|_| {
                at(
                    c.span().start,
                    format!(
                        "`network.cidr` = {:?} is not an IPv4 CIDR block",
                        c.get_ref()
                    ),
                )
            })?;
            if v.trunc() != v {
                return Err(at(
                    c.span().start,
                    format!(
                        "`network.cidr` = {v}: host bits are set; did you mean {}?",
                        v.trunc()
                    ),
                ));
            }
            if !(16..=24).contains(&v.prefix_len()) {
                return Err(at(
                    c.span().start,
                    format!("`network.cidr` = {v}: the prefix must be between /16 and /24"),
                ));
            }
            v
        }
        None => DEFAULT_CIDR.parse().expect("valid default"),
    };

    let zones = match &net.zones {
        Some(z) => {
            let list = z.get_ref();
            let mut seen = std::collections::BTreeSet::new();
            for zone in list {
                if zone.is_empty() || !seen.insert(zone) {
                    return Err(at(
                        z.span().start,
                        format!("`network.zones`: zone {zone:?} is empty or listed twice"),
                    ));
                }
            }
            Some(list.clone())
        }
        None => None,
    };
    let az_count = match (&net.az_count, &zones) {
        (Some(c), Some(z)) if *c.get_ref() as usize != z.len() => {
            return Err(at(
                c.span().start,
                format!(
                "`network.az_count` = {} but `network.zones` lists {}; give one or make them agree",
                c.get_ref(),
                z.len()
            ),
            ))
        }
        (Some(c), _) => {
            let n = *c.get_ref();
            if !(2..=6).contains(&n) {
                return Err(at(
                    c.span().start,
                    format!("`network.az_count` = {n}: must be between 2 and 6 (high availability needs at least 2 zones)"),
                ));
            }
            n as usize
        }
        (None, Some(z)) => {
            if !(2..=6).contains(&z.len()) {
                return Err(at(
                    net.zones
                        .as_ref()
                        .map(|z| z.span().start)
                        .unwrap_or(net_span),
                    format!(
                        "`network.zones` lists {} zones: give between 2 and 6",
                        z.len()
                    ),
                ));
            }
            z.len()
        }
        (None, None) => DEFAULT_AZ_COUNT,
    };

    // Subnets: given, or carved from the VPC range (16 equal blocks: public
    // ones from the first, private ones from the ninth, so adding a zone
    // never moves an existing subnet).
    let blocks: Vec<Ipv4Net> = cidr
        .subnets(cidr.prefix_len() + 4)
        .expect("prefix at most /28")
        .collect();
    let public_subnets = subnets_for(
        &net.public_subnets,
        "public_subnets",
        az_count,
        cidr,
        || blocks[..az_count].to_vec(),
        &at,
    )?;
    let private_subnets = subnets_for(
        &net.private_subnets,
        "private_subnets",
        az_count,
        cidr,
        || blocks[8..8 + az_count].to_vec(),
        &at,
    )?;
    let all: Vec<(Ipv4Net, &str, usize)> = public_subnets
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, "public_subnets", i))
        .chain(
            private_subnets
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, "private_subnets", i)),
        )
        .collect();
    for (i, (a, ka, ia)) in all.iter().enumerate() {
        for (b, kb, ib) in &all[i + 1..] {
            if a.contains(b) || b.contains(a) {
                let span = match *kb {
                    "public_subnets" => net.public_subnets.as_ref(),
                    _ => net.private_subnets.as_ref(),
                }
                .and_then(|l| l.get_ref().get(*ib).map(|s| s.span().start))
                .unwrap_or(net_span);
                return Err(at(
                    span,
                    format!("`network.{kb}[{ib}]` = {b} overlaps `network.{ka}[{ia}]` = {a}"),
                ));
            }
        }
    }

    let app = raw.app.unwrap_or_default();
    let port = match &app.port {
        Some(p) => {
            let v = *p.get_ref();
            if !(1024..=65535).contains(&v) {
                return Err(at(
                    p.span().start,
                    format!("`app.port` = {v}: use an unprivileged port, 1024 to 65535"),
                ));
            }
            v as u16
        }
        None => DEFAULT_APP_PORT,
    };

    Ok(Stack {
        name: name.into_inner(),
        region,
        network: Network {
            cidr,
            zones,
            az_count,
            nat: net.nat.unwrap_or(Nat::Single),
            public_subnets,
            private_subnets,
        },
        app: App { port },
    })
}

fn subnets_for(
    given: &Option<Spanned<Vec<Spanned<String>>>>,
    key: &str,
    az_count: usize,
    vpc: Ipv4Net,
    default: impl FnOnce() -> Vec<Ipv4Net>,
    at: &dyn Fn(usize, String) -> StackError,
) -> Result<Vec<Ipv4Net>, StackError> {
    let Some(list) = given else {
        return Ok(default());
    };
    if list.get_ref().len() != az_count {
        return Err(at(
            list.span().start,
            format!(
                "`network.{key}` lists {} blocks but the stack uses {az_count} zones: give one per zone",
                list.get_ref().len()
            ),
        ));
    }
    list.get_ref()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n: Ipv4Net = s.get_ref().parse().map_err(|_| {
                at(
                    s.span().start,
                    format!(
                        "`network.{key}[{i}]` = {:?} is not an IPv4 CIDR block",
                        s.get_ref()
                    ),
                )
            })?;
            if !vpc.contains(&n) {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n} is not inside the VPC range {vpc}"),
                ));
            }
            if n.prefix_len() > 28 {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n}: AWS subnets are at most /28"),
                ));
            }
            if n.trunc() != n {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n}: host bits are set"),
                ));
            }
            Ok(n)
        })
        .collect()
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before[i + 1..].chars().count())
        .unwrap_or_else(|| before.chars().count())
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Stack, StackError> {
        parse(Path::new("stacks/t.toml"), text)
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_stack_gets_every_default() {
        let s = p("name = \"demo\"\n").unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.region, None);
        assert_eq!(s.network.cidr.to_string(), "10.0.0.0/16");
        assert_eq!(s.network.az_count, 2);
        assert_eq!(s.network.nat, Nat::Single);
        assert_eq!(s.app.port, 8080);
        let pubs: Vec<String> = s
            .network
            .public_subnets
            .iter()
            .map(|n| n.to_string())
            .collect();
        let privs: Vec<String> = s
            .network
            .private_subnets
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(pubs, ["10.0.0.0/20", "10.0.16.0/20"]);
        assert_eq!(privs, ["10.0.128.0/20", "10.0.144.0/20"]);
    }

    #[test]
    fn name_may_live_under_stack_section() {
        let s = p("[stack]\nname = \"prod\"\nregion = \"eu-west-1\"\n").unwrap();
        assert_eq!(s.name, "prod");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = err("name = \"demo\"\n\n[network]\ncidr = \"10.0.0.0/16\"\nnatt = \"single\"\n");
        assert!(e.starts_with("stacks/t.toml:5:1:"), "{e}");
        assert!(e.contains("natt"), "{e}");
    }

    #[test]
    fn invalid_enum_value_is_located() {
        let e = err("name = \"demo\"\n[network]\nnat = \"sometimes\"\n");
        assert!(e.starts_with("stacks/t.toml:3:7:"), "{e}");
        assert!(e.contains("per-az"), "{e}");
    }

    #[test]
    fn missing_name_is_an_error() {
        assert!(err("[network]\n").contains("no `name`"));
    }

    #[test]
    fn bad_names_are_refused() {
        for n in ["Demo", "1demo", "", "a_b"] {
            let e = err(&format!("name = {n:?}\n"));
            assert!(e.starts_with("stacks/t.toml:1:8:"), "{e}");
        }
    }

    #[test]
    fn subnet_outside_the_vpc_is_located() {
        let e = err(
            "name = \"d\"\n[network]\ncidr = \"10.0.0.0/16\"\npublic_subnets = [\"10.0.0.0/24\", \"10.1.0.0/24\"]\n",
        );
        assert!(e.starts_with("stacks/t.toml:4:34:"), "{e}");
        assert!(e.contains("not inside the VPC"), "{e}");
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let e = err(
            "name = \"d\"\n[network]\npublic_subnets = [\"10.0.0.0/24\", \"10.0.1.0/24\"]\nprivate_subnets = [\"10.0.2.0/24\", \"10.0.0.0/23\"]\n",
        );
        assert!(e.contains("overlaps"), "{e}");
        assert!(e.starts_with("stacks/t.toml:4:35:"), "{e}");
    }

    #[test]
    fn one_zone_is_not_enough() {
        let e = err("name = \"d\"\n[network]\naz_count = 1\n");
        assert!(e.starts_with("stacks/t.toml:3:12:"), "{e}");
        let e = err("name = \"d\"\n[network]\nzones = [\"us-east-1a\"]\n");
        assert!(e.contains("between 2 and 6"), "{e}");
    }

    #[test]
    fn explicit_zones_set_the_count() {
        let s = p(
            "name = \"d\"\n[network]\nzones = [\"x-1a\", \"x-1b\", \"x-1c\"]\nnat = \"per-az\"\n",
        )
        .unwrap();
        assert_eq!(s.network.az_count, 3);
        assert_eq!(s.network.private_subnets.len(), 3);
        assert_eq!(s.network.nat, Nat::PerAz);
    }

    #[test]
    fn bad_cidr_and_port_are_located() {
        let e = err("name = \"d\"\n[network]\ncidr = \"10.0.0.1/16\"\n");
        assert!(
            e.contains("host bits") && e.starts_with("stacks/t.toml:3:8:"),
            "{e}"
        );
        let e = err("name = \"d\"\n[network]\ncidr = \"10.0.0.0/8\"\n");
        assert!(e.contains("/16 and /24"), "{e}");
        let e = err("name = \"d\"\n[app]\nport = 80\n");
        assert!(
            e.starts_with("stacks/t.toml:3:8:") && e.contains("1024"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err("name = \"d\"\n[network]\naz_count = \"two\"\n");
        assert!(e.starts_with("stacks/t.toml:3:12:"), "{e}");
    }
}
