//! Saved plans: `diff --out PLAN` writes one, `up --plan PLAN` applies it
//! only if planning again gives the same plan.
//!
//! The tool keeps no state: a plan is computed from the stack file, the app
//! binary and what the cloud holds. A saved plan records all three: the
//! tool's version, the sha256 of the stack file and of the binary, the
//! account and region, and for every step the physical id and the observed
//! values it was computed from. `up --plan` plans again under the stack's
//! lock and compares: any difference (the file, the binary, the cloud
//! changed in between, or another tool version) and nothing is applied.
//!
//! A plan file holds no secret: the database's password is never read
//! (RDS keeps it in Secrets Manager), user data carries none, and the
//! observed values are the same ones `diff --json` prints.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::engine::plan::{Action, Plan};
use crate::engine::Observed;

/// What the file says it is, so that another JSON document is refused.
pub const FORMAT: &str = "bookstore-infra-plan";
/// Bumped when the file's shape changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum PlanFileError {
    #[error("cannot read the plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the plan {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a bookstore-infra plan: {why}")]
    NotAPlan { path: String, why: String },
}

/// The plan as reviewed, and what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: u32,
    /// The tool that computed it: another version may plan differently.
    pub tool_version: String,
    pub stack: String,
    /// sha256 of the stack file's bytes.
    pub stack_sha256: String,
    /// sha256 of the app binary the stack ships, when it ships one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_sha256: Option<String>,
    pub account: String,
    pub region: String,
    /// Seconds since the Unix epoch; informative only.
    pub created: u64,
    pub plan: Plan,
    /// The observed values each step was computed from, by physical id.
    #[serde(default)]
    pub observed: BTreeMap<String, Map<String, Value>>,
}

