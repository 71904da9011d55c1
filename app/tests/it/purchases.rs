//! Buying, paying and choosing delivery at their edges: books that vanish
//! while bought, quantities out of range, purchases of someone else, and
//! forms sent twice (one after the other, and at once). Users, sessions
//! and books are written straight into the database, so these tests need
//! only the routes they are about.

use crate::common;

use common::{Client, Server, TestDb};
use reqwest::StatusCode;
use sqlx::Row;

on_both_databases!(
    buying_a_missing_or_deleted_book_is_not_found,
    a_book_deleted_while_bought_never_fails,
    quantities_out_of_range_buy_nothing,
    another_users_purchase_is_not_found,
    paying_twice_records_one_payment,
    choosing_delivery_twice_keeps_the_first,
    the_purchase_pages_escape_what_sellers_wrote,
    concurrent_buyers_never_oversell,
);

/// A logged-in visitor: the client, its CSRF token and user id.
struct Visitor {
    c: Client,
    csrf: String,
    id: i64,
}

/// Signs `name` up and in, straight in the database.
async fn visitor(srv: &Server, db: &TestDb, name: &str) -> Visitor {
    let mut conn = db.connect().await;
    let email = format!("{}@example.com", name.to_lowercase());
    sqlx::query(
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES (?, ?, 'x', 0, 0)",
    )
    .bind(name)
    .bind(&email)
    .execute(&mut conn)
    .await
    .unwrap();
    let id: i64 = sqlx::query("SELECT id FROM users WHERE email = ?")
        .bind(&email)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    let token = bookstore::session::random_token();
    let csrf = bookstore::session::random_token();
    let now = bookstore::db::now();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, csrf, flash, expires_at, seen_at) VALUES (?, ?, ?, NULL, ?, ?)",
    )
    .bind(bookstore::session::token_key(&token))
    .bind(id)
    .bind(&csrf)
    .bind(now + 3600)
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    let c = srv.client();
    c.jar.add_cookie_str(
        &format!("{}={token}; Path=/", bookstore::session::COOKIE_NAME),
        &srv.base.parse().unwrap(),
    );
    Visitor { c, csrf, id }
}

/// A book of `seller`'s at 12.50 with `stock` copies; its id.
async fn book(db: &TestDb, seller: i64, title: &str, stock: i64) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query(
        "INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) \
         VALUES (?, 'Some Author', '', 1250, ?, ?, 0)",
    )
    .bind(title)
    .bind(stock)
    .bind(seller)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("SELECT MAX(id) FROM books WHERE title = ?")
        .bind(title)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0)
}

async fn scalar(db: &TestDb, sql: &str, id: i64) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query(sql)
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0)
}

async fn stock(db: &TestDb, book: i64) -> i64 {
    scalar(db, "SELECT stock FROM books WHERE id = ?", book).await
}

async fn purchases_of(db: &TestDb, user: i64) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM purchases WHERE user_id = ?", user).await
}

impl Visitor {
    async fn buy(&self, book: impl std::fmt::Display, quantity: &str) -> common::Page {
        self.c
            .post(
                &format!("/buy/{book}"),
                &[("csrf_token", self.csrf.as_str()), ("quantity", quantity)],
            )
            .await
    }

    /// Buys and returns the new purchase's id.
    async fn bought(&self, book: i64, quantity: &str) -> i64 {
        let r = self.buy(book, quantity).await;
        let to = r.location();
        assert!(to.starts_with("/payment/"), "{} {to}: {}", r.status, r.body);
        to["/payment/".len()..].parse().unwrap()
    }

    async fn pay(&self, purchase: i64) -> common::Page {
        self.c
            .post(
                &format!("/payment/{purchase}"),
                &[
                    ("csrf_token", self.csrf.as_str()),
                    ("payment_method", "card"),
                ],
            )
            .await
    }

    async fn deliver(&self, purchase: i64, provider: &str) -> common::Page {
        self.c
            .post(
                &format!("/delivery/{purchase}"),
                &[
                    ("csrf_token", self.csrf.as_str()),
                    ("provider_id", provider),
                ],
            )
            .await
    }
}

