//! One `up` or `destroy` per stack at a time, with no extra database.
//!
//! The lock is an S3 object, `bookstore-infra/<stack>/lock.json`, in a
//! private bucket per account and region ([`bucket_name`]) created on first
//! use. Every change to it is a conditional write, S3's compare-and-swap
//! ("Add preconditions to S3 operations with conditional requests", Amazon
//! S3 User Guide; Terraform's S3 backend locks the same way since 1.10):
//! - taking a free lock is a PutObject with `If-None-Match: *`: of several
//!   runs only one creates it, the others get 412 `PreconditionFailed` (or
//!   409 `ConditionalRequestConflict` when their write raced another, which
//!   the guide says to retry);
//! - taking over a stale lock is a PutObject with `If-Match: <etag read>`:
//!   of several runs that saw the same stale lock, exactly one replaces it;
//!   the others get 412 and, reading again, find the winner's fresh lock;
//! - a heartbeat is a PutObject with `If-Match: <my last etag>`: a 412 means
//!   another run took the lock over, so it is lost, and nothing is written;
//! - release is a DeleteObject with `If-Match: <my last etag>` ("conditional
//!   deletes", same page), so a run never deletes a lock that is no longer its
//!   own.
//!
//! Every write carries a random nonce, so two writes never have the same
//! content, hence never the same ETag.
//!
//! Why not an SSM parameter (the lock used to be one): PutParameter has no
//! compare-and-swap. `Overwrite=false` only makes the *creation* exclusive;
//! replacing a stale lock needs a delete then a create, and two runs that
//! both saw the lock stale each delete whatever is there, possibly the
//! other's fresh lock, and both proceed. A heartbeat must overwrite
//! unconditionally, so a run that was paused past the timeout overwrites the
//! lock taken over from it. Parameter versions only order writes after the
//! fact, they cannot refuse one; and Parameter Store keeps only the 100 most
//! recent versions, deleting the oldest at each new one (the
//! `ParameterMaxVersionLimitExceeded` page of the SSM API reference), so a
//! heartbeat every 30 s erases the history within an hour.
//!
//! A lock is stale when its heartbeat is older than the timeout by S3's
//! clock, or when it was taken on this very machine (same host name, boot
//! id and pid namespace) by a process that no longer runs (a run killed
//! with SIGKILL); nothing else takes a lock from a run that may still be
//! alive ([`liveness`]). `--force-unlock` removes any lock.
//!
//! Holding the lock is a lease ([`Fence`]): the holder may change resources
//! only while its last *confirmed* heartbeat (a conditional write S3
//! accepted, counted from when it was sent) is younger than the lease, which
//! is shorter than the timeout after which others may take the lock over. A
//! run that was stopped (SIGSTOP, a suspended laptop, a long GC pause) finds
//! its lease expired, confirms with a conditional write first and, if the
//! lock was taken over meanwhile, stops without changing anything.

mod fence;
mod liveness;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::cloud::{api_error, Cloud, CloudError};

/// How often the holder refreshes its heartbeat at most: the interval is
/// `min(HEARTBEAT, timeout / 4)`.
const HEARTBEAT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum LockError {
    #[error("stack `{stack}` is locked by another run: {holder}, {}. If that run is dead, wait for the lock to go stale ({timeout}s after its last heartbeat), run again with --lock-wait, or with --force-unlock", match .age { Some(a) => format!("last heartbeat {a}s ago by S3's clock"), None => "last heartbeat at an unknown time (S3's answer had no date)".to_string() })]
    Held {
        stack: String,
        holder: Holder,
        /// Seconds since its last heartbeat, by S3's clock.
        age: Option<u64>,
        timeout: u64,
    },
    #[error("lost the lock of stack `{stack}`: {}; stopping without changing anything more", match .holder { Some(h) => format!("it was taken over by {h}"), None => "it was removed (--force-unlock?)".to_string() })]
    Lost {
        stack: String,
        /// Who holds it now, if anyone.
        holder: Option<Holder>,
    },
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub heartbeat: u64,
    /// Random per write: no two writes have the same ETag.
    #[serde(default)]
    pub nonce: String,
    /// The holder's kernel boot id, empty where it could not be read (or
    /// written by an older version): see [`liveness`].
    #[serde(default)]
    pub boot_id: String,
    /// The holder's pid namespace, likewise.
    #[serde(default)]
    pub pid_ns: String,
}

