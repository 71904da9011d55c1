//! `dlm:lifecycle-policy`: daily snapshots of the stack's data volume,
//! taken and expired by Data Lifecycle Manager (an AWS-managed schedule:
//! nothing of the stack's has to run for them).
//!
//! The policy selects volumes by the tag [`SNAPSHOT_TAG`] = the stack's
//! name, tags its snapshots the same way, and keeps the newest `keep`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dlm::types::{
    CreateRule, IntervalUnitValues, PolicyDetails, PolicyTypeValues, ResourceTypeValues,
    RetainRule, Schedule, SettablePolicyStateValues, Tag,
};
use serde_json::{json, Value};

use super::volume::SNAPSHOT_TAG;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{
    in_place, AttrSpec, Observed, Repeat, Resolved, ResourceKind, TAG_ID, TAG_STACK,
};

pub const KIND: &str = "dlm:lifecycle-policy";
/// The name of the policy's one schedule.
const SCHEDULE: &str = "daily";

pub struct LifecyclePolicy;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("dlm", "get_lifecycle_policies", "GetLifecyclePolicies", &["dlm:GetLifecyclePolicies"]),
    r("dlm", "get_lifecycle_policy", "GetLifecyclePolicy", &["dlm:GetLifecyclePolicy"]),
    w("dlm", "create_lifecycle_policy", "CreateLifecyclePolicy", &["dlm:CreateLifecyclePolicy", "dlm:TagResource", "iam:PassRole"]),
    w("dlm", "update_lifecycle_policy", "UpdateLifecyclePolicy", &["dlm:UpdateLifecyclePolicy", "iam:PassRole"]),
    w("dlm", "delete_lifecycle_policy", "DeleteLifecyclePolicy", &["dlm:DeleteLifecyclePolicy"]),
];

/// What the policy's execution role may do: snapshot the stack's tagged
/// volumes, tag the snapshots as it makes them, delete the snapshots it
/// made, and look ("Using AWS Identity and Access Management with Amazon
/// Data Lifecycle Manager", the actions of AWSDataLifecycleManagerServiceRole
/// that an EBS snapshot policy uses, narrowed to the stack).
pub fn role_statements(stack: &str, volumes: &str, snapshots: &str) -> Value {
    let tagged = json!({"StringEquals": {format!("aws:ResourceTag/{SNAPSHOT_TAG}"): stack}});
    json!([
        {
            "Sid": "SnapshotTheStacksVolumes",
            "Effect": "Allow",
            "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            "Resource": volumes,
            "Condition": tagged,
        },
        {
            "Sid": "MakeSnapshots",
            "Effect": "Allow",
            "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            "Resource": snapshots,
        },
        {
            "Sid": "TagNewSnapshots",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": snapshots,
            "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSnapshot", "CreateSnapshots"]}},
        },
        {
            "Sid": "ExpireItsSnapshots",
            "Effect": "Allow",
            "Action": "ec2:DeleteSnapshot",
            "Resource": snapshots,
            "Condition": tagged,
        },
        {
            "Sid": "Look",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"],
            "Resource": "*",
        },
    ])
}

/// The policy's details for the wanted properties.
fn details(r: &Resolved) -> Result<PolicyDetails, CloudError> {
    let target = &r.props["target_tag"];
    let key = target["key"].as_str().unwrap_or(SNAPSHOT_TAG);
    let value = target["value"].as_str().unwrap_or(&r.stack);
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    Ok(PolicyDetails::builder()
        .policy_type(PolicyTypeValues::EbsSnapshotManagement)
        .resource_types(ResourceTypeValues::Volume)
        .target_tags(tag(key, value))
        .schedules(
            Schedule::builder()
                .name(SCHEDULE)
                .copy_tags(false)
                .tags_to_add(tag(key, value))
                .create_rule(
                    CreateRule::builder()
                        .interval(24)
                        .interval_unit(IntervalUnitValues::Hours)
                        .times(r.str("time")?)
                        .build(),
                )
                .retain_rule(RetainRule::builder().count(r.i64("keep")? as i32).build())
                .build(),
        )
        .build())
}

