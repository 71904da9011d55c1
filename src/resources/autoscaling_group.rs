//! `autoscaling:group`: the app instances, across the private subnets,
//! behind the target group, with a target-tracking scaling policy.
//!
//! A new launch template version is rolled out with an instance refresh
//! (rolling, minimum healthy percentage, automatic rollback). The version a
//! refresh finished rolling out is recorded in the tag
//! `bookstore-infra:rolled-out`; until then the group counts as not yet
//! updated, so an interrupted or failed rollout is retried by the next `up`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    Filter, InstanceRefreshStatus, LaunchTemplateSpecification, MetricType,
    PredefinedMetricSpecification, RefreshPreferences, RefreshStrategy, Tag,
    TargetTrackingConfiguration,
};
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Resolved, ResourceKind, TAG_ID, TAG_STACK,
};

pub const KIND: &str = "autoscaling:group";
pub const TAG_ROLLED_OUT: &str = "bookstore-infra:rolled-out";
const POLICY: &str = "bookstore-target-tracking";

pub struct AutoScalingGroup;

fn tag(group: &str, k: &str, v: &str, propagate: bool) -> Tag {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(k)
        .value(v)
        .propagate_at_launch(propagate)
        .build()
}

fn csv(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `app/<lb>/<id>/targetgroup/<tg>/<id>`, the label request-count tracking needs.
pub fn resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    Some(format!("{lb}/{tg}"))
}

impl AutoScalingGroup {
    async fn put_policy(&self, cloud: &Cloud, r: &Resolved, group: &str) -> Result<(), CloudError> {
        let Some(s) = r.props.get("scaling").filter(|s| !s.is_null()) else {
            return Ok(());
        };
        let target = s["target"].as_f64().unwrap_or(50.0);
        let metric = match s["metric"].as_str() {
            Some("requests") => {
                let from = r
                    .props
                    .get("scaling_target")
                    .cloned()
                    .unwrap_or(Value::Null);
                let label = resource_label(
                    from["load_balancer_arn"].as_str().unwrap_or_default(),
                    from["target_group_arn"].as_str().unwrap_or_default(),
                )
                .ok_or_else(|| {
                    CloudError::invalid(
                        &r.id,
                        "request tracking needs the load balancer and target group",
                    )
                })?;
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
                    .resource_label(label)
                    .build()
            }
            _ => PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                .build(),
        };
        cloud
            .autoscaling
            .put_scaling_policy()
            .auto_scaling_group_name(group)
            .policy_name(POLICY)
            .policy_type("TargetTrackingScaling")
            .target_tracking_configuration(
                TargetTrackingConfiguration::builder()
                    .predefined_metric_specification(metric)
                    .target_value(target)
                    .build(),
            )
            .send()
            .await
            .ctx(&r.id, "PutScalingPolicy")?;
        Ok(())
    }

    async fn mark_rolled_out(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        version: &str,
    ) -> Result<(), CloudError> {
        cloud
            .autoscaling
            .create_or_update_tags()
            .tags(tag(group, TAG_ROLLED_OUT, version, false))
            .send()
            .await
            .ctx(id, "CreateOrUpdateTags")?;
        Ok(())
    }

