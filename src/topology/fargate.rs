//! The scaled shape's app on Fargate (`app.runtime = "fargate"`): the
//! app's image in the stack's ECR repository, an ECS cluster, a task
//! definition, a service in the private subnets behind the load
//! balancer's target group, and Application Auto Scaling of its tasks.
//! The network, database, file system, certificate and load balancer are
//! the scaled shape's own ([`super::scaled`]).
//!
//! Each task runs two containers of the one image: `migrate` (the schema
//! and the app's database user, as the master user, then it exits) and
//! `app`, which starts once `migrate` has exited 0 and serves as the app
//! user. ECS reads each container's secrets itself: the master password
//! reaches the `migrate` container only.

use serde_json::{json, Value};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::image;
use crate::resources::ecs_task_definition::Container;
use crate::resources::{
    ecr, ecs_cluster, ecs_service, ecs_task_definition, efs_policy, iam, service_scaling,
};
use crate::stack::{ScalingMetric, Stack};

use super::network::endpoint_ids;
use super::{parts, short_name, AppFacts};

pub use crate::resources::ecs_task_definition::family;

pub use crate::resources::ecs_service::APP_CONTAINER;
pub use crate::resources::ecs_service::SERVICE;
/// Where the database's certificate authorities are in the image.
pub const RDS_CA_PATH: &str = "/etc/bookstore/rds-ca.pem";

/// A role ECS tasks assume (`ecs-tasks.amazonaws.com`), only for tasks of
/// this account ("Task IAM role": the `aws:SourceAccount` condition
/// against the confused deputy).
fn task_trust(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }],
    })
}

fn role(stack: &Stack, f: &AppFacts, id: &str, suffix: &str, statements: Vec<Value>) -> Desired {
    let name = &stack.name;
    Desired::new(
        iam::ROLE,
        id,
        json!({
            "name": short_name(name, &format!("{}-{suffix}", f.region), 64),
            "path": iam::path(name),
            "trust_policy": task_trust(&f.account),
            "other_inline_policies": {},
            "policy": {"Version": "2012-10-17", "Statement": statements},
            "managed_policies": [],
            "permissions_boundary": r_attr("boundary", "arn"),
        }),
    )
}

/// The database URL of `user`, verifying the server's certificate
/// against the RDS authorities in the image.
fn db_url(stack: &Stack, user: &str) -> Value {
    let db = &stack.database;
    concat(vec![
        json!(format!("mysql://{user}@")),
        r_attr("db", "endpoint"),
        json!(format!(
            ":3306/{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={RDS_CA_PATH}",
            db.name
        )),
    ])
}

