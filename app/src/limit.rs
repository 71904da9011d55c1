//! Limits on what a visitor may try (logins, registrations, uploads),
//! kept in the database that every instance shares, so that six
//! instances allow what one allows.
//!
//! Each limit is a fixed-window counter per bucket and key: at most
//! `max` events in a window of `window` that starts at the key's first
//! event. A key is stored only as a hash of fixed size (the first 16
//! bytes of its SHA-256), so a 16 KiB email takes 32 bytes; rows whose
//! window is over are removed by the sweep ([`prune`]).
//!
//! [`hit`] counts an event and says whether it is within the limit in
//! one transaction: the upsert takes the row's lock (InnoDB) or the
//! database's write lock (SQLite) and the count read back is this event's
//! own, so parallel requests cannot all pass: the `max + 1`th is refused
//! whatever the timing. Nothing is kept in memory.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::db::{now, Backend, Db};

/// A limit: at most `max` events per key in each `window`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The name its counters are stored under.
    pub bucket: &'static str,
    pub max: i64,
    pub window: Duration,
}

/// Failed logins per email (an attempt counts before its password is
/// checked, and a success clears it): 5 per 15 minutes.
pub const LOGIN_FAILURES: Rule = Rule {
    bucket: "fail",
    max: 5,
    window: Duration::from_secs(15 * 60),
};
/// The same, per email and browser that logged in to it before: the
/// owner's own budget, which another's guesses do not spend.
pub const KNOWN_DEVICE_FAILURES: Rule = Rule {
    bucket: "faildev",
    max: 5,
    window: Duration::from_secs(15 * 60),
};
/// Login attempts per client address: 20 a minute.
pub const LOGIN_ATTEMPTS: Rule = Rule {
    bucket: "login",
    max: 20,
    window: Duration::from_secs(60),
};
/// Registrations per client address: 20 an hour.
pub const REGISTRATIONS: Rule = Rule {
    bucket: "register",
    max: 20,
    window: Duration::from_secs(3600),
};
/// Cover uploads per seller (by account id): 30 an hour.
pub const UPLOADS: Rule = Rule {
    bucket: "upload",
    max: 30,
    window: Duration::from_secs(3600),
};
/// Requests with a wrong, expired or revoked API token per client
/// address: 20 per 15 minutes, then even a good token waits.
pub const BEARER_FAILURES: Rule = Rule {
    bucket: "bearer",
    max: 20,
    window: Duration::from_secs(15 * 60),
};
/// API tokens made per user (by account id): 20 an hour.
pub const TOKEN_CREATIONS: Rule = Rule {
    bucket: "token",
    max: 20,
    window: Duration::from_secs(3600),
};

/// The longest window of any rule: rows older than it are pruned.
const LONGEST: Duration = Duration::from_secs(3600);

