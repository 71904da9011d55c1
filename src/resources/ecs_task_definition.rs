//! `ecs:task-definition`: what a Fargate task of the app runs. A task
//! definition cannot change: every change registers a new revision of the
//! family, and the revisions before it stay registered, the newest `keep`
//! of them, as the releases `rollback` returns to. Deleting the resource
//! deregisters the whole family.
//!
//! The containers are compared in a form of their own (`containers`,
//! below), the same for what is wanted and what DescribeTaskDefinition
//! answers, with every default ECS fills in left out.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Compatibility, ContainerCondition, ContainerDefinition, ContainerDependency, CpuArchitecture,
    EfsAuthorizationConfig, EfsAuthorizationConfigIam, EfsTransitEncryption,
    EfsVolumeConfiguration, KeyValuePair, LogConfiguration, LogDriver, MountPoint, NetworkMode,
    OsFamily, PortMapping, RuntimePlatform, Secret, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus, TransportProtocol, Volume,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ecs_cluster::{ecs_owner, ecs_tags};
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ecs:task-definition";

/// The tag each revision carries: the release (binary sha256) it runs.
pub const RELEASE_TAG: &str = "bookstore-infra:release";
/// The git commit the stack file's repository was at, when it had one.
pub const COMMIT_TAG: &str = "bookstore-infra:commit";

pub struct TaskDefinitionKind;

/// The family of the stack's app task definitions.
pub fn family(stack: &str) -> String {
    format!("{stack}-app")
}

#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ecs", "list_task_definitions", "ListTaskDefinitions", &["ecs:ListTaskDefinitions"]),
    r("ecs", "describe_task_definition", "DescribeTaskDefinition", &["ecs:DescribeTaskDefinition"]),
    w("ecs", "register_task_definition", "RegisterTaskDefinition", &["ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"]),
    w("ecs", "deregister_task_definition", "DeregisterTaskDefinition", &["ecs:DeregisterTaskDefinition"]),
];

/// One container, as compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub essential: bool,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Environment variable -> the secret (ARN, or `ARN:json-key::`) ECS
    /// reads it from.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub log_group: String,
    pub log_region: String,
    pub log_prefix: String,
    /// Volume name -> path in the container.
    #[serde(default)]
    pub mounts: BTreeMap<String, String>,
    /// A container that must have exited 0 before this one starts.
    #[serde(default)]
    pub after_success_of: Option<String>,
    pub user: String,
    pub read_only_root: bool,
}

/// An EFS volume through an access point, over TLS, as the task's role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfsVolume {
    pub name: String,
    pub file_system_id: String,
    pub access_point_id: String,
}

fn container_def(c: &Container) -> ContainerDefinition {
    let mut b = ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(c.essential)
        .user(&c.user)
        .readonly_root_filesystem(c.read_only_root)
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .set_environment(Some(
            c.environment
                .iter()
                .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                .collect(),
        ))
        .set_secrets(Some(
            c.secrets
                .iter()
                .map(|(k, v)| Secret::builder().name(k).value_from(v).build())
                .collect::<Result<_, _>>()
                .unwrap_or_default(),
        ))
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", &c.log_group)
                .options("awslogs-region", &c.log_region)
                .options("awslogs-stream-prefix", &c.log_prefix)
                .build()
                .expect("the log driver is set"),
        )
        .set_mount_points(Some(
            c.mounts
                .iter()
                .map(|(v, p)| {
                    MountPoint::builder()
                        .source_volume(v)
                        .container_path(p)
                        .read_only(false)
                        .build()
                })
                .collect(),
        ));
    if let Some(port) = c.port {
        b = b.port_mappings(
            PortMapping::builder()
                .container_port(port)
                .protocol(TransportProtocol::Tcp)
                .build(),
        );
    }
    if let Some(first) = &c.after_success_of {
        b = b.depends_on(
            ContainerDependency::builder()
                .container_name(first)
                .condition(ContainerCondition::Success)
                .build()
                .expect("name and condition are set"),
        );
    }
    b.build()
}

