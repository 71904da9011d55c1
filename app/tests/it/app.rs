//! The shop over HTTP, against a fresh SQLite file and a fresh MariaDB
//! database: every route, and each defect of the original as a regression.
//! One test per feature, each on its own database, so that one failure
//! does not hide the others.

use crate::common;

use std::process::Command;

use common::{Client, Server, TestDb, BIN, PNG};
use reqwest::StatusCode;

on_both_databases!(
    public_pages_and_login_walls,
    registration,
    login_sessions_and_logout,
    selling,
    bad_input_re_renders_forms,
    csrf_and_cross_site_posts,
    buying,
    payment_and_delivery,
    admin,
    catalog_and_search,
    json_api,
    health_and_metrics,
    a_large_catalog,
    a_later_releases_migration_does_not_stop_this_one,
    the_unique_provider_migration_merges_a_repeated_seed,
    login_attempts_are_limited,
    a_flood_of_logins_is_refused_not_queued,
    a_stale_edit_form_does_not_resurrect_sold_copies,
    page_numbers_are_capped,
    security_headers_on_every_response,
    logout_only_by_post_with_the_token,
);

/// The attributes of a Set-Cookie header, after `name=value`.
fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split("; ")
        .skip(1)
        .map(|a| {
            if a.starts_with("Max-Age=") {
                "Max-Age".to_string()
            } else {
                a.to_string()
            }
        })
        .collect()
}

fn set_cookie(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string()
}

/// Alice sells "Dune" by Frank Herbert at 12.50 with a PNG cover; its id.
async fn sell_dune(alice: &Client, stock: &str) -> i64 {
    let t = alice.token("/book/add_book").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", t)
        .text("title", "Dune")
        .text("author", "Frank Herbert")
        .text("description", "Spice.")
        .text("price", "12.50")
        .text("stock", stock.to_string())
        .part(
            "cover",
            reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("dune.png"),
        );
    let r = alice.post_multipart("/book/add_book", form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    alice.book_id("Dune").await
}

/// A server with Alice selling Dune (`stock` copies) and Bob signed up.
async fn shop(db: &TestDb, stock: &str) -> (Server, Client, Client, i64) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    let dune = sell_dune(&alice, stock).await;
    let bob = srv.client();
    bob.signup("Bob", "bob@example.com").await;
    (srv, alice, bob, dune)
}

