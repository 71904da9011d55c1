//! `[logs]`: the log group the instances ship the app's journal to.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};

/// The retention periods, in days, CloudWatch Logs accepts (CloudWatch Logs
/// API reference, PutRetentionPolicy, `retentionInDays`: "Valid values are:
/// 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
/// 1827, 2192, 2557, 2922, 3288, and 3653").
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Days the app's log group keeps events unless `[logs] retention_days` says otherwise.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;

/// The log group the instances ship the app's journal to.
#[derive(Debug, Clone, PartialEq)]
pub struct Logs {
    /// Days CloudWatch Logs keeps events: one of [`LOG_RETENTION_DAYS`].
    pub retention_days: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogs {
    retention_days: Option<Spanned<i64>>,
}

pub(super) fn parse(src: &Source, raw: Option<RawLogs>) -> Result<Logs, StackError> {
    let retention_days = match raw.and_then(|l| l.retention_days) {
        Some(x) => match u32::try_from(*x.get_ref()) {
            Ok(v) if LOG_RETENTION_DAYS.contains(&v) => v,
            _ => {
                let list: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
                return Err(src.at_value(
                    &x,
                    format!(
                        "`logs.retention_days` = {}: CloudWatch Logs accepts only {}",
                        x.get_ref(),
                        list.join(", ")
                    ),
                ));
            }
        },
        None => DEFAULT_LOG_RETENTION_DAYS,
    };
    Ok(Logs { retention_days })
}

#[cfg(test)]
mod tests {
    use crate::stack::tests::{err, p};

    #[test]
    fn log_retention_is_one_cloudwatch_accepts() {
        assert_eq!(p("name = \"demo\"\n").unwrap().logs.retention_days, 30);
        let s = p("name = \"demo\"\n[logs]\nretention_days = 365\n").unwrap();
        assert_eq!(s.logs.retention_days, 365);
        for bad in ["31", "0", "-1", "3654"] {
            let e = err(&format!(
                "name = \"demo\"\n[logs]\nretention_days = {bad}\n"
            ));
            assert!(e.starts_with("stacks/t.toml:3:18:"), "{e}");
            assert!(
                e.contains("logs.retention_days") && e.contains("1, 3, 5, 7, 14, 30,"),
                "{e}"
            );
        }
        let e = err("name = \"demo\"\n[logs]\nretention = 7\n");
        assert!(e.starts_with("stacks/t.toml:3:1:"), "{e}");
    }
}
