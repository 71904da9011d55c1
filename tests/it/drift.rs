//! Drift that matters for security, made by hand through the API after an
//! `up`: `diff` shows exactly that change, `up` repairs it (read back from
//! the API), and a second `diff` shows nothing. An unchanged stack, and a
//! document AWS gives back in another but equivalent form, show nothing.
//!
//! The stack is `stacks/demo.toml`, through the realism proxy with no
//! behaviour switched on (it serves the instance refresh a repaired launch
//! template rolls out, and refuses policy documents AWS refuses).

use crate::common;

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateIamInstanceProfileSpecificationRequest, RequestLaunchTemplateData, VolumeType,
};
use common::realism::{Behaviours, Realism};
use common::{changes, set, step, with_binary, Emulator};
use serde_json::{json, Value};

const STACK: &str = "demo";

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
}

impl Env {
    fn ok(&self, args: &[&str]) -> common::Run {
        self.e.ok_via(&self.proxy.endpoint, args)
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap()
    }

    /// `diff` shows only `id` to `action`, with exactly the attributes
    /// `names` changing: the step.
    fn drift(&self, id: &str, action: &str, names: &[&str]) -> Value {
        let plan = self.plan();
        assert_eq!(changes(&plan), set(&[(id, action)]), "{plan:#}");
        let s = step(&plan, id).clone();
        let got: Vec<&str> = s["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        if action == "update" {
            assert_eq!(got, names, "{s:#}");
        }
        s
    }

    /// `up` repairs, and a second `diff` has nothing to do.
    fn repair(&self) {
        self.ok(&["up", &self.stack, "--yes"]);
        let r = self.e.run_via(
            &self.proxy.endpoint,
            &["diff", &self.stack, "--detailed-exitcode"],
        );
        assert_eq!(
            r.code, 0,
            "drift left after up:\n{}\n{}",
            r.stdout, r.stderr
        );
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(self.e.conf())
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(self.e.conf())
                .force_path_style(true)
                .build(),
        )
    }

    fn efs(&self) -> aws_sdk_efs::Client {
        aws_sdk_efs::Client::new(self.e.conf())
    }

    fn output(&self, name: &str) -> String {
        let o: Value =
            serde_json::from_str(&self.ok(&["outputs", &self.stack, "--json"]).stdout).unwrap();
        o[name].as_str().unwrap().to_string()
    }
}

