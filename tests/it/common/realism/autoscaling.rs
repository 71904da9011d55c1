//! The instance refresh API of EC2 Auto Scaling, which the emulator lacks:
//! StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh
//! and RollbackInstanceRefresh, with the API reference's validation rules
//! and errors, and the group updates an active refresh forbids.

use std::time::{Instant, SystemTime};

use super::super::http::Response;
use super::super::xml::escape;
use super::errors::error;
use super::paging::{token_offset, PAGE_TOKEN};
use super::refresh::{is_active, status, Prefs, Refresh};
use super::{Call, Inner, State, Timing};

/// Instance refresh owns the group's launch template while active
/// ("Update restriction" in the EC2 Auto Scaling user guide).
pub(super) fn refresh_owns_template(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if c.op == "UpdateAutoScalingGroup"
        && c.form.iter().any(|(k, _)| k.starts_with("LaunchTemplate."))
    {
        let group = c.get("AutoScalingGroupName").unwrap_or_default();
        if st
            .refreshes
            .iter()
            .any(|r| r.group == group && r.desired.is_some() && is_active(&status(r, t).0))
        {
            return Some(error(
                "autoscaling",
                400,
                "ValidationError",
                "An active instance refresh with a desired configuration exists. All configuration options derived from the desired configuration are not available for update while the instance refresh is active.",
            ));
        }
    }
    None
}

impl Inner {
    /// The proxy's own answer to an instance refresh call.
    pub(super) fn refresh_api(&self, c: &Call) -> Option<Response> {
        if c.service != "autoscaling" {
            return None;
        }
        match c.op.as_str() {
            "StartInstanceRefresh" => Some(self.start_refresh(c)),
            "DescribeInstanceRefreshes" => Some(self.describe_refreshes(c)),
            "CancelInstanceRefresh" => Some(self.cancel_refresh(c)),
            "RollbackInstanceRefresh" => Some(self.rollback_refresh(c)),
            _ => None,
        }
    }

