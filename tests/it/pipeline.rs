//! The tool in a CI pipeline: `diff --out PLAN` then `up --plan PLAN`
//! (what was reviewed is what is applied, and a plan the cloud or the file
//! has moved away from is refused with its own exit code before anything
//! changes), the cost limit, the job summary, and that no plan or output
//! holds the database's password.
//!
//! The tool talks to the emulator through the realism proxy (paging,
//! eventual consistency, slow lifecycles on), which records every request:
//! "changes nothing" is checked on the requests themselves.

use crate::common;

use std::path::Path;

use common::exit::{COST_LIMIT, ERROR, STALE_PLAN};
use common::realism::{Behaviours, Realism, Seen};
use common::{Emulator, Run};
use serde_json::{json, Value};

fn network_stack(e: &Emulator) -> String {
    let text = std::fs::read_to_string(common::root().join("stacks/network.toml")).unwrap();
    e.stack("net.toml", &text)
}

fn run(e: &Emulator, proxy: &Realism, args: &[&str]) -> Run {
    e.run_via(&proxy.endpoint, args)
}

fn ok(e: &Emulator, proxy: &Realism, args: &[&str]) -> Run {
    e.ok_via(&proxy.endpoint, args)
}

/// Requests that change something (anything but a read).
fn writes(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| {
            !["Describe", "List", "Get", "Head"]
                .iter()
                .any(|p| s.op.starts_with(p))
        })
        .map(|s| format!("{}:{}", s.service, s.op))
        .collect()
}

fn read_plan(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn a_saved_plan_is_applied_as_reviewed_without_asking_again() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::all());
    let stack = network_stack(&e);
    let plan = e.dir.path().join("plan.json");
    let plan_s = plan.to_string_lossy().into_owned();
    ok(&e, &proxy, &["diff", &stack, "--out", &plan_s]);
    let saved = read_plan(&plan);
    assert_eq!(saved["format"], "bookstore-infra-plan");
    assert_eq!(saved["stack"], "net");
    assert_eq!(saved["region"], common::REGION);
    assert_eq!(saved["account"].as_str().unwrap().len(), 12, "{saved}");
    assert_eq!(saved["stack_sha256"].as_str().unwrap().len(), 64);
    // From nothing: every resource of the network stack is made.
    assert_eq!(
        saved["plan"]["summary"],
        json!({"add": 15, "change": 0, "destroy": 0}),
        "{saved}"
    );
    assert!(
        writes(&proxy.seen()).is_empty(),
        "diff wrote: {:?}",
        writes(&proxy.seen())
    );

    // No --yes and no terminal: the saved plan was the review.
    let applied = ok(&e, &proxy, &["up", &stack, "--plan", &plan_s, "--json"]);
    let out: Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(out["applied"], true);
    assert_eq!(out["plan"]["summary"], saved["plan"]["summary"]);
    let after = run(&e, &proxy, &["diff", &stack, "--detailed-exitcode"]);
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
}

