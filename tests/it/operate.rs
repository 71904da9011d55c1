//! Operating a running stack: its log group and what the instances may do
//! with it, reading the app's logs, and running the app's command on an
//! instance through Systems Manager, against the emulator behind the
//! realism proxy (which serves Run Command as the API reference describes
//! it, and pages FilterLogEvents one event at a time).

use crate::common;

use std::time::Duration;

use bookstore_infra::exec::{self, ExecError};
use bookstore_infra::logs;
use common::realism::{Behaviours, Realism};
use common::{changes, with_binary, Emulator};
use serde_json::Value;

const STACK: &str = "demo";
const GROUP: &str = "/bookstore-infra/demo/app";
const SSM_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";

struct Env {
    e: Emulator,
    /// What `up` and `destroy` go through.
    proxy: Realism,
    stack: String,
}

impl Env {
    fn ok(&self, args: &[&str]) -> common::Run {
        self.e.ok_via(&self.proxy.endpoint, args)
    }

    fn changes(&self) -> std::collections::BTreeSet<(String, String)> {
        let plan: Value =
            serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap();
        changes(&plan)
    }
}

/// The demo stack, up, with a stand-in binary.
fn up(edit: &dyn Fn(String) -> String) -> Env {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let stack = e.stack("demo.toml", &edit(with_binary(&text, &bin)));
    let env = Env { e, proxy, stack };
    env.ok(&["up", &env.stack, "--yes"]);
    env
}

fn logs_client(e: &Emulator) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(e.conf())
}

/// (retention, tags) of the stack's log group, and how many groups it has.
fn log_group(e: &Emulator) -> (Option<i32>, Vec<(String, String)>, usize) {
    let logs = logs_client(e);
    e.block_on(async {
        let groups = logs
            .describe_log_groups()
            .log_group_name_prefix("/bookstore-infra/demo/")
            .send()
            .await
            .unwrap();
        let all = groups.log_groups();
        let Some(g) = all.iter().find(|g| g.log_group_name() == Some(GROUP)) else {
            return (None, vec![], all.len());
        };
        let tags = logs
            .list_tags_for_resource()
            .resource_arn(g.log_group_arn().unwrap())
            .send()
            .await
            .unwrap();
        let mut tags: Vec<(String, String)> = tags
            .tags()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.sort();
        (g.retention_in_days(), tags, all.len())
    })
}

fn role_name(e: &Emulator) -> String {
    e.block_on(async {
        let roles = aws_sdk_iam::Client::new(e.conf())
            .list_roles()
            .path_prefix("/bookstore-infra/demo/")
            .send()
            .await
            .unwrap();
        assert_eq!(roles.roles().len(), 1);
        roles.roles()[0].role_name().to_string()
    })
}

fn attached(e: &Emulator, role: &str) -> Vec<String> {
    e.block_on(async {
        aws_sdk_iam::Client::new(e.conf())
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap().to_string())
            .collect()
    })
}

