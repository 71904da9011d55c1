//! One file per verb; what they share is here: loading, connecting,
//! planning, confirming, the lock, and the exit codes.

pub mod bootstrap;
pub mod destroy;
pub mod diff;
pub mod exec;
pub mod iam_policy;
pub mod image;
pub mod logs;
pub mod outputs;
pub mod releases;
pub mod rollback;
pub mod status;
pub mod up;
pub mod validate;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use bookstore_infra::cloud::Cloud;
use bookstore_infra::cost;
use bookstore_infra::engine::executor::{ExecError, DEFAULT_CONCURRENCY};
use bookstore_infra::engine::plan::Plan;
use bookstore_infra::lock::{self, Fence, Lock, LockError};
use bookstore_infra::pipeline::{self, PipelineError, Planned};
use bookstore_infra::planfile::{self, Fingerprint, SavedPlan};
use bookstore_infra::progress::{Bars, Lines, Reporter};
use bookstore_infra::stack::{self, Stack};
use bookstore_infra::topology;

/// The exit codes of every verb (the README's table).
pub mod exit {
    /// Done; for `diff --detailed-exitcode`, nothing to change.
    pub const OK: u8 = 0;
    /// Any error, including a stack file error and a refused confirmation.
    pub const ERROR: u8 = 1;
    /// `diff --detailed-exitcode`: there are changes.
    pub const CHANGES: u8 = 2;
    /// Another run holds the stack's lock (or took it over from this run).
    pub const LOCK_HELD: u8 = 3;
    /// The plan replaces or deletes a data-bearing resource: `--allow-replace ID`.
    pub const CONSENT_NEEDED: u8 = 4;
    /// `up --plan`: planning again gives another plan, or the plan is for
    /// another stack, account or region. Nothing was applied.
    pub const STALE_PLAN: u8 = 5;
    /// `--max-monthly-increase`: the estimated monthly cost rises by more.
    pub const COST_LIMIT: u8 = 6;
    /// `status`: the stack is not healthy (a target, the database, the
    /// certificate or the probe).
    pub const UNHEALTHY: u8 = 7;
}

/// An error that ends the run with its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: message.into(),
        }
    }
}

/// The exit code an error ends the run with.
pub fn code_of(e: &anyhow::Error) -> u8 {
    // An `Exit` given as context is found here, not in the chain.
    if let Some(x) = e.downcast_ref::<Exit>() {
        return x.code;
    }
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            return x.code;
        }
        if let Some(LockError::Held { .. } | LockError::Lost { .. }) =
            cause.downcast_ref::<LockError>()
        {
            return exit::LOCK_HELD;
        }
        if let Some(ExecError::NeedsConsent(_)) = cause.downcast_ref::<ExecError>() {
            return exit::CONSENT_NEEDED;
        }
        if let Some(PipelineError::Exec(ExecError::NeedsConsent(_))) =
            cause.downcast_ref::<PipelineError>()
        {
            return exit::CONSENT_NEEDED;
        }
    }
    exit::ERROR
}

#[derive(Args)]
pub struct Global {
    /// AWS region (overrides the stack file and the environment).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS shared-config profile.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Colour: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Print the number of AWS API requests made, by operation, on stderr.
    #[arg(long, global = true)]
    pub stats: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Options of the verbs that change the cloud.
#[derive(Args)]
pub struct RunOpts {
    /// Print the plan and the result as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Remove the stack's run lock first, whoever holds it.
    #[arg(long)]
    pub force_unlock: bool,
    /// Seconds without a heartbeat after which another run's lock is stale.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// Wait up to this many seconds for another run's lock instead of
    /// stopping at once (CI queues).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_wait: u64,
    /// How many resources are worked on at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

/// What a run needs from the command line besides its verb.
pub struct Ctx {
    pub global: Global,
    pub started: Instant,
}

impl Ctx {
    pub fn color(&self) -> bool {
        match self.global.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }

    pub async fn connect(&self, stack: &Stack, quiet: bool) -> Cloud {
        let reporter: Arc<dyn Reporter> = if quiet {
            Arc::new(bookstore_infra::progress::Silent)
        } else if std::io::stderr().is_terminal() {
            Arc::new(Bars::new())
        } else {
            Arc::new(Lines::new())
        };
        pipeline::connect(
            stack,
            self.global.region.clone(),
            self.global.profile.clone(),
            reporter,
        )
        .await
    }

    pub fn print_stats(&self, cloud: &Cloud) {
        if !self.global.stats {
            return;
        }
        let by = cloud.calls.by_operation();
        let detail: Vec<String> = by.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "api_calls={} wall_ms={} {}",
            cloud.calls.total(),
            self.started.elapsed().as_millis(),
            detail.join(" ")
        );
    }
}

pub fn load(path: &Path) -> Result<Stack> {
    Ok(stack::load(path)?)
}

/// Loads the stack and checks every name and value it composes against
/// AWS's rules, located at the key that caused a refusal: what `validate`,
/// `diff` and `up` run before any API call. The other verbs only load, so
/// that a stack made before a rule was checked can still be read and
/// destroyed.
pub fn load_checked(path: &Path) -> Result<Stack> {
    let s = stack::load(path)?;
    topology::check::composed(&s)?;
    Ok(s)
}

/// Asks on the terminal; refuses without one.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("there is no terminal to confirm on: review the plan with `diff`, then pass --yes");
    }
    eprint!("{question} Only 'yes' is accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Stops at Ctrl-C or SIGTERM, so the caller can release the lock. Every
/// step is safe to interrupt: the next run picks up where this one stopped.
pub async fn interruptible(work: impl std::future::Future<Output = Result<u8>>) -> Result<u8> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; nothing is left half-made that the next run cannot finish: run the command again"),
        _ = term.recv() => bail!("terminated; run the command again to continue"),
    }
}