#[test]
fn a_plan_overtaken_by_another_run_or_a_change_behind_the_tools_back_is_refused_and_changes_nothing(
) {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::all());
    let stack = network_stack(&e);
    let plan = e
        .dir
        .path()
        .join("plan.json")
        .to_string_lossy()
        .into_owned();

    // Two pipelines: one reviews a plan to create the stack, the other
    // creates it first.
    ok(&e, &proxy, &["diff", &stack, "--out", &plan]);
    ok(&e, &proxy, &["up", &stack, "--yes"]);
    let before = proxy.seen().len();
    let refused = run(&e, &proxy, &["up", &stack, "--plan", &plan]);
    assert_eq!(
        refused.code, STALE_PLAN,
        "{}\n{}",
        refused.stdout, refused.stderr
    );
    assert!(
        refused.stderr.contains("the plan is stale") && refused.stderr.contains("Nothing applied"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("vpc (ec2:vpc): planned create, now no change to vpc-"),
        "{}",
        refused.stderr
    );
    let during: Vec<Seen> = proxy.seen()[before..].to_vec();
    // Only the lock was written.
    let w: Vec<String> = writes(&during)
        .into_iter()
        .filter(|w| !w.starts_with("s3:") && !w.starts_with("ssm:"))
        .collect();
    assert!(w.is_empty(), "a stale plan wrote: {w:?}");

    // A reviewed change, then someone changes the VPC by hand before the merge.
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(&stack, text.replace("port = 8080", "port = 8081")).unwrap();
    ok(&e, &proxy, &["diff", &stack, "--out", &plan]);
    let saved = read_plan(Path::new(&plan));
    // The app's port is what the load balancer may reach it on.
    assert_eq!(
        common::changes(&saved["plan"]),
        common::set(&[("sg-app", "update")]),
        "{saved}"
    );
    assert_eq!(
        saved["plan"]["summary"],
        json!({"add": 0, "change": 1, "destroy": 0}),
        "{saved}"
    );
    let vpc = common::step(&saved["plan"], "vpc")["physical_id"]
        .as_str()
        .unwrap()
        .to_string();
    e.block_on(async {
        e.ec2()
            .modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(false)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let before = proxy.seen().len();
    let refused = run(&e, &proxy, &["up", &stack, "--plan", &plan, "--yes"]);
    assert_eq!(
        refused.code, STALE_PLAN,
        "{}\n{}",
        refused.stdout, refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!(
            "vpc (ec2:vpc): planned no change to {vpc}, now update of {vpc}"
        )),
        "{}",
        refused.stderr
    );
    let during: Vec<Seen> = proxy.seen()[before..].to_vec();
    assert!(
        !during.iter().any(|s| s.op == "ModifyVpcAttribute"
            || s.op == "AuthorizeSecurityGroupIngress"
            || s.op == "RevokeSecurityGroupIngress"),
        "a stale plan changed the cloud"
    );

    // Reviewed again, it applies.
    ok(&e, &proxy, &["diff", &stack, "--out", &plan]);
    ok(&e, &proxy, &["up", &stack, "--plan", &plan]);
    assert_eq!(
        run(&e, &proxy, &["diff", &stack, "--detailed-exitcode"]).code,
        0
    );
}

#[test]
fn a_plan_for_another_file_stack_account_or_region_is_refused() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let stack = network_stack(&e);
    let plan = e
        .dir
        .path()
        .join("plan.json")
        .to_string_lossy()
        .into_owned();
    ok(&e, &proxy, &["diff", &stack, "--out", &plan]);

    // The file changed since the review, even where the plan would not.
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(&stack, format!("{text}\n# reviewed? no\n")).unwrap();
    let r = run(&e, &proxy, &["up", &stack, "--plan", &plan]);
    assert_eq!(r.code, STALE_PLAN, "{}", r.stderr);
    assert!(
        r.stderr.contains("the stack file changed since the plan"),
        "{}",
        r.stderr
    );
    std::fs::write(&stack, &text).unwrap();

    // Another stack: refused before any request.
    let other = e.stack(
        "other.toml",
        &text.replace("name = \"net\"", "name = \"net2\""),
    );
    let before = proxy.seen().len();
    let r = run(&e, &proxy, &["up", &other, "--plan", &plan]);
    assert_eq!(r.code, STALE_PLAN, "{}", r.stderr);
    assert!(
        r.stderr.contains("is a plan for stack `net`, not `net2`"),
        "{}",
        r.stderr
    );
    assert_eq!(
        proxy.seen().len(),
        before,
        "requests were made for a foreign plan"
    );

    // Another region.
    let r = run(
        &e,
        &proxy,
        &["up", &stack, "--plan", &plan, "--region", "us-west-2"],
    );
    assert_eq!(r.code, STALE_PLAN, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the plan is for region us-east-1, this run is in us-west-2"),
        "{}",
        r.stderr
    );

    // Another account (the plan's account, as another account's pipeline wrote it).
    let mut saved = read_plan(Path::new(&plan));
    saved["account"] = "210987654321".into();
    std::fs::write(&plan, saved.to_string()).unwrap();
    let r = run(&e, &proxy, &["up", &stack, "--plan", &plan]);
    assert_eq!(r.code, STALE_PLAN, "{}", r.stderr);
    assert!(
        r.stderr.contains("the plan is for account 210987654321"),
        "{}",
        r.stderr
    );

    // Not a plan at all.
    std::fs::write(&plan, "{}").unwrap();
    let r = run(&e, &proxy, &["up", &stack, "--plan", &plan]);
    assert_eq!(r.code, ERROR, "{}", r.stderr);
    assert!(
        r.stderr.contains("is not a bookstore-infra plan"),
        "{}",
        r.stderr
    );
    assert!(
        writes(&proxy.seen())
            .iter()
            .all(|w| w.starts_with("s3:") || w.starts_with("ssm:")),
        "{:?}",
        writes(&proxy.seen())
    );
}

