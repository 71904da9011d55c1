//! The desired resources of a stack: a pure function of the stack and a few
//! looked-up facts (zone names, account, AMI). No API calls here.
//!
//! A shape is composed of parts: [`network`] is every shape's ground,
//! [`scaled`] the load-balanced application on it. Every name and value
//! they compose obeys AWS's rules ([`rules`]), which [`check`] verifies
//! before any API call.

pub mod check;
pub mod fargate;
pub mod network;
pub mod parts;
pub mod rules;
pub mod scaled;
pub mod single;

use serde_json::Value;

use crate::engine::refs::r;
use crate::engine::Desired;
use crate::stack::{Stack, Topology};

pub use network::{endpoint_ids, INTERFACE_ENDPOINTS};

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
    /// The AMI's root device name (`/dev/xvda` on Amazon Linux 2023), where
    /// the launch template maps the encrypted root volume.
    pub root_device: String,
    /// The size of the AMI's root volume (GiB), which the mapping keeps.
    pub root_volume_gib: i32,
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
    /// Fargate: the digest of the app's image built from `binary`.
    pub image: Option<String>,
    /// Fargate: the images earlier task definition revisions run, kept
    /// for `rollback`.
    pub kept_images: Vec<String>,
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

/// Every resource of the stack: the network, and for the full topology
/// the VPC endpoints (when asked for) and the application.
pub fn desired(stack: &Stack, facts: &Facts) -> Vec<Desired> {
    if let Some(one) = &stack.single {
        let mut out = single::network(stack, facts, one);
        if let (Topology::Full, Some(app)) = (stack.topology, &facts.app) {
            out.extend(single::desired(stack, facts, app, one));
        }
        return out;
    }
    let mut out = network::desired(stack, facts);
    if let (Topology::Full, Some(app)) = (stack.topology, &facts.app) {
        let sfx: Vec<String> = facts.zones.iter().map(|z| zone_suffix(z)).collect();
        if stack.network.endpoints {
            out.extend(network::endpoints(stack, &sfx, &app.region));
        }
        out.extend(scaled::desired(stack, &sfx, app));
    }
    out
}

/// The stack's outputs: names and values that may hold references.
pub fn outputs(stack: &Stack, facts: &Facts) -> Vec<(&'static str, Value)> {
    if stack.single.is_some() {
        let mut out = vec![("vpc_id", r("vpc")), ("security_group_id", r("sg-web"))];
        if let (Topology::Full, Some(f)) = (stack.topology, &facts.app) {
            out.extend(single::outputs(stack, f));
        }
        return out;
    }
    let mut out = network::outputs(stack, facts);
    if let (Topology::Full, Some(f)) = (stack.topology, &facts.app) {
        out.extend(scaled::outputs(stack, f));
    }
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
    format!(
        "arn:{}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        parts::partition(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::topo_order;
    use crate::engine::refs::r;
    use crate::resources::{nat_gateway, s3, security_group, vpc_endpoint};
    use serde_json::json;
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
                root_device: "/dev/xvda".into(),
                root_volume_gib: 8,
                binary: "bookstore".into(),
                sha256: "ab".repeat(32),
                commit: None,
                kept: Vec::new(),
                image: None,
                kept_images: Vec::new(),
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
