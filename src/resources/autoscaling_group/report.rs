//! What a rollout tells: the progress line of a running refresh, and the
//! error for one that ended without rolling out.

use std::time::Duration;

use aws_sdk_autoscaling::types::{InstanceRefresh, InstanceRefreshStatus};

use super::refresh::{is_failure, TemplateVersion};

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

#[cfg(test)]
mod tests {
    use super::*;

    use aws_sdk_autoscaling::types::RollbackDetails;
    use aws_smithy_types::DateTime;
    use InstanceRefreshStatus as S;

    fn v(n: &str) -> TemplateVersion {
        TemplateVersion::new("lt-0abc", n)
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
}
