//! The IAM policy `iam-policy` prints covers every request the tool really
//! makes: the production stack's `diff`, then its `up` and `destroy`, run
//! through the realism proxy, which records each request's service (its
//! SigV4 signing name, the IAM prefix) and operation.

use crate::common;

use std::collections::BTreeSet;

use bookstore_infra::iam_policy::{self, Access, Scope};
use common::realism::{Behaviours, Realism, Seen};
use common::{with_binary, Emulator};

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
}

impl Env {
    fn ok(&self, args: &[&str]) {
        let out = self
            .e
            .cmd()
            .env("AWS_ENDPOINT_URL", &self.proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{}` failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn setup() -> Env {
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "1")]);
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    // The domain's zone exists already, as a real domain's would.
    e.block_on(async {
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("iam-policy-zone")
            .send()
            .await
            .unwrap()
    });
    let (bin, _) = e.binary("bookstore binary for the policy test");
    let text = std::fs::read_to_string(common::root().join("stacks/production.toml")).unwrap();
    let stack = e.stack("production.toml", &with_binary(&text, &bin));
    Env { e, proxy, stack }
}

/// The S3 operation of a REST request the proxy names by method and
/// subresource (`GET:bucket?tagging`), from the S3 API reference's
/// request syntax of each.
fn s3_operation(s: &Seen) -> String {
    let Some((method, rest)) = s.op.split_once(':') else {
        return s.op.clone();
    };
    let (what, sub) = rest.split_once('?').unwrap_or((rest, ""));
    let has = |k: &str| sub == k || s.form.contains_key(k);
    let op = match (method, what) {
        ("GET", "bucket") if has("tagging") => "GetBucketTagging",
        ("PUT", "bucket") if has("tagging") => "PutBucketTagging",
        ("GET", "bucket") if has("versioning") => "GetBucketVersioning",
        ("PUT", "bucket") if has("versioning") => "PutBucketVersioning",
        ("GET", "bucket") if has("encryption") => "GetBucketEncryption",
        ("PUT", "bucket") if has("encryption") => "PutBucketEncryption",
        ("GET", "bucket") if has("publicAccessBlock") => "GetPublicAccessBlock",
        ("PUT", "bucket") if has("publicAccessBlock") => "PutPublicAccessBlock",
        ("GET", "bucket") if has("versions") => "ListObjectVersions",
        ("GET", "bucket") if has("list-type") => "ListObjectsV2",
        ("GET", "bucket") if has("location") => "GetBucketLocation",
        ("POST", "bucket") if has("delete") => "DeleteObjects",
        ("PUT", "object") => "PutObject",
        ("GET", "object") => "GetObject",
        ("HEAD", "object") => "HeadObject",
        ("DELETE", "object") => "DeleteObject",
        _ => panic!("an S3 request this test cannot name: {} {:?}", s.op, s.form),
    };
    op.to_string()
}

/// (IAM service prefix, API operation) of every request in `seen`.
fn operations(seen: &[Seen]) -> BTreeSet<(String, String)> {
    seen.iter()
        .map(|s| {
            let op = if s.service == "s3" {
                s3_operation(s)
            } else {
                s.op.clone()
            };
            (s.service.clone(), op)
        })
        .collect()
}

/// Every operation is in the table, of the access `scope` grants, and the
/// scope's policy document allows each of its IAM actions.
fn assert_covered(ops: &BTreeSet<(String, String)>, scope: Scope) {
    let granted = iam_policy::actions(scope);
    let stack =
        bookstore_infra::stack::load(&common::root().join("stacks/production.toml")).unwrap();
    let doc = iam_policy::policy(&stack, Some("123456789012"), scope);
    for (service, op) in ops {
        let call = iam_policy::call(service, op).unwrap_or_else(|| {
            panic!("{service}:{op} was made but has no row in iam_policy::CALLS")
        });
        if scope == Scope::Plan {
            assert_eq!(
                call.access,
                Access::Read,
                "`diff` made the write {service}:{op}"
            );
        }
        for a in call.actions {
            assert!(granted.contains(*a), "{scope:?}: {service}:{op} needs {a}");
            assert!(
                iam_policy::allows(&doc, a),
                "{scope:?}: the document does not allow {a}"
            );
        }
    }
}

#[test]
fn the_policy_covers_every_request_of_diff_up_and_destroy() {
    let env = setup();
    let plan = env.e.dir.path().join("plan.json");
    let plan = plan.to_str().unwrap();

    // As CI runs it: a saved plan with its cost, then that plan applied.
    env.ok(&["diff", &env.stack, "--out", plan, "--cost"]);
    let mut plan_ops = operations(&env.proxy.seen());
    let before = env.proxy.seen().len();
    env.ok(&[
        "up",
        &env.stack,
        "--plan",
        plan,
        "--yes",
        "--lock-wait",
        "60",
    ]);
    let mut apply_ops = operations(&env.proxy.seen()[before..]);
    // A plan against the deployed stack reads each resource's details.
    let before = env.proxy.seen().len();
    env.ok(&["diff", &env.stack]);
    let deployed = operations(&env.proxy.seen()[before..]);
    for (svc, op) in [
        ("ec2", "DescribeVpcAttribute"),
        ("iam", "GetRolePolicy"),
        ("elasticloadbalancing", "DescribeTags"),
        ("s3", "GetBucketTagging"),
        ("s3", "ListObjectsV2"),
    ] {
        assert!(
            deployed.contains(&(svc.to_string(), op.to_string())),
            "diff of the deployed stack made no {svc}:{op}: {deployed:?}"
        );
    }
    plan_ops.extend(deployed);
    eprintln!("diff: {plan_ops:?}");
    // The plan reads every kind of resource the stack has.
    for (svc, op) in [
        ("ec2", "DescribeVpcs"),
        ("elasticloadbalancing", "DescribeLoadBalancers"),
        ("autoscaling", "DescribeAutoScalingGroups"),
        ("rds", "DescribeDBInstances"),
        ("elasticfilesystem", "DescribeFileSystems"),
        ("iam", "ListRoles"),
        ("s3", "ListBuckets"),
        ("acm", "ListCertificates"),
        ("route53", "ListResourceRecordSets"),
        ("ssm", "GetParameter"),
    ] {
        assert!(
            plan_ops.contains(&(svc.to_string(), op.to_string())),
            "diff made no {svc}:{op}: {plan_ops:?}"
        );
    }
    assert_covered(&plan_ops, Scope::Plan);

    let before = env.proxy.seen().len();
    env.ok(&["destroy", &env.stack, "--yes"]);
    apply_ops.extend(operations(&env.proxy.seen()[before..]));
    eprintln!("up and destroy: {apply_ops:?}");
    for (svc, op) in [
        ("ec2", "CreateVpc"),
        ("ec2", "DeleteVpc"),
        ("rds", "CreateDBInstance"),
        ("rds", "DeleteDBInstance"),
        ("s3", "PutObject"),
        ("s3", "PutBucketEncryption"),
        ("s3", "DeleteObject"),
        ("route53", "ChangeResourceRecordSets"),
        ("iam", "AddRoleToInstanceProfile"),
    ] {
        assert!(
            apply_ops.contains(&(svc.to_string(), op.to_string())),
            "up and destroy made no {svc}:{op}: {apply_ops:?}"
        );
    }
    assert_covered(&apply_ops, Scope::Apply);
    // The run lock's bucket was among them.
    assert!(
        env.proxy.accepted("CreateBucket").iter().any(|s| s
            .form
            .get("Bucket")
            .is_some_and(|b| b.starts_with("bookstore-infra-locks-"))),
        "up made no lock bucket"
    );

    // The reverse, generously: most of the table's writes were met.
    let writes = iam_policy::table()
        .iter()
        .filter(|c| c.access == Access::Write)
        .count();
    let met = apply_ops
        .iter()
        .filter(|(s, o)| iam_policy::call(s, o).is_some_and(|c| c.access == Access::Write))
        .count();
    assert!(met * 2 > writes, "only {met} of {writes} writes were met");
}

#[test]
fn the_iam_policy_verb_prints_the_document_without_calling_aws() {
    let stack = common::root().join("stacks/production.toml");
    let s = bookstore_infra::stack::load(&stack).unwrap();
    for (flag, scope) in [("diff", Scope::Plan), ("up", Scope::Apply)] {
        let out = std::process::Command::new(common::bin())
            .args(["iam-policy", stack.to_str().unwrap(), "--for", flag])
            .args(["--account", "123456789012"])
            // Nowhere to call: the verb works offline.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, iam_policy::policy(&s, Some("123456789012"), scope));
        if scope == Scope::Apply {
            assert!(String::from_utf8_lossy(&out.stdout).contains(":123456789012:"));
        }
    }
    let bad = std::process::Command::new(common::bin())
        .args(["iam-policy", stack.to_str().unwrap(), "--account", "12345"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("an AWS account id is 12 digits"));
}
