//! `destroy STACK`: deletes everything the stack owns, dependents first.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use bookstore_infra::cloud::Cloud;
use bookstore_infra::engine::plan;
use bookstore_infra::lock::Fence;
use bookstore_infra::stack::Stack;
use bookstore_infra::{pipeline, resources};

use super::{Ctx, RunOpts};

#[derive(Args)]
pub struct DestroyArgs {
    pub stack: PathBuf,
    /// Destroy without asking (required when there is no terminal).
    #[arg(long)]
    pub yes: bool,
    /// Consent to deleting a data-bearing resource (the database, the data
    /// volume), after its final snapshot; repeatable. Without it `destroy`
    /// deletes nothing and exits 4.
    #[arg(long = "allow-delete", alias = "allow-replace", value_name = "ID")]
    pub allow_delete: Vec<String>,
    #[command(flatten)]
    pub run: RunOpts,
}

pub async fn run(ctx: &Ctx, a: &DestroyArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, false).await;
    super::locked(ctx, &cloud, &s, &a.run, "destroy", {
        let (c, st) = (&cloud, &s);
        move |fence: Fence| async move { destroy(ctx, c, fence, st, a).await }
    })
    .await
}

async fn destroy(ctx: &Ctx, cloud: &Cloud, fence: Fence, s: &Stack, a: &DestroyArgs) -> Result<u8> {
    let registry = resources::registry();
    let observed = pipeline::observe(cloud, &registry, &s.name).await?;
    let p = plan::destroy_plan(&s.name, &registry, &observed);
    if !a.run.json {
        print!("{}", p.render(ctx.color()));
    }
    let blocked: Vec<&str> = p
        .unconsented(&a.allow_delete)
        .map(|st| st.id.as_str())
        .collect();
    if !blocked.is_empty() {
        let flags: Vec<String> = blocked
            .iter()
            .map(|id| format!("--allow-delete {id}"))
            .collect();
        return Err(super::Exit::new(
            super::exit::CONSENT_NEEDED,
            format!(
                "destroy would delete data-bearing resources ({}), each after its final snapshot; nothing was deleted. \
                 Name them to consent: {}",
                blocked.join(", "),
                flags.join(" ")
            ),
        )
        .into());
    }
    if p.has_changes() {
        if !super::confirm(
            &format!("Destroy everything stack `{}` owns?", s.name),
            a.yes,
        )? {
            eprintln!("Nothing destroyed.");
            return Ok(super::exit::ERROR);
        }
        // Naming the stack in `destroy` is the consent for every resource in it.
        let all: Vec<String> = p.steps.iter().map(|st| st.id.clone()).collect();
        pipeline::apply(
            cloud,
            &s.name,
            Some(fence),
            a.run.concurrency,
            &p,
            &[],
            &observed,
            &all,
        )
        .await?;
    }
    if a.run.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"plan": p, "applied": p.has_changes()}))?
        );
    }
    Ok(super::exit::OK)
}