/// Seconds since the epoch as a UTC time.
fn utc(secs: u64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_secs(secs as i64)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// Names the run. Its start is shown as its own clock wrote it, never as
/// an age against this machine's clock.
impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, started {} by its clock)",
            self.command,
            self.pid,
            self.host,
            utc(self.started)
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn nonce() -> String {
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub use liveness::{stale, Host, Stale};

/// The heartbeat interval for a stale timeout: `min(30 s, timeout / 4)`.
pub fn heartbeat_interval(timeout: Duration) -> Duration {
    HEARTBEAT.min(timeout / 4).max(Duration::from_millis(10))
}

/// How long a confirmed heartbeat lets the holder act: three quarters of the
/// timeout, the last quarter a margin for the time a request takes and the
/// second-resolution of S3's timestamps, by which others measure the
/// heartbeat's age.
pub fn lease(timeout: Duration) -> Duration {
    timeout * 3 / 4
}

/// The lock bucket of an account in a region. Not the artifact bucket's
/// pattern (`<stack>-artifacts-<account>-<region>`), and shared by every
/// stack, so it carries no stack's tag.
pub use fence::Fence;
use fence::{Held, Shared};
pub use store::{bucket_name, ensure_bucket, force_unlock, holder, object_key, place, Place};
use store::{missing, read, refused, write, Cond, Seen};

/// A held lock; [`Lock::release`] gives it back.
pub struct Lock {
    fence: Fence,
    heartbeat: JoinHandle<()>,
}

/// One attempt: the lock, or who holds it (and its heartbeat's age).
async fn try_take(
    cloud: &Cloud,
    p: &Place,
    command: &str,
    timeout: Duration,
) -> Result<Result<Held, Seen>, CloudError> {
    let here = Host::this();
    let mut me = Holder {
        host: here.name.clone(),
        pid: std::process::id(),
        command: command.into(),
        started: now(),
        heartbeat: now(),
        nonce: nonce(),
        boot_id: here.boot_id.clone().unwrap_or_default(),
        pid_ns: here.pid_ns.clone().unwrap_or_default(),
    };
    let mut cond = Cond::Absent;
    // Each pass either writes, or reads a lock another run wrote meanwhile.
    for _ in 0..5 {
        me.heartbeat = now();
        me.nonce = nonce();
        let sent = Instant::now();
        let sent_wall = SystemTime::now();
        if let Some(etag) = write(cloud, p, &me, &cond).await? {
            return Ok(Ok(Held {
                me,
                etag,
                confirmed: sent,
                confirmed_wall: sent_wall,
                lost: None,
            }));
        }
        match read(cloud, p).await? {
            // Released between our two calls: try to create it again.
            None => cond = Cond::Absent,
            Some(seen) => match stale(&seen.holder, seen.age, timeout, &here) {
                Some(why) => {
                    cloud.reporter.note(&format!(
                        "taking over the lock of {}: {why} (the timeout is {}s)",
                        seen.holder,
                        timeout.as_secs()
                    ));
                    cond = Cond::Is(seen.etag);
                }
                None => return Ok(Err(seen)),
            },
        }
    }
    Ok(Err(read(cloud, p).await?.unwrap_or(Seen {
        holder: me,
        etag: String::new(),
        age: None,
    })))
}

impl Lock {
    /// Takes the stack's lock for `command`, or says at once who holds it.
    pub async fn acquire(
        cloud: &Cloud,
        stack: &str,
        command: &str,
        stale_after: Duration,
    ) -> Result<Lock, LockError> {
        Self::acquire_waiting(cloud, stack, command, stale_after, None).await
    }

    /// Takes the stack's lock for `command`, or says who holds it. With
    /// `wait`, polls (every one to five readiness polls, jittered: 1-5 s in
    /// production) for up to `wait` until the lock is free or stale before
    /// giving up, naming the holder while it waits.
    pub async fn acquire_waiting(
        cloud: &Cloud,
        stack: &str,
        command: &str,
        stale_after: Duration,
        wait: Option<Duration>,
    ) -> Result<Lock, LockError> {
        let p = place(cloud, stack).await?;
        let start = Instant::now();
        let mut told: Option<(String, u32, u64)> = None;
        let held = loop {
            match try_take(cloud, &p, command, stale_after).await? {
                Ok(held) => break held,
                Err(Seen { holder: h, age, .. }) => {
                    let waited = start.elapsed();
                    let Some(left) = wait.and_then(|w| w.checked_sub(waited)) else {
                        return Err(LockError::Held {
                            stack: stack.into(),
                            holder: h,
                            age: age.map(|a| a.as_secs()),
                            timeout: stale_after.as_secs(),
                        });
                    };
                    let who = (h.host.clone(), h.pid, h.started);
                    if told.as_ref() != Some(&who) {
                        cloud.reporter.note(&format!(
                            "waiting up to {}s for the lock of stack `{stack}`, held by {h}",
                            left.as_secs()
                        ));
                        told = Some(who);
                    }
                    let base = cloud.poll.max(Duration::from_millis(10));
                    let pause = base / 5 + base.mul_f64(rand::thread_rng().gen_range(0.0..0.8));
                    tokio::time::sleep(pause.min(left.max(Duration::from_millis(1)))).await;
                }
            }
        };
        let fence = Fence(Arc::new(Shared {
            cloud: cloud.clone(),
            stack: stack.into(),
            place: p,
            lease: lease(stale_after),
            held: tokio::sync::Mutex::new(held),
        }));
        let hb = fence.clone();
        let every = heartbeat_interval(stale_after);
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match hb.heartbeat().await {
                    Ok(()) => {}
                    Err(e @ LockError::Lost { .. }) => {
                        hb.0.cloud.reporter.note(&e.to_string());
                        return;
                    }
                    // A transient failure: the lease runs out unless a
                    // later heartbeat gets through.
                    Err(e) => {
                        hb.0.cloud
                            .reporter
                            .note(&format!("lock heartbeat failed: {e}"))
                    }
                }
            }
        });
        Ok(Lock { fence, heartbeat })
    }

    /// The fence for the executor's mutating calls (`Executor::fence`).
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Gives the lock back, unless it is no longer this run's: then
    /// [`LockError::Lost`], and the other run's lock stays.
    pub async fn release(self) -> Result<(), LockError> {
        self.heartbeat.abort();
        let s = &self.fence.0;
        let held = s.held.lock().await;
        if let Some(h) = &held.lost {
            return Err(s.lost(h.clone()));
        }
        let deleted = s
            .cloud
            .s3
            .delete_object()
            .bucket(&s.place.bucket)
            .key(&s.place.key)
            .expected_bucket_owner(&s.place.account)
            .if_match(&held.etag)
            .send()
            .await
            .map_err(|e| api_error("lock", "DeleteObject", e));
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if missing(&e) => Ok(()),
            Err(e) if refused(&e) => {
                let h = read(&s.cloud, &s.place).await?.map(|seen| seen.holder);
                Err(s.lost(h))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(host: &str, pid: u32, heartbeat: u64) -> Holder {
        Holder {
            host: host.into(),
            pid,
            command: "up".into(),
            started: heartbeat,
            heartbeat,
            nonce: String::new(),
            boot_id: String::new(),
            pid_ns: String::new(),
        }
    }

    #[test]
    fn a_holder_is_named_by_its_own_clock() {
        let s = h("ci-2", 42, 1_767_225_600).to_string();
        assert_eq!(
            s,
            "`up` (pid 42 on ci-2, started 2026-01-01T00:00:00Z by its clock)"
        );
    }

    #[test]
    fn heartbeats_come_well_within_the_lease() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        for t in [2, 60, 600, 3600] {
            let t = Duration::from_secs(t);
            assert!(lease(t) < t);
            assert!(heartbeat_interval(t) * 2 < lease(t), "{t:?}");
        }
    }

    #[test]
    fn names_never_clash_with_a_stacks_artifact_bucket() {
        let b = bucket_name("123456789012", "eu-west-1");
        assert_eq!(b, "bookstore-infra-locks-123456789012-eu-west-1");
        assert!(b.len() <= 63);
        assert!(!b.contains("-artifacts-"));
        assert_eq!(object_key("net"), "bookstore-infra/net/lock.json");
    }

    #[test]
    fn old_locks_without_a_nonce_still_read() {
        let v = r#"{"host":"a","pid":1,"command":"up","started":1,"heartbeat":2}"#;
        let h: Holder = serde_json::from_str(v).unwrap();
        assert_eq!(h.nonce, "");
        // Nor a boot id: such a holder is never taken for local.
        assert_eq!((h.boot_id.as_str(), h.pid_ns.as_str()), ("", ""));
        assert!(!Host::this().is_local(&h));
        assert_ne!(nonce(), nonce());
    }

    #[test]
    fn lost_names_the_new_holder() {
        let e = LockError::Lost {
            stack: "net".into(),
            holder: Some(h("ci-2", 42, now())),
        };
        let s = e.to_string();
        assert!(s.contains("lost the lock of stack `net`"), "{s}");
        assert!(s.contains("pid 42 on ci-2"), "{s}");
    }
}
