//! Reading the app's logs: the events the instances ship to the stack's
//! log group (one stream per instance, named by its id; on Fargate the
//! awslogs driver's `<prefix>/<container>/<task id>`), and their display.
//!
//! The app logs JSON lines (`tracing`'s JSON format: `timestamp`, `level`,
//! `fields.message` and the other fields, `target`); they are shown as one
//! readable line each, and anything else as it is. Either way what an
//! instance wrote reaches the terminal only through
//! [`crate::terminal::visible`]: its control characters are shown, not
//! obeyed.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use thiserror::Error;

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::resources::log_group;
use crate::terminal::{visible, Shown};

#[derive(Debug, Error)]
pub enum LogsError {
    #[error("`{0}` is not a duration: give a number and a unit, like 30s, 10m, 2h or 1d")]
    BadDuration(String),
    #[error("stack {stack} has no log group {group} (is it deployed with `up`?)")]
    NoGroup { stack: String, group: String },
    #[error("no such log stream")]
    NoStream,
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// One event of the log group.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Milliseconds since the epoch, as shipped.
    pub timestamp: i64,
    /// The stream: the instance id, or on Fargate `app/app/<task id>`
    /// (`migrate/migrate/<task id>` for the migration container).
    pub stream: String,
    pub message: String,
    pub event_id: String,
}

/// Parses `30s`, `10m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, LogsError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| LogsError::BadDuration(s.into()))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(LogsError::BadDuration(s.into())),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// Milliseconds since the epoch, `ago` before now.
pub fn since_ms(ago: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(ago).as_millis() as i64
}

/// Every event of the stack's log group from `start_ms` on, of the named
/// streams only when `streams` names any (an instance's, a task's two),
/// oldest first.
///
/// FilterLogEvents pages by `nextToken`, and may return a page with no
/// events but a token while it searches on (CloudWatch Logs API reference,
/// FilterLogEvents): the walk ends only when no token comes back.
pub async fn fetch(
    cloud: &Cloud,
    stack: &str,
    start_ms: i64,
    streams: &[String],
) -> Result<Vec<Event>, LogsError> {
    // A stream not made yet (a task's `app` container while `migrate`
    // runs, a mistyped id) is ResourceNotFoundException for the whole
    // request: each named stream is asked alone, and one missing is empty.
    let mut out = Vec::new();
    if streams.is_empty() {
        out = fetch_one(cloud, stack, start_ms, None).await?;
    }
    for s in streams {
        match fetch_one(cloud, stack, start_ms, Some(s)).await {
            Ok(events) => out.extend(events),
            Err(LogsError::NoStream) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(|e| e.timestamp);
    Ok(out)
}

async fn fetch_one(
    cloud: &Cloud,
    stack: &str,
    start_ms: i64,
    stream: Option<&str>,
) -> Result<Vec<Event>, LogsError> {
    let group = log_group::app_group(stack);
    let pages = cloud
        .logs
        .filter_log_events()
        .log_group_name(&group)
        .start_time(start_ms)
        .set_log_stream_names(stream.map(|s| vec![s.to_string()]))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(&group, "FilterLogEvents");
    let pages = match pages {
        Ok(p) => p,
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            // Which is missing, the group or the stream, the message says.
            if stream.is_some() && e.to_string().to_lowercase().contains("stream") {
                return Err(LogsError::NoStream);
            }
            return Err(LogsError::NoGroup {
                stack: stack.into(),
                group,
            });
        }
        Err(e) => return Err(e.into()),
    };
    Ok(pages
        .iter()
        .flat_map(|p| p.events())
        .map(|e| Event {
            timestamp: e.timestamp().unwrap_or_default(),
            stream: e.log_stream_name().unwrap_or_default().to_string(),
            message: e.message().unwrap_or_default().to_string(),
            event_id: e.event_id().unwrap_or_default().to_string(),
        })
        .collect())
}

/// The streams of one task on Fargate: its `app` and `migrate` containers'
/// (the awslogs driver's `<prefix>/<container>/<task id>`).
pub fn task_streams(task: &str) -> Vec<String> {
    let id = task.rsplit('/').next().unwrap_or(task);
    vec![format!("app/app/{id}"), format!("migrate/migrate/{id}")]
}

/// Polls for new events (`--follow`): each poll asks again from the
/// newest timestamp seen, as events with that very timestamp may still
/// arrive, and drops the events already returned (by event id).
pub struct Follower {
    start_ms: i64,
    seen: HashSet<String>,
}

impl Follower {
    pub fn new(start_ms: i64) -> Self {
        Follower {
            start_ms,
            seen: HashSet::new(),
        }
    }

    /// The events not returned before.
    pub async fn poll(
        &mut self,
        cloud: &Cloud,
        stack: &str,
        streams: &[String],
    ) -> Result<Vec<Event>, LogsError> {
        let events = fetch(cloud, stack, self.start_ms, streams).await?;
        let fresh: Vec<Event> = events
            .into_iter()
            .filter(|e| !self.seen.contains(&e.event_id))
            .collect();
        if let Some(newest) = fresh.iter().map(|e| e.timestamp).max() {
            if newest > self.start_ms {
                // Older ids can no longer come back: forget them.
                self.seen.clear();
                self.start_ms = newest;
            }
        }
        self.seen.extend(fresh.iter().map(|e| e.event_id.clone()));
        Ok(fresh)
    }
}

/// An event's time as RFC 3339, to the millisecond.
fn time_of(ms: i64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_millis(ms)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| ms.to_string())
}