#[test]
fn the_cost_limit_fails_the_run_before_anything_is_applied_and_the_summary_gets_the_plan() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let stack = network_stack(&e);
    let summary = e.dir.path().join("summary.md");
    // One NAT gateway and its address: 730 h x (0.045 + 0.005) USD in us-east-1.
    let want = 730.0 * (0.045 + 0.005);
    let r = e
        .cmd()
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["diff", &stack, "--json", "--max-monthly-increase", "10"])
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(COST_LIMIT),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!(
            "rises by up to {want:.2} USD, over the limit of 10.00 USD"
        )),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let cost = &doc["cost"];
    assert!(
        (cost["increase_max"].as_f64().unwrap() - want).abs() < 0.01,
        "{cost}"
    );
    assert_eq!(cost["before"]["total_max"].as_f64(), Some(0.0));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.lines()
            .any(|l| l == "**Plan for `net`:** 15 to add, 0 to change, 0 to destroy"),
        "{md}"
    );
    assert!(md.contains(&format!("{want:.2}")), "{md}");

    let r = run(
        &e,
        &proxy,
        &["up", &stack, "--yes", "--max-monthly-increase", "10"],
    );
    assert_eq!(r.code, COST_LIMIT, "{}", r.stderr);
    assert!(
        writes(&proxy.seen())
            .iter()
            .all(|w| w.starts_with("s3:") || w.starts_with("ssm:")),
        "{:?}",
        writes(&proxy.seen())
    );
    ok(
        &e,
        &proxy,
        &["up", &stack, "--yes", "--max-monthly-increase", "40"],
    );
    // Nothing changes now, so nothing rises.
    let r = ok(
        &e,
        &proxy,
        &["diff", &stack, "--cost", "--max-monthly-increase", "0"],
    );
    assert!(r.stdout.contains(&format!("{want:.2}")), "{}", r.stdout);
}

