//! The plan: a pure diff of desired against observed resources.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use owo_colors::OwoColorize;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::graph::{topo_order, GraphError};
use super::refs::{resolve, Resolution};
use super::{Attrs, Change, Desired, Observed, Registry, ReplacePolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
}

/// One attribute that changes. `after` is `None` when it is only known after apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrDiff {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub forces_replacement: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub kind: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttrDiff>,
    /// Why the resource is replaced or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A data-bearing resource would be replaced: refused without explicit consent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_consent: bool,
    /// A replacement whose new resource is created before the old one is
    /// deleted (what refers to it moves over in between).
    #[serde(
        rename = "create_before_destroy",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub create_first: bool,
    /// Exists, unchanged, but is not ready yet (left so by an interrupted
    /// run, or a certificate awaiting validation): `up` waits for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Logical ids this step must wait for (creates/updates) or that must go first (deletes).
    #[serde(skip)]
    pub deps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    /// Every resource of the stack, in dependency order, then the deletions.
    pub steps: Vec<Step>,
    pub summary: Summary,
    /// What a reviewer should know that no step shows (a group kept on a
    /// rolled-back release).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("resource `{0}` has kind `{1}`, which this tool does not know")]
    UnknownKind(String, String),
    #[error("logical id `{0}` is defined twice")]
    DuplicateId(String),
}

