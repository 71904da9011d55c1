//! The single shape: one instance with its own address and name, serving
//! HTTPS itself with certificates from an ACME CA, its data on an EBS
//! volume the stack owns (snapshotted daily by Data Lifecycle Manager),
//! in an Auto Scaling group of exactly one so a dead instance is replaced.
//! No load balancer, no NAT gateway; a MySQL database only when the stack
//! names one.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::engine::refs::{concat, r, r_attr};
use crate::engine::Desired;
use crate::resources::{
    autoscaling_group, dlm_policy, dns_alias, elastic_ip, iam, internet_gateway, launch_template,
    route_table, s3, security_group, subnet, volume, vpc,
};
use crate::stack::{Single, Stack, SINGLE_DATA_DIR};
use crate::userdata;

use super::{parts, short_name, zone_suffix, AppFacts, Facts, FILES_UID};

use s3::TLS_PREFIX;

/// The network of one instance: the VPC, one public subnet in the first
/// zone and its route out, a security group open on 80 and 443 alone; and
/// for a MySQL database, two private subnets (RDS wants two zones) and
/// the database's group.
pub fn network(stack: &Stack, facts: &Facts, one: &Single) -> Vec<Desired> {
    let net = &stack.network;
    let sfx: Vec<String> = facts.zones.iter().map(|z| zone_suffix(z)).collect();
    let a = &sfx[0];
    let mut out = vec![
        Desired::new(
            vpc::KIND,
            "vpc",
            json!({"cidr": net.cidr.to_string(), "dns_support": true, "dns_hostnames": true}),
        ),
        Desired::new(internet_gateway::KIND, "igw", json!({"vpc_id": r("vpc")})),
        Desired::new(
            subnet::KIND,
            format!("subnet-public-{a}"),
            json!({"vpc_id": r("vpc"), "cidr": net.public_subnets[0].to_string(), "zone": facts.zones[0]}),
        ),
        Desired::new(
            route_table::KIND,
            "rt-public",
            json!({
                "vpc_id": r("vpc"),
                "routes": [{"destination": "0.0.0.0/0", "gateway_id": r("igw")}],
                "subnets": [r(&format!("subnet-public-{a}"))],
            }),
        ),
        // The web: HTTP (ACME, redirects) and HTTPS. No SSH: `exec` and
        // Session Manager reach the instance.
        security_group(
            stack,
            "sg-web",
            "The instance",
            json!([
                {"protocol": "tcp", "port": 80, "cidr": "0.0.0.0/0"},
                {"protocol": "tcp", "port": 443, "cidr": "0.0.0.0/0"},
            ]),
        ),
    ];
    if one.mysql {
        for (i, s) in sfx.iter().enumerate().take(2) {
            out.push(Desired::new(
                subnet::KIND,
                format!("subnet-private-{s}"),
                json!({"vpc_id": r("vpc"), "cidr": net.private_subnets[i].to_string(), "zone": facts.zones[i]}),
            ));
        }
        out.push(security_group(
            stack,
            "sg-db",
            "Database",
            json!([{"protocol": "tcp", "port": 3306, "source_group": r("sg-web")}]),
        ));
    }
    out
}

fn security_group(stack: &Stack, id: &str, what: &str, ingress: Value) -> Desired {
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
}

/// The names the certificate covers and the DNS records point at.
fn domains(stack: &Stack) -> Vec<String> {
    stack
        .domain
        .iter()
        .flat_map(|d| std::iter::once(&d.name).chain(&d.alternative_names))
        .map(|n| n.to_string())
        .collect()
}

/// The logical id of the A record of `name`.
pub fn record_id(i: usize) -> String {
    if i == 0 {
        "dns".to_string()
    } else {
        format!("dns-{i}")
    }
}

