//! The shop against a patient attacker, on SQLite and MariaDB, with two
//! instances on one database where it matters: limits every instance
//! shares, one account per address, nothing stored for anonymous
//! visitors, reservations that end (with payment racing the expiry), and
//! no amplifiers (health checks, the catalog cache, covers).

use crate::common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Page, Server, TestDb, BIN, PNG};
use reqwest::StatusCode;
use sqlx::Row;

on_both_databases!(
    guesses_share_one_limit_across_instances,
    guesses_at_once_cannot_pass_the_limit,
    the_owner_keeps_a_way_in_from_a_known_browser,
    the_client_is_the_last_forwarded_line,
    lookalike_emails_are_other_accounts,
    anonymous_visitors_write_no_rows,
    unpaid_purchases_expire_on_any_instance,
    buyers_cancel_and_hold_a_bounded_number,
    payment_racing_expiry_has_one_outcome,
    books_whose_purchases_ended_can_be_deleted,
    health_checks_at_most_once_a_second,
    only_catalog_writes_clear_the_cache,
    covers_are_streamed_with_bounded_concurrency,
    limits_hold_and_cost_little,
    the_migration_keeps_existing_rows,
);

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn exec(db: &TestDb, sql: &str) {
    let mut conn = db.connect().await;
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A login posted with the token `token` of `c`, as from the client
/// `forwarded` (one header line each).
async fn login_as_from(c: &Client, token: &str, forwarded: &[&str], email: &str, pw: &str) -> Page {
    let mut req = c.http.post(format!("{}/login", c.base));
    for f in forwarded {
        req = req.header("x-forwarded-for", *f);
    }
    let r = req
        .form(&[("csrf_token", token), ("email", email), ("password", pw)])
        .send()
        .await
        .unwrap();
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

async fn two_servers(db: &TestDb, env: &[(&str, &str)]) -> (Server, Server) {
    let data = db.dir.path().join("data");
    let a = Server::start_with(db, &data, env).await;
    let b = Server::start_with(db, &data, env).await;
    (a, b)
}

async fn guesses_share_one_limit_across_instances(db: &TestDb) {
    let (a, b) = two_servers(db, &[]).await;
    a.client().signup("Victim", "victim@example.com").await;
    // Five wrong passwords in all, from different addresses, through
    // either instance: the sixth is refused on both, even the right one.
    for i in 0..5 {
        let srv = if i % 2 == 0 { &a } else { &b };
        let c = srv.client();
        let t = c.token("/login").await;
        let from = format!("198.51.100.{i}");
        let r = login_as_from(
            &c,
            &t,
            &[from.as_str()],
            "victim@example.com",
            "wrong password",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "guess {i}: {}", r.body);
        assert!(r.body.contains("Login failed"), "{}", r.body);
    }
    for srv in [&a, &b] {
        let c = srv.client();
        let t = c.token("/login").await;
        let r = login_as_from(
            &c,
            &t,
            &["198.51.100.77"],
            "victim@example.com",
            "a good password",
        )
        .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((800..=900).contains(&wait), "{wait}");
    }
    // 20 attempts a minute per client, counted across both instances.
    for i in 0..20 {
        let srv = if i % 2 == 0 { &a } else { &b };
        let c = srv.client();
        let t = c.token("/login").await;
        let r = login_as_from(&c, &t, &["203.0.113.9"], &format!("n{i}@example.com"), "pw").await;
        assert_eq!(r.status, StatusCode::OK, "attempt {i}: {}", r.body);
    }
    for srv in [&a, &b] {
        let c = srv.client();
        let t = c.token("/login").await;
        let r = login_as_from(&c, &t, &["203.0.113.9"], "n@example.com", "pw").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    }
    // What the database keeps: hashes of a fixed size, never the email.
    let mut conn = db.connect().await;
    let keys: Vec<String> = sqlx::query("SELECT key_hash FROM limits")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.len() == 32), "{keys:?}");
}

async fn guesses_at_once_cannot_pass_the_limit(db: &TestDb) {
    let (a, b) = two_servers(db, &[("BOOKSTORE_HASH_PERMITS", "64")]).await;
    a.client().signup("Victim", "victim@example.com").await;
    // 30 guesses sent at once through both instances from 30 addresses:
    // at most 5 are checked, the rest refused.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            let c = Client::new(&base);
            let t = c.token("/login").await;
            let from = format!("192.0.2.{i}");
            login_as_from(
                &c,
                &t,
                &[from.as_str()],
                "victim@example.com",
                "wrong password",
            )
            .await
            .status
        }));
    }
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(checked, 5, "guesses checked out of 30 sent at once");
}

