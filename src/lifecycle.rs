//! What a resource's state, as AWS reports it, means for the resources that
//! depend on it: pure decisions, shared by the reads (is it pending?) and the
//! readiness waits (keep waiting, go on, or fail with AWS's reason).

/// A resource's readiness for its dependents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Usable by its dependents.
    Ready,
    /// On its way: wait.
    Pending,
    /// Will not become ready by waiting: fail at once, with AWS's reason.
    Terminal(String),
}

impl Readiness {
    /// Exists but is still on its way to ready (a terminal state is not
    /// pending: waiting would not help).
    pub fn is_pending(&self) -> bool {
        matches!(self, Readiness::Pending)
    }
}

/// An RDS DB instance's `DBInstanceStatus` (RDS User Guide, "Viewing Amazon
/// RDS DB instance status"). `has_endpoint`: the instance reports an
/// endpoint address.
///
/// - `available` is ready. So are the statuses the guide lists for an
///   instance that keeps serving while AWS works on it (`backing-up`,
///   `configuring-enhanced-monitoring`, `configuring-iam-database-auth`,
///   `configuring-log-exports`, `maintenance`, `modifying`,
///   `storage-optimization`, `upgrading`, `renaming`,
///   `resetting-master-credentials`, `storage-config-upgrade`) once the
///   instance has an endpoint: a new instance passes through `backing-up`
///   right after `creating` and is usable then (Terraform's AWS provider
///   likewise accepts `storage-optimization` as a target).
/// - `creating`, `rebooting`, `starting`, `converting-to-vpc`,
///   `moving-to-vpc`, `storage-initialization`, and any of the above
///   without an endpoint yet, are pending.
/// - `failed`, `incompatible-*`, `inaccessible-encryption-credentials*`,
///   `restore-error`, `storage-full`, `insufficient-capacity`, and the
///   stopped / deleting states are terminal for a wait until usable: the
///   guide says each needs an action (more storage, a fix of the parameter
///   group, network or key, a restore) that waiting does not bring.
pub fn db_instance(status: &str, has_endpoint: bool) -> Readiness {
    match status {
        "available" => Readiness::Ready,
        "backing-up"
        | "configuring-enhanced-monitoring"
        | "configuring-iam-database-auth"
        | "configuring-log-exports"
        | "maintenance"
        | "modifying"
        | "storage-optimization"
        | "upgrading"
        | "renaming"
        | "resetting-master-credentials"
        | "storage-config-upgrade" => {
            if has_endpoint {
                Readiness::Ready
            } else {
                Readiness::Pending
            }
        }
        "creating" | "rebooting" | "starting" | "converting-to-vpc" | "moving-to-vpc"
        | "storage-initialization" => Readiness::Pending,
        other => Readiness::Terminal(match other {
            "storage-full" => "storage-full: the instance has reached its storage capacity allocation".into(),
            "incompatible-parameters" => "incompatible-parameters: the parameter group holds parameters the instance cannot use".into(),
            "incompatible-network" => "incompatible-network: the instance cannot be placed in the subnet group's network".into(),
            "incompatible-option-group" => "incompatible-option-group: an option group change failed".into(),
            "incompatible-restore" => "incompatible-restore: the point-in-time restore failed".into(),
            "incompatible-create" => "incompatible-create: the instance cannot be created as asked".into(),
            "inaccessible-encryption-credentials" | "inaccessible-encryption-credentials-recoverable" => {
                format!("{other}: the instance's KMS key is disabled or not accessible")
            }
            "insufficient-capacity" => "insufficient-capacity: AWS lacks capacity for this instance class in the zone".into(),
            "restore-error" => "restore-error: the restore from a snapshot or point in time failed".into(),
            "failed" => "failed: the instance failed and AWS can't recover it".into(),
            s => format!("{s}: not a state that becomes available by waiting"),
        }),
    }
}

/// A NAT gateway's `State` (EC2 API reference, `NatGateway`): `pending`
/// waits, `available` is ready, `failed` (with `FailureCode` and
/// `FailureMessage`, e.g. `Gateway.NotAttached`,
/// `InsufficientFreeAddressesInSubnet`), `deleting` and `deleted` are
/// terminal.
pub fn nat_gateway(
    state: &str,
    failure_code: Option<&str>,
    failure_message: Option<&str>,
) -> Readiness {
    match state {
        "available" => Readiness::Ready,
        "pending" => Readiness::Pending,
        "failed" => Readiness::Terminal(format!(
            "failed: {}: {}",
            failure_code.unwrap_or("no failure code"),
            failure_message.unwrap_or("no failure message")
        )),
        other => Readiness::Terminal(format!("{other}: the NAT gateway is going away")),
    }
}

/// An EBS volume's `State` (EC2 API reference, `Volume`: creating |
/// available | in-use | deleting | deleted | error): `creating` waits,
/// `available` and `in-use` (attached) are ready, `error` is terminal
/// ("the underlying hardware related to your EBS volume has failed").
pub fn volume(state: &str) -> Readiness {
    match state {
        "available" | "in-use" => Readiness::Ready,
        "creating" => Readiness::Pending,
        "error" => {
            Readiness::Terminal("error: the volume failed; restore it from a snapshot".into())
        }
        other => Readiness::Terminal(format!("{other}: the volume is going away")),
    }
}

