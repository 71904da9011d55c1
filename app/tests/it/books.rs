//! Selling books over HTTP, on SQLite and on MariaDB: covers leave the
//! disk with their books, each seller's covers have a quota and an hourly
//! limit, a book deleted while it is bought never fails either request,
//! and upload forms are checked before anything is stored.

use crate::common;

use common::{Client, Server, TestDb, PNG};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

on_both_databases!(
    covers_leave_the_disk_with_their_books,
    covers_have_a_quota_per_seller,
    cover_uploads_per_hour_are_limited,
    deleting_while_buying_never_fails,
    upload_forms_are_checked_before_anything_is_stored,
    the_api_answers_json_everywhere,
);

const MIB: usize = 1024 * 1024;

/// A PNG of exactly `size` bytes (a valid header, then zeros).
fn png_of(size: usize) -> Vec<u8> {
    let mut b = PNG.to_vec();
    b.resize(size, 0);
    b
}

/// The book form's fields, with `cover` (if any) last.
fn book_form(token: &str, title: &str, stock: &str, cover: Option<Vec<u8>>) -> Form {
    let f = Form::new()
        .text("csrf_token", token.to_string())
        .text("title", title.to_string())
        .text("author", "Some Author")
        .text("description", "A book.")
        .text("price", "3.00")
        .text("stock", stock.to_string());
    match cover {
        Some(bytes) => f.part("cover", Part::bytes(bytes).file_name("cover.png")),
        None => f,
    }
}

/// Adds a book (with a cover when given); the answer.
async fn add(c: &Client, title: &str, cover: Option<Vec<u8>>) -> common::Page {
    let t = c.token("/book/add_book").await;
    c.post_multipart("/book/add_book", book_form(&t, title, "1", cover))
        .await
}

/// Adds a book that must be accepted; its id.
async fn sell(c: &Client, title: &str, cover: Option<Vec<u8>>) -> i64 {
    let r = add(c, title, cover).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{title}: {}", r.body);
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    c.book_id(title).await
}

