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
//! A lock is stale when its heartbeat is older than the timeout, or when it
//! was taken on this host by a process that no longer runs (a run killed
//! with SIGKILL). `--force-unlock` removes any lock.
//!
//! Holding the lock is a lease ([`Fence`]): the holder may change resources
//! only while its last *confirmed* heartbeat (a conditional write S3
//! accepted, counted from when it was sent) is younger than the lease, which
//! is shorter than the timeout after which others may take the lock over. A
//! run that was stopped (SIGSTOP, a suspended laptop, a long GC pause) finds
//! its lease expired, confirms with a conditional write first and, if the
//! lock was taken over meanwhile, stops without changing anything.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
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
    #[error("stack `{stack}` is locked by another run: {holder}. If that run is dead, wait for the lock to go stale ({timeout}s after its last heartbeat), run again with --lock-wait, or with --force-unlock")]
    Held {
        stack: String,
        holder: Holder,
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
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let age = now().saturating_sub(self.heartbeat);
        write!(
            f,
            "`{}` (pid {} on {}, started {}s ago, last heartbeat {}s ago)",
            self.command,
            self.pid,
            self.host,
            now().saturating_sub(self.started),
            age
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

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `h` no longer protects anything.
pub fn is_stale(h: &Holder, timeout: Duration, here: &str, at: u64) -> bool {
    at.saturating_sub(h.heartbeat) > timeout.as_secs() || (h.host == here && !pid_alive(h.pid))
}

/// The heartbeat interval for a stale timeout: `min(30 s, timeout / 4)`.
pub fn heartbeat_interval(timeout: Duration) -> Duration {
    HEARTBEAT.min(timeout / 4).max(Duration::from_millis(10))
}

/// How long a confirmed heartbeat lets the holder act: three quarters of the
/// timeout, the last quarter a margin for clock skew between hosts and the
/// time a request takes.
pub fn lease(timeout: Duration) -> Duration {
    timeout * 3 / 4
}

/// The lock bucket of an account in a region. Not the artifact bucket's
/// pattern (`<stack>-artifacts-<account>-<region>`), and shared by every
/// stack, so it carries no stack's tag.
pub fn bucket_name(account: &str, region: &str) -> String {
    format!("bookstore-infra-locks-{account}-{region}")
}

/// The lock object's key in the lock bucket.
pub fn object_key(stack: &str) -> String {
    format!("bookstore-infra/{stack}/lock.json")
}

/// Where a stack's lock lives.
#[derive(Debug, Clone)]
pub struct Place {
    pub account: String,
    pub bucket: String,
    pub key: String,
}

/// The stack's lock object, in this account's lock bucket.
pub async fn place(cloud: &Cloud, stack: &str) -> Result<Place, CloudError> {
    let account = cloud.account().await?;
    Ok(Place {
        bucket: bucket_name(&account, &cloud.region),
        key: object_key(stack),
        account,
    })
}

/// A 412 `PreconditionFailed` or 409 `ConditionalRequestConflict`: the
/// condition did not hold, or another conditional write raced this one;
/// either way nothing was written.
fn refused(e: &CloudError) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "HTTP 412" | "HTTP 409")
    )
}

fn missing(e: &CloudError) -> bool {
    matches!(e.code(), Some("NoSuchKey" | "NotFound" | "HTTP 404"))
}

fn no_bucket(e: &CloudError) -> bool {
    e.code() == Some("NoSuchBucket")
}

/// The condition of a write.
#[derive(Debug, Clone)]
enum Cond {
    /// Only if there is no lock (`If-None-Match: *`).
    Absent,
    /// Only if the lock is still this version (`If-Match: <etag>`).
    Is(String),
}

