//! `ec2:internet-gateway`: the VPC's way out, attached to it.

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:internet-gateway";

pub struct InternetGateway;

/// Attaches the gateway (and the VPC) just created: either id may not be
/// visible yet (see `Cloud::settle`).
async fn attach(cloud: &Cloud, id: &str, igw: &str, vpc: &str) -> Result<(), CloudError> {
    let req = cloud
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(igw)
        .vpc_id(vpc);
    cloud
        .settle(id, "AttachInternetGateway", || req.clone().send())
        .await
        .map(|_| ())
}

/// Detaches the gateway; already detached (`Gateway.NotAttached`, as after
/// an earlier attempt of a delete that was then refused) counts as done, so
/// the delete can be tried again as a whole. While addresses in the VPC are
/// still mapped (a NAT gateway or load balancer being deleted), AWS answers
/// `DependencyViolation`, which the executor retries.
async fn detach(cloud: &Cloud, id: &str, igw: &str, vpc: &str) -> Result<(), CloudError> {
    match gone_ok(
        cloud
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(igw)
            .vpc_id(vpc)
            .send()
            .await
            .map(|_| ())
            .ctx(id, "DetachInternetGateway"),
    ) {
        Err(e) if e.code() == Some("Gateway.NotAttached") => Ok(()),
        other => other,
    }
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_internet_gateways", "DescribeInternetGateways", &["ec2:DescribeInternetGateways"]),
    w("ec2", "attach_internet_gateway", "AttachInternetGateway", &["ec2:AttachInternetGateway"]),
    w("ec2", "create_internet_gateway", "CreateInternetGateway", &["ec2:CreateInternetGateway", "ec2:CreateTags"]),
    w("ec2", "delete_internet_gateway", "DeleteInternetGateway", &["ec2:DeleteInternetGateway"]),
    w("ec2", "detach_internet_gateway", "DetachInternetGateway", &["ec2:DetachInternetGateway"]),
];

#[async_trait]
impl ResourceKind for InternetGateway {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateInternetGateway makes a second gateway when repeated.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[in_place("vpc_id")];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let gateways = cloud
            .ec2
            .describe_internet_gateways()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeInternetGateways")?;
        Ok(gateways
            .iter()
            .filter_map(|g| {
                let vpc = g
                    .attachments()
                    .iter()
                    .find_map(|a| a.vpc_id())
                    .map(|v| serde_json::Value::String(v.into()))
                    .unwrap_or(serde_json::Value::Null);
                Some(
                    Observed::new(KIND, logical_id(g.tags(), stack)?, g.internet_gateway_id()?)
                        .prop("vpc_id", vpc),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let out = cloud
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, &r.tags))
            .send()
            .await
            .ctx(&r.id, "CreateInternetGateway")?;
        let igw = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateInternetGateway returned no id"))?;
        attach(cloud, &r.id, igw, r.str("vpc_id")?).await?;
        Ok(Observed::new(KIND, &r.id, igw).prop("vpc_id", r.str("vpc_id")?))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        if let Some(old) = current.props.get("vpc_id").and_then(|v| v.as_str()) {
            detach(cloud, &r.id, &current.physical_id, old).await?;
        }
        attach(cloud, &r.id, &current.physical_id, r.str("vpc_id")?).await?;
        Ok(current.clone().prop("vpc_id", r.str("vpc_id")?))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        if let Some(vpc) = current.props.get("vpc_id").and_then(|v| v.as_str()) {
            detach(cloud, &current.id, &current.physical_id, vpc).await?;
        }
        gone_ok(
            cloud
                .ec2
                .delete_internet_gateway()
                .internet_gateway_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteInternetGateway"),
        )
    }
}
