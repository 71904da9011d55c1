//! The catalog page.

use std::fmt;

use maud::{html, Markup};

use super::Chrome;
use crate::db::books::{CatalogPage, MAX_PAGE, PAGE_SIZE};

/// Cents as `12.50`, written straight into the page.
pub struct Money(pub i64);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// `&q=<text>` for the page links of a search (nothing without one),
/// URL-encoded; the template escapes it for the attribute.
struct SearchParam<'a>(&'a str);

impl fmt::Display for SearchParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("&q=")?;
        for piece in url::form_urlencoded::byte_serialize(self.0.as_bytes()) {
            f.write_str(piece)?;
        }
        Ok(())
    }
}

pub fn body(chrome: &Chrome, c: &CatalogPage) -> Markup {
    let q = SearchParam(&c.text);
    html! {
        form class="mb-3 d-flex gap-2" method="get" action="/book/catalog" {
            input class="form-control" name="q" placeholder="Title or author" value=(c.text);
            button class="btn btn-outline-primary" { "Search" }
        }
        table class="table align-middle" {
            thead { tr { th { "Book" } th { "Price" } th { "Stock" } th {} } }
            tbody {
                @for b in &c.books {
                    tr {
                        td class="d-flex" {
                            @if let Some(cover) = &b.cover {
                                img src={ "/covers/" (cover) } alt="" class="img-thumbnail me-3 cover-thumb";
                            }
                            div { strong { (b.title) } br; span class="text-muted" { (b.author) } }
                        }
                        td { (Money(b.price_cents)) }
                        td { (b.stock) }
                        td {
                            @if chrome.user.is_none() {
                                a href="/login" class="btn btn-sm btn-outline-primary" { "Log in to buy" }
                            } @else if b.stock > 0 {
                                form method="post" action={ "/buy/" (b.id) } class="d-flex gap-2" {
                                    input type="hidden" name="csrf_token" value=(chrome.csrf);
                                    input class="form-control form-control-sm qty-input" name="quantity"
                                        type="number" min="1" max=(b.stock.min(100)) value="1";
                                    button class="btn btn-sm btn-success" type="submit" { "Buy" }
                                }
                            } @else {
                                span class="badge bg-secondary" { "Sold out" }
                            }
                        }
                    }
                }
            }
        }
        div class="d-flex gap-2 align-items-center" {
            @if c.page > 1 {
                a class="btn btn-outline-secondary btn-sm" href={ "/book/catalog?page=" (c.page - 1) (q) } { "Previous" }
            }
            span {
                @if c.total_exact {
                    "Page " (c.page) " of " (((c.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1))
                    " (" (c.total) " books)"
                } @else {
                    "Page " (c.page) " (more than " (c.total) " books)"
                }
            }
            @if c.has_next && c.page < MAX_PAGE {
                a class="btn btn-outline-secondary btn-sm" href={ "/book/catalog?page=" (c.page + 1) (q) } { "Next" }
            }
        }
    }
}
