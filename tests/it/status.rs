//! `status`: the production stack deployed on the AWS API emulator, read
//! back instance by instance, with the verdict's exit code (the verdict's
//! rules on their own are unit tests in src/status/judge.rs).
//!
//! The emulator does not implement Auto Scaling instance refresh: the tool
//! talks to it through the realism proxy (tests/common/realism.rs), which
//! serves those APIs, with no other behaviour switched on.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::exit::{ERROR, UNHEALTHY};
use common::realism::{Behaviours, Realism, Timing};
use common::{with_binary, Emulator};
use serde_json::Value;

/// A health check endpoint on loopback answering every request with the
/// status code it is set to; it records the paths asked for.
struct Health {
    url: String,
    code: Arc<AtomicU16>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Health {
    fn start(code: u16) -> Health {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", l.local_addr().unwrap());
        let code = Arc::new(AtomicU16::new(code));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (c, p) = (code.clone(), paths.clone());
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req);
                if let Some(path) = head.split(' ').nth(1) {
                    p.lock().unwrap().push(path.to_string());
                }
                let code = c.load(Ordering::SeqCst);
                let body = if code == 200 { "ok" } else { "down" };
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Health { url, code, paths }
    }
}

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
}

impl Env {
    fn run(&self, args: &[&str]) -> common::Run {
        self.e.run_via(&self.proxy.endpoint, args)
    }

    /// `status --json` and its exit code.
    fn status(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["status", &self.stack, "--json"];
        args.extend_from_slice(extra);
        let r = self.run(&args);
        let doc = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}), exit {}:\n{}\n{}",
                args.join(" "),
                r.code,
                r.stdout,
                r.stderr
            )
        });
        (r.code, doc)
    }
}

fn production() -> Env {
    // The instance role gets an AWS managed policy: the emulator knows
    // them only when asked to load them.
    let e = Emulator::start_with(&[
        ("MOTO_ACM_VALIDATION_WAIT", "1"),
        ("MOTO_IAM_LOAD_MANAGED_POLICIES", "true"),
    ]);
    // Refreshes last long enough to be seen running.
    let timing = Timing {
        refresh_pending: Duration::from_millis(100),
        refresh_per_instance: Duration::from_secs(600),
        ..Timing::default()
    };
    let proxy = Realism::start_with(&e.endpoint, Behaviours::none(), timing);
    // The domain's zone exists already, as a real domain's would.
    e.block_on(async {
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("test-zone")
            .send()
            .await
            .unwrap()
    });
    let (bin, _) = e.binary("bookstore binary, first build");
    let text = std::fs::read_to_string(common::root().join("stacks/production.toml")).unwrap();
    let stack = e.stack("production.toml", &with_binary(&text, &bin));
    Env { e, proxy, stack }
}

fn problems(doc: &Value) -> String {
    doc["problems"].to_string()
}

