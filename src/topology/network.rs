//! The network every shape stands on.

use serde_json::{json, Value};

use crate::engine::refs::{r, r_attr};
use crate::engine::Desired;
use crate::resources::{
    elastic_ip, internet_gateway, nat_gateway, route_table, security_group, subnet, vpc,
    vpc_endpoint,
};
use crate::stack::{Nat, Stack};

use super::{zone_suffix, Facts};

/// The network every shape stands on: the VPC, its subnets, routes and
/// NAT gateways, and the security groups.
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
    let sg = |id: &str, what: &str, ingress: Value| security_group(stack, id, what, ingress);
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

/// A security group of the stack's VPC letting in `ingress`.
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

/// VPC endpoints in the private subnets (interface), on the private route
/// tables (gateway), reached from the app instances only, and their
/// security group.
pub fn endpoints(stack: &Stack, sfx: &[String], region: &str) -> Vec<Desired> {
    let mut out = vec![security_group(
        stack,
        "sg-endpoints",
        "VPC endpoints",
        json!([{"protocol": "tcp", "port": 443, "source_group": r("sg-app")}]),
    )];
    let private: Vec<Value> = sfx
        .iter()
        .map(|s| r(&format!("subnet-private-{s}")))
        .collect();
    let tables: Vec<Value> = sfx.iter().map(|s| r(&format!("rt-private-{s}"))).collect();
    out.extend(INTERFACE_ENDPOINTS.iter().map(|svc| {
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
    }));
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

/// The network's outputs.
pub fn outputs(stack: &Stack, facts: &Facts) -> Vec<(&'static str, Value)> {
    let sfx: Vec<String> = facts.zones.iter().map(|z| zone_suffix(z)).collect();
    let nat_zones = match stack.network.nat {
        Nat::None => &sfx[..0],
        Nat::Single => &sfx[..1],
        Nat::PerAz => &sfx[..],
    };
    vec![
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
    ]
}
