//! Running a `bookstore` command on one of the stack's instances, without
//! SSH: Systems Manager Run Command (`AWS-RunShellScript`), which the
//! instance role's AmazonSSMManagedInstanceCore policy lets the instances'
//! agent take.
//!
//! Only the app's own command line runs (`bookstore ...`): `exec` is for
//! the app's administration (`bookstore admin grant EMAIL`), run as the
//! app's user with the app's environment, exactly as its service runs it.
//! A shell on an instance is Session Manager's job, with its own audit
//! trail; refusing anything else here keeps a typo or a pasted line from
//! running as root. (IAM, not this check, is the security boundary: the
//! caller's `ssm:SendCommand` permission.)
//!
//! On Fargate the command runs in one of the service's tasks through ECS
//! Exec ([`fargate`], [`session`]).

pub mod fargate;
pub mod session;

use std::time::Duration;

use thiserror::Error;

use crate::cloud::run_command::RunError;
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::resources::{self, autoscaling_group, target_group};

/// The program `exec` runs.
pub const PROGRAM: &str = "bookstore";
pub use crate::cloud::run_command::DOCUMENT;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("exec runs the app's command only: `{PROGRAM} ...`, not `{0}`")]
    NotTheApp(String),
    #[error("stack {0} has no Auto Scaling group (is it deployed with `up`?)")]
    NoGroup(String),
    #[error("stack {0} has no instance both InService and healthy in its target group{1}")]
    NoHealthyInstance(String, String),
    #[error("no healthy instance of stack {stack} has its Systems Manager agent online after {waited:?}: {states} (the agent registers shortly after boot; an instance whose agent lost its connection cannot take commands)")]
    NoAgentOnline {
        stack: String,
        states: String,
        waited: Duration,
    },
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
    #[error("stack {0} has no ECS service (is it deployed with `up`?)")]
    NoService(String),
    #[error("stack {0} has no running task whose address is a healthy target{1}")]
    NoHealthyTask(String, String),
    #[error("no healthy task of stack {stack} has its ECS Exec agent running after {waited:?}: {states} (the agent starts shortly after the task; a task started before ECS Exec was enabled has none)")]
    NoExecAgent {
        stack: String,
        states: String,
        waited: Duration,
    },
    #[error("ECS Exec cannot reach task {task}: {message}")]
    NotConnected { task: String, message: String },
    #[error("the ECS Exec session in task {task} failed: {source}")]
    Session {
        task: String,
        #[source]
        source: Box<session::SessionError>,
    },
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

pub use crate::cloud::run_command::quote as shell_quote;

/// The shell line `AWS-RunShellScript` runs for `args` (`bookstore ...`):
/// the app's binary as the app's user, with the service's environment
/// file (systemd reads it as for the service), its database credential
/// and no way to the instance metadata service (as the service has),
/// waiting for it and passing its output and exit status through.
pub fn command_line(args: &[String]) -> Result<String, ExecError> {
    match args.first() {
        Some(p) if p == PROGRAM => {}
        _ => return Err(ExecError::NotTheApp(args.join(" "))),
    }
    let quoted: Vec<String> = args[1..].iter().map(|a| shell_quote(a)).collect();
    let mut line = String::from(
        "systemd-run --quiet --wait --pipe --collect --uid=bookstore --gid=bookstore \
         --property=EnvironmentFile=/etc/bookstore/bookstore.env \
         --property=LoadCredential=db-password:/etc/bookstore/db-app-password \
         '--property=IPAddressDeny=169.254.169.254 fd00:ec2::254' -- /usr/local/bin/bookstore",
    );
    for q in quoted {
        line.push(' ');
        line.push_str(&q);
    }
    Ok(line)
}

/// The stack's instances that are InService in its Auto Scaling group and
/// healthy in its target group (in the group alone when there is none),
/// sorted.
pub async fn healthy_instances(cloud: &Cloud, stack: &str) -> Result<Vec<String>, ExecError> {
    let reg = resources::registry();
    let kind = |k: &str| reg.get(k).expect("registered kind");
    let groups = kind(autoscaling_group::KIND).read_all(cloud, stack).await?;
    let group = groups
        .iter()
        .find(|g| g.id == "asg")
        .ok_or_else(|| ExecError::NoGroup(stack.into()))?;
    let tgs = kind(target_group::KIND).read_all(cloud, stack).await?;
    let described = cloud
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group.physical_id)
        .send()
        .await
        .ctx("asg", "DescribeAutoScalingGroups")?;
    let in_service: Vec<String> = described
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| {
            i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                && i.health_status()
                    .is_some_and(|h| h.eq_ignore_ascii_case("healthy"))
        })
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    // Without a load balancer (the single shape) the group's own health
    // check, EC2's status checks, is the judge.
    if tgs.is_empty() {
        let mut healthy = in_service;
        healthy.sort();
        return Ok(healthy);
    }
    // Healthy behind any of the groups, InService in the group; sorted.
    let mut healthy = std::collections::BTreeSet::new();
    for tg in &tgs {
        let Some(arn) = tg.attrs.get("arn") else {
            continue;
        };
        healthy.extend(target_group::healthy_targets(cloud, &tg.id, arn).await?);
    }
    Ok(healthy
        .into_iter()
        .filter(|id| in_service.contains(id))
        .collect())
}

