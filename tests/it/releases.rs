//! Releases and rollback against the AWS API emulator, through the realism
//! proxy (which serves the instance refresh API the emulator lacks): every
//! `up` of a new binary is a release recorded on its launch template
//! version, the artifacts of the newest `keep_releases` stay, `rollback`
//! rolls the group back with an instance refresh and records it, and the
//! plan after a rollback keeps the group there and says so; `--roll-forward` rolls forward.

use crate::common;

use std::collections::BTreeSet;

use bookstore_infra::cloud::Cloud;
use bookstore_infra::releases::{self, Listing};
use bookstore_infra::resources::autoscaling_group::{self, TemplateVersion, TAG_ROLLED_BACK};
use common::realism::{Behaviours, Realism};
use common::{changes, step, with_binary, Emulator, Run};
use serde_json::Value;

const STACK: &str = "demo";

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
}

impl Env {
    fn start(keep: u32) -> Env {
        let e = Emulator::start();
        let proxy = Realism::start(&e.endpoint, Behaviours::none());
        let demo = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
        let text = demo.replace("[app]\n", &format!("[app]\nkeep_releases = {keep}\n"));
        assert!(
            text.contains("keep_releases"),
            "demo.toml has an [app] table"
        );
        let stack = e.stack("demo.toml", &text);
        Env { e, proxy, stack }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.e.run_via(&self.proxy.endpoint, args)
    }

    fn ok(&self, args: &[&str]) -> Run {
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

    /// Ships the binary with `content` (each test content has its own
    /// length: the stand-in's file name is its length) and runs `up`.
    fn up_with(&self, content: &str) -> String {
        let (bin, sha) = self.e.binary(content);
        let text = std::fs::read_to_string(&self.stack).unwrap();
        std::fs::write(&self.stack, with_binary(&text, &bin)).unwrap();
        self.ok(&["up", &self.stack, "--yes"]);
        sha
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap()
    }

    /// The tool's clients, through the proxy.
    fn cloud(&self) -> Cloud {
        self.e.cloud_via(&self.proxy.endpoint)
    }

    fn releases(&self) -> Listing {
        let cloud = self.cloud();
        self.e
            .block_on(releases::list(&cloud, STACK))
            .expect("the releases")
    }

    /// (launch template version the group names, its tags, instance ids in service).
    fn group(&self) -> (String, Vec<(String, String)>, BTreeSet<String>) {
        self.e.block_on(async {
            let asg = aws_sdk_autoscaling::Client::new(self.e.conf());
            let d = asg.describe_auto_scaling_groups().send().await.unwrap();
            let g = d
                .auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some("demo-app"))
                .expect("the group");
            (
                g.launch_template()
                    .and_then(|l| l.version())
                    .unwrap_or_default()
                    .to_string(),
                g.tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                g.instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect(),
            )
        })
    }

    /// The sha256 of every artifact in the stack's bucket.
    fn artifacts(&self) -> BTreeSet<String> {
        self.e.block_on(async {
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(self.e.conf())
                    .force_path_style(true)
                    .build(),
            );
            let buckets = s3.list_buckets().send().await.unwrap();
            let bucket = buckets
                .buckets()
                .iter()
                .filter_map(|b| b.name())
                .find(|n| n.starts_with("demo-artifacts-"))
                .expect("the artifact bucket")
                .to_string();
            let objs = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
            objs.contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| k.strip_prefix("bookstore/")?.strip_suffix("/bookstore"))
                .map(str::to_string)
                .collect()
        })
    }
}

