//! The single shape's apply policy read as an attacker would: what it
//! adds (its volume, snapshots and lifecycle policy, the one role Data
//! Lifecycle Manager takes) is bounded to the stack like the rest.

use super::escalation::{
    attack, ec2, iam, ours, single, stack_role, theirs, with, ACCOUNT, REGION, STACK,
};
use super::evaluate::{context, decide, Context, Decision};
use super::{policy, Scope};

/// What the single shape's apply policy adds is bounded the same way:
/// its volume, snapshots and lifecycle policy, and the one role DLM takes.
#[test]
fn the_single_shape_s_policy_refuses_other_stacks_and_other_roles() {
    let doc = policy(&single(), Some(ACCOUNT), Scope::Apply);
    let dlm = |rest: &str| format!("arn:aws:dlm:{REGION}:{ACCOUNT}:{rest}");
    let snapshots_role = iam(&format!(
        "role/bookstore-infra/{STACK}/{STACK}-{REGION}-snapshots-role"
    ));
    let refused = [
        attack(
            "pass the instance role to DLM",
            "iam:PassRole",
            stack_role(),
            context([("iam:PassedToService", "dlm.amazonaws.com")]),
        ),
        attack(
            "pass the snapshot role to EC2",
            "iam:PassRole",
            snapshots_role.clone(),
            context([("iam:PassedToService", "ec2.amazonaws.com")]),
        ),
        attack(
            "pass another role to DLM",
            "iam:PassRole",
            iam("role/admin"),
            context([("iam:PassedToService", "dlm.amazonaws.com")]),
        ),
        attack(
            "delete another stack's volume",
            "ec2:DeleteVolume",
            ec2("volume/vol-1"),
            theirs(),
        ),
        attack(
            "snapshot another stack's volume",
            "ec2:CreateSnapshot",
            ec2("volume/vol-1"),
            with(theirs(), "aws:RequestTag/bookstore-infra:stack", STACK),
        ),
        attack(
            "delete another stack's lifecycle policy",
            "dlm:DeleteLifecyclePolicy",
            dlm("policy/p-1"),
            theirs(),
        ),
        attack(
            "retag another stack's lifecycle policy",
            "dlm:TagResource",
            dlm("policy/p-1"),
            with(theirs(), "aws:RequestTag/bookstore-infra:stack", STACK),
        ),
        attack(
            "create an untagged lifecycle policy",
            "dlm:CreateLifecyclePolicy",
            dlm("policy/*"),
            Context::new(),
        ),
        attack(
            "make a load balancer",
            "elasticloadbalancing:CreateLoadBalancer",
            "*".to_string(),
            context([
                ("aws:RequestTag/bookstore-infra:stack", STACK),
                ("aws:RequestedRegion", REGION),
            ]),
        ),
    ];
    for a in &refused {
        assert_ne!(
            decide(&doc, a.action, &a.resource, &a.ctx),
            Decision::Allow,
            "{}",
            a.what
        );
    }
    let allowed = [
        (
            "iam:PassRole",
            snapshots_role,
            context([("iam:PassedToService", "dlm.amazonaws.com")]),
        ),
        ("ec2:DeleteVolume", ec2("volume/vol-1"), ours()),
        (
            "dlm:CreateLifecyclePolicy",
            dlm("policy/*"),
            context([
                ("aws:RequestTag/bookstore-infra:stack", STACK),
                ("aws:RequestedRegion", REGION),
            ]),
        ),
        ("dlm:UpdateLifecyclePolicy", dlm("policy/p-1"), ours()),
    ];
    for (action, resource, ctx) in allowed {
        assert_eq!(
            decide(&doc, action, &resource, &ctx),
            Decision::Allow,
            "{action} on {resource}"
        );
    }
}
