//! The desired resources of a stack: a pure function of the stack and the
//! zone names the region offers. No API calls here.

use serde_json::{json, Value};

use crate::engine::refs::{r, r_attr};
use crate::engine::Desired;
use crate::resources::{
    elastic_ip, internet_gateway, nat_gateway, route_table, security_group, subnet, vpc,
};
use crate::stack::{Nat, Stack};

/// Facts looked up before building the desired state.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Zone names, one per zone the stack uses, in order.
    pub zones: Vec<String>,
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
        let none = desired(&stack("[network]\nnat = \"none\"\n"), &facts(2));
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

    #[test]
    fn zone_suffixes() {
        assert_eq!(zone_suffix("us-east-1a"), "a");
        assert_eq!(zone_suffix("use1-az1"), "use1-az1");
    }
}