async fn buying_a_missing_or_deleted_book_is_not_found(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    for id in ["999999", "abc", "-1", "99999999999999999999"] {
        let r = bob.buy(id, "1").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "book {id}: {}", r.body);
        assert!(r.is_html() && r.body.contains("There is nothing here."));
    }
    let gone = book(db, alice.id, "Gone", 3).await;
    {
        let mut conn = db.connect().await;
        sqlx::query("DELETE FROM books WHERE id = ?")
            .bind(gone)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let r = bob.buy(gone, "1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(purchases_of(db, bob.id).await, 0);
    // Out of stock is not "gone": it says so.
    let sold_out = book(db, alice.id, "Sold out", 0).await;
    let r = bob.buy(sold_out, "1").await;
    assert_eq!(r.location(), "/book/catalog");
    let page = bob.c.get("/book/catalog").await;
    assert!(
        page.body
            .contains("Not enough copies left for that quantity."),
        "{}",
        page.body
    );
    assert_eq!(purchases_of(db, bob.id).await, 0);
}

/// Buyers and a deletion at once, many times: every answer is a purchase,
/// "not enough copies" or "not found", and the stock adds up.
async fn a_book_deleted_while_bought_never_fails(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let mut buyers = Vec::new();
    for i in 0..4 {
        buyers.push(visitor(&srv, db, &format!("Buyer{i}")).await);
    }
    let mut deleted = 0;
    for round in 0..12 {
        let id = book(db, alice.id, &format!("Round {round}"), 3).await;
        let delete = async {
            // As the seller's delete does: only a book nobody bought.
            let mut conn = db.connect().await;
            if round % 2 == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(round)).await;
            }
            sqlx::query(
                "DELETE FROM books WHERE id = ? AND NOT EXISTS \
                 (SELECT 1 FROM purchases p WHERE p.book_id = ?)",
            )
            .bind(id)
            .bind(id)
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
        };
        let buys = futures::future::join_all(buyers.iter().map(|b| b.buy(id, "1")));
        let (gone, answers) = tokio::join!(delete, buys);
        let gone = gone.unwrap_or(0) == 1;
        deleted += usize::from(gone);
        let mut bought = 0;
        for r in &answers {
            match r.status {
                StatusCode::SEE_OTHER if r.location().starts_with("/payment/") => bought += 1,
                StatusCode::SEE_OTHER => assert_eq!(r.location(), "/book/catalog"),
                StatusCode::NOT_FOUND => assert!(gone, "404 for a book still there"),
                s => panic!("round {round}: {s}: {}", r.body),
            }
        }
        let recorded = scalar(db, "SELECT COUNT(*) FROM purchases WHERE book_id = ?", id).await;
        assert_eq!(recorded, bought, "round {round}");
        if gone {
            assert_eq!(bought, 0, "round {round}: bought a deleted book");
        } else {
            assert_eq!(stock(db, id).await + bought, 3, "round {round}");
        }
    }
    // Whatever the timing, the server logged no error.
    assert!(
        !srv.log_text().contains("internal error"),
        "{}",
        srv.log_text()
    );
    eprintln!("{deleted} of 12 books deleted before they sold");
}

async fn quantities_out_of_range_buy_nothing(db: &TestDb) {
    // Room for a purchase of the largest quantity.
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_MAX_UNPAID_COPIES", "200")],
    )
    .await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    let dune = book(db, alice.id, "Dune", 200).await;
    for (q, says) in [
        ("0", "Quantity must be at least 1."),
        ("-1", "Quantity must be at least 1."),
        ("101", "Quantity must be at most 100."),
        ("abc", "Quantity must be a whole number."),
        ("1.5", "Quantity must be a whole number."),
        ("", "Quantity is required."),
    ] {
        let r = bob.buy(dune, q).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "quantity {q:?}");
        assert_eq!(r.location(), "/book/catalog", "quantity {q:?}");
        let page = bob.c.get("/book/catalog").await;
        assert!(page.body.contains(says), "quantity {q:?}: {}", page.body);
    }
    assert_eq!(purchases_of(db, bob.id).await, 0);
    assert_eq!(stock(db, dune).await, 200);
    // Without a quantity, one copy; 100 is the most.
    let r = bob
        .c
        .post(
            &format!("/buy/{dune}"),
            &[("csrf_token", bob.csrf.as_str())],
        )
        .await;
    assert!(r.location().starts_with("/payment/"), "{}", r.body);
    bob.bought(dune, "100").await;
    assert_eq!(stock(db, dune).await, 99);
    assert_eq!(purchases_of(db, bob.id).await, 2);
}

