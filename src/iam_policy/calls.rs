//! Every AWS call the tool makes, with the IAM actions AWS authorizes it
//! against and who needs it.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use crate::engine::calls::{r, w};

use super::{service, Access, Call, Scope};

/// The SDK calls the tool makes outside the resource kinds (or in more
/// than one), and the IAM actions behind them; each kind lists its own
/// ([`crate::engine::ResourceKind::calls`]).
///
/// Tag-on-create needs the tagging action too: EC2 `ec2:CreateTags`
/// ("Grant permission to tag Amazon EC2 resources during creation"), ELB
/// `elasticloadbalancing:AddTags` ("Identity-based policies for Elastic Load
/// Balancing", tagging on create), RDS `rds:AddTagsToResource`, EFS
/// `elasticfilesystem:TagResource`, ACM `acm:AddTagsToCertificate`, IAM
/// `iam:TagRole` / `iam:TagInstanceProfile`.
/// Creating or updating an Auto Scaling group from a launch template whose
/// instance profile holds a role needs `ec2:RunInstances` and `iam:PassRole`
/// ("Control Amazon EC2 launch template use in Auto Scaling groups"), and so
/// does `AddRoleToInstanceProfile` (`iam:PassRole`). EFS mount targets are
/// network interfaces the caller creates (EFS API reference,
/// CreateMountTarget / DeleteMountTarget / ModifyMountTargetSecurityGroups:
/// "also requires permissions for the following Amazon EC2 actions").
/// S3 names differ: ListObjectsV2 and HeadBucket are `s3:ListBucket`,
/// HeadObject is `s3:GetObject`, (Get|Put)BucketEncryption are
/// `s3:(Get|Put)EncryptionConfiguration`, (Get|Put)PublicAccessBlock are
/// `s3:(Get|Put)BucketPublicAccessBlock`, ListBuckets is
/// `s3:ListAllMyBuckets`, deleting a version is `s3:DeleteObjectVersion`
/// ("Amazon S3 API operations and required permissions").
#[rustfmt::skip]
const SHARED: &[Call] = &[
    // EC2
    r("ec2", "describe_availability_zones", "DescribeAvailabilityZones", &["ec2:DescribeAvailabilityZones"]),
    // Elastic Load Balancing v2
    r("elbv2", "describe_target_health", "DescribeTargetHealth", &["elasticloadbalancing:DescribeTargetHealth"]),
    // EC2 Auto Scaling
    r("autoscaling", "describe_auto_scaling_groups", "DescribeAutoScalingGroups", &["autoscaling:DescribeAutoScalingGroups"]),
    r("autoscaling", "describe_instance_refreshes", "DescribeInstanceRefreshes", &["autoscaling:DescribeInstanceRefreshes"]),
    // RDS
    r("rds", "describe_db_instances", "DescribeDBInstances", &["rds:DescribeDBInstances"]),
    // A final snapshot is a snapshot the caller creates.
    // EFS
    // ACM
    r("acm", "describe_certificate", "DescribeCertificate", &["acm:DescribeCertificate"]),
    // IAM
    // S3: the artifact bucket, and the run lock's bucket and object (the
    // bucket kind makes buckets; `bootstrap` the lock's).
    r("s3", "get_object", "GetObject", &["s3:GetObject"]),
    r("s3", "list_objects_v2", "ListObjectsV2", &["s3:ListBucket"]),
    w("s3", "delete_object", "DeleteObject", &["s3:DeleteObject", "s3:DeleteObjectVersion"]),
    w("s3", "put_object", "PutObject", &["s3:PutObject"]),
    // Route 53
    r("route53", "list_hosted_zones_by_name", "ListHostedZonesByName", &["route53:ListHostedZonesByName"]),
    r("route53", "list_resource_record_sets", "ListResourceRecordSets", &["route53:ListResourceRecordSets"]),
    w("route53", "change_resource_record_sets", "ChangeResourceRecordSets", &["route53:ChangeResourceRecordSets"]),
    r("route53", "get_change", "GetChange", &["route53:GetChange"]),
    // SSM: the public AMI parameter; `exec` reads what a command on an
    // instance printed (the group's kind sends it).
    r("ssm", "get_parameter", "GetParameter", &["ssm:GetParameter"]),
    r("ssm", "get_command_invocation", "GetCommandInvocation", &["ssm:GetCommandInvocation"]),
    r("ssm", "describe_instance_information", "DescribeInstanceInformation", &["ssm:DescribeInstanceInformation"]),
    // CloudWatch Logs: the app's log group; `logs` reads its events.
    r("logs", "filter_log_events", "FilterLogEvents", &["logs:FilterLogEvents"]),
    // STS: GetCallerIdentity needs no permission ("GetCallerIdentity", STS
    // API reference); it is listed so the table covers every call.
    r("sts", "get_caller_identity", "GetCallerIdentity", &["sts:GetCallerIdentity"]),
];

