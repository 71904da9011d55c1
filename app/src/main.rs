//! `bookstore`: the web shop every instance of the deployment runs.

use clap::Parser;

// The system allocator spends a sixth of a catalog request in malloc/free.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = bookstore::config::Cli::parse();
    // Before the runtime starts its threads: this changes the environment.
    bookstore::listen::take_env();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            bookstore::telemetry::init();
            bookstore::startup::run(cli).await
        })
}
