//! A short-lived cache for what many visitors ask at once (the catalog's
//! first pages, popular searches), with a bound on staleness instead of
//! invalidation messages: several instances share one database and no
//! other service, so an instance cannot hear of another's writes.
//!
//! - An entry is served until `max_age` after the query that made it
//!   *started*: whatever was committed before that moment is in it, so a
//!   write anywhere shows everywhere within `max_age`.
//! - A successful write through this instance that changes what the
//!   catalog shows (a book added, edited or deleted, copies bought or
//!   returned) clears everything at once; nothing else does, so a flood
//!   of refused or anonymous posts cannot keep the cache empty.
//! - Concurrent misses for one key make one query; the others wait for it
//!   (no stampede on the database when an entry expires under load).
//! - At most `capacity` entries; when full, expired ones go, then all.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

struct Entry<V> {
    started: Instant,
    generation: u64,
    cell: Arc<OnceCell<V>>,
}

pub struct FreshCache<K, V> {
    max_age: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    generation: u64,
    entries: HashMap<K, Entry<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> FreshCache<K, V> {
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        FreshCache {
            max_age,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The value for `key`: cached, or made by `load` (once, however many
    /// ask at the same time). An error is not cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.max_age.is_zero() {
            return load().await;
        }
        let cell = {
            let mut inner = self.inner.lock().unwrap();
            let now = Instant::now();
            let generation = inner.generation;
            let fresh = inner.entries.get(key).filter(|e| {
                e.generation == generation && now.duration_since(e.started) < self.max_age
            });
            match fresh {
                Some(e) => {
                    if let Some(v) = e.cell.get() {
                        return Ok(v.clone());
                    }
                    e.cell.clone()
                }
                None => {
                    if inner.entries.len() >= self.capacity {
                        let max_age = self.max_age;
                        inner.entries.retain(|_, e| {
                            e.generation == generation && now.duration_since(e.started) < max_age
                        });
                        if inner.entries.len() >= self.capacity {
                            inner.entries.clear();
                        }
                    }
                    let cell = Arc::new(OnceCell::new());
                    inner.entries.insert(
                        key.clone(),
                        Entry {
                            started: now,
                            generation,
                            cell: cell.clone(),
                        },
                    );
                    cell
                }
            }
        };
        Ok(cell.get_or_try_init(load).await?.clone())
    }

    /// Forgets everything: this instance changed the catalog.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        inner.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long a [`Recent`] result is reused.
pub const RECENT: Duration = Duration::from_secs(1);

/// One result, made at most once per `fresh` however many ask: a request
/// finding it older makes it again while the others wait for that one
/// (the health check: a flood of requests is one check a second).
pub struct Recent<T> {
    fresh: Duration,
    last: tokio::sync::Mutex<Option<(Instant, u64, T)>>,
}

impl<T: Clone> Recent<T> {
    pub fn new(fresh: Duration) -> Self {
        Recent {
            fresh,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The last result if younger than `fresh`, else `make`'s; with when
    /// it was made (Unix milliseconds).
    pub async fn get_or_make<F, Fut>(&self, make: F) -> (u64, T)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, ms, v)) = last.as_ref() {
            if at.elapsed() < self.fresh {
                return (*ms, v.clone());
            }
        }
        let v = make().await;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        *last = Some((Instant::now(), ms, v.clone()));
        (ms, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn serves_until_max_age_after_the_query_started() {
        let c = FreshCache::new(Duration::from_millis(200), 10);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(loads.load(Ordering::SeqCst))
        };
        assert_eq!(c.get_or_load(&"k", load).await, Ok(1));
        assert_eq!(c.get_or_load(&"k", load).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(c.get_or_load(&"k", load).await, Ok(2));
        c.clear();
        assert_eq!(c.get_or_load(&"k", load).await, Ok(3));
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_query() {
        let c = Arc::new(FreshCache::new(Duration::from_secs(1), 10));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_load(&1, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(7)
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_capacity_holds() {
        let c = FreshCache::new(Duration::from_secs(5), 3);
        assert_eq!(
            c.get_or_load(&0, || async { Err::<i32, _>("down") }).await,
            Err("down")
        );
        assert_eq!(
            c.get_or_load(&0, || async { Ok::<_, &str>(1) }).await,
            Ok(1)
        );
        for k in 1..10 {
            c.get_or_load(&k, || async { Ok::<_, ()>(k) })
                .await
                .unwrap();
            assert!(c.len() <= 3);
        }
    }

    #[tokio::test]
    async fn a_recent_result_is_made_once_for_everyone_asking() {
        let r = Arc::new(Recent::new(Duration::from_millis(300)));
        let made = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (r, made) = (r.clone(), made.clone());
            tasks.push(tokio::spawn(async move {
                r.get_or_make(|| async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    made.fetch_add(1, Ordering::SeqCst) + 1
                })
                .await
            }));
        }
        let mut stamps = std::collections::HashSet::new();
        for t in tasks {
            let (at, v) = t.await.unwrap();
            assert_eq!(v, 1);
            stamps.insert(at);
        }
        assert_eq!(stamps.len(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (_, v) = r
            .get_or_make(|| async { made.fetch_add(1, Ordering::SeqCst) + 1 })
            .await;
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn zero_max_age_never_caches() {
        let c = FreshCache::new(Duration::ZERO, 3);
        let loads = AtomicUsize::new(0);
        for _ in 0..3 {
            c.get_or_load(&0, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(0)
            })
            .await
            .unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }
}
