//! `ecs:service`: the app's Fargate tasks in the private subnets, behind
//! the load balancer's target group. A new task definition revision goes
//! out as an ECS rolling deployment with the circuit breaker on: ECS stops
//! a deployment whose tasks do not start or stay unhealthy and rolls back
//! to the last that worked. `up` waits for the deployment to be COMPLETED
//! and its targets healthy, and reports a rollback with ECS's reason.
//!
//! The task count belongs to Application Auto Scaling once the service
//! exists: it is set at creation only.

pub mod rollout;
pub mod tasks;

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    LaunchType, LoadBalancer, NetworkConfiguration, PropagateTags, Service, ServiceField,
};

use super::ecs_cluster::{ecs_owner, ecs_tags};
use crate::cloud::{Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use rollout::{judge, revision_name, Rollout};
pub use rollout::{release_state, TAG_ROLLED_BACK};

pub const KIND: &str = "ecs:service";

pub struct EcsService;

/// (ListClusters and DescribeClusters are the cluster kind's rows.)
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ecs", "list_services", "ListServices", &["ecs:ListServices"]),
    r("ecs", "describe_services", "DescribeServices", &["ecs:DescribeServices"]),
    w("ecs", "create_service", "CreateService", &["ecs:CreateService", "ecs:TagResource"]),
    w("ecs", "update_service", "UpdateService", &["ecs:UpdateService"]),
    // `rollback`'s record on the service, and `up`'s clearing it.
    w("ecs", "tag_resource", "TagResource", &["ecs:TagResource"]),
    w("ecs", "untag_resource", "UntagResource", &["ecs:UntagResource"]),
    w("ecs", "delete_service", "DeleteService", &["ecs:DeleteService"]),
    // `exec`: the service's tasks, and ECS Exec into one.
    r("ecs", "list_tasks", "ListTasks", &["ecs:ListTasks"]),
    r("ecs", "describe_tasks", "DescribeTasks", &["ecs:DescribeTasks"]),
    w("ecs", "execute_command", "ExecuteCommand", &["ecs:ExecuteCommand"]),
];

fn network(r: &Resolved) -> Result<NetworkConfiguration, CloudError> {
    let list = |k: &str| -> Vec<String> {
        r.props[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(list("subnets")))
                .set_security_groups(Some(list("security_groups")))
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?,
        )
        .build())
}

fn deployment_config() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(true)
                .build(),
        )
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .build()
}

fn observed(id: &str, s: &Service) -> Observed {
    let vpc = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let mut subnets: Vec<String> = vpc.map(|v| v.subnets().to_vec()).unwrap_or_default();
    subnets.sort();
    let mut groups: Vec<String> = vpc
        .map(|v| v.security_groups().to_vec())
        .unwrap_or_default();
    groups.sort();
    let lb = s.load_balancers().first();
    let breaker = s
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker())
        .is_some_and(|b| b.enable() && b.rollback());
    let name = s.service_name().unwrap_or_default();
    let cluster = s
        .cluster_arn()
        .and_then(|a| a.rsplit_once('/'))
        .map(|(_, n)| n)
        .unwrap_or_default();
    let mut o = Observed::new(KIND, id, s.service_arn().unwrap_or_default());
    if let Some(t) = release_state(s).rolled_back {
        o = o.prop(
            "rolled_back",
            crate::resources::autoscaling_group::rolled_back_note(&t),
        );
    }
    o.prop("name", name)
        .prop("cluster", cluster)
        .prop("task_definition", s.task_definition().unwrap_or_default())
        .prop("subnets", subnets)
        .prop("security_groups", groups)
        .prop(
            "target_group_arn",
            lb.and_then(|l| l.target_group_arn()).unwrap_or_default(),
        )
        .prop(
            "container_port",
            lb.and_then(|l| l.container_port()).unwrap_or_default(),
        )
        .prop(
            "grace_secs",
            s.health_check_grace_period_seconds().unwrap_or_default(),
        )
        .prop("circuit_breaker", breaker)
        .prop("execute_command", s.enable_execute_command())
        .attr("name", name)
        .attr("arn", s.service_arn().unwrap_or_default())
        .attr("cluster", cluster)
        .attr("resource_id", format!("service/{cluster}/{name}"))
}

