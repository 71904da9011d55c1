//! The app on Fargate, as `status` reports it: the service's tasks, its
//! deployments (ECS's rollout state and reason), and the tasks' targets
//! behind the load balancer.

use serde::Serialize;

use super::Status;
use crate::cloud::{Cloud, CloudError};
use crate::resources::ecs_service::{self, rollout::revision_name, tasks::Task};

#[derive(Debug, Clone, Serialize)]
pub struct Fargate {
    /// `None`: the stack has no service (yet).
    pub service: Option<Service>,
    pub deployments: Vec<Deployment>,
    /// The tasks' targets: address and state (reason).
    pub targets: Vec<(String, String)>,
    /// The running tasks: id, revision, address, health, ECS Exec agent.
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    /// The revision it runs (`family:revision`).
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY (the one being rolled out or done) or ACTIVE (being replaced).
    pub status: String,
    pub task_definition: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
    pub reason: Option<String>,
    pub running: i32,
    pub desired: i32,
    pub failed_tasks: i32,
}

pub async fn gather(cloud: &Cloud, stack: &str) -> Result<Fargate, CloudError> {
    let svc = ecs_service::current(cloud, stack).await?;
    let mut out = Fargate {
        service: None,
        deployments: Vec::new(),
        targets: Vec::new(),
        tasks: Vec::new(),
    };
    let Some(s) = svc else {
        return Ok(out);
    };
    out.service = Some(Service {
        name: s.service_name().unwrap_or_default().to_string(),
        task_definition: revision_name(s.task_definition().unwrap_or_default()).to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
    });
    out.deployments = s
        .deployments()
        .iter()
        .map(|d| Deployment {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            task_definition: revision_name(d.task_definition().unwrap_or_default()).to_string(),
            rollout_state: d
                .rollout_state()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            reason: d.rollout_state_reason().map(str::to_string),
            running: d.running_count(),
            desired: d.desired_count(),
            failed_tasks: d.failed_tasks(),
        })
        .collect();
    // The service read once, its targets read once: the tasks' health is
    // theirs.
    let mut healthy = Default::default();
    if let Some(tg) = s
        .load_balancers()
        .first()
        .and_then(|l| l.target_group_arn())
    {
        let described = crate::resources::target_group::target_health(cloud, "status", tg).await?;
        healthy = crate::resources::target_group::healthy_ids(&described);
        out.targets = described
            .iter()
            .map(|t| {
                let id = t.target().and_then(|t| t.id()).unwrap_or_default();
                let th = t.target_health();
                let state = th
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                let reason = th.and_then(|h| h.reason()).map(|r| r.as_str().to_string());
                let shown = match reason {
                    Some(r) => format!("{state} ({r})"),
                    None => state,
                };
                (id.to_string(), shown)
            })
            .collect();
    }
    out.tasks = ecs_service::tasks::of_service(cloud, &s, &healthy).await?;
    Ok(out)
}

/// Why the app on Fargate is not healthy: no service; its PRIMARY
/// deployment not COMPLETED, or fewer tasks running than it wants; a
/// deployment ECS failed; no healthy target, or one unhealthy past its
/// initial checks.
pub fn problems(s: &Status) -> Vec<String> {
    let Some(f) = &s.fargate else {
        return vec!["the ECS service does not exist".into()];
    };
    let Some(svc) = &f.service else {
        return vec!["the ECS service does not exist".into()];
    };
    let mut out = Vec::new();
    match f.deployments.iter().find(|d| d.status == "PRIMARY") {
        None => out.push("the service has no deployment".to_string()),
        Some(d) if d.rollout_state != "COMPLETED" => out.push(format!(
            "deployment {} of {} is {}",
            d.id,
            d.task_definition,
            d.rollout_state.to_lowercase()
        )),
        Some(_) => {}
    }
    for d in f.deployments.iter().filter(|d| d.rollout_state == "FAILED") {
        out.push(format!(
            "deployment {} of {} failed: {}",
            d.id,
            d.task_definition,
            d.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    if svc.running < svc.desired {
        out.push(format!("{} of {} tasks running", svc.running, svc.desired));
    }
    let healthy = f.targets.iter().filter(|(_, st)| st == "healthy").count();
    if healthy == 0 {
        out.push("no target is healthy behind the load balancer".into());
    }
    for (id, st) in &f.targets {
        if st != "healthy" && !st.starts_with("initial") && !st.starts_with("draining") {
            out.push(format!("task {id} is {st} behind the load balancer"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(status: &str, state: &str, reason: Option<&str>) -> Deployment {
        Deployment {
            id: format!("ecs-svc/{status}"),
            status: status.into(),
            task_definition: "shop-app:3".into(),
            rollout_state: state.into(),
            reason: reason.map(str::to_string),
            running: 1,
            desired: 2,
            failed_tasks: 0,
        }
    }

    fn with(f: Fargate) -> Status {
        Status {
            stack: "shop".into(),
            region: "us-east-1".into(),
            url: None,
            group: None,
            database: None,
            certificate: None,
            probe: None,
            single: None,
            fargate: Some(f),
            healthy: false,
            problems: vec![],
        }
    }

    #[test]
    fn a_service_is_healthy_only_with_its_deployment_done_and_its_targets_healthy() {
        let service = Service {
            name: "app".into(),
            task_definition: "shop-app:3".into(),
            desired: 2,
            running: 2,
            pending: 0,
        };
        let healthy = Fargate {
            service: Some(service.clone()),
            deployments: vec![dep("PRIMARY", "COMPLETED", None)],
            tasks: vec![],
            targets: vec![
                ("10.0.1.1".into(), "healthy".into()),
                (
                    "10.0.1.2".into(),
                    "initial (Elb.RegistrationInProgress)".into(),
                ),
            ],
        };
        assert!(problems(&with(healthy)).is_empty());
        let rolling_back = Fargate {
            service: Some(Service {
                running: 1,
                ..service
            }),
            deployments: vec![
                dep("PRIMARY", "IN_PROGRESS", None),
                dep(
                    "ACTIVE",
                    "FAILED",
                    Some("ECS deployment circuit breaker: tasks failed to start."),
                ),
            ],
            tasks: vec![],
            targets: vec![(
                "10.0.1.1".into(),
                "unhealthy (Target.FailedHealthChecks)".into(),
            )],
        };
        let p = problems(&with(rolling_back));
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(p.iter().any(|x| x.contains("in_progress")));
        assert!(p
            .iter()
            .any(|x| x.contains("failed: ECS deployment circuit breaker")));
        assert!(p.iter().any(|x| x == "1 of 2 tasks running"));
        assert!(p.iter().any(|x| x.contains("no target is healthy")));
        assert!(p.iter().any(|x| x.contains("10.0.1.1 is unhealthy")));
        assert_eq!(
            problems(&with(Fargate {
                service: None,
                deployments: vec![],
                targets: vec![],
                tasks: vec![],
            })),
            ["the ECS service does not exist"]
        );
    }
}
