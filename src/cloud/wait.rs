//! How long waits may last, and who hears about them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Which part of a resource's life a wait belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Creating or modifying, until the resource is ready for its dependents.
    Create,
    /// Rolling a change out through the resource (an Auto Scaling group's
    /// instance refresh), until it has taken effect everywhere.
    Rollout,
    /// Deleting, including retrying while something still uses it, until it is gone.
    Delete,
}

/// How long a create of a kind without a `[timeouts]` key may wait.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a delete may wait when nothing else was said (the stack's
/// `[timeouts] delete` default).
pub const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long each wait may last, per resource kind and phase. The engine
/// fills it in from what each kind asks of the stack's `[timeouts]` (its
/// `ResourceKind::timeout`); a kind or phase not named gets the defaults.
#[derive(Debug, Clone)]
pub struct WaitLimits {
    limits: Arc<HashMap<(&'static str, Phase), Duration>>,
    create: Duration,
    delete: Duration,
}

impl Default for WaitLimits {
    fn default() -> Self {
        WaitLimits {
            limits: Arc::default(),
            create: DEFAULT_CREATE_TIMEOUT,
            delete: DEFAULT_DELETE_TIMEOUT,
        }
    }
}

impl WaitLimits {
    /// Limits from `(kind, phase, limit)` triples, with `delete` for any
    /// delete not named.
    pub fn new(
        limits: impl IntoIterator<Item = (&'static str, Phase, Duration)>,
        delete: Duration,
    ) -> Self {
        WaitLimits {
            limits: Arc::new(limits.into_iter().map(|(k, p, d)| ((k, p), d)).collect()),
            create: DEFAULT_CREATE_TIMEOUT,
            delete,
        }
    }

    /// How long a wait on a resource of `kind` may last in `phase`.
    pub fn for_kind(&self, kind: &'static str, phase: Phase) -> Duration {
        self.limits
            .get(&(kind, phase))
            .copied()
            .unwrap_or(match phase {
                Phase::Create | Phase::Rollout => self.create,
                Phase::Delete => self.delete,
            })
    }
}

/// Hears what a long operation is doing, to show it (progress bars, lines,
/// or nothing).
pub trait Reporter: Send + Sync {
    /// Work on `id` begins (`what`: "creating", "deleting"...).
    fn start(&self, id: &str, what: &str);
    /// A state change while waiting.
    fn status(&self, id: &str, msg: &str);
    /// Work on `id` ended.
    fn finish(&self, id: &str, ok: bool, msg: &str);
    /// A message not tied to a resource.
    fn note(&self, msg: &str);
}

/// Reports nothing (reads and plans).
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: &str, _: &str) {}
    fn status(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: bool, _: &str) {}
    fn note(&self, _: &str) {}
}
