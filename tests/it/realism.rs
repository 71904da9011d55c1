//! The tool against AWS as AWS behaves, not as the emulator does: the
//! realism proxy (tests/common/realism.rs) sits between the tool and the
//! emulator and adds, one behaviour at a time and all at once, eventual
//! consistency, slow lifecycles, lingering dependencies, paging, buckets in
//! other regions, targets failing behind "healthy" instances, throttling
//! by time and shared ACM validation records, and serves the instance refresh
//! APIs the emulator lacks.
//!
//! Every test runs the production stack's whole life: `up` from empty, an
//! `exec` of the app's command, an empty `diff`, an instance type rolled out by an instance refresh, an
//! empty `diff`, a new binary rolled out the same way, an empty `diff`,
//! `destroy` leaving nothing tagged; and proves the behaviour it names bit.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::realism::{Behaviours, Realism, Timing};
use common::{changes, inventory, set, with_binary, Emulator, Run};

const STACK: &str = "bookstore-prod";
const GROUP: &str = "bookstore-prod-app";
const NEIGHBOUR: &str = "neighbour";
/// A bucket with the stack's artifact prefix, in another region: not ours.
const FOREIGN_BUCKET: &str = "bookstore-prod-artifacts-eu-foreign";

struct World {
    e: Emulator,
    proxy: Realism,
    stack: String,
    /// The neighbour stack's resources before our stack's life began.
    neighbour: BTreeMap<String, Vec<String>>,
    /// Another certificate of the account for the stack's domain.
    other_cert: String,
    /// Each run of the tool: its verb, when it began and ended.
    runs: std::cell::RefCell<Vec<(String, Instant, Instant)>>,
}

/// An account that already holds other things: a neighbour stack of every
/// kind (so every list the tool reads has more than its own items), a
/// bucket of our prefix in another region, another certificate for our
/// domain, and the domain's hosted zone.
fn world(b: Behaviours, t: Timing) -> World {
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "1")]);
    let other_cert = e.block_on(async {
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("test-zone")
            .send()
            .await
            .unwrap();
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.net")
            .caller_reference("another-zone")
            .send()
            .await
            .unwrap();
        let eu = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(e.conf())
                .region(aws_sdk_s3::config::Region::new("eu-west-1"))
                .force_path_style(true)
                .build(),
        );
        eu.create_bucket()
            .bucket(FOREIGN_BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        aws_sdk_acm::Client::new(e.conf())
            .request_certificate()
            .domain_name("shop.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_string()
    });
    let (bin, _) = e.binary("neighbour binary");
    let demo = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let neighbour = e.stack(
        "neighbour.toml",
        &with_binary(&demo, &bin).replace("name = \"demo\"", &format!("name = \"{NEIGHBOUR}\"")),
    );
    e.ok(&["up", &neighbour, "--yes"]);
    let neighbour = inventory::owned(&e, NEIGHBOUR);
    assert!(neighbour.len() > 15, "{neighbour:?}");

    let proxy = Realism::start_with(&e.endpoint, b, t);
    proxy.bucket_in_region(FOREIGN_BUCKET, "eu-west-1");
    let (bin, _) = e.binary("bookstore binary, first build");
    let prod = std::fs::read_to_string(common::root().join("stacks/production.toml")).unwrap();
    let stack = e.stack("production.toml", &with_binary(&prod, &bin));
    World {
        e,
        proxy,
        stack,
        neighbour,
        other_cert,
        runs: Default::default(),
    }
}

