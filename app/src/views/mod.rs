//! The site's HTML, written with maud: every value interpolated into a
//! template is escaped unless it is explicitly `PreEscaped`, and templates
//! are checked and compiled with the program (no template files to ship,
//! nothing parsed at run time).

pub mod account;
pub mod admin;
pub mod books;
pub mod catalog;
pub mod errors;
pub mod forms;
pub mod purchases;
pub mod tokens;

use axum::http::header::SET_COOKIE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::domain::User;

/// What the layout shows around every page: who is logged in, the token
/// for the logout form, and the flash message.
#[derive(Default)]
pub struct Chrome {
    pub user: Option<User>,
    pub csrf: String,
    pub flash: Option<String>,
}

/// A whole page in the site's layout.
pub fn layout(chrome: &Chrome, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Bookstore" }
                link rel="stylesheet" href=(crate::assets::bootstrap_url());
                link rel="stylesheet" href=(crate::assets::shop_url());
            }
            body {
                nav class="navbar navbar-expand navbar-dark bg-dark mb-4" {
                    div class="container" {
                        a class="navbar-brand" href="/" { "Bookstore" }
                        ul class="navbar-nav me-auto" {
                            li class="nav-item" { a class="nav-link" href="/book/catalog" { "Catalog" } }
                            @if chrome.user.is_some() {
                                li class="nav-item" { a class="nav-link" href="/book/my_books" { "My books" } }
                                li class="nav-item" { a class="nav-link" href="/purchases" { "My purchases" } }
                                li class="nav-item" { a class="nav-link" href="/book/add_book" { "Sell a book" } }
                                li class="nav-item" { a class="nav-link" href="/account/tokens" { "API tokens" } }
                            }
                            @if chrome.user.as_ref().is_some_and(|u| u.is_admin) {
                                li class="nav-item" { a class="nav-link" href="/admin/users" { "Users" } }
                            }
                        }
                        @match &chrome.user {
                            Some(u) => {
                                span class="navbar-text me-3" title=(u.email) { (u.name) }
                                // Logging out is a form (a link would let any
                                // site log users out); its button has no type,
                                // so `button[type=submit]` is the page's own.
                                form method="post" action="/logout" class="d-inline" {
                                    (forms::csrf(&chrome.csrf))
                                    button class="btn btn-outline-light btn-sm" { "Log out" }
                                }
                            }
                            None => {
                                a class="btn btn-outline-light btn-sm me-2" href="/login" { "Log in" }
                                a class="btn btn-light btn-sm" href="/register" { "Register" }
                            }
                        }
                    }
                }
                main class="container" {
                    @if let Some(f) = &chrome.flash {
                        div class="alert alert-info" role="alert" { (f) }
                    }
                    h1 class="h3 mb-3" { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page as a response.
pub fn page(chrome: &Chrome, title: &str, body: Markup) -> Response {
    layout(chrome, title, body).into_response()
}

/// A page as a response that also sets a cookie (a new session).
pub fn page_with_cookie(
    chrome: &Chrome,
    title: &str,
    body: Markup,
    cookie: Option<HeaderValue>,
) -> Response {
    let mut r = page(chrome, title, body);
    if let Some(c) = cookie {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

/// A redirect after a form (303: the browser follows it with a GET).
pub fn redirect(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}
