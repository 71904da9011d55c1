//! What a call to AWS can answer besides success, and which of those
//! answers are worth waiting through: not yet visible, throttled, failed
//! on the way.

use std::fmt::Debug;
use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CloudError {
    /// The provider refused or failed a call.
    #[error("{id}: {op} failed: {code}: {message}")]
    Api {
        id: String,
        op: String,
        code: String,
        message: String,
    },
    /// A resource's own properties are unusable.
    #[error("{id}: {message}")]
    Invalid { id: String, message: String },
    #[error("{id}: gave up after {waited:?} waiting for {what}")]
    Timeout {
        id: String,
        what: String,
        waited: Duration,
    },
}

impl CloudError {
    pub fn invalid(id: &str, message: impl Into<String>) -> Self {
        CloudError::Invalid {
            id: id.into(),
            message: message.into(),
        }
    }

    /// The provider's error code, when the provider answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The provider's error message, when the provider answered.
    pub fn message(&self) -> Option<&str> {
        match self {
            CloudError::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The provider answered "not visible yet" (see [`not_yet_visible`]).
    pub fn is_not_yet_visible(&self) -> bool {
        match self {
            CloudError::Api { code, message, .. } => not_yet_visible(code, message),
            _ => false,
        }
    }

    /// The provider answered that the thing named does not exist (see
    /// [`not_found`]).
    pub fn is_not_found(&self) -> bool {
        match self {
            CloudError::Api { code, message, .. } => not_found(code, message),
            _ => false,
        }
    }

    /// The provider answered that what a create makes exists already (see
    /// [`already_exists`]).
    pub fn is_already_exists(&self) -> bool {
        match self {
            CloudError::Api { code, message, .. } => already_exists(code, message),
            _ => false,
        }
    }

    /// A throttling, server-side or network failure (see [`is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.code().is_some_and(is_transient)
    }
}

/// How long an id just returned by a create may stay invisible to calls
/// naming it. AWS gives no bound; Terraform's AWS provider waits 2 minutes
/// for IAM (`iam.PropagationTimeout`) and for Auto Scaling / ELB listener
/// propagation, and this is the window used for every service.
pub const PROPAGATION_WINDOW: Duration = Duration::from_secs(120);

/// Error codes AWS answers when an id created moments before has not
/// propagated yet ("eventual consistency"). Retried only by
/// [`Cloud::settle`], on calls that name a resource just created, for up to
/// [`PROPAGATION_WINDOW`]: such a refusal means the call did nothing.
/// - EC2, "Eventual consistency in the Amazon EC2 API" (EC2 Developer Guide):
///   "its ID might not have propagated throughout the system, and you will
///   get an error responding that the resource does not exist" (the
///   `Invalid*ID.NotFound` codes of "Error codes for the Amazon EC2 API";
///   `NatGatewayNotFound` is the NAT gateway's).
/// - IAM, "Changes that I make are not always immediately visible" (IAM
///   troubleshooting): `NoSuchEntity` for a role or profile just created.
/// - S3: `NoSuchBucket` right after CreateBucket.
/// - ELBv2: `CertificateNotFound` for an ACM certificate just issued,
///   `TargetGroupNotFound` / `LoadBalancerNotFound` for ones just created.
/// - EFS: `FileSystemNotFound` right after CreateFileSystem.
/// - ELBv2 and EFS name an EC2 subnet or security group they cannot find
///   yet `SubnetNotFound`, `InvalidSecurityGroup` (ELBv2) and
///   `SecurityGroupNotFound` (EFS): the same EC2 propagation seen from
///   another service.
pub const NOT_YET_VISIBLE: &[&str] = &[
    "InvalidVpcID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidSubnetId.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidRouteTableId.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidAllocationID.NotFound",
    "NatGatewayNotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "NoSuchBucket",
    "NoSuchEntity",
    "CertificateNotFound",
    "TargetGroupNotFound",
    "LoadBalancerNotFound",
    "FileSystemNotFound",
    "SubnetNotFound",
    "InvalidSecurityGroup",
    "SecurityGroupNotFound",
];

/// Whether an error means "the resource named is not visible yet".
/// Besides [`NOT_YET_VISIBLE`], Auto Scaling (and EC2 RunInstances) refuse
/// an instance profile created moments before with a `ValidationError` /
/// `InvalidParameterValue` whose message says "Invalid IamInstanceProfile"
/// or "Invalid IAM Instance Profile" (Terraform retries exactly these
/// messages for its IAM propagation timeout). EFS refuses a file system
/// policy naming a role created moments before with
/// `InvalidPolicyException` "Policy contains invalid Principal block"
/// (Terraform's file system policy retries that message the same way).
/// Data Lifecycle Manager refuses an execution role created moments
/// before with `InvalidRequestException` naming the role (Terraform's
/// lifecycle policy retries every `InvalidRequestException` of
/// CreateLifecyclePolicy for two minutes for it); here only the ones
/// about the role.
pub fn not_yet_visible(code: &str, message: &str) -> bool {
    NOT_YET_VISIBLE.contains(&code)
        || (matches!(code, "ValidationError" | "InvalidParameterValue")
            && (message.contains("Invalid IamInstanceProfile")
                || message.contains("Invalid IAM Instance Profile")))
        || (code == "InvalidPolicyException" && message.contains("invalid Principal"))
        || (code == "InvalidRequestException" && message.to_ascii_lowercase().contains("role"))
}

/// Whether an answer says the thing named does not exist, in any of the
/// services' words: EC2's `Invalid*ID.NotFound` and `NatGatewayNotFound`,
/// ELBv2's `LoadBalancerNotFound`, RDS's `DBInstanceNotFound(Fault)`, EFS's
/// `FileSystemNotFound` ("Error codes" of each API reference), IAM's and
/// S3's `NoSuch*`, ACM's and CloudWatch Logs' `ResourceNotFoundException`,
/// and Auto Scaling's `ValidationError` "AutoScalingGroup name not found"
/// (Auto Scaling has no not-found code; Terraform's provider matches the
/// same message), and Route 53's `InvalidChangeBatch` "Tried to delete
/// resource record set ... but it was not found".
pub fn not_found(code: &str, message: &str) -> bool {
    code.ends_with("NotFound")
        || code.ends_with("NotFoundFault")
        || code.ends_with("NotFoundException")
        || code.starts_with("NoSuch")
        || (code == "ValidationError" && message.contains("not found"))
        || (code == "InvalidChangeBatch" && message.contains("but it was not found"))
}

/// Answers that say the thing a create would make is there already, in each
/// service's words ("Error codes" of each API reference): a name or CIDR
/// taken, a rule or route present, a resource already attached. After a
/// create whose answer was lost (the SDK retries the same request, which
/// meets the first attempt's work) this is how AWS says "done"; it is also
/// how it says someone else holds the name. [`CloudError::is_already_exists`].
/// - EC2: `InvalidSubnet.Conflict` (the CIDR is taken), `InvalidGroup.Duplicate`,
///   `InvalidPermission.Duplicate`, `RouteAlreadyExists`,
///   `Resource.AlreadyAssociated`, `InvalidLaunchTemplateName.AlreadyExistsException`.
/// - RDS: `DBInstanceAlreadyExists(Fault)`, `DBSubnetGroupAlreadyExists(Fault)`,
///   `DBParameterGroupAlreadyExists(Fault)`.
/// - ELBv2: `DuplicateLoadBalancerName`, `DuplicateTargetGroupName`,
///   `DuplicateListener`.
/// - IAM: `EntityAlreadyExists`; CloudWatch Logs: `ResourceAlreadyExistsException`;
///   Auto Scaling: `AlreadyExists`; EFS: `FileSystemAlreadyExists`,
///   `AccessPointAlreadyExists`, `MountTargetConflict`; S3:
///   `BucketAlreadyOwnedByYou`; SSM: `ParameterAlreadyExists`; Secrets
///   Manager: `ResourceExistsException`; ECR: `RepositoryAlreadyExistsException`.
pub const ALREADY_EXISTS: &[&str] = &[
    "InvalidSubnet.Conflict",
    "InvalidGroup.Duplicate",
    "InvalidPermission.Duplicate",
    "RouteAlreadyExists",
    "Resource.AlreadyAssociated",
    "InvalidLaunchTemplateName.AlreadyExistsException",
    "DBInstanceAlreadyExists",
    "DBInstanceAlreadyExistsFault",
    "DBSubnetGroupAlreadyExists",
    "DBSubnetGroupAlreadyExistsFault",
    "DBParameterGroupAlreadyExists",
    "DBParameterGroupAlreadyExistsFault",
    "DuplicateLoadBalancerName",
    "DuplicateTargetGroupName",
    "DuplicateListener",
    "EntityAlreadyExists",
    "ResourceAlreadyExistsException",
    "AlreadyExists",
    "FileSystemAlreadyExists",
    "AccessPointAlreadyExists",
    "MountTargetConflict",
    "BucketAlreadyOwnedByYou",
    "ParameterAlreadyExists",
    "ResourceExistsException",
    "RepositoryAlreadyExistsException",
];

/// Whether an answer says the thing made already exists (see
/// [`ALREADY_EXISTS`]); Route 53 says it in an `InvalidChangeBatch`
/// message ("Tried to create resource record set ... but it already
/// exists").
pub fn already_exists(code: &str, message: &str) -> bool {
    ALREADY_EXISTS.contains(&code)
        || (code == "InvalidChangeBatch" && message.contains("already exists"))
}

/// Throttling codes: AWS limits request rates per action per account
/// ("Request throttling for the Amazon EC2 API"; `Throttling` for the query
/// services IAM, Auto Scaling, RDS, ELBv2, Route 53; `ThrottlingException`
/// for the JSON ones ACM, SSM, EFS; `SlowDown` for S3), the same list the
/// AWS SDKs' standard retry mode treats as throttling.
pub const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Server-side and network failures the SDKs' standard retry mode retries
/// ("Retry behavior", AWS SDKs and Tools Reference Guide): request timeouts,
/// internal errors, HTTP 5xx; see [`api_error`] for the codes given to
/// answers without one.
pub const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "Unavailable",
    "ServiceUnavailableException",
    "Timeout",
    "DispatchFailure",
];

