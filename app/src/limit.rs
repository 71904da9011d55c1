//! Limits on login attempts, kept in memory by each instance: a sliding
//! window of recent events per key (an email, a client address), in a map
//! of bounded size, so that guessing passwords costs the guesser time and
//! the map cannot be grown without end.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// At most `max` events per key within `window`.
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    capacity: usize,
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SlidingWindow {
    /// `capacity` bounds the number of keys remembered.
    pub fn new(max: usize, window: Duration, capacity: usize) -> Self {
        SlidingWindow {
            max: max.max(1),
            window,
            capacity: capacity.max(1),
            events: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `key` has had `max` events within the window: the
    /// time until the oldest of them leaves it.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut m = self.events.lock().unwrap();
        let Some(q) = m.get_mut(key) else {
            return Ok(());
        };
        self.expire(q, now);
        if q.len() < self.max {
            return Ok(());
        }
        let oldest = q.front().copied().unwrap_or(now);
        Err(self
            .window
            .saturating_sub(now.saturating_duration_since(oldest)))
    }

    /// Counts an event for `key`.
    pub fn record(&self, key: &str, now: Instant) {
        let mut m = self.events.lock().unwrap();
        if !m.contains_key(key) && m.len() >= self.capacity {
            self.make_room(&mut m, now);
        }
        let q = m.entry(key.to_string()).or_default();
        self.expire(q, now);
        q.push_back(now);
        while q.len() > self.max {
            q.pop_front();
        }
    }

    /// Checks, and counts the event when it is allowed.
    pub fn hit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.check(key, now)?;
        self.record(key, now);
        Ok(())
    }

    /// Forgets `key` (after a successful login, its failures).
    pub fn clear(&self, key: &str) {
        self.events.lock().unwrap().remove(key);
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn expire(&self, q: &mut VecDeque<Instant>, now: Instant) {
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
    }

    /// Drops the keys with nothing left in the window; when all are still
    /// live, the one whose latest event is the oldest.
    fn make_room(&self, m: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
        m.retain(|_, q| {
            q.back()
                .is_some_and(|t| now.saturating_duration_since(*t) < self.window)
        });
        if m.len() >= self.capacity {
            let stalest = m
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                m.remove(&k);
            }
        }
    }
}

/// The client's address: the right-most `X-Forwarded-For` entry (the one
/// the load balancer appends; anything left of it the client can forge),
/// else the peer's address.
pub fn client_key(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty());
    match (forwarded, peer) {
        (Some(f), _) => f.to_string(),
        (None, Some(p)) => p.ip().to_string(),
        (None, None) => "unknown".to_string(),
    }
}

/// Seconds for a `Retry-After` header: at least 1.
pub fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn allows_max_events_per_window_then_refuses_until_the_oldest_leaves() {
        let w = SlidingWindow::new(5, Duration::from_secs(900), 100);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(w.hit("a@example.com", t0 + Duration::from_secs(i)), Ok(()));
        }
        let wait = w
            .check("a@example.com", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(890));
        assert_eq!(retry_secs(wait), 890);
        // Other keys are not affected.
        assert_eq!(w.check("b@example.com", t0), Ok(()));
        // Once the first event is 15 minutes old, one more is allowed.
        let later = t0 + Duration::from_secs(900);
        assert_eq!(w.hit("a@example.com", later), Ok(()));
        assert!(w.check("a@example.com", later).is_err());
        w.clear("a@example.com");
        assert_eq!(w.check("a@example.com", later), Ok(()));
    }

    #[test]
    fn the_map_stays_within_its_capacity() {
        let w = SlidingWindow::new(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for i in 0..1000u64 {
            w.record(&format!("k{i}"), t0 + Duration::from_millis(i));
            assert!(w.keys() <= 10);
        }
        // The newest keys are kept, the stalest evicted.
        let now = t0 + Duration::from_millis(1000);
        for _ in 0..3 {
            w.record("k999", now);
        }
        assert!(w.check("k999", now).is_err());
        assert_eq!(w.check("k0", now), Ok(()));
        // Expired keys are dropped first.
        let much_later = t0 + Duration::from_secs(3600);
        w.record("fresh", much_later);
        assert_eq!(w.keys(), 1);
    }

    #[test]
    fn the_client_is_the_right_most_forwarded_address() {
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(client_key(&h, Some(peer)), "10.0.0.9");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.7"),
        );
        assert_eq!(client_key(&h, Some(peer)), "203.0.113.7");
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        assert_eq!(client_key(&h, Some(peer)), "198.51.100.2");
        assert_eq!(retry_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
