//! The `purchases` and `payments` tables.

use sqlx::{Any, Transaction};

use super::{last_insert_id, now, Backend, Db};
use crate::domain::{PurchaseStatus, Reservations};

/// A purchase as its buyer sees it: the book's title, and the delivery
/// provider once one is chosen.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub id: i64,
    pub book_title: String,
    pub quantity: i64,
    pub total_cents: i64,
    pub status: PurchaseStatus,
    pub provider: Option<String>,
    pub user_id: i64,
    /// Until when an unpaid purchase holds its copies (Unix seconds).
    pub reserved_until: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct PurchaseRow {
    id: i64,
    book_title: String,
    quantity: i64,
    total_cents: i64,
    status: String,
    provider: Option<String>,
    user_id: i64,
    reserved_until: Option<i64>,
}

impl From<PurchaseRow> for Purchase {
    fn from(r: PurchaseRow) -> Purchase {
        Purchase {
            id: r.id,
            book_title: r.book_title,
            quantity: r.quantity,
            total_cents: r.total_cents,
            status: PurchaseStatus::parse(&r.status),
            provider: r.provider,
            user_id: r.user_id,
            reserved_until: r.reserved_until,
        }
    }
}

const PURCHASE_SQL: &str = "SELECT p.id AS id, b.title AS book_title, p.quantity AS quantity, \
     p.total_cents AS total_cents, p.status AS status, d.name AS provider, p.user_id AS user_id, \
     p.reserved_until AS reserved_until \
     FROM purchases p JOIN books b ON b.id = p.book_id \
     LEFT JOIN delivery_assignments a ON a.purchase_id = p.id \
     LEFT JOIN delivery_providers d ON d.id = a.provider_id";

/// `uid`'s purchases, newest first.
pub async fn for_user(db: &Db, uid: i64) -> Result<Vec<Purchase>, sqlx::Error> {
    let rows: Vec<PurchaseRow> = sqlx::query_as(&format!(
        "{PURCHASE_SQL} WHERE p.user_id = ? ORDER BY p.id DESC"
    ))
    .bind(uid)
    .fetch_all(&db.pool())
    .await?;
    Ok(rows.into_iter().map(Purchase::from).collect())
}

/// One purchase, read in `tx` (one it has just recorded included).
pub async fn find_in(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<Option<Purchase>, sqlx::Error> {
    let row: Option<PurchaseRow> = sqlx::query_as(&format!("{PURCHASE_SQL} WHERE p.id = ?"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(Purchase::from))
}

/// One purchase, whoever it belongs to.
pub async fn find(db: &Db, id: i64) -> Result<Option<Purchase>, sqlx::Error> {
    let row: Option<PurchaseRow> = sqlx::query_as(&format!("{PURCHASE_SQL} WHERE p.id = ?"))
        .bind(id)
        .fetch_optional(&db.pool())
        .await?;
    Ok(row.map(Purchase::from))
}

/// What an attempt to buy came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bought {
    /// The new purchase's id.
    Recorded(i64),
    /// The book has fewer copies than asked for.
    NotEnough,
    /// The book does not exist (any more).
    Gone,
    /// The buyer has as many unpaid purchases as allowed.
    TooManyPurchases,
    /// The buyer's unpaid purchases would hold more copies than allowed.
    TooManyCopies,
}

/// Takes `qty` copies of `book_id` and records the purchase, unpaid and
/// holding them until `limits.hold` from now, in one transaction: the
/// stock decrement is conditional, so concurrent buyers never oversell,
/// and the price comes from the database. The buyer's row is locked
/// first, so their purchases at once are counted one after the other
/// against `limits`.
pub async fn take_and_record(
    db: &Db,
    uid: i64,
    book_id: i64,
    qty: i64,
    limits: Reservations,
) -> Result<Bought, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let bought = take_and_record_in(&mut tx, db.backend, uid, book_id, qty, limits).await?;
    match bought {
        Bought::Recorded(_) => tx.commit().await?,
        _ => tx.rollback().await?,
    }
    Ok(bought)
}