/// Whether an error is worth trying again as it is: throttling, a 5xx
/// answer, a timeout or a connection failure. Anything else is the caller's
/// to handle.
pub fn is_transient(code: &str) -> bool {
    THROTTLING.contains(&code) || TRANSIENT.contains(&code) || code.starts_with("HTTP 5")
}

/// Converts an SDK error into a [`CloudError`] naming the resource and operation.
pub fn api_error<E, R>(id: &str, op: &str, e: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let code = match e.code() {
        Some(c) => c.to_string(),
        None => match &e {
            SdkError::TimeoutError(_) => "Timeout".to_string(),
            SdkError::DispatchFailure(d) if d.is_timeout() => "Timeout".to_string(),
            SdkError::DispatchFailure(d) if d.is_io() => "DispatchFailure".to_string(),
            _ => e
                .raw_response()
                .and_then(|r| {
                    (r as &dyn std::any::Any)
                        .downcast_ref::<aws_smithy_runtime_api::http::Response>()
                })
                .map(|r| format!("HTTP {}", r.status().as_u16()))
                .unwrap_or_else(|| "Unknown".to_string()),
        },
    };
    let message = match e.message() {
        Some(m) => m.to_string(),
        None => DisplayErrorContext(&e).to_string(),
    };
    CloudError::Api {
        id: id.into(),
        op: op.into(),
        code,
        message,
    }
}

