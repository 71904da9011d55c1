//! `bookstore`: the web shop every instance of the deployment runs.

use clap::Parser;

// The system allocator spends a sixth of a catalog request in malloc/free.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = bookstore::config::Cli::parse();
    bookstore::telemetry::init();
    bookstore::startup::run(cli).await
}
