//! The pipeline every verb runs, in one place: connect, look up the facts
//! and observe what exists (at once), build what is wanted, plan; the
//! executor then applies the plan. The verbs in the binary's `commands/`
//! call these and render what they return.

pub mod facts;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::try_join_all;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::cloud::{Cloud, CloudError, Reporter};
use crate::engine::executor::{ExecError, Executor};
use crate::engine::plan::{self, Plan, PlanError};
use crate::engine::refs::{resolve, Resolution};
use crate::engine::{Attrs, Desired, Observed, Registry};
use crate::lock::Fence;
use crate::resources;
use crate::stack::Stack;
use crate::topology::{self, Facts};

pub use facts::{binary, facts, AL2023_PARAMETER, DEFAULT_BINARY};

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// Clients for the stack's region (unless `region` says otherwise), with
/// every kind's wait limits taken from the stack's `[timeouts]`.
pub async fn connect(
    stack: &Stack,
    region: Option<String>,
    profile: Option<String>,
    reporter: Arc<dyn Reporter>,
) -> Cloud {
    let mut cloud =
        Cloud::connect(region.or_else(|| stack.region.clone()), profile, reporter).await;
    cloud.timeouts = resources::registry().wait_limits(&stack.timeouts);
    cloud
}

/// Everything the stack owns: one batch read per kind, all kinds at once.
pub async fn observe(
    cloud: &Cloud,
    registry: &Registry,
    stack: &str,
) -> Result<Vec<Observed>, CloudError> {
    let per_kind = try_join_all(registry.kinds().map(|k| k.read_all(cloud, stack))).await?;
    let mut all: Vec<Observed> = per_kind.into_iter().flatten().collect();
    // Deterministic order: by kind rank, then logical id, then physical id.
    all.sort_by(|a, b| {
        (registry.rank(a.kind), &a.id, &a.physical_id).cmp(&(
            registry.rank(b.kind),
            &b.id,
            &b.physical_id,
        ))
    });
    Ok(all)
}

/// A plan and what it was computed from.
pub struct Planned {
    pub plan: Plan,
    pub desired: Vec<Desired>,
    pub observed: Vec<Observed>,
    pub outputs: Vec<(&'static str, Value)>,
}

/// Plans `stack`: its facts and what exists are read at once, then what is
/// wanted is built and diffed. `roll_forward`: a group `rollback` left on
/// an earlier release rolls forward even though the file ships the same
/// binary.
pub async fn plan_stack(
    cloud: &Cloud,
    stack: &Stack,
    binary: Option<(PathBuf, String)>,
    roll_forward: bool,
) -> Result<Planned, PipelineError> {
    let registry = resources::registry();
    let (mut facts, observed) = tokio::try_join!(
        facts::facts(cloud, stack, binary),
        observe(cloud, &registry, &stack.name)
    )?;
    let mut notes = Vec::new();
    if let Some(app) = facts.app.as_mut() {
        match (&app.pinned, roll_forward) {
            (Some(_), true) => app.pinned = None,
            (Some(p), false) => notes.push(format!(
                "the {} stays on release {}, where `rollback` left it, while the stack file ships the binary rolled back from; ship another binary, or pass `--roll-forward`, to roll forward",
                if stack.app.runtime == crate::stack::Runtime::Fargate { "service" } else { "group" },
                p.tag.split(" from ").next().unwrap_or(&p.version)
            )),
            (None, _) => {}
        }
    }
    let desired = topology::desired(stack, &facts);
    let outputs = topology::outputs(stack, &facts);
    let mut plan = plan::plan(&stack.name, &registry, &desired, &observed)?;
    plan.notes = notes;
    Ok(Planned {
        plan,
        desired,
        observed,
        outputs,
    })
}

/// What exists now and the outputs it gives (`outputs`, `status`).
pub struct Current {
    pub facts: Facts,
    pub observed: Vec<Observed>,
    pub outputs: Map<String, Value>,
}

/// Reads what exists and resolves the outputs against it. Outputs do not
/// depend on the binary's content, only on what exists: a binary that is
/// not built here yet is no error.
pub async fn current(cloud: &Cloud, stack: &Stack) -> Result<Current, PipelineError> {
    let registry = resources::registry();
    let binary = facts::binary(stack).unwrap_or_else(|_| Some((PathBuf::new(), "0".repeat(64))));
    let (facts, observed) = tokio::try_join!(
        facts::facts(cloud, stack, binary),
        observe(cloud, &registry, &stack.name)
    )?;
    let outputs = resolve_outputs(&topology::outputs(stack, &facts), &observed);
    Ok(Current {
        facts,
        observed,
        outputs,
    })
}

/// Carries `plan` out under the run lock's `fence`, with `consent` for the
/// replacements and deletions it names.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    cloud: &Cloud,
    stack: &str,
    fence: Option<Fence>,
    concurrency: usize,
    plan: &Plan,
    desired: &[Desired],
    observed: &[Observed],
    consent: &[String],
) -> Result<(), PipelineError> {
    let registry = resources::registry();
    let exec = Executor {
        cloud,
        registry: &registry,
        stack,
        concurrency: concurrency.max(1),
        fence,
    };
    exec.apply(plan, desired, observed, consent).await?;
    Ok(())
}

/// Resolves output values against what exists. A list keeps the items that
/// exist; a single value that does not exist yet is `null`.
pub fn resolve_outputs(
    outputs: &[(&'static str, Value)],
    observed: &[Observed],
) -> Map<String, Value> {
    let mut known: std::collections::BTreeMap<&str, &Attrs> = std::collections::BTreeMap::new();
    for o in observed {
        known.entry(o.id.as_str()).or_insert(&o.attrs);
    }
    let one = |v: &Value| match resolve(v, &|id| known.get(id).copied()) {
        Resolution::Known(v) => Some(v),
        Resolution::Unknown => None,
    };
    outputs
        .iter()
        .map(|(name, v)| {
            let value = match v {
                Value::Array(items) => Value::Array(items.iter().filter_map(one).collect()),
                other => one(other).unwrap_or(Value::Null),
            };
            (name.to_string(), value)
        })
        .collect()
}
