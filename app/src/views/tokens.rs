//! The account's API tokens: the list, the form for a new one, and a new
//! token shown once.

use maud::{html, Markup};

use super::forms::{self, Input};
use crate::db::tokens::TokenRow;
use crate::domain::Scope;

/// A Unix time as `2026-12-07 03:04 UTC`.
pub fn when(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// What the page shows besides the list.
pub struct TokenPage<'a> {
    pub csrf: &'a str,
    pub tokens: &'a [TokenRow],
    pub now: i64,
    pub admin: bool,
    /// A token just made: shown this once.
    pub made: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The name typed, when the form comes back.
    pub name: &'a str,
}

pub fn page(p: &TokenPage<'_>) -> Markup {
    html! {
        @if let Some(t) = p.made {
            div class="alert alert-success" role="alert" {
                p { "Your new token — copy it now, it is not shown again:" }
                code class="user-select-all fs-6" id="new-token" { (t) }
            }
        }
        p {
            "Programs use a token in the header " code { "Authorization: Bearer <token>" }
            " of the shop's API (" a href="/api/openapi.json" { "its OpenAPI document" } ")."
        }
        @if p.tokens.is_empty() {
            p class="text-muted" { "You have no tokens." }
        } @else {
            table class="table" {
                thead { tr { th { "Name" } th { "Token" } th { "Scopes" } th { "Expires" } th { "Last used" } th {} } }
                tbody {
                    @for t in p.tokens {
                        tr {
                            td { (t.name) }
                            td { code { (t.prefix) "…" } }
                            td { (t.scopes.stored()) }
                            td {
                                (when(t.expires_at))
                                @if t.expires_at <= p.now { " " span class="badge text-bg-secondary" { "expired" } }
                            }
                            td { @match t.last_used_at { Some(u) => { (when(u)) } None => { "never" } } }
                            td {
                                form method="post" action={ "/account/tokens/" (t.id) "/revoke" } {
                                    (forms::csrf(p.csrf))
                                    button class="btn btn-outline-danger btn-sm" type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 class="h5 mt-4" { "New token" }
        (forms::error_box(p.error))
        form method="post" action="/account/tokens" {
            (forms::csrf(p.csrf))
            (Input::new("Name", "name", "text", p.name).required().maxlength(100).render())
            fieldset class="mb-3" {
                legend class="form-label fs-6" { "Scopes" }
                @for s in Scope::ALL {
                    @if s != Scope::Admin || p.admin {
                        div class="form-check form-check-inline" {
                            input class="form-check-input" type="checkbox" id={ "scope_" (s.as_str()) }
                                name={ "scope_" (s.as_str()) } value="on" checked[s == Scope::Read];
                            label class="form-check-label" for={ "scope_" (s.as_str()) } { (s.as_str()) }
                        }
                    }
                }
            }
            div class="mb-3" {
                label class="form-label" for="expires_in_days" { "Expires in" }
                select class="form-select" id="expires_in_days" name="expires_in_days" {
                    @for d in [7, 30, 90, 365] {
                        option value=(d) selected[d == 30] { (d) " days" }
                    }
                }
            }
            button class="btn btn-primary" type="submit" { "Make the token" }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::when(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::when(1_796_612_640), "2026-12-07 03:04 UTC");
    }
}
