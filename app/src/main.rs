//! `bookstore`: the web shop every instance of the deployment runs.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

// The system allocator spends a sixth of a catalog request in malloc/free.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Before any other argument: print the exit status as the last line,
/// `bookstore-exit-status: N`, for a runner that cannot see it (ECS Exec
/// runs a command in a terminal and reports no status).
const REPORT_EXIT: &str = "--report-exit";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let report = args.get(1).is_some_and(|a| a == REPORT_EXIT);
    if report {
        args.remove(1);
    }
    let code = run(args);
    if report {
        let _ = std::io::stderr().flush();
        // On a line of its own, whatever the output ended with.
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\nbookstore-exit-status: {code}\n");
        let _ = out.flush();
    }
    ExitCode::from(code)
}

fn run(args: Vec<OsString>) -> u8 {
    let cli = match bookstore::config::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    // Before the runtime starts its threads: this changes the environment.
    bookstore::listen::take_env();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                bookstore::telemetry::init();
                bookstore::startup::run(cli).await
            })
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:?}");
            1
        }
    }
}
