//! The command line and the environment: everything the app is told.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The bookstore web shop.
#[derive(Parser)]
#[command(name = "bookstore", version)]
pub struct Cli {
    /// Database: `sqlite:PATH` (created if missing) or `mysql://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(
        long,
        global = true,
        env = "BOOKSTORE_DATABASE_URL",
        default_value = "sqlite:bookstore.db"
    )]
    pub database_url: String,
    /// A command printing the database password (tried again when the database refuses it).
    #[arg(long, global = true, env = "BOOKSTORE_DATABASE_PASSWORD_COMMAND")]
    pub database_password_command: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the web server. On SQLite it applies migrations first; on MySQL
    /// it never changes the schema and waits for `migrate` to have applied
    /// every migration it knows.
    Serve(Serve),
    /// Apply database migrations and exit (on MySQL, with a user allowed to
    /// change the schema; optionally making the web server's own user).
    Migrate(Migrate),
    /// Print the Amazon RDS certificate authorities (PEM) the app is built
    /// with, to verify the database's certificate against (`ssl-ca`).
    RdsCaBundle,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
}

#[derive(clap::Args, Clone, Default)]
pub struct Migrate {
    /// MySQL only: the user the web server connects as. Created if missing,
    /// given the password in `--app-password-file`, and left with SELECT,
    /// INSERT, UPDATE and DELETE on this database and nothing else.
    #[arg(long, env = "BOOKSTORE_APP_DB_USER", requires = "app_password_file")]
    pub app_user: Option<String>,
    /// The file holding that user's password (its first line).
    #[arg(long, env = "BOOKSTORE_APP_DB_PASSWORD_FILE", requires = "app_user")]
    pub app_password_file: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct Serve {
    /// Address to listen on.
    #[arg(long, env = "BOOKSTORE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address for `/metrics` (Prometheus text), apart from the site so the
    /// load balancer does not expose it; none by default.
    #[arg(long, env = "BOOKSTORE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory for uploaded files (the shared file system on AWS).
    #[arg(long, env = "BOOKSTORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Password hashes computed at once (default: the number of cores);
    /// a login or registration finding them all busy is answered 503.
    #[arg(long, env = "BOOKSTORE_HASH_PERMITS")]
    pub hash_permits: Option<usize>,
    /// Seconds without a request after which a session is over.
    #[arg(long, env = "BOOKSTORE_SESSION_IDLE_SECS", default_value_t = 24 * 3600)]
    pub session_idle_secs: u64,
    /// Seconds a request may take before it is answered 503 (a page saying
    /// to try again).
    #[arg(long, env = "BOOKSTORE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds requests in flight may take to finish after SIGTERM (the
    /// server stops accepting at once); connections still open then are
    /// cut. Keep systemd's `TimeoutStopSec` above it.
    #[arg(long, env = "BOOKSTORE_DRAIN_SECS", default_value_t = 30)]
    pub drain_secs: u64,
    /// Milliseconds a catalog page may be served from memory (at most
    /// 1000; 0 reads every page from the database). Writes through this
    /// instance show at once; writes through others within this time.
    #[arg(long, env = "BOOKSTORE_CATALOG_MAX_AGE_MS", default_value_t = 500)]
    pub catalog_max_age_ms: u64,
}

impl Serve {
    /// How long a stopping server lets requests in flight finish.
    pub fn drain(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.drain_secs)
    }

    /// How stale a catalog page may be: this long after the query that
    /// read it began (a write anywhere shows everywhere within it).
    pub fn catalog_max_age(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.catalog_max_age_ms.min(1000))
    }
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Give a user the admin role.
    Grant { email: String },
    /// Take the admin role away.
    Revoke { email: String },
}