impl World {
    /// Runs the tool through the proxy. Its progress goes to a file in the
    /// test's directory as it runs (`tool.log`), then into the result.
    fn run(&self, args: &[&str]) -> Run {
        let log = self.e.dir.path().join("tool.log");
        let err = std::fs::File::create(&log).unwrap();
        let mut all = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.e.dir.path().join("all-runs.log"))
            .unwrap();
        let began = Instant::now();
        let out = self
            .e
            .cmd()
            .env("AWS_ENDPOINT_URL", &self.proxy.endpoint)
            .args(args)
            .stderr(err)
            .output()
            .unwrap();
        self.runs
            .borrow_mut()
            .push((args[0].to_string(), began, Instant::now()));
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: std::fs::read_to_string(&log).unwrap_or_default(),
        };
        use std::io::Write;
        let _ = writeln!(all, "$ {}\n{}{}", args.join(" "), run.stdout, run.stderr);
        run
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "`{}` failed:\n{}\n{}\ninjected: {:?}",
            args.join(" "),
            r.stdout,
            r.stderr,
            self.proxy.injected()
        );
        r
    }

    /// When each run of `verb` began and ended.
    fn runs_of(&self, verb: &str) -> Vec<(Instant, Instant)> {
        self.runs
            .borrow()
            .iter()
            .filter(|(v, _, _)| v == verb)
            .map(|(_, a, b)| (*a, *b))
            .collect()
    }

    /// `diff` finds nothing to do.
    fn converged(&self, when: &str) {
        let r = self.run(&["diff", &self.stack, "--detailed-exitcode"]);
        assert_eq!(
            r.code, 0,
            "{when}: diff not empty:\n{}\n{}",
            r.stdout, r.stderr
        );
    }

    fn changes(&self) -> std::collections::BTreeSet<(String, String)> {
        let r = self.ok(&["diff", &self.stack, "--json"]);
        changes(&serde_json::from_str(&r.stdout).unwrap())
    }

    fn edit(&self, f: impl Fn(String) -> String) {
        let text = std::fs::read_to_string(&self.stack).unwrap();
        std::fs::write(&self.stack, f(text)).unwrap();
    }

    /// The group as the emulator has it: launch template version, the
    /// version recorded as rolled out, and its instances' types.
    fn group(&self) -> (String, Option<String>, Vec<String>) {
        self.e.block_on(async {
            let g = aws_sdk_autoscaling::Client::new(self.e.conf())
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(GROUP)
                .send()
                .await
                .unwrap();
            let g = &g.auto_scaling_groups()[0];
            let version = g.launch_template().unwrap().version().unwrap().to_string();
            let rolled = g
                .tags()
                .iter()
                .find(|t| t.key() == Some("bookstore-infra:rolled-out"))
                .and_then(|t| t.value())
                .map(str::to_string);
            let ids: Vec<String> = g
                .instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect();
            let ec2 = self.e.ec2();
            let d = ec2
                .describe_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .unwrap();
            let mut types: Vec<String> = d
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"))
                .filter_map(|i| i.instance_type().map(|t| t.as_str().to_string()))
                .collect();
            types.sort();
            (version, rolled, types)
        })
    }

    /// The artifact keys in our bucket.
    fn artifacts(&self) -> Vec<String> {
        self.e.block_on(async {
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(self.e.conf())
                    .force_path_style(true)
                    .build(),
            );
            let buckets = s3.list_buckets().send().await.unwrap();
            let Some(bucket) = buckets
                .buckets()
                .iter()
                .filter_map(|b| b.name())
                .find(|n| n.starts_with("bookstore-prod-artifacts-") && *n != FOREIGN_BUCKET)
            else {
                return Vec::new();
            };
            let objs = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
            objs.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect()
        })
    }

    /// The validation records the other certificate of the account needs,
    /// as ACM shows them (through the proxy), as `name CNAME`.
    fn other_cert_records(&self) -> Vec<String> {
        let conf = self
            .e
            .conf()
            .clone()
            .into_builder()
            .endpoint_url(&self.proxy.endpoint)
            .build();
        let c = self.e.block_on(async {
            aws_sdk_acm::Client::new(&conf)
                .describe_certificate()
                .certificate_arn(&self.other_cert)
                .send()
                .await
                .unwrap()
        });
        let mut names: Vec<String> = c
            .certificate()
            .unwrap()
            .domain_validation_options()
            .iter()
            .filter_map(|o| o.resource_record())
            .map(|r| format!("{} CNAME", r.name()))
            .collect();
        names.sort();
        names
    }

    /// The validation CNAMEs of the stack's certificate, as `name CNAME`.
    fn validation_records(&self) -> Vec<String> {
        inventory::records(&self.e)
            .into_iter()
            .filter(|r| r.ends_with(" CNAME") && r.contains("shop.example.com."))
            .collect()
    }
}