    /// Rolls the group's instances onto its launch template version and waits.
    async fn refresh(&self, cloud: &Cloud, r: &Resolved, group: &str) -> Result<(), CloudError> {
        let pref = r.props.get("refresh").cloned().unwrap_or(json!({}));
        let min_healthy = pref["min_healthy"].as_i64().unwrap_or(90) as i32;
        let warmup = pref["warmup"].as_i64().unwrap_or(120) as i32;
        cloud.reporter.note(&format!(
            "{}: starting an instance refresh of {group} (rolling, min healthy {min_healthy}%, warmup {warmup}s, auto rollback)",
            r.id
        ));
        let started = cloud
            .autoscaling
            .start_instance_refresh()
            .auto_scaling_group_name(group)
            .strategy(RefreshStrategy::Rolling)
            .preferences(
                RefreshPreferences::builder()
                    .min_healthy_percentage(min_healthy)
                    .instance_warmup(warmup)
                    .auto_rollback(true)
                    .skip_matching(true)
                    .build(),
            )
            .send()
            .await
            .ctx(&r.id, "StartInstanceRefresh")?;
        let refresh_id = started
            .instance_refresh_id()
            .unwrap_or_default()
            .to_string();
        cloud
            .wait_until(
                &r.id,
                "instance refresh",
                Duration::from_secs(3600),
                || async {
                    let d = cloud
                        .autoscaling
                        .describe_instance_refreshes()
                        .auto_scaling_group_name(group)
                        .instance_refresh_ids(&refresh_id)
                        .send()
                        .await
                        .ctx(&r.id, "DescribeInstanceRefreshes")?;
                    let Some(ir) = d.instance_refreshes().first() else {
                        return Ok((None, "starting".into()));
                    };
                    let pct = ir.percentage_complete().unwrap_or(0);
                    match ir.status() {
                        Some(InstanceRefreshStatus::Successful) => {
                            Ok((Some(()), "successful".into()))
                        }
                        Some(
                            s @ (InstanceRefreshStatus::Failed
                            | InstanceRefreshStatus::Cancelled
                            | InstanceRefreshStatus::RollbackSuccessful
                            | InstanceRefreshStatus::RollbackFailed),
                        ) => Err(CloudError::invalid(
                            &r.id,
                            format!(
                                "instance refresh {refresh_id} ended {}: {}",
                                s.as_str(),
                                ir.status_reason().unwrap_or("no reason given")
                            ),
                        )),
                        s => Ok((
                            None,
                            format!("{} {pct}%", s.map(|s| s.as_str()).unwrap_or("?")),
                        )),
                    }
                },
            )
            .await
    }
}

