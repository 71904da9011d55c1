//! `app-scaling:ecs-service`: Application Auto Scaling of the Fargate
//! service's task count between `min` and `max`, by target tracking on the
//! tasks' average CPU or on requests per target. The scalable target
//! carries the stack's tags; its one policy is named after the stack.

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "app-scaling:ecs-service";

pub struct ServiceScaling;

#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("app_scaling", "describe_scalable_targets", "DescribeScalableTargets", &["application-autoscaling:DescribeScalableTargets"]),
    r("app_scaling", "list_tags_for_resource", "ListTagsForResource", &["application-autoscaling:ListTagsForResource"]),
    r("app_scaling", "describe_scaling_policies", "DescribeScalingPolicies", &["application-autoscaling:DescribeScalingPolicies"]),
    w("app_scaling", "register_scalable_target", "RegisterScalableTarget", &["application-autoscaling:RegisterScalableTarget", "application-autoscaling:TagResource", "ecs:DescribeServices", "ecs:UpdateService", "iam:CreateServiceLinkedRole"]),
    w("app_scaling", "put_scaling_policy", "PutScalingPolicy", &["application-autoscaling:PutScalingPolicy", "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"]),
    w("app_scaling", "deregister_scalable_target", "DeregisterScalableTarget", &["application-autoscaling:DeregisterScalableTarget", "cloudwatch:DeleteAlarms"]),
];

/// The policy's name.
pub fn policy_name(stack: &str) -> String {
    format!("{stack}-tasks")
}

const DIMENSION: ScalableDimension = ScalableDimension::EcsServiceDesiredCount;

#[async_trait]
impl ResourceKind for ServiceScaling {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("resource_id"),
            in_place("min"),
            in_place("max"),
            in_place("metric"),
            in_place("target"),
        ];
        A
    }

    /// RegisterScalableTarget and PutScalingPolicy update what exists:
    /// a repeat does the same again.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let targets: Vec<_> = cloud
            .app_scaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeScalableTargets")?;
        let mut out = Vec::new();
        for t in targets {
            if t.scalable_dimension() != &DIMENSION {
                continue;
            }
            let Some(arn) = t.scalable_target_arn() else {
                continue;
            };
            let tags = match cloud
                .app_scaling
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
            {
                Ok(t) => t.tags().cloned().unwrap_or_default(),
                Err(e) => {
                    let e = api_error(KIND, "ListTagsForResource", e);
                    if e.is_not_found() {
                        continue;
                    }
                    return Err(e);
                }
            };
            let Some(id) =
                super::owner_id(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), stack)
            else {
                continue;
            };
            let resource_id = t.resource_id();
            let policies = cloud
                .app_scaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(resource_id)
                .scalable_dimension(DIMENSION)
                .policy_names(policy_name(stack))
                .send()
                .await
                .ctx(&id, "DescribeScalingPolicies")?;
            let conf = policies
                .scaling_policies()
                .first()
                .and_then(|p| p.target_tracking_scaling_policy_configuration());
            let spec = conf.and_then(|c| c.predefined_metric_specification());
            let metric = match spec.map(|s| s.predefined_metric_type()) {
                Some(MetricType::EcsServiceAverageCpuUtilization) => "cpu",
                Some(MetricType::AlbRequestCountPerTarget) => "requests",
                Some(_) => "other",
                None => "none",
            };
            out.push(
                Observed::new(KIND, &id, resource_id)
                    .prop("resource_id", resource_id)
                    .prop("min", t.min_capacity())
                    .prop("max", t.max_capacity())
                    .prop("metric", metric)
                    .prop("target", conf.map(|c| c.target_value()).unwrap_or_default()),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        put(cloud, r).await
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        _: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        put(cloud, r).await
    }

    /// Deregistering the target deletes its policies and their alarms.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        super::gone_ok(
            cloud
                .app_scaling
                .deregister_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&current.physical_id)
                .scalable_dimension(DIMENSION)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeregisterScalableTarget"),
        )
    }
}

async fn put(cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
    let resource_id = r.str("resource_id")?;
    let (min, max) = (r.i64("min")? as i32, r.i64("max")? as i32);
    let tags: std::collections::HashMap<String, String> = r.tags.iter().cloned().collect();
    // A service made moments before may not be visible to Application
    // Auto Scaling yet.
    let req = cloud
        .app_scaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(DIMENSION)
        .min_capacity(min)
        .max_capacity(max)
        .set_tags(Some(tags));
    cloud
        .settle(&r.id, "RegisterScalableTarget", || req.clone().send())
        .await?;
    let metric = r.str("metric")?;
    let mut spec = PredefinedMetricSpecification::builder().predefined_metric_type(match metric {
        "requests" => MetricType::AlbRequestCountPerTarget,
        _ => MetricType::EcsServiceAverageCpuUtilization,
    });
    if metric == "requests" {
        let from = &r.props["scaling_target"];
        let label = super::autoscaling_group::resource_label(
            from["load_balancer_arn"].as_str().unwrap_or_default(),
            from["target_group_arn"].as_str().unwrap_or_default(),
        )
        .ok_or_else(|| {
            CloudError::invalid(
                &r.id,
                "no load balancer and target group to count requests of",
            )
        })?;
        spec = spec.resource_label(label);
    }
    let target = r.props["target"].as_f64().unwrap_or(50.0);
    cloud
        .app_scaling
        .put_scaling_policy()
        .policy_name(policy_name(&r.stack))
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(DIMENSION)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(target)
                .predefined_metric_specification(
                    spec.build()
                        .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?,
                )
                .build()
                .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?,
        )
        .send()
        .await
        .ctx(&r.id, "PutScalingPolicy")?;
    Ok(Observed::new(KIND, &r.id, resource_id)
        .prop("resource_id", resource_id)
        .prop("min", min)
        .prop("max", max)
        .prop("metric", metric)
        .prop("target", target))
}
