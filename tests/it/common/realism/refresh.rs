//! Instance refresh, as EC2 Auto Scaling runs it: the timeline of a
//! refresh (the emulator lacks the API; see `autoscaling.rs` for the calls),
//! and the group it leaves behind once it succeeds.

use std::time::{Duration, Instant, SystemTime};

use super::super::http::Response;
use super::super::xml;
use super::{Inner, Realism, Timing};

#[derive(Debug, Clone)]
pub(super) struct Refresh {
    pub(super) id: String,
    pub(super) group: String,
    pub(super) started: Instant,
    pub(super) started_at: SystemTime,
    /// (launch template id, version) asked for.
    pub(super) desired: Option<(String, String)>,
    pub(super) prefs: Prefs,
    /// The group's instances when it started.
    pub(super) capacity: usize,
    pub(super) to_update: usize,
    /// Why it will fail half way, if it will.
    pub(super) fail: Option<String>,
    pub(super) cancelled: Option<Instant>,
    pub(super) rolled_back: Option<Instant>,
    pub(super) applied: bool,
    /// When a DescribeInstanceRefreshes first answered it `Successful`.
    pub(super) success_read: Option<Instant>,
}

impl Refresh {
    /// Instances replaced at a time, from the group's size when it started
    /// and the preferences ("Understand the default values for an instance
    /// refresh": `MinHealthyPercentage` of the desired capacity, rounded
    /// up, stays in service, so the rest may be replaced at once, and at
    /// least one is; with `MaxHealthyPercentage` above 100, new instances
    /// are launched first, up to that percentage, before old ones go).
    pub(super) fn batch(&self) -> usize {
        let cap = self.capacity.max(1);
        let batch = match self.prefs.max_healthy {
            Some(max) if max > 100 => cap * (max - 100) as usize / 100,
            _ => {
                let keep = (cap * self.prefs.min_healthy as usize).div_ceil(100);
                cap.saturating_sub(keep)
            }
        };
        batch.clamp(1, self.to_update.max(1))
    }

    /// How many batches the refresh replaces in.
    pub(super) fn batches(&self) -> usize {
        self.to_update.div_ceil(self.batch()).max(1)
    }

