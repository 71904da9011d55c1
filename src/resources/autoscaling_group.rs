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

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshInput;
use aws_sdk_autoscaling::types::{
    DesiredConfiguration, Filter, InstanceRefresh, InstanceRefreshStatus,
    LaunchTemplateSpecification, MetricType, PredefinedMetricSpecification, RefreshPreferences,
    RefreshStrategy, Tag, TargetTrackingConfiguration,
};
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Resolved, ResourceKind, TAG_ID, TAG_STACK,
};

pub const KIND: &str = "autoscaling:group";
pub const TAG_ROLLED_OUT: &str = "bookstore-infra:rolled-out";
/// Set by `rollback` (`<version> from <version>`): the group runs an
/// earlier release than the launch template's latest. The plan shows it as
/// the `rolled_back` property the next `up` clears when it rolls forward.
pub const TAG_ROLLED_BACK: &str = "bookstore-infra:rolled-back";
const POLICY: &str = "bookstore-target-tracking";

/// How many times a rollout looks at the group's refreshes again after
/// cancelling another one or losing the race to start (another run, or the
/// console, starting refreshes meanwhile).
const ROLLOUT_ROUNDS: usize = 5;

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

// ---- instance refresh and target health: the decisions, kept pure --------

/// A launch template version: what a group runs, what a refresh rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub id: String,
    pub version: String,
}

impl TemplateVersion {
    pub fn new(id: &str, version: &str) -> Self {
        TemplateVersion {
            id: id.to_string(),
            version: version.to_string(),
        }
    }

    /// The version a specification names by id (a name-only or
    /// version-less specification is never the one wanted).
    fn of(spec: Option<&LaunchTemplateSpecification>) -> Option<Self> {
        let s = spec?;
        Some(Self::new(s.launch_template_id()?, s.version()?))
    }
}

impl std::fmt::Display for TemplateVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "launch template {} version {}", self.id, self.version)
    }
}

/// A refresh still running or winding down. AWS lets one refresh be active
/// on a group at a time: StartInstanceRefresh answers
/// `InstanceRefreshInProgress` meanwhile, and CancelInstanceRefresh cancels
/// "an instance refresh or rollback that is in progress" (statuses:
/// "Check the status of an instance refresh", EC2 Auto Scaling User Guide;
/// Pending and InProgress lead to a final status, Baking waits the bake
/// time after the last replacement, Cancelling ends Cancelled,
/// RollbackInProgress ends RollbackSuccessful or RollbackFailed).
pub fn is_active(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Pending
            | InstanceRefreshStatus::InProgress
            | InstanceRefreshStatus::Baking
            | InstanceRefreshStatus::Cancelling
            | InstanceRefreshStatus::RollbackInProgress
    )
}

/// The refresh replaced the instances and AWS applied its desired
/// configuration to the group.
pub fn is_success(s: &InstanceRefreshStatus) -> bool {
    matches!(s, InstanceRefreshStatus::Successful)
}

/// The refresh ended without rolling out its desired configuration.
pub fn is_failure(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Failed
            | InstanceRefreshStatus::Cancelled
            | InstanceRefreshStatus::RollbackSuccessful
            | InstanceRefreshStatus::RollbackFailed
    )
}

/// What a rollout needs to know of one of the group's refreshes.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshSeen {
    pub id: String,
    pub status: InstanceRefreshStatus,
    /// Its desired configuration's launch template version, if it has one.
    pub target: Option<TemplateVersion>,
    /// Start time, in seconds since the epoch (absent while Pending).
    pub started: Option<i64>,
}

impl RefreshSeen {
    pub fn of(ir: &InstanceRefresh) -> Self {
        RefreshSeen {
            id: ir.instance_refresh_id().unwrap_or_default().to_string(),
            status: ir
                .status()
                .cloned()
                .unwrap_or(InstanceRefreshStatus::Pending),
            target: TemplateVersion::of(
                ir.desired_configuration().and_then(|d| d.launch_template()),
            ),
            started: ir.start_time().map(|t| t.secs()),
        }
    }
}

/// What a rollout does next, given the group's refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// The newest refresh rolled out the wanted version and the group runs
    /// it: the run that started it ended before recording it.
    AlreadyDone(String),
    /// A refresh of the wanted version is active: wait for it.
    Resume(String),
    /// A refresh of another version (or with no desired configuration, or
    /// being cancelled) is active: cancel it unless it is already being
    /// cancelled, wait until it ends, then look again.
    CancelOther { id: String, cancel: bool },
    /// Nothing is active: start the refresh.
    Start,
}