#[async_trait]
impl ResourceKind for EcsService {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Tasks starting and a deployment rolling take what instances and a
    /// refresh take.
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
            replace("cluster"),
            replace("target_group_arn"),
            replace("container_port"),
            in_place("task_definition"),
            in_place("subnets"),
            in_place("security_groups"),
            in_place("grace_secs"),
            in_place("circuit_breaker"),
            in_place("execute_command"),
            in_place("rolled_back"),
        ];
        A
    }

    /// CreateService takes a client token.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn update_note(&self, changes: &[crate::engine::plan::AttrDiff]) -> Option<String> {
        crate::engine::changes(changes, "task_definition").then(|| {
            "a rolling deployment; ECS rolls back by itself if the new tasks fail".to_string()
        })
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // The stack's services are in the stack's clusters (the cluster
        // kind's read), not in every cluster of the account.
        let clusters: Vec<String> = super::ecs_cluster::Cluster
            .read_all(cloud, stack)
            .await?
            .into_iter()
            .filter_map(|c| c.attrs.get("arn").cloned())
            .collect();
        let mut out = Vec::new();
        for cluster in clusters {
            let arns: Vec<String> = match cloud
                .ecs
                .list_services()
                .cluster(&cluster)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .ctx(KIND, "ListServices")
            {
                Ok(a) => a,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            for chunk in arns.chunks(10) {
                let d = cloud
                    .ecs
                    .describe_services()
                    .cluster(&cluster)
                    .set_services(Some(chunk.to_vec()))
                    .include(ServiceField::Tags)
                    .send()
                    .await
                    .ctx(KIND, "DescribeServices")?;
                for s in d.services() {
                    if s.status() == Some("INACTIVE") {
                        continue;
                    }
                    if let Some(id) = ecs_owner(s.tags(), stack) {
                        out.push(observed(&id, s));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let req = cloud
            .ecs
            .create_service()
            .cluster(r.str("cluster")?)
            .service_name(r.str("name")?)
            .task_definition(r.str("task_definition")?)
            .desired_count(r.i64("desired_count")? as i32)
            .launch_type(LaunchType::Fargate)
            .platform_version("LATEST")
            .network_configuration(network(r)?)
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(r.str("target_group_arn")?)
                    .container_name(r.str("container_name")?)
                    .container_port(r.i64("container_port")? as i32)
                    .build(),
            )
            .health_check_grace_period_seconds(r.i64("grace_secs")? as i32)
            .deployment_configuration(deployment_config())
            .enable_execute_command(r.bool("execute_command"))
            .propagate_tags(PropagateTags::Service)
            .enable_ecs_managed_tags(true)
            .set_tags(Some(ecs_tags(&r.tags)))
            // ECS takes tokens of up to 36 characters.
            .client_token(&r.token[..36]);
        // A target group or role made moments before may not be visible yet.
        let out = cloud
            .settle(&r.id, "CreateService", || req.clone().send())
            .await?;
        let s = out
            .service()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateService returned no service"))?;
        Ok(observed(&r.id, s))
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let want = current
            .props
            .get("task_definition")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        wait_rollout(cloud, &current, &want, true).await?;
        Ok(current)
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        // Rolling forward after a `rollback` ends it: the tag goes first,
        // so a run interrupted after it does not keep the service pinned.
        if changed.iter().any(|c| c == "rolled_back") && r.props["rolled_back"].is_null() {
            cloud
                .ecs
                .untag_resource()
                .resource_arn(&current.physical_id)
                .tag_keys(TAG_ROLLED_BACK)
                .send()
                .await
                .ctx(&r.id, "UntagResource")?;
        }
        let want = r.str("task_definition")?;
        let out = cloud
            .ecs
            .update_service()
            .cluster(r.str("cluster")?)
            .service(&current.physical_id)
            .task_definition(want)
            .network_configuration(network(r)?)
            .health_check_grace_period_seconds(r.i64("grace_secs")? as i32)
            .deployment_configuration(deployment_config())
            .enable_execute_command(r.bool("execute_command"))
            .send()
            .await
            .ctx(&r.id, "UpdateService")?;
        let s = out
            .service()
            .ok_or_else(|| CloudError::invalid(&r.id, "UpdateService returned no service"))?;
        // The executor waits for the deployment (`wait_ready`).
        Ok(observed(&r.id, s))
    }

    /// Scaled to zero, deleted, and waited for until ECS has drained it
    /// (DRAINING, then INACTIVE): the target group and cluster go after.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let cluster = current.attrs.get("cluster").cloned().unwrap_or_default();
        let r = cloud
            .ecs
            .delete_service()
            .cluster(&cluster)
            .service(&current.physical_id)
            .force(true)
            .send()
            .await
            .map(|_| ())
            .ctx(&current.id, "DeleteService");
        super::gone_ok(r)?;
        let limit = cloud.timeouts.for_kind(KIND, Phase::Delete);
        cloud
            .wait_until(&current.id, "the service drained", limit, || async {
                let svc = describe_one(cloud, &current.id, &cluster, &current.physical_id).await?;
                match svc.as_ref().and_then(|s| s.status()) {
                    None | Some("INACTIVE") => Ok((Some(()), "gone or inactive".into())),
                    Some(st) => Ok((None, st.to_lowercase())),
                }
            })
            .await
    }
}

/// Waits until the deployment of `want` is COMPLETED with every task
/// running and as many healthy targets; a deployment ECS failed (and
/// rolled back) ends the wait with its reason.
async fn wait_rollout(
    cloud: &Cloud,
    current: &Observed,
    want: &str,
    deregister_failed: bool,
) -> Result<(), CloudError> {
    let cluster = current.attrs.get("cluster").cloned().unwrap_or_default();
    let tg = current
        .props
        .get("target_group_arn")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let limit = cloud.timeouts.for_kind(KIND, Phase::Rollout);
    let what = format!("{} deployed", revision_name(want));
    cloud
        .wait_until(&current.id, &what, limit, || async {
            let svc = describe_one(cloud, &current.id, &cluster, &current.physical_id)
                .await?
                .ok_or_else(|| CloudError::invalid(&current.id, "the service is gone"))?;
            match judge(&svc, want) {
                Rollout::Waiting(w) => Ok((None, w)),
                Rollout::Failed {
                    reason,
                    rolled_back_to,
                } => {
                    // A new revision that failed is never run again:
                    // deregistered, it leaves the newest revision the one the
                    // service runs. (An earlier one `rollback` went to stays.)
                    if deregister_failed {
                        super::ecs_task_definition::deregister(cloud, &current.id, want).await?;
                    }
                    let back = match rolled_back_to {
                        Some(to) => {
                            format!("; ECS rolled the service back to {}", revision_name(&to))
                        }
                        None => String::new(),
                    };
                    let fate = if deregister_failed {
                        format!("; {} is deregistered", revision_name(want))
                    } else {
                        String::new()
                    };
                    Err(CloudError::invalid(
                        &current.id,
                        format!(
                            "the deployment of {} failed: {reason}{back}{fate}",
                            revision_name(want)
                        ),
                    ))
                }
                Rollout::Done { running } => {
                    let healthy = healthy_targets(cloud, &current.id, &tg).await?;
                    if healthy >= running.max(0) as usize {
                        Ok((Some(()), "healthy".into()))
                    } else {
                        Ok((None, format!("{healthy}/{running} targets healthy")))
                    }
                }
            }
        })
        .await
}

/// Moves the stack's service to revision `to` (`rollback`) and waits for
/// its deployment as `up` does. The rollback is recorded first (the tag
/// [`TAG_ROLLED_BACK`], `<revision> from <revision>`), so an interrupted
/// one still shows in the plan.
pub async fn roll_back(cloud: &Cloud, stack: &str, to: &str, tag: &str) -> Result<(), CloudError> {
    let svc = current(cloud, stack)
        .await?
        .ok_or_else(|| CloudError::invalid(KIND, format!("stack {stack} has no ECS service")))?;
    let arn = svc.service_arn().unwrap_or_default();
    // With the stack's own tag again: the apply policy tags ECS resources
    // only in a request that carries it (ContainersCreateTagged).
    let tag_of = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
    cloud
        .ecs
        .tag_resource()
        .resource_arn(arn)
        .tags(tag_of(TAG_ROLLED_BACK, tag))
        .tags(tag_of(crate::engine::TAG_STACK, stack))
        .send()
        .await
        .ctx(KIND, "TagResource")?;
    let cluster = svc
        .cluster_arn()
        .and_then(|a| a.rsplit_once('/'))
        .map(|(_, n)| n)
        .unwrap_or(stack);
    let out = cloud
        .ecs
        .update_service()
        .cluster(cluster)
        .service(arn)
        .task_definition(to)
        .send()
        .await
        .ctx(KIND, "UpdateService")?;
    let s = out
        .service()
        .ok_or_else(|| CloudError::invalid(KIND, "UpdateService returned no service"))?;
    let result = wait_rollout(cloud, &observed(KIND, s), to, false).await;
    if result.is_err() {
        // ECS put the service back where it was: no rollback to keep.
        cloud
            .ecs
            .untag_resource()
            .resource_arn(arn)
            .tag_keys(TAG_ROLLED_BACK)
            .send()
            .await
            .ctx(KIND, "UntagResource")?;
    }
    result
}

/// How many targets of `tg` are healthy.
async fn healthy_targets(cloud: &Cloud, id: &str, tg: &str) -> Result<usize, CloudError> {
    if tg.is_empty() {
        return Ok(usize::MAX);
    }
    Ok(super::target_group::healthy_targets(cloud, id, tg)
        .await?
        .len())
}

/// The stack's app service as ECS describes it now, if there is one.
pub async fn current(cloud: &Cloud, stack: &str) -> Result<Option<Service>, CloudError> {
    Ok(describe_one(cloud, KIND, stack, SERVICE)
        .await?
        .filter(|s| s.status() != Some("INACTIVE")))
}

/// One service of `cluster` as DescribeServices shows it, whatever its
/// status; `None` when ECS knows neither it nor its cluster.
async fn describe_one(
    cloud: &Cloud,
    id: &str,
    cluster: &str,
    service: &str,
) -> Result<Option<Service>, CloudError> {
    match cloud
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(ServiceField::Tags)
        .send()
        .await
        .ctx(id, "DescribeServices")
    {
        Ok(d) => Ok(d.services().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The service's name in its cluster.
pub const SERVICE: &str = "app";
/// The app's container in the task.
pub const APP_CONTAINER: &str = "app";
