//! `efs:access-point`: the app's entry to the file system, as one POSIX
//! user, rooted in its own directory.

use async_trait::async_trait;
use aws_sdk_efs::types::{CreationInfo, PosixUser, RootDirectory};

use super::efs_file_system::{efs_tags, owner};
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "efs:access-point";

pub struct AccessPoint;

fn bad(id: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError::invalid(id, e.to_string())
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("efs", "describe_access_points", "DescribeAccessPoints", &["elasticfilesystem:DescribeAccessPoints"]),
    w("efs", "create_access_point", "CreateAccessPoint", &["elasticfilesystem:CreateAccessPoint", "elasticfilesystem:TagResource"]),
    w("efs", "delete_access_point", "DeleteAccessPoint", &["elasticfilesystem:DeleteAccessPoint"]),
];

#[async_trait]
impl ResourceKind for AccessPoint {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateAccessPoint carries a client token.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("file_system_id"),
            replace("uid"),
            replace("gid"),
            replace("path"),
            replace("permissions"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // EFS cannot filter by tag; the answer carries the tags.
        let all = cloud
            .efs
            .describe_access_points()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeAccessPoints")?;
        Ok(all
            .iter()
            .filter(|a| a.life_cycle_state().map(|s| s.as_str()) != Some("deleting"))
            .filter_map(|a| {
                let id = owner(a.tags(), stack)?;
                let root = a.root_directory();
                Some(
                    Observed::new(KIND, id, a.access_point_id()?)
                        .prop("file_system_id", a.file_system_id().unwrap_or_default())
                        .prop("uid", a.posix_user().map(|p| p.uid()).unwrap_or(0))
                        .prop("gid", a.posix_user().map(|p| p.gid()).unwrap_or(0))
                        .prop("path", root.and_then(|r| r.path()).unwrap_or("/"))
                        .prop(
                            "permissions",
                            root.and_then(|r| r.creation_info())
                                .map(|c| c.permissions())
                                .unwrap_or_default(),
                        )
                        .attr("arn", a.access_point_arn().unwrap_or_default()),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (uid, gid) = (r.i64("uid")?, r.i64("gid")?);
        // The file system may be new (`FileSystemNotFound` for moments); the
        // client token makes a repeat safe.
        let req = cloud
            .efs
            .create_access_point()
            .client_token(&r.token)
            .file_system_id(r.str("file_system_id")?)
            .posix_user(
                PosixUser::builder()
                    .uid(uid)
                    .gid(gid)
                    .build()
                    .map_err(|e| bad(&r.id, e))?,
            )
            .root_directory(
                RootDirectory::builder()
                    .path(r.str("path")?)
                    .creation_info(
                        CreationInfo::builder()
                            .owner_uid(uid)
                            .owner_gid(gid)
                            .permissions(r.str("permissions")?)
                            .build()
                            .map_err(|e| bad(&r.id, e))?,
                    )
                    .build(),
            )
            .set_tags(Some(efs_tags(&r.tags)));
        let out = cloud
            .settle(&r.id, "CreateAccessPoint", || req.clone().send())
            .await?;
        let ap = out
            .access_point_id()
            .ok_or_else(|| bad(&r.id, "CreateAccessPoint returned no id"))?;
        Ok(Observed::new(KIND, &r.id, ap)
            .prop("file_system_id", r.str("file_system_id")?)
            .prop("uid", uid)
            .prop("gid", gid)
            .prop("path", r.str("path")?)
            .prop("permissions", r.str("permissions")?)
            .attr("arn", out.access_point_arn().unwrap_or_default()))
    }

    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        Ok(current.clone())
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        match cloud
            .efs
            .delete_access_point()
            .access_point_id(&current.physical_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => super::gone_ok(Err(api_error(&current.id, "DeleteAccessPoint", e))),
        }
    }
}