fn setup() -> Env {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::none());
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let stack = e.stack("demo.toml", &with_binary(&text, &bin));
    let env = Env { e, proxy, stack };
    env.ok(&["up", &env.stack, "--yes"]);
    // An unchanged stack: nothing to do, no false drift from the forms
    // AWS gives documents back in.
    let r = env.e.run_via(
        &env.proxy.endpoint,
        &["diff", &env.stack, "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    env
}

/// The parsed JSON of a URL-encoded IAM policy document.
fn decode(doc: &str) -> Value {
    serde_json::from_str(&common::decode(doc)).unwrap()
}

fn role_name(env: &Env) -> String {
    env.e.block_on(async {
        let roles = env.iam().list_roles().send().await.unwrap();
        roles
            .roles()
            .iter()
            .find(|r| r.path() == format!("/bookstore-infra/{STACK}/"))
            .map(|r| r.role_name().to_string())
            .expect("the stack's role")
    })
}

const OURS: &str = r#"{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}"#;

#[test]
fn hand_made_changes_to_the_role_are_shown_and_undone() {
    let env = setup();
    let role = role_name(&env);
    let iam = env.iam();
    let ours: Value = serde_json::from_str(OURS).unwrap();

    // The same trust policy in another form (one statement alone, lists
    // of one) is no drift.
    let same = json!({"Statement": {"Action": ["sts:AssumeRole"], "Effect": "Allow",
        "Principal": {"Service": ["ec2.amazonaws.com"]}}, "Version": "2012-10-17"});
    env.e.block_on(async {
        iam.update_assume_role_policy()
            .role_name(&role)
            .policy_document(same.to_string())
            .send()
            .await
            .unwrap()
    });
    assert!(changes(&env.plan()).is_empty());

    // Another account trusted, added by hand.
    let other = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"});
    let doctored = json!({"Version": "2012-10-17", "Statement": [ours, other]});
    env.e.block_on(async {
        iam.update_assume_role_policy()
            .role_name(&role)
            .policy_document(doctored.to_string())
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("role", "update", &["trust_policy"]);
    assert_eq!(s["changes"][0]["before"], doctored);
    assert_eq!(
        s["changes"][0]["after"],
        json!({"Version": "2012-10-17", "Statement": [ours]})
    );
    let text = env.ok(&["diff", &env.stack]).stdout;
    assert!(text.contains("~ role"), "{text}");
    assert!(text.contains("999999999999"), "{text}");
    env.repair();
    let trust = env.e.block_on(async {
        let got = iam.get_role().role_name(&role).send().await.unwrap();
        decode(got.role().unwrap().assume_role_policy_document().unwrap())
    });
    assert_eq!(trust["Statement"], json!([ours]));

    // An extra inline policy.
    let admin = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    env.e.block_on(async {
        iam.put_role_policy()
            .role_name(&role)
            .policy_name("backdoor")
            .policy_document(admin.to_string())
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("role", "update", &["other_inline_policies"]);
    assert_eq!(s["changes"][0]["before"], json!({"backdoor": admin}));
    assert_eq!(s["changes"][0]["after"], json!({}));
    env.repair();
    let names = env.e.block_on(async {
        let got = iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        got.policy_names().to_vec()
    });
    assert_eq!(names, ["bookstore-app"]);

    // An extra managed policy attached.
    let admin_arn = "arn:aws:iam::aws:policy/AdministratorAccess";
    let ssm = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
    env.e.block_on(async {
        iam.attach_role_policy()
            .role_name(&role)
            .policy_arn(admin_arn)
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("role", "update", &["managed_policies"]);
    assert_eq!(s["changes"][0]["before"], json!([admin_arn, ssm]));
    assert_eq!(s["changes"][0]["after"], json!([ssm]));
    env.repair();
    let attached = env.e.block_on(async {
        let got = iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        got.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect::<Vec<_>>()
    });
    assert_eq!(attached, [ssm]);
}

#[test]
fn the_bucket_and_the_file_system_refuse_plain_transport_again_after_a_hand_made_change() {
    let env = setup();
    let s3 = env.s3();
    let bucket = env.e.block_on(async {
        let list = s3.list_buckets().send().await.unwrap();
        list.buckets()
            .iter()
            .filter_map(|b| b.name())
            .find(|n| n.starts_with("demo-artifacts-"))
            .unwrap()
            .to_string()
    });
    let tls_only = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RestrictToTLSRequestsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    });
    let policy = || {
        env.e.block_on(async {
            let p = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
            serde_json::from_str::<Value>(p.policy().unwrap()).unwrap()
        })
    };
    assert_eq!(policy(), tls_only);

    // What AWS refuses, the proxy refuses too: no test can rest on it.
    let via = env
        .e
        .conf()
        .clone()
        .into_builder()
        .endpoint_url(&env.proxy.endpoint)
        .build();
    let s3_via = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&via)
            .force_path_style(true)
            .build(),
    );
    let refused = |doc: String| {
        env.e.block_on(async {
            let e = s3_via
                .put_bucket_policy()
                .bucket(&bucket)
                .policy(doc)
                .send()
                .await
                .unwrap_err();
            aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
                .unwrap_or_default()
                .to_string()
        })
    };
    assert_eq!(refused("not a policy".into()), "MalformedPolicy");
    let elsewhere = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
        "Action": "s3:*", "Resource": "arn:aws:s3:::another-bucket/*"}]});
    assert_eq!(refused(elsewhere.to_string()), "MalformedPolicy");
    assert_eq!(policy(), tls_only, "a refused policy changes nothing");

    // The bucket policy deleted.
    env.e.block_on(async {
        s3.delete_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("artifacts", "update", &["policy"]);
    assert_eq!(s["changes"][0]["before"], Value::Null);
    assert_eq!(s["changes"][0]["after"], tls_only);
    env.repair();
    assert_eq!(policy(), tls_only);

    // The public-access block turned off.
    env.e.block_on(async {
        s3.delete_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("artifacts", "update", &["block_public_access"]);
    assert_eq!(
        (&s["changes"][0]["before"], &s["changes"][0]["after"]),
        (&json!(false), &json!(true))
    );
    env.repair();
    let block = env.e.block_on(async {
        let b = s3
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let c = b.public_access_block_configuration().unwrap().clone();
        [
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets(),
        ]
    });
    assert_eq!(block, [Some(true); 4]);

    // The file system's policy: TLS and the instance role through the
    // access point only.
    let fs = env.output("file_system_id");
    let efs = env.efs();
    let fs_policy = || {
        env.e.block_on(async {
            let p = efs
                .describe_file_system_policy()
                .file_system_id(&fs)
                .send()
                .await
                .unwrap();
            serde_json::from_str::<Value>(p.policy().unwrap()).unwrap()
        })
    };
    let want = fs_policy();
    let role = role_name(&env);
    let role_arn = env.e.block_on(async {
        let got = env.iam().get_role().role_name(&role).send().await.unwrap();
        got.role().unwrap().arn().to_string()
    });
    let st = want["Statement"].as_array().unwrap();
    assert_eq!(st.len(), 2, "{want:#}");
    let deny = st.iter().find(|s| s["Effect"] == "Deny").unwrap();
    assert_eq!(
        deny["Condition"],
        json!({"Bool": {"aws:SecureTransport": "false"}})
    );
    let allow = st.iter().find(|s| s["Effect"] == "Allow").unwrap();
    assert_eq!(allow["Principal"], json!({"AWS": role_arn}));
    assert!(
        allow["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]
            .as_str()
            .is_some_and(|a| a.contains(":access-point/fsap-")),
        "{allow}"
    );
    let efs_via = aws_sdk_efs::Client::new(&via);
    let code = env.e.block_on(async {
        let e = efs_via
            .put_file_system_policy()
            .file_system_id(&fs)
            .policy(r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}"#)
            .send()
            .await
            .unwrap_err();
        aws_sdk_efs::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_string()
    });
    assert_eq!(code, "InvalidPolicyException");
    env.e.block_on(async {
        efs.delete_file_system_policy()
            .file_system_id(&fs)
            .send()
            .await
            .unwrap()
    });
    let s = env.drift("efs-policy", "create", &[]);
    let shown = s["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "policy")
        .unwrap();
    assert_eq!(shown["after"], want);
    env.repair();
    assert_eq!(fs_policy(), want);
}

#[test]
fn a_launch_template_version_without_root_volume_encryption_is_repaired_and_rolled_out() {
    let env = setup();
    let ec2 = env.e.ec2();
    let encrypted = json!([{
        "device_name": "/dev/xvda",
        // The AMI's own size (the emulator's Amazon Linux 2023 image: 15 GiB).
        "volume_size": 15,
        "encrypted": true,
        "volume_type": "gp3",
        "delete_on_termination": true,
    }]);
    // The version `up` made encrypts the AMI's root device.
    let (lt, data) = env.e.block_on(async {
        let t = ec2.describe_launch_templates().send().await.unwrap();
        let lt = t.launch_templates()[0]
            .launch_template_id()
            .unwrap()
            .to_string();
        let v = ec2
            .describe_launch_template_versions()
            .launch_template_id(&lt)
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        (
            lt,
            v.launch_template_versions()[0]
                .launch_template_data()
                .unwrap()
                .clone(),
        )
    });
    let root = &data.block_device_mappings()[0];
    assert_eq!(root.device_name(), Some("/dev/xvda"));
    let ebs = root.ebs().unwrap();
    assert_eq!(
        (
            ebs.encrypted(),
            ebs.volume_type(),
            ebs.delete_on_termination()
        ),
        (Some(true), Some(&VolumeType::Gp3), Some(true))
    );

    // A version made by hand, as the last one: the same but for the root
    // volume, left unencrypted.
    let hand = RequestLaunchTemplateData::builder()
        .image_id(data.image_id().unwrap())
        .instance_type(data.instance_type().unwrap().clone())
        .set_security_group_ids(Some(data.security_group_ids().to_vec()))
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(data.iam_instance_profile().unwrap().arn().unwrap())
                .build(),
        )
        .metadata_options(
            aws_sdk_ec2::types::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .user_data(data.user_data().unwrap())
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name("/dev/xvda")
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(15)
                        .encrypted(false)
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .build();
    env.e.block_on(async {
        ec2.create_launch_template_version()
            .launch_template_id(&lt)
            .launch_template_data(hand)
            .send()
            .await
            .unwrap()
    });
    let plan = env.plan();
    let s = step(&plan, "launch-template");
    assert_eq!(s["action"], "update", "{plan:#}");
    let shown: Vec<&str> = s["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["block_device_mappings"], "{s:#}");
    assert_eq!(s["changes"][0]["before"][0]["encrypted"], json!(false));
    assert_eq!(s["changes"][0]["after"], encrypted);
    // The repaired version is rolled out, as any new version is.
    assert!(
        changes(&plan).contains(&("asg".to_string(), "update".to_string())),
        "{plan:#}"
    );
    env.repair();
    let (latest, in_use) = env.e.block_on(async {
        let v = ec2
            .describe_launch_template_versions()
            .launch_template_id(&lt)
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let v = &v.launch_template_versions()[0];
        let asg = aws_sdk_autoscaling::Client::new(env.e.conf());
        let g = asg.describe_auto_scaling_groups().send().await.unwrap();
        let used = g.auto_scaling_groups()[0]
            .launch_template()
            .and_then(|t| t.version())
            .map(str::to_string);
        (v.clone(), used)
    });
    let ebs = latest
        .launch_template_data()
        .unwrap()
        .block_device_mappings()[0]
        .ebs()
        .unwrap();
    assert_eq!(ebs.encrypted(), Some(true));
    assert_eq!(
        in_use,
        latest.version_number().map(|n| n.to_string()),
        "the group runs the repaired version"
    );
}
