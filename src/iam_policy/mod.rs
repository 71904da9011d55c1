//! The least-privilege IAM policy a CI role needs to run the tool: read-only
//! for `diff`, everything for `up` and `destroy`.
//!
//! The policy is derived from [`table`], one row per AWS SDK call the tool
//! makes (a unit test scans `src/` and fails when a call is missing from the
//! table, or when a row names a call the tool no longer makes). Each row
//! gives the API operation and the IAM actions AWS authorizes it against,
//! which are not always named like the operation (Service Authorization
//! Reference, "Actions, resources, and condition keys" of each service).
//!
//! Resources the tool creates carry the tag `bookstore-infra:stack` = stack
//! name ([`crate::engine::TAG_STACK`]), so changes to existing resources are
//! allowed under `aws:ResourceTag/bookstore-infra:stack` and creations under
//! `aws:RequestTag/bookstore-infra:stack` wherever the service supports
//! those condition keys ("Controlling access to AWS resources using tags",
//! IAM User Guide). IAM roles and instance profiles are scoped by their path
//! (`/bookstore-infra/<stack>/`), S3 buckets by name: S3 bucket actions do
//! not take tag conditions. Describe and List calls do not support
//! resource-level permissions and are allowed on `*`.

mod calls;
mod containers;
mod document;
#[cfg(test)]
mod escalation;
#[cfg(test)]
mod escalation_fargate;
#[cfg(test)]
mod escalation_single;
pub mod evaluate;
mod statements;
mod writes;

use serde_json::{json, Value};

use crate::resources::s3;
use crate::stack::Stack;

/// Which runs the policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `diff` (and `validate`, `outputs`): reads only.
    Plan,
    /// `up` and `destroy`: reads and writes.
    Apply,
}

impl Scope {
    /// The scope a verb needs: `diff` plans, `up` and `destroy` apply.
    pub fn for_verb(verb: &str) -> Option<Scope> {
        match verb {
            "diff" => Some(Scope::Plan),
            "up" | "destroy" => Some(Scope::Apply),
            // `logs` reads the stack's log group; `exec` sends a command.
            "logs" => Some(Scope::Plan),
            "exec" => Some(Scope::Apply),
            _ => None,
        }
    }
}

/// The IAM service prefix (also the SigV4 signing name) of a client.
pub fn service(client: &str) -> Option<&'static str> {
    Some(match client {
        "ec2" => "ec2",
        "elbv2" => "elasticloadbalancing",
        "autoscaling" => "autoscaling",
        "rds" => "rds",
        "efs" => "elasticfilesystem",
        "acm" => "acm",
        "iam" => "iam",
        "s3" => "s3",
        "route53" => "route53",
        "ssm" => "ssm",
        "sts" => "sts",
        "logs" => "logs",
        "secretsmanager" => "secretsmanager",
        "dlm" => "dlm",
        "ecr" => "ecr",
        "ecs" => "ecs",
        "app_scaling" => "application-autoscaling",
        _ => return None,
    })
}

pub use crate::engine::calls::{Access, Call};
pub use calls::{actions, admin_actions, call, table, table_for};
pub use document::{
    allows, covers, document_actions, size, split, INLINE_POLICY_LIMIT, MANAGED_POLICY_LIMIT,
};

/// The S3 resources of the artifact bucket: the exact name when account and
/// region are known, else every name the stack's buckets can have.
fn artifact_bucket(stack: &str, account: &str, region: &str) -> String {
    if account != "*" && region != "*" {
        return s3::bucket_name(stack, account, region);
    }
    // The longest region name cuts a long stack name shortest: the prefix
    // then matches whatever region the bucket is in.
    let sample = s3::bucket_name(stack, "000000000000", "ap-southeast-99");
    let prefix = &sample[..sample.find("-artifacts-").unwrap_or(sample.len())];
    if prefix.len() == stack.len() {
        format!("{stack}-artifacts-{account}-{region}")
    } else {
        format!("{prefix}*-artifacts-{account}-{region}")
    }
}

