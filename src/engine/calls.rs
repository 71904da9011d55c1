//! The API calls a resource kind makes, with the IAM actions AWS
//! authorizes each against: each kind lists its own
//! (`ResourceKind::calls`), and the CI policy is built from them.

/// Whether a call only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// A change only an administrator makes (the permissions boundary of
    /// the stack's roles): no CI policy grants it.
    Admin,
}

/// One SDK call the tool makes.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The field of [`crate::cloud::Cloud`] holding the client (`ec2`, `elbv2`...).
    pub client: &'static str,
    /// The SDK's method (`describe_vpcs`).
    pub method: &'static str,
    /// The API operation, as on the wire (`DescribeVpcs`).
    pub operation: &'static str,
    /// The IAM actions AWS authorizes the call against: the operation's own
    /// first, then those it also requires (tagging on create, passing a role,
    /// the service-linked role on first use).
    pub actions: &'static [&'static str],
    pub access: Access,
}

/// A call that only reads.
pub const fn r(
    client: &'static str,
    method: &'static str,
    operation: &'static str,
    actions: &'static [&'static str],
) -> Call {
    Call {
        client,
        method,
        operation,
        actions,
        access: Access::Read,
    }
}

/// A call that changes something.
pub const fn w(
    client: &'static str,
    method: &'static str,
    operation: &'static str,
    actions: &'static [&'static str],
) -> Call {
    Call {
        access: Access::Write,
        ..r(client, method, operation, actions)
    }
}

/// A change only an administrator's credentials may make.
pub const fn admin(
    client: &'static str,
    method: &'static str,
    operation: &'static str,
    actions: &'static [&'static str],
) -> Call {
    Call {
        access: Access::Admin,
        ..r(client, method, operation, actions)
    }
}