#[test]
fn the_log_group_is_the_stacks_and_the_role_writes_only_there() {
    let env = up(&|t| t);
    let e = &env.e;
    let (retention, tags, n) = log_group(e);
    assert_eq!(n, 1, "one log group");
    assert_eq!(retention, Some(30), "the default retention");
    assert!(
        tags.contains(&("bookstore-infra:stack".into(), STACK.into()))
            && tags.contains(&("bookstore-infra:id".into(), "logs".into())),
        "{tags:?}"
    );
    let group_arn = e.block_on(async {
        logs_client(e)
            .describe_log_groups()
            .log_group_name_prefix(GROUP)
            .send()
            .await
            .unwrap()
            .log_groups()[0]
            .log_group_arn()
            .unwrap()
            .to_string()
    });

    // The role's logs permissions: two actions, on this group only.
    let role = role_name(e);
    let doc = e.block_on(async {
        aws_sdk_iam::Client::new(e.conf())
            .get_role_policy()
            .role_name(&role)
            .policy_name("bookstore-app")
            .send()
            .await
            .unwrap()
            .policy_document()
            .to_string()
    });
    let doc: Value = serde_json::from_str(&common::decode(&doc)).unwrap();
    let mut grants: Vec<(String, String)> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["Action"].to_string().contains("logs:"))
        .map(|st| {
            (
                st["Action"].as_str().expect("one action").to_string(),
                st["Resource"].as_str().expect("one resource").to_string(),
            )
        })
        .collect();
    grants.sort();
    assert_eq!(
        grants,
        [
            ("logs:CreateLogStream".to_string(), group_arn.clone()),
            (
                "logs:PutLogEvents".to_string(),
                format!("{group_arn}:log-stream:i-*")
            ),
        ]
    );
    // Systems Manager may reach the instances.
    assert_eq!(attached(e, &role), [SSM_CORE]);
    assert!(env.changes().is_empty(), "{:?}", env.changes());

    // Drift is repaired: the policy detached by hand, another attached.
    e.block_on(async {
        let iam = aws_sdk_iam::Client::new(e.conf());
        iam.detach_role_policy()
            .role_name(&role)
            .policy_arn(SSM_CORE)
            .send()
            .await
            .unwrap();
        iam.attach_role_policy()
            .role_name(&role)
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .unwrap();
    });
    assert_eq!(
        env.changes(),
        common::set(&[("role", "update")]),
        "the drift shows"
    );
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(attached(e, &role), [SSM_CORE]);

    // Retention is a setting, changed in place.
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(&env.stack, format!("{text}\n[logs]\nretention_days = 7\n")).unwrap();
    assert_eq!(env.changes(), common::set(&[("logs", "update")]));
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(log_group(e).0, Some(7));
    assert!(env.changes().is_empty());

    // Destroy detaches the policy (IAM refuses to delete a role with one
    // attached) and removes the group.
    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
    assert_eq!(log_group(e).2, 0, "the log group is gone");
    let roles = e.block_on(async {
        aws_sdk_iam::Client::new(e.conf())
            .list_roles()
            .path_prefix("/bookstore-infra/demo/")
            .send()
            .await
            .unwrap()
            .roles()
            .len()
    });
    assert_eq!(roles, 0);
}

/// The ids of the group's instances.
fn instances(e: &Emulator) -> Vec<String> {
    e.block_on(async {
        let mut ids: Vec<String> = aws_sdk_autoscaling::Client::new(e.conf())
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("demo-app")
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    })
}

fn put(e: &Emulator, stream: &str, events: &[(i64, &str)]) {
    let logs = logs_client(e);
    e.block_on(async {
        let _ = logs
            .create_log_stream()
            .log_group_name(GROUP)
            .log_stream_name(stream)
            .send()
            .await;
        let mut req = logs
            .put_log_events()
            .log_group_name(GROUP)
            .log_stream_name(stream);
        for (t, m) in events {
            req = req.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(*t)
                    .message(*m)
                    .build()
                    .unwrap(),
            );
        }
        req.send().await.unwrap();
    });
}

