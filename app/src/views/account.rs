//! The home page, and the registration and login forms.

use maud::{html, Markup};

use super::forms::{self, Input};
use crate::domain::User;

pub fn home(user: Option<&User>) -> Markup {
    html! {
        p class="lead" { "Books from readers, for readers." }
        div class="d-flex gap-2" {
            a class="btn btn-primary" href="/book/catalog" { "Browse the catalog" }
            @if user.is_some() {
                a class="btn btn-outline-secondary" href="/book/my_books" { "My books" }
            }
            @if user.is_some_and(|u| u.is_admin) {
                a class="btn btn-outline-secondary" href="/admin/users" { "Users" }
            }
        }
    }
}

/// The registration form, with what was typed (never the password).
pub fn register_form(csrf: &str, name: &str, email: &str, error: Option<&str>) -> Markup {
    html! {
        (forms::error_box(error))
        form method="post" action="/register" {
            (forms::csrf(csrf))
            (Input::new("Name", "name", "text", name).required().maxlength(100).render())
            (Input::new("Email", "email", "email", email).required().maxlength(254).render())
            (Input::new("Password", "password", "password", "")
                .required()
                .minlength(8)
                .maxlength(128)
                .render())
            button class="btn btn-primary" type="submit" { "Register" }
        }
        p class="mt-3" { "Already registered? " a href="/login" { "Log in" } "." }
    }
}

/// The login form, with the email typed (never the password).
pub fn login_form(csrf: &str, email: &str, error: Option<&str>) -> Markup {
    html! {
        (forms::error_box(error))
        form method="post" action="/login" {
            (forms::csrf(csrf))
            (Input::new("Email", "email", "email", email).required().render())
            (Input::new("Password", "password", "password", "").required().render())
            button class="btn btn-primary" type="submit" { "Log in" }
        }
        p class="mt-3" { "No account? " a href="/register" { "Register" } "." }
    }
}

/// How long to wait, as a sentence ends: "40 seconds", "15 minutes".
pub fn wait_text(secs: u64) -> String {
    if secs < 120 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", secs.div_ceil(60))
    }
}
