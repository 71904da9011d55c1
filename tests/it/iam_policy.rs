//! The IAM policy `iam-policy` prints covers every request the tool really
//! makes: the production stack's `diff`, then its `up` and `destroy`, run
//! through the realism proxy, which records each request's service (its
//! SigV4 signing name, the IAM prefix) and operation; and each write is
//! allowed by the apply policy on the resource it names, with the
//! condition keys it brings, as IAM evaluates it.

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
    let up_from = before;
    // What carries the stack's tag once it is up (its ids, names, ARNs).
    let owned: BTreeSet<String> = common::inventory::owned(&env.e, STACK_NAME)
        .into_values()
        .flatten()
        .collect();
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

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

type Context = std::collections::BTreeMap<String, String>;

/// Whether `doc` allows `action` on `resource` for a request bringing `ctx`.
fn evaluate(doc: &serde_json::Value, action: &str, resource: &str, ctx: &Context) -> bool {
    doc["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).iter().any(|a| glob(a, action))
            && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
            && s["Condition"].as_object().is_none_or(|ops| {
                ops.iter().all(|(op, keys)| {
                    keys.as_object().unwrap().iter().all(|(k, want)| {
                        let Some(have) = ctx.get(k) else {
                            return false;
                        };
                        let want = strings(want);
                        match op.as_str() {
                            "StringEquals" | "ArnEquals" => want.iter().any(|w| w == have),
                            "StringLike" | "ArnLike" => want.iter().any(|w| glob(w, have)),
                            other => panic!("a condition operator this test cannot read: {other}"),
                        }
                    })
                })
            })
    })
}

/// The tags a request sets, from its parameters in each protocol.
fn request_tags(s: &Seen) -> Context {
    let mut tags = Context::new();
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
fn resource_of(s: &Seen, op: &str, role_paths: &Context) -> (String, Option<String>) {
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
        other => panic!("a write of {other} this test cannot place: {op}"),
    }
}

/// What the log says made each identifier a later request names: a mount
/// target's file system, a route table association's route table (from
/// the create's request and its answer).
fn parents(seen: &[Seen]) -> Context {
    let mut m = Context::new();
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
        for arn in s.answer.split("<ListenerArn>").skip(1) {
            out.insert(arn.split('<').next().unwrap_or_default().to_string());
        }
    }
    out
}