async fn the_owner_keeps_a_way_in_from_a_known_browser(db: &TestDb) {
    let (a, b) = two_servers(db, &[]).await;
    let owner = a.client();
    owner.signup("Owner", "owner@example.com").await;
    // Someone else spends the email's budget of failures.
    for i in 0..6 {
        let c = b.client();
        let t = c.token("/login").await;
        let from = format!("198.51.100.{i}");
        login_as_from(&c, &t, &[from.as_str()], "owner@example.com", "guess").await;
    }
    let fresh = a.client();
    let r = fresh.login("owner@example.com", "a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // The browser the owner logged in with before still gets in, on
    // either instance.
    let again = Client::with_jar(&b.base, owner.jar.clone());
    let r = again.login("owner@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    // Its own failures are limited too.
    for _ in 0..5 {
        let r = again.login("owner@example.com", "typo").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = again.login("owner@example.com", "a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // A device cookie made up, or taken from another account, counts for
    // nothing.
    let other = b.client();
    other.signup("Other", "other@example.com").await;
    let forged = b.client();
    let url = b.base.parse().unwrap();
    let cookie = {
        use reqwest::cookie::CookieStore;
        other
            .jar
            .cookies(&url)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let device = cookie
        .split(';')
        .map(str::trim)
        .find(|kv| kv.starts_with("bookstore_device="))
        .expect("a device cookie after a login")
        .to_string();
    forged
        .jar
        .add_cookie_str(&format!("{device}; Path=/"), &url);
    let r = forged.login("owner@example.com", "a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
}

async fn the_client_is_the_last_forwarded_line(db: &TestDb) {
    let srv = Server::start(db).await;
    // A client that sends its own `X-Forwarded-For` line before the load
    // balancer's gets no fresh address from it.
    let c = srv.client();
    let t = c.token("/login").await;
    for i in 0..20 {
        let mine = format!("10.9.{i}.1");
        let r = login_as_from(
            &c,
            &t,
            &[mine.as_str(), "203.0.113.50"],
            &format!("x{i}@example.com"),
            "pw",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "attempt {i}: {}", r.body);
    }
    let r = login_as_from(
        &c,
        &t,
        &["10.99.0.1", "203.0.113.50"],
        "y@example.com",
        "pw",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let r = login_as_from(
        &c,
        &t,
        &["203.0.113.51", "203.0.113.50"],
        "y@example.com",
        "pw",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // The address the last line ends with is the client.
    let r = login_as_from(
        &c,
        &t,
        &["203.0.113.50", "203.0.113.51"],
        "y@example.com",
        "pw",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn lookalike_emails_are_other_accounts(db: &TestDb) {
    let srv = Server::start(db).await;
    srv.client().signup("Victim", "victim@example.com").await;
    // A lookalike is refused at registration.
    let c = srv.client();
    let r = c
        .register("Mallory", "v\u{ef}ctim@example.com", "a good password")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Email must be written in ASCII"),
        "{}",
        r.body
    );
    // Written another way, the same address is the same account.
    let r = c
        .register("Copy", " VICTIM@Example.COM ", "a good password")
        .await;
    assert!(
        r.body
            .contains("An account with this email already exists."),
        "{}",
        r.body
    );
    let r = srv
        .client()
        .login("\u{ff36}ICTIM@example.com", "a good password")
        .await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    // An account with a lookalike address (made before the rule) is its
    // own: it logs in with its own password only, and the victim's
    // password does not open it, nor the other way round.
    let hash = bookstore::password::hash("mallory's password").unwrap();
    let mut conn = db.connect().await;
    sqlx::query(
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('Mallory', ?, ?, 0, 0)",
    )
    .bind("v\u{ef}ctim@example.com")
    .bind(&hash)
    .execute(&mut conn)
    .await
    .expect("a lookalike is another row, not a duplicate");
    let r = srv
        .client()
        .login("v\u{ef}ctim@example.com", "a good password")
        .await;
    assert!(r.body.contains("Login failed"), "{}", r.body);
    let r = srv
        .client()
        .login("vi\u{308}ctim@example.com", "mallory's password")
        .await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    let r = srv
        .client()
        .login("victim@example.com", "mallory's password")
        .await;
    assert!(r.body.contains("Login failed"), "{}", r.body);
    // `admin grant` finds exactly the address given.
    let grant = |email: &str| {
        Command::new(BIN)
            .args(["admin", "grant", email])
            .env("BOOKSTORE_DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    assert!(grant("v\u{ef}ctim@example.com").status.success());
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM users WHERE is_admin = 1").await,
        1
    );
    let victim_admin = scalar(db, "SELECT is_admin FROM users WHERE name = 'Victim'").await;
    assert_eq!(
        victim_admin, 0,
        "the lookalike's grant did not reach the victim"
    );
    assert!(grant(" Victim@Example.com").status.success());
    assert_eq!(
        scalar(db, "SELECT is_admin FROM users WHERE name = 'Victim'").await,
        1
    );
    assert!(!grant("nobody@example.com").status.success());
}

async fn anonymous_visitors_write_no_rows(db: &TestDb) {
    let (a, b) = two_servers(db, &[]).await;
    // A loop of cookieless form pages stores nothing.
    for i in 0..50 {
        let path = if i % 2 == 0 { "/login" } else { "/register" };
        let srv = if i % 3 == 0 { &a } else { &b };
        let r = reqwest::get(format!("{}{path}", srv.base)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM sessions").await, 0);
    // The anonymous token of one instance is good on the other (a key
    // they share), and the registration's message follows the visitor.
    let c = a.client();
    let t = c.token("/register").await;
    let on_b = Client::with_jar(&b.base, c.jar.clone());
    let r = on_b
        .post(
            "/register",
            &[
                ("csrf_token", &t),
                ("name", "Alice"),
                ("email", "alice@example.com"),
                ("password", "a good password"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/login", "{}", r.body);
    let page = c.get("/login").await;
    assert!(
        page.body.contains("Your account is ready."),
        "{}",
        page.body
    );
    assert!(!c
        .get("/login")
        .await
        .body
        .contains("Your account is ready."));
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM sessions").await, 0);
    // A token made up, or another visitor's, is refused.
    let other = b.client();
    let theirs = other.token("/login").await;
    for bad in ["", "00", theirs.as_str()] {
        let r = c
            .post(
                "/login",
                &[
                    ("csrf_token", bad),
                    ("email", "alice@example.com"),
                    ("password", "a good password"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "token {bad:?}");
    }
    // A made-up flash cookie shows nothing.
    let forged = a.client();
    forged.jar.add_cookie_str(
        &format!(
            "bookstore_flash={}.{}; Path=/",
            hex::encode("Pay at evil.example"),
            "ab".repeat(32)
        ),
        &a.base.parse().unwrap(),
    );
    assert!(!forged.get("/login").await.body.contains("evil.example"));
    // Logging in makes the first row.
    let r = c.login("alice@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM sessions").await, 1);
}

/// A seller with `title` (`stock` copies at 12.50) on `srv`; its id.
async fn seller_with_book(srv: &Server, email: &str, title: &str, stock: &str) -> (Client, i64) {
    let s = srv.client();
    s.signup("Seller", email).await;
    let r = s.add_book(title, "12.50", stock).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = s.book_id(title).await;
    (s, id)
}

async fn buy(c: &Client, book: i64, qty: &str) -> Page {
    let t = c.token("/book/add_book").await;
    c.post(
        &format!("/buy/{book}"),
        &[("csrf_token", &t), ("quantity", qty)],
    )
    .await
}

fn purchase_id(r: &Page) -> i64 {
    let to = r.location();
    assert!(to.starts_with("/payment/"), "{} {to}: {}", r.status, r.body);
    to["/payment/".len()..].parse().unwrap()
}

async fn stock_of(db: &TestDb, book: i64) -> i64 {
    scalar(db, &format!("SELECT stock FROM books WHERE id = {book}")).await
}

async fn unpaid_purchases_expire_on_any_instance(db: &TestDb) {
    let (a, b) = two_servers(db, &[("BOOKSTORE_RESERVATION_SECS", "3")]).await;
    let (_, dune) = seller_with_book(&a, "seller@example.com", "Dune", "5").await;
    let buyer = a.client();
    buyer.signup("Buyer", "buyer@example.com").await;
    let pid = purchase_id(&buy(&buyer, dune, "3").await);
    assert_eq!(stock_of(db, dune).await, 2);
    let list = buyer.get("/purchases").await;
    assert!(
        list.body.contains("left to pay")
            && list.body.contains(&format!("/purchases/{pid}/cancel")),
        "{}",
        list.body
    );
    let pay_page = buyer.get(&format!("/payment/{pid}")).await;
    assert!(
        pay_page.body.contains("The copies are held for you"),
        "{}",
        pay_page.body
    );
    tokio::time::sleep(Duration::from_millis(4200)).await;
    // Seen through the other instance: expired, the copies back.
    let on_b = Client::with_jar(&b.base, buyer.jar.clone());
    let list = on_b.get("/purchases").await;
    assert!(list.body.contains("<td>Expired</td>"), "{}", list.body);
    assert!(list.body.contains("Not paid in time"), "{}", list.body);
    assert_eq!(stock_of(db, dune).await, 5);
    // Paying now charges nothing.
    let t = on_b.token("/book/add_book").await;
    let r = on_b
        .post(
            &format!("/payment/{pid}"),
            &[("csrf_token", &t), ("payment_method", "card")],
        )
        .await;
    assert_eq!(r.location(), "/purchases", "{}", r.body);
    assert!(on_b
        .get("/purchases")
        .await
        .body
        .contains("was not paid in time"));
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(
        on_b.get(&format!("/payment/{pid}")).await.location(),
        "/purchases"
    );
    assert_eq!(
        on_b.get(&format!("/delivery/{pid}")).await.location(),
        "/purchases"
    );
    let api = on_b.get("/api/purchases").await.json();
    assert_eq!(api["purchases"][0]["status"], "expired");
    // The sweep expires what nobody looks at.
    let pid = purchase_id(&buy(&buyer, dune, "4").await);
    assert_eq!(stock_of(db, dune).await, 1);
    let start = Instant::now();
    while stock_of(db, dune).await != 5 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the sweep never came"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status: String = {
        let mut conn = db.connect().await;
        sqlx::query("SELECT status FROM purchases WHERE id = ?")
            .bind(pid)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!(status, "Expired");
    // A purchase recorded by the previous release (no reservation time)
    // expires too, by its creation time.
    let buyer_id = scalar(db, "SELECT id FROM users WHERE email = 'buyer@example.com'").await;
    exec(
        db,
        &format!("UPDATE books SET stock = stock - 2 WHERE id = {dune}"),
    )
    .await;
    exec(
        db,
        &format!(
            "INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at) \
             VALUES ({buyer_id}, {dune}, 2, 2500, 'Pending Payment', 0)"
        ),
    )
    .await;
    let start = Instant::now();
    while stock_of(db, dune).await != 5 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the old purchase never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM purchases WHERE status = 'Pending Payment'"
        )
        .await,
        0
    );
}

async fn buyers_cancel_and_hold_a_bounded_number(db: &TestDb) {
    let (a, b) = two_servers(
        db,
        &[
            ("BOOKSTORE_MAX_UNPAID_PURCHASES", "2"),
            ("BOOKSTORE_MAX_UNPAID_COPIES", "5"),
        ],
    )
    .await;
    let (_, dune) = seller_with_book(&a, "seller@example.com", "Dune", "100").await;
    let buyer = a.client();
    buyer.signup("Buyer", "buyer@example.com").await;
    let on_b = Client::with_jar(&b.base, buyer.jar.clone());
    // Copies: 5 in all.
    let r = buy(&buyer, dune, "6").await;
    assert_eq!(r.location(), "/book/catalog");
    let page = buyer.get("/book/catalog").await;
    assert!(
        page.body.contains("may hold 5 copies in all"),
        "{}",
        page.body
    );
    let first = purchase_id(&buy(&buyer, dune, "3").await);
    let r = buy(&on_b, dune, "3").await;
    assert_eq!(r.location(), "/book/catalog");
    assert!(on_b
        .get("/book/catalog")
        .await
        .body
        .contains("may hold 5 copies in all"));
    // Purchases: 2 at once, through either instance.
    purchase_id(&buy(&on_b, dune, "1").await);
    let r = buy(&buyer, dune, "1").await;
    assert_eq!(r.location(), "/book/catalog");
    let page = buyer.get("/book/catalog").await;
    assert!(
        page.body
            .contains("You have 2 unpaid purchases, the most allowed"),
        "{}",
        page.body
    );
    assert_eq!(stock_of(db, dune).await, 96);
    // Cancelling needs the form's token, and only the buyer may.
    let r = buyer.post(&format!("/purchases/{first}/cancel"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let stranger = b.client();
    stranger.signup("Stranger", "stranger@example.com").await;
    let t = stranger.token("/book/add_book").await;
    let r = stranger
        .post(&format!("/purchases/{first}/cancel"), &[("csrf_token", &t)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(stock_of(db, dune).await, 96);
    let t = buyer.token("/book/add_book").await;
    let r = buyer
        .post(&format!("/purchases/{first}/cancel"), &[("csrf_token", &t)])
        .await;
    assert_eq!(r.location(), "/purchases");
    let list = buyer.get("/purchases").await;
    assert!(
        list.body.contains("is cancelled") && list.body.contains("<td>Cancelled</td>"),
        "{}",
        list.body
    );
    assert_eq!(stock_of(db, dune).await, 99);
    // Cancelled twice: the copies return once.
    let r = on_b
        .post(&format!("/purchases/{first}/cancel"), &[("csrf_token", &t)])
        .await;
    assert_eq!(r.location(), "/purchases");
    assert_eq!(stock_of(db, dune).await, 99);
    // A cancelled purchase cannot be paid.
    let r = buyer
        .post(
            &format!("/payment/{first}"),
            &[("csrf_token", &t), ("payment_method", "card")],
        )
        .await;
    assert_eq!(r.location(), "/purchases");
    assert!(buyer
        .get("/purchases")
        .await
        .body
        .contains("was cancelled; nothing was charged"));
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM payments").await, 0);
    // Room again for one more.
    purchase_id(&buy(&buyer, dune, "4").await);
    // Many at once from one buyer: the limits hold.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let jar = buyer.jar.clone();
        tasks.push(tokio::spawn(async move {
            let c = Client::with_jar(&base, jar);
            buy(&c, dune, "1").await.location().to_string()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "/book/catalog");
    }
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM purchases WHERE status = 'Pending Payment'"
        )
        .await,
        2
    );
}

async fn payment_racing_expiry_has_one_outcome(db: &TestDb) {
    let (a, b) = two_servers(
        db,
        &[
            ("BOOKSTORE_MAX_UNPAID_PURCHASES", "100"),
            ("BOOKSTORE_MAX_UNPAID_COPIES", "1000"),
        ],
    )
    .await;
    let (_, dune) = seller_with_book(&a, "seller@example.com", "Dune", "1000").await;
    let buyer = a.client();
    buyer.signup("Buyer", "buyer@example.com").await;
    let on_b = Client::with_jar(&b.base, buyer.jar.clone());
    let t = buyer.token("/book/add_book").await;
    const ROUNDS: usize = 24;
    let mut ids = Vec::new();
    for i in 0..ROUNDS {
        let qty = (i % 3 + 1).to_string();
        ids.push(purchase_id(&buy(&buyer, dune, &qty).await));
    }
    // Each purchase's time runs out at the next whole second; its payment
    // (on one instance) and its expiry (on the other, and the sweeps)
    // are sent around that moment.
    let mut tasks = Vec::new();
    for (i, pid) in ids.iter().copied().enumerate() {
        let (pay_base, jar, t) = (a.base.clone(), buyer.jar.clone(), t.clone());
        let exp_base = b.base.clone();
        let jar2 = on_b.jar.clone();
        let delay = Duration::from_millis(37 * i as u64 % 1100);
        let mut conn = db.connect().await;
        let until = bookstore::db::now() + 1;
        sqlx::query("UPDATE purchases SET reserved_until = ? WHERE id = ?")
            .bind(until)
            .bind(pid)
            .execute(&mut conn)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let pay = async {
                let c = Client::with_jar(&pay_base, jar);
                c.post(
                    &format!("/payment/{pid}"),
                    &[("csrf_token", &t), ("payment_method", "card")],
                )
                .await
                .status
            };
            let expire = async {
                let c = Client::with_jar(&exp_base, jar2);
                c.get(&format!("/payment/{pid}")).await.status
            };
            let (p, e) = tokio::join!(pay, expire);
            assert_eq!(p, StatusCode::SEE_OTHER);
            assert!(e == StatusCode::SEE_OTHER || e == StatusCode::OK, "{e}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Let whatever is still unpaid expire.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    buyer.get("/purchases").await;
    let mut conn = db.connect().await;
    let rows = sqlx::query(
        "SELECT p.id, p.status, p.quantity, (SELECT COUNT(*) FROM payments y WHERE y.purchase_id = p.id) \
         FROM purchases p WHERE p.book_id = ?",
    )
    .bind(dune)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let (mut paid, mut expired, mut sold) = (0, 0, 0);
    for r in &rows {
        let (id, status, qty, payments): (i64, String, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        match status.as_str() {
            "Paid" => {
                assert_eq!(payments, 1, "purchase {id}");
                paid += 1;
                sold += qty;
            }
            "Expired" => {
                assert_eq!(payments, 0, "purchase {id} expired and paid");
                expired += 1;
            }
            other => panic!("purchase {id} ended {other}"),
        }
    }
    assert_eq!(paid + expired, ROUNDS);
    assert_eq!(
        stock_of(db, dune).await,
        1000 - sold,
        "every copy paid or back"
    );
    eprintln!("{paid} paid, {expired} expired");
}

async fn books_whose_purchases_ended_can_be_deleted(db: &TestDb) {
    let srv = Server::start(db).await;
    let (seller, dune) = seller_with_book(&srv, "seller@example.com", "Dune", "5").await;
    let r = seller.add_book("Emma", "3", "5").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let emma = seller.book_id("Emma").await;
    let buyer = srv.client();
    buyer.signup("Buyer", "buyer@example.com").await;
    let cancelled = purchase_id(&buy(&buyer, dune, "2").await);
    let t = buyer.token("/book/add_book").await;
    buyer
        .post(
            &format!("/purchases/{cancelled}/cancel"),
            &[("csrf_token", &t)],
        )
        .await;
    let expired = purchase_id(&buy(&buyer, dune, "1").await);
    exec(
        db,
        &format!("UPDATE purchases SET reserved_until = 1 WHERE id = {expired}"),
    )
    .await;
    let paid = purchase_id(&buy(&buyer, emma, "1").await);
    let r = buyer
        .post(
            &format!("/payment/{paid}"),
            &[("csrf_token", &t), ("payment_method", "card")],
        )
        .await;
    assert_eq!(r.location(), format!("/delivery/{paid}"));
    let st = seller.token("/book/add_book").await;
    let r = seller
        .post(&format!("/book/delete_book/{dune}"), &[("csrf_token", &st)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert!(seller
        .get("/book/my_books")
        .await
        .body
        .contains("“Dune” was deleted."));
    assert_eq!(
        scalar(db, &format!("SELECT COUNT(*) FROM books WHERE id = {dune}")).await,
        0
    );
    let r = seller
        .post(&format!("/book/delete_book/{emma}"), &[("csrf_token", &st)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert!(seller
        .get("/book/my_books")
        .await
        .body
        .contains("stays on record"));
    assert_eq!(
        scalar(db, &format!("SELECT COUNT(*) FROM books WHERE id = {emma}")).await,
        1
    );
}

async fn health_checks_at_most_once_a_second(db: &TestDb) {
    let srv = Server::start(db).await;
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..60 {
        let base = srv.base.clone();
        tasks.push(tokio::spawn(async move {
            let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["status"], "ok");
            v["checked_at"].as_u64().unwrap()
        }));
    }
    let mut checks = HashSet::new();
    for t in tasks {
        checks.insert(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs() + 2;
    assert!(
        checks.len() as u64 <= secs,
        "{} checks for 60 requests in {:?}",
        checks.len(),
        start.elapsed()
    );
    // The data directory holds no probe files left behind.
    let left = std::fs::read_dir(&srv.data_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".healthz")
        })
        .count();
    assert_eq!(left, 0);
}

async fn only_catalog_writes_clear_the_cache(db: &TestDb) {
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_CATALOG_MAX_AGE_MS", "1000")],
    )
    .await;
    let (seller, _) = seller_with_book(&srv, "seller@example.com", "Dune", "5").await;
    let anon = srv.client();
    let seller_id = scalar(
        db,
        "SELECT id FROM users WHERE email = 'seller@example.com'",
    )
    .await;
    // Anonymous posts, refused forms and 404s leave the cached page be.
    // (Within the page's maximum age; a slow machine tries again.)
    let mut held = false;
    for round in 0..5 {
        let title = format!("Sneaked in {round}");
        assert!(anon.get("/book/catalog").await.body.contains("Dune"));
        let start = Instant::now();
        exec(
            db,
            &format!(
                "INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) \
                 VALUES ('{title}', 'X', '', 100, 1, {seller_id}, 0)"
            ),
        )
        .await;
        anon.post("/no/such/page", &[]).await;
        anon.post("/login", &[("csrf_token", "bad")]).await;
        seller
            .post("/book/add_book", &[("csrf_token", "bad")])
            .await;
        let page = anon.get("/book/catalog").await;
        if start.elapsed() < Duration::from_millis(800) {
            assert!(
                !page.body.contains(&title),
                "a refused post emptied the cache"
            );
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(held, "the machine was too slow to tell");
    // A successful write through this instance shows at once.
    let r = seller.add_book("Emma", "3", "5").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = anon.get("/book/catalog").await;
    assert!(page.body.contains("Emma"), "{}", page.body);
}

async fn covers_are_streamed_with_bounded_concurrency(db: &TestDb) {
    let data = db.dir.path().join("data");
    let srv = Server::start(db).await;
    let s = srv.client();
    s.signup("Seller", "seller@example.com").await;
    let t = s.token("/book/add_book").await;
    // A cover of nearly 2 MB: streamed whole, with its length.
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 - 10, 7);
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", t)
        .text("title", "Dune")
        .text("author", "Frank Herbert")
        .text("description", "")
        .text("price", "1")
        .text("stock", "1")
        .part(
            "cover",
            reqwest::multipart::Part::bytes(big.clone()).file_name("c.png"),
        );
    let r = s.post_multipart("/book/add_book", form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let b = s.get("/api/books").await.json();
    let url = b["books"][0]["cover_url"].as_str().unwrap().to_string();
    let r = s
        .http
        .get(format!("{}{url}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"],
        big.len().to_string().as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), big.as_slice());
    drop(srv);
    // One download at a time, each within 2 s: a client that stops
    // reading holds the only place, then loses it.
    let srv = Server::start_with(
        db,
        &data,
        &[
            ("BOOKSTORE_COVER_DOWNLOADS", "1"),
            ("BOOKSTORE_COVER_SEND_SECS", "2"),
        ],
    )
    .await;
    // A file larger than the kernel's buffers can take (no upload is:
    // it is put there directly), so that a client not reading holds the
    // download open.
    let huge = format!("/covers/{}.png", "ab".repeat(16));
    let mut bytes = PNG.to_vec();
    bytes.resize(24 * 1024 * 1024, 1);
    std::fs::write(data.join("covers").join(&huge["/covers/".len()..]), &bytes).unwrap();
    let addr = srv.base.trim_start_matches("http://").to_string();
    // A small receive buffer: the kernel cannot take the cover for it.
    let slow_socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow_socket.set_recv_buffer_size(4096).unwrap();
    let to: std::net::SocketAddr = addr.parse().unwrap();
    slow_socket.connect(&to.into()).unwrap();
    let mut slow: std::net::TcpStream = slow_socket.into();
    {
        use std::io::{Read, Write};
        write!(slow, "GET {huge} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = [0u8; 64];
        slow.read_exact(&mut head).unwrap();
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
    }
    let held = Instant::now();
    let r = reqwest::get(format!("{}{url}", srv.base)).await.unwrap();
    if held.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "the place was free"
        );
        assert_eq!(r.headers()["retry-after"], "1");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = reqwest::get(format!("{}{url}", srv.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the slow reader still holds it");
    assert_eq!(r.bytes().await.unwrap().len(), big.len());
    // The slow reader's response was cut short of its length.
    {
        use std::io::Read;
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let _ = slow.read_to_end(&mut got);
        assert!(got.len() < bytes.len(), "{} bytes", got.len());
    }
    drop(srv);
    // With no room for another download: 503 and when to try again.
    let srv = Server::start_with(db, &data, &[("BOOKSTORE_COVER_DOWNLOADS", "0")]).await;
    let r = reqwest::get(format!("{}{url}", srv.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
}

async fn limits_hold_and_cost_little(db: &TestDb) {
    // Migrated by a server, then used straight from the library.
    drop(Server::start(db).await);
    let dbh = bookstore::db::Db::open(&db.url, None).await.unwrap();
    use bookstore::limit::{hit, LOGIN_FAILURES};
    // Parallel hits on one key: exactly `max` pass.
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let d = dbh.clone();
        tasks.push(tokio::spawn(async move {
            hit(&d, &LOGIN_FAILURES, "target@example.com")
                .await
                .unwrap()
                .is_ok()
        }));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, LOGIN_FAILURES.max as usize);
    // The cost of one check-and-record, on distinct keys, one at a time.
    const N: u32 = 300;
    let start = Instant::now();
    for i in 0..N {
        hit(&dbh, &LOGIN_FAILURES, &format!("k{i}@example.com"))
            .await
            .unwrap()
            .unwrap();
    }
    let each = start.elapsed() / N;
    // A window that is over starts again from one.
    let short = bookstore::limit::Rule {
        bucket: "test",
        max: 2,
        window: Duration::from_secs(1),
    };
    assert!(hit(&dbh, &short, "k").await.unwrap().is_ok());
    assert!(hit(&dbh, &short, "k").await.unwrap().is_ok());
    let wait = hit(&dbh, &short, "k").await.unwrap().unwrap_err();
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(hit(&dbh, &short, "k").await.unwrap().is_ok());
    assert!(hit(&dbh, &short, "k").await.unwrap().is_ok());
    assert!(hit(&dbh, &short, "k").await.unwrap().is_err());
    // A success clears the key.
    bookstore::limit::clear(&dbh, &short, "k").await.unwrap();
    assert!(hit(&dbh, &short, "k").await.unwrap().is_ok());
    // Rows whose window is over go with the sweep.
    exec(
        db,
        "UPDATE limits SET window_start = 0 WHERE bucket = 'test'",
    )
    .await;
    assert_eq!(bookstore::limit::prune(&dbh).await.unwrap(), 1);
    eprintln!(
        "limit check-and-record on {}: {:?} each",
        if db.is_mariadb() { "MariaDB" } else { "SQLite" },
        each
    );
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM limits").await,
        i64::from(N) + 1
    );
}

/// The schema as the previous release left it, with rows in it; then
/// this release's migration.
async fn the_migration_keeps_existing_rows(db: &TestDb) {
    let dir = if db.is_mariadb() { "mysql" } else { "sqlite" };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let before = db.dir.path().join("before");
    std::fs::create_dir_all(&before).unwrap();
    for f in std::fs::read_dir(&all).unwrap() {
        let name = f.unwrap().file_name();
        if name.to_string_lossy().as_ref() < "20261207000002" {
            std::fs::copy(all.join(&name), before.join(&name)).unwrap();
        }
    }
    let mut conn = db.connect().await;
    let mut m = sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap();
    m.set_ignore_missing(true);
    m.run(&mut conn).await.unwrap();
    for sql in [
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES \
         ('M', 'Mixed@Example.COM', 'x', 0, 0), ('L', 'lower@example.com', 'x', 0, 0), \
         ('V', 'V\u{ef}ctim@Example.com', 'x', 0, 0)",
        "INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) \
         VALUES ('T', 'A', '', 100, 1, 1, 0)",
        "INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at) \
         VALUES (2, 1, 1, 100, 'Pending Payment', 0), (2, 1, 1, 100, 'Paid', 0)",
    ] {
        use sqlx::Executor;
        conn.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let out = Command::new(BIN)
        .arg("migrate")
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let emails: Vec<String> = sqlx::query("SELECT email FROM users ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        emails,
        [
            "mixed@example.com",
            "lower@example.com",
            "v\u{ef}ctim@example.com"
        ]
    );
    // An unpaid purchase holds its copies for 15 minutes from now on; a
    // paid one has nothing to hold.
    let held: Vec<Option<i64>> = sqlx::query("SELECT reserved_until FROM purchases ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let now = bookstore::db::now();
    let until = held[0].expect("the unpaid purchase has a reservation");
    assert!((now + 800..=now + 900).contains(&until), "{until} vs {now}");
    assert_eq!(held[1], None);
    // The lookalike's plain twin is another account now.
    sqlx::query(
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('W', 'victim@example.com', 'x', 0, 0)",
    )
    .execute(&mut conn)
    .await
    .expect("victim@ is not v\u{ef}ctim@");
}
