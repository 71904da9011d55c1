//! The desired resources of a stack: a pure function of the stack and a few
//! looked-up facts (zone names, account, AMI). No API calls here.

use serde_json::{json, Value};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::resources::{
    autoscaling_group, certificate, db_instance, db_subnet_group, dns_alias, efs_access_point,
    efs_file_system, elastic_ip, iam, internet_gateway, launch_template, listener, load_balancer,
    log_group, nat_gateway, route_table, s3, security_group, subnet, target_group, vpc,
    vpc_endpoint,
};
use crate::stack::{Nat, ScalingMetric, Stack, Topology};
use crate::userdata;

/// Facts looked up before building the desired state.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Zone names, one per zone the stack uses, in order.
    pub zones: Vec<String>,
    /// The rest is only looked up for the full topology.
    pub app: Option<AppFacts>,
}

#[derive(Debug, Clone)]
pub struct AppFacts {
    pub region: String,
    pub account: String,
    pub ami: String,
    /// The binary to ship and its sha256 (hex).
    pub binary: std::path::PathBuf,
    pub sha256: String,
    /// The git commit the stack file's repository is at (`up` time), if any.
    pub commit: Option<String>,
    /// Earlier releases' binaries (sha256) whose artifacts are kept for
    /// `rollback` (see [`crate::releases::kept_artifacts`]).
    pub kept: Vec<String>,
    /// The release `rollback` left the group on, while the stack file still
    /// ships the binary rolled back from: `up` keeps the group there.
    pub pinned: Option<Pinned>,
    /// The Route 53 zone id of the stack's domain, when it names a zone.
    pub hosted_zone_id: Option<String>,
}

/// A group kept on a rolled-back release: its launch template version and
/// the group's rollback tag (`<version> from <version>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pinned {
    pub version: String,
    pub tag: String,
}

/// A name of at most `max` characters: `<stack>-<suffix>`, or, when that is
/// too long, the stack name cut short and a hash of the whole.
pub fn short_name(stack: &str, suffix: &str, max: usize) -> String {
    let full = format!("{stack}-{suffix}");
    if full.len() <= max {
        return full;
    }
    use sha2::{Digest, Sha256};
    let h = hex::encode(Sha256::digest(full.as_bytes()));
    let keep = max.saturating_sub(suffix.len() + 10);
    format!("{}-{}-{}", &stack[..keep.min(stack.len())], &h[..8], suffix)
}

/// The short suffix naming a zone's resources: `us-east-1a` -> `a`.
pub fn zone_suffix(zone: &str) -> String {
    let s: String = zone
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let s: String = s.chars().rev().collect();
    if s.is_empty() {
        zone.to_string()
    } else {
        s
    }
}

