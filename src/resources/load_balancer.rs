//! `elbv2:load-balancer`: the internet-facing Application Load Balancer.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum,
};
use serde_json::json;

use super::attrs::sorted_strings;
use super::target_group::{elb_tags, owned};
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use crate::lifecycle::{self, Readiness};

pub const KIND: &str = "elbv2:load-balancer";

pub struct LoadBalancer;

fn observed(id: &str, lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> Observed {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let mut subnets: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    subnets.sort();
    let mut sgs: Vec<&str> = lb.security_groups().iter().map(String::as_str).collect();
    sgs.sort();
    Observed::new(KIND, id, arn)
        .prop("name", lb.load_balancer_name().unwrap_or_default())
        .prop("subnets", json!(subnets))
        .prop("security_groups", json!(sgs))
        .prop(
            "scheme",
            lb.scheme().map(|s| s.as_str()).unwrap_or_default(),
        )
        .attr("arn", arn)
        .attr("dns_name", lb.dns_name().unwrap_or_default())
        .attr("zone_id", lb.canonical_hosted_zone_id().unwrap_or_default())
        .pending(lb.state().and_then(|s| s.code()) != Some(&LoadBalancerStateEnum::Active))
}

/// The stack's load balancers, with their logical ids. ELBv2 cannot filter
/// by tag: all load balancers (paged at 400), then their tags. `kind`
/// names the reader in errors (the listeners read them too).
pub(crate) async fn read_owned(
    cloud: &Cloud,
    kind: &str,
    stack: &str,
) -> Result<Vec<(String, aws_sdk_elasticloadbalancingv2::types::LoadBalancer)>, CloudError> {
    let all = cloud
        .elbv2
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(kind, "DescribeLoadBalancers")?;
    let arns = all
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    let mine = owned(cloud, kind, stack, arns).await?;
    Ok(all
        .into_iter()
        .filter_map(|l| Some((mine.get(l.load_balancer_arn()?)?.clone(), l)))
        .collect())
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("elbv2", "describe_load_balancers", "DescribeLoadBalancers", &["elasticloadbalancing:DescribeLoadBalancers"]),
    w("elbv2", "create_load_balancer", "CreateLoadBalancer", &["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:AddTags", "iam:CreateServiceLinkedRole"]),
    w("elbv2", "delete_load_balancer", "DeleteLoadBalancer", &["elasticloadbalancing:DeleteLoadBalancer"]),
    w("elbv2", "set_security_groups", "SetSecurityGroups", &["elasticloadbalancing:SetSecurityGroups"]),
    w("elbv2", "set_subnets", "SetSubnets", &["elasticloadbalancing:SetSubnets"]),
];

#[async_trait]
impl ResourceKind for LoadBalancer {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateLoadBalancer with the same name and settings returns the existing one ("This operation is idempotent").
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            Phase::Create | Phase::Rollout => t.load_balancer,
            Phase::Delete => t.delete,
        }
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            replace("scheme"),
            in_place("subnets"),
            in_place("security_groups"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        Ok(read_owned(cloud, KIND, stack)
            .await?
            .iter()
            .map(|(id, l)| observed(id, l))
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // The name is unique per account and region; a retried create with
        // the same settings returns the existing load balancer.
        // Its subnets and security groups may have been created moments
        // before (`SubnetNotFound`, `InvalidSecurityGroup` then mean nothing
        // was created).
        let req = cloud
            .elbv2
            .create_load_balancer()
            .name(r.str("name")?)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(r.str("scheme")?))
            .set_subnets(Some(sorted_strings(r.props.get("subnets"))))
            .set_security_groups(Some(sorted_strings(r.props.get("security_groups"))))
            .set_tags(Some(elb_tags(&r.tags)));
        let out = cloud
            .settle(&r.id, "CreateLoadBalancer", || req.clone().send())
            .await?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateLoadBalancer returned nothing"))?;
        Ok(observed(&r.id, lb))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let arn = &current.physical_id;
        if changed.iter().any(|c| c == "subnets") {
            let req = cloud
                .elbv2
                .set_subnets()
                .load_balancer_arn(arn)
                .set_subnets(Some(sorted_strings(r.props.get("subnets"))));
            cloud
                .settle(&r.id, "SetSubnets", || req.clone().send())
                .await?;
        }
        if changed.iter().any(|c| c == "security_groups") {
            let req = cloud
                .elbv2
                .set_security_groups()
                .load_balancer_arn(arn)
                .set_security_groups(Some(sorted_strings(r.props.get("security_groups"))));
            cloud
                .settle(&r.id, "SetSecurityGroups", || req.clone().send())
                .await?;
        }
        Ok(current
            .clone()
            .prop("subnets", json!(sorted_strings(r.props.get("subnets"))))
            .prop(
                "security_groups",
                json!(sorted_strings(r.props.get("security_groups"))),
            ))
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let arn = current.physical_id.clone();
        let id = current.id.clone();
        cloud
            .wait_until(
                &id,
                "active",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let d = cloud
                        .elbv2
                        .describe_load_balancers()
                        .load_balancer_arns(&arn)
                        .send()
                        .await
                        .ctx(&id, "DescribeLoadBalancers")?;
                    let state = d.load_balancers().first().and_then(|l| l.state());
                    let code = state
                        .and_then(|s| s.code())
                        .map(LoadBalancerStateEnum::as_str)
                        .unwrap_or("provisioning");
                    match lifecycle::load_balancer(code, state.and_then(|s| s.reason())) {
                        Readiness::Ready => Ok((Some(()), code.to_string())),
                        Readiness::Pending => Ok((None, code.to_string())),
                        Readiness::Terminal(why) => Err(CloudError::invalid(
                            &id,
                            format!("the load balancer is {why}"),
                        )),
                    }
                },
            )
            .await?;
        Ok(current)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let arn = current.physical_id.clone();
        let id = current.id.clone();
        if let Err(e) = cloud
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(&arn)
            .send()
            .await
        {
            super::gone_ok(Err(api_error(&id, "DeleteLoadBalancer", e)))?;
        }
        // Its network interfaces hold the subnets and groups until it is gone.
        cloud
            .wait_until(
                &id,
                "deleted",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    match cloud
                        .elbv2
                        .describe_load_balancers()
                        .load_balancer_arns(&arn)
                        .send()
                        .await
                        .ctx(&id, "DescribeLoadBalancers")
                    {
                        Ok(d) if !d.load_balancers().is_empty() => Ok((None, "deleting".into())),
                        Ok(_) => Ok((Some(()), "deleted".into())),
                        Err(e) if e.code() == Some("LoadBalancerNotFound") => {
                            Ok((Some(()), "deleted".into()))
                        }
                        Err(e) => Err(e),
                    }
                },
            )
            .await
    }
}
