//! Target health: whether the group's instances serve behind the load
//! balancer, and the wait until enough of them do.

use crate::cloud::{Cloud, CloudError, Phase};

use super::AutoScalingGroup;

/// An instance's health in one target group, as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    pub instance: String,
    pub state: String,
    pub reason: Option<String>,
}

impl TargetState {
    pub fn new(instance: &str, state: &str, reason: Option<&str>) -> Self {
        TargetState {
            instance: instance.to_string(),
            state: state.to_string(),
            reason: reason.map(str::to_string),
        }
    }
}

/// Whether at least `min` of the group's in-service instances are healthy
/// in every one of its target groups (`targets`, one list per target
/// group), and a line saying so with the other instances' states and
/// reason codes (`1/2 healthy; 1 unhealthy (Target.FailedHealthChecks)`).
/// Auto Scaling reports instances InService and Healthy during their
/// health check grace period whatever the load balancer sees ("Amazon EC2
/// Auto Scaling doesn't act on an ELB health check failure until the grace
/// period expires"), so only the load balancer's view counts. Without
/// target groups, the in-service instances count.
pub fn healthy_targets(
    in_service: &[String],
    targets: &[Vec<TargetState>],
    min: usize,
) -> (bool, String) {
    let mut healthy = 0;
    let mut others: std::collections::BTreeMap<String, usize> = Default::default();
    for i in in_service {
        let bad = targets
            .iter()
            .find_map(|tg| match tg.iter().find(|t| &t.instance == i) {
                None => Some("not registered".to_string()),
                Some(t) if t.state == "healthy" => None,
                Some(t) => Some(match &t.reason {
                    Some(r) => format!("{} ({r})", t.state),
                    None => t.state.clone(),
                }),
            });
        match bad {
            None => healthy += 1,
            Some(b) => *others.entry(b).or_default() += 1,
        }
    }
    let mut line = format!("{healthy}/{min} healthy");
    if in_service.len() < min {
        // Fewer instances than needed: say so, nothing else explains it.
        line.push_str(&format!("; {} in service", in_service.len()));
    }
    if !others.is_empty() {
        let rest: Vec<String> = others.iter().map(|(s, n)| format!("{n} {s}")).collect();
        line.push_str(&format!("; {}", rest.join(", ")));
    }
    (healthy >= min, line)
}

impl AutoScalingGroup {
    /// Waits until at least `min` of the group's instances are healthy
    /// behind the load balancer (see [`healthy_targets`]). Unhealthy
    /// targets can recover (a slow first start), so it waits up to the
    /// timeout, then names the states and reasons last seen.
    pub(super) async fn wait_healthy(
        &self,
        cloud: &Cloud,
        id: &str,
        group: &str,
        min: usize,
    ) -> Result<(), CloudError> {
        // The timeout error names the last state seen: the reasons.
        cloud
            .wait_until(
                id,
                &format!("{min} instances healthy behind the load balancer"),
                cloud.timeouts.for_kind(super::KIND, Phase::Create),
                || async {
                    let Some(g) = super::describe(cloud, id, group).await? else {
                        // Just created: not listed yet.
                        return Ok((None, "group not listed yet".into()));
                    };
                    let in_service: Vec<String> = g
                        .instances()
                        .iter()
                        .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
                        .filter(|i| i.health_status() == Some("Healthy"))
                        .filter_map(|i| i.instance_id().map(str::to_string))
                        .collect();
                    let mut targets = Vec::new();
                    for tg in g.target_group_arns() {
                        let h = super::super::target_group::target_health(cloud, id, tg).await?;
                        targets.push(
                            h.iter()
                                .filter_map(|t| {
                                    let health = t.target_health();
                                    Some(TargetState::new(
                                        t.target()?.id()?,
                                        health.and_then(|h| h.state()).map(|s| s.as_str())?,
                                        health.and_then(|h| h.reason()).map(|r| r.as_str()),
                                    ))
                                })
                                .collect(),
                        );
                    }
                    let (ok, line) = healthy_targets(&in_service, &targets, min);
                    Ok((ok.then_some(()), line))
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_targets_healthy_behind_the_load_balancer_count() {
        let tg = vec![
            TargetState::new("i-1", "healthy", None),
            TargetState::new("i-2", "initial", Some("Elb.InitialHealthChecking")),
            TargetState::new("i-3", "unhealthy", Some("Target.FailedHealthChecks")),
            // Not (any longer) in service in the group: ignored.
            TargetState::new("i-9", "healthy", None),
        ];
        let (ok, line) =
            healthy_targets(&ids(&["i-1", "i-2", "i-3"]), std::slice::from_ref(&tg), 2);
        assert!(!ok);
        assert_eq!(
            line,
            "1/2 healthy; 1 initial (Elb.InitialHealthChecking), 1 unhealthy (Target.FailedHealthChecks)"
        );
        let (ok, line) = healthy_targets(&ids(&["i-1", "i-2", "i-3"]), &[tg], 1);
        assert!(ok, "{line}");
    }

    #[test]
    fn an_instance_counts_when_healthy_in_every_target_group() {
        let a = vec![
            TargetState::new("i-1", "healthy", None),
            TargetState::new("i-2", "healthy", None),
        ];
        let b = vec![TargetState::new("i-1", "healthy", None)];
        let (ok, line) = healthy_targets(&ids(&["i-1", "i-2"]), &[a, b], 2);
        assert!(!ok);
        assert_eq!(line, "1/2 healthy; 1 not registered");
    }

    #[test]
    fn without_target_groups_in_service_instances_count_and_min_zero_is_ready() {
        assert_eq!(
            healthy_targets(&ids(&["i-1", "i-2"]), &[], 2),
            (true, "2/2 healthy".to_string())
        );
        assert!(healthy_targets(&[], &[vec![]], 0).0);
        // Registered and healthy, but no longer the group's (replaced).
        let tg = vec![
            TargetState::new("i-old1", "healthy", None),
            TargetState::new("i-old2", "healthy", None),
        ];
        assert_eq!(
            healthy_targets(&[], &[tg], 2),
            (false, "0/2 healthy; 0 in service".to_string())
        );
        let tg = vec![TargetState::new(
            "i-1",
            "draining",
            Some("Target.DeregistrationInProgress"),
        )];
        assert_eq!(
            healthy_targets(&ids(&["i-1"]), &[tg], 1),
            (
                false,
                "0/1 healthy; 1 draining (Target.DeregistrationInProgress)".to_string()
            )
        );
    }
}
