//! The statements of the plan and apply policies, each bounded so that
//! whoever holds the role can act on this stack only (the escalation tests
//! in `escalation.rs` read each statement as an attacker would).

use serde_json::{json, Value};

use super::calls::APPLY_ONLY_READS;
use super::document::statement;
use super::{Access, Call, Scope};
use crate::engine::TAG_STACK;
use crate::resources::{boundary, iam, log_group};
use crate::stack::Stack;

/// The SSM parameter of the public Amazon Linux AMI ids ("Query for the
/// latest Amazon Linux AMI IDs using Systems Manager Parameter Store"):
/// public parameters have no account in their ARN.
const AMI_PARAMETERS: &str = "/aws/service/ami-amazon-linux-latest/*";

/// IAM reads that name no resource ("Actions, resources, and condition
/// keys for AWS Identity and Access Management"): they list names, paths
/// and trust policies, never a role's permissions.
const IAM_LISTS: &[&str] = &[
    "iam:ListRoles",
    "iam:ListInstanceProfiles",
    "iam:ListPolicies",
];

/// The names and ARNs of one stack in one account and region (`*` where
/// they are not known).
pub(super) struct Names<'a> {
    pub stack: &'a Stack,
    pub name: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// The kinds of resource the stack is made of.
    pub kinds: std::collections::BTreeSet<&'static str>,
    /// The calls they make, with the shared ones.
    pub calls: Vec<Call>,
}

impl Names<'_> {
    /// The actions of `scope` that belong to `service` and are read or written.
    pub(super) fn of(&self, scope: Scope, service: &str, access: Access) -> Vec<&'static str> {
        super::of(&self.calls, scope, service, access)
    }

    pub(super) fn has(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    pub(super) fn tag(&self, prefix: &str) -> String {
        format!("{prefix}/{TAG_STACK}")
    }

    pub(super) fn tagged(&self) -> Value {
        json!({ "StringEquals": { self.tag("aws:RequestTag"): self.name } })
    }

    pub(super) fn arn(&self, service: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.account)
    }

    pub(super) fn iam(&self, rest: &str) -> String {
        format!("arn:aws:iam::{}:{rest}", self.account)
    }

    /// The artifact bucket: the exact name when account and region are
    /// known, else every name the stack's buckets can have.
    pub fn artifact_bucket(&self) -> String {
        super::artifact_bucket(self.name, self.account, self.region)
    }

    pub fn boundary(&self) -> String {
        boundary::arn(self.name, self.account, self.region)
    }

    /// The instance role: its exact name when the region is known.
    pub(super) fn instance_role(&self) -> String {
        let path = iam::path(self.name);
        if self.region == "*" {
            return self.iam(&format!("role{path}*"));
        }
        // The topology names it `<stack>-<region>-app-role`: a stack name
        // (32 at most) and a region always fit IAM's 64 characters.
        self.iam(&format!("role{path}{}-{}-app-role", self.name, self.region))
    }

    /// The single shape's snapshot role, which Data Lifecycle Manager assumes.
    pub(super) fn snapshot_role(&self) -> String {
        let path = iam::path(self.name);
        if self.region == "*" {
            return self.iam(&format!("role{path}*-snapshots-role"));
        }
        self.iam(&format!(
            "role{path}{}-{}-snapshots-role",
            self.name, self.region
        ))
    }

    pub(super) fn log_groups(&self) -> String {
        self.arn(
            "logs",
            &format!("log-group:{}*", log_group::prefix(self.name)),
        )
    }
}

