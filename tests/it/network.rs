//! The network layer against a real AWS API emulator: every check of what
//! exists is an independent SDK call, not the tool's own read path.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use common::{changes, exit, set, spawn_until, step, Emulator};
use serde_json::Value;

const STACK: &str = "net";
const DEMO: &str = "stacks/network.toml";
/// How many resources the network stack has.
const RESOURCES: usize = 15;
/// What `diff` and `up` print when the network is as its file says.
const NO_CHANGES: &str = "No changes. Stack `net` matches its file (15 resources).";

/// Whether `out` has the line `line`, whole.
fn has_line(out: &str, line: &str) -> bool {
    out.lines().any(|l| l == line)
}

fn owned() -> Filter {
    Filter::builder()
        .name("tag:bookstore-infra:stack")
        .values(STACK)
        .build()
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Physical ids of every live EC2 resource the stack owns, by resource type,
/// each read with its own Describe call and the ownership tag filter.
/// (The emulator's DescribeTags keeps the tags of deleted resources, so it
/// cannot tell what still exists.)
fn tagged(e: &Emulator) -> BTreeMap<String, Vec<String>> {
    let ec2 = e.ec2();
    e.block_on(async {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut put = |k: &str, ids: Vec<String>| {
            if !ids.is_empty() {
                m.insert(k.to_string(), ids);
            }
        };
        let v = ec2.describe_vpcs().filters(owned()).send().await.unwrap();
        put(
            "vpc",
            v.vpcs()
                .iter()
                .filter_map(|x| x.vpc_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_subnets()
            .filters(owned())
            .send()
            .await
            .unwrap();
        put(
            "subnet",
            v.subnets()
                .iter()
                .filter_map(|x| x.subnet_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_internet_gateways()
            .filters(owned())
            .send()
            .await
            .unwrap();
        put(
            "internet-gateway",
            v.internet_gateways()
                .iter()
                .filter_map(|x| x.internet_gateway_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_addresses()
            .filters(owned())
            .send()
            .await
            .unwrap();
        put(
            "elastic-ip",
            v.addresses()
                .iter()
                .filter_map(|x| x.allocation_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_nat_gateways()
            .filter(owned())
            .send()
            .await
            .unwrap();
        put(
            "nat-gateway",
            v.nat_gateways()
                .iter()
                .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
                .filter_map(|x| x.nat_gateway_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_route_tables()
            .filters(owned())
            .send()
            .await
            .unwrap();
        put(
            "route-table",
            v.route_tables()
                .iter()
                .filter_map(|x| x.route_table_id().map(str::to_string))
                .collect(),
        );
        let v = ec2
            .describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap();
        put(
            "security-group",
            v.security_groups()
                .iter()
                .filter_map(|x| x.group_id().map(str::to_string))
                .collect(),
        );
        m
    })
}

fn count(m: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, usize> {
    m.iter().map(|(k, v)| (k.clone(), v.len())).collect()
}

fn expected_counts(nats: usize) -> BTreeMap<String, usize> {
    [
        ("vpc", 1),
        ("subnet", 4),
        ("internet-gateway", 1),
        ("elastic-ip", nats),
        ("nat-gateway", nats),
        ("route-table", 3),
        ("security-group", 4),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect()
}

/// Ingress rules of each owned group, by logical id, as (port, source) where
/// the source is a CIDR or the logical id of another owned group.
fn ingress(e: &Emulator) -> BTreeMap<String, BTreeSet<(i32, String)>> {
    let ec2 = e.ec2();
    e.block_on(async {
        let out = ec2
            .describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap();
        let names: BTreeMap<String, String> = out
            .security_groups()
            .iter()
            .map(|g| {
                (
                    g.group_id().unwrap().to_string(),
                    tag(g.tags(), "bookstore-infra:id").unwrap().to_string(),
                )
            })
            .collect();
        out.security_groups()
            .iter()
            .map(|g| {
                let mut rules = BTreeSet::new();
                for p in g.ip_permissions() {
                    assert_eq!(p.ip_protocol(), Some("tcp"));
                    let port = p.from_port().unwrap();
                    // A port range shows as "SOURCE up to PORT".
                    let src = |s: &str| match p.to_port() {
                        Some(to) if to != port => format!("{s} up to {to}"),
                        _ => s.to_string(),
                    };
                    for r in p.ip_ranges() {
                        rules.insert((port, src(r.cidr_ip().unwrap())));
                    }
                    for r in p.ipv6_ranges() {
                        rules.insert((port, src(r.cidr_ipv6().unwrap())));
                    }
                    for s in p.user_id_group_pairs() {
                        let id = s.group_id().unwrap();
                        rules.insert((port, src(names.get(id).map_or(id, String::as_str))));
                    }
                }
                (names[g.group_id().unwrap()].clone(), rules)
            })
            .collect()
    })
}

fn rules(list: &[(i32, &str)]) -> BTreeSet<(i32, String)> {
    list.iter().map(|(p, s)| (*p, s.to_string())).collect()
}

fn check_network(e: &Emulator, nat_per_az: bool) {
    let nats = if nat_per_az { 2 } else { 1 };
    let t = tagged(e);
    assert_eq!(count(&t), expected_counts(nats), "{t:?}");
    let ec2 = e.ec2();
    e.block_on(async {
        let vpcs = ec2.describe_vpcs().filters(owned()).send().await.unwrap();
        let vpc = &vpcs.vpcs()[0];
        let vpc_id = vpc.vpc_id().unwrap();
        assert_eq!(vpc.cidr_block(), Some("10.20.0.0/16"));
        for attr in [
            VpcAttributeName::EnableDnsSupport,
            VpcAttributeName::EnableDnsHostnames,
        ] {
            let a = ec2
                .describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(attr.clone())
                .send()
                .await
                .unwrap();
            let on = a
                .enable_dns_support()
                .or(a.enable_dns_hostnames())
                .and_then(|v| v.value());
            assert_eq!(on, Some(true), "{attr:?}");
        }

        let subnets = ec2
            .describe_subnets()
            .filters(owned())
            .send()
            .await
            .unwrap();
        let by_id: BTreeMap<&str, (&str, &str, &str)> = subnets
            .subnets()
            .iter()
            .map(|s| {
                assert_eq!(s.vpc_id(), Some(vpc_id));
                (
                    tag(s.tags(), "bookstore-infra:id").unwrap(),
                    (
                        s.subnet_id().unwrap(),
                        s.cidr_block().unwrap(),
                        s.availability_zone().unwrap(),
                    ),
                )
            })
            .collect();
        let cidrs: BTreeMap<&str, &str> = by_id.iter().map(|(k, v)| (*k, v.1)).collect();
        assert_eq!(
            cidrs,
            BTreeMap::from([
                ("subnet-public-a", "10.20.0.0/20"),
                ("subnet-public-b", "10.20.16.0/20"),
                ("subnet-private-a", "10.20.128.0/20"),
                ("subnet-private-b", "10.20.144.0/20"),
            ])
        );
        assert_ne!(
            by_id["subnet-public-a"].2, by_id["subnet-public-b"].2,
            "two zones"
        );
        assert_eq!(by_id["subnet-public-a"].2, by_id["subnet-private-a"].2);

        let igws = ec2
            .describe_internet_gateways()
            .filters(owned())
            .send()
            .await
            .unwrap();
        let igw = &igws.internet_gateways()[0];
        assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id));
        let igw_id = igw.internet_gateway_id().unwrap();

        let ngs = ec2
            .describe_nat_gateways()
            .filter(owned())
            .send()
            .await
            .unwrap();
        let live: BTreeMap<&str, &str> = ngs
            .nat_gateways()
            .iter()
            .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
            .map(|n| {
                (
                    tag(n.tags(), "bookstore-infra:id").unwrap(),
                    n.nat_gateway_id().unwrap(),
                )
            })
            .collect();
        assert_eq!(live.len(), nats);
        for n in ngs
            .nat_gateways()
            .iter()
            .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        {
            let zone = tag(n.tags(), "bookstore-infra:id")
                .unwrap()
                .trim_start_matches("nat-");
            assert_eq!(
                n.subnet_id(),
                Some(by_id[format!("subnet-public-{zone}").as_str()].0)
            );
        }

        let rts = ec2
            .describe_route_tables()
            .filters(owned())
            .send()
            .await
            .unwrap();
        for rt in rts.route_tables() {
            let id = tag(rt.tags(), "bookstore-infra:id").unwrap();
            let default = rt
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                .expect("a default route");
            let assoc: BTreeSet<&str> = rt
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id())
                .collect();
            match id {
                "rt-public" => {
                    assert_eq!(default.gateway_id(), Some(igw_id));
                    assert_eq!(
                        assoc,
                        BTreeSet::from([by_id["subnet-public-a"].0, by_id["subnet-public-b"].0])
                    );
                }
                "rt-private-a" | "rt-private-b" => {
                    let zone = &id[id.len() - 1..];
                    let nat = if nat_per_az {
                        format!("nat-{zone}")
                    } else {
                        "nat-a".into()
                    };
                    assert_eq!(default.nat_gateway_id(), Some(live[nat.as_str()]), "{id}");
                    assert_eq!(
                        assoc,
                        BTreeSet::from([by_id[format!("subnet-private-{zone}").as_str()].0])
                    );
                }
                other => panic!("unexpected route table {other}"),
            }
        }
    });

    // Only the load balancer is open to the world; the rest admit one group each.
    let ing = ingress(e);
    assert_eq!(
        ing["sg-lb"],
        rules(&[(80, "0.0.0.0/0"), (443, "0.0.0.0/0")])
    );
    assert_eq!(ing["sg-app"], rules(&[(8080, "sg-lb")]));
    assert_eq!(ing["sg-db"], rules(&[(3306, "sg-app")]));
    assert_eq!(ing["sg-efs"], rules(&[(2049, "sg-app")]));
}

#[test]
fn up_from_empty_creates_the_network_then_converges() {
    let e = Emulator::start();
    let first = e.plan_json(DEMO);
    assert_eq!(first["summary"]["add"], 15);
    e.fails_with(exit::CHANGES, &["diff", DEMO, "--detailed-exitcode"]);

    let up = e.ok(&["up", DEMO, "--yes"]);
    assert!(
        has_line(&up.stdout, "Plan: 15 to add, 0 to change, 0 to destroy."),
        "{}",
        up.stdout
    );
    check_network(&e, false);
    // The emulator's default VPC is not ours and stays as it was.
    let default_vpcs = e.block_on(async {
        e.ec2()
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .unwrap()
            .vpcs()
            .len()
    });
    assert_eq!(default_vpcs, 1);

    let diff = e.run(&["diff", DEMO, "--detailed-exitcode"]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
    assert!(has_line(&diff.stdout, NO_CHANGES), "{}", diff.stdout);
    assert!(changes(&e.plan_json(DEMO)).is_empty());

    // A second `up` reads and changes nothing.
    let again = e.ok(&["--stats", "up", DEMO, "--yes"]);
    assert!(has_line(&again.stdout, NO_CHANGES), "{}", again.stdout);
    let stats = again
        .stderr
        .lines()
        .find(|l| l.starts_with("api_calls="))
        .expect("stats line");
    // Only the lock (an S3 object: created, heartbeats, deleted) is
    // written; no resource is touched.
    let writes: Vec<&str> = stats
        .trim_start_matches("api_calls=")
        .split(' ')
        .filter(|kv| {
            let k = kv.to_ascii_lowercase();
            !k.starts_with("s3:putobject=") && !k.starts_with("s3:deleteobject=")
        })
        .filter(|kv| {
            let op = kv.split_once(':').map(|(_, o)| o).unwrap_or(kv);
            [
                "Create",
                "Modify",
                "Authorize",
                "Associate",
                "Allocate",
                "Delete",
                "Revoke",
                "Replace",
                "Attach",
                "Detach",
                "Put",
                "Update",
                "Release",
                "Disassociate",
            ]
            .iter()
            .any(|w| op.starts_with(w))
        })
        .collect();
    assert!(writes.is_empty(), "second up wrote: {writes:?} ({stats})");
    assert!(
        stats.contains("EC2:DescribeVpcs"),
        "the counter names operations: {stats}"
    );
    check_network(&e, false);

    let outputs = e.ok(&["outputs", DEMO, "--json"]);
    let o: Value = serde_json::from_str(&outputs.stdout).unwrap();
    assert!(o["vpc_id"].as_str().unwrap().starts_with("vpc-"));
    assert_eq!(o["private_subnet_ids"].as_array().unwrap().len(), 2);
    assert_eq!(o["nat_public_ips"].as_array().unwrap().len(), 1);
}

#[test]
fn drift_shows_in_diff_and_up_repairs_it() {
    let e = Emulator::start();
    e.ok(&["up", DEMO, "--yes"]);
    let ec2 = e.ec2();
    // Someone removes the database rule and adds an opening by hand.
    e.block_on(async {
        let out = ec2
            .describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap();
        let db = out
            .security_groups()
            .iter()
            .find(|g| tag(g.tags(), "bookstore-infra:id") == Some("sg-db"))
            .unwrap();
        ec2.revoke_security_group_ingress()
            .group_id(db.group_id().unwrap())
            .set_ip_permissions(Some(db.ip_permissions().to_vec()))
            .send()
            .await
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(db.group_id().unwrap())
            .ip_protocol("tcp")
            .from_port(3306)
            .to_port(3306)
            .cidr_ip("0.0.0.0/0")
            .send()
            .await
            .unwrap();
        // And a port range open to every IPv6 address.
        ec2.authorize_security_group_ingress()
            .group_id(db.group_id().unwrap())
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(1000)
                    .to_port(2000)
                    .ipv6_ranges(
                        aws_sdk_ec2::types::Ipv6Range::builder()
                            .cidr_ipv6("::/0")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    assert_eq!(
        ingress(&e)["sg-db"],
        rules(&[(3306, "0.0.0.0/0"), (1000, "::/0 up to 2000")])
    );

    let diff = e.fails_with(exit::CHANGES, &["diff", DEMO, "--detailed-exitcode"]);
    assert!(
        has_line(&diff.stdout, "Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("~ sg-db (ec2:security-group)"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains("0.0.0.0/0"), "{}", diff.stdout);
    assert!(diff.stdout.contains("::/0"), "{}", diff.stdout);
    assert_eq!(changes(&e.plan_json(DEMO)), set(&[("sg-db", "update")]));

    e.ok(&["up", DEMO, "--yes"]);
    assert_eq!(ingress(&e)["sg-db"], rules(&[(3306, "sg-app")]));
    assert_eq!(e.run(&["diff", DEMO, "--detailed-exitcode"]).code, 0);

    // Someone deletes the NAT gateway: `up` makes another, under a new
    // request (EC2 answers a repeated client token with the deleted
    // gateway; the emulator ignores tokens, so only the outcome is checked
    // here), and the private routes follow it.
    let old = e.block_on(async {
        let out = ec2
            .describe_nat_gateways()
            .filter(owned())
            .send()
            .await
            .unwrap();
        let g = &out.nat_gateways()[0];
        let id = g.nat_gateway_id().unwrap().to_string();
        ec2.delete_nat_gateway()
            .nat_gateway_id(&id)
            .send()
            .await
            .unwrap();
        // EC2 releases the gateway's address once the deletion completes;
        // the emulator never does, so stand in for it.
        let assoc = g.nat_gateway_addresses()[0]
            .association_id()
            .map(str::to_string);
        let assoc = match assoc {
            Some(a) => a,
            None => ec2
                .describe_addresses()
                .allocation_ids(g.nat_gateway_addresses()[0].allocation_id().unwrap())
                .send()
                .await
                .unwrap()
                .addresses()[0]
                .association_id()
                .unwrap()
                .to_string(),
        };
        ec2.disassociate_address()
            .association_id(assoc)
            .send()
            .await
            .unwrap();
        id
    });
    let plan = e.plan_json(DEMO);
    let c = changes(&plan);
    assert!(c.contains(&("nat-a".into(), "create".into())), "{c:?}");
    assert!(
        c.iter()
            .all(|(id, a)| id == "nat-a" || (id.starts_with("rt-private") && a == "update")),
        "{c:?}"
    );
    e.ok(&["up", DEMO, "--yes"]);
    check_network(&e, false);
    let live = e.block_on(async {
        ec2.describe_nat_gateways()
            .filter(owned())
            .send()
            .await
            .unwrap()
            .nat_gateways()
            .iter()
            .filter(|g| g.state() == Some(&aws_sdk_ec2::types::NatGatewayState::Available))
            .map(|g| g.nat_gateway_id().unwrap().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live[0], old);
    assert_eq!(e.run(&["diff", DEMO, "--detailed-exitcode"]).code, 0);
}

#[test]
fn nat_single_to_per_az_adds_exactly_the_gateways_and_routes() {
    let e = Emulator::start();
    e.ok(&["up", DEMO, "--yes"]);
    let text = std::fs::read_to_string(common::root().join(DEMO)).unwrap();
    assert!(text.contains("nat = \"single\""));
    let per_az = e.stack(
        "per-az.toml",
        &text.replace("nat = \"single\"", "nat = \"per-az\""),
    );

    let plan = e.plan_json(&per_az);
    assert_eq!(
        changes(&plan),
        set(&[
            ("eip-nat-b", "create"),
            ("nat-b", "create"),
            ("rt-private-b", "update")
        ])
    );
    assert_eq!(plan["summary"]["add"], 2);
    assert_eq!(plan["summary"]["change"], 1);
    assert_eq!(plan["summary"]["destroy"], 0);
    let rt = step(&plan, "rt-private-b");
    let routes = rt["changes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0]["name"], "routes");

    e.ok(&["up", &per_az, "--yes"]);
    check_network(&e, true);
    assert_eq!(e.run(&["diff", &per_az, "--detailed-exitcode"]).code, 0);

    // And back: the second gateway and its address go, the route returns to nat-a.
    let plan = e.plan_json(DEMO);
    assert_eq!(
        changes(&plan),
        set(&[
            ("eip-nat-b", "delete"),
            ("nat-b", "delete"),
            ("rt-private-b", "update")
        ])
    );
    e.ok(&["up", DEMO, "--yes"]);
    check_network(&e, false);
}

#[test]
fn destroy_leaves_nothing_tagged() {
    let e = Emulator::start();
    e.ok(&["up", DEMO, "--yes"]);
    assert!(!tagged(&e).is_empty());
    let d = e.ok(&["destroy", DEMO, "--yes"]);
    assert!(
        has_line(&d.stdout, "Plan: 0 to add, 0 to change, 15 to destroy."),
        "{}",
        d.stdout
    );
    let left = tagged(&e);
    assert!(left.is_empty(), "still tagged: {left:?}");
    let lock = e
        .block_on(bookstore_infra::lock::holder(&e.cloud(), "net"))
        .unwrap();
    assert!(lock.is_none(), "the run lock is gone too: {lock:?}");
    // Destroying again has nothing to do.
    let again = e.ok(&["destroy", DEMO, "--yes"]);
    assert!(
        has_line(
            &again.stdout,
            "No changes. Stack `net` matches its file (0 resources)."
        ),
        "{}",
        again.stdout
    );
}

#[test]
fn a_bad_stack_file_names_its_line_and_calls_nothing() {
    // The endpoint is a listener that records whether anyone connected.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"net\"\n[network]\nnat = \"single\"\nsubnet_count = 3\n",
    )
    .unwrap();
    let bad = bad.to_string_lossy().into_owned();
    for args in [
        vec!["up", bad.as_str(), "--yes"],
        vec!["diff", bad.as_str()],
        vec!["destroy", bad.as_str(), "--yes"],
        vec!["validate", bad.as_str()],
    ] {
        let out = std::process::Command::new(common::BIN)
            .args(&args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "x")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::ERROR), "{args:?}: {err}");
        assert!(err.contains(&format!("{bad}:4:1:")), "{args:?}: {err}");
        assert!(err.contains("subnet_count"), "{args:?}: {err}");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no API call may be made for an invalid stack file"
    );
    // And a valid one does validate without a call.
    let ok = std::process::Command::new(common::BIN)
        .args(["validate", DEMO])
        .current_dir(common::root())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
}

#[test]
fn killed_runs_converge_to_one_of_everything() {
    let e = Emulator::start();
    // SIGKILL as work starts, then after 1, 4, 8 and 12 of the 15 resources
    // are done; each time a new `up` takes over the dead run's lock and
    // converges with one of everything; `destroy` then starts the next round.
    for (pat, n) in [
        ("creating", 1),
        ("done:", 1),
        ("done:", 4),
        ("done:", 8),
        ("done:", 12),
    ] {
        let mut cmd = e.cmd();
        cmd.args(["up", DEMO, "--yes", "--concurrency", "2"]);
        let (mut child, lines) = spawn_until(cmd, pat, n);
        let seen = lines.iter().filter(|l| l.contains(pat)).count();
        assert_eq!(
            seen,
            n,
            "the run ended before the kill point:\n{}",
            lines.join("")
        );
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        // What the dead run left: everything else is to be made, nothing
        // is made twice (there is no duplicate to remove).
        let plan = e.plan_json(DEMO);
        let t = tagged(&e);
        assert!(!t.is_empty() || pat == "creating", "{t:?}");
        let made: usize = t.values().map(Vec::len).sum();
        let summary = &plan["summary"];
        assert_eq!(
            (summary["add"].as_u64(), summary["destroy"].as_u64()),
            (Some((RESOURCES - made) as u64), Some(0)),
            "{t:?}\n{plan:#}"
        );
        let change = summary["change"].as_u64().unwrap();
        assert!(change as usize <= made, "{plan:#}");

        let up = e.ok(&["up", DEMO, "--yes"]);
        assert!(
            up.stderr.contains("taking over the lock of")
                && up.stderr.contains("a process that no longer runs"),
            "{}",
            up.stderr
        );
        let line = format!(
            "Plan: {} to add, {change} to change, 0 to destroy.",
            RESOURCES - made
        );
        assert!(
            has_line(&up.stdout, &line),
            "no {line:?} in:\n{}",
            up.stdout
        );
        check_network(&e, false);
        assert_eq!(e.run(&["diff", DEMO, "--detailed-exitcode"]).code, 0);
        e.ok(&["destroy", DEMO, "--yes"]);
        assert!(tagged(&e).is_empty());
    }
}

#[test]
fn a_second_concurrent_run_is_refused() {
    let e = Emulator::start();
    let mut cmd = e.cmd();
    cmd.args(["up", DEMO, "--yes", "--concurrency", "1"]);
    // The first run holds the lock once it starts creating; freeze it there.
    let (mut first, _) = spawn_until(cmd, "creating", 1);
    let pid = first.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());

    // The loser: its own exit code, naming the winner, and nothing on stdout
    // (it planned nothing).
    let held = format!(
        "error: stack `net` is locked by another run: `up` (pid {pid} on {}, started ",
        bookstore_infra::lock::hostname()
    );
    let refused = |r: &common::Run| {
        assert_eq!(r.stdout, "");
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&held)
                && l.ends_with("run again with --lock-wait, or with --force-unlock")),
            "{}",
            r.stderr
        );
    };
    refused(&e.fails_with(exit::LOCK_HELD, &["up", DEMO, "--yes"]));
    refused(&e.fails_with(exit::LOCK_HELD, &["destroy", DEMO, "--yes"]));
    // `diff` only reads, and is never blocked: it sees the half-made
    // network and says there are changes (2), not an error (1). The winner
    // was stopped as it began its first creation (a VPC or an address,
    // which need nothing), one at a time: that one exists or not.
    let diff = e.fails_with(exit::CHANGES, &["diff", DEMO, "--detailed-exitcode"]);
    let plan = e.plan_json(DEMO);
    let t = tagged(&e);
    let made: usize = t.values().map(Vec::len).sum();
    assert!(made <= 1, "one creation at a time: {t:?}");
    let c = changes(&plan);
    let updates: Vec<_> = c.iter().filter(|(_, a)| a != "create").collect();
    if made == 0 {
        assert!(updates.is_empty(), "{c:?}");
    } else {
        // Made, perhaps not yet set up (a VPC's DNS attributes).
        let (kind, ids) = t.iter().next().unwrap();
        assert!(kind == "vpc" || kind == "elastic-ip", "{t:?}");
        assert!(
            updates.len() <= 1
                && updates
                    .iter()
                    .all(|(id, a)| a == "update"
                        && step(&plan, id)["physical_id"] == ids[0].as_str()),
            "{c:?}"
        );
    }
    let line = format!(
        "Plan: {} to add, {} to change, 0 to destroy.",
        RESOURCES - made,
        updates.len()
    );
    assert!(
        has_line(&diff.stdout, &line),
        "no {line:?} in:\n{}",
        diff.stdout
    );

    assert!(std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = first.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "first run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The winner: done, its work whole, and the lock given back, so the
    // next run proceeds and finds nothing to do.
    assert_eq!(status.code(), Some(0), "{status}");
    let next = e.ok(&["up", DEMO, "--yes"]);
    assert!(has_line(&next.stdout, NO_CHANGES), "{}", next.stdout);
    check_network(&e, false);
}
