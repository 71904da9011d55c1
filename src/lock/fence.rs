//! The lease a run holds while it has the lock: every change asks the
//! fence first.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cloud::{Cloud, CloudError};

use super::store::Place;
use super::*;

/// The holder's side of the lock, shared by the heartbeat and the fence.
pub(super) struct Held {
    /// The lock as last written by this run.
    pub(super) me: Holder,
    pub(super) etag: String,
    /// When the last accepted write was sent, by the monotonic and the wall
    /// clock (the monotonic one stops during a suspend on Linux).
    pub(super) confirmed: Instant,
    pub(super) confirmed_wall: SystemTime,
    /// Set once the lock was found taken over or removed.
    pub(super) lost: Option<Option<Holder>>,
}

pub(super) struct Shared {
    pub(super) cloud: Cloud,
    pub(super) stack: String,
    pub(super) place: Place,
    pub(super) lease: Duration,
    pub(super) held: tokio::sync::Mutex<Held>,
}

/// Lets a run act only while it certainly holds the lock. Cheap to clone.
#[derive(Clone)]
pub struct Fence(pub(super) Arc<Shared>);

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
    pub(super) fn lost(&self, holder: Option<Holder>) -> LockError {
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
            Some(seen) if seen.etag == held.etag => {}
            other => {
                let h = other.map(|seen| seen.holder);
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
                Some(seen) if seen.etag == held.etag => continue,
                other => {
                    let h = other.map(|seen| seen.holder);
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
