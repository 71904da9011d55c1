//! Runs a command: serve (router, layers, listeners, shutdown), migrate,
//! or admin.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, ETAG};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Version};
use axum::middleware::{from_fn, from_fn_with_state, map_request, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::config::{AdminCmd, Cli, Cmd, Serve};
use crate::db::app_user::AppUser;
use crate::db::{Backend, Db};
use crate::error::AppError;
use crate::state::{AppState, Settings, S};

/// The body every route accepts unless it sets its own (forms are small;
/// the upload forms allow more).
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// The header carrying each request's id, to the app and back.
const REQUEST_ID: &str = "x-request-id";

pub async fn run(cli: Cli) -> Result<()> {
    if let Cmd::RdsCaBundle = cli.cmd {
        print!("{}", crate::db::RDS_CA_BUNDLE);
        return Ok(());
    }
    let url = match &cli.database_password {
        Some(pw) => crate::db::with_password(&cli.database_url, pw)?,
        None => cli.database_url.clone(),
    };
    let db = Db::open(&url, cli.database_password_command.clone()).await?;
    match cli.cmd {
        Cmd::Migrate(m) => {
            let user = match (&m.app_user, &m.app_password_file, &m.app_password) {
                (Some(name), Some(file), _) => Some(AppUser::from_file(name, file)?),
                (Some(name), None, Some(pw)) => Some(AppUser::new(name, pw)?),
                (Some(_), None, None) => bail!(
                    "--app-user needs the user's password: --app-password-file, or BOOKSTORE_APP_DB_PASSWORD"
                ),
                _ => None,
            };
            db.migrate_and_grant(user.as_ref())
                .await
                .context("applying migrations")?;
            match user {
                Some(u) => println!(
                    "migrations applied; user {} may read and write rows",
                    u.name()
                ),
                None => println!("migrations applied"),
            }
            Ok(())
        }
        Cmd::Admin { cmd } => {
            schema(&db, 0).await?;
            let (email, admin) = match &cmd {
                AdminCmd::Grant { email } => (email, true),
                AdminCmd::Revoke { email } => (email, false),
            };
            // The address as a login would find it: exactly, never a lookalike.
            let email = crate::domain::normalize_email(email);
            if !crate::db::users::set_admin(&db, &email, admin).await? {
                bail!("no user with email {email}");
            }
            println!(
                "{email} is {}an admin",
                if admin { "now " } else { "no longer " }
            );
            Ok(())
        }
        Cmd::Serve(opts) => serve(db, *opts).await,
        Cmd::RdsCaBundle => unreachable!("answered before opening the database"),
    }
}

/// Makes sure the schema is current before the app uses it. On SQLite (an
/// embedded file, one machine) the app applies its migrations itself. On
/// MySQL it never changes the schema: `bookstore migrate` does, as a user
/// allowed to, before the server starts; the app checks that every
/// migration it knows is applied, trying again once a second for `tries`
/// more seconds (several instances starting at once, a database still
/// starting, a migration under way).
async fn schema(db: &Db, tries: u32) -> Result<()> {
    let mut left = tries;
    loop {
        let done = match db.backend {
            Backend::Sqlite => db.migrate().await,
            Backend::MySql => db.check_migrated().await,
        };
        match done {
            Ok(()) => return Ok(()),
            Err(e) if left > 0 => {
                left -= 1;
                tracing::warn!(error = %e, "the schema is not ready yet, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) if db.backend == Backend::Sqlite => {
                return Err(e).context("applying migrations")
            }
            Err(e) => return Err(e).context("checking the schema"),
        }
    }
}

async fn serve(db: Db, opts: Serve) -> Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    schema(&db, 60).await?;
    let permits = opts
        .hash_permits
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let secret = crate::anon::Secret::load(&db)
        .await
        .context("reading the signing key")?;
    let state: S = Arc::new(AppState::new(
        db,
        secret,
        Settings {
            data_dir: opts.data_dir.clone(),
            hash_permits: permits,
            session_idle: Duration::from_secs(opts.session_idle_secs.max(1)),
            catalog_max_age: opts.catalog_max_age(),
            reservations: opts.reservations(),
            cover_downloads: opts.cover_downloads,
            cover_send: Duration::from_secs(opts.cover_send_secs.max(1)),
        },
    ));
    sweeps(&state);
    if let Some(addr) = opts.metrics_listen {
        crate::metrics::serve(addr, state.db.clone()).await?;
    }
    let app = app(state, &opts);
    let tls = crate::tls::Tls::from_opts(&opts)?;
    let https = tls.as_ref().map(|_| opts.tls_listen);
    let listeners = crate::listen::listeners(opts.listen, https).await?;
    let server = crate::drain::Server::new();
    let mut addrs = Vec::new();
    if let Some(tls) = tls {
        // HTTPS with the app's own certificate; plain HTTP redirects there.
        if listeners.https.is_empty() {
            bail!("TLS is on, but no `https` socket was passed");
        }
        let (plain, site) = (tls.plain(), tls.site(app));
        for listener in listeners.http {
            addrs.extend(listener.local_addr().ok());
            server.serve(listener, plain.clone());
        }
        for listener in listeners.https {
            addrs.extend(listener.local_addr().ok());
            server.serve_with(listener, site.clone(), tls.handshake());
        }
        tokio::spawn(tls.renewal());
    } else {
        if !listeners.https.is_empty() {
            bail!("an `https` socket was passed, but TLS is off");
        }
        for listener in listeners.http {
            addrs.extend(listener.local_addr().ok());
            server.serve(listener, app.clone());
        }
    }
    crate::listen::notify("READY=1");
    tracing::info!(
        listen = ?addrs,
        passed_by_systemd = listeners.inherited,
        hash_permits = permits,
        "bookstore serving"
    );
    let cut = server.run_until(shutdown(), opts.drain()).await;
    tracing::info!(connections_cut = cut, "stopped");
    Ok(())
}

/// The periodic clean-ups, run by every instance (each is idempotent):
/// sessions and idempotency keys that are over, hourly; reservations that ran out (their
/// copies return) and limit counters whose window is over, often.
fn sweeps(state: &S) {
    let sweeper = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = crate::session::sweep(&sweeper).await {
                tracing::warn!(error = %e, "removing expired sessions");
            }
            if let Err(e) = crate::routes::api::once::prune(&sweeper).await {
                tracing::warn!(error = %e, "removing expired idempotency keys");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let sweeper = state.clone();
    let every =
        (state.reservations.hold / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match crate::db::reservations::expire_due(
                &sweeper.db,
                sweeper.reservations.hold,
                crate::db::reservations::Scope::All,
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(expired = n, "unpaid purchases expired");
                    sweeper.catalog.clear();
                }
                Err(e) => tracing::warn!(error = %e, "expiring unpaid purchases"),
            }
            if let Err(e) = crate::limit::prune(&sweeper.db).await {
                tracing::warn!(error = %e, "pruning limit counters");
            }
        }
    });
}

