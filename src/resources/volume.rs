//! `ec2:volume`: the EBS volume holding the single instance's data, kept
//! when the instance goes (the instance attaches it at boot). It holds
//! data: replacing or deleting it needs consent, and deleting it takes a
//! final snapshot first, waited for until complete.

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, VolumeType};

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Repeat, ReplacePolicy, Resolved, ResourceKind, TAG_STACK,
};
use crate::lifecycle::{self, Readiness};

pub const KIND: &str = "ec2:volume";
/// The tag Data Lifecycle Manager's policy selects the volume by.
pub const SNAPSHOT_TAG: &str = "bookstore-infra:snapshots";
/// The tag of a volume's final snapshot, naming the volume.
pub const FINAL_SNAPSHOT_TAG: &str = "bookstore-infra:final-snapshot-of";

pub struct Volume;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_volumes", "DescribeVolumes", &["ec2:DescribeVolumes"]),
    r("ec2", "describe_snapshots", "DescribeSnapshots", &["ec2:DescribeSnapshots"]),
    w("ec2", "create_volume", "CreateVolume", &["ec2:CreateVolume", "ec2:CreateTags"]),
    w("ec2", "modify_volume", "ModifyVolume", &["ec2:ModifyVolume"]),
    w("ec2", "create_snapshot", "CreateSnapshot", &["ec2:CreateSnapshot", "ec2:CreateTags"]),
    w("ec2", "delete_snapshot", "DeleteSnapshot", &["ec2:DeleteSnapshot"]),
    w("ec2", "delete_volume", "DeleteVolume", &["ec2:DeleteVolume"]),
];