/// Reads the lock: its holder and ETag.
async fn read(cloud: &Cloud, p: &Place) -> Result<Option<(Holder, String)>, CloudError> {
    let got = cloud
        .s3
        .get_object()
        .bucket(&p.bucket)
        .key(&p.key)
        .expected_bucket_owner(&p.account)
        .send()
        .await
        .map_err(|e| api_error("lock", "GetObject", e));
    let o = match got {
        Ok(o) => o,
        Err(e) if missing(&e) || no_bucket(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let etag = o.e_tag().unwrap_or_default().to_string();
    let bytes = o
        .body
        .collect()
        .await
        .map_err(|e| CloudError::invalid("lock", format!("reading the lock: {e}")))?
        .into_bytes();
    let h = serde_json::from_slice(&bytes).unwrap_or_else(|_| Holder {
        host: "?".into(),
        pid: 0,
        command: String::from_utf8_lossy(&bytes).into_owned(),
        started: 0,
        heartbeat: 0,
        nonce: String::new(),
    });
    Ok(Some((h, etag)))
}

/// Writes `h` under `cond`: its new ETag, or `None` when the condition did
/// not hold. A write whose answer was lost and retried by the SDK may find
/// its own first attempt there (412): the nonce tells.
async fn write(
    cloud: &Cloud,
    p: &Place,
    h: &Holder,
    cond: &Cond,
) -> Result<Option<String>, CloudError> {
    let body = serde_json::to_vec(h).expect("serialisable");
    let send = || {
        let mut req = cloud
            .s3
            .put_object()
            .bucket(&p.bucket)
            .key(&p.key)
            .expected_bucket_owner(&p.account)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body.clone()));
        req = match cond {
            Cond::Absent => req.if_none_match("*"),
            Cond::Is(etag) => req.if_match(etag),
        };
        async move {
            req.send()
                .await
                .map_err(|e| api_error("lock", "PutObject", e))
        }
    };
    let mut sent = send().await;
    if matches!(&sent, Err(e) if no_bucket(e)) && matches!(cond, Cond::Absent) {
        ensure_bucket(cloud, p).await?;
        // CreateBucket's bucket may not be visible at once.
        sent = cloud.settle_ctx("lock", "PutObject", &send).await;
    }
    match sent {
        Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
        Err(e) if refused(&e) || (missing(&e) && matches!(cond, Cond::Is(_))) => {
            match read(cloud, p).await? {
                Some((now, etag)) if now.nonce == h.nonce => Ok(Some(etag)),
                _ => Ok(None),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates the lock bucket: private (all public access blocked), encrypted
/// at rest (SSE-S3). `BucketAlreadyOwnedByYou` means another run created it
/// first; `BucketAlreadyExists` means another account owns the name, and
/// every call names the expected owner, so such a bucket is never used.
async fn ensure_bucket(cloud: &Cloud, p: &Place) -> Result<(), CloudError> {
    let mut req = cloud.s3.create_bucket().bucket(&p.bucket);
    if cloud.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(cloud.region.as_str()))
                .build(),
        );
    }
    match req
        .send()
        .await
        .map_err(|e| api_error("lock", "CreateBucket", e))
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) if e.code() == Some("BucketAlreadyExists") => {
            return Err(CloudError::invalid(
                "lock",
                format!(
                    "the lock bucket {} belongs to another account: refusing to use it",
                    p.bucket
                ),
            ))
        }
        Err(e) => return Err(e),
    }
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    cloud
        .settle("lock", "PutPublicAccessBlock", || {
            cloud
                .s3
                .put_public_access_block()
                .bucket(&p.bucket)
                .expected_bucket_owner(&p.account)
                .public_access_block_configuration(block.clone())
                .send()
        })
        .await?;
    let sse = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .expect("algorithm set"),
                )
                .build(),
        )
        .build()
        .expect("rules set");
    cloud
        .settle("lock", "PutBucketEncryption", || {
            cloud
                .s3
                .put_bucket_encryption()
                .bucket(&p.bucket)
                .expected_bucket_owner(&p.account)
                .server_side_encryption_configuration(sse.clone())
                .send()
        })
        .await?;
    Ok(())
}

/// The current holder, if any.
pub async fn holder(cloud: &Cloud, stack: &str) -> Result<Option<Holder>, CloudError> {
    let p = place(cloud, stack).await?;
    Ok(read(cloud, &p).await?.map(|(h, _)| h))
}

