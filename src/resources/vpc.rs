//! `ec2:vpc`: the network, with DNS support and host names.

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use futures::future::try_join_all;

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:vpc";

pub struct Vpc;

async fn dns(
    cloud: &Cloud,
    id: &str,
    vpc: &str,
    attr: VpcAttributeName,
) -> Result<bool, CloudError> {
    let out = cloud
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc)
        .attribute(attr.clone())
        .send()
        .await
        .ctx(id, "DescribeVpcAttribute")?;
    let v = match attr {
        VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
        _ => out.enable_dns_hostnames(),
    };
    Ok(v.and_then(|v| v.value()).unwrap_or(false))
}

/// Sets the DNS attributes, right after CreateVpc too: the new id may not be
/// visible yet (see `Cloud::settle`).
async fn set_dns(
    cloud: &Cloud,
    id: &str,
    vpc: &str,
    support: Option<bool>,
    hostnames: Option<bool>,
) -> Result<(), CloudError> {
    // One attribute per call, as the API requires.
    if let Some(v) = support {
        let req = cloud
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc)
            .enable_dns_support(AttributeBooleanValue::builder().value(v).build());
        cloud
            .settle(id, "ModifyVpcAttribute", || req.clone().send())
            .await?;
    }
    if let Some(v) = hostnames {
        let req = cloud
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(v).build());
        cloud
            .settle(id, "ModifyVpcAttribute", || req.clone().send())
            .await?;
    }
    Ok(())
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_vpc_attribute", "DescribeVpcAttribute", &["ec2:DescribeVpcAttribute"]),
    r("ec2", "describe_vpcs", "DescribeVpcs", &["ec2:DescribeVpcs"]),
    w("ec2", "create_vpc", "CreateVpc", &["ec2:CreateVpc", "ec2:CreateTags"]),
    w("ec2", "delete_vpc", "DeleteVpc", &["ec2:DeleteVpc"]),
    w("ec2", "modify_vpc_attribute", "ModifyVpcAttribute", &["ec2:ModifyVpcAttribute"]),
];

#[async_trait]
impl ResourceKind for Vpc {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateVpc has neither a client token nor a unique name: a repeat makes a second VPC.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("cidr"),
            in_place("dns_support"),
            in_place("dns_hostnames"),
        ];
        A
    }

    // Nothing names a VPC: the new one can exist beside the old one.
    fn create_before_destroy(&self, _: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        true
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let vpcs = cloud
            .ec2
            .describe_vpcs()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeVpcs")?;
        // DNS settings are not part of DescribeVpcs: two reads per VPC, concurrently.
        try_join_all(vpcs.iter().filter_map(|v| {
            let id = logical_id(v.tags(), stack)?;
            let vpc_id = v.vpc_id()?.to_string();
            let cidr = v.cidr_block().unwrap_or_default().to_string();
            Some(async move {
                let (s, h) = futures::try_join!(
                    dns(cloud, &id, &vpc_id, VpcAttributeName::EnableDnsSupport),
                    dns(cloud, &id, &vpc_id, VpcAttributeName::EnableDnsHostnames)
                )?;
                Ok::<_, CloudError>(
                    Observed::new(KIND, id, vpc_id)
                        .prop("cidr", cidr)
                        .prop("dns_support", s)
                        .prop("dns_hostnames", h),
                )
            })
        }))
        .await
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let out = cloud
            .ec2
            .create_vpc()
            .cidr_block(r.str("cidr")?)
            .tag_specifications(tag_spec(ResourceType::Vpc, &r.tags))
            .send()
            .await
            .ctx(&r.id, "CreateVpc")?;
        let vpc_id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateVpc returned no id"))?
            .to_string();
        cloud.status(&r.id, &format!("{vpc_id} created, setting DNS"));
        set_dns(
            cloud,
            &r.id,
            &vpc_id,
            Some(r.bool("dns_support")),
            Some(r.bool("dns_hostnames")),
        )
        .await?;
        Ok(Observed::new(KIND, &r.id, vpc_id)
            .prop("cidr", r.str("cidr")?)
            .prop("dns_support", r.bool("dns_support"))
            .prop("dns_hostnames", r.bool("dns_hostnames")))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let has = |n: &str| changed.iter().any(|c| c == n);
        set_dns(
            cloud,
            &r.id,
            &current.physical_id,
            has("dns_support").then(|| r.bool("dns_support")),
            has("dns_hostnames").then(|| r.bool("dns_hostnames")),
        )
        .await?;
        Ok(current
            .clone()
            .prop("dns_support", r.bool("dns_support"))
            .prop("dns_hostnames", r.bool("dns_hostnames")))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        gone_ok(
            cloud
                .ec2
                .delete_vpc()
                .vpc_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteVpc"),
        )
    }
}
