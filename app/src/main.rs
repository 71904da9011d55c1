//! `bookstore`: the web shop every instance of the deployment runs.

mod auth;
mod db;
mod domain;
mod limit;
mod pages;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::db::Db;

// The system allocator spends a sixth of a catalog request in malloc/free.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::web::{AppState, Metrics, S};

/// The bookstore web shop.
#[derive(Parser)]
#[command(name = "bookstore", version)]
struct Cli {
    /// Database: `sqlite:PATH` (created if missing) or `mysql://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(
        long,
        global = true,
        env = "BOOKSTORE_DATABASE_URL",
        default_value = "sqlite:bookstore.db"
    )]
    database_url: String,
    /// A command printing the database password (tried again when the database refuses it).
    #[arg(long, global = true, env = "BOOKSTORE_DATABASE_PASSWORD_COMMAND")]
    database_password_command: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the web server (applies migrations first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BOOKSTORE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory for uploaded files (the shared file system on AWS).
        #[arg(long, env = "BOOKSTORE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Password hashes computed at once (default: the number of cores);
        /// a login or registration finding them all busy is answered 503.
        #[arg(long, env = "BOOKSTORE_HASH_PERMITS")]
        hash_permits: Option<usize>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Give a user the admin role.
    Grant { email: String },
    /// Take the admin role away.
    Revoke { email: String },
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BOOKSTORE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    if std::env::var("BOOKSTORE_LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs();
    let db = Db::open(&cli.database_url, cli.database_password_command.clone()).await?;
    match cli.cmd {
        Cmd::Migrate => {
            db.migrate().await.context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Cmd::Admin { cmd } => {
            db.migrate().await.context("applying migrations")?;
            let (email, flag) = match &cmd {
                AdminCmd::Grant { email } => (email, 1i64),
                AdminCmd::Revoke { email } => (email, 0i64),
            };
            let n = sqlx::query("UPDATE users SET is_admin = ? WHERE email = ?")
                .bind(flag)
                .bind(email.trim().to_lowercase())
                .execute(&db.pool())
                .await?
                .rows_affected();
            if n == 0 {
                bail!("no user with email {email}");
            }
            println!(
                "{email} is {}an admin",
                if flag == 1 { "now " } else { "no longer " }
            );
            Ok(())
        }
        Cmd::Serve {
            listen,
            data_dir,
            hash_permits,
        } => {
            let permits = hash_permits
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .unwrap_or(1)
                .max(1);
            serve(db, listen, data_dir, permits).await
        }
    }
}

async fn serve(db: Db, listen: SocketAddr, data_dir: PathBuf, hash_permits: usize) -> Result<()> {
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    // Keep trying: when several instances start at once, or the database
    // is still starting, the app waits instead of failing.
    let mut tries = 0;
    loop {
        match db.migrate().await {
            Ok(()) => break,
            Err(e) if tries < 30 => {
                tries += 1;
                tracing::warn!(error = %e, "migrations not applied yet, retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("applying migrations"),
        }
    }
    let state: S = Arc::new(AppState {
        db,
        data_dir,
        metrics: Metrics::default(),
        hashing: Arc::new(tokio::sync::Semaphore::new(hash_permits)),
        login_failures: web::login_failures_window(),
        login_attempts: web::login_attempts_window(),
    });
    // Expired sessions are removed hourly (by whichever instances run).
    let sweeper = state.clone();
    tokio::spawn(async move {
        loop {
            let r = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
                .bind(db::now())
                .execute(&sweeper.db.pool())
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "removing expired sessions");
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    let app = app(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, hash_permits, "bookstore serving");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

fn app(state: S) -> Router {
    Router::new()
        .merge(pages::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { web::AppError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::track,
        ))
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        // A bug must still answer with a page, not a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                web::AppError::Internal("a request handler panicked".into()).into_response()
            },
        ))
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(state)
}

/// Stops accepting on SIGTERM or Ctrl-C; requests in flight finish.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// 200 when the database answers and the data directory takes writes.
async fn healthz(State(st): State<S>) -> Response {
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), st.db.ping())
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut))
    {
        // The error names the database user and host: logged, not shown.
        tracing::warn!(error = %e, "health check: database unavailable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "database unavailable"})),
        )
            .into_response();
    }
    let probe = st.data_dir.join(format!(".healthz-{}", std::process::id()));
    let written = tokio::fs::write(&probe, b"ok")
        .await
        .and(tokio::fs::remove_file(&probe).await);
    if let Err(e) = written {
        tracing::warn!(error = %e, dir = %st.data_dir.display(), "health check: data directory not writable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "data directory not writable"})),
        )
            .into_response();
    }
    Json(json!({"status": "ok"})).into_response()
}

async fn metrics(State(st): State<S>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(st.db.pool_stats()),
    )
        .into_response()
}
