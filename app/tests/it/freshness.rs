//! What a visitor sees may lag a write by at most one second, on any
//! instance: the catalog is cached briefly, never longer. Purchases always
//! take the true stock, however stale the page they were made from.

use crate::common;

use std::time::{Duration, Instant};

use common::{Client, Server, TestDb};
use reqwest::StatusCode;

/// The bound the shop promises.
const BOUND: Duration = Duration::from_secs(1);

/// Polls `path` on `c` until its body contains `want`; how long it took.
async fn seen_after(c: &Client, path: &str, want: &str, since: Instant) -> Duration {
    loop {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body.contains(want) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < BOUND * 3,
            "{path} still does not show {want:?} after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keeps `path` hot on `c` (so that it is cached) for a moment.
async fn warm(c: &Client, path: &str) {
    for _ in 0..20 {
        assert_eq!(c.get(path).await.status, StatusCode::OK);
    }
}

async fn a_write_on_one_instance_shows_on_another_within_a_second(db: &TestDb) {
    let a = Server::start(db).await;
    let b = Server::start_with(db, &db.dir.path().join("data-b"), &[]).await;
    let seller = a.client();
    seller.signup("Seller", "seller@example.com").await;
    seller.add_book("Old news", "5", "3").await;
    let anon_b = b.client();
    let anon_a = a.client();
    for path in ["/book/catalog", "/api/books", "/book/catalog?q=Fresh"] {
        warm(&anon_b, path).await;
    }

    // A new book, added on A.
    let r = seller.add_book("Fresh ink", "7", "2").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let written = Instant::now();
    // The instance that wrote shows it at once.
    assert!(anon_a.get("/book/catalog").await.body.contains("Fresh ink"));
    let lag = seen_after(&anon_b, "/book/catalog", "Fresh ink", written).await;
    assert!(lag <= BOUND, "the catalog on B lagged {lag:?}");
    let lag = seen_after(&anon_b, "/api/books", "Fresh ink", written).await;
    assert!(lag <= BOUND, "the API on B lagged {lag:?}");
    let lag = seen_after(&anon_b, "/book/catalog?q=Fresh", "Fresh ink", written).await;
    assert!(lag <= BOUND, "the search on B lagged {lag:?}");

    // A sale on A: B's catalog shows the new stock within the bound.
    let id = seller.book_id("Fresh ink").await;
    let buyer = a.client();
    buyer.signup("Buyer", "buyer@example.com").await;
    warm(&anon_b, "/api/books").await;
    let t = buyer.token("/book/catalog").await;
    let r = buyer
        .post(
            &format!("/buy/{id}"),
            &[("csrf_token", &t), ("quantity", "2")],
        )
        .await;
    assert!(r.location().starts_with("/payment/"), "{}", r.body);
    let sold = Instant::now();
    let stock = loop {
        let books = anon_b.get("/api/books").await.json();
        let s = books["books"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .map(|b| b["stock"].clone())
            .unwrap();
        if s == 0 || sold.elapsed() > BOUND * 3 {
            break (s, sold.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stock.0, 0);
    assert!(stock.1 <= BOUND, "the stock on B lagged {:?}", stock.1);
}

/// A page (perhaps cached) offers copies that are gone: buying them is
/// refused, never oversold.
async fn a_stale_page_never_oversells(db: &TestDb) {
    let a = Server::start(db).await;
    let b = Server::start_with(db, &db.dir.path().join("data-b"), &[]).await;
    let seller = a.client();
    seller.signup("Seller", "seller@example.com").await;
    seller.add_book("Scarce", "9", "3").await;
    let id = seller.book_id("Scarce").await;
    let mut buyers = Vec::new();
    for (i, srv) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let c = srv.client();
        c.signup(&format!("Buyer {i}"), &format!("b{i}@example.com"))
            .await;
        // Each has the page offering the copies.
        assert!(c.get("/book/catalog").await.body.contains("Scarce"));
        let t = c.token("/book/catalog").await;
        buyers.push((c, t));
    }
    let tasks = buyers.iter().map(|(c, t)| async move {
        c.post(
            &format!("/buy/{id}"),
            &[("csrf_token", t), ("quantity", "1")],
        )
        .await
    });
    let results = futures::future::join_all(tasks).await;
    let bought = results
        .iter()
        .filter(|r| r.location().starts_with("/payment/"))
        .count();
    assert_eq!(
        bought,
        3,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|r| r.status == StatusCode::SEE_OTHER));
    assert_eq!(
        seller.get(&format!("/api/books/{id}")).await.json()["stock"],
        0
    );
}

on_both_databases!(
    a_write_on_one_instance_shows_on_another_within_a_second,
    a_stale_page_never_oversells,
);
