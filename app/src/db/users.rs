//! The `users` table.

use super::{now, Db};

/// What an attempt to create an account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// An account with this email already exists.
    EmailTaken,
}

/// A user as the login checks them: with the stored password hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password: String,
    pub is_admin: i64,
}

/// A user as the administrators' list shows them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: i64,
}

/// Creates an account (never an admin); the unique email decides a race
/// between two registrations of one address.
pub async fn insert(
    db: &Db,
    name: &str,
    email: &str,
    password_hash: &str,
) -> Result<Inserted, sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO users (name, email, password, is_admin, created_at) VALUES (?, ?, ?, 0, ?)",
    )
    .bind(name)
    .bind(email)
    .bind(password_hash)
    .bind(now())
    .execute(&db.pool())
    .await;
    match res {
        Ok(_) => Ok(Inserted::Created),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(Inserted::EmailTaken),
        Err(e) => Err(e),
    }
}

/// The user with this (lower-cased) email, with their password hash.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, email, password, is_admin FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(&db.pool())
        .await
}

/// Every user, oldest first.
pub async fn list(db: &Db) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, email, is_admin FROM users ORDER BY id")
        .fetch_all(&db.pool())
        .await
}

/// Gives or takes the admin role; `false` when no user has that email.
pub async fn set_admin(db: &Db, email: &str, admin: bool) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE users SET is_admin = ? WHERE email = ?")
        .bind(i64::from(admin))
        .bind(email)
        .execute(&db.pool())
        .await?
        .rows_affected();
    Ok(n > 0)
}
