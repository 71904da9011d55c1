//! `iam:boundary`: the permissions boundary every role of the stack
//! carries, a customer managed policy.
//!
//! A boundary caps what a role can do, whatever policies it holds ("Permissions
//! boundaries for IAM entities", IAM User Guide). The CI apply role may
//! create and change the stack's roles only with this boundary attached
//! (`iam:PermissionsBoundary`), so a role it makes can never do more than
//! the stack's instances need. The apply role cannot create, change or
//! delete the boundary itself: an administrator makes it once (`bootstrap`,
//! or the first `up` run with administrator credentials), and every later
//! `up` finds it as wanted and makes no change.

use async_trait::async_trait;
use aws_sdk_iam::types::PolicyScopeType;
use serde_json::{json, Value};

use super::gone_ok;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{admin, r, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "iam:boundary";

/// The boundary's policy name: IAM policy names are unique in the account
/// (and IAM is global), so it carries the region like the roles' names.
pub fn name(stack: &str, region: &str) -> String {
    format!("{stack}-{region}-boundary")
}

/// The boundary's ARN (`*` for an unknown account or region).
pub fn arn(stack: &str, account: &str, region: &str) -> String {
    let name = if region == "*" {
        "*".to_string()
    } else {
        name(stack, region)
    };
    format!(
        "arn:aws:iam::{account}:policy{}{name}",
        super::iam::path(stack)
    )
}

/// What the AWS managed policy AmazonSSMManagedInstanceCore grants the
/// Systems Manager agent (Run Command, Session Manager), without
/// `ssm:GetParameter` and `ssm:GetParameters`, which it grants on every
/// parameter of the account and the app does not use.
const AGENT_ACTIONS: &[&str] = &[
    "ssm:DescribeAssociation",
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "ssm:GetManifest",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutInventory",
    "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
];

/// The most any role of the stack may do: read the stack's artifacts,
/// read the stack's database secrets, mount the stack's file system, write
/// to the stack's log groups, and let the Systems Manager agent work. Every
/// resource is named by a pattern known before the stack exists (names,
/// tags), so an administrator can make the boundary before the first `up`.
pub fn document(stack: &str, account: &str, region: &str, bucket: &str) -> Value {
    let tag = format!("aws:ResourceTag/{}", crate::engine::TAG_STACK);
    let logs = format!(
        "arn:aws:logs:{region}:{account}:log-group:{}*",
        super::log_group::prefix(stack)
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StackArtifacts",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            },
            // The master user's secret RDS makes carries the tag
            // `aws:rds:primaryDBInstanceArn` ("Password management with AWS
            // Secrets Manager", Amazon RDS User Guide); the stack's own
            // secrets carry its tag.
            {
                "Sid": "StackDatabaseSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": format!("arn:aws:secretsmanager:{region}:{account}:secret:*"),
                "Condition": {"StringEquals": {
                    "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn":
                        format!("arn:aws:rds:{region}:{account}:db:{stack}-db"),
                }},
            },
            {
                "Sid": "StackSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": format!("arn:aws:secretsmanager:{region}:{account}:secret:*"),
                "Condition": {"StringEquals": {tag.clone(): stack}},
            },
            {
                "Sid": "StackFileSystem",
                "Effect": "Allow",
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": format!("arn:aws:elasticfilesystem:{region}:{account}:file-system/*"),
                "Condition": {"StringEquals": {tag.clone(): stack}},
            },
            {
                "Sid": "StackLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [logs.clone(), format!("{logs}:log-stream:*")],
            },
            // The single shape's instance takes its volume and address,
            // and keeps its ACME account and certificates in the bucket;
            // Data Lifecycle Manager snapshots the volume and expires what
            // it made.
            {
                "Sid": "StackVolumeAndAddress",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:AssociateAddress"],
                "Resource": [
                    format!("arn:aws:ec2:{region}:{account}:volume/*"),
                    format!("arn:aws:ec2:{region}:{account}:elastic-ip/*"),
                ],
                "Condition": {"StringEquals": {tag: stack}},
            },
            {
                "Sid": "StackInstances",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:AssociateAddress"],
                "Resource": format!("arn:aws:ec2:{region}:{account}:instance/*"),
                "Condition": {"ArnLike": {"ec2:InstanceProfile": format!("arn:aws:iam::{account}:instance-profile{}*", super::iam::path(stack))}},
            },
            {
                "Sid": "StackSnapshots",
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:DeleteSnapshot"],
                "Resource": [
                    format!("arn:aws:ec2:{region}:{account}:volume/*"),
                    format!("arn:aws:ec2:{region}:{account}:snapshot/*"),
                ],
                "Condition": {"StringEquals": {format!("aws:ResourceTag/{}", super::volume::SNAPSHOT_TAG): stack}},
            },
            {
                "Sid": "NewSnapshots",
                "Effect": "Allow",
                "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:CreateTags"],
                "Resource": format!("arn:aws:ec2:{region}:{account}:snapshot/*"),
            },
            {
                "Sid": "StackTlsState",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:ListBucket"],
                "Resource": [
                    format!("arn:aws:s3:::{bucket}"),
                    format!("arn:aws:s3:::{bucket}/tls/*"),
                ],
            },
            {
                "Sid": "Look",
                "Effect": "Allow",
                "Action": ["ec2:DescribeVolumes", "ec2:DescribeAddresses", "ec2:DescribeInstances", "ec2:DescribeSnapshots"],
                "Resource": "*",
            },
            {
                "Sid": "SystemsManagerAgent",
                "Effect": "Allow",
                "Action": AGENT_ACTIONS,
                "Resource": "*",
            },
            // Fargate: ECS pulls the app's image from the stack's repository
            // with the task execution role.
            {
                "Sid": "StackImages",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": format!("arn:aws:ecr:{region}:{account}:repository/{}", super::ecr::repository_name(stack)),
            },
            {
                "Sid": "RegistryToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
        ],
    })
}

/// The boundary's wanted properties for a stack in an account and region.
pub fn props(stack: &str, account: &str, region: &str) -> Value {
    json!({
        "name": name(stack, region),
        "path": super::iam::path(stack),
        "document": document(stack, account, region, &super::s3::bucket_name(stack, account, region)),
    })
}

/// Makes the boundary, or brings it to what this version of the tool
/// wants: what `bootstrap` does with an administrator's credentials.
/// Returns the boundary's ARN and whether anything changed.
pub async fn ensure(cloud: &Cloud, stack: &str) -> Result<(String, bool), CloudError> {
    let account = cloud.account().await?;
    let id = "boundary";
    let Value::Object(props) = props(stack, &account, &cloud.region) else {
        unreachable!("props are an object")
    };
    let r = Resolved {
        id: id.to_string(),
        stack: stack.to_string(),
        props,
        tags: crate::engine::owner_tags(stack, id),
        token: crate::engine::client_token(stack, id),
    };
    let found = Boundary.read_all(cloud, stack).await?;
    match found.into_iter().find(|o| o.id == id) {
        None => {
            let made = Boundary.create(cloud, &r).await?;
            Ok((made.physical_id, true))
        }
        Some(current) => {
            let same = current.props.get("document") == r.props.get("document");
            let now = Boundary.update(cloud, &r, &current, &[]).await?;
            Ok((now.physical_id, !same))
        }
    }
}

/// What a caller without the right to make the boundary is told.
fn needs_administrator(id: &str, op: &str, e: CloudError) -> CloudError {
    if e.code().is_some_and(|c| c.contains("AccessDenied")) {
        return CloudError::invalid(
            id,
            format!(
                "{op} was refused ({e}): the permissions boundary of the stack's roles is made \
                 by an administrator, and the CI roles cannot change it; run \
                 `bookstore-infra bootstrap STACK` once with administrator credentials"
            ),
        );
    }
    e
}

pub struct Boundary;

#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("iam", "list_policies", "ListPolicies", &["iam:ListPolicies"]),
    r("iam", "list_policy_tags", "ListPolicyTags", &["iam:ListPolicyTags"]),
    r("iam", "get_policy_version", "GetPolicyVersion", &["iam:GetPolicyVersion"]),
    r("iam", "list_policy_versions", "ListPolicyVersions", &["iam:ListPolicyVersions"]),
    admin("iam", "create_policy", "CreatePolicy", &["iam:CreatePolicy", "iam:TagPolicy"]),
    admin("iam", "create_policy_version", "CreatePolicyVersion", &["iam:CreatePolicyVersion"]),
    admin("iam", "delete_policy_version", "DeletePolicyVersion", &["iam:DeletePolicyVersion"]),
    admin("iam", "delete_policy", "DeletePolicy", &["iam:DeletePolicy"]),
];

/// A policy holds at most five versions ("IAM and AWS STS quotas"): the
/// oldest one not in use goes before a new one is made.
async fn make_room(cloud: &Cloud, id: &str, arn: &str, keep: usize) -> Result<(), CloudError> {
    let versions = cloud
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .ctx(id, "ListPolicyVersions")?;
    let mut old: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
    let excess = (old.len() + 1).saturating_sub(keep);
    for v in old.into_iter().take(excess) {
        cloud
            .iam
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(v.version_id().unwrap_or_default())
            .send()
            .await
            .ctx(id, "DeletePolicyVersion")?;
    }
    Ok(())
}

#[async_trait]
impl ResourceKind for Boundary {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Names are unique: `EntityAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("name"), replace("path"), in_place("document")];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let policies = cloud
            .iam
            .list_policies()
            .scope(PolicyScopeType::Local)
            .path_prefix(super::iam::path(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "ListPolicies")?;
        let mut out = Vec::new();
        for p in &policies {
            let (Some(arn), Some(name)) = (p.arn(), p.policy_name()) else {
                continue;
            };
            let tags = cloud
                .iam
                .list_policy_tags()
                .policy_arn(arn)
                .send()
                .await
                .ctx(KIND, "ListPolicyTags")?;
            let Some(id) = super::owner_id(tags.tags().iter().map(|t| (t.key(), t.value())), stack)
            else {
                continue;
            };
            let version = cloud
                .iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(p.default_version_id().unwrap_or("v1"))
                .send()
                .await
                .ctx(KIND, "GetPolicyVersion")?;
            let document = version
                .policy_version()
                .and_then(|v| v.document())
                .map(super::iam::decode_policy)
                .unwrap_or(Value::Null);
            out.push(
                Observed::new(KIND, id, arn)
                    .prop("name", name)
                    .prop("path", p.path().unwrap_or("/"))
                    .prop("document", document)
                    .attr("arn", arn),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let path = r.str("path")?;
        let document = r.props.get("document").cloned().unwrap_or(Value::Null);
        let made = cloud
            .iam
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document.to_string())
            .description("The most any role of this stack may do")
            .set_tags(Some(super::iam::iam_tags(&r.tags)))
            .send()
            .await;
        let arn = match made {
            Ok(o) => o
                .policy()
                .and_then(|p| p.arn())
                .unwrap_or_default()
                .to_string(),
            Err(e) => {
                let e = api_error(&r.id, "CreatePolicy", e);
                if e.code() != Some("EntityAlreadyExists") {
                    return Err(needs_administrator(&r.id, "CreatePolicy", e));
                }
                // Ours from an interrupted run, or someone else's.
                let found = self.read_all(cloud, &r.stack).await?;
                let ours = found.into_iter().find(|o| o.id == r.id);
                super::adopt_if_ours(
                    r,
                    &format!("an IAM policy named {name}"),
                    ours.as_ref().map(|o| o.id.clone()),
                )?;
                let current = ours.expect("adopted");
                return self.update(cloud, r, &current, &[]).await;
            }
        };
        Ok(Observed::new(KIND, &r.id, &arn)
            .prop("name", name)
            .prop("path", path)
            .prop("document", document)
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let document = r.props.get("document").cloned().unwrap_or(Value::Null);
        if current.props.get("document") == Some(&document) {
            return Ok(current.clone());
        }
        let arn = &current.physical_id;
        make_room(cloud, &r.id, arn, 5)
            .await
            .map_err(|e| needs_administrator(&r.id, "DeletePolicyVersion", e))?;
        cloud
            .iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(document.to_string())
            .set_as_default(true)
            .send()
            .await
            .ctx(&r.id, "CreatePolicyVersion")
            .map_err(|e| needs_administrator(&r.id, "CreatePolicyVersion", e))?;
        Ok(current.clone().prop("document", document))
    }

    /// The boundary is the administrator's: a CI role's `destroy` (which
    /// may not delete it) leaves it and says so; an administrator's
    /// deletes it.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let arn = &current.physical_id;
        let denied = |e: &CloudError| e.code().is_some_and(|c| c.contains("AccessDenied"));
        let kept = || {
            cloud.reporter.note(&format!(
                "kept the permissions boundary {arn}: only an administrator deletes it"
            ));
            Ok(())
        };
        // DeletePolicy refuses a policy with versions besides the default.
        match make_room(cloud, &current.id, arn, 1).await {
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
            Err(e) if denied(&e) => return kept(),
            other => other?,
        }
        match gone_ok(
            cloud
                .iam
                .delete_policy()
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeletePolicy"),
        ) {
            Err(e) if denied(&e) => kept(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_decode_from_url_encoding() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A b"}]});
        let encoded: String = doc
            .to_string()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let decode = super::super::iam::decode_policy;
        assert_eq!(decode(&encoded), doc);
        assert_eq!(decode(&doc.to_string()), doc);
    }

    #[test]
    fn a_refusal_to_make_the_boundary_says_who_makes_it() {
        let refused = CloudError::Api {
            id: "boundary".into(),
            op: "CreatePolicy".into(),
            code: "AccessDenied".into(),
            message: "not authorized".into(),
        };
        let e = needs_administrator("boundary", "CreatePolicy", refused);
        let text = e.to_string();
        assert!(text.contains("bookstore-infra bootstrap STACK"), "{text}");
        assert!(text.contains("administrator"), "{text}");
        let other = CloudError::Api {
            id: "boundary".into(),
            op: "CreatePolicy".into(),
            code: "MalformedPolicyDocument".into(),
            message: "bad".into(),
        };
        let e = needs_administrator("boundary", "CreatePolicy", other);
        assert_eq!(e.code(), Some("MalformedPolicyDocument"), "kept as it was");
    }

    #[test]
    fn the_boundary_is_named_and_found_by_region() {
        assert_eq!(name("shop", "eu-west-1"), "shop-eu-west-1-boundary");
        assert_eq!(
            arn("shop", "123456789012", "eu-west-1"),
            "arn:aws:iam::123456789012:policy/bookstore-infra/shop/shop-eu-west-1-boundary"
        );
        assert_eq!(
            arn("shop", "*", "*"),
            "arn:aws:iam::*:policy/bookstore-infra/shop/*"
        );
    }
}