#[test]
fn production_status_lists_instances_targets_database_certificate_and_its_verdict() {
    let env = production();
    let up = env.run(&["up", &env.stack, "--yes"]);
    assert_eq!(up.code, 0, "up failed:\n{}\n{}", up.stdout, up.stderr);
    let asg = aws_sdk_autoscaling::Client::new(env.e.conf());
    let group = env.e.block_on(async {
        let d = asg.describe_auto_scaling_groups().send().await.unwrap();
        d.auto_scaling_groups()[0].clone()
    });
    let ids: BTreeSet<String> = group
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2, "the production stack runs two instances");

    // A fresh stack is healthy, and says what it runs.
    let (code, doc) = env.status(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["healthy"], true);
    assert_eq!(doc["problems"], serde_json::json!([]));
    assert_eq!(doc["stack"], "bookstore-prod");
    assert_eq!(doc["url"], "https://shop.example.com");
    let g = &doc["group"];
    assert_eq!(g["name"], group.auto_scaling_group_name().unwrap());
    assert_eq!(g["desired"], 2);
    assert_eq!(g["healthy_targets"], 2);
    let wanted = g["wanted_version"].as_str().expect("a wanted version");
    assert_eq!(g["rolled_out_version"], wanted, "{g:#}");
    assert_eq!(g["configured_version"], wanted, "{g:#}");
    assert_eq!(g["refresh"], Value::Null, "no refresh has run yet");
    let listed: BTreeSet<String> = g["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids);
    // Each instance's zone is where EC2 placed it.
    let placed: std::collections::BTreeMap<String, String> = env.e.block_on(async {
        let d = env
            .e
            .ec2()
            .describe_instances()
            .set_instance_ids(Some(ids.iter().cloned().collect()))
            .send()
            .await
            .unwrap();
        d.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap().to_string(),
                    i.placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    });
    for i in g["instances"].as_array().unwrap() {
        assert_eq!(i["lifecycle_state"], "InService", "{i:#}");
        assert_eq!(i["health_status"], "Healthy", "{i:#}");
        assert_eq!(i["launch_template_version"], wanted, "{i:#}");
        assert_eq!(i["target"]["state"], "healthy", "{i:#}");
        let id = i["id"].as_str().unwrap();
        assert_eq!(i["zone"].as_str(), Some(placed[id].as_str()), "{i:#}");
    }
    let db = &doc["database"];
    assert_eq!(db["identifier"], "bookstore-prod-db");
    assert_eq!(db["state"], "available");
    assert_eq!(db["class"], "db.t3.medium");
    assert_eq!(db["multi_az"], true);
    assert_eq!(db["engine"], "mysql");
    assert!(db["engine_version"].as_str().unwrap().starts_with("8.0"));
    assert_eq!(db["pending"], serde_json::json!({}));
    assert_eq!(doc["certificate"]["domain"], "shop.example.com");
    assert_eq!(doc["certificate"]["status"], "ISSUED");

    // The text for people: the same facts, and the verdict last.
    let text = env.run(&["status", &env.stack]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    for id in &ids {
        assert!(text.stdout.contains(id.as_str()), "{}", text.stdout);
    }
    for want in [
        "url              https://shop.example.com\n",
        "bookstore-prod-db available, db.t3.medium, Multi-AZ, mysql 8.0",
        "certificate      shop.example.com ISSUED\n",
        &format!("version {wanted} wanted, {wanted} rolled out, group on {wanted}\n"),
        "target healthy",
    ] {
        assert!(
            text.stdout.contains(want),
            "no {want:?} in:\n{}",
            text.stdout
        );
    }
    assert!(text.stdout.ends_with("\nhealthy\n"), "{}", text.stdout);

    // The probe: 200 is healthy, anything else is not.
    let health = Health::start(200);
    let (code, doc) = env.status(&["--probe", "--probe-url", &health.url]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["probe"]["status"], 200);
    assert_eq!(*health.paths.lock().unwrap(), vec!["/healthz".to_string()]);
    health.code.store(503, Ordering::SeqCst);
    let (code, doc) = env.status(&["--probe-url", &health.url]);
    assert_eq!(code, UNHEALTHY, "{doc:#}");
    assert_eq!(doc["healthy"], false);
    assert_eq!(doc["probe"]["status"], 503);
    assert!(problems(&doc).contains("answered 503"), "{doc:#}");
    // Without --probe-url, the stack's own URL, which nothing resolves here.
    let (code, doc) = env.status(&["--probe", "--probe-timeout", "3"]);
    assert_eq!(code, UNHEALTHY, "{doc:#}");
    assert_eq!(doc["probe"]["url"], "https://shop.example.com/healthz");
    assert_eq!(doc["probe"]["status"], Value::Null, "{doc:#}");

    // A rollout running: its progress, and the group still healthy.
    let lt_id = g["launch_template_id"].as_str().unwrap().to_string();
    let started = env.e.block_on(async {
        let conf = aws_sdk_autoscaling::config::Builder::from(env.e.conf())
            .endpoint_url(&env.proxy.endpoint)
            .build();
        aws_sdk_autoscaling::Client::from_conf(conf)
            .start_instance_refresh()
            .auto_scaling_group_name(group.auto_scaling_group_name().unwrap())
            .desired_configuration(
                aws_sdk_autoscaling::types::DesiredConfiguration::builder()
                    .launch_template(
                        aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                            .launch_template_id(lt_id)
                            .version(wanted)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let (code, doc) = env.status(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let r = &doc["group"]["refresh"];
    assert_eq!(r["id"], started.instance_refresh_id().unwrap(), "{r:#}");
    assert_eq!(r["status"], "InProgress", "{r:#}");
    assert_eq!(r["active"], true);
    assert_eq!(r["percentage_complete"], 0, "{r:#}");
    assert_eq!(r["target_version"], wanted);
    let text = env.run(&["status", &env.stack]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout.contains(&format!(
            "InProgress, 0% done, 2 to update (to version {wanted})"
        )),
        "{}",
        text.stdout
    );

    // An instance taken out of the load balancer: not healthy, and which.
    let out = ids.iter().next().unwrap().clone();
    env.e.block_on(async {
        aws_sdk_elasticloadbalancingv2::Client::new(env.e.conf())
            .deregister_targets()
            .target_group_arn(&group.target_group_arns()[0])
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(&out)
                    .build(),
            )
            .send()
            .await
            .unwrap()
    });
    let (code, doc) = env.status(&[]);
    assert_eq!(code, UNHEALTHY, "{doc:#}");
    assert_eq!(doc["group"]["healthy_targets"], 1, "{doc:#}");
    let gone = doc["group"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == out.as_str())
        .unwrap();
    assert_eq!(gone["target"], Value::Null, "{gone:#}");
    assert_eq!(
        doc["problems"],
        serde_json::json!([format!(
            "instance {out} is in service but not registered with the load balancer"
        )])
    );
    let text = env.run(&["status", &env.stack]);
    assert_eq!(text.code, UNHEALTHY);
    assert!(
        text.stdout.ends_with(&format!(
            "not healthy:\n  - instance {out} is in service but not registered with the load balancer\n"
        )),
        "{}",
        text.stdout
    );
}

#[test]
fn a_stack_that_does_not_exist_is_an_error() {
    let e = Emulator::start();
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let stack = e.stack(
        "nowhere.toml",
        &text.replace("name = \"demo\"", "name = \"nowhere\""),
    );
    let r = e.run(&["status", &stack, "--json"]);
    assert_eq!(r.code, ERROR, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "", "no document for a stack that does not exist");
    assert!(
        r.stderr
            .contains("stack nowhere does not exist in us-east-1"),
        "{}",
        r.stderr
    );
}

#[test]
fn without_the_instance_refresh_api_status_reports_the_rest() {
    // The bare emulator serves no instance refresh API; an endpoint like it
    // must not keep `status` from reporting what it can read.
    let e = Emulator::start();
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let stack = e.stack("demo.toml", &with_binary(&text, &bin));
    e.ok(&["up", &stack, "--yes"]);
    let r = e.run(&["status", &stack]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("refresh          unknown: the instance refreshes could not be read"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("InService"), "{}", r.stdout);
    let j = e.run(&["status", &stack, "--json"]);
    assert_eq!(j.code, 0, "{}\n{}", j.stdout, j.stderr);
    let doc: Value = serde_json::from_str(&j.stdout).unwrap();
    assert!(
        doc["group"]["refresh_unreadable"]
            .as_str()
            .is_some_and(|s| s.contains("DescribeInstanceRefreshes")),
        "{doc}"
    );
}
