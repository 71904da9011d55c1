//! Elastic Load Balancing: load balancers pass `provisioning`
//! (API_LoadBalancerState), and new targets pass `initial` and `unhealthy`
//! before `healthy`.

use std::time::Instant;

use super::super::http::Response;
use super::super::xml::{self, rewrite_items};
use super::{within, Call, Inner, State, Timing};

/// Learns from a successful answer: load balancers created and deleted.
pub(super) fn learn(c: &Call, body: &str, st: &mut State, t: &Timing, now: Instant) {
    match c.op.as_str() {
        "CreateLoadBalancer" => {
            if let Some(arn) = xml::text(body, "LoadBalancerArn") {
                st.lb_created.insert(arn.into(), now);
            }
        }
        "DeleteLoadBalancer" => st.linger_until = Some(now + t.linger),
        _ => {}
    }
}

/// A new load balancer is `provisioning` before `active`: the answer
/// rewritten, if it changed.
pub(super) fn lifecycle(body: &str, st: &State, t: &Timing) -> Option<String> {
    let mut rewrote = false;
    let out = rewrite_items(body, "LoadBalancers", |e| {
        let arn = xml::text(e, "LoadBalancerArn").unwrap_or_default();
        (within(st.lb_created.get(arn).copied(), t.lb_provisioning)
            && xml::text(e, "Code") == Some("active"))
        .then(|| {
            rewrote = true;
            xml::set_text(e, "Code", "provisioning")
        })
    });
    rewrote.then_some(out)
}

/// A DescribeTargetHealth answer with the health of each target for which
/// `health(id)` gives a state, reason and description rewritten; `None`
/// when none was.
fn rewrite_health<'a>(
    body: &str,
    mut health: impl FnMut(&str) -> Option<(&'a str, &'a str, &'a str)>,
) -> Option<String> {
    let mut rewrote = false;
    let out = rewrite_items(body, "TargetHealthDescriptions", |e| {
        let target = xml::find(e, "Target", 0)?;
        let id = xml::text(&e[target.open..target.end], "Id")?;
        let (state, reason, desc) = health(id)?;
        let th = xml::find(e, "TargetHealth", 0)?;
        rewrote = true;
        Some(format!(
            "{}<TargetHealth><State>{state}</State><Reason>{reason}</Reason><Description>{desc}</Description></TargetHealth>{}",
            &e[..th.open],
            &e[th.end..]
        ))
    });
    rewrote.then_some(out)
}

impl Inner {
    /// Targets pass `initial` and `unhealthy` before `healthy` (ELB
    /// "Target health status"), while Auto Scaling reports the instances
    /// InService and Healthy through their grace period.
    pub(super) fn target_health(&self, resp: &mut Response) {
        let t = self.t;
        let mut st = self.state.lock().unwrap();
        let out = rewrite_health(&resp.text(), |id| {
            let since = *st
                .targets
                .entry(id.to_string())
                .or_insert_with(Instant::now);
            if since.elapsed() < t.target_initial {
                Some((
                    "initial",
                    "Elb.RegistrationInProgress",
                    "Target registration is in progress",
                ))
            } else if since.elapsed() < t.target_initial + t.target_unhealthy {
                Some((
                    "unhealthy",
                    "Target.FailedHealthChecks",
                    "Health checks failed",
                ))
            } else {
                None
            }
        });
        if let Some(out) = out {
            st.count("target_health");
            resp.body = out.into_bytes();
        }
        let answer = resp.text();
        let states: Vec<&str> = answer
            .match_indices("<State>")
            .filter_map(|(i, _)| answer[i + 7..].split('<').next())
            .collect();
        let all_healthy = !states.is_empty() && states.iter().all(|s| *s == "healthy");
        st.health_answers.push((Instant::now(), all_healthy));
    }

    /// Targets a test has made fail their health checks for good: a broken
    /// instance that Auto Scaling still calls InService.
    pub(super) fn failing_targets(&self, resp: &mut Response) {
        let st = self.state.lock().unwrap();
        let out = rewrite_health(&resp.text(), |id| {
            st.failing.contains(id).then_some((
                "unhealthy",
                "Target.ResponseCodeMismatch",
                "Health checks failed with these codes: [502]",
            ))
        });
        if let Some(out) = out {
            resp.body = out.into_bytes();
        }
    }
}
