//! The database: SQLite (embedded, the default) or MySQL/MariaDB, through
//! one pool. On MySQL the password can come from a command (the secret RDS
//! manages); it is fetched again when the server refuses the old one.

pub mod app_user;
pub mod books;
pub mod delivery;
pub mod idempotency;
pub mod purchases;
pub mod reservations;
pub mod tokens;
pub mod users;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::AnyPool;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("migrations: another instance held the migration lock for {0} s")]
    MigrationLock(u64),
    #[error("database URL: {0}")]
    Url(String),
    #[error("password command failed: {0}")]
    PasswordCommand(String),
    #[error("the app's database user: {0}")]
    AppUser(String),
    #[error("the schema lacks migration {0}: run `bookstore migrate`")]
    NotMigrated(i64),
}

/// The Amazon RDS certificate authorities (`certs/README.md` says where
/// they come from), to verify the database's certificate against.
pub const RDS_CA_BUNDLE: &str = include_str!("../../certs/rds-global-bundle.pem");

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

#[derive(Clone)]
pub struct Db {
    pool: Arc<RwLock<AnyPool>>,
    pub backend: Backend,
    url: String,
    password_command: Option<String>,
    /// A background check (`check_soon`) is running.
    checking: Arc<AtomicBool>,
}

/// How long an instance waits for another one applying migrations.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(600);

/// The migrations for `backend`. One applied by a later release (during a
/// rolling deploy or after a rollback) is not an error: migrations only
/// expand the schema, so this release still runs on it.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    let mut m = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::MySql => sqlx::migrate!("./migrations/mysql"),
    };
    m.set_ignore_missing(true);
    m
}

fn run_password_command(cmd: &str) -> Result<String, DbError> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| DbError::PasswordCommand(e.to_string()))?;
    if !out.status.success() {
        return Err(DbError::PasswordCommand(format!(
            "exit status {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches(['\n', '\r'])
        .to_string())
}

/// `url` with `password` set in it (a password given by the environment).
pub fn with_password(url: &str, password: &str) -> Result<String, DbError> {
    let mut u = url::Url::parse(url).map_err(|e| DbError::Url(e.to_string()))?;
    u.set_password(Some(password))
        .map_err(|_| DbError::Url("cannot hold a password".into()))?;
    Ok(u.to_string())
}

/// The URL to connect with: the password from the command, if there is one.
fn effective_url(url: &str, password_command: Option<&str>) -> Result<String, DbError> {
    let Some(cmd) = password_command else {
        return Ok(url.to_string());
    };
    let mut u = url::Url::parse(url).map_err(|e| DbError::Url(e.to_string()))?;
    let pw = run_password_command(cmd)?;
    u.set_password(Some(&pw))
        .map_err(|_| DbError::Url("cannot hold a password".into()))?;
    Ok(u.to_string())
}

/// Connections per instance: `BOOKSTORE_DATABASE_POOL`, or a size that
/// keeps a small database server busy without queueing on its own locks.
fn pool_size(backend: Backend) -> u32 {
    std::env::var("BOOKSTORE_DATABASE_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(match backend {
            Backend::Sqlite => 8,
            Backend::MySql => 8,
        })
}

async fn make_pool(url: &str, backend: Backend) -> Result<AnyPool, DbError> {
    let opts = AnyPoolOptions::new()
        .max_connections(pool_size(backend))
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(300));
    let pool = match backend {
        Backend::Sqlite => {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            opts.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                        .await?;
                    Ok(())
                })
            })
            .connect_lazy(&url)?
        }
        Backend::MySql => opts.connect_lazy(url)?,
    };
    Ok(pool)
}

