//! The single shape (`stacks/single.toml`) against the AWS API emulator,
//! through the realism proxy with every behaviour on: `up` from empty, an
//! empty plan, a new binary rolled out on the instance in place, an empty
//! plan, an instance type change replacing the instance, `destroy` refused
//! without consent and then done, leaving only the volume's final
//! snapshot. Each resource is checked with independent SDK calls.

use crate::common;

use std::sync::{Arc, Mutex};

use common::inventory;
use common::realism::{Behaviours, Realism};
use common::{changes, step, with_binary, Emulator};
use serde_json::Value;

const STACK: &str = "shop";

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
    /// Every command line the instances' agent was given.
    commands: Arc<Mutex<Vec<String>>>,
}

impl Env {
    fn run(&self, args: &[&str]) -> common::Run {
        self.e.run_via(&self.proxy.endpoint, args)
    }

    fn ok(&self, args: &[&str]) -> common::Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "`{}` failed:\n{}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap()
    }

    fn write_stack(&self, binary: &str, edit: &dyn Fn(String) -> String) {
        let text = std::fs::read_to_string(common::root().join("stacks/single.toml")).unwrap();
        std::fs::write(&self.stack, edit(with_binary(&text, binary))).unwrap();
    }
}

fn setup() -> (Env, String) {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::all());
    e.block_on(async {
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("test-zone")
            .send()
            .await
            .unwrap()
    });
    let commands = Arc::new(Mutex::new(Vec::new()));
    let seen = commands.clone();
    proxy.ssm_agent(move |_instance, lines| {
        seen.lock().unwrap().extend(lines.iter().cloned());
        (0, "released".into(), String::new())
    });
    let (bin, sha) = e.binary("bookstore binary, first build");
    let text = std::fs::read_to_string(common::root().join("stacks/single.toml")).unwrap();
    let stack = e.stack("single.toml", &with_binary(&text, &bin));
    (
        Env {
            e,
            proxy,
            stack,
            commands,
        },
        sha,
    )
}

