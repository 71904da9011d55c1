//! `ecs:cluster`: the cluster the app's Fargate service runs in. It holds
//! no instances (Fargate brings its own); deleting it waits until ECS has
//! let the service and its tasks go.

use async_trait::async_trait;
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName, Tag};

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ecs:cluster";

pub struct Cluster;

#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ecs", "list_clusters", "ListClusters", &["ecs:ListClusters"]),
    r("ecs", "describe_clusters", "DescribeClusters", &["ecs:DescribeClusters"]),
    w("ecs", "create_cluster", "CreateCluster", &["ecs:CreateCluster", "ecs:TagResource", "iam:CreateServiceLinkedRole"]),
    w("ecs", "update_cluster_settings", "UpdateClusterSettings", &["ecs:UpdateClusterSettings"]),
    w("ecs", "delete_cluster", "DeleteCluster", &["ecs:DeleteCluster"]),
];

/// ECS's tags: lower-case `key` and `value`.
pub fn ecs_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The logical id in ECS tags, when they name `stack` as the owner.
pub fn ecs_owner(tags: &[Tag], stack: &str) -> Option<String> {
    super::owner_id(
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
        stack,
    )
}

fn insights(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

fn observed(id: &str, c: &aws_sdk_ecs::types::Cluster) -> Observed {
    let name = c.cluster_name().unwrap_or_default();
    let insights = c.settings().iter().any(|s| {
        s.name() == Some(&ClusterSettingName::ContainerInsights) && s.value() == Some("enabled")
    });
    Observed::new(KIND, id, name)
        .prop("name", name)
        .prop("container_insights", insights)
        .attr("name", name)
        .attr("arn", c.cluster_arn().unwrap_or_default())
}

#[async_trait]
impl ResourceKind for Cluster {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("name"), in_place("container_insights")];
        A
    }

    /// CreateCluster with the name of an ACTIVE cluster answers with that
    /// cluster ("Amazon ECS API reference", CreateCluster).
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let arns: Vec<String> = cloud
            .ecs
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "ListClusters")?;
        let mut out = Vec::new();
        // DescribeClusters takes up to 100 clusters a call.
        for chunk in arns.chunks(100) {
            let d = cloud
                .ecs
                .describe_clusters()
                .set_clusters(Some(chunk.to_vec()))
                .include(ClusterField::Tags)
                .include(ClusterField::Settings)
                .send()
                .await
                .ctx(KIND, "DescribeClusters")?;
            for c in d.clusters() {
                // A deleted cluster is listed INACTIVE for a while.
                if c.status() != Some("ACTIVE") {
                    continue;
                }
                if let Some(id) = ecs_owner(c.tags(), stack) {
                    out.push(observed(&id, c));
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let made = cloud
            .ecs
            .create_cluster()
            .cluster_name(r.str("name")?)
            .set_tags(Some(ecs_tags(&r.tags)))
            .settings(insights(r.bool("container_insights")))
            .send()
            .await
            .ctx(&r.id, "CreateCluster")?;
        let arn = made
            .cluster()
            .and_then(|c| c.cluster_arn())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateCluster returned no cluster"))?;
        // An ACTIVE cluster of that name answers the create as if made:
        // its tags, read back, say whether it is this one.
        let d = cloud
            .settle(&r.id, "DescribeClusters", || {
                cloud
                    .ecs
                    .describe_clusters()
                    .clusters(arn)
                    .include(ClusterField::Tags)
                    .include(ClusterField::Settings)
                    .send()
            })
            .await?;
        let c = d
            .clusters()
            .first()
            .ok_or_else(|| CloudError::invalid(&r.id, format!("cluster {arn} is not there")))?;
        super::adopt_if_ours(
            r,
            "an ECS cluster of that name",
            ecs_owner(c.tags(), &r.stack),
        )?;
        Ok(observed(&r.id, c))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let out = cloud
            .ecs
            .update_cluster_settings()
            .cluster(&current.physical_id)
            .settings(insights(r.bool("container_insights")))
            .send()
            .await
            .ctx(&r.id, "UpdateClusterSettings")?;
        let c = out.cluster().ok_or_else(|| {
            CloudError::invalid(&r.id, "UpdateClusterSettings returned no cluster")
        })?;
        Ok(observed(&r.id, c))
    }

    /// ECS refuses while the service is draining or its tasks stopping
    /// (`ClusterContainsServicesException`, `ClusterContainsTasksException`):
    /// asked again until they are gone.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let limit = cloud.timeouts.for_kind(KIND, crate::cloud::Phase::Delete);
        cloud
            .wait_until(&current.id, "the cluster empty", limit, || async {
                let r = cloud
                    .ecs
                    .delete_cluster()
                    .cluster(&current.physical_id)
                    .send()
                    .await
                    .map(|_| ())
                    .ctx(&current.id, "DeleteCluster");
                match super::gone_ok(r) {
                    Ok(()) => Ok((Some(()), "deleted".to_string())),
                    Err(e)
                        if matches!(
                            e.code(),
                            Some("ClusterContainsServicesException")
                                | Some("ClusterContainsTasksException")
                                | Some("ClusterContainsContainerInstancesException")
                                | Some("UpdateInProgressException")
                        ) =>
                    {
                        Ok((None, e.code().unwrap_or_default().to_string()))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }
}
