//! Pieces every form uses.

use maud::{html, Markup};

/// The hidden field carrying the session's CSRF token.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// The form's error, above it.
pub fn error_box(e: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = e {
            div class="alert alert-danger" role="alert" { (e) }
        }
    }
}

/// A labelled input.
pub struct Input<'a> {
    pub label: &'a str,
    pub name: &'a str,
    pub value: &'a str,
    pub kind: &'a str,
    pub required: bool,
    pub minlength: Option<u32>,
    pub maxlength: Option<u32>,
    pub min: Option<i64>,
    pub inputmode: Option<&'a str>,
}

impl<'a> Input<'a> {
    pub fn new(label: &'a str, name: &'a str, kind: &'a str, value: &'a str) -> Self {
        Input {
            label,
            name,
            value,
            kind,
            required: false,
            minlength: None,
            maxlength: None,
            min: None,
            inputmode: None,
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn maxlength(mut self, n: u32) -> Self {
        self.maxlength = Some(n);
        self
    }

    pub fn minlength(mut self, n: u32) -> Self {
        self.minlength = Some(n);
        self
    }

    pub fn min(mut self, n: i64) -> Self {
        self.min = Some(n);
        self
    }

    pub fn inputmode(mut self, m: &'a str) -> Self {
        self.inputmode = Some(m);
        self
    }

    pub fn render(&self) -> Markup {
        html! {
            div class="mb-3" {
                label class="form-label" for=(self.name) { (self.label) }
                input class="form-control" id=(self.name) name=(self.name) type=(self.kind)
                    value=(self.value) required[self.required] minlength=[self.minlength]
                    maxlength=[self.maxlength] min=[self.min] inputmode=[self.inputmode];
            }
        }
    }
}