/// The actions that authorize the tags a create carries, in the services
/// whose creates the stack's tag scopes (the rows' first actions are the
/// creates themselves).
pub(super) const TAG_ON_CREATE: &[&str] = &[
    "ec2:CreateTags",
    "elasticloadbalancing:AddTags",
    "autoscaling:CreateOrUpdateTags",
    "rds:AddTagsToResource",
    "elasticfilesystem:TagResource",
    "acm:AddTagsToCertificate",
    "dlm:TagResource",
];

/// Reads only the apply scope needs: `exec`'s (Run Command output can hold
/// anything an instance printed) and the new secret's password.
pub(super) const APPLY_ONLY_READS: &[&str] = &[
    "ssm:GetCommandInvocation",
    "ssm:DescribeInstanceInformation",
    "secretsmanager:GetRandomPassword",
];

/// The row for an API operation of a service (IAM prefix: `ec2`,
/// `elasticloadbalancing`, `elasticfilesystem`...), as a request names it.
pub fn call(service_prefix: &str, operation: &str) -> Option<&'static Call> {
    table()
        .iter()
        .find(|c| service(c.client) == Some(service_prefix) && c.operation == operation)
}

/// Every IAM action a scope needs.
pub fn actions(scope: Scope) -> BTreeSet<String> {
    actions_in(table(), scope)
}

/// The IAM actions `calls` need in a scope.
pub fn actions_in(calls: &[Call], scope: Scope) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|c| match c.access {
            Access::Read => {
                scope == Scope::Apply || !c.actions.iter().any(|a| APPLY_ONLY_READS.contains(a))
            }
            Access::Write => scope == Scope::Apply,
            // The boundary's changes: an administrator's, never CI's.
            Access::Admin => false,
        })
        .flat_map(|c| c.actions.iter().map(|a| a.to_string()))
        .collect()
}

/// The actions only an administrator's credentials need (`bootstrap`).
pub fn admin_actions() -> BTreeSet<String> {
    table()
        .iter()
        .filter(|c| c.access == Access::Admin)
        .flat_map(|c| c.actions.iter().map(|a| a.to_string()))
        .collect()
}

/// The calls a stack made of `kinds` needs: the shared rows, those kinds'
/// own, and the reads of every other kind (a plan looks for whatever the
/// stack may own, left by another shape or an earlier version).
pub fn table_for(kinds: &BTreeSet<&str>) -> Vec<Call> {
    let mut all = SHARED.to_vec();
    for k in crate::resources::registry().kinds() {
        let mine = kinds.contains(k.kind());
        all.extend(
            k.calls()
                .iter()
                .filter(|c| mine || c.access == Access::Read),
        );
    }
    all
}

/// Every call the tool makes: the shared rows and every kind's own.
pub fn table() -> &'static [Call] {
    static ALL: LazyLock<Vec<Call>> = LazyLock::new(|| {
        let mut all = SHARED.to_vec();
        for k in crate::resources::registry().kinds() {
            all.extend_from_slice(k.calls());
        }
        all
    });
    &ALL
}
