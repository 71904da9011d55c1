//! The plan as JSON (`diff --json`, `up --json`, `destroy --json`) is the
//! contract CI users parse: these tests compare it, field by field, with
//! reviewed documents in tests/golden/.
//!
//! A change to the JSON fails here with the list of fields that differ.
//! When the change is meant, review it, then rewrite the documents with
//! `UPDATE_GOLDEN=1 cargo test --test plan_json` and review the diff of
//! tests/golden/ before committing it. The tests never rewrite them on their
//! own.
//!
//! What differs from run to run is replaced before the comparison (see
//! [`normalize`]); nothing else is:
//! - a physical id (`vpc-0abc...`) that is a step's `physical_id` in the
//!   run becomes `<id of LOGICAL-ID>`, so the golden still shows which
//!   resource a value names; any other (`^[a-z]+-[0-9a-f]{8,17}$`) becomes
//!   `<PREFIX-id>`;
//! - an ARN becomes `<arn>`, an IPv4 address (not a CIDR block) `<ip>`;
//! - a list made only of such placeholders is sorted (the API lists
//!   resources in no set order);
//! - the steps of a destroy plan are sorted by kind and id (they come in the
//!   order the cloud lists the resources; the deletion order is given by
//!   the dependencies, not by the order of the steps).
//!
//! The plan has no timestamps.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use bookstore_infra::cloud::{Cloud, CloudError};
use bookstore_infra::engine::plan::{destroy_plan, plan, AttrDiff};
use bookstore_infra::engine::refs::r;
use bookstore_infra::engine::{
    in_place, replace, AttrSpec, Desired, Observed, Registry, ReplacePolicy, Resolved, ResourceKind,
};
use common::Emulator;
use serde_json::{json, Value};

fn golden_path(name: &str) -> PathBuf {
    common::root()
        .join("tests/golden")
        .join(format!("{name}.json"))
}

/// Compares `got` with the golden document `name`, or rewrites it when
/// `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, got: &Value) {
    let path = golden_path(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
        eprintln!("UPDATE_GOLDEN=1: rewrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; to create it from the tool's output: UPDATE_GOLDEN=1 cargo test --test plan_json",
            path.display()
        )
    });
    let want: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let mut diffs = Vec::new();
    differences("$", &want, got, &mut diffs);
    let shown = diffs.len().min(60);
    assert!(
        diffs.is_empty(),
        "the JSON plan differs from {} in {} place(s):\n{}{}\n\
         If the change is meant, review it and rerun with UPDATE_GOLDEN=1.",
        path.display(),
        diffs.len(),
        diffs[..shown].join("\n"),
        if shown < diffs.len() { "\n..." } else { "" }
    );
}

/// The fields where `got` differs from `want`, one line each, named by
/// their JSON path (array elements with an `id` also by that id).
fn differences(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => differences(&p, wv, gv, out),
                    None => out.push(format!("{p}: missing (golden: {wv})")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: not in the golden (got: {gv})"));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            for i in 0..w.len().max(g.len()) {
                let label = |v: Option<&Value>| {
                    v.and_then(|v| v.get("id"))
                        .and_then(Value::as_str)
                        .map(|id| format!("({id})"))
                        .unwrap_or_default()
                };
                let p = format!("{path}[{i}]{}", label(w.get(i).or(g.get(i))));
                match (w.get(i), g.get(i)) {
                    (Some(wv), Some(gv)) => differences(&p, wv, gv, out),
                    (Some(wv), None) => out.push(format!("{p}: missing (golden: {wv})")),
                    (None, Some(gv)) => out.push(format!("{p}: not in the golden (got: {gv})")),
                    (None, None) => unreachable!(),
                }
            }
        }
        _ if want != got => out.push(format!("{path}: golden {want}, got {got}")),
        _ => {}
    }
}

fn is_aws_id(s: &str) -> Option<&str> {
    let (prefix, hex) = s.split_once('-')?;
    let ok = !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_lowercase())
        && (8..=17).contains(&hex.len())
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    ok.then_some(prefix)
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

/// `doc` with what differs from run to run replaced by placeholders, as
/// the module documentation describes. `ids` maps physical ids to logical
/// ids.
fn normalize(doc: &Value, ids: &BTreeMap<String, String>) -> Value {
    fn placeholder(s: &str, ids: &BTreeMap<String, String>) -> Option<String> {
        if let Some(logical) = ids.get(s) {
            Some(format!("<id of {logical}>"))
        } else if let Some(prefix) = is_aws_id(s) {
            Some(format!("<{prefix}-id>"))
        } else if s.starts_with("arn:") {
            Some("<arn>".into())
        } else if is_ipv4(s) {
            Some("<ip>".into())
        } else {
            None
        }
    }
    match doc {
        Value::String(s) => Value::String(placeholder(s, ids).unwrap_or_else(|| s.clone())),
        Value::Array(a) => {
            let all_placeholders = !a.is_empty()
                && a.iter()
                    .all(|v| v.as_str().and_then(|s| placeholder(s, ids)).is_some());
            let mut out: Vec<Value> = a.iter().map(|v| normalize(v, ids)).collect();
            if all_placeholders {
                out.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
            Value::Array(out)
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), normalize(v, ids)))
                .collect(),
        ),
        v => v.clone(),
    }
}

