//! The shop's pages and JSON API, at the original application's paths and
//! form field names.

use std::collections::HashMap;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::db::{now, Backend};
use crate::domain::{self, money};
use crate::web::{
    clear_cookie, esc, flash, html, html_with_cookie, layout, new_session, redirect,
    session_cookie, AppError, Ctx, User, S,
};

pub const PAGE_SIZE: i64 = 20;
/// The last page served: an offset stays at most 10,000 rows, whatever the
/// page number asked for.
pub const MAX_PAGE: i64 = 500;
const MAX_COVER: usize = 2 * 1024 * 1024;
static BOOTSTRAP_CSS: &[u8] = include_bytes!("../assets/bootstrap.min.css");
/// The few styles Bootstrap has no class for (the pages have no inline
/// styles: the content security policy forbids them).
static SHOP_CSS: &str = ".cover-thumb{max-width:80px}.qty-input{width:5em}\n";

pub fn router() -> Router<S> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/book/catalog", get(catalog))
        .route("/book/my_books", get(my_books))
        .route("/book/add_book", get(add_book_form).post(add_book))
        .route("/book/edit_book/{id}", get(edit_book_form).post(edit_book))
        .route("/book/delete_book/{id}", post(delete_book))
        .route("/buy/{book_id}", post(buy))
        .route("/payment/{purchase_id}", get(payment_form).post(pay))
        .route(
            "/delivery/{purchase_id}",
            get(delivery_form).post(choose_delivery),
        )
        .route("/purchases", get(my_purchases))
        .route("/admin/users", get(admin_users))
        .route("/api/books", get(api_books))
        .route("/api/books/{id}", get(api_book))
        .route("/api/purchases", get(api_purchases))
        .route("/static/bootstrap.min.css", get(bootstrap_css))
        .route("/static/bookstore.css", get(shop_css))
        .route("/covers/{name}", get(cover))
}

type Fields = HashMap<String, String>;

fn field<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).map(String::as_str)
}

fn input(label: &str, name: &str, value: &str, kind: &str, extra: &str) -> String {
    format!(
        r#"<div class="mb-3"><label class="form-label" for="{name}">{label}</label><input class="form-control" id="{name}" name="{name}" type="{kind}" value="{}" {extra}></div>"#,
        esc(value)
    )
}

fn csrf_field(ctx: &Ctx) -> String {
    format!(
        r#"<input type="hidden" name="csrf_token" value="{}">"#,
        esc(ctx.csrf())
    )
}

fn error_box(e: Option<&str>) -> String {
    e.map(|e| {
        format!(
            r#"<div class="alert alert-danger" role="alert">{}</div>"#,
            esc(e)
        )
    })
    .unwrap_or_default()
}

async fn page(st: &S, ctx: &mut Ctx, title: &str, body: &str) -> Result<Response, AppError> {
    let f = ctx.take_flash(st).await?;
    Ok(html(layout(
        title,
        ctx.user(),
        ctx.csrf(),
        f.as_deref(),
        body,
    )))
}

/// Reads a form sent urlencoded or as multipart (with an optional cover file).
async fn read_form(req: Request) -> Result<(Fields, Option<Vec<u8>>), AppError> {
    let multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(f) = Form::<Fields>::from_request(req, &())
            .await
            .map_err(|_| AppError::Forbidden("unreadable form"))?;
        return Ok((f, None));
    }
    let mut m = Multipart::from_request(req, &())
        .await
        .map_err(|_| AppError::Forbidden("unreadable form"))?;
    let mut fields = Fields::new();
    let mut file = None;
    while let Some(part) = m
        .next_field()
        .await
        .map_err(|_| AppError::Forbidden("unreadable form"))?
    {
        let name = part.name().unwrap_or_default().to_string();
        if name == "cover" {
            let bytes = part
                .bytes()
                .await
                .map_err(|_| AppError::Forbidden("unreadable upload"))?;
            if !bytes.is_empty() {
                file = Some(bytes.to_vec());
            }
        } else {
            let text = part
                .text()
                .await
                .map_err(|_| AppError::Forbidden("unreadable form"))?;
            fields.insert(name, text);
        }
    }
    Ok((fields, file))
}

// ---- home, registration, login ---------------------------------------------

async fn home(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let body = r#"<p class="lead">Books from readers, for readers.</p>
<div class="d-flex gap-2"><a class="btn btn-primary" href="/book/catalog">Browse the catalog</a>
<a class="btn btn-outline-secondary" href="/book/my_books">My books</a>
<a class="btn btn-outline-secondary" href="/admin/users">Users</a></div>"#;
    page(&st, &mut ctx, "Welcome", body).await
}

fn register_body(ctx: &Ctx, f: &Fields, err: Option<&str>) -> String {
    format!(
        r#"{}<form method="post" action="/register">{}{}{}{}<button class="btn btn-primary" type="submit">Register</button></form>"#,
        error_box(err),
        csrf_field(ctx),
        input(
            "Name",
            "name",
            field(f, "name").unwrap_or(""),
            "text",
            "required maxlength=100"
        ),
        input(
            "Email",
            "email",
            field(f, "email").unwrap_or(""),
            "email",
            "required maxlength=254"
        ),
        input(
            "Password",
            "password",
            "",
            "password",
            "required minlength=8 maxlength=128"
        ),
    )
}

