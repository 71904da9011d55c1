//! `efs:file-system`: the shared, encrypted file system for cover images,
//! with a mount target in each private subnet. Mount targets cannot carry
//! tags, so they are part of this resource (like route table associations).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_efs::types::{LifeCycleState, PerformanceMode, Tag};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use crate::lifecycle::{self, Readiness};

pub const KIND: &str = "efs:file-system";

pub struct FileSystem;

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct MountTarget {
    subnet_id: String,
    security_groups: Vec<String>,
}

pub(crate) fn efs_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

pub(crate) fn owner(tags: &[Tag], stack: &str) -> Option<String> {
    super::owner_id(tags.iter().map(|t| (t.key(), t.value())), stack)
}

/// subnet -> (mount target id, security groups, state)
async fn mount_targets(
    cloud: &Cloud,
    id: &str,
    fs: &str,
) -> Result<BTreeMap<String, (String, Vec<String>, String)>, CloudError> {
    // Paged at 100 mount targets (EFS API reference, DescribeMountTargets).
    let all = cloud
        .efs
        .describe_mount_targets()
        .file_system_id(fs)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "DescribeMountTargets")?;
    let mut out = BTreeMap::new();
    for m in &all {
        let state = m.life_cycle_state().as_str().to_string();
        if state == "deleted" || state == "deleting" {
            continue;
        }
        let sg = cloud
            .efs
            .describe_mount_target_security_groups()
            .mount_target_id(m.mount_target_id())
            .send()
            .await
            .ctx(id, "DescribeMountTargetSecurityGroups")?;
        let mut groups = sg.security_groups().to_vec();
        groups.sort();
        out.insert(
            m.subnet_id().to_string(),
            (m.mount_target_id().to_string(), groups, state),
        );
    }
    Ok(out)
}

fn targets_json(m: &BTreeMap<String, (String, Vec<String>, String)>) -> Value {
    Value::Array(
        m.iter()
            .map(|(s, (_, g, _))| json!({"subnet_id": s, "security_groups": g}))
            .collect(),
    )
}

fn wanted(r: &Resolved) -> Result<Vec<MountTarget>, CloudError> {
    let mut v: Vec<MountTarget> =
        serde_json::from_value(r.props.get("mount_targets").cloned().unwrap_or(json!([])))
            .map_err(|e| CloudError::invalid(&r.id, format!("mount_targets: {e}")))?;
    for m in &mut v {
        m.security_groups.sort();
    }
    Ok(v)
}

impl FileSystem {
    async fn sync_targets(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        fs: &str,
    ) -> Result<Value, CloudError> {
        let have = mount_targets(cloud, &r.id, fs).await?;
        let want = wanted(r)?;
        for (subnet, (mt, _, _)) in &have {
            if !want.iter().any(|w| &w.subnet_id == subnet) {
                cloud
                    .efs
                    .delete_mount_target()
                    .mount_target_id(mt)
                    .send()
                    .await
                    .ctx(&r.id, "DeleteMountTarget")?;
            }
        }
        for w in &want {
            match have.get(&w.subnet_id) {
                Some((_, groups, _)) if groups == &w.security_groups => {}
                Some((mt, _, _)) => {
                    let req = cloud
                        .efs
                        .modify_mount_target_security_groups()
                        .mount_target_id(mt)
                        .set_security_groups(Some(w.security_groups.clone()));
                    cloud
                        .settle(&r.id, "ModifyMountTargetSecurityGroups", || {
                            req.clone().send()
                        })
                        .await?;
                }
                None => {
                    // The file system, subnet and groups may all have been
                    // created moments before.
                    let req = cloud
                        .efs
                        .create_mount_target()
                        .file_system_id(fs)
                        .subnet_id(&w.subnet_id)
                        .set_security_groups(Some(w.security_groups.clone()));
                    cloud
                        .settle(&r.id, "CreateMountTarget", || req.clone().send())
                        .await?;
                }
            }
        }
        Ok(Value::Array(
            want.iter()
                .map(|w| json!({"subnet_id": w.subnet_id, "security_groups": w.security_groups}))
                .collect(),
        ))
    }
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("efs", "describe_file_systems", "DescribeFileSystems", &["elasticfilesystem:DescribeFileSystems"]),
    r("efs", "describe_mount_target_security_groups", "DescribeMountTargetSecurityGroups", &["elasticfilesystem:DescribeMountTargetSecurityGroups"]),
    r("efs", "describe_mount_targets", "DescribeMountTargets", &["elasticfilesystem:DescribeMountTargets"]),
    w("efs", "create_file_system", "CreateFileSystem", &["elasticfilesystem:CreateFileSystem", "elasticfilesystem:TagResource", "iam:CreateServiceLinkedRole"]),
    w("efs", "create_mount_target", "CreateMountTarget", &["elasticfilesystem:CreateMountTarget", "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces"]),
    w("efs", "delete_file_system", "DeleteFileSystem", &["elasticfilesystem:DeleteFileSystem"]),
    w("efs", "delete_mount_target", "DeleteMountTarget", &["elasticfilesystem:DeleteMountTarget", "ec2:DeleteNetworkInterface"]),
    w("efs", "modify_mount_target_security_groups", "ModifyMountTargetSecurityGroups", &["elasticfilesystem:ModifyMountTargetSecurityGroups", "ec2:ModifyNetworkInterfaceAttribute"]),
];

