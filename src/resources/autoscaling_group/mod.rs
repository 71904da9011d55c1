//! `autoscaling:group`: the app instances, across the private subnets,
//! behind the target group, with a target-tracking scaling policy.
//!
//! A new launch template version is rolled out with an instance refresh
//! whose desired configuration is that version (rolling, minimum healthy
//! percentage, skip matching, automatic rollback). The group itself is not
//! moved to the new version: AWS applies the desired configuration to the
//! group when the refresh succeeds, and on a rollback returns the group's
//! instances to the configuration it still has. The version a refresh
//! finished rolling out, with every target healthy behind the load
//! balancer, is recorded in the tag `bookstore-infra:rolled-out`; until
//! then the group counts as not yet updated, so an interrupted or failed
//! rollout is taken up again by the next `up` (resuming the refresh still
//! running for the same version, or cancelling one for another version).
//!
//! `rollback` rolls the group onto an earlier version the same way and tags
//! it [`TAG_ROLLED_BACK`]; the tag shows in the plan as the `rolled_back`
//! property, which `up` clears as it rolls forward to the latest version
//! (see [`crate::releases`]).
//!
//! Its rooms: `refresh`, the instance refresh decisions (status, next step,
//! request); `report`, what a rollout says of a refresh; `rollout`, the
//! controller that rolls the group out (and back); `in_place`, a release
//! rolled out on the instances there (the single shape); `health`, whether
//! the group's instances serve behind the load balancer; `scaling`, its
//! target tracking policy.

mod health;
mod in_place;
mod refresh;
mod report;
mod rollout;
mod scaling;

pub use health::{healthy_targets, TargetState};
pub use in_place::RELEASE_COMMAND;
pub use refresh::{
    is_active, is_failure, is_success, next_step, refresh_preferences, start_request, NextStep,
    RefreshSeen, TemplateVersion,
};
pub use report::{refresh_failure, refresh_progress};
pub use rollout::roll_back;
pub use scaling::resource_label;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup as Group, Filter, LaunchTemplateSpecification, MetricType, Tag,
};
use serde::Serialize;
use serde_json::{json, Value};

use super::attrs::{csv, sorted_strings, strings};
use super::owner_id;
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind, TAG_STACK,
};

pub const KIND: &str = "autoscaling:group";
pub const TAG_ROLLED_OUT: &str = "bookstore-infra:rolled-out";
/// Set by `rollback` (`<version> from <version>`): the group runs an
/// earlier release than the launch template's latest. The plan shows it as
/// the `rolled_back` property the next `up` clears when it rolls forward.
pub const TAG_ROLLED_BACK: &str = "bookstore-infra:rolled-back";
/// What the instances are apart from their release (`in_place.config`,
/// the single shape): a new value replaces them, a new release alone is
/// rolled out on them.
pub const TAG_INSTANCE_CONFIG: &str = "bookstore-infra:instance-config";
const POLICY: &str = "bookstore-target-tracking";

/// The health check the group judges its instances by: the load
/// balancer's, or EC2's status checks when none is in front.
fn health_check_type(r: &Resolved) -> &str {
    r.props
        .get("health_check_type")
        .and_then(Value::as_str)
        .unwrap_or("ELB")
}

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

/// The value of the group's tag `k`.
fn tag_value<'a>(g: &'a Group, k: &str) -> Option<&'a str> {
    g.tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
}

/// The stack's groups, each with its logical id: those
/// DescribeAutoScalingGroups lists by the stack's tag (every page) whose
/// tags name the stack and an id. `ctx` names the reader in errors. The
/// one reading of the stack's groups, for the plan and for the releases.
pub(crate) async fn stack_groups(
    cloud: &Cloud,
    ctx: &str,
    stack: &str,
) -> Result<Vec<(String, Group)>, CloudError> {
    let pages = cloud
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_STACK}"))
                .values(stack)
                .build(),
        )
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(ctx, "DescribeAutoScalingGroups")?;
    Ok(pages
        .iter()
        .flat_map(|p| p.auto_scaling_groups())
        .filter_map(|g| {
            let tags = g.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
            Some((owner_id(tags, stack)?, g.clone()))
        })
        .collect())
}

