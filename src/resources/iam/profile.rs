//! `iam:instance-profile`: what the instances are launched with, holding
//! the stack's role; it lives under the stack's path like the role.

use async_trait::async_trait;
use serde_json::Value;

use super::{iam_tags, owner, path, PROFILE};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub struct InstanceProfile;

#[async_trait]
impl ResourceKind for InstanceProfile {
    fn kind(&self) -> &'static str {
        PROFILE
    }

    /// Names are unique: `EntityAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("name"), replace("path"), in_place("role")];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let list = cloud
            .iam
            .list_instance_profiles()
            .path_prefix(path(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(PROFILE, "ListInstanceProfiles")?;
        let mut out = Vec::new();
        for p in &list {
            // GetInstanceProfile carries the tags (and is answered more widely
            // than ListInstanceProfileTags).
            let got = cloud
                .iam
                .get_instance_profile()
                .instance_profile_name(p.instance_profile_name())
                .send()
                .await
                .ctx(PROFILE, "GetInstanceProfile")?;
            let tags = got
                .instance_profile()
                .map(|p| p.tags().to_vec())
                .unwrap_or_default();
            let Some(id) = owner(&tags, stack) else {
                continue;
            };
            let role = p
                .roles()
                .first()
                .map(|r| Value::String(r.role_name().to_string()))
                .unwrap_or(Value::Null);
            out.push(
                Observed::new(PROFILE, id, p.instance_profile_name())
                    .prop("name", p.instance_profile_name())
                    .prop("path", p.path())
                    .prop("role", role)
                    .attr("arn", p.arn()),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let arn = match cloud
            .iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(r.str("path")?)
            .set_tags(Some(iam_tags(&r.tags)))
            .send()
            .await
        {
            Ok(o) => o
                .instance_profile()
                .map(|p| p.arn().to_string())
                .unwrap_or_default(),
            Err(e) => {
                let e = crate::cloud::api_error(&r.id, "CreateInstanceProfile", e);
                if e.code() != Some("EntityAlreadyExists") {
                    return Err(e);
                }
                let tags = cloud
                    .iam
                    .get_instance_profile()
                    .instance_profile_name(name)
                    .send()
                    .await
                    .ctx(&r.id, "GetInstanceProfile")?;
                let tags = tags
                    .instance_profile()
                    .map(|p| p.tags().to_vec())
                    .unwrap_or_default();
                super::super::adopt_if_ours(
                    r,
                    &format!("an instance profile named {name}"),
                    owner(&tags, &r.stack),
                )?;
                let got = cloud
                    .iam
                    .get_instance_profile()
                    .instance_profile_name(name)
                    .send()
                    .await
                    .ctx(&r.id, "GetInstanceProfile")?;
                if let Some(role) = got.instance_profile().and_then(|p| p.roles().first()) {
                    // Adopted with a role already in: the update path sets the right one.
                    return Ok(Observed::new(PROFILE, &r.id, name)
                        .prop("name", name)
                        .prop("path", r.str("path")?)
                        .prop("role", role.role_name())
                        .attr(
                            "arn",
                            got.instance_profile().map(|p| p.arn()).unwrap_or_default(),
                        ));
                }
                got.instance_profile()
                    .map(|p| p.arn().to_string())
                    .unwrap_or_default()
            }
        };
        // The role, and the profile, may have been created moments before:
        // IAM answers `NoSuchEntity` until they propagate.
        let req = cloud
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(r.str("role")?);
        cloud
            .settle(&r.id, "AddRoleToInstanceProfile", || req.clone().send())
            .await?;
        Ok(Observed::new(PROFILE, &r.id, name)
            .prop("name", name)
            .prop("path", r.str("path")?)
            .prop("role", r.str("role")?)
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let name = &current.physical_id;
        if let Some(old) = current.props.get("role").and_then(Value::as_str) {
            cloud
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(old)
                .send()
                .await
                .ctx(&r.id, "RemoveRoleFromInstanceProfile")?;
        }
        // The role, and the profile, may have been created moments before:
        // IAM answers `NoSuchEntity` until they propagate.
        let req = cloud
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(r.str("role")?);
        cloud
            .settle(&r.id, "AddRoleToInstanceProfile", || req.clone().send())
            .await?;
        Ok(current.clone().prop("role", r.str("role")?))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let name = &current.physical_id;
        if let Some(role) = current.props.get("role").and_then(Value::as_str) {
            let _ = cloud
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
                .await;
        }
        match cloud
            .iam
            .delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = crate::cloud::api_error(&current.id, "DeleteInstanceProfile", e);
                if e.code() == Some("NoSuchEntity") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}