    /// StartInstanceRefresh, with the API reference's validation rules.
    fn start_refresh(&self, c: &Call) -> Response {
        let v = |m: &str| error("autoscaling", 400, "ValidationError", m);
        let Some(group) = c.get("AutoScalingGroupName").map(str::to_string) else {
            return v("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null");
        };
        let strategy = c.get("Strategy").unwrap_or("Rolling");
        if strategy != "Rolling" && strategy != "ReplaceRootVolume" {
            return v(&format!("1 validation error detected: Value '{strategy}' at 'strategy' failed to satisfy constraint: Member must satisfy enum value set: [Rolling, ReplaceRootVolume]"));
        }
        let flag = |k: &str| c.get(k) == Some("true");
        let num = |k: &str| c.get(k).and_then(|s| s.parse::<i64>().ok());
        let prefs = Prefs {
            min_healthy: num("Preferences.MinHealthyPercentage").unwrap_or(90),
            max_healthy: num("Preferences.MaxHealthyPercentage"),
            warmup: num("Preferences.InstanceWarmup"),
            skip_matching: flag("Preferences.SkipMatching"),
            auto_rollback: flag("Preferences.AutoRollback"),
        };
        if !(0..=100).contains(&prefs.min_healthy) {
            return v(&format!("1 validation error detected: Value '{}' at 'preferences.minHealthyPercentage' failed to satisfy constraint: Member must have value less than or equal to 100", prefs.min_healthy));
        }
        if let Some(max) = num("Preferences.MaxHealthyPercentage") {
            if !(100..=200).contains(&max) || max - prefs.min_healthy > 100 {
                return v("The difference between MaxHealthyPercentage and MinHealthyPercentage cannot be greater than 100, and MaxHealthyPercentage must be between 100 and 200.");
            }
        }
        if prefs.warmup.is_some_and(|w| w < 0) {
            return v("1 validation error detected: Value at 'preferences.instanceWarmup' failed to satisfy constraint: Member must have value greater than or equal to 0");
        }
        let lt_id = c.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateId");
        let lt_name = c.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateName");
        let lt_version = c
            .get("DesiredConfiguration.LaunchTemplate.Version")
            .unwrap_or("$Default");
        let has_desired = c
            .form
            .iter()
            .any(|(k, _)| k.starts_with("DesiredConfiguration."));
        if has_desired && lt_id.is_none() && lt_name.is_none() {
            return v(
                "A launch template must be specified by ID or name in the desired configuration.",
            );
        }
        if prefs.auto_rollback && !has_desired {
            return v("The request isn't valid. The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty. Set AutoRollback to false or specify a desired configuration and try again.");
        }
        if strategy == "ReplaceRootVolume" {
            return v("The ReplaceRootVolume strategy requires a desired configuration with a mixed instances policy.");
        }
        let Some((cur_lt, cur_version, instances, _)) = self.group(&group) else {
            return v(&format!(
                "AutoScalingGroup name not found - AutoScalingGroup {group} not found"
            ));
        };
        if prefs.auto_rollback && (cur_version == "$Latest" || cur_version == "$Default") {
            return v("The AutoRollback parameter cannot be set to true when the Auto Scaling group uses the $Latest or $Default launch template version.");
        }
        let desired = match (lt_id, has_desired) {
            (Some(id), true) => {
                // The launch template version must exist.
                let r = self.template_version(id, lt_version);
                if r.status >= 300 || !r.text().contains("<versionNumber>") {
                    return v(&format!("The specified launch template, with template ID {id}, does not exist or has no version {lt_version}."));
                }
                Some((id.to_string(), lt_version.to_string()))
            }
            _ => None,
        };
        let mut st = self.state.lock().unwrap();
        if st
            .refreshes
            .iter()
            .any(|r| r.group == group && is_active(&status(r, &self.t).0))
        {
            return error(
                "autoscaling",
                400,
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            );
        }
        let matches = desired
            .as_ref()
            .is_some_and(|(id, ver)| *id == cur_lt && *ver == cur_version);
        let to_update = if prefs.skip_matching && matches {
            0
        } else {
            instances.len()
        };
        let n = st.refreshes.len() + 1;
        let id = format!("{:08x}-realism-4000-8000-{:012x}", n, n);
        let fail = st.fail_refreshes.clone();
        st.refreshes.push(Refresh {
            id: id.clone(),
            group,
            started: Instant::now(),
            started_at: SystemTime::now(),
            desired,
            prefs,
            capacity: instances.len(),
            to_update,
            fail,
            cancelled: None,
            rolled_back: None,
            applied: to_update == 0,
            success_read: None,
        });
        answer(
            "StartInstanceRefresh",
            &format!("<InstanceRefreshId>{id}</InstanceRefreshId>"),
        )
    }

