//! The `bookstore-infra` command line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use bookstore_infra::cloud::Cloud;
use bookstore_infra::engine::executor::{Executor, DEFAULT_CONCURRENCY};
use bookstore_infra::engine::plan::{self, Plan};
use bookstore_infra::lock::{self, Lock};
use bookstore_infra::progress::{Bars, Lines, Reporter};
use bookstore_infra::stack::{self, Stack};
use bookstore_infra::{ops, resources, topology};

/// Declarative provisioning of the scaled bookstore deployment on AWS.
///
/// A stack file describes the deployment; `diff` shows what `up` would
/// change, `up` makes the cloud match the file, `destroy` removes everything
/// the stack owns. Credentials, region and endpoint come from the standard
/// AWS chain (environment, profile, instance role; `AWS_ENDPOINT_URL`).
#[derive(Parser)]
#[command(name = "bookstore-infra", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// AWS region (overrides the stack file and the environment).
    #[arg(long, global = true)]
    region: Option<String>,
    /// AWS shared-config profile.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Colour: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Print the number of AWS API requests made, by operation, on stderr.
    #[arg(long, global = true)]
    stats: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the plan, ask for confirmation, apply it.
    Up {
        stack: PathBuf,
        /// Apply without asking (required when there is no terminal).
        #[arg(long)]
        yes: bool,
        /// Allow replacing or deleting this data-bearing resource (by logical id; repeatable).
        #[arg(long, value_name = "ID")]
        allow_replace: Vec<String>,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Show what `up` would change, without changing anything.
    Diff {
        stack: PathBuf,
        /// Print the plan as one JSON document.
        #[arg(long)]
        json: bool,
        /// Exit 0 when there is nothing to change, 2 when there is, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Delete everything the stack owns, dependents first.
    Destroy {
        stack: PathBuf,
        /// Destroy without asking (required when there is no terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Print the stack's outputs (ids, addresses) as they exist now.
    Outputs {
        stack: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check the stack file without calling AWS.
    Validate { stack: PathBuf },
}

#[derive(Args)]
struct RunOpts {
    /// Print the plan and the result as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Remove the stack's run lock first, whoever holds it.
    #[arg(long)]
    force_unlock: bool,
    /// Seconds without a heartbeat after which another run's lock is stale.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    lock_timeout: u64,
    /// How many resources are worked on at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

/// Exit code of `diff --detailed-exitcode` when there are changes.
const EXIT_CHANGES: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn color_on(c: Color) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

fn load(path: &Path) -> Result<Stack> {
    Ok(stack::load(path)?)
}

async fn connect(g: &Global, stack: &Stack, quiet: bool) -> Cloud {
    let reporter: Arc<dyn Reporter> = if quiet {
        Arc::new(bookstore_infra::progress::Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines::new())
    };
    let mut cloud = Cloud::connect(
        g.region.clone().or_else(|| stack.region.clone()),
        g.profile.clone(),
        reporter,
    )
    .await;
    cloud.timeouts = stack.timeouts.clone();
    cloud
}

fn print_stats(g: &Global, cloud: &Cloud, started: Instant) {
    if !g.stats {
        return;
    }
    let by = cloud.calls.by_operation();
    let detail: Vec<String> = by.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!(
        "api_calls={} wall_ms={} {}",
        cloud.calls.total(),
        started.elapsed().as_millis(),
        detail.join(" ")
    );
}

/// Asks on the terminal; refuses without one.
fn confirm(question: &str, yes: bool) -> Result<bool> {
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

struct Planned {
    plan: Plan,
    desired: Vec<bookstore_infra::engine::Desired>,
    observed: Vec<bookstore_infra::engine::Observed>,
    outputs: Vec<(&'static str, Value)>,
}

async fn plan_stack(
    cloud: &Cloud,
    stack: &Stack,
    binary: Option<(PathBuf, String)>,
) -> Result<Planned> {
    let registry = resources::registry();
    let (facts, observed) = tokio::try_join!(
        ops::facts(cloud, stack, binary),
        ops::observe(cloud, &registry, &stack.name)
    )?;
    let desired = topology::desired(stack, &facts);
    let outputs = topology::outputs(stack, &facts);
    let plan = plan::plan(&stack.name, &registry, &desired, &observed)?;
    Ok(Planned {
        plan,
        desired,
        observed,
        outputs,
    })
}

async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    let color = color_on(g.color);
    let started = Instant::now();
    match &cli.cmd {
        Cmd::Validate { stack } => {
            let s = load(stack)?;
            println!(
                "{}: valid. Stack `{}`: {} zones, VPC {}, NAT {:?}, app port {}.",
                stack.display(),
                s.name,
                s.network.az_count,
                s.network.cidr,
                s.network.nat,
                s.app.port
            );
            Ok(0)
        }
        Cmd::Diff {
            stack,
            json,
            detailed_exitcode,
        } => {
            let s = load(stack)?;
            let binary = ops::binary(&s)?;
            let cloud = connect(g, &s, true).await;
            let p = plan_stack(&cloud, &s, binary).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&p.plan)?);
            } else {
                print!("{}", p.plan.render(color));
            }
            print_stats(g, &cloud, started);
            Ok(if *detailed_exitcode && p.plan.has_changes() {
                EXIT_CHANGES
            } else {
                0
            })
        }
        Cmd::Outputs { stack, json } => {
            let s = load(stack)?;
            let cloud = connect(g, &s, true).await;
            let registry = resources::registry();
            // Outputs do not depend on the binary's content, only on what exists.
            let binary = ops::binary(&s).unwrap_or_else(|_| Some((PathBuf::new(), "0".repeat(64))));
            let (facts, observed) = tokio::try_join!(
                ops::facts(&cloud, &s, binary),
                ops::observe(&cloud, &registry, &s.name)
            )?;
            let out = ops::resolve_outputs(&topology::outputs(&s, &facts), &observed);
            if *json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", ops::render_outputs(&out));
            }
            print_stats(g, &cloud, started);
            Ok(0)
        }
        Cmd::Up {
            stack,
            yes,
            allow_replace,
            run,
        } => {
            let s = load(stack)?;
            let binary = ops::binary(&s)?;
            let cloud = connect(g, &s, false).await;
            let lock = take_lock(&cloud, &s, run, "up").await?;
            let result =
                interruptible(up(&cloud, &s, binary, *yes, allow_replace, run, color)).await;
            let released = lock.release().await;
            print_stats(g, &cloud, started);
            let code = result?;
            released.context("releasing the stack's lock")?;
            Ok(code)
        }
        Cmd::Destroy { stack, yes, run } => {
            let s = load(stack)?;
            let cloud = connect(g, &s, false).await;
            let lock = take_lock(&cloud, &s, run, "destroy").await?;
            let result = interruptible(destroy(&cloud, &s, *yes, run, color)).await;
            let released = lock.release().await;
            print_stats(g, &cloud, started);
            let code = result?;
            released.context("releasing the stack's lock")?;
            Ok(code)
        }
    }
}

/// Stops at Ctrl-C or SIGTERM, so the caller can release the lock. Every
/// step is safe to interrupt: the next run picks up where this one stopped.
async fn interruptible(work: impl std::future::Future<Output = Result<u8>>) -> Result<u8> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; nothing is left half-made that the next run cannot finish: run the command again"),
        _ = term.recv() => bail!("terminated; run the command again to continue"),
    }
}