pub async fn take_lock(cloud: &Cloud, s: &Stack, run: &RunOpts, command: &str) -> Result<Lock> {
    if run.force_unlock {
        if let Some(h) = lock::holder(cloud, &s.name).await? {
            eprintln!("removing the lock of {h}");
        }
        lock::force_unlock(cloud, &s.name).await?;
    }
    Ok(Lock::acquire_waiting(
        cloud,
        &s.name,
        command,
        Duration::from_secs(run.lock_timeout),
        (run.lock_wait > 0).then(|| Duration::from_secs(run.lock_wait)),
    )
    .await?)
}

/// Runs `work` under the stack's lock and gives the lock back, whatever
/// the outcome. `work` gets the lock's fence for the executor: once the
/// lock is taken over (this run was paused past its lease), no step
/// changes anything.
pub async fn locked<F, Fut>(
    ctx: &Ctx,
    cloud: &Cloud,
    s: &Stack,
    run: &RunOpts,
    command: &str,
    work: F,
) -> Result<u8>
where
    F: FnOnce(Fence) -> Fut,
    Fut: std::future::Future<Output = Result<u8>>,
{
    let lock = take_lock(cloud, s, run, command).await?;
    let fence = lock.fence();
    let mut result = interruptible(work(fence.clone())).await;
    if result.is_err() && fence.is_lost().await {
        result = result.map_err(|e| {
            e.context(Exit::new(
                exit::LOCK_HELD,
                "another run took over the stack's lock while this one was paused past its lease: this run stopped without changing anything more",
            ))
        });
    }
    let released = lock.release().await;
    ctx.print_stats(cloud);
    let code = result?;
    released.map_err(|e| anyhow::anyhow!(e).context("releasing the stack's lock"))?;
    Ok(code)
}

/// Appends `markdown` to the GitHub Actions job summary when the run is in
/// one (`GITHUB_STEP_SUMMARY` names the file).
pub fn step_summary(markdown: &str) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    if path.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot append to GITHUB_STEP_SUMMARY {path:?}: {e}"))?;
    writeln!(f, "{markdown}")?;
    Ok(())
}

/// The saved form of `p`, fingerprinted with what it was computed from.
pub async fn saved_plan(
    cloud: &Cloud,
    stack_file: &Path,
    s: &Stack,
    binary: Option<&(PathBuf, String)>,
    p: &Planned,
) -> Result<SavedPlan> {
    Ok(SavedPlan::new(
        Fingerprint {
            stack: s.name.to_string(),
            stack_sha256: planfile::sha256_file(stack_file)?,
            binary_sha256: binary.map(|(_, sha)| sha.clone()),
            account: cloud.account().await?,
            region: cloud.region.clone(),
        },
        &p.plan,
        &p.observed,
    ))
}

/// How `diff` prints the plan.
#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
pub enum Format {
    /// For a terminal.
    Text,
    /// One JSON document (the contract CI parses).
    Json,
    /// GitHub-flavoured markdown, for a pull request or a job summary.
    Markdown,
}

/// `--cost` and `--max-monthly-increase`, shared by `diff` and `up`.
#[derive(Args)]
pub struct CostOpts {
    /// Estimate the stack's monthly cost before and after the plan, per
    /// resource (from the price table shipped with the tool).
    #[arg(long)]
    pub cost: bool,
    /// Fail (exit code 6) when the estimated monthly cost at maximum size
    /// rises by more than this many US dollars. Implies --cost.
    #[arg(long, value_name = "USD")]
    pub max_monthly_increase: Option<f64>,
}

impl CostOpts {
    /// The estimate, when asked for.
    pub fn estimate(&self, cloud: &Cloud, p: &Planned) -> Result<Option<cost::Comparison>> {
        if !self.cost && self.max_monthly_increase.is_none() {
            return Ok(None);
        }
        Ok(Some(cost::compare(&cloud.region, &p.observed, &p.desired)?))
    }

    /// Fails the run when the increase is over the limit.
    pub fn check(&self, c: Option<&cost::Comparison>) -> Result<()> {
        if let (Some(max), Some(c)) = (self.max_monthly_increase, c) {
            if cost::exceeds(c, max) {
                return Err(Exit::new(
                    exit::COST_LIMIT,
                    format!(
                        "the estimated monthly cost rises by up to {:.2} USD, over the limit of {max:.2} USD (--max-monthly-increase)",
                        c.increase_max
                    ),
                )
                .into());
            }
        }
        Ok(())
    }
}

/// The plan as markdown, with extra sections (the cost) after it.
pub fn markdown(plan: &Plan, sections: &[String]) -> String {
    bookstore_infra::engine::markdown::render(plan, sections)
}