/// The statements both scopes hold: reads.
pub(super) fn reads(n: &Names, scope: Scope) -> Vec<Value> {
    let any_bucket = super::artifact_bucket(n.name, "*", "*");
    let s3_reads = n.of(scope, "s3", Access::Read);
    let list_all: Vec<&str> = s3_reads
        .iter()
        .copied()
        .filter(|x| *x == "s3:ListAllMyBuckets")
        .collect();
    let s3_scoped: Vec<&str> = s3_reads
        .iter()
        .copied()
        .filter(|x| *x != "s3:ListAllMyBuckets")
        .collect();
    // Most Describe and List calls support no resource-level permissions
    // (EC2, ELB, Auto Scaling, EFS, ACM, Route 53, S3 ListAllMyBuckets):
    // they go on `*`. IAM's name the stack's roles, profiles and boundary.
    let mut on_all: Vec<&str> = Vec::new();
    for svc in [
        "ec2",
        "elasticloadbalancing",
        "autoscaling",
        "rds",
        "elasticfilesystem",
        "acm",
        "route53",
        "sts",
        // ListSecrets filters by name; GetRandomPassword (apply only)
        // names no secret.
        "secretsmanager",
        "dlm",
        // Repositories, images and the layers a repository has; clusters,
        // services and task definitions; scalable targets and policies.
        "ecr",
        "ecs",
        "application-autoscaling",
    ] {
        on_all.extend(n.of(scope, svc, Access::Read));
    }
    on_all.extend(
        IAM_LISTS
            .iter()
            .filter(|a| n.of(scope, "iam", Access::Read).contains(a)),
    );
    on_all.push("logs:DescribeLogGroups");
    on_all.extend(list_all);
    if scope == Scope::Apply {
        // EFS mount targets' interfaces; `exec`'s reads, a new password.
        on_all.push("ec2:DescribeNetworkInterfaces");
        on_all.extend(APPLY_ONLY_READS);
    } else {
        on_all.retain(|a| !APPLY_ONLY_READS.contains(a));
    }
    let iam_reads: Vec<&str> = n
        .of(scope, "iam", Access::Read)
        .into_iter()
        .filter(|a| !IAM_LISTS.contains(a))
        .collect();
    let path = iam::path(n.name);
    vec![
        statement("ReadOnly", &on_all, &["*".to_string()], None),
        statement(
            "StackIamReads",
            &iam_reads,
            // The stack's roles, profiles and boundary: whatever IAM
            // names under its path (`role/`, `instance-profile/`, `policy/`).
            &[n.iam(&format!("*{path}*"))],
            None,
        ),
        statement(
            "AmiParameter",
            &["ssm:GetParameter"],
            &[format!(
                "arn:aws:ssm:{}::parameter{AMI_PARAMETERS}",
                n.region
            )],
            None,
        ),
        // The plan reads the tags of every bucket named like the stack's
        // (its copies in other regions too) to find its own.
        statement(
            "ArtifactBucketRead",
            &s3_scoped,
            &[
                format!("arn:aws:s3:::{any_bucket}"),
                format!("arn:aws:s3:::{any_bucket}/*"),
            ],
            None,
        ),
        // The stack's log groups: read, and in the apply scope written.
        statement(
            "StackLogGroups",
            &n.of(scope, "logs", Access::Read)
                .into_iter()
                .filter(|x| *x != "logs:DescribeLogGroups")
                .chain(n.of(scope, "logs", Access::Write))
                .collect::<Vec<_>>(),
            &[n.log_groups()],
            None,
        ),
    ]
}

/// The record names the stack writes, as Route 53 normalises them for
/// `route53:ChangeResourceRecordSetsNormalizedRecordNames` (lowercase, no
/// final dot; "Using IAM policy conditions for fine-grained access
/// control", Route 53 Developer Guide): the domain (its alias and the
/// `_bookstore-infra` marker) and each name's validation record
/// (`_<token>.<name>`, the wildcard's under its parent).
pub(super) fn record_names(stack: &Stack) -> Vec<String> {
    let Some(d) = &stack.domain else {
        return Vec::new();
    };
    let mut out = vec![d.name.to_string()];
    // The single shape points every name at its address.
    if stack.single.is_some() {
        out.extend(d.alternative_names.iter().map(|n| n.to_string()));
    }
    for n in std::iter::once(&d.name).chain(&d.alternative_names) {
        let base = n.as_str().strip_prefix("*.").unwrap_or(n.as_str());
        out.push(format!("_*.{base}"));
    }
    out.sort();
    out.dedup();
    out
}

/// The statements with the actions the stack's kinds call (a single
/// stack's role makes no load balancer, a scaled one's no volume): an
/// action some other kind calls is dropped, an action no call names (kept
/// by hand) stays; an allow left without actions goes.
pub(super) fn only_what_the_stack_calls(n: &Names, st: Vec<Value>) -> Vec<Value> {
    let mine: std::collections::BTreeSet<&str> = n
        .calls
        .iter()
        .flat_map(|c| c.actions.iter().copied())
        .collect();
    let any: std::collections::BTreeSet<&str> = super::table()
        .iter()
        .flat_map(|c| c.actions.iter().copied())
        .collect();
    st.into_iter()
        .filter_map(|mut s| {
            if s["Effect"] != "Allow" {
                return Some(s);
            }
            let kept: Vec<Value> = super::evaluate::strings(&s["Action"])
                .into_iter()
                .filter(|a| {
                    let grouped = a.contains('*');
                    grouped || mine.contains(a.as_str()) || !any.contains(a.as_str())
                })
                .map(Value::from)
                .collect();
            if kept.is_empty() {
                return None;
            }
            s["Action"] = Value::from(kept);
            Some(s)
        })
        .collect()
}