/// Physical id -> logical id, from the steps of a plan document.
fn ids_of(plan: &Value) -> BTreeMap<String, String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| Some((s["physical_id"].as_str()?.into(), s["id"].as_str()?.into())))
        .collect()
}

/// Every field a step may have, with its JSON type; `id`, `kind` and
/// `action` are always there.
const STEP_FIELDS: &[(&str, &str)] = &[
    ("id", "string"),
    ("kind", "string"),
    ("action", "string"),
    ("physical_id", "string"),
    ("changes", "array"),
    ("reason", "string"),
    ("needs_consent", "bool"),
    ("create_before_destroy", "bool"),
    ("pending", "bool"),
];

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The shape of a plan document: its fields and the summary's, with their
/// JSON types. Panics on a step field outside [`STEP_FIELDS`].
fn shape(plan: &Value) -> Vec<String> {
    let mut out = vec![];
    for (k, v) in plan.as_object().unwrap() {
        out.push(format!("{k}: {}", json_type(v)));
    }
    for (k, v) in plan["summary"].as_object().unwrap() {
        out.push(format!("summary.{k}: {}", json_type(v)));
    }
    for s in plan["steps"].as_array().unwrap() {
        for required in ["id", "kind", "action"] {
            assert!(s.get(required).is_some(), "a step lacks {required}: {s}");
        }
        for (k, v) in s.as_object().unwrap() {
            assert!(
                STEP_FIELDS.contains(&(k.as_str(), json_type(v))),
                "step field {k}: {} is not in the plan's format: {s}",
                json_type(v)
            );
        }
    }
    out.sort();
    out
}

// --- Every action, planned in-process with the engine's own diff --------

/// A resource kind; the flag says whether its replacements create first.
struct Fake(&'static str, ReplacePolicy, bool);

#[async_trait]
impl ResourceKind for Fake {
    fn kind(&self) -> &'static str {
        self.0
    }
    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("cidr"), in_place("name"), replace("parent")];
        A
    }
    fn replace_policy(&self) -> ReplacePolicy {
        self.1
    }
    fn create_before_destroy(&self, _: &[AttrDiff], _: &Observed) -> bool {
        self.2
    }
    async fn read_all(&self, _: &Cloud, _: &str) -> Result<Vec<Observed>, CloudError> {
        unreachable!("planned in-process")
    }
    async fn create(&self, _: &Cloud, _: &Resolved) -> Result<Observed, CloudError> {
        unreachable!("planned in-process")
    }
    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        _: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        unreachable!("planned in-process")
    }
    async fn delete(&self, _: &Cloud, _: &Observed) -> Result<(), CloudError> {
        unreachable!("planned in-process")
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Box::new(Fake("net", ReplacePolicy::Allow, false)));
    r.register(Box::new(Fake("cbd", ReplacePolicy::Allow, true)));
    r.register(Box::new(Fake(
        "db",
        ReplacePolicy::RequireConfirmation,
        false,
    )));
    r
}

/// One resource per action and flag of the plan.
fn every_action() -> (Vec<Desired>, Vec<Observed>) {
    let desired = vec![
        // no_op
        Desired::new(
            "net",
            "kept",
            json!({"cidr": "10.0.0.0/16", "name": "kept"}),
        ),
        // no_op, pending: exists but is not ready yet
        Desired::new("net", "waiting", json!({"cidr": "10.1.0.0/16"})),
        // update in place
        Desired::new("net", "renamed", json!({"name": "after"})),
        // create, with a reference known now (to `kept`)
        Desired::new(
            "net",
            "created",
            json!({"cidr": "10.2.0.0/16", "parent": r("kept")}),
        ),
        // replace, the new one created before the old one is deleted
        Desired::new("cbd", "moved", json!({"cidr": "10.3.0.0/16"})),
        // replace, the old one deleted first
        Desired::new("net", "rebuilt", json!({"cidr": "10.4.0.0/16"})),
        // replace, because it holds `rebuilt`; its reference is known after apply
        Desired::new("net", "holder", json!({"name": r("rebuilt")})),
        // replace of a data-bearing resource: needs consent
        Desired::new("db", "database", json!({"cidr": "10.5.0.0/16"})),
    ];
    let observed = vec![
        Observed::new("net", "kept", "kept-1")
            .prop("cidr", "10.0.0.0/16")
            .prop("name", "kept"),
        Observed::new("net", "waiting", "waiting-1")
            .prop("cidr", "10.1.0.0/16")
            .pending(true),
        Observed::new("net", "renamed", "renamed-1").prop("name", "before"),
        Observed::new("cbd", "moved", "moved-1").prop("cidr", "10.30.0.0/16"),
        Observed::new("net", "rebuilt", "rebuilt-1").prop("cidr", "10.40.0.0/16"),
        Observed::new("net", "holder", "holder-1").prop("name", "rebuilt-1"),
        Observed::new("db", "database", "database-1").prop("cidr", "10.50.0.0/16"),
        // delete: no longer in the stack file
        Observed::new("net", "gone", "gone-1").prop("parent", "kept-1"),
    ];
    (desired, observed)
}

