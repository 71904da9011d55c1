//! The full deployment of `stacks/production.toml` against the AWS API
//! emulator, checked resource by resource with independent SDK calls.
//!
//! The emulator does not implement Auto Scaling instance refresh: the tool
//! talks to it through the realism proxy (tests/common/realism.rs), which
//! serves those APIs with the API reference's validation rules, and no other
//! behaviour switched on (tests/realism.rs switches them on).

use crate::common;

use std::collections::BTreeSet;

use aws_smithy_types::base64;
use common::realism::{Behaviours, Realism};
use common::{changes, set, step, with_binary, Emulator};
use serde_json::Value;

const STACK: &str = "bookstore-prod";

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
    zone_id: String,
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

    /// (id, action) of the steps that do something.
    fn changes(&self) -> BTreeSet<(String, String)> {
        changes(&self.plan_json())
    }

    /// The plan of `diff --json`, through the proxy like every run.
    fn plan_json(&self) -> Value {
        serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap()
    }

    /// How many app binaries were uploaded (accepted PutObject requests of
    /// an artifact key, not of the stack's lock).
    fn uploads(&self) -> usize {
        self.proxy
            .seen()
            .iter()
            .filter(|r| r.service == "s3" && r.op.starts_with("PUT:object") && r.status < 300)
            .filter(|r| r.path.ends_with("/bookstore"))
            .count()
    }

    /// The StartInstanceRefresh requests AWS accepted.
    fn refreshes(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.proxy
            .accepted("StartInstanceRefresh")
            .into_iter()
            .map(|r| r.form)
            .collect()
    }
}

fn stack_with(e: &Emulator, binary: &str, edit: &dyn Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(common::root().join("stacks/production.toml")).unwrap();
    e.stack("production.toml", &edit(with_binary(&text, binary)))
}

