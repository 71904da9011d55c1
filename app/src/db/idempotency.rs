//! The `idempotency_keys` table: the first answer to a request sent with
//! an `Idempotency-Key`, per user and key. The row is inserted in the
//! transaction that does the work and holds its answer when that commits,
//! so a row found is always a finished request, and the primary key makes
//! a second request with the same key wait for the first, then fail.

use sqlx::{Any, Row, Transaction};

use super::{now, Db};

/// A finished request, as stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
    pub created_at: i64,
}

/// Claims `key` for `uid` in `tx`. `false`: another request holds it (the
/// caller rolls back and reads what it stored).
pub async fn claim(
    tx: &mut Transaction<'static, Any>,
    uid: i64,
    key: &str,
    request_hash: &str,
) -> Result<bool, sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, body, created_at) \
         VALUES (?, ?, ?, 0, '', ?)",
    )
    .bind(uid)
    .bind(key)
    .bind(request_hash)
    .bind(now())
    .execute(&mut **tx)
    .await;
    match res {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores the answer of the request that claimed `key`, in its transaction.
pub async fn finish(
    tx: &mut Transaction<'static, Any>,
    uid: i64,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = ?, body = ? WHERE user_id = ? AND idem_key = ?",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(uid)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn find(db: &Db, uid: i64, key: &str) -> Result<Option<Stored>, sqlx::Error> {
    let r = sqlx::query(
        "SELECT request_hash, status, body, created_at FROM idempotency_keys \
         WHERE user_id = ? AND idem_key = ?",
    )
    .bind(uid)
    .bind(key)
    .fetch_optional(&db.pool())
    .await?;
    r.map(|r| {
        Ok(Stored {
            request_hash: r.try_get(0)?,
            status: r.try_get(1)?,
            body: r.try_get(2)?,
            created_at: r.try_get(3)?,
        })
    })
    .transpose()
}

/// Forgets one key if it was stored before `before` (it has expired).
pub async fn forget_if_older(
    db: &Db,
    uid: i64,
    key: &str,
    before: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ? AND created_at < ?",
    )
    .bind(uid)
    .bind(key)
    .bind(before)
    .execute(&db.pool())
    .await?
    .rows_affected())
}

/// Forgets every key stored before `before`.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(before)
            .execute(&db.pool())
            .await?
            .rows_affected(),
    )
}
