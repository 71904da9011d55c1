//! Systems Manager Run Command: one shell line on one instance
//! (`AWS-RunShellScript`), waited for until it ends.

use std::time::Duration;

use thiserror::Error;

use super::{Cloud, CloudError, SdkResultExt};

/// The document that runs shell commands on Linux instances.
pub const DOCUMENT: &str = "AWS-RunShellScript";

/// Quotes `s` for a POSIX shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes (a `'` inside closes,
/// escapes and reopens them).
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("command {command_id} on {instance} did not finish within {waited:?} (last status {status})")]
    Timeout {
        command_id: String,
        instance: String,
        status: String,
        waited: Duration,
    },
    #[error("command {command_id} on {instance} ended {status}: {details}")]
    NotRun {
        command_id: String,
        instance: String,
        status: String,
        details: String,
    },
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// What a command did on the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub command_id: String,
    pub instance: String,
    /// `Success` or `Failed`.
    pub status: String,
    /// The command's exit status.
    pub exit_code: i32,
    /// At most the first 24,000 characters of each (GetCommandInvocation).
    pub stdout: String,
    pub stderr: String,
}

/// Sends `line` to `instance` and waits for its outcome, up to `timeout`,
/// polling every `poll`.
///
/// Right after SendCommand, GetCommandInvocation may answer
/// `InvocationDoesNotExist` (the invocation is created asynchronously);
/// then the status goes Pending, InProgress (or Delayed), and ends Success,
/// Failed, Cancelled, TimedOut, or one of the delivery failures (Systems
/// Manager API reference, GetCommandInvocation: `Status`, `ResponseCode`:
/// "-1 if the command hasn't completed"). Success and Failed carry the
/// command's exit status; the others mean it did not run to its end.
pub async fn run(
    cloud: &Cloud,
    instance: &str,
    line: &str,
    comment: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<Outcome, RunError> {
    use aws_sdk_ssm::types::CommandInvocationStatus as S;
    let secs = timeout.as_secs().clamp(30, 172_800) as i32;
    let sent = cloud
        .ssm
        .send_command()
        .document_name(DOCUMENT)
        .instance_ids(instance)
        .parameters("commands", vec![line.to_string()])
        .parameters("executionTimeout", vec![secs.to_string()])
        .timeout_seconds(secs)
        .comment(comment)
        .send()
        .await
        .ctx(instance, "SendCommand")?;
    let command_id = sent
        .command()
        .and_then(|c| c.command_id())
        .ok_or_else(|| CloudError::invalid(instance, "SendCommand returned no command id"))?
        .to_string();
    let start = tokio::time::Instant::now();
    let mut status = String::from("(not yet visible)");
    loop {
        if start.elapsed() > timeout {
            return Err(RunError::Timeout {
                command_id,
                instance: instance.into(),
                status,
                waited: timeout,
            });
        }
        let got = cloud
            .ssm
            .get_command_invocation()
            .command_id(&command_id)
            .instance_id(instance)
            .send()
            .await
            .ctx(instance, "GetCommandInvocation");
        let inv = match got {
            Ok(i) => i,
            Err(e) if e.code() == Some("InvocationDoesNotExist") => {
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let s = inv.status().cloned().unwrap_or(S::Pending);
        status = s.as_str().to_string();
        match s {
            S::Pending | S::InProgress | S::Delayed => {
                tokio::time::sleep(poll).await;
            }
            S::Success | S::Failed => {
                let code = inv.response_code();
                return Ok(Outcome {
                    command_id,
                    instance: instance.into(),
                    status,
                    // A failure without an exit status is still a failure.
                    exit_code: if code < 0 && s == S::Failed { 1 } else { code },
                    stdout: inv.standard_output_content().unwrap_or_default().into(),
                    stderr: inv.standard_error_content().unwrap_or_default().into(),
                });
            }
            _ => {
                return Err(RunError::NotRun {
                    command_id,
                    instance: instance.into(),
                    status,
                    details: inv.status_details().unwrap_or_default().into(),
                })
            }
        }
    }
}
