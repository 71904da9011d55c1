//! `exec` on Fargate: the app's command in a running task, through ECS
//! Exec (`ecs:ExecuteCommand` and the Session Manager data channel,
//! [`super::session`]).
//!
//! The task is one of the service's that runs, whose address is a healthy
//! target of the load balancer, and whose ECS Exec agent (the
//! `ExecuteCommandAgent` managed agent of its `app` container) is
//! RUNNING: ExecuteCommand refuses a task whose agent is not connected
//! (`TargetNotConnectedException`, Amazon ECS API Reference).
//!
//! ECS Exec runs the command in a pseudo terminal and reports no exit
//! status ([`super::session`]). The app reports its own: `exec` runs
//! `bookstore --report-exit ARGS`, and the app's last line of output,
//! `bookstore-exit-status: N`, is taken off the output and becomes the
//! exit status. Without it (the process was killed, or the binary is older
//! than the flag) the status is unknown, and `exec` fails.

use std::time::Duration;

use super::session::{self, Options};
use super::ExecError;
use crate::cloud::{Cloud, CloudError};
use crate::resources::ecs_service::APP_CONTAINER;
use crate::resources::ecs_service::{self, tasks::Task};

/// The flag that makes the app print its exit status last.
pub const REPORT_EXIT: &str = "--report-exit";
/// The line the app ends with under [`REPORT_EXIT`].
pub const EXIT_LINE: &str = "bookstore-exit-status: ";
/// The task `exec` runs in: `wanted` (an id or ARN) if given, else the
/// first healthy task whose ECS Exec agent is RUNNING. A healthy task
/// whose agent is still starting is waited for, up to `wait`.
pub async fn choose(
    cloud: &Cloud,
    stack: &str,
    wanted: Option<&str>,
    wait: Duration,
    poll: Duration,
    report: impl Fn(&str),
) -> Result<(String, Task), ExecError> {
    let start = tokio::time::Instant::now();
    loop {
        let (cluster, all) = ecs_service::tasks::running(cloud, stack)
            .await?
            .ok_or_else(|| ExecError::NoService(stack.into()))?;
        let candidates: Vec<&Task> = all
            .iter()
            .filter(|t| t.healthy)
            .filter(|t| wanted.is_none_or(|w| t.id == w || t.arn == w))
            .collect();
        if candidates.is_empty() {
            let which = wanted.map(|w| format!(" with id {w}")).unwrap_or_default();
            return Err(ExecError::NoHealthyTask(stack.into(), which));
        }
        if let Some(t) = candidates.iter().find(|t| t.agent == "RUNNING") {
            return Ok((cluster, (*t).clone()));
        }
        let states = candidates
            .iter()
            .map(|t| format!("{} agent {}", t.id, t.agent.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ");
        if start.elapsed() >= wait {
            return Err(ExecError::NoExecAgent {
                stack: stack.into(),
                states,
                waited: start.elapsed(),
            });
        }
        report(&format!("waiting for an ECS Exec agent to run: {states}"));
        tokio::time::sleep(poll).await;
    }
}

/// What the command printed and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its output (standard output and error as the terminal merged them),
    /// with the terminal's `\r\n` back to `\n` and the status line taken off.
    pub output: Vec<u8>,
    pub exit_code: Option<i32>,
}

/// Runs `args` (`bookstore ...`) in `task` and waits for its end, up to
/// `timeout`.
pub async fn run(
    cloud: &Cloud,
    cluster: &str,
    task: &Task,
    args: &[String],
    timeout: Duration,
) -> Result<Outcome, ExecError> {
    let mut words = vec![args[0].clone(), REPORT_EXIT.to_string()];
    words.extend(args[1..].iter().cloned());
    let out = cloud
        .ecs
        .execute_command()
        .cluster(cluster)
        .task(&task.arn)
        .container(APP_CONTAINER)
        .interactive(true)
        .command(session::command_line(&words))
        .send()
        .await
        .map_err(|e| {
            let e = crate::cloud::api_error("exec", "ExecuteCommand", e);
            match e.code() {
                Some("TargetNotConnectedException") => ExecError::NotConnected {
                    task: task.id.clone(),
                    message: e.to_string(),
                },
                _ => ExecError::Cloud(e),
            }
        })?;
    let s = out
        .session()
        .ok_or_else(|| CloudError::invalid("exec", "ExecuteCommand returned no session"))?;
    let (url, token) = match (s.stream_url(), s.token_value()) {
        (Some(u), Some(t)) => (u, t),
        _ => {
            return Err(CloudError::invalid("exec", "ExecuteCommand returned no stream URL").into())
        }
    };
    let got = session::run_with(url, token, timeout, tls(), |_, _| {})
        .await
        .map_err(|e| ExecError::Session {
            task: task.id.clone(),
            source: Box::new(e),
        })?;
    let mut bytes = got.stdout;
    bytes.extend(got.stderr);
    Ok(take_status(&bytes, got.exit_code))
}

/// The output without the terminal's carriage returns and without the
/// app's status line, and the status (the protocol's, else the line's).
pub fn take_status(raw: &[u8], protocol: Option<i32>) -> Outcome {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let trimmed = text.trim_end_matches('\n');
    // The app writes `\n` and the line, whatever its output ended with.
    let (body, last) = match trimmed.rsplit_once('\n') {
        Some((b, l)) => (b.to_string(), l),
        None => (String::new(), trimmed),
    };
    match last
        .strip_prefix(EXIT_LINE)
        .map(|n| n.trim().parse::<i32>())
    {
        Some(Ok(code)) => Outcome {
            output: body.into_bytes(),
            exit_code: protocol.or(Some(code)),
        },
        _ => Outcome {
            output: text.into_bytes(),
            exit_code: protocol,
        },
    }
}

/// TLS for the data channel (`wss://`): rustls with the web's root
/// authorities and the AWS-LC provider the SDK uses (more than one
/// provider is built in, so none is the process default).
fn tls() -> Options {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .ok()
        .map(|c| tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(c)));
    Options {
        connector,
        terminal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_is_taken_off_the_output() {
        let o = take_status(b"granted\r\n\r\nbookstore-exit-status: 0\r\n", None);
        assert_eq!(
            (o.output.as_slice(), o.exit_code),
            (&b"granted\n"[..], Some(0))
        );
        // Output that did not end its line keeps it so.
        let o = take_status(b"error: no user\r\nbookstore-exit-status: 2\r\n", None);
        assert_eq!(o.exit_code, Some(2));
        assert_eq!(o.output, b"error: no user");
        let o = take_status(b"bookstore-exit-status: 1", None);
        assert_eq!((o.output.as_slice(), o.exit_code), (&b""[..], Some(1)));
        // Killed before it could say: unknown, and the output kept whole.
        let o = take_status(b"half a line", None);
        assert_eq!(
            (o.output.as_slice(), o.exit_code),
            (&b"half a line"[..], None)
        );
        // Only the last line counts: output cannot fake an earlier one.
        let o = take_status(b"bookstore-exit-status: 0\nreal end\n", None);
        assert_eq!(o.exit_code, None);
        // The protocol's own status, when it gives one, wins.
        let o = take_status(b"x\nbookstore-exit-status: 0\n", Some(4));
        assert_eq!(o.exit_code, Some(4));
    }

    #[tokio::test]
    async fn the_data_channel_has_tls_with_an_explicit_provider() {
        // With two providers built in, rustls has no process default: a
        // `wss://` connection would panic without one named. Against a
        // server that speaks no TLS it fails as a connection error.
        assert!(tls().connector.is_some());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut c, _) = l.accept().await.unwrap();
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let url = format!("wss://127.0.0.1:{port}/v1/data-channel/s?role=publish_subscribe");
        let e = session::run_with(&url, "t", Duration::from_secs(5), tls(), |_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(e, session::SessionError::Connect { .. }), "{e}");
    }
}