#[async_trait]
impl ResourceKind for AutoScalingGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            in_place("launch_template_id"),
            in_place("launch_template_version"),
            in_place("subnets"),
            in_place("target_group_arns"),
            in_place("min"),
            in_place("max"),
            in_place("health_check_grace"),
            in_place("scaling"),
        ];
        A
    }

    /// Instances in its subnets keep them; the target group and launch
    /// template it names can be deleted from under it.
    fn reference_blocks_deletion(&self, attr: &str) -> bool {
        attr == "subnets"
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let out = cloud
            .autoscaling
            .describe_auto_scaling_groups()
            .filters(
                Filter::builder()
                    .name(format!("tag:{TAG_STACK}"))
                    .values(stack)
                    .build(),
            )
            .send()
            .await
            .ctx(KIND, "DescribeAutoScalingGroups")?;
        let mut res = Vec::new();
        for g in out.auto_scaling_groups() {
            let get = |k: &str| {
                g.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            if get(TAG_STACK) != Some(stack) {
                continue;
            }
            let Some(id) = get(TAG_ID) else { continue };
            let name = g.auto_scaling_group_name().unwrap_or_default();
            let lt = g.launch_template();
            let version = get(TAG_ROLLED_OUT)
                .or_else(|| lt.and_then(|l| l.version()))
                .unwrap_or_default();
            let mut subnets: Vec<&str> = g
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .collect();
            subnets.sort();
            let policies = cloud
                .autoscaling
                .describe_policies()
                .auto_scaling_group_name(name)
                .send()
                .await
                .ctx(id, "DescribePolicies")?;
            let scaling = policies
                .scaling_policies()
                .iter()
                .find(|p| p.policy_name() == Some(POLICY))
                .and_then(|p| p.target_tracking_configuration())
                .map(|t| {
                    let metric = match t
                        .predefined_metric_specification()
                        .and_then(|m| m.predefined_metric_type())
                    {
                        Some(&MetricType::AlbRequestCountPerTarget) => "requests",
                        _ => "cpu",
                    };
                    json!({"metric": metric, "target": t.target_value()})
                })
                .unwrap_or(Value::Null);
            res.push(
                Observed::new(KIND, id, name)
                    .prop("name", name)
                    .prop(
                        "launch_template_id",
                        lt.and_then(|l| l.launch_template_id()).unwrap_or_default(),
                    )
                    .prop("launch_template_version", version)
                    .prop("subnets", json!(subnets))
                    .prop("target_group_arns", json!(g.target_group_arns()))
                    .prop("min", g.min_size().unwrap_or(0))
                    .prop("max", g.max_size().unwrap_or(0))
                    .prop(
                        "health_check_grace",
                        g.health_check_grace_period().unwrap_or(0),
                    )
                    .prop("scaling", scaling)
                    .attr("name", name)
                    .attr("arn", g.auto_scaling_group_arn().unwrap_or_default()),
            );
        }
        Ok(res)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?.to_string();
        let version = r.str("launch_template_version")?.to_string();
        let mut tags: Vec<Tag> = r
            .tags
            .iter()
            .map(|(k, v)| tag(&name, k, v, k == "Name"))
            .collect();
        tags.push(tag(&name, TAG_ROLLED_OUT, &version, false));
        let started = std::time::Instant::now();
        loop {
            let res = cloud
                .autoscaling
                .create_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(r.str("launch_template_id")?)
                        .version(&version)
                        .build(),
                )
                .min_size(r.i64("min")? as i32)
                .max_size(r.i64("max")? as i32)
                .desired_capacity(r.i64("desired")? as i32)
                .vpc_zone_identifier(csv(&r.props["subnets"]))
                .set_target_group_arns(Some(strings(r.props.get("target_group_arns"))))
                .health_check_type("ELB")
                .health_check_grace_period(r.i64("health_check_grace")? as i32)
                .set_tags(Some(tags.clone()))
                .send()
                .await;
            match res {
                Ok(_) => break,
                Err(e) => {
                    let e = api_error(&r.id, "CreateAutoScalingGroup", e);
                    match e.code() {
                        // Made by an interrupted run (the tags were set in the same call).
                        Some("AlreadyExists") => break,
                        // A new instance profile takes a few seconds to be usable.
                        Some("ValidationError")
                            if e.to_string().contains("IamInstanceProfile")
                                && started.elapsed() < Duration::from_secs(120) =>
                        {
                            cloud.status(&r.id, "waiting for the instance profile to propagate");
                            tokio::time::sleep(cloud.poll.max(Duration::from_secs(1))).await;
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        self.put_policy(cloud, r, &name).await?;
        let mut subnets = strings(r.props.get("subnets"));
        subnets.sort();
        Ok(Observed::new(KIND, &r.id, &name)
            .prop("name", name.as_str())
            .prop("launch_template_id", r.str("launch_template_id")?)
            .prop("launch_template_version", version)
            .prop("subnets", json!(subnets))
            .prop(
                "target_group_arns",
                json!(strings(r.props.get("target_group_arns"))),
            )
            .prop("min", r.i64("min")?)
            .prop("max", r.i64("max")?)
            .prop("health_check_grace", r.i64("health_check_grace")?)
            .prop(
                "scaling",
                r.props.get("scaling").cloned().unwrap_or(Value::Null),
            )
            .attr("name", name.as_str()))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let name = &current.physical_id;
        let has = |a: &str| changed.iter().any(|c| c == a);
        let version = r.str("launch_template_version")?.to_string();
        cloud
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(r.str("launch_template_id")?)
                    .version(&version)
                    .build(),
            )
            .min_size(r.i64("min")? as i32)
            .max_size(r.i64("max")? as i32)
            .vpc_zone_identifier(csv(&r.props["subnets"]))
            .health_check_type("ELB")
            .health_check_grace_period(r.i64("health_check_grace")? as i32)
            .send()
            .await
            .ctx(&r.id, "UpdateAutoScalingGroup")?;
        if has("target_group_arns") {
            let want = strings(r.props.get("target_group_arns"));
            let have = strings(current.props.get("target_group_arns"));
            let gone: Vec<String> = have.iter().filter(|h| !want.contains(h)).cloned().collect();
            let new: Vec<String> = want.iter().filter(|w| !have.contains(w)).cloned().collect();
            if !new.is_empty() {
                cloud
                    .autoscaling
                    .attach_load_balancer_target_groups()
                    .auto_scaling_group_name(name)
                    .set_target_group_arns(Some(new))
                    .send()
                    .await
                    .ctx(&r.id, "AttachLoadBalancerTargetGroups")?;
            }
            if !gone.is_empty() {
                cloud
                    .autoscaling
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(name)
                    .set_target_group_arns(Some(gone))
                    .send()
                    .await
                    .ctx(&r.id, "DetachLoadBalancerTargetGroups")?;
            }
        }
        if has("scaling") {
            self.put_policy(cloud, r, name).await?;
        }
        if has("launch_template_id") || has("launch_template_version") {
            self.refresh(cloud, r, name).await?;
            self.mark_rolled_out(cloud, &r.id, name, &version).await?;
        }
        let mut subnets = strings(r.props.get("subnets"));
        subnets.sort();
        Ok(current
            .clone()
            .prop("launch_template_id", r.str("launch_template_id")?)
            .prop("launch_template_version", version)
            .prop("subnets", json!(subnets))
            .prop(
                "target_group_arns",
                json!(strings(r.props.get("target_group_arns"))),
            )
            .prop("min", r.i64("min")?)
            .prop("max", r.i64("max")?)
            .prop("health_check_grace", r.i64("health_check_grace")?)
            .prop(
                "scaling",
                r.props.get("scaling").cloned().unwrap_or(Value::Null),
            ))
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let min = current
            .props
            .get("min")
            .and_then(Value::as_i64)
            .unwrap_or(0) as usize;
        let name = current.physical_id.clone();
        let id = current.id.clone();
        cloud
            .wait_until(
                &id,
                "instances in service",
                Duration::from_secs(1800),
                || async {
                    let d = cloud
                        .autoscaling
                        .describe_auto_scaling_groups()
                        .auto_scaling_group_names(&name)
                        .send()
                        .await
                        .ctx(&id, "DescribeAutoScalingGroups")?;
                    let n = d
                        .auto_scaling_groups()
                        .first()
                        .map(|g| {
                            g.instances()
                                .iter()
                                .filter(|i| {
                                    i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                                })
                                .filter(|i| i.health_status() == Some("Healthy"))
                                .count()
                        })
                        .unwrap_or(0);
                    Ok(((n >= min).then_some(()), format!("{n}/{min} in service")))
                },
            )
            .await?;
        Ok(current)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let name = current.physical_id.clone();
        let id = current.id.clone();
        let r = cloud
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .force_delete(true)
            .send()
            .await;
        if let Err(e) = r {
            let e = api_error(&id, "DeleteAutoScalingGroup", e);
            if !(e.code() == Some("ValidationError") && e.to_string().contains("not found")) {
                return Err(e);
            }
        }
        cloud
            .wait_until(&id, "deleted", Duration::from_secs(1800), || async {
                let d = cloud
                    .autoscaling
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(&name)
                    .send()
                    .await
                    .ctx(&id, "DescribeAutoScalingGroups")?;
                Ok(match d.auto_scaling_groups().first() {
                    None => (Some(()), "deleted".into()),
                    Some(g) => (None, g.status().unwrap_or("deleting").to_string()),
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tracking_label() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo-lb/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-app/73e2d6bc24d8a067";
        assert_eq!(
            resource_label(lb, tg).unwrap(),
            "app/demo-lb/50dc6c495c0c9188/targetgroup/demo-app/73e2d6bc24d8a067"
        );
        assert_eq!(resource_label("nonsense", tg), None);
    }
}