/// [`take_and_record`] in the caller's transaction, which commits it only
/// when it answers `Recorded` (and rolls it back otherwise). The buyer's
/// row is locked first, so their purchases at once are counted one after
/// the other against `limits`, whether they came from a form or the API.
pub async fn take_and_record_in(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    uid: i64,
    book_id: i64,
    qty: i64,
    limits: Reservations,
) -> Result<Bought, sqlx::Error> {
    sqlx::query("UPDATE users SET is_admin = is_admin WHERE id = ?")
        .bind(uid)
        .execute(&mut **tx)
        .await?;
    let (held, copies): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM purchases \
         WHERE user_id = ? AND status = ?",
    )
    .bind(uid)
    .bind(PurchaseStatus::PendingPayment.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if held >= limits.max_purchases {
        return Ok(Bought::TooManyPurchases);
    }
    if copies + qty > limits.max_copies {
        return Ok(Bought::TooManyCopies);
    }
    let taken = sqlx::query("UPDATE books SET stock = stock - ? WHERE id = ? AND stock >= ?")
        .bind(qty)
        .bind(book_id)
        .bind(qty)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if taken != 1 {
        // Which one: the book is gone, or it has too few copies.
        let exists = sqlx::query_scalar::<_, i64>("SELECT 1 FROM books WHERE id = ?")
            .bind(book_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        return Ok(if exists {
            Bought::NotEnough
        } else {
            Bought::Gone
        });
    }
    let price: Option<i64> = sqlx::query_scalar("SELECT price_cents FROM books WHERE id = ?")
        .bind(book_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(price) = price else {
        return Ok(Bought::Gone);
    };
    let now = now();
    let inserted = sqlx::query(
        "INSERT INTO purchases (user_id, book_id, quantity, total_cents, status, created_at, reserved_until) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(uid)
    .bind(book_id)
    .bind(qty)
    .bind(price * qty)
    .bind(PurchaseStatus::PendingPayment.as_str())
    .bind(now)
    .bind(now + limits.hold.as_secs() as i64)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
            return Ok(Bought::Gone);
        }
        Err(e) => return Err(e),
    }
    let id = last_insert_id(backend, tx).await?;
    Ok(Bought::Recorded(id))
}

/// Marks a pending purchase paid and records its payment of `amount_cents`,
/// in one transaction. `false` when it was not pending (already paid,
/// cancelled or expired) or its reservation is over: then nothing is
/// recorded. The condition is the database's, so a payment and the
/// purchase's expiry never both happen.
pub async fn pay(
    db: &Db,
    purchase_id: i64,
    amount_cents: i64,
    method: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    if pay_in(&mut tx, purchase_id, amount_cents, method).await? {
        tx.commit().await?;
        Ok(true)
    } else {
        tx.rollback().await?;
        Ok(false)
    }
}

/// [`pay`] in the caller's transaction, which commits it only when it
/// answers `true` (and rolls it back otherwise). The reservation's end is
/// compared by the database, so a payment and the purchase's expiry never
/// both happen, whether the payment came from a form or the API.
pub async fn pay_in(
    tx: &mut Transaction<'static, Any>,
    purchase_id: i64,
    amount_cents: i64,
    method: &str,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE purchases SET status = ? WHERE id = ? AND status = ? \
         AND (reserved_until IS NULL OR reserved_until > ?)",
    )
    .bind(PurchaseStatus::Paid.as_str())
    .bind(purchase_id)
    .bind(PurchaseStatus::PendingPayment.as_str())
    .bind(now())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Ok(false);
    }
    let res = sqlx::query(
        "INSERT INTO payments (purchase_id, amount_cents, payment_method, payment_status, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(purchase_id)
    .bind(amount_cents)
    .bind(method)
    .bind(PurchaseStatus::Paid.as_str())
    .bind(now())
    .execute(&mut **tx)
    .await;
    match res {
        Ok(_) => Ok(true),
        // Paid by another request first.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}
