//! What a policy document decides for one request, as IAM evaluates an
//! identity-based policy ("Policy evaluation logic", IAM User Guide): an
//! explicit `Deny` wins, else one `Allow` statement whose action, resource
//! and every condition match allows, else the request is refused.
//!
//! Conditions read the request's context keys, each with one value or
//! several (`route53:ChangeResourceRecordSetsNormalizedRecordNames`). The
//! operators are those the tool's documents use ("IAM JSON policy elements:
//! Condition operators"): `StringEquals`, `StringLike`, `ArnEquals`,
//! `ArnLike`, `Bool`, `Null`, each `...IfExists`, and the set operators
//! `ForAllValues:` and `ForAnyValue:`. A single-valued operator whose key
//! the request lacks is not met (unless `IfExists`); `ForAllValues:` over a
//! missing key is met, as in IAM, which is why the tool pairs it only with
//! keys every such request carries.

use std::collections::BTreeMap;

use serde_json::Value;

/// The request's context: each key with its values.
pub type Context = BTreeMap<String, Vec<String>>;

/// A context from single-valued keys.
pub fn context<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Context {
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), vec![v.as_ref().to_string()]))
        .collect()
}

/// What a document decides for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// A JSON string or list of strings.
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

/// Whether one value matches one wanted value under a base operator.
fn matches(base: &str, want: &str, have: &str) -> bool {
    match base {
        "StringEquals" | "ArnEquals" => want == have,
        "StringEqualsIgnoreCase" => want.eq_ignore_ascii_case(have),
        "StringLike" | "ArnLike" => glob(want, have),
        "Bool" => want.eq_ignore_ascii_case(have),
        other => panic!("a condition operator this evaluator does not read: {other}"),
    }
}

/// Whether one condition (operator, key, wanted values) holds.
fn holds(op: &str, key: &str, want: &[String], ctx: &Context) -> bool {
    let have = ctx.get(key).filter(|v| !v.is_empty());
    if op == "Null" {
        let absent = have.is_none();
        return want.iter().any(|w| (w == "true") == absent);
    }
    if let Some(base) = op.strip_prefix("ForAllValues:") {
        return have.is_none_or(|vals| {
            vals.iter()
                .all(|h| want.iter().any(|w| matches(base, w, h)))
        });
    }
    if let Some(base) = op.strip_prefix("ForAnyValue:") {
        return have.is_some_and(|vals| {
            vals.iter()
                .any(|h| want.iter().any(|w| matches(base, w, h)))
        });
    }
    let (base, if_exists) = match op.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (op, false),
    };
    match have {
        None => if_exists,
        Some(vals) => vals
            .iter()
            .any(|h| want.iter().any(|w| matches(base, w, h))),
    }
}

/// Whether a statement covers the request (its effect aside).
pub fn statement_matches(s: &Value, action: &str, resource: &str, ctx: &Context) -> bool {
    let action = action.to_ascii_lowercase();
    strings(&s["Action"])
        .iter()
        .any(|a| glob(&a.to_ascii_lowercase(), &action))
        && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
        && s["Condition"].as_object().is_none_or(|ops| {
            ops.iter().all(|(op, keys)| {
                keys.as_object()
                    .into_iter()
                    .flatten()
                    .all(|(k, want)| holds(op, k, &strings(want), ctx))
            })
        })
}

/// What `doc` decides for `action` on `resource` with `ctx`.
pub fn decide(doc: &Value, action: &str, resource: &str, ctx: &Context) -> Decision {
    let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    let hit = |effect: &str| {
        statements
            .iter()
            .any(|s| s["Effect"] == effect && statement_matches(s, action, resource, ctx))
    };
    if hit("Deny") {
        Decision::ExplicitDeny
    } else if hit("Allow") {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// The `Sid` of the first statement allowing the request, if one does and
/// none denies it.
pub fn allowed_by(doc: &Value, action: &str, resource: &str, ctx: &Context) -> Option<String> {
    if decide(doc, action, resource, ctx) != Decision::Allow {
        return None;
    }
    doc["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Effect"] == "Allow" && statement_matches(s, action, resource, ctx))
        .and_then(|s| s["Sid"].as_str().map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob(
            "arn:aws:ec2:us-east-1:*:*",
            "arn:aws:ec2:us-east-1:1:vpc/vpc-1"
        ));
        assert!(!glob(
            "arn:aws:s3:::a-*-us-east-1",
            "arn:aws:s3:::a-b-eu-west-1"
        ));
        assert!(glob("ab?d", "abcd") && !glob("ab?d", "abd"));
    }

    #[test]
    fn conditions_read_tags_sets_and_absent_keys() {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Action": "ec2:Delete*", "Resource": "arn:aws:ec2:us-east-1:*:*",
             "Condition": {"StringEquals": {"aws:ResourceTag/t": "x"}}},
            {"Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": "*",
             "Condition": {"ForAllValues:StringLike": {"names": ["a.example.com", "_*.example.com"]}}},
            {"Effect": "Allow", "Action": "acm:AddTagsToCertificate", "Resource": "*",
             "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/t": "x"}}},
            {"Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        ]});
        let r = "arn:aws:ec2:us-east-1:1:vpc/vpc-1";
        let t = |v: &str| context([("aws:ResourceTag/t", v)]);
        assert_eq!(decide(&doc, "ec2:DeleteVpc", r, &t("x")), Decision::Allow);
        assert_eq!(
            decide(&doc, "ec2:DeleteVpc", r, &t("y")),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&doc, "ec2:DeleteVpc", r, &Context::new()),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(
                &doc,
                "ec2:DeleteVpc",
                "arn:aws:ec2:eu-west-1:1:vpc/vpc-1",
                &t("x")
            ),
            Decision::ImplicitDeny,
            "another region"
        );
        let names = |n: &[&str]| {
            Context::from([(
                "names".to_string(),
                n.iter().map(|s| s.to_string()).collect(),
            )])
        };
        let change = "route53:ChangeResourceRecordSets";
        assert_eq!(
            decide(
                &doc,
                change,
                "z",
                &names(&["a.example.com", "_x1.example.com"])
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &doc,
                change,
                "z",
                &names(&["a.example.com", "b.example.com"])
            ),
            Decision::ImplicitDeny,
            "one name outside the set"
        );
        let tag = "acm:AddTagsToCertificate";
        assert_eq!(decide(&doc, tag, "c", &Context::new()), Decision::Allow);
        assert_eq!(decide(&doc, tag, "c", &t("y")), Decision::ImplicitDeny);
        assert_eq!(
            decide(
                &doc,
                "iam:DeleteRolePermissionsBoundary",
                "r",
                &Context::new()
            ),
            Decision::ExplicitDeny,
            "a deny wins over an allow"
        );
        assert_eq!(
            allowed_by(
                &json!({"Statement": [{"Sid": "S", "Effect": "Allow", "Action": "IAM:GetRole", "Resource": "*"}]}),
                "iam:GetRole",
                "r",
                &Context::new()
            ),
            Some("S".to_string()),
            "actions match without regard to case"
        );
    }
}
