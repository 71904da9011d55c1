//! The statements of the plan and apply policies, each bounded so that
//! whoever holds the role can act on this stack only (the escalation tests
//! in `escalation.rs` read each statement as an attacker would).

use serde_json::{json, Value};

use super::calls::{APPLY_ONLY_READS, TAG_ON_CREATE};
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
    fn of(&self, scope: Scope, service: &str, access: Access) -> Vec<&'static str> {
        super::of(&self.calls, scope, service, access)
    }

    fn has(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    fn tag(&self, prefix: &str) -> String {
        format!("{prefix}/{TAG_STACK}")
    }

    fn tagged(&self) -> Value {
        json!({ "StringEquals": { self.tag("aws:RequestTag"): self.name } })
    }

    fn arn(&self, service: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.account)
    }

    fn iam(&self, rest: &str) -> String {
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
    fn instance_role(&self) -> String {
        let path = iam::path(self.name);
        if self.region == "*" {
            return self.iam(&format!("role{path}*"));
        }
        // The topology names it `<stack>-<region>-app-role`: a stack name
        // (32 at most) and a region always fit IAM's 64 characters.
        self.iam(&format!("role{path}{}-{}-app-role", self.name, self.region))
    }

    /// The single shape's snapshot role, which Data Lifecycle Manager assumes.
    fn snapshot_role(&self) -> String {
        let path = iam::path(self.name);
        if self.region == "*" {
            return self.iam(&format!("role{path}*-snapshots-role"));
        }
        self.iam(&format!(
            "role{path}{}-{}-snapshots-role",
            self.name, self.region
        ))
    }

    fn log_groups(&self) -> String {
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
            &[
                n.iam(&format!("role{path}*")),
                n.iam(&format!("instance-profile{path}*")),
                n.iam(&format!("policy{path}*")),
            ],
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

/// The create actions a tag-on-create statement names: `Create*` for
/// those named so (any create the role may make is the stack's), the
/// others by name.
fn create_actions(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .map(|a| {
            if a.starts_with("Create") {
                "Create*".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The statements only the apply scope holds: writes.
pub(super) fn writes(n: &Names) -> Vec<Value> {
    let (name, a, region) = (n.name, n.account, n.region);
    let services = [
        "ec2",
        "elasticloadbalancing",
        "autoscaling",
        "rds",
        "elasticfilesystem",
        "acm",
        "dlm",
    ];
    // Each service's ARNs bound the actions to the account and region
    // (ACM's to the account: stale certificates are found in every region).
    // The actions name their service, so one pattern serves all five.
    let arns: Vec<String> = vec![n.arn("*", "*"), format!("arn:aws:acm:*:{a}:certificate/*")];
    // Launching goes through the stack's launch template only; network
    // interfaces are made by EFS for its mount targets: each has a
    // statement of its own below.
    let own_statement = [
        "ec2:RunInstances",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DescribeNetworkInterfaces",
    ];
    let creates: Vec<&str> = n
        .calls
        .iter()
        .filter(|c| {
            c.access == Access::Write
                && !matches!(c.client, "iam" | "s3")
                && c.actions[1..].iter().any(|x| TAG_ON_CREATE.contains(x))
        })
        .map(|c| c.actions[0])
        .filter(|x| !own_statement.contains(x) && !x.starts_with("iam:"))
        .collect();
    let creates_of = |svc: &str| -> Vec<String> {
        creates
            .iter()
            .filter_map(|x| x.strip_prefix(&format!("{svc}:")))
            .map(String::from)
            .collect()
    };
    // On what the stack owns: its changes and deletes, and the launches
    // and mount-target interfaces that name its launch template, subnets
    // and security groups ("Control Amazon EC2 launch template usage in
    // Auto Scaling groups").
    let launch_on_owned = [
        "ec2:RunInstances",
        "ec2:CreateNetworkInterface",
        "ec2:ModifyNetworkInterfaceAttribute",
    ];
    let writes: Vec<&str> = services
        .iter()
        .chain(&["secretsmanager"])
        .flat_map(|svc| n.of(Scope::Apply, svc, Access::Write))
        .filter(|x| !own_statement.contains(x) || launch_on_owned.contains(x))
        .filter(|x| *x != "secretsmanager:CreateSecret")
        .collect();
    let (tagging, changes): (Vec<&str>, Vec<&str>) = writes
        .into_iter()
        .partition(|x| TAG_ON_CREATE.contains(x) || *x == "secretsmanager:TagResource");
    let changes: Vec<&str> = changes
        .into_iter()
        .filter(|x| !creates.contains(x))
        .collect();
    let rds = |x: &str| n.arn("rds", x);
    let path = iam::path(name);
    let role = n.iam(&format!("role{path}*"));
    let with_boundary = json!({ "StringEquals": { "iam:PermissionsBoundary": n.boundary() } });
    let request_tag = n.tag("aws:RequestTag");
    let slr_services = [
        "autoscaling.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "rds.amazonaws.com",
        "elasticfilesystem.amazonaws.com",
    ];
    let ec2 = |x: &str| n.arn("ec2", x);
    let secrets = n.arn(
        "secretsmanager",
        &format!("secret:bookstore-infra/{name}/*"),
    );
    let mut ec2_creates = creates_of("ec2");
    // Auto Scaling launches tagged instances from the template.
    ec2_creates.push("RunInstances".into());
    let iam_writes = n.of(Scope::Apply, "iam", Access::Write);
    let bounded_iam = [
        "iam:CreateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePermissionsBoundary",
    ];
    let other_iam: Vec<&str> = iam_writes
        .iter()
        .copied()
        .filter(|x| {
            !bounded_iam.contains(x)
                && !matches!(
                    *x,
                    "iam:CreateServiceLinkedRole" | "iam:AttachRolePolicy" | "iam:PassRole"
                )
        })
        .collect();

    let mut st = vec![
        // New resources carry the stack's tag from their first moment.
        // What a create names beside the new resource (the VPC of a
        // subnet, the load balancer of a listener) is the stack's, or
        // untagged (the README's threat model). ACM has no create-action
        // key for a certificate's tags: a certificate another stack's tag
        // claims cannot be tagged, an untagged one can (the threat model).
        // Some creates take no resource (RequestCertificate,
        // CreateFileSystem): the statement names `*`, bound to the
        // stack's region by `aws:RequestedRegion` where it is known.
        statement(
            "CreateTagged",
            &creates
                .iter()
                .copied()
                .chain(["acm:AddTagsToCertificate"])
                .collect::<Vec<_>>(),
            &["*".to_string()],
            Some({
                let mut c = json!({
                    "StringEquals": { request_tag.clone(): name },
                    "StringEqualsIfExists": { n.tag("aws:ResourceTag"): name },
                });
                if region != "*" {
                    c["StringEquals"]["aws:RequestedRegion"] = json!(region);
                }
                c
            }),
        ),
        // The tags of a create are authorized as a tagging action of its
        // own, allowed here only as part of that create: the service's
        // create-action key where it has one ("Grant permission to tag
        // Amazon EC2 resources during creation"; "ELB API permissions to
        // tag resources during creation"; "Using tags with Amazon EFS").
        statement(
            "Ec2TagOnCreate",
            &["ec2:CreateTags"],
            &["*".to_string()],
            Some(json!({
                "StringLike": { "ec2:CreateAction": create_actions(&ec2_creates) },
                "StringEquals": { request_tag.clone(): name },
            })),
        ),
        statement(
            "ElbTagOnCreate",
            &["elasticloadbalancing:AddTags"],
            &["*".to_string()],
            Some(json!({
                "StringLike": { "elasticloadbalancing:CreateAction": create_actions(&creates_of("elasticloadbalancing")) },
                "StringEquals": { request_tag.clone(): name },
            })),
        ),
        statement(
            "EfsTagOnCreate",
            &["elasticfilesystem:TagResource"],
            &["*".to_string()],
            Some(json!({
                "StringLike": { "elasticfilesystem:CreateAction": create_actions(&creates_of("elasticfilesystem")) },
                "StringEquals": { request_tag.clone(): name },
            })),
        ),
        // RDS and Auto Scaling have no create-action key: their ARNs hold
        // the names, and only the stack's own names may be tagged so.
        // and the app's database password is made under the stack's
        // secret names.
        statement(
            "NamedTagOnCreate",
            &[
                "rds:AddTagsToResource",
                "autoscaling:CreateOrUpdateTags",
                "secretsmanager:CreateSecret",
                "secretsmanager:TagResource",
            ],
            &[
                secrets.clone(),
                rds(&format!("db:{name}-db")),
                rds(&format!("subgrp:{name}-db-subnets")),
                rds(&format!("pg:{name}-db-*")),
                n.arn(
                    "autoscaling",
                    &format!("autoScalingGroup:*:autoScalingGroupName/{name}-app"),
                ),
            ],
            Some(n.tagged()),
        ),
        // What the stack owns it changes and deletes; its tags it may
        // change, but never hand the resource to another stack.
        statement(
            "ManageOwned",
            &changes.iter().chain(&tagging).copied().collect::<Vec<_>>(),
            &arns,
            Some(json!({
                "StringEquals": { n.tag("aws:ResourceTag"): name },
                "StringEqualsIfExists": { request_tag.clone(): name },
            })),
        ),
        // Instances start only from a launch template (ManageOwned: the
        // stack's), with the stack's role.
        statement(
            "LaunchedInstances",
            &["ec2:RunInstances"],
            &[
                ec2("instance/*"),
                ec2("volume/*"),
                ec2("network-interface/*"),
                format!("arn:aws:ec2:{region}::image/*"),
            ],
            Some(json!({ "ArnLike": { "ec2:LaunchTemplate": ec2("launch-template/*") } })),
        ),
        statement(
            "PassRoleToEc2",
            &["iam:PassRole"],
            &[n.instance_role()],
            Some(json!({ "StringEquals": { "iam:PassedToService": "ec2.amazonaws.com" } })),
        ),
        // Data Lifecycle Manager acts with the stack's snapshot role only.
        statement(
            "PassRoleToDlm",
            if n.has(crate::resources::dlm_policy::KIND) {
                &["iam:PassRole"]
            } else {
                &[]
            },
            &[n.snapshot_role()],
            Some(json!({ "StringEquals": { "iam:PassedToService": "dlm.amazonaws.com" } })),
        ),
        // DLM has no create-action key: a policy's tags are allowed as the
        // stack's, on a policy no other stack's tag claims.
        statement(
            "DlmTagOnCreate",
            &["dlm:TagResource"],
            &[n.arn("dlm", "policy/*")],
            Some(json!({
                "StringEquals": { request_tag.clone(): name },
                "StringEqualsIfExists": { n.tag("aws:ResourceTag"): name },
            })),
        ),
        // EFS makes a mount target's interface with the caller's rights:
        // only in the stack's subnets and security groups (ManageOwned).
        // Deleting one,
        // and changing one's attributes other than its security groups,
        // take no condition that ties the interface to the stack (the
        // README's threat model).
        statement(
            "MountTargetEnis",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:ModifyNetworkInterfaceAttribute",
            ],
            &[ec2("network-interface/*")],
            None,
        ),
        // The master user's secret RDS makes and deletes with the
        // caller's rights: never one another database's tag claims.
        statement(
            "RdsManagedSecret",
            &[
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:TagResource",
            ],
            &[n.arn("secretsmanager", "secret:rds!*")],
            Some(json!({ "StringEqualsIfExists": {
                "aws:ResourceTag/aws:rds:primaryDBInstanceArn": rds(&format!("db:{name}-db")),
            }})),
        ),
        // The default option group a database uses, its parameter group,
        // and its final snapshot.
        statement(
            "RdsGroupsSnapshots",
            &[
                "rds:CreateDBInstance",
                "rds:ModifyDBInstance",
                "rds:CreateDBSnapshot",
            ],
            &[rds("pg:*"), rds("og:*"), rds("snapshot:*")],
            None,
        ),
        // Roles only with the stack's boundary, which caps whatever
        // policy they are given.
        statement(
            "RolesWithBoundary",
            &bounded_iam
                .iter()
                .copied()
                .filter(|x| iam_writes.contains(x))
                .collect::<Vec<_>>(),
            std::slice::from_ref(&role),
            Some(with_boundary.clone()),
        ),
        // The only managed policy the stack attaches to its role.
        statement(
            "AttachSsmCore",
            &["iam:AttachRolePolicy"],
            std::slice::from_ref(&role),
            Some(json!({
                "StringEquals": { "iam:PermissionsBoundary": n.boundary() },
                "ArnLike": { "iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" },
            })),
        ),
        statement(
            "StackRolesProfiles",
            &other_iam,
            &[role, n.iam(&format!("instance-profile{path}*"))],
            None,
        ),
        statement(
            "ServiceLinkedRoles",
            &["iam:CreateServiceLinkedRole"],
            &[n.iam("role/aws-service-role/*")],
            Some(json!({ "StringEquals": { "iam:AWSServiceName": slr_services } })),
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
            "RunCommandOnStack",
            &["ssm:SendCommand"],
            &[ec2("instance/*")],
            Some(json!({ "StringEquals": { n.tag("ssm:resourceTag"): name } })),
        ),
        statement(
            "ArtifactBucketWrite",
            &n.of(Scope::Apply, "s3", Access::Write),
            &[
                format!("arn:aws:s3:::{}", n.artifact_bucket()),
                format!("arn:aws:s3:::{}/*", n.artifact_bucket()),
            ],
            None,
        ),
    ];
    let lock = crate::lock::bucket_name(a, region);
    st.push(statement(
        "RunLock",
        // The lock bucket is shared by the account's stacks in the region:
        // `bootstrap` makes it; a CI role only reads and writes its own
        // stack's lock object in it.
        &[
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
        ],
        &[
            format!("arn:aws:s3:::{lock}"),
            format!("arn:aws:s3:::{lock}/{}", crate::lock::object_key(name)),
        ],
        None,
    ));
    let names = record_names(n.stack);
    if !names.is_empty() {
        st.push(statement(
            "StackDnsRecords",
            &n.of(Scope::Apply, "route53", Access::Write),
            &["arn:aws:route53:::hostedzone/*".to_string()],
            Some(json!({
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
                },
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsRecordTypes": ["A", "CNAME", "TXT"],
                },
            })),
        ));
    }
    st.extend(denials(n));
    st
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

/// What no statement may ever allow, whatever else the role is given:
/// changing or removing the boundary, or becoming another role (the tool
/// assumes none).
fn denials(n: &Names) -> Vec<Value> {
    let mut s = statement(
        "DenyEscapes",
        &[
            "iam:CreatePolicyVersion",
            "iam:DeletePolicy*",
            "iam:SetDefaultPolicyVersion",
            "iam:DeleteRolePermissionsBoundary",
            "sts:AssumeRole",
        ],
        &[n.boundary(), n.iam("role/*")],
        None,
    );
    s["Effect"] = json!("Deny");
    vec![s]
}