/// The wanted properties a policy's details and settings amount to.
fn observed(id: &str, policy_id: &str, p: &aws_sdk_dlm::types::LifecyclePolicy) -> Observed {
    let d = p.policy_details();
    let target = d
        .and_then(|d| d.target_tags().first())
        .map(|t| json!({"key": t.key(), "value": t.value()}))
        .unwrap_or(Value::Null);
    let schedule = d.and_then(|d| d.schedules().first());
    let rule = schedule.and_then(|s| s.create_rule());
    let time = rule
        .and_then(|c| c.times().first().cloned())
        .filter(|_| rule.and_then(|c| c.interval()) == Some(24))
        .unwrap_or_default();
    let keep = schedule
        .and_then(|s| s.retain_rule())
        .and_then(|r| r.count())
        .unwrap_or_default();
    Observed::new(KIND, id, policy_id)
        .prop("description", p.description().unwrap_or_default())
        .prop(
            "execution_role_arn",
            p.execution_role_arn().unwrap_or_default(),
        )
        .prop("state", p.state().map(|s| s.as_str()).unwrap_or_default())
        .prop("target_tag", target)
        .prop("time", time)
        .prop("keep", keep)
}

#[async_trait]
impl ResourceKind for LifecyclePolicy {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            in_place("description"),
            in_place("execution_role_arn"),
            in_place("state"),
            in_place("target_tag"),
            in_place("time"),
            in_place("keep"),
        ];
        A
    }

    /// CreateLifecyclePolicy has no client token: a repeat makes a second
    /// policy.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // GetLifecyclePolicies has no paging: one answer holds every policy.
        let list = cloud
            .dlm
            .get_lifecycle_policies()
            .tags_to_add(format!("{SNAPSHOT_TAG}={stack}"))
            .send()
            .await
            .ctx(KIND, "GetLifecyclePolicies")?;
        let mut out = Vec::new();
        for s in list.policies() {
            let tags = s.tags();
            let ours = tags.and_then(|t| t.get(TAG_STACK)).map(String::as_str) == Some(stack);
            let (Some(id), Some(policy_id), true) =
                (tags.and_then(|t| t.get(TAG_ID)), s.policy_id(), ours)
            else {
                continue;
            };
            let got = cloud
                .dlm
                .get_lifecycle_policy()
                .policy_id(policy_id)
                .send()
                .await;
            match got {
                Ok(o) => {
                    if let Some(p) = o.policy() {
                        out.push(observed(id, policy_id, p));
                    }
                }
                Err(e) => {
                    // Deleted between the list and the read.
                    let e = api_error(KIND, "GetLifecyclePolicy", e);
                    if e.code() != Some("ResourceNotFoundException") {
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let tags: HashMap<String, String> = r.tags.iter().cloned().collect();
        let req = cloud
            .dlm
            .create_lifecycle_policy()
            .execution_role_arn(r.str("execution_role_arn")?)
            .description(r.str("description")?)
            .state(SettablePolicyStateValues::Enabled)
            .policy_details(details(r)?)
            .set_tags(Some(tags));
        // A role made moments before is refused for seconds (IAM's
        // eventual consistency: "The provided execution role does not
        // exist"), a refusal that makes nothing.
        let out = cloud
            .settle(&r.id, "CreateLifecyclePolicy", || req.clone().send())
            .await?;
        let policy_id = out
            .policy_id()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateLifecyclePolicy returned no id"))?;
        Ok(wanted(r, policy_id))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let req = cloud
            .dlm
            .update_lifecycle_policy()
            .policy_id(&current.physical_id)
            .execution_role_arn(r.str("execution_role_arn")?)
            .description(r.str("description")?)
            .state(SettablePolicyStateValues::Enabled)
            .policy_details(details(r)?);
        cloud
            .settle(&r.id, "UpdateLifecyclePolicy", || req.clone().send())
            .await?;
        Ok(wanted(r, &current.physical_id))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let r = cloud
            .dlm
            .delete_lifecycle_policy()
            .policy_id(&current.physical_id)
            .send()
            .await
            .map(|_| ())
            .ctx(&current.id, "DeleteLifecyclePolicy");
        super::gone_ok(r)
    }
}

fn wanted(r: &Resolved, policy_id: &str) -> Observed {
    let mut o = Observed::new(KIND, &r.id, policy_id);
    for k in [
        "description",
        "execution_role_arn",
        "state",
        "target_tag",
        "time",
        "keep",
    ] {
        if let Some(v) = r.props.get(k) {
            o.props.insert(k.into(), v.clone());
        }
    }
    o
}
