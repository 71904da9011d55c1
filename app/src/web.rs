//! What every page shares: state, sessions (stored in the database, so any
//! instance serves any user), CSRF tokens, the page layout, errors that
//! become pages, and request metrics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sqlx::Row;

use crate::db::{now, Db};
use crate::limit::SlidingWindow;

pub const COOKIE_NAME: &str = "bookstore_session";
const SESSION_SECS: i64 = 7 * 24 * 3600;

pub struct AppState {
    pub db: Db,
    pub data_dir: PathBuf,
    pub metrics: Metrics,
    /// Permits for password hashing (argon2 takes 19 MiB and tens of
    /// milliseconds of a core): beyond them a login waits briefly, then is
    /// refused, rather than queueing without bound.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Failed logins per email.
    pub login_failures: SlidingWindow,
    /// Login attempts per client address.
    pub login_attempts: SlidingWindow,
}

/// Keys remembered by each login limit.
const LIMIT_KEYS: usize = 100_000;

/// 5 failed logins per email per 15 minutes.
pub fn login_failures_window() -> SlidingWindow {
    SlidingWindow::new(5, Duration::from_secs(15 * 60), LIMIT_KEYS)
}

/// 20 login attempts per client per minute.
pub fn login_attempts_window() -> SlidingWindow {
    SlidingWindow::new(20, Duration::from_secs(60), LIMIT_KEYS)
}

pub type S = Arc<AppState>;

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub flash: Option<String>,
    pub user: Option<User>,
}

/// The request's session (if any) and whether it came over HTTPS.
pub struct Ctx {
    pub session: Option<Session>,
    pub secure: bool,
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
}

impl FromRequestParts<S> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let secure = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        let Some(id) = cookie_value(&parts.headers) else {
            return Ok(Ctx {
                session: None,
                secure,
            });
        };
        let row = sqlx::query(
            "SELECT s.csrf, s.flash, s.user_id, u.name, u.email, u.is_admin FROM sessions s \
             LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.expires_at > ?",
        )
        .bind(&id)
        .bind(now())
        .fetch_optional(&state.db.pool())
        .await?;
        let session = row.map(|r| Session {
            id: id.clone(),
            csrf: r.get(0),
            flash: r.get(1),
            user: r.get::<Option<i64>, _>(2).map(|uid| User {
                id: uid,
                name: r.get(3),
                email: r.get(4),
                is_admin: r.get::<i64, _>(5) != 0,
            }),
        });
        Ok(Ctx { session, secure })
    }
}

impl Ctx {
    pub fn user(&self) -> Option<&User> {
        self.session.as_ref().and_then(|s| s.user.as_ref())
    }

    pub fn require_user(&self) -> Result<&User, AppError> {
        self.user().ok_or(AppError::Login)
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map(|s| s.csrf.as_str()).unwrap_or("")
    }

    /// Refuses a state-changing request whose token is not the session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), AppError> {
        let want = self
            .session
            .as_ref()
            .map(|s| s.csrf.as_bytes())
            .unwrap_or(b"");
        let got = token.unwrap_or("").as_bytes();
        let same = !want.is_empty()
            && want.len() == got.len()
            && want.iter().zip(got).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }

    /// The flash message, removed from the session once shown.
    pub async fn take_flash(&mut self, st: &AppState) -> Result<Option<String>, AppError> {
        let Some(s) = self.session.as_mut() else {
            return Ok(None);
        };
        let Some(f) = s.flash.take() else {
            return Ok(None);
        };
        sqlx::query("UPDATE sessions SET flash = NULL WHERE id = ?")
            .bind(&s.id)
            .execute(&st.db.pool())
            .await?;
        Ok(Some(f))
    }

    /// Makes sure there is a session (for a form's CSRF token); returns the
    /// cookie to set when one was created.
    pub async fn ensure_session(&mut self, st: &AppState) -> Result<Option<HeaderValue>, AppError> {
        if self.session.is_some() {
            return Ok(None);
        }
        let s = new_session(st, None).await?;
        let c = session_cookie(&s.id, self.secure);
        self.session = Some(s);
        Ok(Some(c))
    }
}

pub async fn new_session(st: &AppState, user: Option<User>) -> Result<Session, AppError> {
    let s = Session {
        id: random_token(),
        csrf: random_token(),
        flash: None,
        user,
    };
    sqlx::query(
        "INSERT INTO sessions (id, user_id, csrf, flash, expires_at) VALUES (?, ?, ?, NULL, ?)",
    )
    .bind(&s.id)
    .bind(s.user.as_ref().map(|u| u.id))
    .bind(&s.csrf)
    .bind(now() + SESSION_SECS)
    .execute(&st.db.pool())
    .await?;
    Ok(s)
}

pub fn session_cookie(id: &str, secure: bool) -> HeaderValue {
    let v = format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("ascii cookie")
}

pub fn clear_cookie(secure: bool) -> HeaderValue {
    let v = format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).expect("ascii cookie")
}

