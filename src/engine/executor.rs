//! Carries a plan out: concurrently along the dependency graph, waiting for
//! each resource to be ready before its dependents start.
//!
//! The plan becomes one graph of operations (see [`Executor::apply`]);
//! independent operations proceed at the same time.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use thiserror::Error;

use super::plan::{Action, Plan, Step};
use super::refs::{resolve, Resolution};
use super::{
    create_token, owner_tags, Attrs, Desired, Observed, Registry, Repeat, Resolved, ResourceKind,
};
use crate::cloud::{Cloud, CloudError, Phase};

pub use super::retry::{
    delete_retry_reason, retry_delete, retry_delete_on, still_in_use, Clock, Tokio,
};

/// How many resources are worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
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
    /// The run lock's lease, checked before each change (see
    /// [`crate::lock::Fence`]); `None` when no lock is held (tests).
    pub fence: Option<crate::lock::Fence>,
}

/// A unit of work in `apply`: bringing a wanted resource to its state, or
/// deleting an existing one (an old half of a replacement, or surplus).
#[derive(Clone, Copy)]
enum Op<'p> {
    /// Create, update or replace-create; for a resource without changes,
    /// wait for it if it is not ready yet.
    Want(&'p Step),
    /// Delete an existing resource, by physical id.
    Delete(&'p Step),
}

fn want_node(id: &str) -> String {
    format!("want {id}")
}

fn delete_node(physical_id: &str) -> String {
    format!("delete {physical_id}")
}

impl Executor<'_> {
    /// Applies `plan`, computed from `desired` and `observed`, as one
    /// dependency graph of operations run concurrently:
    /// - a wanted resource starts once the resources it refers to are ready;
    /// - a replacement either creates the new resource first, moves what
    ///   refers to it over, then deletes the old one, or (when names or
    ///   addresses clash) deletes the old one first, after what holds it;
    /// - a deletion waits for the deletion of whatever refers to the
    ///   resource in a way the cloud enforces (dependents first);
    /// - resources leaving the stack go once everything wanted is in place.
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

        let wanted: BTreeMap<&str, &Step> = plan
            .steps
            .iter()
            .filter(|s| s.action != Action::Delete)
            .map(|s| (s.id.as_str(), s))
            .collect();
        // The existing resources this run deletes, by physical id.
        let deleted: BTreeMap<&str, &Step> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Replace | Action::Delete))
            .filter_map(|s| s.physical_id.as_deref().map(|p| (p, s)))
            .collect();
        let holders = holders(self.registry, observed);

        let mut ops: BTreeMap<String, Op> = BTreeMap::new();
        let mut nodes: Vec<(String, Vec<String>)> = Vec::new();
        for s in wanted.values() {
            let mut deps: Vec<String> = s
                .deps
                .iter()
                .filter(|d| wanted.contains_key(d.as_str()))
                .map(|d| want_node(d))
                .collect();
            if s.action == Action::Replace && !s.create_first {
                deps.extend(s.physical_id.as_deref().map(delete_node));
            }
            ops.insert(want_node(&s.id), Op::Want(s));
            nodes.push((want_node(&s.id), deps));
        }
        let all_wanted: Vec<String> = wanted.keys().map(|id| want_node(id)).collect();
        for (pid, s) in &deleted {
            // Whatever holds it and is deleted too goes first.
            let mut deps: Vec<String> = holders
                .get(*pid)
                .into_iter()
                .flatten()
                .filter(|h| deleted.contains_key(h.as_str()))
                .map(|h| delete_node(h))
                .collect();
            if s.action == Action::Delete {
                deps.extend(all_wanted.iter().cloned());
            } else if s.create_first {
                // The new one, and everything that refers to it, first.
                deps.push(want_node(&s.id));
                deps.extend(
                    wanted
                        .values()
                        .filter(|u| u.deps.contains(&s.id))
                        .map(|u| want_node(&u.id)),
                );
            }
            ops.insert(delete_node(pid), Op::Delete(s));
            nodes.push((delete_node(pid), deps));
        }

        let known: Mutex<BTreeMap<String, Attrs>> = Mutex::new(
            plan.steps
                .iter()
                .filter(|s| matches!(s.action, Action::NoOp | Action::Update))
                .filter_map(|s| step_of(s).map(|o| (s.id.clone(), o.attrs.clone())))
                .collect(),
        );
        let failures = run_dag(nodes, self.concurrency, |node| {
            let op = ops[node.as_str()];
            let known = &known;
            let desired = &desired;
            let step_of = &step_of;
            let by_physical = &by_physical;
            async move {
                match op {
                    Op::Delete(s) => {
                        match s.physical_id.as_deref().and_then(|p| by_physical.get(p)) {
                            Some(o) => {
                                let what = if s.action == Action::Replace {
                                    "replacing: deleting the old one"
                                } else {
                                    "deleting"
                                };
                                self.delete(o, what).await
                            }
                            None => Ok(()),
                        }
                    }
                    Op::Want(s) if s.action == Action::NoOp => {
                        let Some(o) = step_of(s) else { return Ok(()) };
                        if !o.pending {
                            return Ok(());
                        }
                        let o = self.wait_existing(o.clone()).await?;
                        known.lock().unwrap().insert(s.id.clone(), o.attrs);
                        Ok(())
                    }
                    Op::Want(s) => {
                        let d = desired[s.id.as_str()];
                        let current = if s.action == Action::Update {
                            step_of(s).cloned()
                        } else {
                            None
                        };
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
                            token: create_token(self.stack, &d.id, &props),
                            props,
                            tags: owner_tags(self.stack, &d.id),
                        };
                        let o = self
                            .create_or_update(d, &r, current.as_ref(), by_physical)
                            .await?;
                        known.lock().unwrap().insert(d.id.clone(), o.attrs);
                        Ok(())
                    }
                }
            }
        })
        .await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ExecError::Failed {
                total: plan.steps.len(),
                failures,
            })
        }
    }

    /// Waits for a resource that exists, unchanged, but is not ready yet
    /// (left so by an interrupted run).
    async fn wait_existing(&self, o: Observed) -> Result<Observed, CloudError> {
        let kind = self
            .registry
            .get(o.kind)
            .ok_or_else(|| CloudError::invalid(&o.id, format!("unknown kind {}", o.kind)))?;
        let rep = &self.cloud.reporter;
        let id = o.id.clone();
        let start = Instant::now();
        rep.start(
            &id,
            &format!("{} exists, waiting until ready", o.physical_id),
        );
        let result = kind.wait_ready(self.cloud, o).await;
        self.report_ready(&id, start, &result);
        result
    }

    /// Reports how bringing resource `id` to ready, begun at `start`, ended.
    fn report_ready(&self, id: &str, start: Instant, result: &Result<Observed, CloudError>) {
        let rep = &self.cloud.reporter;
        match result {
            Ok(o) => rep.finish(
                id,
                true,
                &format!("{} ready in {:.1?}", o.physical_id, start.elapsed()),
            ),
            Err(e) => rep.finish(id, false, &e.to_string()),
        }
    }

    /// Creates or updates `d`; `before` is what existed when the run began.
    async fn create_or_update(
        &self,
        d: &Desired,
        r: &Resolved,
        current: Option<&Observed>,
        before: &BTreeMap<&str, &Observed>,
    ) -> Result<Observed, CloudError> {
        let kind = self
            .registry
            .get(d.kind)
            .expect("planned kinds are registered");
        let rep = &self.cloud.reporter;
        let start = Instant::now();
        let result = async {
            self.fenced(&d.id).await?;
            let o = match current {
                None => {
                    rep.start(&d.id, "creating");
                    match kind.create(self.cloud, r).await {
                        Ok(o) => {
                            if kind.on_repeat() == Repeat::Twin {
                                self.sweep_twins(kind, &o, before).await?;
                            }
                            o
                        }
                        Err(e) if e.is_already_exists() => self.adopt(kind, r, e, before).await?,
                        Err(e) => return Err(e),
                    }
                }
                Some(cur) => {
                    rep.start(&d.id, "updating");
                    self.update(kind, r, cur).await?
                }
            };
            rep.status(&d.id, &format!("{} waiting until ready", o.physical_id));
            kind.wait_ready(self.cloud, o).await
        }
        .await;
        self.report_ready(&d.id, start, &result);
        result
    }

    /// Ok while this run may change the cloud: it holds the stack's lock
    /// with a fresh lease, confirmed anew if it ran out (a run stopped past
    /// the lock's timeout). Once the lock is lost no step changes anything
    /// (see [`crate::lock::Fence`]).
    async fn fenced(&self, id: &str) -> Result<(), CloudError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        match fence.check().await {
            Ok(()) => Ok(()),
            Err(crate::lock::LockError::Cloud(e)) => Err(e),
            Err(e) => Err(CloudError::invalid(id, format!("not changed: {e}"))),
        }
    }

    pub(super) async fn delete(&self, o: &Observed, what: &str) -> Result<(), CloudError> {
        let kind = self
            .registry
            .get(o.kind)
            .ok_or_else(|| CloudError::invalid(&o.id, format!("unknown kind {}", o.kind)))?;
        let rep = &self.cloud.reporter;
        rep.start(&o.id, &format!("{what} {}", o.physical_id));
        let result = retry_delete(
            &o.id,
            self.cloud.timeouts.for_kind(o.kind, Phase::Delete),
            self.cloud.poll.max(Duration::from_millis(500)),
            |msg| rep.status(&o.id, msg),
            || async {
                self.fenced(&o.id).await?;
                match kind.delete(self.cloud, o).await {
                    // The thing may be gone though the answer was lost (the
                    // SDK's retry of this very delete meets the first
                    // attempt's work) or it went another way: a delete is
                    // done when a read no longer finds it.
                    Err(e) if e.is_not_found() && self.gone(kind, o).await? => Ok(()),
                    other => other,
                }
            },
        )
        .await;
        match &result {
            Ok(()) => rep.finish(&o.id, true, &format!("{} deleted", o.physical_id)),
            Err(e) => rep.finish(&o.id, false, &e.to_string()),
        }
        result
    }
}