/// The site: every feature's routes, and the layers around them. From
/// the outside in: a request id (kept when the client sent one, returned
/// on every response), a span and a log line per request carrying it,
/// the security headers, gzip, the metrics, the time limit, the panic
/// guard and the body limit.
pub fn app(state: S, opts: &Serve) -> Router {
    let time_limit = Duration::from_secs(opts.request_timeout_secs.max(1));
    crate::routes::router()
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        // A bug must still answer with a page, not a dropped connection.
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                AppError::Internal("a request handler panicked".into()).into_response()
            },
        ))
        .layer(from_fn_with_state(time_limit, within))
        .layer(from_fn(crate::anon::cookies_out))
        .layer(from_fn_with_state(state.clone(), crate::metrics::track))
        .layer(CompressionLayer::new().compress_when(SizeAbove::default().and(compressible)))
        .layer(map_response(weaken_encoded_etag))
        .layer(from_fn(crate::routes::security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(map_request(drop_odd_request_id))
        .with_state(state)
}

/// An id the client sent is kept (the load balancer's, to follow a
/// request through both logs) when it is short and plain: it is logged
/// and sent back.
async fn drop_odd_request_id(mut req: Request) -> Request {
    let odd = req.headers().get(REQUEST_ID).is_some_and(|v| {
        v.len() > 128
            || !v
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if odd {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// A request taking longer than its time is answered with a page (503:
/// the shop is slow, the visitor may try again), or JSON under `/api/`;
/// its handler is dropped.
async fn within(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) if api => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "error": "This took too long to answer. Please try again in a moment."
                })),
            )
                .into_response()
        }
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                crate::views::errors::page(
                    "Timed out",
                    "This took too long to answer. Please try again in a moment.",
                ),
            )
                .into_response()
        }
    }
}

/// Text worth compressing: pages, stylesheets, JSON (not images).
fn compressible(_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("text/html")
                || t.starts_with("text/css")
                || t.starts_with("application/json")
        })
}

/// A compressed copy is not byte for byte the resource its ETag names:
/// its tag becomes weak (`If-None-Match` compares weakly, so it still
/// revalidates).
async fn weaken_encoded_etag(mut res: Response) -> Response {
    if res.headers().contains_key(CONTENT_ENCODING) {
        if let Some(tag) = res.headers().get(ETAG) {
            if !tag.as_bytes().starts_with(b"W/") {
                let mut weak = b"W/".to_vec();
                weak.extend_from_slice(tag.as_bytes());
                if let Ok(weak) = HeaderValue::from_bytes(&weak) {
                    res.headers_mut().insert(ETAG, weak);
                }
            }
        }
    }
    res
}

/// Each request's span: its id, method, path and route.
fn request_span(req: &Request) -> Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    tracing::info_span!(
        "request",
        request_id = id,
        method = %req.method(),
        path = req.uri().path(),
        route,
    )
}

/// One line per response.
fn log_response(res: &Response, latency: Duration, _: &Span) {
    tracing::info!(
        status = res.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "response"
    );
}

/// Resolves on SIGTERM or Ctrl-C (then the server stops accepting and
/// drains, [`crate::drain`]).
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
    crate::listen::notify("STOPPING=1");
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_slow_request_is_answered_with_a_page() {
        let app: Router = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "done"
                }),
            )
            .layer(from_fn_with_state(Duration::from_millis(20), within));
        let req = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("took too long"), "{body}");
    }
}
