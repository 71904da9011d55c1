//! EC2: ids not visible right after their create, dependency violations
//! while the network interfaces of deleted resources linger, and NAT
//! gateways that take minutes to come and go.

use std::time::Instant;

use super::super::http::Response;
use super::super::xml::{self, rewrite_items};
use super::consistency::Invisible;
use super::errors::error;
use super::{within, Call, State, Timing};

/// The EC2 ids a create returns, with the code and message AWS answers for
/// an id it does not know yet ("Eventual consistency in the Amazon EC2
/// API"; codes from "Error codes for the Amazon EC2 API").
const EC2_IDS: &[(&str, &str, &str, &str)] = &[
    (
        "CreateVpc",
        "vpcId",
        "InvalidVpcID.NotFound",
        "The vpc ID '{}' does not exist",
    ),
    (
        "CreateInternetGateway",
        "internetGatewayId",
        "InvalidInternetGatewayID.NotFound",
        "The internetGateway ID '{}' does not exist",
    ),
    (
        "CreateSubnet",
        "subnetId",
        "InvalidSubnetID.NotFound",
        "The subnet ID '{}' does not exist",
    ),
    (
        "CreateSecurityGroup",
        "groupId",
        "InvalidGroup.NotFound",
        "The security group '{}' does not exist",
    ),
    (
        "CreateRouteTable",
        "routeTableId",
        "InvalidRouteTableID.NotFound",
        "The routeTable ID '{}' does not exist",
    ),
    (
        "AllocateAddress",
        "allocationId",
        "InvalidAllocationID.NotFound",
        "The allocation ID '{}' does not exist",
    ),
    (
        "CreateNatGateway",
        "natGatewayId",
        "NatGatewayNotFound",
        "The Nat Gateway {} was not found",
    ),
    (
        "CreateLaunchTemplate",
        "launchTemplateId",
        "InvalidLaunchTemplateId.NotFound",
        "The specified launch template, with template ID {}, does not exist.",
    ),
];

/// Learns from a successful answer: the ids it created, NAT gateways'
/// creation and deletion.
pub(super) fn learn(c: &Call, body: &str, st: &mut State, t: &Timing, now: Instant) {
    match c.op.as_str() {
        op if op.starts_with("Create") || op == "AllocateAddress" => {
            for (_, tag, code, msg) in EC2_IDS.iter().filter(|x| x.0 == op) {
                if let Some(id) = xml::text(body, tag) {
                    st.invisible.push(Invisible {
                        made_by: c.op.clone(),
                        id: id.to_string(),
                        since: now,
                        service: "ec2",
                        only_op: None,
                        code,
                        message: msg.replace("{}", id),
                        status: 400,
                    });
                }
            }
            if op == "CreateVolume" {
                if let Some(id) = xml::text(body, "volumeId") {
                    st.volume_created.insert(id.into(), now);
                }
            }
            if op == "CreateSnapshot" {
                if let Some(id) = xml::text(body, "snapshotId") {
                    st.snapshot_created.insert(id.into(), now);
                }
            }
            if op == "CreateNatGateway" {
                if let Some(id) = xml::text(body, "natGatewayId") {
                    st.nat_created.insert(id.into(), now);
                }
            }
        }
        "DeleteNatGateway" => {
            if let Some(id) = c.get("NatGatewayId") {
                st.nat_deleted.insert(id.into(), now);
            }
            st.linger_until = Some(now + t.linger);
        }
        _ => {}
    }
}

/// The lists that lag: (operation, list element, id element, the
/// request parameter naming ids).
const LISTS: &[(&str, &str, &str, &str)] = &[
    ("DescribeVpcs", "vpcSet", "vpcId", "VpcId."),
    ("DescribeSubnets", "subnetSet", "subnetId", "SubnetId."),
    (
        "DescribeSecurityGroups",
        "securityGroupInfo",
        "groupId",
        "GroupId.",
    ),
    (
        "DescribeInternetGateways",
        "internetGatewaySet",
        "internetGatewayId",
        "InternetGatewayId.",
    ),
    (
        "DescribeRouteTables",
        "routeTableSet",
        "routeTableId",
        "RouteTableId.",
    ),
    (
        "DescribeAddresses",
        "addressesSet",
        "allocationId",
        "AllocationId.",
    ),
    (
        "DescribeNatGateways",
        "natGatewaySet",
        "natGatewayId",
        "NatGatewayId.",
    ),
];