impl Executor<'_> {
    /// Whether a read of `o`'s kind no longer finds it.
    async fn gone(&self, kind: &dyn ResourceKind, o: &Observed) -> Result<bool, CloudError> {
        let now = kind.read_all(self.cloud, self.stack).await?;
        Ok(!now.iter().any(|x| x.physical_id == o.physical_id))
    }
}

/// For each observed resource (by physical id), the physical ids of the
/// observed resources that hold it: refer to it through an attribute whose
/// reference keeps it from being deleted.
fn holders(registry: &Registry, observed: &[Observed]) -> BTreeMap<String, Vec<String>> {
    super::plan::users_of(observed, |o, attr| {
        registry
            .get(o.kind)
            .is_none_or(|k| k.reference_blocks_deletion(attr))
    })
    .into_iter()
    .map(|(pid, users)| (pid, users.iter().map(|u| u.physical_id.clone()).collect()))
    .collect()
}

/// Runs `f` on every node once all its dependencies succeeded, at most
/// `concurrency` at a time. A node whose dependency failed is skipped.
/// Nodes that wait for each other in a cycle (two security groups whose
/// rules name each other, both being deleted) are started together once
/// nothing else can run: each then retries while the other still holds it.
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
        if running.is_empty() && !pending.is_empty() {
            // Stalled: only a cycle can hold the rest. Release its members
            // from their waits on each other.
            let cyclic = in_cycles(&pending);
            if cyclic.is_empty() {
                for (id, deps) in pending.drain(..) {
                    failures.push(format!(
                        "{id}: never started, waiting for {}",
                        deps.join(", ")
                    ));
                }
                break;
            }
            for (id, deps) in pending.iter_mut() {
                if cyclic.contains(id) {
                    deps.retain(|d| !cyclic.contains(d));
                }
            }
            continue;
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

/// The nodes of `pending` that can reach themselves through their
/// dependencies.
fn in_cycles(pending: &[(String, Vec<String>)]) -> BTreeSet<String> {
    let deps: BTreeMap<&str, &Vec<String>> =
        pending.iter().map(|(id, d)| (id.as_str(), d)).collect();
    let mut out = BTreeSet::new();
    for (start, _) in pending {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = deps[start.as_str()].iter().map(String::as_str).collect();
        while let Some(n) = stack.pop() {
            if n == start {
                out.insert(start.clone());
                break;
            }
            if seen.insert(n) {
                if let Some(ds) = deps.get(n) {
                    stack.extend(ds.iter().map(String::as_str));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn n(id: &str, deps: &[&str]) -> (String, Vec<String>) {
        (id.into(), deps.iter().map(|d| d.to_string()).collect())
    }

    fn api(code: &str, message: &str) -> CloudError {
        CloudError::Api {
            id: "x".into(),
            op: "Delete".into(),
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn which_delete_refusals_are_retried() {
        for code in [
            "DependencyViolation",
            "InvalidGroup.InUse",
            "ResourceInUse",
            "InvalidDBSubnetGroupStateFault",
            "InvalidDBInstanceState",
            "FileSystemInUse",
            "DeleteConflict",
        ] {
            assert_eq!(
                delete_retry_reason(&api(code, "")),
                Some("still in use"),
                "{code}"
            );
        }
        assert_eq!(
            delete_retry_reason(&api(
                "InvalidParameterCombination",
                "Cannot delete protected DB Instance, please disable deletion protection and try again."
            )),
            Some("still in use")
        );
        assert_eq!(
            delete_retry_reason(&api(
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier is required"
            )),
            None
        );
        for code in [
            "Throttling",
            "RequestLimitExceeded",
            "InternalError",
            "HTTP 503",
            "Timeout",
        ] {
            assert_eq!(
                delete_retry_reason(&api(code, "")),
                Some("transient error"),
                "{code}"
            );
        }
        for code in [
            "UnauthorizedOperation",
            "AccessDenied",
            "InvalidParameterValue",
            "AuthFailure",
        ] {
            assert_eq!(delete_retry_reason(&api(code, "")), None, "{code}");
        }
        let release = CloudError::Api {
            id: "eip".into(),
            op: "ReleaseAddress".into(),
            code: "AuthFailure".into(),
            message: "You do not have permission to access the specified resource.".into(),
        };
        assert!(delete_retry_reason(&release).is_some());
        assert_eq!(delete_retry_reason(&CloudError::invalid("x", "bad")), None);
    }

    #[tokio::test]
    async fn a_delete_still_in_use_is_retried_until_accepted() {
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let reports = Mutex::new(Vec::new());
        let r = retry_delete(
            "sg",
            Duration::from_secs(10),
            Duration::from_millis(1),
            |m| reports.lock().unwrap().push(m.to_string()),
            || {
                let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err(api(
                            "DependencyViolation",
                            "resource sg-1 has a dependent object",
                        )),
                        1 => Err(api("Throttling", "Rate exceeded")),
                        _ => Ok(()),
                    }
                }
            },
        )
        .await;
        assert!(r.is_ok());
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 3);
        let reports = reports.lock().unwrap();
        assert!(
            reports[0].starts_with("still in use, retrying"),
            "{reports:?}"
        );
        assert!(
            reports[1].starts_with("transient error, retrying"),
            "{reports:?}"
        );
    }

    /// A clock the test drives: sleeping advances it at once.
    struct Fake(Mutex<Duration>);

    impl Clock for Fake {
        fn elapsed(&self) -> Duration {
            *self.0.lock().unwrap()
        }

        fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
            *self.0.lock().unwrap() += d;
            std::future::ready(())
        }
    }

    #[tokio::test]
    async fn in_use_is_retried_for_exactly_the_limit_on_a_controlled_clock() {
        // A security group still in use for 4 minutes of lingering
        // interfaces, a 30-minute limit, a 5-second pause: accepted on
        // the 49th try, at 4 minutes, without waiting 4 minutes.
        let clock = Fake(Mutex::new(Duration::ZERO));
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let r = retry_delete_on(
            &clock,
            "sg",
            Duration::from_secs(1800),
            Duration::from_secs(5),
            |_| {},
            || {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let busy = clock.elapsed() < Duration::from_secs(240);
                async move {
                    if busy {
                        Err(api(
                            "DependencyViolation",
                            "resource sg-1 has a dependent object",
                        ))
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 49);
        assert_eq!(clock.elapsed(), Duration::from_secs(240));

        // Never released: it gives up at the limit, not before, not after.
        let clock = Fake(Mutex::new(Duration::ZERO));
        let r = retry_delete_on(
            &clock,
            "subnet",
            Duration::from_secs(1800),
            Duration::from_secs(5),
            |_| {},
            || async { Err(api("DependencyViolation", "has dependencies")) },
        )
        .await;
        assert!(matches!(r, Err(CloudError::Timeout { .. })), "{r:?}");
        assert_eq!(clock.elapsed(), Duration::from_secs(1800));

        // A refusal is not retried at all: no time passes.
        let clock = Fake(Mutex::new(Duration::ZERO));
        let r = retry_delete_on(
            &clock,
            "vpc",
            Duration::from_secs(1800),
            Duration::from_secs(5),
            |_| {},
            || async { Err(api("UnauthorizedOperation", "no")) },
        )
        .await;
        assert_eq!(r.unwrap_err().code(), Some("UnauthorizedOperation"));
        assert_eq!(clock.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_delete_fails_at_once_on_other_errors_and_gives_up_at_its_limit() {
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let r = retry_delete(
            "sg",
            Duration::from_secs(10),
            Duration::from_millis(1),
            |_| {},
            || {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Err(api("UnauthorizedOperation", "no")) }
            },
        )
        .await;
        assert_eq!(r.unwrap_err().code(), Some("UnauthorizedOperation"));
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);

        let r = retry_delete(
            "sg",
            Duration::from_millis(30),
            Duration::from_millis(5),
            |_| {},
            || async { Err(api("DependencyViolation", "has dependencies")) },
        )
        .await;
        let e = r.unwrap_err();
        assert!(matches!(e, CloudError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("DependencyViolation"), "{e}");
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
    async fn nodes_waiting_on_each_other_run_once_nothing_else_can() {
        // Two groups whose rules name each other, both deleted: each waits
        // for the other. They start together after what they do not wait
        // for; what waits for them still waits.
        let ran = Arc::new(Mutex::new(Vec::new()));
        let failures = run_dag(
            vec![
                n("a", &["b", "first"]),
                n("b", &["a"]),
                n("first", &[]),
                n("after", &["a", "b"]),
            ],
            4,
            |id| {
                let ran = ran.clone();
                async move {
                    ran.lock().unwrap().push(id);
                    Ok(())
                }
            },
        )
        .await;
        assert!(failures.is_empty(), "{failures:?}");
        let ran = ran.lock().unwrap();
        assert_eq!(ran.first().unwrap(), "first");
        assert_eq!(ran.last().unwrap(), "after");
        assert_eq!(ran.len(), 4);
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

    /// A kind whose delete answers NotFound (the answer to a first attempt
    /// was lost, or someone else deleted it), and whose read finds `left`.
    struct LostAnswer {
        left: Vec<Observed>,
        deletes: Arc<std::sync::atomic::AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ResourceKind for LostAnswer {
        fn kind(&self) -> &'static str {
            "test:thing"
        }
        fn attributes(&self) -> &'static [super::super::AttrSpec] {
            &[]
        }
        async fn read_all(&self, _: &Cloud, _: &str) -> Result<Vec<Observed>, CloudError> {
            Ok(self.left.clone())
        }
        async fn create(&self, _: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
            Err(CloudError::invalid(&r.id, "not in this test"))
        }
        async fn update(
            &self,
            _: &Cloud,
            r: &Resolved,
            _: &Observed,
            _: &[String],
        ) -> Result<Observed, CloudError> {
            Err(CloudError::invalid(&r.id, "not in this test"))
        }
        async fn delete(&self, _: &Cloud, o: &Observed) -> Result<(), CloudError> {
            self.deletes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(CloudError::Api {
                id: o.id.clone(),
                op: "DeleteThing".into(),
                code: "InvalidThingID.NotFound".into(),
                message: format!("The thing '{}' does not exist", o.physical_id),
            })
        }
    }

    async fn destroy_with(left: Vec<Observed>) -> Result<usize, ExecError> {
        let conf = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let cloud = Cloud::from_conf(
            &conf,
            Arc::new(crate::cloud::Silent),
            Duration::from_millis(1),
        );
        let deletes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let kind = LostAnswer {
            left,
            deletes: deletes.clone(),
        };
        let mut registry = Registry::new();
        registry.register(Box::new(kind));
        let observed = vec![Observed::new("test:thing", "thing", "thing-1")];
        let plan = super::super::plan::destroy_plan("t", &registry, &observed);
        let exec = Executor {
            cloud: &cloud,
            registry: &registry,
            stack: "t",
            concurrency: 1,
            fence: None,
        };
        exec.apply(&plan, &[], &observed, &["thing".to_string()])
            .await?;
        Ok(deletes.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_delete_answered_not_found_is_done_once_a_read_no_longer_finds_it() {
        // Gone: the NotFound answer ends the delete, which is not tried again.
        assert_eq!(destroy_with(vec![]).await.unwrap(), 1);
        // Still there (the NotFound named something else): the delete fails
        // with AWS's answer.
        let e = destroy_with(vec![Observed::new("test:thing", "thing", "thing-1")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("InvalidThingID.NotFound"), "{e}");
    }

    /// A kind whose create meets a repeat's outcome (`repeat`): refused as
    /// a conflict, or answered with `thing-2` while the read lists `listed`.
    struct Repeated {
        repeat: Repeat,
        listed: Vec<Observed>,
        deleted: Arc<Mutex<Vec<String>>>,
        /// Reads that list only `early` yet (lists lag behind creates).
        lag: usize,
        early: Vec<Observed>,
        /// What an update answers instead of success, if anything.
        update_error: Option<&'static str>,
        reads: std::sync::atomic::AtomicUsize,
        /// The attributes each update was asked to change.
        updated: Arc<Mutex<Vec<Vec<String>>>>,
    }

    #[async_trait::async_trait]
    impl ResourceKind for Repeated {
        fn kind(&self) -> &'static str {
            "test:thing"
        }
        fn attributes(&self) -> &'static [super::super::AttrSpec] {
            const A: &[super::super::AttrSpec] = &[super::super::in_place("name")];
            A
        }
        fn on_repeat(&self) -> Repeat {
            self.repeat
        }
        async fn read_all(&self, _: &Cloud, _: &str) -> Result<Vec<Observed>, CloudError> {
            let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(if n < self.lag {
                self.early.clone()
            } else {
                self.listed.clone()
            })
        }
        async fn create(&self, _: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
            match self.repeat {
                Repeat::Refused => Err(CloudError::Api {
                    id: r.id.clone(),
                    op: "CreateThing".into(),
                    code: "InvalidSubnet.Conflict".into(),
                    message: "The CIDR '10.0.0.0/24' conflicts with another subnet".into(),
                }),
                _ => Ok(Observed::new("test:thing", &r.id, "thing-2")),
            }
        }
        async fn update(
            &self,
            _: &Cloud,
            _: &Resolved,
            current: &Observed,
            changed: &[String],
        ) -> Result<Observed, CloudError> {
            self.updated.lock().unwrap().push(changed.to_vec());
            if let Some(code) = self.update_error {
                return Err(CloudError::Api {
                    id: current.id.clone(),
                    op: "AuthorizeThing".into(),
                    code: code.into(),
                    message: "the rule is there already".into(),
                });
            }
            Ok(current.clone())
        }
        async fn delete(&self, _: &Cloud, o: &Observed) -> Result<(), CloudError> {
            self.deleted.lock().unwrap().push(o.physical_id.clone());
            Ok(())
        }
    }

    /// `up` of one `thing` in an empty account, with `listed` read after
    /// the create: the outcome and the physical ids deleted.
    async fn create_with(
        repeat: Repeat,
        listed: Vec<Observed>,
    ) -> (Result<(), ExecError>, Vec<String>) {
        let setup = Setup {
            repeat,
            listed,
            ..Setup::default()
        };
        let (r, deleted, _) = run(setup).await;
        (r, deleted)
    }

    /// One `thing` brought to `props` by `up`, through a [`Repeated`] kind.
    struct Setup {
        repeat: Repeat,
        listed: Vec<Observed>,
        lag: usize,
        early: Vec<Observed>,
        props: serde_json::Value,
        /// What exists when the run begins (nothing: a create).
        current: Vec<Observed>,
        update_error: Option<&'static str>,
    }

    impl Default for Setup {
        fn default() -> Self {
            Setup {
                repeat: Repeat::Twin,
                listed: Vec::new(),
                lag: 0,
                early: Vec::new(),
                props: serde_json::json!({}),
                current: Vec::new(),
                update_error: None,
            }
        }
    }

    async fn create_lagging(
        repeat: Repeat,
        listed: Vec<Observed>,
        lag: usize,
        props: serde_json::Value,
    ) -> (Result<(), ExecError>, Vec<String>, Vec<Vec<String>>) {
        run(Setup {
            repeat,
            listed,
            lag,
            props,
            ..Setup::default()
        })
        .await
    }

    /// The run's outcome, the physical ids deleted, and the attributes each
    /// update was asked to change.
    async fn run(setup: Setup) -> (Result<(), ExecError>, Vec<String>, Vec<Vec<String>>) {
        let conf = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let cloud = Cloud::from_conf(
            &conf,
            Arc::new(crate::cloud::Silent),
            Duration::from_millis(1),
        );
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let updated = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        registry.register(Box::new(Repeated {
            repeat: setup.repeat,
            listed: setup.listed,
            deleted: deleted.clone(),
            lag: setup.lag,
            early: setup.early,
            update_error: setup.update_error,
            reads: Default::default(),
            updated: updated.clone(),
        }));
        let desired = vec![Desired::new("test:thing", "thing", setup.props)];
        let current = setup.current;
        let plan = super::super::plan::plan("t", &registry, &desired, &current).unwrap();
        let exec = Executor {
            cloud: &cloud,
            registry: &registry,
            stack: "t",
            concurrency: 1,
            fence: None,
        };
        let r = exec.apply(&plan, &desired, &current, &[]).await;
        let d = deleted.lock().unwrap().clone();
        let u = updated.lock().unwrap().clone();
        (r, d, u)
    }

    fn thing(id: &str, physical: &str) -> Observed {
        Observed::new("test:thing", id, physical)
    }

    #[tokio::test]
    async fn a_create_refused_as_existing_adopts_what_carries_its_tags_or_refuses() {
        // The first attempt's work, tagged as this resource: adopted.
        let (r, deleted) = create_with(Repeat::Refused, vec![thing("thing", "thing-1")]).await;
        r.unwrap();
        assert!(deleted.is_empty());
        // Nothing of the stack carries its tags: someone else's, refused
        // with AWS's answer and the reason.
        let (r, _) = create_with(Repeat::Refused, vec![thing("other", "thing-9")]).await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("InvalidSubnet.Conflict") && e.contains("someone else's"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn what_a_lagging_list_shows_late_is_adopted_and_brought_to_the_stack_file() {
        let named = |n: &str| thing("thing", "thing-1").prop("name", n);
        let want = serde_json::json!({"name": "want"});
        // Shown on the fourth read: waited for, adopted, updated where it
        // differs.
        let (r, _, updated) =
            create_lagging(Repeat::Refused, vec![named("old")], 3, want.clone()).await;
        r.unwrap();
        assert_eq!(updated, [vec!["name".to_string()]]);
        // Already as wanted: adopted as it is.
        let (r, _, updated) = create_lagging(Repeat::Refused, vec![named("want")], 3, want).await;
        r.unwrap();
        assert!(updated.is_empty(), "{updated:?}");
    }

    #[tokio::test]
    async fn of_copies_of_a_kind_refused_as_existing_the_closest_is_adopted_and_none_deleted() {
        let listed = vec![
            thing("thing", "thing-1").prop("name", "old"),
            thing("thing", "thing-2").prop("name", "want"),
        ];
        let (r, deleted, updated) = run(Setup {
            repeat: Repeat::Refused,
            listed,
            props: serde_json::json!({"name": "want"}),
            ..Setup::default()
        })
        .await;
        r.unwrap();
        assert!(
            deleted.is_empty() && updated.is_empty(),
            "{deleted:?} {updated:?}"
        );
    }

    #[tokio::test]
    async fn a_change_answered_already_there_is_done_once_a_read_shows_it_and_only_then() {
        let current = vec![thing("thing", "thing-1").prop("name", "old")];
        let setup = |listed: &str, code| Setup {
            repeat: Repeat::Refused,
            listed: vec![thing("thing", "thing-1").prop("name", listed)],
            props: serde_json::json!({"name": "want"}),
            current: current.clone(),
            update_error: Some(code),
            ..Setup::default()
        };
        // The lost first attempt made the change: done.
        let (r, _, updated) = run(setup("want", "InvalidPermission.Duplicate")).await;
        r.unwrap();
        assert_eq!(updated, [vec!["name".to_string()]]);
        // "Already there", but the read shows the change missing: AWS's answer stands.
        let (r, _, _) = run(setup("old", "InvalidPermission.Duplicate")).await;
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("InvalidPermission.Duplicate"));
        // Another refusal stands whatever the read shows.
        let (r, _, _) = run(setup("want", "InvalidParameterValue")).await;
        assert!(r.unwrap_err().to_string().contains("InvalidParameterValue"));
        // Only the thing itself counts, not another with the same wanted value.
        let mut other = setup("old", "InvalidPermission.Duplicate");
        other
            .listed
            .push(thing("thing", "thing-7").prop("name", "want"));
        let (r, _, _) = run(other).await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn a_twin_is_found_once_the_list_shows_what_was_made() {
        // The list first shows only another resource's thing, then all.
        let (r, deleted, _) = run(Setup {
            repeat: Repeat::Twin,
            listed: vec![
                thing("thing", "thing-1"),
                thing("thing", "thing-2"),
                thing("other", "thing-3"),
            ],
            early: vec![thing("other", "thing-3")],
            lag: 3,
            ..Setup::default()
        })
        .await;
        r.unwrap();
        assert_eq!(deleted, ["thing-1"]);
    }

    #[tokio::test]
    async fn a_create_that_makes_twins_deletes_the_twin_only() {
        // thing-1 appeared during the create (the lost first attempt);
        // thing-2 is the one the create returned; thing-3 is another
        // resource's.
        let listed = vec![
            thing("thing", "thing-1"),
            thing("thing", "thing-2"),
            thing("other", "thing-3"),
        ];
        let (r, deleted) = create_with(Repeat::Twin, listed.clone()).await;
        r.unwrap();
        assert_eq!(deleted, ["thing-1"]);
        // A kind whose repeat is answered with the first answer reads nothing.
        let (r, deleted) = create_with(Repeat::Answered, listed).await;
        r.unwrap();
        assert!(deleted.is_empty(), "{deleted:?}");
    }

    #[test]
    fn not_found_in_every_services_words() {
        for (code, message) in [
            ("InvalidVpcID.NotFound", ""),
            ("NatGatewayNotFound", ""),
            ("DBInstanceNotFoundFault", ""),
            ("ResourceNotFoundException", ""),
            ("NoSuchEntity", ""),
            ("NoSuchBucket", ""),
            ("ValidationError", "AutoScalingGroup name not found - x"),
            ("DBSubnetGroupNotFoundFault", ""),
            ("FileSystemNotFound", ""),
            ("ListenerNotFound", ""),
            ("ParameterNotFound", ""),
            (
                "InvalidChangeBatch",
                "[Tried to delete resource record set [name='a.', type='A'] but it was not found]",
            ),
        ] {
            assert!(crate::cloud::not_found(code, message), "{code}");
        }
        for (code, message) in [
            ("DependencyViolation", "not found"),
            ("ValidationError", "bad parameter"),
            (
                "InvalidChangeBatch",
                "[RRSet of type A with DNS name a. is not permitted]",
            ),
            ("AccessDenied", ""),
        ] {
            assert!(!crate::cloud::not_found(code, message), "{code}");
        }
    }
}
