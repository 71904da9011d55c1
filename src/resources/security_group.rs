//! `ec2:security-group`: a VPC security group and its ingress rules.
//!
//! A rule admits one port (or the whole protocol) from either a CIDR block or
//! another security group. Egress keeps the AWS default (all outbound).

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:security-group";

pub struct SecurityGroup;

/// One ingress rule: a protocol and port (or range) from one source. The
/// stack's rules name a single port and an IPv4 block or a group; rules
/// added by hand may be anything, and are read whole so that `up` can
/// revoke exactly them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    pub port: i32,
    /// The end of a port range, when it is not `port` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
}

impl Rule {
    fn permission(&self) -> IpPermission {
        let b = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .from_port(self.port)
            .to_port(self.to_port.unwrap_or(self.port));
        let b = match &self.cidr {
            Some(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            None => b,
        };
        let b = match &self.ipv6_cidr {
            Some(c) => b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
            None => b,
        };
        let b = match &self.prefix_list {
            Some(p) => b.prefix_list_ids(PrefixListId::builder().prefix_list_id(p).build()),
            None => b,
        };
        match &self.source_group {
            Some(g) => b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
            None => b,
        }
        .build()
    }
}

/// Expands the API's grouped permissions into one rule per source.
pub fn rules_of(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let base = Rule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            port: p.from_port().unwrap_or(-1),
            to_port: p.to_port().filter(|t| Some(*t) != p.from_port()),
            cidr: None,
            ipv6_cidr: None,
            prefix_list: None,
            source_group: None,
        };
        for r in p.ip_ranges() {
            out.push(Rule {
                cidr: r.cidr_ip().map(str::to_string),
                ..base.clone()
            });
        }
        for r in p.ipv6_ranges() {
            out.push(Rule {
                ipv6_cidr: r.cidr_ipv6().map(str::to_string),
                ..base.clone()
            });
        }
        for r in p.prefix_list_ids() {
            out.push(Rule {
                prefix_list: r.prefix_list_id().map(str::to_string),
                ..base.clone()
            });
        }
        for g in p.user_id_group_pairs() {
            out.push(Rule {
                source_group: g.group_id().map(str::to_string),
                ..base.clone()
            });
        }
    }
    out.sort();
    out
}

#[derive(Deserialize)]
struct Props {
    vpc_id: String,
    name: String,
    description: String,
    #[serde(default)]
    ingress: Vec<Rule>,
}

fn observed(id: &str, group: &str, p: &Props, rules: &[Rule]) -> Observed {
    Observed::new(KIND, id, group)
        .prop("vpc_id", p.vpc_id.as_str())
        .prop("name", p.name.as_str())
        .prop("description", p.description.as_str())
        .prop(
            "ingress",
            serde_json::to_value(rules).unwrap_or(Value::Null),
        )
}

async fn authorize(cloud: &Cloud, id: &str, group: &str, rules: &[Rule]) -> Result<(), CloudError> {
    if rules.is_empty() {
        return Ok(());
    }
    // The group, or a group a rule names, may have been created moments
    // before (the EC2 eventual-consistency guide's own example).
    let req = cloud
        .ec2
        .authorize_security_group_ingress()
        .group_id(group)
        .set_ip_permissions(Some(rules.iter().map(Rule::permission).collect()));
    cloud
        .settle(id, "AuthorizeSecurityGroupIngress", || req.clone().send())
        .await
        .map(|_| ())
}

async fn revoke(cloud: &Cloud, id: &str, group: &str, rules: &[Rule]) -> Result<(), CloudError> {
    if rules.is_empty() {
        return Ok(());
    }
    cloud
        .ec2
        .revoke_security_group_ingress()
        .group_id(group)
        .set_ip_permissions(Some(rules.iter().map(Rule::permission).collect()))
        .send()
        .await
        .map(|_| ())
        .ctx(id, "RevokeSecurityGroupIngress")
}

/// The ingress rules a group was read with.
fn current_rules(current: &Observed) -> Vec<Rule> {
    current
        .props
        .get("ingress")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_security_groups", "DescribeSecurityGroups", &["ec2:DescribeSecurityGroups"]),
    w("ec2", "authorize_security_group_ingress", "AuthorizeSecurityGroupIngress", &["ec2:AuthorizeSecurityGroupIngress"]),
    w("ec2", "create_security_group", "CreateSecurityGroup", &["ec2:CreateSecurityGroup", "ec2:CreateTags"]),
    w("ec2", "delete_security_group", "DeleteSecurityGroup", &["ec2:DeleteSecurityGroup"]),
    w("ec2", "revoke_security_group_ingress", "RevokeSecurityGroupIngress", &["ec2:RevokeSecurityGroupIngress"]),
];

#[async_trait]
impl ResourceKind for SecurityGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Group names are unique in a VPC: `InvalidGroup.Duplicate`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("vpc_id"),
            replace("name"),
            replace("description"),
            in_place("ingress"),
        ];
        A
    }

    /// Group names are unique in a VPC: in another VPC, or under another
    /// name, the new group can exist beside the old one.
    fn create_before_destroy(&self, c: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        crate::engine::changes(c, "vpc_id") || crate::engine::changes(c, "name")
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let groups = cloud
            .ec2
            .describe_security_groups()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeSecurityGroups")?;
        Ok(groups
            .iter()
            .filter_map(|g| {
                let p = Props {
                    vpc_id: g.vpc_id().unwrap_or_default().into(),
                    name: g.group_name().unwrap_or_default().into(),
                    description: g.description().unwrap_or_default().into(),
                    ingress: Vec::new(),
                };
                Some(observed(
                    &logical_id(g.tags(), stack)?,
                    g.group_id()?,
                    &p,
                    &rules_of(g.ip_permissions()),
                ))
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let p: Props = r.typed()?;
        let req = cloud
            .ec2
            .create_security_group()
            .vpc_id(&p.vpc_id)
            .group_name(&p.name)
            .description(&p.description)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, &r.tags));
        let out = cloud
            .settle(&r.id, "CreateSecurityGroup", || req.clone().send())
            .await?;
        let group = out
            .group_id()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateSecurityGroup returned no id"))?;
        // Interrupted here, the next run finds the group and adds the rules.
        authorize(cloud, &r.id, group, &p.ingress).await?;
        Ok(observed(&r.id, group, &p, &p.ingress))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let p: Props = r.typed()?;
        let have = current_rules(current);
        let gone: Vec<Rule> = have
            .iter()
            .filter(|h| !p.ingress.contains(h))
            .cloned()
            .collect();
        let new: Vec<Rule> = p
            .ingress
            .iter()
            .filter(|w| !have.contains(w))
            .cloned()
            .collect();
        revoke(cloud, &r.id, &current.physical_id, &gone).await?;
        authorize(cloud, &r.id, &current.physical_id, &new).await?;
        Ok(observed(&r.id, &current.physical_id, &p, &p.ingress))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        // Rules naming other groups hold those groups: let go of them first,
        // so two groups that name each other can both be deleted.
        let have = current_rules(current);
        if have.iter().any(|r| r.source_group.is_some()) {
            gone_ok(revoke(cloud, &current.id, &current.physical_id, &have).await)?;
        }
        gone_ok(
            cloud
                .ec2
                .delete_security_group()
                .group_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteSecurityGroup"),
        )
    }
}
