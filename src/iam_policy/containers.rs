//! The apply statements of the app on Fargate: the stack's image
//! repository, its ECS cluster, service and task definitions, the scaling
//! of its tasks, and the two roles ECS passes to its tasks. Each names
//! the stack's resources by name or by tag ("Actions, resources, and
//! condition keys" of Amazon ECR, Amazon ECS, Application Auto Scaling).

use serde_json::{json, Value};

use super::document::statement;
use super::statements::Names;
use crate::resources::{ecr, iam};

/// The statements, when the stack runs on Fargate (none otherwise).
pub(super) fn writes(n: &Names) -> Vec<Value> {
    if !n.has(crate::resources::ecs_service::KIND) {
        return Vec::new();
    }
    let (name, region) = (n.name, n.region);
    let owned = json!({ "StringEquals": { n.tag("aws:ResourceTag"): name } });
    let create_tagged = json!({
        "StringEquals": { n.tag("aws:RequestTag"): name },
        "StringEqualsIfExists": { n.tag("aws:ResourceTag"): name },
    });
    let repo = n.arn("ecr", &format!("repository/{}", ecr::repository_name(name)));
    let cluster = n.arn("ecs", &format!("cluster/{name}"));
    let services = n.arn("ecs", &format!("service/{name}/*"));
    let path = iam::path(name);
    // The two task roles' names start alike, and no other role's does.
    let task_roles = if region == "*" {
        n.iam(&format!("role{path}*-task-*"))
    } else {
        n.iam(&format!("role{path}{name}-{region}-task-*"))
    };
    vec![
        // The repository, cluster, services and scalable target are made
        // with the stack's tag, under the stack's names where they have
        // one (a scalable target's id is ECS's); ECR tags only at a create
        // so tagged, ECS only as part of its creates (`ecs:CreateAction`).
        statement(
            "ContainersCreateTagged",
            &[
                "ecr:CreateRepository",
                "ecr:TagResource",
                "ecs:CreateCluster",
                "ecs:CreateService",
                "ecs:TagResource",
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:TagResource",
            ],
            &[
                repo.clone(),
                cluster.clone(),
                services.clone(),
                n.arn(
                    "ecs",
                    &format!(
                        "task-definition/{}:*",
                        crate::resources::ecs_task_definition::family(name)
                    ),
                ),
                n.arn("application-autoscaling", "scalable-target/*"),
            ],
            Some(create_tagged),
        ),
        // Everything else is done to them while they carry the tag.
        statement(
            "ContainersManageOwned",
            &[
                // PutImage, PutLifecyclePolicy, PutImageScanningConfiguration,
                // PutImageTagMutability: the repository's own Put actions
                // (the registry's are on the registry, not named here).
                "ecr:Put*",
                "ecr:DeleteRepository",
                "ecr:BatchDeleteImage",
                "ecr:BatchCheckLayerAvailability",
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecs:UpdateClusterSettings",
                "ecs:DeleteCluster",
                "ecs:UpdateService",
                // The `rollback` tag, when `up` rolls forward.
                "ecs:UntagResource",
                "ecs:DeleteService",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
            ],
            &[
                repo,
                cluster,
                services,
                n.arn("application-autoscaling", "scalable-target/*"),
            ],
            Some(owned),
        ),
        // `exec`: ECS Exec into the app container of the stack's tasks
        // (they carry the service's tags: PropagateTags SERVICE).
        statement(
            "ExecInStackTasks",
            &["ecs:ExecuteCommand"],
            &[
                n.arn("ecs", &format!("cluster/{name}")),
                n.arn("ecs", &format!("task/{name}/*")),
            ],
            Some(json!({
                "StringEquals": {
                    n.tag("aws:ResourceTag"): name,
                    "ecs:container-name": crate::resources::ecs_service::APP_CONTAINER,
                }
            })),
        ),
        // Task definitions are made with the stack's tag (it takes no
        // resource).
        statement(
            "EcsTaskDefinitions",
            &["ecs:RegisterTaskDefinition"],
            &["*".to_string()],
            Some(json!({ "StringEquals": { n.tag("aws:RequestTag"): name } })),
        ),
        // DeregisterTaskDefinition takes no resource and no tag condition:
        // the README's threat model.
        statement(
            "EcsDeregister",
            &["ecs:DeregisterTaskDefinition"],
            &["*".to_string()],
            None,
        ),
        // ECS hands the tasks the stack's two task roles, and no other.
        statement(
            "PassRoleToEcsTasks",
            &["iam:PassRole"],
            std::slice::from_ref(&task_roles),
            Some(json!({ "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })),
        ),
        // Target tracking's alarms, which Application Auto Scaling makes
        // with the caller's rights, named after the stack's service.
        statement(
            "ScalingAlarms",
            &[
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DeleteAlarms",
            ],
            &[n.arn(
                "cloudwatch",
                &format!("alarm:TargetTracking-service/{name}/*"),
            )],
            None,
        ),
    ]
}
