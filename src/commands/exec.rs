//! `exec STACK -- bookstore ARGS...`: runs the app's command on one healthy
//! instance through Systems Manager Run Command (on Fargate: in one healthy
//! task through ECS Exec), prints its output and exits with its exit
//! status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use bookstore_infra::exec;
use bookstore_infra::terminal::{visible, Shown};

use super::Ctx;

#[derive(Args)]
pub struct ExecArgs {
    pub stack: PathBuf,
    /// This instance rather than the first healthy one.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Fargate: this task (id or ARN) rather than the first healthy one.
    #[arg(long, value_name = "ID", conflicts_with = "instance")]
    pub task: Option<String>,
    /// Seconds to wait for the command to finish.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// The command: `bookstore` and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub async fn run(ctx: &Ctx, a: &ExecArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    // Refused before any API call.
    let line = exec::command_line(&a.command)?;
    let fargate = s.app.runtime == bookstore_infra::stack::Runtime::Fargate;
    match (fargate, &a.instance, &a.task) {
        (true, Some(_), _) => anyhow::bail!(
            "stack {} runs on Fargate: name a task with --task, not an instance",
            s.name
        ),
        (false, _, Some(_)) => anyhow::bail!(
            "stack {} runs on instances: name one with --instance, not a task",
            s.name
        ),
        _ => {}
    }
    let cloud = ctx.connect(&s, true).await;
    let poll = cloud.poll.min(Duration::from_secs(1));
    if fargate {
        return on_fargate(ctx, &cloud, &s.name, a, poll).await;
    }
    // An agent registers within a minute or two of boot.
    let agent_wait = (cloud.poll * 24).min(Duration::from_secs(120));
    let instance = exec::choose(
        &cloud,
        &s.name,
        a.instance.as_deref(),
        agent_wait,
        poll,
        |m| eprintln!("{m}"),
    )
    .await?;
    eprintln!("running on {instance}: {}", a.command.join(" "));
    let out = exec::run(
        &cloud,
        &s.name,
        &instance,
        &line,
        Duration::from_secs(a.timeout),
        poll,
    )
    .await?;
    // What the instance printed: its control characters are shown, not
    // obeyed by the operator's terminal.
    print!("{}", visible(&out.stdout, Shown::Lines));
    eprint!("{}", visible(&out.stderr, Shown::Lines));
    ctx.print_stats(&cloud);
    // An exit status beyond a process's 0-255 still fails.
    Ok(u8::try_from(out.exit_code).unwrap_or(super::exit::ERROR))
}

/// The command in a task, through ECS Exec.
async fn on_fargate(
    ctx: &Ctx,
    cloud: &bookstore_infra::cloud::Cloud,
    stack: &str,
    a: &ExecArgs,
    poll: Duration,
) -> Result<u8> {
    use bookstore_infra::exec::fargate;
    // ECS starts the agent shortly after the task.
    let agent_wait = (cloud.poll * 24).min(Duration::from_secs(120));
    let (cluster, task) = fargate::choose(cloud, stack, a.task.as_deref(), agent_wait, poll, |m| {
        eprintln!("{m}")
    })
    .await?;
    eprintln!("running in task {}: {}", task.id, a.command.join(" "));
    let out = fargate::run(
        cloud,
        &cluster,
        &task,
        &a.command,
        Duration::from_secs(a.timeout),
    )
    .await?;
    print!(
        "{}",
        visible(&String::from_utf8_lossy(&out.output), Shown::Lines)
    );
    ctx.print_stats(cloud);
    match out.exit_code {
        Some(code) => Ok(u8::try_from(code).unwrap_or(super::exit::ERROR)),
        None => {
            eprintln!(
                "error: the command's exit status is unknown: ECS Exec reports none, and the app did not print its own (was it killed, or is its binary older than `{}`?)",
                fargate::REPORT_EXIT
            );
            Ok(super::exit::ERROR)
        }
    }
}
