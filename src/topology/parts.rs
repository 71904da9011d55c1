//! Parts every shape that runs the app is made of: the MySQL database,
//! the artifact bucket and the binaries in it, the log group, the
//! permissions boundary, the instances' role and profile.

use serde_json::{json, Value};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::resources::{
    boundary, db_instance, db_parameter_group, db_subnet_group, iam, log_group, s3, secret,
};
use crate::stack::Stack;

use super::{short_name, AppFacts};

/// The MySQL user the app serves as: the master user's name and `_app`
/// (at most 20 characters: RDS takes master names up to 16).
pub fn db_app_user(master: &str) -> String {
    format!("{master}_app")
}

/// The database in `subnets` behind security group `sg-db`, refusing
/// connections without TLS, and the app user's password.
pub fn database(stack: &Stack, subnets: Vec<Value>) -> Vec<Desired> {
    let name = &stack.name;
    let db = &stack.database;
    let family = db_parameter_group::family(&db.engine_version);
    vec![
        Desired::new(
            db_subnet_group::KIND,
            "db-subnets",
            json!({
                "name": format!("{name}-db-subnets"),
                "description": format!("Private subnets of stack {name}"),
                "subnet_ids": subnets,
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
    ]
}

/// The boot script's values naming the database and its secrets.
pub fn database_vars(stack: &Stack) -> Value {
    let db = &stack.database;
    json!({
        "db_host": r_attr("db", "endpoint"),
        "db_port": 3306,
        "db_name": db.name,
        "db_user": db.username,
        "db_secret_arn": r_attr("db", "secret_arn"),
        "db_app_user": db_app_user(&db.username),
        "db_app_secret_arn": r_attr("db-app-secret", "arn"),
    })
}

/// The instances' rights to the database's two secrets: the master
/// user's (the migrate step) and the app user's (the web server).
pub fn database_statements() -> Vec<Value> {
    vec![
        json!({
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": r_attr("db", "secret_arn"),
        }),
        json!({
            "Sid": "ReadAppDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": r_attr("db-app-secret", "arn"),
        }),
    ]
}

/// The artifact bucket (with `policy`), this release's binary, and the
/// earlier releases' binaries kept for `rollback`.
pub fn artifacts(stack: &Stack, f: &AppFacts, policy: Value) -> Vec<Desired> {
    let bucket = s3::bucket_name(&stack.name, &f.account, &f.region);
    let mut out = vec![
        Desired::new(
            s3::BUCKET,
            "artifacts",
            json!({
                "name": bucket,
                "versioning": true,
                "encryption": "AES256",
                "block_public_access": true,
                "policy": policy,
            }),
        ),
        Desired::new(
            s3::ARTIFACT,
            s3::artifact_id(&f.sha256),
            json!({
                "bucket": r("artifacts"),
                "key": s3::artifact_key(&f.sha256),
                "sha256": f.sha256,
                "file": f.binary.to_string_lossy(),
            }),
        ),
    ];
    // Earlier releases' binaries stay for `rollback`; they exist already
    // (only present ones are kept), so nothing is uploaded.
    for sha in f.kept.iter().filter(|s| **s != f.sha256) {
        out.push(Desired::new(
            s3::ARTIFACT,
            s3::artifact_id(sha),
            json!({"bucket": r("artifacts"), "key": s3::artifact_key(sha), "sha256": sha}),
        ));
    }
    out
}

/// The log group, and the permissions boundary every role of the stack
/// carries (the most they may ever do), made before them.
pub fn logs_and_boundary(stack: &Stack, f: &AppFacts) -> Vec<Desired> {
    vec![
        Desired::new(
            log_group::KIND,
            "logs",
            json!({
                "name": log_group::app_group(&stack.name),
                "retention_days": stack.logs.retention_days,
            }),
        ),
        Desired::new(
            boundary::KIND,
            "boundary",
            boundary::props(&stack.name, &f.account, &f.region),
        ),
    ]
}

/// The statement letting an instance read the releases' binaries.
pub fn read_artifact() -> Value {
    json!({
        "Sid": "ReadArtifact",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": concat(vec![r_attr("artifacts", "arn"), json!(format!("/{}*", s3::KEY_PREFIX))]),
    })
}

/// The statements letting an instance write its own stream of the log group.
pub fn log_statements() -> Vec<Value> {
    vec![
        // CreateLogStream is authorized on the log group, PutLogEvents on
        // the stream ("Actions, resources, and condition keys for Amazon
        // CloudWatch Logs"). Each instance writes the stream named by its
        // id. AWS offers no way to bind that stream to the calling
        // instance: the only policy variables that name it,
        // `${ec2:SourceInstanceARN}` (the instance's ARN) and
        // `${aws:userid}` (`role-id:instance-id`) ("IAM policy elements:
        // Variables and tags", IAM User Guide), both contain ':', which a
        // stream name cannot; a variable cannot be cut down to the
        // instance id; and CloudWatch Logs has no condition key for a
        // stream's name. The strongest rule left is streams named like
        // instance ids (`i-*`) and nothing else: an instance (or whoever
        // runs code on it) can still write into another instance's
        // stream, as the README says.
        json!({
            "Sid": "CreateLogStream",
            "Effect": "Allow",
            "Action": "logs:CreateLogStream",
            "Resource": r_attr("logs", "arn"),
        }),
        json!({
            "Sid": "PutLogEvents",
            "Effect": "Allow",
            "Action": "logs:PutLogEvents",
            "Resource": concat(vec![r_attr("logs", "arn"), json!(":log-stream:i-*")]),
        }),
    ]
}

/// The instances' role name.
pub fn role_name(stack: &str, region: &str) -> String {
    short_name(stack, &format!("{region}-app-role"), 64)
}

/// The instances' instance profile name.
pub fn profile_name(stack: &str, region: &str) -> String {
    short_name(stack, &format!("{region}-app-profile"), 64)
}

/// The ARN the instances' instance profile will have (known before it exists).
pub fn profile_arn(stack: &str, f: &AppFacts) -> String {
    format!(
        "arn:{}:iam::{}:instance-profile{}{}",
        partition(&f.region),
        f.account,
        iam::path(stack),
        profile_name(stack, &f.region)
    )
}

/// The AWS partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The instances' role, trusted by EC2 alone, allowed `statements` within
/// the boundary, and its instance profile. Systems Manager reaches the
/// instances (Run Command, Session Manager) through the managed policy,
/// without SSH.
pub fn identity(stack: &Stack, f: &AppFacts, statements: Vec<Value>) -> Vec<Desired> {
    let name = &stack.name;
    vec![
        Desired::new(
            iam::ROLE,
            "role",
            json!({
                "name": role_name(name, &f.region),
                "path": iam::path(name),
                // The whole trust policy: a statement added by hand is drift.
                "trust_policy": trust("ec2.amazonaws.com"),
                // No inline policy but this one: one added by hand is drift.
                "other_inline_policies": {},
                "policy": {"Version": "2012-10-17", "Statement": statements},
                "managed_policies": [super::ssm_core_policy(&f.region)],
                "permissions_boundary": r_attr("boundary", "arn"),
            }),
        ),
        Desired::new(
            iam::PROFILE,
            "profile",
            json!({
                "name": profile_name(name, &f.region),
                "path": iam::path(name),
                "role": r("role"),
            }),
        ),
    ]
}

/// A trust policy letting one AWS service assume a role.
pub fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }],
    })
}