async fn another_users_purchase_is_not_found(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    let eve = visitor(&srv, db, "Eve").await;
    let dune = book(db, alice.id, "Dune", 5).await;
    let pid = bob.bought(dune, "2").await;
    for path in [
        format!("/payment/{pid}"),
        format!("/delivery/{pid}"),
        "/payment/999999".to_string(),
        "/payment/abc".to_string(),
        "/delivery/abc".to_string(),
    ] {
        let r = eve.c.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.is_html(), "{path}");
    }
    assert_eq!(eve.pay(pid).await.status, StatusCode::NOT_FOUND);
    assert_eq!(eve.deliver(pid, "1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM payments WHERE purchase_id = ?",
            pid
        )
        .await,
        0
    );
    // Bob can, and Eve still cannot choose its delivery.
    assert_eq!(bob.pay(pid).await.location(), format!("/delivery/{pid}"));
    assert_eq!(eve.deliver(pid, "1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM delivery_assignments WHERE purchase_id = ?",
            pid
        )
        .await,
        0
    );
    // Anonymous visitors are sent to log in.
    let anon = srv.client();
    let r = anon.get(&format!("/payment/{pid}")).await;
    assert_eq!(r.location(), "/login");
}

async fn paying_twice_records_one_payment(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    let dune = book(db, alice.id, "Dune", 10).await;
    let pid = bob.bought(dune, "2").await;
    let page = bob.c.get(&format!("/payment/{pid}")).await;
    assert!(
        page.body.contains("Total: <strong>25.00</strong>"),
        "{}",
        page.body
    );
    // Delivery before payment goes back to payment.
    let r = bob.deliver(pid, "1").await;
    assert_eq!(r.location(), format!("/payment/{pid}"));
    assert!(bob
        .c
        .get(&format!("/payment/{pid}"))
        .await
        .body
        .contains("Pay for the purchase first."));
    for _ in 0..2 {
        let r = bob.pay(pid).await;
        assert_eq!(r.location(), format!("/delivery/{pid}"));
    }
    let paid = "SELECT COUNT(*) FROM payments WHERE purchase_id = ?";
    assert_eq!(scalar(db, paid, pid).await, 1);
    assert_eq!(
        scalar(
            db,
            "SELECT amount_cents FROM payments WHERE purchase_id = ?",
            pid
        )
        .await,
        2500
    );
    // A paid purchase's payment page leads on to its delivery.
    let r = bob.c.get(&format!("/payment/{pid}")).await;
    assert_eq!(r.location(), format!("/delivery/{pid}"));
    // Twice at once: still one payment.
    let other = bob.bought(dune, "1").await;
    let (a, b) = tokio::join!(bob.pay(other), bob.pay(other));
    for r in [a, b] {
        assert_eq!(r.location(), format!("/delivery/{other}"), "{}", r.body);
    }
    assert_eq!(scalar(db, paid, other).await, 1);
}