fn setup() -> Env {
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "1")]);
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
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
    let (bin, _) = e.binary("bookstore binary, first build");
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
    let sm = aws_sdk_secretsmanager::Client::new(conf);

    let outputs: Value =
        serde_json::from_str(&env.ok(&["outputs", &env.stack, "--json"]).stdout).unwrap();
    assert_eq!(outputs["url"], "https://shop.example.com");
    // The database's password, as RDS keeps it.
    let (_, _, password) = crate::pipeline::database_password(e);

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
        // It refuses connections without TLS: the stack's parameter group,
        // of its engine's family, sets require_secure_transport.
        let params_group = "bookstore-prod-db-mysql8-0";
        assert_eq!(
            db.db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name()),
            Some(params_group)
        );
        let groups = rds
            .describe_db_parameter_groups()
            .db_parameter_group_name(params_group)
            .send()
            .await
            .unwrap();
        assert_eq!(
            groups.db_parameter_groups()[0].db_parameter_group_family(),
            Some("mysql8.0")
        );
        let params = rds
            .describe_db_parameters()
            .db_parameter_group_name(params_group)
            .send()
            .await
            .unwrap();
        assert!(
            params.parameters().iter().any(|p| {
                p.parameter_name() == Some("require_secure_transport")
                    && p.parameter_value() == Some("1")
            }),
            "{params:?}"
        );
        // The app user's password is a secret the stack owns.
        let app_secret = sm
            .describe_secret()
            .secret_id(outputs["db_app_secret_arn"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            app_secret.name(),
            Some("bookstore-infra/bookstore-prod/db-app-password")
        );
        assert!(app_secret.tags().iter().any(|t| {
            t.key() == Some("bookstore-infra:stack") && t.value() == Some("bookstore-prod")
        }));

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
        assert_eq!(cert.domain_validation_options().len(), 2, "one per name");
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
        let rules = enc
            .server_side_encryption_configuration()
            .expect("an encryption configuration")
            .rules();
        assert_eq!(rules.len(), 1, "{rules:?}");
        let algo = rules[0]
            .apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str().to_string());
        assert!(
            matches!(algo.as_deref(), Some("AES256") | Some("aws:kms")),
            "{rules:?}"
        );
        // Every bucket on AWS is encrypted by default: what proves the
        // tool asks for it is its own PutBucketEncryption, on this bucket.
        let puts: Vec<_> = env
            .proxy
            .accepted("PUT:bucket?encryption")
            .into_iter()
            .filter(|r| r.form.get("Bucket") == Some(&bucket))
            .collect();
        assert_eq!(puts.len(), 1, "{puts:?}");
        let pab = s3
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let pab = pab.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                pab.block_public_acls(),
                pab.ignore_public_acls(),
                pab.block_public_policy(),
                pab.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true)),
            "all four public access blocks"
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
        // Exactly five statements, each one action set on one named
        // resource (the log group's streams the only pattern).
        let doc: Value = serde_json::from_str(&common::decode(pol.policy_document())).unwrap();
        let log_group =
            "arn:aws:logs:us-east-1:123456789012:log-group:/bookstore-infra/bookstore-prod/app"
                .to_string();
        let statements = doc["Statement"].as_array().expect("statements");
        let mut grants: Vec<(Vec<String>, String)> = statements
            .iter()
            .map(|st| {
                assert_eq!(st["Effect"], "Allow", "{st}");
                let actions = match &st["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                    other => panic!("action {other}"),
                };
                let resource = st["Resource"]
                    .as_str()
                    .expect("one resource, never a list")
                    .to_string();
                assert!(
                    !resource.contains('*')
                        || resource.ends_with("/bookstore/*")
                        || resource == format!("{log_group}:log-stream:i-*"),
                    "{st}"
                );
                (actions, resource)
            })
            .collect();
        grants.sort();
        let fs_arn = format!(
            "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/{}",
            outputs["file_system_id"].as_str().unwrap()
        );
        assert_eq!(grants.len(), 6, "{doc}");
        assert_eq!(
            grants[0],
            (
                vec![
                    "elasticfilesystem:ClientMount".to_string(),
                    "elasticfilesystem:ClientWrite".to_string()
                ],
                fs_arn
            )
        );
        // The instances ship their logs to the stack's group, and only there.
        assert_eq!(
            grants[1],
            (vec!["logs:CreateLogStream".to_string()], log_group.clone())
        );
        assert_eq!(
            grants[2],
            (
                vec!["logs:PutLogEvents".to_string()],
                format!("{log_group}:log-stream:i-*")
            )
        );
        assert_eq!(
            grants[3],
            (
                vec!["s3:GetObject".to_string()],
                format!("arn:aws:s3:::{bucket}/bookstore/*")
            )
        );
        // The two database secrets, each by its ARN: the app user's and
        // (for the migrate step) the master user's.
        assert_eq!(
            grants[4],
            (
                vec!["secretsmanager:GetSecretValue".to_string()],
                outputs["db_app_secret_arn"].as_str().unwrap().to_string()
            )
        );
        assert_eq!(
            grants[5],
            (
                vec!["secretsmanager:GetSecretValue".to_string()],
                outputs["db_secret_arn"].as_str().unwrap().to_string()
            )
        );
        // Systems Manager reaches the instances through the one managed policy.
        let managed = iam
            .list_attached_role_policies()
            .role_name(role.role_name())
            .send()
            .await
            .unwrap();
        let managed: Vec<&str> = managed
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        assert_eq!(
            managed,
            ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
        );
        // The log group, with the default retention.
        let groups = aws_sdk_cloudwatchlogs::Client::new(conf)
            .describe_log_groups()
            .log_group_name_prefix("/bookstore-infra/bookstore-prod/")
            .send()
            .await
            .unwrap();
        let groups: Vec<(Option<&str>, Option<i32>)> = groups
            .log_groups()
            .iter()
            .map(|g| (g.log_group_arn(), g.retention_in_days()))
            .collect();
        assert_eq!(groups, [(Some(log_group.as_str()), Some(30))]);
        let mount = statements
            .iter()
            .find(|st| st["Resource"] == grants[0].1.as_str())
            .unwrap();
        assert!(
            mount["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]
                .as_str()
                .is_some_and(|a| a.contains(":access-point/fsap-")),
            "mounts only through the access point: {mount}"
        );

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
            !password.is_empty() && !script.contains(&password),
            "the database's password is in the user data"
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
    env.ok(&["--stats", "up", &env.stack, "--yes"]);
    // The rollout is an instance refresh to the new version, with auto
    // rollback: the group takes the version when the refresh succeeds.
    let refresh = env.refreshes();
    let last = refresh.last().expect("a StartInstanceRefresh request");
    assert_eq!(last["AutoScalingGroupName"], "bookstore-prod-app");
    assert_eq!(last["Strategy"], "Rolling");
    assert_eq!(last["Preferences.MinHealthyPercentage"], "90");
    assert_eq!(last["Preferences.InstanceWarmup"], "120");
    assert_eq!(last["Preferences.AutoRollback"], "true");
    assert_eq!(last["DesiredConfiguration.LaunchTemplate.Version"], "2");
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
    assert_eq!(version(e), ("2".into(), "2".into()));
    assert!(env.changes().is_empty(), "rolled out and recorded");

    // A new binary: uploaded once, a new version, rolled out.
    let (bin2, sha2) = e.binary("bookstore binary, second build, different");
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(&env.stack, with_binary(&text, &bin2)).unwrap();
    let new_artifact = format!("artifact-{}", &sha2[..12]);
    let changes = env.changes();
    for (id, action) in [
        (new_artifact.as_str(), "create"),
        ("launch-template", "update"),
        ("asg", "update"),
    ] {
        assert!(
            changes.contains(&(id.into(), action.into())),
            "{id} {action}: {changes:?}"
        );
    }
    let uploaded = env.uploads();
    let up = env.ok(&["--stats", "up", &env.stack, "--yes"]);
    let stats = up
        .stderr
        .lines()
        .find(|l| l.starts_with("api_calls="))
        .unwrap()
        .to_string();
    // The binary is uploaded once (the stack's lock is an S3 object too:
    // its writes are told apart by their key).
    assert_eq!(env.uploads() - uploaded, 1, "{stats}");
    assert_eq!(version(e), ("3".into(), "3".into()));
    let again = env.ok(&["--stats", "up", &env.stack, "--yes"]);
    let stats = again
        .stderr
        .lines()
        .find(|l| l.starts_with("api_calls="))
        .unwrap()
        .to_string();
    assert_eq!(env.uploads() - uploaded, 1, "uploaded once: {stats}");
    assert!(
        !stats.contains("StartInstanceRefresh"),
        "nothing to roll out: {stats}"
    );

    // A new app port replaces the target group, new one first: the
    // listener cannot let go of the old group until the new one exists,
    // and the emulator, like AWS, refuses to delete a group in use.
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(&env.stack, text.replace("port = 8080", "port = 8081")).unwrap();
    let plan = env.plan_json();
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
    let up = env.ok(&["up", &env.stack, "--yes"]);
    assert!(
        !up.stderr.contains("ResourceInUse"),
        "the old group was let go of first: {}",
        up.stderr
    );
    e.block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(e.conf());
        let tgs = elb.describe_target_groups().send().await.unwrap();
        // The old group went once everything that named it had moved over.
        let names: Vec<&str> = tgs
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_name())
            .collect();
        assert_eq!(names, ["bookstore-prod-app-8081"]);
        let tg = &tgs.target_groups()[0];
        let asg = aws_sdk_autoscaling::Client::new(e.conf())
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("bookstore-prod-app")
            .send()
            .await
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
    // Nothing left: the rollout ran, the old group and the first binary went.
    assert!(env.changes().is_empty(), "{:?}", env.changes());
    assert_eq!(version(e), ("4".into(), "4".into()));

    // A change that would replace the database is refused without the flag.
    let text = std::fs::read_to_string(&env.stack).unwrap();
    std::fs::write(
        &env.stack,
        text.replace("[database]\n", "[database]\nusername = \"shop\"\n"),
    )
    .unwrap();
    let refused = env.run(&["up", &env.stack, "--yes"]);
    // Its own exit code: consent needed.
    assert_eq!(refused.code, 4);
    assert!(
        refused.stderr.contains(
            "refusing to replace or delete db: it holds data. Name it with --allow-replace"
        ),
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

    // Destroy: nothing the stack owns is left (every kind, the alias and
    // its marker, the validation records, the lock), only the final snapshot.
    let validation: Vec<String> = common::inventory::records(e)
        .into_iter()
        .filter(|r| r.ends_with(" CNAME"))
        .collect();
    assert_eq!(validation.len(), 2, "one per name: {validation:?}");
    let d = env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
    let all = format!("{}{}", d.stdout, d.stderr);
    assert!(
        all.contains("bookstore-prod-db-final-"),
        "the snapshot name is printed: {all}"
    );
    let left = common::inventory::owned(e, STACK);
    assert!(left.is_empty(), "destroy left {left:?}");
    let records = common::inventory::records(e);
    assert!(
        records
            .iter()
            .all(|r| r.ends_with(" NS") || r.ends_with(" SOA")),
        "only the zone's own records are left: {records:?}"
    );
    e.block_on(async {
        let snaps = aws_sdk_rds::Client::new(e.conf())
            .describe_db_snapshots()
            .send()
            .await
            .unwrap();
        assert!(snaps.db_snapshots().iter().any(|s| s
            .db_snapshot_identifier()
            .unwrap_or_default()
            .starts_with("bookstore-prod-db-final-")));
    });
}

