//! Lost answers and client tokens.
//!
//! A call can do its work and its answer never reach the caller: the
//! connection drops, or the service answers 500 after the change was made
//! ("Error retries and exponential backoff in AWS": a 5xx "does not mean
//! the request failed"). The SDK retries the very same request, which then
//! meets the first attempt's work: "already exists", a CIDR or name
//! conflict, NotFound for a delete, or a second resource where the API
//! has no way to tell (CreateVpc, AllocateAddress).
//!
//! Where an API takes a client token, AWS answers a repeat with the first
//! answer instead ("Ensuring idempotency in Amazon EC2 API requests": "If
//! you repeat a request with the same client token and the same
//! parameters, the same response is returned"; a repeat with other
//! parameters is refused with `IdempotentParameterMismatch`). ACM's
//! RequestCertificate does the same for its `IdempotencyToken` within an
//! hour, EFS's CreateAccessPoint for its `ClientToken`. ELBv2's creates
//! are idempotent by name, or by load balancer and port for listeners ("If
//! you attempt to create multiple load balancers with the same settings,
//! each call succeeds"; other settings are `DuplicateLoadBalancerName`,
//! `DuplicateTargetGroupName`, `DuplicateListener`). The emulator ignores
//! tokens and makes a second listener; this module answers repeats as AWS
//! does.
//!
//! The repeat of a delete whose answer was lost meets a thing that is gone,
//! and AWS says so in each service's own words ([`gone`]): EC2's
//! `Invalid<Thing>ID.NotFound`, RDS's `DBInstanceNotFound`, EFS's
//! `FileSystemNotFound`, IAM's `NoSuchEntity`, Auto Scaling's
//! `ValidationError` ("AutoScalingGroup name not found"), Route 53's
//! `InvalidChangeBatch` ("... but it was not found"). The emulator's
//! answers differ (some succeed, some use other codes), so the proxy gives
//! AWS's.

use std::collections::BTreeMap;

use super::super::http::Response;
use super::errors::error;
use super::{Call, State};

/// The parameters that carry a client token, by service.
fn token_of(c: &Call) -> Option<&str> {
    match c.service.as_str() {
        "ec2" => c.get("ClientToken"),
        "acm" => c.get("IdempotencyToken"),
        "elasticfilesystem" if c.op == "CreateAccessPoint" => c.get("ClientToken"),
        "ecs" if c.op == "CreateService" => c.get("clientToken"),
        _ => None,
    }
}

/// What makes a request idempotent, and how AWS refuses the same key with
/// other parameters.
struct Idempotent {
    key: String,
    /// The error code and message of a reuse with other parameters.
    mismatch: (&'static str, &'static str),
    /// What a repeat answered with the first answer is counted as.
    counted: &'static str,
}

/// A client token; or, for ELBv2's creates, the name (the load balancer
/// and port for a listener).
fn idempotent(c: &Call) -> Option<Idempotent> {
    const OTHER_SETTINGS: &str = "A resource with the same name or port exists with other settings";
    let by_name = |key: String, code| Idempotent {
        key,
        mismatch: (code, OTHER_SETTINGS),
        counted: "idempotent_create",
    };
    match (c.service.as_str(), c.op.as_str()) {
        ("elasticloadbalancing", "CreateLoadBalancer") => Some(by_name(
            format!("lb:{}", c.get("Name")?),
            "DuplicateLoadBalancerName",
        )),
        ("elasticloadbalancing", "CreateTargetGroup") => Some(by_name(
            format!("tg:{}", c.get("Name")?),
            "DuplicateTargetGroupName",
        )),
        ("elasticloadbalancing", "CreateListener") => Some(by_name(
            format!("listener:{}:{}", c.get("LoadBalancerArn")?, c.get("Port")?),
            "DuplicateListener",
        )),
        _ => Some(Idempotent {
            key: format!("{}:{}:{}", c.service, c.op, token_of(c)?),
            mismatch: (
                "IdempotentParameterMismatch",
                "The client token you have provided is associated with a resource that is already deleted or with different parameters. Please use a different client token.",
            ),
            counted: "client_token",
        }),
    }
}

/// A request's parameters but its token, to tell a repeat from a reuse.
fn fingerprint(c: &Call) -> BTreeMap<String, String> {
    c.form
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "ClientToken" | "IdempotencyToken" | "CreationToken" | "clientToken"
            )
        })
        .cloned()
        .collect()
}

/// An idempotent request already answered: its first answer, or AWS's
/// refusal when the parameters differ.
pub(super) fn repeated(c: &Call, st: &mut State) -> Option<Response> {
    let i = idempotent(c)?;
    let (params, first) = st.answered.get(&i.key)?.clone();
    if params != fingerprint(c) {
        st.count("idempotent_mismatch");
        let (code, message) = i.mismatch;
        return Some(error(&c.service, 400, code, message));
    }
    st.count(i.counted);
    Some(first)
}

