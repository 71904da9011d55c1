//! Per-resource progress: spinners on a terminal, plain log lines otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub use crate::cloud::{Reporter, Silent};

/// One line per event on stderr, with the time since the resource started.
pub struct Lines {
    started: Mutex<HashMap<String, Instant>>,
    /// The last state printed per resource, and when.
    last: Mutex<HashMap<String, (String, Instant)>>,
}

/// How often a wait whose state does not change is still reported, so a
/// CI log shows a long wait (a database creating for twenty minutes) is alive.
const REPEAT_AFTER: Duration = Duration::from_secs(60);

impl Lines {
    pub fn new() -> Self {
        Lines {
            started: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
        }
    }

    fn elapsed(&self, id: &str) -> Duration {
        self.started
            .lock()
            .unwrap()
            .get(id)
            .map(|s| s.elapsed())
            .unwrap_or_default()
    }
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress quotes the cloud (states, reasons): shown, never obeyed.
fn line(s: String) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "{}",
        crate::terminal::visible(&s, crate::terminal::Shown::Lines)
    );
}

impl Reporter for Lines {
    fn start(&self, id: &str, what: &str) {
        self.started
            .lock()
            .unwrap()
            .insert(id.to_string(), Instant::now());
        line(format!("{id}: {what}"));
    }

    fn status(&self, id: &str, msg: &str) {
        // Repeated identical states while polling are noise in a CI log:
        // printed again only once a minute, with the time waited so far.
        let mut last = self.last.lock().unwrap();
        if last
            .get(id)
            .is_some_and(|(l, at)| l == msg && at.elapsed() < REPEAT_AFTER)
        {
            return;
        }
        last.insert(id.to_string(), (msg.to_string(), Instant::now()));
        drop(last);
        line(format!("{id}: {msg} [{:.0?}]", self.elapsed(id)));
    }

    fn finish(&self, id: &str, ok: bool, msg: &str) {
        let mark = if ok { "done" } else { "FAILED" };
        line(format!("{id}: {mark}: {msg} [{:.1?}]", self.elapsed(id)));
    }

    fn note(&self, msg: &str) {
        line(msg.to_string());
    }
}

/// A spinner per resource in progress.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for Bars {
    fn start(&self, id: &str, what: &str) {
        let pb = self.multi.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} [{elapsed}]")
                .expect("static template"),
        );
        pb.set_prefix(id.to_string());
        pb.set_message(what.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        self.bars.lock().unwrap().insert(id.to_string(), pb);
    }

    fn status(&self, id: &str, msg: &str) {
        if let Some(pb) = self.bars.lock().unwrap().get(id) {
            pb.set_message(
                crate::terminal::visible(msg, crate::terminal::Shown::Line).into_owned(),
            );
        }
    }

    fn finish(&self, id: &str, ok: bool, msg: &str) {
        if let Some(pb) = self.bars.lock().unwrap().remove(id) {
            pb.set_style(
                ProgressStyle::with_template("  {prefix:.bold} {msg} [{elapsed}]")
                    .expect("static template"),
            );
            let mark = if ok { "✓" } else { "✗" };
            let msg = crate::terminal::visible(msg, crate::terminal::Shown::Line);
            pb.finish_with_message(format!("{mark} {msg}"));
        }
    }

    fn note(&self, msg: &str) {
        let _ = self
            .multi
            .println(crate::terminal::visible(msg, crate::terminal::Shown::Lines));
    }
}
