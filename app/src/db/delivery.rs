//! The `delivery_providers` and `delivery_assignments` tables.

use super::Db;
use crate::domain::PurchaseStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Provider {
    pub id: i64,
    pub name: String,
    pub coverage_area: String,
    pub cost_cents: i64,
}

/// Every provider, in the order they were added.
pub async fn providers(db: &Db) -> Result<Vec<Provider>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, coverage_area, cost_cents FROM delivery_providers ORDER BY id")
        .fetch_all(&db.pool())
        .await
}

pub async fn provider(db: &Db, id: i64) -> Result<Option<Provider>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, coverage_area, cost_cents FROM delivery_providers WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&db.pool())
    .await
}

/// Has `provider_id` deliver a paid purchase and marks it shipping, in one
/// transaction. `false` when the purchase already had a provider (the
/// first choice stays) or was not paid: then nothing changes.
pub async fn assign(db: &Db, purchase_id: i64, provider_id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let shipped = sqlx::query("UPDATE purchases SET status = ? WHERE id = ? AND status = ?")
        .bind(PurchaseStatus::Shipping.as_str())
        .bind(purchase_id)
        .bind(PurchaseStatus::Paid.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if shipped != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    let res =
        sqlx::query("INSERT INTO delivery_assignments (purchase_id, provider_id) VALUES (?, ?)")
            .bind(purchase_id)
            .bind(provider_id)
            .execute(&mut *tx)
            .await;
    super::commit_unless_duplicate(tx, res).await
}
