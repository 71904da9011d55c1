//! The page every error answers with.

use maud::html;

use super::{layout, Chrome};

pub fn page(title: &str, message: &str) -> maud::Markup {
    layout(
        &Chrome::default(),
        title,
        html! {
            p { (message) }
            p { a href="/" { "Back to the shop" } }
        },
    )
}
