//! `efs:file-system-policy`: the resource policy of a file system of the
//! stack. It refuses every request not made over TLS, and lets only the
//! stack's instance role mount and write, only through the stack's access
//! point and a mount target; a client mounting without IAM authorization
//! is anonymous, which the policy grants nothing ("Using IAM to control
//! file system data access", Amazon EFS User Guide).
//!
//! A policy carries no tags: it belongs to its file system, which does.
//! The policy of the file system with logical id `<fs>` is the resource
//! `<fs>-policy` ([`id_of`]). It is a kind of its own, not a property of
//! the file system, because it names the instance role, whose own policy
//! names the file system: as one resource, each would wait for the other.

use async_trait::async_trait;
use aws_sdk_efs::types::LifeCycleState;
use serde_json::{json, Value};

use super::efs_file_system::owner;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "efs:file-system-policy";

pub struct FileSystemPolicy;

/// The logical id of the policy of the file system whose logical id is `fs`.
pub fn id_of(fs: &str) -> String {
    format!("{fs}-policy")
}

/// The policy's physical id: its file system's id and `/policy` (physical
/// ids are unique across kinds: the file system's own is the bare id).
fn physical(fs: &str) -> String {
    format!("{fs}/policy")
}

/// The file system a policy belongs to.
fn file_system(o: &Observed) -> &str {
    o.props
        .get("file_system_id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| o.physical_id.trim_end_matches("/policy"))
}

/// The policy: a Deny of everything without TLS, the form the EFS User
/// Guide documents ("Enforcing encryption in transit": `aws:SecureTransport`
/// false), and ClientMount and ClientWrite for `role_arn` alone, through
/// the access point `access_point_arn` and a mount target. Each argument
/// may be a reference, resolved once its resource exists.
pub fn document(fs_arn: Value, role_arn: Value, access_point_arn: Value) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MountThroughTheAccessPoint",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": fs_arn,
                "Condition": {
                    "StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn},
                    "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
                },
            },
            {
                "Sid": "RefuseWithoutTls",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": fs_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    })
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("efs", "describe_file_system_policy", "DescribeFileSystemPolicy", &["elasticfilesystem:DescribeFileSystemPolicy"]),
    w("efs", "put_file_system_policy", "PutFileSystemPolicy", &["elasticfilesystem:PutFileSystemPolicy"]),
    w("efs", "delete_file_system_policy", "DeleteFileSystemPolicy", &["elasticfilesystem:DeleteFileSystemPolicy"]),
];

/// The policy of file system `fs`; `None` when it has none
/// (`PolicyNotFound`: the default policy, which lets any client of the
/// network mount) or is gone since it was listed.
async fn policy_of(cloud: &Cloud, id: &str, fs: &str) -> Result<Option<Value>, CloudError> {
    match cloud
        .efs
        .describe_file_system_policy()
        .file_system_id(fs)
        .send()
        .await
    {
        Ok(p) => Ok(p
            .policy()
            .map(|p| serde_json::from_str(p).unwrap_or(Value::String(p.into())))),
        Err(e) => {
            let e = api_error(id, "DescribeFileSystemPolicy", e);
            if e.is_not_found() {
                return Ok(None);
            }
            Err(e)
        }
    }
}

async fn put(cloud: &Cloud, r: &Resolved, fs: &str) -> Result<Value, CloudError> {
    let policy = r
        .props
        .get("policy")
        .filter(|p| p.is_object())
        .ok_or_else(|| CloudError::invalid(&r.id, "property `policy` missing"))?;
    // The role it names may have been created moments before: IAM's
    // principals propagate (EFS answers `InvalidPolicyException` until then).
    let req = cloud
        .efs
        .put_file_system_policy()
        .file_system_id(fs)
        .policy(policy.to_string());
    cloud
        .settle(&r.id, "PutFileSystemPolicy", || req.clone().send())
        .await?;
    Ok(policy.clone())
}

#[async_trait]
impl ResourceKind for FileSystemPolicy {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// PutFileSystemPolicy sets the policy whole: a repeat sets the same.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("file_system_id"), in_place("policy")];
        A
    }

    fn same(&self, attr: &str, want: &Value, have: Option<&Value>) -> bool {
        match attr {
            "policy" => super::policy::same_document(want, have),
            _ => crate::engine::same(want, have),
        }
    }

    // A policy naming a role or an access point does not keep them.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
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
        let owned = all.iter().filter_map(|f| {
            let gone = matches!(
                f.life_cycle_state(),
                LifeCycleState::Deleted | LifeCycleState::Deleting
            );
            let fs = owner(f.tags(), stack).filter(|_| !gone)?;
            Some((id_of(&fs), f.file_system_id()))
        });
        let read = owned.map(|(id, fs)| async move {
            let policy = policy_of(cloud, &id, fs).await?;
            Ok::<_, CloudError>(policy.map(|p| {
                Observed::new(KIND, &id, physical(fs))
                    .prop("file_system_id", fs)
                    .prop("policy", p)
            }))
        });
        Ok(futures::future::try_join_all(read)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let fs = r.str("file_system_id")?;
        let policy = put(cloud, r, fs).await?;
        Ok(Observed::new(KIND, &r.id, physical(fs))
            .prop("file_system_id", fs)
            .prop("policy", policy))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let policy = put(cloud, r, file_system(current)).await?;
        Ok(current.clone().prop("policy", policy))
    }

    /// The file system goes back to the default policy; a file system
    /// deleted first took its policy with it.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        super::gone_ok(
            cloud
                .efs
                .delete_file_system_policy()
                .file_system_id(file_system(current))
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteFileSystemPolicy"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_plain_transport_and_names_one_role() {
        let d = document(json!("fs-arn"), json!("role-arn"), json!("ap-arn"));
        let st = d["Statement"].as_array().unwrap();
        let deny = st.iter().find(|s| s["Effect"] == "Deny").unwrap();
        assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(deny["Action"], "*");
        let allow: Vec<&Value> = st.iter().filter(|s| s["Effect"] == "Allow").collect();
        assert_eq!(allow.len(), 1);
        assert_eq!(allow[0]["Principal"], json!({"AWS": "role-arn"}));
        assert_eq!(
            allow[0]["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"],
            "ap-arn"
        );
        assert_eq!(id_of("efs"), "efs-policy");
    }
}