impl Db {
    /// A lazy pool: no connection is made until one is needed, so the app
    /// starts (and reports itself unhealthy) while the database is down.
    pub async fn open(url: &str, password_command: Option<String>) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Backend::MySql
        } else {
            return Err(DbError::Url(format!(
                "{url:?}: use sqlite:PATH or mysql://USER@HOST/DB"
            )));
        };
        let url = url.replacen("mariadb:", "mysql:", 1);
        let pool = make_pool(&effective_url(&url, password_command.as_deref())?, backend).await?;
        Ok(Db {
            pool: Arc::new(RwLock::new(pool)),
            backend,
            url,
            password_command,
            checking: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn pool(&self) -> AnyPool {
        self.pool.read().expect("pool lock").clone()
    }

    /// Applies pending migrations (one instance at a time on MySQL).
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrate_and_grant(None).await
    }

    /// Applies pending migrations and, on MySQL, makes the web server's
    /// own user (see [`app_user`]), under one lock: instances starting at
    /// once take turns.
    pub async fn migrate_and_grant(&self, user: Option<&app_user::AppUser>) -> Result<(), DbError> {
        let migrator = migrator(self.backend);
        if self.backend == Backend::Sqlite {
            if user.is_some() {
                return Err(DbError::AppUser(
                    "SQLite has no users: drop --app-user".into(),
                ));
            }
            migrator.run(&self.pool()).await?;
            return Ok(());
        }
        // sqlx's own lock is `GET_LOCK(name, -1)`, which MariaDB answers
        // with NULL, locking nothing: instances starting together then
        // apply the same migration at once. This lock (per database, held
        // by the connection that migrates) is checked.
        let mut conn = self.pool().acquire().await?;
        let got: Option<i64> = sqlx::query_scalar(
            "SELECT GET_LOCK(CONCAT('bookstore-migrate-', SHA1(DATABASE())), ?)",
        )
        .bind(MIGRATION_LOCK_WAIT.as_secs() as i64)
        .fetch_one(&mut *conn)
        .await?;
        if got != Some(1) {
            return Err(DbError::MigrationLock(MIGRATION_LOCK_WAIT.as_secs()));
        }
        let mut applied = migrator.run(&mut *conn).await.map_err(DbError::from);
        if let (Ok(()), Some(user)) = (&applied, user) {
            applied = self.grant(user).await;
        }
        let released =
            sqlx::query("SELECT RELEASE_LOCK(CONCAT('bookstore-migrate-', SHA1(DATABASE())))")
                .execute(&mut *conn)
                .await;
        applied?;
        released?;
        Ok(())
    }

    async fn grant(&self, user: &app_user::AppUser) -> Result<(), DbError> {
        let url = effective_url(&self.url, self.password_command.as_deref())?;
        let mut conn = app_user::quiet_connection(&url).await?;
        let done = app_user::ensure(&mut conn, user).await;
        let _ = sqlx::Connection::close(conn).await;
        done
    }

    /// Whether every migration this release knows is applied, without
    /// changing anything: `Err(NotMigrated(version))` names the first one
    /// missing (a server that only reads and writes rows waits for
    /// `bookstore migrate` to apply them).
    pub async fn check_migrated(&self) -> Result<(), DbError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool())
                .await?;
        match migrator(self.backend)
            .iter()
            .find(|m| !applied.contains(&m.version))
        {
            Some(m) => Err(DbError::NotMigrated(m.version)),
            None => Ok(()),
        }
    }

    /// Called with a failed query's error: when the server refused the
    /// password (it was rotated), fetch it again and reconnect.
    pub async fn recover(&self, e: &sqlx::Error) {
        if self.password_command.is_none() {
            return;
        }
        let refused = matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("28000") || d.message().contains("Access denied"));
        if !refused {
            return;
        }
        tracing::warn!("the database refused the password; fetching it again");
        match effective_url(&self.url, self.password_command.as_deref()) {
            Ok(u) => match make_pool(&u, self.backend).await {
                Ok(p) => {
                    let old = std::mem::replace(&mut *self.pool.write().expect("pool lock"), p);
                    old.close_event();
                }
                Err(e) => tracing::error!(error = %e, "reconnecting"),
            },
            Err(e) => tracing::error!(error = %e, "fetching the database password"),
        }
    }

    /// After a request found the database unavailable: pings it in the
    /// background, which fetches the password again if it was refused. One
    /// check at a time, so an outage does not become a storm of them.
    pub fn check_soon(&self) {
        if self.password_command.is_none() || self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let db = self.clone();
        tokio::spawn(async move {
            let _ = db.ping().await;
            db.checking.store(false, Ordering::Release);
        });
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let r = sqlx::query("SELECT 1")
            .execute(&self.pool())
            .await
            .map(|_: AnyQueryResult| ());
        if let Err(e) = &r {
            self.recover(e).await;
        }
        r
    }

    /// Pool connections in use and idle.
    pub fn pool_stats(&self) -> (u32, usize) {
        let p = self.pool();
        (p.size(), p.num_idle())
    }
}

/// Ends a transaction whose last statement was `res`, an insert: commits
/// it (`true`), or rolls it back when the insert broke a unique key
/// (`false`: the same thing was done first, by another request).
pub async fn commit_unless_duplicate<T>(
    tx: sqlx::Transaction<'_, sqlx::Any>,
    res: Result<T, sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    match res {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            tx.rollback().await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The id of the row the last insert in `tx` made.
pub async fn last_insert_id(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<i64, sqlx::Error> {
    let sql = match backend {
        Backend::Sqlite => "SELECT last_insert_rowid()",
        Backend::MySql => "SELECT LAST_INSERT_ID()",
    };
    sqlx::query_scalar(sql).fetch_one(&mut **tx).await
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How many times a write is tried again while the database is busy.
pub const BUSY_RETRIES: u64 = 20;

/// A write that lost to another one and may simply be tried again: SQLite
/// has one writer at a time, and InnoDB may pick it as a deadlock victim.
pub fn retryable(db: &Db, e: &sqlx::Error) -> bool {
    match db.backend {
        Backend::Sqlite => e.to_string().contains("locked"),
        Backend::MySql => {
            matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("40001"))
        }
    }
}

/// Runs `op` until it succeeds or fails otherwise than [`retryable`].
pub async fn retrying<T, F, Fut>(db: &Db, mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < BUSY_RETRIES && retryable(db, &e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