    fn describe_refreshes(&self, c: &Call) -> Response {
        let Some(group) = c.get("AutoScalingGroupName") else {
            return error("autoscaling", 400, "ValidationError", "1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null");
        };
        let ids: Vec<&str> = c
            .form
            .iter()
            .filter(|(k, _)| k.starts_with("InstanceRefreshIds.member."))
            .map(|(_, v)| v.as_str())
            .collect();
        let mut st = self.state.lock().unwrap();
        let mut items: Vec<String> = Vec::new();
        // Newest first.
        for r in st.refreshes.iter_mut().rev() {
            if r.group != group || (!ids.is_empty() && !ids.contains(&r.id.as_str())) {
                continue;
            }
            let (status, pct, reason) = status(r, &self.t);
            if status == "Successful" {
                r.success_read.get_or_insert_with(Instant::now);
            }
            let mut m = format!(
                "<member><InstanceRefreshId>{}</InstanceRefreshId><AutoScalingGroupName>{}</AutoScalingGroupName><Status>{status}</Status>",
                r.id, r.group
            );
            if let Some(reason) = reason {
                m.push_str(&format!("<StatusReason>{}</StatusReason>", escape(&reason)));
            }
            m.push_str(&format!("<StartTime>{}</StartTime>", iso(r.started_at)));
            if !is_active(&status) {
                m.push_str(&format!("<EndTime>{}</EndTime>", iso(SystemTime::now())));
            }
            let left = if status == "Successful" {
                0
            } else {
                r.to_update - (r.to_update as i32 * pct / 100) as usize
            };
            m.push_str(&format!(
                "<PercentageComplete>{pct}</PercentageComplete><InstancesToUpdate>{left}</InstancesToUpdate>"
            ));
            m.push_str(&format!(
                "<Preferences><MinHealthyPercentage>{}</MinHealthyPercentage>{}<SkipMatching>{}</SkipMatching><AutoRollback>{}</AutoRollback><ScaleInProtectedInstances>Wait</ScaleInProtectedInstances><StandbyInstances>Wait</StandbyInstances></Preferences>",
                r.prefs.min_healthy,
                r.prefs.warmup.map(|w| format!("<InstanceWarmup>{w}</InstanceWarmup>")).unwrap_or_default(),
                r.prefs.skip_matching,
                r.prefs.auto_rollback
            ));
            if let Some((lt, v)) = &r.desired {
                m.push_str(&format!("<DesiredConfiguration><LaunchTemplate><LaunchTemplateId>{lt}</LaunchTemplateId><Version>{v}</Version></LaunchTemplate></DesiredConfiguration>"));
            }
            m.push_str("<Strategy>Rolling</Strategy></member>");
            items.push(m);
        }
        let total = items.len();
        let (offset, n) = if self.b.paging {
            (
                token_offset(c.get("NextToken")).unwrap_or(0),
                self.page_size,
            )
        } else {
            (0, usize::MAX)
        };
        let page: String = items.into_iter().skip(offset).take(n).collect();
        let token = if offset.saturating_add(n) < total {
            format!("<NextToken>{PAGE_TOKEN}{}</NextToken>", offset + n)
        } else {
            String::new()
        };
        answer(
            "DescribeInstanceRefreshes",
            &format!("<InstanceRefreshes>{page}</InstanceRefreshes>{token}"),
        )
    }

    fn active_mut<'s>(&self, st: &'s mut State, group: &str) -> Option<&'s mut Refresh> {
        let t = self.t;
        st.refreshes
            .iter_mut()
            .rev()
            .find(|r| r.group == group && is_active(&status(r, &t).0))
    }

    fn cancel_refresh(&self, c: &Call) -> Response {
        self.with_active(c, "CancelInstanceRefresh", |r| match r {
            Some(r) if r.cancelled.is_none() => {
                r.cancelled = Some(Instant::now());
                Ok(r.id.clone())
            }
            _ => Err(None),
        })
    }

    fn rollback_refresh(&self, c: &Call) -> Response {
        self.with_active(c, "RollbackInstanceRefresh", |r| match r {
            Some(r) if r.desired.is_none() => Err(Some(error(
                "autoscaling",
                400,
                "IrreversibleInstanceRefresh",
                "The instance refresh cannot be rolled back because it has no desired configuration.",
            ))),
            Some(r) if r.cancelled.is_none() && r.rolled_back.is_none() => {
                r.rolled_back = Some(Instant::now());
                Ok(r.id.clone())
            }
            _ => Err(None),
        })
    }

    /// Cancel and rollback: `act` on the group's active refresh answers its
    /// id, or an error (`None`: no active refresh it applies to).
    fn with_active(
        &self,
        c: &Call,
        op: &str,
        act: impl FnOnce(Option<&mut Refresh>) -> Result<String, Option<Response>>,
    ) -> Response {
        let group = c
            .get("AutoScalingGroupName")
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock().unwrap();
        match act(self.active_mut(&mut st, &group)) {
            Ok(id) => answer(op, &format!("<InstanceRefreshId>{id}</InstanceRefreshId>")),
            Err(Some(e)) => e,
            Err(None) => error(
                "autoscaling",
                400,
                "ActiveInstanceRefreshNotFound",
                &format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}"),
            ),
        }
    }
}

/// A successful answer to `op`, its result `result`, in the Auto Scaling
/// query protocol.
fn answer(op: &str, result: &str) -> Response {
    Response::new(
        200,
        "text/xml",
        format!("<{op}Response xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><{op}Result>{result}</{op}Result><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></{op}Response>"),
    )
}

/// `2026-11-27T13:04:18.000Z`.
fn iso(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, day) = bookstore_infra::resources::db_instance::civil(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}
