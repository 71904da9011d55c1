//! The account's token page: a token made with the form is shown once,
//! works with the API, and is listed (never shown again) until revoked.

use crate::api::Program;
use crate::common::{Server, TestDb};
use reqwest::StatusCode;
use sqlx::Row;

on_both_databases!(the_account_page_makes_a_token_and_shows_it_once);

async fn the_account_page_makes_a_token_and_shows_it_once(db: &TestDb) {
    let srv = Server::start(db).await;
    let web = srv.client();
    web.signup("Ann", "ann@example.com").await;
    let page = web.get("/account/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You have no tokens."), "{}", page.body);
    assert!(
        !page.body.contains("scope_admin"),
        "a non-admin is offered admin"
    );
    let csrf = page.csrf();
    // Without the form's token: refused, nothing made.
    let r = web
        .post("/account/tokens", &[("name", "ci"), ("scope_read", "on")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // What is wrong is said, and nothing is made.
    let r = web
        .post(
            "/account/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", " "),
                ("expires_in_days", "0"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for says in [
        "Name is required.",
        "Choose at least one scope.",
        "Expiry must be at least 1.",
    ] {
        assert!(r.body.contains(says), "{says}: {}", r.body);
    }
    let r = web
        .post(
            "/account/tokens",
            &[("csrf_token", &csrf), ("name", "ci"), ("scope_admin", "on")],
        )
        .await;
    assert!(
        r.body
            .contains("Only administrators can grant the admin scope."),
        "{}",
        r.body
    );
    let mut conn = db.connect().await;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM api_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Made: shown on this page, once.
    let r = web
        .post(
            "/account/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", "stock <import>"),
                ("scope_read", "on"),
                ("scope_buy", "on"),
                ("expires_in_days", "7"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let marker = r#"id="new-token">"#;
    let at = r.body.find(marker).expect("the new token is shown") + marker.len();
    let token = r.body[at..].split('<').next().unwrap().to_string();
    assert!(token.starts_with("bks_") && token.len() == 68, "{token}");
    assert!(r.body.contains("stock &lt;import&gt;"), "{}", r.body);
    let me = Program::new(&srv).with_token(&token).get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["scopes"], serde_json::json!(["read", "buy"]));
    let page = web.get("/account/tokens").await;
    assert!(!page.body.contains(&token), "the token is shown again");
    assert!(page.body.contains(&token[..12]), "{}", page.body);
    assert!(!page.body.contains("never"), "its use is not shown");
    let (created, expires): (i64, i64) =
        sqlx::query_as("SELECT created_at, expires_at FROM api_tokens")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(expires - created, 7 * 24 * 3600);
    // Another user cannot revoke it.
    let eve = srv.client();
    eve.signup("Eve", "eve@example.com").await;
    let id: i64 = sqlx::query("SELECT id FROM api_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    let t = eve.token("/account/tokens").await;
    let r = eve
        .post(
            &format!("/account/tokens/{id}/revoke"),
            &[("csrf_token", &t)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let me = Program::new(&srv).with_token(&token).get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK);
}
