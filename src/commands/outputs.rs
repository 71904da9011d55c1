//! `outputs STACK`: the stack's outputs (ids, addresses) as they exist now.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use serde_json::{Map, Value};

use bookstore_infra::pipeline;

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
    let out = pipeline::current(&cloud, &s).await?.outputs;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&out));
    }
    ctx.print_stats(&cloud);
    Ok(super::exit::OK)
}

/// Outputs as `name = value` lines.
pub fn render(outputs: &Map<String, Value>) -> String {
    let mut s = String::new();
    for (k, v) in outputs {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}
