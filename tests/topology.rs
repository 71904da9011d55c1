//! The full deployment of `stacks/production.toml` against the AWS API
//! emulator, checked resource by resource with independent SDK calls.
//!
//! The emulator does not implement Auto Scaling instance refresh: the
//! requests go through a recording proxy, the test asserts the exact
//! StartInstanceRefresh request the tool made and that `up` reports the
//! failure (never a pretended success).

mod common;

use std::collections::BTreeSet;

use aws_smithy_types::base64;
use common::{changes, set, step, Emulator, RecordingProxy};
use serde_json::Value;

const STACK: &str = "bookstore-prod";

struct Env {
    e: Emulator,
    proxy: RecordingProxy,
    stack: String,
    zone_id: String,
}

impl Env {
    fn run(&self, args: &[&str]) -> common::Run {
        let out = self
            .e
            .cmd()
            .env("AWS_ENDPOINT_URL_AUTO_SCALING", &self.proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
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

    /// (id, action) of the steps that do something.
    fn changes(&self) -> BTreeSet<(String, String)> {
        changes(&self.e.plan_json(&self.stack))
    }

    fn refreshes(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.proxy
            .requests()
            .iter()
            .map(|r| r.form())
            .filter(|f| f.get("Action").map(String::as_str) == Some("StartInstanceRefresh"))
            .collect()
    }
}

fn write_binary(e: &Emulator, content: &str) -> (String, String) {
    use sha2::{Digest, Sha256};
    let p = e.dir.path().join(format!("bookstore-{}", content.len()));
    std::fs::write(&p, content).unwrap();
    (
        p.to_string_lossy().into_owned(),
        hex::encode(Sha256::digest(content.as_bytes())),
    )
}

fn stack_with(e: &Emulator, binary: &str, edit: &dyn Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(common::root().join("stacks/production.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("binary = "))
        .expect("a binary line")
        .to_string();
    let text = text.replace(&line, &format!("binary = {binary:?}"));
    e.stack("production.toml", &edit(text))
}

fn setup() -> Env {
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "1")]);
    let proxy = RecordingProxy::start(&e.endpoint);
    // The domain's zone exists already, as a real domain's would.
    let zone = e.block_on(async {
        aws_sdk_route53::Client::new(e.conf())
            .create_hosted_zone()
            .name("example.com")
            .caller_reference("test-zone")
            .send()
            .await
            .unwrap()
    });
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let (bin, _) = write_binary(&e, "bookstore binary, first build");
    let stack = stack_with(&e, &bin, &|t| t);
    Env {
        e,
        proxy,
        stack,
        zone_id,
    }
}

#[test]
fn production_stack_from_empty_to_destroyed() {
    let env = setup();
    let e = &env.e;
    let first = env.ok(&["--stats", "up", &env.stack, "--yes"]);
    assert!(
        first.stdout.contains("0 to change, 0 to destroy."),
        "{}",
        first.stdout
    );

    let conf = e.conf();
    let rds = aws_sdk_rds::Client::new(conf);
    let efs = aws_sdk_efs::Client::new(conf);
    let acm = aws_sdk_acm::Client::new(conf);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(conf);
    let iam = aws_sdk_iam::Client::new(conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    );
    let r53 = aws_sdk_route53::Client::new(conf);
    let asg = aws_sdk_autoscaling::Client::new(conf);
    let ec2 = e.ec2();
    let ssm = e.ssm();

    let outputs: Value =
        serde_json::from_str(&env.ok(&["outputs", &env.stack, "--json"]).stdout).unwrap();
    assert_eq!(outputs["url"], "https://shop.example.com");

    e.block_on(async {
        // The database: Multi-AZ MySQL 8.0, encrypted, private, protected, backed up.
        let dbs = rds.describe_db_instances().send().await.unwrap();
        let db = dbs
            .db_instances()
            .iter()
            .find(|d| d.db_instance_identifier() == Some("bookstore-prod-db"))
            .expect("the database");
        assert_eq!(db.engine(), Some("mysql"));
        assert!(db.engine_version().unwrap().starts_with("8.0"));
        assert_eq!(db.multi_az(), Some(true));
        assert_eq!(db.storage_encrypted(), Some(true));
        assert_eq!(db.publicly_accessible(), Some(false));
        assert_eq!(db.deletion_protection(), Some(true));
        assert_eq!(db.backup_retention_period(), Some(14));
        assert_eq!(db.db_instance_class(), Some("db.t3.medium"));
        assert_eq!(
            db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
            Some("bookstore-prod-db-subnets")
        );
        assert_eq!(
            outputs["db_endpoint"].as_str(),
            db.endpoint().and_then(|e| e.address())
        );

        // Shared files: encrypted, a mount target per private subnet, an access point.
        let fs_id = outputs["file_system_id"].as_str().unwrap().to_string();
        let fs = efs
            .describe_file_systems()
            .file_system_id(&fs_id)
            .send()
            .await
            .unwrap();
        assert_eq!(fs.file_systems()[0].encrypted(), Some(true));
        let mts = efs
            .describe_mount_targets()
            .file_system_id(&fs_id)
            .send()
            .await
            .unwrap();
        assert_eq!(mts.mount_targets().len(), 2);
        let zones: BTreeSet<&str> = mts
            .mount_targets()
            .iter()
            .filter_map(|m| m.availability_zone_name())
            .collect();
        assert_eq!(zones.len(), 2, "one mount target per zone");
        let aps = efs
            .describe_access_points()
            .file_system_id(&fs_id)
            .send()
            .await
            .unwrap();
        assert_eq!(aps.access_points().len(), 1);

        // The certificate, validated in the zone.
        let certs = acm.list_certificates().send().await.unwrap();
        let cert_arn = certs
            .certificate_summary_list()
            .iter()
            .find(|c| c.domain_name() == Some("shop.example.com"))
            .and_then(|c| c.certificate_arn())
            .expect("a certificate")
            .to_string();
        let cert = acm
            .describe_certificate()
            .certificate_arn(&cert_arn)
            .send()
            .await
            .unwrap();
        let cert = cert.certificate().unwrap();
        assert_eq!(cert.status().map(|s| s.as_str()), Some("ISSUED"));
        assert!(cert
            .subject_alternative_names()
            .iter()
            .any(|n| n == "www.shop.example.com"));
        let records = r53
            .list_resource_record_sets()
            .hosted_zone_id(&env.zone_id)
            .send()
            .await
            .unwrap();
        for opt in cert.domain_validation_options() {
            let rr = opt.resource_record().expect("validation record");
            assert!(
                records
                    .resource_record_sets()
                    .iter()
                    .any(|s| s.name() == rr.name() && s.r#type().as_str() == "CNAME"),
                "validation record {} missing",
                rr.name()
            );
        }

        // The load balancer, its target group and listeners.
        let lbs = elb.describe_load_balancers().send().await.unwrap();
        let lb = lbs
            .load_balancers()
            .iter()
            .find(|l| l.load_balancer_name() == Some("bookstore-prod-lb"))
            .expect("the load balancer");
        assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
        assert_eq!(lb.availability_zones().len(), 2);
        let tgs = elb
            .describe_target_groups()
            .names("bookstore-prod-app-8080")
            .send()
            .await
            .unwrap();
        let tg = &tgs.target_groups()[0];
        assert_eq!(tg.port(), Some(8080));
        assert_eq!(tg.health_check_path(), Some("/healthz"));
        let ls = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let by_port = |p: i32| {
            ls.listeners()
                .iter()
                .find(|l| l.port() == Some(p))
                .expect("listener")
        };
        let l80 = by_port(80);
        let redirect = l80.default_actions()[0]
            .redirect_config()
            .expect("80 redirects");
        assert_eq!(redirect.port(), Some("443"));
        assert_eq!(redirect.protocol(), Some("HTTPS"));
        let l443 = by_port(443);
        assert_eq!(l443.protocol().map(|p| p.as_str()), Some("HTTPS"));
        assert_eq!(
            l443.ssl_policy(),
            Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
        );
        assert_eq!(
            l443.certificates()[0].certificate_arn(),
            Some(cert_arn.as_str())
        );
        assert_eq!(
            l443.default_actions()[0].target_group_arn(),
            tg.target_group_arn()
        );

        // The domain points at the load balancer.
        let alias = records
            .resource_record_sets()
            .iter()
            .find(|s| s.name() == "shop.example.com." && s.r#type().as_str() == "A")
            .expect("alias record");
        assert_eq!(
            alias
                .alias_target()
                .map(|a| a.dns_name().trim_end_matches('.').to_lowercase()),
            lb.dns_name()
                .map(|d| d.trim_end_matches('.').to_lowercase())
        );

        // The artifact: private, encrypted, versioned, holding the binary under its sha256.
        let buckets = s3.list_buckets().send().await.unwrap();
        let bucket = buckets
            .buckets()
            .iter()
            .filter_map(|b| b.name())
            .find(|n| n.starts_with("bookstore-prod-artifacts-"))
            .expect("artifact bucket")
            .to_string();
        // The emulator names this response's root element after the
        // operation, which the SDK refuses: read the status from the raw body.
        match s3.get_bucket_versioning().bucket(&bucket).send().await {
            Ok(v) => assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled")),
            Err(aws_sdk_s3::error::SdkError::ServiceError(e)) => {
                let body = String::from_utf8_lossy(e.raw().body().bytes().unwrap()).into_owned();
                assert!(body.contains("<Status>Enabled</Status>"), "{body}");
            }
            Err(e) => panic!("{e}"),
        }
        let enc = s3
            .get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        assert!(enc.server_side_encryption_configuration().is_some());
        let pab = s3
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pab.public_access_block_configuration()
                .unwrap()
                .block_public_acls(),
            Some(true)
        );
        let key = outputs["artifact_key"].as_str().unwrap();
        let obj = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let bytes = obj.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], b"bookstore binary, first build");

        // Least-privilege identity.
        let roles = iam
            .list_roles()
            .path_prefix("/bookstore-infra/bookstore-prod/")
            .send()
            .await
            .unwrap();
        assert_eq!(roles.roles().len(), 1);
        let role = &roles.roles()[0];
        let pol = iam
            .get_role_policy()
            .role_name(role.role_name())
            .policy_name("bookstore-app")
            .send()
            .await
            .unwrap();
        let doc = &common::decode(pol.policy_document());
        assert!(
            doc.contains("s3:GetObject") && doc.contains(&bucket),
            "{doc}"
        );
        assert!(doc.contains("elasticfilesystem:ClientMount"), "{doc}");
        assert!(doc.contains("secretsmanager:GetSecretValue"), "{doc}");
        assert!(!doc.contains("\"*\""), "no wildcard resource: {doc}");

        // The launch template: AL2023 from SSM, IMDSv2, the profile, the boot script.
        let ami = ssm
            .get_parameter()
            .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
            .send()
            .await
            .unwrap();
        let groups = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("bookstore-prod-app")
            .send()
            .await
            .unwrap();
        let g = &groups.auto_scaling_groups()[0];
        assert_eq!(
            (g.min_size(), g.max_size(), g.desired_capacity()),
            (Some(2), Some(6), Some(2))
        );
        assert_eq!(g.health_check_type(), Some("ELB"));
        assert_eq!(g.health_check_grace_period(), Some(120));
        assert_eq!(
            g.target_group_arns(),
            &[tg.target_group_arn().unwrap().to_string()]
        );
        let lt = g.launch_template().unwrap();
        let vers = ec2
            .describe_launch_template_versions()
            .launch_template_id(lt.launch_template_id().unwrap())
            .versions(lt.version().unwrap())
            .send()
            .await
            .unwrap();
        let data = vers.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        assert_eq!(data.image_id(), ami.parameter().unwrap().value());
        assert_eq!(data.instance_type().map(|t| t.as_str()), Some("t3.small"));
        assert_eq!(
            data.metadata_options()
                .unwrap()
                .http_tokens()
                .map(|t| t.as_str()),
            Some("required")
        );
        let script = String::from_utf8(base64::decode(data.user_data().unwrap()).unwrap()).unwrap();
        assert!(
            script.contains(key) && script.contains(&fs_id),
            "user data names the artifact and files"
        );
        assert!(
            !script.to_lowercase().contains("password="),
            "no password in user data"
        );
        let pols = asg
            .describe_policies()
            .auto_scaling_group_name("bookstore-prod-app")
            .send()
            .await
            .unwrap();
        let tt = pols.scaling_policies()[0]
            .target_tracking_configuration()
            .unwrap();
        assert_eq!(tt.target_value(), Some(50.0));
    });