async fn register_form(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let cookie = ctx.ensure_session(&st).await?;
    let f = ctx.take_flash(&st).await?;
    Ok(html_with_cookie(
        layout(
            "Register",
            ctx.user(),
            ctx.csrf(),
            f.as_deref(),
            &register_body(&ctx, &Fields::new(), None),
        ),
        cookie,
    ))
}

async fn register(
    State(st): State<S>,
    ctx: Ctx,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let again = |msg: String| {
        html(layout(
            "Register",
            ctx.user(),
            ctx.csrf(),
            None,
            &register_body(&ctx, &f, Some(&msg)),
        ))
    };
    let (name, email, pw) = match (
        domain::text("Name", field(&f, "name"), 1, 100),
        domain::email(field(&f, "email")),
        domain::password(field(&f, "password")),
    ) {
        (Ok(n), Ok(e), Ok(p)) => (n, e, p),
        (n, e, p) => {
            let msg = [n.err(), e.err(), p.err()]
                .into_iter()
                .flatten()
                .map(|e| e.0)
                .collect::<Vec<_>>()
                .join(" ");
            return Ok(again(msg));
        }
    };
    let hash = crate::auth::limited(&st.hashing, move || crate::auth::hash(&pw)).await??;
    let res = sqlx::query(
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES (?, ?, ?, 0, ?)",
    )
    .bind(&name)
    .bind(&email)
    .bind(&hash)
    .bind(now())
    .execute(&st.db.pool())
    .await;
    match res {
        Ok(_) => {
            flash(&st, &ctx, "Your account is ready. Log in to continue.").await?;
            Ok(redirect("/login"))
        }
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            Ok(again("An account with this email already exists.".into()))
        }
        Err(e) => Err(e.into()),
    }
}

fn login_body(ctx: &Ctx, email: &str, err: Option<&str>) -> String {
    format!(
        r#"{}<form method="post" action="/login">{}{}{}<button class="btn btn-primary" type="submit">Log in</button></form>
<p class="mt-3">No account? <a href="/register">Register</a>.</p>"#,
        error_box(err),
        csrf_field(ctx),
        input("Email", "email", email, "email", "required"),
        input("Password", "password", "", "password", "required"),
    )
}

async fn login_form(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let cookie = ctx.ensure_session(&st).await?;
    let f = ctx.take_flash(&st).await?;
    Ok(html_with_cookie(
        layout(
            "Log in",
            ctx.user(),
            ctx.csrf(),
            f.as_deref(),
            &login_body(&ctx, "", None),
        ),
        cookie,
    ))
}

/// The login form again, answered 429 with when to retry.
fn too_many(ctx: &Ctx, email: &str, wait: std::time::Duration) -> Response {
    let secs = crate::limit::retry_secs(wait);
    let msg = format!(
        "Too many login attempts. Try again in {}.",
        if secs < 120 {
            format!("{secs} seconds")
        } else {
            format!("{} minutes", secs.div_ceil(60))
        }
    );
    let mut r = html(layout(
        "Log in",
        None,
        ctx.csrf(),
        None,
        &login_body(ctx, email, Some(&msg)),
    ));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(RETRY_AFTER, axum::http::HeaderValue::from(secs));
    r
}

async fn login(
    State(st): State<S>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let email = field(&f, "email").unwrap_or("").trim().to_lowercase();
    let pw = field(&f, "password").unwrap_or("").to_string();
    // Every attempt counts for the client; failures count for the email,
    // and an email at its limit is refused even with the right password.
    let client = crate::limit::client_key(&headers, Some(peer));
    let now = Instant::now();
    if let Err(wait) = st.login_attempts.hit(&client, now) {
        tracing::warn!(%client, "login attempts over the client's limit");
        return Ok(too_many(&ctx, &email, wait));
    }
    if let Err(wait) = st.login_failures.check(&email, now) {
        tracing::warn!(%client, "failed logins over the email's limit");
        return Ok(too_many(&ctx, &email, wait));
    }
    let row = sqlx::query("SELECT id, name, email, password, is_admin FROM users WHERE email = ?")
        .bind(&email)
        .fetch_optional(&st.db.pool())
        .await?;
    let stored = row.as_ref().map(|r| r.get::<String, _>(3));
    let ok = crate::auth::limited(&st.hashing, move || {
        crate::auth::verify(&pw, stored.as_deref())
    })
    .await?;
    let (true, Some(r)) = (ok, row) else {
        st.login_failures.record(&email, Instant::now());
        return Ok(html(layout(
            "Log in",
            None,
            ctx.csrf(),
            None,
            &login_body(&ctx, &email, Some("Login failed: wrong email or password.")),
        )));
    };
    let user = User {
        id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        is_admin: r.get::<i64, _>(4) != 0,
    };
    st.login_failures.clear(&email);
    // A new session id at login: a planted cookie is worth nothing.
    if let Some(old) = &ctx.session {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(&old.id)
            .execute(&st.db.pool())
            .await?;
    }
    let s = new_session(&st, Some(user)).await?;
    let mut r = redirect("/book/catalog");
    r.headers_mut()
        .append(SET_COOKIE, session_cookie(&s.id, ctx.secure));
    Ok(r)
}

/// Only by POST with the session's token: a link on another site must not
/// log anyone out.
async fn logout(
    State(st): State<S>,
    ctx: Ctx,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    ctx.check_csrf(field(&f, "csrf_token"))?;
    if let Some(s) = &ctx.session {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(&s.id)
            .execute(&st.db.pool())
            .await?;
    }
    let mut r = redirect("/login");
    r.headers_mut().append(SET_COOKIE, clear_cookie(ctx.secure));
    Ok(r)
}

