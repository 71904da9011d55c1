//! What every request handler shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::anon::Secret;
use crate::cache::{FreshCache, Recent};
use crate::db::books::CatalogPage;
use crate::db::Db;
pub use crate::domain::Reservations;

pub struct AppState {
    pub db: Db,
    /// Uploaded files (the shared file system on AWS).
    pub data_dir: PathBuf,
    /// Permits for password hashing (argon2 takes 19 MiB and tens of
    /// milliseconds of a core): beyond them a login waits briefly, then is
    /// refused, rather than queueing without bound.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Cover downloads at once; beyond them a download is answered 503.
    pub covers: Arc<tokio::sync::Semaphore>,
    /// How long one cover download may take.
    pub cover_send: Duration,
    /// Signs what anonymous visitors carry (shared by every instance).
    pub secret: Secret,
    /// Sessions unused for this long are over.
    pub session_idle: Duration,
    pub reservations: Reservations,
    /// Catalog pages by (page, search text), at most `catalog_max_age` old.
    pub catalog: FreshCache<(i64, String), Arc<CatalogPage>>,
    /// The last health check, shared by whoever asks within a second.
    pub health: Recent<Result<(), &'static str>>,
}

pub type S = Arc<AppState>;

/// Catalog pages kept at most: 20 books with descriptions of up to 2,000
/// characters make a page of at most about 45 KB, so a flood of distinct
/// searches holds at most about 23 MB.
const CATALOG_PAGES: usize = 512;

/// What [`AppState::new`] is told.
pub struct Settings {
    pub data_dir: PathBuf,
    pub hash_permits: usize,
    pub session_idle: Duration,
    pub catalog_max_age: Duration,
    pub reservations: Reservations,
    /// Covers sent at once: each holds a file and a chunk (8 KiB) at most.
    pub cover_downloads: usize,
    pub cover_send: Duration,
}

impl AppState {
    pub fn new(db: Db, secret: Secret, s: Settings) -> Self {
        AppState {
            db,
            data_dir: s.data_dir,
            hashing: Arc::new(tokio::sync::Semaphore::new(s.hash_permits.max(1))),
            covers: Arc::new(tokio::sync::Semaphore::new(s.cover_downloads)),
            cover_send: s.cover_send,
            secret,
            session_idle: s.session_idle,
            reservations: s.reservations,
            catalog: FreshCache::new(s.catalog_max_age, CATALOG_PAGES),
            health: Recent::new(crate::cache::RECENT),
        }
    }
}
