//! Unpaid purchases hold their copies until `reserved_until`; then they
//! expire and the copies return to the book's stock. The buyer may also
//! cancel one. Expiry, cancelling and payment are each one conditional
//! update of the purchase's row (`status` still unpaid, and the time on
//! the right side of `reserved_until`) in the transaction that moves the
//! stock, so the database decides which one happens, once: a copy is
//! paid for or returned, never both, whatever the instances and timing.

use std::time::Duration;

use sqlx::{Any, Transaction};

use super::{now, retrying, Db};
use crate::domain::PurchaseStatus;

/// Whose reservations to look at.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every purchase (the sweep).
    All,
    /// One buyer's.
    User(i64),
    /// One book's.
    Book(i64),
    /// One purchase.
    Purchase(i64),
}

/// Purchases expired per call at most; the rest wait for the next one.
const BATCH: i64 = 500;

/// Expires the unpaid purchases of `scope` whose time is over, each in a
/// transaction of its own that returns its copies. The number expired
/// (here: another request may have expired or paid some first).
/// A purchase the previous release wrote without `reserved_until` gets
/// `hold` from its creation first.
pub async fn expire_due(db: &Db, hold: Duration, scope: Scope) -> Result<u64, sqlx::Error> {
    let now = now();
    let pending = PurchaseStatus::PendingPayment.as_str();
    if matches!(scope, Scope::All) {
        sqlx::query(
            "UPDATE purchases SET reserved_until = created_at + ? \
             WHERE status = ? AND reserved_until IS NULL",
        )
        .bind(hold.as_secs() as i64)
        .bind(pending)
        .execute(&db.pool())
        .await?;
    }
    let (cond, id) = match scope {
        Scope::All => ("1 = ?", 1),
        Scope::User(u) => ("user_id = ?", u),
        Scope::Book(b) => ("book_id = ?", b),
        Scope::Purchase(p) => ("id = ?", p),
    };
    let due: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM purchases WHERE {cond} AND status = ? \
         AND reserved_until IS NOT NULL AND reserved_until <= ? LIMIT {BATCH}"
    ))
    .bind(id)
    .bind(pending)
    .bind(now)
    .fetch_all(&db.pool())
    .await?;
    let mut expired = 0;
    for p in due {
        if retrying(db, || end(db, p, None, now)).await? {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Cancels `uid`'s unpaid purchase and returns its copies; `false` when
/// it was not unpaid (paid, expired or cancelled meanwhile) or not theirs.
pub async fn cancel(db: &Db, purchase_id: i64, uid: i64) -> Result<bool, sqlx::Error> {
    retrying(db, || end(db, purchase_id, Some(uid), now())).await
}

/// Ends an unpaid purchase: cancelled by its buyer `uid`, or (without
/// one) expired when its time is over at `now`. The status changes only
/// if it is still unpaid, and only then do the copies return.
async fn end(db: &Db, id: i64, uid: Option<i64>, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let pending = PurchaseStatus::PendingPayment.as_str();
    let changed = match uid {
        Some(uid) => sqlx::query(
            "UPDATE purchases SET status = ? WHERE id = ? AND user_id = ? AND status = ?",
        )
        .bind(PurchaseStatus::Cancelled.as_str())
        .bind(id)
        .bind(uid)
        .bind(pending),
        None => sqlx::query(
            "UPDATE purchases SET status = ? WHERE id = ? AND status = ? \
             AND reserved_until IS NOT NULL AND reserved_until <= ?",
        )
        .bind(PurchaseStatus::Expired.as_str())
        .bind(id)
        .bind(pending)
        .bind(now),
    }
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    give_back(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Returns a purchase's copies to its book's stock, in `tx`.
async fn give_back(tx: &mut Transaction<'static, Any>, id: i64) -> Result<(), sqlx::Error> {
    let (book, qty): (i64, i64) =
        sqlx::query_as("SELECT book_id, quantity FROM purchases WHERE id = ?")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query("UPDATE books SET stock = stock + ? WHERE id = ?")
        .bind(qty)
        .bind(book)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
