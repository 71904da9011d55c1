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
mod document;

use serde_json::{json, Value};

use crate::engine::TAG_STACK;
use crate::resources::{iam, s3};
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
        _ => return None,
    })
}

pub use crate::engine::calls::{Access, Call};
use calls::TAG_ON_CREATE;
pub use calls::{actions, call, table};
use document::statement;
pub use document::{allows, covers, document_actions, INLINE_POLICY_LIMIT};

/// The SSM parameter of the public Amazon Linux AMI ids ("Query for the
/// latest Amazon Linux AMI IDs using Systems Manager Parameter Store"):
/// public parameters have no account in their ARN.
const AMI_PARAMETERS: &str = "/aws/service/ami-amazon-linux-latest/*";

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

/// The actions of `scope` that belong to `service` and are read or written.
fn of(scope: Scope, service_prefix: &str, access: Access) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = table()
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

/// The least-privilege policy document for running `scope` on `stack`.
/// Without `account` (or a region in the stack file) the ARNs hold `*`
/// there instead.
pub fn policy(stack: &Stack, account: Option<&str>, scope: Scope) -> Value {
    let name = stack.name.as_str();
    let a = account.unwrap_or("*");
    let region = stack.region.as_deref().unwrap_or("*");
    let owned_by = json!({ "StringEquals": { format!("aws:ResourceTag/{TAG_STACK}"): name } });
    let tagged = json!({ "StringEquals": { format!("aws:RequestTag/{TAG_STACK}"): name } });
    let bucket = artifact_bucket(name, a, region);
    // The plan reads the tags of every bucket named like the stack's (its
    // copies in other regions too) to find its own: a refusal would fail it.
    let any_bucket = artifact_bucket(name, "*", "*");
    let lock = crate::lock::bucket_name(a, region);
    let lock_object = format!("arn:aws:s3:::{lock}/{}", crate::lock::object_key(name));
    let s3_reads = of(scope, "s3", Access::Read);
    let list_all: Vec<&str> = s3_reads
        .iter()
        .copied()
        .filter(|x| *x == "s3:ListAllMyBuckets")
        .collect();
    let s3_scoped_reads: Vec<&str> = s3_reads
        .iter()
        .copied()
        .filter(|x| *x != "s3:ListAllMyBuckets")
        .collect();

    // Most Describe and List calls support no resource-level permissions
    // (EC2, ELB, Auto Scaling, EFS, ACM, Route 53 zone lists, S3
    // ListAllMyBuckets): reads go on `*`, IAM's by name, never grouped.
    let mut reads: Vec<&str> = Vec::new();
    for svc in [
        "ec2",
        "elasticloadbalancing",
        "autoscaling",
        "rds",
        "elasticfilesystem",
        "acm",
        "iam",
        "route53",
        "sts",
    ] {
        reads.extend(of(scope, svc, Access::Read));
    }
    // DescribeLogGroups names no group (it lists them), GetCommandInvocation
    // and DescribeInstanceInformation no resource ("Actions, resources, and
    // condition keys" for CloudWatch Logs and for Systems Manager).
    reads.extend([
        "logs:DescribeLogGroups",
        "ssm:GetCommandInvocation",
        "ssm:DescribeInstanceInformation",
    ]);
    let log_groups = format!(
        "arn:aws:logs:{region}:{a}:log-group:{}*",
        crate::resources::log_group::prefix(name)
    );
    reads.extend(list_all);
    // The EC2 reads that only writes need (EFS mount targets).
    if scope == Scope::Apply {
        reads.push("ec2:DescribeNetworkInterfaces");
    }

    let mut st = vec![
        statement("ReadOnly", &reads, &["*".to_string()], None),
        statement(
            "AmiParameter",
            &["ssm:GetParameter"],
            &[format!("arn:aws:ssm:{region}::parameter{AMI_PARAMETERS}")],
            None,
        ),
        statement(
            "ArtifactBucketRead",
            &s3_scoped_reads,
            &[
                format!("arn:aws:s3:::{any_bucket}"),
                format!("arn:aws:s3:::{any_bucket}/*"),
            ],
            None,
        ),
    ];
    st.push(statement(
        "StackLogGroupsRead",
        &of(scope, "logs", Access::Read)
            .into_iter()
            .filter(|x| *x != "logs:DescribeLogGroups")
            .collect::<Vec<_>>(),
        std::slice::from_ref(&log_groups),
        None,
    ));
    if scope == Scope::Plan {
        return json!({ "Version": "2012-10-17", "Statement": st });
    }

    // Whatever the stack creates carries its tag in the request; whatever
    // it changes or deletes carries it already. Each service's ARNs bound
    // the actions to the account and region (ACM's to the account: stale
    // certificates are found in every region).
    let arns: Vec<String> = [
        "ec2",
        "elasticloadbalancing",
        "autoscaling",
        "rds",
        "elasticfilesystem",
    ]
    .iter()
    .map(|svc| format!("arn:aws:{svc}:{region}:{a}:*"))
    .chain([format!("arn:aws:acm:*:{a}:certificate/*")])
    .collect();
    let untagged = [
        // Tagging on create has its own statements or conditions.
        "ec2:CreateTags",
        // Instances are launched by Auto Scaling from the stack's launch
        // template, and EFS mount targets are network interfaces AWS
        // names itself: neither carries the stack's tag when authorized.
        "ec2:RunInstances",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DescribeNetworkInterfaces",
    ];
    let creates: Vec<&str> = table()
        .iter()
        .filter(|c| {
            c.access == Access::Write
                && !matches!(c.client, "iam" | "s3")
                && c.actions[1..].iter().any(|x| TAG_ON_CREATE.contains(x))
        })
        .flat_map(|c| c.actions.iter().copied())
        .filter(|x| !untagged.contains(x) && !x.starts_with("iam:"))
        .collect();
    let owned: Vec<&str> = [
        "ec2",
        "elasticloadbalancing",
        "autoscaling",
        "rds",
        "elasticfilesystem",
        "acm",
    ]
    .iter()
    .flat_map(|svc| of(scope, svc, Access::Write))
    .filter(|x| !untagged.contains(x))
    .collect();
    let ec2_creates: Vec<&str> = creates
        .iter()
        .filter_map(|x| x.strip_prefix("ec2:"))
        .collect();
    let rds = |x: &str| format!("arn:aws:rds:{region}:{a}:{x}");
    let role = format!("arn:aws:iam::{a}:role{}*", iam::path(name));
    let profile = format!("arn:aws:iam::{a}:instance-profile{}*", iam::path(name));
    let slr_services = [
        "autoscaling.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "rds.amazonaws.com",
        "elasticfilesystem.amazonaws.com",
    ];

    st.extend([
        statement("CreateTagged", &creates, &arns, Some(tagged)),
        // EC2 authorizes the tags of a create as a CreateTags of its own
        // ("Grant permission to tag Amazon EC2 resources during creation").
        statement(
            "Ec2TagOnCreate",
            &["ec2:CreateTags"],
            &[format!("arn:aws:ec2:{region}:{a}:*/*")],
            Some(json!({
                "StringEquals": {
                    "ec2:CreateAction": ec2_creates,
                    format!("aws:RequestTag/{TAG_STACK}"): name,
                }
            })),
        ),
        statement("ManageOwned", &owned, &arns, Some(owned_by)),
        statement(
            "LaunchAndMountTargets",
            &untagged[1..],
            &["*".to_string()],
            None,
        ),
        // The default parameter and option groups a database uses, and its
        // final snapshot, are not the stack's.
        statement(
            "RdsDefaultsAndSnapshots",
            &[
                "rds:CreateDBInstance",
                "rds:ModifyDBInstance",
                "rds:CreateDBSnapshot",
            ],
            &[rds("pg:*"), rds("og:*"), rds("snapshot:*")],
            None,
        ),
        statement(
            "IamStackRoles",
            &of(scope, "iam", Access::Write)
                .into_iter()
                .filter(|x| !matches!(*x, "iam:CreateServiceLinkedRole" | "iam:AttachRolePolicy"))
                .collect::<Vec<_>>(),
            &[role.clone(), profile],
            None,
        ),
        // The only managed policy the stack attaches to its role.
        statement(
            "IamAttachSsmCore",
            &["iam:AttachRolePolicy"],
            &[role],
            Some(json!({ "ArnLike": { "iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" } })),
        ),
        statement(
            "StackLogGroupsWrite",
            &of(scope, "logs", Access::Write),
            &[log_groups],
            None,
        ),
        // `exec`: the one document, on the stack's instances only (they
        // carry its tag from the Auto Scaling group).
        statement(
            "RunCommandDocument",
            &["ssm:SendCommand"],
            &[format!("arn:aws:ssm:{region}::document/AWS-RunShellScript")],
            None,
        ),
        statement(
            "RunCommandOnStackInstances",
            &["ssm:SendCommand"],
            &[format!("arn:aws:ec2:{region}:{a}:instance/*")],
            Some(json!({ "StringEquals": { format!("ssm:resourceTag/{TAG_STACK}"): name } })),
        ),
        statement(
            "IamServiceLinkedRoles",
            &["iam:CreateServiceLinkedRole"],
            &[format!("arn:aws:iam::{a}:role/aws-service-role/*")],
            Some(json!({ "StringEquals": { "iam:AWSServiceName": slr_services } })),
        ),
        statement(
            "ArtifactBucketWrite",
            &of(scope, "s3", Access::Write),
            &[
                format!("arn:aws:s3:::{bucket}"),
                format!("arn:aws:s3:::{bucket}/*"),
            ],
            None,
        ),
        statement(
            "RunLock",
            &[
                "s3:ListBucket",
                "s3:GetObject",
                "s3:CreateBucket",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutEncryptionConfiguration",
                "s3:PutObject",
                "s3:DeleteObject",
            ],
            &[format!("arn:aws:s3:::{lock}"), lock_object],
            None,
        ),
        statement(
            "DnsRecords",
            &of(scope, "route53", Access::Write),
            &["arn:aws:route53:::hostedzone/*".to_string()],
            None,
        ),
    ]);
    json!({ "Version": "2012-10-17", "Statement": st })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// The clients of [`crate::cloud::Cloud`].
    const CLIENTS: &[&str] = &[
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
            assert_eq!(s["Effect"], "Allow");
            let acts = s["Action"].as_array().unwrap();
            assert!(!acts.is_empty(), "{sid}: no action");
            for a in acts {
                let (svc, name) = a.as_str().unwrap().split_once(':').unwrap();
                assert!(
                    CLIENTS.iter().any(|c| service(c) == Some(svc)),
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
                    assert!(["StringEquals", "StringLike", "ArnLike"].contains(&op.as_str()));
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
        let text = serde_json::to_string(doc).unwrap();
        let size = text.chars().filter(|c| !c.is_whitespace()).count();
        assert!(
            size <= INLINE_POLICY_LIMIT,
            "the policy has {size} characters"
        );
    }

    #[test]
    fn the_documents_are_valid_and_grant_exactly_the_actions() {
        let s = stack();
        for scope in [Scope::Plan, Scope::Apply] {
            for account in [Some("123456789012"), None] {
                let doc = policy(&s, account, scope);
                check_document(&doc);
                let want = actions(scope);
                for a in &want {
                    assert!(allows(&doc, a), "{scope:?}: {a} is not granted");
                }
                for p in document_actions(&doc) {
                    assert!(
                        want.iter().any(|a| covers(&p, a)),
                        "{scope:?}: {p} grants no action the tool needs"
                    );
                }
            }
        }
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
            // Deletes and changes name the stack's resources, by tag or ARN;
            // only the untagged network interfaces of EFS are on `*`.
            if deletes && on_all {
                assert_eq!(st["Sid"], "LaunchAndMountTargets", "{st}");
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