/// Remembers the first answer to an idempotent request; a deleted load
/// balancer, target group or listener frees its name or port (a load
/// balancer's listeners go with it).
pub(super) fn remember(c: &Call, resp: &Response, st: &mut State) {
    if resp.status >= 300 {
        return;
    }
    if let Some(i) = idempotent(c) {
        st.answered
            .entry(i.key)
            .or_insert_with(|| (fingerprint(c), resp.clone()));
    } else if c.service == "elasticloadbalancing" && c.op.starts_with("Delete") {
        let arn = ["LoadBalancerArn", "TargetGroupArn", "ListenerArn"]
            .iter()
            .find_map(|k| c.get(k));
        if let Some(arn) = arn {
            st.answered.retain(|_, (_, r)| !r.text().contains(arn));
        }
    }
}

/// AWS's answer to a delete of something already gone: (status, code,
/// message), from each API reference's "Errors" and the services' common
/// errors. `None` where AWS documents that the delete succeeds anyway
/// (DeleteLoadBalancer, DeleteTargetGroup, DeleteObject, DeleteVpcEndpoints
/// which lists failures in its answer) or the tool does not delete that way.
fn gone(c: &Call) -> Option<(u16, &'static str, String)> {
    let id = |k: &str| c.get(k).unwrap_or_default().to_string();
    let ec2 = |code, what: &str, k: &str| {
        Some((
            400,
            code,
            format!("The {what} ID '{}' does not exist", id(k)),
        ))
    };
    match (c.service.as_str(), c.op.as_str()) {
        ("ec2", "DeleteVpc") => ec2("InvalidVpcID.NotFound", "vpc", "VpcId"),
        ("ec2", "DeleteSubnet") => ec2("InvalidSubnetID.NotFound", "subnet", "SubnetId"),
        ("ec2", "DeleteSecurityGroup") => Some((
            400,
            "InvalidGroup.NotFound",
            format!("The security group '{}' does not exist", id("GroupId")),
        )),
        ("ec2", "DeleteInternetGateway" | "DetachInternetGateway") => ec2(
            "InvalidInternetGatewayID.NotFound",
            "internetGateway",
            "InternetGatewayId",
        ),
        ("ec2", "DeleteRouteTable") => {
            ec2("InvalidRouteTableID.NotFound", "routeTable", "RouteTableId")
        }
        ("ec2", "DisassociateRouteTable") => ec2(
            "InvalidAssociationID.NotFound",
            "association",
            "AssociationId",
        ),
        ("ec2", "ReleaseAddress") => {
            ec2("InvalidAllocationID.NotFound", "allocation", "AllocationId")
        }
        ("ec2", "DeleteNatGateway") => Some((
            400,
            "NatGatewayNotFound",
            format!("The Nat Gateway {} was not found", id("NatGatewayId")),
        )),
        ("ec2", "DeleteLaunchTemplate") => Some((
            400,
            "InvalidLaunchTemplateId.NotFound",
            format!(
                "The specified launch template, with template ID {}, does not exist.",
                id("LaunchTemplateId")
            ),
        )),
        ("ec2", "RevokeSecurityGroupIngress" | "RevokeSecurityGroupEgress") => Some((
            400,
            "InvalidPermission.NotFound",
            "The specified rule does not exist in this security group.".into(),
        )),
        ("rds", "DeleteDBInstance") => Some((
            404,
            "DBInstanceNotFound",
            format!("DBInstance {} not found.", id("DBInstanceIdentifier")),
        )),
        ("rds", "DeleteDBSubnetGroup") => Some((
            404,
            "DBSubnetGroupNotFoundFault",
            format!("DB Subnet group '{}' not found.", id("DBSubnetGroupName")),
        )),
        ("elasticfilesystem", "DeleteFileSystem") => Some((
            404,
            "FileSystemNotFound",
            format!("File system '{}' does not exist.", id("Id")),
        )),
        ("elasticfilesystem", "DeleteMountTarget") => Some((
            404,
            "MountTargetNotFound",
            format!("Mount target '{}' does not exist.", id("Id")),
        )),
        ("elasticfilesystem", "DeleteAccessPoint") => Some((
            404,
            "AccessPointNotFound",
            format!("Access point '{}' does not exist.", id("Id")),
        )),
        (
            "iam",
            "DeleteRole"
            | "DeleteInstanceProfile"
            | "RemoveRoleFromInstanceProfile"
            | "DeleteRolePolicy"
            | "DetachRolePolicy",
        ) => Some((
            404,
            "NoSuchEntity",
            format!(
                "The role with name {} cannot be found.",
                c.get("RoleName")
                    .or(c.get("InstanceProfileName"))
                    .unwrap_or_default()
            ),
        )),
        ("acm", "DeleteCertificate") => Some((
            400,
            "ResourceNotFoundException",
            format!("Could not find certificate {}.", id("CertificateArn")),
        )),
        ("autoscaling", "DeleteAutoScalingGroup") => Some((
            400,
            "ValidationError",
            format!(
                "AutoScalingGroup name not found - AutoScalingGroup {} not found",
                id("AutoScalingGroupName")
            ),
        )),
        ("logs", "DeleteLogGroup") => Some((
            400,
            "ResourceNotFoundException",
            "The specified log group does not exist.".into(),
        )),
        ("ssm", "DeleteParameter") => Some((400, "ParameterNotFound", String::new())),
        ("ecs", "DeleteService") => {
            Some((400, "ServiceNotFoundException", "Service not found.".into()))
        }
        ("ecs", "DeleteCluster") => {
            Some((400, "ClusterNotFoundException", "Cluster not found.".into()))
        }
        ("application-autoscaling", "DeregisterScalableTarget") => Some((
            400,
            "ObjectNotFoundException",
            format!(
                "No scalable target found for service namespace: ecs, resource ID: {}",
                id("ResourceId")
            ),
        )),
        ("ecr", "DeleteRepository") => Some((
            400,
            "RepositoryNotFoundException",
            format!(
                "The repository with name '{}' does not exist in the registry",
                id("repositoryName")
            ),
        )),
        ("s3", "DeleteBucket") => Some((
            404,
            "NoSuchBucket",
            "The specified bucket does not exist".into(),
        )),
        ("elasticloadbalancing", "DeleteListener") => Some((
            400,
            "ListenerNotFound",
            "One or more listeners not found".into(),
        )),
        ("route53", "ChangeResourceRecordSets") if c.get("ChangeAction") == Some("DELETE") => {
            Some((
                400,
                "InvalidChangeBatch",
                "[Tried to delete resource record set but it was not found]".into(),
            ))
        }
        _ => None,
    }
}