fn container_of(d: &ContainerDefinition) -> Container {
    let opts = d.log_configuration().and_then(|l| l.options());
    let opt = |k: &str| opts.and_then(|o| o.get(k)).cloned().unwrap_or_default();
    Container {
        name: d.name().unwrap_or_default().into(),
        image: d.image().unwrap_or_default().into(),
        essential: d.essential().unwrap_or(true),
        command: d.command().to_vec(),
        port: d.port_mappings().first().and_then(|p| p.container_port()),
        environment: d
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
            .collect(),
        secrets: d
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().to_string()))
            .collect(),
        log_group: opt("awslogs-group"),
        log_region: opt("awslogs-region"),
        log_prefix: opt("awslogs-stream-prefix"),
        mounts: d
            .mount_points()
            .iter()
            .filter_map(|m| {
                Some((
                    m.source_volume()?.to_string(),
                    m.container_path()?.to_string(),
                ))
            })
            .collect(),
        after_success_of: d
            .depends_on()
            .iter()
            .find(|x| x.condition() == &ContainerCondition::Success)
            .map(|x| x.container_name().to_string()),
        user: d.user().unwrap_or_default().into(),
        read_only_root: d.readonly_root_filesystem().unwrap_or(false),
    }
}

fn volume_def(v: &EfsVolume) -> Volume {
    Volume::builder()
        .name(&v.name)
        .efs_volume_configuration(
            EfsVolumeConfiguration::builder()
                .file_system_id(&v.file_system_id)
                .transit_encryption(EfsTransitEncryption::Enabled)
                .authorization_config(
                    EfsAuthorizationConfig::builder()
                        .access_point_id(&v.access_point_id)
                        .iam(EfsAuthorizationConfigIam::Enabled)
                        .build(),
                )
                .build()
                .expect("the file system is set"),
        )
        .build()
}

fn volume_of(v: &Volume) -> Option<EfsVolume> {
    let e = v.efs_volume_configuration()?;
    let auth = e.authorization_config();
    // Anything but TLS and IAM through the access point is not ours.
    let ours = e.transit_encryption() == Some(&EfsTransitEncryption::Enabled)
        && auth.and_then(|a| a.iam()) == Some(&EfsAuthorizationConfigIam::Enabled);
    Some(EfsVolume {
        name: v.name()?.to_string(),
        file_system_id: e.file_system_id().to_string(),
        access_point_id: auth
            .and_then(|a| a.access_point_id())
            .filter(|_| ours)
            .unwrap_or_default()
            .to_string(),
    })
}

fn observed(id: &str, td: &TaskDefinition) -> Observed {
    let containers: Vec<Container> = td
        .container_definitions()
        .iter()
        .map(container_of)
        .collect();
    let volumes: Vec<EfsVolume> = td.volumes().iter().filter_map(volume_of).collect();
    let arn = td.task_definition_arn().unwrap_or_default();
    Observed::new(KIND, id, arn)
        .prop("family", td.family().unwrap_or_default())
        .prop("cpu", td.cpu().unwrap_or_default())
        .prop("memory", td.memory().unwrap_or_default())
        .prop("task_role_arn", td.task_role_arn().unwrap_or_default())
        .prop(
            "execution_role_arn",
            td.execution_role_arn().unwrap_or_default(),
        )
        .prop(
            "containers",
            serde_json::to_value(containers).unwrap_or(Value::Null),
        )
        .prop(
            "volumes",
            serde_json::to_value(volumes).unwrap_or(Value::Null),
        )
        .attr("arn", arn)
        .attr("family", td.family().unwrap_or_default())
        .attr("revision", td.revision().to_string())
}

