//! Carries a plan out: concurrently along the dependency graph, waiting for
//! each resource to be ready before its dependents start.
//!
//! Three phases: the old halves of replacements are deleted (dependents
//! first), then creations and updates run in dependency order, then the
//! resources that left the stack are deleted (dependents first). Within a
//! phase, independent resources proceed at the same time.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use thiserror::Error;

use super::plan::{Action, Plan, Step};
use super::refs::{resolve, Resolution};
use super::{client_token, owner_tags, Attrs, Desired, Observed, Registry, Resolved};
use crate::cloud::{Cloud, CloudError};

/// How many resources are worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Error codes that mean "something still uses this; try again shortly".
const IN_USE: &[&str] = &[
    "DependencyViolation",
    "ResourceInUse",
    "ResourceInUseException",
    "InvalidDBSubnetGroupStateFault",
    "InvalidDBInstanceState",
    "FileSystemInUse",
    "DeleteConflict",
];

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("{} of {} steps failed:\n{}", .failures.len(), .total, .failures.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n"))]
    Failed { total: usize, failures: Vec<String> },
    #[error("refusing to replace or delete {0}: it holds data. Name it with --allow-replace to proceed (a final snapshot is taken where the kind supports it)")]
    NeedsConsent(String),
}

pub struct Executor<'a> {
    pub cloud: &'a Cloud,
    pub registry: &'a Registry,
    pub stack: &'a str,
    pub concurrency: usize,
}

