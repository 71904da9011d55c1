//! Judging an ECS deployment from DescribeServices: done when the
//! deployment of the wanted revision is COMPLETED and PRIMARY with every
//! task running; failed when ECS says FAILED (the circuit breaker), or
//! when the service runs another revision again because ECS rolled back.

use aws_sdk_ecs::types::{DeploymentRolloutState, Service};

use crate::resources::autoscaling_group::GroupState;

/// Where a rollout of one task definition revision stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every task of the wanted revision runs; no other deployment is left.
    Done { running: i32 },
    /// Still going: what ECS reports.
    Waiting(String),
    /// ECS gave up on the revision. `rolled_back_to`: the revision the
    /// service runs instead, when it rolled back.
    Failed {
        reason: String,
        rolled_back_to: Option<String>,
    },
}

/// The short name of a revision ARN (`family:revision`).
pub fn revision_name(arn: &str) -> &str {
    arn.rsplit_once('/').map_or(arn, |(_, r)| r)
}

/// The tag `rollback` puts on the service: `<revision> from <revision>`
/// (as on the instances' group).
pub use crate::resources::autoscaling_group::TAG_ROLLED_BACK;

/// The revision number of a task definition ARN.
fn number(arn: &str) -> Option<i64> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// The service's side of the releases: the revision it names, the one it
/// has rolled out (its PRIMARY deployment COMPLETED, else the older
/// completed deployment still serving), and the `rollback` tag.
pub fn release_state(svc: &Service) -> GroupState {
    let deployments = svc.deployments();
    let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
    let completed = |d: &&aws_sdk_ecs::types::Deployment| {
        d.rollout_state() == Some(&DeploymentRolloutState::Completed)
    };
    // (A FAILED deployment stays ACTIVE while ECS rolls back: not it.)
    let done = primary.filter(completed).or_else(|| {
        deployments
            .iter()
            .filter(|d| d.status() == Some("ACTIVE"))
            .find(completed)
    });
    GroupState {
        name: svc.service_name().unwrap_or_default().to_string(),
        version: svc.task_definition().and_then(number),
        rolled_out: done.and_then(|d| d.task_definition()).and_then(number),
        rolled_back: svc
            .tags()
            .iter()
            .find(|t| t.key() == Some(TAG_ROLLED_BACK))
            .and_then(|t| t.value())
            .map(str::to_string),
    }
}

/// Where the rollout of `want` (a task definition ARN) stands in `svc`.
pub fn judge(svc: &Service, want: &str) -> Rollout {
    let deployments = svc.deployments();
    let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
    let primary_td = primary.and_then(|d| d.task_definition());
    let ours = deployments
        .iter()
        .find(|d| d.task_definition() == Some(want));
    let elsewhere = primary_td.filter(|t| *t != want).map(str::to_string);
    match ours {
        Some(d) if d.rollout_state() == Some(&DeploymentRolloutState::Failed) => Rollout::Failed {
            reason: d
                .rollout_state_reason()
                .unwrap_or("the deployment failed")
                .to_string(),
            rolled_back_to: elsewhere,
        },
        Some(d)
            if d.status() == Some("PRIMARY")
                && d.rollout_state() == Some(&DeploymentRolloutState::Completed)
                && d.running_count() >= d.desired_count()
                && deployments.len() == 1 =>
        {
            Rollout::Done {
                running: d.running_count(),
            }
        }
        Some(d) => Rollout::Waiting(format!(
            "{} {}: {}/{} running, {} pending, {} failed",
            revision_name(want),
            d.rollout_state()
                .map(|s| s.as_str().to_lowercase())
                .unwrap_or_else(|| "starting".into()),
            d.running_count(),
            d.desired_count(),
            d.pending_count(),
            d.failed_tasks(),
        )),
        // The wanted revision's deployment is gone and the service runs
        // another: ECS rolled it back and dropped it.
        None if elsewhere.is_some() => Rollout::Failed {
            reason: svc
                .events()
                .iter()
                .filter_map(|e| e.message())
                .find(|m| m.contains("failed") || m.contains("circuit breaker"))
                .unwrap_or("the deployment was rolled back")
                .to_string(),
            rolled_back_to: elsewhere,
        },
        None => Rollout::Waiting("no deployment yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Deployment, ServiceEvent};

    fn dep(td: &str, status: &str, state: DeploymentRolloutState, running: i32) -> Deployment {
        Deployment::builder()
            .task_definition(td)
            .status(status)
            .rollout_state(state)
            .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
            .desired_count(2)
            .running_count(running)
            .build()
    }

    const NEW: &str = "arn:aws:ecs:r:1:task-definition/shop-app:7";
    const OLD: &str = "arn:aws:ecs:r:1:task-definition/shop-app:6";

    #[test]
    fn a_rollout_is_done_only_when_the_new_revision_alone_runs_every_task() {
        use DeploymentRolloutState::*;
        let s = |d: Vec<Deployment>| Service::builder().set_deployments(Some(d)).build();
        let both = s(vec![
            dep(NEW, "PRIMARY", Completed, 2),
            dep(OLD, "ACTIVE", Completed, 2),
        ]);
        assert!(matches!(judge(&both, NEW), Rollout::Waiting(_)));
        let short = s(vec![dep(NEW, "PRIMARY", Completed, 1)]);
        assert!(matches!(judge(&short, NEW), Rollout::Waiting(_)));
        let done = s(vec![dep(NEW, "PRIMARY", Completed, 2)]);
        assert_eq!(judge(&done, NEW), Rollout::Done { running: 2 });
        let going = s(vec![
            dep(NEW, "PRIMARY", InProgress, 1),
            dep(OLD, "ACTIVE", Completed, 2),
        ]);
        match judge(&going, NEW) {
            Rollout::Waiting(w) => {
                assert!(w.contains("shop-app:7 in_progress: 1/2 running"), "{w}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_rollout_names_the_reason_and_the_revision_rolled_back_to() {
        use DeploymentRolloutState::*;
        let svc = Service::builder()
            .deployments(dep(OLD, "PRIMARY", InProgress, 0))
            .deployments(dep(NEW, "ACTIVE", Failed, 0))
            .build();
        assert_eq!(
            judge(&svc, NEW),
            Rollout::Failed {
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
                rolled_back_to: Some(OLD.into())
            }
        );
        // The failed deployment already dropped: the events tell why.
        let svc = Service::builder()
            .deployments(dep(OLD, "PRIMARY", Completed, 2))
            .events(
                ServiceEvent::builder()
                    .message("(service shop) (deployment ecs-svc/1) deployment failed: tasks failed to start.")
                    .build(),
            )
            .build();
        match judge(&svc, NEW) {
            Rollout::Failed {
                reason,
                rolled_back_to,
            } => {
                assert!(reason.contains("deployment failed"), "{reason}");
                assert_eq!(rolled_back_to.as_deref(), Some(OLD));
            }
            other => panic!("{other:?}"),
        }
    }
}