/// Every write `seen` made is allowed by the apply policy on the resource
/// it names, with the condition keys it brings; `owned`: identifiers of
/// what carries the stack's tag.
fn assert_each_write_allowed(seen: &[Seen], owned: &BTreeSet<String>) {
    let stack =
        bookstore_infra::stack::load(&common::root().join("stacks/production.toml")).unwrap();
    let doc = iam_policy::policy(&stack, Some(ACCOUNT), Scope::Apply);
    let mut role_paths = Context::new();
    let parents = parents(seen);
    let mut owned = owned.clone();
    owned.extend(made_tagged(seen));
    let mut refused = Vec::new();
    let mut checked = 0;
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
        if op == "CreateRole" || op == "CreateInstanceProfile" {
            let name = s
                .form
                .get("RoleName")
                .or(s.form.get("InstanceProfileName"))
                .cloned()
                .unwrap_or_default();
            role_paths.insert(name, s.form.get("Path").cloned().unwrap_or("/".into()));
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
        let mut ctx = Context::new();
        let tags = request_tags(s);
        for (k, v) in &tags {
            ctx.insert(format!("aws:RequestTag/{k}"), v.clone());
        }
        let ours = id.as_ref().is_some_and(|id| {
            !id.is_empty()
                && owned
                    .iter()
                    .any(|o| o == id || o.ends_with(&format!("/{id}")) || o.contains(id.as_str()))
        });
        if ours {
            ctx.insert(
                "aws:ResourceTag/bookstore-infra:stack".into(),
                STACK_NAME.into(),
            );
            ctx.insert(
                "ssm:resourceTag/bookstore-infra:stack".into(),
                STACK_NAME.into(),
            );
        }
        if let Some(p) = s.form.get("PolicyArn") {
            ctx.insert("iam:PolicyARN".into(), p.clone());
        }
        if let Some(n) = s.form.get("AWSServiceName") {
            ctx.insert("iam:AWSServiceName".into(), n.clone());
        }
        for (i, action) in call.actions.iter().enumerate() {
            let mut ctx = ctx.clone();
            let mut resource = resource.clone();
            match *action {
                // The tags a create sets are authorized with the create.
                "ec2:CreateTags" if i > 0 => {
                    ctx.insert("ec2:CreateAction".into(), op.clone());
                }
                // The service's own role, made the first time the service
                // is used in the account.
                "iam:CreateServiceLinkedRole" => {
                    let principal = format!("{}.amazonaws.com", s.service);
                    resource =
                        format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{principal}/*");
                    ctx = Context::from([("iam:AWSServiceName".to_string(), principal)]);
                }
                // The instance role, passed to the group's instances.
                "iam:PassRole" => {
                    let (name, path) = role_paths
                        .iter()
                        .find(|(n, _)| n.ends_with("-role"))
                        .expect("the role was made before it is passed");
                    resource = format!("arn:aws:iam::{ACCOUNT}:role{path}{name}");
                    ctx = Context::from([(
                        "iam:PassedToService".to_string(),
                        "ec2.amazonaws.com".to_string(),
                    )]);
                }
                // Only a request naming a version deletes one.
                "s3:DeleteObjectVersion" if !s.form.contains_key("versionId") => continue,
                _ => {}
            }
            checked += 1;
            if !evaluate(&doc, action, &resource, &ctx) {
                refused.push(format!(
                    "{}:{op} -> {action} on {resource} with {ctx:?}",
                    s.service
                ));
            }
        }
    }
    assert!(checked > 40, "only {checked} writes were checked");
    assert!(
        refused.is_empty(),
        "the policy refuses what the tool does:\n{}",
        refused.join("\n")
    );
}

const STACK_NAME: &str = "bookstore-prod";

#[test]
fn the_policy_evaluator_reads_resources_and_conditions_as_iam_does() {
    assert!(glob(
        "arn:aws:ec2:us-east-1:*:*",
        "arn:aws:ec2:us-east-1:1:vpc/vpc-1"
    ));
    assert!(!glob(
        "arn:aws:s3:::a-*-us-east-1",
        "arn:aws:s3:::a-b-eu-west-1"
    ));
    assert!(glob("ab?d", "abcd") && !glob("ab?d", "abd"));
    let doc = serde_json::json!({"Statement": [{
        "Effect": "Allow", "Action": ["ec2:Delete*"], "Resource": ["arn:aws:ec2:us-east-1:*:*"],
        "Condition": {"StringEquals": {"aws:ResourceTag/t": "x"}}
    }]});
    let ctx = |v: &str| Context::from([("aws:ResourceTag/t".to_string(), v.to_string())]);
    let r = "arn:aws:ec2:us-east-1:1:vpc/vpc-1";
    assert!(evaluate(&doc, "ec2:DeleteVpc", r, &ctx("x")));
    assert!(
        !evaluate(&doc, "ec2:DeleteVpc", r, &ctx("y")),
        "another stack's"
    );
    assert!(
        !evaluate(&doc, "ec2:DeleteVpc", r, &Context::new()),
        "untagged"
    );
    assert!(
        !evaluate(&doc, "ec2:CreateVpc", r, &ctx("x")),
        "another action"
    );
    assert!(
        !evaluate(
            &doc,
            "ec2:DeleteVpc",
            "arn:aws:ec2:eu-west-1:1:vpc/vpc-1",
            &ctx("x")
        ),
        "another region"
    );
}