fn tag<'t>(tags: &'t [(String, String)], k: &str) -> Option<&'t str> {
    tags.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn releases_are_recorded_rolled_back_and_rolled_forward_visibly() {
    let env = Env::start(5);
    let sha_a = env.up_with("bookstore binary A");
    let sha_b = env.up_with("bookstore binary B, the second");

    // Newest first, each with its binary, B running, both binaries kept.
    let l = env.releases();
    let got: Vec<(i64, Option<&str>, bool, bool)> = l
        .releases
        .iter()
        .map(|r| (r.version, r.sha256.as_deref(), r.rolled_out, r.artifact))
        .collect();
    assert_eq!(
        got,
        [
            (2, Some(sha_b.as_str()), true, true),
            (1, Some(sha_a.as_str()), false, true)
        ],
        "{l:?}"
    );
    assert!(l.releases[0].default && l.releases[0].wanted, "{l:?}");
    assert!(l.releases.iter().all(|r| r.created.is_some()), "{l:?}");
    assert_eq!(
        env.artifacts(),
        BTreeSet::from([sha_a.clone(), sha_b.clone()])
    );
    // Recorded on the version itself, where the console shows it.
    let desc = env.e.block_on(async {
        let d = env
            .e
            .ec2()
            .describe_launch_template_versions()
            .launch_template_id(l.launch_template_id.clone().unwrap())
            .versions("2")
            .send()
            .await
            .unwrap();
        d.launch_template_versions()[0]
            .version_description()
            .unwrap_or_default()
            .to_string()
    });
    assert!(
        desc.starts_with(&format!("release sha256={sha_b} commit=")),
        "{desc}"
    );
    // The stack file is in a directory outside any repository.
    assert_eq!(l.releases[0].commit, None, "{desc}");
    assert!(
        changes(&env.plan()).is_empty(),
        "kept artifacts are no change"
    );

    // Roll back to A, the way `rollback --to 1` does.
    let (_, _, before) = env.group();
    let target = releases::rollback_target(&l, Some(1)).unwrap().clone();
    assert_eq!(target.sha256.as_deref(), Some(sha_a.as_str()));
    let cloud = env.cloud();
    env.e
        .block_on(autoscaling_group::roll_back(
            &cloud,
            &l.group.as_ref().unwrap().name,
            &TemplateVersion::new(l.launch_template_id.as_deref().unwrap(), "1"),
            "2",
            (90, 0),
            1,
            false,
        ))
        .expect("the rollback");
    let (version, tags, after) = env.group();
    assert_eq!(version, "1", "the group is on A's version");
    assert_eq!(tag(&tags, "bookstore-infra:rolled-out"), Some("1"));
    assert_eq!(tag(&tags, TAG_ROLLED_BACK), Some("1 from 2"));
    assert!(
        !after.is_empty() && after.is_disjoint(&before),
        "the refresh replaced the instances: {before:?} -> {after:?}"
    );
    let l = env.releases();
    assert!(
        l.releases[1].rolled_out && !l.releases[0].rolled_out,
        "{l:?}"
    );
    // Nothing but the default release before it can be rolled back to now.
    assert!(releases::rollback_target(&l, None).is_err());

    // The next plan does not undo the rollback: the file still ships B,
    // the binary rolled back from. It says so.
    let kept = env.plan();
    assert!(changes(&kept).is_empty(), "no roll-forward: {kept}");
    let notes = kept["notes"].to_string();
    assert!(
        notes.contains("the group stays on release 1, where `rollback` left it"),
        "{kept}"
    );
    let text = env.run(&["diff", &env.stack, "--detailed-exitcode"]);
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout.contains("Note: the group stays on release 1"),
        "{}",
        text.stdout
    );
    let md = env.ok(&["diff", &env.stack, "--format", "markdown"]).stdout;
    assert!(
        md.contains("> [!NOTE]") && md.contains("stays on release 1"),
        "{md}"
    );
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(env.group().0, "1", "`up` kept the rolled-back release");

    // Rolling forward on purpose: the plan says why the group changes.
    let plan: Value = serde_json::from_str(
        &env.ok(&["diff", &env.stack, "--json", "--roll-forward"])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        changes(&plan),
        common::set(&[("asg", "update")]),
        "only the group rolls forward"
    );
    let asg = step(&plan, "asg");
    let diff = |name: &str| {
        asg["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no change of {name}: {asg}"))
            .clone()
    };
    assert_eq!(diff("launch_template_version")["before"], "1");
    assert_eq!(diff("launch_template_version")["after"], "2");
    let note = diff("rolled_back");
    assert_eq!(note["after"], Value::Null, "{note}");
    let note = note["before"].as_str().unwrap();
    assert!(
        note.contains("on release 1, rolled back from 2 by `rollback`")
            && note.contains("`up --roll-forward`"),
        "{note}"
    );
    let text = env.ok(&["diff", &env.stack, "--roll-forward"]).stdout;
    assert!(text.contains("rolled back from 2 by `rollback`"), "{text}");

    // `up --roll-forward` rolls forward and clears the record.
    env.ok(&["up", &env.stack, "--yes", "--roll-forward"]);
    let (version, tags, _) = env.group();
    assert_eq!(version, "2");
    assert_eq!(tag(&tags, "bookstore-infra:rolled-out"), Some("2"));
    assert_eq!(tag(&tags, TAG_ROLLED_BACK), None);
    assert!(changes(&env.plan()).is_empty());
}

