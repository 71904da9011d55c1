//! The `api_tokens` table: a program's credentials, stored as the SHA-256
//! of the token (which is shown once, when it is made).

use sqlx::Row;

use super::{last_insert_id, now, Db};
use crate::domain::{Scopes, User};

/// A token as its owner sees it in a list (never the token itself).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

/// A token presented with a request, found valid.
#[derive(Debug, Clone)]
pub struct Presented {
    pub id: i64,
    pub user: User,
    /// As granted; the admin scope counts only while the user is an admin.
    pub scopes: Scopes,
    pub last_used_at: Option<i64>,
}

/// What an attempt to make a token came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// The new token's id.
    Created(i64),
    /// The user has `cap` live tokens already.
    TooMany,
}

/// A new token for `uid`, unless the user already has `cap` live ones
/// (neither revoked nor expired). The user's row is locked meanwhile, so
/// requests at once cannot pass the cap together.
#[allow(clippy::too_many_arguments)]
pub async fn insert_capped(
    db: &Db,
    uid: i64,
    name: &str,
    hash: &str,
    prefix: &str,
    scopes: Scopes,
    expires_at: i64,
    cap: i64,
) -> Result<Issued, sqlx::Error> {
    let now = now();
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE users SET is_admin = is_admin WHERE id = ?")
        .bind(uid)
        .execute(&mut *tx)
        .await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(uid)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if live >= cap {
        tx.rollback().await?;
        return Ok(Issued::TooMany);
    }
    sqlx::query(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scopes, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(uid)
    .bind(name)
    .bind(hash)
    .bind(prefix)
    .bind(scopes.stored())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    let id = last_insert_id(db.backend, &mut tx).await?;
    tx.commit().await?;
    Ok(Issued::Created(id))
}

/// `uid`'s tokens that are not revoked (expired ones included), newest first.
pub async fn list(db: &Db, uid: i64) -> Result<Vec<TokenRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at FROM api_tokens \
         WHERE user_id = ? AND revoked_at IS NULL ORDER BY id DESC",
    )
    .bind(uid)
    .fetch_all(&db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenRow {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                prefix: r.try_get(2)?,
                scopes: Scopes::parse_stored(&r.try_get::<String, _>(3)?),
                created_at: r.try_get(4)?,
                expires_at: r.try_get(5)?,
                last_used_at: r.try_get(6)?,
            })
        })
        .collect()
}

/// Revokes one of `uid`'s tokens; `false` when it has no such live token.
pub async fn revoke(db: &Db, uid: i64, id: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
    )
    .bind(now())
    .bind(id)
    .bind(uid)
    .execute(&db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The live token whose SHA-256 is `hash`, with its user as they are now.
pub async fn find_live(db: &Db, hash: &str) -> Result<Option<Presented>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.id, t.scopes, t.last_used_at, u.id, u.name, u.email, u.is_admin \
         FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ?",
    )
    .bind(hash)
    .bind(now())
    .fetch_optional(&db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let is_admin = r.try_get::<i64, _>(6)? != 0;
    let mut scopes = Scopes::parse_stored(&r.try_get::<String, _>(1)?);
    if !is_admin {
        scopes = scopes.without(crate::domain::Scope::Admin);
    }
    Ok(Some(Presented {
        id: r.try_get(0)?,
        scopes,
        last_used_at: r.try_get(2)?,
        user: User {
            id: r.try_get(3)?,
            name: r.try_get(4)?,
            email: r.try_get(5)?,
            is_admin,
        },
    }))
}

/// Records that a token was used now.
pub async fn touch(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(now())
        .bind(id)
        .execute(&db.pool())
        .await?;
    Ok(())
}