/// What is stored for `key`: 32 hex digits, whatever its length.
pub fn key_hash(rule: &Rule, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule.bucket.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Counts one event for `key` under `rule`. `Ok(Err(wait))` when it is
/// over the limit: the time until the window ends.
pub async fn hit(db: &Db, rule: &Rule, key: &str) -> Result<Result<(), Duration>, sqlx::Error> {
    let hash = key_hash(rule, key);
    let now = now();
    let window = rule.window.as_secs().max(1) as i64;
    let over = now - window;
    // `hits` is assigned first: on MySQL the second assignment sees the
    // row as the first left it, and `window_start` is not yet changed.
    let sql = match db.backend {
        Backend::Sqlite => {
            "INSERT INTO limits (bucket, key_hash, window_start, hits) VALUES (?, ?, ?, 1) \
             ON CONFLICT (bucket, key_hash) DO UPDATE SET \
             hits = CASE WHEN limits.window_start <= ? THEN 1 ELSE limits.hits + 1 END, \
             window_start = CASE WHEN limits.window_start <= ? THEN ? ELSE limits.window_start END"
        }
        Backend::MySql => {
            "INSERT INTO limits (bucket, key_hash, window_start, hits) VALUES (?, ?, ?, 1) \
             ON DUPLICATE KEY UPDATE \
             hits = IF(window_start <= ?, 1, hits + 1), \
             window_start = IF(window_start <= ?, ?, window_start)"
        }
    };
    // Upserts of one new key at once may deadlock on InnoDB (each waits
    // for the other's insert): the loser is tried again.
    let (hits, start) = crate::db::retrying(db, || async {
        let mut tx = db.pool().begin().await?;
        sqlx::query(sql)
            .bind(rule.bucket)
            .bind(&hash)
            .bind(now)
            .bind(over)
            .bind(over)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row: (i64, i64) = sqlx::query_as(
            "SELECT hits, window_start FROM limits WHERE bucket = ? AND key_hash = ?",
        )
        .bind(rule.bucket)
        .bind(&hash)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    })
    .await?;
    if hits <= rule.max {
        return Ok(Ok(()));
    }
    let left = (start + window - now).max(1) as u64;
    Ok(Err(Duration::from_secs(left)))
}

/// Whether `key` is at its limit under `rule`, without counting an
/// event: `Err(wait)` until its window ends. For limits on failures that
/// are counted ([`hit`]) only once they happened, where a success must not
/// write anything.
pub async fn check(db: &Db, rule: &Rule, key: &str) -> Result<Result<(), Duration>, sqlx::Error> {
    let now = now();
    let window = rule.window.as_secs().max(1) as i64;
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT hits, window_start FROM limits WHERE bucket = ? AND key_hash = ?")
            .bind(rule.bucket)
            .bind(key_hash(rule, key))
            .fetch_optional(&db.pool())
            .await?;
    match row {
        Some((hits, start)) if hits >= rule.max && start > now - window => {
            let left = (start + window - now).max(1) as u64;
            Ok(Err(Duration::from_secs(left)))
        }
        _ => Ok(Ok(())),
    }
}

/// Forgets `key`'s events under `rule` (a login that succeeded).
pub async fn clear(db: &Db, rule: &Rule, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM limits WHERE bucket = ? AND key_hash = ?")
        .bind(rule.bucket)
        .bind(key_hash(rule, key))
        .execute(&db.pool())
        .await?;
    Ok(())
}

/// Removes the counters whose window is over (every rule's window is at
/// most an hour): the table holds at most the keys seen in the last hour.
pub async fn prune(db: &Db) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM limits WHERE window_start <= ?")
        .bind(now() - LONGEST.as_secs() as i64)
        .execute(&db.pool())
        .await?
        .rows_affected();
    Ok(n)
}

/// The client's address, as a limit's key: the right-most entry of the
/// last `X-Forwarded-For` line (the load balancer appends its own line or
/// entry last; everything before it the client wrote), else the peer's
/// address. An entry that is not an address is not trusted: the peer's is
/// used. IPv6 clients are keyed by their /64 network, the smallest block
/// one subscriber is given.
pub fn client_key(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match forwarded.or(peer.map(|p| p.ip())) {
        Some(ip) => network(ip),
        None => "unknown".to_string(),
    }
}

fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
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
    fn keys_are_stored_at_a_fixed_size() {
        let long = "x".repeat(16 * 1024);
        assert_eq!(key_hash(&LOGIN_FAILURES, &long).len(), 32);
        assert_ne!(
            key_hash(&LOGIN_FAILURES, "a@example.com"),
            key_hash(&LOGIN_ATTEMPTS, "a@example.com")
        );
    }

    #[test]
    fn the_client_is_the_right_most_entry_of_the_last_forwarded_line() {
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(client_key(&h, Some(peer)), "10.0.0.9");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.7"),
        );
        assert_eq!(client_key(&h, Some(peer)), "203.0.113.7");
        // A second line: the last one's right-most entry, whatever the
        // client wrote in the first.
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        assert_eq!(client_key(&h, Some(peer)), "198.51.100.2");
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("9.9.9.9"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("8.8.8.8, 198.51.100.2"),
        );
        assert_eq!(client_key(&h, Some(peer)), "198.51.100.2");
        // Not an address, or an empty last entry: the peer.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, evil"));
        assert_eq!(client_key(&h, Some(peer)), "10.0.0.9");
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4,"));
        assert_eq!(client_key(&h, Some(peer)), "10.0.0.9");
        // IPv6: one key per /64.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("2001:db8:1:2:aaaa::1"),
        );
        assert_eq!(client_key(&h, Some(peer)), "2001:db8:1:2::/64");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("2001:db8:1:2:bbbb::9"),
        );
        assert_eq!(client_key(&h, Some(peer)), "2001:db8:1:2::/64");
        assert_eq!(retry_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