/// sha256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> Result<String, PlanFileError> {
    let bytes = std::fs::read(path).map_err(|source| PlanFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

pub struct Fingerprint {
    pub stack: String,
    pub stack_sha256: String,
    pub binary_sha256: Option<String>,
    pub account: String,
    pub region: String,
}

impl SavedPlan {
    pub fn new(fp: Fingerprint, plan: &Plan, observed: &[Observed]) -> SavedPlan {
        let used: std::collections::BTreeSet<&str> = plan
            .steps
            .iter()
            .filter_map(|s| s.physical_id.as_deref())
            .collect();
        let observed = observed
            .iter()
            .filter(|o| used.contains(o.physical_id.as_str()))
            .map(|o| (o.physical_id.clone(), o.props.clone()))
            .collect();
        SavedPlan {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            stack: fp.stack,
            stack_sha256: fp.stack_sha256,
            binary_sha256: fp.binary_sha256,
            account: fp.account,
            region: fp.region,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            plan: plan.clone(),
            observed,
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        let text = serde_json::to_string_pretty(self).expect("a plan serialises") + "\n";
        // Written beside and renamed, so an interrupted write leaves no half plan.
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| PlanFileError::Write {
                path: path.display().to_string(),
                source,
            })
    }

    pub fn read(path: &Path) -> Result<SavedPlan, PlanFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PlanFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| PlanFileError::NotAPlan {
            path: shown.clone(),
            why: format!("not JSON ({e})"),
        })?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(PlanFileError::NotAPlan {
                path: shown,
                why: format!("it has no \"format\": \"{FORMAT}\" (write one with `diff --out`)"),
            });
        }
        let version = v.get("format_version").and_then(Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(PlanFileError::NotAPlan {
                path: shown,
                why: format!(
                    "its format version is {}, this tool reads {FORMAT_VERSION}",
                    version.map_or("missing".into(), |v| v.to_string())
                ),
            });
        }
        serde_json::from_value(v).map_err(|e| PlanFileError::NotAPlan {
            path: shown,
            why: e.to_string(),
        })
    }

    /// Why this saved plan cannot be applied where `now` was computed: a
    /// plan for another stack, account or region. Empty when it is the
    /// same deployment.
    pub fn foreign(&self, now: &SavedPlan) -> Vec<String> {
        let mut out = Vec::new();
        if self.stack != now.stack {
            out.push(format!(
                "the plan is for stack `{}`, this is stack `{}`",
                self.stack, now.stack
            ));
        }
        if self.account != now.account {
            out.push(format!(
                "the plan is for account {}, the credentials are for account {}",
                self.account, now.account
            ));
        }
        if self.region != now.region {
            out.push(format!(
                "the plan is for region {}, this run is in {}",
                self.region, now.region
            ));
        }
        out
    }

    /// Every way `now` differs from this saved plan, one line each; empty
    /// when `now` is the same plan, step for step, from the same inputs.
    pub fn differences(&self, now: &SavedPlan) -> Vec<String> {
        let mut out = self.foreign(now);
        if self.tool_version != now.tool_version {
            out.push(format!(
                "the plan was made by bookstore-infra {}, this is {}",
                self.tool_version, now.tool_version
            ));
        }
        if self.stack_sha256 != now.stack_sha256 {
            out.push(format!(
                "the stack file changed since the plan (sha256 {} then, {} now)",
                short(&self.stack_sha256),
                short(&now.stack_sha256)
            ));
        }
        if self.binary_sha256 != now.binary_sha256 {
            out.push(format!(
                "the app binary changed since the plan (sha256 {} then, {} now)",
                self.binary_sha256.as_deref().map_or("none", short),
                now.binary_sha256.as_deref().map_or("none", short)
            ));
        }
        let then = steps_by_key(&self.plan);
        let current = steps_by_key(&now.plan);
        for (key, step) in &then {
            match current.get(key) {
                None => out.push(format!("{}: planned {}, now not in the plan", key, step.0)),
                Some(c) if c.1 != step.1 => out.push(format!(
                    "{}: planned {}, now {}{}",
                    key,
                    step.0,
                    c.0,
                    changed_attrs(&step.1, &c.1)
                )),
                Some(_) => {}
            }
        }
        for (key, step) in &current {
            if !then.contains_key(key) {
                out.push(format!("{}: not in the plan, now {}", key, step.0));
            }
        }
        // The values the changes were computed from: a change to a resource
        // this plan modifies, made behind the tool's back, even where the
        // change would read the same.
        for s in self.plan.steps.iter().filter(|s| s.action != Action::NoOp) {
            let Some(p) = s.physical_id.as_deref() else {
                continue;
            };
            if let (Some(a), Some(b)) = (self.observed.get(p), now.observed.get(p)) {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect::<Vec<_>>();
                keys.sort();
                keys.dedup();
                for k in keys {
                    if a.get(k) != b.get(k) {
                        out.push(format!(
                            "{} ({p}): `{k}` was {} when planned, is {} now",
                            s.id,
                            a.get(k).map_or("absent".into(), short_value),
                            b.get(k).map_or("absent".into(), short_value)
                        ));
                    }
                }
            }
        }
        out
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn short_value(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let head: String = s.chars().take(77).collect();
        format!("{head}...")
    } else {
        s
    }
}

/// Steps by `id (kind)`, each as its action and its JSON without what may
/// change between two plans of the same work: whether a resource is still
/// becoming ready (`up` waits for it either way).
fn steps_by_key(plan: &Plan) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for s in &plan.steps {
        let mut v = serde_json::to_value(s).expect("a step serialises");
        if let Some(m) = v.as_object_mut() {
            m.remove("pending");
        }
        let p = s.physical_id.as_deref().unwrap_or("?");
        let what = match s.action {
            Action::Create => "create".to_string(),
            Action::Update => format!("update of {p}"),
            Action::Replace => format!("replacement of {p}"),
            Action::Delete => format!("deletion of {p}"),
            Action::NoOp => format!("no change to {p}"),
        };
        let key = format!(
            "{} ({}){}",
            s.id,
            s.kind,
            if s.action == Action::Delete {
                format!(" {}", s.physical_id.as_deref().unwrap_or(""))
            } else {
                String::new()
            }
        );
        out.insert(key, (what, v));
    }
    out
}

