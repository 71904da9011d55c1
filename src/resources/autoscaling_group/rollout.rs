//! The rollout controller: rolls the group's instances onto a launch
//! template version with an instance refresh (resuming one already rolling
//! it out, cancelling one of another version first), waits for its end,
//! and records what was rolled out; `rollback` goes through it too.

use std::time::SystemTime;

use aws_sdk_autoscaling::types::InstanceRefresh;
use serde_json::json;

use super::refresh::{
    is_failure, is_success, next_step, start_request, NextStep, RefreshSeen, TemplateVersion,
};
use super::report::{refresh_failure, refresh_progress};
use super::{tag, AutoScalingGroup, TAG_ROLLED_BACK, TAG_ROLLED_OUT};
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::Resolved;

/// How many times a rollout looks at the group's refreshes again after
/// cancelling another one or losing the race to start (another run, or the
/// console, starting refreshes meanwhile).
const ROLLOUT_ROUNDS: usize = 5;

/// Rolls group `group` back onto an earlier release `wanted` (`rollback`),
/// the way `up` rolls out a new one: instance refresh (or, `in_place`, the
/// release command on the instances there), wait, every target healthy,
/// then recorded. The rollback is recorded first (tag
/// [`TAG_ROLLED_BACK`]), so an interrupted one still shows in the plan.
pub async fn roll_back(
    cloud: &Cloud,
    group: &str,
    wanted: &TemplateVersion,
    from: &str,
    refresh: (i32, i32),
    min_healthy_targets: usize,
    in_place: bool,
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
    if in_place {
        g.roll_out_in_place(cloud, ID, group, wanted).await?;
    } else {
        g.roll_out_with(cloud, ID, group, wanted, refresh.0, refresh.1)
            .await?;
    }
    g.wait_healthy(cloud, ID, group, min_healthy_targets)
        .await?;
    g.mark_rolled_out(cloud, ID, group, &wanted.version).await
}

impl AutoScalingGroup {
    pub(super) async fn mark_rolled_out(
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
        Ok(super::describe(cloud, id, group)
            .await?
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
                cloud.timeouts.for_kind(super::KIND, Phase::Rollout),
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
    pub(super) async fn roll_out(
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
}