/// The whole life of the production stack, through the proxy.
fn lifecycle(w: &World) {
    let first = w.ok(&["up", &w.stack, "--yes"]);
    assert!(
        first.stdout.contains("0 to change, 0 to destroy."),
        "{}",
        first.stdout
    );
    w.converged("after the first up");
    let (v1, rolled1, types) = w.group();
    assert_eq!(rolled1.as_deref(), Some(v1.as_str()));
    assert_eq!(types, ["t3.small", "t3.small"]);
    let first_artifacts = w.artifacts();
    assert_eq!(first_artifacts.len(), 1, "{first_artifacts:?}");

    // The app's own command, on a healthy instance whose agent is online.
    let before = w.proxy.accepted("SendCommand").len();
    let exec = w.ok(&[
        "exec",
        &w.stack,
        "--",
        "bookstore",
        "admin",
        "grant",
        "ops@example.com",
    ]);
    assert_eq!(exec.code, 0, "{}", exec.stderr);
    let sent = w.proxy.accepted("SendCommand");
    assert_eq!(sent.len(), before + 1, "one command sent");

    // A new instance type: a new launch template version, rolled out by
    // an instance refresh that the group only takes when it succeeds; and a
    // larger database class, applied at once.
    w.edit(|t| {
        t.replace(
            "instance_type = \"t3.small\"",
            "instance_type = \"t3.medium\"",
        )
        .replace(
            "instance_class = \"db.t3.medium\"",
            "instance_class = \"db.t3.large\"",
        )
        .replace("apply_immediately = false", "apply_immediately = true")
    });
    assert_eq!(
        w.changes(),
        set(&[
            ("launch-template", "update"),
            ("asg", "update"),
            ("db", "update")
        ])
    );
    let before = w.proxy.accepted("StartInstanceRefresh").len();
    w.ok(&["up", &w.stack, "--yes"]);
    let starts = w.proxy.accepted("StartInstanceRefresh");
    assert_eq!(starts.len(), before + 1, "one refresh started");
    // AWS replaced the two instances one batch at a time (90% must stay
    // healthy), each warmed up; `up` ended only after it read the refresh
    // Successful.
    let (batches, success_read) = *w.proxy.refreshes().last().unwrap();
    assert_eq!(batches, 2);
    let (_, ended) = *w.runs_of("up").last().unwrap();
    assert!(
        success_read.is_some_and(|read| read <= ended),
        "up ended before it read the refresh Successful"
    );
    let modify = w.proxy.accepted("ModifyDBInstance");
    let modify = &modify.last().expect("the database was modified").form;
    assert_eq!(modify["DBInstanceClass"], "db.t3.large");
    assert_eq!(modify["ApplyImmediately"], "true");
    let start = &starts.last().unwrap().form;
    let (v2, rolled2, types) = w.group();
    assert_eq!(v2, (v1.parse::<u32>().unwrap() + 1).to_string());
    assert_eq!(start["DesiredConfiguration.LaunchTemplate.Version"], v2);
    assert_eq!(start["Preferences.AutoRollback"], "true");
    assert_eq!(
        rolled2.as_deref(),
        Some(v2.as_str()),
        "the rolled-out version is recorded"
    );
    assert_eq!(
        types,
        ["t3.medium", "t3.medium"],
        "the instances were replaced"
    );
    w.converged("after the instance type rollout");

    // A new binary: uploaded once, rolled out the same way.
    let (bin2, sha2) = w.e.binary("bookstore binary, second build, different");
    w.edit(|t| with_binary(&t, &bin2));
    let plan = w.changes();
    assert!(
        plan.contains(&(format!("artifact-{}", &sha2[..12]), "create".into())),
        "{plan:?}"
    );
    w.ok(&["up", &w.stack, "--yes"]);
    let (v3, rolled3, _) = w.group();
    assert_eq!(v3, (v2.parse::<u32>().unwrap() + 1).to_string());
    assert_eq!(rolled3.as_deref(), Some(v3.as_str()));
    let artifacts = w.artifacts();
    assert_eq!(
        artifacts.len(),
        2,
        "the previous release's binary stays for `rollback`: {artifacts:?}"
    );
    assert!(artifacts.iter().any(|a| a.contains(&sha2)), "{artifacts:?}");
    w.converged("after the binary rollout");

    let shared = w.validation_records();
    assert!(
        !shared.is_empty(),
        "the certificate was validated in the zone: {:?}\n{}",
        inventory::records(&w.e),
        std::fs::read_to_string(w.e.dir.path().join("all-runs.log")).unwrap_or_default()
    );
    w.ok(&["destroy", &w.stack, "--yes", "--allow-delete", "db"]);
    let left = inventory::owned(&w.e, STACK);
    assert!(left.is_empty(), "destroy left: {left:?}");
    assert!(
        !inventory::records(&w.e).contains(&"shop.example.com. A".to_string()),
        "the alias record is gone"
    );
    assert_eq!(
        inventory::owned(&w.e, NEIGHBOUR),
        w.neighbour,
        "the neighbour stack is untouched"
    );
    // The validation records go with the certificate, except those another
    // certificate of the account validates or renews with.
    let needed = w.other_cert_records();
    let mut kept: Vec<String> = shared
        .iter()
        .filter(|r| needed.contains(r))
        .cloned()
        .collect();
    kept.sort();
    let mut after = w.validation_records();
    after.sort();
    assert_eq!(
        after,
        kept,
        "before destroy: {shared:?}, the other certificate's: {needed:?}\n{}",
        std::fs::read_to_string(w.e.dir.path().join("tool.log")).unwrap_or_default()
    );
}