#[test]
fn logs_reads_the_stacks_group_page_by_page() {
    let env = up(&|t| t.replace("desired_capacity = 1", "desired_capacity = 2"));
    let e = &env.e;
    let ids = instances(e);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let paged = Realism::start(
        &e.endpoint,
        Behaviours {
            paging: true,
            ..Behaviours::none()
        },
    );
    let cloud = e.cloud_via(&paged.endpoint);
    let now = logs::since_ms(Duration::ZERO);
    let json = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"order placed","order":42},"target":"bookstore::shop"}"#;
    put(
        e,
        &ids[0],
        &[
            (now - 120_000, json),
            (now - 60_000, "plain line from the app"),
        ],
    );
    put(e, &ids[1], &[(now - 90_000, "the other instance")]);
    // Older than asked for.
    put(e, &ids[1], &[(now - 3_600_000, "an hour ago")]);

    let got = e
        .block_on(logs::fetch(
            &cloud,
            STACK,
            logs::since_ms(Duration::from_secs(600)),
            &[],
        ))
        .unwrap();
    let messages: Vec<&str> = got.iter().map(|ev| ev.message.as_str()).collect();
    assert_eq!(
        messages,
        [json, "the other instance", "plain line from the app"],
        "every stream, oldest first, nothing older than asked"
    );
    assert!(paged.bit("paging") >= 3, "{:?}", paged.injected());
    let pages = paged.accepted("FilterLogEvents").len();
    assert!(pages >= 3, "one event a page: {pages} requests");
    let text: Vec<String> = got.iter().map(logs::render).collect();
    assert!(
        text[0].ends_with(&format!(
            "{} INFO  order placed order=42 target=bookstore::shop",
            ids[0]
        )),
        "{}",
        text[0]
    );
    assert!(
        text[2].ends_with(&format!("{} plain line from the app", ids[0])),
        "{}",
        text[2]
    );

    // One instance's stream.
    let one = e
        .block_on(logs::fetch(
            &cloud,
            STACK,
            logs::since_ms(Duration::from_secs(7200)),
            std::slice::from_ref(&ids[1]),
        ))
        .unwrap();
    let messages: Vec<&str> = one.iter().map(|ev| ev.message.as_str()).collect();
    assert_eq!(messages, ["an hour ago", "the other instance"]);

    // Following: what is new, once.
    let mut f = logs::Follower::new(logs::since_ms(Duration::from_secs(600)));
    assert_eq!(e.block_on(f.poll(&cloud, STACK, &[])).unwrap().len(), 3);
    assert!(e.block_on(f.poll(&cloud, STACK, &[])).unwrap().is_empty());
    put(e, &ids[1], &[(logs::since_ms(Duration::ZERO), "just now")]);
    let fresh = e.block_on(f.poll(&cloud, STACK, &[])).unwrap();
    assert_eq!(
        fresh
            .iter()
            .map(|ev| ev.message.as_str())
            .collect::<Vec<_>>(),
        ["just now"]
    );

    // The verb: readable lines, or the messages as logged.
    let run = |args: &[&str]| {
        let out = e
            .cmd()
            .env("AWS_ENDPOINT_URL", &paged.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&["logs", &env.stack, "--since", "10m", "--instance", &ids[0]]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("INFO  order placed order=42 target=bookstore::shop"),
        "{text}"
    );
    assert!(lines[1].ends_with("plain line from the app"), "{text}");
    let raw = run(&["logs", &env.stack, "--since", "10m", "--json"]);
    assert_eq!(
        raw.lines().collect::<Vec<_>>(),
        [
            json,
            "the other instance",
            "plain line from the app",
            "just now"
        ]
    );

    // What an instance writes cannot drive the operator's terminal: a
    // plain line that would write the clipboard, erase the line above and
    // reorder the text, and the app's JSON carrying the same.
    let hostile = "pwned\x1b]52;c;cm0gLXJmIH4=\x07\x1b[1A\x1b[2K\r\u{202e}txt.exe\u{9b}";
    let hostile_json = r#"{"level":"INFO","fields":{"message":"x\u001b]0;title\u0007 \u202ey\u0085"},"target":"t"}"#;
    put(
        e,
        &ids[0],
        &[(now - 1_000, hostile), (now - 500, hostile_json)],
    );
    let text = run(&["logs", &env.stack, "--since", "10m", "--instance", &ids[0]]);
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
        "{text:?}"
    );
    assert!(
        text.contains(
            "pwned\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[1A\\x1b[2K\\r\\u{202e}txt.exe\\u{9b}\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("INFO  x\\x1b]0;title\\x07 \\u{202e}y\\u{85} target=t\n"),
        "{text}"
    );
    let raw = run(&[
        "logs",
        &env.stack,
        "--since",
        "10m",
        "--instance",
        &ids[0],
        "--json",
    ]);
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 4, "{raw}");
    assert!(
        !raw.chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
        "{raw:?}"
    );
    // The app's JSON still says the same.
    assert_eq!(
        serde_json::from_str::<Value>(lines[3]).unwrap(),
        serde_json::from_str::<Value>(hostile_json).unwrap()
    );

    // Another stack has no group.
    let err = e
        .block_on(logs::fetch(&cloud, "other", 0, &[]))
        .unwrap_err();
    assert!(err.to_string().contains("has no log group"), "{err}");
}

