//! `releases STACK`: the stack's releases, newest first, and which one the
//! group runs. Reads only (see [`bookstore_infra::releases`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use bookstore_infra::releases::{self, Listing};

use super::Ctx;

#[derive(Args)]
pub struct ReleasesArgs {
    pub stack: PathBuf,
    /// Print the releases as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Ctx, a: &ReleasesArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, true).await;
    let listing = match s.app.runtime {
        bookstore_infra::stack::Runtime::Fargate => releases::list_fargate(&cloud, &s.name).await?,
        bookstore_infra::stack::Runtime::Instances => releases::list(&cloud, &s.name).await?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", text(&listing));
    }
    ctx.print_stats(&cloud);
    Ok(super::exit::OK)
}

/// One line a release: version, short sha256, commit, time, and marks.
fn text(l: &Listing) -> String {
    if l.releases.is_empty() {
        return format!(
            "Stack {} has no releases yet: `up` makes the first.\n",
            l.stack
        );
    }
    let short = |s: Option<&str>, n: usize| {
        s.map(|s| s[..n.min(s.len())].to_string())
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:>7}  {:<12}  {:<12}  {:<20}  {}\n",
        "VERSION", "SHA256", "COMMIT", "CREATED", "STATE"
    );
    for r in &l.releases {
        let mut marks = Vec::new();
        if r.rolled_out {
            marks.push("running");
        } else if r.wanted {
            marks.push("rolling out");
        }
        if r.default {
            marks.push("latest");
        }
        if !r.artifact {
            marks.push("binary pruned");
        }
        out.push_str(&format!(
            "{:>7}  {:<12}  {:<12}  {:<20}  {}\n",
            r.version,
            short(r.sha256.as_deref(), 12),
            short(r.commit.as_deref(), 12),
            r.created.as_deref().unwrap_or("-"),
            marks.join(", ")
        ));
    }
    if let Some(rb) = l.group.as_ref().and_then(|g| g.rolled_back.as_deref()) {
        out.push_str(&format!(
            "\nThe group was rolled back ({rb}) by `rollback`: `up` keeps it there until the stack file ships another binary, or with `--roll-forward`.\n"
        ));
    }
    out
}