/// Stores a message for the next page this session sees.
pub async fn flash(st: &AppState, ctx: &Ctx, msg: &str) -> Result<(), AppError> {
    if let Some(s) = &ctx.session {
        sqlx::query("UPDATE sessions SET flash = ? WHERE id = ?")
            .bind(msg)
            .bind(&s.id)
            .execute(&st.db.pool())
            .await?;
    }
    Ok(())
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A whole page in the site's layout.
/// `csrf` is the session's token, for the logout form.
pub fn layout(
    title: &str,
    user: Option<&User>,
    csrf: &str,
    flash: Option<&str>,
    body: &str,
) -> String {
    // Logging out is a form (a link would let any site log users out); its
    // button has no explicit type, so that `button[type=submit]` is the
    // page's own form's.
    let nav_user = match user {
        Some(u) => format!(
            r#"<li class="nav-item"><a class="nav-link" href="/book/my_books">My books</a></li>
<li class="nav-item"><a class="nav-link" href="/purchases">My purchases</a></li>
<li class="nav-item"><a class="nav-link" href="/book/add_book">Sell a book</a></li>{admin}
</ul><span class="navbar-text me-3" title="{email}">{name}</span><form method="post" action="/logout" class="d-inline"><input type="hidden" name="csrf_token" value="{csrf}"><button class="btn btn-outline-light btn-sm">Log out</button></form>"#,
            admin = if u.is_admin { r#"<li class="nav-item"><a class="nav-link" href="/admin/users">Users</a></li>"# } else { "" },
            name = esc(&u.name),
            email = esc(&u.email),
            csrf = esc(csrf)
        ),
        None => r#"</ul><a class="btn btn-outline-light btn-sm me-2" href="/login">Log in</a><a class="btn btn-light btn-sm" href="/register">Register</a>"#.to_string(),
    };
    let flash = flash
        .map(|f| {
            format!(
                r#"<div class="alert alert-info" role="alert">{}</div>"#,
                esc(f)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Bookstore</title><link rel="stylesheet" href="/static/bootstrap.min.css"><link rel="stylesheet" href="/static/bookstore.css"></head>
<body><nav class="navbar navbar-expand navbar-dark bg-dark mb-4"><div class="container">
<a class="navbar-brand" href="/">Bookstore</a><ul class="navbar-nav me-auto">
<li class="nav-item"><a class="nav-link" href="/book/catalog">Catalog</a></li>
{nav_user}</div></nav>
<main class="container">{flash}<h1 class="h3 mb-3">{title}</h1>{body}</main></body></html>"#,
        title = esc(title)
    )
}

pub fn html(body: String) -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub fn html_with_cookie(body: String, cookie: Option<HeaderValue>) -> Response {
    let mut r = html(body);
    if let Some(c) = cookie {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

pub fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("login required")]
    Login,
    #[error("the form's security token is missing or wrong")]
    Csrf,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// Every password-hashing permit is taken.
    #[error("too busy")]
    Busy,
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                AppError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(d) if d.message().contains("Access denied") => {
                AppError::Unavailable(d.to_string())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, msg) = match &self {
            AppError::Login => return redirect("/login"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here."),
            AppError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", *why),
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ),
            AppError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "The shop cannot reach its database right now. Please try again in a moment.")
            }
            AppError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Something went wrong on our side; nothing was changed. Please try again.")
            }
            AppError::Busy => {
                let body = layout(
                    "Busy",
                    None,
                    "",
                    None,
                    r#"<p>The shop is busy right now; nothing was changed. Please try again in a moment.</p><p><a href="/">Back to the shop</a></p>"#,
                );
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (CONTENT_TYPE, "text/html; charset=utf-8"),
                        (RETRY_AFTER, "1"),
                    ],
                    body,
                )
                    .into_response();
            }
        };
        let body = layout(
            title,
            None,
            "",
            None,
            &format!(
                r#"<p>{}</p><p><a href="/">Back to the shop</a></p>"#,
                esc(msg)
            ),
        );
        (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    }
}

/// Requests by route and status, a latency histogram, for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<(Vec<u64>, f64, u64)>,
}

pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, secs: f64) {
        *self
            .requests
            .lock()
            .unwrap()
            .entry((route.to_string(), status))
            .or_default() += 1;
        let mut l = self.latency.lock().unwrap();
        if l.0.is_empty() {
            l.0 = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                l.0[i] += 1;
            }
        }
        l.1 += secs;
        l.2 += 1;
    }

    pub fn render(&self, pool: (u32, usize)) -> String {
        let mut o = String::new();
        o.push_str("# HELP bookstore_requests_total HTTP requests by route and status.\n# TYPE bookstore_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().unwrap().iter() {
            o.push_str(&format!(
                "bookstore_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        let l = self.latency.lock().unwrap();
        o.push_str("# HELP bookstore_request_duration_seconds Request latency.\n# TYPE bookstore_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            o.push_str(&format!(
                "bookstore_request_duration_seconds_bucket{{le=\"{b}\"}} {}\n",
                l.0.get(i).copied().unwrap_or(0)
            ));
        }
        o.push_str(&format!(
            "bookstore_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            l.2
        ));
        o.push_str(&format!("bookstore_request_duration_seconds_sum {}\nbookstore_request_duration_seconds_count {}\n", l.1, l.2));
        o.push_str(&format!(
            "# HELP bookstore_db_pool_connections Database pool connections.\n# TYPE bookstore_db_pool_connections gauge\nbookstore_db_pool_connections{{state=\"open\"}} {}\nbookstore_db_pool_connections{{state=\"idle\"}} {}\n",
            pool.0, pool.1
        ));
        o
    }
}

pub async fn track(State(st): State<S>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let res = next.run(req).await;
    // A 503 with Retry-After is the shop being busy, not the database.
    if res.status() == StatusCode::SERVICE_UNAVAILABLE && !res.headers().contains_key(RETRY_AFTER) {
        // Perhaps the password was rotated: look now, not at the next health check.
        st.db.check_soon();
    }
    st.metrics
        .observe(&route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

/// The browser-side defences every response carries, unless the handler
/// chose its own (a cover sets a sandboxing policy). No page has inline
/// scripts or styles, so `'self'` suffices.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (
            CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "same-origin"),
        (X_FRAME_OPTIONS, "DENY"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}