// ---- books ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct CatalogQuery {
    page: Option<String>,
    q: Option<String>,
}

pub struct Book {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub seller_id: i64,
    pub cover: Option<String>,
}

const BOOK_COLS: &str = "id, title, author, description, price_cents, stock, seller_id, cover";

fn book(r: &sqlx::any::AnyRow) -> Book {
    Book {
        id: r.get(0),
        title: r.get(1),
        author: r.get(2),
        description: r.get(3),
        price_cents: r.get(4),
        stock: r.get(5),
        seller_id: r.get(6),
        cover: r.get(7),
    }
}

fn book_json(b: &Book) -> serde_json::Value {
    json!({
        "id": b.id, "title": b.title, "author": b.author, "description": b.description,
        "price": money(b.price_cents), "price_cents": b.price_cents, "stock": b.stock,
        "seller_id": b.seller_id, "cover_url": b.cover.as_ref().map(|c| format!("/covers/{c}")),
    })
}

/// Totals are counted up to this many books: beyond it a page says "more
/// than", so no page ever counts the whole table.
pub const COUNT_CAP: i64 = 1000;

/// One page of the catalog or of a search.
pub struct CatalogPage {
    pub page: i64,
    pub text: String,
    pub books: Vec<Book>,
    /// Matching books, exact when `total_exact`, else `COUNT_CAP`.
    pub total: i64,
    pub total_exact: bool,
    pub has_next: bool,
}

/// How many books match `cond`, counting no further than `COUNT_CAP + 1`:
/// the count runs only when a probe finds no `COUNT_CAP + 1`th match.
/// `cond`'s parameters are bound twice.
fn capped_count(cond: &str) -> String {
    format!(
        "(CASE WHEN (SELECT 1 FROM books WHERE {cond} LIMIT 1 OFFSET {COUNT_CAP}) IS NULL \
         THEN (SELECT COUNT(*) FROM books WHERE {cond}) ELSE {} END)",
        COUNT_CAP + 1
    )
}

/// One page of the catalog. Without a search text: newest first. With one:
/// the books whose title starts with it (by title), then those whose author
/// does (by author). Every query walks an index in order and stops after
/// the page (or after `COUNT_CAP` books for the total), so its cost does not
/// grow with the size of the catalog.
/// A page number out of 1..=`MAX_PAGE` is `AppError::NotFound`; one that
/// is not a number is the first page.
async fn catalog_page(st: &S, q: &CatalogQuery) -> Result<CatalogPage, AppError> {
    let page = match q.page.as_deref().map(|p| p.trim().parse::<i64>()) {
        Some(Ok(p)) if (1..=MAX_PAGE).contains(&p) => p,
        Some(Ok(_)) => return Err(AppError::NotFound),
        _ => 1,
    };
    let text =
        q.q.as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(100)
            .collect::<String>();
    let offset = (page - 1) * PAGE_SIZE;
    // One row more than a page tells whether there is a next one.
    let want = PAGE_SIZE + 1;
    let pool = st.db.pool();
    let (rows, counted) = if text.is_empty() {
        // One round trip: the page and the count together.
        let rows = sqlx::query(&format!(
            "SELECT {BOOK_COLS}, {} FROM books ORDER BY id DESC LIMIT ? OFFSET ?",
            capped_count("1 = 1")
        ))
        .bind(want)
        .bind(offset)
        .fetch_all(&pool)
        .await?;
        let counted: i64 = match rows.first() {
            Some(r) => r.try_get(8)?,
            None => sqlx::query(&format!("SELECT {}", capped_count("1 = 1")))
                .fetch_one(&pool)
                .await?
                .get(0),
        };
        (rows, counted)
    } else {
        // `!` escapes the wildcards: it means the same in SQLite and MySQL.
        let like = format!(
            "{}%",
            text.replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        );
        let by_title = "title LIKE ? ESCAPE '!'";
        let by_author = "author LIKE ? ESCAPE '!' AND NOT (title LIKE ? ESCAPE '!')";
        // The first `offset + want` of each kind of match, each read in its
        // index's order, then merged: title matches first.
        let rows = sqlx::query(&format!(
            "SELECT {BOOK_COLS} FROM (\
             SELECT * FROM (SELECT {BOOK_COLS}, 0 AS rank_, title AS key_ FROM books \
             WHERE {by_title} ORDER BY title, id LIMIT ?) t \
             UNION ALL \
             SELECT * FROM (SELECT {BOOK_COLS}, 1 AS rank_, author AS key_ FROM books \
             WHERE {by_author} ORDER BY author, id LIMIT ?) a\
             ) m ORDER BY rank_, key_, id LIMIT ? OFFSET ?"
        ))
        .bind(&like)
        .bind(offset + want)
        .bind(&like)
        .bind(&like)
        .bind(offset + want)
        .bind(want)
        .bind(offset)
        .fetch_all(&pool)
        .await?;
        let counts = sqlx::query(&format!(
            "SELECT {}, {}",
            capped_count(by_title),
            capped_count(by_author)
        ))
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .bind(&like)
        .fetch_one(&pool)
        .await?;
        let counted = counts.try_get::<i64, _>(0)? + counts.try_get::<i64, _>(1)?;
        (rows, counted)
    };
    let has_next = rows.len() as i64 > PAGE_SIZE;
    Ok(CatalogPage {
        page,
        text,
        books: rows.iter().take(PAGE_SIZE as usize).map(book).collect(),
        total: counted.min(COUNT_CAP),
        total_exact: counted <= COUNT_CAP,
        has_next,
    })
}