/// The attribute changes that differ between two steps' JSON, named.
fn changed_attrs(a: &Value, b: &Value) -> String {
    let names = |v: &Value| -> BTreeMap<String, Value> {
        v.get("changes")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c.clone())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (na, nb) = (names(a), names(b));
    let mut differ: Vec<String> = na
        .keys()
        .chain(nb.keys())
        .filter(|k| na.get(*k) != nb.get(*k))
        .cloned()
        .collect();
    differ.sort();
    differ.dedup();
    if differ.is_empty() {
        String::new()
    } else {
        format!(" (changes to {} differ)", differ.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{AttrDiff, Step, Summary};
    use serde_json::json;

    fn step(id: &str, action: Action, physical: Option<&str>, changes: Vec<AttrDiff>) -> Step {
        Step {
            id: id.into(),
            kind: "ec2:vpc".into(),
            action,
            physical_id: physical.map(str::to_string),
            changes,
            reason: None,
            needs_consent: false,
            create_first: false,
            pending: false,
            deps: vec![],
        }
    }

    fn saved(steps: Vec<Step>, observed: &[Observed]) -> SavedPlan {
        let plan = Plan {
            format_version: 1,
            stack: "shop".into(),
            steps,
            summary: Summary {
                add: 0,
                change: 0,
                destroy: 0,
            },
            notes: Vec::new(),
        };
        SavedPlan::new(
            Fingerprint {
                stack: "shop".into(),
                stack_sha256: "a".repeat(64),
                binary_sha256: None,
                account: "123456789012".into(),
                region: "us-east-1".into(),
            },
            &plan,
            observed,
        )
    }

    fn change(name: &str, before: Value, after: Value) -> AttrDiff {
        AttrDiff {
            name: name.into(),
            before: Some(before),
            after: Some(after),
            forces_replacement: false,
        }
    }

    #[test]
    fn the_same_plan_has_no_differences_even_through_a_file() {
        let o = Observed::new("ec2:vpc", "vpc", "vpc-1").prop("cidr", "10.0.0.0/16");
        let a = saved(
            vec![step(
                "vpc",
                Action::Update,
                Some("vpc-1"),
                vec![
                    change("name", json!("a"), json!("b")),
                    AttrDiff {
                        name: "null_before".into(),
                        before: Some(Value::Null),
                        after: None,
                        forces_replacement: false,
                    },
                ],
            )],
            std::slice::from_ref(&o),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        a.write(&path).unwrap();
        let back = SavedPlan::read(&path).unwrap();
        assert!(
            back.differences(&a).is_empty(),
            "{:?}",
            back.differences(&a)
        );
        assert_eq!(back.observed["vpc-1"]["cidr"], json!("10.0.0.0/16"));
    }

    #[test]
    fn a_changed_step_an_observed_value_and_a_foreign_plan_are_named() {
        let o1 = Observed::new("ec2:vpc", "vpc", "vpc-1").prop("tenancy", "default");
        let o2 = Observed::new("ec2:vpc", "vpc", "vpc-1").prop("tenancy", "dedicated");
        let a = saved(
            vec![step(
                "vpc",
                Action::Update,
                Some("vpc-1"),
                vec![change("name", json!("a"), json!("b"))],
            )],
            &[o1],
        );
        let mut b = saved(
            vec![step(
                "vpc",
                Action::Update,
                Some("vpc-1"),
                vec![change("name", json!("x"), json!("b"))],
            )],
            &[o2],
        );
        let d = a.differences(&b);
        assert!(d.iter().any(|l| l.contains("vpc (ec2:vpc): planned update of vpc-1, now update of vpc-1 (changes to name differ)")), "{d:?}");
        assert!(d.iter().any(|l| l.contains("`tenancy` was \"default\" when planned, is \"dedicated\" now")), "{d:?}");
        b.region = "eu-west-1".into();
        b.stack = "other".into();
        assert_eq!(a.foreign(&b).len(), 2);
        assert!(a
            .differences(&b)
            .iter()
            .any(|l| l.contains("this run is in eu-west-1")));
    }

    #[test]
    fn a_step_only_now_or_only_then_is_named_and_pending_is_not_a_difference() {
        let a = saved(vec![step("vpc", Action::Create, None, vec![])], &[]);
        let mut pending = step("vpc", Action::Create, None, vec![]);
        pending.pending = true;
        let b = saved(
            vec![pending.clone(), step("igw", Action::Create, None, vec![])],
            &[],
        );
        let d = a.differences(&b);
        assert_eq!(
            d,
            vec!["igw (ec2:vpc): not in the plan, now create".to_string()]
        );
        let c = saved(vec![pending], &[]);
        assert!(a.differences(&c).is_empty());
    }

    #[test]
    fn other_documents_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(
            &path,
            r#"{"format_version": 1, "stack": "shop", "steps": []}"#,
        )
        .unwrap();
        let e = SavedPlan::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("is not a bookstore-infra plan") && e.contains("diff --out"),
            "{e}"
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(SavedPlan::read(&path)
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }
}
