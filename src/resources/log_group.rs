//! `logs:log-group`: where the instances ship the app's journal.
//!
//! The group's name carries the stack (`/bookstore-infra/<stack>/app`), so
//! one `DescribeLogGroups` by name prefix finds the candidates; their tags
//! (`ListTagsForResource`, one call each) confirm ownership. Retention is
//! changed in place (`PutRetentionPolicy`).

use async_trait::async_trait;
use serde_json::Value;

use super::gone_ok;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "logs:log-group";

/// The prefix of every log group a stack owns.
pub fn prefix(stack: &str) -> String {
    format!("/bookstore-infra/{stack}/")
}

/// The log group the instances ship the app's journal to. The boot script
/// derives the same name from the stack's name.
pub fn app_group(stack: &str) -> String {
    format!("{}app", prefix(stack))
}

/// A log group's ARN without the `:*` DescribeLogGroups appends to `arn`:
/// IAM policies name log streams as `<group ARN>:log-stream:<name>`.
fn bare_arn(arn: &str) -> &str {
    arn.strip_suffix(":*").unwrap_or(arn)
}

pub struct LogGroup;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("logs", "describe_log_groups", "DescribeLogGroups", &["logs:DescribeLogGroups"]),
    r("logs", "list_tags_for_resource", "ListTagsForResource", &["logs:ListTagsForResource"]),
    w("logs", "create_log_group", "CreateLogGroup", &["logs:CreateLogGroup", "logs:TagResource"]),
    w("logs", "delete_log_group", "DeleteLogGroup", &["logs:DeleteLogGroup"]),
    w("logs", "put_retention_policy", "PutRetentionPolicy", &["logs:PutRetentionPolicy"]),
];

#[async_trait]
impl ResourceKind for LogGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Names are unique: `ResourceAlreadyExistsException`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("name"), in_place("retention_days")];
        A
    }

    // The instance role's policy naming the group does not keep it.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // Paged by nextToken, up to 50 a page (DescribeLogGroups).
        let groups = cloud
            .logs
            .describe_log_groups()
            .log_group_name_prefix(prefix(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeLogGroups")?;
        let mut out = Vec::new();
        for g in &groups {
            let (Some(name), Some(arn)) = (g.log_group_name(), g.arn()) else {
                continue;
            };
            let arn = g.log_group_arn().unwrap_or_else(|| bare_arn(arn));
            let tags = cloud
                .logs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .ctx(KIND, "ListTagsForResource")?;
            let Some(id) = super::owner_id(
                tags.tags()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
                stack,
            ) else {
                continue;
            };
            out.push(
                Observed::new(KIND, id, name)
                    .prop("name", name)
                    .prop(
                        "retention_days",
                        g.retention_in_days()
                            .map(Value::from)
                            .unwrap_or(Value::Null),
                    )
                    .attr("arn", arn),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let tags = r.tags.iter().cloned().collect();
        match cloud
            .logs
            .create_log_group()
            .log_group_name(name)
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = api_error(&r.id, "CreateLogGroup", e);
                if e.code() != Some("ResourceAlreadyExistsException") {
                    return Err(e);
                }
                // Ours from an interrupted run (the read found it not, or
                // it was made since), or someone else's: the tags tell.
                let arn = self.arn_of(cloud, &r.id, name).await?;
                let tags = cloud
                    .logs
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .ctx(&r.id, "ListTagsForResource")?;
                let owner = super::owner_id(
                    tags.tags()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                    &r.stack,
                );
                super::adopt_if_ours(r, &format!("a log group named {name}"), owner)?;
            }
        }
        let days = r.i64("retention_days")?;
        put_retention(cloud, &r.id, name, days).await?;
        let arn = self.arn_of(cloud, &r.id, name).await?;
        Ok(Observed::new(KIND, &r.id, name)
            .prop("name", name)
            .prop("retention_days", days)
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let days = r.i64("retention_days")?;
        put_retention(cloud, &r.id, &current.physical_id, days).await?;
        Ok(current.clone().prop("retention_days", days))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        // `ResourceNotFoundException` when already gone.
        gone_ok(
            cloud
                .logs
                .delete_log_group()
                .log_group_name(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteLogGroup"),
        )
    }
}

impl LogGroup {
    /// The ARN of the group named exactly `name` (a prefix search may find
    /// longer names too).
    async fn arn_of(&self, cloud: &Cloud, id: &str, name: &str) -> Result<String, CloudError> {
        let groups = cloud
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(id, "DescribeLogGroups")?;
        groups
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .and_then(|g| g.log_group_arn().or_else(|| g.arn().map(bare_arn)))
            .map(str::to_string)
            .ok_or_else(|| CloudError::invalid(id, format!("log group {name} not found")))
    }
}

async fn put_retention(cloud: &Cloud, id: &str, name: &str, days: i64) -> Result<(), CloudError> {
    cloud
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days as i32)
        .send()
        .await
        .map(|_| ())
        .ctx(id, "PutRetentionPolicy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::LOG_RETENTION_DAYS as RETENTION_DAYS;

    #[test]
    fn names_and_arns() {
        assert_eq!(app_group("demo"), "/bookstore-infra/demo/app");
        assert!(app_group("demo").starts_with(&prefix("demo")));
        assert_eq!(
            bare_arn("arn:aws:logs:us-east-1:1:log-group:/x:*"),
            "arn:aws:logs:us-east-1:1:log-group:/x"
        );
        assert!(RETENTION_DAYS.contains(&30) && !RETENTION_DAYS.contains(&31));
    }
}