/// The actions of `scope` among `calls` that belong to `service` and are
/// read or written.
fn of(calls: &[Call], scope: Scope, service_prefix: &str, access: Access) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = calls
        .iter()
        .filter(|c| c.access == access)
        .filter(|c| scope == Scope::Apply || c.access == Access::Read)
        .flat_map(|c| c.actions.iter().copied())
        .filter(|a| a.split(':').next() == Some(service_prefix))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The kinds of resource `stack` is made of: its policy needs their calls
/// and no others (a scaled stack's role cannot make volumes, a single
/// one's cannot make load balancers).
pub fn kinds_of(stack: &Stack) -> std::collections::BTreeSet<&'static str> {
    let facts = crate::topology::check::placeholder_facts(stack);
    crate::topology::desired(stack, &facts)
        .iter()
        .map(|d| d.kind)
        .collect()
}

/// The least-privilege policy document for running `scope` on `stack`.
/// Without `account` (or a region in the stack file) the ARNs hold `*`
/// there instead.
pub fn policy(stack: &Stack, account: Option<&str>, scope: Scope) -> Value {
    let n = statements::Names {
        stack,
        name: stack.name.as_str(),
        account: account.unwrap_or("*"),
        region: stack.region.as_deref().unwrap_or("*"),
        kinds: kinds_of(stack),
        calls: table_for(&kinds_of(stack)),
    };
    let mut st = statements::reads(&n, scope);
    if scope == Scope::Apply {
        st.extend(writes::writes(&n));
        st.extend(containers::writes(&n));
    }
    let st = statements::only_what_the_stack_calls(&n, st);
    json!({ "Version": "2012-10-17", "Statement": st })
}

