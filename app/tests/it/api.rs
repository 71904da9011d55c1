//! The JSON API with tokens: a whole purchase by programs, scopes, revoked
//! and expired tokens, `Idempotency-Key`, the CSRF rule for the cookie,
//! and bad input. Every account and token is made through the API itself.

use crate::common;

use common::{Server, TestDb};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;

on_both_databases!(
    a_whole_purchase_by_token,
    every_scope_is_enforced,
    revoked_and_expired_tokens_are_refused,
    purchases_and_payments_are_done_once_per_key,
    cookie_writes_need_the_csrf_header,
    bad_input_is_a_json_4xx_naming_the_field,
    tokens_are_limited_like_logins,
);

/// An answer: status, headers, body as JSON (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

/// A program speaking to the API, with a token or without.
#[derive(Clone)]
pub struct Program {
    http: reqwest::Client,
    base: String,
    pub token: Option<String>,
}

impl Program {
    pub fn new(srv: &Server) -> Self {
        Program {
            // A connection per request: after a body refused unread (413)
            // the server closes the connection, which a pooled client
            // might pick for its next request.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            base: srv.base.clone(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Program {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        answer(r.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(&body), &[]).await
    }

    /// Registers `name` and makes a token with `scopes`; the token.
    pub async fn account_and_token(&self, name: &str, scopes: &[&str]) -> String {
        let email = format!("{}@example.com", name.to_lowercase());
        let r = self
            .post(
                "/api/register",
                json!({"name": name, "email": email, "password": "a good password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        self.token_for(&email, scopes).await
    }

    pub async fn token_for(&self, email: &str, scopes: &[&str]) -> String {
        let r = self
            .post(
                "/api/tokens",
                json!({"email": email, "password": "a good password", "name": "test", "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let t = r.json["token"].as_str().unwrap().to_string();
        assert!(t.starts_with("bks_"), "{t}");
        t
    }
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"))
    };
    Answer {
        status,
        headers,
        json,
        text,
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0)
}

async fn exec(db: &TestDb, sql: &str) {
    let mut conn = db.connect().await;
    sqlx::query(sql).execute(&mut conn).await.unwrap();
}

fn book(title: &str, stock: i64) -> Value {
    json!({"title": title, "author": "Some Author", "description": "A book.", "price": "12.50", "stock": stock})
}

async fn a_whole_purchase_by_token(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let seller = anon.with_token(&anon.account_and_token("Sam", &["sell", "read"]).await);
    let buyer = anon.with_token(&anon.account_and_token("Bea", &["buy", "read"]).await);
    // The seller lists a book and gives it a cover.
    let r = seller.post("/api/books", book("Dune", 3)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["price_cents"], 1250);
    let r = seller
        .http
        .put(format!("{}/api/books/{id}/cover", srv.base))
        .header(
            AUTHORIZATION,
            format!("Bearer {}", seller.token.as_ref().unwrap()),
        )
        .header(CONTENT_TYPE, "image/png")
        .body(common::PNG.to_vec())
        .send()
        .await
        .unwrap();
    let r = answer(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cover = r.json["cover_url"].as_str().unwrap().to_string();
    let img = anon
        .http
        .get(format!("{}{cover}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), StatusCode::OK);
    assert_eq!(img.bytes().await.unwrap().as_ref(), common::PNG);
    // The catalog shows it at once.
    let page = anon.get("/api/books?q=Dune").await;
    assert_eq!(page.json["books"][0]["id"], id);
    // The buyer buys two copies, pays, and chooses delivery.
    let r = buyer
        .post("/api/purchases", json!({"book_id": id, "quantity": 2}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["status"], "pending_payment");
    assert_eq!(r.json["total_price"], "25.00");
    let pid = r.json["id"].as_i64().unwrap();
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/delivery"),
            json!({"provider_id": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.json["error"], "Pay for the purchase first.");
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/payment"),
            json!({"payment_method": "transfer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "paid");
    let providers = anon.get("/api/delivery-providers").await;
    let dhl = providers.json["providers"][0]["id"].as_i64().unwrap();
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/delivery"),
            json!({"provider_id": dhl}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "shipping");
    assert_eq!(r.json["delivery_provider"], "DHL");
    let r = buyer
        .post(
            &format!("/api/purchases/{pid}/delivery"),
            json!({"provider_id": dhl + 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        r.json["error"],
        "The delivery of this purchase is chosen already; the first choice stays."
    );
    let mine = buyer.get("/api/purchases").await;
    assert_eq!(mine.json["purchases"][0]["id"], pid);
    assert_eq!(
        buyer.get(&format!("/api/purchases/{pid}")).await.json["status"],
        "shipping"
    );
    // Nobody else sees it.
    assert_eq!(
        seller.get(&format!("/api/purchases/{pid}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The stock, the payment and the delivery as stored.
    assert_eq!(
        count(db, &format!("SELECT stock FROM books WHERE id = {id}")).await,
        1
    );
    assert_eq!(
        count(
            db,
            &format!("SELECT amount_cents FROM payments WHERE purchase_id = {pid}")
        )
        .await,
        2500
    );
    // The seller edits with the stock it saw (3) while 2 were sold: 3 -> 5
    // adds two to the 1 left.
    let mut edit = book("Dune (2nd ed.)", 5);
    edit["stock_shown"] = json!(3);
    let r = seller
        .send(Method::PUT, &format!("/api/books/{id}"), Some(&edit), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["stock"], 3);
    assert_eq!(r.json["title"], "Dune (2nd ed.)");
    // A book with purchases stays; one without goes, with its cover.
    let r = seller
        .send(Method::DELETE, &format!("/api/books/{id}"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let other = seller.post("/api/books", book("Emma", 1)).await.json["id"].clone();
    let r = seller
        .send(Method::DELETE, &format!("/api/books/{other}"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        anon.get(&format!("/api/books/{other}")).await.status,
        StatusCode::NOT_FOUND
    );
    let mine = seller.get("/api/my/books").await;
    assert_eq!(mine.json["books"].as_array().unwrap().len(), 1);
    // Tokens list their use, never themselves.
    let list = buyer.get("/api/tokens").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.json["tokens"][0]["last_used_at"].is_i64(),
        "{}",
        list.text
    );
    assert!(!list.text.contains(buyer.token.as_deref().unwrap()));
    let stored = count(
        db,
        "SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE 'bks_%'",
    )
    .await;
    assert_eq!(stored, 0, "tokens are stored hashed");
    let me = buyer.get("/api/me").await;
    assert_eq!(me.json["user"]["name"], "Bea");
    assert_eq!(me.json["scopes"], json!(["read", "buy"]));
    assert!(me.json.get("csrf_token").is_none());
}

async fn every_scope_is_enforced(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let seller = anon.with_token(&anon.account_and_token("Sam", &["sell"]).await);
    let id = seller.post("/api/books", book("Dune", 5)).await.json["id"]
        .as_i64()
        .unwrap();
    let reader = anon.with_token(&anon.account_and_token("Rae", &["read"]).await);
    let buyer = anon.with_token(&anon.token_for("rae@example.com", &["buy"]).await);
    let forbidden = |r: &Answer, what: &str, scope: &str| {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
        assert_eq!(
            r.json["error"],
            format!("This token lacks the {scope} scope."),
            "{what}"
        );
    };
    let buy = json!({"book_id": id, "quantity": 1});
    forbidden(
        &reader.post("/api/purchases", buy.clone()).await,
        "read buys",
        "buy",
    );
    forbidden(
        &seller.post("/api/purchases", buy.clone()).await,
        "sell buys",
        "buy",
    );
    forbidden(
        &reader.post("/api/books", book("X", 1)).await,
        "read sells",
        "sell",
    );
    forbidden(
        &buyer.post("/api/books", book("X", 1)).await,
        "buy sells",
        "sell",
    );
    forbidden(
        &buyer
            .send(
                Method::PUT,
                &format!("/api/books/{id}"),
                Some(&book("X", 1)),
                &[],
            )
            .await,
        "buy edits",
        "sell",
    );
    forbidden(
        &reader
            .send(Method::DELETE, &format!("/api/books/{id}"), None, &[])
            .await,
        "read deletes",
        "sell",
    );
    forbidden(
        &buyer.get("/api/purchases").await,
        "buy lists purchases",
        "read",
    );
    forbidden(
        &seller.get("/api/my/books").await,
        "sell lists books",
        "read",
    );
    forbidden(
        &seller.get("/api/tokens").await,
        "sell lists tokens",
        "read",
    );
    let pid = buyer.post("/api/purchases", buy.clone()).await.json["id"]
        .as_i64()
        .unwrap();
    forbidden(
        &reader
            .post(&format!("/api/purchases/{pid}/payment"), json!({}))
            .await,
        "read pays",
        "buy",
    );
    forbidden(
        &reader
            .post(
                &format!("/api/purchases/{pid}/delivery"),
                json!({"provider_id": 1}),
            )
            .await,
        "read chooses delivery",
        "buy",
    );
    // The admin scope: never granted to others, and only while an admin.
    let r = anon
        .post(
            "/api/tokens",
            json!({"email": "rae@example.com", "password": "a good password", "name": "x", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json["fields"]["scopes"],
        "Only administrators can grant the admin scope."
    );
    let r = reader.get("/api/admin/users").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    exec(
        db,
        "UPDATE users SET is_admin = 1 WHERE email = 'rae@example.com'",
    )
    .await;
    forbidden(
        &reader.get("/api/admin/users").await,
        "an admin's read token",
        "admin",
    );
    let admin = anon.with_token(&anon.token_for("rae@example.com", &["admin"]).await);
    let users = admin.get("/api/admin/users").await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    assert_eq!(users.json["users"].as_array().unwrap().len(), 2);
    exec(
        db,
        "UPDATE users SET is_admin = 0 WHERE email = 'rae@example.com'",
    )
    .await;
    assert_eq!(
        admin.get("/api/admin/users").await.status,
        StatusCode::FORBIDDEN
    );
    // Nothing refused was done.
    assert_eq!(count(db, "SELECT COUNT(*) FROM books").await, 1);
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 1);
    assert_eq!(count(db, "SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(count(db, "SELECT stock FROM books").await, 4);
}

async fn revoked_and_expired_tokens_are_refused(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let t1 = anon.account_and_token("Ann", &["read", "buy"]).await;
    let t2 = anon.token_for("ann@example.com", &["read"]).await;
    let (a1, a2) = (anon.with_token(&t1), anon.with_token(&t2));
    let unauthorized = |r: &Answer, what: &str| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        assert_eq!(
            r.json["error"], "The API token is wrong, expired or revoked.",
            "{what}"
        );
        assert_eq!(r.headers["www-authenticate"], "Bearer", "{what}");
    };
    assert_eq!(a2.get("/api/me").await.status, StatusCode::OK);
    let list = a1.get("/api/tokens").await.json;
    let id2 = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t2.starts_with(t["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = a1
        .send(Method::DELETE, &format!("/api/tokens/{id2}"), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    unauthorized(&a2.get("/api/me").await, "revoked");
    unauthorized(&a2.get("/api/purchases").await, "revoked");
    assert_eq!(
        a1.send(Method::DELETE, &format!("/api/tokens/{id2}"), None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Expired.
    exec(db, "UPDATE api_tokens SET expires_at = 1").await;
    unauthorized(&a1.get("/api/me").await, "expired");
    // Malformed, or not a token at all.
    unauthorized(
        &anon.with_token("bks_nope").get("/api/me").await,
        "malformed",
    );
    let r = anon
        .send(
            Method::GET,
            "/api/me",
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    unauthorized(&r, "another scheme");
    // Without any credentials: 401, JSON.
    let r = anon.get("/api/purchases").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json, json!({"error": "log in first"}));
    // A bad token is refused even with a valid session cookie beside it.
    let web = srv.client();
    web.login("ann@example.com", "a good password").await;
    let cookie = web.session_cookie().await.unwrap();
    let r = anon
        .with_token(&t1)
        .send(
            Method::GET,
            "/api/me",
            None,
            &[("cookie", &format!("bookstore_session={cookie}"))],
        )
        .await;
    unauthorized(&r, "bearer with a cookie");
    // The account page revokes too.
    exec(db, "UPDATE api_tokens SET expires_at = 4102444800").await;
    let t3 = anon.token_for("ann@example.com", &["read"]).await;
    assert_eq!(
        anon.with_token(&t3).get("/api/me").await.status,
        StatusCode::OK
    );
    let page = web.get("/account/tokens").await;
    assert!(page.body.contains(&t3[..12]), "{}", page.body);
    let id3 = count(db, "SELECT MAX(id) FROM api_tokens").await;
    let csrf = page.csrf();
    let r = web
        .post(
            &format!("/account/tokens/{id3}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.location(), "/account/tokens");
    unauthorized(
        &anon.with_token(&t3).get("/api/me").await,
        "revoked on the page",
    );
    assert!(!srv.log_text().contains(&t3), "a token was logged");
}

async fn purchases_and_payments_are_done_once_per_key(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let seller = anon.with_token(&anon.account_and_token("Sam", &["sell"]).await);
    let id = seller.post("/api/books", book("Dune", 10)).await.json["id"]
        .as_i64()
        .unwrap();
    let buyer = anon.with_token(&anon.account_and_token("Bea", &["buy", "read"]).await);
    let body = json!({"book_id": id, "quantity": 2});
    let key = [("idempotency-key", "order-1")];
    let first = buyer
        .send(Method::POST, "/api/purchases", Some(&body), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The retry (keys in another order: the same request) gets the same answer.
    let same = json!({"quantity": 2, "book_id": id});
    let again = buyer
        .send(Method::POST, "/api/purchases", Some(&same), &key)
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", srv.log_text());
    assert_eq!(again.json, first.json);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 1);
    assert_eq!(count(db, "SELECT stock FROM books").await, 8);
    // Another body with the key: 409, nothing done.
    let other = json!({"book_id": id, "quantity": 3});
    let r = buyer
        .send(Method::POST, "/api/purchases", Some(&other), &key)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["fields"]["Idempotency-Key"].is_string());
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 1);
    // Another user's key of the same name is theirs.
    let rival = anon.with_token(&anon.account_and_token("Rik", &["buy"]).await);
    let r = rival
        .send(Method::POST, "/api/purchases", Some(&body), &key)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.json["id"], first.json["id"]);
    // Eight identical requests at once: one purchase.
    let at_once = [("idempotency-key", "order-2")];
    let answers = futures::future::join_all(
        (0..8).map(|_| buyer.send(Method::POST, "/api/purchases", Some(&body), &at_once)),
    )
    .await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.json, answers[0].json);
    }
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 3);
    assert_eq!(count(db, "SELECT stock FROM books").await, 4);
    // A payment, retried and sent twice at once: one payment.
    let pid = first.json["id"].as_i64().unwrap();
    let pay = format!("/api/purchases/{pid}/payment");
    let pkey = [("idempotency-key", "pay-1")];
    let card = json!({"payment_method": "card"});
    let (a, b) = tokio::join!(
        buyer.send(Method::POST, &pay, Some(&card), &pkey),
        buyer.send(Method::POST, &pay, Some(&card), &pkey)
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.text,
        b.text
    );
    assert_eq!(a.json, b.json);
    let c = buyer.send(Method::POST, &pay, Some(&card), &pkey).await;
    assert_eq!(c.json, a.json);
    let paid = format!("SELECT COUNT(*) FROM payments WHERE purchase_id = {pid}");
    assert_eq!(count(db, &paid).await, 1);
    // Without the key, paying again is a conflict, not a second payment.
    let r = buyer.send(Method::POST, &pay, Some(&card), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = buyer
        .send(
            Method::POST,
            &pay,
            Some(&json!({"payment_method": "cash"})),
            &pkey,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(count(db, &paid).await, 1);
    // A refusal is not stored: with stock back, the same key buys.
    let big = json!({"book_id": id, "quantity": 10});
    let k3 = [("idempotency-key", "order-3")];
    let r = buyer
        .send(Method::POST, "/api/purchases", Some(&big), &k3)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.json["fields"]["quantity"],
        "Not enough copies left for that quantity."
    );
    exec(db, "UPDATE books SET stock = 100").await;
    let r = buyer
        .send(Method::POST, "/api/purchases", Some(&big), &k3)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Keys expire: an old one is forgotten and the request done anew.
    exec(
        db,
        "UPDATE idempotency_keys SET created_at = 1 WHERE idem_key = 'order-1'",
    )
    .await;
    let r = buyer
        .send(Method::POST, "/api/purchases", Some(&body), &key)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.json["id"], first.json["id"]);
    let r = buyer
        .send(
            Method::POST,
            "/api/purchases",
            Some(&body),
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn cookie_writes_need_the_csrf_header(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let seller = anon.with_token(&anon.account_and_token("Sam", &["sell"]).await);
    let id = seller.post("/api/books", book("Dune", 5)).await.json["id"]
        .as_i64()
        .unwrap();
    let web = srv.client();
    web.signup("Cora", "cora@example.com").await;
    let buy = json!({"book_id": id});
    let post = |headers: Vec<(&'static str, String)>| {
        let mut r = web
            .http
            .post(format!("{}/api/purchases", srv.base))
            .json(&buy);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move { answer(r.send().await.unwrap()).await }
    };
    let r = post(vec![]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.json["error"].as_str().unwrap().contains("X-CSRF-Token"));
    let r = post(vec![("x-csrf-token", "0".repeat(64))]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A form posted cross-site with the cookie buys nothing either.
    let r = web
        .post("/api/purchases", &[("book_id", &id.to_string())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 0);
    // Reads need no token; the session's is in /api/me.
    let me = answer(
        web.http
            .get(format!("{}/api/me", srv.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    let csrf = me.json["csrf_token"].as_str().unwrap().to_string();
    let r = post(vec![("x-csrf-token", csrf)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 1);
}

async fn bad_input_is_a_json_4xx_naming_the_field(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    let t = anon
        .account_and_token("Sam", &["sell", "buy", "read"])
        .await;
    let sam = anon.with_token(&t);
    let id = sam.post("/api/books", book("Dune", 5)).await.json["id"]
        .as_i64()
        .unwrap();
    let expect = |r: &Answer, status: StatusCode, field: &str, says: Option<&str>| {
        assert_eq!(r.status, status, "{field}: {}", r.text);
        let got = r.json["fields"][field].as_str();
        assert!(got.is_some(), "{field} not named: {}", r.text);
        if let Some(s) = says {
            assert_eq!(got, Some(s), "{}", r.text);
        }
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    // The form's messages, field by field.
    let r = sam
        .post(
            "/api/books",
            json!({"title": "", "author": "A", "price": "-3", "stock": -1}),
        )
        .await;
    expect(&r, unprocessable, "title", Some("Title is required."));
    expect(
        &r,
        unprocessable,
        "price",
        Some("Price cannot be negative."),
    );
    expect(
        &r,
        unprocessable,
        "stock",
        Some("Stock cannot be negative."),
    );
    assert_eq!(
        r.json["error"],
        "Title is required. Price cannot be negative. Stock cannot be negative."
    );
    // Wrong types, unknown fields.
    expect(
        &sam.post("/api/books", json!({"title": 5})).await,
        unprocessable,
        "title",
        None,
    );
    let mut extra = book("X", 1);
    extra["is_admin"] = json!(true);
    expect(
        &sam.post("/api/books", extra).await,
        unprocessable,
        "is_admin",
        None,
    );
    expect(
        &sam.post("/api/purchases", json!({"book_id": id, "quantity": true}))
            .await,
        unprocessable,
        "quantity",
        None,
    );
    for (q, says) in [
        (json!(-1), "Quantity must be at least 1."),
        (json!(0), "Quantity must be at least 1."),
        (json!(101), "Quantity must be at most 100."),
        (json!(1.5), "Quantity must be a whole number."),
        (json!("abc"), "Quantity must be a whole number."),
    ] {
        let r = sam
            .post("/api/purchases", json!({"book_id": id, "quantity": q}))
            .await;
        expect(&r, unprocessable, "quantity", Some(says));
    }
    let r = sam.post("/api/purchases", json!({"book_id": "abc"})).await;
    expect(
        &r,
        unprocessable,
        "book_id",
        Some("Book must be a whole number."),
    );
    let r = sam.post("/api/purchases", json!({"book_id": 999999})).await;
    expect(&r, StatusCode::NOT_FOUND, "book_id", None);
    expect(
        &sam.post(
            "/api/purchases/1/payment",
            json!({"payment_method": "gold"}),
        )
        .await,
        unprocessable,
        "payment_method",
        None,
    );
    // Ids that are not numbers.
    for path in [
        "/api/books/abc",
        "/api/purchases/1e3",
        "/api/books/99999999999999999999",
    ] {
        expect(&sam.get(path).await, StatusCode::NOT_FOUND, "id", None);
    }
    let r = sam
        .send(Method::PUT, "/api/books/x1", Some(&book("Y", 1)), &[])
        .await;
    expect(&r, StatusCode::NOT_FOUND, "id", None);
    // Not JSON, not sent as JSON, too large.
    let raw = |ct: &'static str, body: Vec<u8>| {
        sam.http
            .post(format!("{}/api/books", srv.base))
            .header(AUTHORIZATION, format!("Bearer {t}"))
            .header(CONTENT_TYPE, ct)
            .body(body)
            .send()
    };
    let r = answer(
        raw("application/json", b"{\"title\":".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = answer(raw("text/plain", b"{}".to_vec()).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(100_000));
    let r = answer(raw("application/json", huge.into_bytes()).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert!(r.json["error"].is_string());
    let r = answer(
        sam.http
            .put(format!("{}/api/books/{id}/cover", srv.base))
            .header(AUTHORIZATION, format!("Bearer {t}"))
            .body(b"GIF89a....".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(
        &r,
        unprocessable,
        "cover",
        Some("The cover must be a JPEG, PNG or WebP image."),
    );
    let r = answer(
        sam.http
            .put(format!("{}/api/books/{id}/cover", srv.base))
            .header(AUTHORIZATION, format!("Bearer {t}"))
            .body(vec![0xFF; 3 * 1024 * 1024])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    // A method the path does not have.
    let r = sam.send(Method::PATCH, "/api/books", None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json["error"].is_string());
    // Nothing was written, and no answer was a 5xx.
    assert_eq!(count(db, "SELECT COUNT(*) FROM books").await, 1);
    assert_eq!(count(db, "SELECT COUNT(*) FROM purchases").await, 0);
    assert_eq!(count(db, "SELECT stock FROM books").await, 5);
    assert!(
        !srv.log_text().contains("internal error"),
        "{}",
        srv.log_text()
    );
}

async fn tokens_are_limited_like_logins(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = Program::new(&srv);
    anon.account_and_token("Ann", &["read"]).await;
    // 20 live tokens at most (19 more made straight in the database: the
    // API makes only 20 an hour, and counts each as a login).
    for i in 1..20 {
        exec(
            db,
            &format!(
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scopes, created_at, expires_at) \
                 SELECT id, 'more', 'hash{i}', 'bks_x', 'read', 0, 4102444800 FROM users"
            ),
        )
        .await;
    }
    let ask = |pw: &str| {
        anon.post(
            "/api/tokens",
            json!({"email": "ann@example.com", "password": pw, "name": "x", "scopes": ["read"]}),
        )
    };
    let r = ask("a good password").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(count(db, "SELECT COUNT(*) FROM api_tokens").await, 20);
    // Wrong passwords count as failed logins: 5, then refused.
    for _ in 0..5 {
        assert_eq!(ask("wrong password").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = ask("a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
    // Wrong tokens: 20 from one address, then even a good one waits.
    let bad = anon.with_token(&format!("bks_{}", "0".repeat(64)));
    for _ in 0..20 {
        assert_eq!(bad.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = bad.get("/api/me").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
}