/// What the instance is, apart from the release it runs: a change here
/// needs a new instance (the site is down for a boot); a new release alone
/// is rolled out on the instance there.
fn instance_config(stack: &Stack, f: &AppFacts, one: &Single) -> String {
    let mut h = Sha256::new();
    for part in [
        f.ami.as_str(),
        stack.app.instance_type.as_str(),
        &userdata::Shape::Single.template_digest(),
        &domains(stack).join(","),
        &one.acme.directory,
        one.acme.contact.as_deref().unwrap_or(""),
        if one.mysql { "mysql" } else { "sqlite" },
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The instance, its address, volume, snapshots, identity and names.
pub fn desired(stack: &Stack, facts: &Facts, f: &AppFacts, one: &Single) -> Vec<Desired> {
    let name = &stack.name;
    let zone = &facts.zones[0];
    let a = zone_suffix(zone);
    let arn = |what: &str| {
        format!(
            "arn:{}:ec2:{}:{}:{what}",
            parts::partition(&f.region),
            f.region,
            f.account
        )
    };
    let mut out = Vec::new();
    if one.mysql {
        let private = facts
            .zones
            .iter()
            .take(2)
            .map(|z| r(&format!("subnet-private-{}", zone_suffix(z))))
            .collect();
        out.extend(parts::database(stack, private));
    }
    out.push(Desired::new(elastic_ip::KIND, "eip", json!({})).after("igw"));
    out.push(Desired::new(
        volume::KIND,
        "data",
        json!({
            "zone": zone,
            "size_gib": one.volume.size_gib,
            "volume_type": "gp3",
            "encrypted": true,
            "snapshot_tag": name,
        }),
    ));
    // Data Lifecycle Manager acts with a role of the stack's, allowed to
    // snapshot the stack's volumes and to delete the snapshots it made.
    out.push(Desired::new(
        iam::ROLE,
        "snapshots-role",
        json!({
            "name": short_name(name, &format!("{}-snapshots-role", f.region), 64),
            "path": iam::path(name),
            "trust_policy": parts::trust("dlm.amazonaws.com"),
            "other_inline_policies": {},
            "policy": {"Version": "2012-10-17", "Statement": dlm_policy::role_statements(name, &arn("volume/*"), &arn("snapshot/*"))},
            "managed_policies": [],
            "permissions_boundary": r_attr("boundary", "arn"),
        }),
    ));
    out.push(Desired::new(
        dlm_policy::KIND,
        "snapshots",
        json!({
            "description": format!("Daily snapshots of the data volume of stack {name}"),
            "execution_role_arn": r_attr("snapshots-role", "arn"),
            "target_tag": {"key": volume::SNAPSHOT_TAG, "value": name.to_string()},
            "time": one.volume.snapshot_time,
            "keep": one.volume.snapshots_kept,
        }),
    ));
    let bucket = s3::bucket_name(name, &f.account, &f.region);
    out.extend(parts::artifacts(stack, f, bucket_policy(&bucket, stack, f)));
    out.extend(parts::logs_and_boundary(stack, f));
    out.extend(parts::identity(
        stack,
        f,
        role_statements(stack, f, one, &arn),
    ));
    let mut vars = json!({
        "shape": "single",
        "stack": name,
        "region": f.region,
        "bucket": r("artifacts"),
        "key": s3::artifact_key(&f.sha256),
        "sha256": f.sha256,
        "data_dir": SINGLE_DATA_DIR,
        "app_uid": FILES_UID,
        "volume_id": r("data"),
        "allocation_id": r("eip"),
    });
    let names = domains(stack);
    if !names.is_empty() {
        vars["tls_domains"] = json!(names.join(","));
        vars["acme_directory"] = json!(one.acme.directory);
        if let Some(c) = &one.acme.contact {
            vars["acme_contact"] = json!(c);
        }
    }
    if one.mysql {
        let db = parts::database_vars(stack);
        for (k, v) in db.as_object().expect("an object") {
            vars[k] = v.clone();
        }
    }
    let artifact = s3::artifact_id(&f.sha256);
    out.push(
        Desired::new(
            launch_template::KIND,
            "launch-template",
            json!({
                "name": short_name(name, "app-lt", 64),
                "image_id": f.ami,
                "instance_type": stack.app.instance_type,
                "security_group_ids": [r("sg-web")],
                "instance_profile_arn": r_attr("profile", "arn"),
                "http_tokens": "required",
                // A public address from the start (the instance fetches
                // its binary before it takes the stack's address).
                "public_ip": true,
                "block_device_mappings": [{
                    "device_name": f.root_device,
                    "volume_size": f.root_volume_gib,
                    "encrypted": true,
                    "volume_type": "gp3",
                    "delete_on_termination": true,
                }],
                "release": {"commit": f.commit, "keep": stack.app.keep_releases},
                "user_data": {"template": userdata::Shape::Single.template_digest(), "vars": vars},
            }),
        )
        .after(artifact),
    );
    out.push(Desired::new(
        autoscaling_group::KIND,
        "asg",
        json!({
            "name": short_name(name, "app", 255),
            "launch_template_id": r("launch-template"),
            "launch_template_version": match &f.pinned {
                Some(p) => json!(p.version),
                None => r_attr("launch-template", "latest_version"),
            },
            "subnets": [r(&format!("subnet-public-{a}"))],
            "target_group_arns": [],
            "health_check_type": "EC2",
            "min": 1,
            "max": 1,
            "desired": 1,
            "health_check_grace": stack.app.health_check_grace,
            "scaling": null,
            // A new release is rolled out on the instance; what changes
            // the instance itself replaces it (the site is down for a boot).
            "in_place": {"config": instance_config(stack, f, one)},
            "refresh": {"min_healthy": 0, "warmup": stack.app.refresh_warmup},
            "rolled_back": f.pinned.as_ref().map(|p| autoscaling_group::rolled_back_note(&p.tag)),
        }),
    ));
    if let (Some(d), Some(zone)) = (&stack.domain, &f.hosted_zone_id) {
        if d.alias {
            for (i, n) in names.iter().enumerate() {
                out.push(Desired::new(
                    dns_alias::KIND,
                    record_id(i),
                    json!({
                        "zone_id": zone,
                        "name": n,
                        "addresses": [r_attr("eip", "public_ip")],
                    }),
                ));
            }
        }
    }
    out
}

/// The bucket refuses requests without TLS, and the ACME account's key
/// and the certificate's private key to everyone but the instances.
fn bucket_policy(bucket: &str, stack: &Stack, f: &AppFacts) -> Value {
    let mut p = s3::tls_only_policy(bucket);
    let role = format!(
        "arn:{}:iam::{}:role{}{}",
        parts::partition(&f.region),
        f.account,
        iam::path(&stack.name),
        parts::role_name(&stack.name, &f.region)
    );
    p["Statement"].as_array_mut().expect("a list").push(json!({
        "Sid": "TlsKeysForTheInstanceOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": s3::TLS_SECRETS.iter().map(|k| format!("arn:aws:s3:::{bucket}/{k}")).collect::<Vec<_>>(),
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": role}},
    }));
    p
}

/// Least privilege for the instance: its binary, its TLS state, its
/// volume and address (by id), its log stream, the database's secrets.
fn role_statements(
    stack: &Stack,
    f: &AppFacts,
    one: &Single,
    arn: &dyn Fn(&str) -> String,
) -> Vec<Value> {
    let mut s = vec![parts::read_artifact()];
    s.push(json!({
        "Sid": "TlsState",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": concat(vec![r_attr("artifacts", "arn"), json!(format!("/{TLS_PREFIX}*"))]),
    }));
    s.push(json!({
        "Sid": "ListTlsState",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": r_attr("artifacts", "arn"),
        "Condition": {"StringLike": {"s3:prefix": format!("{TLS_PREFIX}*")}},
    }));
    // AttachVolume and AssociateAddress are authorized on the volume or
    // address and on the instance ("Actions, resources, and condition keys
    // for Amazon EC2"): this volume and address only, to an instance
    // carrying this stack's instance profile only.
    s.push(json!({
        "Sid": "TakeVolumeAndAddress",
        "Effect": "Allow",
        "Action": ["ec2:AttachVolume", "ec2:AssociateAddress"],
        "Resource": [
            concat(vec![json!(arn("volume/")), r("data")]),
            concat(vec![json!(arn("elastic-ip/")), r("eip")]),
        ],
    }));
    s.push(json!({
        "Sid": "OnThisStacksInstance",
        "Effect": "Allow",
        "Action": ["ec2:AttachVolume", "ec2:AssociateAddress"],
        "Resource": arn("instance/*"),
        "Condition": {"ArnEquals": {"ec2:InstanceProfile": parts::profile_arn(&stack.name, f)}},
    }));
    s.push(json!({
        "Sid": "SeeVolumeAndAddress",
        "Effect": "Allow",
        "Action": ["ec2:DescribeVolumes", "ec2:DescribeAddresses"],
        "Resource": "*",
    }));
    if one.mysql {
        s.extend(parts::database_statements());
    }
    s.extend(parts::log_statements());
    s
}

/// The outputs of the single shape.
pub fn outputs(stack: &Stack, f: &AppFacts) -> Vec<(&'static str, Value)> {
    let url = match &stack.domain {
        Some(d) => json!(format!("https://{}", d.name)),
        None => concat(vec![json!("http://"), r_attr("eip", "public_ip")]),
    };
    let mut out = vec![
        ("url", url),
        ("public_ip", r_attr("eip", "public_ip")),
        ("volume_id", r("data")),
        ("autoscaling_group", r("asg")),
        ("artifact_key", r_attr(&s3::artifact_id(&f.sha256), "key")),
        (
            "launch_template_version",
            r_attr("launch-template", "latest_version"),
        ),
    ];
    if stack.single.as_ref().is_some_and(|s| s.mysql) {
        out.push(("db_endpoint", r_attr("db", "endpoint")));
    }
    out
}