    // Nothing left to do.
    assert!(env.changes().is_empty());
    assert_eq!(
        env.run(&["diff", &env.stack, "--detailed-exitcode"]).code,
        0
    );

    // A new instance type touches only the launch template and the group.
    let bin1 = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(
        &env.stack,
        bin1.replace(
            "instance_type = \"t3.small\"",
            "instance_type = \"t3.medium\"",
        ),
    )
    .unwrap();
    assert_eq!(
        env.changes(),
        set(&[("launch-template", "update"), ("asg", "update")])
    );
    let up = env.run(&["--stats", "up", &env.stack, "--yes"]);
    // The rollout is an instance refresh, which the emulator does not implement.
    assert_eq!(up.code, 1, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stderr.contains("asg") && up.stderr.contains("StartInstanceRefresh"),
        "{}",
        up.stderr
    );
    let refresh = env.refreshes();
    let last = refresh.last().expect("a StartInstanceRefresh request");
    assert_eq!(last["AutoScalingGroupName"], "bookstore-prod-app");
    assert_eq!(last["Strategy"], "Rolling");
    assert_eq!(last["Preferences.MinHealthyPercentage"], "90");
    assert_eq!(last["Preferences.InstanceWarmup"], "120");
    assert_eq!(last["Preferences.AutoRollback"], "true");
    let version = |e: &Emulator| {
        e.block_on(async {
            let g = aws_sdk_autoscaling::Client::new(e.conf())
                .describe_auto_scaling_groups()
                .auto_scaling_group_names("bookstore-prod-app")
                .send()
                .await
                .unwrap();
            let lt = g.auto_scaling_groups()[0]
                .launch_template()
                .unwrap()
                .clone();
            let t = e
                .ec2()
                .describe_launch_templates()
                .launch_template_ids(lt.launch_template_id().unwrap())
                .send()
                .await
                .unwrap();
            (
                lt.version().unwrap().to_string(),
                t.launch_templates()[0]
                    .latest_version_number()
                    .unwrap()
                    .to_string(),
            )
        })
    };
    let (group_version, latest) = version(e);
    assert_eq!(group_version, latest, "the new version is the group's");
    assert_eq!(latest, "2");
    // Not rolled out yet: the next plan still has the group to update, honestly.
    assert_eq!(env.changes(), set(&[("asg", "update")]));

