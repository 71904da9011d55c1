//! `elbv2:target-group`: where the load balancer sends requests, with the
//! app's health check.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, Tag, TargetGroupAttribute};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "elbv2:target-group";

pub struct TargetGroup;

pub(crate) fn elb_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags of many ELB resources, 20 ARNs per call: ARN -> logical id, for
/// those the stack owns.
pub(crate) async fn owned(
    cloud: &Cloud,
    kind: &str,
    stack: &str,
    arns: Vec<String>,
) -> Result<BTreeMap<String, String>, CloudError> {
    // DescribeTags takes 20 ARNs a call; the calls go out at once.
    let pages = futures::future::try_join_all(arns.chunks(20).map(|chunk| {
        cloud
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
    }))
    .await
    .ctx(kind, "DescribeTags")?;
    let mut out = BTreeMap::new();
    // DescribeTags answers every ARN asked for in one page (no Marker).
    for d in pages {
        for td in d.tag_descriptions() {
            let tags = td
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value()?)));
            if let (Some(arn), Some(id)) = (td.resource_arn(), super::owner_id(tags, stack)) {
                out.insert(arn.to_string(), id);
            }
        }
    }
    Ok(out)
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("elbv2", "describe_tags", "DescribeTags", &["elasticloadbalancing:DescribeTags"]),
    r("elbv2", "describe_target_group_attributes", "DescribeTargetGroupAttributes", &["elasticloadbalancing:DescribeTargetGroupAttributes"]),
    r("elbv2", "describe_target_groups", "DescribeTargetGroups", &["elasticloadbalancing:DescribeTargetGroups"]),
    w("elbv2", "create_target_group", "CreateTargetGroup", &["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"]),
    w("elbv2", "delete_target_group", "DeleteTargetGroup", &["elasticloadbalancing:DeleteTargetGroup"]),
    w("elbv2", "modify_target_group", "ModifyTargetGroup", &["elasticloadbalancing:ModifyTargetGroup"]),
    w("elbv2", "modify_target_group_attributes", "ModifyTargetGroupAttributes", &["elasticloadbalancing:ModifyTargetGroupAttributes"]),
];