async fn take_lock(cloud: &Cloud, s: &Stack, run: &RunOpts, command: &str) -> Result<Lock> {
    if run.force_unlock {
        if let Some(h) = lock::holder(cloud, &s.name).await? {
            eprintln!("removing the lock of {h}");
        }
        lock::force_unlock(cloud, &s.name).await?;
    }
    Ok(Lock::acquire(
        cloud,
        &s.name,
        command,
        Duration::from_secs(run.lock_timeout),
    )
    .await?)
}

async fn up(
    cloud: &Cloud,
    s: &Stack,
    binary: Option<(PathBuf, String)>,
    yes: bool,
    allow_replace: &[String],
    run: &RunOpts,
    color: bool,
) -> Result<u8> {
    let p = plan_stack(cloud, s, binary).await?;
    if !run.json {
        print!("{}", p.plan.render(color));
    }
    let applied = if p.plan.has_changes() {
        if !confirm("Apply this plan?", yes)? {
            eprintln!("Not applied.");
            return Ok(1);
        }
        let registry = resources::registry();
        let exec = Executor {
            cloud,
            registry: &registry,
            stack: &s.name,
            concurrency: run.concurrency.max(1),
        };
        exec.apply(&p.plan, &p.desired, &p.observed, allow_replace)
            .await?;
        true
    } else {
        false
    };
    let observed = if applied {
        ops::observe(cloud, &resources::registry(), &s.name).await?
    } else {
        p.observed
    };
    let outputs = ops::resolve_outputs(&p.outputs, &observed);
    if run.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"plan": p.plan, "applied": applied, "outputs": outputs})
            )?
        );
    } else {
        if applied {
            println!(
                "\nApplied: {}",
                p.plan.summary_line().trim_start_matches("Plan: ")
            );
        }
        println!("\nOutputs:\n{}", ops::render_outputs(&outputs));
    }
    Ok(0)
}

async fn destroy(cloud: &Cloud, s: &Stack, yes: bool, run: &RunOpts, color: bool) -> Result<u8> {
    let registry = resources::registry();
    let observed = ops::observe(cloud, &registry, &s.name).await?;
    let p = plan::destroy_plan(&s.name, &registry, &observed);
    if !run.json {
        print!("{}", p.render(color));
    }
    if p.has_changes() {
        if !confirm(&format!("Destroy everything stack `{}` owns?", s.name), yes)? {
            eprintln!("Nothing destroyed.");
            return Ok(1);
        }
        let exec = Executor {
            cloud,
            registry: &registry,
            stack: &s.name,
            concurrency: run.concurrency.max(1),
        };
        // Naming the stack in `destroy` is the consent for every resource in it.
        let all: Vec<String> = p.steps.iter().map(|st| st.id.clone()).collect();
        exec.apply(&p, &[], &observed, &all).await?;
    }
    if run.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"plan": p, "applied": p.has_changes()}))?
        );
    }
    Ok(0)
}
