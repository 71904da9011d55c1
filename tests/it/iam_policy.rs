//! The IAM policy `iam-policy` prints covers every request the tool really
//! makes: the production stack's `diff`, then its `up` and `destroy`, run
//! through the realism proxy, which records each request's service (its
//! SigV4 signing name, the IAM prefix) and operation; and each write is
//! allowed by the apply policy on the resource it names, with the
//! condition keys it brings, as IAM evaluates it.

use crate::common;

use std::collections::BTreeSet;

use bookstore_infra::iam_policy::evaluate::{self, context, Context};
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
        ("GET", "bucket") if has("policy") => "GetBucketPolicy",
        ("PUT", "bucket") if has("policy") => "PutBucketPolicy",
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
        // The boundary's writes are an administrator's (`bootstrap`, and
        // `destroy` when run as one): no CI policy grants them.
        if call.access == Access::Admin {
            assert!(
                !iam_policy::allows(&doc, call.actions[0]),
                "{scope:?} grants the administrator's {}",
                call.actions[0]
            );
            continue;
        }
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

    // An administrator makes the boundary and the shared lock bucket once,
    // before CI runs the stack: nothing else.
    env.ok(&["bootstrap", &env.stack]);
    let admin = operations(&env.proxy.seen());
    for op in ["CreatePolicy", "CreateBucket"] {
        assert!(
            admin.iter().any(|(_, o)| o == op),
            "bootstrap made no {op}: {admin:?}"
        );
    }
    for s in env.proxy.seen() {
        let op = if s.service == "s3" {
            s3_operation(&s)
        } else {
            s.op.clone()
        };
        let access = iam_policy::call(&s.service, &op).map(|c| c.access);
        let lock_bucket = s.service == "s3" && s.path.starts_with("/bookstore-infra-locks-");
        assert!(
            matches!(access, Some(Access::Read | Access::Admin)) || lock_bucket,
            "bootstrap made {}:{op} on {}",
            s.service,
            s.path
        );
    }
    let from = env.proxy.seen().len();

    // As CI runs it: a saved plan with its cost, then that plan applied.
    env.ok(&["diff", &env.stack, "--out", plan, "--cost"]);
    let mut plan_ops = operations(&env.proxy.seen()[from..]);
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
    let up_from = before;
    // The boundary was as wanted: CI's `up` made none of the administrator's calls.
    for (svc, op) in &apply_ops {
        assert_ne!(
            iam_policy::call(svc, op).map(|c| c.access),
            Some(Access::Admin),
            "up made {svc}:{op}"
        );
    }
    // What carries the stack's tag once it is up (its ids, names, ARNs).
    let owned: BTreeSet<String> = common::inventory::owned(&env.e, STACK_NAME)
        .into_values()
        .flatten()
        .collect();
    assert_roles_within_boundary(&env);
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
    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
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
    // And each write on the resource it named, with its conditions.
    assert_each_write_allowed(&env.proxy.seen()[up_from..], &owned);
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

