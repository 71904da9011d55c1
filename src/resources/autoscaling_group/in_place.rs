//! Rolling a new release out on the instances there (the single shape):
//! the release command the boot script installs (`bookstore-release KEY
//! SHA256`) fetches and checks the binary, switches to it and restarts the
//! app, whose sockets systemd keeps, so no request is lost; it switches
//! back and fails when the new binary does not answer. Run through Systems
//! Manager Run Command on every instance in service, one after another;
//! then the group is moved to the launch template version, so a
//! replacement instance boots the same release.

use std::time::Duration;

use super::{describe, AutoScalingGroup};
use crate::cloud::run_command::{self, RunError};
use crate::cloud::{Cloud, CloudError, Phase, SdkResultExt};
use crate::resources::launch_template;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;

use super::refresh::TemplateVersion;

/// The command the boot script installs on the instances.
pub const RELEASE_COMMAND: &str = "/usr/local/sbin/bookstore-release";

/// The release a launch template version boots: its artifact key and sha256.
async fn release_of(
    cloud: &Cloud,
    id: &str,
    wanted: &TemplateVersion,
) -> Result<(String, String), CloudError> {
    let version: i64 = wanted.version.parse().map_err(|_| {
        CloudError::invalid(
            id,
            format!("launch template version {wanted} is not a number"),
        )
    })?;
    let read = launch_template::versions(cloud, id, &wanted.id, Some(version)).await?;
    let (_, vars) = read
        .first()
        .and_then(|v| v.launch_template_data())
        .and_then(launch_template::user_data_of)
        .ok_or_else(|| {
            CloudError::invalid(
                id,
                format!("launch template version {wanted} has no user data of this tool"),
            )
        })?;
    Ok((vars.key, vars.sha256))
}

impl AutoScalingGroup {
    /// Rolls `wanted`'s release out on the group's instances in service,
    /// then points the group at `wanted`.
    pub(super) async fn roll_out_in_place(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        wanted: &TemplateVersion,
    ) -> Result<(), CloudError> {
        let (key, sha) = release_of(cloud, id, wanted).await?;
        let g = describe(cloud, id, group).await?.ok_or_else(|| {
            CloudError::invalid(id, format!("group {group} is not there to roll out on"))
        })?;
        let instances: Vec<String> = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        let line = format!(
            "{RELEASE_COMMAND} {} {}",
            crate::cloud::run_command::quote(&key),
            crate::cloud::run_command::quote(&sha)
        );
        let limit = cloud.timeouts.for_kind(super::KIND, Phase::Rollout);
        let poll = cloud.poll.max(Duration::from_millis(10));
        for instance in &instances {
            cloud.reporter.status(
                id,
                &format!(
                    "rolling release {} out on {instance} in place",
                    &sha[..12.min(sha.len())]
                ),
            );
            let comment = format!(
                "bookstore-infra release {} on group {group}",
                &sha[..12.min(sha.len())]
            );
            let out = run_command::run(cloud, instance, &line, &comment, limit, poll)
                .await
                .map_err(|e| match e {
                    RunError::Cloud(c) => c,
                    other => CloudError::invalid(id, format!("rolling out on {instance}: {other}")),
                })?;
            if out.exit_code != 0 {
                let said = last_lines(&format!("{}\n{}", out.stdout, out.stderr), 8);
                return Err(CloudError::invalid(
                    id,
                    format!(
                        "the new release did not take over on {instance} (command {}, exit status {}); \
                         the instance went back to the release it ran:\n{said}",
                        out.command_id, out.exit_code
                    ),
                ));
            }
        }
        // Replacements boot this release from now on.
        cloud
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(&wanted.id)
                    .version(&wanted.version)
                    .build(),
            )
            .send()
            .await
            .ctx(id, "UpdateAutoScalingGroup")?;
        cloud.reporter.note(&format!(
            "{id}: release {} rolled out in place on {} instance(s) of {group}",
            &sha[..12.min(sha.len())],
            instances.len()
        ));
        Ok(())
    }
}

/// The last `n` non-empty lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_keeps_what_the_command_said_last() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("", 3), "");
    }
}