fn only(f: impl Fn(&mut Behaviours)) -> Behaviours {
    let mut b = Behaviours::none();
    f(&mut b);
    b
}

fn life_under(b: Behaviours, bites: &[&str]) -> World {
    life_under_with(b, Timing::default(), bites)
}

fn life_under_with(b: Behaviours, t: Timing, bites: &[&str]) -> World {
    let w = world(b, t);
    let start = Instant::now();
    lifecycle(&w);
    eprintln!(
        "lifecycle in {:.1?}, injected {:?}",
        start.elapsed(),
        w.proxy.injected()
    );
    for what in bites {
        assert!(
            w.proxy.bit(what) > 0,
            "{what} never bit: {:?}",
            w.proxy.injected()
        );
    }
    w
}

#[test]
fn lifecycle_with_eventual_consistency() {
    life_under(only(|b| b.consistency = true), &["consistency"]);
}

/// The tool waited: no call was made on a database or file system still
/// `creating` (AWS refuses those; the proxy counts each refusal as
/// `transitional`, see
/// `the_model_refuses_calls_on_resources_not_available_and_keeps_tokens`).
///
/// And each DNS change it made (the alias, the validation records) was
/// read `INSYNC` before the run that made it ended: it waited for the
/// change to take effect, not only for the call to return.
#[test]
fn lifecycle_with_slow_lifecycles() {
    // A database modification that outlasts the rest of its `up` (the
    // instance refresh beside it), so an `up` that did not wait for it
    // would end while it is still pending.
    let t = Timing {
        db_modifying: Duration::from_secs(8),
        ..Timing::default()
    };
    let w = life_under_with(only(|b| b.lifecycles = true), t, &["lifecycles"]);
    assert_eq!(w.proxy.bit("transitional"), 0, "{:?}", w.proxy.injected());
    let changes: Vec<_> = w
        .proxy
        .dns_changes()
        .into_iter()
        .filter(|c| c.action != "DELETE")
        .collect();
    assert!(!changes.is_empty(), "no DNS change was made");
    // The database's new class was waited on until RDS showed it applied.
    let modified = w
        .proxy
        .accepted("ModifyDBInstance")
        .into_iter()
        .find(|m| m.form.contains_key("DBInstanceClass"))
        .expect("the class was changed");
    let (_, ended) = w
        .runs_of("up")
        .into_iter()
        .find(|(began, ended)| *began <= modified.at && modified.at <= *ended)
        .expect("an up changed it");
    let reads: Vec<bool> = w
        .proxy
        .db_reads()
        .into_iter()
        .filter(|(at, id, _)| *at > modified.at && *at <= ended && id == "bookstore-prod-db")
        .map(|(_, _, settled)| settled)
        .collect();
    assert!(
        reads.contains(&false),
        "the up never read the change pending: {reads:?}"
    );
    assert_eq!(
        reads.last(),
        Some(&true),
        "the up ended before the change was applied: {reads:?}"
    );
    let runs = w.runs.borrow();
    for c in &changes {
        let (verb, _, ended) = runs
            .iter()
            .find(|(_, began, ended)| *began <= c.submitted && c.submitted <= *ended)
            .expect("a change made by a run");
        assert!(
            c.insync_read.is_some_and(|read| read <= *ended),
            "`{verb}` ended before its DNS change {} was INSYNC: {c:?}",
            c.id
        );
    }
}