#[async_trait]
impl ResourceKind for TargetGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateTargetGroup with the same name and settings returns the existing group ("This operation is idempotent").
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            replace("port"),
            replace("protocol"),
            replace("vpc_id"),
            // `ip` for Fargate tasks; instances when not given.
            replace("target_type"),
            in_place("health_check_path"),
            in_place("health_check_interval"),
            in_place("healthy_threshold"),
            in_place("unhealthy_threshold"),
            in_place("deregistration_delay"),
        ];
        A
    }

    /// Target group names are unique in a region: a replacement that also
    /// changes the name (it holds the port) can run beside the old one, so
    /// the listener moves over before the old group is deleted.
    fn create_before_destroy(&self, c: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        c.iter().any(|a| a.name == "name" && a.after.is_some())
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // ELBv2 cannot filter by tag: all groups (paged at 400), then their tags.
        let all = cloud
            .elbv2
            .describe_target_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeTargetGroups")?;
        let arns: Vec<String> = all
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect();
        let mine = owned(cloud, KIND, stack, arns).await?;
        let mut out = Vec::new();
        for t in &all {
            let Some(arn) = t.target_group_arn() else {
                continue;
            };
            let Some(id) = mine.get(arn) else { continue };
            let attrs = cloud
                .elbv2
                .describe_target_group_attributes()
                .target_group_arn(arn)
                .send()
                .await
                .ctx(id, "DescribeTargetGroupAttributes")?;
            let delay = attrs
                .attributes()
                .iter()
                .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(300);
            out.push(
                Observed::new(KIND, id, arn)
                    .prop("name", t.target_group_name().unwrap_or_default())
                    .prop("port", t.port().unwrap_or(0))
                    .prop(
                        "protocol",
                        t.protocol().map(|p| p.as_str()).unwrap_or_default(),
                    )
                    .prop("vpc_id", t.vpc_id().unwrap_or_default())
                    .prop(
                        "target_type",
                        t.target_type().map(|p| p.as_str()).unwrap_or("instance"),
                    )
                    .prop(
                        "health_check_path",
                        t.health_check_path().unwrap_or_default(),
                    )
                    .prop(
                        "health_check_interval",
                        t.health_check_interval_seconds().unwrap_or(0),
                    )
                    .prop(
                        "healthy_threshold",
                        t.healthy_threshold_count().unwrap_or(0),
                    )
                    .prop(
                        "unhealthy_threshold",
                        t.unhealthy_threshold_count().unwrap_or(0),
                    )
                    .prop("deregistration_delay", delay)
                    .attr("arn", arn)
                    .attr("name", t.target_group_name().unwrap_or_default()),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // Creating a target group with the name and settings of an existing
        // one returns that one: a retried create makes nothing new.
        let out = cloud
            .elbv2
            .create_target_group()
            .name(r.str("name")?)
            .port(r.i64("port")? as i32)
            .protocol(ProtocolEnum::from(r.str("protocol")?))
            .vpc_id(r.str("vpc_id")?)
            .set_target_type(
                r.opt_str("target_type")
                    .map(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::from),
            )
            .health_check_path(r.str("health_check_path")?)
            .health_check_interval_seconds(r.i64("health_check_interval")? as i32)
            .healthy_threshold_count(r.i64("healthy_threshold")? as i32)
            .unhealthy_threshold_count(r.i64("unhealthy_threshold")? as i32)
            .set_tags(Some(elb_tags(&r.tags)))
            .send()
            .await
            .ctx(&r.id, "CreateTargetGroup")?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateTargetGroup returned nothing"))?
            .to_string();
        set_delay(cloud, r, &arn).await?;
        let mut o = Observed::new(KIND, &r.id, &arn)
            .attr("arn", &arn)
            .attr("name", r.str("name")?);
        for a in self.attributes() {
            if let Some(v) = r.props.get(a.name) {
                o.props.insert(a.name.into(), v.clone());
            }
        }
        Ok(o)
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let arn = &current.physical_id;
        if changed.iter().any(|c| c != "deregistration_delay") {
            cloud
                .elbv2
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_path(r.str("health_check_path")?)
                .health_check_interval_seconds(r.i64("health_check_interval")? as i32)
                .healthy_threshold_count(r.i64("healthy_threshold")? as i32)
                .unhealthy_threshold_count(r.i64("unhealthy_threshold")? as i32)
                .send()
                .await
                .ctx(&r.id, "ModifyTargetGroup")?;
        }
        if changed.iter().any(|c| c == "deregistration_delay") {
            set_delay(cloud, r, arn).await?;
        }
        let mut o = current.clone();
        for a in self.attributes() {
            if let Some(v) = r.props.get(a.name) {
                o.props.insert(a.name.into(), v.clone());
            }
        }
        Ok(o)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        match cloud
            .elbv2
            .delete_target_group()
            .target_group_arn(&current.physical_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => super::gone_ok(Err(api_error(&current.id, "DeleteTargetGroup", e))),
        }
    }
}

/// Sets the deregistration delay, right after CreateTargetGroup too: the
/// new group may answer `TargetGroupNotFound` for moments.
async fn set_delay(cloud: &Cloud, r: &Resolved, arn: &str) -> Result<(), CloudError> {
    let req = cloud
        .elbv2
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(r.i64("deregistration_delay")?.to_string())
                .build(),
        );
    cloud
        .settle(&r.id, "ModifyTargetGroupAttributes", || req.clone().send())
        .await?;
    Ok(())
}

/// Every target of `tg` with its health. DescribeTargetHealth has no
/// paging parameters (Elastic Load Balancing API Reference): one answer.
pub async fn target_health(
    cloud: &Cloud,
    id: &str,
    tg: &str,
) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription>, CloudError> {
    Ok(cloud
        .elbv2
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .ctx(id, "DescribeTargetHealth")?
        .target_health_descriptions()
        .to_vec())
}

/// The ids (instance ids, or addresses for `ip` targets) of the targets
/// of `tg` that are healthy.
pub async fn healthy_targets(
    cloud: &Cloud,
    id: &str,
    tg: &str,
) -> Result<std::collections::BTreeSet<String>, CloudError> {
    Ok(healthy_ids(&target_health(cloud, id, tg).await?))
}

/// The ids of the healthy targets among `described`.
pub fn healthy_ids(
    described: &[aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription],
) -> std::collections::BTreeSet<String> {
    described
        .iter()
        .filter(|t| {
            t.target_health()
                .and_then(|h| h.state())
                .is_some_and(|s| s.as_str() == "healthy")
        })
        .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_string))
        .collect()
}
