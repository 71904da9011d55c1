//! The statements only the apply policy holds: writes, each bounded to
//! the stack (what it owns by tag, what it names by name or path), and the
//! denials no grant elsewhere lifts.

use serde_json::{json, Value};

use super::calls::TAG_ON_CREATE;
use super::document::statement;
use super::statements::{record_names, Names};
use super::{Access, Scope};
use crate::resources::iam;

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
    let mut slr_services = vec![
        "elasticloadbalancing.amazonaws.com",
        "rds.amazonaws.com",
        "elasticfilesystem.amazonaws.com",
    ];
    // Auto Scaling, ECS and the scaling of ECS services act through
    // roles of their own.
    if n.has(crate::resources::autoscaling_group::KIND) {
        slr_services.insert(0, "autoscaling.amazonaws.com");
    }
    if n.has(crate::resources::ecs_service::KIND) {
        slr_services.extend([
            "ecs.amazonaws.com",
            "ecs.application-autoscaling.amazonaws.com",
        ]);
    }
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

    // Instances (a launch template and its profile); Fargate has none.
    let instances = n.has(iam::PROFILE);
    // `exec` on instances: Run Command (on Fargate, ECS Exec).
    let send_command: Vec<&str> = if instances {
        vec!["ssm:SendCommand"]
    } else {
        Vec::new()
    };
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
            if instances { &["iam:PassRole"] } else { &[] },
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
            &send_command,
            &[format!("arn:aws:ssm:{region}::document/AWS-RunShellScript")],
            None,
        ),
        statement(
            "RunCommandOnStack",
            &send_command,
            &[ec2("instance/*")],
            Some(json!({ "StringEquals": { n.tag("ssm:resourceTag"): name } })),
        ),
        statement(
            "ArtifactBucketWrite",
            &if n.has(crate::resources::s3::BUCKET) {
                n.of(Scope::Apply, "s3", Access::Write)
            } else {
                Vec::new()
            },
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
            "s3:DeleteObjectVersion",
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