/// Every resource of the stack.
pub fn desired(stack: &Stack, facts: &Facts) -> Vec<Desired> {
    let net = &stack.network;
    let mut out = vec![
        Desired::new(
            vpc::KIND,
            "vpc",
            json!({"cidr": net.cidr.to_string(), "dns_support": true, "dns_hostnames": true}),
        ),
        Desired::new(internet_gateway::KIND, "igw", json!({"vpc_id": r("vpc")})),
    ];
    let sfx: Vec<String> = facts.zones.iter().map(|z| zone_suffix(z)).collect();
    for (i, zone) in facts.zones.iter().enumerate() {
        let s = &sfx[i];
        out.push(Desired::new(
            subnet::KIND,
            format!("subnet-public-{s}"),
            json!({"vpc_id": r("vpc"), "cidr": net.public_subnets[i].to_string(), "zone": zone}),
        ));
        out.push(Desired::new(
            subnet::KIND,
            format!("subnet-private-{s}"),
            json!({"vpc_id": r("vpc"), "cidr": net.private_subnets[i].to_string(), "zone": zone}),
        ));
    }
    out.push(Desired::new(
        route_table::KIND,
        "rt-public",
        json!({
            "vpc_id": r("vpc"),
            "routes": [{"destination": "0.0.0.0/0", "gateway_id": r("igw")}],
            "subnets": sfx.iter().map(|s| r(&format!("subnet-public-{s}"))).collect::<Vec<_>>(),
        }),
    ));
    let nat_zones: Vec<&String> = match net.nat {
        Nat::None => vec![],
        Nat::Single => sfx.iter().take(1).collect(),
        Nat::PerAz => sfx.iter().collect(),
    };
    for s in &nat_zones {
        out.push(Desired::new(
            elastic_ip::KIND,
            format!("eip-nat-{s}"),
            json!({}),
        ));
        // The NAT gateway needs the internet gateway attached before it works.
        out.push(
            Desired::new(
                nat_gateway::KIND,
                format!("nat-{s}"),
                json!({
                    "subnet_id": r(&format!("subnet-public-{s}")),
                    "allocation_id": r(&format!("eip-nat-{s}")),
                }),
            )
            .after("igw"),
        );
    }
    for s in &sfx {
        let nat = match net.nat {
            Nat::None => None,
            Nat::Single => Some(nat_zones[0].clone()),
            Nat::PerAz => Some(s.clone()),
        };
        let routes: Vec<Value> = nat
            .map(|n| json!({"destination": "0.0.0.0/0", "nat_gateway_id": r(&format!("nat-{n}"))}))
            .into_iter()
            .collect();
        out.push(Desired::new(
            route_table::KIND,
            format!("rt-private-{s}"),
            json!({
                "vpc_id": r("vpc"),
                "routes": routes,
                "subnets": [r(&format!("subnet-private-{s}"))],
            }),
        ));
    }
    let sg = |id: &str, what: &str, ingress: Value| {
        Desired::new(
            security_group::KIND,
            id,
            json!({
                "vpc_id": r("vpc"),
                "name": format!("{}-{}", stack.name, id),
                "description": format!("{what} of stack {}", stack.name),
                "ingress": ingress,
            }),
        )
    };
    out.push(sg(
        "sg-lb",
        "Load balancer",
        json!([
            {"protocol": "tcp", "port": 80, "cidr": "0.0.0.0/0"},
            {"protocol": "tcp", "port": 443, "cidr": "0.0.0.0/0"},
        ]),
    ));
    out.push(sg(
        "sg-app",
        "App instances",
        json!([{"protocol": "tcp", "port": stack.app.port, "source_group": r("sg-lb")}]),
    ));
    out.push(sg(
        "sg-db",
        "Database",
        json!([{"protocol": "tcp", "port": 3306, "source_group": r("sg-app")}]),
    ));
    out.push(sg(
        "sg-efs",
        "File system",
        json!([{"protocol": "tcp", "port": 2049, "source_group": r("sg-app")}]),
    ));
    if let (Topology::Full, Some(app)) = (stack.topology, &facts.app) {
        if net.endpoints {
            out.push(sg(
                "sg-endpoints",
                "VPC endpoints",
                json!([{"protocol": "tcp", "port": 443, "source_group": r("sg-app")}]),
            ));
            out.extend(endpoints(&sfx, &app.region));
        }
        out.extend(application(stack, &sfx, app));
    }
    out
}

/// The services the instances call: Systems Manager's three (Run Command
/// and Session Manager, "Creating VPC endpoints for Systems Manager"),
/// Secrets Manager (the database password) and CloudWatch Logs, through
/// interface endpoints; S3 (the binary) through a gateway endpoint.
pub const INTERFACE_ENDPOINTS: &[&str] = &[
    "ssm",
    "ssmmessages",
    "ec2messages",
    "secretsmanager",
    "logs",
];

/// The logical ids of the endpoints.
pub fn endpoint_ids() -> Vec<String> {
    INTERFACE_ENDPOINTS
        .iter()
        .chain(&["s3"])
        .map(|s| format!("vpce-{s}"))
        .collect()
}

/// VPC endpoints in the private subnets (interface), on the private route
/// tables (gateway), reached from the app instances only.
fn endpoints(sfx: &[String], region: &str) -> Vec<Desired> {
    let private: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-private-{s}")))
        .collect();
    let tables: Vec<Value> = sfx.iter().map(|s| r(&format!("rt-private-{s}"))).collect();
    let mut out: Vec<Desired> = INTERFACE_ENDPOINTS
        .iter()
        .map(|svc| {
            Desired::new(
                vpc_endpoint::KIND,
                format!("vpce-{svc}"),
                json!({
                    "vpc_id": r("vpc"),
                    "service_name": format!("com.amazonaws.{region}.{svc}"),
                    "type": "Interface",
                    "subnet_ids": private,
                    "security_group_ids": [r("sg-endpoints")],
                    "route_table_ids": [],
                }),
            )
        })
        .collect();
    out.push(Desired::new(
        vpc_endpoint::KIND,
        "vpce-s3",
        json!({
            "vpc_id": r("vpc"),
            "service_name": format!("com.amazonaws.{region}.s3"),
            "type": "Gateway",
            "subnet_ids": [],
            "security_group_ids": [],
            "route_table_ids": tables,
        }),
    ));
    out
}