/// Decides the next step of rolling out `wanted`, from the group's
/// refreshes (any order: DescribeInstanceRefreshes lists them newest first,
/// by creation time) and the version the group is on now.
///
/// A rollback of the wanted version is waited for too: its end (rolled
/// back) is the outcome of this rollout, reported as the failure it is; the
/// next `up` starts the version again.
pub fn next_step(
    refreshes: &[RefreshSeen],
    wanted: &TemplateVersion,
    group_on: Option<&TemplateVersion>,
) -> NextStep {
    let mut newest_first: Vec<&RefreshSeen> = refreshes.iter().collect();
    // Stable: AWS's order stands among equal start times; a Pending
    // refresh (no start time yet) is the newest.
    newest_first.sort_by_key(|r| std::cmp::Reverse(r.started.unwrap_or(i64::MAX)));
    if let Some(a) = newest_first.iter().find(|r| is_active(&r.status)) {
        let cancelling = a.status == InstanceRefreshStatus::Cancelling;
        if !cancelling && a.target.as_ref() == Some(wanted) {
            return NextStep::Resume(a.id.clone());
        }
        return NextStep::CancelOther {
            id: a.id.clone(),
            cancel: !cancelling,
        };
    }
    match newest_first.first() {
        Some(r)
            if is_success(&r.status)
                && r.target.as_ref() == Some(wanted)
                && group_on == Some(wanted) =>
        {
            NextStep::AlreadyDone(r.id.clone())
        }
        _ => NextStep::Start,
    }
}

/// The refresh preferences: rolling with at least `min_healthy` percent of
/// the group healthy, new instances warming up `warmup` seconds, instances
/// already on the desired configuration kept. Automatic rollback only with
/// a desired configuration: AWS refuses it otherwise ("The rollback option
/// is only available if you specify a desired configuration", "Undo changes
/// with a manual or auto rollback", EC2 Auto Scaling User Guide;
/// `ValidationError` "The AutoRollback parameter cannot be set to true when
/// the DesiredConfiguration parameter is empty").
pub fn refresh_preferences(
    min_healthy: i32,
    warmup: i32,
    with_desired: bool,
) -> RefreshPreferences {
    RefreshPreferences::builder()
        .min_healthy_percentage(min_healthy)
        .instance_warmup(warmup)
        .skip_matching(true)
        .auto_rollback(with_desired)
        .build()
}

/// The StartInstanceRefresh request rolling `group` onto `wanted`. The
/// version must be a number: a refresh with a desired configuration sets it
/// on the group when it succeeds, and AWS does not roll back a group on
/// `$Latest` or `$Default` (RollbackInstanceRefresh,
/// `IrreversibleInstanceRefresh`).
pub fn start_request(
    group: &str,
    wanted: &TemplateVersion,
    min_healthy: i32,
    warmup: i32,
) -> Result<StartInstanceRefreshInput, String> {
    if wanted.version.is_empty() || !wanted.version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "launch template version `{}` is not a version number: a rollout with automatic \
             rollback needs a fixed version, never $Latest or $Default",
            wanted.version
        ));
    }
    StartInstanceRefreshInput::builder()
        .auto_scaling_group_name(group)
        .strategy(RefreshStrategy::Rolling)
        .desired_configuration(
            DesiredConfiguration::builder()
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(&wanted.id)
                        .version(&wanted.version)
                        .build(),
                )
                .build(),
        )
        .preferences(refresh_preferences(min_healthy, warmup, true))
        .build()
        .map_err(|e| e.to_string())
}

/// `1h02m05s`, `4m05s`, `12s`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// One progress line of a running refresh: status, percentage, instances
/// left to update, time since it started (`now` in seconds since the
/// epoch; `fallback` when AWS gives no start time).
pub fn refresh_progress(ir: &InstanceRefresh, now: i64, fallback: Duration) -> String {
    let status = ir.status().map(|s| s.as_str()).unwrap_or("Pending");
    let elapsed = ir
        .start_time()
        .map(|t| Duration::from_secs(now.saturating_sub(t.secs()).max(0) as u64))
        .unwrap_or(fallback);
    let mut line = format!("{status}, {}% done", ir.percentage_complete().unwrap_or(0));
    if let Some(n) = ir.instances_to_update() {
        line.push_str(&format!(
            ", {n} instance{} to update",
            if n == 1 { "" } else { "s" }
        ));
    }
    line.push_str(&format!(", {} elapsed", duration_text(elapsed)));
    line
}

/// The error for a refresh that ended without rolling out (None when it
/// succeeded or has not ended): its id, final status and the reasons AWS
/// gives, and which version the group is on (`group_on`, read after the
/// end; with a desired configuration the group moves only on success).
pub fn refresh_failure(
    group: &str,
    ir: &InstanceRefresh,
    group_on: Option<&TemplateVersion>,
) -> Option<String> {
    let status = ir.status()?;
    if !is_failure(status) {
        return None;
    }
    let id = ir.instance_refresh_id().unwrap_or("?");
    let reason = ir
        .status_reason()
        .filter(|r| !r.is_empty())
        .unwrap_or("AWS gave no reason");
    let rollback_reason = ir
        .rollback_details()
        .and_then(|d| d.rollback_reason())
        .filter(|r| !r.is_empty());
    let on = |what: &str| match group_on {
        Some(v) => format!("{what} on {v}"),
        None => format!("{what} on its previous launch template version"),
    };
    let mut msg = format!(
        "instance refresh {id} of group {group} ended {}: {reason}",
        status.as_str()
    );
    let rb = rollback_reason
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let tail = match status {
        InstanceRefreshStatus::RollbackSuccessful => {
            format!("; rolled back{rb}: the group is {}", on("back"))
        }
        InstanceRefreshStatus::RollbackFailed => format!(
            "; the rollback failed too{rb}: the group's instances may run either version \
             (see its scaling activities); the group is {}",
            on("still")
        ),
        InstanceRefreshStatus::Cancelled => {
            format!(
                "; cancelled before it finished: the group is {}",
                on("still")
            )
        }
        _ => format!("; the group is {}", on("still")),
    };
    msg.push_str(&tail);
    msg.push_str("; the next `up` rolls the new version out again");
    Some(msg)
}