#[test]
fn only_the_newest_releases_keep_their_artifacts() {
    let env = Env::start(2);
    let sha_a = env.up_with("bookstore binary A");
    let sha_b = env.up_with("bookstore binary B, the second");
    assert_eq!(
        env.artifacts(),
        BTreeSet::from([sha_a.clone(), sha_b.clone()])
    );
    let sha_c = env.up_with("bookstore binary C, the third one");
    assert_eq!(
        env.artifacts(),
        BTreeSet::from([sha_b.clone(), sha_c]),
        "keep_releases = 2: A's artifact went"
    );
    let l = env.releases();
    let a = l
        .releases
        .iter()
        .find(|r| r.sha256.as_deref() == Some(&sha_a));
    // The emulator may keep A's launch template version; its binary is gone.
    assert!(a.is_none_or(|a| !a.artifact), "{l:?}");
    let e = releases::rollback_target(&l, a.map(|a| a.version).or(Some(1)));
    assert!(e.is_err(), "A cannot be rolled back to without its binary");
    assert!(changes(&env.plan()).is_empty(), "converged");
    let b = l
        .releases
        .iter()
        .find(|r| r.sha256.as_deref() == Some(&sha_b));
    assert!(b.is_some_and(|b| b.artifact), "{l:?}");
}

#[test]
fn keep_releases_is_validated_with_its_position() {
    let e = Emulator::start();
    let demo = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    for bad in ["0", "51"] {
        let text = demo.replace("[app]\n", &format!("[app]\nkeep_releases = {bad}\n"));
        let stack = e.stack("bad.toml", &text);
        let r = e.run(&["validate", &stack]);
        assert_eq!(r.code, common::exit::ERROR, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "`app.keep_releases` = {bad}: must be between 1 and 50"
            )),
            "{}",
            r.stderr
        );
        let line = demo.lines().position(|l| l == "[app]").unwrap() + 2;
        assert!(
            r.stderr.contains(&format!("bad.toml:{line}:")),
            "file:line:column: {}",
            r.stderr
        );
    }
}

/// `releases` and `rollback` as the command line runs them.
#[test]
fn the_releases_and_rollback_verbs() {
    let env = Env::start(5);
    let sha_a = env.up_with("bookstore binary A");
    let sha_b = env.up_with("bookstore binary B, the second");
    let doc: Value =
        serde_json::from_str(&env.ok(&["releases", &env.stack, "--json"]).stdout).unwrap();
    let rs = doc["releases"].as_array().unwrap();
    assert_eq!(rs.len(), 2, "{doc}");
    assert_eq!(rs[0]["version"], 2);
    assert_eq!(rs[0]["sha256"], sha_b.as_str());
    assert_eq!(rs[0]["rolled_out"], true);
    assert_eq!(rs[1]["version"], 1);
    assert_eq!(rs[1]["sha256"], sha_a.as_str());
    let text = env.ok(&["releases", &env.stack]).stdout;
    assert!(
        text.contains(&sha_b[..12]) && text.contains("running"),
        "{text}"
    );

    // No terminal, no --yes: asked, refused as an error, nothing done.
    let r = env.run(&["rollback", &env.stack]);
    assert_eq!(r.code, common::exit::ERROR, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "Roll group demo-app back from release 2 to release 1 (binary {}, commit -)?\n",
            &sha_a[..12]
        )
    );
    assert!(
        r.stderr.contains(
            "error: there is no terminal to confirm on: review the plan with `diff`, then pass --yes"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(env.group().0, "2");

    env.ok(&["rollback", &env.stack, "--yes"]);
    let (version, tags, _) = env.group();
    assert_eq!(version, "1", "the default goes back one release");
    assert_eq!(tag(&tags, TAG_ROLLED_BACK), Some("1 from 2"));
    let text = env.ok(&["releases", &env.stack]).stdout;
    assert!(text.contains("rolled back (1 from 2)"), "{text}");
    let r = env.run(&["rollback", &env.stack, "--to", "7", "--yes"]);
    assert_eq!(r.code, common::exit::ERROR, "{}", r.stderr);
    assert!(
        r.stderr.contains("release 7 does not exist"),
        "{}",
        r.stderr
    );
}