/// Lists and tag filters lag behind creates ("Eventual consistency in the
/// Amazon EC2 API": "the results of ... describe ... operations might not
/// immediately reflect" a resource just created): a list that names no id
/// leaves out what was made within the last `list_lag`. The rewritten
/// answer, if anything was left out.
pub(super) fn lagging_list(c: &Call, body: &str, st: &mut State, t: &Timing) -> Option<String> {
    let (_, list, id_tag, by_id) = LISTS.iter().find(|l| l.0 == c.op)?;
    if c.form.iter().any(|(k, _)| k.starts_with(by_id)) {
        return None;
    }
    let fresh: Vec<String> = st
        .invisible
        .iter()
        .filter(|v| v.service == "ec2" && v.since.elapsed() < t.list_lag)
        .map(|v| v.id.clone())
        .collect();
    let mut left_out = 0;
    let out = xml::rewrite_items(body, list, |e| {
        let id = xml::text(e, id_tag)?;
        fresh.iter().any(|f| f == id).then(|| {
            left_out += 1;
            String::new()
        })
    });
    if left_out == 0 {
        return None;
    }
    st.count("list_lag");
    Some(out)
}

/// "DependencyViolation" while the network interfaces of a deleted load
/// balancer, NAT gateway, mount target or database are released (EC2 API
/// error codes; Terraform retries these for 5 to 20 minutes).
pub(super) fn dependency_violation(c: &Call, st: &mut State, _t: &Timing) -> Option<Response> {
    let lingering = st.linger_until.is_some_and(|u| Instant::now() < u);
    let violation = match c.op.as_str() {
        "DeleteSecurityGroup" => c
            .get("GroupId")
            .map(|g| format!("resource {g} has a dependent object")),
        "DeleteSubnet" => c
            .get("SubnetId")
            .map(|s| format!("The subnet '{s}' has dependencies and cannot be deleted.")),
        "DeleteVpc" => c
            .get("VpcId")
            .map(|v| format!("The vpc '{v}' has dependencies and cannot be deleted.")),
        "DetachInternetGateway" => c.get("VpcId").map(|v| {
            format!("Network {v} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.")
        }),
        _ => None,
    };
    if let (true, Some(msg)) = (lingering, violation) {
        st.count("dependencies");
        return Some(error("ec2", 400, "DependencyViolation", &msg));
    }
    None
}

/// An address a NAT gateway still holds while it is deleting.
pub(super) fn address_held(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if c.op == "ReleaseAddress"
        && st
            .nat_deleted
            .values()
            .any(|d| d.elapsed() < t.nat_deleting)
    {
        st.count("dependencies");
        return Some(error(
            "ec2",
            400,
            "AuthFailure",
            "You do not have permission to access the specified resource.",
        ));
    }
    None
}

/// NAT gateways pass `pending` and `deleting` (API_NatGateway), which the
/// emulator skips: the answer rewritten, if it changed.
pub(super) fn nat_lifecycle(body: &str, st: &State, t: &Timing) -> Option<String> {
    let mut rewrote = false;
    let out = rewrite_items(body, "natGatewaySet", |e| {
        let id = xml::text(e, "natGatewayId").unwrap_or_default();
        let state = xml::text(e, "state").unwrap_or_default();
        let to = if state == "available" && within(st.nat_created.get(id).copied(), t.nat_pending) {
            Some("pending")
        } else if state == "deleted" && within(st.nat_deleted.get(id).copied(), t.nat_deleting) {
            Some("deleting")
        } else {
            None
        };
        to.map(|s| {
            rewrote = true;
            xml::set_text(e, "state", s)
        })
    });
    rewrote.then_some(out)
}

/// EBS volumes pass `creating` (API_Volume: creating | available | in-use
/// | deleting | deleted | error), which the emulator skips.
pub(super) fn volume_lifecycle(body: &str, st: &State, t: &Timing) -> Option<String> {
    let mut rewrote = false;
    let out = rewrite_items(body, "volumeSet", |e| {
        let id = xml::text(e, "volumeId").unwrap_or_default();
        let state = xml::text(e, "status").unwrap_or_default();
        let young = within(st.volume_created.get(id).copied(), t.volume_creating);
        (state == "available" && young).then(|| {
            rewrote = true;
            xml::set_text(e, "status", "creating")
        })
    });
    rewrote.then_some(out)
}

/// EBS snapshots are `pending` while their blocks are copied (API_Snapshot:
/// pending | completed | error | recoverable | recovering), with
/// `progress` below 100%; the emulator answers `completed` at once. Every
/// answer is recorded, so a test can tell whether the tool waited.
pub(super) fn snapshot_lifecycle(body: &str, st: &mut State, t: &Timing) -> Option<String> {
    let mut rewrote = false;
    let mut seen = Vec::new();
    let out = rewrite_items(body, "snapshotSet", |e| {
        let id = xml::text(e, "snapshotId").unwrap_or_default().to_string();
        let state = xml::text(e, "status").unwrap_or_default();
        let young = within(st.snapshot_created.get(&id).copied(), t.snapshot_pending);
        let pending = state == "completed" && young;
        seen.push((id, !pending && state == "completed"));
        pending.then(|| {
            rewrote = true;
            xml::set_text(&xml::set_text(e, "status", "pending"), "progress", "42%")
        })
    });
    let now = Instant::now();
    st.snapshot_reads
        .extend(seen.into_iter().map(|(id, done)| (now, id, done)));
    rewrote.then_some(out)
}