/// Removes the lock whoever holds it.
pub async fn force_unlock(cloud: &Cloud, stack: &str) -> Result<(), CloudError> {
    let p = place(cloud, stack).await?;
    match cloud
        .s3
        .delete_object()
        .bucket(&p.bucket)
        .key(&p.key)
        .expected_bucket_owner(&p.account)
        .send()
        .await
        .map_err(|e| api_error("lock", "DeleteObject", e))
    {
        Ok(_) => Ok(()),
        Err(e) if missing(&e) || no_bucket(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The holder's side of the lock, shared by the heartbeat and the fence.
struct Held {
    /// The lock as last written by this run.
    me: Holder,
    etag: String,
    /// When the last accepted write was sent, by the monotonic and the wall
    /// clock (the monotonic one stops during a suspend on Linux).
    confirmed: Instant,
    confirmed_wall: SystemTime,
    /// Set once the lock was found taken over or removed.
    lost: Option<Option<Holder>>,
}

struct Shared {
    cloud: Cloud,
    stack: String,
    place: Place,
    lease: Duration,
    held: tokio::sync::Mutex<Held>,
}

/// Lets a run act only while it certainly holds the lock. Cheap to clone.
#[derive(Clone)]
pub struct Fence(Arc<Shared>);

impl Held {
    fn fresh(&self, lease: Duration) -> bool {
        self.confirmed.elapsed() < lease
            && self
                .confirmed_wall
                .elapsed()
                .is_ok_and(|waited| waited < lease)
    }
}

impl Shared {
    fn lost(&self, holder: Option<Holder>) -> LockError {
        LockError::Lost {
            stack: self.stack.clone(),
            holder,
        }
    }

    /// Confirms the lock is still this run's with a conditional write,
    /// renewing the lease. It is read first, so a run that lost it makes
    /// no write at all.
    async fn renew(&self, held: &mut Held) -> Result<(), LockError> {
        if let Some(h) = &held.lost {
            return Err(self.lost(h.clone()));
        }
        match read(&self.cloud, &self.place).await? {
            Some((_, etag)) if etag == held.etag => {}
            other => {
                let h = other.map(|(h, _)| h);
                held.lost = Some(h.clone());
                return Err(self.lost(h));
            }
        }
        // A 409 ConditionalRequestConflict (another write raced ours and
        // did not land) leaves our version in place: try again.
        for _ in 0..3 {
            let mut next = held.me.clone();
            next.heartbeat = now();
            next.nonce = nonce();
            let sent = Instant::now();
            let sent_wall = SystemTime::now();
            let cond = Cond::Is(held.etag.clone());
            if let Some(etag) = write(&self.cloud, &self.place, &next, &cond).await? {
                held.me = next;
                held.etag = etag;
                held.confirmed = sent;
                held.confirmed_wall = sent_wall;
                return Ok(());
            }
            match read(&self.cloud, &self.place).await? {
                Some((_, etag)) if etag == held.etag => continue,
                other => {
                    let h = other.map(|(h, _)| h);
                    held.lost = Some(h.clone());
                    return Err(self.lost(h));
                }
            }
        }
        Err(LockError::Cloud(CloudError::invalid(
            "lock",
            "the heartbeat kept conflicting with other writes to the lock",
        )))
    }
}

impl Fence {
    /// Ok while this run holds the lock: at once while the lease is fresh,
    /// otherwise after a conditional heartbeat. [`LockError::Lost`] once the
    /// lock was taken over or removed.
    pub async fn check(&self) -> Result<(), LockError> {
        let mut held = self.0.held.lock().await;
        if let Some(h) = &held.lost {
            return Err(self.0.lost(h.clone()));
        }
        if held.fresh(self.0.lease) {
            return Ok(());
        }
        self.0.renew(&mut held).await
    }

    /// Whether the lock was found lost.
    pub async fn is_lost(&self) -> bool {
        self.0.held.lock().await.lost.is_some()
    }

    /// The ETag of the lock as this run last wrote it.
    pub async fn etag(&self) -> String {
        self.0.held.lock().await.etag.clone()
    }

    /// Writes a heartbeat now, whatever the lease (see [`Fence::check`]).
    pub async fn heartbeat(&self) -> Result<(), LockError> {
        let mut held = self.0.held.lock().await;
        self.0.renew(&mut held).await
    }
}

/// A held lock; [`Lock::release`] gives it back.
pub struct Lock {
    fence: Fence,
    heartbeat: JoinHandle<()>,
}

/// One attempt: the lock, or who holds it.
async fn try_take(
    cloud: &Cloud,
    p: &Place,
    command: &str,
    timeout: Duration,
) -> Result<Result<Held, Holder>, CloudError> {
    let here = hostname();
    let mut me = Holder {
        host: here.clone(),
        pid: std::process::id(),
        command: command.into(),
        started: now(),
        heartbeat: now(),
        nonce: nonce(),
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
            Some((h, etag)) if is_stale(&h, timeout, &here, now()) => {
                cloud
                    .reporter
                    .note(&format!("taking over the stale lock of {h}"));
                cond = Cond::Is(etag);
            }
            Some((h, _)) => return Ok(Err(h)),
        }
    }
    Ok(Err(read(cloud, p).await?.map(|(h, _)| h).unwrap_or(me)))
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
                Err(h) => {
                    let waited = start.elapsed();
                    let Some(left) = wait.and_then(|w| w.checked_sub(waited)) else {
                        return Err(LockError::Held {
                            stack: stack.into(),
                            holder: h,
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

    /// The fence for the cloud's mutating calls (`cloud.fence`).
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
                let h = read(&s.cloud, &s.place).await?.map(|(h, _)| h);
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
        }
    }

    #[test]
    fn staleness() {
        let t = Duration::from_secs(600);
        let me = std::process::id();
        // Alive here and fresh: held.
        assert!(!is_stale(&h("here", me, 1000), t, "here", 1100));
        // Heartbeat too old: stale, wherever it runs.
        assert!(is_stale(&h("elsewhere", me, 1000), t, "here", 1601));
        // Fresh but elsewhere: cannot tell whether it runs, so held.
        assert!(!is_stale(&h("elsewhere", u32::MAX, 1000), t, "here", 1100));
        // Fresh, here, but the process is gone (killed): stale.
        assert!(is_stale(&h("here", u32::MAX, 1000), t, "here", 1100));
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