/// Every role the stack made carries the boundary, and every action its
/// own policy grants is one the boundary allows (the boundary is the most
/// it can ever do: a role given more would silently lose it).
fn assert_roles_within_boundary(env: &Env) {
    let stack =
        bookstore_infra::stack::load(&common::root().join("stacks/production.toml")).unwrap();
    let boundary = iam_policy::boundary_document(&stack, Some(ACCOUNT));
    let iam = aws_sdk_iam::Client::new(env.e.conf());
    env.e.block_on(async {
        let roles = iam
            .list_roles()
            .path_prefix(format!("/bookstore-infra/{STACK_NAME}/"))
            .send()
            .await
            .unwrap();
        assert!(!roles.roles().is_empty(), "up made no role");
        for r in roles.roles() {
            let got = iam
                .get_role()
                .role_name(r.role_name())
                .send()
                .await
                .unwrap();
            let arn = got
                .role()
                .and_then(|x| x.permissions_boundary())
                .and_then(|b| b.permissions_boundary_arn())
                .unwrap_or_default()
                .to_string();
            assert!(
                arn.ends_with(&format!(
                    "/bookstore-infra/{STACK_NAME}/{STACK_NAME}-{REGION}-boundary"
                )),
                "{} carries the boundary {arn:?}",
                r.role_name()
            );
            let names = iam
                .list_role_policies()
                .role_name(r.role_name())
                .send()
                .await
                .unwrap();
            for name in names.policy_names() {
                let p = iam
                    .get_role_policy()
                    .role_name(r.role_name())
                    .policy_name(name)
                    .send()
                    .await
                    .unwrap();
                let text = p.policy_document();
                let doc: serde_json::Value = serde_json::from_str(text)
                    .or_else(|_| serde_json::from_str(&common::decode(text)))
                    .unwrap();
                for st in doc["Statement"].as_array().unwrap() {
                    for a in evaluate::strings(&st["Action"]) {
                        assert!(
                            iam_policy::allows(&boundary, &a),
                            "{}'s policy {name} grants {a}, which the boundary never allows",
                            r.role_name()
                        );
                    }
                }
            }
        }
    });
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

#[test]
fn a_policy_longer_than_a_role_holds_inline_is_written_as_managed_policies() {
    // Fargate with a domain in a long region: more than 10,240 characters.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("stacks/fargate.toml")).unwrap()
        + "\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"example.com\"\n";
    let text = text.replace("region = \"us-east-1\"", "region = \"ap-southeast-2\"");
    let stack = dir.path().join("fargate.toml");
    std::fs::write(&stack, &text).unwrap();
    let s = bookstore_infra::stack::load(&stack).unwrap();
    let whole = iam_policy::policy(&s, Some(ACCOUNT), Scope::Apply);
    assert!(iam_policy::size(&whole) > iam_policy::INLINE_POLICY_LIMIT);
    let run = |extra: &[&str]| {
        std::process::Command::new(common::bin())
            .args(["iam-policy", stack.to_str().unwrap(), "--account", ACCOUNT])
            .args(extra)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    // Printed whole, it says it is too long and how to write it.
    let out = run(&[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--out-dir DIR"), "{err}");
    // Written as parts: each within a managed policy's 6,144 characters,
    // the statements unchanged and in order, with the commands to attach.
    let parts_dir = dir.path().join("apply");
    let out = run(&["--out-dir", parts_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let mut statements = Vec::new();
    let mut n = 0;
    while let Ok(t) = std::fs::read_to_string(parts_dir.join(format!("up-policy-{}.json", n + 1))) {
        n += 1;
        let part: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert!(iam_policy::size(&part) <= iam_policy::MANAGED_POLICY_LIMIT);
        assert_eq!(part["Version"], "2012-10-17");
        statements.extend(part["Statement"].as_array().unwrap().iter().cloned());
        assert!(
            printed.contains(&format!(
                "attach-role-policy --role-name ROLE --policy-arn arn:aws:iam::{ACCOUNT}:policy/bookstore-infra-shop-up-{n}"
            )),
            "{printed}"
        );
    }
    assert!(n >= 2, "{n} parts");
    assert_eq!(serde_json::Value::Array(statements), whole["Statement"]);
}

// ---------------------------------------------------------------------------
// The policy against each request, as IAM evaluates it: the action, the
// resource the request names (its ARN, built as "Actions, resources, and
// condition keys" gives each resource type), and the condition keys the
// request brings (the tags it carries, `aws:RequestTag/*`; the tags of the
// resource it names, `aws:ResourceTag/*`; `ec2:CreateAction` for tags set
// by a create; `iam:PolicyARN`; `iam:AWSServiceName`). A request is
// allowed when one statement allows the action on that resource with every
// condition met (an operator whose key the request lacks is not met).
// ---------------------------------------------------------------------------

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// Tags, or names and their one value.
type Tags = std::collections::BTreeMap<String, String>;

/// The tags a request sets, from its parameters in each protocol.
fn request_tags(s: &Seen) -> Tags {
    let mut tags = Tags::new();
    for (k, v) in &s.form {
        if let Some(prefix) = k.strip_suffix(".Key") {
            if let Some(value) = s.form.get(&format!("{prefix}.Value")) {
                tags.insert(v.clone(), value.clone());
            }
        }
    }
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(&s.body) {
        for list in ["Tags", "tags"] {
            match &body[list] {
                serde_json::Value::Array(items) => {
                    for t in items {
                        if let (Some(k), Some(v)) = (t["Key"].as_str(), t["Value"].as_str()) {
                            tags.insert(k.into(), v.into());
                        }
                    }
                }
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        if let Some(v) = v.as_str() {
                            tags.insert(k.clone(), v.into());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    tags
}

/// The EC2 resource type of an id, by its prefix.
fn ec2_type(id: &str) -> Option<&'static str> {
    [
        ("vpc-", "vpc"),
        ("subnet-", "subnet"),
        ("sg-", "security-group"),
        ("igw-", "internet-gateway"),
        ("rtb-", "route-table"),
        ("eipalloc-", "elastic-ip"),
        ("nat-", "natgateway"),
        ("lt-", "launch-template"),
        ("vpce-", "vpc-endpoint"),
        ("i-", "instance"),
    ]
    .iter()
    .find(|(p, _)| id.starts_with(p))
    .map(|(_, t)| *t)
}

/// The ARN of the resource a request names (or, for a create, of the
/// resource it makes, `*` standing for the id not given yet), and the
/// identifier to look it up among the stack's own.
fn resource_of(s: &Seen, op: &str, role_paths: &Tags) -> (String, Option<String>) {
    let f = |k: &str| s.form.get(k).cloned();
    let json: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
    let j = |k: &str| json[k].as_str().map(String::from);
    match s.service.as_str() {
        "ec2" => {
            let id = s.form.iter().find(|(k, v)| {
                !k.starts_with("TagSpecification")
                    && !k.contains("Filter")
                    && ec2_type(v).is_some()
                    && (k.ends_with("Id") || k.ends_with("Id.1") || k.ends_with("Ids.1"))
            });
            match id {
                Some((_, id)) => (
                    format!(
                        "arn:aws:ec2:{REGION}:{ACCOUNT}:{}/{id}",
                        ec2_type(id).unwrap()
                    ),
                    Some(id.clone()),
                ),
                None => (
                    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{}/*", op.to_lowercase()),
                    None,
                ),
            }
        }
        "elasticloadbalancing" => {
            let arn = s
                .form
                .values()
                .find(|v| v.starts_with("arn:aws:elasticloadbalancing"))
                .cloned();
            match arn {
                Some(a) => (a.clone(), Some(a)),
                None => (
                    format!(
                        "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{}/*",
                        op.to_lowercase()
                    ),
                    None,
                ),
            }
        }
        "autoscaling" => {
            let name = f("AutoScalingGroupName")
                .or(f("Tags.member.1.ResourceId"))
                .unwrap_or_default();
            (
                format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}"),
                Some(name),
            )
        }
        "rds" => match (
            f("DBInstanceIdentifier"),
            f("DBSubnetGroupName"),
            f("ResourceName"),
        ) {
            (Some(db), _, _) => (format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{db}"), Some(db)),
            _ if f("DBParameterGroupName").is_some() => {
                let pg = f("DBParameterGroupName").unwrap_or_default();
                (format!("arn:aws:rds:{REGION}:{ACCOUNT}:pg:{pg}"), Some(pg))
            }
            (_, Some(g), _) => (
                format!("arn:aws:rds:{REGION}:{ACCOUNT}:subgrp:{g}"),
                Some(g),
            ),
            (_, _, Some(arn)) => (arn.clone(), Some(arn)),
            _ => (format!("arn:aws:rds:{REGION}:{ACCOUNT}:*"), None),
        },
        "elasticfilesystem" => {
            let id = f("Id").or(j("FileSystemId"));
            match id {
                Some(id) if id.starts_with("fsap-") => (
                    format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/{id}"),
                    Some(id),
                ),
                Some(id) if id.starts_with("fsmt-") => (
                    format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/*"),
                    Some(id),
                ),
                Some(id) => (
                    format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{id}"),
                    Some(id),
                ),
                None => (
                    format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/*"),
                    None,
                ),
            }
        }
        "acm" => match j("CertificateArn") {
            Some(a) => (a.clone(), Some(a)),
            None => (
                format!("arn:aws:acm:{REGION}:{ACCOUNT}:certificate/*"),
                None,
            ),
        },
        "iam" => {
            if let Some(service) = f("AWSServiceName") {
                return (
                    format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/*"),
                    None,
                );
            }
            let (kind, name) = match (f("InstanceProfileName"), f("RoleName")) {
                (Some(p), _) if op.contains("InstanceProfile") => ("instance-profile", p),
                (_, Some(r)) => ("role", r),
                (Some(p), None) => ("instance-profile", p),
                _ => ("role", String::new()),
            };
            let path = f("Path")
                .or(role_paths.get(&name).cloned())
                .unwrap_or("/".into());
            (
                format!("arn:aws:iam::{ACCOUNT}:{kind}{path}{name}"),
                Some(name),
            )
        }
        "logs" => {
            let g = j("logGroupName").or(j("resourceArn")).unwrap_or_default();
            let arn = if g.starts_with("arn:") {
                g.clone()
            } else {
                format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{g}")
            };
            (arn, Some(g))
        }
        "s3" => {
            let p = s.path.trim_matches('/');
            (
                format!("arn:aws:s3:::{p}"),
                Some(p.split('/').next().unwrap_or_default().to_string()),
            )
        }
        "route53" => {
            let zone = s.path.split('/').nth(3).unwrap_or_default();
            (format!("arn:aws:route53:::hostedzone/{zone}"), None)
        }
        // A secret's ARN is its name and six characters Secrets Manager adds.
        "secretsmanager" => {
            let id = j("SecretId").or(j("Name")).unwrap_or_default();
            let arn = if id.starts_with("arn:") {
                id.clone()
            } else {
                format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{id}-AbCdEf")
            };
            (arn, Some(id))
        }
        other => panic!("a write of {other} this test cannot place: {op}"),
    }
}

/// What the log says made each identifier a later request names: a mount
/// target's file system, a route table association's route table (from
/// the create's request and its answer).
fn parents(seen: &[Seen]) -> Tags {
    let mut m = Tags::new();
    for s in seen.iter().filter(|s| s.status < 300) {
        let json: serde_json::Value = serde_json::from_str(&s.answer).unwrap_or_default();
        match s.op.as_str() {
            "CreateMountTarget" => {
                if let (Some(mt), Some(fs)) = (
                    json["MountTargetId"].as_str(),
                    json["FileSystemId"].as_str(),
                ) {
                    m.insert(mt.into(), fs.into());
                }
            }
            "AssociateRouteTable" => {
                let a = s
                    .answer
                    .split("<associationId>")
                    .nth(1)
                    .and_then(|x| x.split('<').next());
                if let (Some(a), Some(rt)) = (a, s.form.get("RouteTableId")) {
                    m.insert(a.into(), rt.clone());
                }
            }
            _ => {}
        }
    }
    m
}

/// Identifiers a create carrying the stack's tag returned (access points,
/// listeners: kinds the inventory does not list).
fn made_tagged(seen: &[Seen]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in seen
        .iter()
        .filter(|s| s.status < 300 && s.op.starts_with("Create"))
    {
        if request_tags(s)
            .get("bookstore-infra:stack")
            .map(String::as_str)
            != Some(STACK_NAME)
        {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&s.answer).unwrap_or_default();
        if let Some(ap) = json["AccessPointId"].as_str() {
            out.insert(ap.to_string());
        }
        // A secret by its ARN, a parameter group by its name.
        if let Some(arn) = json["ARN"].as_str() {
            out.insert(arn.to_string());
        }
        if let Some(pg) = s.form.get("DBParameterGroupName") {
            out.insert(pg.clone());
        }
        for arn in s.answer.split("<ListenerArn>").skip(1) {
            out.insert(arn.split('<').next().unwrap_or_default().to_string());
        }
    }
    out
}

/// The record names and types a Route 53 change batch writes, as the
/// condition keys carry them (lowercase, no final dot).
fn record_sets(body: &str) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut types = Vec::new();
    for set in body.split("<ResourceRecordSet>").skip(1) {
        let field = |tag: &str| {
            set.split(&format!("<{tag}>"))
                .nth(1)
                .and_then(|x| x.split('<').next())
                .map(str::to_string)
        };
        if let Some(n) = field("Name") {
            names.push(n.trim_end_matches('.').to_ascii_lowercase());
        }
        if let Some(t) = field("Type") {
            types.push(t);
        }
    }
    (names, types)
}

/// The resources one action of a request is authorized against beside the
/// one it names, each with its own tag context: a launch's template and
/// subnets, a mount target's subnet and security groups.
fn also_authorized(
    s: &Seen,
    action: &str,
    template: Option<&String>,
    is_ours: &dyn Fn(&str) -> bool,
) -> Vec<(String, Context)> {
    let ec2 = |t: &str, id: &str| format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{t}/{id}");
    let tagged = |id: &str| {
        let mut c = Context::new();
        if is_ours(id) {
            c.insert(
                format!("aws:ResourceTag/{}", "bookstore-infra:stack"),
                vec![STACK_NAME.into()],
            );
        }
        c
    };
    let json: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
    let mut out = Vec::new();
    match action {
        "ec2:RunInstances" => {
            let lt = s
                .form
                .get("LaunchTemplate.LaunchTemplateId")
                .or(template)
                .expect("a launch names its template");
            out.push((ec2("launch-template", lt), tagged(lt)));
            for subnet in s
                .form
                .get("VPCZoneIdentifier")
                .into_iter()
                .flat_map(|v| v.split(','))
            {
                out.push((ec2("subnet", subnet), tagged(subnet)));
            }
            let from = context([("ec2:LaunchTemplate", ec2("launch-template", lt).as_str())]);
            for t in ["instance", "volume", "network-interface"] {
                out.push((ec2(t, "*"), from.clone()));
            }
        }
        "ec2:CreateNetworkInterface" | "ec2:ModifyNetworkInterfaceAttribute" => {
            out.push((ec2("network-interface", "*"), Context::new()));
            if let Some(subnet) = json["SubnetId"].as_str() {
                out.push((ec2("subnet", subnet), tagged(subnet)));
            }
            for sg in json["SecurityGroups"].as_array().into_iter().flatten() {
                let sg = sg.as_str().unwrap_or_default();
                out.push((ec2("security-group", sg), tagged(sg)));
            }
        }
        "ec2:DeleteNetworkInterface" => out.push((ec2("network-interface", "*"), Context::new())),
        "ec2:DescribeNetworkInterfaces" => out.push(("*".into(), Context::new())),
        _ => {}
    }
    out
}

/// Every write `seen` made is allowed by the apply policy on the resource
/// it names, with the condition keys it brings, and by no explicit deny;
/// `owned`: identifiers of what carries the stack's tag.
fn assert_each_write_allowed(seen: &[Seen], owned: &BTreeSet<String>) {
    let stack =
        bookstore_infra::stack::load(&common::root().join("stacks/production.toml")).unwrap();
    let doc = iam_policy::policy(&stack, Some(ACCOUNT), Scope::Apply);
    let mut role_paths = Tags::new();
    let mut boundaries = Tags::new();
    let mut template = None;
    let parents = parents(seen);
    let mut owned = owned.clone();
    owned.extend(made_tagged(seen));
    let is_ours = |id: &str| {
        !id.is_empty()
            && owned
                .iter()
                .any(|o| o == id || o.ends_with(&format!("/{id}")) || o.contains(id))
    };
    let mut refused = Vec::new();
    let mut checked = 0;
    let mut by_statement = BTreeSet::new();
    for s in seen.iter().filter(|s| s.status < 300) {
        let op = if s.service == "s3" {
            s3_operation(s)
        } else {
            s.op.clone()
        };
        let Some(call) = iam_policy::call(&s.service, &op) else {
            continue;
        };
        if call.access != Access::Write {
            continue;
        }
        let role_name = s.form.get("RoleName").cloned().unwrap_or_default();
        if op == "CreateRole" || op == "CreateInstanceProfile" {
            let name = s
                .form
                .get("RoleName")
                .or(s.form.get("InstanceProfileName"))
                .cloned()
                .unwrap_or_default();
            role_paths.insert(name, s.form.get("Path").cloned().unwrap_or("/".into()));
        }
        if let (true, Some(b)) = (
            op == "CreateRole" || op == "PutRolePermissionsBoundary",
            s.form.get("PermissionsBoundary"),
        ) {
            boundaries.insert(role_name.clone(), b.clone());
        }
        if let Some(lt) = s.form.get("LaunchTemplate.LaunchTemplateId") {
            template = Some(lt.clone());
        }
        let (mut resource, mut id) = resource_of(s, &op, &role_paths);
        // A request naming a mount target or an association is authorized
        // on the file system or route table it belongs to.
        let named = s.form.get("AssociationId").or(s.form.get("Id")).cloned();
        if let Some(parent) = named.as_ref().and_then(|n| parents.get(n)) {
            resource = match ec2_type(parent) {
                Some(t) => format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{t}/{parent}"),
                None => {
                    format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{parent}")
                }
            };
            id = Some(parent.clone());
        }
        let mut ctx = context([("aws:RequestedRegion", REGION)]);
        for (k, v) in request_tags(s) {
            ctx.insert(format!("aws:RequestTag/{k}"), vec![v]);
        }
        if id.as_deref().is_some_and(is_ours) {
            for key in ["aws:ResourceTag", "ssm:resourceTag"] {
                ctx.insert(
                    format!("{key}/bookstore-infra:stack"),
                    vec![STACK_NAME.into()],
                );
            }
        }
        if let Some(p) = s.form.get("PolicyArn") {
            ctx.insert("iam:PolicyARN".into(), vec![p.clone()]);
        }
        if let Some(n) = s.form.get("AWSServiceName") {
            ctx.insert("iam:AWSServiceName".into(), vec![n.clone()]);
        }
        // The boundary a role request brings or the role carries.
        if s.service == "iam" && op.contains("Role") {
            let b = match op.as_str() {
                "CreateRole" | "PutRolePermissionsBoundary" => s.form.get("PermissionsBoundary"),
                _ => boundaries.get(&role_name),
            };
            if let Some(b) = b {
                ctx.insert("iam:PermissionsBoundary".into(), vec![b.clone()]);
            }
        }
        if s.service == "route53" {
            let (names, types) = record_sets(&s.body);
            assert!(
                !names.is_empty(),
                "a change batch without names: {}",
                s.body
            );
            ctx.insert(
                "route53:ChangeResourceRecordSetsNormalizedRecordNames".into(),
                names,
            );
            ctx.insert("route53:ChangeResourceRecordSetsRecordTypes".into(), types);
        }
        for (i, action) in call.actions.iter().enumerate() {
            let mut ctx = ctx.clone();
            let mut resource = resource.clone();
            let svc = action.split(':').next().unwrap();
            match *action {
                // The tags a create sets are authorized with the create.
                "ec2:CreateTags"
                | "elasticloadbalancing:AddTags"
                | "elasticfilesystem:TagResource"
                    if i > 0 =>
                {
                    ctx.insert(format!("{svc}:CreateAction"), vec![op.clone()]);
                }
                // The service's own role, made the first time the service
                // is used in the account.
                "iam:CreateServiceLinkedRole" => {
                    let principal = format!("{}.amazonaws.com", s.service);
                    resource =
                        format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{principal}/*");
                    ctx = context([("iam:AWSServiceName", principal.as_str())]);
                }
                // The instance role, passed to the group's instances.
                "iam:PassRole" => {
                    let (name, path) = role_paths
                        .iter()
                        .find(|(n, _)| n.ends_with("-role"))
                        .expect("the role was made before it is passed");
                    resource = format!("arn:aws:iam::{ACCOUNT}:role{path}{name}");
                    ctx = context([("iam:PassedToService", "ec2.amazonaws.com")]);
                }
                // The master user's secret RDS makes and deletes with the
                // caller's rights, tagged with its database's ARN.
                "secretsmanager:CreateSecret"
                | "secretsmanager:TagResource"
                | "secretsmanager:DeleteSecret"
                    if s.service == "rds" =>
                {
                    resource =
                        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1-AbCdEf");
                    ctx = context([("aws:RequestedRegion", REGION)]);
                    if *action == "secretsmanager:DeleteSecret" {
                        let db = format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{STACK_NAME}-db");
                        ctx.insert(
                            "aws:ResourceTag/aws:rds:primaryDBInstanceArn".into(),
                            vec![db],
                        );
                    }
                }
                // Only a request naming a version deletes one.
                "s3:DeleteObjectVersion" if !s.form.contains_key("versionId") => continue,
                _ => {}
            }
            let others = also_authorized(s, action, template.as_ref(), &is_ours);
            let targets: Vec<(String, Context)> = if others.is_empty() {
                vec![(resource, ctx)]
            } else {
                // Each resource with the request's keys and its own tags.
                others
                    .into_iter()
                    .map(|(r, mut own)| {
                        for (k, v) in &ctx {
                            if !k.starts_with("aws:ResourceTag") {
                                own.entry(k.clone()).or_insert(v.clone());
                            }
                        }
                        (r, own)
                    })
                    .collect()
            };
            for (resource, ctx) in targets {
                checked += 1;
                match evaluate::allowed_by(&doc, action, &resource, &ctx) {
                    Some(sid) => {
                        by_statement.insert(sid);
                    }
                    None => refused.push(format!(
                        "{}:{op} -> {action} on {resource} ({:?}) with {ctx:?}",
                        s.service,
                        evaluate::decide(&doc, action, &resource, &ctx)
                    )),
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} writes were checked");
    assert!(
        refused.is_empty(),
        "the policy refuses what the tool does:\n{}",
        refused.join("\n")
    );
    // The conditioned statements were what allowed the tool's requests.
    for sid in [
        "RolesWithBoundary",
        "PassRoleToEc2",
        "ManageOwned",
        "LaunchedInstances",
        "ElbTagOnCreate",
        "EfsTagOnCreate",
        "NamedTagOnCreate",
        "RdsManagedSecret",
        "StackDnsRecords",
        "MountTargetEnis",
    ] {
        assert!(
            by_statement.contains(sid),
            "no request went through {sid}: {by_statement:?}"
        );
    }
}

const STACK_NAME: &str = "bookstore-prod";
