//! The group's target tracking scaling policy: average CPU, or requests
//! per target behind the load balancer.

use aws_sdk_autoscaling::types::{
    MetricType, PredefinedMetricSpecification, TargetTrackingConfiguration,
};
use serde_json::Value;

use super::{AutoScalingGroup, POLICY};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::Resolved;

/// `app/<lb>/<id>/targetgroup/<tg>/<id>`, the label request-count tracking needs.
pub fn resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    Some(format!("{lb}/{tg}"))
}

impl AutoScalingGroup {
    pub(super) async fn put_policy(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        group: &str,
    ) -> Result<(), CloudError> {
        let Some(s) = r.props.get("scaling").filter(|s| !s.is_null()) else {
            return Ok(());
        };
        let target = s["target"].as_f64().unwrap_or(50.0);
        let metric = match s["metric"].as_str() {
            Some("requests") => {
                let from = r
                    .props
                    .get("scaling_target")
                    .cloned()
                    .unwrap_or(Value::Null);
                let label = resource_label(
                    from["load_balancer_arn"].as_str().unwrap_or_default(),
                    from["target_group_arn"].as_str().unwrap_or_default(),
                )
                .ok_or_else(|| {
                    CloudError::invalid(
                        &r.id,
                        "request tracking needs the load balancer and target group",
                    )
                })?;
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
                    .resource_label(label)
                    .build()
            }
            _ => PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                .build(),
        };
        cloud
            .autoscaling
            .put_scaling_policy()
            .auto_scaling_group_name(group)
            .policy_name(POLICY)
            .policy_type("TargetTrackingScaling")
            .target_tracking_configuration(
                TargetTrackingConfiguration::builder()
                    .predefined_metric_specification(metric)
                    .target_value(target)
                    .build(),
            )
            .send()
            .await
            .ctx(&r.id, "PutScalingPolicy")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tracking_label() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo-lb/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-app/73e2d6bc24d8a067";
        assert_eq!(
            resource_label(lb, tg).unwrap(),
            "app/demo-lb/50dc6c495c0c9188/targetgroup/demo-app/73e2d6bc24d8a067"
        );
        assert_eq!(resource_label("nonsense", tg), None);
    }
}