/// Group `name` as DescribeAutoScalingGroups answers for it (None while it
/// is not listed: just created, or deleted). One name asked for: one page.
pub(crate) async fn describe(
    cloud: &Cloud,
    id: &str,
    name: &str,
) -> Result<Option<Group>, CloudError> {
    let d = cloud
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .ctx(id, "DescribeAutoScalingGroups")?;
    Ok(d.auto_scaling_groups().first().cloned())
}

/// The group's side of the releases (see [`crate::releases`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    pub name: String,
    /// The launch template version the group names.
    pub version: Option<i64>,
    /// The version recorded as rolled out.
    pub rolled_out: Option<i64>,
    /// Set by `rollback`: `<version> from <version>`.
    pub rolled_back: Option<String>,
}

impl GroupState {
    pub fn of(g: &Group) -> Self {
        GroupState {
            name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
            version: g
                .launch_template()
                .and_then(|l| l.version())
                .and_then(|v| v.parse().ok()),
            rolled_out: tag_value(g, TAG_ROLLED_OUT).and_then(|v| v.parse().ok()),
            rolled_back: tag_value(g, TAG_ROLLED_BACK).map(str::to_string),
        }
    }

    /// The launch template versions the group names, runs, or was rolled
    /// back onto: never pruned.
    pub fn versions_in_use(&self) -> [Option<i64>; 3] {
        [
            self.version,
            self.rolled_out,
            self.rolled_back
                .as_deref()
                .and_then(|t| t.split_whitespace().next())
                .and_then(|v| v.parse().ok()),
        ]
    }
}

/// The stack's group, as the releases see it.
pub(crate) async fn group_state(
    cloud: &Cloud,
    ctx: &str,
    stack: &str,
) -> Result<Option<GroupState>, CloudError> {
    let groups = stack_groups(cloud, ctx, stack).await?;
    Ok(groups.first().map(|(_, g)| GroupState::of(g)))
}

/// The plan's text for a group `rollback` left on an earlier release
/// (the tag's value, `<version> from <version>`).
pub fn rolled_back_note(tag: &str) -> String {
    let (to, from) = tag.split_once(" from ").unwrap_or((tag, "?"));
    format!(
        "on release {to}, rolled back from {from} by `rollback`; `up` keeps it there until the stack file ships another binary, or rolls forward with `up --roll-forward`"
    )
}

/// The instances' configuration apart from their release, when the group
/// rolls releases out in place.
fn instance_config(r: &Resolved) -> Option<&str> {
    r.props.get("in_place")?.get("config")?.as_str()
}

