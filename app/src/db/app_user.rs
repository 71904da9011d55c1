//! The web server's own MySQL user, made and kept by `bookstore migrate`
//! (which connects as a user allowed to change the schema and manage
//! users): the rights serving needs on this one database, nothing else.
//! A flaw in the serving process then cannot create, alter or drop a
//! table, read another database, or give anyone a right.

use std::str::FromStr;

use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};

use super::DbError;

/// What serving needs: read and write rows. No CREATE, DROP, ALTER,
/// INDEX, REFERENCES, LOCK TABLES, GRANT OPTION, nothing global.
pub const GRANTED: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];

/// The user and its password, both checked to be safe in a statement.
pub struct AppUser {
    name: String,
    password: String,
}

impl std::fmt::Debug for AppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AppUser {
    /// MySQL takes user names up to 32 characters; the password goes into
    /// the statement as a literal (MySQL takes no placeholder there), so it
    /// is refused unless it is printable ASCII without quote or backslash.
    pub fn new(name: &str, password: &str) -> Result<AppUser, DbError> {
        let name_ok = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(DbError::AppUser(format!(
                "user name {name:?}: use 1 to 32 letters, digits and _"
            )));
        }
        let password_ok = (8..=128).contains(&password.len())
            && password
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'\\');
        if !password_ok {
            return Err(DbError::AppUser(
                "the password must be 8 to 128 printable ASCII characters without ' or \\".into(),
            ));
        }
        Ok(AppUser {
            name: name.into(),
            password: password.into(),
        })
    }

    /// Reads the password from the first line of `path`.
    pub fn from_file(name: &str, path: &std::path::Path) -> Result<AppUser, DbError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DbError::AppUser(format!("{}: {e}", path.display())))?;
        AppUser::new(name, text.lines().next().unwrap_or_default())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account as MySQL's grant tables name it.
    fn account(&self) -> String {
        format!("'{}'@'%'", self.name)
    }
}

/// A database name as a GRANT's pattern: `_` and `%` are wildcards there,
/// so `shop_db` would also grant `shopXdb`; escaped, they match themselves.
fn grant_pattern(db: &str) -> String {
    db.replace('_', "\\_").replace('%', "\\%")
}

/// Opens a connection that never logs its statements (sqlx logs slow
/// ones by default, and these carry a password).
pub async fn quiet_connection(url: &str) -> Result<AnyConnection, DbError> {
    let opts = sqlx::any::AnyConnectOptions::from_str(url)?
        .log_statements(log::LevelFilter::Off)
        .log_slow_statements(log::LevelFilter::Off, std::time::Duration::ZERO);
    Ok(AnyConnection::connect_with(&opts).await?)
}

/// Makes `user` exist with its password and exactly [`GRANTED`] on the
/// connection's database. Idempotent; the caller holds the migration lock,
/// so instances booting together take turns.
pub async fn ensure(conn: &mut AnyConnection, user: &AppUser) -> Result<(), DbError> {
    let db: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?;
    let db = db.ok_or_else(|| DbError::AppUser("the database URL names no database".into()))?;
    if !db
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    {
        return Err(DbError::AppUser(format!("database name {db:?}")));
    }
    let account = user.account();
    let pw = &user.password;
    // Without logging: the password is in these two.
    conn.execute(format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{pw}'").as_str())
        .await?;
    conn.execute(format!("ALTER USER {account} IDENTIFIED BY '{pw}'").as_str())
        .await?;
    let pattern = grant_pattern(&db);
    if has_other_rights(conn, &account, &pattern).await? {
        tracing::warn!(
            user = user.name(),
            "the app's database user had other rights; revoking them"
        );
        conn.execute(format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}").as_str())
            .await?;
    }
    conn.execute(format!("GRANT {} ON `{pattern}`.* TO {account}", GRANTED.join(", ")).as_str())
        .await?;
    Ok(())
}

/// Whether `account` holds any right besides [`GRANTED`] on `pattern`:
/// a global one, one on another database, one on a table or column, or
/// the right to grant.
async fn has_other_rights(
    conn: &mut AnyConnection,
    account: &str,
    pattern: &str,
) -> Result<bool, DbError> {
    let global: Vec<(String, String)> = sqlx::query_as(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?",
    )
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    if global
        .iter()
        .any(|(p, g)| p != "USAGE" || g.eq_ignore_ascii_case("YES"))
    {
        return Ok(true);
    }
    let schema: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?",
    )
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    if schema.iter().any(|(s, p, g)| {
        s != pattern || !GRANTED.contains(&p.as_str()) || g.eq_ignore_ascii_case("YES")
    }) {
        return Ok(true);
    }
    for table in ["TABLE_PRIVILEGES", "COLUMN_PRIVILEGES"] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.{table} WHERE GRANTEE = ?"
        ))
        .bind(account)
        .fetch_one(&mut *conn)
        .await?;
        if n > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_that_could_break_the_statement_are_refused() {
        assert!(AppUser::new("bookstore_app", "Abcdef0123456789").is_ok());
        for name in ["", "a-b", "x'y", &"a".repeat(33), "a b"] {
            assert!(AppUser::new(name, "Abcdef0123456789").is_err(), "{name:?}");
        }
        for pw in [
            "short",
            "with'quote1",
            "back\\slash1",
            "with space1",
            "tab\there1",
        ] {
            assert!(AppUser::new("app", pw).is_err(), "{pw:?}");
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let u = AppUser::new("app", "Sup3rS3cretValue").unwrap();
        assert!(!format!("{u:?}").contains("Sup3r"));
    }

    #[test]
    fn underscores_in_the_database_name_match_only_themselves() {
        assert_eq!(grant_pattern("shop_db"), "shop\\_db");
        assert_eq!(grant_pattern("bookstore"), "bookstore");
    }
}