#[test]
fn lifecycle_with_lingering_dependencies() {
    life_under(only(|b| b.dependencies = true), &["dependencies"]);
}

#[test]
fn lifecycle_with_paging_and_a_neighbour_stack() {
    life_under(only(|b| b.paging = true), &["paging"]);
}

/// A bucket of the stack's prefix lives in another region. Where
/// ListBuckets names each bucket's region (`lifecycle_with_all_behaviours_at_once`)
/// the tool never calls it; here the list names none, so the tool reads
/// its tags, is answered 301 PermanentRedirect, and goes on: the bucket is
/// not ours, and nothing of it changed.
#[test]
fn lifecycle_with_a_bucket_of_our_prefix_in_another_region() {
    let w = world(only(|b| b.other_region = true), Timing::default());
    w.proxy.lists_without_bucket_region();
    lifecycle(&w);
    assert!(w.proxy.bit("redirect") > 0, "{:?}", w.proxy.injected());
    // S3 operations are named by method here (`GET:bucket?tagging`).
    let read = |op: &str| {
        ["GET", "HEAD", "Get", "Head"]
            .iter()
            .any(|r| op.starts_with(r))
    };
    let redirected: Vec<_> = w
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.status == 301)
        .map(|s| (s.op, s.path))
        .collect();
    assert!(
        redirected
            .iter()
            .all(|(op, path)| read(op) && path.contains(FOREIGN_BUCKET)),
        "only reads of the foreign bucket were redirected: {redirected:?}"
    );
    let touched: Vec<_> = w
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains(FOREIGN_BUCKET) && !read(&s.op))
        .map(|s| s.op)
        .collect();
    assert!(
        touched.is_empty(),
        "the foreign bucket was changed: {touched:?}"
    );
}

/// Each `up` that brought instances in saw their targets fail first, and
/// ended on an answer with every target healthy: it waited, and no longer
/// than needed.
#[test]
fn lifecycle_with_unhealthy_targets_behind_in_service_instances() {
    let w = life_under(only(|b| b.target_health = true), &["target_health"]);
    let answers = w.proxy.health_answers();
    let ups = w.runs_of("up");
    assert_eq!(ups.len(), 3);
    for (i, (began, ended)) in ups.iter().enumerate() {
        let during: Vec<bool> = answers
            .iter()
            .filter(|(at, _)| at > began && at < ended)
            .map(|(_, healthy)| *healthy)
            .collect();
        assert!(
            during.iter().any(|healthy| !healthy),
            "up {i} never read a failing target: {during:?}"
        );
        assert_eq!(
            during.last(),
            Some(&true),
            "up {i} ended without reading every target healthy: {during:?}"
        );
    }
}

/// Every operation AWS throttled was tried again until AWS let it through,
/// and some were throttled more times in a row than the SDK's default three
/// attempts allow: the tool's retries outlasted what a default client would
/// not.
#[test]
fn lifecycle_with_throttling_by_time() {
    let w = life_under(only(|b| b.throttling = true), &["throttling"]);
    let throttled = |s: &common::realism::Seen| {
        matches!(
            s.code.as_deref(),
            Some("RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "SlowDown")
        )
    };
    let seen = w.proxy.seen();
    let mut longest = 0;
    let mut run: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, s) in seen.iter().enumerate() {
        let key = (s.service.clone(), s.op.clone());
        if !throttled(s) {
            run.insert(key, 0);
            continue;
        }
        let n = run.entry(key).or_default();
        *n += 1;
        longest = longest.max(*n);
        assert!(
            seen[i + 1..]
                .iter()
                .any(|later| later.service == s.service && later.op == s.op && !throttled(later)),
            "{}:{} was throttled and never tried again until let through",
            s.service,
            s.op
        );
    }
    assert!(
        longest >= 3,
        "no operation was throttled three times in a row: {longest}"
    );
}