impl Executor<'_> {
    /// Applies `plan`, computed from `desired` and `observed`.
    pub async fn apply(
        &self,
        plan: &Plan,
        desired: &[Desired],
        observed: &[Observed],
        allow_replace: &[String],
    ) -> Result<(), ExecError> {
        let blocked: Vec<String> = plan
            .unconsented(allow_replace)
            .map(|s| s.id.clone())
            .collect();
        if !blocked.is_empty() {
            return Err(ExecError::NeedsConsent(blocked.join(", ")));
        }
        let desired: BTreeMap<&str, &Desired> =
            desired.iter().map(|d| (d.id.as_str(), d)).collect();
        let by_physical: BTreeMap<&str, &Observed> = observed
            .iter()
            .map(|o| (o.physical_id.as_str(), o))
            .collect();
        let step_of = |s: &Step| -> Option<&Observed> {
            s.physical_id
                .as_deref()
                .and_then(|p| by_physical.get(p).copied())
        };

        let mut failures = Vec::new();

        // Phase 1: the old halves of replacements, dependents first.
        let replaced: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.action == Action::Replace)
            .collect();
        if !replaced.is_empty() {
            let ids: BTreeSet<&str> = replaced.iter().map(|s| s.id.as_str()).collect();
            // Y waits for every replaced X that refers to Y.
            let nodes: Vec<(String, Vec<String>)> = replaced
                .iter()
                .map(|y| {
                    let users = replaced
                        .iter()
                        .filter(|x| x.deps.iter().any(|d| d == &y.id))
                        .map(|x| x.id.clone())
                        .filter(|x| ids.contains(x.as_str()))
                        .collect();
                    (y.id.clone(), users)
                })
                .collect();
            let steps: BTreeMap<&str, &Step> =
                replaced.iter().map(|s| (s.id.as_str(), *s)).collect();
            failures.extend(
                run_dag(nodes, self.concurrency, |id| {
                    let step = steps[id.as_str()];
                    let current = step_of(step).cloned();
                    async move {
                        match current {
                            Some(o) => self.delete(&o, "replacing: deleting the old one").await,
                            None => Ok(()),
                        }
                    }
                })
                .await,
            );
            if !failures.is_empty() {
                return Err(ExecError::Failed {
                    total: plan.steps.len(),
                    failures,
                });
            }
        }

        // Phase 2: creations and updates in dependency order.
        let known: Mutex<BTreeMap<String, Attrs>> = Mutex::new(
            plan.steps
                .iter()
                .filter(|s| matches!(s.action, Action::NoOp | Action::Update))
                .filter_map(|s| step_of(s).map(|o| (s.id.clone(), o.attrs.clone())))
                .collect(),
        );
        let work: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Create | Action::Update | Action::Replace))
            .collect();
        let ids: BTreeSet<&str> = work.iter().map(|s| s.id.as_str()).collect();
        let nodes: Vec<(String, Vec<String>)> = work
            .iter()
            .map(|s| {
                let deps = s
                    .deps
                    .iter()
                    .filter(|d| ids.contains(d.as_str()))
                    .cloned()
                    .collect();
                (s.id.clone(), deps)
            })
            .collect();
        let steps: BTreeMap<&str, &Step> = work.iter().map(|s| (s.id.as_str(), *s)).collect();
        failures.extend(
            run_dag(nodes, self.concurrency, |id| {
                let step = steps[id.as_str()];
                let d = desired[id.as_str()];
                let current = if step.action == Action::Update {
                    step_of(step).cloned()
                } else {
                    None
                };
                let known = &known;
                async move {
                    let props = {
                        let k = known.lock().unwrap();
                        resolve(&Value::Object(d.props.clone()), &|id| k.get(id))
                    };
                    let Resolution::Known(Value::Object(props)) = props else {
                        return Err(CloudError::invalid(
                            &d.id,
                            "a resource it refers to has no attributes yet",
                        ));
                    };
                    let r = Resolved {
                        id: d.id.clone(),
                        stack: self.stack.to_string(),
                        props,
                        tags: owner_tags(self.stack, &d.id),
                        token: client_token(self.stack, &d.id),
                    };
                    let o = self.create_or_update(d, &r, current.as_ref()).await?;
                    known.lock().unwrap().insert(d.id.clone(), o.attrs);
                    Ok(())
                }
            })
            .await,
        );
        if !failures.is_empty() {
            return Err(ExecError::Failed {
                total: plan.steps.len(),
                failures,
            });
        }

        // Phase 3: what left the stack, dependents first.
        let gone: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.action == Action::Delete)
            .collect();
        let ids: BTreeSet<&str> = gone.iter().map(|s| s.id.as_str()).collect();
        // Deletion steps may share a logical id (duplicates): key them by physical id.
        let nodes: Vec<(String, Vec<String>)> = gone
            .iter()
            .map(|s| {
                let users = s
                    .deps
                    .iter()
                    .filter(|d| ids.contains(d.as_str()))
                    .flat_map(|d| {
                        gone.iter()
                            .filter(move |g| &g.id == d)
                            .filter_map(|g| g.physical_id.clone())
                    })
                    .collect();
                (s.physical_id.clone().unwrap_or_default(), users)
            })
            .collect();
        failures.extend(
            run_dag(nodes, self.concurrency, |pid| {
                let o = by_physical.get(pid.as_str()).copied().cloned();
                async move {
                    match o {
                        Some(o) => self.delete(&o, "deleting").await,
                        None => Ok(()),
                    }
                }
            })
            .await,
        );
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ExecError::Failed {
                total: plan.steps.len(),
                failures,
            })
        }
    }

    async fn create_or_update(
        &self,
        d: &Desired,
        r: &Resolved,
        current: Option<&Observed>,
    ) -> Result<Observed, CloudError> {
        let kind = self
            .registry
            .get(d.kind)
            .expect("planned kinds are registered");
        let rep = &self.cloud.reporter;
        let start = Instant::now();
        let result = async {
            let o = match current {
                None => {
                    rep.start(&d.id, "creating");
                    kind.create(self.cloud, r).await?
                }
                Some(cur) => {
                    rep.start(&d.id, "updating");
                    let changed: Vec<String> = kind
                        .attributes()
                        .iter()
                        .filter(|a| {
                            r.props
                                .get(a.name)
                                .is_some_and(|want| !super::same(want, cur.props.get(a.name)))
                        })
                        .map(|a| a.name.to_string())
                        .collect();
                    kind.update(self.cloud, r, cur, &changed).await?
                }
            };
            rep.status(&d.id, &format!("{} waiting until ready", o.physical_id));
            kind.wait_ready(self.cloud, o).await
        }
        .await;
        match &result {
            Ok(o) => rep.finish(
                &d.id,
                true,
                &format!("{} ready in {:.1?}", o.physical_id, start.elapsed()),
            ),
            Err(e) => rep.finish(&d.id, false, &e.to_string()),
        }
        result
    }

    async fn delete(&self, o: &Observed, what: &str) -> Result<(), CloudError> {
        let kind = self
            .registry
            .get(o.kind)
            .ok_or_else(|| CloudError::invalid(&o.id, format!("unknown kind {}", o.kind)))?;
        let rep = &self.cloud.reporter;
        rep.start(&o.id, &format!("{what} {}", o.physical_id));
        let start = Instant::now();
        let limit = Duration::from_secs(600);
        let result = loop {
            match kind.delete(self.cloud, o).await {
                Err(e)
                    if e.code().is_some_and(|c| IN_USE.contains(&c)) && start.elapsed() < limit =>
                {
                    rep.status(&o.id, &format!("still in use, retrying: {e}"));
                    tokio::time::sleep(self.cloud.poll.max(Duration::from_millis(500))).await;
                }
                other => break other,
            }
        };
        match &result {
            Ok(()) => rep.finish(&o.id, true, &format!("{} deleted", o.physical_id)),
            Err(e) => rep.finish(&o.id, false, &e.to_string()),
        }
        result
    }
}