/// An EBS snapshot's `State` (EC2 API reference, `Snapshot`: pending |
/// completed | error | recoverable | recovering): `pending` waits,
/// `completed` is ready, the rest is terminal with `StateMessage`.
pub fn snapshot(state: &str, message: Option<&str>) -> Readiness {
    match state {
        "completed" => Readiness::Ready,
        "pending" => Readiness::Pending,
        other => Readiness::Terminal(format!(
            "{other}: {}",
            message.unwrap_or("the snapshot did not complete")
        )),
    }
}

/// An application load balancer's `State.Code` (ELBv2 API reference,
/// `LoadBalancerState`): `provisioning` waits, `active` is ready,
/// `active_impaired` ("the load balancer is routing traffic but does not
/// have the resources it needs to scale") is ready too, `failed` is
/// terminal with `State.Reason`.
pub fn load_balancer(code: &str, reason: Option<&str>) -> Readiness {
    match code {
        "active" | "active_impaired" => Readiness::Ready,
        "provisioning" => Readiness::Pending,
        other => Readiness::Terminal(format!("{other}: {}", reason.unwrap_or("no reason given"))),
    }
}

/// An EFS file system's or mount target's `LifeCycleState` (EFS API
/// reference): `creating` (and `updating`) wait, `available` is ready,
/// `error`, `deleting` and `deleted` are terminal.
pub fn efs(state: &str) -> Readiness {
    match state {
        "available" => Readiness::Ready,
        "creating" | "updating" => Readiness::Pending,
        "error" => Readiness::Terminal("error: EFS failed to create it".into()),
        other => Readiness::Terminal(format!("{other}: it is going away")),
    }
}

/// An ACM certificate's `Status` (ACM API reference,
/// `CertificateDetail`): `PENDING_VALIDATION` waits (ACM retries DNS
/// validation for 72 hours), `ISSUED` is ready, `FAILED`,
/// `VALIDATION_TIMED_OUT`, `REVOKED`, `EXPIRED` and `INACTIVE` are
/// terminal, with `FailureReason` (e.g. `CAA_ERROR`,
/// `DOMAIN_NOT_ALLOWED`) when ACM gives one.
pub fn certificate(status: &str, failure_reason: Option<&str>) -> Readiness {
    match status {
        "ISSUED" => Readiness::Ready,
        "PENDING_VALIDATION" => Readiness::Pending,
        other => Readiness::Terminal(match failure_reason {
            Some(r) => format!("{other}: {r}"),
            None => other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Readiness::*;

    fn terminal(r: Readiness) -> String {
        match r {
            Terminal(s) => s,
            other => panic!("expected terminal, got {other:?}"),
        }
    }

    #[test]
    fn db_instance_states() {
        assert_eq!(db_instance("available", true), Ready);
        assert_eq!(db_instance("creating", false), Pending);
        assert_eq!(db_instance("creating", true), Pending);
        assert_eq!(db_instance("backing-up", false), Pending);
        for s in [
            "backing-up",
            "modifying",
            "storage-optimization",
            "maintenance",
            "upgrading",
            "configuring-enhanced-monitoring",
            "configuring-log-exports",
        ] {
            assert_eq!(db_instance(s, true), Ready, "{s}");
        }
        for s in ["rebooting", "starting", "storage-initialization"] {
            assert_eq!(db_instance(s, true), Pending, "{s}");
        }
        for s in [
            "failed",
            "incompatible-parameters",
            "incompatible-network",
            "incompatible-option-group",
            "incompatible-restore",
            "inaccessible-encryption-credentials",
            "restore-error",
            "storage-full",
            "stopped",
            "deleting",
        ] {
            assert!(terminal(db_instance(s, true)).starts_with(s), "{s}");
        }
        assert!(!db_instance("failed", true).is_pending());
        assert!(db_instance("creating", false).is_pending());
    }

    #[test]
    fn nat_gateway_states() {
        assert_eq!(nat_gateway("available", None, None), Ready);
        assert_eq!(nat_gateway("pending", None, None), Pending);
        assert_eq!(
            terminal(nat_gateway(
                "failed",
                Some("Gateway.NotAttached"),
                Some("Network vpc-1 has no Internet gateway attached")
            )),
            "failed: Gateway.NotAttached: Network vpc-1 has no Internet gateway attached"
        );
        assert!(terminal(nat_gateway("deleted", None, None)).starts_with("deleted"));
    }

    #[test]
    fn load_balancer_states() {
        assert_eq!(load_balancer("active", None), Ready);
        assert_eq!(load_balancer("active_impaired", None), Ready);
        assert_eq!(load_balancer("provisioning", None), Pending);
        assert_eq!(
            terminal(load_balancer(
                "failed",
                Some("subnet has no free addresses")
            )),
            "failed: subnet has no free addresses"
        );
    }

    #[test]
    fn efs_states() {
        assert_eq!(efs("available"), Ready);
        assert_eq!(efs("creating"), Pending);
        assert_eq!(efs("updating"), Pending);
        assert!(terminal(efs("error")).starts_with("error"));
        assert!(terminal(efs("deleting")).starts_with("deleting"));
    }

    #[test]
    fn certificate_states() {
        assert_eq!(certificate("ISSUED", None), Ready);
        assert_eq!(certificate("PENDING_VALIDATION", None), Pending);
        assert_eq!(
            terminal(certificate("FAILED", Some("CAA_ERROR"))),
            "FAILED: CAA_ERROR"
        );
        for s in ["VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE"] {
            assert!(terminal(certificate(s, None)).starts_with(s));
        }
    }
}