    // A new binary: uploaded once, a new version, the group on it.
    let (bin2, sha2) = write_binary(e, "bookstore binary, second build, different");
    let text = std::fs::read_to_string(&env.stack).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("binary = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &env.stack,
        text.replace(&line, &format!("binary = {bin2:?}")),
    )
    .unwrap();
    let new_artifact = format!("artifact-{}", &sha2[..12]);
    let changes = env.changes();
    assert!(
        changes.contains(&(new_artifact.clone(), "create".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("launch-template".into(), "update".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("asg".into(), "update".into())),
        "{changes:?}"
    );
    let up = env.run(&["--stats", "up", &env.stack, "--yes"]);
    assert_eq!(up.code, 1, "the refresh again: {}", up.stderr);
    let stats = up
        .stderr
        .lines()
        .find(|l| l.starts_with("api_calls="))
        .unwrap()
        .to_string();
    assert!(stats.contains("S3:PutObject=1"), "{stats}");
    assert_eq!(version(e), ("3".into(), "3".into()));
    let again = env.run(&["--stats", "up", &env.stack, "--yes"]);
    let stats = again
        .stderr
        .lines()
        .find(|l| l.starts_with("api_calls="))
        .unwrap()
        .to_string();
    assert!(!stats.contains("S3:PutObject"), "uploaded once: {stats}");

    // A new app port replaces the target group, new one first: the
    // listener cannot let go of the old group until the new one exists,
    // and the emulator, like AWS, refuses to delete a group in use.
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(&env.stack, text.replace("port = 8080", "port = 8081")).unwrap();
    let plan = e.plan_json(&env.stack);
    let tg = step(&plan, "tg");
    assert_eq!(tg["action"], "replace", "{tg}");
    assert_eq!(tg["create_before_destroy"], true, "{tg}");
    let changes = env.changes();
    for (id, action) in [
        ("tg", "replace"),
        ("listener-https", "update"),
        ("sg-app", "update"),
        ("launch-template", "update"),
    ] {
        assert!(
            changes.contains(&(id.into(), action.into())),
            "{id} {action}: {changes:?}"
        );
    }
    assert!(
        !changes
            .iter()
            .any(|(id, _)| id == "lb" || id == "db" || id == "vpc"),
        "{changes:?}"
    );
    let up = env.run(&["up", &env.stack, "--yes"]);
    assert_eq!(up.code, 1, "only the refresh fails: {}", up.stderr);
    assert!(
        !up.stderr.contains("ResourceInUse"),
        "the old group was let go of first: {}",
        up.stderr
    );
    e.block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(e.conf());
        let tgs = elb.describe_target_groups().send().await.unwrap();
        // The old group goes once everything that named it has moved
        // over. The group's move ends with the instance refresh the
        // emulator lacks, so here the old group stays (and is the only
        // deletion left in the plan, checked below).
        let mut names: Vec<&str> = tgs
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["bookstore-prod-app-8080", "bookstore-prod-app-8081"]
        );
        let asg = aws_sdk_autoscaling::Client::new(e.conf())
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("bookstore-prod-app")
            .send()
            .await
            .unwrap();
        let tg = tgs
            .target_groups()
            .iter()
            .find(|t| t.target_group_name() == Some("bookstore-prod-app-8081"))
            .unwrap();
        assert_eq!(
            asg.auto_scaling_groups()[0].target_group_arns(),
            [tg.target_group_arn().unwrap().to_string()],
            "the group serves from the new target group only"
        );
        assert_eq!(tg.port(), Some(8081));
        let lb = elb
            .describe_load_balancers()
            .names("bookstore-prod-lb")
            .send()
            .await
            .unwrap();
        let ls = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let https = ls
            .listeners()
            .iter()
            .find(|l| l.port() == Some(443))
            .unwrap();
        assert_eq!(
            https.default_actions()[0].target_group_arn(),
            tg.target_group_arn()
        );
    });
    // Left: the rollout, and the deletions that wait for it (the old target
    // group, the first binary's artifact).
    let left = env.changes();
    let (artifacts, rest): (BTreeSet<_>, BTreeSet<_>) = left
        .into_iter()
        .partition(|(id, _)| id.starts_with("artifact-"));
    assert_eq!(rest, set(&[("asg", "update"), ("tg", "delete")]));
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(
        artifacts
            .iter()
            .all(|(id, a)| a == "delete" && *id != new_artifact),
        "{artifacts:?}"
    );

    // A change that would replace the database is refused without the flag.
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(
        &env.stack,
        text.replace("[database]\n", "[database]\nusername = \"shop\"\n"),
    )
    .unwrap();
    let refused = env.run(&["up", &env.stack, "--yes"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--allow-replace") && refused.stderr.contains("db"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.contains("-/+ db"), "{}", refused.stdout);
    let still = e.block_on(async {
        aws_sdk_rds::Client::new(e.conf())
            .describe_db_instances()
            .db_instance_identifier("bookstore-prod-db")
            .send()
            .await
            .unwrap()
            .db_instances()[0]
            .master_username()
            .map(str::to_string)
    });
    assert_eq!(
        still.as_deref(),
        Some("bookstore"),
        "the database was not touched"
    );

    // Destroy: nothing tagged is left, only the final snapshot.
    let d = env.ok(&["destroy", &env.stack, "--yes"]);
    let all = format!("{}{}", d.stdout, d.stderr);
    assert!(
        all.contains("bookstore-prod-db-final-"),
        "the snapshot name is printed: {all}"
    );
    e.block_on(async {
        let rds = aws_sdk_rds::Client::new(e.conf());
        assert!(rds
            .describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .is_empty());
        let snaps = rds.describe_db_snapshots().send().await.unwrap();
        assert!(snaps.db_snapshots().iter().any(|s| s
            .db_snapshot_identifier()
            .unwrap_or_default()
            .starts_with("bookstore-prod-db-final-")));
        assert!(aws_sdk_efs::Client::new(e.conf())
            .describe_file_systems()
            .send()
            .await
            .unwrap()
            .file_systems()
            .is_empty());
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(e.conf());
        assert!(elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .is_empty());
        assert!(elb
            .describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .is_empty());
        let acm = aws_sdk_acm::Client::new(e.conf());
        assert!(acm
            .list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .is_empty());
        let iam = aws_sdk_iam::Client::new(e.conf());
        assert!(iam
            .list_roles()
            .path_prefix("/bookstore-infra/")
            .send()
            .await
            .unwrap()
            .roles()
            .is_empty());
        assert!(iam
            .list_instance_profiles()
            .path_prefix("/bookstore-infra/")
            .send()
            .await
            .unwrap()
            .instance_profiles()
            .is_empty());
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(e.conf())
                .force_path_style(true)
                .build(),
        );
        assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());
        let asg = aws_sdk_autoscaling::Client::new(e.conf());
        assert!(asg
            .describe_auto_scaling_groups()
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
            .is_empty());
        let ec2 = e.ec2();
        let owned = aws_sdk_ec2::types::Filter::builder()
            .name("tag:bookstore-infra:stack")
            .values(STACK)
            .build();
        assert!(ec2
            .describe_launch_templates()
            .filters(owned.clone())
            .send()
            .await
            .unwrap()
            .launch_templates()
            .is_empty());
        assert!(ec2
            .describe_vpcs()
            .filters(owned.clone())
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty());
        assert!(ec2
            .describe_security_groups()
            .filters(owned.clone())
            .send()
            .await
            .unwrap()
            .security_groups()
            .is_empty());
        assert!(ec2
            .describe_subnets()
            .filters(owned)
            .send()
            .await
            .unwrap()
            .subnets()
            .is_empty());
    });
}

