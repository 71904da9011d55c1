//! `diff STACK`: what `up` would change, without changing anything.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use bookstore_infra::pipeline;

use super::{exit, CostOpts, Ctx, Format};

#[derive(Args)]
pub struct DiffArgs {
    pub stack: PathBuf,
    /// Print the plan as one JSON document (the same as `--format json`).
    #[arg(long)]
    pub json: bool,
    /// How to print the plan: text, json, or markdown for a pull request.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to this file, for `up --plan` to apply exactly it.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Plan the roll forward of a group `rollback` left on an earlier release.
    #[arg(long)]
    pub roll_forward: bool,
    #[command(flatten)]
    pub cost: CostOpts,
}

pub async fn run(ctx: &Ctx, a: &DiffArgs) -> Result<u8> {
    let s = super::load_checked(&a.stack)?;
    let binary = pipeline::binary(&s)?;
    let cloud = ctx.connect(&s, true).await;
    let p = pipeline::plan_stack(&cloud, &s, binary.clone(), a.roll_forward).await?;
    let format = match (a.format, a.json) {
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Text,
    };
    let estimate = a.cost.estimate(&cloud, &p)?;
    let sections: Vec<String> = estimate.iter().map(|c| c.render_markdown()).collect();
    let md = super::markdown(&p.plan, &sections);
    match format {
        Format::Json => {
            let mut doc = serde_json::to_value(&p.plan)?;
            if let (Some(c), Some(m)) = (&estimate, doc.as_object_mut()) {
                m.insert("cost".into(), serde_json::to_value(c)?);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Markdown => print!("{md}"),
        Format::Text => {
            print!("{}", p.plan.render(ctx.color()));
            if let Some(c) = &estimate {
                print!("\n{}", c.render_text());
            }
        }
    }
    super::step_summary(&md)?;
    a.cost.check(estimate.as_ref())?;
    if let Some(out) = &a.out {
        let saved = super::saved_plan(&cloud, &a.stack, &s, binary.as_ref(), &p).await?;
        saved.write(out)?;
        eprintln!(
            "Saved the plan to {}: apply exactly it with `bookstore-infra up {} --plan {}`.",
            out.display(),
            a.stack.display(),
            out.display()
        );
    }
    ctx.print_stats(&cloud);
    Ok(if a.detailed_exitcode && p.plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}
