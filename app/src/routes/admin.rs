//! The administrators' pages.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::db::users;
use crate::error::AppError;
use crate::extract::RequireAdmin;
use crate::session::Ctx;
use crate::state::S;
use crate::views::{self, Chrome};

pub fn router() -> Router<S> {
    Router::new().route("/admin/users", get(users_page))
}

async fn users_page(
    State(st): State<S>,
    RequireAdmin(_): RequireAdmin,
    mut ctx: Ctx,
) -> Result<Response, AppError> {
    let list = users::list(&st.db).await?;
    let chrome = Chrome::take(&st, &mut ctx).await?;
    Ok(views::page(&chrome, "Users", views::admin::users(&list)))
}
