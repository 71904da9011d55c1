//! `ec2:nat-gateway`: outbound internet for private subnets, in a public subnet.

use async_trait::async_trait;
use aws_sdk_ec2::types::{NatGatewayState, ResourceType};

use super::{logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{client_token, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use crate::lifecycle::{self, Readiness};

pub const KIND: &str = "ec2:nat-gateway";

pub struct NatGateway;

/// The gateway's state and what that means for its dependents (`None`:
/// not found).
async fn state(
    cloud: &Cloud,
    id: &str,
    nat: &str,
) -> Result<Option<(NatGatewayState, Readiness)>, CloudError> {
    let out = cloud
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat)
        .send()
        .await;
    match out {
        Ok(o) => Ok(o.nat_gateways().first().and_then(|g| {
            let s = g.state()?.clone();
            let r = lifecycle::nat_gateway(s.as_str(), g.failure_code(), g.failure_message());
            Some((s, r))
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

/// The client token of a create: the resource's own, narrowed to this
/// subnet and address (and, for a retry after a dead answer, a nonce).
fn token_for(base: &str, subnet: &str, alloc: &str, nonce: Option<&str>) -> String {
    client_token(
        base,
        &format!("{subnet}\u{0}{alloc}\u{0}{}", nonce.unwrap_or("")),
    )
}

fn now_nonce() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default()
}

/// Creates a gateway; returns its id, and its state when the answer is a
/// gateway that is gone or failed (a remembered token).
async fn create_nat(
    cloud: &Cloud,
    r: &Resolved,
    subnet: &str,
    alloc: &str,
    token: &str,
) -> Result<(String, Option<NatGatewayState>), CloudError> {
    // The subnet and the address may have been created moments before; the
    // client token makes a repeat safe in any case.
    let req = cloud
        .ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(alloc)
        .client_token(token)
        .tag_specifications(tag_spec(ResourceType::Natgateway, &r.tags));
    let out = cloud
        .settle(&r.id, "CreateNatGateway", || req.clone().send())
        .await?;
    let g = out
        .nat_gateway()
        .ok_or_else(|| CloudError::invalid(&r.id, "CreateNatGateway returned no gateway"))?;
    let id = g
        .nat_gateway_id()
        .ok_or_else(|| CloudError::invalid(&r.id, "CreateNatGateway returned no id"))?
        .to_string();
    let dead = g
        .state()
        .filter(|s| {
            matches!(
                s,
                NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed
            )
        })
        .cloned();
    Ok((id, dead))
}

/// Waits until no gateway that is being deleted holds address `alloc`.
/// Returns false when none did (the address is held by something else).
async fn wait_for_address(cloud: &Cloud, r: &Resolved, alloc: &str) -> Result<bool, CloudError> {
    let out = cloud
        .ec2
        .describe_nat_gateways()
        .filter(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("deleting")
                .build(),
        )
        .send()
        .await
        .ctx(&r.id, "DescribeNatGateways")?;
    let Some(old) = out
        .nat_gateways()
        .iter()
        .find(|g| {
            g.nat_gateway_addresses()
                .iter()
                .any(|a| a.allocation_id() == Some(alloc))
        })
        .and_then(|g| g.nat_gateway_id())
        .map(str::to_string)
    else {
        return Ok(false);
    };
    cloud.reporter.status(
        &r.id,
        &format!("{old} is being deleted, freeing the address"),
    );
    wait_deleted(cloud, &r.id, &old).await?;
    Ok(true)
}

/// Waits until gateway `nat` is deleted: until then its address and
/// subnet stay in use.
async fn wait_deleted(cloud: &Cloud, id: &str, nat: &str) -> Result<(), CloudError> {
    cloud
        .wait_until(
            id,
            "deleted",
            cloud.timeouts.for_kind(KIND, Phase::Delete),
            || async {
                match state(cloud, id, nat).await? {
                    None | Some((NatGatewayState::Deleted, _)) => Ok((Some(()), "deleted".into())),
                    Some((s, _)) => Ok((None, s.as_str().to_string())),
                }
            },
        )
        .await
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_nat_gateways", "DescribeNatGateways", &["ec2:DescribeNatGateways"]),
    w("ec2", "create_nat_gateway", "CreateNatGateway", &["ec2:CreateNatGateway", "ec2:CreateTags"]),
    w("ec2", "delete_nat_gateway", "DeleteNatGateway", &["ec2:DeleteNatGateway"]),
];

#[async_trait]
impl ResourceKind for NatGateway {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateNatGateway carries a client token.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            Phase::Create | Phase::Rollout => t.nat_gateway,
            Phase::Delete => t.delete,
        }
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("subnet_id"), replace("allocation_id")];
        A
    }

    /// An address belongs to one gateway at a time: only with a new address
    /// can the new gateway exist beside the old one.
    fn create_before_destroy(&self, c: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        crate::engine::changes(c, "allocation_id")
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let gateways = cloud
            .ec2
            .describe_nat_gateways()
            .filter(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeNatGateways")?;
        Ok(gateways
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
                    Observed::new(KIND, logical_id(g.tags(), stack)?, g.nat_gateway_id()?)
                        .prop("subnet_id", g.subnet_id().unwrap_or_default())
                        .prop("allocation_id", alloc)
                        .pending(g.state() != Some(&NatGatewayState::Available)),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (subnet, alloc) = (r.str("subnet_id")?, r.str("allocation_id")?);
        // The client token makes a retried create return the first gateway.
        // It covers the subnet and address too: a replacement (new subnet
        // or address) is a new request, not a mismatched repeat.
        let token = token_for(&r.token, subnet, alloc, None);
        let mut id = match create_nat(cloud, r, subnet, alloc, &token).await {
            Err(e) if e.code() == Some("Resource.AlreadyAssociated") => {
                // The address still belongs to a gateway being deleted (by
                // hand, or the old half of a replacement): it is free once
                // that one is gone.
                if !wait_for_address(cloud, r, alloc).await? {
                    return Err(e);
                }
                create_nat(cloud, r, subnet, alloc, &token).await?
            }
            other => other?,
        };
        if let Some(state) = id.1.take() {
            // EC2 remembers a token for a while: a gateway deleted by hand
            // (or failed) comes back for it. Ask again, once, under a new one.
            cloud.reporter.status(
                &r.id,
                &format!("{} is {}; creating another gateway", id.0, state.as_str()),
            );
            let token = token_for(&r.token, subnet, alloc, Some(&now_nonce()));
            id = create_nat(cloud, r, subnet, alloc, &token).await?;
        }
        Ok(Observed::new(KIND, &r.id, id.0)
            .prop("subnet_id", subnet)
            .prop("allocation_id", alloc))
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
            .wait_until(
                &id,
                "available",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    match state(cloud, &id, &nat).await? {
                        Some((_, Readiness::Ready)) => Ok((Some(()), "available".into())),
                        Some((_, Readiness::Terminal(why))) => {
                            Err(CloudError::invalid(&id, format!("NAT gateway {nat} {why}")))
                        }
                        Some((s, Readiness::Pending)) => Ok((None, s.as_str().to_string())),
                        None => Ok((None, "not visible yet".into())),
                    }
                },
            )
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
        wait_deleted(cloud, &id, &nat).await
    }
}

#[cfg(test)]
mod tests {
    use super::token_for;

    #[test]
    fn tokens_follow_the_request_and_fit_ec2s_limit() {
        let t = token_for("bsi-stack-nat-a", "subnet-1", "eipalloc-1", None);
        assert_eq!(
            t,
            token_for("bsi-stack-nat-a", "subnet-1", "eipalloc-1", None)
        );
        assert!(t.len() <= 64, "{t}");
        // Another subnet or address is another request...
        assert_ne!(
            t,
            token_for("bsi-stack-nat-a", "subnet-2", "eipalloc-1", None)
        );
        assert_ne!(
            t,
            token_for("bsi-stack-nat-a", "subnet-1", "eipalloc-2", None)
        );
        // ...and a retry after a gateway was deleted is too.
        assert_ne!(
            t,
            token_for("bsi-stack-nat-a", "subnet-1", "eipalloc-1", Some("1"))
        );
    }
}