/// The TLS policy of the HTTPS listener: TLS 1.3 and 1.2 only.
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// The uid and gid files on the shared file system belong to.
pub const FILES_UID: u32 = 50000;

/// The AWS managed policy giving an instance what Systems Manager needs
/// (Run Command, Session Manager): "AWS managed policies for Amazon EC2
/// Systems Manager", AmazonSSMManagedInstanceCore.
pub fn ssm_core_policy(region: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!("arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")
}

/// Database, files, certificate, load balancer, identity, artifact, instances.
fn application(stack: &Stack, sfx: &[String], f: &AppFacts) -> Vec<Desired> {
    let name = &stack.name;
    let db = &stack.database;
    let app = &stack.app;
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
                "security_group_ids": [r("sg-db")],
                "db_name": db.name,
                "master_username": db.username,
                "apply_immediately": db.apply_immediately,
                "final_snapshot": db.final_snapshot,
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
    out.push(Desired::new(
        iam::ROLE,
        "role",
        json!({
            "name": short_name(name, &format!("{}-app-role", f.region), 64),
            "path": iam::path(name),
            "assume_service": "ec2.amazonaws.com",
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
                    {
                        "Sid": "MountFiles",
                        "Effect": "Allow",
                        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                        "Resource": r_attr("efs", "arn"),
                        "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": r_attr("efs-ap", "arn")}},
                    },
                    // CreateLogStream is authorized on the log group,
                    // PutLogEvents on the stream ("Actions, resources, and
                    // condition keys for Amazon CloudWatch Logs").
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
                        "Resource": concat(vec![r_attr("logs", "arn"), json!(":log-stream:*")]),
                    },
                ],
            },
            "managed_policies": [ssm_core_policy(&f.region)],
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

