//! `ec2:eip`: an Elastic IP address for a NAT gateway.

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:eip";

pub struct ElasticIp;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_addresses", "DescribeAddresses", &["ec2:DescribeAddresses"]),
    w("ec2", "allocate_address", "AllocateAddress", &["ec2:AllocateAddress", "ec2:CreateTags"]),
    w("ec2", "release_address", "ReleaseAddress", &["ec2:ReleaseAddress"]),
];

#[async_trait]
impl ResourceKind for ElasticIp {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// AllocateAddress has no client token: a repeat allocates a second address.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        &[]
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // DescribeAddresses has no paging (no MaxResults/NextToken): one answer holds all.
        let out = cloud
            .ec2
            .describe_addresses()
            .filters(stack_filter(stack))
            .send()
            .await
            .ctx(KIND, "DescribeAddresses")?;
        Ok(out
            .addresses()
            .iter()
            .filter_map(|a| {
                Some(
                    Observed::new(KIND, logical_id(a.tags(), stack)?, a.allocation_id()?)
                        .attr("public_ip", a.public_ip().unwrap_or_default()),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let out = cloud
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(ResourceType::ElasticIp, &r.tags))
            .send()
            .await
            .ctx(&r.id, "AllocateAddress")?;
        let id = out
            .allocation_id()
            .ok_or_else(|| CloudError::invalid(&r.id, "AllocateAddress returned no id"))?;
        Ok(Observed::new(KIND, &r.id, id).attr("public_ip", out.public_ip().unwrap_or_default()))
    }

    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        Ok(current.clone())
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        gone_ok(
            cloud
                .ec2
                .release_address()
                .allocation_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "ReleaseAddress"),
        )
    }
}
