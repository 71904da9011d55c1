//! `outputs STACK`: the stack's outputs (ids, addresses) as they exist now.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use bookstore_infra::{ops, resources, topology};

use super::Ctx;

#[derive(Args)]
pub struct OutputsArgs {
    pub stack: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, a: &OutputsArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, true).await;
    let registry = resources::registry();
    // Outputs do not depend on the binary's content, only on what exists.
    let binary = ops::binary(&s).unwrap_or_else(|_| Some((PathBuf::new(), "0".repeat(64))));
    let (facts, observed) = tokio::try_join!(
        ops::facts(&cloud, &s, binary),
        ops::observe(&cloud, &registry, &s.name)
    )?;
    let out = ops::resolve_outputs(&topology::outputs(&s, &facts), &observed);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", ops::render_outputs(&out));
    }
    ctx.print_stats(&cloud);
    Ok(super::exit::OK)
}
