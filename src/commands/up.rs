//! `up STACK`: shows the plan, asks, applies it. With `--plan PLAN`, applies
//! a plan saved by `diff --out` only if planning again gives the same plan.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use bookstore_infra::cloud::Cloud;
use bookstore_infra::lock::Fence;
use bookstore_infra::pipeline::{self, Planned};
use bookstore_infra::planfile::SavedPlan;
use bookstore_infra::resources;
use bookstore_infra::stack::Stack;

use super::{exit, CostOpts, Ctx, Exit, RunOpts};

#[derive(Args)]
pub struct UpArgs {
    pub stack: PathBuf,
    /// Apply without asking (required when there is no terminal).
    #[arg(long)]
    pub yes: bool,
    /// Allow replacing or deleting this data-bearing resource (by logical id; repeatable).
    #[arg(long, value_name = "ID")]
    pub allow_replace: Vec<String>,
    /// Apply this plan, saved by `diff --out`, and nothing else: if planning
    /// again gives another plan, nothing is applied (exit code 5). The plan
    /// was reviewed, so it is not asked for again.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Roll a group `rollback` left on an earlier release forward to the
    /// stack file's binary (otherwise it stays until the binary changes).
    #[arg(long)]
    pub roll_forward: bool,
    #[command(flatten)]
    pub cost: CostOpts,
    #[command(flatten)]
    pub run: RunOpts,
}

pub async fn run(ctx: &Ctx, a: &UpArgs) -> Result<u8> {
    let s = super::load_checked(&a.stack)?;
    // A saved plan is read, and refused when it is for another stack,
    // before any API call.
    let saved = match &a.plan {
        Some(path) => {
            let saved = SavedPlan::read(path)?;
            if saved.stack != s.name {
                return Err(Exit::new(
                    exit::STALE_PLAN,
                    format!(
                        "{} is a plan for stack `{}`, not `{}`: nothing applied",
                        path.display(),
                        saved.stack,
                        s.name
                    ),
                )
                .into());
            }
            Some(saved)
        }
        None => None,
    };
    let binary = pipeline::binary(&s)?;
    let cloud = ctx.connect(&s, false).await;
    super::locked(ctx, &cloud, &s, &a.run, "up", {
        let (c, st, sv) = (&cloud, &s, saved.as_ref());
        move |fence: Fence| async move { up(ctx, c, fence, st, binary, a, sv).await }
    })
    .await
}

async fn up(
    ctx: &Ctx,
    cloud: &Cloud,
    fence: Fence,
    s: &Stack,
    binary: Option<(PathBuf, String)>,
    a: &UpArgs,
    saved: Option<&SavedPlan>,
) -> Result<u8> {
    let p = pipeline::plan_stack(cloud, s, binary.clone(), a.roll_forward).await?;
    if let Some(saved) = saved {
        let now = super::saved_plan(cloud, &a.stack, s, binary.as_ref(), &p).await?;
        let foreign = saved.foreign(&now);
        let differs = saved.differences(&now);
        if !differs.is_empty() {
            let what = if foreign.is_empty() {
                "the plan is stale: planning again gives another plan"
            } else {
                "the plan is for another deployment"
            };
            if !a.run.json {
                print!("{}", p.plan.render(ctx.color()));
            }
            return Err(Exit::new(
                exit::STALE_PLAN,
                format!(
                    "{what}. Nothing applied. What differs:\n  {}\nReview the new plan with `diff --out` and apply that one.",
                    differs.join("\n  ")
                ),
            )
            .into());
        }
    }
    let estimate = a.cost.estimate(cloud, &p)?;
    if !a.run.json {
        print!("{}", p.plan.render(ctx.color()));
        if let Some(c) = &estimate {
            print!("\n{}", c.render_text());
        }
    }
    a.cost.check(estimate.as_ref())?;
    let blocked: Vec<&str> = p
        .plan
        .unconsented(&a.allow_replace)
        .map(|st| st.id.as_str())
        .collect();
    if !blocked.is_empty() {
        return Err(Exit::new(
            exit::CONSENT_NEEDED,
            format!(
                "refusing to replace or delete {}: it holds data. Name it with {} to proceed (a final snapshot is taken where the kind supports it). Nothing applied.",
                blocked.join(", "),
                blocked
                    .iter()
                    .map(|b| format!("--allow-replace {b}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
        .into());
    }
    let applied = apply(cloud, fence, s, &p, a, saved.is_some()).await?;
    let Some(applied) = applied else {
        eprintln!("Not applied.");
        return Ok(exit::ERROR);
    };
    let observed = if applied {
        pipeline::observe(cloud, &resources::registry(), &s.name).await?
    } else {
        p.observed
    };
    let outputs = pipeline::resolve_outputs(&p.outputs, &observed);
    if applied {
        let sections: Vec<String> = estimate.iter().map(|c| c.render_markdown()).collect();
        super::step_summary(&format!(
            "{}\n**Applied:** {}\n",
            super::markdown(&p.plan, &sections),
            p.plan.summary_line().trim_start_matches("Plan: ")
        ))?;
    }
    if a.run.json {
        let mut doc = json!({"plan": p.plan, "applied": applied, "outputs": outputs});
        if let Some(c) = &estimate {
            doc["cost"] = serde_json::to_value(c)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        if applied {
            println!(
                "\nApplied: {}",
                p.plan.summary_line().trim_start_matches("Plan: ")
            );
        }
        println!("\nOutputs:\n{}", super::outputs::render(&outputs));
    }
    Ok(exit::OK)
}

/// Applies the plan after confirmation (none for a reviewed saved plan):
/// `Some(applied)`, or `None` when the answer was no.
async fn apply(
    cloud: &Cloud,
    fence: Fence,
    s: &Stack,
    p: &Planned,
    a: &UpArgs,
    reviewed: bool,
) -> Result<Option<bool>> {
    if !p.plan.has_changes() {
        return Ok(Some(false));
    }
    if !reviewed && !super::confirm("Apply this plan?", a.yes)? {
        return Ok(None);
    }
    pipeline::apply(
        cloud,
        &s.name,
        Some(fence),
        a.run.concurrency,
        &p.plan,
        &p.desired,
        &p.observed,
        &a.allow_replace,
    )
    .await?;
    Ok(Some(true))
}
