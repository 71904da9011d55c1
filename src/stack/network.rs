//! `[network]`: the VPC range, its zones, NAT, endpoints and subnets.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::cidr::{Cidr, CidrError};
use super::error::{Source, StackError};
use super::field::Invalid;
use super::Topology;

/// Default VPC range.
pub const DEFAULT_CIDR: &str = "10.0.0.0/16";
/// Default number of availability zones.
pub const DEFAULT_AZ_COUNT: usize = 2;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub cidr: Cidr,
    /// Explicit zone names, or `None` to take the first `az_count` the region offers.
    pub zones: Option<Vec<String>>,
    pub az_count: usize,
    pub nat: Nat,
    /// VPC endpoints for the AWS services the instances use (`[network]
    /// endpoints`): what they need without a NAT gateway.
    pub endpoints: bool,
    /// One per zone, in zone order.
    pub public_subnets: Vec<Cidr>,
    pub private_subnets: Vec<Cidr>,
}

type SubnetList = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    cidr: Option<Spanned<String>>,
    zones: Option<Spanned<Vec<String>>>,
    az_count: Option<Spanned<i64>>,
    nat: Option<Spanned<Nat>>,
    endpoints: Option<bool>,
    public_subnets: SubnetList,
    private_subnets: SubnetList,
}

const PUBLIC: &str = "public_subnets";
const PRIVATE: &str = "private_subnets";

/// The `[network]` table as written, and where it starts (the file's start
/// when it is absent).
pub(super) struct Section {
    start: usize,
    raw: RawNetwork,
}

impl Section {
    pub(super) fn new(raw: Option<Spanned<RawNetwork>>) -> Self {
        match raw {
            Some(n) => Section {
                start: n.span().start,
                raw: n.into_inner(),
            },
            None => Section {
                start: 0,
                raw: RawNetwork::default(),
            },
        }
    }

    pub(super) fn parse(&self, src: &Source) -> Result<Network, StackError> {
        let cidr = self.cidr(src)?;
        let zones = self.zones(src)?;
        let az_count = self.az_count(src, zones.as_deref())?;

        // Subnets: given, or carved from the VPC range (16 equal blocks:
        // public ones from the first, private ones from the ninth, so adding
        // a zone never moves an existing subnet).
        let blocks = cidr.blocks(4);
        let public_subnets = self.subnets(src, PUBLIC, az_count, cidr, &blocks[..az_count])?;
        let private_subnets =
            self.subnets(src, PRIVATE, az_count, cidr, &blocks[8..8 + az_count])?;
        self.no_overlap(src, &public_subnets, &private_subnets)?;

        Ok(Network {
            cidr,
            zones,
            az_count,
            nat: self.raw.nat.as_ref().map_or(Nat::Single, |n| *n.get_ref()),
            endpoints: self.raw.endpoints.unwrap_or(false),
            public_subnets,
            private_subnets,
        })
    }

    fn cidr(&self, src: &Source) -> Result<Cidr, StackError> {
        let Some(c) = &self.raw.cidr else {
            return Ok(Cidr::parse(DEFAULT_CIDR).expect("valid default"));
        };
        let v = match Cidr::parse(c.get_ref()) {
            Ok(v) => v,
            Err(CidrError::Malformed) => {
                return Err(src.at_value(
                    c,
                    Invalid::NotA("an IPv4 CIDR block").message("network.cidr", c.get_ref()),
                ))
            }
            Err(CidrError::HostBitsSet { written }) => {
                return Err(src.at_value(
                    c,
                    format!(
                        "`network.cidr` = {written}: host bits are set; did you mean {}?",
                        written.trunc()
                    ),
                ))
            }
        };
        if !(16..=24).contains(&v.prefix_len()) {
            return Err(src.at_value(
                c,
                format!("`network.cidr` = {v}: the prefix must be between /16 and /24"),
            ));
        }
        Ok(v)
    }

    fn zones(&self, src: &Source) -> Result<Option<Vec<String>>, StackError> {
        let Some(z) = &self.raw.zones else {
            return Ok(None);
        };
        let list = z.get_ref();
        let mut seen = BTreeSet::new();
        for zone in list {
            if zone.is_empty() || !seen.insert(zone) {
                return Err(src.at_value(
                    z,
                    format!("`network.zones`: zone {zone:?} is empty or listed twice"),
                ));
            }
        }
        Ok(Some(list.clone()))
    }

    fn az_count(&self, src: &Source, zones: Option<&[String]>) -> Result<usize, StackError> {
        match (&self.raw.az_count, zones) {
            (Some(c), Some(z)) if *c.get_ref() as usize != z.len() => Err(src.at_value(
                c,
                format!(
                    "`network.az_count` = {} but `network.zones` lists {}; give one or make them agree",
                    c.get_ref(),
                    z.len()
                ),
            )),
            (Some(c), _) => {
                let n = *c.get_ref();
                if !(2..=6).contains(&n) {
                    return Err(src.at_value(
                        c,
                        format!("`network.az_count` = {n}: must be between 2 and 6 (high availability needs at least 2 zones)"),
                    ));
                }
                Ok(n as usize)
            }
            (None, Some(z)) => {
                if !(2..=6).contains(&z.len()) {
                    return Err(src.at(
                        self.raw
                            .zones
                            .as_ref()
                            .map(|z| z.span().start)
                            .unwrap_or(self.start),
                        format!(
                            "`network.zones` lists {} zones: give between 2 and 6",
                            z.len()
                        ),
                    ));
                }
                Ok(z.len())
            }
            (None, None) => Ok(DEFAULT_AZ_COUNT),
        }
    }

