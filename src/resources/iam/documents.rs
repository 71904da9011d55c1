//! What of a role's documents counts as drift besides its own inline
//! policy and its managed policies: its whole trust policy (a statement
//! trusting another account, added by hand, is drift), and every other
//! inline policy (one added by hand is drift, and `up` deletes it).

use serde_json::{Map, Value};

use super::{decode_policy, POLICY_NAME};
use crate::cloud::{Cloud, CloudError, SdkResultExt};

/// The role's trust policy as IAM gives it back (URL-encoded in ListRoles
/// and GetRole answers), decoded.
pub(super) fn trust_of(doc: Option<&str>) -> Value {
    doc.map(decode_policy).unwrap_or(Value::Null)
}

/// The names of every inline policy of `role`. Paged by Marker
/// (ListRolePolicies, IAM API reference).
pub(super) async fn inline_names(
    cloud: &Cloud,
    id: &str,
    role: &str,
) -> Result<Vec<String>, CloudError> {
    let mut names: Vec<String> = cloud
        .iam
        .list_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "ListRolePolicies")?;
    names.sort();
    Ok(names)
}

/// The inline policies of `role` other than the stack's own, by name, each
/// with its document: `{}` when there is none, which is what the stack wants.
pub(super) async fn others(
    cloud: &Cloud,
    id: &str,
    role: &str,
    names: &[String],
) -> Result<Value, CloudError> {
    let reads = names
        .iter()
        .filter(|n| *n != POLICY_NAME)
        .map(|n| async move {
            let got = cloud
                .iam
                .get_role_policy()
                .role_name(role)
                .policy_name(n)
                .send()
                .await
                .ctx(id, "GetRolePolicy")?;
            Ok::<_, CloudError>((n.clone(), decode_policy(got.policy_document())))
        });
    let read = futures::future::try_join_all(reads).await?;
    Ok(Value::Object(read.into_iter().collect::<Map<_, _>>()))
}

/// Deletes every inline policy of `role` but `keep` (the stack's own, or
/// none before the role itself is deleted: DeleteRole refuses a role that
/// still has inline policies, `DeleteConflict`).
pub(super) async fn delete_others(
    cloud: &Cloud,
    id: &str,
    role: &str,
    keep: Option<&str>,
) -> Result<(), CloudError> {
    for name in inline_names(cloud, id, role).await? {
        if Some(name.as_str()) == keep {
            continue;
        }
        super::gone_ok(
            cloud
                .iam
                .delete_role_policy()
                .role_name(role)
                .policy_name(&name)
                .send()
                .await
                .map(|_| ())
                .ctx(id, "DeleteRolePolicy"),
        )?;
    }
    Ok(())
}

/// Puts `doc` back as the role's trust policy (UpdateAssumeRolePolicy).
pub(super) async fn put_trust(
    cloud: &Cloud,
    id: &str,
    role: &str,
    doc: &Value,
) -> Result<(), CloudError> {
    cloud
        .iam
        .update_assume_role_policy()
        .role_name(role)
        .policy_document(doc.to_string())
        .send()
        .await
        .map(|_| ())
        .ctx(id, "UpdateAssumeRolePolicy")
}