#[test]
fn single_stack_from_empty_to_its_final_snapshot() {
    let (env, first_sha) = setup();
    let e = &env.e;
    env.ok(&["up", &env.stack, "--yes"]);

    let conf = e.conf();
    let ec2 = e.ec2();
    let asg = aws_sdk_autoscaling::Client::new(conf);
    let dlm = aws_sdk_dlm::Client::new(conf);
    let iam = aws_sdk_iam::Client::new(conf);
    let outputs: Value =
        serde_json::from_str(&env.ok(&["outputs", &env.stack, "--json"]).stdout).unwrap();
    assert_eq!(outputs["url"], "https://shop.example.com");
    let ip = outputs["public_ip"]
        .as_str()
        .expect("the address")
        .to_string();
    let volume_id = outputs["volume_id"]
        .as_str()
        .expect("the volume")
        .to_string();

    e.block_on(async {
        // One public subnet; the one security group open on 80 and 443 only.
        let mine = aws_sdk_ec2::types::Filter::builder()
            .name("tag:bookstore-infra:stack")
            .values(STACK)
            .build();
        let subnets = ec2
            .describe_subnets()
            .filters(mine.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(subnets.subnets().len(), 1, "{subnets:?}");
        let groups = ec2
            .describe_security_groups()
            .filters(mine.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(groups.security_groups().len(), 1);
        let mut ports: Vec<(i32, String)> = groups.security_groups()[0]
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                p.ip_ranges()
                    .iter()
                    .map(|r| (p.from_port().unwrap(), r.cidr_ip().unwrap().to_string()))
            })
            .collect();
        ports.sort();
        assert_eq!(ports, [(80, "0.0.0.0/0".into()), (443, "0.0.0.0/0".into())]);
        // No NAT gateway, no load balancer.
        let nats = ec2.describe_nat_gateways().send().await.unwrap();
        assert!(nats.nat_gateways().iter().all(|n| n.tags().is_empty()));
        let lbs = aws_sdk_elasticloadbalancingv2::Client::new(conf)
            .describe_load_balancers()
            .send()
            .await
            .unwrap();
        assert!(lbs.load_balancers().is_empty());

        // The data volume: encrypted gp3 in the subnet's zone, tagged for snapshots.
        let vols = ec2
            .describe_volumes()
            .volume_ids(&volume_id)
            .send()
            .await
            .unwrap();
        let v = &vols.volumes()[0];
        assert_eq!(v.encrypted(), Some(true));
        assert_eq!(v.size(), Some(10));
        assert_eq!(v.volume_type().map(|t| t.as_str()), Some("gp3"));
        assert_eq!(
            v.availability_zone(),
            subnets.subnets()[0].availability_zone()
        );
        assert!(v
            .tags()
            .iter()
            .any(|t| t.key() == Some("bookstore-infra:snapshots") && t.value() == Some(STACK)));

        // Daily snapshots kept 7, by a role Data Lifecycle Manager assumes.
        let policies = dlm.get_lifecycle_policies().send().await.unwrap();
        assert_eq!(policies.policies().len(), 1);
        let id = policies.policies()[0].policy_id().unwrap();
        let p = dlm
            .get_lifecycle_policy()
            .policy_id(id)
            .send()
            .await
            .unwrap();
        let p = p.policy().unwrap();
        assert_eq!(p.state().map(|s| s.as_str()), Some("ENABLED"));
        let d = p.policy_details().unwrap();
        assert_eq!(d.target_tags()[0].key(), Some("bookstore-infra:snapshots"));
        assert_eq!(d.target_tags()[0].value(), Some(STACK));
        let sched = &d.schedules()[0];
        assert_eq!(sched.retain_rule().unwrap().count(), Some(7));
        assert_eq!(sched.create_rule().unwrap().times(), ["03:00"]);
        let role_name = p.execution_role_arn().unwrap().rsplit('/').next().unwrap();
        let role = iam.get_role().role_name(role_name).send().await.unwrap();
        let trust = urlencoding_decode(role.role().unwrap().assume_role_policy_document().unwrap());
        assert!(trust.contains("dlm.amazonaws.com"), "{trust}");

        // Exactly one instance, judged by EC2's checks, in the public subnet.
        let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
        let g = &groups.auto_scaling_groups()[0];
        assert_eq!(
            (g.min_size(), g.max_size(), g.desired_capacity()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(g.health_check_type(), Some("EC2"));
        assert!(g.target_group_arns().is_empty());

        // The instance's user data names the volume, the address and the TLS settings.
        let lts = ec2
            .describe_launch_template_versions()
            .launch_template_id(g.launch_template().unwrap().launch_template_id().unwrap())
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let data = lts.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let ud =
            String::from_utf8(aws_smithy_types::base64::decode(data.user_data().unwrap()).unwrap())
                .unwrap();
        let (_, vars) = bookstore_infra::userdata::read_back(&ud).expect("the tool's user data");
        let vars = serde_json::to_value(vars).unwrap();
        assert_eq!(vars["volume_id"], volume_id.as_str());
        assert!(vars["allocation_id"]
            .as_str()
            .unwrap()
            .starts_with("eipalloc-"));
        assert_eq!(vars["tls_domains"], "shop.example.com,www.shop.example.com");
        assert_eq!(vars["acme_contact"], "ops@example.com");
        assert_eq!(vars["sha256"], first_sha.as_str());
        let nic = &data.network_interfaces()[0];
        assert_eq!(nic.associate_public_ip_address(), Some(true));
    });
    // The domain and its alternative name point at the address.
    let records = inventory::records(e);
    for name in ["shop.example.com.", "www.shop.example.com."] {
        assert!(
            records.iter().any(|r| r.starts_with(&format!("{name} A"))),
            "{records:?}"
        );
    }
    let a = e.block_on(async {
        let r53 = aws_sdk_route53::Client::new(conf);
        let zones = r53.list_hosted_zones().send().await.unwrap();
        let zone = zones.hosted_zones()[0].id().to_string();
        r53.list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await
            .unwrap()
    });
    let shop = a
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == "shop.example.com." && r.r#type().as_str() == "A")
        .unwrap();
    assert_eq!(shop.resource_records()[0].value(), ip);

    // Nothing left to do.
    assert!(changes(&env.plan()).is_empty(), "{}", env.plan());

    // `status` judges the one instance: until it holds the address and the
    // volume and has published its certificate, the stack is not healthy.
    let st = env.run(&["status", &env.stack, "--json"]);
    assert_eq!(st.code, 7, "{}\n{}", st.stdout, st.stderr);
    let report: Value = serde_json::from_str(&st.stdout).unwrap();
    let problems = report["problems"].to_string();
    assert!(problems.contains("no certificate"), "{problems}");
    assert!(
        problems.contains("not on the instance in service"),
        "{problems}"
    );
    // What the instance does at boot (its boot script's tests show it
    // does): take the address and the volume, publish the certificate's
    // public summary with its TLS state.
    let instance = e.block_on(async {
        let g = asg.describe_auto_scaling_groups().send().await.unwrap();
        let id = g.auto_scaling_groups()[0].instances()[0]
            .instance_id()
            .unwrap()
            .to_string();
        let alloc = ec2
            .describe_addresses()
            .public_ips(&ip)
            .send()
            .await
            .unwrap()
            .addresses()[0]
            .allocation_id()
            .unwrap()
            .to_string();
        ec2.associate_address()
            .allocation_id(alloc)
            .instance_id(&id)
            .send()
            .await
            .unwrap();
        ec2.attach_volume()
            .volume_id(&volume_id)
            .instance_id(&id)
            .device("/dev/sdf")
            .send()
            .await
            .unwrap();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(conf)
                .force_path_style(true)
                .build(),
        );
        let bucket =
            bookstore_infra::resources::s3::bucket_name(STACK, "123456789012", "us-east-1");
        let summary = serde_json::json!({
            "issuer": "CN=Pebble Intermediate CA 1a2b3c",
            "not_before": "2026-12-01T00:00:00Z",
            "not_after": "2099-03-01T00:00:00Z",
            "domains": ["shop.example.com", "www.shop.example.com"],
            "serial": "0a1b",
        });
        s3.put_object()
            .bucket(bucket)
            .key(bookstore_infra::resources::s3::CERTIFICATE_SUMMARY)
            .body(summary.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
        id
    });
    let st = env.run(&["status", &env.stack, "--json"]);
    assert_eq!(st.code, 0, "{}\n{}", st.stdout, st.stderr);
    let report: Value = serde_json::from_str(&st.stdout).unwrap();
    let one = &report["single"];
    assert_eq!(one["address"]["public_ip"], ip.as_str());
    assert_eq!(one["address"]["instance"], instance.as_str());
    assert_eq!(one["volume"]["attached_to"], instance.as_str());
    assert_eq!(one["tls"]["issuer"], "CN=Pebble Intermediate CA 1a2b3c");
    assert!(one["tls"]["days_left"].as_i64().unwrap() > 10_000);
    let text = env.ok(&["status", &env.stack]).stdout;
    assert!(text.contains("expires 2099-03-01T00:00:00Z"), "{text}");

    // A new binary goes out on the instance there, through the release
    // command; no instance is replaced.
    let (bin2, sha2) = e.binary("bookstore binary, second build");
    env.write_stack(&bin2, &|t| t);
    let refreshes_before = env.proxy.accepted("StartInstanceRefresh").len();
    env.ok(&["up", &env.stack, "--yes"]);
    let sent = env.commands.lock().unwrap().clone();
    assert!(
        sent.iter().any(|l| l
            .starts_with(bookstore_infra::resources::autoscaling_group::RELEASE_COMMAND)
            && l.contains(&sha2)),
        "{sent:?}"
    );
    assert_eq!(
        env.proxy.accepted("StartInstanceRefresh").len(),
        refreshes_before
    );
    assert!(changes(&env.plan()).is_empty(), "{}", env.plan());

    // A new instance type needs a new instance: the plan says the site is
    // down for a boot, and `up` replaces it.
    env.write_stack(&bin2, &|t| t.replace("t3.micro", "t3.small"));
    let plan = env.plan();
    let reason = step(&plan, "asg")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("down while the new instance boots"),
        "{plan}"
    );
    env.ok(&["up", &env.stack, "--yes"]);
    let refreshes = env.proxy.accepted("StartInstanceRefresh");
    assert_eq!(refreshes.len(), refreshes_before + 1);
    assert_eq!(
        refreshes
            .last()
            .unwrap()
            .form
            .get("Preferences.MinHealthyPercentage")
            .map(String::as_str),
        Some("0")
    );
    assert!(changes(&env.plan()).is_empty(), "{}", env.plan());

    // `rollback` returns to the first release the same way, in place.
    let refreshes_before = env.proxy.accepted("StartInstanceRefresh").len();
    let releases = env.ok(&["releases", &env.stack]).stdout;
    assert!(releases.contains(&first_sha[..12]), "{releases}");
    env.ok(&["rollback", &env.stack, "--to", "1", "--yes"]);
    let sent = env.commands.lock().unwrap().clone();
    assert!(
        sent.last().is_some_and(|l| l.contains(&first_sha)),
        "{sent:?}"
    );
    assert_eq!(
        env.proxy.accepted("StartInstanceRefresh").len(),
        refreshes_before
    );

    // `destroy` deletes the volume only with consent, after its final snapshot.
    let refused = env.run(&["destroy", &env.stack, "--yes"]);
    assert_eq!(refused.code, 4, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("--allow-delete data"),
        "{}",
        refused.stderr
    );
    assert!(inventory::owned(e, STACK).contains_key("ec2:volume"));
    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "data"]);
    let left = inventory::owned(e, STACK);
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        ["ec2:snapshot"],
        "{left:?}"
    );
    let snap_id = left["ec2:snapshot"][0].clone();
    let snap = e.block_on(async {
        ec2.describe_snapshots()
            .snapshot_ids(&snap_id)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(snap.snapshots()[0].volume_id(), Some(volume_id.as_str()));
    // The snapshot was `pending` at first, and the volume was deleted only
    // once it was seen `completed`.
    let reads: Vec<(std::time::Instant, bool)> = env
        .proxy
        .snapshot_reads()
        .into_iter()
        .filter(|r| r.1 == snap_id)
        .map(|r| (r.0, r.2))
        .collect();
    assert!(
        reads.iter().any(|r| !r.1),
        "never pending: {reads:?} {snap_id} {:?} {:?}",
        env.proxy.snapshot_reads(),
        env.proxy
            .seen()
            .iter()
            .filter(|s| s.op.contains("Snapshot"))
            .map(|s| (s.op.clone(), s.status, s.form.clone()))
            .collect::<Vec<_>>()
    );
    let completed = reads.iter().find(|r| r.1).expect("seen completed").0;
    // (Its first answer may have been lost: the first request did the work.)
    let deleted: Vec<_> = env
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.op == "DeleteVolume")
        .collect();
    assert!(!deleted.is_empty());
    assert!(deleted[0].at > completed);
    // And the new volume was `creating` before `up` went on with it.
    assert!(env.proxy.bit("lifecycles") > 0);
}

fn urlencoding_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