fn cover_img(b: &Book) -> String {
    match &b.cover {
        Some(c) => format!(
            r#"<img src="/covers/{}" alt="" class="img-thumbnail me-3 cover-thumb">"#,
            esc(c)
        ),
        None => String::new(),
    }
}

async fn catalog(
    State(st): State<S>,
    mut ctx: Ctx,
    Query(q): Query<CatalogQuery>,
) -> Result<Response, AppError> {
    let CatalogPage {
        page,
        text,
        books,
        total,
        total_exact,
        has_next,
    } = catalog_page(&st, &q).await?;
    let mut rows = String::new();
    for b in &books {
        let action = match ctx.user() {
            Some(_) if b.stock > 0 => format!(
                r#"<form method="post" action="/buy/{}" class="d-flex gap-2">{}<input class="form-control form-control-sm qty-input" name="quantity" type="number" min="1" max="{}" value="1"><button class="btn btn-sm btn-success" type="submit">Buy</button></form>"#,
                b.id,
                csrf_field(&ctx),
                b.stock.min(100)
            ),
            Some(_) => r#"<span class="badge bg-secondary">Sold out</span>"#.into(),
            None => r#"<a href="/login" class="btn btn-sm btn-outline-primary">Log in to buy</a>"#
                .into(),
        };
        rows.push_str(&format!(
            r#"<tr><td class="d-flex">{}<div><strong>{}</strong><br><span class="text-muted">{}</span></div></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            cover_img(b),
            esc(&b.title),
            esc(&b.author),
            money(b.price_cents),
            b.stock,
            action
        ));
    }
    let qs = if text.is_empty() {
        String::new()
    } else {
        format!("&q={}", esc(&url_encode(&text)))
    };
    let prev = if page > 1 {
        format!(
            r#"<a class="btn btn-outline-secondary btn-sm" href="/book/catalog?page={}{qs}">Previous</a>"#,
            page - 1
        )
    } else {
        String::new()
    };
    let next = if has_next && page < MAX_PAGE {
        format!(
            r#"<a class="btn btn-outline-secondary btn-sm" href="/book/catalog?page={}{qs}">Next</a>"#,
            page + 1
        )
    } else {
        String::new()
    };
    let position = if total_exact {
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        format!("Page {page} of {pages} ({total} books)")
    } else {
        format!("Page {page} (more than {total} books)")
    };
    let body = format!(
        r#"<form class="mb-3 d-flex gap-2" method="get" action="/book/catalog"><input class="form-control" name="q" placeholder="Title or author" value="{}"><button class="btn btn-outline-primary">Search</button></form>
<table class="table align-middle"><thead><tr><th>Book</th><th>Price</th><th>Stock</th><th></th></tr></thead><tbody>{rows}</tbody></table>
<div class="d-flex gap-2 align-items-center">{prev}<span>{position}</span>{next}</div>"#,
        esc(&text)
    );
    self::page(&st, &mut ctx, "Catalog", &body).await
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn my_books(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let rows = sqlx::query(&format!(
        "SELECT {BOOK_COLS} FROM books WHERE seller_id = ? ORDER BY id DESC"
    ))
    .bind(uid)
    .fetch_all(&st.db.pool())
    .await?;
    let mut list = String::new();
    for b in rows.iter().map(book) {
        list.push_str(&format!(
            r#"<tr><td class="d-flex">{}<div><strong>{}</strong><br>{}</div></td><td>{}</td><td>{}</td><td class="d-flex gap-2"><a class="btn btn-sm btn-outline-primary" href="/book/edit_book/{id}">Edit</a><form method="post" action="/book/delete_book/{id}">{}<button class="btn btn-sm btn-outline-danger" type="submit">Delete</button></form></td></tr>"#,
            cover_img(&b),
            esc(&b.title),
            esc(&b.author),
            money(b.price_cents),
            b.stock,
            csrf_field(&ctx),
            id = b.id
        ));
    }
    let body = format!(
        r#"<p><a class="btn btn-primary" href="/book/add_book">Sell a book</a></p><table class="table align-middle"><thead><tr><th>Book</th><th>Price</th><th>Stock</th><th></th></tr></thead><tbody>{list}</tbody></table>"#
    );
    page(&st, &mut ctx, "My books", &body).await
}

fn book_form(ctx: &Ctx, action: &str, f: &Fields, err: Option<&str>, submit: &str) -> String {
    let desc = field(f, "description").unwrap_or("");
    // The stock the edit form was opened with: saving applies the change
    // the seller made to it, not the number itself.
    let shown = field(f, "stock_shown")
        .map(|v| {
            format!(
                r#"<input type="hidden" name="stock_shown" value="{}">"#,
                esc(v)
            )
        })
        .unwrap_or_default();
    format!(
        r#"{}<form method="post" action="{action}" enctype="multipart/form-data">{}{shown}{}{}
<div class="mb-3"><label class="form-label" for="description">Description</label><textarea class="form-control" id="description" name="description" maxlength="2000">{}</textarea></div>
{}{}<div class="mb-3"><label class="form-label" for="cover">Cover (JPEG, PNG or WebP, at most 2 MB)</label><input class="form-control" id="cover" name="cover" type="file" accept="image/jpeg,image/png,image/webp"></div>
<button class="btn btn-primary" type="submit">{submit}</button></form>"#,
        error_box(err),
        csrf_field(ctx),
        input(
            "Title",
            "title",
            field(f, "title").unwrap_or(""),
            "text",
            "required maxlength=200"
        ),
        input(
            "Author",
            "author",
            field(f, "author").unwrap_or(""),
            "text",
            "required maxlength=200"
        ),
        esc(desc),
        input(
            "Price",
            "price",
            field(f, "price").unwrap_or(""),
            "text",
            r#"required inputmode="decimal""#
        ),
        input(
            "Stock",
            "stock",
            field(f, "stock").unwrap_or(""),
            "number",
            "required min=0"
        ),
    )
}

struct BookInput {
    title: String,
    author: String,
    description: String,
    price_cents: i64,
    stock: i64,
}

fn validate_book(f: &Fields) -> Result<BookInput, String> {
    let r = (
        domain::text("Title", field(f, "title"), 1, 200),
        domain::text("Author", field(f, "author"), 1, 200),
        domain::text("Description", field(f, "description"), 0, 2000),
        domain::price(field(f, "price")),
        domain::count("Stock", field(f, "stock"), 0, 1_000_000),
    );
    match r {
        (Ok(title), Ok(author), Ok(description), Ok(price_cents), Ok(stock)) => Ok(BookInput {
            title,
            author,
            description,
            price_cents,
            stock,
        }),
        (a, b, c, d, e) => Err([a.err(), b.err(), c.err(), d.err(), e.err()]
            .into_iter()
            .flatten()
            .map(|e| e.0)
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

/// Checks and stores an uploaded cover; returns its file name.
async fn save_cover(st: &S, bytes: &[u8]) -> Result<Result<String, String>, AppError> {
    if bytes.len() > MAX_COVER {
        return Ok(Err("The cover is larger than 2 MB.".into()));
    }
    let Some(ext) = domain::image_kind(bytes) else {
        return Ok(Err("The cover must be a JPEG, PNG or WebP image.".into()));
    };
    let name = format!("{}.{ext}", &crate::web::random_token()[..32]);
    let dir = st.data_dir.join("covers");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    tokio::fs::rename(&tmp, dir.join(&name))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Ok(name))
}

async fn add_book_form(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    ctx.require_user()?;
    let body = book_form(&ctx, "/book/add_book", &Fields::new(), None, "Add the book");
    page(&st, &mut ctx, "Sell a book", &body).await
}

async fn add_book(State(st): State<S>, ctx: Ctx, req: Request) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let (f, file) = read_form(req).await?;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let again = |msg: &str| {
        html(layout(
            "Sell a book",
            ctx.user(),
            ctx.csrf(),
            None,
            &book_form(&ctx, "/book/add_book", &f, Some(msg), "Add the book"),
        ))
    };
    let b = match validate_book(&f) {
        Ok(b) => b,
        Err(msg) => return Ok(again(&msg)),
    };
    let cover = match file {
        Some(bytes) => match save_cover(&st, &bytes).await? {
            Ok(name) => Some(name),
            Err(msg) => return Ok(again(&msg)),
        },
        None => None,
    };
    sqlx::query("INSERT INTO books (title, author, description, price_cents, stock, seller_id, cover, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(&b.title)
        .bind(&b.author)
        .bind(&b.description)
        .bind(b.price_cents)
        .bind(b.stock)
        .bind(uid)
        .bind(cover)
        .bind(now())
        .execute(&st.db.pool())
        .await?;
    flash(&st, &ctx, &format!("“{}” is in the catalog.", b.title)).await?;
    Ok(redirect("/book/my_books"))
}

/// The book, if it exists and `uid` sells it.
async fn own_book(st: &S, uid: i64, id: &str) -> Result<Book, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let r = sqlx::query(&format!("SELECT {BOOK_COLS} FROM books WHERE id = ?"))
        .bind(id)
        .fetch_optional(&st.db.pool())
        .await?
        .ok_or(AppError::NotFound)?;
    let b = book(&r);
    if b.seller_id != uid {
        return Err(AppError::Forbidden(
            "Only the seller of a book can change or delete it.",
        ));
    }
    Ok(b)
}

async fn edit_book_form(
    State(st): State<S>,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let b = own_book(&st, uid, &id).await?;
    let f: Fields = [
        ("title", b.title.clone()),
        ("author", b.author.clone()),
        ("description", b.description.clone()),
        ("price", money(b.price_cents)),
        ("stock", b.stock.to_string()),
        ("stock_shown", b.stock.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let body = format!(
        "{}{}",
        cover_img(&b),
        book_form(&ctx, &format!("/book/edit_book/{}", b.id), &f, None, "Save")
    );
    page(&st, &mut ctx, "Edit book", &body).await
}

async fn edit_book(
    State(st): State<S>,
    ctx: Ctx,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let (f, file) = read_form(req).await?;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let current = own_book(&st, uid, &id).await?;
    let action = format!("/book/edit_book/{}", current.id);
    let again = |msg: &str| {
        html(layout(
            "Edit book",
            ctx.user(),
            ctx.csrf(),
            None,
            &book_form(&ctx, &action, &f, Some(msg), "Save"),
        ))
    };
    let b = match validate_book(&f) {
        Ok(b) => b,
        Err(msg) => return Ok(again(&msg)),
    };
    let cover = match file {
        Some(bytes) => match save_cover(&st, &bytes).await? {
            Ok(name) => Some(name),
            Err(msg) => return Ok(again(&msg)),
        },
        None => current.cover.clone(),
    };
    // Copies sold while the form was open stay sold: the seller's change
    // (new - shown) is applied to the stock as it is now, never below 0.
    // A form without the shown stock sets the number as given.
    let shown = match field(&f, "stock_shown") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (0..=1_000_000).contains(&n) => Some(n),
            _ => return Ok(again("The form is damaged: reload the page and try again.")),
        },
    };
    let stock_sql = match shown {
        Some(_) => "CASE WHEN stock + ? < 0 THEN 0 ELSE stock + ? END",
        None => "?",
    };
    let q = format!(
        "UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, stock = {stock_sql}, cover = ? WHERE id = ? AND seller_id = ?"
    );
    let mut q = sqlx::query(&q)
        .bind(&b.title)
        .bind(&b.author)
        .bind(&b.description)
        .bind(b.price_cents);
    q = match shown {
        Some(shown) => q.bind(b.stock - shown).bind(b.stock - shown),
        None => q.bind(b.stock),
    };
    q.bind(cover)
        .bind(current.id)
        .bind(uid)
        .execute(&st.db.pool())
        .await?;
    flash(&st, &ctx, "Saved.").await?;
    Ok(redirect("/book/my_books"))
}

async fn delete_book(
    State(st): State<S>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let b = own_book(&st, uid, &id).await?;
    let sold: i64 = sqlx::query("SELECT COUNT(*) FROM purchases WHERE book_id = ?")
        .bind(b.id)
        .fetch_one(&st.db.pool())
        .await?
        .get(0);
    if sold > 0 {
        flash(
            &st,
            &ctx,
            "This book has purchases and stays on record; set its stock to 0 to stop selling it.",
        )
        .await?;
        return Ok(redirect("/book/my_books"));
    }
    sqlx::query("DELETE FROM books WHERE id = ? AND seller_id = ?")
        .bind(b.id)
        .bind(uid)
        .execute(&st.db.pool())
        .await?;
    flash(&st, &ctx, &format!("“{}” was deleted.", b.title)).await?;
    Ok(redirect("/book/my_books"))
}

// ---- buying ----------------------------------------------------------------------

/// Takes `qty` copies and records the purchase, in one transaction: the
/// stock decrement is conditional, so concurrent buyers never oversell.
async fn take_and_record(
    st: &S,
    uid: i64,
    book_id: i64,
    qty: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = st.db.pool().begin().await?;
    let taken = sqlx::query("UPDATE books SET stock = stock - ? WHERE id = ? AND stock >= ?")
        .bind(qty)
        .bind(book_id)
        .bind(qty)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if taken != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    // The price comes from the database, never from the form.
    let price: i64 = sqlx::query("SELECT price_cents FROM books WHERE id = ?")
        .bind(book_id)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
    sqlx::query("INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at) VALUES (?, ?, ?, ?, 'Pending Payment', ?)")
        .bind(uid)
        .bind(book_id)
        .bind(qty)
        .bind(price * qty)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    let last = match st.db.backend {
        Backend::Sqlite => "SELECT last_insert_rowid()",
        Backend::MySql => "SELECT LAST_INSERT_ID()",
    };
    let id: i64 = sqlx::query(last).fetch_one(&mut *tx).await?.try_get(0)?;
    tx.commit().await?;
    Ok(Some(id))
}

async fn buy(
    State(st): State<S>,
    ctx: Ctx,
    Path(book_id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let book_id: i64 = book_id.parse().map_err(|_| AppError::NotFound)?;
    let qty = match domain::count(
        "Quantity",
        Some(field(&f, "quantity").unwrap_or("1")),
        1,
        100,
    ) {
        Ok(q) => q,
        Err(e) => {
            flash(&st, &ctx, &e.0).await?;
            return Ok(redirect("/book/catalog"));
        }
    };
    let exists = sqlx::query("SELECT 1 FROM books WHERE id = ?")
        .bind(book_id)
        .fetch_optional(&st.db.pool())
        .await?;
    if exists.is_none() {
        return Err(AppError::NotFound);
    }
    // SQLite has one writer at a time: a busy database is retried briefly.
    let mut attempt = 0;
    let id = loop {
        match take_and_record(&st, uid, book_id, qty).await {
            Ok(id) => break id,
            Err(e)
                if st.db.backend == Backend::Sqlite
                    && e.to_string().contains("locked")
                    && attempt < 20 =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    match id {
        Some(id) => Ok(redirect(&format!("/payment/{id}"))),
        None => {
            flash(&st, &ctx, "Not enough copies left for that quantity.").await?;
            Ok(redirect("/book/catalog"))
        }
    }
}

pub struct Purchase {
    pub id: i64,
    pub book_title: String,
    pub quantity: i64,
    pub total_cents: i64,
    pub status: String,
    pub provider: Option<String>,
}

const PURCHASE_SQL: &str = "SELECT p.id, b.title, p.quantity, p.total_cents, p.status, d.name, p.user_id FROM purchases p \
     JOIN books b ON b.id = p.book_id LEFT JOIN delivery_assignments a ON a.purchase_id = p.id \
     LEFT JOIN delivery_providers d ON d.id = a.provider_id";

fn purchase(r: &sqlx::any::AnyRow) -> Purchase {
    Purchase {
        id: r.get(0),
        book_title: r.get(1),
        quantity: r.get(2),
        total_cents: r.get(3),
        status: r.get(4),
        provider: r.get(5),
    }
}

/// The purchase, if it exists and is `uid`'s: anyone else gets a 404.
async fn own_purchase(st: &S, uid: i64, id: &str) -> Result<Purchase, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let r = sqlx::query(&format!("{PURCHASE_SQL} WHERE p.id = ?"))
        .bind(id)
        .fetch_optional(&st.db.pool())
        .await?
        .ok_or(AppError::NotFound)?;
    if r.get::<i64, _>(6) != uid {
        return Err(AppError::NotFound);
    }
    Ok(purchase(&r))
}

async fn payment_form(
    State(st): State<S>,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let p = own_purchase(&st, uid, &id).await?;
    if p.status != "Pending Payment" {
        return Ok(redirect(&format!("/delivery/{}", p.id)));
    }
    let body = format!(
        r#"<p>{} × “{}”</p><p class="fs-4">Total: <strong>{}</strong></p>
<form method="post" action="/payment/{}">{}<div class="mb-3"><label class="form-label" for="payment_method">Payment method</label>
<select class="form-select" id="payment_method" name="payment_method"><option value="card">Card</option><option value="transfer">Bank transfer</option><option value="cash">Cash on delivery</option></select></div>
<button class="btn btn-success" type="submit">Pay {}</button></form>"#,
        p.quantity,
        esc(&p.book_title),
        money(p.total_cents),
        p.id,
        csrf_field(&ctx),
        money(p.total_cents)
    );
    page(&st, &mut ctx, "Payment", &body).await
}

async fn pay(
    State(st): State<S>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let p = own_purchase(&st, uid, &id).await?;
    let method = match field(&f, "payment_method") {
        Some(m @ ("card" | "transfer" | "cash")) => m.to_string(),
        _ => "card".to_string(),
    };
    if p.status == "Pending Payment" {
        let mut tx = st.db.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE purchases SET status = 'Paid' WHERE id = ? AND status = 'Pending Payment'",
        )
        .bind(p.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            // The amount is the purchase's total, whatever the form says.
            sqlx::query("INSERT INTO payments (purchase_id, amount_cents, payment_method, payment_status, created_at) VALUES (?, ?, ?, 'Paid', ?)")
                .bind(p.id)
                .bind(p.total_cents)
                .bind(&method)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        flash(
            &st,
            &ctx,
            &format!(
                "Paid {}. Now choose how it is delivered.",
                money(p.total_cents)
            ),
        )
        .await?;
    }
    Ok(redirect(&format!("/delivery/{}", p.id)))
}

async fn delivery_form(
    State(st): State<S>,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let p = own_purchase(&st, uid, &id).await?;
    if p.status == "Pending Payment" {
        return Ok(redirect(&format!("/payment/{}", p.id)));
    }
    if let Some(provider) = &p.provider {
        let body = format!(
            r#"<p>“{}” ships with <strong>{}</strong>.</p><p><a href="/purchases">My purchases</a></p>"#,
            esc(&p.book_title),
            esc(provider)
        );
        return page(&st, &mut ctx, "Delivery", &body).await;
    }
    let providers = sqlx::query(
        "SELECT id, name, coverage_area, cost_cents FROM delivery_providers ORDER BY id",
    )
    .fetch_all(&st.db.pool())
    .await?;
    let mut options = String::new();
    for r in &providers {
        options.push_str(&format!(
            r#"<div class="form-check"><input class="form-check-input" type="radio" name="provider_id" id="p{id}" value="{id}" required><label class="form-check-label" for="p{id}">{} ({}) — {}</label></div>"#,
            esc(&r.get::<String, _>(1)),
            esc(&r.get::<String, _>(2)),
            money(r.get(3)),
            id = r.get::<i64, _>(0)
        ));
    }
    let body = format!(
        r#"<p>Choose a delivery provider for “{}”.</p><form method="post" action="/delivery/{}">{}{options}<button class="btn btn-primary mt-3" type="submit">Confirm delivery</button></form>"#,
        esc(&p.book_title),
        p.id,
        csrf_field(&ctx)
    );
    page(&st, &mut ctx, "Delivery", &body).await
}

async fn choose_delivery(
    State(st): State<S>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    ctx.check_csrf(field(&f, "csrf_token"))?;
    let p = own_purchase(&st, uid, &id).await?;
    if p.status == "Pending Payment" {
        flash(&st, &ctx, "Pay for the purchase first.").await?;
        return Ok(redirect(&format!("/payment/{}", p.id)));
    }
    let provider: Option<i64> = field(&f, "provider_id").and_then(|v| v.parse().ok());
    let name = match provider {
        Some(pid) => sqlx::query("SELECT name FROM delivery_providers WHERE id = ?")
            .bind(pid)
            .fetch_optional(&st.db.pool())
            .await?
            .map(|r| (pid, r.get::<String, _>(0))),
        None => None,
    };
    let Some((pid, name)) = name else {
        flash(&st, &ctx, "Choose one of the delivery providers.").await?;
        return Ok(redirect(&format!("/delivery/{}", p.id)));
    };
    if p.provider.is_none() {
        let mut tx = st.db.pool().begin().await?;
        let res = sqlx::query(
            "INSERT INTO delivery_assignments (purchase_id, provider_id) VALUES (?, ?)",
        )
        .bind(p.id)
        .bind(pid)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {
                sqlx::query("UPDATE purchases SET status = 'Shipping' WHERE id = ?")
                    .bind(p.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                flash(&st, &ctx, &format!("“{}” ships with {name}.", p.book_title)).await?;
            }
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                tx.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(redirect("/purchases"))
}

fn status_label(p: &Purchase) -> String {
    match (p.status.as_str(), &p.provider) {
        ("Shipping", Some(name)) => format!("Shipping with {name}"),
        (s, _) => s.to_string(),
    }
}

fn status_code(p: &Purchase) -> &'static str {
    match p.status.as_str() {
        "Pending Payment" => "pending_payment",
        "Paid" => "paid",
        _ => "shipping",
    }
}

async fn my_purchases(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let uid = ctx.require_user()?.id;
    let rows = sqlx::query(&format!(
        "{PURCHASE_SQL} WHERE p.user_id = ? ORDER BY p.id DESC"
    ))
    .bind(uid)
    .fetch_all(&st.db.pool())
    .await?;
    let mut list = String::new();
    for p in rows.iter().map(purchase) {
        let next = match p.status.as_str() {
            "Pending Payment" => format!(r#"<a href="/payment/{}">Pay</a>"#, p.id),
            "Paid" => format!(r#"<a href="/delivery/{}">Choose delivery</a>"#, p.id),
            _ => String::new(),
        };
        list.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{next}</td></tr>",
            p.id,
            esc(&p.book_title),
            p.quantity,
            money(p.total_cents),
            esc(&status_label(&p))
        ));
    }
    let body = format!(
        r#"<table class="table"><thead><tr><th>#</th><th>Book</th><th>Quantity</th><th>Total</th><th>Status</th><th></th></tr></thead><tbody>{list}</tbody></table>"#
    );
    page(&st, &mut ctx, "My purchases", &body).await
}

async fn admin_users(State(st): State<S>, mut ctx: Ctx) -> Result<Response, AppError> {
    let u = ctx.require_user()?;
    if !u.is_admin {
        return Err(AppError::Forbidden(
            "Only administrators can see the users.",
        ));
    }
    let rows = sqlx::query("SELECT id, name, email, is_admin FROM users ORDER BY id")
        .fetch_all(&st.db.pool())
        .await?;
    let mut list = String::new();
    for r in &rows {
        list.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.get::<i64, _>(0),
            esc(&r.get::<String, _>(1)),
            esc(&r.get::<String, _>(2)),
            if r.get::<i64, _>(3) != 0 { "admin" } else { "" }
        ));
    }
    let body = format!(
        r#"<table class="table"><thead><tr><th>#</th><th>Name</th><th>Email</th><th>Role</th></tr></thead><tbody>{list}</tbody></table>"#
    );
    page(&st, &mut ctx, "Users", &body).await
}

// ---- JSON API ------------------------------------------------------------------

async fn api_books(
    State(st): State<S>,
    Query(q): Query<CatalogQuery>,
) -> Result<Response, AppError> {
    let c = match catalog_page(&st, &q).await {
        Ok(c) => c,
        Err(AppError::NotFound) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such page", "max_page": MAX_PAGE})),
            )
                .into_response())
        }
        Err(e) => return Err(e),
    };
    Ok(Json(json!({
        "page": c.page, "per_page": PAGE_SIZE, "total": c.total,
        "total_exact": c.total_exact, "has_next": c.has_next,
        "books": c.books.iter().map(book_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn api_book(State(st): State<S>, Path(id): Path<String>) -> Result<Response, AppError> {
    let not_found = || (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response();
    let Ok(id) = id.parse::<i64>() else {
        return Ok(not_found());
    };
    let r = sqlx::query(&format!("SELECT {BOOK_COLS} FROM books WHERE id = ?"))
        .bind(id)
        .fetch_optional(&st.db.pool())
        .await?;
    Ok(match r {
        Some(r) => Json(book_json(&book(&r))).into_response(),
        None => not_found(),
    })
}

async fn api_purchases(State(st): State<S>, ctx: Ctx) -> Result<Response, AppError> {
    let Some(u) = ctx.user() else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "log in first"})),
        )
            .into_response());
    };
    let rows = sqlx::query(&format!(
        "{PURCHASE_SQL} WHERE p.user_id = ? ORDER BY p.id DESC"
    ))
    .bind(u.id)
    .fetch_all(&st.db.pool())
    .await?;
    let list: Vec<_> = rows
        .iter()
        .map(purchase)
        .map(|p| {
            json!({
                "id": p.id, "book_title": p.book_title, "quantity": p.quantity,
                "total_price": money(p.total_cents), "total_cents": p.total_cents,
                "status": status_code(&p), "delivery_provider": p.provider,
            })
        })
        .collect();
    Ok(Json(json!({ "purchases": list })).into_response())
}

// ---- files -------------------------------------------------------------------------

async fn bootstrap_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        BOOTSTRAP_CSS,
    )
        .into_response()
}

async fn shop_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        SHOP_CSS,
    )
        .into_response()
}

async fn cover(State(st): State<S>, Path(name): Path<String>) -> Result<Response, AppError> {
    let (stem, ext) = name.split_once('.').ok_or(AppError::NotFound)?;
    let mime = match ext {
        "jpg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        _ => return Err(AppError::NotFound),
    };
    if stem.len() != 32 || !stem.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let bytes = tokio::fs::read(st.data_dir.join("covers").join(&name))
        .await
        .map_err(|_| AppError::NotFound)?;
    // Names are never reused: the file at a name never changes.
    Ok((
        [
            (CONTENT_TYPE, mime),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            // An upload is never run as a page or script, whatever its bytes.
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CONTENT_SECURITY_POLICY, "sandbox"),
        ],
        bytes,
    )
        .into_response())
}
