//! `ec2:nat-gateway`: outbound internet for private subnets, in a public subnet.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{NatGatewayState, ResourceType};

use super::{logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::{replace, AttrSpec, Observed, Resolved, ResourceKind};

pub const KIND: &str = "ec2:nat-gateway";

pub struct NatGateway;

async fn state(
    cloud: &Cloud,
    id: &str,
    nat: &str,
) -> Result<Option<(NatGatewayState, String)>, CloudError> {
    let out = cloud
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat)
        .send()
        .await;
    match out {
        Ok(o) => Ok(o.nat_gateways().first().and_then(|g| {
            let s = g.state()?.clone();
            let why = g.failure_message().unwrap_or_default().to_string();
            Some((s, why))
        })),
        Err(e) => {
            let e = crate::cloud::api_error(id, "DescribeNatGateways", e);
            if e.code().is_some_and(|c| c.ends_with("NotFound")) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ResourceKind for NatGateway {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("subnet_id"), replace("allocation_id")];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let out = cloud
            .ec2
            .describe_nat_gateways()
            .filter(stack_filter(stack))
            .send()
            .await
            .ctx(KIND, "DescribeNatGateways")?;
        Ok(out
            .nat_gateways()
            .iter()
            .filter(|g| {
                !matches!(
                    g.state(),
                    Some(
                        NatGatewayState::Deleted
                            | NatGatewayState::Deleting
                            | NatGatewayState::Failed
                    )
                )
            })
            .filter_map(|g| {
                let alloc = g
                    .nat_gateway_addresses()
                    .iter()
                    .find_map(|a| a.allocation_id())
                    .unwrap_or_default();
                Some(
                    Observed::new(KIND, logical_id(g.tags())?, g.nat_gateway_id()?)
                        .prop("subnet_id", g.subnet_id().unwrap_or_default())
                        .prop("allocation_id", alloc),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // The client token makes a retried create return the first gateway.
        let out = cloud
            .ec2
            .create_nat_gateway()
            .subnet_id(r.str("subnet_id")?)
            .allocation_id(r.str("allocation_id")?)
            .client_token(&r.token)
            .tag_specifications(tag_spec(ResourceType::Natgateway, &r.tags))
            .send()
            .await
            .ctx(&r.id, "CreateNatGateway")?;
        let id = out
            .nat_gateway()
            .and_then(|g| g.nat_gateway_id())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateNatGateway returned no id"))?;
        Ok(Observed::new(KIND, &r.id, id)
            .prop("subnet_id", r.str("subnet_id")?)
            .prop("allocation_id", r.str("allocation_id")?))
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

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let id = current.id.clone();
        let nat = current.physical_id.clone();
        cloud
            .wait_until(&id, "available", Duration::from_secs(900), || async {
                match state(cloud, &id, &nat).await? {
                    Some((NatGatewayState::Available, _)) => Ok((Some(()), "available".into())),
                    Some((NatGatewayState::Failed, why)) => Err(CloudError::invalid(
                        &id,
                        format!("NAT gateway {nat} failed: {why}"),
                    )),
                    Some((s, _)) => Ok((None, s.as_str().to_string())),
                    None => Ok((None, "not visible yet".into())),
                }
            })
            .await?;
        Ok(current)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let id = current.id.clone();
        let nat = current.physical_id.clone();
        let r = cloud
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(&nat)
            .send()
            .await
            .map(|_| ())
            .ctx(&id, "DeleteNatGateway");
        super::gone_ok(r)?;
        // Its address and subnet stay in use until it is fully deleted.
        cloud
            .wait_until(&id, "deleted", Duration::from_secs(900), || async {
                match state(cloud, &id, &nat).await? {
                    None | Some((NatGatewayState::Deleted, _)) => Ok((Some(()), "deleted".into())),
                    Some((s, _)) => Ok((None, s.as_str().to_string())),
                }
            })
            .await
    }
}