/// One event as a readable line: time, instance, level, message, then the
/// other fields as `key=value`. A message that is not the app's JSON is
/// shown as it is, after the time and instance. Control characters are
/// shown as escapes, line feeds included: one event, one line.
pub fn render(e: &Event) -> String {
    visible(&readable(e), Shown::Line).into_owned()
}

/// An event's message as it was logged, for `--json`: the app's JSON line
/// means the same but carries no character a terminal acts on (see
/// [`Shown::Json`]); any other message is shown as [`render`] shows it.
pub fn raw(e: &Event) -> String {
    let m = e.message.trim_end();
    if serde_json::from_str::<Value>(m).is_ok() {
        visible(m, Shown::Json).replace('\n', " ")
    } else {
        visible(m, Shown::Line).into_owned()
    }
}

fn readable(e: &Event) -> String {
    let head = format!("{} {}", time_of(e.timestamp), e.stream);
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&e.message) else {
        return format!("{head} {}", e.message.trim_end());
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let level = o.get("level").map(text).unwrap_or_default();
    let fields = o.get("fields").and_then(Value::as_object);
    let message = fields
        .and_then(|f| f.get("message"))
        .or_else(|| o.get("message"))
        .map(text)
        .unwrap_or_default();
    let mut line = format!("{head} {level:<5} {message}");
    let mut extra: Vec<(String, String)> = fields
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "message")
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    if let Some(t) = o.get("target") {
        extra.push(("target".into(), text(t)));
    }
    for (k, v) in extra {
        let v = if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
            format!("{v:?}")
        } else {
            v
        };
        line.push_str(&format!(" {k}={v}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(msg: &str) -> Event {
        Event {
            timestamp: 1_700_000_000_123,
            stream: "i-0abc".into(),
            message: msg.into(),
            event_id: "1".into(),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        for bad in ["", "m", "10x", "-5m", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_json_is_shown_readably_and_other_lines_as_they_are() {
        let json = r#"{"timestamp":"2023-11-14T22:13:20.123Z","level":"WARN","fields":{"message":"slow query","ms":812,"sql":"SELECT 1"},"target":"bookstore::db"}"#;
        assert_eq!(
            render(&ev(json)),
            "2023-11-14T22:13:20.123Z i-0abc WARN  slow query ms=812 sql=\"SELECT 1\" target=bookstore::db"
        );
        assert_eq!(
            render(&ev("plain text line\n")),
            "2023-11-14T22:13:20.123Z i-0abc plain text line"
        );
        // JSON that is not an object is not the app's: shown as it is.
        assert_eq!(
            render(&ev("[1,2]")),
            "2023-11-14T22:13:20.123Z i-0abc [1,2]"
        );
    }

    #[test]
    fn what_an_instance_wrote_cannot_drive_the_terminal() {
        // A plain line hiding the previous one and writing the clipboard,
        // then forging a second event on a line of its own.
        let plain = "ok\x1b[1A\x1b[2K\x1b]52;c;ZWNobyBoaQ==\x07\r\n2023-11-14T22:13:21.000Z i-0other INFO  fake\n";
        assert_eq!(
            render(&ev(plain)),
            "2023-11-14T22:13:20.123Z i-0abc ok\\x1b[1A\\x1b[2K\\x1b]52;c;ZWNobyBoaQ==\\x07\\r\\n2023-11-14T22:13:21.000Z i-0other INFO  fake"
        );
        // The same inside the app's JSON: in the message, in a field, in
        // the level (JSON escapes decode to the raw characters).
        let json = r#"{"level":"INFO\u001b[8m","fields":{"message":"a\u202eb\u009b2J","user":"x\u0007"},"target":"t"}"#;
        let line = render(&ev(json));
        assert_eq!(
            line,
            "2023-11-14T22:13:20.123Z i-0abc INFO\\x1b[8m a\\u{202e}b\\u{9b}2J user=x\\x07 target=t"
        );
        // --json: the app's JSON means the same, with nothing raw left.
        let with_raw = "{\"m\":\"a\u{202e}b\u{9b}\"}\r\n";
        let shown = raw(&ev(with_raw));
        assert_eq!(shown, r#"{"m":"a\u202eb\u009b"}"#);
        assert_eq!(
            serde_json::from_str::<Value>(&shown).unwrap(),
            serde_json::from_str::<Value>(with_raw).unwrap()
        );
        assert_eq!(raw(&ev("plain\x1b[31m red")), "plain\\x1b[31m red");
        assert_eq!(raw(&ev(r#"{"a":1}"#)), r#"{"a":1}"#);
    }
}
