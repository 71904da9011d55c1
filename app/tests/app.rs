//! The shop over HTTP, against a fresh SQLite file and a fresh MariaDB
//! database: every route, and each defect of the original as a regression.

mod common;

use std::process::Command;

use common::{Server, TestDb, BIN, PNG};
use reqwest::StatusCode;

/// Everything that must hold on either database.
async fn suite(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();

    // Public pages render as pages; unknown paths are a page, not a bare 404.
    for p in ["/", "/book/catalog", "/login", "/register"] {
        let r = anon.get(p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert!(
            r.is_html() && r.body.contains("/static/bootstrap.min.css"),
            "{p}"
        );
    }
    let css = anon.get("/static/bootstrap.min.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("Bootstrap"));
    let nf = anon.get("/no/such/page").await;
    assert_eq!(nf.status, StatusCode::NOT_FOUND);
    assert!(nf.is_html() && nf.body.contains("There is nothing here"));
    // Pages behind a login send anonymous users to it.
    for p in [
        "/book/my_books",
        "/book/add_book",
        "/purchases",
        "/admin/users",
        "/payment/1",
        "/delivery/1",
    ] {
        assert_eq!(anon.get(p).await.location(), "/login", "{p}");
    }

    // Registration: bad input re-renders the form with the message and what was typed.
    let alice = srv.client();
    let t = alice.token("/register").await;
    let r = alice
        .post(
            "/register",
            &[
                ("csrf_token", &t),
                ("name", "Alice"),
                ("email", "not-an-email"),
                ("password", "a good password"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Email is not a valid address") && r.body.contains(r#"value="Alice""#),
        "{}",
        r.body
    );
    let r = alice
        .post(
            "/register",
            &[
                ("csrf_token", &t),
                ("name", ""),
                ("email", "alice@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Name is required") && r.body.contains("Password must have"),
        "{}",
        r.body
    );
    let long = "x".repeat(101);
    let r = alice
        .post(
            "/register",
            &[
                ("csrf_token", &t),
                ("name", &long),
                ("email", "alice@example.com"),
                ("password", "a good password"),
            ],
        )
        .await;
    assert!(r.body.contains("too long"), "{}", r.body);
    alice.signup("Alice", "alice@example.com").await;
    let dup = srv
        .client()
        .register("Alice Again", "ALICE@example.com", "another password")
        .await;
    assert_eq!(dup.status, StatusCode::OK);
    assert!(
        dup.body.contains("already exists") && dup.body.contains("Alice Again"),
        "{}",
        dup.body
    );
    let bad = srv
        .client()
        .login("alice@example.com", "wrong password")
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("Login failed"));

    // The session id changes at login; cookies are HttpOnly, SameSite=Lax, Secure behind HTTPS.
    let c = srv.client();
    let before_page = c.get("/login").await;
    let set = before_page
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"),
        "{set}"
    );
    let before = c.session_cookie().await.unwrap();
    c.register("Carol", "carol@example.com", "a good password")
        .await;
    c.login("carol@example.com", "a good password").await;
    let after = c.session_cookie().await.unwrap();
    assert_ne!(before, after, "a new session id at login");
    let https = c
        .http
        .get(format!("{}/login", srv.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", "x=1")
        .send()
        .await
        .unwrap();
    let set = https
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("; Secure"), "{set}");

    // Selling: validation, then a book with a cover.
    for (price, stock, msg) in [
        ("abc", "3", "Price must be a number"),
        ("10", "-2", "Stock cannot be negative"),
        ("10", "two", "Stock must be a whole number"),
        ("-5", "1", "Price cannot be negative"),
    ] {
        let r = alice.add_book("Dune", price, stock).await;
        assert_eq!(r.status, StatusCode::OK, "{price} {stock}");
        assert!(
            r.body.contains(msg) && r.body.contains(r#"value="Dune""#),
            "{msg}: {}",
            r.body
        );
    }
    let r = alice.add_book(&"t".repeat(201), "10", "1").await;
    assert!(r.body.contains("Title is too long"));
    assert_eq!(
        alice.get("/api/books").await.json()["total"],
        0,
        "no partial write"
    );

    let t = alice.token("/book/add_book").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", t.clone())
        .text("title", "Dune")
        .text("author", "Frank Herbert")
        .text("description", "Spice.")
        .text("price", "12.50")
        .text("stock", "5")
        .part(
            "cover",
            reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("dune.png"),
        );
    let r = alice.post_multipart("/book/add_book", form).await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    let gif = reqwest::multipart::Form::new()
        .text("csrf_token", t.clone())
        .text("title", "Bad cover")
        .text("author", "X")
        .text("price", "1")
        .text("stock", "1")
        .part(
            "cover",
            reqwest::multipart::Part::bytes(b"GIF89a....".to_vec()).file_name("x.png"),
        );
    let r = alice.post_multipart("/book/add_book", gif).await;
    assert!(r.body.contains("must be a JPEG, PNG or WebP"), "{}", r.body);
    let big = reqwest::multipart::Form::new()
        .text("csrf_token", t.clone())
        .text("title", "Big cover")
        .text("author", "X")
        .text("price", "1")
        .text("stock", "1")
        .part(
            "cover",
            reqwest::multipart::Part::bytes([PNG, &vec![0u8; 2 * 1024 * 1024]].concat())
                .file_name("x.png"),
        );
    let r = alice.post_multipart("/book/add_book", big).await;
    assert!(r.body.contains("larger than 2 MB"), "{}", r.body);

    let mine = alice.get("/book/my_books").await;
    assert!(
        mine.body.contains("Dune") && mine.body.contains("is in the catalog"),
        "flash shown once"
    );
    assert!(!alice
        .get("/book/my_books")
        .await
        .body
        .contains("is in the catalog"));
    let dune = alice.book_id("Dune").await;
    let b = alice.get(&format!("/api/books/{dune}")).await.json();
    assert_eq!(
        (b["price"].as_str(), b["stock"].as_i64()),
        (Some("12.50"), Some(5))
    );
    let cover_url = b["cover_url"].as_str().unwrap().to_string();
    let img = anon
        .http
        .get(format!("{}{cover_url}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), StatusCode::OK);
    assert_eq!(img.headers()["content-type"], "image/png");
    assert!(img.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(&img.bytes().await.unwrap()[..], PNG);
    assert_eq!(
        anon.get("/covers/../../etc/passwd").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        anon.get("/api/books/999999").await.status,
        StatusCode::NOT_FOUND
    );

    // CSRF: a cross-site post with a valid session cookie is refused and changes nothing.
    for token in ["", "0000"] {
        let r = alice
            .post(
                "/book/add_book",
                &[
                    ("csrf_token", token),
                    ("title", "Forged"),
                    ("author", "X"),
                    ("price", "1"),
                    ("stock", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.is_html());
    }
    let r = alice.post(&format!("/book/delete_book/{dune}"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get("/api/books").await.json()["total"], 1);

    // Only the seller edits or deletes.
    let bob = srv.client();
    bob.signup("Bob", "bob@example.com").await;
    let bt = bob.token("/book/add_book").await;
    assert_eq!(
        bob.get(&format!("/book/edit_book/{dune}")).await.status,
        StatusCode::FORBIDDEN
    );
    let r = bob
        .post(
            &format!("/book/edit_book/{dune}"),
            &[
                ("csrf_token", &bt),
                ("title", "Mine now"),
                ("author", "B"),
                ("price", "0"),
                ("stock", "0"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.post(&format!("/book/delete_book/{dune}"), &[("csrf_token", &bt)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let at = alice.token("/book/add_book").await;
    let r = alice
        .post(
            &format!("/book/edit_book/{dune}"),
            &[
                ("csrf_token", &at),
                ("title", "Dune"),
                ("author", "Frank Herbert"),
                ("price", "12.50"),
                ("stock", "4"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert_eq!(
        alice.get(&format!("/api/books/{dune}")).await.json()["stock"],
        4
    );
    assert!(
        alice.get(&format!("/api/books/{dune}")).await.json()["cover_url"].is_string(),
        "the cover stays"
    );

    // Buying: the price is the database's, whatever the form says.
    let r = bob
        .post(
            &format!("/buy/{dune}"),
            &[
                ("csrf_token", &bt),
                ("quantity", "2"),
                ("price", "0.01"),
                ("total_price", "0.02"),
            ],
        )
        .await;
    let pay_url = r.location().to_string();
    assert!(pay_url.starts_with("/payment/"), "{}", r.body);
    let pid: i64 = pay_url.rsplit('/').next().unwrap().parse().unwrap();
    let purchases = bob.get("/api/purchases").await.json();
    assert_eq!(purchases["purchases"][0]["total_price"], "25.00");
    assert_eq!(purchases["purchases"][0]["status"], "pending_payment");
    for q in ["abc", "0", "-1"] {
        let r = bob
            .post(
                &format!("/buy/{dune}"),
                &[("csrf_token", &bt), ("quantity", q)],
            )
            .await;
        assert_eq!(r.location(), "/book/catalog", "quantity {q}");
    }
    let r = bob
        .post(
            &format!("/buy/{dune}"),
            &[("csrf_token", &bt), ("quantity", "3")],
        )
        .await;
    assert_eq!(r.location(), "/book/catalog", "only 2 left");
    assert!(bob
        .get("/book/catalog")
        .await
        .body
        .contains("Not enough copies"));
    assert_eq!(
        bob.get(&format!("/api/books/{dune}")).await.json()["stock"],
        2
    );
    assert_eq!(
        bob.post("/buy/999999", &[("csrf_token", &bt)]).await.status,
        StatusCode::NOT_FOUND
    );

    // A purchase's payment and delivery pages are its buyer's alone.
    let eve = srv.client();
    eve.signup("Eve", "eve@example.com").await;
    let et = eve.token("/book/add_book").await;
    assert_eq!(eve.get(&pay_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        eve.post(&pay_url, &[("csrf_token", &et), ("payment_method", "card")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eve.get(&format!("/delivery/{pid}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eve.post(
            &format!("/delivery/{pid}"),
            &[("csrf_token", &et), ("provider_id", "1")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eve.get("/api/purchases").await.json()["purchases"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        anon.get("/api/purchases").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Delivery before payment goes back to payment.
    assert_eq!(
        bob.get(&format!("/delivery/{pid}")).await.location(),
        pay_url
    );
    let page = bob.get(&pay_url).await;
    assert!(page.body.contains("25.00"));
    let r = bob
        .post(
            &pay_url,
            &[
                ("csrf_token", &bt),
                ("payment_method", "card"),
                ("amount", "0.01"),
            ],
        )
        .await;
    assert_eq!(r.location(), format!("/delivery/{pid}"));
    assert_eq!(
        bob.get("/api/purchases").await.json()["purchases"][0]["status"],
        "paid"
    );
    let d = bob.get(&format!("/delivery/{pid}")).await;
    for p in ["DHL", "FedEx", "Envia", "Servientrega"] {
        assert!(d.body.contains(p), "{p} is seeded");
    }
    let r = bob
        .post(
            &format!("/delivery/{pid}"),
            &[("csrf_token", &bt), ("provider_id", "1")],
        )
        .await;
    assert_eq!(r.location(), "/purchases");
    let mp = bob.get("/purchases").await;
    assert!(
        mp.body.contains("Shipping with DHL") && mp.body.contains("25.00"),
        "{}",
        mp.body
    );
    let api = bob.get("/api/purchases").await.json();
    assert_eq!(api["purchases"][0]["status"], "shipping");
    assert_eq!(api["purchases"][0]["delivery_provider"], "DHL");
    // A book with purchases is not deleted: it stays on record.
    let r = alice
        .post(&format!("/book/delete_book/{dune}"), &[("csrf_token", &at)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert_eq!(
        alice.get(&format!("/api/books/{dune}")).await.status,
        StatusCode::OK
    );
    alice.add_book("Disposable", "1", "1").await;
    let gone = alice.book_id("Disposable").await;
    alice
        .post(&format!("/book/delete_book/{gone}"), &[("csrf_token", &at)])
        .await;
    assert_eq!(
        alice.get(&format!("/api/books/{gone}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Admins only, and their link only for them.
    assert_eq!(
        alice.get("/admin/users").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!alice
        .get("/")
        .await
        .body
        .contains(r#"href="/admin/users">Users</a></li>"#));
    let out = Command::new(BIN)
        .args(["admin", "grant", "alice@example.com"])
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = alice.get("/admin/users").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("bob@example.com"));
    assert!(alice
        .get("/")
        .await
        .body
        .contains(r#"href="/admin/users">Users</a></li>"#));
    let out = Command::new(BIN)
        .args(["admin", "grant", "nobody@example.com"])
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Catalog: 20 a page, searchable by title or author.
    for i in 0..45 {
        alice.add_book(&format!("Volume {i:02}"), "3", "1").await;
    }
    let p1 = anon.get("/api/books").await.json();
    assert_eq!(p1["books"].as_array().unwrap().len(), 20);
    assert_eq!(p1["total"], 46);
    assert_eq!(
        anon.get("/api/books?page=3").await.json()["books"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        anon.get("/api/books?q=100%25").await.json()["total"],
        0,
        "wildcards in the text are literal"
    );
    assert_eq!(anon.get("/api/books?q=volume%204").await.json()["total"], 5);
    assert_eq!(anon.get("/api/books?q=frank").await.json()["total"], 1);
    assert_eq!(anon.get("/api/books?page=abc").await.json()["page"], 1);
    let html = anon.get("/book/catalog?page=2").await;
    assert!(html.body.contains("Page 2 of 3"));

    // Logout drops the session: the old cookie is worth nothing.
    let cookie = bob.session_cookie().await.unwrap();
    assert_eq!(bob.get("/logout").await.location(), "/login");
    let replay = anon
        .http
        .get(format!("{}/book/my_books", srv.base))
        .header("cookie", format!("bookstore_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);

    // Health and metrics.
    assert_eq!(anon.get("/healthz").await.json()["status"], "ok");
    let m = anon.get("/metrics").await.body;
    assert!(
        m.contains(r#"bookstore_requests_total{route="/book/catalog",status="200"}"#),
        "{m}"
    );
    assert!(
        m.contains("bookstore_request_duration_seconds_bucket")
            && m.contains("bookstore_db_pool_connections")
    );
}

#[tokio::test]
async fn every_route_and_defect_on_sqlite() {
    let db = TestDb::sqlite();
    suite(&db).await;
}

#[tokio::test]
async fn every_route_and_defect_on_mariadb() {
    let db = TestDb::mariadb().await;
    suite(&db).await;
    db.drop_db().await;
}

/// A catalog larger than the count cap: totals stop at 1000 and say so,
/// pages still reach every book, and a search lists title matches first
/// (by title, any case), then author matches (by author), each book once.
async fn large_catalog(db: &TestDb) {
    let srv = Server::start(db).await;
    sqlx::any::install_default_drivers();
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    conn.execute("INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('S', 's@example.com', 'x', 0, 0)")
        .await
        .unwrap();
    let mut rows: Vec<String> = (0..1100)
        .map(|i| format!("('Book {i:04}', 'Writer', '', 100, 1, 1, 0)"))
        .collect();
    for (title, author) in [
        ("winter B", "Nobody"),
        ("Zebra", "Winterson"),
        ("Winter C", "Winterson"),
        ("Apple", "Wintour"),
        ("Winter A", "Nobody"),
    ] {
        rows.push(format!("('{title}', '{author}', '', 100, 1, 1, 0)"));
    }
    conn.execute(
        format!(
            "INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) VALUES {}",
            rows.join(", ")
        )
        .as_str(),
    )
    .await
    .unwrap();
    let anon = srv.client();
    let titles = |v: &serde_json::Value| -> Vec<String> {
        v["books"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap().to_string())
            .collect()
    };

    // Newest first; the total stops at the cap.
    let p1 = anon.get("/api/books").await.json();
    assert_eq!(p1["total"], 1000);
    assert_eq!(p1["total_exact"], false);
    assert_eq!(p1["has_next"], true);
    assert_eq!(titles(&p1)[0], "Winter A");
    let html = anon.get("/book/catalog").await.body;
    assert!(html.contains("Page 1 (more than 1000 books)"), "{html}");
    assert!(html.contains(r#"href="/book/catalog?page=2">Next"#));
    // The last page is still reachable: 1105 books, 56 pages.
    let last = anon.get("/api/books?page=56").await.json();
    assert_eq!(
        titles(&last),
        [
            "Book 0004",
            "Book 0003",
            "Book 0002",
            "Book 0001",
            "Book 0000"
        ]
    );
    assert_eq!(last["has_next"], false);
    assert!(titles(&anon.get("/api/books?page=57").await.json()).is_empty());

    // Title matches by title, then author matches by author; exact below the cap.
    let w = anon.get("/api/books?q=WINT").await.json();
    assert_eq!(
        titles(&w),
        ["Winter A", "winter B", "Winter C", "Zebra", "Apple"]
    );
    assert_eq!(
        (
            w["total"].clone(),
            w["total_exact"].clone(),
            w["has_next"].clone()
        ),
        (5.into(), true.into(), false.into())
    );
    let html = anon.get("/book/catalog?q=wint").await.body;
    assert!(html.contains("Page 1 of 1 (5 books)"), "{html}");
    // A search past the cap: pages in title order, to the end.
    let b2 = anon.get("/api/books?q=book&page=2").await.json();
    assert_eq!(
        (b2["total"].clone(), b2["total_exact"].clone()),
        (1000.into(), false.into())
    );
    assert_eq!(titles(&b2).first().map(String::as_str), Some("Book 0020"));
    let b55 = anon.get("/api/books?q=Book&page=55").await.json();
    assert_eq!(titles(&b55).last().map(String::as_str), Some("Book 1099"));
    assert_eq!(b55["has_next"], false);
    // Author matches with one author keep the order they were added in.
    let by_writer = anon.get("/api/books?q=writer").await.json();
    assert_eq!(by_writer["total_exact"], false);
    assert_eq!(titles(&by_writer)[0], "Book 0000");
}

#[tokio::test]
async fn a_large_catalog_on_sqlite() {
    large_catalog(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn a_large_catalog_on_mariadb() {
    let db = TestDb::mariadb().await;
    large_catalog(&db).await;
    db.drop_db().await;
}

#[tokio::test]
async fn concurrent_buyers_never_oversell_on_mariadb() {
    let db = TestDb::mariadb().await;
    let srv = Server::start(&db).await;
    let seller = srv.client();
    seller.signup("Seller", "seller@example.com").await;
    seller.add_book("Last copies", "9.99", "5").await;
    let id = seller.book_id("Last copies").await;
    let mut buyers = Vec::new();
    for i in 0..10 {
        let c = srv.client();
        c.signup(&format!("Buyer {i}"), &format!("buyer{i}@example.com"))
            .await;
        let t = c.token("/book/add_book").await;
        buyers.push((c, t));
    }
    // 30 purchases of one copy at once, for 5 copies.
    let mut tasks = Vec::new();
    for (c, t) in &buyers {
        for _ in 0..3 {
            let path = format!("/buy/{id}");
            tasks.push(async move {
                c.post(&path, &[("csrf_token", t.as_str()), ("quantity", "1")])
                    .await
            });
        }
    }
    let results = futures::future::join_all(tasks).await;
    let bought = results
        .iter()
        .filter(|r| r.location().starts_with("/payment/"))
        .count();
    let refused = results
        .iter()
        .filter(|r| r.location() == "/book/catalog")
        .count();
    assert_eq!(
        (bought, refused),
        (5, 25),
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        seller.get(&format!("/api/books/{id}")).await.json()["stock"],
        0
    );
    let mut total = 0;
    for (c, _) in &buyers {
        total += c.get("/api/purchases").await.json()["purchases"]
            .as_array()
            .unwrap()
            .len();
    }
    assert_eq!(total, 5);
    drop(srv);
    db.drop_db().await;
}

#[tokio::test]
async fn two_instances_share_sessions_on_mariadb() {
    let db = TestDb::mariadb().await;
    let a = Server::start(&db).await;
    let b = Server::start_with(&db, &db.dir.path().join("data-b"), &[]).await;
    let ca = a.client();
    ca.signup("Dana", "dana@example.com").await;
    ca.add_book("Shared", "1", "1").await;
    // The same cookie, presented to the other instance.
    let cookie = ca.session_cookie().await.unwrap();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/book/my_books", b.base))
        .header("cookie", format!("bookstore_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Shared"));
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test]
async fn health_follows_the_data_directory() {
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let c = srv.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    // Read-only even for root: the immutable attribute.
    let chattr = |flag: &str| {
        let s = Command::new("chattr")
            .arg(flag)
            .arg(&srv.data_dir)
            .status()
            .expect("chattr (e2fsprogs) is needed");
        assert!(s.success(), "chattr {flag}");
    };
    chattr("+i");
    let r = c.get("/healthz").await;
    chattr("-i");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("data directory"));
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let db = TestDb::mariadb().await;
    let servers = futures::future::join_all((0..3).map(|i| {
        let dir = db.dir.path().join(format!("d{i}"));
        let db = &db;
        async move { Server::start_with(db, &dir, &[]).await }
    }))
    .await;
    for s in &servers {
        assert_eq!(s.client().get("/api/books").await.json()["total"], 0);
    }
    drop(servers);
    db.drop_db().await;
}