async fn book(c: &Client, id: i64) -> serde_json::Value {
    let r = c.get(&format!("/api/books/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "book {id}: {}", r.body);
    r.json()
}

async fn purchases(c: &Client) -> Vec<serde_json::Value> {
    c.get("/api/purchases").await.json()["purchases"]
        .as_array()
        .unwrap()
        .clone()
}

/// A purchase of `quantity` copies; the payment page it leads to and its id.
async fn buy(c: &Client, book: i64, quantity: &str, extra: &[(&str, &str)]) -> (String, i64) {
    let t = c.token("/book/add_book").await;
    let mut form = vec![("csrf_token", t.as_str()), ("quantity", quantity)];
    form.extend_from_slice(extra);
    let r = c.post(&format!("/buy/{book}"), &form).await;
    let pay_url = r.location().to_string();
    assert!(pay_url.starts_with("/payment/"), "{}", r.body);
    let pid: i64 = pay_url.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(pay_url, format!("/payment/{pid}"));
    (pay_url, pid)
}

async fn public_pages_and_login_walls(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();
    // Public pages render as pages; unknown paths are a page, not a bare 404.
    for p in ["/", "/book/catalog", "/login", "/register"] {
        let r = anon.get(p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert!(
            r.is_html()
                && r.body
                    .contains(r#"<link rel="stylesheet" href="/static/bootstrap.min.css?v="#),
            "{p}: {}",
            r.body
        );
    }
    let css = anon.get("/static/bootstrap.min.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        css.body,
        include_str!("../../assets/bootstrap.min.css"),
        "the bundled Bootstrap"
    );
    let nf = anon.get("/no/such/page").await;
    assert_eq!(nf.status, StatusCode::NOT_FOUND);
    assert!(
        nf.is_html() && nf.body.contains("<p>There is nothing here.</p>"),
        "{}",
        nf.body
    );
    // Pages behind a login send anonymous users to it.
    for p in [
        "/book/my_books",
        "/book/add_book",
        "/purchases",
        "/admin/users",
        "/payment/1",
        "/delivery/1",
    ] {
        let r = anon.get(p).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{p}");
        assert_eq!(r.location(), "/login", "{p}");
    }
}

async fn registration(db: &TestDb) {
    let srv = Server::start(db).await;
    // Bad input re-renders the form with the message and what was typed.
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
        r.body.contains("Email is not a valid address.") && r.body.contains(r#"value="Alice""#),
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
        r.body
            .contains("Name is required. Password must have at least 8 characters."),
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
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("Name is too long (at most 100 characters)."),
        "{}",
        r.body
    );
    // None of those made an account: the address is still free.
    alice.signup("Alice", "alice@example.com").await;
    let dup = srv
        .client()
        .register("Alice Again", "ALICE@example.com", "another password")
        .await;
    assert_eq!(dup.status, StatusCode::OK);
    assert!(
        dup.body
            .contains("An account with this email already exists.")
            && dup.body.contains(r#"value="Alice Again""#),
        "{}",
        dup.body
    );
    let again = srv
        .client()
        .login("alice@example.com", "another password")
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the duplicate made no account"
    );
}

async fn login_sessions_and_logout(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();
    srv.client().signup("Alice", "alice@example.com").await;
    let bad = srv
        .client()
        .login("alice@example.com", "wrong password")
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(
        bad.body.contains("Login failed: wrong email or password."),
        "{}",
        bad.body
    );
    assert!(
        bad.headers.get("set-cookie").is_none(),
        "no session for a failed login"
    );

    // The login form makes no session: its token comes with a cookie of
    // its own; the session begins at login. Cookies are HttpOnly,
    // SameSite=Lax, Secure behind HTTPS.
    let c = srv.client();
    let before_page = c.get("/login").await;
    let set = set_cookie(&before_page.headers);
    assert!(
        c.session_cookie().await.is_none(),
        "no session before a login"
    );
    assert!(set.starts_with("bookstore_anon="), "{set}");
    assert_eq!(
        cookie_attributes(&set),
        ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age"],
        "{set}"
    );
    c.register("Carol", "carol@example.com", "a good password")
        .await;
    let r = c.login("carol@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    let set = set_cookie(&r.headers);
    let after = c.session_cookie().await.unwrap();
    assert!(
        set.starts_with(&format!("bookstore_session={after}; ")),
        "{set}"
    );
    assert_eq!(
        cookie_attributes(&set),
        ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age"],
        "{set}"
    );
    // A planted id is worth nothing.
    let before = bookstore::session::random_token();
    let planted = anon
        .http
        .get(format!("{}/book/my_books", srv.base))
        .header("cookie", format!("bookstore_session={before}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), StatusCode::SEE_OTHER);
    assert_eq!(planted.headers()["location"], "/login");
    let https = srv
        .client()
        .http
        .get(format!("{}/login", srv.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", "x=1")
        .send()
        .await
        .unwrap();
    let set = set_cookie(https.headers());
    assert_eq!(
        cookie_attributes(&set),
        ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age", "Secure"],
        "{set}"
    );

    // Logout drops the session: the old cookie is worth nothing.
    let cookie = c.session_cookie().await.unwrap();
    assert_eq!(c.get("/book/my_books").await.status, StatusCode::OK);
    let t = c.token("/book/add_book").await;
    let out = c.post("/logout", &[("csrf_token", &t)]).await;
    assert_eq!(out.location(), "/login");
    let cleared = set_cookie(&out.headers);
    assert!(cleared.starts_with("bookstore_session=; "), "{cleared}");
    assert!(cleared.contains("; Max-Age=0"), "{cleared}");
    let replay = anon
        .http
        .get(format!("{}/book/my_books", srv.base))
        .header("cookie", format!("bookstore_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(replay.headers()["location"], "/login");
}

async fn selling(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    let dune = sell_dune(&alice, "5").await;

    let mine = alice.get("/book/my_books").await;
    assert!(
        mine.body.contains("Dune") && mine.body.contains("“Dune” is in the catalog."),
        "flash shown once: {}",
        mine.body
    );
    assert!(!alice
        .get("/book/my_books")
        .await
        .body
        .contains("is in the catalog"));
    let b = book(&alice, dune).await;
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
    assert_eq!(
        img.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(&img.bytes().await.unwrap()[..], PNG);
    let traversal = anon.get("/covers/../../etc/passwd").await;
    assert_eq!(traversal.status, StatusCode::NOT_FOUND);
    assert!(!traversal.body.contains("root:"), "{}", traversal.body);

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
    let b = book(&alice, dune).await;
    assert_eq!(
        (
            b["title"].as_str(),
            b["price"].as_str(),
            b["stock"].as_i64()
        ),
        (Some("Dune"), Some("12.50"), Some(5)),
        "unchanged by Bob"
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
    let b = book(&alice, dune).await;
    assert_eq!(b["stock"], 4);
    assert_eq!(
        b["cover_url"].as_str(),
        Some(cover_url.as_str()),
        "the cover stays"
    );

    // A book with purchases is not deleted: it stays on record.
    buy(&bob, dune, "1", &[]).await;
    let r = alice
        .post(&format!("/book/delete_book/{dune}"), &[("csrf_token", &at)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert_eq!(
        alice.get(&format!("/api/books/{dune}")).await.status,
        StatusCode::OK
    );
    let r = alice.add_book("Disposable", "1", "1").await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    let gone = alice.book_id("Disposable").await;
    let r = alice
        .post(&format!("/book/delete_book/{gone}"), &[("csrf_token", &at)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert_eq!(
        alice.get(&format!("/api/books/{gone}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn bad_input_re_renders_forms(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    for (price, stock, msg) in [
        ("abc", "3", "Price must be a number"),
        ("10", "-2", "Stock cannot be negative"),
        ("10", "two", "Stock must be a whole number"),
        ("-5", "1", "Price cannot be negative"),
    ] {
        let r = alice.add_book("Dune", price, stock).await;
        assert_eq!(r.status, StatusCode::OK, "{price} {stock}");
        assert!(
            r.body.contains(msg)
                && r.body.contains(r#"value="Dune""#)
                && r.body.contains(&format!(r#"value="{price}""#))
                && r.body.contains(&format!(r#"value="{stock}""#)),
            "{msg}: {}",
            r.body
        );
    }
    let r = alice.add_book(&"t".repeat(201), "10", "1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("Title is too long (at most 200 characters)."),
        "{}",
        r.body
    );

    let t = alice.token("/book/add_book").await;
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
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("The cover must be a JPEG, PNG or WebP image.")
            && r.body.contains(r#"value="Bad cover""#),
        "{}",
        r.body
    );
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
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("The cover is larger than 2 MB.")
            && r.body.contains(r#"value="Big cover""#),
        "{}",
        r.body
    );
    assert_eq!(
        alice.get("/api/books").await.json()["total"],
        0,
        "no partial write"
    );
    let covers = std::fs::read_dir(&srv.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".healthz"))
        .collect::<Vec<_>>();
    assert!(covers.is_empty(), "no cover kept: {covers:?}");
}

async fn csrf_and_cross_site_posts(db: &TestDb) {
    let (_srv, alice, bob, dune) = shop(db, "5").await;
    // A cross-site post with a valid session cookie is refused and changes nothing.
    let bobs_token = bob.token("/book/add_book").await;
    for token in ["", "0000", bobs_token.as_str()] {
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
        assert_eq!(r.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(r.is_html());
        assert!(
            r.body
                .contains("This form has expired or did not come from this site."),
            "{}",
            r.body
        );
    }
    let r = alice.post(&format!("/book/delete_book/{dune}"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = bob
        .post(
            &format!("/buy/{dune}"),
            &[("csrf_token", "0000"), ("quantity", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let api = alice.get("/api/books").await.json();
    assert_eq!(api["total"], 1);
    assert_eq!(api["books"][0]["title"], "Dune");
    assert_eq!(book(&alice, dune).await["stock"], 5);
    assert!(purchases(&bob).await.is_empty());
}

async fn buying(db: &TestDb) {
    let (_srv, _alice, bob, dune) = shop(db, "4").await;
    // The price is the database's, whatever the form says.
    buy(
        &bob,
        dune,
        "2",
        &[("price", "0.01"), ("total_price", "0.02")],
    )
    .await;
    let p = purchases(&bob).await;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["total_price"], "25.00");
    assert_eq!(p[0]["quantity"], 2);
    assert_eq!(p[0]["status"], "pending_payment");
    let bt = bob.token("/book/add_book").await;
    for q in ["abc", "0", "-1"] {
        let r = bob
            .post(
                &format!("/buy/{dune}"),
                &[("csrf_token", &bt), ("quantity", q)],
            )
            .await;
        assert_eq!(r.location(), "/book/catalog", "quantity {q}");
    }
    assert_eq!(
        purchases(&bob).await.len(),
        1,
        "no purchase for a bad quantity"
    );
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
        .contains("Not enough copies left for that quantity."));
    assert_eq!(book(&bob, dune).await["stock"], 2);
    assert_eq!(purchases(&bob).await.len(), 1, "no purchase when oversold");
    assert_eq!(
        bob.post("/buy/999999", &[("csrf_token", &bt)]).await.status,
        StatusCode::NOT_FOUND
    );
    // The last copies can be bought.
    buy(&bob, dune, "2", &[]).await;
    assert_eq!(book(&bob, dune).await["stock"], 0);
}

async fn payment_and_delivery(db: &TestDb) {
    let (srv, _alice, bob, dune) = shop(db, "5").await;
    let anon = srv.client();
    let (pay_url, pid) = buy(&bob, dune, "2", &[]).await;
    let bt = bob.token("/book/add_book").await;

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
    assert_eq!(purchases(&eve).await.len(), 0);
    assert_eq!(
        anon.get("/api/purchases").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        purchases(&bob).await[0]["status"],
        "pending_payment",
        "Eve changed nothing"
    );

    // Delivery before payment goes back to payment.
    assert_eq!(
        bob.get(&format!("/delivery/{pid}")).await.location(),
        pay_url
    );
    let page = bob.get(&pay_url).await;
    assert!(
        page.body.contains("Total: <strong>25.00</strong>"),
        "{}",
        page.body
    );
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
    assert_eq!(purchases(&bob).await[0]["status"], "paid");
    // The amount paid is the database's price, not the form's.
    {
        use sqlx::Row;
        let mut conn = db.connect().await;
        let paid: i64 = sqlx::query("SELECT amount_cents FROM payments WHERE purchase_id = ?")
            .bind(pid)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(paid, 2500);
    }
    // Every seeded provider, each once.
    let d = bob.get(&format!("/delivery/{pid}")).await;
    for p in ["DHL", "FedEx", "Envia", "Servientrega"] {
        assert_eq!(
            d.body.matches(&format!(">{p} (")).count(),
            1,
            "{p} is seeded once: {}",
            d.body
        );
    }
    assert_eq!(
        d.body.matches(r#"name="provider_id""#).count(),
        4,
        "{}",
        d.body
    );
    let r = bob
        .post(
            &format!("/delivery/{pid}"),
            &[("csrf_token", &bt), ("provider_id", "1")],
        )
        .await;
    assert_eq!(r.location(), "/purchases");
    let mp = bob.get("/purchases").await;
    assert!(
        mp.body.contains("<td>25.00</td><td>Shipping with DHL</td>"),
        "{}",
        mp.body
    );
    let api = purchases(&bob).await;
    assert_eq!(api[0]["status"], "shipping");
    assert_eq!(api[0]["delivery_provider"], "DHL");
}

async fn admin(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    srv.client().signup("Bob", "bob@example.com").await;
    const LINK: &str = r#"href="/admin/users">Users</a></li>"#;
    // Admins only, and their link only for them.
    assert_eq!(
        alice.get("/admin/users").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!alice.get("/").await.body.contains(LINK));
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice@example.com is now an admin\n"
    );
    let admin = alice.get("/admin/users").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("bob@example.com"), "{}", admin.body);
    assert!(alice.get("/").await.body.contains(LINK));
    let out = Command::new(BIN)
        .args(["admin", "grant", "nobody@example.com"])
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no user with email nobody@example.com"),
        "{err}"
    );
}

async fn catalog_and_search(db: &TestDb) {
    let (srv, alice, _bob, _dune) = shop(db, "5").await;
    let anon = srv.client();
    // 20 a page, searchable by title or author.
    for i in 0..45 {
        let r = alice.add_book(&format!("Volume {i:02}"), "3", "1").await;
        assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    }
    let p1 = anon.get("/api/books").await.json();
    assert_eq!(p1["books"].as_array().unwrap().len(), 20);
    assert_eq!(p1["total"], 46);
    assert_eq!(p1["books"][0]["title"], "Volume 44", "newest first");
    assert_eq!(
        anon.get("/api/books?page=3").await.json()["books"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    // Wildcards in the text are literal: `%` and `_` would match any title.
    for q in ["100%25", "%25", "_", "Volume%204_"] {
        assert_eq!(
            anon.get(&format!("/api/books?q={q}")).await.json()["total"],
            0,
            "wildcards in the text are literal: {q}"
        );
    }
    let v4 = anon.get("/api/books?q=volume%204").await.json();
    assert_eq!(v4["total"], 5);
    let mut titles: Vec<&str> = v4["books"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Volume 40",
            "Volume 41",
            "Volume 42",
            "Volume 43",
            "Volume 44"
        ]
    );
    let frank = anon.get("/api/books?q=frank").await.json();
    assert_eq!(frank["total"], 1);
    assert_eq!(frank["books"][0]["title"], "Dune");
    assert_eq!(anon.get("/api/books?page=abc").await.json()["page"], 1);
    let html = anon.get("/book/catalog?page=2").await;
    assert!(html.body.contains("Page 2 of 3"), "{}", html.body);
}

async fn json_api(db: &TestDb) {
    let (srv, alice, bob, dune) = shop(db, "5").await;
    let anon = srv.client();
    let b = book(&anon, dune).await;
    assert_eq!(b["id"], dune);
    assert_eq!(b["title"], "Dune");
    assert_eq!(b["author"], "Frank Herbert");
    assert_eq!(b["price"], "12.50");
    assert_eq!(b["stock"], 5);
    let cover = b["cover_url"].as_str().unwrap();
    assert!(
        cover.starts_with("/covers/") && cover.ends_with(".png"),
        "{cover}"
    );
    let r = anon.get("/api/books/999999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), serde_json::json!({"error": "not found"}));
    let list = anon.get("/api/books").await;
    assert!(
        list.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        list.headers
    );
    assert_eq!(list.json()["books"][0], b);
    let r = anon.get("/api/purchases").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), serde_json::json!({"error": "log in first"}));
    assert!(purchases(&alice).await.is_empty());
    let (_, pid) = buy(&bob, dune, "1", &[]).await;
    let p = purchases(&bob).await;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["id"], pid);
    assert_eq!(p[0]["total_price"], "12.50");
}

async fn health_and_metrics(db: &TestDb) {
    let metrics_listen = format!("127.0.0.1:{}", common::free_port());
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_METRICS_LISTEN", &metrics_listen)],
    )
    .await;
    let anon = srv.client();
    for _ in 0..2 {
        assert_eq!(anon.get("/book/catalog").await.status, StatusCode::OK);
    }
    let h = anon.get("/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.json()["status"], "ok");
    // The metrics are on their own listener, not on the site.
    assert_eq!(anon.get("/metrics").await.status, StatusCode::NOT_FOUND);
    let m = Client::new(&format!("http://{metrics_listen}"))
        .get("/metrics")
        .await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.headers["content-type"], "text/plain; version=0.0.4");
    let m = m.body;
    assert!(
        m.lines()
            .any(|l| l == r#"bookstore_requests_total{route="/book/catalog",status="200"} 2"#),
        "{m}"
    );
    assert!(
        m.contains("# TYPE bookstore_request_duration_seconds histogram\n")
            && m.contains("bookstore_request_duration_seconds_bucket{le=\"+Inf\"} ")
            && m.contains("bookstore_db_pool_connections{state=\"open\"} ")
            && m.contains("bookstore_db_pool_connections{state=\"idle\"} "),
        "{m}"
    );
}

/// The next release adds a migration while this one still runs (a rolling
/// deploy, or a rollback): this release must still start on that schema.
async fn a_later_releases_migration_does_not_stop_this_one(db: &TestDb) {
    let migrate = || {
        Command::new(BIN)
            .arg("migrate")
            .env("BOOKSTORE_DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use sqlx::Executor;
        let mut conn = db.connect().await;
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'a later release', TRUE, X'00', 0)",
        )
        .await
        .unwrap();
    }
    let out = migrate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srv = Server::start(db).await;
    assert_eq!(srv.client().get("/api/books").await.json()["total"], 0);
}

/// A database where the delivery providers were seeded twice (no unique
/// key then) and a delivery points at a copy: the migration adding the key
/// keeps one row per name and moves the delivery to it.
async fn the_unique_provider_migration_merges_a_repeated_seed(db: &TestDb) {
    let dir = if db.is_mariadb() { "mysql" } else { "sqlite" };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let first = db.dir.path().join("first-migration");
    std::fs::create_dir_all(&first).unwrap();
    let init = "20261124000001_init.sql";
    std::fs::copy(all.join(init), first.join(init)).unwrap();
    let mut conn = db.connect().await;
    sqlx::migrate::Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    {
        use sqlx::Executor;
        conn.execute(
            "INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES \
             ('DHL', 'Internacional', 5000), ('FedEx', 'Internacional', 4500), \
             ('Envia', 'Nacional', 2000), ('Servientrega', 'Nacional', 1500)",
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT INTO users (name, email, password, is_admin, created_at) VALUES ('S', 's@example.com', 'x', 0, 0)",
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT INTO books (title, author, description, price_cents, stock, seller_id, created_at) VALUES ('T', 'A', '', 100, 1, 1, 0)",
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at) VALUES (1, 1, 1, 100, 'Shipping', 0), (1, 1, 1, 100, 'Shipping', 0)",
        )
        .await
        .unwrap();
        // Envia's copy (id 7), and FedEx's original (id 2).
        conn.execute(
            "INSERT INTO delivery_assignments (purchase_id, provider_id) VALUES (1, 7), (2, 2)",
        )
        .await
        .unwrap();
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
    use sqlx::Row;
    let providers: Vec<(i64, String)> =
        sqlx::query("SELECT id, name FROM delivery_providers ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        providers,
        [
            (1, "DHL".to_string()),
            (2, "FedEx".to_string()),
            (3, "Envia".to_string()),
            (4, "Servientrega".to_string())
        ]
    );
    let assigned: Vec<(i64, i64)> = sqlx::query(
        "SELECT purchase_id, provider_id FROM delivery_assignments ORDER BY purchase_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(assigned, [(1, 3), (2, 2)]);
}

/// A catalog larger than the count cap: totals stop at 1000 and say so,
/// pages still reach every book, and a search lists title matches first
/// (by title, any case), then author matches (by author), each book once.
async fn a_large_catalog(db: &TestDb) {
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
    // A check's result is reused for a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = c.get("/healthz").await;
    chattr("-i");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("data directory"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
}

/// Instances starting at once on an empty database: their migrate steps
/// run together, one applies the migrations while the others wait for its
/// lock, so none fails and every migration is recorded once and the seed
/// is there once; the servers then start on the schema without touching it.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let db = TestDb::mariadb().await;
    let steps: Vec<_> = (0..4)
        .map(|_| {
            Command::new(BIN)
                .arg("migrate")
                .env("BOOKSTORE_DATABASE_URL", &db.url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for s in steps {
        let out = s.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let servers = futures::future::join_all((0..4).map(|i| {
        let dir = db.dir.path().join(format!("d{i}"));
        let db = &db;
        async move { Server::spawn(db, &dir, &[]).await }
    }))
    .await;
    for s in &servers {
        assert_eq!(s.client().get("/api/books").await.json()["total"], 0);
    }
    // No server found the schema unfinished.
    for s in &servers {
        let log = s.log_text();
        assert!(
            !log.contains("not ready yet") && !log.contains("ERROR"),
            "instance {} waited:\n{log}",
            s.pid()
        );
        assert!(log.contains("bookstore serving"), "{log}");
    }
    // Every migration applied, once, successfully.
    let mut files: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/mysql"))
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.split('_').next().unwrap().parse().unwrap()
            })
            .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let mut conn = common::connect_mysql(&db.url).await;
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        applied,
        files.iter().map(|v| (*v, true)).collect::<Vec<_>>()
    );
    // The seed, once, and the key that keeps it so.
    let providers: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM delivery_providers ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        providers.into_iter().map(|p| p.0).collect::<Vec<_>>(),
        ["DHL", "FedEx", "Envia", "Servientrega"]
    );
    let again = sqlx::query(
        "INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES ('DHL', 'Internacional', 5000)",
    )
    .execute(&mut conn)
    .await;
    match again {
        Err(sqlx::Error::Database(e)) => assert!(e.is_unique_violation(), "{e}"),
        other => panic!("a second DHL was accepted: {other:?}"),
    }
}

/// A login posted straight to the server, as from the client `forwarded_for`
/// (as the load balancer would add it); the token is `c`'s.
async fn login_from(
    c: &Client,
    token: &str,
    forwarded_for: &str,
    email: &str,
    pw: &str,
) -> common::Page {
    let r = c
        .http
        .post(format!("{}/login", c.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("csrf_token", token), ("email", email), ("password", pw)])
        .send()
        .await
        .unwrap();
    common::Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn retry_after(p: &common::Page) -> u64 {
    p.headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", p.headers))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_attempts_are_limited(db: &TestDb) {
    let srv = Server::start(db).await;
    srv.client().signup("Alice", "alice@example.com").await;
    // Five wrong passwords for one email are answered as usual; the sixth,
    // and then even the right one, is refused for a while.
    let c = srv.client();
    for i in 0..5 {
        let r = c.login("alice@example.com", "wrong password").await;
        assert_eq!(r.status, StatusCode::OK, "attempt {i}");
        assert!(
            r.body.contains("Login failed: wrong email or password."),
            "{}",
            r.body
        );
    }
    let r = c.login("Alice@Example.com ", "wrong password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let wait = retry_after(&r);
    assert!((800..=900).contains(&wait), "{wait}");
    assert!(
        r.is_html()
            && r.body
                .contains("Too many login attempts. Try again in 15 minutes.")
            && r.body.contains(r#"<form method="post" action="/login">"#)
            && r.body.contains(r#"value="alice@example.com""#),
        "{}",
        r.body
    );
    let r = c.login("alice@example.com", "a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(
        c.session_cookie().await.is_none(),
        "no session for a refused login"
    );
    assert_eq!(c.get("/book/my_books").await.status, StatusCode::SEE_OTHER);
    // Another email is not affected.
    srv.client().signup("Bob", "bob@example.com").await;

    // 20 attempts a minute per client: the right-most forwarded address,
    // which the load balancer adds; what the client puts left of it is
    // not trusted.
    let m = srv.client();
    let t = m.token("/login").await;
    for i in 0..20 {
        let r = login_from(&m, &t, "203.0.113.5", &format!("x{i}@example.com"), "pw").await;
        assert_eq!(r.status, StatusCode::OK, "attempt {i}: {}", r.body);
    }
    let r = login_from(&m, &t, "203.0.113.5", "bob@example.com", "a good password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!((1..=60).contains(&retry_after(&r)), "{:?}", r.headers);
    assert!(r.body.contains("Too many login attempts."), "{}", r.body);
    let r = login_from(
        &m,
        &t,
        "10.1.1.1, 203.0.113.5",
        "bob@example.com",
        "a good password",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged left entry changes nothing"
    );
    let r = login_from(
        &m,
        &t,
        "203.0.113.5, 203.0.113.6",
        "bob@example.com",
        "a good password",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "another client: {}",
        r.body
    );
    assert_eq!(r.location(), "/book/catalog");
}

async fn a_flood_of_logins_is_refused_not_queued(db: &TestDb) {
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_HASH_PERMITS", "1")],
    )
    .await;
    srv.client().signup("Alice", "alice@example.com").await;
    let c = srv.client();
    let t = c.token("/login").await;
    // Forty at once, from forty clients, for forty emails (no limit on
    // attempts applies): with one hashing permit, those finding it taken
    // are refused at once instead of waiting their turn.
    let results = futures::future::join_all((0..40).map(|i| {
        let (c, t) = (&c, &t);
        async move {
            login_from(
                c,
                t,
                &format!("198.51.100.{i}"),
                &format!("nobody{i}@example.com"),
                "wrong password",
            )
            .await
        }
    }))
    .await;
    let busy: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let failed = results
        .iter()
        .filter(|r| r.status == StatusCode::OK && r.body.contains("Login failed"))
        .count();
    assert_eq!(
        busy.len() + failed,
        40,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        !busy.is_empty() && failed >= 1,
        "busy {} failed {failed}",
        busy.len()
    );
    for r in &busy {
        assert_eq!(retry_after(r), 1);
        assert!(
            r.is_html() && r.body.contains("The shop is busy right now"),
            "{}",
            r.body
        );
    }
    // Once the flood is over, logins work again.
    let r = c.login("alice@example.com", "a good password").await;
    assert_eq!(r.location(), "/book/catalog", "{}", r.body);
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let i = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page:\n{body}"));
    body[i + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

async fn a_stale_edit_form_does_not_resurrect_sold_copies(db: &TestDb) {
    let (_srv, alice, bob, dune) = shop(db, "5").await;
    let edit = format!("/book/edit_book/{dune}");
    // Alice opens the form with 5 in stock; Bob buys one; Alice saves
    // without touching the stock: 4 remain, the sold copy stays sold.
    let save = |form: String, stock: &'static str| {
        let alice = &alice;
        let edit = edit.clone();
        async move {
            let r = alice
                .post(
                    &edit,
                    &[
                        ("csrf_token", hidden(&form, "csrf_token").as_str()),
                        ("stock_shown", hidden(&form, "stock_shown").as_str()),
                        ("title", "Dune"),
                        ("author", "Frank Herbert"),
                        ("price", "12.50"),
                        ("stock", stock),
                    ],
                )
                .await;
            assert_eq!(r.location(), "/book/my_books", "{}", r.body);
        }
    };
    let form = alice.get(&edit).await.body;
    assert_eq!(hidden(&form, "stock_shown"), "5");
    buy(&bob, dune, "1", &[]).await;
    save(form, "5").await;
    assert_eq!(book(&alice, dune).await["stock"], 4);
    // A change is applied to the stock as it is now: 4 shown, 10 asked,
    // one sold meanwhile: 3 + 6.
    let form = alice.get(&edit).await.body;
    assert_eq!(hidden(&form, "stock_shown"), "4");
    buy(&bob, dune, "1", &[]).await;
    save(form, "10").await;
    assert_eq!(book(&alice, dune).await["stock"], 9);
    // Never below 0.
    let form = alice.get(&edit).await.body;
    buy(&bob, dune, "2", &[]).await;
    save(form, "0").await;
    assert_eq!(book(&alice, dune).await["stock"], 0);
    assert_eq!(purchases(&bob).await.len(), 3);
}

async fn page_numbers_are_capped(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();
    let last = anon.get("/api/books?page=500").await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(last.json()["page"], 500);
    for page in ["501", "100000", "0", "-1", "99999999999999"] {
        let r = anon.get(&format!("/api/books?page={page}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{page}: {}", r.body);
        assert_eq!(r.json()["error"], "no such page", "{page}");
        let r = anon.get(&format!("/book/catalog?page={page}&q=x")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{page}");
        assert!(
            r.is_html() && r.body.contains("There is nothing here."),
            "{}",
            r.body
        );
    }
    let r = anon.get("/api/books?q=a&page=501").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn security_headers_on_every_response(db: &TestDb) {
    let (srv, alice, _bob, dune) = shop(db, "5").await;
    let cover = book(&alice, dune).await["cover_url"]
        .as_str()
        .unwrap()
        .to_string();
    let anon = srv.client();
    let csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
    let check = |what: &str, p: &common::Page, want_csp: &str| {
        let h = |k: &str| p.headers.get(k).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            h("content-security-policy").as_deref(),
            Some(want_csp),
            "{what}"
        );
        assert_eq!(
            h("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            h("referrer-policy").as_deref(),
            Some("same-origin"),
            "{what}"
        );
        assert_eq!(h("x-frame-options").as_deref(), Some("DENY"), "{what}");
    };
    for path in [
        "/",
        "/book/catalog",
        "/login",
        "/api/books",
        "/no/such/page",
        "/static/bootstrap.min.css",
        "/static/bookstore.css",
        "/healthz",
    ] {
        check(path, &anon.get(path).await, csp);
    }
    check("a redirect", &anon.get("/book/my_books").await, csp);
    let t = anon.token("/login").await;
    check(
        "a refused form",
        &anon.post("/book/add_book", &[("csrf_token", &t)]).await,
        csp,
    );
    // An upload is never a page: a sandbox of its own.
    let c = anon.get(&cover).await;
    assert_eq!(c.status, StatusCode::OK);
    check("a cover", &c, "sandbox");
    // The pages have no inline styles or scripts for the policy to block;
    // their styles are in the shop's stylesheet.
    for path in [
        "/book/catalog",
        "/book/my_books",
        &format!("/book/edit_book/{dune}"),
        "/purchases",
    ] {
        let p = alice.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(
            !p.body.contains("style=") && !p.body.contains("<script") && !p.body.contains("<style"),
            "{path}: {}",
            p.body
        );
        assert!(p
            .body
            .contains(r#"<link rel="stylesheet" href="/static/bookstore.css?v="#));
    }
    let catalog = alice.get("/book/catalog").await.body;
    assert!(
        catalog.contains("cover-thumb") && catalog.contains("qty-input"),
        "{catalog}"
    );
    let css = anon.get("/static/bookstore.css").await;
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(
        css.body.contains(".cover-thumb{") && css.body.contains(".qty-input{"),
        "{}",
        css.body
    );
}

async fn logout_only_by_post_with_the_token(db: &TestDb) {
    let srv = Server::start(db).await;
    let c = srv.client();
    c.signup("Alice", "alice@example.com").await;
    // A link (GET), even one from this site, logs no one out.
    let r = c.get("/logout").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.get("set-cookie").is_none());
    assert_eq!(c.get("/book/my_books").await.status, StatusCode::OK);
    // Nor a POST without the session's token (from another site).
    let r = c.post("/logout", &[("csrf_token", "0")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/book/my_books").await.status, StatusCode::OK);
    // The button on every page is a form with the token.
    let page = c.get("/book/my_books").await;
    let form = r#"<form method="post" action="/logout" class="d-inline"><input type="hidden" name="csrf_token" value=""#;
    let i = page
        .body
        .find(form)
        .unwrap_or_else(|| panic!("{}", page.body));
    let t = page.body[i + form.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = c.post("/logout", &[("csrf_token", &t)]).await;
    assert_eq!(r.location(), "/login");
    assert_eq!(c.get("/book/my_books").await.status, StatusCode::SEE_OTHER);
}

/// The health check says the database is unavailable, not why: the error
/// names the database's user and host. The detail goes to the log.
#[tokio::test]
async fn health_hides_the_database_error_on_mariadb() {
    let db = TestDb::mariadb().await;
    let name = db.mysql_name.clone().unwrap();
    let user = format!("u{}", &name[name.len() - 8..]);
    let mut root = common::connect_mysql(&format!("{}/", common::MARIADB)).await;
    use sqlx::Executor;
    root.execute(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'").as_str())
        .await
        .unwrap();
    root.execute(format!("GRANT ALL ON {name}.* TO '{user}'@'%'").as_str())
        .await
        .unwrap();
    let as_user = TestDb {
        url: format!("mysql://{user}:pw-{user}@127.0.0.1:3306/{name}"),
        mysql_name: Some(name.clone()),
        dir: tempfile::tempdir().unwrap(),
        drop_guard: None,
    };
    let srv = Server::start(&as_user).await;
    let c = srv.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    // The user goes away, and with it the connections it had.
    root.execute(format!("DROP USER '{user}'@'%'").as_str())
        .await
        .unwrap();
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?")
            .bind(&user)
            .fetch_all(&mut root)
            .await
            .unwrap();
    for id in ids {
        let _ = root.execute(format!("KILL {id}").as_str()).await;
    }
    let start = std::time::Instant::now();
    let r = loop {
        let r = c.get("/healthz").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE || start.elapsed().as_secs() > 20 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "unavailable", "{j}");
    assert_eq!(j["reason"], "database unavailable", "{j}");
    assert_eq!(
        j.as_object().unwrap().len(),
        3,
        "status, reason, checked_at: {j}"
    );
    assert!(
        !r.body.contains(&user) && !r.body.contains("127.0.0.1"),
        "{}",
        r.body
    );
    assert!(
        srv.log_text()
            .contains("health check: database unavailable"),
        "{}",
        srv.log_text()
    );
}