    fn given(&self, key: &str) -> &SubnetList {
        match key {
            PUBLIC => &self.raw.public_subnets,
            _ => &self.raw.private_subnets,
        }
    }

    /// The `key` subnets as given, one per zone and inside the VPC, or the
    /// `default` blocks.
    fn subnets(
        &self,
        src: &Source,
        key: &str,
        az_count: usize,
        vpc: Cidr,
        default: &[Cidr],
    ) -> Result<Vec<Cidr>, StackError> {
        let Some(list) = self.given(key) else {
            return Ok(default.to_vec());
        };
        if list.get_ref().len() != az_count {
            return Err(src.at_value(
                list,
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
                // Where the block lies is checked before its host bits.
                let parsed = Cidr::parse(s.get_ref());
                let n = match parsed {
                    Ok(c) => c.net(),
                    Err(CidrError::HostBitsSet { written }) => written,
                    Err(CidrError::Malformed) => {
                        return Err(src.at_value(
                            s,
                            Invalid::NotA("an IPv4 CIDR block")
                                .message(&format!("network.{key}[{i}]"), s.get_ref()),
                        ))
                    }
                };
                if !vpc.contains(&n) {
                    return Err(src.at_value(
                        s,
                        format!("`network.{key}[{i}]` = {n} is not inside the VPC range {vpc}"),
                    ));
                }
                if n.prefix_len() > 28 {
                    return Err(src.at_value(
                        s,
                        format!("`network.{key}[{i}]` = {n}: AWS subnets are at most /28"),
                    ));
                }
                parsed.map_err(|_| {
                    src.at_value(s, format!("`network.{key}[{i}]` = {n}: host bits are set"))
                })
            })
            .collect()
    }

    /// No subnet contains another: the later one of a pair is blamed.
    fn no_overlap(
        &self,
        src: &Source,
        public: &[Cidr],
        private: &[Cidr],
    ) -> Result<(), StackError> {
        let all: Vec<(Cidr, &str, usize)> = public
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, PUBLIC, i))
            .chain(private.iter().enumerate().map(|(i, n)| (*n, PRIVATE, i)))
            .collect();
        for (i, (a, ka, ia)) in all.iter().enumerate() {
            for (b, kb, ib) in &all[i + 1..] {
                if a.overlaps(b) {
                    let span = self
                        .given(kb)
                        .as_ref()
                        .and_then(|l| l.get_ref().get(*ib).map(|s| s.span().start))
                        .unwrap_or(self.start);
                    return Err(src.at(
                        span,
                        format!("`network.{kb}[{ib}]` = {b} overlaps `network.{ka}[{ia}]` = {a}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Without a NAT gateway the instances reach no AWS endpoint: they could
    /// not fetch the binary (S3), the database password (Secrets Manager),
    /// ship logs (CloudWatch Logs) nor be reached by Systems Manager, and
    /// would never become healthy, unless the VPC has endpoints for each
    /// ("Access AWS services through AWS PrivateLink").
    pub(super) fn check_route_out(
        &self,
        src: &Source,
        topology: Topology,
    ) -> Result<(), StackError> {
        let endpoints = self.raw.endpoints.unwrap_or(false);
        if let (Topology::Full, Some(n), false) = (topology, &self.raw.nat, endpoints) {
            if *n.get_ref() == Nat::None {
                return Err(src.at_value(
                    n,
                    "`network.nat` = \"none\": the app instances would have no route to S3, Secrets Manager, \
                     CloudWatch Logs and Systems Manager (ssm, ssmmessages, ec2messages); set \
                     `endpoints = true` under [network] to create VPC endpoints for them, or use \
                     nat = \"single\" or \"per-az\"",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::{err, p};

    #[test]
    fn no_nat_needs_endpoints() {
        let e = err("name = \"demo\"\n[network]\nnat = \"none\"\n");
        assert!(e.starts_with("stacks/t.toml:3:7:"), "{e}");
        for what in [
            "S3",
            "Secrets Manager",
            "CloudWatch Logs",
            "ssmmessages",
            "endpoints = true",
        ] {
            assert!(e.contains(what), "{what}: {e}");
        }
        let s = p("name = \"demo\"\n[network]\nnat = \"none\"\nendpoints = true\n").unwrap();
        assert!(s.network.endpoints);
        assert!(!p("name = \"demo\"\n").unwrap().network.endpoints);
        // Without instances there is nothing to reach AWS.
        let s = p("name = \"demo\"\ntopology = \"network\"\n[network]\nnat = \"none\"\n").unwrap();
        assert_eq!(s.network.nat, Nat::None);
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
}