    /// One batch: its instances launched, then warmed up (`InstanceWarmup`
    /// seconds, scaled like the tool's polls: 1 s of AWS is 10 ms here)
    /// before the next batch starts.
    pub(super) fn per_batch(&self, t: &Timing) -> Duration {
        let warmup = Duration::from_millis(self.prefs.warmup.unwrap_or(0).max(0) as u64 * 10);
        t.refresh_per_instance + warmup
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Prefs {
    pub(super) min_healthy: i64,
    pub(super) max_healthy: Option<i64>,
    pub(super) warmup: Option<i64>,
    pub(super) skip_matching: bool,
    pub(super) auto_rollback: bool,
}

pub(super) fn is_active(status: &str) -> bool {
    matches!(
        status,
        "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress" | "Baking"
    )
}

/// A refresh's status, percentage and reason now, from its timeline:
/// Pending, InProgress (batch after batch, each warmed up), then
/// Successful; or, when the first batch's new instances stay unhealthy
/// through their warm-up, Failed (or RollbackInProgress ->
/// RollbackSuccessful with auto rollback); Cancelling -> Cancelled after a
/// cancel.
pub(super) fn status(r: &Refresh, t: &Timing) -> (String, i32, Option<String>) {
    let el = r.started.elapsed();
    let run = r.per_batch(t) * r.batches() as u32;
    let short = Duration::from_millis(300);
    if let Some(c) = r.cancelled {
        let pct = pct(
            c.duration_since(r.started)
                .saturating_sub(t.refresh_pending),
            run,
        );
        return if c.elapsed() < short {
            ("Cancelling".into(), pct, None)
        } else {
            (
                "Cancelled".into(),
                pct,
                Some("Cancelled due to user request.".into()),
            )
        };
    }
    if let Some(b) = r.rolled_back {
        return if b.elapsed() < run / 2 {
            (
                "RollbackInProgress".into(),
                0,
                Some("Rollback requested by user.".into()),
            )
        } else {
            (
                "RollbackSuccessful".into(),
                100,
                Some("Rollback requested by user.".into()),
            )
        };
    }
    if el < t.refresh_pending {
        return ("Pending".into(), 0, None);
    }
    let into = el - t.refresh_pending;
    if let Some(reason) = &r.fail {
        let fail_at = r.per_batch(t);
        if into >= fail_at {
            if !r.prefs.auto_rollback {
                return ("Failed".into(), pct(fail_at, run), Some(reason.clone()));
            }
            let rb = into - fail_at;
            let done = pct(fail_at, run);
            return if rb < fail_at {
                (
                    "RollbackInProgress".into(),
                    done - pct(rb, fail_at).min(100) * done / 100,
                    Some(reason.clone()),
                )
            } else {
                (
                    "RollbackSuccessful".into(),
                    100,
                    Some(format!("{reason} The instance refresh was rolled back to the previous configuration.")),
                )
            };
        }
    }
    if into < run {
        // Progress moves batch by batch.
        let whole = r.per_batch(t);
        let done = (into.as_nanos() / whole.as_nanos().max(1)) as u32;
        return ("InProgress".into(), pct(whole * done, run), None);
    }
    ("Successful".into(), 100, None)
}

fn pct(part: Duration, whole: Duration) -> i32 {
    if whole.is_zero() {
        return 100;
    }
    ((part.as_secs_f64() / whole.as_secs_f64()) * 100.0).min(100.0) as i32
}

impl Realism {
    /// Each instance refresh started: its batches, and when the tool first
    /// read it `Successful`.
    pub fn refreshes(&self) -> Vec<(usize, Option<Instant>)> {
        let st = self.inner.state.lock().unwrap();
        st.refreshes
            .iter()
            .map(|r| (r.batches(), r.success_read))
            .collect()
    }

    /// Instance refreshes started from now on fail half way with `reason`
    /// (as when new instances fail their health checks); `None` lets them
    /// succeed again.
    pub fn fail_refreshes(&self, reason: Option<&str>) {
        self.inner.state.lock().unwrap().fail_refreshes = reason.map(str::to_string);
    }
}

impl Inner {
    /// The group as the emulator has it: (launch template id, version,
    /// instance ids, subnets).
    pub(super) fn group(&self, name: &str) -> Option<(String, String, Vec<String>, Vec<String>)> {
        let r = self.upstream_query(
            "autoscaling",
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", name.into())],
        );
        let body = r.text();
        let groups = xml::find(&body, "AutoScalingGroups", 0)?;
        let g = xml::children(&body, groups.inner).into_iter().next()?;
        let g = &body[g.open..g.end];
        let own = xml::remove(g, "Instances");
        let lt = xml::find(&own, "LaunchTemplate", 0)
            .map(|s| own[s.open..s.end].to_string())
            .unwrap_or_default();
        let lt = lt.as_str();
        let instances = xml::find(g, "Instances", 0)
            .map(|sp| {
                xml::children(g, sp.inner)
                    .iter()
                    .filter_map(|i| xml::text(&g[i.open..i.end], "InstanceId").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let subnets = xml::text(&own, "VPCZoneIdentifier")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some((
            xml::text(lt, "LaunchTemplateId")
                .unwrap_or_default()
                .to_string(),
            xml::text(lt, "Version").unwrap_or_default().to_string(),
            instances,
            subnets,
        ))
    }

    /// Version `version` of launch template `id`, as the emulator has it.
    pub(super) fn template_version(&self, id: &str, version: &str) -> Response {
        self.upstream_query(
            "ec2",
            "DescribeLaunchTemplateVersions",
            &[
                ("LaunchTemplateId", id.into()),
                ("LaunchTemplateVersion.1", version.into()),
            ],
        )
    }

    /// Applies the desired configuration of refreshes that succeeded: "Once
    /// the instance refresh succeeds, Amazon EC2 Auto Scaling updates the
    /// settings of the Auto Scaling group to reflect the new desired
    /// configuration"; the instances were replaced on the way, so new
    /// instances (new targets) take the old ones' places.
    pub(super) fn advance_refreshes(&self) {
        type Due = (usize, String, Option<(String, String)>);
        let due: Vec<Due> = {
            let st = self.state.lock().unwrap();
            st.refreshes
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.applied && status(r, &self.t).0 == "Successful")
                .map(|(i, r)| (i, r.group.clone(), r.desired.clone()))
                .collect()
        };
        for (i, group, desired) in due {
            {
                let mut st = self.state.lock().unwrap();
                if st.refreshes[i].applied {
                    continue;
                }
                st.refreshes[i].applied = true;
            }
            let Some((_, _, old, subnets)) = self.group(&group) else {
                continue;
            };
            let Some((lt, v)) = desired else {
                continue;
            };
            // New instances from the desired version replace the old ones.
            // (The emulator cannot launch a group's instances from a
            // template version made by CreateLaunchTemplateVersion with
            // user data, so the proxy launches them and attaches them.)
            let ver = self.template_version(&lt, &v);
            let body = ver.text();
            let image = xml::text(&body, "imageId")
                .unwrap_or("ami-12c6146b")
                .to_string();
            let itype = xml::text(&body, "instanceType")
                .unwrap_or("t3.small")
                .to_string();
            for inst in &old {
                self.upstream_query(
                    "autoscaling",
                    "DetachInstances",
                    &[
                        ("AutoScalingGroupName", group.clone()),
                        ("InstanceIds.member.1", inst.clone()),
                        ("ShouldDecrementDesiredCapacity", "true".into()),
                    ],
                );
                self.upstream_query(
                    "ec2",
                    "TerminateInstances",
                    &[("InstanceId.1", inst.clone())],
                );
            }
            let mut new_ids = Vec::new();
            for (i, _) in old.iter().enumerate() {
                let subnet = subnets
                    .get(i % subnets.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                let r = self.upstream_query(
                    "ec2",
                    "RunInstances",
                    &[
                        ("ImageId", image.clone()),
                        ("InstanceType", itype.clone()),
                        ("MinCount", "1".into()),
                        ("MaxCount", "1".into()),
                        ("SubnetId", subnet),
                    ],
                );
                if let Some(id) = xml::text(&r.text(), "instanceId") {
                    new_ids.push(id.to_string());
                }
            }
            let mut attach = vec![("AutoScalingGroupName", group.clone())];
            let keys: Vec<String> = (1..=new_ids.len())
                .map(|i| format!("InstanceIds.member.{i}"))
                .collect();
            for (k, id) in keys.iter().zip(&new_ids) {
                attach.push((k.as_str(), id.clone()));
            }
            if !new_ids.is_empty() {
                self.upstream_query("autoscaling", "AttachInstances", &attach);
            }
            self.upstream_query(
                "autoscaling",
                "UpdateAutoScalingGroup",
                &[
                    ("AutoScalingGroupName", group.clone()),
                    ("LaunchTemplate.LaunchTemplateId", lt),
                    ("LaunchTemplate.Version", v),
                ],
            );
        }
    }
}