/// The ACTIVE revisions of `family`, newest first.
pub async fn revisions(cloud: &Cloud, id: &str, family: &str) -> Result<Vec<String>, CloudError> {
    let arns: Vec<String> = cloud
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "ListTaskDefinitions")?;
    // Newest first by the revision number, whatever order the pages came in.
    let mut arns: Vec<(u64, String)> = arns
        .into_iter()
        .filter(|a| family_of(a) == Some(family))
        .map(|a| (revision_of(&a).unwrap_or(0), a))
        .collect();
    arns.sort_by_key(|a| std::cmp::Reverse(a.0));
    Ok(arns.into_iter().map(|(_, a)| a).collect())
}

/// The revision number of a task definition ARN.
fn revision_of(arn: &str) -> Option<u64> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// The family of a task definition ARN (`...:task-definition/FAMILY:REV`).
pub fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit_once("task-definition/")?
        .1
        .rsplit_once(':')
        .map(|(f, _)| f)
}

/// One revision of the stack's app, newest first: its ARN, number,
/// release (binary sha256) tag, registration time and image digest.
pub struct Revision {
    pub arn: String,
    pub number: i64,
    pub release: Option<String>,
    pub commit: Option<String>,
    pub registered: Option<String>,
    pub image: Option<String>,
}

/// The ACTIVE revisions of the stack's app family, newest first.
pub async fn stack_revisions(cloud: &Cloud, stack: &str) -> Result<Vec<Revision>, CloudError> {
    let mut out = Vec::new();
    for arn in revisions(cloud, KIND, &family(stack)).await? {
        let (td, tags) = match describe(cloud, KIND, &arn).await {
            Ok(x) => x,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        out.push(Revision {
            number: td.revision() as i64,
            release: tag(RELEASE_TAG),
            commit: tag(COMMIT_TAG),
            registered: td
                .registered_at()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            image: td.container_definitions().iter().find_map(|c| {
                c.image()
                    .and_then(|i| i.rsplit_once('@'))
                    .map(|(_, d)| d.to_string())
            }),
            arn,
        });
    }
    Ok(out)
}

/// A revision with its tags.
pub async fn describe(
    cloud: &Cloud,
    id: &str,
    arn: &str,
) -> Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>), CloudError> {
    let d = cloud
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .ctx(id, "DescribeTaskDefinition")?;
    let td = d
        .task_definition()
        .cloned()
        .ok_or_else(|| CloudError::invalid(id, format!("{arn} has no definition")))?;
    Ok((td, d.tags().to_vec()))
}

#[async_trait]
impl ResourceKind for TaskDefinitionKind {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("family"),
            in_place("cpu"),
            in_place("memory"),
            in_place("task_role_arn"),
            in_place("execution_role_arn"),
            in_place("containers"),
            in_place("volumes"),
        ];
        A
    }

    /// A RegisterTaskDefinition repeated after a lost answer registers a
    /// second, identical revision; the newest is the one used, and the
    /// other goes with the old releases.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    /// Every update is a new revision: a new ARN.
    fn attrs_changed_by_update(&self) -> &'static [&'static str] {
        &["arn", "revision"]
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // The stack's family (`familyPrefix` is a whole family name):
        // its newest revision, whose tags say whose it is.
        let Some(arn) = revisions(cloud, KIND, &family(stack))
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Vec::new());
        };
        let (td, tags) = match describe(cloud, KIND, &arn).await {
            Ok(x) => x,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(ecs_owner(&tags, stack)
            .map(|id| observed(&id, &td))
            .into_iter()
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        register(cloud, r).await
    }

    /// A new revision; then the revisions older than the newest `keep`
    /// are deregistered (never fewer than two kept: the service may still
    /// run the one before while it moves to this one), except `spare`, the
    /// one a `rollback` holds the service on.
    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        _: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let made = register(cloud, r).await?;
        let keep = r.i64("keep").unwrap_or(5).max(2) as usize;
        let family = r.str("family")?;
        let spare = r.opt_str("spare");
        for old in revisions(cloud, &r.id, family).await?.iter().skip(keep) {
            if Some(old.as_str()) != spare {
                deregister(cloud, &r.id, old).await?;
            }
        }
        Ok(made)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let family = current
            .attrs
            .get("family")
            .cloned()
            .or_else(|| family_of(&current.physical_id).map(str::to_string))
            .unwrap_or_default();
        for arn in revisions(cloud, &current.id, &family).await? {
            deregister(cloud, &current.id, &arn).await?;
        }
        Ok(())
    }
}