/// `result.ctx(id, op)?` turns an SDK error into a [`CloudError`].
pub trait SdkResultExt<T> {
    fn ctx(self, id: &str, op: &str) -> Result<T, CloudError>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    fn ctx(self, id: &str, op: &str) -> Result<T, CloudError> {
        self.map_err(|e| api_error(id, op, e))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An answer of the provider with `code` and `message` (shared with
    /// the other tests of `cloud`).
    pub(crate) fn api(code: &str, message: &str) -> CloudError {
        CloudError::Api {
            id: "x".into(),
            op: "Op".into(),
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn only_an_answer_of_the_provider_has_a_code_and_message() {
        let e = api("DependencyViolation", "has dependent objects");
        assert_eq!(e.code(), Some("DependencyViolation"));
        assert_eq!(e.message(), Some("has dependent objects"));
        let local = CloudError::invalid("x", "no such thing");
        assert_eq!(local.code(), None);
        assert_eq!(local.message(), None);
        assert!(!local.is_not_found() && !local.is_transient() && !local.is_already_exists());
    }

    #[test]
    fn already_exists_in_every_services_words_and_only_those() {
        for code in ALREADY_EXISTS {
            assert!(already_exists(code, ""), "{code}");
            assert!(api(code, "").is_already_exists(), "{code}");
        }
        let r53 =
            "[Tried to create resource record set [name='a.', type='A'] but it already exists]";
        assert!(already_exists("InvalidChangeBatch", r53));
        for (code, message) in [
            (
                "InvalidChangeBatch",
                "[RRSet of type A with DNS name a. is not permitted]",
            ),
            ("InvalidParameterValue", "already exists"),
            ("DependencyViolation", ""),
        ] {
            assert!(!already_exists(code, message), "{code}: {message}");
            assert!(!api(code, message).is_already_exists(), "{code}");
        }
    }

    #[test]
    fn failures_without_an_answer_are_named_by_what_happened() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::error::ErrorMetadata;
        type E = SdkError<ErrorMetadata, ()>;
        let why = || -> Box<dyn std::error::Error + Send + Sync> { "on the way".into() };
        let named = |e: E| api_error("x", "Op", e);
        let timeout = named(SdkError::timeout_error(why()));
        assert_eq!(timeout.code(), Some("Timeout"));
        assert!(timeout.is_transient());
        let slow = named(SdkError::dispatch_failure(ConnectorError::timeout(why())));
        assert_eq!(slow.code(), Some("Timeout"));
        let dropped = named(SdkError::dispatch_failure(ConnectorError::io(why())));
        assert_eq!(dropped.code(), Some("DispatchFailure"));
        assert!(dropped.is_transient());
        let other = named(SdkError::dispatch_failure(ConnectorError::other(
            why(),
            None,
        )));
        assert_eq!(other.code(), Some("Unknown"));
        assert!(!other.is_transient());
    }

    #[test]
    fn transient_answers_are_throttling_server_failures_and_5xx_only() {
        for code in THROTTLING.iter().chain(TRANSIENT) {
            assert!(api(code, "").is_transient(), "{code}");
        }
        assert!(is_transient("HTTP 503"));
        for code in [
            "ValidationError",
            "HTTP 404",
            "AccessDenied",
            "InvalidVpcID.NotFound",
        ] {
            assert!(!is_transient(code), "{code}");
            assert!(!api(code, "").is_transient(), "{code}");
        }
    }
}