/// The document `diff --json` prints: the plan, pretty-printed.
fn as_printed(p: &impl serde::Serialize) -> Value {
    serde_json::from_str(&serde_json::to_string_pretty(p).unwrap()).unwrap()
}

#[test]
fn every_action_of_a_plan_matches_the_golden_document() {
    let (desired, observed) = every_action();
    let p = plan("shop", &registry(), &desired, &observed).unwrap();
    let doc = as_printed(&p);
    check_golden("plan_every_action", &doc);

    // Each action and flag is in the document (the golden could lose one
    // only by a deliberate rewrite, which this catches).
    let step = |id: &str| common::step(&doc, id).clone();
    let actions: Vec<(&str, &str)> = [
        ("kept", "no_op"),
        ("waiting", "no_op"),
        ("renamed", "update"),
        ("created", "create"),
        ("moved", "replace"),
        ("rebuilt", "replace"),
        ("holder", "replace"),
        ("database", "replace"),
        ("gone", "delete"),
    ]
    .into();
    for (id, action) in actions {
        assert_eq!(step(id)["action"], action, "{id}");
    }
    assert_eq!(doc["format_version"], 1);
    assert_eq!(step("waiting")["pending"], true);
    assert_eq!(step("moved")["create_before_destroy"], true);
    assert_eq!(step("rebuilt").get("create_before_destroy"), None);
    assert_eq!(step("database")["needs_consent"], true);
    assert_eq!(step("holder")["changes"][0]["after"], Value::Null);

    let d = destroy_plan("shop", &registry(), &observed);
    check_golden("destroy_every_kind", &as_printed(&d));
}

// --- The tool's documents, against the emulator --------------------------

#[test]
fn the_tools_json_documents_match_the_golden_documents() {
    let e = Emulator::start();
    let text = std::fs::read_to_string(common::root().join("stacks/network.toml")).unwrap();
    let stack = e.stack("network.toml", &text);
    let json = |args: &[&str]| -> Value {
        let r = e.ok(args);
        serde_json::from_str(&r.stdout).unwrap_or_else(|err| {
            panic!(
                "`{}` printed no JSON document: {err}\n{}",
                args.join(" "),
                r.stdout
            )
        })
    };

    // From nothing: every resource is created.
    let create = json(&["diff", &stack, "--json"]);
    check_golden("cli_diff_create", &normalize(&create, &BTreeMap::new()));

    let up = json(&["up", &stack, "--json", "--yes"]);
    assert_eq!(
        up["plan"], create,
        "`up --json` prints the plan `diff --json` printed"
    );
    assert_eq!(up["applied"], true);
    let converged = json(&["diff", &stack, "--json"]);
    assert!(common::changes(&converged).is_empty(), "{converged:#}");
    let mut ids = ids_of(&converged);
    check_golden("cli_up", &normalize(&up, &ids));

    // A resource the stack file no longer has, and a new address space:
    // replacements created first and deleted first, an update, a no_op.
    let old = e.block_on(async {
        use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::ElasticIp)
            .tags(
                Tag::builder()
                    .key("bookstore-infra:stack")
                    .value("net")
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("bookstore-infra:id")
                    .value("eip-old")
                    .build(),
            )
            .build();
        e.ec2()
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tags)
            .send()
            .await
            .unwrap()
            .allocation_id()
            .unwrap()
            .to_string()
    });
    ids.insert(old, "eip-old".into());
    let moved = e.stack("moved.toml", &text.replace("10.20.0.0/16", "10.21.0.0/16"));
    let changes = json(&["diff", &moved, "--json"]);
    let actions: std::collections::BTreeSet<&str> = changes["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["delete", "no_op", "replace", "update"].into(),
        "{changes:#}"
    );
    check_golden("cli_diff_changes", &normalize(&changes, &ids));

    let mut destroy = json(&["destroy", &stack, "--json", "--yes", "--allow-delete", "db"]);
    assert_eq!(destroy["applied"], true);
    destroy["plan"]["steps"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|s| (s["kind"].to_string(), s["id"].to_string()));
    check_golden("cli_destroy", &normalize(&destroy, &ids));

    // `up` and `destroy` print the same document: the plan, whether it
    // was applied (and `up` the stack's outputs).
    assert_eq!(shape(&up["plan"]), shape(&destroy["plan"]));
    for doc in [&up, &destroy] {
        assert!(doc["applied"].is_boolean(), "{doc:#}");
        assert_eq!(doc["plan"]["format_version"], 1);
    }
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&up), ["applied", "outputs", "plan"]);
    assert_eq!(keys(&destroy), ["applied", "plan"]);
}
