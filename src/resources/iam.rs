//! `iam:role` and `iam:instance-profile`: the instances' identity.
//!
//! IAM is global, so names carry the region, and everything lives under
//! the path `/bookstore-infra/<stack>/`: one list call per kind finds the
//! candidates, their tags (one call each: IAM's list calls return none)
//! confirm ownership.

use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde_json::{json, Value};

use super::attrs::sorted_strings;
use super::gone_ok;
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

mod documents;
mod profile;

pub use profile::InstanceProfile;

pub const ROLE: &str = "iam:role";
pub const PROFILE: &str = "iam:instance-profile";
/// The inline policy holding the role's permissions.
const POLICY_NAME: &str = "bookstore-app";

pub fn path(stack: &str) -> String {
    format!("/bookstore-infra/{stack}/")
}

pub(super) fn iam_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// The logical id, when the tags say the stack owns the resource.
fn owner(tags: &[Tag], stack: &str) -> Option<String> {
    super::owner_id(tags.iter().map(|t| (t.key(), t.value())), stack)
}

/// IAM returns policy documents URL-encoded.
pub(super) fn decode_policy(doc: &str) -> Value {
    let decoded = if doc.starts_with('%') {
        let mut out = Vec::new();
        let b = doc.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&doc[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    } else {
        doc.to_string()
    };
    serde_json::from_str(&decoded).unwrap_or(Value::String(doc.to_string()))
}

/// The trust policy the role is to have, whole: it is compared with what
/// IAM holds, so a statement added by hand shows as drift.
fn trust_policy(r: &Resolved) -> Result<&Value, CloudError> {
    r.props
        .get("trust_policy")
        .filter(|v| v.is_object())
        .ok_or_else(|| CloudError::invalid(&r.id, "property `trust_policy` missing"))
}

/// The permissions boundary a role is to carry, if the stack gives one.
fn boundary(r: &Resolved) -> Option<String> {
    r.props
        .get("permissions_boundary")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Every tag of a role: ListRoles returns none, and ListRoleTags pages too.
async fn role_tags(cloud: &Cloud, id: &str, role: &str) -> Result<Vec<Tag>, CloudError> {
    cloud
        .iam
        .list_role_tags()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "ListRoleTags")
}

pub struct Role;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("iam", "get_instance_profile", "GetInstanceProfile", &["iam:GetInstanceProfile"]),
    r("iam", "get_role", "GetRole", &["iam:GetRole"]),
    r("iam", "get_role_policy", "GetRolePolicy", &["iam:GetRolePolicy"]),
    r("iam", "list_instance_profiles", "ListInstanceProfiles", &["iam:ListInstanceProfiles"]),
    r("iam", "list_role_tags", "ListRoleTags", &["iam:ListRoleTags"]),
    r("iam", "list_roles", "ListRoles", &["iam:ListRoles"]),
    r("iam", "list_role_policies", "ListRolePolicies", &["iam:ListRolePolicies"]),
    r("iam", "list_attached_role_policies", "ListAttachedRolePolicies", &["iam:ListAttachedRolePolicies"]),
    w("iam", "attach_role_policy", "AttachRolePolicy", &["iam:AttachRolePolicy"]),
    w("iam", "detach_role_policy", "DetachRolePolicy", &["iam:DetachRolePolicy"]),
    w("iam", "add_role_to_instance_profile", "AddRoleToInstanceProfile", &["iam:AddRoleToInstanceProfile", "iam:PassRole"]),
    w("iam", "create_instance_profile", "CreateInstanceProfile", &["iam:CreateInstanceProfile", "iam:TagInstanceProfile"]),
    w("iam", "create_role", "CreateRole", &["iam:CreateRole", "iam:TagRole"]),
    w("iam", "delete_instance_profile", "DeleteInstanceProfile", &["iam:DeleteInstanceProfile"]),
    w("iam", "delete_role", "DeleteRole", &["iam:DeleteRole"]),
    w("iam", "delete_role_policy", "DeleteRolePolicy", &["iam:DeleteRolePolicy"]),
    w("iam", "put_role_policy", "PutRolePolicy", &["iam:PutRolePolicy"]),
    w("iam", "update_assume_role_policy", "UpdateAssumeRolePolicy", &["iam:UpdateAssumeRolePolicy"]),
    w("iam", "put_role_permissions_boundary", "PutRolePermissionsBoundary", &["iam:PutRolePermissionsBoundary"]),
    w("iam", "remove_role_from_instance_profile", "RemoveRoleFromInstanceProfile", &["iam:RemoveRoleFromInstanceProfile"]),
];