#[async_trait]
impl ResourceKind for FileSystem {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// The creation token is unique: `FileSystemAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            // The file system's create waits for its mount targets too.
            Phase::Create | Phase::Rollout => t.file_system,
            Phase::Delete => t.delete,
        }
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("encrypted"),
            replace("performance_mode"),
            in_place("mount_targets"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // EFS cannot filter by tag; the answer carries the tags.
        let all = cloud
            .efs
            .describe_file_systems()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeFileSystems")?;
        let mut out = Vec::new();
        for f in &all {
            if matches!(
                f.life_cycle_state(),
                LifeCycleState::Deleted | LifeCycleState::Deleting
            ) {
                continue;
            }
            let Some(id) = owner(f.tags(), stack) else {
                continue;
            };
            let mts = mount_targets(cloud, &id, f.file_system_id()).await?;
            let pending = f.life_cycle_state() != &LifeCycleState::Available
                || mts.values().any(|(_, _, s)| s != "available");
            out.push(
                Observed::new(KIND, id, f.file_system_id())
                    .pending(pending)
                    .prop("encrypted", f.encrypted().unwrap_or(false))
                    .prop("performance_mode", f.performance_mode().as_str())
                    .prop("mount_targets", targets_json(&mts))
                    .attr("arn", f.file_system_arn().unwrap_or_default()),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // The creation token makes a retried create return the same file system.
        let res = cloud
            .efs
            .create_file_system()
            .creation_token(&r.token)
            .encrypted(r.bool("encrypted"))
            .performance_mode(PerformanceMode::from(r.str("performance_mode")?))
            .set_tags(Some(efs_tags(&r.tags)))
            .send()
            .await;
        let (fs, arn) = match res {
            Ok(o) => (
                o.file_system_id().to_string(),
                o.file_system_arn().unwrap_or_default().to_string(),
            ),
            Err(e) => {
                let e = api_error(&r.id, "CreateFileSystem", e);
                if e.code() != Some("FileSystemAlreadyExists") {
                    return Err(e);
                }
                let d = cloud
                    .efs
                    .describe_file_systems()
                    .creation_token(&r.token)
                    .send()
                    .await
                    .ctx(&r.id, "DescribeFileSystems")?;
                let f = d.file_systems().first().ok_or_else(|| {
                    CloudError::invalid(&r.id, "the file system of this creation token is gone")
                })?;
                (
                    f.file_system_id().to_string(),
                    f.file_system_arn().unwrap_or_default().to_string(),
                )
            }
        };
        self.wait_fs(cloud, &r.id, &fs).await?;
        let targets = self.sync_targets(cloud, r, &fs).await?;
        Ok(Observed::new(KIND, &r.id, &fs)
            .prop("encrypted", r.bool("encrypted"))
            .prop("performance_mode", r.str("performance_mode")?)
            .prop("mount_targets", targets)
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let targets = self.sync_targets(cloud, r, &current.physical_id).await?;
        Ok(current.clone().prop("mount_targets", targets))
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let (id, fs) = (current.id.clone(), current.physical_id.clone());
        let want = current
            .props
            .get("mount_targets")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        cloud
            .wait_until(
                &id,
                "mount targets available",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let m = mount_targets(cloud, &id, &fs).await?;
                    let mut ready = 0;
                    for (subnet, (mt, _, state)) in &m {
                        match lifecycle::efs(state) {
                            Readiness::Ready => ready += 1,
                            Readiness::Pending => {}
                            Readiness::Terminal(why) => {
                                return Err(CloudError::invalid(
                                    &id,
                                    format!("mount target {mt} in {subnet} is {why}"),
                                ))
                            }
                        }
                    }
                    Ok((
                        (ready >= want).then_some(()),
                        format!("{ready}/{want} mount targets available"),
                    ))
                },
            )
            .await?;
        Ok(current)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let (id, fs) = (current.id.clone(), current.physical_id.clone());
        let m = match mount_targets(cloud, &id, &fs).await {
            Ok(m) => m,
            Err(e) if e.code() == Some("FileSystemNotFound") => return Ok(()),
            Err(e) => return Err(e),
        };
        for (mt, _, _) in m.values() {
            super::gone_ok(
                cloud
                    .efs
                    .delete_mount_target()
                    .mount_target_id(mt)
                    .send()
                    .await
                    .map(|_| ())
                    .ctx(&id, "DeleteMountTarget"),
            )?;
        }
        cloud
            .wait_until(
                &id,
                "mount targets deleted",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    let left = mount_targets(cloud, &id, &fs).await?.len();
                    Ok(((left == 0).then_some(()), format!("{left} left")))
                },
            )
            .await?;
        super::gone_ok(
            cloud
                .efs
                .delete_file_system()
                .file_system_id(&fs)
                .send()
                .await
                .map(|_| ())
                .ctx(&id, "DeleteFileSystem"),
        )?;
        cloud
            .wait_until(
                &id,
                "deleted",
                cloud.timeouts.for_kind(KIND, Phase::Delete),
                || async {
                    match cloud
                        .efs
                        .describe_file_systems()
                        .file_system_id(&fs)
                        .send()
                        .await
                        .ctx(&id, "DescribeFileSystems")
                    {
                        Ok(d)
                            if d.file_systems()
                                .iter()
                                .any(|f| f.life_cycle_state() != &LifeCycleState::Deleted) =>
                        {
                            Ok((None, "deleting".into()))
                        }
                        Ok(_) => Ok((Some(()), "deleted".into())),
                        Err(e) if e.code() == Some("FileSystemNotFound") => {
                            Ok((Some(()), "deleted".into()))
                        }
                        Err(e) => Err(e),
                    }
                },
            )
            .await
    }
}

impl FileSystem {
    async fn wait_fs(&self, cloud: &Cloud, id: &str, fs: &str) -> Result<(), CloudError> {
        cloud
            .wait_until(
                id,
                "available",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let d = cloud
                        .efs
                        .describe_file_systems()
                        .file_system_id(fs)
                        .send()
                        .await
                        .ctx(id, "DescribeFileSystems")?;
                    let s = d
                        .file_systems()
                        .first()
                        .map(|f| f.life_cycle_state().as_str().to_string());
                    match s {
                        Some(s) => match lifecycle::efs(&s) {
                            Readiness::Ready => Ok((Some(()), s)),
                            Readiness::Pending => Ok((None, s)),
                            Readiness::Terminal(why) => Err(CloudError::invalid(
                                id,
                                format!("file system {fs} is {why}"),
                            )),
                        },
                        None => Ok((None, "not visible yet".into())),
                    }
                },
            )
            .await
    }
}
