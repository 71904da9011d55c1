//! `ec2:vpc-endpoint`: a private way from the VPC to an AWS service, for
//! instances without a NAT gateway. Interface endpoints sit in subnets
//! behind a security group (and answer the service's public name, private
//! DNS); gateway endpoints (S3) are routes in route tables.

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};

use super::attrs::{sorted_strings, strings};
use super::{logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:vpc-endpoint";

pub struct VpcEndpoint;

fn sorted(v: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(Into::into).collect();
    v.sort();
    v
}

fn list(r: &Resolved, key: &str) -> Vec<String> {
    sorted_strings(r.props.get(key))
}

fn observed(id: &str, e: &aws_sdk_ec2::types::VpcEndpoint) -> Option<Observed> {
    let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
    Some(
        Observed::new(KIND, id, e.vpc_endpoint_id()?)
            .prop("vpc_id", e.vpc_id().unwrap_or_default())
            .prop("service_name", e.service_name().unwrap_or_default())
            .prop(
                "type",
                e.vpc_endpoint_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
            )
            .prop(
                "subnet_ids",
                sorted(e.subnet_ids().iter().map(String::as_str)),
            )
            .prop(
                "security_group_ids",
                sorted(e.groups().iter().filter_map(|g| g.group_id())),
            )
            .prop(
                "route_table_ids",
                sorted(e.route_table_ids().iter().map(String::as_str)),
            )
            .pending(state.as_deref() == Some("pending")),
    )
}

/// The endpoint's state, `None` once it is gone.
async fn state(cloud: &Cloud, id: &str, vpce: &str) -> Result<Option<String>, CloudError> {
    match cloud
        .ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(vpce)
        .send()
        .await
        .ctx(id, "DescribeVpcEndpoints")
    {
        Ok(o) => Ok(o
            .vpc_endpoints()
            .first()
            .and_then(|e| e.state())
            .map(|s| s.as_str().to_ascii_lowercase())
            .filter(|s| s != "deleted")),
        Err(e) if e.code() == Some("InvalidVpcEndpointId.NotFound") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_vpc_endpoints", "DescribeVpcEndpoints", &["ec2:DescribeVpcEndpoints"]),
    w("ec2", "create_vpc_endpoint", "CreateVpcEndpoint", &["ec2:CreateVpcEndpoint", "ec2:CreateTags"]),
    w("ec2", "delete_vpc_endpoints", "DeleteVpcEndpoints", &["ec2:DeleteVpcEndpoints"]),
    w("ec2", "modify_vpc_endpoint", "ModifyVpcEndpoint", &["ec2:ModifyVpcEndpoint"]),
];

#[async_trait]
impl ResourceKind for VpcEndpoint {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateVpcEndpoint carries a client token.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("vpc_id"),
            replace("service_name"),
            replace("type"),
            in_place("subnet_ids"),
            in_place("security_group_ids"),
            in_place("route_table_ids"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let all = cloud
            .ec2
            .describe_vpc_endpoints()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeVpcEndpoints")?;
        Ok(all
            .iter()
            .filter(|e| {
                !matches!(
                    e.state()
                        .map(|s| s.as_str().to_ascii_lowercase())
                        .as_deref(),
                    Some("deleted" | "deleting" | "failed" | "rejected")
                )
            })
            .filter_map(|e| observed(&logical_id(e.tags(), stack)?, e))
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let ty = r.str("type")?;
        let interface = ty == "Interface";
        let mut req = cloud
            .ec2
            .create_vpc_endpoint()
            .client_token(&r.token)
            .vpc_id(r.str("vpc_id")?)
            .service_name(r.str("service_name")?)
            .vpc_endpoint_type(VpcEndpointType::from(ty))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &r.tags));
        if interface {
            req = req
                .set_subnet_ids(Some(list(r, "subnet_ids")))
                .set_security_group_ids(Some(list(r, "security_group_ids")))
                .private_dns_enabled(true);
        } else {
            req = req.set_route_table_ids(Some(list(r, "route_table_ids")));
        }
        let out = cloud
            .settle(&r.id, "CreateVpcEndpoint", || req.clone().send())
            .await?;
        let e = out
            .vpc_endpoint()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateVpcEndpoint returned nothing"))?;
        observed(&r.id, e)
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateVpcEndpoint returned no id"))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let have = |k: &str| strings(current.props.get(k));
        let diff = |k: &str| {
            let (want, have) = (list(r, k), have(k));
            let add: Vec<String> = want.iter().filter(|x| !have.contains(x)).cloned().collect();
            let remove: Vec<String> = have.iter().filter(|x| !want.contains(x)).cloned().collect();
            (add, remove)
        };
        let (add_s, rm_s) = diff("subnet_ids");
        let (add_g, rm_g) = diff("security_group_ids");
        let (add_t, rm_t) = diff("route_table_ids");
        let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
        cloud
            .ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&current.physical_id)
            .set_add_subnet_ids(some(add_s))
            .set_remove_subnet_ids(some(rm_s))
            .set_add_security_group_ids(some(add_g))
            .set_remove_security_group_ids(some(rm_g))
            .set_add_route_table_ids(some(add_t))
            .set_remove_route_table_ids(some(rm_t))
            .send()
            .await
            .ctx(&r.id, "ModifyVpcEndpoint")?;
        let mut out = current.clone();
        for k in ["subnet_ids", "security_group_ids", "route_table_ids"] {
            out = out.prop(k, list(r, k));
        }
        Ok(out)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let id = &current.id;
        let vpce = &current.physical_id;
        // A failure is reported per endpoint, in `Unsuccessful`, not as an
        // error (EC2 API reference, DeleteVpcEndpoints).
        let out = cloud
            .ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(vpce)
            .send()
            .await
            .ctx(id, "DeleteVpcEndpoints")?;
        if let Some(e) = out.unsuccessful().iter().find_map(|u| u.error()) {
            let code = e.code().unwrap_or_default();
            if code != "InvalidVpcEndpoint.NotFound" && code != "InvalidVpcEndpointId.NotFound" {
                return Err(CloudError::invalid(
                    id,
                    format!(
                        "DeleteVpcEndpoints: {code}: {}",
                        e.message().unwrap_or_default()
                    ),
                ));
            }
        }
        // Its network interfaces hold the subnets and the security group
        // until it is gone.
        cloud
            .wait_until(
                id,
                "deleted",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    Ok(match state(cloud, id, vpce).await? {
                        None => (Some(()), "deleted".to_string()),
                        Some(s) => (None, s),
                    })
                },
            )
            .await
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let (id, vpce) = (current.id.clone(), current.physical_id.clone());
        cloud
            .wait_until(
                &id,
                "available",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    Ok(match state(cloud, &id, &vpce).await?.as_deref() {
                        Some("available") => (Some(()), "available".to_string()),
                        Some(s) => (None, s.to_string()),
                        None => (None, "not visible yet".to_string()),
                    })
                },
            )
            .await?;
        Ok(current.pending(false))
    }
}