#[test]
fn lifecycle_with_shared_validation_records() {
    // The lifecycle's last check proves the handling: the record the other
    // certificate validates with is kept, ours alone go.
    life_under(only(|b| b.shared_validation = true), &["shared_validation"]);
}

/// Creates and deletes whose work was done and whose answer was lost: the
/// SDK's retry meets "already exists", a CIDR conflict, NotFound, a client
/// token's first answer, or makes a second VPC. The lifecycle's empty
/// `diff`s and empty account prove each ended with exactly one resource, or
/// none.
#[test]
fn lifecycle_with_lost_answers_and_client_tokens() {
    let w = life_under(
        only(|b| b.lost_answers = true),
        &["lost_answers", "client_token"],
    );
    let lost = w.proxy.lost();
    for op in [
        // A twin (no token, no unique name).
        "ec2:CreateVpc",
        "ec2:AllocateAddress",
        // A conflict or "already exists".
        "ec2:CreateSubnet",
        "ec2:CreateSecurityGroup",
        "rds:CreateDBInstance",
        "iam:CreateRole",
        // A client token.
        "ec2:CreateNatGateway",
        "ec2:CreateLaunchTemplate",
        // NotFound on the repeat of a delete, in each service's words.
        "ec2:DeleteSubnet",
        "ec2:DeleteVpc",
        "rds:DeleteDBInstance",
        "autoscaling:DeleteAutoScalingGroup",
        "elasticfilesystem:DeleteFileSystem",
        "iam:DeleteRole",
        "acm:DeleteCertificate",
        "route53:ChangeResourceRecordSets:DELETE",
    ] {
        assert!(lost.contains(op), "{op} never lost an answer: {lost:?}");
    }
    // Each of those deletes was repeated, met AWS's NotFound, and the tool
    // took it as done: `destroy` went on and left nothing.
    let not_found: BTreeMap<String, String> = w
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.op.starts_with("Delete") || s.op == "ChangeResourceRecordSets")
        .filter_map(|s| Some((format!("{}:{}", s.service, s.op), s.code?)))
        .filter(|(_, code)| {
            code.contains("NotFound")
                || code.starts_with("NoSuch")
                || code == "ValidationError"
                || code == "InvalidChangeBatch"
        })
        .collect();
    for (op, code) in [
        ("ec2:DeleteVpc", "InvalidVpcID.NotFound"),
        ("rds:DeleteDBInstance", "DBInstanceNotFound"),
        ("autoscaling:DeleteAutoScalingGroup", "ValidationError"),
        ("elasticfilesystem:DeleteFileSystem", "FileSystemNotFound"),
        ("iam:DeleteRole", "NoSuchEntity"),
        ("route53:ChangeResourceRecordSets", "InvalidChangeBatch"),
    ] {
        assert_eq!(
            not_found.get(op).map(String::as_str),
            Some(code),
            "{op}'s repeat was not answered {code}: {not_found:?}"
        );
    }
}

/// Everything at once. Among what that combines: the CreateVpc whose
/// answer was lost made a twin, which the VPC list left out for a while;
/// the first `up` waited for the list to catch up and deleted the twin (the
/// lifecycle's empty `diff`s and empty account prove the rest).
#[test]
fn lifecycle_with_all_behaviours_at_once() {
    let w = life_under(
        Behaviours::all(),
        &[
            "list_lag",
            "consistency",
            "lifecycles",
            "dependencies",
            "paging",
            "other_region",
            "target_health",
            "throttling",
            "shared_validation",
            "lost_answers",
        ],
    );
    let (began, ended) = w.runs_of("up")[0];
    let deleted: Vec<_> = w
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.op == "DeleteVpc" && s.at > began && s.at < ended)
        .collect();
    assert!(
        !deleted.is_empty(),
        "the first up deleted no twin VPC: {:?}",
        w.proxy.lost()
    );
}

/// A slow refresh, to be caught half way.
fn slow_refresh() -> Timing {
    Timing {
        refresh_per_instance: Duration::from_secs(3),
        ..Timing::default()
    }
}

