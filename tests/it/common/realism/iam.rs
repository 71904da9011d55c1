//! IAM: a role just created is not found by AddRoleToInstanceProfile for a
//! moment, and an instance profile that just got its role is not usable by
//! Auto Scaling yet.

use std::time::Instant;

use super::super::http::Response;
use super::consistency::Invisible;
use super::errors::error;
use super::{Call, State, Timing};

/// Learns from a successful answer: new roles, profiles given a role.
pub(super) fn learn(c: &Call, st: &mut State, now: Instant) {
    match c.op.as_str() {
        "CreateRole" => {
            if let Some(r) = c.get("RoleName") {
                // Terraform's iam instance_profile.go retries exactly
                // this for its 2-minute propagation timeout.
                st.invisible.push(Invisible {
                    made_by: c.op.clone(),
                    id: r.to_string(),
                    since: now,
                    service: "iam",
                    only_op: Some("AddRoleToInstanceProfile"),
                    code: "NoSuchEntity",
                    message: format!("The role with name {r} cannot be found."),
                    status: 404,
                });
            }
        }
        "AddRoleToInstanceProfile" => {
            let name = c.get("InstanceProfileName").unwrap_or_default().to_string();
            st.profile = Some((now, name));
        }
        _ => {}
    }
}

/// An instance profile that just got its role is not usable by Auto
/// Scaling for seconds (Terraform's autoscaling group.go retries "Invalid
/// IAM Instance Profile" for 2 minutes).
pub(super) fn profile_propagating(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if c.op == "CreateAutoScalingGroup" {
        if let Some((since, name)) = st.profile.clone() {
            if since.elapsed() < t.visible {
                st.count("consistency");
                return Some(error(
                    "autoscaling",
                    400,
                    "ValidationError",
                    &format!("You must use a valid fully-formed launch template. Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
                ));
            }
        }
    }
    None
}