async fn choosing_delivery_twice_keeps_the_first(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    let dune = book(db, alice.id, "Dune", 10).await;
    let pid = bob.bought(dune, "1").await;
    bob.pay(pid).await;
    // Not one of the providers: asked again.
    for p in ["999", "abc", ""] {
        let r = bob.deliver(pid, p).await;
        assert_eq!(r.location(), format!("/delivery/{pid}"), "provider {p:?}");
    }
    let d = bob.c.get(&format!("/delivery/{pid}")).await;
    assert!(
        d.body.contains("Choose one of the delivery providers."),
        "{}",
        d.body
    );
    assert_eq!(
        d.body.matches(r#"name="provider_id""#).count(),
        4,
        "{}",
        d.body
    );
    for p in ["DHL", "FedEx", "Envia", "Servientrega"] {
        assert_eq!(d.body.matches(&format!(">{p} (")).count(), 1, "{}", d.body);
    }
    assert_eq!(bob.deliver(pid, "1").await.location(), "/purchases");
    let mp = bob.c.get("/purchases").await;
    assert!(mp.body.contains("“Dune” ships with DHL."), "{}", mp.body);
    assert_eq!(bob.deliver(pid, "2").await.location(), "/purchases");
    let chosen = "SELECT provider_id FROM delivery_assignments WHERE purchase_id = ?";
    assert_eq!(scalar(db, chosen, pid).await, 1);
    let d = bob.c.get(&format!("/delivery/{pid}")).await;
    assert!(
        d.body.contains("ships with <strong>DHL</strong>"),
        "{}",
        d.body
    );
    assert!(!d.body.contains(r#"name="provider_id""#));
    let mp = bob.c.get("/purchases").await;
    assert!(
        mp.body.contains("<td>12.50</td><td>Shipping with DHL</td>"),
        "{}",
        mp.body
    );
    // Two choices at once: one of them, once.
    let other = bob.bought(dune, "1").await;
    bob.pay(other).await;
    let (a, b) = tokio::join!(bob.deliver(other, "3"), bob.deliver(other, "4"));
    for r in [a, b] {
        assert_eq!(r.location(), "/purchases", "{}", r.body);
    }
    let n = "SELECT COUNT(*) FROM delivery_assignments WHERE purchase_id = ?";
    assert_eq!(scalar(db, n, other).await, 1);
    // Whichever came first, it is the one kept and the one shown.
    let won = scalar(db, chosen, other).await;
    let name = match won {
        3 => "Envia",
        4 => "Servientrega",
        other => panic!("provider {other} was never chosen"),
    };
    let d = bob.c.get(&format!("/delivery/{other}")).await;
    assert!(
        d.body
            .contains(&format!("ships with <strong>{name}</strong>")),
        "{}",
        d.body
    );
    let status = {
        let mut conn = db.connect().await;
        sqlx::query("SELECT status FROM purchases WHERE id = ?")
            .bind(other)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get::<String, _>(0)
    };
    assert_eq!(status, "Shipping");
}

async fn the_purchase_pages_escape_what_sellers_wrote(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = visitor(&srv, db, "Alice").await;
    let bob = visitor(&srv, db, "Bob").await;
    let evil = book(db, alice.id, "<script>alert(1)</script>", 5).await;
    let pid = bob.bought(evil, "1").await;
    let pages = [format!("/payment/{pid}"), "/purchases".to_string()];
    for path in &pages {
        let r = bob.c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.body.contains("<script>"), "{path}: {}", r.body);
        assert!(r.body.contains("&lt;script&gt;"), "{path}: {}", r.body);
    }
    bob.pay(pid).await;
    let r = bob.c.get(&format!("/delivery/{pid}")).await;
    assert!(!r.body.contains("<script>") && r.body.contains("&lt;script&gt;"));
}

/// 30 purchases of one copy at once, for 5 copies: 5 bought, 25 refused.
async fn concurrent_buyers_never_oversell(db: &TestDb) {
    let srv = Server::start(db).await;
    let seller = visitor(&srv, db, "Seller").await;
    let id = book(db, seller.id, "Last copies", 5).await;
    let mut buyers = Vec::new();
    for i in 0..10 {
        buyers.push(visitor(&srv, db, &format!("Buyer{i}")).await);
    }
    let tasks = buyers
        .iter()
        .flat_map(|b| (0..3).map(move |_| b.buy(id, "1")));
    let results = futures::future::join_all(tasks).await;
    let bought = results
        .iter()
        .filter(|r| r.location().starts_with("/payment/"));
    let refused = results.iter().filter(|r| r.location() == "/book/catalog");
    assert_eq!(
        (bought.count(), refused.count()),
        (5, 25),
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(stock(db, id).await, 0);
    let recorded = "SELECT COUNT(*) FROM purchases WHERE book_id = ?";
    assert_eq!(scalar(db, recorded, id).await, 5);
}
