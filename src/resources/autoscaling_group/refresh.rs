//! The instance refresh decisions, kept pure: what a refresh's status
//! means, what a rollout does next given the group's refreshes, and the
//! request that starts one.

use aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshInput;
use aws_sdk_autoscaling::types::{
    DesiredConfiguration, InstanceRefresh, InstanceRefreshStatus, LaunchTemplateSpecification,
    RefreshPreferences, RefreshStrategy,
};

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
    pub(super) fn of(spec: Option<&LaunchTemplateSpecification>) -> Option<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
