//! The administrators' pages.

use maud::{html, Markup};

use crate::db::users::UserRow;

pub fn users(list: &[UserRow]) -> Markup {
    html! {
        table class="table" {
            thead {
                tr { th { "#" } th { "Name" } th { "Email" } th { "Role" } }
            }
            tbody {
                @for u in list {
                    tr {
                        td { (u.id) }
                        td { (u.name) }
                        td { (u.email) }
                        td { @if u.is_admin != 0 { "admin" } }
                    }
                }
            }
        }
    }
}
