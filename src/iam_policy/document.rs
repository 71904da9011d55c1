//! Policy documents: statements, grouped actions, and what a document
//! allows.

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// How many characters (white space not counted) a role's inline policies
/// may hold, all together ("IAM and AWS STS quotas", IAM User Guide).
pub const INLINE_POLICY_LIMIT: usize = 10_240;
/// How many one customer managed policy may hold (same quotas); a role
/// takes 10 of them by default.
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// The characters IAM counts in a document: its JSON without white space.
pub fn size(doc: &Value) -> usize {
    serde_json::to_string(doc)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// `doc`'s statements, in order, as documents of at most `limit`
/// characters each (as customer managed policies, when the document is
/// more than a role's inline policies hold). A statement longer than
/// `limit` alone is a document alone.
pub fn split(doc: &Value, limit: usize) -> Vec<Value> {
    let empty = || json!({"Version": doc["Version"], "Statement": []});
    let mut parts = vec![empty()];
    for st in doc["Statement"].as_array().into_iter().flatten() {
        let last = parts.last_mut().expect("one part at least");
        last["Statement"]
            .as_array_mut()
            .expect("a list")
            .push(st.clone());
        let over = size(last) > limit;
        if over && last["Statement"].as_array().is_some_and(|a| a.len() > 1) {
            last["Statement"].as_array_mut().expect("a list").pop();
            let mut next = empty();
            next["Statement"] = json!([st]);
            parts.push(next);
        }
    }
    parts
}

/// Verbs whose actions a statement groups under one wildcard when it has
/// several of a service: reads, and deletes and changes that the
/// statement's resources and tag condition bound. IAM's are never grouped:
/// `iam:Get*` on `*` would read every policy of the account.
pub(super) const GROUPED_VERBS: &[&str] = &["Describe", "List", "Get", "Delete", "Modify"];

/// The verb an action's name starts with (`Describe` of `DescribeVpcs`).
pub(super) fn verb(name: &str) -> &str {
    let end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase())
        .map_or(name.len(), |(i, _)| i);
    &name[..end]
}

/// `actions`, those of one service and verb grouped as `service:Verb*`
/// where there are several, to stay well within [`INLINE_POLICY_LIMIT`].
/// IAM's actions are grouped too when the statement names the stack's
/// own IAM resources only and only reads them (`scoped`).
pub(super) fn grouped_on(actions: &[&str], scoped: bool) -> Vec<String> {
    let key = |a: &str| {
        let (svc, name) = a.split_once(':').unwrap_or(("", a));
        (svc.to_string(), verb(name).to_string())
    };
    let mut out: Vec<String> = actions
        .iter()
        .map(|a| {
            let k = key(a);
            let several = actions
                .iter()
                .filter(|b| key(b) == k)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1;
            let (svc, v) = k;
            // IAM's and S3's writes are listed one by one; their reads
            // are grouped only on the stack's own resources.
            // Secrets Manager's never: `Get*` would read every secret.
            let plain =
                (!matches!(svc.as_str(), "iam" | "s3") || scoped) && svc != "secretsmanager";
            if several && plain && GROUPED_VERBS.contains(&v.as_str()) {
                format!("{svc}:{v}*")
            } else {
                a.to_string()
            }
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `pattern` (an action, or a prefix ending in `*`) covers `action`.
pub fn covers(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

pub(super) fn statement(
    sid: &str,
    actions: &[&str],
    resources: &[String],
    condition: Option<Value>,
) -> Value {
    // Reads of the stack's own IAM resources and buckets may group.
    let scoped = resources.iter().all(|r| r != "*")
        && actions.iter().all(|a| {
            let name = a.split_once(':').map_or(*a, |x| x.1);
            matches!(verb(name), "Get" | "List")
        });
    let actions = grouped_on(actions, scoped);
    let mut s = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    });
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

/// Every action pattern a policy document allows (its `Allow` statements).
pub fn document_actions(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| super::evaluate::strings(&s["Action"]))
        .collect()
}

/// Whether some statement of `doc` allows `action` (on some resource).
pub fn allows(doc: &Value, action: &str) -> bool {
    document_actions(doc).iter().any(|p| covers(p, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_never_widens_to_secrets_nor_counts_a_repeat_as_several() {
        // One action named twice is one action: no wildcard.
        assert_eq!(
            grouped_on(&["ec2:DescribeVpcs", "ec2:DescribeVpcs"], false),
            ["ec2:DescribeVpcs"]
        );
        assert_eq!(
            grouped_on(&["ec2:DescribeVpcs", "ec2:DescribeSubnets"], false),
            ["ec2:Describe*"]
        );
        // `secretsmanager:Get*` would cover GetSecretValue.
        let secrets = grouped_on(
            &[
                "secretsmanager:GetRandomPassword",
                "secretsmanager:GetResourcePolicy",
            ],
            true,
        );
        assert!(secrets.iter().all(|a| !a.contains('*')), "{secrets:?}");
        // IAM's and S3's only on the stack's own resources, and only reads.
        assert_eq!(
            grouped_on(&["iam:GetRole", "iam:GetRolePolicy"], false),
            ["iam:GetRole", "iam:GetRolePolicy"]
        );
        assert_eq!(
            grouped_on(&["iam:GetRole", "iam:GetRolePolicy"], true),
            ["iam:Get*"]
        );
    }
}