#[async_trait]
impl ResourceKind for Role {
    fn kind(&self) -> &'static str {
        ROLE
    }

    /// Names are unique: `EntityAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            replace("path"),
            in_place("trust_policy"),
            in_place("policy"),
            in_place("other_inline_policies"),
            in_place("managed_policies"),
            in_place("permissions_boundary"),
        ];
        A
    }

    /// Policy documents are compared by what they say (see [`super::policy`]).
    fn same(&self, attr: &str, want: &Value, have: Option<&Value>) -> bool {
        match attr {
            "trust_policy" | "policy" | "other_inline_policies" => {
                super::policy::same_document(want, have)
            }
            _ => crate::engine::same(want, have),
        }
    }

    // A policy naming a bucket, secret or file system does not keep them.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // Paged by Marker (IsTruncated), 100 a page by default; the path narrows the list.
        let roles = cloud
            .iam
            .list_roles()
            .path_prefix(path(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(ROLE, "ListRoles")?;
        // Each role's tags, then its policies, all roles at once.
        let read = roles.iter().map(|r| async move {
            let tags = role_tags(cloud, ROLE, r.role_name()).await?;
            let Some(id) = owner(&tags, stack) else {
                return Ok(None);
            };
            // ListRoles leaves out the permissions boundary: GetRole has it.
            let (policy, managed, got, names) = tokio::join!(
                cloud
                    .iam
                    .get_role_policy()
                    .role_name(r.role_name())
                    .policy_name(POLICY_NAME)
                    .send(),
                attached(cloud, ROLE, r.role_name()),
                cloud.iam.get_role().role_name(r.role_name()).send(),
                documents::inline_names(cloud, ROLE, r.role_name()),
            );
            let bound = got
                .ctx(ROLE, "GetRole")?
                .role()
                .and_then(|x| x.permissions_boundary())
                .and_then(|b| b.permissions_boundary_arn())
                .map_or(Value::Null, Value::from);
            let policy = match policy {
                Ok(p) => decode_policy(p.policy_document()),
                Err(_) => Value::Null,
            };
            // Every inline policy besides the stack's own is drift.
            let others = documents::others(cloud, ROLE, r.role_name(), &names?).await?;
            Ok::<_, CloudError>(Some(
                Observed::new(ROLE, id, r.role_name())
                    .prop("name", r.role_name())
                    .prop("path", r.path())
                    .prop(
                        "trust_policy",
                        documents::trust_of(r.assume_role_policy_document()),
                    )
                    .prop("policy", policy)
                    .prop("other_inline_policies", others)
                    .prop("managed_policies", managed?)
                    .prop("permissions_boundary", bound)
                    .attr("arn", r.arn()),
            ))
        });
        Ok(futures::future::try_join_all(read)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        // A role just created has no managed policy attached; one adopted
        // from an interrupted run may have.
        let mut adopted = false;
        let arn = match cloud
            .iam
            .create_role()
            .role_name(name)
            .path(r.str("path")?)
            .assume_role_policy_document(trust_policy(r)?.to_string())
            .set_permissions_boundary(boundary(r))
            .set_tags(Some(iam_tags(&r.tags)))
            .send()
            .await
        {
            Ok(o) => o.role().map(|x| x.arn().to_string()).unwrap_or_default(),
            Err(e) => {
                let e = crate::cloud::api_error(&r.id, "CreateRole", e);
                if e.code() != Some("EntityAlreadyExists") {
                    return Err(e);
                }
                // Ours from an interrupted run, or someone else's: the tags
                // (every page of them) tell.
                let tags = role_tags(cloud, &r.id, name).await?;
                super::adopt_if_ours(
                    r,
                    &format!("an IAM role named {name}"),
                    owner(&tags, &r.stack),
                )?;
                let got = cloud
                    .iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .ctx(&r.id, "GetRole")?;
                adopted = true;
                got.role().map(|x| x.arn().to_string()).unwrap_or_default()
            }
        };
        let policy = r.props.get("policy").cloned().unwrap_or(Value::Null);
        put_policy(cloud, &r.id, name, &policy).await?;
        if adopted {
            // Made by an interrupted run, or changed since: its trust and
            // inline policies become the stack's.
            documents::put_trust(cloud, &r.id, name, trust_policy(r)?).await?;
            documents::delete_others(cloud, &r.id, name, Some(POLICY_NAME)).await?;
        }
        let managed = wanted_managed(r);
        let have = if adopted {
            attached(cloud, &r.id, name).await?
        } else {
            Vec::new()
        };
        sync_managed(cloud, &r.id, name, &have, &managed).await?;
        Ok(Observed::new(ROLE, &r.id, name)
            .prop("name", name)
            .prop("path", r.str("path")?)
            .prop("trust_policy", trust_policy(r)?.clone())
            .prop("policy", policy)
            .prop("other_inline_policies", json!({}))
            .prop("managed_policies", managed)
            .prop(
                "permissions_boundary",
                boundary(r).map_or(Value::Null, Value::from),
            )
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let role = &current.physical_id;
        let mut current = current.clone();
        // The boundary first: the apply role changes a role's trust and
        // policies only while it carries the boundary ("RolesWithBoundary"
        // in `iam-policy`), and may set no other. One removed or changed
        // by hand is put back.
        let bound = boundary(r);
        let have_bound = current
            .props
            .get("permissions_boundary")
            .and_then(Value::as_str);
        if let (Some(want), true) = (&bound, bound.as_deref() != have_bound) {
            cloud
                .iam
                .put_role_permissions_boundary()
                .role_name(role)
                .permissions_boundary(want)
                .send()
                .await
                .ctx(&r.id, "PutRolePermissionsBoundary")?;
        }
        if changed.iter().any(|c| c == "trust_policy") {
            let trust = trust_policy(r)?;
            documents::put_trust(cloud, &r.id, role, trust).await?;
            current = current.prop("trust_policy", trust.clone());
        }
        if changed.iter().any(|c| c == "other_inline_policies") {
            documents::delete_others(cloud, &r.id, role, Some(POLICY_NAME)).await?;
            current = current.prop("other_inline_policies", json!({}));
        }
        let policy = r.props.get("policy").cloned().unwrap_or(Value::Null);
        put_policy(cloud, &r.id, &current.physical_id, &policy).await?;
        let managed = wanted_managed(r);
        let have = attached(cloud, &r.id, &current.physical_id).await?;
        sync_managed(cloud, &r.id, &current.physical_id, &have, &managed).await?;
        Ok(current
            .prop("policy", policy)
            .prop("managed_policies", managed)
            .prop(
                "permissions_boundary",
                bound.map_or(Value::Null, Value::from),
            ))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let name = &current.physical_id;
        // DeleteRole refuses a role with managed policies attached
        // (`DeleteConflict`, IAM API reference, DeleteRole): detach what is
        // attached now, not only what the stack attached.
        match attached(cloud, &current.id, name).await {
            Ok(have) => sync_managed(cloud, &current.id, name, &have, &[]).await?,
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
            Err(e) => return Err(e),
        }
        // DeleteRole refuses a role with inline policies too: every one
        // goes, the stack's and any added by hand.
        match documents::delete_others(cloud, &current.id, name, None).await {
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
            other => other?,
        }
        gone_ok(
            cloud
                .iam
                .delete_role()
                .role_name(name)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteRole"),
        )
    }
}

async fn put_policy(cloud: &Cloud, id: &str, role: &str, policy: &Value) -> Result<(), CloudError> {
    if policy.is_null() {
        return Ok(());
    }
    // Right after CreateRole, IAM may answer `NoSuchEntity` ("Changes that I
    // make are not always immediately visible", IAM troubleshooting).
    let req = cloud
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(POLICY_NAME)
        .policy_document(policy.to_string());
    cloud
        .settle(id, "PutRolePolicy", || req.clone().send())
        .await
        .map(|_| ())
}

/// The ARNs of the managed policies the role should have attached.
fn wanted_managed(r: &Resolved) -> Vec<String> {
    sorted_strings(r.props.get("managed_policies"))
}

/// The managed policies attached to a role, sorted. Paged by Marker
/// (ListAttachedRolePolicies).
async fn attached(cloud: &Cloud, id: &str, role: &str) -> Result<Vec<String>, CloudError> {
    let list = cloud
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "ListAttachedRolePolicies")?;
    let mut v: Vec<String> = list
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    v.sort();
    Ok(v)
}

/// Attaches what `want` has and `have` lacks, detaches the rest: a policy
/// attached by hand is drift, repaired like the inline policy.
async fn sync_managed(
    cloud: &Cloud,
    id: &str,
    role: &str,
    have: &[String],
    want: &[String],
) -> Result<(), CloudError> {
    for arn in want.iter().filter(|a| !have.contains(a)) {
        // Right after CreateRole, IAM may answer `NoSuchEntity` (see put_policy).
        let req = cloud
            .iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn);
        cloud
            .settle(id, "AttachRolePolicy", || req.clone().send())
            .await?;
    }
    for arn in have.iter().filter(|a| !want.contains(a)) {
        gone_ok(
            cloud
                .iam
                .detach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .ctx(id, "DetachRolePolicy"),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decode_from_url_encoding() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(decode_policy(enc), json!({"Version": "2012-10-17"}));
        assert_eq!(decode_policy("{\"a\":1}"), json!({"a": 1}));
    }
}