/// The cover files on disk.
fn covers(srv: &Server) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(srv.data_dir.join("covers")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The file name of a book's cover, from the API.
async fn cover_of(c: &Client, id: i64) -> Option<String> {
    let b = c.get(&format!("/api/books/{id}")).await.json();
    b["cover_url"]
        .as_str()
        .map(|u| u.strip_prefix("/covers/").unwrap().to_string())
}

/// POSTs a multipart form of `csrf_token` and a `cover` of `size` bytes
/// over a plain connection, reading the answer while the body is still
/// being sent (a server refusing a body early closes the connection, which
/// a client that writes first reports as an error); the status.
async fn post_huge(srv: &Server, c: &Client, path: &str, token: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary = "xyzzy-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"cover\"; filename=\"x.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png_of(size));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let cookie = c.session_cookie().await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: bookstore_session={cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        srv.base.trim_start_matches("http://"),
        body.len()
    );
    let conn = tokio::net::TcpStream::connect(srv.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        // The server may stop reading: a failed write is expected then.
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match rd.read(&mut buf).await.unwrap() {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    writer.abort();
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {head:?}"))
}

async fn total(c: &Client) -> i64 {
    c.get("/api/books").await.json()["total"].as_i64().unwrap()
}

async fn seller_bytes(db: &TestDb) -> i64 {
    use sqlx::Row;
    let mut conn = db.connect().await;
    sqlx::query("SELECT CAST(COALESCE(SUM(cover_bytes), 0) AS SIGNED) FROM books")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0)
}

async fn covers_leave_the_disk_with_their_books(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    let id = sell(&alice, "Dune", Some(PNG.to_vec())).await;
    let first = cover_of(&alice, id).await.unwrap();
    assert_eq!(covers(&srv), std::slice::from_ref(&first));
    assert_eq!(seller_bytes(db).await, PNG.len() as i64);

    // An edit without a cover keeps it; one with a cover replaces it,
    // and the old file goes.
    let edit = format!("/book/edit_book/{id}");
    let t = alice.token(&edit).await;
    let r = alice
        .post_multipart(&edit, book_form(&t, "Dune", "2", None))
        .await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    assert_eq!(cover_of(&alice, id).await.as_ref(), Some(&first));
    let r = alice
        .post_multipart(&edit, book_form(&t, "Dune", "2", Some(png_of(1000))))
        .await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    let second = cover_of(&alice, id).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(
        covers(&srv),
        std::slice::from_ref(&second),
        "the replaced cover is gone"
    );
    assert_eq!(seller_bytes(db).await, 1000);
    let img = alice.get(&format!("/covers/{first}")).await;
    assert_eq!(img.status, StatusCode::NOT_FOUND);

    // Deleting the book removes its cover.
    let r = alice
        .post(&format!("/book/delete_book/{id}"), &[("csrf_token", &t)])
        .await;
    assert_eq!(r.location(), "/book/my_books");
    assert!(alice
        .get("/book/my_books")
        .await
        .body
        .contains("“Dune” was deleted."));
    assert!(covers(&srv).is_empty(), "{:?}", covers(&srv));
    assert_eq!(total(&alice).await, 0);
}

async fn covers_have_a_quota_per_seller(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    // 20 MiB fit: ten covers of 2 MiB.
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(sell(&alice, &format!("Big {i}"), Some(png_of(2 * MIB))).await);
    }
    assert_eq!(seller_bytes(db).await, 20 * MIB as i64);
    // One byte more does not: the form comes back, nothing is stored.
    let r = add(&alice, "One too many", Some(PNG.to_vec())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Your covers may take 20 MB in all")
            && r.body.contains(r#"value="One too many""#),
        "{}",
        r.body
    );
    assert_eq!(total(&alice).await, 10);
    assert_eq!(covers(&srv).len(), 10);
    // Replacing a 2 MiB cover with a 1 KiB one frees the difference.
    let edit = format!("/book/edit_book/{}", ids[0]);
    let t = alice.token(&edit).await;
    let r = alice
        .post_multipart(&edit, book_form(&t, "Big 0", "1", Some(png_of(1024))))
        .await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    assert_eq!(covers(&srv).len(), 10, "the replaced cover is gone");
    let used = 18 * MIB + 1024;
    assert_eq!(seller_bytes(db).await, used as i64);
    // Adding a 2 MiB cover does not fit in what is left; replacing one of
    // 2 MiB with another does.
    let r = add(&alice, "Another big one", Some(png_of(2 * MIB))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Your covers may take 20 MB in all"));
    let edit1 = format!("/book/edit_book/{}", ids[1]);
    let r = alice
        .post_multipart(&edit1, book_form(&t, "Big 1", "1", Some(png_of(2 * MIB))))
        .await;
    assert_eq!(r.location(), "/book/my_books", "{}", r.body);
    assert_eq!(seller_bytes(db).await, used as i64);
    // A small one still fits, and a book without a cover always does.
    sell(&alice, "Small", Some(PNG.to_vec())).await;
    sell(&alice, "No cover", None).await;
    assert_eq!(total(&alice).await, 12);
    assert_eq!(covers(&srv).len(), 11);
    // The quota is each seller's.
    let bob = srv.client();
    bob.signup("Bob", "bob@example.com").await;
    sell(&bob, "Bob's", Some(png_of(2 * MIB))).await;
}

async fn cover_uploads_per_hour_are_limited(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    for i in 0..30 {
        sell(&alice, &format!("Book {i}"), Some(PNG.to_vec())).await;
    }
    let r = add(&alice, "Thirty-first", Some(PNG.to_vec())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("You have uploaded 30 covers in the last hour")
            && r.body.contains(r#"value="Thirty-first""#),
        "{}",
        r.body
    );
    assert_eq!(total(&alice).await, 30);
    assert_eq!(covers(&srv).len(), 30);
    // Replacing a cover is an upload too.
    let id = alice.book_id("Book 0").await;
    let edit = format!("/book/edit_book/{id}");
    let t = alice.token(&edit).await;
    let r = alice
        .post_multipart(&edit, book_form(&t, "Changed", "1", Some(PNG.to_vec())))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("You have uploaded 30 covers"), "{}", r.body);
    assert_eq!(
        alice.get(&format!("/api/books/{id}")).await.json()["title"],
        "Book 0"
    );
    // Books without covers, and other sellers, are not limited.
    sell(&alice, "No cover", None).await;
    let bob = srv.client();
    bob.signup("Bob", "bob@example.com").await;
    sell(&bob, "Bob's", Some(PNG.to_vec())).await;
}

async fn deleting_while_buying_never_fails(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    let bob = srv.client();
    bob.signup("Bob", "bob@example.com").await;
    let at = alice.token("/book/add_book").await;
    let bt = bob.token("/book/add_book").await;
    let mut kept = 0;
    for round in 0..20 {
        let id = sell(&alice, &format!("Round {round}"), Some(PNG.to_vec())).await;
        let delete = format!("/book/delete_book/{id}");
        let buy = format!("/buy/{id}");
        let delete_form = [("csrf_token", at.as_str())];
        let buy_form = [("csrf_token", bt.as_str()), ("quantity", "1")];
        let (d, b) = tokio::join!(alice.post(&delete, &delete_form), bob.post(&buy, &buy_form),);
        assert!(
            !d.status.is_server_error(),
            "round {round}: delete answered {}: {}",
            d.status,
            d.body
        );
        assert!(
            !b.status.is_server_error(),
            "round {round}: buy answered {}: {}",
            b.status,
            b.body
        );
        assert_eq!(d.location(), "/book/my_books", "{}", d.body);
        let exists = alice.get(&format!("/api/books/{id}")).await.status == StatusCode::OK;
        let flash = alice.get("/book/my_books").await.body;
        if exists {
            kept += 1;
            assert!(
                flash.contains("This book has purchases and stays on record"),
                "round {round}: {flash}"
            );
        } else {
            assert!(flash.contains("was deleted."), "round {round}: {flash}");
        }
    }
    // A book stays exactly when it was bought; the others' covers are gone.
    let bought = bob.get("/api/purchases").await.json()["purchases"]
        .as_array()
        .unwrap()
        .len();
    eprintln!("{kept} of 20 books were bought before they could be deleted");
    assert_eq!(bought, kept);
    assert_eq!(total(&alice).await as usize, kept);
    assert_eq!(covers(&srv).len(), kept);
}

async fn upload_forms_are_checked_before_anything_is_stored(db: &TestDb) {
    let srv = Server::start(db).await;
    let alice = srv.client();
    alice.signup("Alice", "alice@example.com").await;
    let t = alice.token("/book/add_book").await;
    // The file before the token: refused unread.
    let early = Form::new()
        .part("cover", Part::bytes(PNG.to_vec()).file_name("x.png"))
        .text("csrf_token", t.clone())
        .text("title", "Early")
        .text("author", "X")
        .text("price", "1")
        .text("stock", "1");
    let r = alice.post_multipart("/book/add_book", early).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Over the body limit: 413.
    assert_eq!(
        post_huge(&srv, &alice, "/book/add_book", &t, 5 * MIB).await,
        413
    );
    // Under it but over 2 MB: the form again.
    let big = book_form(&t, "Big", "1", Some(png_of(3 * MIB)));
    let r = alice.post_multipart("/book/add_book", big).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("The cover is larger than 2 MB."),
        "{}",
        r.body
    );
    // The same for an edit.
    let id = sell(&alice, "Kept", None).await;
    let edit = format!("/book/edit_book/{id}");
    let early = Form::new()
        .part("cover", Part::bytes(PNG.to_vec()).file_name("x.png"))
        .text("csrf_token", t.clone())
        .text("title", "Changed")
        .text("author", "X")
        .text("price", "1")
        .text("stock", "1");
    assert_eq!(
        alice.post_multipart(&edit, early).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(post_huge(&srv, &alice, &edit, &t, 5 * MIB).await, 413);
    assert_eq!(total(&alice).await, 1);
    assert_eq!(
        alice.get(&format!("/api/books/{id}")).await.json()["title"],
        "Kept"
    );
    assert!(covers(&srv).is_empty(), "{:?}", covers(&srv));
    // The small forms keep the small limit.
    let big_field = "x".repeat(64 * 1024);
    let r = alice
        .post(
            &format!("/book/delete_book/{id}"),
            &[("csrf_token", &t), ("pad", &big_field)],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn the_api_answers_json_everywhere(db: &TestDb) {
    let srv = Server::start(db).await;
    let anon = srv.client();
    for path in ["/api/nope", "/api/books/1/more", "/api"] {
        let r = anon.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.json(),
            serde_json::json!({"error": "not found"}),
            "{path}"
        );
    }
    // An id that is not a number is named.
    let r = anon.get("/api/books/abc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "not found: id must be a whole number",
            "fields": {"id": "not found: id must be a whole number"}})
    );
    let r = anon.get("/api/books?page=0").await;
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "no such page", "max_page": 500})
    );
    let r = anon.post("/api/books/1", &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json()["error"].is_string());
    let r = anon.get("/api/books?page=1&page=2").await;
    assert_eq!(r.status, StatusCode::OK, "an unreadable query is page 1");
    assert_eq!(r.json()["page"], 1);
    // A page of the site is still a page.
    let r = anon.get("/no/such/page").await;
    assert!(r.is_html());
}
