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
    if s.app.runtime == bookstore_infra::stack::Runtime::Fargate {
        return rollback_fargate(cloud, fence, s, a).await;
    }
    let listing = releases::list(cloud, &s.name).await?;
    let Some(lt) = listing.launch_template_id.clone() else {
        return Err(releases::ReleaseError::NoTemplate(s.name.to_string()).into());
    };
    let target = releases::rollback_target(&listing, a.to)?.clone();
    let group = listing
        .group
        .clone()
        .ok_or_else(|| releases::ReleaseError::NoGroup(s.name.to_string()))?;
    let from = group
        .rolled_out
        .or(group.version)
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    let sha = target.sha256.as_deref().unwrap_or("?");
    let question = format!(
        "Roll group {} back from release {from} to release {} (binary {}, commit {})?",
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
    autoscaling_group::roll_back(
        cloud,
        &group.name,
        &TemplateVersion::new(&lt, &target.version.to_string()),
        &releases::rolled_back_from(&listing, &from),
        (
            s.app.refresh_min_healthy as i32,
            s.app.refresh_warmup as i32,
        ),
        s.app.min_size as usize,
        // One instance takes the release in place, as `up` gives it one.
        s.single.is_some(),
    )
    .await?;
    if a.run.json {
        let after = releases::list(cloud, &s.name).await?;
        println!("{}", serde_json::to_string_pretty(&after)?);
    } else {
        println!(
            "Rolled back to release {}. `up` keeps the group there until the stack file ships another binary; `up --roll-forward` rolls forward to this one.",
            target.version
        );
    }
    Ok(super::exit::OK)
}

/// The service moves to an earlier task definition revision.
async fn rollback_fargate(cloud: &Cloud, fence: Fence, s: &Stack, a: &RollbackArgs) -> Result<u8> {
    let listing = releases::list_fargate(cloud, &s.name).await?;
    let service = listing
        .group
        .clone()
        .ok_or_else(|| releases::ReleaseError::NoService(s.name.to_string()))?;
    let target = releases::rollback_target(&listing, a.to)?.clone();
    let arn = target
        .task_definition
        .clone()
        .expect("a Fargate release is a task definition revision");
    let from = service
        .rolled_out
        .or(service.version)
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    let sha = target.sha256.as_deref().unwrap_or("?");
    let question = format!(
        "Roll service {} back from revision {from} to revision {} (binary {}, commit {})?",
        service.name,
        target.version,
        &sha[..12.min(sha.len())],
        target.commit.as_deref().unwrap_or("-"),
    );
    if !ask(&question, a)? {
        return Ok(super::exit::ERROR);
    }
    fence.check().await?;
    ecs_service::roll_back(
        cloud,
        &s.name,
        &arn,
        &format!(
            "{} from {}",
            target.version,
            releases::rolled_back_from(&listing, &from)
        ),
    )
    .await?;
    if a.run.json {
        let after = releases::list_fargate(cloud, &s.name).await?;
        println!("{}", serde_json::to_string_pretty(&after)?);
    } else {
        println!(
            "Rolled back to revision {}. `up` keeps the service there until the stack file ships another binary; `up --roll-forward` rolls forward to this one.",
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
