//! A buyer's purchases, and the payment and delivery pages of one.

use maud::{html, Markup};

use super::forms;
use crate::db::delivery::Provider;
use crate::db::purchases::Purchase;
use crate::domain::{Price, PurchaseStatus};

/// The payment methods offered: the value sent, and the label shown.
pub const PAYMENT_METHODS: [(&str, &str); 3] = [
    ("card", "Card"),
    ("transfer", "Bank transfer"),
    ("cash", "Cash on delivery"),
];

/// The status as the buyer reads it: with the provider once shipping.
fn status_label(p: &Purchase) -> Markup {
    html! {
        @match (p.status, &p.provider) {
            (PurchaseStatus::Shipping, Some(name)) => { "Shipping with " (name) }
            (s, _) => { (s.as_str()) }
        }
    }
}

/// How long an unpaid purchase still holds its copies, as read: "14 min
/// left", "40 s left".
pub fn time_left(p: &Purchase, now: i64) -> String {
    let left = p.reserved_until.map_or(0, |t| (t - now).max(0));
    if left >= 60 {
        format!("{} min left to pay", (left + 59) / 60)
    } else {
        format!("{left} s left to pay")
    }
}

pub fn list(csrf: &str, purchases: &[Purchase], now: i64) -> Markup {
    html! {
        table class="table" {
            thead {
                tr { th { "#" } th { "Book" } th { "Quantity" } th { "Total" } th { "Status" } th {} }
            }
            tbody {
                @for p in purchases {
                    tr {
                        td { (p.id) }
                        td { (p.book_title) }
                        td { (p.quantity) }
                        td { (Price::from_cents(p.total_cents)) }
                        td { (status_label(p)) }
                        td {
                            @match p.status {
                                PurchaseStatus::PendingPayment => {
                                    a href={ "/payment/" (p.id) } { "Pay" }
                                    " "
                                    span class="text-muted small" { "(" (time_left(p, now)) ")" }
                                    form method="post" action={ "/purchases/" (p.id) "/cancel" } class="d-inline ms-2" {
                                        (forms::csrf(csrf))
                                        button class="btn btn-link btn-sm p-0 align-baseline" type="submit" { "Cancel" }
                                    }
                                }
                                PurchaseStatus::Paid => {
                                    a href={ "/delivery/" (p.id) } { "Choose delivery" }
                                }
                                PurchaseStatus::Expired => {
                                    span class="text-muted small" { "Not paid in time; the copies went back on sale." }
                                }
                                PurchaseStatus::Cancelled => {
                                    span class="text-muted small" { "Cancelled; the copies went back on sale." }
                                }
                                PurchaseStatus::Shipping => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn payment(csrf: &str, p: &Purchase, now: i64) -> Markup {
    let total = Price::from_cents(p.total_cents);
    html! {
        p { (p.quantity) " × “" (p.book_title) "”" }
        p class="text-muted" { "The copies are held for you: " (time_left(p, now)) "." }
        p class="fs-4" { "Total: " strong { (total) } }
        form method="post" action={ "/payment/" (p.id) } {
            (forms::csrf(csrf))
            div class="mb-3" {
                label class="form-label" for="payment_method" { "Payment method" }
                select class="form-select" id="payment_method" name="payment_method" {
                    @for (value, label) in PAYMENT_METHODS {
                        option value=(value) { (label) }
                    }
                }
            }
            button class="btn btn-success" type="submit" { "Pay " (total) }
        }
    }
}

/// The delivery of a purchase whose provider is chosen.
pub fn shipping(p: &Purchase, provider: &str) -> Markup {
    html! {
        p { "“" (p.book_title) "” ships with " strong { (provider) } "." }
        p { a href="/purchases" { "My purchases" } }
    }
}

/// The choice of a provider for a paid purchase.
pub fn choose_provider(csrf: &str, p: &Purchase, providers: &[Provider]) -> Markup {
    html! {
        p { "Choose a delivery provider for “" (p.book_title) "”." }
        form method="post" action={ "/delivery/" (p.id) } {
            (forms::csrf(csrf))
            @for d in providers {
                div class="form-check" {
                    input class="form-check-input" type="radio" name="provider_id" id={ "p" (d.id) }
                        value=(d.id) required;
                    label class="form-check-label" for={ "p" (d.id) } {
                        (d.name) " (" (d.coverage_area) ") — " (Price::from_cents(d.cost_cents))
                    }
                }
            }
            button class="btn btn-primary mt-3" type="submit" { "Confirm delivery" }
        }
    }
}
