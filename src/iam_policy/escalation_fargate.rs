//! The Fargate runtime's apply policy read as an attacker would: what it
//! adds (the image repository, the cluster, services and task
//! definitions, the scaling of the tasks, the two roles ECS passes to
//! them) is bounded to the stack like the rest.

use super::escalation::{attack, iam, ours, stack_role, theirs, with, ACCOUNT, REGION, STACK};
use super::evaluate::{context, decide, Context, Decision};
use super::{policy, Scope};
use crate::stack::Stack;

/// The scaled stack of the same name and region, on Fargate.
pub(super) fn fargate() -> Stack {
    let text = format!("name = \"{STACK}\"\nregion = \"{REGION}\"\n[app]\nruntime = \"fargate\"\n");
    crate::stack::parse(std::path::Path::new("fargate.toml"), &text).unwrap()
}

fn arn(service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}")
}

#[test]
fn the_fargate_policy_refuses_other_stacks_and_other_roles() {
    let doc = policy(&fargate(), Some(ACCOUNT), Scope::Apply);
    let task_role = iam(&format!(
        "role/bookstore-infra/{STACK}/{STACK}-{REGION}-task-app-role"
    ));
    let exec_role = iam(&format!(
        "role/bookstore-infra/{STACK}/{STACK}-{REGION}-task-exec-role"
    ));
    let to_tasks = || context([("iam:PassedToService", "ecs-tasks.amazonaws.com")]);
    let repo = arn("ecr", &format!("repository/{STACK}-app"));
    let refused = [
        attack(
            "pass another role to ECS tasks",
            "iam:PassRole",
            iam("role/admin"),
            to_tasks(),
        ),
        attack(
            "pass the instance role to ECS tasks",
            "iam:PassRole",
            stack_role(),
            to_tasks(),
        ),
        attack(
            "pass the task role to EC2",
            "iam:PassRole",
            task_role.clone(),
            context([("iam:PassedToService", "ec2.amazonaws.com")]),
        ),
        attack(
            "push to another repository",
            "ecr:PutImage",
            arn("ecr", "repository/other-app"),
            ours(),
        ),
        attack(
            "push to the stack's repository name, owned by another",
            "ecr:PutImage",
            repo.clone(),
            theirs(),
        ),
        attack(
            "delete another repository",
            "ecr:DeleteRepository",
            arn("ecr", "repository/other-app"),
            theirs(),
        ),
        attack(
            "pull another repository's images",
            "ecr:BatchGetImage",
            arn("ecr", "repository/other-app"),
            ours(),
        ),
        attack(
            "make an untagged repository",
            "ecr:CreateRepository",
            repo.clone(),
            Context::new(),
        ),
        attack(
            "make a service in another cluster",
            "ecs:CreateService",
            arn("ecs", "service/other-stack/app"),
            with(
                Context::new(),
                "aws:RequestTag/bookstore-infra:stack",
                STACK,
            ),
        ),
        attack(
            "change another stack's service",
            "ecs:UpdateService",
            arn("ecs", "service/other-stack/app"),
            theirs(),
        ),
        attack(
            "change a service of the stack's cluster another stack tagged",
            "ecs:UpdateService",
            arn("ecs", &format!("service/{STACK}/app")),
            theirs(),
        ),
        attack(
            "delete another cluster",
            "ecs:DeleteCluster",
            arn("ecs", "cluster/other-stack"),
            theirs(),
        ),
        attack(
            "register an untagged task definition",
            "ecs:RegisterTaskDefinition",
            "*".to_string(),
            Context::new(),
        ),
        attack(
            "tag another stack's service outside a create",
            "ecs:TagResource",
            arn("ecs", "service/other-stack/app"),
            with(theirs(), "aws:RequestTag/bookstore-infra:stack", STACK),
        ),
        attack(
            "change another stack's scaling",
            "application-autoscaling:PutScalingPolicy",
            arn("application-autoscaling", "scalable-target/other"),
            theirs(),
        ),
        attack(
            "retag another stack's scalable target",
            "application-autoscaling:TagResource",
            arn("application-autoscaling", "scalable-target/other"),
            with(theirs(), "aws:RequestTag/bookstore-infra:stack", STACK),
        ),
        attack(
            "exec into another stack's task",
            "ecs:ExecuteCommand",
            arn("ecs", "task/other/0123"),
            with(theirs(), "ecs:container-name", "app"),
        ),
        attack(
            "exec into the stack's migrate container",
            "ecs:ExecuteCommand",
            arn("ecs", &format!("task/{STACK}/0123")),
            with(ours(), "ecs:container-name", "migrate"),
        ),
        attack(
            "exec into a task of another cluster named like ours",
            "ecs:ExecuteCommand",
            arn("ecs", "task/other/0123"),
            with(ours(), "ecs:container-name", "app"),
        ),
        attack(
            "untag another stack's service",
            "ecs:UntagResource",
            arn("ecs", "service/other/app"),
            theirs(),
        ),
        attack(
            "delete another alarm",
            "cloudwatch:DeleteAlarms",
            arn("cloudwatch", "alarm:billing"),
            Context::new(),
        ),
        attack(
            "make a volume",
            "ec2:CreateVolume",
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
        ("iam:PassRole", task_role, to_tasks()),
        ("iam:PassRole", exec_role, to_tasks()),
        ("ecr:PutImage", repo.clone(), ours()),
        (
            "ecr:CreateRepository",
            repo,
            context([("aws:RequestTag/bookstore-infra:stack", STACK)]),
        ),
        (
            "ecs:CreateService",
            arn("ecs", &format!("service/{STACK}/app")),
            context([("aws:RequestTag/bookstore-infra:stack", STACK)]),
        ),
        (
            "ecs:UpdateService",
            arn("ecs", &format!("service/{STACK}/app")),
            ours(),
        ),
        (
            "ecs:ExecuteCommand",
            arn("ecs", &format!("task/{STACK}/0123")),
            with(ours(), "ecs:container-name", "app"),
        ),
        (
            "ecs:UntagResource",
            arn("ecs", &format!("service/{STACK}/app")),
            ours(),
        ),
        // `rollback`'s record, sent with the stack's own tag.
        (
            "ecs:TagResource",
            arn("ecs", &format!("service/{STACK}/app")),
            with(ours(), "aws:RequestTag/bookstore-infra:stack", STACK),
        ),
        (
            "application-autoscaling:PutScalingPolicy",
            arn("application-autoscaling", "scalable-target/t1"),
            ours(),
        ),
    ];
    for (action, resource, ctx) in allowed {
        assert_eq!(
            decide(&doc, action, &resource, &ctx),
            Decision::Allow,
            "{action} on {resource}"
        );
    }
}