/// Diffs `desired` against `observed`.
pub fn plan(
    stack: &str,
    registry: &Registry,
    desired: &[Desired],
    observed: &[Observed],
) -> Result<Plan, PlanError> {
    let mut seen = BTreeSet::new();
    for d in desired {
        if !seen.insert(d.id.as_str()) {
            return Err(PlanError::DuplicateId(d.id.clone()));
        }
        if registry.get(d.kind).is_none() {
            return Err(PlanError::UnknownKind(d.id.clone(), d.kind.into()));
        }
    }
    let nodes: Vec<(String, Vec<String>)> =
        desired.iter().map(|d| (d.id.clone(), d.deps())).collect();
    let order = topo_order(&nodes)?;
    let by_id: BTreeMap<&str, &Desired> = desired.iter().map(|d| (d.id.as_str(), d)).collect();

    // Of the observed resources with a wanted id and kind, one is managed:
    // where an interrupted run or a copy left several, the one closest to
    // the stack file, then the one most others refer to. Anything else
    // carrying our tags is surplus and goes.
    let referenced = observed_deps(observed);
    let mut candidates: BTreeMap<&str, Vec<&Observed>> = BTreeMap::new();
    let mut surplus: Vec<&Observed> = Vec::new();
    for o in observed {
        if by_id.get(o.id.as_str()).is_some_and(|d| d.kind == o.kind) {
            candidates.entry(o.id.as_str()).or_default().push(o);
        } else {
            surplus.push(o);
        }
    }
    let mut current: BTreeMap<&str, &Observed> = BTreeMap::new();
    for (id, mut list) in candidates {
        let d = by_id[id];
        let kind = registry.get(d.kind).expect("checked above");
        list.sort_by_key(|o| {
            let differs = kind
                .attributes()
                .iter()
                .filter(|a| {
                    d.props
                        .get(a.name)
                        .and_then(|w| known_value(w, &BTreeMap::new()))
                        .is_some_and(|w| !kind.same(a.name, &w, o.props.get(a.name)))
                })
                .count();
            let users = referenced.get(&o.physical_id).map_or(0, Vec::len);
            (differs, std::cmp::Reverse(users), o.physical_id.clone())
        });
        let mut rest = list.into_iter();
        if let Some(first) = rest.next() {
            current.insert(id, first);
        }
        surplus.extend(rest);
    }
    surplus.sort_by_key(|o| observed.iter().position(|x| std::ptr::eq(x, *o)));

    // Attributes known now: those of resources that exist and are not replaced.
    let mut known: BTreeMap<String, Attrs> = BTreeMap::new();
    // Replaced resources whose old one is deleted before the new one exists.
    let mut delete_first: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::new();
    for id in &order {
        let d = by_id[id.as_str()];
        let kind = registry.get(d.kind).expect("checked above");
        let deps = d.deps();
        let Some(o) = current.get(id.as_str()) else {
            let changes = d
                .props
                .iter()
                .map(|(k, v)| AttrDiff {
                    name: k.clone(),
                    before: None,
                    after: known_value(v, &known),
                    forces_replacement: false,
                })
                .collect();
            steps.push(Step {
                id: id.clone(),
                kind: d.kind.into(),
                action: Action::Create,
                physical_id: None,
                changes,
                reason: None,
                needs_consent: false,
                create_first: false,
                pending: false,
                deps,
            });
            continue;
        };
        let mut changes = Vec::new();
        for spec in kind.attributes() {
            let Some(want) = d.props.get(spec.name) else {
                continue;
            };
            let have = o.props.get(spec.name);
            let after = known_value(want, &known);
            let differs = match &after {
                Some(v) => !kind.same(spec.name, v, have),
                None => true,
            };
            if differs {
                changes.push(AttrDiff {
                    name: spec.name.into(),
                    before: have.cloned(),
                    after,
                    forces_replacement: spec.change == Change::Replace,
                });
            }
        }
        let replace: Vec<&str> = changes
            .iter()
            .filter(|c| c.forces_replacement)
            .map(|c| c.name.as_str())
            .collect();
        let (action, reason) = if !replace.is_empty() {
            (
                Action::Replace,
                Some(format!(
                    "{} cannot change in place",
                    replace
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )
        } else if !changes.is_empty() {
            (Action::Update, None)
        } else {
            (Action::NoOp, None)
        };
        // What must be deleted before it is created again cannot be let go
        // of by what refers to it in a way the cloud enforces: that goes too.
        let held: Vec<String> = d
            .props
            .iter()
            .filter(|(name, _)| kind.reference_blocks_deletion(name))
            .flat_map(|(_, v)| super::refs::referenced_ids(v))
            .filter(|x| delete_first.contains(x))
            .collect();
        let (action, reason) = match (action, held.first()) {
            (Action::Replace, _) | (_, None) => (action, reason),
            (_, Some(x)) => (
                Action::Replace,
                Some(format!(
                    "refers to `{x}`, which is deleted before it is created again"
                )),
            ),
        };
        let create_first =
            action == Action::Replace && held.is_empty() && kind.create_before_destroy(&changes, o);
        if action == Action::Replace && !create_first {
            delete_first.insert(id.clone());
        }
        if action != Action::Replace {
            let mut attrs = o.attrs.clone();
            if action == Action::Update {
                // An update may give these new values (a new version number...).
                for a in kind.attrs_changed_by_update() {
                    attrs.remove(*a);
                }
            }
            known.insert(id.clone(), attrs);
        }
        let needs_consent = action == Action::Replace
            && kind.replace_policy() == ReplacePolicy::RequireConfirmation;
        // What an update means beyond its attributes (the site down for a boot).
        let reason = match (action, reason) {
            (Action::Update, None) => kind.update_note(&changes),
            (_, r) => r,
        };
        steps.push(Step {
            id: id.clone(),
            kind: d.kind.into(),
            action,
            physical_id: Some(o.physical_id.clone()),
            changes,
            reason,
            needs_consent,
            create_first,
            pending: action == Action::NoOp && o.pending,
            deps,
        });
    }

    let surplus_deps = observed_deps(&surplus.iter().map(|o| (*o).clone()).collect::<Vec<_>>());
    for o in &surplus {
        let reason = if by_id.contains_key(o.id.as_str()) {
            "a second resource with this id (left by an interrupted run or a copy)"
        } else {
            "no longer in the stack file"
        };
        steps.push(Step {
            id: o.id.clone(),
            kind: o.kind.into(),
            action: Action::Delete,
            physical_id: Some(o.physical_id.clone()),
            changes: Vec::new(),
            reason: Some(reason.into()),
            needs_consent: registry
                .get(o.kind)
                .is_some_and(|k| k.replace_policy() == ReplacePolicy::RequireConfirmation),
            create_first: false,
            pending: false,
            deps: surplus_deps
                .get(&o.physical_id)
                .cloned()
                .unwrap_or_default(),
        });
    }

    let summary = summarize(&steps);
    Ok(Plan {
        format_version: 1,
        stack: stack.into(),
        steps,
        summary,
        notes: Vec::new(),
    })
}

/// Plans the deletion of everything observed, dependents first.
pub fn destroy_plan(stack: &str, registry: &Registry, observed: &[Observed]) -> Plan {
    let deps = observed_deps(observed);
    let steps: Vec<Step> = observed
        .iter()
        .map(|o| Step {
            id: o.id.clone(),
            kind: o.kind.into(),
            action: Action::Delete,
            physical_id: Some(o.physical_id.clone()),
            changes: Vec::new(),
            reason: None,
            needs_consent: registry
                .get(o.kind)
                .is_some_and(|k| k.replace_policy() == ReplacePolicy::RequireConfirmation),
            create_first: false,
            pending: false,
            deps: deps.get(&o.physical_id).cloned().unwrap_or_default(),
        })
        .collect();
    let summary = summarize(&steps);
    Plan {
        format_version: 1,
        stack: stack.into(),
        steps,
        summary,
        notes: Vec::new(),
    }
}

/// For each observed resource (by physical id), the logical ids of observed
/// resources that refer to it and so must be deleted before it.
pub fn observed_deps(observed: &[Observed]) -> BTreeMap<String, Vec<String>> {
    users_of(observed, |_, _| true)
        .into_iter()
        .map(|(pid, users)| {
            let mut ids: Vec<String> = Vec::new();
            for u in users {
                if !ids.contains(&u.id) {
                    ids.push(u.id.clone());
                }
            }
            (pid, ids)
        })
        .collect()
}

/// For each observed resource (by physical id), the observed resources that
/// refer to it through an attribute `counts` accepts: one of the attribute's
/// values names the other's physical id or one of its attributes.
pub fn users_of(
    observed: &[Observed],
    counts: impl Fn(&Observed, &str) -> bool,
) -> BTreeMap<String, Vec<&Observed>> {
    let mut out: BTreeMap<String, Vec<&Observed>> = BTreeMap::new();
    for target in observed {
        let names: BTreeSet<&str> = target
            .attrs
            .values()
            .map(String::as_str)
            .chain(std::iter::once(target.physical_id.as_str()))
            .filter(|s| !s.is_empty())
            .collect();
        let mut users = Vec::new();
        for o in observed {
            if std::ptr::eq(o, target) {
                continue;
            }
            // A resource's own identifiers in its props (its name...) are not
            // references, even where another resource shares them.
            let own: BTreeSet<&str> = o
                .attrs
                .values()
                .map(String::as_str)
                .chain(std::iter::once(o.physical_id.as_str()))
                .collect();
            let names: BTreeSet<&str> = names.difference(&own).copied().collect();
            if o.props
                .iter()
                .any(|(attr, v)| counts(o, attr) && mentions(v, &names))
            {
                users.push(o);
            }
        }
        out.insert(target.physical_id.clone(), users);
    }
    out
}

fn mentions(v: &Value, names: &BTreeSet<&str>) -> bool {
    match v {
        Value::String(s) => names.contains(s.as_str()),
        Value::Array(a) => a.iter().any(|x| mentions(x, names)),
        Value::Object(o) => o.values().any(|x| mentions(x, names)),
        _ => false,
    }
}

fn known_value(v: &Value, known: &BTreeMap<String, Attrs>) -> Option<Value> {
    match resolve(v, &|id| known.get(id)) {
        Resolution::Known(v) => Some(v),
        Resolution::Unknown => None,
    }
}

fn summarize(steps: &[Step]) -> Summary {
    let mut s = Summary {
        add: 0,
        change: 0,
        destroy: 0,
    };
    for step in steps {
        match step.action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Replace => {
                s.add += 1;
                s.destroy += 1
            }
            Action::Delete => s.destroy += 1,
            Action::NoOp => {}
        }
    }
    s
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::NoOp)
    }

    /// Steps that would replace or delete a data-bearing resource without consent.
    pub fn unconsented<'a>(&'a self, allowed: &'a [String]) -> impl Iterator<Item = &'a Step> {
        self.steps
            .iter()
            .filter(move |s| s.needs_consent && !allowed.contains(&s.id))
    }

    pub fn summary_line(&self) -> String {
        format!(
            "Plan: {} to add, {} to change, {} to destroy.",
            self.summary.add, self.summary.change, self.summary.destroy
        )
    }

    /// The plan as text, coloured when `color` is set.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        if !self.has_changes() {
            let _ = writeln!(
                out,
                "No changes. Stack `{}` matches its file ({} resources).",
                self.stack,
                self.steps.len()
            );
            for n in &self.notes {
                let _ = writeln!(out, "Note: {n}");
            }
            return out;
        }
        for s in self
            .steps
            .iter()
            .filter(|s| s.action != Action::NoOp || s.pending)
        {
            let head = format!(
                "{:>3} {} ({}){}",
                s.action.symbol(),
                s.id,
                s.kind,
                s.physical_id
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default()
            );
            let head = if color {
                match s.action {
                    Action::Create => head.green().to_string(),
                    Action::Update => head.yellow().to_string(),
                    Action::Replace | Action::Delete => head.red().to_string(),
                    Action::NoOp => head,
                }
            } else {
                head
            };
            let _ = writeln!(out, "{head}");
            if let Some(r) = &s.reason {
                let _ = writeln!(out, "      # {r}");
            }
            if s.pending {
                let _ = writeln!(
                    out,
                    "      # exists but is not ready yet: `up` waits for it before what needs it"
                );
            }
            if s.action == Action::Replace {
                let order = if s.create_first {
                    "the new one is created first, then the old one deleted"
                } else {
                    "the old one is deleted first, then the new one created"
                };
                let _ = writeln!(out, "      # {order}");
            }
            if s.needs_consent {
                let _ = writeln!(
                    out,
                    "      # holds data: refused unless `--allow-replace {}` is given",
                    s.id
                );
            }
            for c in &s.changes {
                let after = c
                    .after
                    .as_ref()
                    .map(short)
                    .unwrap_or_else(|| "(known after apply)".into());
                let line = match (&c.before, s.action) {
                    (_, Action::Create) | (None, _) => format!("      {}: {after}", c.name),
                    (Some(b), _) => format!("      {}: {} -> {after}", c.name, short(b)),
                };
                let line = if c.forces_replacement {
                    format!("{line}  (forces replacement)")
                } else {
                    line
                };
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = writeln!(out);
        for n in &self.notes {
            let _ = writeln!(out, "Note: {n}");
        }
        let _ = writeln!(out, "{}", self.summary_line());
        out
    }
}