/// Every resource that runs the app on Fargate.
pub fn desired(stack: &Stack, sfx: &[String], f: &AppFacts) -> Vec<Desired> {
    let name = &stack.name;
    let app = &stack.app;
    let task = app.task.unwrap_or_default();
    let digest = f.image.clone().unwrap_or_default();
    let mut out = parts::logs_and_boundary(stack, f);
    out.push(Desired::new(
        ecr::KIND,
        "repo",
        json!({
            "name": ecr::repository_name(name),
            "keep": app.keep_releases.max(1),
            "scan_on_push": true,
            "immutable_tags": true,
        }),
    ));
    let image_ref = concat(vec![r_attr("repo", "uri"), json!(format!("@{digest}"))]);
    out.push(Desired::new(
        ecr::IMAGE_KIND,
        ecr::image_id(&digest),
        json!({
            "repository": r("repo"),
            "uri": r_attr("repo", "uri"),
            "digest": digest,
            "binary": f.binary.to_string_lossy(),
        }),
    ));
    // Earlier releases' images stay for `rollback`: they are there already.
    for kept in f.kept_images.iter().filter(|d| **d != digest) {
        out.push(Desired::new(
            ecr::IMAGE_KIND,
            ecr::image_id(kept),
            json!({"repository": r("repo"), "uri": r_attr("repo", "uri"), "digest": kept}),
        ));
    }
    out.push(Desired::new(
        ecs_cluster::KIND,
        "cluster",
        json!({"name": name, "container_insights": false}),
    ));
    // The task's own rights: the file system through its access point,
    // and the channels of ECS Exec.
    out.push(role(
        stack,
        f,
        "task-role",
        "task-app-role",
        vec![
            json!({
                "Sid": "MountFiles",
                "Effect": "Allow",
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": r_attr("efs", "arn"),
                "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": r_attr("efs-ap", "arn")}},
            }),
            json!({
                "Sid": "ExecSessions",
                "Effect": "Allow",
                "Action": [
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                "Resource": "*",
            }),
        ],
    ));
    // What ECS itself does for the task: pull this repository's images,
    // write the log group's `app/` and `migrate/` streams, read the two
    // secrets the containers are given.
    let mut exec = vec![
        json!({
            "Sid": "RegistryToken",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        }),
        json!({
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": r_attr("repo", "arn"),
        }),
        json!({
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                concat(vec![r_attr("logs", "arn"), json!(":log-stream:app/*")]),
                concat(vec![r_attr("logs", "arn"), json!(":log-stream:migrate/*")]),
            ],
        }),
    ];
    exec.extend(parts::database_statements());
    out.push(role(stack, f, "exec-role", "task-exec-role", exec));
    // The file system refuses plain NFS and every client but the tasks.
    out.push(Desired::new(
        efs_policy::KIND,
        efs_policy::id_of("efs"),
        json!({
            "file_system_id": r("efs"),
            "policy": efs_policy::document(
                r_attr("efs", "arn"),
                r_attr("task-role", "arn"),
                r_attr("efs-ap", "arn"),
            ),
        }),
    ));
    let db = &stack.database;
    let app_user = parts::db_app_user(&db.username);
    let log = |prefix: &str| Container {
        log_group: crate::resources::log_group::app_group(name),
        log_region: f.region.clone(),
        log_prefix: prefix.to_string(),
        user: format!("{0}:{0}", image::APP_UID),
        read_only_root: true,
        ..Container::default()
    };
    let migrate = json!({
        "name": "migrate",
        "essential": false,
        "command": ["migrate", "--app-user", app_user],
        "environment": {"BOOKSTORE_DATABASE_URL": db_url(stack, &db.username), "BOOKSTORE_LOG_FORMAT": "json"},
        "secrets": {
            "BOOKSTORE_DATABASE_PASSWORD": concat(vec![r_attr("db", "secret_arn"), json!(":password::")]),
            "BOOKSTORE_APP_DB_PASSWORD": r_attr("db-app-secret", "arn"),
        },
    });
    let serve = json!({
        "name": APP_CONTAINER,
        "essential": true,
        "command": ["serve"],
        "port": app.port,
        "environment": {
            "BOOKSTORE_LISTEN": format!("0.0.0.0:{}", app.port),
            "BOOKSTORE_DATABASE_URL": db_url(stack, &app_user),
            "BOOKSTORE_DATA_DIR": image::DATA_DIR,
            "BOOKSTORE_LOG_FORMAT": "json",
        },
        "secrets": {"BOOKSTORE_DATABASE_PASSWORD": r_attr("db-app-secret", "arn")},
        "mounts": {"data": image::DATA_DIR},
        "after_success_of": "migrate",
    });
    let containers: Vec<Value> = [(migrate, "migrate"), (serve, APP_CONTAINER)]
        .into_iter()
        .map(|(mut c, prefix)| {
            let base = serde_json::to_value(log(prefix)).expect("a container serialises");
            for (k, v) in base.as_object().expect("an object") {
                c.as_object_mut()
                    .expect("an object")
                    .entry(k.clone())
                    .or_insert(v.clone());
            }
            c["image"] = image_ref.clone();
            c
        })
        .collect();
    let volume =
        json!({"name": "data", "file_system_id": r("efs"), "access_point_id": r("efs-ap")});
    out.push(
        Desired::new(
            ecs_task_definition::KIND,
            "task",
            json!({
                "family": family(name),
                "cpu": task.cpu.to_string(),
                "memory": task.memory.to_string(),
                "task_role_arn": r_attr("task-role", "arn"),
                "execution_role_arn": r_attr("exec-role", "arn"),
                "containers": containers,
                "volumes": [volume],
                "keep": app.keep_releases,
                "release": f.sha256,
                "commit": f.commit,
                // The revision `rollback` left the service on is not pruned.
                "spare": f.pinned.as_ref().map(|p| p.version.clone()),
            }),
        )
        // Pushed before any task pulls it.
        .after(ecr::image_id(&digest)),
    );
    let mut service = Desired::new(
        ecs_service::KIND,
        "service",
        json!({
            "name": SERVICE,
            "cluster": r("cluster"),
            // A service `rollback` left on an earlier revision stays there
            // while the file ships the binary rolled back from.
            "task_definition": match &f.pinned {
                Some(p) => json!(p.version),
                None => r_attr("task", "arn"),
            },
            "rolled_back": f.pinned.as_ref().map(|p| crate::resources::autoscaling_group::rolled_back_note(&p.tag)),
            "desired_count": app.desired_capacity,
            "subnets": sfx.iter().map(|s| r(&format!("subnet-private-{s}"))).collect::<Vec<_>>(),
            "security_groups": [r("sg-app")],
            "target_group_arn": r_attr("tg", "arn"),
            "container_name": APP_CONTAINER,
            "container_port": app.port,
            "grace_secs": app.health_check_grace,
            "circuit_breaker": true,
            "execute_command": true,
        }),
    )
    // Tasks register once something listens for them, and mount the
    // file system only through a policy that lets them.
    .after("listener-http")
    .after(efs_policy::id_of("efs"));
    if stack.network.endpoints {
        service.after.extend(endpoint_ids());
    }
    out.push(service);
    let metric = match app.scaling_metric {
        ScalingMetric::Cpu => "cpu",
        ScalingMetric::Requests => "requests",
    };
    out.push(Desired::new(
        service_scaling::KIND,
        "scaling",
        json!({
            "resource_id": r_attr("service", "resource_id"),
            "min": app.min_size,
            "max": app.max_size,
            "metric": metric,
            "target": app.scaling_target,
            "scaling_target": {"load_balancer_arn": r_attr("lb", "arn"), "target_group_arn": r_attr("tg", "arn")},
        }),
    ));
    out
}

/// The outputs of the app on Fargate.
pub fn outputs(f: &AppFacts) -> Vec<(&'static str, Value)> {
    vec![
        ("cluster", r("cluster")),
        ("service", r_attr("service", "arn")),
        ("task_definition", r_attr("task", "arn")),
        (
            "image",
            r_attr(
                &ecr::image_id(f.image.as_deref().unwrap_or_default()),
                "image",
            ),
        ),
    ]
}
