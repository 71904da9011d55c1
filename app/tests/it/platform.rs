//! What every request goes through, whatever its route: request ids and
//! the log line carrying them, compression, the stylesheets' caching, the
//! body limit, and the metrics on their own listener.

use crate::common;

use std::time::{Duration, Instant};

use common::{free_port, Client, Server, TestDb};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use reqwest::StatusCode;

on_both_databases!(
    metrics_only_on_their_listener,
    json_logs_carry_the_request_id
);

/// A client that neither follows redirects nor decompresses.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn header(r: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> &str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// The stylesheet URLs a page links to.
fn stylesheets(page: &str) -> Vec<String> {
    page.split(r#"<link rel="stylesheet" href=""#)
        .skip(1)
        .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let http = http();
    let mut seen = Vec::new();
    for path in ["/healthz", "/no/such/page", "/static/bookstore.css"] {
        let r = http
            .get(format!("{}{path}", srv.base))
            .send()
            .await
            .unwrap();
        let id = header(&r, "x-request-id").to_string();
        assert_eq!(id.len(), 36, "{path}: a UUID, not {id:?}");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "one id per request");
    // An id the client (or the load balancer) sent is kept.
    let r = http
        .get(format!("{}/no/such/page", srv.base))
        .header("x-request-id", "from-the-balancer-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "x-request-id"), "from-the-balancer-1");
    // Not one that is long or holds odd characters: it gets its own.
    for odd in ["x".repeat(200), "a b\"c".to_string()] {
        let r = http
            .get(format!("{}/healthz", srv.base))
            .header("x-request-id", &odd)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "x-request-id").len(), 36, "{odd}");
    }
}

#[tokio::test]
async fn pages_and_stylesheets_are_gzipped_when_asked() {
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let http = http();
    for path in [
        "/book/catalog",
        "/no/such/page",
        "/static/bootstrap.min.css",
        "/static/bookstore.css",
    ] {
        let url = format!("{}{path}", srv.base);
        let plain = http.get(&url).send().await.unwrap();
        assert_eq!(header(&plain, CONTENT_ENCODING), "", "{path}");
        let plain = plain.bytes().await.unwrap();
        let r = http
            .get(&url)
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, CONTENT_ENCODING), "gzip", "{path}");
        assert!(
            header(&r, VARY)
                .to_ascii_lowercase()
                .contains("accept-encoding"),
            "{path}"
        );
        let body = r.bytes().await.unwrap();
        assert_eq!(&body[..2], b"\x1f\x8b", "{path}: gzip's magic");
        if plain.len() > 10_000 {
            assert!(body.len() < plain.len() / 2, "{path}: compressed");
        }
    }
}

