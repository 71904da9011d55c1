//! Deletes tried again while AWS still holds what they depend on.

use std::future::Future;
use std::time::Duration;

use crate::cloud::CloudError;

/// Error codes a delete answers while something else still uses the
/// resource, which goes away on its own shortly (its own deletion is under
/// way, or AWS releases it asynchronously): the delete is tried again.
/// - EC2 `DependencyViolation` (400, "Error codes for the Amazon EC2 API":
///   "The specified object has dependent resources"): DeleteSecurityGroup,
///   DeleteSubnet, DeleteVpc, DeleteRouteTable, DetachInternetGateway
///   ("mapped public address(es)") while the network interfaces of a load
///   balancer, NAT gateway, mount target or database just deleted are still
///   being released; Terraform retries it for the delete timeout (15 to 20
///   minutes). `InvalidGroup.InUse`: a security group referenced by another.
///   `InvalidIPAddress.InUse`: ReleaseAddress of an address still
///   associated (with a NAT gateway being deleted).
/// - ELBv2 `ResourceInUse`: a target group "currently in use by a listener
///   or a rule" being deleted.
/// - RDS `InvalidDBSubnetGroupStateFault`: the subnet group "cannot be
///   deleted because it's in use" by a database being deleted;
///   `InvalidDBInstanceState`: the database is modifying (deletion
///   protection being lifted) or backing up;
///   `InvalidDBParameterGroupState`: the parameter group is still used by
///   a database (moving to a new group, or being deleted).
/// - EFS `FileSystemInUse` (409): mount targets being deleted.
/// - IAM `DeleteConflict`: a role or profile whose attachments are being
///   removed.
const IN_USE: &[&str] = &[
    "DependencyViolation",
    "InvalidGroup.InUse",
    "InvalidIPAddress.InUse",
    "ResourceInUse",
    "ResourceInUseException",
    "InvalidDBSubnetGroupStateFault",
    "InvalidDBSubnetGroupState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBParameterGroupState",
    "InvalidDBParameterGroupStateFault",
    "FileSystemInUse",
    "DeleteConflict",
];

/// Whether a delete refused with `code` and `message` may succeed when
/// tried again shortly. Besides [`IN_USE`], DeleteDBInstance right after
/// deletion protection was lifted can still answer
/// `InvalidParameterCombination` "Cannot delete protected DB Instance,
/// please disable deletion protection and try again": Terraform's provider
/// treats that ModifyDBInstance as asynchronous and retries the delete.
pub fn still_in_use(code: &str, message: &str) -> bool {
    IN_USE.contains(&code)
        || (code == "InvalidParameterCombination" && message.contains("deletion protection"))
}

/// Why a failed delete is tried again, or `None` to fail at once.
///
/// ReleaseAddress of an address a NAT gateway held until moments before
/// (its deletion just completed) answers `AuthFailure` "You do not have
/// permission to access the specified resource" for a while: not a
/// permission problem (reported by kops #938 and other tools; a missing IAM
/// permission is `UnauthorizedOperation` in EC2). Only that operation's
/// `AuthFailure` is retried.
pub fn delete_retry_reason(e: &CloudError) -> Option<&'static str> {
    match e {
        CloudError::Api { op, code, .. } if op == "ReleaseAddress" && code == "AuthFailure" => {
            Some("still held by a NAT gateway being deleted")
        }
        CloudError::Api { code, message, .. } if still_in_use(code, message) => {
            Some("still in use")
        }
        e if e.is_transient() => Some("transient error"),
        _ => None,
    }
}

/// Time as a retry loop sees it: the real clock in use, one the test
/// drives in the tests (so a limit of minutes is checked in no time).
pub trait Clock {
    /// Time since the loop began.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// The runtime's clock.
pub struct Tokio(tokio::time::Instant);

impl Tokio {
    pub fn start() -> Self {
        Tokio(tokio::time::Instant::now())
    }
}

impl Clock for Tokio {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }
}

/// Runs `delete` until it succeeds, trying again every `pause` while the
/// cloud reports the resource still in use or answers a transient error
/// (see [`delete_retry_reason`]), for up to `limit`; reports each retry.
/// Every kind's delete is restartable: it treats what an earlier attempt
/// already removed as done.
pub async fn retry_delete<F, Fut>(
    id: &str,
    limit: Duration,
    pause: Duration,
    report: impl Fn(&str),
    delete: F,
) -> Result<(), CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), CloudError>>,
{
    retry_delete_on(&Tokio::start(), id, limit, pause, report, delete).await
}

/// [`retry_delete`] on a given clock.
pub async fn retry_delete_on<F, Fut>(
    clock: &impl Clock,
    id: &str,
    limit: Duration,
    pause: Duration,
    report: impl Fn(&str),
    mut delete: F,
) -> Result<(), CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), CloudError>>,
{
    loop {
        let e = match delete().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(why) = delete_retry_reason(&e) else {
            return Err(e);
        };
        if clock.elapsed() >= limit {
            return Err(CloudError::Timeout {
                id: id.to_string(),
                what: format!("the deletion to be accepted ({why}: {e})"),
                waited: clock.elapsed(),
            });
        }
        report(&format!("{why}, retrying: {e}"));
        clock.sleep(pause).await;
    }
}