fn short(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Cloud, CloudError};
    use crate::engine::refs::{r, r_attr};
    use crate::engine::{in_place, replace, AttrSpec, Resolved, ResourceKind};
    use async_trait::async_trait;
    use serde_json::json;

    #[test]
    fn shared_names_are_not_references() {
        // A database and its subnet group may share a name; only real
        // references order deletions.
        let group = Observed::new("k:group", "db-subnets", "shop-db").prop("name", "shop-db");
        let db = Observed::new("k:db", "db", "shop-db-1")
            .prop("identifier", "shop-db-1")
            .prop("subnet_group", "shop-db");
        let deps = observed_deps(&[group, db]);
        assert_eq!(deps["shop-db"], vec!["db".to_string()]);
        assert!(deps["shop-db-1"].is_empty());
    }

    #[test]
    fn references_inside_lists_and_maps_order_deletions() {
        let sg = Observed::new("k:sg", "sg", "sg-1").prop("name", "web");
        let listed = Observed::new("k:lb", "lb", "lb-1").prop("groups", json!(["sg-0", "sg-1"]));
        let nested =
            Observed::new("k:lt", "lt", "lt-1").prop("data", json!({"net": {"group": "sg-1"}}));
        let deps = observed_deps(&[sg, listed, nested]);
        let mut users = deps["sg-1"].clone();
        users.sort();
        assert_eq!(users, ["lb", "lt"]);
    }

    /// A kind; the flag says whether its replacements create first, the
    /// list which attributes its updates give new values.
    struct Fake(&'static str, ReplacePolicy, bool, &'static [&'static str]);
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
        fn attrs_changed_by_update(&self) -> &'static [&'static str] {
            self.3
        }
        async fn read_all(&self, _: &Cloud, _: &str) -> Result<Vec<Observed>, CloudError> {
            unreachable!()
        }
        async fn create(&self, _: &Cloud, _: &Resolved) -> Result<Observed, CloudError> {
            unreachable!()
        }
        async fn update(
            &self,
            _: &Cloud,
            _: &Resolved,
            _: &Observed,
            _: &[String],
        ) -> Result<Observed, CloudError> {
            unreachable!()
        }
        async fn delete(&self, _: &Cloud, _: &Observed) -> Result<(), CloudError> {
            unreachable!()
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register(Box::new(Fake("net", ReplacePolicy::Allow, false, &[])));
        r.register(Box::new(Fake(
            "db",
            ReplacePolicy::RequireConfirmation,
            false,
            &[],
        )));
        r.register(Box::new(Fake("cbd", ReplacePolicy::Allow, true, &[])));
        r.register(Box::new(Fake(
            "tmpl",
            ReplacePolicy::Allow,
            false,
            &["version"],
        )));
        r
    }

    fn desired() -> Vec<Desired> {
        vec![
            Desired::new("net", "child", json!({"parent": r("parent"), "name": "c"})),
            Desired::new("net", "parent", json!({"cidr": "10.0.0.0/16", "name": "p"})),
        ]
    }

    fn observed_all() -> Vec<Observed> {
        vec![
            Observed::new("net", "parent", "p-1")
                .prop("cidr", "10.0.0.0/16")
                .prop("name", "p"),
            Observed::new("net", "child", "c-1")
                .prop("parent", "p-1")
                .prop("name", "c"),
        ]
    }

    #[test]
    fn empty_cloud_creates_in_dependency_order() {
        let p = plan("s", &registry(), &desired(), &[]).unwrap();
        let ids: Vec<_> = p.steps.iter().map(|s| (s.id.as_str(), s.action)).collect();
        assert_eq!(
            ids,
            vec![("parent", Action::Create), ("child", Action::Create)]
        );
        assert_eq!(
            p.summary_line(),
            "Plan: 2 to add, 0 to change, 0 to destroy."
        );
        // The child's parent id is unknown until the parent exists.
        let parent = p.steps[1]
            .changes
            .iter()
            .find(|c| c.name == "parent")
            .unwrap();
        assert_eq!(parent.after, None);
    }

    #[test]
    fn matching_cloud_is_no_change() {
        let p = plan("s", &registry(), &desired(), &observed_all()).unwrap();
        assert!(!p.has_changes());
        assert!(p.render(false).starts_with("No changes."));
        // Ready, and nothing to wait for.
        assert!(p.steps.iter().all(|s| !s.pending), "{:?}", p.steps);
    }

    #[test]
    fn deleting_data_needs_consent_and_only_data() {
        let o = vec![
            Observed::new("db", "db", "db-1").prop("cidr", "a"),
            Observed::new("net", "parent", "p-1").prop("cidr", "a"),
        ];
        let consent = |p: &Plan| -> Vec<(String, bool)> {
            p.steps
                .iter()
                .map(|s| (s.id.clone(), s.needs_consent))
                .collect()
        };
        // Removed from the stack file...
        let p = plan("s", &registry(), &[], &o).unwrap();
        let mut got = consent(&p);
        got.sort();
        assert_eq!(got, [("db".into(), true), ("parent".into(), false)]);
        assert_eq!(
            p.summary_line(),
            "Plan: 0 to add, 0 to change, 2 to destroy."
        );
        // ... or destroyed.
        let d = destroy_plan("s", &registry(), &o);
        assert_eq!(
            d.summary_line(),
            "Plan: 0 to add, 0 to change, 2 to destroy."
        );
        let mut got = consent(&d);
        got.sort();
        assert_eq!(got, [("db".into(), true), ("parent".into(), false)]);
    }

    #[test]
    fn in_place_attribute_is_an_update() {
        let mut d = desired();
        d[0].props.insert("name".into(), json!("renamed"));
        let p = plan("s", &registry(), &d, &observed_all()).unwrap();
        let child = p.steps.iter().find(|s| s.id == "child").unwrap();
        assert_eq!(child.action, Action::Update);
        assert_eq!(
            child.changes,
            vec![AttrDiff {
                name: "name".into(),
                before: Some(json!("c")),
                after: Some(json!("renamed")),
                forces_replacement: false
            }]
        );
        assert_eq!(
            p.summary_line(),
            "Plan: 0 to add, 1 to change, 0 to destroy."
        );
        assert!(p.render(false).contains("~ child (net) c-1"));
        assert!(p.render(false).contains("name: \"c\" -> \"renamed\""));
    }

    #[test]
    fn replacement_cascades_to_dependents() {
        let mut d = desired();
        d[1].props.insert("cidr".into(), json!("10.1.0.0/16"));
        let p = plan("s", &registry(), &d, &observed_all()).unwrap();
        let act: BTreeMap<_, _> = p.steps.iter().map(|s| (s.id.as_str(), s.action)).collect();
        assert_eq!(act["parent"], Action::Replace);
        // The child's parent reference becomes unknown, and it forces replacement.
        assert_eq!(act["child"], Action::Replace);
        assert_eq!(
            p.summary_line(),
            "Plan: 2 to add, 0 to change, 2 to destroy."
        );
        assert!(p.render(false).contains("-/+ parent"));
        assert!(p.render(false).contains("(forces replacement)"));
    }

    #[test]
    fn removed_and_duplicate_resources_are_deleted_dependents_first() {
        let mut obs = observed_all();
        obs.push(Observed::new("net", "parent", "p-2").prop("cidr", "10.0.0.0/16"));
        obs.push(Observed::new("net", "old", "o-1").prop("parent", "p-2"));
        let p = plan("s", &registry(), &desired(), &obs).unwrap();
        let dels: Vec<_> = p
            .steps
            .iter()
            .filter(|s| s.action == Action::Delete)
            .map(|s| (s.physical_id.clone().unwrap(), s.deps.clone()))
            .collect();
        assert_eq!(
            dels,
            vec![
                ("p-2".to_string(), vec!["old".to_string()]),
                ("o-1".to_string(), vec![])
            ]
        );
    }

    /// A parent of `kind` whose cidr changes, and a child that names it
    /// through an attribute it can change in place.
    fn replaced_parent(kind: &'static str) -> Plan {
        let d = vec![
            Desired::new("net", "child", json!({"name": r("parent")})),
            Desired::new(kind, "parent", json!({"cidr": "10.1.0.0/16"})),
        ];
        let o = vec![
            Observed::new(kind, "parent", "p-1").prop("cidr", "10.0.0.0/16"),
            Observed::new("net", "child", "c-1").prop("name", "p-1"),
        ];
        plan("s", &registry(), &d, &o).unwrap()
    }

    #[test]
    fn what_holds_a_resource_deleted_first_is_replaced_with_it() {
        let p = replaced_parent("net");
        let step = |id: &str| p.steps.iter().find(|s| s.id == id).unwrap();
        assert_eq!(step("parent").action, Action::Replace);
        assert!(!step("parent").create_first);
        // The child could change in place, but it would keep the old parent
        // from being deleted.
        assert_eq!(step("child").action, Action::Replace);
        assert_eq!(
            step("child").reason.as_deref(),
            Some("refers to `parent`, which is deleted before it is created again")
        );
        assert!(p
            .render(false)
            .contains("the old one is deleted first, then the new one created"));
    }

    #[test]
    fn a_replacement_created_first_lets_what_refers_to_it_move_over() {
        let p = replaced_parent("cbd");
        let step = |id: &str| p.steps.iter().find(|s| s.id == id).unwrap();
        assert_eq!(step("parent").action, Action::Replace);
        assert!(step("parent").create_first);
        assert_eq!(step("child").action, Action::Update);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["steps"][0]["create_before_destroy"], true);
        assert!(p
            .render(false)
            .contains("the new one is created first, then the old one deleted"));
    }

    #[test]
    fn of_duplicates_the_one_matching_the_file_is_kept() {
        // An interrupted run left two parents; the first one listed differs
        // from the file, the second matches it and is the one kept.
        let mut obs = vec![Observed::new("net", "parent", "p-0").prop("cidr", "10.9.0.0/16")];
        obs.extend(observed_all());
        let p = plan("s", &registry(), &desired(), &obs).unwrap();
        let parent = p
            .steps
            .iter()
            .find(|s| s.id == "parent" && s.action != Action::Delete)
            .unwrap();
        assert_eq!(parent.action, Action::NoOp);
        assert_eq!(parent.physical_id.as_deref(), Some("p-1"));
        let deleted: Vec<_> = p
            .steps
            .iter()
            .filter(|s| s.action == Action::Delete)
            .map(|s| s.physical_id.as_deref().unwrap())
            .collect();
        assert_eq!(deleted, ["p-0"]);
    }

    #[test]
    fn an_unready_resource_shows_that_up_waits_for_it() {
        let mut obs = observed_all();
        obs[0] = obs[0].clone().pending(true);
        let mut d = desired();
        d[0].props.insert("name".into(), json!("renamed"));
        let p = plan("s", &registry(), &d, &obs).unwrap();
        let parent = p.steps.iter().find(|s| s.id == "parent").unwrap();
        assert_eq!(parent.action, Action::NoOp);
        assert!(parent.pending);
        assert!(p.render(false).contains("not ready yet: `up` waits for it"));
        assert_eq!(
            serde_json::to_value(&p).unwrap()["steps"][0]["pending"],
            true
        );
    }

    #[test]
    fn replacing_data_needs_consent() {
        let d = vec![Desired::new("db", "db", json!({"cidr": "b"}))];
        let o = vec![Observed::new("db", "db", "db-1").prop("cidr", "a")];
        let p = plan("s", &registry(), &d, &o).unwrap();
        assert_eq!(
            p.summary_line(),
            "Plan: 1 to add, 0 to change, 1 to destroy."
        );
        assert_eq!(p.unconsented(&[]).count(), 1);
        assert_eq!(p.unconsented(&["db".to_string()]).count(), 0);
        // Changed in place, or left as it is, the data stays: no consent.
        for name in ["renamed", "same"] {
            let d = vec![Desired::new("db", "db", json!({"cidr": "a", "name": name}))];
            let o = vec![Observed::new("db", "db", "db-1")
                .prop("cidr", "a")
                .prop("name", "same")];
            let p = plan("s", &registry(), &d, &o).unwrap();
            assert_ne!(p.steps[0].action, Action::Replace);
            assert!(!p.steps[0].needs_consent, "{name}");
            assert_eq!(p.unconsented(&[]).count(), 0);
        }
    }

    #[test]
    fn what_an_update_gives_new_values_is_unknown_to_dependents_until_made() {
        // A template whose updates give it a new version, and what runs on
        // that version.
        let d = |name: &str| {
            vec![
                Desired::new("tmpl", "lt", json!({"name": name})),
                Desired::new("net", "group", json!({"name": r_attr("lt", "version")})),
            ]
        };
        let o = vec![
            Observed::new("tmpl", "lt", "lt-1")
                .prop("name", "a")
                .attr("version", "1"),
            Observed::new("net", "group", "g-1").prop("name", "1"),
        ];
        // Unchanged: the version is known, and the group is as wanted.
        let p = plan("s", &registry(), &d("a"), &o).unwrap();
        assert!(!p.has_changes(), "{}", p.render(false));
        // Updated: the new version is known only once the update is made.
        let p = plan("s", &registry(), &d("b"), &o).unwrap();
        let group = p.steps.iter().find(|s| s.id == "group").unwrap();
        assert_eq!(group.action, Action::Update, "{}", p.render(false));
        assert_eq!(group.changes[0].after, None);
    }

    #[test]
    fn json_plan_is_machine_readable() {
        let p = plan("s", &registry(), &desired(), &[]).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["summary"]["add"], 2);
        assert_eq!(v["steps"][0]["action"], "create");
    }
}