#[test]
fn without_a_hosted_zone_up_prints_the_validation_records_and_says_how_to_resume() {
    // Nobody creates the records here: the emulator issues the certificate
    // 25 s after it is requested, as if someone had, later than the first
    // run is willing to wait.
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "25")]);
    let (bin, _) = write_binary(&e, "bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("binary = "))
        .unwrap()
        .to_string();
    let text = text.replace(&line, &format!("binary = {bin:?}"))
        + "\n[domain]\nname = \"shop.example.org\"\nvalidation_timeout = 10\n";
    let stack = e.stack("demo-domain.toml", &text);
    let up = e.run(&["up", &stack, "--yes"]);
    assert_eq!(up.code, 1, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stderr
            .contains("create this DNS record to validate the certificate"),
        "{}",
        up.stderr
    );
    assert!(up.stderr.contains("CNAME"), "{}", up.stderr);
    assert!(
        up.stderr.contains("run `up` again: it resumes waiting"),
        "{}",
        up.stderr
    );
    // Nothing that needs the certificate was made; everything else was.
    let plan = e.plan_json(&stack);
    let pending: BTreeSet<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "create")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        pending.contains("listener-https") && !pending.contains("vpc") && !pending.contains("db"),
        "{pending:?}"
    );
    // The certificate is unchanged but not ready: the plan says `up` waits.
    let cert = step(&plan, "cert");
    assert_eq!(cert["action"], "no_op", "{cert}");
    assert_eq!(cert["pending"], true, "{cert}");

    // Run again, willing to wait longer: it resumes waiting for the same
    // certificate, then makes what needed it.
    let text = std::fs::read_to_string(&stack)
        .unwrap()
        .replace("validation_timeout = 10", "validation_timeout = 120");
    std::fs::write(&stack, text).unwrap();
    let again = e.run(&["up", &stack, "--yes"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stderr.contains("exists, waiting until ready"),
        "{}",
        again.stderr
    );
    let certs = e.block_on(async {
        aws_sdk_acm::Client::new(e.conf())
            .list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .len()
    });
    assert_eq!(certs, 1, "the same certificate, not a second one");
    assert_eq!(e.run(&["diff", &stack, "--detailed-exitcode"]).code, 0);
}