#[test]
fn exec_runs_the_apps_command_on_a_healthy_instance() {
    let env = up(&|t| t.replace("desired_capacity = 1", "desired_capacity = 2"));
    let e = &env.e;
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    proxy.ssm_agent(|_instance, lines| {
        if lines
            .iter()
            .any(|l| l.contains("admin grant 'o'\\''neil@example.com'"))
        {
            (
                0,
                "o'neil@example.com is now an admin\n".into(),
                String::new(),
            )
        } else {
            (3, String::new(), "no such user\n".into())
        }
    });
    let cloud = e.cloud_via(&proxy.endpoint);
    let ids = instances(e);
    assert_eq!(ids.len(), 2, "{ids:?}");
    // Both are InService and Healthy to Auto Scaling; one fails the load
    // balancer's health checks (a broken app on a running instance).
    let both = e.block_on(exec::healthy_instances(&cloud, STACK)).unwrap();
    assert_eq!(both, ids);
    for failing in [0, 1] {
        proxy.fail_target(&ids[failing]);
        let healthy = e.block_on(exec::healthy_instances(&cloud, STACK)).unwrap();
        assert_eq!(healthy, [ids[1 - failing].clone()], "{failing} fails");
        proxy.pass_target(&ids[failing]);
    }
    // Healthy everywhere but with its Systems Manager agent's connection
    // lost, an instance cannot take commands: the other is chosen.
    let poll = Duration::from_millis(50);
    let choose = |wait: Duration, reports: &std::sync::Mutex<Vec<String>>| {
        e.block_on(exec::choose(&cloud, STACK, None, wait, poll, |m| {
            reports.lock().unwrap().push(m.to_string())
        }))
    };
    let reports = std::sync::Mutex::new(Vec::new());
    proxy.agent_state(&ids[0], Some("ConnectionLost"));
    assert_eq!(choose(Duration::ZERO, &reports).unwrap(), ids[1]);
    proxy.agent_state(&ids[0], None);
    // One instance failing its target, the other's agent not registered
    // yet: after the wait, a refusal naming each.
    proxy.fail_target(&ids[0]);
    proxy.agent_state(&ids[1], Some(""));
    let err = choose(Duration::from_millis(300), &reports).unwrap_err();
    assert!(
        matches!(&err, ExecError::NoAgentOnline { states, .. } if *states == format!("{} not registered", ids[1])),
        "{err}"
    );
    // The agent comes online while `exec` waits: it waited, then chose it.
    reports.lock().unwrap().clear();
    let later = proxy.clone();
    let id = ids[1].clone();
    let online = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        later.agent_state(&id, None);
    });
    assert_eq!(choose(Duration::from_secs(20), &reports).unwrap(), ids[1]);
    online.join().unwrap();
    let waited = reports.lock().unwrap().clone();
    assert!(
        waited
            .iter()
            .any(|m| m.contains(&format!("{} not registered", ids[1]))),
        "{waited:?}"
    );
    assert!(proxy.bit("agent_not_online") >= 3, "{:?}", proxy.injected());
    let healthy = e.block_on(exec::healthy_instances(&cloud, STACK)).unwrap();
    let instance = &healthy[0];
    assert_eq!(instance, &ids[1]);

    let args: Vec<String> = ["bookstore", "admin", "grant", "o'neil@example.com"]
        .map(String::from)
        .to_vec();
    let line = exec::command_line(&args).unwrap();
    let out = e
        .block_on(exec::run(
            &cloud,
            STACK,
            instance,
            &line,
            Duration::from_secs(30),
            Duration::from_millis(50),
        ))
        .unwrap();
    assert_eq!(
        (out.status.as_str(), out.exit_code, out.stdout.as_str()),
        ("Success", 0, "o'neil@example.com is now an admin\n")
    );
    // What AWS was asked: the shell document, the one line, the instance.
    let sent = proxy.invocations();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].document, "AWS-RunShellScript");
    assert_eq!(&sent[0].instance, instance);
    assert_eq!(sent[0].commands, std::slice::from_ref(&line));
    assert!(line.starts_with("systemd-run "), "{line}");
    // It waited through the invocation appearing, Pending and InProgress.
    assert!(
        proxy.bit("invocation_not_yet") >= 1,
        "{:?}",
        proxy.injected()
    );
    assert!(
        proxy.bit("invocation_in_progress") >= 1,
        "{:?}",
        proxy.injected()
    );

    // A failing command: its exit status and standard error.
    let bad: Vec<String> = ["bookstore", "admin", "grant", "nobody@example.com"]
        .map(String::from)
        .to_vec();
    let out = e
        .block_on(exec::run(
            &cloud,
            STACK,
            instance,
            &exec::command_line(&bad).unwrap(),
            Duration::from_secs(30),
            Duration::from_millis(50),
        ))
        .unwrap();
    assert_eq!(
        (out.status.as_str(), out.exit_code, out.stderr.as_str()),
        ("Failed", 3, "no such user\n")
    );

    // Too short a wait: a timeout naming the command, not a result.
    let err = e
        .block_on(exec::run(
            &cloud,
            STACK,
            instance,
            &line,
            Duration::from_millis(200),
            Duration::from_millis(50),
        ))
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err}");

    // An instance that is not running is refused by SendCommand.
    let err = e
        .block_on(exec::run(
            &cloud,
            STACK,
            "i-0123456789abcdef0",
            &line,
            Duration::from_secs(5),
            Duration::from_millis(50),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("InvalidInstanceId"), "{err}");
    assert_eq!(proxy.bit("invalid_instance"), 1);
    // Anything but the app's command is refused before any call.
    assert!(matches!(
        exec::command_line(&["sh".to_string(), "-c".into(), "id".into()]),
        Err(ExecError::NotTheApp(_))
    ));

    // The verb: output passed through, the command's exit status its own.
    let cli = |args: &[&str]| {
        let out = e
            .cmd()
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let before = proxy.invocations().len();
    let (code, stdout, stderr) = cli(&[
        "exec",
        &env.stack,
        "--",
        "bookstore",
        "admin",
        "grant",
        "o'neil@example.com",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "o'neil@example.com is now an admin\n");
    assert!(
        stderr.contains(&format!("running on {instance}")),
        "{stderr}"
    );
    let (code, stdout, stderr) = cli(&[
        "exec",
        &env.stack,
        "--",
        "bookstore",
        "admin",
        "grant",
        "nobody@example.com",
    ]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.ends_with("no such user\n"), "{stderr}");
    let (code, _, stderr) = cli(&["exec", &env.stack, "--", "sh", "-c", "id"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("exec runs the app's command only"),
        "{stderr}"
    );
    let sent = proxy.invocations();
    assert_eq!(sent.len(), before + 2, "the refused one was not sent");
    assert!(
        sent[before..].iter().all(|i| &i.instance == instance),
        "sent to the instance passing its health checks only: {sent:?}"
    );
    // No instance passes: a clear refusal, nothing sent.
    proxy.fail_target(&ids[1]);
    let (code, _, stderr) = cli(&["exec", &env.stack, "--", "bookstore", "migrate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no instance both InService and healthy"),
        "{stderr}"
    );
    assert_eq!(proxy.invocations().len(), before + 2);
}

#[test]
fn without_a_nat_gateway_endpoints_serve_the_instances() {
    let env = up(&|t| t.replace("nat = \"single\"", "nat = \"none\"\nendpoints = true"));
    let e = &env.e;
    let ec2 = e.ec2();
    let (endpoints, nats, private_subnets, private_tables, sg) = e.block_on(async {
        let vpce = ec2
            .describe_vpc_endpoints()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:bookstore-infra:stack")
                    .values(STACK)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let nats = ec2.describe_nat_gateways().send().await.unwrap();
        let subnets = ec2.describe_subnets().send().await.unwrap();
        let tables = ec2.describe_route_tables().send().await.unwrap();
        let groups = ec2.describe_security_groups().send().await.unwrap();
        let tag = |tags: &[aws_sdk_ec2::types::Tag]| {
            tags.iter()
                .find(|t| t.key() == Some("bookstore-infra:id"))
                .and_then(|t| t.value())
                .unwrap_or_default()
                .to_string()
        };
        let mut private_subnets: Vec<String> = subnets
            .subnets()
            .iter()
            .filter(|s| tag(s.tags()).starts_with("subnet-private-"))
            .map(|s| s.subnet_id().unwrap().to_string())
            .collect();
        private_subnets.sort();
        let mut private_tables: Vec<String> = tables
            .route_tables()
            .iter()
            .filter(|t| tag(t.tags()).starts_with("rt-private-"))
            .map(|t| t.route_table_id().unwrap().to_string())
            .collect();
        private_tables.sort();
        let sg = groups
            .security_groups()
            .iter()
            .find(|g| tag(g.tags()) == "sg-endpoints")
            .map(|g| g.group_id().unwrap().to_string())
            .expect("the endpoints' security group");
        (
            vpce.vpc_endpoints().to_vec(),
            nats.nat_gateways()
                .iter()
                .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
                .count(),
            private_subnets,
            private_tables,
            sg,
        )
    });
    assert_eq!(nats, 0, "no NAT gateway");
    let mut services: Vec<(String, String)> = endpoints
        .iter()
        .map(|v| {
            (
                v.service_name().unwrap().to_string(),
                v.vpc_endpoint_type().unwrap().as_str().to_string(),
            )
        })
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            ("com.amazonaws.us-east-1.ec2messages", "Interface"),
            ("com.amazonaws.us-east-1.logs", "Interface"),
            ("com.amazonaws.us-east-1.s3", "Gateway"),
            ("com.amazonaws.us-east-1.secretsmanager", "Interface"),
            ("com.amazonaws.us-east-1.ssm", "Interface"),
            ("com.amazonaws.us-east-1.ssmmessages", "Interface"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for v in &endpoints {
        if v.service_name() == Some("com.amazonaws.us-east-1.s3") {
            let mut t = v.route_table_ids().to_vec();
            t.sort();
            assert_eq!(t, private_tables, "the gateway is on the private tables");
        } else {
            let mut s = v.subnet_ids().to_vec();
            s.sort();
            assert_eq!(s, private_subnets, "interfaces in the private subnets");
            let groups: Vec<&str> = v.groups().iter().filter_map(|g| g.group_id()).collect();
            assert_eq!(groups, [sg.as_str()]);
            assert_eq!(v.private_dns_enabled(), Some(true));
        }
    }
    assert!(env.changes().is_empty(), "{:?}", env.changes());

    // Drift: a subnet taken off an endpoint is put back in place.
    let ssm_vpce = endpoints
        .iter()
        .find(|v| v.service_name() == Some("com.amazonaws.us-east-1.ssm"))
        .unwrap()
        .vpc_endpoint_id()
        .unwrap()
        .to_string();
    e.block_on(async {
        ec2.modify_vpc_endpoint()
            .vpc_endpoint_id(&ssm_vpce)
            .remove_subnet_ids(&private_subnets[0])
            .send()
            .await
            .unwrap();
    });
    assert_eq!(
        env.changes(),
        common::set(&[("vpce-ssm", "update")]),
        "the drift shows"
    );
    env.ok(&["up", &env.stack, "--yes"]);
    assert!(env.changes().is_empty(), "{:?}", env.changes());

    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
    let left = e.block_on(async {
        ec2.describe_vpc_endpoints()
            .send()
            .await
            .unwrap()
            .vpc_endpoints()
            .iter()
            .filter(|v| {
                !v.state()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
            })
            .count()
    });
    assert_eq!(left, 0, "every endpoint deleted");
}
