//! What every request handler shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::FreshCache;
use crate::db::books::CatalogPage;
use crate::db::Db;
use crate::limit::SlidingWindow;

pub struct AppState {
    pub db: Db,
    /// Uploaded files (the shared file system on AWS).
    pub data_dir: PathBuf,
    /// Permits for password hashing (argon2 takes 19 MiB and tens of
    /// milliseconds of a core): beyond them a login waits briefly, then is
    /// refused, rather than queueing without bound.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Failed logins per email.
    pub login_failures: SlidingWindow,
    /// Login attempts per client address.
    pub login_attempts: SlidingWindow,
    /// Registrations per client address.
    pub registrations: SlidingWindow,
    /// Cover uploads per seller.
    pub uploads: SlidingWindow,
    /// Requests with a wrong, expired or revoked API token, per client.
    pub bearer_failures: SlidingWindow,
    /// API tokens made, per user.
    pub token_creations: SlidingWindow,
    /// Sessions unused for this long are over.
    pub session_idle: Duration,
    /// Catalog pages by (page, search text), at most `catalog_max_age` old.
    pub catalog: FreshCache<(i64, String), Arc<CatalogPage>>,
}

pub type S = Arc<AppState>;

/// Keys remembered by each limit.
const LIMIT_KEYS: usize = 100_000;
/// Registrations per client address per hour.
pub const REGISTRATIONS_PER_HOUR: usize = 20;
/// Catalog pages kept at most: 20 books with descriptions of up to 2,000
/// characters make a page of at most about 45 KB, so a flood of distinct
/// searches holds at most about 23 MB.
const CATALOG_PAGES: usize = 512;

impl AppState {
    pub fn new(
        db: Db,
        data_dir: PathBuf,
        hash_permits: usize,
        session_idle: Duration,
        catalog_max_age: Duration,
    ) -> Self {
        AppState {
            db,
            data_dir,
            hashing: Arc::new(tokio::sync::Semaphore::new(hash_permits.max(1))),
            // 5 failed logins per email per 15 minutes.
            login_failures: SlidingWindow::new(5, Duration::from_secs(15 * 60), LIMIT_KEYS),
            // 20 login attempts per client per minute.
            login_attempts: SlidingWindow::new(20, Duration::from_secs(60), LIMIT_KEYS),
            registrations: SlidingWindow::new(
                REGISTRATIONS_PER_HOUR,
                Duration::from_secs(3600),
                LIMIT_KEYS,
            ),
            // 30 cover uploads per seller per hour.
            uploads: SlidingWindow::new(30, Duration::from_secs(3600), LIMIT_KEYS),
            // 20 requests with a bad token per client per 15 minutes.
            bearer_failures: SlidingWindow::new(20, Duration::from_secs(15 * 60), LIMIT_KEYS),
            // 20 tokens made per user per hour.
            token_creations: SlidingWindow::new(20, Duration::from_secs(3600), LIMIT_KEYS),
            session_idle,
            catalog: FreshCache::new(catalog_max_age, CATALOG_PAGES),
        }
    }
}
