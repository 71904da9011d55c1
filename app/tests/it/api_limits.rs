//! The API under the shop's defences: purchases that hold their copies for
//! a while, then expire, or are cancelled; a buyer's bounded number of
//! unpaid purchases; the catalog shown again after every change of stock;
//! the limits kept in the shared database (bad tokens, tokens made,
//! login guesses through `POST /api/tokens`); the email rule.

use crate::common;

use std::time::{Duration, Instant};

use common::{Server, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;

use crate::api::{Answer, Program};

on_both_databases!(
    api_purchases_hold_expire_and_cancel,
    api_buyers_hold_a_bounded_number,
    api_limits_are_shared_by_every_instance,
    api_logins_follow_the_email_rule_and_count_first,
);

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0)
}

fn book(title: &str, stock: i64) -> Value {
    json!({"title": title, "author": "Some Author", "description": "", "price": "12.50", "stock": stock})
}

/// The stock the catalog (`GET /api/books`, cached) shows for `id`.
async fn catalog_stock(p: &Program, id: i64) -> i64 {
    let r = p.get("/api/books").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["books"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("book {id} not in {}", r.text))["stock"]
        .as_i64()
        .unwrap()
}

/// A seller's book of `stock` copies, and a buyer's program.
async fn shop(srv: &Server, stock: i64) -> (Program, i64, Program) {
    let anon = Program::new(srv);
    let seller = anon.with_token(&anon.account_and_token("Sam", &["sell"]).await);
    let r = seller.post("/api/books", book("Dune", stock)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_i64().unwrap();
    let buyer = anon.with_token(&anon.account_and_token("Bea", &["buy", "read"]).await);
    (anon, id, buyer)
}

async fn buy(p: &Program, book: i64, qty: i64) -> Answer {
    p.post("/api/purchases", json!({"book_id": book, "quantity": qty}))
        .await
}

async fn api_purchases_hold_expire_and_cancel(db: &TestDb) {
    let data = db.dir.path().join("data");
    let srv = Server::start_with(db, &data, &[("BOOKSTORE_RESERVATION_SECS", "3")]).await;
    let (anon, id, buyer) = shop(&srv, 5).await;
    // The catalog is cached from here on: every change below shows at once.
    assert_eq!(catalog_stock(&anon, id).await, 5);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let r = buy(&buyer, id, 2).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["status"], "pending_payment");
    let until = r.json["reserved_until"].as_i64().unwrap();
    assert!(
        (before + 2..=before + 5).contains(&until),
        "{until} {before}"
    );
    assert_eq!(catalog_stock(&anon, id).await, 3);
    // Cancelled: the copies are back, in the catalog too; once only.
    let pid = r.json["id"].as_i64().unwrap();
    let cancel = format!("/api/purchases/{pid}/cancel");
    let r = buyer.post(&cancel, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "cancelled");
    assert!(r.json["reserved_until"].is_null());
    assert_eq!(catalog_stock(&anon, id).await, 5);
    let r = buyer.post(&cancel, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(scalar(db, "SELECT stock FROM books").await, 5);
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/payment"),
            json!({"payment_method": "card"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["error"].as_str().unwrap().contains("cancelled"));
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/delivery"),
            json!({"provider_id": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Another buyer's purchase cannot be cancelled: not found.
    let other = anon.with_token(&anon.account_and_token("Oz", &["buy"]).await);
    let r = buy(&buyer, id, 3).await;
    let pid = r.json["id"].as_i64().unwrap();
    let r = other
        .post(&format!("/api/purchases/{pid}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // A token without `buy` may not cancel.
    let reader = anon.with_token(&anon.token_for("bea@example.com", &["read"]).await);
    let r = reader
        .post(&format!("/api/purchases/{pid}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(catalog_stock(&anon, id).await, 2);
    // Not paid in time: shown expired, the copies back, payment refused.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let r = buyer.get(&format!("/api/purchases/{pid}")).await;
    assert_eq!(r.json["status"], "expired", "{}", r.text);
    assert!(r.json["reserved_until"].is_null());
    assert_eq!(catalog_stock(&anon, id).await, 5);
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/payment"),
            json!({"payment_method": "card"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("not paid in time"));
    // Paid after its time ran out (retried under a key): refused, nothing
    // charged, the copies back.
    let r = buy(&buyer, id, 4).await;
    let pid = r.json["id"].as_i64().unwrap();
    assert_eq!(catalog_stock(&anon, id).await, 1);
    exec(
        db,
        &format!("UPDATE purchases SET reserved_until = 1 WHERE id = {pid}"),
    )
    .await;
    let r = buyer
        .send(
            Method::POST,
            &format!("/api/purchases/{pid}/payment"),
            Some(&json!({"payment_method": "card"})),
            &[("idempotency-key", "late-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(catalog_stock(&anon, id).await, 5);
    let list = buyer.get("/api/purchases").await;
    let statuses: Vec<&str> = list.json["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["expired", "expired", "cancelled"]);
    // Paid in time: paid, and no longer reserved.
    let r = buy(&buyer, id, 1).await;
    let pid = r.json["id"].as_i64().unwrap();
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/payment"),
            json!({"payment_method": "card"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "paid");
    assert!(r.json["reserved_until"].is_null());
    let r = buyer
        .post(&format!("/api/purchases/{pid}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(catalog_stock(&anon, id).await, 4);
}

async fn exec(db: &TestDb, sql: &str) {
    let mut conn = db.connect().await;
    sqlx::query(sql).execute(&mut conn).await.unwrap();
}

async fn api_buyers_hold_a_bounded_number(db: &TestDb) {
    let srv = Server::start(db).await;
    let (anon, id, buyer) = shop(&srv, 100).await;
    // Five unpaid purchases at most (API and forms count together)...
    let web = srv.client();
    web.login("bea@example.com", "a good password").await;
    let t = web.token("/book/add_book").await;
    let r = web
        .post(
            &format!("/buy/{id}"),
            &[("csrf_token", t.as_str()), ("quantity", "1")],
        )
        .await;
    assert!(r.location().starts_with("/payment/"), "{}", r.body);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = buy(&buyer, id, 1).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.json["id"].as_i64().unwrap());
    }
    let r = buy(&buyer, id, 1).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.json["error"]
            .as_str()
            .unwrap()
            .contains("5 unpaid purchases"),
        "{}",
        r.text
    );
    assert_eq!(scalar(db, "SELECT stock FROM books").await, 95);
    // ...until one is cancelled.
    let r = buyer
        .post(&format!("/api/purchases/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // 20 copies at most in all: 4 held, 17 more do not fit.
    let r = buy(&buyer, id, 17).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["fields"]["quantity"].is_string(), "{}", r.text);
    let r = buy(&buyer, id, 16).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(scalar(db, "SELECT stock FROM books").await, 80);
    assert_eq!(catalog_stock(&anon, id).await, 80);
}

async fn api_limits_are_shared_by_every_instance(db: &TestDb) {
    let data = db.dir.path().join("data");
    let a = Server::start_with(db, &data, &[]).await;
    let b = Server::start_with(db, &data, &[]).await;
    let on_a = Program::new(&a);
    let on_b = Program::new(&b);
    let good = on_a.account_and_token("Ann", &["read"]).await;
    // Tokens made: 20 an hour per user, across instances (each asked
    // from its own address, under the login limits).
    for i in 0..19 {
        let p = if i % 2 == 0 { &on_a } else { &on_b };
        let r = ask_token(
            p,
            "ann@example.com",
            "a good password",
            &format!("10.0.1.{i}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{i}: {}", r.text);
    }
    let r = ask_token(&on_b, "ann@example.com", "a good password", "10.0.1.99").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM api_tokens").await, 20);
    // Wrong tokens: 20 through either instance, then even a good one
    // waits on both; another address is not affected.
    let bad = format!("bks_{}", "0".repeat(64));
    for i in 0..20 {
        let p = if i % 2 == 0 { &on_a } else { &on_b };
        let r = p.with_token(&bad).get("/api/me").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{i}: {}", r.text);
    }
    for p in [&on_a, &on_b] {
        let r = p.with_token(&good).get("/api/me").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
        assert!(r.headers.contains_key("retry-after"));
    }
    let r = on_a
        .with_token(&good)
        .send(
            Method::GET,
            "/api/me",
            None,
            &[("x-forwarded-for", "10.0.2.1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A good token's requests write no counter.
    let rows = scalar(db, "SELECT COUNT(*) FROM limits").await;
    for _ in 0..5 {
        let r = on_a
            .with_token(&good)
            .send(
                Method::GET,
                "/api/me",
                None,
                &[("x-forwarded-for", "10.0.2.2")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM limits").await, rows);
}

async fn ask_token(p: &Program, email: &str, pw: &str, from: &str) -> Answer {
    let body = json!({"email": email, "password": pw, "name": "t", "scopes": ["read"]});
    p.send(
        Method::POST,
        "/api/tokens",
        Some(&body),
        &[("x-forwarded-for", from)],
    )
    .await
}

async fn api_logins_follow_the_email_rule_and_count_first(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    // Registering through the API follows the form's rule: normalised,
    // ASCII only, one account per address.
    let r = anon
        .post(
            "/api/register",
            json!({"name": "Ann", "email": "  \u{FF21}\u{FF2E}\u{FF2E}@Example.COM ", "password": "a good password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["email"], "ann@example.com");
    let r = anon
        .post(
            "/api/register",
            json!({"name": "Ann", "email": "ann@example.com", "password": "a good password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["fields"]["email"].is_string());
    let r = anon
        .post(
            "/api/register",
            json!({"name": "Ann", "email": "\u{430}nn@example.com", "password": "a good password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.json["fields"]["email"]
            .as_str()
            .unwrap()
            .contains("ASCII"),
        "{}",
        r.text
    );
    // A token asked for with the address as typed otherwise.
    let r = ask_token(&anon, "ANN@example.com ", "a good password", "10.0.3.1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Ten wrong guesses at once, each from its own address: each counts
    // before its password is checked, so exactly five are looked at.
    let answers = futures::future::join_all((0..10).map(|i| {
        let anon = anon.clone();
        async move {
            ask_token(
                &anon,
                "ann@example.com",
                "wrong guess",
                &format!("10.0.4.{i}"),
            )
            .await
        }
    }))
    .await;
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        refused,
        5,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for a in &answers {
        assert!(
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(&a.status),
            "{}",
            a.text
        );
    }
    // Now even the right password waits, as on the login form.
    let started = Instant::now();
    let r = ask_token(&anon, "ann@example.com", "a good password", "10.0.3.2").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(10));
    let web = srv.client();
    let page = web.login("ann@example.com", "a good password").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
}