/// The volume's state, or `None` when it is gone.
async fn state(cloud: &Cloud, id: &str, vol: &str) -> Result<Option<String>, CloudError> {
    match cloud.ec2.describe_volumes().volume_ids(vol).send().await {
        Ok(o) => Ok(o
            .volumes()
            .first()
            .and_then(|v| v.state())
            .map(|s| s.as_str().to_string())),
        Err(e) => {
            let e = api_error(id, "DescribeVolumes", e);
            if e.code() == Some("InvalidVolume.NotFound") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ResourceKind for Volume {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("zone"),
            replace("encrypted"),
            in_place("size_gib"),
            in_place("volume_type"),
        ];
        A
    }

    fn replace_policy(&self) -> ReplacePolicy {
        ReplacePolicy::RequireConfirmation
    }

    /// CreateVolume carries a client token.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let vols = cloud
            .ec2
            .describe_volumes()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeVolumes")?;
        Ok(vols
            .iter()
            .filter(|v| !matches!(v.state().map(|s| s.as_str()), Some("deleting" | "deleted")))
            .filter_map(|v| {
                let state = v.state().map(|s| s.as_str()).unwrap_or("creating");
                Some(
                    Observed::new(KIND, logical_id(v.tags(), stack)?, v.volume_id()?)
                        .prop("zone", v.availability_zone().unwrap_or_default())
                        .prop("size_gib", v.size().unwrap_or_default())
                        .prop(
                            "volume_type",
                            v.volume_type().map(|t| t.as_str()).unwrap_or_default(),
                        )
                        .prop("encrypted", v.encrypted().unwrap_or(false))
                        .attr(
                            "attached_to",
                            v.attachments()
                                .iter()
                                .find_map(|a| a.instance_id())
                                .unwrap_or_default(),
                        )
                        .attr("stack", stack)
                        .pending(state == "creating"),
                )
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let mut tags = r.tags.clone();
        if let Some(v) = r.props.get("snapshot_tag").and_then(|v| v.as_str()) {
            tags.push((SNAPSHOT_TAG.to_string(), v.to_string()));
        }
        let out = cloud
            .ec2
            .create_volume()
            .availability_zone(r.str("zone")?)
            .size(r.i64("size_gib")? as i32)
            .volume_type(VolumeType::from(r.str("volume_type")?))
            .encrypted(r.bool("encrypted"))
            .client_token(&r.token)
            .tag_specifications(tag_spec(ResourceType::Volume, &tags))
            .send()
            .await
            .ctx(&r.id, "CreateVolume")?;
        let vol = out
            .volume_id()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateVolume returned no id"))?;
        Ok(Observed::new(KIND, &r.id, vol)
            .attr("stack", r.stack.as_str())
            .prop("zone", r.str("zone")?)
            .prop("size_gib", r.i64("size_gib")?)
            .prop("volume_type", r.str("volume_type")?)
            .prop("encrypted", r.bool("encrypted")))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let want = r.i64("size_gib")?;
        let have = current
            .props
            .get("size_gib")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        if want < have {
            return Err(CloudError::invalid(
                &r.id,
                format!(
                    "volume {} holds {have} GiB and EBS volumes cannot shrink: keep `volume.size_gib` at {have} or more",
                    current.physical_id
                ),
            ));
        }
        cloud
            .ec2
            .modify_volume()
            .volume_id(&current.physical_id)
            .size(want as i32)
            .volume_type(VolumeType::from(r.str("volume_type")?))
            .send()
            .await
            .ctx(&r.id, "ModifyVolume")?;
        let mut o = current.clone();
        o.props.insert("size_gib".into(), want.into());
        o.props
            .insert("volume_type".into(), r.str("volume_type")?.into());
        Ok(o)
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let (id, vol) = (current.id.clone(), current.physical_id.clone());
        cloud
            .wait_until(
                &id,
                "available",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let Some(s) = state(cloud, &id, &vol).await? else {
                        return Ok((None, "not visible yet".into()));
                    };
                    match lifecycle::volume(&s) {
                        Readiness::Ready => Ok((Some(()), s)),
                        Readiness::Pending => Ok((None, s)),
                        Readiness::Terminal(why) => {
                            Err(CloudError::invalid(&id, format!("volume {vol} {why}")))
                        }
                    }
                },
            )
            .await?;
        Ok(current)
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let (id, vol) = (current.id.clone(), current.physical_id.clone());
        let limit = cloud.timeouts.for_kind(KIND, Phase::Delete);
        // The instance that had it is going away with its group: once it
        // is gone the volume is `available` again.
        let seen = cloud
            .wait_until(&id, "detached from the instance", limit, || async {
                match state(cloud, &id, &vol).await? {
                    None => Ok((Some(false), "gone".into())),
                    Some(s) if s == "in-use" => Ok((None, s)),
                    Some(_) => Ok((Some(true), "detached".into())),
                }
            })
            .await?;
        if !seen {
            return Ok(());
        }
        let stack = current.attrs.get("stack").cloned().unwrap_or_default();
        let snap = final_snapshot(cloud, &id, &vol, &stack).await?;
        cloud.reporter.note(&format!(
            "{id}: final snapshot {snap} of volume {vol} is complete; deleting the volume"
        ));
        let deleted = cloud
            .ec2
            .delete_volume()
            .volume_id(&vol)
            .send()
            .await
            .map(|_| ())
            .ctx(&id, "DeleteVolume");
        gone_ok(deleted)
    }
}

/// The final snapshot of `vol`: the one an interrupted destroy started, or
/// a new one; returns once it is complete.
async fn final_snapshot(
    cloud: &Cloud,
    id: &str,
    vol: &str,
    stack: &str,
) -> Result<String, CloudError> {
    let existing = cloud
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{FINAL_SNAPSHOT_TAG}"))
                .values(vol)
                .build(),
        )
        .send()
        .await
        .ctx(id, "DescribeSnapshots")?;
    let snap = match existing
        .snapshots()
        .iter()
        .find(|s| !matches!(s.state().map(|s| s.as_str()), Some("error")))
        .and_then(|s| s.snapshot_id())
    {
        Some(s) => s.to_string(),
        None => {
            let tags = vec![
                (TAG_STACK.to_string(), stack.to_string()),
                (FINAL_SNAPSHOT_TAG.to_string(), vol.to_string()),
                ("Name".to_string(), format!("{stack} data (final)")),
            ];
            let out = cloud
                .ec2
                .create_snapshot()
                .volume_id(vol)
                .description(format!(
                    "Final snapshot of the data volume of stack {stack}, taken by destroy"
                ))
                .tag_specifications(tag_spec(ResourceType::Snapshot, &tags))
                .send()
                .await
                .ctx(id, "CreateSnapshot")?;
            out.snapshot_id()
                .ok_or_else(|| CloudError::invalid(id, "CreateSnapshot returned no id"))?
                .to_string()
        }
    };
    let limit = cloud.timeouts.for_kind(KIND, Phase::Delete);
    cloud
        .wait_until(id, "final snapshot complete", limit, || async {
            let out = cloud
                .ec2
                .describe_snapshots()
                .snapshot_ids(&snap)
                .send()
                .await
                .ctx(id, "DescribeSnapshots")?;
            let Some(s) = out.snapshots().first() else {
                return Ok((None, "not visible yet".into()));
            };
            let state = s.state().map(|s| s.as_str()).unwrap_or("pending");
            match lifecycle::snapshot(state, s.state_message()) {
                Readiness::Ready => Ok((Some(()), state.to_string())),
                Readiness::Pending => Ok((None, format!("{state} {}", s.progress().unwrap_or("")))),
                Readiness::Terminal(why) => Err(CloudError::invalid(
                    id,
                    format!("final snapshot {snap} of volume {vol} {why}; the volume is kept"),
                )),
            }
        })
        .await?;
    // CreateSnapshot takes no client token: a repeat after a lost answer
    // makes a second snapshot of the same moment. One final snapshot stays.
    let all = cloud
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{FINAL_SNAPSHOT_TAG}"))
                .values(vol)
                .build(),
        )
        .send()
        .await
        .ctx(id, "DescribeSnapshots")?;
    for twin in all
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id())
        .filter(|s| *s != snap)
    {
        cloud.reporter.note(&format!(
            "{id}: deleting {twin}, a second final snapshot a repeated request made"
        ));
        let r = cloud
            .ec2
            .delete_snapshot()
            .snapshot_id(twin)
            .send()
            .await
            .map(|_| ())
            .ctx(id, "DeleteSnapshot");
        gone_ok(r)?;
    }
    Ok(snap)
}