/// `o` with the properties `r` wants the group to have, as AWS reads them
/// back (subnets sorted): what a create or an update leaves.
fn wanted_props(o: Observed, r: &Resolved) -> Result<Observed, CloudError> {
    Ok(o.prop("launch_template_id", r.str("launch_template_id")?)
        .prop("launch_template_version", r.str("launch_template_version")?)
        .prop("subnets", json!(sorted_strings(r.props.get("subnets"))))
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
        .prop("health_check_type", health_check_type(r))
        .prop(
            "in_place",
            r.props.get("in_place").cloned().unwrap_or(Value::Null),
        ))
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    // `exec`, and the single shape's release in place, run a command on
    // the group's instances (`cloud::run_command`).
    w("ssm", "send_command", "SendCommand", &["ssm:SendCommand"]),
    r("autoscaling", "describe_policies", "DescribePolicies", &["autoscaling:DescribePolicies"]),
    w("autoscaling", "attach_load_balancer_target_groups", "AttachLoadBalancerTargetGroups", &["autoscaling:AttachLoadBalancerTargetGroups"]),
    w("autoscaling", "cancel_instance_refresh", "CancelInstanceRefresh", &["autoscaling:CancelInstanceRefresh"]),
    w("autoscaling", "create_auto_scaling_group", "CreateAutoScalingGroup", &["autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "ec2:RunInstances", "iam:PassRole", "iam:CreateServiceLinkedRole"]),
    w("autoscaling", "create_or_update_tags", "CreateOrUpdateTags", &["autoscaling:CreateOrUpdateTags"]),
    w("autoscaling", "delete_auto_scaling_group", "DeleteAutoScalingGroup", &["autoscaling:DeleteAutoScalingGroup"]),
    w("autoscaling", "delete_tags", "DeleteTags", &["autoscaling:DeleteTags"]),
    w("autoscaling", "detach_load_balancer_target_groups", "DetachLoadBalancerTargetGroups", &["autoscaling:DetachLoadBalancerTargetGroups"]),
    w("autoscaling", "put_scaling_policy", "PutScalingPolicy", &["autoscaling:PutScalingPolicy"]),
    w("autoscaling", "start_instance_refresh", "StartInstanceRefresh", &["autoscaling:StartInstanceRefresh", "ec2:RunInstances", "iam:PassRole"]),
    w("autoscaling", "update_auto_scaling_group", "UpdateAutoScalingGroup", &["autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances", "iam:PassRole"]),
];

#[async_trait]
impl ResourceKind for AutoScalingGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Group names are unique: `AlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            Phase::Create => t.instances,
            Phase::Rollout => t.instance_refresh,
            Phase::Delete => t.delete,
        }
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
            in_place("health_check_type"),
            in_place("in_place"),
            in_place("rolled_back"),
        ];
        A
    }

    /// A group whose instances take new releases in place replaces them
    /// for anything else: one instance means the site is down meanwhile.
    fn update_note(&self, changes: &[crate::engine::plan::AttrDiff]) -> Option<String> {
        crate::engine::changes(changes, "in_place").then(|| {
            "the instance is replaced (new instance type, AMI or boot settings): \
             the site is down while the new instance boots, a few minutes"
                .to_string()
        })
    }

    /// Instances in its subnets keep them; the target group and launch
    /// template it names can be deleted from under it.
    fn reference_blocks_deletion(&self, attr: &str) -> bool {
        attr == "subnets"
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let mut res = Vec::new();
        for (id, g) in &stack_groups(cloud, KIND, stack).await? {
            let get = |k: &str| tag_value(g, k);
            let name = g.auto_scaling_group_name().unwrap_or_default();
            let lt = g.launch_template();
            // What is rolled out, not what the group names: a refresh that
            // was interrupted or failed leaves the group still to update.
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
                .into_paginator()
                .send()
                .try_collect()
                .await
                .ctx(id, "DescribePolicies")?;
            let scaling = policies
                .iter()
                .flat_map(|p| p.scaling_policies())
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
            let mut o = Observed::new(KIND, id, name);
            if let Some(t) = get(TAG_ROLLED_BACK) {
                o = o.prop("rolled_back", rolled_back_note(t));
            }
            if let Some(c) = get(TAG_INSTANCE_CONFIG) {
                o = o.prop("in_place", json!({"config": c}));
            }
            res.push(
                o.prop("name", name)
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
                    .prop(
                        "health_check_type",
                        g.health_check_type().unwrap_or_default(),
                    )
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
        if let Some(c) = instance_config(r) {
            tags.push(tag(&name, TAG_INSTANCE_CONFIG, c, false));
        }
        let req = cloud
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
            .health_check_type(health_check_type(r))
            .health_check_grace_period(r.i64("health_check_grace")? as i32)
            .set_tags(Some(tags));
        // An instance profile made moments before is refused for seconds
        // (`ValidationError` "Invalid IamInstanceProfile": IAM eventual
        // consistency), a refusal that creates nothing: `settle` retries it.
        match cloud
            .settle(&r.id, "CreateAutoScalingGroup", || req.clone().send())
            .await
        {
            Ok(_) => {}
            // Made by an interrupted run (the tags were set in the same call).
            Err(e) if e.code() == Some("AlreadyExists") => {}
            Err(e) => return Err(e),
        }
        self.put_policy(cloud, r, &name).await?;
        let o = Observed::new(KIND, &r.id, &name).prop("name", name.as_str());
        Ok(wanted_props(o, r)?.attr("name", name.as_str()))
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
        // Never the launch template: the instance refresh below sets it on
        // the group once it succeeds, and AWS refuses it while a refresh
        // with a desired configuration is active ("An active instance
        // refresh with a desired configuration exists"; sizes and the rest
        // may change meanwhile).
        if [
            "min",
            "max",
            "subnets",
            "health_check_grace",
            "health_check_type",
        ]
        .iter()
        .any(|a| has(a))
        {
            cloud
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(r.i64("min")? as i32)
                .max_size(r.i64("max")? as i32)
                .vpc_zone_identifier(csv(&r.props["subnets"]))
                .health_check_type(health_check_type(r))
                .health_check_grace_period(r.i64("health_check_grace")? as i32)
                .send()
                .await
                .ctx(&r.id, "UpdateAutoScalingGroup")?;
        }
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
        // Clearing a `rollback` rolls forward too: an interrupted rollback
        // may have left the group on the older version.
        if has("launch_template_id") || has("launch_template_version") || has("rolled_back") {
            let wanted = TemplateVersion::new(r.str("launch_template_id")?, &version);
            // A new release alone goes out on the instances there; what
            // changes the instances themselves replaces them.
            let release_only = instance_config(r).is_some()
                && !has("in_place")
                && !has("launch_template_id")
                && !has("rolled_back");
            if release_only {
                self.roll_out_in_place(cloud, &r.id, name, &wanted).await?;
            } else {
                self.roll_out(cloud, r, name, &wanted).await?;
            }
            // Rolled out means serving: the new instances healthy behind
            // the load balancer, not only replaced.
            self.wait_healthy(cloud, &r.id, name, r.i64("min")?.max(0) as usize)
                .await?;
            self.mark_rolled_out(cloud, &r.id, name, &version).await?;
        }
        if let (true, Some(c)) = (has("in_place"), instance_config(r)) {
            cloud
                .autoscaling
                .create_or_update_tags()
                .tags(tag(name, TAG_INSTANCE_CONFIG, c, false))
                .send()
                .await
                .ctx(&r.id, "CreateOrUpdateTags")?;
        }
        if has("rolled_back") {
            cloud
                .autoscaling
                .delete_tags()
                // Without a value: the key alone names the tag to delete.
                .tags(
                    Tag::builder()
                        .resource_id(name)
                        .resource_type("auto-scaling-group")
                        .key(TAG_ROLLED_BACK)
                        .build(),
                )
                .send()
                .await
                .ctx(&r.id, "DeleteTags")?;
        }
        wanted_props(current.clone(), r)
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let min = current
            .props
            .get("min")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as usize;
        self.wait_healthy(cloud, &current.id, &current.physical_id, min)
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
            .wait_until(
                &id,
                "deleted",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    Ok(match describe(cloud, &id, &name).await? {
                        None => (Some(()), "deleted".into()),
                        Some(g) => (None, g.status().unwrap_or("deleting").to_string()),
                    })
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_note_names_both_releases_and_what_up_does() {
        assert_eq!(
            rolled_back_note("3 from 5"),
            "on release 3, rolled back from 5 by `rollback`; `up` keeps it there until the stack file ships another binary, or rolls forward with `up --roll-forward`"
        );
        assert!(rolled_back_note("3").starts_with("on release 3, rolled back from ?"));
    }
}
