//! `logs STACK`: the app's logs, from the stack's CloudWatch Logs group.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use bookstore_infra::logs::{self, Event, Follower};

use super::Ctx;

#[derive(Args)]
pub struct LogsArgs {
    pub stack: PathBuf,
    /// How far back to start: 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Keep polling for new events until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Only this instance's events (its stream).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Fargate: only this task's events (its containers' streams).
    #[arg(long, value_name = "ID", conflicts_with = "instance")]
    pub task: Option<String>,
    /// Print each event's message as it was logged (the app's JSON lines;
    /// characters a terminal would act on are escaped, as in the text).
    #[arg(long)]
    pub json: bool,
}

/// How often `--follow` asks for new events: CloudWatch Logs shows an
/// event a few seconds after it is put.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

fn print(events: &[Event], json: bool) {
    for e in events {
        if json {
            println!("{}", logs::raw(e));
        } else {
            println!("{}", logs::render(e));
        }
    }
}

pub async fn run(ctx: &Ctx, a: &LogsArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let start = logs::since_ms(logs::parse_duration(&a.since)?);
    let cloud = ctx.connect(&s, true).await;
    let streams: Vec<String> = match (&a.instance, &a.task) {
        (Some(i), _) => vec![i.clone()],
        (None, Some(t)) => logs::task_streams(t),
        (None, None) => Vec::new(),
    };
    if !a.follow {
        print(
            &logs::fetch(&cloud, &s.name, start, &streams).await?,
            a.json,
        );
        ctx.print_stats(&cloud);
        return Ok(super::exit::OK);
    }
    let mut f = Follower::new(start);
    loop {
        print(&f.poll(&cloud, &s.name, &streams).await?, a.json);
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    ctx.print_stats(&cloud);
    Ok(super::exit::OK)
}
