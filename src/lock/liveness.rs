//! When a lock's holder may be taken for gone.
//!
//! Only two things prove a holder gone:
//! - its heartbeat is older than the timeout, the age measured on one clock,
//!   S3's (the lock object's `Last-Modified` against the `Date` of S3's own
//!   answer, see [`super::store::read`]); the holder's clock and the
//!   reader's are never compared, so no skew between them matters;
//! - it ran on this very machine, in this very boot and process namespace,
//!   and its process no longer exists (a run killed with SIGKILL).
//!
//! A host name alone says little: two CI runners, two laptops or two
//! containers may share one. A holder counts as local only when its host
//! name, its kernel's boot id (`/proc/sys/kernel/random/boot_id`, new at
//! every boot: a same-named machine, or this one before a reboot, differs)
//! and its pid namespace (`/proc/self/ns/pid`: containers share the host's
//! kernel, hence its boot id, but not its pids) are all this process's.
//! Where any of them cannot be read (no `/proc`, as on macOS), liveness
//! cannot be checked, and the heartbeat's age alone decides.

use std::path::Path;
use std::time::Duration;

use super::Holder;

/// Who this process is, as far as a lock can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// The kernel's boot id; `None` where it cannot be read.
    pub boot_id: Option<String>,
    /// The pid namespace (`pid:[4026531836]`); `None` where unreadable.
    pub pid_ns: Option<String>,
}

impl Host {
    /// This process's host.
    pub fn this() -> Host {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        Host {
            name: super::hostname(),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty()),
        }
    }

    /// Whether `h` was taken by a process of this machine, boot and pid
    /// namespace, so that its pid can be looked up here.
    pub fn is_local(&self, h: &Holder) -> bool {
        let same = |mine: &Option<String>, theirs: &str| mine.as_deref() == Some(theirs);
        h.host == self.name && same(&self.boot_id, &h.boot_id) && same(&self.pid_ns, &h.pid_ns)
    }
}

/// Whether process `pid` of this pid namespace is verifiably gone: `/proc`
/// is there, and has no entry for it. Without `/proc` nothing is proven.
fn pid_gone(pid: u32) -> bool {
    pid != 0 && Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Why a holder no longer protects anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Taken on this machine (same boot, same pid namespace) by a process
    /// that no longer runs.
    Dead,
    /// No heartbeat for this long, by S3's clock.
    Silent(Duration),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Dead => write!(
                f,
                "it was taken on this machine, in this boot, by a process that no longer runs"
            ),
            Stale::Silent(age) => write!(
                f,
                "its last heartbeat is {}s old by S3's clock",
                age.as_secs()
            ),
        }
    }
}

/// Whether `h`, whose heartbeat is `age` old by S3's clock (`None`: unknown),
/// may be taken over from `here`, and why.
pub fn stale(h: &Holder, age: Option<Duration>, timeout: Duration, here: &Host) -> Option<Stale> {
    if here.is_local(h) && pid_gone(h.pid) {
        return Some(Stale::Dead);
    }
    match age {
        Some(age) if age > timeout => Some(Stale::Silent(age)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &Host, pid: u32) -> Holder {
        Holder {
            host: host.name.clone(),
            pid,
            command: "up".into(),
            started: 0,
            heartbeat: 0,
            nonce: String::new(),
            boot_id: host.boot_id.clone().unwrap_or_default(),
            pid_ns: host.pid_ns.clone().unwrap_or_default(),
        }
    }

    /// A pid that ran here and is gone.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn this_linux_host_knows_its_boot_and_namespace() {
        let here = Host::this();
        assert!(
            here.boot_id.as_deref().is_some_and(|b| b.len() == 36),
            "{here:?}"
        );
        assert!(
            here.pid_ns
                .as_deref()
                .is_some_and(|n| n.starts_with("pid:[")),
            "{here:?}"
        );
    }

    #[test]
    fn only_a_local_holder_whose_process_is_gone_is_dead_before_its_time() {
        let here = Host::this();
        let t = Duration::from_secs(600);
        let fresh = Some(Duration::from_secs(5));
        let gone = dead_pid();
        // Alive here: held.
        assert_eq!(
            stale(&holder(&here, std::process::id()), fresh, t, &here),
            None
        );
        // Gone here: dead at once.
        assert_eq!(
            stale(&holder(&here, gone), fresh, t, &here),
            Some(Stale::Dead)
        );
        // Same host name, another boot (a same-named machine, or this one
        // before a reboot): cannot be checked, so held while it beats.
        let mut other_boot = holder(&here, gone);
        other_boot.boot_id = "00000000-0000-0000-0000-000000000000".into();
        assert_eq!(stale(&other_boot, fresh, t, &here), None);
        // Same host and boot, another pid namespace (a container).
        let mut container = holder(&here, gone);
        container.pid_ns = "pid:[1]".into();
        assert_eq!(stale(&container, fresh, t, &here), None);
        // A lock written where /proc could not be read (macOS), or by an
        // older version: no boot id, so not local.
        let mut unknown = holder(&here, gone);
        unknown.boot_id = String::new();
        assert_eq!(stale(&unknown, fresh, t, &here), None);
        // Where this process cannot read /proc, nothing is local.
        let blind = Host {
            boot_id: None,
            pid_ns: None,
            ..here.clone()
        };
        assert_eq!(stale(&holder(&here, gone), fresh, t, &blind), None);
    }

    #[test]
    fn the_heartbeats_age_on_s3s_clock_decides_for_everyone_else() {
        let here = Host::this();
        let t = Duration::from_secs(600);
        let mut elsewhere = holder(&here, 4242);
        elsewhere.host = "ci-runner-7".into();
        // Whatever its body says: the times in it are the holder's clock.
        elsewhere.heartbeat = 1;
        assert_eq!(
            stale(&elsewhere, Some(Duration::from_secs(600)), t, &here),
            None
        );
        assert_eq!(
            stale(&elsewhere, Some(Duration::from_secs(601)), t, &here),
            Some(Stale::Silent(Duration::from_secs(601)))
        );
        // No age known (S3 sent no date): never stale.
        assert_eq!(stale(&elsewhere, None, t, &here), None);
        // A local holder still running goes stale by age like any other.
        assert_eq!(
            stale(&holder(&here, std::process::id()), Some(t * 2), t, &here),
            Some(Stale::Silent(t * 2))
        );
    }
}
