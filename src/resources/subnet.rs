//! `ec2:subnet`: a subnet in one availability zone.

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:subnet";

pub struct Subnet;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_subnets", "DescribeSubnets", &["ec2:DescribeSubnets"]),
    w("ec2", "create_subnet", "CreateSubnet", &["ec2:CreateSubnet", "ec2:CreateTags"]),
    w("ec2", "delete_subnet", "DeleteSubnet", &["ec2:DeleteSubnet"]),
];

#[async_trait]
impl ResourceKind for Subnet {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A repeated CreateSubnet meets its own CIDR: `InvalidSubnet.Conflict`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("vpc_id"), replace("cidr"), replace("zone")];
        A
    }

    /// In another VPC, or on addresses the old one does not use, the new
    /// subnet can exist beside the old one.
    fn create_before_destroy(
        &self,
        c: &[crate::engine::plan::AttrDiff],
        current: &Observed,
    ) -> bool {
        let new_cidr = c
            .iter()
            .find(|a| a.name == "cidr")
            .and_then(|a| a.after.as_ref())
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<ipnet::Ipv4Net>().ok());
        let old_cidr = current
            .props
            .get("cidr")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<ipnet::Ipv4Net>().ok());
        crate::engine::changes(c, "vpc_id")
            || matches!((new_cidr, old_cidr), (Some(n), Some(o)) if !n.contains(&o.network()) && !o.contains(&n.network()))
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let subnets = cloud
            .ec2
            .describe_subnets()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeSubnets")?;
        Ok(subnets
            .iter()
            .filter_map(|s| {
                Some(
                    Observed::new(KIND, logical_id(s.tags(), stack)?, s.subnet_id()?)
                        .prop("vpc_id", s.vpc_id().unwrap_or_default())
                        .prop("cidr", s.cidr_block().unwrap_or_default())
                        .prop("zone", s.availability_zone().unwrap_or_default()),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // The VPC may have been created moments before: `InvalidVpcID.NotFound`
        // then means nothing was created, and the call is repeated.
        let req = cloud
            .ec2
            .create_subnet()
            .vpc_id(r.str("vpc_id")?)
            .cidr_block(r.str("cidr")?)
            .availability_zone(r.str("zone")?)
            .tag_specifications(tag_spec(ResourceType::Subnet, &r.tags));
        let out = cloud
            .settle(&r.id, "CreateSubnet", || req.clone().send())
            .await?;
        let id = out
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateSubnet returned no id"))?;
        Ok(Observed::new(KIND, &r.id, id)
            .prop("vpc_id", r.str("vpc_id")?)
            .prop("cidr", r.str("cidr")?)
            .prop("zone", r.str("zone")?))
    }

    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        // Every attribute forces a replacement; nothing changes in place.
        Ok(current.clone())
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        gone_ok(
            cloud
                .ec2
                .delete_subnet()
                .subnet_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteSubnet"),
        )
    }
}