#[test]
fn without_a_hosted_zone_up_prints_the_validation_records_and_says_how_to_resume() {
    // Nobody creates the records here: the certificate stays pending
    // validation (the proxy holds it so) until the test lets it be issued,
    // as if someone had created them, whatever the machine's speed.
    let e = Emulator::start_with(&[("MOTO_ACM_VALIDATION_WAIT", "1")]);
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    proxy.hold_certificates(true);
    let run = |args: &[&str]| {
        let out = e
            .cmd()
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let text = with_binary(&text, &bin)
        + "\n[domain]\nname = \"shop.example.org\"\nvalidation_timeout = 10\n";
    let stack = e.stack("demo-domain.toml", &text);
    let up = run(&["up", &stack, "--yes"]);
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
    let plan: Value = serde_json::from_str(&run(&["diff", &stack, "--json"]).stdout).unwrap();
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

    // Run again: it resumes waiting for the same certificate; the records
    // are created meanwhile, and it goes on to make what needed it.
    let log = e.dir.path().join("again.log");
    let mut child = e
        .cmd()
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["up", &stack, "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("exists, waiting until ready")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "up never waited for the certificate: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "up ended before waiting"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    proxy.hold_certificates(false);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&log).unwrap_or_default()
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
    assert_eq!(run(&["diff", &stack, "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_composed_name_aws_refuses_is_located_at_its_key_and_calls_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    // A stack named `sg-...` makes security group names EC2 refuses; a
    // reserved word is no MySQL user name. Each parses: only the names
    // composed from it break AWS's rules.
    for (file, text, at, says) in [
        (
            "sg.toml",
            "# security groups are named <name>-sg-lb...\nname = \"sg-net\"\nregion = \"us-east-1\"\ntopology = \"network\"\n",
            "2:8",
            "`name` = \"sg-net\" makes the name of sg-lb (ec2:security-group) \"sg-net-sg-lb\", which EC2 CreateSecurityGroup `GroupName` refuses: it must not start with \"sg-\"; change `name`",
        ),
        (
            "user.toml",
            "name = \"shop\"\n\n[database]\nname = \"shop\"\nusername  = \"select\"\n",
            "5:13",
            "`database.username` = \"select\" makes the master_username of db (rds:db-instance) \"select\", which RDS CreateDBInstance `MasterUsername` (MySQL) refuses: it is a word MySQL reserves; change `database.username`",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        for verb in [&["validate"][..], &["diff"], &["up", "--yes"]] {
            let out = std::process::Command::new(common::BIN)
                .args(&verb[..1])
                .arg(&path)
                .args(&verb[1..])
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_ACCESS_KEY_ID", "x")
                .env("AWS_SECRET_ACCESS_KEY", "x")
                .env("AWS_REGION", "us-east-1")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{verb:?} {file}: {err}");
            assert_eq!(
                err.trim_end(),
                format!("error: {path}:{at}: {says}"),
                "{verb:?} {file}"
            );
        }
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no API call may be made for a stack whose composed names AWS refuses"
    );
}