/// The Systems Manager agent's state on each of `instances`: `Online`,
/// `ConnectionLost` or `Inactive` (DescribeInstanceInformation,
/// `PingStatus`); an instance whose agent has not registered yet is not
/// listed. Run Command takes only instances whose agent is online
/// (SendCommand answers `InvalidInstanceId` otherwise).
pub async fn agents(
    cloud: &Cloud,
    instances: &[String],
) -> Result<Vec<(String, String)>, ExecError> {
    use aws_sdk_ssm::types::InstanceInformationStringFilter as F;
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    let filter = F::builder()
        .key("InstanceIds")
        .set_values(Some(instances.to_vec()))
        .build()
        .map_err(|e| CloudError::invalid("exec", e.to_string()))?;
    let pages: Vec<_> = cloud
        .ssm
        .describe_instance_information()
        .filters(filter)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::new();
    for info in pages {
        let info = info.ctx("exec", "DescribeInstanceInformation")?;
        if let Some(id) = info.instance_id() {
            let ping = info
                .ping_status()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            out.push((id.to_string(), ping));
        }
    }
    Ok(out)
}

/// The instance `exec` sends its command to: `wanted` if given, else the
/// first of the stack's healthy instances (see [`healthy_instances`])
/// whose Systems Manager agent is online. A healthy instance whose agent
/// is not online yet is waited for, up to `wait`, polling every `poll`,
/// with a report of each instance's state; then the refusal names them.
pub async fn choose(
    cloud: &Cloud,
    stack: &str,
    wanted: Option<&str>,
    wait: Duration,
    poll: Duration,
    report: impl Fn(&str),
) -> Result<String, ExecError> {
    let start = tokio::time::Instant::now();
    loop {
        let healthy = healthy_instances(cloud, stack).await?;
        let candidates: Vec<String> = match wanted {
            Some(w) if healthy.iter().any(|h| h == w) => vec![w.to_string()],
            Some(w) => {
                return Err(ExecError::NoHealthyInstance(
                    stack.into(),
                    format!(" with id {w}"),
                ))
            }
            None if healthy.is_empty() => {
                return Err(ExecError::NoHealthyInstance(stack.into(), String::new()))
            }
            None => healthy,
        };
        let agents = agents(cloud, &candidates).await?;
        let state = |i: &String| {
            agents
                .iter()
                .find(|(a, _)| a == i)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| "not registered".into())
        };
        if let Some(i) = candidates.iter().find(|i| state(i) == "Online") {
            return Ok(i.clone());
        }
        let states = candidates
            .iter()
            .map(|i| format!("{i} {}", state(i)))
            .collect::<Vec<_>>()
            .join(", ");
        if start.elapsed() >= wait {
            return Err(ExecError::NoAgentOnline {
                stack: stack.into(),
                states,
                waited: start.elapsed(),
            });
        }
        report(&format!(
            "waiting for a Systems Manager agent to be online: {states}"
        ));
        tokio::time::sleep(poll).await;
    }
}

pub use crate::cloud::run_command::Outcome;

/// Sends `line` to `instance` and waits for its outcome, up to `timeout`,
/// polling every `poll` (see [`crate::cloud::run_command::run`]).
pub async fn run(
    cloud: &Cloud,
    stack: &str,
    instance: &str,
    line: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<Outcome, ExecError> {
    let comment = format!("bookstore-infra exec on stack {stack}");
    crate::cloud::run_command::run(cloud, instance, line, &comment, timeout, poll)
        .await
        .map_err(|e| match e {
            RunError::Timeout {
                command_id,
                instance,
                status,
                waited,
            } => ExecError::Timeout {
                command_id,
                instance,
                status,
                waited,
            },
            RunError::NotRun {
                command_id,
                instance,
                status,
                details,
            } => ExecError::NotRun {
                command_id,
                instance,
                status,
                details,
            },
            RunError::Cloud(e) => ExecError::Cloud(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_argument_is_quoted_for_the_shell() {
        assert_eq!(shell_quote("a@b.example"), "a@b.example");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("x; rm -rf /"), "'x; rm -rf /'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id)`id`"), "'$(id)`id`'");
        let line = command_line(&v(&["bookstore", "admin", "grant", "o'neil@x.example"])).unwrap();
        assert!(
            line.ends_with(r"/usr/local/bin/bookstore admin grant 'o'\''neil@x.example'"),
            "{line}"
        );
        // The shell gives back exactly the arguments.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {}",
                ["$(id)", "a b", "it's", "`x`", "\\", "*"]
                    .map(shell_quote)
                    .join(" ")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "$(id)\na b\nit's\n`x`\n\\\n*\n"
        );
    }

    #[test]
    fn only_the_app_runs() {
        for bad in [&["sh", "-c", "id"][..], &["/usr/local/bin/bookstore"], &[]] {
            assert!(matches!(
                command_line(&v(bad)),
                Err(ExecError::NotTheApp(_))
            ));
        }
        assert!(command_line(&v(&["bookstore"])).is_ok());
    }
}