/// Runs `f` on every node once all its dependencies succeeded, at most
/// `concurrency` at a time. A node whose dependency failed is skipped.
/// Returns a message per failed or skipped node.
pub async fn run_dag<'a, F, Fut>(
    nodes: Vec<(String, Vec<String>)>,
    concurrency: usize,
    f: F,
) -> Vec<String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), CloudError>> + 'a,
{
    let all: BTreeSet<String> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let mut pending: Vec<(String, Vec<String>)> = nodes
        .into_iter()
        .map(|(id, deps)| (id, deps.into_iter().filter(|d| all.contains(d)).collect()))
        .collect();
    let mut ok: BTreeSet<String> = BTreeSet::new();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    let mut failures = Vec::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Skip what can no longer run, start what is ready.
        let mut i = 0;
        while i < pending.len() {
            let (id, deps) = &pending[i];
            if let Some(d) = deps.iter().find(|d| bad.contains(*d)) {
                failures.push(format!("{id}: skipped because {d} failed"));
                bad.insert(id.clone());
                pending.remove(i);
                i = 0;
                continue;
            }
            if running.len() < concurrency.max(1) && deps.iter().all(|d| ok.contains(d)) {
                let (id, _) = pending.remove(i);
                let fut = f(id.clone());
                running.push(async move { (id, fut.await) });
                continue;
            }
            i += 1;
        }
        match running.next().await {
            Some((id, Ok(()))) => {
                ok.insert(id);
            }
            Some((id, Err(e))) => {
                failures.push(e.to_string());
                bad.insert(id);
            }
            None => break,
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn n(id: &str, deps: &[&str]) -> (String, Vec<String>) {
        (id.into(), deps.iter().map(|d| d.to_string()).collect())
    }

    #[tokio::test]
    async fn runs_dependencies_first_and_independent_nodes_together() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failures = run_dag(
            vec![n("c", &["a", "b"]), n("a", &[]), n("b", &[])],
            4,
            |id| {
                let log = log.clone();
                let running = running.clone();
                let peak = peak.clone();
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    running.fetch_sub(1, SeqCst);
                    log.lock().unwrap().push(id);
                    Ok(())
                }
            },
        )
        .await;
        assert!(failures.is_empty());
        let log = log.lock().unwrap();
        assert_eq!(log.last().unwrap(), "c");
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_skips_its_dependents_only() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let failures = run_dag(vec![n("a", &[]), n("b", &["a"]), n("c", &[])], 1, |id| {
            let ran = ran.clone();
            async move {
                ran.lock().unwrap().push(id.clone());
                if id == "a" {
                    Err(CloudError::invalid("a", "boom"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(failures.len(), 2);
        assert!(failures
            .iter()
            .any(|f| f.contains("b: skipped because a failed")));
        assert!(ran.lock().unwrap().contains(&"c".to_string()));
        assert!(!ran.lock().unwrap().contains(&"b".to_string()));
    }
}
