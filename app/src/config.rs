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
    /// The database password itself, from the environment only (a
    /// container's secret); never on the command line, never shown.
    #[arg(
        skip = std::env::var("BOOKSTORE_DATABASE_PASSWORD").ok().filter(|p| !p.is_empty())
    )]
    pub database_password: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the web server. On SQLite it applies migrations first; on MySQL
    /// it never changes the schema and waits for `migrate` to have applied
    /// every migration it knows.
    Serve(Box<Serve>),
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
    #[arg(long, env = "BOOKSTORE_APP_DB_USER")]
    pub app_user: Option<String>,
    /// The file holding that user's password (its first line).
    #[arg(long, env = "BOOKSTORE_APP_DB_PASSWORD_FILE", requires = "app_user")]
    pub app_password_file: Option<PathBuf>,
    /// That user's password itself, from the environment only
    /// (`BOOKSTORE_APP_DB_PASSWORD`, a container's secret), instead of a file.
    #[arg(skip = std::env::var("BOOKSTORE_APP_DB_PASSWORD").ok().filter(|p| !p.is_empty()))]
    pub app_password: Option<String>,
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
    /// Minutes an unpaid purchase holds its copies; then it expires and
    /// the copies return to the catalog.
    #[arg(long, env = "BOOKSTORE_RESERVATION_MINUTES", default_value_t = 15)]
    pub reservation_minutes: u64,
    /// Seconds instead of minutes (tests; overrides the minutes when set).
    #[arg(long, env = "BOOKSTORE_RESERVATION_SECS", hide = true)]
    pub reservation_secs: Option<u64>,
    /// Unpaid purchases one user may have at once.
    #[arg(long, env = "BOOKSTORE_MAX_UNPAID_PURCHASES", default_value_t = 5)]
    pub max_unpaid_purchases: i64,
    /// Copies one user's unpaid purchases may hold together.
    #[arg(long, env = "BOOKSTORE_MAX_UNPAID_COPIES", default_value_t = 20)]
    pub max_unpaid_copies: i64,
    /// Cover downloads served at once by this instance; beyond them a
    /// download is answered 503 with `Retry-After`.
    #[arg(long, env = "BOOKSTORE_COVER_DOWNLOADS", default_value_t = 64)]
    pub cover_downloads: usize,
    /// Seconds a cover download may take, however slowly the client
    /// reads; then it is cut and its place goes to the next one.
    #[arg(long, env = "BOOKSTORE_COVER_SEND_SECS", default_value_t = 60)]
    pub cover_send_secs: u64,
    /// The site's domain names, comma-separated. Set, the app serves HTTPS
    /// itself on `--tls-listen` with a certificate for these names from the
    /// ACME CA at `--acme-directory`, and answers every plain HTTP request
    /// on `--listen` with a redirect to HTTPS (see [`crate::tls`]).
    #[arg(long, env = "BOOKSTORE_TLS_DOMAINS", value_delimiter = ',')]
    pub tls_domains: Vec<String>,
    /// Address for HTTPS, when `--tls-domains` is set.
    #[arg(long, env = "BOOKSTORE_TLS_LISTEN", default_value = "127.0.0.1:8443")]
    pub tls_listen: SocketAddr,
    /// The ACME CA's directory URL (Let's Encrypt's staging directory is
    /// `https://acme-staging-v02.api.letsencrypt.org/directory`).
    #[arg(
        long,
        env = "BOOKSTORE_ACME_DIRECTORY",
        default_value = "https://acme-v02.api.letsencrypt.org/directory"
    )]
    pub acme_directory: String,
    /// An email address the CA may write to about the certificates.
    #[arg(long, env = "BOOKSTORE_ACME_CONTACT")]
    pub acme_contact: Option<String>,
    /// PEM file of root certificates trusted, besides the usual public
    /// ones, for the ACME directory's own HTTPS (a private CA).
    #[arg(long, env = "BOOKSTORE_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// Where the ACME account, the certificate and its key are kept
    /// (default: `tls` in the data directory).
    #[arg(long, env = "BOOKSTORE_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
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

    /// How long unpaid purchases hold copies, and how many a user may have.
    pub fn reservations(&self) -> crate::domain::Reservations {
        let secs = self
            .reservation_secs
            .unwrap_or(self.reservation_minutes.saturating_mul(60))
            .max(1);
        crate::domain::Reservations {
            hold: std::time::Duration::from_secs(secs),
            max_purchases: self.max_unpaid_purchases.max(1),
            max_copies: self.max_unpaid_copies.max(1),
        }
    }

    /// The TLS domains given, trimmed and lower-cased; none means TLS is off.
    pub fn tls_domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = Vec::new();
        for d in &self.tls_domains {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() && !domains.contains(&d) {
                domains.push(d);
            }
        }
        domains
    }

    /// The directory the TLS files are kept in.
    pub fn tls_dir(&self) -> PathBuf {
        self.tls_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tls"))
    }
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Give a user the admin role.
    Grant { email: String },
    /// Take the admin role away.
    Revoke { email: String },
}
