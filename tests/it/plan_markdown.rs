//! The plan as markdown (`diff --format markdown`), the text reviewers read
//! in a pull request: these tests render the production stack's plans and
//! compare them, line by line, with reviewed documents in tests/golden/.
//!
//! A change to the markdown fails here with a diff of the lines. When the
//! change is meant, review it, then rewrite the documents with
//! `UPDATE_GOLDEN=1 cargo test --test plan_markdown` and review the diff of
//! tests/golden/ before committing it. The tests never rewrite them on their
//! own.
//!
//! The plans are built in-process from stacks/production.toml with fixed
//! facts (zones, account, image, binary digest) and, for a stack that
//! exists, resources observed as the stack file describes them with
//! physical ids derived from their logical ids: nothing varies between
//! runs, so nothing is normalised.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bookstore_infra::engine::markdown;
use bookstore_infra::engine::plan::{plan, Action, Plan};
use bookstore_infra::engine::refs::{as_ref, resolve, Resolution};
use bookstore_infra::engine::{Attrs, Desired, Observed, Registry};
use bookstore_infra::resources::registry;
use bookstore_infra::stack::{self, Stack};
use bookstore_infra::topology::{desired, AppFacts, Facts};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// No line of the markdown is longer than this (a table row with a long
/// value would be; long values are digested).
const MAX_LINE: usize = 240;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn production_path() -> PathBuf {
    root().join("stacks/production.toml")
}

/// The production stack file, with each `(from, to)` edit applied once.
fn production(edits: &[(&str, &str)]) -> Stack {
    let path = production_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` is not in {} exactly once",
            path.display()
        );
        text = text.replacen(from, to, 1);
    }
    stack::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

/// What `diff` looks up in the account, fixed.
fn facts() -> Facts {
    Facts {
        zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        app: Some(AppFacts {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            ami: "ami-0123456789abcdef0".into(),
            root_device: "/dev/xvda".into(),
            root_volume_gib: 8,
            binary: Path::new("target/x86_64-unknown-linux-gnu/release/bookstore").into(),
            sha256: hex(b"bookstore binary"),
            commit: None,
            kept: Vec::new(),
            image: None,
            kept_images: Vec::new(),
            pinned: None,
            hosted_zone_id: Some("Z0123456789EXAMPLE".into()),
        }),
    }
}

fn hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Every `(logical id, attribute)` a property value refers to.
fn referenced(v: &Value, out: &mut BTreeSet<(String, String)>) {
    if let Some((id, attr)) = as_ref(v) {
        out.insert((id.to_string(), attr.to_string()));
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| referenced(x, out)),
        Value::Object(o) => o.values().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

/// The stack as it exists once `up` has created `desired`: each resource
/// with a physical id derived from its logical id, every attribute another
/// resource refers to, and the properties of the file with references
/// resolved.
fn existing(desired: &[Desired]) -> Vec<Observed> {
    let mut wanted = BTreeSet::new();
    for d in desired {
        referenced(&Value::Object(d.props.clone()), &mut wanted);
    }
    let physical = |d: &Desired| {
        let prefix = d.kind.rsplit(':').next().unwrap();
        format!("{prefix}-{}", &hex(d.id.as_bytes())[..17])
    };
    let mut attrs: BTreeMap<String, Attrs> = BTreeMap::new();
    for d in desired {
        let pid = physical(d);
        let mut a = Attrs::new();
        a.insert("id".into(), pid.clone());
        for (_, attr) in wanted.iter().filter(|(id, _)| *id == d.id) {
            let v = match attr.as_str() {
                "id" => continue,
                "latest_version" => "1".to_string(),
                "arn" | "secret_arn" => {
                    let service = d.kind.split(':').next().unwrap();
                    format!("arn:aws:{service}:us-east-1:123456789012:{attr}/{pid}")
                }
                _ => format!("{attr}-of-{pid}"),
            };
            a.insert(attr.clone(), v);
        }
        attrs.insert(d.id.clone(), a);
    }
    desired
        .iter()
        .map(|d| {
            let mut o = Observed::new(d.kind, d.id.clone(), physical(d));
            o.attrs = attrs[&d.id].clone();
            for (k, v) in &d.props {
                match resolve(v, &|id| attrs.get(id)) {
                    Resolution::Known(v) => o.props.insert(k.clone(), v),
                    Resolution::Unknown => panic!("{}.{k} refers to an unknown attribute", d.id),
                };
            }
            o
        })
        .collect()
}

fn plan_of(stack: &Stack, registry: &Registry, observed: &[Observed]) -> Plan {
    let d = desired(stack, &facts());
    plan(&stack.name, registry, &d, observed).unwrap()
}

/// Compares `got` with the golden document `name`.md, or rewrites it when
/// `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, got: &str) {
    let path = root().join("tests/golden").join(format!("{name}.md"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        eprintln!("UPDATE_GOLDEN=1: rewrote {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; to create it from the tool's output: UPDATE_GOLDEN=1 cargo test --test plan_markdown",
            path.display()
        )
    });
    if want != got {
        panic!(
            "the markdown plan differs from {} (- golden, + got):\n{}\n\
             If the change is meant, review it and rerun with UPDATE_GOLDEN=1.",
            path.display(),
            line_diff(&want, got)
        );
    }
}

