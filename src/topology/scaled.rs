//! The scaled shape: a Multi-AZ database, shared files, a load balancer
//! (with TLS when the stack has a domain), and an Auto Scaling group of
//! instances booting the app from the artifact bucket.

use serde_json::{json, Value};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::resources::efs_policy;
use crate::resources::{
    autoscaling_group, certificate, dns_alias, efs_access_point, efs_file_system, launch_template,
    listener, load_balancer, s3, target_group,
};
use crate::stack::{Runtime, ScalingMetric, Stack};
use crate::userdata;

use super::network::endpoint_ids;
use super::{parts, short_name, AppFacts, FILES_UID, TLS_POLICY};

/// Database, files, certificate, load balancer, identity, artifact, instances.
pub fn desired(stack: &Stack, sfx: &[String], f: &AppFacts) -> Vec<Desired> {
    let name = &stack.name;
    let app = &stack.app;
    let private: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-private-{s}")))
        .collect();
    let public: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-public-{s}")))
        .collect();
    let fargate = app.runtime == Runtime::Fargate;
    let mut out = parts::database(stack, private);
    out.extend([
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
                // beside the old one while the listener moves over; so is
                // the kind of target (Fargate tasks register by address).
                "name": match fargate {
                    false => short_name(name, &format!("app-{}", app.port), 32),
                    true => short_name(name, &format!("ip-{}", app.port), 32),
                },
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
    ]);
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
    if fargate {
        if let Some(tg) = out.iter_mut().find(|d| d.id == "tg") {
            tg.props.insert("target_type".into(), json!("ip"));
        }
        out.extend(super::fargate::desired(stack, sfx, f));
        return out;
    }
    let artifact = s3::artifact_id(&f.sha256);
    let key = s3::artifact_key(&f.sha256);
    // Requests without TLS are refused.
    let bucket = s3::bucket_name(name, &f.account, &f.region);
    out.extend(parts::artifacts(stack, f, s3::tls_only_policy(&bucket)));
    out.extend(parts::logs_and_boundary(stack, f));
    // Least privilege: read this artifact prefix, read the database's
    // secrets, mount the file system through its access point, write to
    // the stack's log group.
    let mut statements = vec![parts::read_artifact()];
    statements.extend(parts::database_statements());
    statements.push(json!({
        "Sid": "MountFiles",
        "Effect": "Allow",
        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
        "Resource": r_attr("efs", "arn"),
        "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": r_attr("efs-ap", "arn")}},
    }));
    statements.extend(parts::log_statements());
    out.extend(parts::identity(stack, f, statements));
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
    let db_vars = parts::database_vars(stack);
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
                        "db_host": db_vars["db_host"],
                        "db_port": db_vars["db_port"],
                        "db_name": db_vars["db_name"],
                        "db_user": db_vars["db_user"],
                        "db_secret_arn": db_vars["db_secret_arn"],
                        "db_app_user": db_vars["db_app_user"],
                        "db_app_secret_arn": db_vars["db_app_secret_arn"],
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

pub use super::parts::db_app_user;

/// The outputs of the scaled application.
pub fn outputs(stack: &Stack, f: &AppFacts) -> Vec<(&'static str, Value)> {
    let url = match &stack.domain {
        Some(d) => json!(format!("https://{}", d.name)),
        None => concat(vec![json!("http://"), r_attr("lb", "dns_name")]),
    };
    let mut out = vec![
        ("url", url),
        ("load_balancer_dns_name", r_attr("lb", "dns_name")),
        ("db_endpoint", r_attr("db", "endpoint")),
        ("db_secret_arn", r_attr("db", "secret_arn")),
        ("db_app_secret_arn", r_attr("db-app-secret", "arn")),
        ("file_system_id", r("efs")),
    ];
    if stack.app.runtime == Runtime::Fargate {
        out.extend(super::fargate::outputs(f));
        return out;
    }
    out.extend([
        ("autoscaling_group", r("asg")),
        ("artifact_key", r_attr(&s3::artifact_id(&f.sha256), "key")),
        (
            "launch_template_version",
            r_attr("launch-template", "latest_version"),
        ),
    ]);
    out
}
