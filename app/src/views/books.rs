//! A seller's pages: their books, and the form that adds or changes one.

use std::collections::HashMap;

use maud::{html, Markup};

use super::catalog::Money;
use super::forms::{csrf, error_box, Input};
use super::Chrome;
use crate::db::books::Book;

fn thumb(cover: Option<&str>) -> Markup {
    html! {
        @if let Some(c) = cover {
            img src={ "/covers/" (c) } alt="" class="img-thumbnail me-3 cover-thumb";
        }
    }
}

pub fn my_books(chrome: &Chrome, books: &[Book]) -> Markup {
    html! {
        p { a class="btn btn-primary" href="/book/add_book" { "Sell a book" } }
        table class="table align-middle" {
            thead { tr { th { "Book" } th { "Price" } th { "Stock" } th {} } }
            tbody {
                @for b in books {
                    tr {
                        td class="d-flex" {
                            (thumb(b.cover.as_deref()))
                            div { strong { (b.title) } br; (b.author) }
                        }
                        td { (Money(b.price_cents)) }
                        td { (b.stock) }
                        td class="d-flex gap-2" {
                            a class="btn btn-sm btn-outline-primary" href={ "/book/edit_book/" (b.id) } { "Edit" }
                            form method="post" action={ "/book/delete_book/" (b.id) } {
                                (csrf(&chrome.csrf))
                                button class="btn btn-sm btn-outline-danger" type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the book form shows in its fields.
#[derive(Default)]
pub struct Values<'a> {
    pub title: &'a str,
    pub author: &'a str,
    pub description: &'a str,
    pub price: &'a str,
    pub stock: &'a str,
    /// The stock the edit form was opened with: saving applies the change
    /// the seller made to it, not the number itself.
    pub stock_shown: Option<&'a str>,
}

impl<'a> Values<'a> {
    /// The fields as sent, for the form shown again.
    pub fn sent(f: &'a HashMap<String, String>) -> Self {
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        Values {
            title: get("title"),
            author: get("author"),
            description: get("description"),
            price: get("price"),
            stock: get("stock"),
            stock_shown: f.get("stock_shown").map(String::as_str),
        }
    }
}

/// The form that adds a book (to `/book/add_book`) or changes one.
pub struct BookForm<'a> {
    pub action: &'a str,
    pub submit: &'a str,
    pub values: Values<'a>,
    pub error: Option<&'a str>,
    /// The book's cover, shown above the form.
    pub cover: Option<&'a str>,
}

pub fn form(chrome: &Chrome, f: &BookForm<'_>) -> Markup {
    let v = &f.values;
    html! {
        (thumb(f.cover))
        (error_box(f.error))
        form method="post" action=(f.action) enctype="multipart/form-data" {
            (csrf(&chrome.csrf))
            @if let Some(shown) = v.stock_shown {
                input type="hidden" name="stock_shown" value=(shown);
            }
            (Input::new("Title", "title", "text", v.title).required().maxlength(200).render())
            (Input::new("Author", "author", "text", v.author).required().maxlength(200).render())
            div class="mb-3" {
                label class="form-label" for="description" { "Description" }
                textarea class="form-control" id="description" name="description" maxlength="2000" {
                    (v.description)
                }
            }
            (Input::new("Price", "price", "text", v.price).required().inputmode("decimal").render())
            (Input::new("Stock", "stock", "number", v.stock).required().min(0).render())
            div class="mb-3" {
                label class="form-label" for="cover" { "Cover (JPEG, PNG or WebP, at most 2 MB)" }
                input class="form-control" id="cover" name="cover" type="file"
                    accept="image/jpeg,image/png,image/webp";
            }
            button class="btn btn-primary" type="submit" { (f.submit) }
        }
    }
}