/// An instance's health in one target group, as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    pub instance: String,
    pub state: String,
    pub reason: Option<String>,
}

impl TargetState {
    pub fn new(instance: &str, state: &str, reason: Option<&str>) -> Self {
        TargetState {
            instance: instance.to_string(),
            state: state.to_string(),
            reason: reason.map(str::to_string),
        }
    }
}

/// Whether at least `min` of the group's in-service instances are healthy
/// in every one of its target groups (`targets`, one list per target
/// group), and a line saying so with the other instances' states and
/// reason codes (`1/2 healthy; 1 unhealthy (Target.FailedHealthChecks)`).
/// Auto Scaling reports instances InService and Healthy during their
/// health check grace period whatever the load balancer sees ("Amazon EC2
/// Auto Scaling doesn't act on an ELB health check failure until the grace
/// period expires"), so only the load balancer's view counts. Without
/// target groups, the in-service instances count.
pub fn healthy_targets(
    in_service: &[String],
    targets: &[Vec<TargetState>],
    min: usize,
) -> (bool, String) {
    let mut healthy = 0;
    let mut others: std::collections::BTreeMap<String, usize> = Default::default();
    for i in in_service {
        let bad = targets
            .iter()
            .find_map(|tg| match tg.iter().find(|t| &t.instance == i) {
                None => Some("not registered".to_string()),
                Some(t) if t.state == "healthy" => None,
                Some(t) => Some(match &t.reason {
                    Some(r) => format!("{} ({r})", t.state),
                    None => t.state.clone(),
                }),
            });
        match bad {
            None => healthy += 1,
            Some(b) => *others.entry(b).or_default() += 1,
        }
    }
    let mut line = format!("{healthy}/{min} healthy");
    if in_service.len() < min {
        // Fewer instances than needed: say so, nothing else explains it.
        line.push_str(&format!("; {} in service", in_service.len()));
    }
    if !others.is_empty() {
        let rest: Vec<String> = others.iter().map(|(s, n)| format!("{n} {s}")).collect();
        line.push_str(&format!("; {}", rest.join(", ")));
    }
    (healthy >= min, line)
}

/// The plan's text for a group `rollback` left on an earlier release
/// (the tag's value, `<version> from <version>`).
pub fn rolled_back_note(tag: &str) -> String {
    let (to, from) = tag.split_once(" from ").unwrap_or((tag, "?"));
    format!(
        "on release {to}, rolled back from {from} by `rollback`; `up` keeps it there until the stack file ships another binary, or rolls forward with `up --roll-forward`"
    )
}