/// Starts `up`, kills it once its refresh is running, returns the refresh count.
fn up_killed_during_refresh(w: &World) {
    let before = w.proxy.accepted("StartInstanceRefresh").len();
    let mut child =
        w.e.cmd()
            .env("AWS_ENDPOINT_URL", &w.proxy.endpoint)
            .args(["up", &w.stack, "--yes"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let start = Instant::now();
    while w.proxy.accepted("StartInstanceRefresh").len() == before {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no refresh started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "up ended before its refresh"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_up_killed_during_a_refresh_is_resumed_by_the_next_up() {
    let w = world(Behaviours::none(), slow_refresh());
    w.ok(&["up", &w.stack, "--yes"]);
    w.edit(|t| {
        t.replace(
            "instance_type = \"t3.small\"",
            "instance_type = \"t3.medium\"",
        )
    });
    up_killed_during_refresh(&w);
    let (v, rolled, _) = w.group();
    assert_ne!(rolled.as_deref(), Some("2"), "not rolled out yet");
    assert_eq!(
        v, "1",
        "the group keeps its version until the refresh succeeds"
    );
    assert_eq!(
        w.changes(),
        set(&[("asg", "update")]),
        "the rollout is still to do"
    );
    w.ok(&["up", &w.stack, "--yes"]);
    assert_eq!(
        w.proxy.accepted("StartInstanceRefresh").len(),
        1,
        "the running refresh was waited for, not started again"
    );
    assert!(w.proxy.accepted("CancelInstanceRefresh").is_empty());
    let (v, rolled, types) = w.group();
    assert_eq!((v.as_str(), rolled.as_deref()), ("2", Some("2")));
    assert_eq!(types, ["t3.medium", "t3.medium"]);
    w.converged("after the resumed rollout");
}

#[test]
fn an_up_killed_during_a_refresh_then_changed_again_cancels_and_restarts_it() {
    let w = world(Behaviours::none(), slow_refresh());
    w.ok(&["up", &w.stack, "--yes"]);
    w.edit(|t| {
        t.replace(
            "instance_type = \"t3.small\"",
            "instance_type = \"t3.medium\"",
        )
    });
    up_killed_during_refresh(&w);
    w.edit(|t| {
        t.replace(
            "instance_type = \"t3.medium\"",
            "instance_type = \"t3.large\"",
        )
    });
    w.ok(&["up", &w.stack, "--yes"]);
    assert_eq!(w.proxy.accepted("CancelInstanceRefresh").len(), 1);
    let starts = w.proxy.accepted("StartInstanceRefresh");
    assert_eq!(starts.len(), 2);
    let (v, rolled, types) = w.group();
    assert_eq!(
        starts[1].form["DesiredConfiguration.LaunchTemplate.Version"],
        v
    );
    assert_eq!(v, "3");
    assert_eq!(rolled.as_deref(), Some("3"));
    assert_eq!(types, ["t3.large", "t3.large"]);
    w.converged("after the restarted rollout");
}

#[test]
fn a_failing_refresh_rolls_back_and_names_the_reason() {
    let w = world(Behaviours::none(), Timing::default());
    w.ok(&["up", &w.stack, "--yes"]);
    let reason = "Instance refresh failed: 1 instance(s) failed their ELB health checks.";
    w.proxy.fail_refreshes(Some(reason));
    w.edit(|t| {
        t.replace(
            "instance_type = \"t3.small\"",
            "instance_type = \"t3.medium\"",
        )
    });
    let up = w.run(&["up", &w.stack, "--yes"]);
    assert_eq!(up.code, 1, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stderr.contains(reason),
        "AWS's reason is named: {}",
        up.stderr
    );
    assert!(up.stderr.contains("RollbackSuccessful"), "{}", up.stderr);
    let (v, rolled, types) = w.group();
    assert_eq!(
        (v.as_str(), rolled.as_deref()),
        ("1", Some("1")),
        "still on the old version"
    );
    assert_eq!(types, ["t3.small", "t3.small"]);
    assert_eq!(
        w.changes(),
        set(&[("asg", "update")]),
        "the rollout is still to do"
    );
    // Fixed: the next up rolls it out.
    w.proxy.fail_refreshes(None);
    w.ok(&["up", &w.stack, "--yes"]);
    let (v, rolled, _) = w.group();
    assert_eq!((v.as_str(), rolled.as_deref()), ("2", Some("2")));
    w.converged("after the retried rollout");
}

#[test]
fn the_modelled_refresh_api_refuses_what_aws_refuses() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let conf = e
        .conf()
        .clone()
        .into_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    let asg = aws_sdk_autoscaling::Client::new(&conf);
    let err = e
        .block_on(
            asg.start_instance_refresh()
                .auto_scaling_group_name("nobody")
                .preferences(
                    aws_sdk_autoscaling::types::RefreshPreferences::builder()
                        .auto_rollback(true)
                        .build(),
                )
                .send(),
        )
        .unwrap_err();
    use aws_sdk_autoscaling::error::ProvideErrorMetadata;
    assert_eq!(err.code(), Some("ValidationError"));
    assert!(
        err.message()
            .unwrap()
            .contains("AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty"),
        "{err:?}"
    );
    let err = e
        .block_on(
            asg.cancel_instance_refresh()
                .auto_scaling_group_name("nobody")
                .send(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some("ActiveInstanceRefreshNotFound"));
}

/// The model itself: a file system still `creating` refuses mount targets
/// as EFS does; a lost answer's work is done; a client token's repeat gets
/// the first answer and a reuse with other parameters is refused.
#[test]
fn the_model_refuses_calls_on_resources_not_available_and_keeps_tokens() {
    let e = Emulator::start();
    let b = Behaviours {
        lifecycles: true,
        lost_answers: true,
        ..Behaviours::none()
    };
    // Long enough that a loaded machine cannot outrun it.
    let t = Timing {
        efs_creating: Duration::from_secs(60),
        ..Timing::default()
    };
    let proxy = Realism::start_with(&e.endpoint, b, t);
    let conf = e
        .conf()
        .clone()
        .into_builder()
        .endpoint_url(&proxy.endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    let efs = aws_sdk_efs::Client::new(&conf);
    // The first create's answer is lost: the file system exists all the same.
    let lost = e
        .block_on(efs.create_file_system().creation_token("model").send())
        .unwrap_err();
    assert_eq!(lost.code(), Some("InternalFailure"), "{lost:?}");
    let fs = e
        .block_on(efs.describe_file_systems().creation_token("model").send())
        .unwrap()
        .file_systems()[0]
        .file_system_id
        .clone();
    let err = e
        .block_on(
            efs.create_mount_target()
                .file_system_id(&fs)
                .subnet_id("subnet-0123456789abcdef0")
                .send(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some("IncorrectFileSystemLifeCycleState"));
    assert_eq!(proxy.bit("transitional"), 1);

    // A listener naming a certificate its caller never read ISSUED.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let cert =
        "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    let err = e
        .block_on(
            elb.create_listener()
                .load_balancer_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0123456789abcdef")
                .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Https)
                .port(443)
                .certificates(
                    aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                        .certificate_arn(cert)
                        .build(),
                )
                .send(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some("CertificateNotFound"));
    assert_eq!(proxy.bit("transitional"), 2);

    let ec2 = aws_sdk_ec2::Client::new(&conf);
    // Each answer, or its error code.
    let create = |name: &str| {
        e.block_on(
            ec2.create_launch_template()
                .launch_template_name(name)
                .client_token("token-1")
                .launch_template_data(
                    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
                        .build(),
                )
                .send(),
        )
        .map_err(|e| e.code().unwrap_or_default().to_string())
    };
    let lost = create("model").unwrap_err();
    assert_eq!(lost, "InternalError");
    assert!(proxy.lost().contains("ec2:CreateLaunchTemplate"));
    let first = create("model").unwrap();
    let again = create("model").unwrap();
    assert_eq!(
        first.launch_template().unwrap().launch_template_id,
        again.launch_template().unwrap().launch_template_id
    );
    assert_eq!(proxy.bit("client_token"), 2);
    let reuse = create("other").unwrap_err();
    assert_eq!(reuse, "IdempotentParameterMismatch");
}
