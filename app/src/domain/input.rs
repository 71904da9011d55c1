//! What a form or a JSON body asks for, checked field by field: the site's
//! forms show the messages joined into one sentence, the API names each
//! field. One function per kind of input, used by both.

use super::{count, password, text, Email, Invalid, Price};

/// One field's problem: the field's name as sent, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Every problem with an input, in the order of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invalids(pub Vec<FieldError>);

impl Invalids {
    pub fn one(field: &'static str, message: impl Into<String>) -> Invalids {
        Invalids(vec![FieldError {
            field,
            message: message.into(),
        }])
    }

    /// The messages as one sentence, as the forms show them.
    pub fn sentence(&self) -> String {
        self.0
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn check<T>(&mut self, field: &'static str, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Invalid(message)) => {
                self.0.push(FieldError { field, message });
                None
            }
        }
    }
}

/// A book as a seller describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookInput {
    pub title: String,
    pub author: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// The most copies a book may have.
pub const MAX_STOCK: i64 = 1_000_000;

/// A seller's book as sent: each field as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct BookFields<'a> {
    pub title: Option<&'a str>,
    pub author: Option<&'a str>,
    pub description: Option<&'a str>,
    pub price: Option<&'a str>,
    pub stock: Option<&'a str>,
}

pub fn book(f: BookFields<'_>) -> Result<BookInput, Invalids> {
    let mut bad = Invalids::default();
    let title = bad.check("title", text("Title", f.title, 1, 200));
    let author = bad.check("author", text("Author", f.author, 1, 200));
    let description = bad.check("description", text("Description", f.description, 0, 2000));
    let price = bad.check("price", Price::parse(f.price));
    let stock = bad.check("stock", count("Stock", f.stock, 0, MAX_STOCK));
    match (title, author, description, price, stock) {
        (Some(title), Some(author), Some(description), Some(price), Some(stock)) => Ok(BookInput {
            title,
            author,
            description,
            price_cents: price.cents(),
            stock,
        }),
        _ => Err(bad),
    }
}

/// The stock an edit form showed (its stale-edit protection): the change
/// is applied to the stock as it is now. `Err` is the form's message.
pub fn stock_shown(value: &str) -> Result<i64, Invalids> {
    match value.trim().parse::<i64>() {
        Ok(shown) if (0..=MAX_STOCK).contains(&shown) => Ok(shown),
        _ => Err(Invalids::one(
            "stock_shown",
            "The form is damaged: reload the page and try again.",
        )),
    }
}

/// A new account: name, email and password as typed.
pub fn registration(
    name: Option<&str>,
    email: Option<&str>,
    pw: Option<&str>,
) -> Result<(String, Email, String), Invalids> {
    let mut bad = Invalids::default();
    let name = bad.check("name", text("Name", name, 1, 100));
    let email = bad.check("email", Email::parse(email));
    let pw = bad.check("password", password(pw));
    match (name, email, pw) {
        (Some(n), Some(e), Some(p)) => Ok((n, e, p)),
        _ => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_named_and_the_sentence_keeps_the_forms_order() {
        let e = book(BookFields {
            title: Some(""),
            price: Some("-3"),
            stock: Some("x"),
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field).collect();
        assert_eq!(fields, ["title", "author", "price", "stock"]);
        assert_eq!(
            e.sentence(),
            "Title is required. Author is required. Price cannot be negative. \
             Stock must be a whole number."
        );
        let ok = book(BookFields {
            title: Some(" Dune "),
            author: Some("Herbert"),
            description: None,
            price: Some("12.5"),
            stock: Some("3"),
        })
        .unwrap();
        assert_eq!(
            (ok.title.as_str(), ok.price_cents, ok.stock),
            ("Dune", 1250, 3)
        );
        assert!(stock_shown("-1").is_err());
        assert_eq!(stock_shown(" 4 "), Ok(4));
        let r = registration(Some("A"), Some("nope"), Some("short")).unwrap_err();
        assert_eq!(r.0.len(), 2);
        assert_eq!(r.0[0].field, "email");
    }
}