/// The stack's outputs: names and values that may hold references.
pub fn outputs(stack: &Stack, facts: &Facts) -> Vec<(&'static str, Value)> {
    let sfx: Vec<String> = facts.zones.iter().map(|z| zone_suffix(z)).collect();
    let nat_zones = match stack.network.nat {
        Nat::None => &sfx[..0],
        Nat::Single => &sfx[..1],
        Nat::PerAz => &sfx[..],
    };
    let mut out = vec![
        ("vpc_id", r("vpc")),
        (
            "public_subnet_ids",
            Value::Array(
                sfx.iter()
                    .map(|s| r(&format!("subnet-public-{s}")))
                    .collect(),
            ),
        ),
        (
            "private_subnet_ids",
            Value::Array(
                sfx.iter()
                    .map(|s| r(&format!("subnet-private-{s}")))
                    .collect(),
            ),
        ),
        (
            "nat_public_ips",
            Value::Array(
                nat_zones
                    .iter()
                    .map(|s| r_attr(&format!("eip-nat-{s}"), "public_ip"))
                    .collect(),
            ),
        ),
        ("lb_security_group_id", r("sg-lb")),
        ("app_security_group_id", r("sg-app")),
        ("db_security_group_id", r("sg-db")),
        ("efs_security_group_id", r("sg-efs")),
    ];
    if let (Topology::Full, Some(f)) = (stack.topology, &facts.app) {
        let url = match &stack.domain {
            Some(d) => json!(format!("https://{}", d.name)),
            None => concat(vec![json!("http://"), r_attr("lb", "dns_name")]),
        };
        out.extend([
            ("url", url),
            ("load_balancer_dns_name", r_attr("lb", "dns_name")),
            ("db_endpoint", r_attr("db", "endpoint")),
            ("db_secret_arn", r_attr("db", "secret_arn")),
            ("file_system_id", r("efs")),
            ("autoscaling_group", r("asg")),
            ("artifact_key", r_attr(&s3::artifact_id(&f.sha256), "key")),
            (
                "launch_template_version",
                r_attr("launch-template", "latest_version"),
            ),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::topo_order;
    use std::path::Path;

    fn stack(extra: &str) -> Stack {
        crate::stack::parse(Path::new("t.toml"), &format!("name = \"t\"\n{extra}")).unwrap()
    }

    fn facts(n: usize) -> Facts {
        Facts {
            zones: ["us-east-1a", "us-east-1b", "us-east-1c"][..n]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            app: None,
        }
    }

    fn ids(d: &[Desired]) -> Vec<&str> {
        d.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn default_stack_has_the_whole_network_layer() {
        let d = desired(&stack(""), &facts(2));
        assert_eq!(
            ids(&d),
            [
                "vpc",
                "igw",
                "subnet-public-a",
                "subnet-private-a",
                "subnet-public-b",
                "subnet-private-b",
                "rt-public",
                "eip-nat-a",
                "nat-a",
                "rt-private-a",
                "rt-private-b",
                "sg-lb",
                "sg-app",
                "sg-db",
                "sg-efs"
            ]
        );
        // Both private tables go through the single NAT gateway.
        for rt in ["rt-private-a", "rt-private-b"] {
            let t = d.iter().find(|x| x.id == rt).unwrap();
            assert_eq!(t.props["routes"][0]["nat_gateway_id"], r("nat-a"));
        }
        let nodes: Vec<(String, Vec<String>)> =
            d.iter().map(|x| (x.id.clone(), x.deps())).collect();
        topo_order(&nodes).expect("acyclic and complete");
    }

    #[test]
    fn nat_modes_change_gateways_and_private_routes() {
        let none = desired(
            &stack("topology = \"network\"\n[network]\nnat = \"none\"\n"),
            &facts(2),
        );
        assert!(!ids(&none)
            .iter()
            .any(|i| i.starts_with("nat-") || i.starts_with("eip-")));
        let t = none.iter().find(|x| x.id == "rt-private-b").unwrap();
        assert_eq!(t.props["routes"], json!([]));

        let per = desired(
            &stack("[network]\nnat = \"per-az\"\naz_count = 3\n"),
            &facts(3),
        );
        for s in ["a", "b", "c"] {
            assert!(ids(&per).contains(&format!("nat-{s}").as_str()));
            let t = per
                .iter()
                .find(|x| x.id == format!("rt-private-{s}"))
                .unwrap();
            assert_eq!(
                t.props["routes"][0]["nat_gateway_id"],
                r(&format!("nat-{s}"))
            );
        }
    }

    #[test]
    fn only_the_load_balancer_is_open_to_the_world() {
        let d = desired(&stack("[app]\nport = 9000\n"), &facts(2));
        for g in d.iter().filter(|x| x.kind == security_group::KIND) {
            let open = g.props["ingress"]
                .as_array()
                .unwrap()
                .iter()
                .any(|rule| rule.get("cidr") == Some(&json!("0.0.0.0/0")));
            assert_eq!(open, g.id == "sg-lb", "{}", g.id);
        }
        let app = d.iter().find(|x| x.id == "sg-app").unwrap();
        assert_eq!(
            app.props["ingress"],
            json!([{"protocol": "tcp", "port": 9000, "source_group": r("sg-lb")}])
        );
        let db = d.iter().find(|x| x.id == "sg-db").unwrap();
        assert_eq!(db.props["ingress"][0]["source_group"], r("sg-app"));
    }

    fn full_facts() -> Facts {
        Facts {
            app: Some(AppFacts {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                ami: "ami-0123456789abcdef0".into(),
                binary: "bookstore".into(),
                sha256: "ab".repeat(32),
                commit: None,
                kept: Vec::new(),
                pinned: None,
                hosted_zone_id: Some("Z123".into()),
            }),
            ..facts(2)
        }
    }

    #[test]
    fn full_topology_is_a_complete_acyclic_graph() {
        let s = stack("topology = \"full\"\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"example.com\"\n");
        let d = desired(&s, &full_facts());
        let ids: Vec<&str> = ids(&d);
        for want in [
            "db-subnets",
            "db",
            "efs",
            "efs-ap",
            "tg",
            "lb",
            "cert",
            "listener-http",
            "listener-https",
            "alias",
            "artifacts",
            "role",
            "profile",
            "launch-template",
            "asg",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        assert!(ids.contains(&s3::artifact_id(&"ab".repeat(32)).as_str()));
        let nodes: Vec<(String, Vec<String>)> =
            d.iter().map(|x| (x.id.clone(), x.deps())).collect();
        let order = topo_order(&nodes).expect("every reference names a resource, no cycles");
        let pos = |id: &str| order.iter().position(|x| x == id).unwrap();
        assert!(pos("launch-template") > pos(&s3::artifact_id(&"ab".repeat(32))));
        assert!(pos("asg") > pos("launch-template") && pos("asg") > pos("tg"));
        assert!(pos("listener-https") > pos("cert"));
        let https = d.iter().find(|x| x.id == "listener-https").unwrap();
        assert_eq!(https.props["ssl_policy"], TLS_POLICY);
        let http = d.iter().find(|x| x.id == "listener-http").unwrap();
        assert_eq!(http.props["action"]["type"], "redirect");
        let db = d.iter().find(|x| x.id == "db").unwrap();
        assert_eq!(db.props["storage_encrypted"], true);
        assert_eq!(db.props["publicly_accessible"], false);
        assert!(!db.props.contains_key("password") && !db.props.contains_key("master_password"));
    }

    #[test]
    fn endpoints_replace_the_nat_gateway_for_the_instances() {
        let s = stack("[network]\nnat = \"none\"\nendpoints = true\n");
        let d = desired(&s, &full_facts());
        let eps: Vec<&Desired> = d.iter().filter(|x| x.kind == vpc_endpoint::KIND).collect();
        let names: Vec<&str> = eps
            .iter()
            .map(|e| e.props["service_name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "com.amazonaws.us-east-1.ssm",
                "com.amazonaws.us-east-1.ssmmessages",
                "com.amazonaws.us-east-1.ec2messages",
                "com.amazonaws.us-east-1.secretsmanager",
                "com.amazonaws.us-east-1.logs",
                "com.amazonaws.us-east-1.s3",
            ]
        );
        for e in &eps[..5] {
            assert_eq!(e.props["type"], "Interface");
            assert_eq!(
                e.props["subnet_ids"],
                json!([r("subnet-private-a"), r("subnet-private-b")])
            );
            assert_eq!(e.props["security_group_ids"], json!([r("sg-endpoints")]));
        }
        assert_eq!(eps[5].props["type"], "Gateway");
        assert_eq!(
            eps[5].props["route_table_ids"],
            json!([r("rt-private-a"), r("rt-private-b")])
        );
        // HTTPS from the app instances only.
        let sg = d.iter().find(|x| x.id == "sg-endpoints").unwrap();
        assert_eq!(
            sg.props["ingress"],
            json!([{"protocol": "tcp", "port": 443, "source_group": r("sg-app")}])
        );
        // No NAT gateway, and the instances wait for the endpoints.
        assert!(!d.iter().any(|x| x.kind == nat_gateway::KIND));
        let asg = d.iter().find(|x| x.id == "asg").unwrap();
        for id in endpoint_ids() {
            assert!(asg.deps().contains(&id), "{id}");
        }
        let nodes: Vec<(String, Vec<String>)> =
            d.iter().map(|x| (x.id.clone(), x.deps())).collect();
        topo_order(&nodes).expect("acyclic and complete");
        // Without the setting, none.
        let d = desired(&stack(""), &full_facts());
        assert!(!d
            .iter()
            .any(|x| x.kind == vpc_endpoint::KIND || x.id == "sg-endpoints"));
    }

    #[test]
    fn without_a_domain_one_listener_forwards() {
        let d = desired(&stack(""), &full_facts());
        let ids = ids(&d);
        assert!(
            !ids.contains(&"cert") && !ids.contains(&"listener-https") && !ids.contains(&"alias")
        );
        let http = d.iter().find(|x| x.id == "listener-http").unwrap();
        assert_eq!(http.props["action"]["type"], "forward");
    }

    #[test]
    fn the_network_topology_has_no_application() {
        let d = desired(&stack("topology = \"network\"\n"), &full_facts());
        assert_eq!(d.len(), 15);
    }

    #[test]
    fn names_fit_their_limits() {
        let long = "a".repeat(32);
        let n = short_name(&long, "app", 32);
        assert!(n.len() <= 32 && n.ends_with("-app"), "{n}");
        assert_ne!(n, short_name(&"a".repeat(31), "app", 32));
        assert_eq!(short_name("demo", "lb", 32), "demo-lb");
    }

    #[test]
    fn zone_suffixes() {
        assert_eq!(zone_suffix("us-east-1a"), "a");
        assert_eq!(zone_suffix("use1-az1"), "use1-az1");
    }
}
