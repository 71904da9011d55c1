//! `rollback STACK [--to VERSION]`: rolls the app's group back onto an
//! earlier release (default: the one before the release it runs) with the
//! same instance refresh `up` uses, and records it on the group. On
//! Fargate the release is a task definition revision: the service rolls
//! onto it with a deployment judged as `up` judges one, and the rollback
//! is recorded on the service.
//!
//! The next `up` does not undo it: while the stack file still ships the
//! binary rolled back from, the group stays on the older release and the
//! plan says so in a note. A new binary (the fix) rolls forward as any
//! release does; `up --roll-forward` rolls forward to the same binary on
//! purpose. Either plan shows the group's `rolled_back` note going away
//! beside its `launch_template_version` change, and `up` asks first.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use bookstore_infra::cloud::Cloud;
use bookstore_infra::lock::Fence;
use bookstore_infra::releases;
use bookstore_infra::resources::autoscaling_group::{self, TemplateVersion};
use bookstore_infra::resources::ecs_service;
use bookstore_infra::stack::Stack;

use super::{Ctx, RunOpts};

#[derive(Args)]
pub struct RollbackArgs {
    pub stack: PathBuf,
    /// The release (launch template version; task definition revision on
    /// Fargate) to go back to; default: the
    /// one before the release the group runs (`releases` lists them).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<i64>,
    /// Roll back without asking (required when there is no terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub run: RunOpts,
}

pub async fn run(ctx: &Ctx, a: &RollbackArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, false).await;
    super::locked(ctx, &cloud, &s, &a.run, "rollback", {
        let (c, st) = (&cloud, &s);
        move |fence: Fence| async move { rollback(c, fence, st, a).await }
    })
    .await
}

async fn rollback(cloud: &Cloud, fence: Fence, s: &Stack, a: &RollbackArgs) -> Result<u8> {
    let fargate = s.app.runtime == bookstore_infra::stack::Runtime::Fargate;
    // What holds the releases, and what one is called, on each runtime.
    let (holder, release) = if fargate {
        ("service", "revision")
    } else {
        ("group", "release")
    };
    let list = || async {
        if fargate {
            releases::list_fargate(cloud, &s.name).await
        } else {
            releases::list(cloud, &s.name).await
        }
    };
    let listing = list().await?;
    let lt = match (&listing.launch_template_id, fargate) {
        (Some(lt), false) => lt.clone(),
        (None, false) => return Err(releases::ReleaseError::NoTemplate(s.name.to_string()).into()),
        (_, true) => String::new(),
    };
    let group = listing.group.clone().ok_or_else(|| {
        let name = s.name.to_string();
        if fargate {
            releases::ReleaseError::NoService(name)
        } else {
            releases::ReleaseError::NoGroup(name)
        }
    })?;
    let target = releases::rollback_target(&listing, a.to)?.clone();
    let from = group
        .rolled_out
        .or(group.version)
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    let sha = target.sha256.as_deref().unwrap_or("?");
    let question = format!(
        "Roll {holder} {} back from {release} {from} to {release} {} (binary {}, commit {})?",
        group.name,
        target.version,
        &sha[..12.min(sha.len())],
        target.commit.as_deref().unwrap_or("-"),
    );
    if !ask(&question, a)? {
        return Ok(super::exit::ERROR);
    }
    // Once another run has taken the lock over, this one changes nothing.
    fence.check().await?;
    // A rollback after a rollback keeps the release first rolled back from.
    let origin = releases::rolled_back_from(&listing, &from);
    if fargate {
        let arn = target
            .task_definition
            .as_deref()
            .expect("a Fargate release is a task definition revision");
        let tag = format!("{} from {origin}", target.version);
        ecs_service::roll_back(cloud, &s.name, arn, &tag).await?;
    } else {
        autoscaling_group::roll_back(
            cloud,
            &group.name,
            &TemplateVersion::new(&lt, &target.version.to_string()),
            &origin,
            (
                s.app.refresh_min_healthy as i32,
                s.app.refresh_warmup as i32,
            ),
            s.app.min_size as usize,
            // One instance takes the release in place, as `up` gives it one.
            s.single.is_some(),
        )
        .await?;
    }
    if a.run.json {
        println!("{}", serde_json::to_string_pretty(&list().await?)?);
    } else {
        println!(
            "Rolled back to {release} {}. `up` keeps the {holder} there until the stack file ships another binary; `up --roll-forward` rolls forward to this one.",
            target.version
        );
    }
    Ok(super::exit::OK)
}

/// Shows `question` (not in JSON mode) and asks it, unless `--yes`.
fn ask(question: &str, a: &RollbackArgs) -> Result<bool> {
    if !a.run.json {
        println!("{question}");
    }
    let yes = super::confirm(question, a.yes)?;
    if !yes {
        eprintln!("Not rolled back.");
    }
    Ok(yes)
}