/// Rolls group `group` back onto an earlier release `wanted` (`rollback`),
/// the way `up` rolls out a new one: instance refresh, wait, every target
/// healthy, then recorded. The rollback is recorded first (tag
/// [`TAG_ROLLED_BACK`]), so an interrupted one still shows in the plan.
pub async fn roll_back(
    cloud: &Cloud,
    group: &str,
    wanted: &TemplateVersion,
    from: &str,
    refresh: (i32, i32),
    min_healthy_targets: usize,
) -> Result<(), CloudError> {
    const ID: &str = "asg";
    let g = AutoScalingGroup;
    cloud
        .autoscaling
        .create_or_update_tags()
        .tags(tag(
            group,
            TAG_ROLLED_BACK,
            &format!("{} from {from}", wanted.version),
            false,
        ))
        .send()
        .await
        .ctx(ID, "CreateOrUpdateTags")?;
    g.roll_out_with(cloud, ID, group, wanted, refresh.0, refresh.1)
        .await?;
    g.wait_healthy(cloud, ID, group, min_healthy_targets)
        .await?;
    g.mark_rolled_out(cloud, ID, group, &wanted.version).await
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

    /// The group's refreshes, every page.
    async fn refreshes(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
    ) -> Result<Vec<InstanceRefresh>, CloudError> {
        let pages = cloud
            .autoscaling
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .ctx(id, "DescribeInstanceRefreshes")?;
        Ok(pages
            .iter()
            .flat_map(|p| p.instance_refreshes().iter().cloned())
            .collect())
    }

    /// The launch template version the group is on now.
    async fn group_template(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
    ) -> Result<Option<TemplateVersion>, CloudError> {
        let d = cloud
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .ctx(id, "DescribeAutoScalingGroups")?;
        Ok(d.auto_scaling_groups()
            .first()
            .and_then(|g| TemplateVersion::of(g.launch_template())))
    }

    /// Waits until refresh `refresh_id` is no longer active, reporting its
    /// progress, and returns it as it ended.
    async fn watch(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        refresh_id: &str,
    ) -> Result<InstanceRefresh, CloudError> {
        let began = std::time::Instant::now();
        cloud
            .wait_until(
                id,
                &format!("instance refresh {refresh_id}"),
                cloud.timeouts.for_kind(KIND, Phase::Rollout),
                || async {
                    let d = cloud
                        .autoscaling
                        .describe_instance_refreshes()
                        .auto_scaling_group_name(group)
                        .instance_refresh_ids(refresh_id)
                        .send()
                        .await
                        .ctx(id, "DescribeInstanceRefreshes")?;
                    let Some(ir) = d
                        .instance_refreshes()
                        .iter()
                        .find(|r| r.instance_refresh_id() == Some(refresh_id))
                    else {
                        // Just started: not listed yet.
                        return Ok((None, "starting".into()));
                    };
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    let line = refresh_progress(ir, now, began.elapsed());
                    // An unknown (newer) status is waited through.
                    let ended = ir.status().is_some_and(|s| is_success(s) || is_failure(s));
                    Ok((ended.then(|| ir.clone()), line))
                },
            )
            .await
    }

    /// Cancels the group's active refresh (or rollback).
    async fn cancel(&self, cloud: &Cloud, id: &str, group: &str) -> Result<(), CloudError> {
        let res = cloud
            .autoscaling
            .cancel_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = api_error(id, "CancelInstanceRefresh", e);
                // "If an instance refresh or rollback is not in progress, an
                // ActiveInstanceRefreshNotFound error occurs" (API reference,
                // CancelInstanceRefresh): it ended meanwhile.
                if e.code() == Some("ActiveInstanceRefreshNotFound") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Rolls the group's instances onto `wanted` with an instance refresh
    /// and waits for its end: resumes the refresh of `wanted` an earlier run
    /// started, cancels one of another version first.
    async fn roll_out(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        group: &str,
        wanted: &TemplateVersion,
    ) -> Result<(), CloudError> {
        let pref = r.props.get("refresh").cloned().unwrap_or(json!({}));
        let min_healthy = pref["min_healthy"].as_i64().unwrap_or(90) as i32;
        let warmup = pref["warmup"].as_i64().unwrap_or(120) as i32;
        self.roll_out_with(cloud, &r.id, group, wanted, min_healthy, warmup)
            .await
    }

    async fn roll_out_with(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        wanted: &TemplateVersion,
        min_healthy: i32,
        warmup: i32,
    ) -> Result<(), CloudError> {
        let request = start_request(group, wanted, min_healthy, warmup)
            .map_err(|m| CloudError::invalid(id, m))?;
        for _ in 0..ROLLOUT_ROUNDS {
            let seen: Vec<RefreshSeen> = self
                .refreshes(cloud, id, group)
                .await?
                .iter()
                .map(RefreshSeen::of)
                .collect();
            let group_on = self.group_template(cloud, id, group).await?;
            let ended = match next_step(&seen, wanted, group_on.as_ref()) {
                NextStep::AlreadyDone(refresh_id) => {
                    cloud.reporter.note(&format!(
                        "{id}: instance refresh {refresh_id} already rolled {group} onto {wanted}"
                    ));
                    return Ok(());
                }
                NextStep::Resume(refresh_id) => {
                    cloud.reporter.note(&format!(
                        "{id}: instance refresh {refresh_id} is already rolling {group} onto {wanted}: waiting for it"
                    ));
                    self.watch(cloud, id, group, &refresh_id).await?
                }
                NextStep::CancelOther {
                    id: other_id,
                    cancel,
                } => {
                    let other = seen
                        .iter()
                        .find(|s| s.id == other_id)
                        .and_then(|s| s.target.as_ref())
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "no desired configuration".into());
                    if cancel {
                        cloud.reporter.note(&format!(
                            "{id}: cancelling instance refresh {other_id} of {group} ({other}) to roll out {wanted}"
                        ));
                        self.cancel(cloud, id, group).await?;
                    }
                    self.watch(cloud, id, group, &other_id).await?;
                    continue;
                }
                NextStep::Start => {
                    cloud.reporter.note(&format!(
                        "{id}: starting an instance refresh of {group} onto {wanted} (rolling, min healthy {min_healthy}%, warmup {warmup}s, skip matching, auto rollback)"
                    ));
                    let started = cloud
                        .autoscaling
                        .start_instance_refresh()
                        .set_auto_scaling_group_name(request.auto_scaling_group_name.clone())
                        .set_strategy(request.strategy.clone())
                        .set_desired_configuration(request.desired_configuration.clone())
                        .set_preferences(request.preferences.clone())
                        .send()
                        .await
                        .ctx(id, "StartInstanceRefresh");
                    match started {
                        Ok(o) => {
                            let refresh_id =
                                o.instance_refresh_id().unwrap_or_default().to_string();
                            self.watch(cloud, id, group, &refresh_id).await?
                        }
                        // Another refresh started since the look above
                        // (API reference, StartInstanceRefresh: "An instance
                        // refresh is already in progress"): look again.
                        Err(e) if e.code() == Some("InstanceRefreshInProgress") => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            if ended.status().is_some_and(is_success) {
                return Ok(());
            }
            let back_on = self.group_template(cloud, id, group).await.ok().flatten();
            let msg = refresh_failure(group, &ended, back_on.as_ref()).unwrap_or_else(|| {
                format!(
                    "instance refresh {} of group {group} ended {}",
                    ended.instance_refresh_id().unwrap_or("?"),
                    ended.status().map(|s| s.as_str()).unwrap_or("?")
                )
            });
            return Err(CloudError::invalid(id, msg));
        }
        Err(CloudError::invalid(
            id,
            format!(
                "another instance refresh kept starting on group {group}: \
                 gave up rolling out {wanted} after {ROLLOUT_ROUNDS} attempts"
            ),
        ))
    }

    /// Waits until at least `min` of the group's instances are healthy
    /// behind the load balancer (see [`healthy_targets`]). Unhealthy
    /// targets can recover (a slow first start), so it waits up to the
    /// timeout, then names the states and reasons last seen.
    async fn wait_healthy(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        min: usize,
    ) -> Result<(), CloudError> {
        // The timeout error names the last state seen: the reasons.
        cloud
            .wait_until(
                id,
                &format!("{min} instances healthy behind the load balancer"),
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let d = cloud
                        .autoscaling
                        .describe_auto_scaling_groups()
                        .auto_scaling_group_names(group)
                        .send()
                        .await
                        .ctx(id, "DescribeAutoScalingGroups")?;
                    let Some(g) = d.auto_scaling_groups().first() else {
                        // Just created: not listed yet.
                        return Ok((None, "group not listed yet".into()));
                    };
                    let in_service: Vec<String> = g
                        .instances()
                        .iter()
                        .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
                        .filter(|i| i.health_status() == Some("Healthy"))
                        .filter_map(|i| i.instance_id().map(str::to_string))
                        .collect();
                    let mut targets = Vec::new();
                    // DescribeTargetHealth has no paging: one answer per target group.
                    for tg in g.target_group_arns() {
                        let h = cloud
                            .elbv2
                            .describe_target_health()
                            .target_group_arn(tg)
                            .send()
                            .await
                            .ctx(id, "DescribeTargetHealth")?;
                        targets.push(
                            h.target_health_descriptions()
                                .iter()
                                .filter_map(|t| {
                                    let health = t.target_health();
                                    Some(TargetState::new(
                                        t.target()?.id()?,
                                        health.and_then(|h| h.state()).map(|s| s.as_str())?,
                                        health.and_then(|h| h.reason()).map(|r| r.as_str()),
                                    ))
                                })
                                .collect(),
                        );
                    }
                    let (ok, line) = healthy_targets(&in_service, &targets, min);
                    Ok((ok.then_some(()), line))
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
            in_place("rolled_back"),
        ];
        A
    }

    /// Instances in its subnets keep them; the target group and launch
    /// template it names can be deleted from under it.
    fn reference_blocks_deletion(&self, attr: &str) -> bool {
        attr == "subnets"
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
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
            .ctx(KIND, "DescribeAutoScalingGroups")?;
        let mut res = Vec::new();
        for g in pages.iter().flat_map(|p| p.auto_scaling_groups()) {
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
            .health_check_type("ELB")
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
        // Never the launch template: the instance refresh below sets it on
        // the group once it succeeds, and AWS refuses it while a refresh
        // with a desired configuration is active ("An active instance
        // refresh with a desired configuration exists"; sizes and the rest
        // may change meanwhile).
        if ["min", "max", "subnets", "health_check_grace"]
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
                .health_check_type("ELB")
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
            self.roll_out(cloud, r, name, &wanted).await?;
            // Rolled out means serving: the new instances healthy behind
            // the load balancer, not only replaced.
            self.wait_healthy(cloud, &r.id, name, r.i64("min")?.max(0) as usize)
                .await?;
            self.mark_rolled_out(cloud, &r.id, name, &version).await?;
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

    use aws_sdk_autoscaling::types::RollbackDetails;
    use aws_smithy_types::DateTime;
    use InstanceRefreshStatus as S;

    const ALL: [InstanceRefreshStatus; 10] = [
        S::Pending,
        S::InProgress,
        S::Baking,
        S::Cancelling,
        S::RollbackInProgress,
        S::Successful,
        S::Failed,
        S::Cancelled,
        S::RollbackSuccessful,
        S::RollbackFailed,
    ];

    fn v(n: &str) -> TemplateVersion {
        TemplateVersion::new("lt-0abc", n)
    }

    fn seen(
        id: &str,
        status: S,
        target: Option<TemplateVersion>,
        started: Option<i64>,
    ) -> RefreshSeen {
        RefreshSeen {
            id: id.into(),
            status,
            target,
            started,
        }
    }

    #[test]
    fn every_status_is_exactly_one_of_active_success_failure() {
        for s in ALL {
            let kinds = [is_active(&s), is_success(&s), is_failure(&s)];
            assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{s:?}");
        }
        let active: Vec<&str> = ALL
            .iter()
            .filter(|s| is_active(s))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            active,
            [
                "Pending",
                "InProgress",
                "Baking",
                "Cancelling",
                "RollbackInProgress"
            ]
        );
        assert!(is_success(&S::Successful));
        let failed: Vec<&str> = ALL
            .iter()
            .filter(|s| is_failure(s))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "Failed",
                "Cancelled",
                "RollbackSuccessful",
                "RollbackFailed"
            ]
        );
        // A status this code does not know is none of them: waited through.
        let new = InstanceRefreshStatus::from("Paused");
        assert!(!is_active(&new) && !is_success(&new) && !is_failure(&new));
    }

    #[test]
    fn no_refresh_yet_starts_one() {
        assert_eq!(next_step(&[], &v("3"), Some(&v("2"))), NextStep::Start);
    }

    #[test]
    fn only_ended_refreshes_start_one() {
        for s in [
            S::Failed,
            S::Cancelled,
            S::RollbackSuccessful,
            S::RollbackFailed,
        ] {
            // Even an ended refresh of the wanted version: it did not roll out.
            let r = [seen("a", s.clone(), Some(v("3")), Some(100))];
            assert_eq!(
                next_step(&r, &v("3"), Some(&v("2"))),
                NextStep::Start,
                "{s:?}"
            );
        }
        // An old success of another version.
        let r = [seen("a", S::Successful, Some(v("2")), Some(100))];
        assert_eq!(next_step(&r, &v("3"), Some(&v("2"))), NextStep::Start);
    }

    #[test]
    fn an_active_refresh_of_the_wanted_version_is_resumed() {
        for s in [S::Pending, S::InProgress, S::Baking, S::RollbackInProgress] {
            let r = [
                seen("old", S::Successful, Some(v("2")), Some(100)),
                seen("cur", s.clone(), Some(v("3")), Some(200)),
            ];
            assert_eq!(
                next_step(&r, &v("3"), Some(&v("2"))),
                NextStep::Resume("cur".into()),
                "{s:?}"
            );
        }
        // Pending has no start time yet.
        let r = [seen("cur", S::Pending, Some(v("3")), None)];
        assert_eq!(
            next_step(&r, &v("3"), Some(&v("2"))),
            NextStep::Resume("cur".into())
        );
    }

    #[test]
    fn an_active_refresh_of_another_version_is_cancelled_first() {
        for s in [S::Pending, S::InProgress, S::Baking, S::RollbackInProgress] {
            let r = [seen("other", s.clone(), Some(v("4")), Some(200))];
            assert_eq!(
                next_step(&r, &v("3"), Some(&v("2"))),
                NextStep::CancelOther {
                    id: "other".into(),
                    cancel: true
                },
                "{s:?}"
            );
        }
        // Same version number, another template.
        let r = [seen(
            "other",
            S::InProgress,
            Some(TemplateVersion::new("lt-0old", "3")),
            Some(1),
        )];
        assert_eq!(
            next_step(&r, &v("3"), None),
            NextStep::CancelOther {
                id: "other".into(),
                cancel: true
            }
        );
        // Started without a desired configuration (by hand, or an older release).
        let r = [seen("bare", S::InProgress, None, Some(1))];
        assert_eq!(
            next_step(&r, &v("3"), None),
            NextStep::CancelOther {
                id: "bare".into(),
                cancel: true
            }
        );
    }

    #[test]
    fn a_refresh_being_cancelled_is_waited_for_not_cancelled_again() {
        for target in [Some(v("3")), Some(v("4")), None] {
            let r = [seen("c", S::Cancelling, target.clone(), Some(1))];
            assert_eq!(
                next_step(&r, &v("3"), Some(&v("2"))),
                NextStep::CancelOther {
                    id: "c".into(),
                    cancel: false
                },
                "{target:?}"
            );
        }
    }

    #[test]
    fn a_success_not_yet_recorded_is_done_only_when_newest_and_on_the_group() {
        let r = [
            seen("old", S::RollbackSuccessful, Some(v("3")), Some(100)),
            seen("ok", S::Successful, Some(v("3")), Some(200)),
        ];
        assert_eq!(
            next_step(&r, &v("3"), Some(&v("3"))),
            NextStep::AlreadyDone("ok".into())
        );
        // The group is not on it (changed since by hand): start again.
        assert_eq!(next_step(&r, &v("3"), Some(&v("2"))), NextStep::Start);
        // A later refresh of another version rolled back: not done.
        let r = [
            seen("later", S::RollbackSuccessful, Some(v("4")), Some(300)),
            seen("ok", S::Successful, Some(v("3")), Some(200)),
        ];
        assert_eq!(next_step(&r, &v("3"), Some(&v("3"))), NextStep::Start);
    }

    #[test]
    fn newest_is_by_start_time_whatever_the_order_listed() {
        // Oldest first (AWS lists newest first; the order is not relied on).
        let r = [
            seen("ok", S::Successful, Some(v("3")), Some(100)),
            seen("failed", S::Failed, Some(v("3")), Some(200)),
        ];
        assert_eq!(next_step(&r, &v("3"), Some(&v("3"))), NextStep::Start);
        let r = [
            seen("failed", S::Failed, Some(v("3")), Some(100)),
            seen("ok", S::Successful, Some(v("3")), Some(200)),
        ];
        assert_eq!(
            next_step(&r, &v("3"), Some(&v("3"))),
            NextStep::AlreadyDone("ok".into())
        );
    }

    #[test]
    fn seen_from_the_api_shape() {
        let ir = InstanceRefresh::builder()
            .instance_refresh_id("r-1")
            .status(S::InProgress)
            .start_time(DateTime::from_secs(1_000))
            .desired_configuration(
                DesiredConfiguration::builder()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id("lt-0abc")
                            .version("7")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(
            RefreshSeen::of(&ir),
            seen("r-1", S::InProgress, Some(v("7")), Some(1_000))
        );
        // Named by template name only: not the wanted id.
        let ir = InstanceRefresh::builder()
            .instance_refresh_id("r-2")
            .status(S::Pending)
            .desired_configuration(
                DesiredConfiguration::builder()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_name("app")
                            .version("7")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(RefreshSeen::of(&ir), seen("r-2", S::Pending, None, None));
    }

    #[test]
    fn the_request_names_the_version_with_auto_rollback() {
        let i = start_request("demo-app", &v("3"), 90, 120).unwrap();
        assert_eq!(i.auto_scaling_group_name.as_deref(), Some("demo-app"));
        assert_eq!(i.strategy, Some(RefreshStrategy::Rolling));
        let lt = i
            .desired_configuration
            .as_ref()
            .and_then(|d| d.launch_template())
            .expect("a desired configuration with a launch template");
        assert_eq!(lt.launch_template_id(), Some("lt-0abc"));
        assert_eq!(lt.launch_template_name(), None);
        assert_eq!(lt.version(), Some("3"));
        assert!(i
            .desired_configuration
            .as_ref()
            .unwrap()
            .mixed_instances_policy()
            .is_none());
        let p = i.preferences.as_ref().unwrap();
        assert_eq!(p.min_healthy_percentage(), Some(90));
        assert_eq!(p.instance_warmup(), Some(120));
        assert_eq!(p.skip_matching(), Some(true));
        assert_eq!(p.auto_rollback(), Some(true));
        assert_eq!(p.max_healthy_percentage(), None);
    }

    #[test]
    fn auto_rollback_only_with_a_desired_configuration() {
        assert_eq!(
            refresh_preferences(90, 120, true).auto_rollback(),
            Some(true)
        );
        assert_eq!(
            refresh_preferences(90, 120, false).auto_rollback(),
            Some(false)
        );
        // Every request built has both.
        let i = start_request("g", &v("12"), 50, 0).unwrap();
        assert!(i.desired_configuration.is_some());
        assert_eq!(i.preferences.unwrap().auto_rollback(), Some(true));
    }

    #[test]
    fn the_request_refuses_a_moving_version() {
        for bad in ["$Latest", "$Default", "", "3a"] {
            let e = start_request("g", &v(bad), 90, 120).unwrap_err();
            assert!(e.contains("not a version number"), "{bad}: {e}");
        }
    }

    fn ended(status: S, reason: Option<&str>, rollback: Option<&str>) -> InstanceRefresh {
        let mut b = InstanceRefresh::builder()
            .instance_refresh_id("08b91cf7-8fa6-48af-b6a6-d227f40f1b9b")
            .status(status);
        if let Some(r) = reason {
            b = b.status_reason(r);
        }
        if let Some(r) = rollback {
            b = b.rollback_details(RollbackDetails::builder().rollback_reason(r).build());
        }
        b.build()
    }

    #[test]
    fn no_failure_text_for_success_or_a_running_refresh() {
        for s in [
            S::Successful,
            S::InProgress,
            S::Pending,
            S::RollbackInProgress,
        ] {
            assert_eq!(refresh_failure("g", &ended(s, None, None), None), None);
        }
    }

    #[test]
    fn a_failed_refresh_names_id_status_reason_and_the_version_kept() {
        let ir = ended(
            S::Failed,
            Some("Instance i-0f3 failed to launch: the AMI is not available"),
            None,
        );
        let m = refresh_failure("demo-app", &ir, Some(&v("2"))).unwrap();
        assert_eq!(
            m,
            "instance refresh 08b91cf7-8fa6-48af-b6a6-d227f40f1b9b of group demo-app ended Failed: \
             Instance i-0f3 failed to launch: the AMI is not available; the group is still on \
             launch template lt-0abc version 2; the next `up` rolls the new version out again"
        );
        let m = refresh_failure("demo-app", &ended(S::Failed, None, None), None).unwrap();
        assert!(m.contains("ended Failed: AWS gave no reason"), "{m}");
        assert!(
            m.contains("still on its previous launch template version"),
            "{m}"
        );
    }

    #[test]
    fn a_rolled_back_refresh_says_the_group_is_back_on_its_version() {
        let ir = ended(
            S::RollbackSuccessful,
            Some("Instance refresh failed: 2 instances failed ELB health checks"),
            Some("Automatic rollback after the refresh failed"),
        );
        let m = refresh_failure("demo-app", &ir, Some(&v("2"))).unwrap();
        assert!(m.starts_with("instance refresh 08b91cf7-8fa6-48af-b6a6-d227f40f1b9b of group demo-app ended RollbackSuccessful: Instance refresh failed: 2 instances failed ELB health checks"), "{m}");
        assert!(
            m.contains("; rolled back (Automatic rollback after the refresh failed): the group is back on launch template lt-0abc version 2"),
            "{m}"
        );
        let m = refresh_failure(
            "demo-app",
            &ended(S::RollbackFailed, Some("x"), Some("Automatic rollback")),
            Some(&v("2")),
        )
        .unwrap();
        assert!(m.contains("ended RollbackFailed: x"), "{m}");
        assert!(
            m.contains("the rollback failed too (Automatic rollback)"),
            "{m}"
        );
        assert!(
            m.contains("still on launch template lt-0abc version 2"),
            "{m}"
        );
        let m = refresh_failure(
            "demo-app",
            &ended(S::Cancelled, Some("Cancelled by user"), None),
            Some(&v("2")),
        )
        .unwrap();
        assert!(
            m.contains("ended Cancelled: Cancelled by user; cancelled before it finished"),
            "{m}"
        );
    }

    #[test]
    fn progress_shows_status_percentage_instances_and_elapsed() {
        let ir = InstanceRefresh::builder()
            .instance_refresh_id("r")
            .status(S::InProgress)
            .percentage_complete(40)
            .instances_to_update(3)
            .start_time(DateTime::from_secs(1_000))
            .build();
        assert_eq!(
            refresh_progress(&ir, 1_000 + 312, Duration::ZERO),
            "InProgress, 40% done, 3 instances to update, 5m12s elapsed"
        );
        let ir = InstanceRefresh::builder()
            .instance_refresh_id("r")
            .status(S::Pending)
            .instances_to_update(1)
            .build();
        assert_eq!(
            refresh_progress(&ir, 0, Duration::from_secs(3725)),
            "Pending, 0% done, 1 instance to update, 1h02m05s elapsed"
        );
        assert_eq!(duration_text(Duration::from_secs(9)), "9s");
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_targets_healthy_behind_the_load_balancer_count() {
        let tg = vec![
            TargetState::new("i-1", "healthy", None),
            TargetState::new("i-2", "initial", Some("Elb.InitialHealthChecking")),
            TargetState::new("i-3", "unhealthy", Some("Target.FailedHealthChecks")),
            // Not (any longer) in service in the group: ignored.
            TargetState::new("i-9", "healthy", None),
        ];
        let (ok, line) =
            healthy_targets(&ids(&["i-1", "i-2", "i-3"]), std::slice::from_ref(&tg), 2);
        assert!(!ok);
        assert_eq!(
            line,
            "1/2 healthy; 1 initial (Elb.InitialHealthChecking), 1 unhealthy (Target.FailedHealthChecks)"
        );
        let (ok, line) = healthy_targets(&ids(&["i-1", "i-2", "i-3"]), &[tg], 1);
        assert!(ok, "{line}");
    }

    #[test]
    fn an_instance_counts_when_healthy_in_every_target_group() {
        let a = vec![
            TargetState::new("i-1", "healthy", None),
            TargetState::new("i-2", "healthy", None),
        ];
        let b = vec![TargetState::new("i-1", "healthy", None)];
        let (ok, line) = healthy_targets(&ids(&["i-1", "i-2"]), &[a, b], 2);
        assert!(!ok);
        assert_eq!(line, "1/2 healthy; 1 not registered");
    }

    #[test]
    fn without_target_groups_in_service_instances_count_and_min_zero_is_ready() {
        assert_eq!(
            healthy_targets(&ids(&["i-1", "i-2"]), &[], 2),
            (true, "2/2 healthy".to_string())
        );
        assert!(healthy_targets(&[], &[vec![]], 0).0);
        // Registered and healthy, but no longer the group's (replaced).
        let tg = vec![
            TargetState::new("i-old1", "healthy", None),
            TargetState::new("i-old2", "healthy", None),
        ];
        assert_eq!(
            healthy_targets(&[], &[tg], 2),
            (false, "0/2 healthy; 0 in service".to_string())
        );
        let tg = vec![TargetState::new(
            "i-1",
            "draining",
            Some("Target.DeregistrationInProgress"),
        )];
        assert_eq!(
            healthy_targets(&ids(&["i-1"]), &[tg], 1),
            (
                false,
                "0/1 healthy; 1 draining (Target.DeregistrationInProgress)".to_string()
            )
        );
    }
}
