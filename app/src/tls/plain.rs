//! The plain HTTP side when the app serves HTTPS itself: the ACME CA's
//! HTTP-01 challenges are answered; every other request is sent to the
//! same path over HTTPS, permanently.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::acme::Challenges;

#[derive(Clone)]
struct Plain {
    domains: Arc<[String]>,
    challenges: Arc<Challenges>,
}

/// The router of the plain HTTP listener.
pub fn router(domains: &[String], challenges: Arc<Challenges>) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .fallback(to_https)
        .with_state(Plain {
            domains: domains.into(),
            challenges,
        })
}

/// The key authorization for a challenge under way; 404 for any other.
async fn challenge(State(p): State<Plain>, Path(token): Path<String>) -> Response {
    match p.challenges.get(&token) {
        Some(key_authorization) => (
            [(CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            key_authorization,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// 308 to `https://<host><path>`: the host asked for if it is one of the
/// site's domains (any port dropped), else the first of them; the query
/// is kept. 308 keeps the method and body (a form posted to `http://`).
async fn to_https(State(p): State<Plain>, req: Request) -> Response {
    let asked = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or("").to_ascii_lowercase());
    let host = asked
        .as_ref()
        .and_then(|h| p.domains.iter().find(|d| *d == h))
        .unwrap_or(&p.domains[0]);
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match HeaderValue::try_from(format!("https://{host}{path}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn plain() -> (Router, Arc<Challenges>) {
        let challenges = Arc::new(Challenges::default());
        let domains = ["shop.example".to_string(), "www.shop.example".to_string()];
        (router(&domains, challenges.clone()), challenges)
    }

    async fn get(app: Router, uri: &str, host: &str) -> Response {
        let req = Request::get(uri)
            .header(HOST, host)
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap()
    }

    fn location(res: &Response) -> &str {
        res.headers()[LOCATION].to_str().unwrap()
    }

    #[tokio::test]
    async fn a_request_for_one_of_the_domains_goes_to_it_over_https() {
        let (app, _) = plain();
        let res = get(app, "/book/catalog?page=2", "WWW.shop.example:80").await;
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            location(&res),
            "https://www.shop.example/book/catalog?page=2"
        );
    }

    #[tokio::test]
    async fn any_other_host_goes_to_the_first_domain() {
        let (app, _) = plain();
        let res = get(app.clone(), "/login", "evil.example").await;
        assert_eq!(location(&res), "https://shop.example/login");
        let res = get(app, "/", "[::1]:80").await;
        assert_eq!(location(&res), "https://shop.example/");
    }

    #[tokio::test]
    async fn a_challenge_under_way_is_answered_and_no_other() {
        let (app, challenges) = plain();
        challenges.insert("tok".into(), "tok.thumb".into());
        let res = get(
            app.clone(),
            "/.well-known/acme-challenge/tok",
            "shop.example",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"tok.thumb");
        let res = get(app, "/.well-known/acme-challenge/other", "shop.example").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