/// A request as a whole: what tells the repeat of a delete.
fn whole(c: &Call) -> String {
    let mut form = c.form.clone();
    form.sort();
    format!("{}:{}:{form:?}", c.service, c.op)
}

/// The repeat of a delete whose answer was lost: the thing is gone, and
/// AWS answers so in the service's own words. Once: a later delete of the
/// same name (of a thing made again since) is a delete like any other.
pub(super) fn gone_again(c: &Call, st: &mut State) -> Option<Response> {
    if !st.gone.remove(&whole(c)) {
        return None;
    }
    let (status, code, message) = gone(c)?;
    st.count("not_found_on_delete");
    Some(error(&c.service, status, code, &message))
}

/// The key of a changing operation, for losing one answer of each: a Route
/// 53 change batch counts by its action.
fn op_key(c: &Call) -> String {
    match c.get("ChangeAction") {
        Some(a) => format!("{}:{}:{a}", c.service, c.op),
        None => format!("{}:{}", c.service, c.op),
    }
}

/// Whether `c` changes something, so that losing its answer matters: the
/// creates and deletes, and what attaches, associates or authorizes.
fn changes(c: &Call) -> bool {
    const VERBS: [&str; 11] = [
        "Create",
        "Allocate",
        "Request",
        "Delete",
        "Release",
        "Authorize",
        "Attach",
        "Associate",
        "Register",
        "Deregister",
        "Terminate",
    ];
    VERBS.iter().any(|v| c.op.starts_with(v))
        || c.op == "ChangeResourceRecordSets"
        || (c.service == "ecr"
            && matches!(
                c.op.as_str(),
                "InitiateLayerUpload" | "UploadLayerPart" | "CompleteLayerUpload" | "PutImage"
            ))
}

/// The work was done; the answer is lost on the way back: the first
/// successful request of each changing operation is answered as a server
/// failure, which the SDK retries.
pub(super) fn lose(c: &Call, resp: &Response, st: &mut State) -> Option<Response> {
    if resp.status >= 300 || !changes(c) {
        return None;
    }
    if !st.lost.insert(op_key(c)) {
        return None;
    }
    st.count("lost_answers");
    if gone(c).is_some() {
        st.gone.insert(whole(c));
    }
    // EC2 and S3 call it InternalError, the other services InternalFailure.
    let code = if matches!(c.service.as_str(), "ec2" | "s3") {
        "InternalError"
    } else {
        "InternalFailure"
    };
    Some(error(
        &c.service,
        500,
        code,
        "We encountered an internal error. Please try again.",
    ))
}