/// The lines that differ, with their line numbers in the golden (`-`) and
/// in what was rendered (`+`), at most 80.
fn line_diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    // Longest common subsequence, from the end.
    let mut lcs = vec![vec![0usize; g.len() + 1]; w.len() + 1];
    for i in (0..w.len()).rev() {
        for j in (0..g.len()).rev() {
            lcs[i][j] = if w[i] == g[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < w.len() || j < g.len() {
        if i < w.len() && j < g.len() && w[i] == g[j] {
            i += 1;
            j += 1;
        } else if i < w.len() && (j == g.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{:>4}: {}", i + 1, w[i]));
            i += 1;
        } else {
            out.push(format!("+{:>4}: {}", j + 1, g[j]));
            j += 1;
        }
    }
    if want.ends_with('\n') != got.ends_with('\n') {
        out.push("(the final newline differs)".into());
    }
    let more = out.len().saturating_sub(80);
    out.truncate(80);
    if more > 0 {
        out.push(format!("... and {more} more lines"));
    }
    out.join("\n")
}

/// What every rendered plan must hold, whatever the stack.
fn check_layout(p: &Plan, md: &str) {
    let first_line = |pat: &str| md.lines().position(|l| l.contains(pat));
    let summary = format!(
        "**Plan for `{}`:** {} to add, {} to change, {} to destroy",
        p.stack, p.summary.add, p.summary.change, p.summary.destroy
    );
    assert!(md.contains(&summary), "no `{summary}` in:\n{md}");
    assert_eq!(
        markdown::title(p),
        format!(
            "{}: {} to add, {} to change, {} to destroy",
            p.stack, p.summary.add, p.summary.change, p.summary.destroy
        )
    );
    // Every resource that changes is named; unchanged ones are only counted.
    for s in &p.steps {
        let named =
            md.contains(&format!("<b>{}</b>", s.id)) || md.contains(&format!("**`{}`**", s.id));
        assert_eq!(
            named,
            s.action != Action::NoOp,
            "{} ({:?}) named: {named}",
            s.id,
            s.action
        );
    }
    let unchanged = p.steps.iter().filter(|s| s.action == Action::NoOp).count();
    if unchanged > 0 {
        assert!(md.contains(&format!("_{unchanged} resource")), "{md}");
    }
    // What goes away comes before anything else.
    if let Some(gone) = first_line("### Replaced or destroyed") {
        for later in ["### Updated in place", "### Created"] {
            assert!(first_line(later).is_none_or(|l| l > gone), "{later}");
        }
    }
    // Folded blocks are balanced, and each summary is followed by a blank
    // line so that the markdown inside renders.
    let lines: Vec<&str> = md.lines().collect();
    let opens = lines.iter().filter(|l| l.starts_with("<details>")).count();
    let closes = lines.iter().filter(|l| **l == "</details>").count();
    assert_eq!(opens, closes);
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("<details>") {
            assert!(l.ends_with("</summary>"), "{l}");
            assert_eq!(lines.get(i + 1), Some(&""), "line {}", i + 2);
        }
        assert!(
            l.len() <= MAX_LINE,
            "line {} is {} long: {l}",
            i + 1,
            l.len()
        );
    }
    // The boot script is never printed.
    assert!(!md.contains("db_secret_arn"), "{md}");
}

#[test]
fn production_from_nothing_matches_the_golden_markdown() {
    let stack = production(&[]);
    let p = plan_of(&stack, &registry(), &[]);
    assert!(p.steps.iter().all(|s| s.action == Action::Create));
    assert_eq!(p.steps.len(), desired(&stack, &facts()).len());
    let md = markdown::render(&p, &[]);
    check_layout(&p, &md);
    assert!(!md.contains("### Replaced or destroyed"));
    assert!(md.contains(&format!("### Created ({})", p.steps.len())));
    // The policy is long: sized and digested, not printed.
    assert!(!md.contains("ReadDatabaseSecret"), "{md}");
    check_golden("plan_production_create", &md);
}

#[test]
fn an_instance_type_change_matches_the_golden_markdown() {
    let registry = registry();
    let before = production(&[]);
    let observed = existing(&desired(&before, &facts()));
    // The observed stack is the stack file: nothing to do.
    let same = plan_of(&before, &registry, &observed);
    assert!(!same.has_changes(), "{}", same.render(false));

    let after = production(&[(
        "instance_type = \"t3.small\"",
        "instance_type = \"t3.medium\"",
    )]);
    let p = plan_of(&after, &registry, &observed);
    let changed: Vec<(&str, Action, Vec<&str>)> = p
        .steps
        .iter()
        .filter(|s| s.action != Action::NoOp)
        .map(|s| {
            let names = s.changes.iter().map(|c| c.name.as_str()).collect();
            (s.id.as_str(), s.action, names)
        })
        .collect();
    // A new template version, and the group moves to it.
    assert_eq!(
        changed,
        [
            ("launch-template", Action::Update, vec!["instance_type"]),
            ("asg", Action::Update, vec!["launch_template_version"]),
        ]
    );
    let md = markdown::render(&p, &[]);
    check_layout(&p, &md);
    assert!(
        md.contains("| `instance_type` | `t3.small` | `t3.medium` |"),
        "{md}"
    );
    assert!(
        md.contains("| `launch_template_version` | `1` | _known after apply_ |"),
        "{md}"
    );
    check_golden("plan_instance_type_change", &md);
}

/// A section the caller adds after the plan.
const COST: &str =
    "### Estimated cost\n\n| Resource | Monthly |\n|---|---|\n| `nat-a` | $32.85 |\n";

#[test]
fn replacements_deletions_and_waits_come_first_and_say_why() {
    let registry = registry();
    let mut observed = existing(&desired(&production(&[]), &facts()));
    // Left by an older stack file: a database (holds data) and an address.
    let old: Vec<Observed> = existing(&[
        Desired::new(
            "rds:db-instance",
            "db-old",
            serde_json::json!({"identifier": "bookstore-prod-db-old"}),
        ),
        Desired::new("ec2:eip", "eip-old", serde_json::json!({})),
    ]);
    observed.extend(old);
    // A certificate still awaiting validation.
    for o in observed.iter_mut().filter(|o| o.id == "cert") {
        o.pending = true;
    }
    // A new port: the target group (its name holds the port) is replaced,
    // what refers to the port is updated.
    let stack = production(&[("port = 8080", "port = 9090")]);
    let p = plan_of(&stack, &registry, &observed);
    let action = |id: &str| p.steps.iter().find(|s| s.id == id).unwrap().action;
    assert_eq!(action("tg"), Action::Replace);
    assert_eq!(action("db-old"), Action::Delete);
    assert_eq!(action("eip-old"), Action::Delete);
    assert_eq!(action("sg-app"), Action::Update);
    let md = markdown::render(&p, &[COST.to_string()]);
    check_layout(&p, &md);
    let tg = p.steps.iter().find(|s| s.id == "tg").unwrap();
    assert!(
        md.contains(&format!(
            "| `-/+` | **`tg`** `elbv2:target-group`<br>`{}` | `name`, `port` cannot change in place |",
            tg.physical_id.as_deref().unwrap()
        )),
        "{md}"
    );
    assert!(md.contains("> [!CAUTION]"), "{md}");
    assert!(md.contains("needs `--allow-replace db-old`"), "{md}");
    assert!(md.contains("- `cert` `acm:certificate`: exists but is not ready yet"));
    assert!(md.ends_with(&format!("\n{COST}")), "{md}");
    check_golden("plan_port_change", &md);
}
