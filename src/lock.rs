//! One `up` or `destroy` per stack at a time, with no extra database.
//!
//! The lock is an SSM parameter, `/bookstore-infra/<stack>/lock`, created
//! with `Overwrite=false`: creation is atomic, so of two runs only one
//! succeeds. It holds who took it and a heartbeat the holder refreshes. A
//! lock is stale when its heartbeat is older than the timeout, or when it
//! was taken on this host by a process that no longer runs (a run killed
//! with SIGKILL); a stale lock is taken over. `--force-unlock` removes any lock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::{ParameterType, Tag};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::cloud::{api_error, Cloud, CloudError};
use crate::engine::TAG_STACK;

/// How often the holder refreshes its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum LockError {
    #[error("stack `{stack}` is locked by another run: {holder}. If that run is dead, wait for the lock to go stale ({timeout}s after its last heartbeat) or run again with --force-unlock")]
    Held {
        stack: String,
        holder: Holder,
        timeout: u64,
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

pub fn parameter_name(stack: &str) -> String {
    format!("/bookstore-infra/{stack}/lock")
}

/// A held lock; [`Lock::release`] gives it back.
pub struct Lock {
    cloud: Cloud,
    name: String,
    heartbeat: JoinHandle<()>,
}

async fn put(
    cloud: &Cloud,
    stack: &str,
    name: &str,
    h: &Holder,
    overwrite: bool,
) -> Result<bool, CloudError> {
    let mut req = cloud
        .ssm
        .put_parameter()
        .name(name)
        .r#type(ParameterType::String)
        .value(serde_json::to_string(h).expect("serialisable"))
        .overwrite(overwrite)
        .description("bookstore-infra run lock");
    if !overwrite {
        req = req.tags(
            Tag::builder()
                .key(TAG_STACK)
                .value(stack)
                .build()
                .expect("key and value set"),
        );
    }
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = api_error("lock", "PutParameter", e);
            if e.code() == Some("ParameterAlreadyExists") {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The current holder, if any.
pub async fn holder(cloud: &Cloud, stack: &str) -> Result<Option<Holder>, CloudError> {
    match cloud
        .ssm
        .get_parameter()
        .name(parameter_name(stack))
        .send()
        .await
    {
        Ok(o) => Ok(o.parameter().and_then(|p| p.value()).map(|v| {
            serde_json::from_str(v).unwrap_or(Holder {
                host: "?".into(),
                pid: 0,
                command: v.to_string(),
                started: 0,
                heartbeat: 0,
            })
        })),
        Err(e) => {
            let e = api_error("lock", "GetParameter", e);
            if e.code() == Some("ParameterNotFound") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Removes the lock whoever holds it.
pub async fn force_unlock(cloud: &Cloud, stack: &str) -> Result<(), CloudError> {
    match cloud
        .ssm
        .delete_parameter()
        .name(parameter_name(stack))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = api_error("lock", "DeleteParameter", e);
            if e.code() == Some("ParameterNotFound") {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

impl Lock {
    /// Takes the stack's lock for `command`, or says who holds it.
    pub async fn acquire(
        cloud: &Cloud,
        stack: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<Lock, LockError> {
        let name = parameter_name(stack);
        let me = Holder {
            host: hostname(),
            pid: std::process::id(),
            command: command.into(),
            started: now(),
            heartbeat: now(),
        };
        for _ in 0..3 {
            if put(cloud, stack, &name, &me, false).await? {
                let hb_cloud = cloud.clone();
                let hb_stack = stack.to_string();
                let hb_name = name.clone();
                let mut hb = me.clone();
                let heartbeat = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(HEARTBEAT).await;
                        hb.heartbeat = now();
                        let _ = put(&hb_cloud, &hb_stack, &hb_name, &hb, true).await;
                    }
                });
                return Ok(Lock {
                    cloud: cloud.clone(),
                    name,
                    heartbeat,
                });
            }
            match holder(cloud, stack).await? {
                // Released between our two calls: try again.
                None => continue,
                Some(h) if is_stale(&h, timeout, &me.host, now()) => {
                    cloud
                        .reporter
                        .note(&format!("taking over the stale lock of {h}"));
                    force_unlock(cloud, stack).await?;
                }
                Some(h) => {
                    return Err(LockError::Held {
                        stack: stack.into(),
                        holder: h,
                        timeout: timeout.as_secs(),
                    })
                }
            }
        }
        let h = holder(cloud, stack).await?.unwrap_or(me);
        Err(LockError::Held {
            stack: stack.into(),
            holder: h,
            timeout: timeout.as_secs(),
        })
    }

    pub async fn release(self) -> Result<(), CloudError> {
        self.heartbeat.abort();
        match self
            .cloud
            .ssm
            .delete_parameter()
            .name(&self.name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = api_error("lock", "DeleteParameter", e);
                if e.code() == Some("ParameterNotFound") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
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
}
