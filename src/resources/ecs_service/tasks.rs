//! The service's running tasks: where each one is, whether the load
//! balancer finds it healthy, and whether its ECS Exec agent runs
//! (ListTasks and DescribeTasks, Amazon ECS API Reference: `lastStatus`,
//! the `awsvpc` attachment's `privateIPv4Address`, each container's
//! `managedAgents`).

use std::collections::BTreeSet;

use aws_sdk_ecs::types::DesiredStatus;
use serde::Serialize;

use super::rollout::revision_name;
use super::APP_CONTAINER;
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::resources::target_group;

/// The managed agent of ECS Exec.
const EXEC_AGENT: &str = "ExecuteCommandAgent";

/// One task of the service, as `exec` and `status` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub arn: String,
    /// The task's id (the ARN's last part).
    pub id: String,
    pub address: Option<String>,
    /// The ECS Exec agent's `lastStatus` (`PENDING`, `RUNNING`, `STOPPED`),
    /// or `none` when the task has none.
    pub agent: String,
    /// The task's address is a healthy target.
    pub healthy: bool,
    /// The revision it runs (`family:revision`).
    pub revision: String,
}

/// The service's RUNNING tasks, sorted by id, each with its agent's state
/// and its target's health, and the cluster's ARN; `None` when the stack
/// has no service.
pub async fn running(
    cloud: &Cloud,
    stack: &str,
) -> Result<Option<(String, Vec<Task>)>, CloudError> {
    let Some(svc) = super::current(cloud, stack).await? else {
        return Ok(None);
    };
    let mut healthy = BTreeSet::new();
    for tg in svc
        .load_balancers()
        .iter()
        .filter_map(|l| l.target_group_arn())
    {
        healthy.extend(target_group::healthy_targets(cloud, super::KIND, tg).await?);
    }
    let tasks = of_service(cloud, &svc, &healthy).await?;
    Ok(Some((
        svc.cluster_arn().unwrap_or(stack).to_string(),
        tasks,
    )))
}

/// The RUNNING tasks of `svc` as read already, `healthy` the ids of the
/// healthy targets of its target groups.
pub async fn of_service(
    cloud: &Cloud,
    svc: &aws_sdk_ecs::types::Service,
    healthy: &BTreeSet<String>,
) -> Result<Vec<Task>, CloudError> {
    let cluster = svc.cluster_arn().unwrap_or_default().to_string();
    let arns: Vec<String> = cloud
        .ecs
        .list_tasks()
        .cluster(&cluster)
        .service_name(svc.service_name().unwrap_or(super::SERVICE))
        .desired_status(DesiredStatus::Running)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(super::KIND, "ListTasks")?;
    let mut out = Vec::new();
    // DescribeTasks takes up to 100 tasks.
    for chunk in arns.chunks(100) {
        let d = cloud
            .ecs
            .describe_tasks()
            .cluster(&cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .ctx(super::KIND, "DescribeTasks")?;
        for t in d.tasks() {
            if t.last_status() != Some("RUNNING") {
                continue;
            }
            let arn = t.task_arn().unwrap_or_default().to_string();
            let address = t
                .attachments()
                .iter()
                .flat_map(|a| a.details())
                .find(|kv| kv.name() == Some("privateIPv4Address"))
                .and_then(|kv| kv.value())
                .map(str::to_string);
            let agent = t
                .containers()
                .iter()
                .filter(|c| c.name() == Some(APP_CONTAINER))
                .flat_map(|c| c.managed_agents())
                .find(|a| a.name().map(|n| n.as_str()) == Some(EXEC_AGENT))
                .and_then(|a| a.last_status())
                .unwrap_or("none")
                .to_string();
            out.push(Task {
                revision: revision_name(t.task_definition_arn().unwrap_or_default()).to_string(),
                id: arn.rsplit('/').next().unwrap_or_default().to_string(),
                healthy: address.as_ref().is_some_and(|a| healthy.contains(a)),
                arn,
                address,
                agent,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
