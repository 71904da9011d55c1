//! The `bookstore-infra` command line: parses, then hands over to the verb's
//! module under `commands/`.

mod commands;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use commands::{
    bootstrap, destroy, diff, exec, iam_policy, image, logs, outputs, releases, rollback, status,
    up, validate, Ctx, Global,
};

/// Declarative provisioning of the scaled bookstore deployment on AWS.
///
/// A stack file describes the deployment; `diff` shows what `up` would
/// change, `up` makes the cloud match the file, `destroy` removes everything
/// the stack owns. Credentials, region and endpoint come from the standard
/// AWS chain (environment, profile, instance role; `AWS_ENDPOINT_URL`).
///
/// Exit codes: 0 done, 1 error, 2 changes present (`diff
/// --detailed-exitcode`), 3 the stack's lock is held, 4 consent needed
/// (`--allow-replace`), 5 stale or foreign saved plan, 6 cost increase over
/// `--max-monthly-increase`, 7 not healthy (`status`).
#[derive(Parser)]
#[command(name = "bookstore-infra", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the plan, ask for confirmation, apply it.
    Up(up::UpArgs),
    /// Show what `up` would change, without changing anything.
    Diff(diff::DiffArgs),
    /// Delete everything the stack owns, dependents first.
    Destroy(destroy::DestroyArgs),
    /// Print the stack's outputs (ids, addresses) as they exist now.
    Outputs(outputs::OutputsArgs),
    /// Check the stack file without calling AWS.
    Validate(validate::ValidateArgs),
    /// Print the least-privilege IAM policy for a CI role running this stack.
    IamPolicy(iam_policy::IamPolicyArgs),
    /// Make, as an administrator, the permissions boundary the CI roles cannot change.
    Bootstrap(bootstrap::BootstrapArgs),
    /// Is the deployment healthy: instances, targets, rollout, database, certificate.
    Status(status::StatusArgs),
    /// The releases rolled out, newest first, and which one runs.
    Releases(releases::ReleasesArgs),
    /// Roll the instances back to an earlier release.
    Rollback(rollback::RollbackArgs),
    /// Print the app's logs from the stack's CloudWatch Logs group.
    Logs(logs::LogsArgs),
    /// Run a `bookstore` command on one healthy instance (SSM Run Command),
    /// or in one healthy task on Fargate (ECS Exec).
    Exec(exec::ExecArgs),
    /// Build the app's container image (OCI, no daemon) and print its digest.
    Image(image::ImageArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        global: cli.global,
        started: Instant::now(),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(async {
        match &cli.cmd {
            Cmd::Up(a) => up::run(&ctx, a).await,
            Cmd::Diff(a) => diff::run(&ctx, a).await,
            Cmd::Destroy(a) => destroy::run(&ctx, a).await,
            Cmd::Outputs(a) => outputs::run(&ctx, a).await,
            Cmd::Validate(a) => validate::run(a),
            Cmd::IamPolicy(a) => iam_policy::run(a),
            Cmd::Bootstrap(a) => bootstrap::run(&ctx, a).await,
            Cmd::Status(a) => status::run(&ctx, a).await,
            Cmd::Releases(a) => releases::run(&ctx, a).await,
            Cmd::Rollback(a) => rollback::run(&ctx, a).await,
            Cmd::Logs(a) => logs::run(&ctx, a).await,
            Cmd::Exec(a) => exec::run(&ctx, a).await,
            Cmd::Image(a) => image::run(a),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Errors quote the cloud (a provider's message, a lock's holder).
            let text = format!("{e:#}");
            eprintln!(
                "error: {}",
                bookstore_infra::terminal::visible(&text, bookstore_infra::terminal::Shown::Lines)
            );
            ExitCode::from(commands::code_of(&e))
        }
    }
}