/// The permissions boundary of the stack's roles, as `bootstrap` makes it.
pub fn boundary_document(stack: &Stack, account: Option<&str>) -> Value {
    let (name, a) = (stack.name.as_str(), account.unwrap_or("*"));
    let region = stack.region.as_deref().unwrap_or("*");
    crate::resources::boundary::document(name, a, region, &artifact_bucket(name, a, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// The clients of [`crate::cloud::Cloud`].
    const CLIENTS: &[&str] = &[
        "dlm",
        "ecr",
        "ecs",
        "app_scaling",
        "ec2",
        "elbv2",
        "autoscaling",
        "rds",
        "efs",
        "acm",
        "iam",
        "s3",
        "route53",
        "ssm",
        "sts",
        "logs",
        "secretsmanager",
    ];
    /// Methods of an SDK client that make no request.
    const NOT_CALLS: &[&str] = &["clone", "config"];

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    fn ident(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// `(client, method)` of every `<client>.<method>(` in `text`, across
    /// line breaks and spaces (`cloud\n    .ec2\n    .describe_vpcs()`),
    /// comment lines left out.
    fn calls_in(text: &str) -> BTreeSet<(String, String)> {
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let b = code.as_bytes();
        let skip_ws = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        let mut out = BTreeSet::new();
        for client in CLIENTS {
            for (at, _) in code.match_indices(client) {
                if at > 0 && ident(b[at - 1]) {
                    continue;
                }
                let mut i = skip_ws(at + client.len());
                if b.get(i) != Some(&b'.') {
                    continue;
                }
                i = skip_ws(i + 1);
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let method = &code[start..i];
                if method.is_empty() || !b[start].is_ascii_lowercase() {
                    continue;
                }
                if b.get(skip_ws(i)) == Some(&b'(') && !NOT_CALLS.contains(&method) {
                    out.insert((client.to_string(), method.to_string()));
                }
            }
        }
        out
    }

    /// Every SDK call in `src/`, this file's table left out.
    fn calls_in_src() -> BTreeSet<(String, String)> {
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        files
            .iter()
            .filter(|p| !p.to_string_lossy().contains("iam_policy"))
            .flat_map(|p| calls_in(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    fn stack() -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/production.toml");
        crate::stack::load(&path).expect("the production stack loads")
    }

    #[test]
    fn the_scanner_finds_calls_across_lines_and_aliases() {
        let text = "let v = cloud\n    .ec2\n    .describe_vpcs()\n    .send();\n\
                    acm.list_certificates().send();\n\
                    // cloud.rds.delete_db_instance() in a comment\n\
                    let c = cloud.acm.clone();\n\
                    let u = \"https://s3.amazonaws.com\";\n\
                    let p = iam::path(stack);";
        let found = calls_in(text);
        let want: BTreeSet<(String, String)> =
            [("acm", "list_certificates"), ("ec2", "describe_vpcs")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(found, want);
    }

    #[test]
    fn every_sdk_call_in_src_has_its_iam_actions() {
        let calls = calls_in_src();
        assert!(calls.len() > 100, "the scan found only {calls:?}");
        let missing: Vec<_> = calls
            .iter()
            .filter(|(c, m)| !table().iter().any(|k| k.client == c && k.method == m))
            .collect();
        assert!(
            missing.is_empty(),
            "SDK calls in src/ without a row in the call tables (add the IAM actions they need): {missing:?}"
        );
    }

    #[test]
    fn every_row_is_a_call_the_tool_makes() {
        let calls = calls_in_src();
        let stale: Vec<_> = table()
            .iter()
            .filter(|k| !calls.contains(&(k.client.to_string(), k.method.to_string())))
            .map(|k| format!("{}.{}", k.client, k.method))
            .collect();
        assert!(
            stale.is_empty(),
            "rows of the call tables for calls src/ no longer makes: {stale:?}"
        );
        for k in table() {
            assert_eq!(
                k.operation.to_lowercase(),
                k.method.replace('_', ""),
                "{}.{} is not the SDK method of {}",
                k.client,
                k.method,
                k.operation
            );
            assert!(service(k.client).is_some(), "{}: unknown client", k.client);
            assert_eq!(
                table()
                    .iter()
                    .filter(|o| o.client == k.client && o.method == k.method)
                    .count(),
                1,
                "{}.{} twice",
                k.client,
                k.method
            );
            assert!(!k.actions.is_empty());
            let own = k.actions[0].split_once(':').unwrap();
            assert_eq!(
                Some(own.0),
                service(k.client),
                "{}: {}",
                k.operation,
                k.actions[0]
            );
        }
    }

    #[test]
    fn reads_grant_no_writes() {
        for k in table().iter().filter(|k| k.access == Access::Read) {
            for a in k.actions {
                let name = a.split_once(':').unwrap().1;
                assert!(
                    // FilterLogEvents reads a log group's events.
                    ["Describe", "List", "Get", "Filter"]
                        .iter()
                        .any(|p| name.starts_with(p)),
                    "{} reads, yet needs {a}",
                    k.operation
                );
            }
        }
        // Every write has its own action among the writes.
        for k in table().iter().filter(|k| k.access == Access::Write) {
            assert!(actions(Scope::Apply).contains(k.actions[0]));
        }
        let plan = actions(Scope::Plan);
        assert!(plan.is_subset(&actions(Scope::Apply)));
        for a in &plan {
            let name = a.split_once(':').unwrap().1;
            assert!(
                ["Describe", "List", "Get", "Filter"]
                    .iter()
                    .any(|p| name.starts_with(p)),
                "plan scope grants {a}"
            );
        }
        for renamed in [
            "s3:ListBucket",
            "s3:GetObject",
            "s3:GetBucketTagging",
            "s3:GetEncryptionConfiguration",
        ] {
            assert!(plan.contains(renamed), "{renamed}");
        }
        let apply = actions(Scope::Apply);
        for renamed in [
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock",
            "elasticloadbalancing:AddTags",
            "route53:ChangeResourceRecordSets",
            "iam:PassRole",
            "iam:CreateServiceLinkedRole",
        ] {
            assert!(apply.contains(renamed), "{renamed}");
        }
    }

    /// The IAM policy grammar ("IAM JSON policy element reference").
    fn check_document(doc: &Value) {
        assert_eq!(doc["Version"], "2012-10-17");
        let keys: BTreeSet<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["Statement", "Version"]));
        let statements = doc["Statement"].as_array().expect("Statement is a list");
        assert!(!statements.is_empty());
        let mut sids = BTreeSet::new();
        for s in statements {
            let o = s.as_object().unwrap();
            for k in o.keys() {
                assert!(
                    ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()),
                    "{k} in {s}"
                );
            }
            let sid = s["Sid"].as_str().unwrap();
            assert!(
                !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "Sid {sid:?}"
            );
            assert!(sids.insert(sid.to_string()), "Sid {sid} twice");
            assert!(s["Effect"] == "Allow" || s["Effect"] == "Deny", "{sid}");
            let acts = s["Action"].as_array().unwrap();
            assert!(!acts.is_empty(), "{sid}: no action");
            for a in acts {
                let (svc, name) = a.as_str().unwrap().split_once(':').unwrap();
                // Target tracking makes CloudWatch alarms with the caller's
                // rights (no client of the tool's calls CloudWatch).
                assert!(
                    CLIENTS.iter().any(|c| service(c) == Some(svc)) || svc == "cloudwatch",
                    "{sid}: service {svc}"
                );
                let stem = name.strip_suffix('*').unwrap_or(name);
                assert!(
                    stem.chars().next().unwrap().is_ascii_uppercase()
                        && stem.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{sid}: action {name}"
                );
            }
            let res = s["Resource"].as_array().unwrap();
            assert!(!res.is_empty(), "{sid}: no resource");
            for r in res {
                let r = r.as_str().unwrap();
                assert!(r == "*" || r.starts_with("arn:aws:"), "{sid}: {r}");
                if r != "*" {
                    assert!(r.split(':').count() >= 6, "{sid}: {r}");
                }
            }
            if let Some(c) = s.get("Condition") {
                for (op, kv) in c.as_object().unwrap() {
                    assert!(
                        [
                            "StringEquals",
                            "StringEqualsIfExists",
                            "StringLike",
                            "ArnLike",
                            "ForAllValues:StringLike",
                            "ForAllValues:StringEquals",
                        ]
                        .contains(&op.as_str()),
                        "{sid}: {op}"
                    );
                    for (k, v) in kv.as_object().unwrap() {
                        assert!(k.contains(':'), "{sid}: condition key {k}");
                        assert!(v.is_string() || v.is_array(), "{sid}: {k}");
                    }
                }
            }
        }
        // The document is meant as the role's inline policy: a role's inline
        // policies hold at most 10,240 characters, white space not counted
        // ("IAM and AWS STS quotas", IAM User Guide).
        // Longer, it goes as customer managed policies, each within their
        // limit, the statements the same in the same order.
        if size(doc) > INLINE_POLICY_LIMIT {
            let parts = split(doc, MANAGED_POLICY_LIMIT);
            assert!(
                parts.len() > 1 && parts.len() <= 10,
                "{} parts",
                parts.len()
            );
            let mut again = Vec::new();
            for p in &parts {
                assert!(size(p) <= MANAGED_POLICY_LIMIT, "a part of {}", size(p));
                again.extend(p["Statement"].as_array().unwrap().iter().cloned());
            }
            assert_eq!(&Value::Array(again), &doc["Statement"]);
        }
    }

    fn single_stack() -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/single.toml");
        crate::stack::load(&path).expect("the single stack loads")
    }

    /// The scaled stack with the app on Fargate, with a domain.
    fn fargate_stack() -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/fargate.toml");
        let text = std::fs::read_to_string(&path).unwrap()
            + "\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"example.com\"\n";
        crate::stack::parse(&path, &text).expect("the stack parses")
    }

    /// The production stack without NAT gateways, with VPC endpoints.
    fn endpoints_stack() -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/production.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("nat = \"per-az\"", "nat = \"none\"\nendpoints = true");
        crate::stack::parse(&path, &text).expect("the stack parses")
    }

    /// Each shape's documents grant exactly what its kinds call, and the
    /// shapes together every action the tool needs.
    #[test]
    fn the_documents_are_valid_and_grant_exactly_the_actions() {
        for scope in [Scope::Plan, Scope::Apply] {
            let mut granted = BTreeSet::new();
            for s in [stack(), endpoints_stack(), single_stack(), fargate_stack()] {
                let want = calls::actions_in(&table_for(&kinds_of(&s)), scope);
                for account in [Some("123456789012"), None] {
                    let doc = policy(&s, account, scope);
                    check_document(&doc);
                    for a in &want {
                        assert!(allows(&doc, a), "{} {scope:?}: {a} is not granted", s.name);
                    }
                    for p in document_actions(&doc) {
                        assert!(
                            want.iter().any(|a| covers(&p, a)),
                            "{} {scope:?}: {p} grants no action the stack needs",
                            s.name
                        );
                    }
                }
                granted.extend(want);
            }
            assert_eq!(granted, actions(scope), "{scope:?}");
        }
        // A scaled stack's role makes no volume, a single one's no load balancer.
        let scaled = policy(&stack(), None, Scope::Apply);
        let one = policy(&single_stack(), None, Scope::Apply);
        assert!(
            !allows(&scaled, "ec2:CreateVolume") && !allows(&scaled, "dlm:CreateLifecyclePolicy")
        );
        assert!(allows(&one, "ec2:CreateVolume") && allows(&one, "dlm:CreateLifecyclePolicy"));
        assert!(!allows(&one, "elasticloadbalancing:CreateLoadBalancer"));
        assert!(!allows(&one, "elasticfilesystem:CreateFileSystem"));
    }

    #[test]
    fn writes_are_scoped_to_the_stack() {
        let s = stack();
        let doc = policy(&s, Some("123456789012"), Scope::Apply);
        let text = doc.to_string();
        let bucket = s3::bucket_name("bookstore-prod", "123456789012", "us-east-1");
        assert!(text.contains(&format!("arn:aws:s3:::{bucket}/*")), "{text}");
        assert!(text.contains("arn:aws:s3:::bookstore-infra-locks-123456789012-us-east-1/bookstore-infra/bookstore-prod/lock.json"));
        assert!(text.contains("arn:aws:iam::123456789012:role/bookstore-infra/bookstore-prod/*"));
        assert!(
            text.contains("arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/*")
        );
        for st in doc["Statement"].as_array().unwrap() {
            let acts: Vec<&str> = st["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let deletes = acts.iter().any(|a| {
                let n = a.split_once(':').unwrap().1;
                n.starts_with("Delete") || n.starts_with("Modify")
            });
            let on_all = st["Resource"].as_array().unwrap().iter().any(|r| r == "*");
            let owned = st["Condition"]["StringEquals"]
                .get("aws:ResourceTag/bookstore-infra:stack")
                .is_some_and(|v| v == "bookstore-prod");
            // Deletes and changes name the stack's resources, by tag or
            // ARN: none is allowed on `*`.
            if deletes && on_all {
                assert_eq!(st["Effect"], "Deny", "{st}");
            }
            if st["Sid"].as_str().unwrap().ends_with("ManageOwned") {
                assert!(owned, "{st}");
            }
            if st["Sid"].as_str().unwrap().ends_with("CreateTagged") {
                assert_eq!(
                    st["Condition"]["StringEquals"]["aws:RequestTag/bookstore-infra:stack"],
                    "bookstore-prod",
                    "{st}"
                );
            }
        }
        // The plan role never touches the run lock.
        let plan = policy(&s, Some("123456789012"), Scope::Plan).to_string();
        assert!(!plan.contains("bookstore-infra-locks-"), "{plan}");
        // Without an account, no ARN names one.
        let any = policy(&s, None, Scope::Apply).to_string();
        assert!(!any.contains("123456789012"));
        assert!(any.contains("arn:aws:iam::*:role/bookstore-infra/bookstore-prod/*"));
    }

    #[test]
    fn a_long_stack_name_keeps_a_bucket_pattern_that_matches() {
        let long = "a-very-long-stack-name-for-the-bucket-limit";
        let exact = s3::bucket_name(long, "123456789012", "eu-west-1");
        let pattern = artifact_bucket(long, "*", "*");
        let (head, tail) = pattern.split_once('*').unwrap();
        assert!(exact.starts_with(head), "{exact} {pattern}");
        assert!(tail.starts_with("-artifacts-"), "{pattern}");
        assert_eq!(artifact_bucket(long, "123456789012", "eu-west-1"), exact);
    }

    #[test]
    fn verbs_pick_a_scope() {
        assert_eq!(Scope::for_verb("diff"), Some(Scope::Plan));
        assert_eq!(Scope::for_verb("up"), Some(Scope::Apply));
        assert_eq!(Scope::for_verb("destroy"), Some(Scope::Apply));
        assert_eq!(Scope::for_verb("outputs"), None);
        assert_eq!(Scope::for_verb("logs"), Some(Scope::Plan));
        assert_eq!(Scope::for_verb("exec"), Some(Scope::Apply));
    }
}