#[tokio::test]
async fn stylesheets_have_etags_and_versioned_urls() {
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let http = http();
    // Pages link to versioned URLs (the 404 page has the layout too).
    let page = srv.client().get("/no/such/page").await.body;
    let links = stylesheets(&page);
    assert_eq!(links.len(), 2, "{page}");
    for (link, path) in links
        .iter()
        .zip(["/static/bootstrap.min.css", "/static/bookstore.css"])
    {
        let bare = http
            .get(format!("{}{path}", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), StatusCode::OK);
        assert_eq!(header(&bare, CONTENT_TYPE), "text/css; charset=utf-8");
        assert!(
            !header(&bare, CACHE_CONTROL).contains("immutable"),
            "{path}"
        );
        let etag = header(&bare, ETAG).to_string();
        let version = etag.trim_matches('"');
        assert!(
            etag.starts_with('"')
                && etag.ends_with('"')
                && version.len() == 16
                && version.chars().all(|c| c.is_ascii_hexdigit()),
            "a strong ETag: {etag}"
        );
        let bytes = bare.bytes().await.unwrap();
        assert_eq!(link, &format!("{path}?v={version}"));

        let versioned = http
            .get(format!("{}{link}", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(versioned.status(), StatusCode::OK);
        assert_eq!(
            header(&versioned, CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&versioned, ETAG), etag);
        assert_eq!(versioned.bytes().await.unwrap(), bytes);

        // Another release's version: today's bytes, to be checked again.
        let other = http
            .get(format!("{}{path}?v=0123456789abcdef", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        assert!(!header(&other, CACHE_CONTROL).contains("immutable"));

        // A browser holding this version is told it is current.
        for url in [format!("{}{path}", srv.base), format!("{}{link}", srv.base)] {
            let r = http
                .get(&url)
                .header(IF_NONE_MATCH, &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{url}");
            assert_eq!(header(&r, ETAG), etag);
            assert!(r.bytes().await.unwrap().is_empty());
        }
        let r = http
            .get(format!("{}{path}", srv.base))
            .header(IF_NONE_MATCH, "\"0123456789abcdef\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // The gzipped copy's tag is the weak form, and revalidates too.
        let gz = http
            .get(format!("{}{link}", srv.base))
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        let weak = header(&gz, ETAG).to_string();
        assert_eq!(weak, format!("W/{etag}"));
        let r = http
            .get(format!("{}{link}", srv.base))
            .header(ACCEPT_ENCODING, "gzip")
            .header(IF_NONE_MATCH, &weak)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_a_page() {
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let c = srv.client();
    let t = c.token("/login").await;
    let big = "x".repeat(17 * 1024);
    let r = c
        .post(
            "/login",
            &[("csrf_token", &t), ("email", &big), ("password", "pw")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(
        r.is_html() && r.body.contains("larger than this page accepts"),
        "{}",
        r.body
    );
    assert!(!r.headers["x-request-id"].is_empty());
}

async fn metrics_only_on_their_listener(db: &TestDb) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_METRICS_LISTEN", &metrics)],
    )
    .await;
    let site = srv.client();
    let nf = site.get("/metrics").await;
    assert_eq!(nf.status, StatusCode::NOT_FOUND);
    assert!(nf.is_html());
    assert_eq!(
        site.get("/no/such/page").await.status,
        StatusCode::NOT_FOUND
    );
    let listener = Client::new(&format!("http://{metrics}"));
    // Nothing of the site there.
    assert_eq!(listener.get("/healthz").await.status, StatusCode::NOT_FOUND);
    let m = listener.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.headers["content-type"], "text/plain; version=0.0.4");
    let lines: Vec<&str> = m.body.lines().collect();
    for line in [
        r#"bookstore_requests_total{route="unmatched",status="404"} 2"#,
        "# TYPE bookstore_requests_total counter",
        "# TYPE bookstore_request_duration_seconds histogram",
        "# TYPE bookstore_db_pool_connections gauge",
    ] {
        assert!(lines.contains(&line), "{line} in:\n{}", m.body);
    }
    // The health checks that waited for the server were counted too.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(r#"bookstore_requests_total{route="/healthz",status="200"} "#)),
        "{}",
        m.body
    );
    let open = lines
        .iter()
        .find_map(|l| l.strip_prefix(r#"bookstore_db_pool_connections{state="open"} "#))
        .unwrap_or_else(|| panic!("{}", m.body));
    assert!(open.parse::<f64>().unwrap() >= 1.0, "{}", m.body);
}

async fn json_logs_carry_the_request_id(db: &TestDb) {
    let srv = Server::start_with(
        db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_LOG_FORMAT", "json")],
    )
    .await;
    let id = "log-test-7f3a";
    let r = http()
        .get(format!("{}/book/catalog?page=2", srv.base))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let start = Instant::now();
    let line = loop {
        let log = srv.log_text();
        if let Some(l) = log.lines().find(|l| l.contains(id)) {
            break serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("{e}: {l}"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no line for {id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(line["fields"]["latency_ms"].is_number(), "{line}");
    assert_eq!(line["span"]["request_id"], id, "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["path"], "/book/catalog", "{line}");
    assert_eq!(line["span"]["route"], "/book/catalog", "{line}");
}
