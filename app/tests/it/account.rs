//! Accounts over HTTP, on SQLite and MariaDB: how sessions are stored and
//! end, the limit on registrations, and what the account pages show.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Page, Server, TestDb, BIN};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::Row;

on_both_databases!(
    session_ids_are_stored_hashed,
    idle_sessions_end,
    registrations_are_limited_per_client,
    login_and_logout_end_the_old_session,
    the_registration_flash_shows_once,
    the_users_page_escapes_names,
);

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

async fn session_ids(db: &TestDb) -> Vec<String> {
    let mut conn = db.connect().await;
    sqlx::query("SELECT id FROM sessions")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

async fn session_ids_are_stored_hashed(db: &TestDb) {
    let srv = Server::start(db).await;
    let c = srv.client();
    c.signup("Alice", "alice@example.com").await;
    let cookie = c.session_cookie().await.unwrap();
    assert_eq!(cookie.len(), 64, "{cookie}");
    let ids = session_ids(db).await;
    assert!(
        !ids.contains(&cookie),
        "the token itself is stored: {ids:?}"
    );
    assert!(
        ids.contains(&sha256_hex(&cookie)),
        "no row for the cookie's SHA-256 in {ids:?}"
    );
    // A row's id, presented as a cookie, logs nobody in.
    let stolen = sha256_hex(&cookie);
    let r = srv
        .client()
        .http
        .get(format!("{}/purchases", srv.base))
        .header("cookie", format!("bookstore_session={stolen}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(c.get("/purchases").await.status, StatusCode::OK);
}

async fn idle_sessions_end(db: &TestDb) {
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_SESSION_IDLE_SECS", "2")],
    )
    .await;
    // Left alone for longer than the idle time: logged out.
    let idle = srv.client();
    idle.signup("Alice", "alice@example.com").await;
    assert_eq!(idle.get("/purchases").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = idle.get("/purchases").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/login");

    // Used all along: still logged in well past the idle time.
    let busy = srv.client();
    busy.signup("Bob", "bob@example.com").await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let r = busy.get("/purchases").await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "after {:?}: {}",
            start.elapsed(),
            r.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A registration posted as from the client `forwarded_for`; the token is `c`'s.
async fn register_from(
    c: &Client,
    token: &str,
    forwarded_for: &str,
    name: &str,
    email: &str,
) -> Page {
    let r = c
        .http
        .post(format!("{}/register", c.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("csrf_token", token),
            ("name", name),
            ("email", email),
            ("password", "a good password"),
        ])
        .send()
        .await
        .unwrap();
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

async fn registrations_are_limited_per_client(db: &TestDb) {
    let srv = Server::start(db).await;
    let c = srv.client();
    let t = c.token("/register").await;
    const CLIENT: &str = "203.0.113.9";
    // As `limit::REGISTRATIONS` allows.
    const PER_HOUR: usize = bookstore::limit::REGISTRATIONS.max as usize;
    // Posts refused for their token are not counted.
    for _ in 0..5 {
        let r = register_from(&c, "0000", CLIENT, "Forged", "forged@example.com").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    // `PER_HOUR` attempts an hour per client, whatever becomes of them.
    for i in 0..PER_HOUR {
        let email = if i == 3 {
            "not-an-email".to_string()
        } else {
            format!("u{i}@example.com")
        };
        let r = register_from(&c, &t, CLIENT, &format!("User {i}"), &email).await;
        if i == 3 {
            assert_eq!(r.status, StatusCode::OK);
            assert!(
                r.body.contains("Email is not a valid address."),
                "{}",
                r.body
            );
        } else {
            assert_eq!(r.status, StatusCode::SEE_OTHER, "attempt {i}: {}", r.body);
            assert_eq!(r.location(), "/login");
        }
    }
    let r = register_from(&c, &t, CLIENT, "Over", "over@example.com").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert!(
        r.is_html()
            && r.body
                .contains("Too many registrations from your address. Try again in 60 minutes.")
            && r.body
                .contains(r#"<form method="post" action="/register">"#)
            && r.body.contains(r#"value="Over""#)
            && r.body.contains(r#"value="over@example.com""#),
        "{}",
        r.body
    );
    // A forged left entry changes nothing; another client is not affected.
    let r = register_from(
        &c,
        &t,
        &format!("10.9.9.9, {CLIENT}"),
        "Over",
        "over@example.com",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = register_from(&c, &t, "203.0.113.10", "Other", "other@example.com").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // The refused registration made no account.
    let mut conn = db.connect().await;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE email = ?")
        .bind("over@example.com")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let login = srv
        .client()
        .login("other@example.com", "a good password")
        .await;
    assert_eq!(login.location(), "/book/catalog", "{}", login.body);
}

async fn login_and_logout_end_the_old_session(db: &TestDb) {
    let srv = Server::start(db).await;
    srv.client().signup("Alice", "alice@example.com").await;
    let c = srv.client();
    c.get("/login").await;
    assert!(c.session_cookie().await.is_none(), "no session for a form");
    let rows = session_ids(db).await.len();
    let r = c.login("alice@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    let after = sha256_hex(&c.session_cookie().await.unwrap());
    let ids = session_ids(db).await;
    assert_eq!(ids.len(), rows + 1, "one row, made at login");
    assert!(ids.contains(&after));
    // Logging in again, as someone else, from a logged-in session.
    srv.client().signup("Bob", "bob@example.com").await;
    let r = c.login("bob@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    let bobs = sha256_hex(&c.session_cookie().await.unwrap());
    let ids = session_ids(db).await;
    assert!(!ids.contains(&after), "Alice's session is over");
    let home = c.get("/").await;
    assert!(
        home.body.contains(r#"title="bob@example.com">Bob</span>"#),
        "{}",
        home.body
    );
    // Logout removes the row.
    let t = home.csrf();
    let r = c.post("/logout", &[("csrf_token", &t)]).await;
    assert_eq!(r.location(), "/login");
    assert!(!session_ids(db).await.contains(&bobs));
}

async fn the_registration_flash_shows_once(db: &TestDb) {
    let srv = Server::start(db).await;
    let c = srv.client();
    let r = c
        .register("Alice", "alice@example.com", "a good password")
        .await;
    assert_eq!(r.location(), "/login", "{}", r.body);
    const FLASH: &str = "Your account is ready. Log in to continue.";
    let first = c.get("/login").await;
    assert!(first.body.contains(FLASH), "{}", first.body);
    assert!(!c.get("/login").await.body.contains(FLASH));
    // The home page: no links to pages the visitor cannot see.
    let home = c.get("/").await;
    assert!(
        home.body.contains(r#"href="/book/catalog""#),
        "{}",
        home.body
    );
    assert!(
        !home.body.contains(r#"href="/admin/users""#),
        "{}",
        home.body
    );
}

async fn the_users_page_escapes_names(db: &TestDb) {
    let srv = Server::start(db).await;
    let admin = srv.client();
    admin.signup("Ada", "ada@example.com").await;
    srv.client()
        .signup("<script>alert(1)</script>", "mallory@example.com")
        .await;
    let out = Command::new(BIN)
        .args(["admin", "grant", "ada@example.com"])
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success());
    // `--report-exit` (what ECS Exec runs) ends the output with the exit
    // status, the same as the process's, whatever way the command ended.
    for (args, code) in [
        (&["admin", "grant", "ada@example.com"][..], 0),
        (&["admin", "grant", "nobody@example.com"], 1),
        (&["admin", "no-such-command"], 2),
    ] {
        let out = Command::new(BIN)
            .arg("--report-exit")
            .args(args)
            .env("BOOKSTORE_DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.ends_with(&format!("\nbookstore-exit-status: {code}\n")),
            "{args:?}: {stdout:?}"
        );
    }
    let r = admin.get("/admin/users").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !r.body.contains("<script>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<td>ada@example.com</td><td>admin</td>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<td>mallory@example.com</td><td></td>"));
}
