//! Resource policies AWS refuses, refused before the emulator is asked:
//! the emulator stores any text as a bucket policy (PutBucketPolicy) or a
//! file system policy (PutFileSystemPolicy), so a test would otherwise
//! pass with a document AWS never takes.
//!
//! The rules are those of the IAM JSON policy element reference, as each
//! service applies them to its own resource policies:
//! - S3 answers 400 `MalformedPolicy` (S3 API reference, "Error
//!   responses"): "Policies must be valid JSON and the first byte must be
//!   '{'", "Missing required field Statement", "Invalid effect: ...",
//!   "Missing required field Principal", "Invalid principal in policy",
//!   "Policy has invalid action" (an action of another service), "Policy
//!   has invalid resource" (a resource outside the bucket); a bucket policy
//!   is at most 20 KB ("Bucket policy examples", Amazon S3 User Guide).
//! - EFS answers 400 `InvalidPolicyException` for the same faults (EFS API
//!   reference, PutFileSystemPolicy: "malformed or contains an error such
//!   as a parameter value that is not valid or a missing required
//!   parameter"); `Policy` is at most 20,000 characters, and a Resource, if
//!   given, is the file system itself.

use serde_json::Value;

use super::super::http::Response;
use super::errors::error;
use super::Call;

/// What a service accepts in its resource policies.
struct Rules<'a> {
    /// The service prefix of the actions (`s3`, `elasticfilesystem`).
    actions: &'a str,
    /// Whether a Resource must be given.
    resource_required: bool,
    /// Whether a resource ARN names the resource the policy is attached to.
    resource_ok: &'a dyn Fn(&str) -> bool,
    max_len: usize,
}

/// AWS's refusal of the policy document a request carries, if it is one.
pub(super) fn refuse(c: &Call, body: &[u8]) -> Option<Response> {
    match (c.service.as_str(), c.op.as_str()) {
        ("s3", "PUT:bucket?policy") => {
            let bucket = c.get("Bucket")?.to_string();
            let arn = format!("arn:aws:s3:::{bucket}");
            let within = |r: &str| r == arn || r.starts_with(&format!("{arn}/"));
            let rules = Rules {
                actions: "s3",
                resource_required: true,
                resource_ok: &within,
                max_len: 20 * 1024,
            };
            let text = String::from_utf8_lossy(body);
            let fault = check(&text, &rules).err()?;
            Some(error("s3", 400, "MalformedPolicy", &fault))
        }
        ("elasticfilesystem", "PutFileSystemPolicy") => {
            let fs = c.get("Id")?.to_string();
            let suffix = format!(":file-system/{fs}");
            let itself =
                |r: &str| r.starts_with("arn:aws:elasticfilesystem:") && r.ends_with(&suffix);
            let rules = Rules {
                actions: "elasticfilesystem",
                resource_required: false,
                resource_ok: &itself,
                max_len: 20_000,
            };
            let fault = match c.get("Policy") {
                Some(p) => check(p, &rules).err()?,
                None => "Missing required field Policy".into(),
            };
            Some(error(
                "elasticfilesystem",
                400,
                "InvalidPolicyException",
                &fault,
            ))
        }
        _ => None,
    }
}

/// One value or a list of values, as policy elements allow.
fn values(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn check(text: &str, rules: &Rules) -> Result<(), String> {
    if text.len() > rules.max_len {
        return Err(format!("Policies must be at most {} bytes", rules.max_len));
    }
    let invalid_json = || "Policies must be valid JSON and the first byte must be '{'".to_string();
    if !text.trim_start().starts_with('{') {
        return Err(invalid_json());
    }
    let doc: Value = serde_json::from_str(text).map_err(|_| invalid_json())?;
    if let Some(v) = doc.get("Version") {
        if v != "2012-10-17" && v != "2008-10-17" {
            return Err(format!("Invalid policy version: {v}"));
        }
    }
    let statements = doc
        .get("Statement")
        .map(values)
        .filter(|s| !s.is_empty())
        .ok_or("Missing required field Statement")?;
    for s in statements {
        let s = s.as_object().ok_or("Statement must be an object")?;
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            other => return Err(format!("Invalid effect: {}", other.unwrap_or_default())),
        }
        let principal = s
            .get("Principal")
            .or(s.get("NotPrincipal"))
            .ok_or("Missing required field Principal")?;
        if !principal_ok(principal) {
            return Err("Invalid principal in policy".into());
        }
        let actions = s
            .get("Action")
            .or(s.get("NotAction"))
            .ok_or("Missing required field Action")?;
        for a in values(actions) {
            let a = a.as_str().unwrap_or_default();
            let ours = a
                .split_once(':')
                .is_some_and(|(svc, name)| svc == rules.actions && !name.is_empty());
            if a != "*" && !ours {
                return Err("Policy has invalid action".into());
            }
        }
        match s.get("Resource").or(s.get("NotResource")) {
            Some(r) => {
                for r in values(r) {
                    if !r.as_str().is_some_and(|r| (rules.resource_ok)(r)) {
                        return Err("Policy has invalid resource".into());
                    }
                }
            }
            None if rules.resource_required => return Err("Missing required field Resource".into()),
            None => {}
        }
        if let Some(c) = s.get("Condition") {
            let ok = c
                .as_object()
                .is_some_and(|ops| ops.values().all(Value::is_object));
            if !ok {
                return Err("Invalid Condition block".into());
            }
        }
    }
    Ok(())
}

/// `*`, or an object naming principals of the kinds IAM knows; an AWS
/// principal is `*`, an account id, or an IAM ARN.
fn principal_ok(p: &Value) -> bool {
    if p == "*" {
        return true;
    }
    let Some(kinds) = p.as_object() else {
        return false;
    };
    !kinds.is_empty()
        && kinds.iter().all(|(kind, v)| {
            values(v).iter().all(|v| {
                let Some(v) = v.as_str() else {
                    return false;
                };
                match kind.as_str() {
                    "AWS" => {
                        v == "*"
                            || (v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()))
                            || v.starts_with("arn:aws:iam::")
                            || v.starts_with("arn:aws:sts::")
                    }
                    "Service" => v.ends_with(".amazonaws.com"),
                    "Federated" | "CanonicalUser" => !v.is_empty(),
                    _ => false,
                }
            })
        })
}