/// The password RDS keeps for the stack's only database (it manages the
/// master password in Secrets Manager; the tool never sets or reads it),
/// read through the AWS CLI: (the secret's ARN, its JSON, the password).
pub(crate) fn database_password(e: &Emulator) -> (String, String, String) {
    let arn = e.block_on(async {
        let d = aws_sdk_rds::Client::new(e.conf())
            .describe_db_instances()
            .send()
            .await
            .unwrap();
        assert_eq!(d.db_instances().len(), 1, "{d:?}");
        d.db_instances()[0]
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .expect("RDS keeps the database's password in a secret")
            .to_string()
    });
    let aws = common::root().join(".venv/bin/aws");
    assert!(
        aws.exists(),
        "{} is missing: run scripts/ensure-emulator (.ci/run does)",
        aws.display()
    );
    let out = std::process::Command::new(aws)
        .args(["secretsmanager", "get-secret-value", "--secret-id", &arn])
        .args(["--query", "SecretString", "--output", "text"])
        .env("AWS_ENDPOINT_URL", &e.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", common::REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let doc: Value = serde_json::from_str(&secret).unwrap();
    let password = doc["password"]
        .as_str()
        .unwrap_or_else(|| panic!("no password in {secret}"))
        .to_string();
    (arn, secret, password)
}

/// A secret's value, read through the AWS CLI.
fn secret_string(e: &Emulator, arn: &str) -> String {
    let out = std::process::Command::new(common::root().join(".venv/bin/aws"))
        .args(["secretsmanager", "get-secret-value", "--secret-id", arn])
        .args(["--query", "SecretString", "--output", "text"])
        .env("AWS_ENDPOINT_URL", &e.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", common::REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn no_plan_output_or_boot_script_holds_the_database_password() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let stack = e.stack("demo.toml", &common::with_binary(&text, &bin));
    let plan = e.dir.path().join("plan.json");
    let plan_s = plan.to_string_lossy().into_owned();
    // Everything the tool printed or wrote, by what it was.
    let mut seen: Vec<(String, String)> = Vec::new();
    for args in [
        vec!["up", &stack, "--yes"],
        vec!["up", &stack, "--yes", "--json"],
        vec!["diff", &stack, "--out", &plan_s],
        vec!["diff", &stack, "--json", "--cost"],
        vec!["diff", &stack, "--format", "markdown", "--cost"],
        vec!["status", &stack, "--json"],
        vec!["status", &stack],
        vec!["outputs", &stack],
        vec!["outputs", &stack, "--json"],
        vec!["releases", &stack, "--json"],
    ] {
        let r = ok(&e, &proxy, &args);
        let what = args.join(" ");
        seen.push((format!("`{what}` stdout"), r.stdout));
        seen.push((format!("`{what}` stderr"), r.stderr));
    }
    let saved = std::fs::read_to_string(&plan).unwrap();
    seen.push(("the saved plan".into(), saved.clone()));
    // The saved plan observed the database, so it could have held the
    // password.
    let saved: Value = serde_json::from_str(&saved).unwrap();
    let db = common::step(&saved["plan"], "db");
    assert_eq!(db["action"], "no_op", "{db}");
    // So did the secret holding the app user's password, and the plan
    // names it, never its value.
    for id in ["db-app-secret", "db-params"] {
        let step = common::step(&saved["plan"], id);
        assert_eq!(step["action"], "no_op", "{step}");
    }

    // The boot script the instances run: it names the secret, and fetches
    // the password only on the instance.
    let (arn, secret, password) = database_password(&e);
    let outputs = ok(&e, &proxy, &["outputs", &stack, "--json"]).stdout;
    let outputs: Value = serde_json::from_str(&outputs).unwrap();
    assert_eq!(outputs["db_secret_arn"], arn.as_str());
    let lt = common::step(&saved["plan"], "launch-template")["physical_id"]
        .as_str()
        .unwrap();
    let boot = e.block_on(async {
        let d = e
            .ec2()
            .describe_launch_template_versions()
            .launch_template_id(lt)
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let data = d.launch_template_versions()[0]
            .launch_template_data()
            .and_then(|d| d.user_data())
            .expect("user data")
            .to_string();
        String::from_utf8(aws_smithy_types::base64::decode(data).unwrap()).unwrap()
    });
    assert!(boot.contains(&arn), "{boot}");
    // The app user's password likewise: the boot script names its secret.
    let app_arn = outputs["db_app_secret_arn"].as_str().unwrap().to_string();
    let app_password = secret_string(&e, &app_arn);
    assert_eq!(app_password.len(), 40, "made by GetRandomPassword");
    assert!(app_password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(boot.contains(&app_arn), "{boot}");
    seen.push(("the boot script".into(), boot));

    // The values are known, and the check finds them where they are.
    assert!(!password.is_empty(), "{secret}");
    let holds = |text: &str| text.contains(password.as_str()) || text.contains(&app_password);
    assert!(holds(&secret) && holds(&app_password));
    let leaks: Vec<&str> = seen
        .iter()
        .filter(|(_, text)| holds(text))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(leaks.is_empty(), "the database password is in {leaks:?}");

    let destroyed = ok(
        &e,
        &proxy,
        &["destroy", &stack, "--yes", "--allow-delete", "db"],
    );
    assert!(!holds(&destroyed.stdout) && !holds(&destroyed.stderr));
}
