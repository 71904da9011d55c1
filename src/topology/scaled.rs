//! The scaled shape: a Multi-AZ database, shared files, a load balancer
//! (with TLS when the stack has a domain), and an Auto Scaling group of
//! instances booting the app from the artifact bucket.

use serde_json::{json, Value};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::resources::efs_policy;
use crate::resources::{
    autoscaling_group, boundary, certificate, db_instance, db_subnet_group, dns_alias,
    efs_access_point, efs_file_system, iam, launch_template, listener, load_balancer, log_group,
    s3, target_group,
};
use crate::resources::{db_parameter_group, secret};
use crate::stack::{ScalingMetric, Stack};
use crate::userdata;

use super::network::endpoint_ids;
use super::{short_name, ssm_core_policy, AppFacts, FILES_UID, TLS_POLICY};

/// Database, files, certificate, load balancer, identity, artifact, instances.
pub fn desired(stack: &Stack, sfx: &[String], f: &AppFacts) -> Vec<Desired> {
    let name = &stack.name;
    let db = &stack.database;
    let app = &stack.app;
    let family = db_parameter_group::family(&db.engine_version);
    let private: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-private-{s}")))
        .collect();
    let public: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-public-{s}")))
        .collect();
    let mut out = vec![
        Desired::new(
            db_subnet_group::KIND,
            "db-subnets",
            json!({
                "name": format!("{name}-db-subnets"),
                "description": format!("Private subnets of stack {name}"),
                "subnet_ids": private,
            }),
        ),
        // The database refuses connections without TLS.
        Desired::new(
            db_parameter_group::KIND,
            "db-params",
            json!({
                "name": db_parameter_group::name(name, &family),
                "family": family,
                "description": format!("Settings of the database of stack {name}"),
                "parameters": {"require_secure_transport": "1"},
            }),
        ),
        Desired::new(
            db_instance::KIND,
            "db",
            json!({
                "identifier": format!("{name}-db"),
                "engine": "mysql",
                "engine_version": db.engine_version,
                "instance_class": db.instance_class,
                "allocated_storage": db.allocated_storage,
                "multi_az": db.multi_az,
                "backup_retention_days": db.backup_retention_days,
                "storage_encrypted": true,
                "publicly_accessible": false,
                "deletion_protection": db.deletion_protection,
                "db_subnet_group": r("db-subnets"),
                "parameter_group": r("db-params"),
                "parameters_applied": true,
                "security_group_ids": [r("sg-db")],
                "db_name": db.name,
                "master_username": db.username,
                "apply_immediately": db.apply_immediately,
                "final_snapshot": db.final_snapshot,
            }),
        ),
        // The password of the app's own database user (made by the
        // instances' migrate step, with the master user's rights).
        Desired::new(
            secret::KIND,
            "db-app-secret",
            json!({
                "name": secret::db_app_secret_name(name),
                "description": format!("Password of the app's database user ({}) of stack {name}", db_app_user(&db.username)),
            }),
        ),
        Desired::new(
            efs_file_system::KIND,
            "efs",
            json!({
                "encrypted": true,
                "performance_mode": "generalPurpose",
                "mount_targets": sfx.iter().map(|s| json!({
                    "subnet_id": r(&format!("subnet-private-{s}")),
                    "security_groups": [r("sg-efs")],
                })).collect::<Vec<_>>(),
            }),
        ),
        Desired::new(
            efs_access_point::KIND,
            "efs-ap",
            json!({
                "file_system_id": r("efs"),
                "uid": FILES_UID,
                "gid": FILES_UID,
                "path": "/bookstore",
                "permissions": "0750",
            }),
        ),
        Desired::new(
            target_group::KIND,
            "tg",
            json!({
                // The port is in the name, so a new port's group can exist
                // beside the old one while the listener moves over.
                "name": short_name(name, &format!("app-{}", app.port), 32),
                "port": app.port,
                "protocol": "HTTP",
                "vpc_id": r("vpc"),
                "health_check_path": "/healthz",
                "health_check_interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
                "deregistration_delay": 30,
            }),
        ),
        Desired::new(
            load_balancer::KIND,
            "lb",
            json!({
                "name": short_name(name, "lb", 32),
                "subnets": public,
                "security_groups": [r("sg-lb")],
                "scheme": "internet-facing",
            }),
        )
        .after("igw"),
    ];
    let forward = json!({"type": "forward", "target_group_arn": r_attr("tg", "arn")});
    match &stack.domain {
        Some(d) => {
            out.push(Desired::new(
                certificate::KIND,
                "cert",
                json!({
                    "domain": d.name,
                    "alternative_names": d.alternative_names,
                    "hosted_zone_id": f.hosted_zone_id,
                    "validation_timeout_secs": d.validation_timeout,
                }),
            ));
            out.push(Desired::new(
                listener::KIND,
                "listener-http",
                json!({
                    "load_balancer_arn": r_attr("lb", "arn"),
                    "port": 80,
                    "protocol": "HTTP",
                    "action": {"type": "redirect", "protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                }),
            ));
            out.push(Desired::new(
                listener::KIND,
                "listener-https",
                json!({
                    "load_balancer_arn": r_attr("lb", "arn"),
                    "port": 443,
                    "protocol": "HTTPS",
                    "certificate_arn": r_attr("cert", "arn"),
                    "ssl_policy": TLS_POLICY,
                    "action": forward,
                }),
            ));
            if let (true, Some(zone)) = (d.alias, &f.hosted_zone_id) {
                out.push(Desired::new(
                    dns_alias::KIND,
                    "alias",
                    json!({
                        "zone_id": zone,
                        "name": d.name,
                        "target_dns": r_attr("lb", "dns_name"),
                        "target_zone_id": r_attr("lb", "zone_id"),
                    }),
                ));
            }
        }
        None => out.push(Desired::new(
            listener::KIND,
            "listener-http",
            json!({
                "load_balancer_arn": r_attr("lb", "arn"),
                "port": 80,
                "protocol": "HTTP",
                "action": forward,
            }),
        )),
    }
    let artifact = s3::artifact_id(&f.sha256);
    let key = s3::artifact_key(&f.sha256);
    out.push(Desired::new(
        s3::BUCKET,
        "artifacts",
        json!({
            "name": s3::bucket_name(name, &f.account, &f.region),
            "versioning": true,
            "encryption": "AES256",
            "block_public_access": true,
            // Requests without TLS are refused.
            "policy": s3::tls_only_policy(&s3::bucket_name(name, &f.account, &f.region)),
        }),
    ));
    out.push(Desired::new(
        s3::ARTIFACT,
        artifact.clone(),
        json!({
            "bucket": r("artifacts"),
            "key": key,
            "sha256": f.sha256,
            "file": f.binary.to_string_lossy(),
        }),
    ));
    // Earlier releases' binaries stay for `rollback`; they exist already
    // (only present ones are kept), so nothing is uploaded.
    for sha in f.kept.iter().filter(|s| **s != f.sha256) {
        out.push(Desired::new(
            s3::ARTIFACT,
            s3::artifact_id(sha),
            json!({"bucket": r("artifacts"), "key": s3::artifact_key(sha), "sha256": sha}),
        ));
    }
    out.push(Desired::new(
        log_group::KIND,
        "logs",
        json!({
            "name": log_group::app_group(name),
            "retention_days": stack.logs.retention_days,
        }),
    ));
    // Least privilege: read this artifact prefix, read the database's
    // secret, mount the file system through its access point, write to
    // the stack's log group. The managed policy lets Systems Manager
    // reach the instances (Run Command, Session Manager) without SSH.
    // The most the stack's roles may ever do, made before them.
    out.push(Desired::new(
        boundary::KIND,
        "boundary",
        boundary::props(name, &f.account, &f.region),
    ));
    out.push(Desired::new(
        iam::ROLE,
        "role",
        json!({
            "name": short_name(name, &format!("{}-app-role", f.region), 64),
            "path": iam::path(name),
            // The whole trust policy: a statement added by hand is drift.
            "trust_policy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            },
            // No inline policy but the one above: one added by hand is drift.
            "other_inline_policies": {},
            "policy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadArtifact",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": concat(vec![r_attr("artifacts", "arn"), json!(format!("/{}*", s3::KEY_PREFIX))]),
                    },
                    {
                        "Sid": "ReadDatabaseSecret",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": r_attr("db", "secret_arn"),
                    },
                    // The app user's password, which the boot script hands
                    // to the web server.
                    {
                        "Sid": "ReadAppDatabaseSecret",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": r_attr("db-app-secret", "arn"),
                    },
                    {
                        "Sid": "MountFiles",
                        "Effect": "Allow",
                        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                        "Resource": r_attr("efs", "arn"),
                        "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": r_attr("efs-ap", "arn")}},
                    },
                    // CreateLogStream is authorized on the log group,
                    // PutLogEvents on the stream ("Actions, resources, and
                    // condition keys for Amazon CloudWatch Logs"). Each
                    // instance writes the stream named by its id. AWS
                    // offers no way to bind that stream to the calling
                    // instance: the only policy variables that name it,
                    // `${ec2:SourceInstanceARN}` (the instance's ARN) and
                    // `${aws:userid}` (`role-id:instance-id`) ("IAM policy
                    // elements: Variables and tags", IAM User Guide), both
                    // contain ':', which a stream name cannot; a variable
                    // cannot be cut down to the instance id; and CloudWatch
                    // Logs has no condition key for a stream's name. The
                    // strongest rule left is streams named like instance
                    // ids (`i-*`) and nothing else: an instance (or whoever
                    // runs code on it) can still write into another
                    // instance's stream, as the README says.
                    {
                        "Sid": "CreateLogStream",
                        "Effect": "Allow",
                        "Action": "logs:CreateLogStream",
                        "Resource": r_attr("logs", "arn"),
                    },
                    {
                        "Sid": "PutLogEvents",
                        "Effect": "Allow",
                        "Action": "logs:PutLogEvents",
                        "Resource": concat(vec![r_attr("logs", "arn"), json!(":log-stream:i-*")]),
                    },
                ],
            },
            "managed_policies": [ssm_core_policy(&f.region)],
            "permissions_boundary": r_attr("boundary", "arn"),
        }),
    ));
    out.push(Desired::new(
        iam::PROFILE,
        "profile",
        json!({
            "name": short_name(name, &format!("{}-app-profile", f.region), 64),
            "path": iam::path(name),
            "role": r("role"),
        }),
    ));
    // The file system refuses plain NFS and every client but the role.
    out.push(Desired::new(
        efs_policy::KIND,
        efs_policy::id_of("efs"),
        json!({
            "file_system_id": r("efs"),
            "policy": efs_policy::document(
                r_attr("efs", "arn"),
                r_attr("role", "arn"),
                r_attr("efs-ap", "arn"),
            ),
        }),
    ));
    out.push(
        Desired::new(
            launch_template::KIND,
            "launch-template",
            json!({
                "name": short_name(name, "app-lt", 64),
                "image_id": f.ami,
                "instance_type": app.instance_type,
                "security_group_ids": [r("sg-app")],
                "instance_profile_arn": r_attr("profile", "arn"),
                "http_tokens": "required",
                // The root volume, encrypted with the account's EBS key.
                "block_device_mappings": [{
                    "device_name": f.root_device,
                    "volume_size": f.root_volume_gib,
                    "encrypted": true,
                    "volume_type": "gp3",
                    "delete_on_termination": true,
                }],
                "release": {"commit": f.commit, "keep": app.keep_releases},
                "user_data": {
                    "template": userdata::template_digest(),
                    "vars": {
                        "stack": name,
                        "region": f.region,
                        "bucket": r("artifacts"),
                        "key": key,
                        "sha256": f.sha256,
                        "file_system_id": r("efs"),
                        "access_point_id": r("efs-ap"),
                        "data_dir": app.data_dir,
                        "port": app.port,
                        "db_host": r_attr("db", "endpoint"),
                        "db_port": 3306,
                        "db_name": db.name,
                        "db_user": db.username,
                        "db_secret_arn": r_attr("db", "secret_arn"),
                        "db_app_user": db_app_user(&db.username),
                        "db_app_secret_arn": r_attr("db-app-secret", "arn"),
                        "app_uid": FILES_UID,
                    },
                },
            }),
        )
        .after(artifact),
    );
    let scaling = match app.scaling_metric {
        ScalingMetric::Cpu => json!({"metric": "cpu", "target": app.scaling_target}),
        ScalingMetric::Requests => json!({"metric": "requests", "target": app.scaling_target}),
    };
    out.push(
        Desired::new(
            autoscaling_group::KIND,
            "asg",
            json!({
                "name": short_name(name, "app", 255),
                "launch_template_id": r("launch-template"),
                // A group `rollback` left on an earlier release stays there
                // while the file ships the binary rolled back from.
                "launch_template_version": match &f.pinned {
                    Some(p) => json!(p.version),
                    None => r_attr("launch-template", "latest_version"),
                },
                "subnets": sfx.iter().map(|s| r(&format!("subnet-private-{s}"))).collect::<Vec<_>>(),
                "target_group_arns": [r_attr("tg", "arn")],
                "min": app.min_size,
                "max": app.max_size,
                "desired": app.desired_capacity,
                "health_check_grace": app.health_check_grace,
                "scaling": scaling,
                "scaling_target": {"load_balancer_arn": r_attr("lb", "arn"), "target_group_arn": r_attr("tg", "arn")},
                "refresh": {"min_healthy": app.refresh_min_healthy, "warmup": app.refresh_warmup},
                // Cleared by `up` when it rolls forward after a `rollback`.
                "rolled_back": f.pinned.as_ref().map(|p| autoscaling_group::rolled_back_note(&p.tag)),
            }),
        )
        // Instances register once something listens for them.
        .after("listener-http"),
    );
    // Without a NAT gateway, instances boot only once the endpoints are there.
    if stack.network.endpoints {
        let asg = out.last_mut().expect("the group was just added");
        asg.after.extend(endpoint_ids());
    }
    out
}

/// The MySQL user the app serves as: the master user's name and `_app`
/// (at most 20 characters: RDS takes master names up to 16).
pub fn db_app_user(master: &str) -> String {
    format!("{master}_app")
}

/// The outputs of the scaled application.
pub fn outputs(stack: &Stack, f: &AppFacts) -> Vec<(&'static str, Value)> {
    let url = match &stack.domain {
        Some(d) => json!(format!("https://{}", d.name)),
        None => concat(vec![json!("http://"), r_attr("lb", "dns_name")]),
    };
    vec![
        ("url", url),
        ("load_balancer_dns_name", r_attr("lb", "dns_name")),
        ("db_endpoint", r_attr("db", "endpoint")),
        ("db_secret_arn", r_attr("db", "secret_arn")),
        ("db_app_secret_arn", r_attr("db-app-secret", "arn")),
        ("file_system_id", r("efs")),
        ("autoscaling_group", r("asg")),
        ("artifact_key", r_attr(&s3::artifact_id(&f.sha256), "key")),
        (
            "launch_template_version",
            r_attr("launch-template", "latest_version"),
        ),
    ]
}