async fn register(cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
    let containers: Vec<Container> = serde_json::from_value(r.props["containers"].clone())
        .map_err(|e| CloudError::invalid(&r.id, format!("containers: {e}")))?;
    let volumes: Vec<EfsVolume> = serde_json::from_value(r.props["volumes"].clone())
        .map_err(|e| CloudError::invalid(&r.id, format!("volumes: {e}")))?;
    let mut tags = r.tags.clone();
    if let Some(release) = r.opt_str("release") {
        tags.push((RELEASE_TAG.to_string(), release.to_string()));
    }
    if let Some(commit) = r.opt_str("commit") {
        tags.push((COMMIT_TAG.to_string(), commit.to_string()));
    }
    let req = cloud
        .ecs
        .register_task_definition()
        .family(r.str("family")?)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::X8664)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .cpu(r.str("cpu")?)
        .memory(r.str("memory")?)
        .task_role_arn(r.str("task_role_arn")?)
        .execution_role_arn(r.str("execution_role_arn")?)
        .set_container_definitions(Some(containers.iter().map(container_def).collect()))
        .set_volumes(Some(volumes.iter().map(volume_def).collect()))
        .set_tags(Some(ecs_tags(&tags)));
    // Roles made moments before are refused until IAM has them everywhere.
    let out = cloud
        .settle(&r.id, "RegisterTaskDefinition", || req.clone().send())
        .await?;
    let td = out
        .task_definition()
        .ok_or_else(|| CloudError::invalid(&r.id, "RegisterTaskDefinition returned nothing"))?;
    Ok(observed(&r.id, td))
}

pub async fn deregister(cloud: &Cloud, id: &str, arn: &str) -> Result<(), CloudError> {
    match cloud
        .ecs
        .deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = api_error(id, "DeregisterTaskDefinition", e);
            // Deregistered already (a repeat after a lost answer).
            if e.is_not_found() || e.message().is_some_and(|m| m.contains("INACTIVE")) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Container {
        Container {
            name: "app".into(),
            image: "1.dkr.ecr.us-east-1.amazonaws.com/shop-app@sha256:ab".into(),
            essential: true,
            command: vec!["serve".into()],
            port: Some(8080),
            environment: [("A".to_string(), "1".to_string())].into(),
            secrets: [(
                "P".to_string(),
                "arn:aws:secretsmanager:x:password::".to_string(),
            )]
            .into(),
            log_group: "/g".into(),
            log_region: "us-east-1".into(),
            log_prefix: "app".into(),
            mounts: [("data".to_string(), "/var/lib/bookstore".to_string())].into(),
            after_success_of: Some("migrate".into()),
            user: "65532:65532".into(),
            read_only_root: true,
        }
    }

    #[test]
    fn a_container_reads_back_as_it_was_written() {
        let c = sample();
        assert_eq!(container_of(&container_def(&c)), c);
        let v = EfsVolume {
            name: "data".into(),
            file_system_id: "fs-1".into(),
            access_point_id: "fsap-1".into(),
        };
        assert_eq!(volume_of(&volume_def(&v)), Some(v));
    }

    #[test]
    fn the_family_comes_from_the_arn() {
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/shop-app:12";
        assert_eq!(family_of(arn), Some("shop-app"));
        assert_eq!(family_of("nonsense"), None);
    }
}
