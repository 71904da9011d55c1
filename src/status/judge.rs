//! Whether the stack is healthy, and the request that asks the app.

use std::time::{Duration, Instant};

use super::{Probe, Status};

/// The path of the app's health check, the one the target group checks.
pub const HEALTH_PATH: &str = "/healthz";

/// GETs `url` once, within `timeout`, without retrying: the answer of the
/// app behind the load balancer right now.
pub async fn probe(url: &str, timeout: Duration) -> Probe {
    let began = Instant::now();
    let result = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c.get(url).send().await.map(|r| r.status().as_u16()),
        Err(e) => Err(e),
    };
    let (status, error) = match result {
        Ok(s) => (Some(s), None),
        // The URL is in the report already.
        Err(e) => (None, Some(error_chain(&e.without_url()))),
    };
    Probe {
        url: url.to_string(),
        status,
        error,
        millis: began.elapsed().as_millis(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// The health check URL behind `url` (the stack's `url` output).
pub fn probe_url(url: &str) -> String {
    format!("{}{HEALTH_PATH}", url.trim_end_matches('/'))
}

/// Decides `healthy` and lists the problems. Healthy: at least one target
/// healthy behind the load balancer, every InService instance's target
/// healthy or still in its `initial` checks (a new target: "The load
/// balancer is sending the target the initial health checks", "Health
/// checks for Application Load Balancer target groups", ELB User Guide),
/// the database `available` (the only status in which it serves, "Viewing
/// Amazon RDS DB instance status", RDS User Guide), the certificate
/// `ISSUED` when the stack has a domain (CertificateDetail, ACM API
/// Reference), and the probe (when made) answered 200. `app`: the stack
/// deploys the app (full topology).
pub fn judge(s: &mut Status, app: bool, domain: bool) {
    let mut problems = Vec::new();
    if app {
        match &s.group {
            None => problems.push("the Auto Scaling group does not exist".to_string()),
            Some(g) => {
                if g.healthy_targets == 0 {
                    problems.push("no target is healthy behind the load balancer".into());
                }
                for i in &g.instances {
                    if i.lifecycle_state.as_deref() != Some("InService") {
                        continue;
                    }
                    match &i.target {
                        None => problems.push(format!(
                            "instance {} is in service but not registered with the load balancer",
                            i.id
                        )),
                        Some(t) if t.state == "healthy" || t.state == "initial" => {}
                        Some(t) => problems.push(format!(
                            "instance {} is {} behind the load balancer{}",
                            i.id,
                            t.state,
                            t.reason
                                .as_ref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )),
                    }
                }
            }
        }
        problems.extend(database_problem(s));
    }
    if domain {
        problems.extend(certificate_problem(s));
    }
    problems.extend(probe_problem(s));
    s.healthy = problems.is_empty();
    s.problems = problems;
}

/// The certificate's problem: missing, or not `ISSUED`.
fn certificate_problem(s: &Status) -> Option<String> {
    match &s.certificate {
        None => Some("the certificate does not exist".to_string()),
        Some(c) if c.status.as_deref() == Some("ISSUED") => None,
        Some(c) => Some(format!(
            "certificate for {} is {}, not ISSUED",
            c.domain.as_deref().unwrap_or("?"),
            c.status.as_deref().unwrap_or("of unknown status")
        )),
    }
}

/// The app on Fargate's verdict: its service ([`super::fargate::problems`]),
/// the database, the certificate, and the probe.
pub fn judge_fargate(s: &mut Status, domain: bool) {
    let mut problems = super::fargate::problems(s);
    problems.extend(database_problem(s));
    if domain {
        problems.extend(certificate_problem(s));
    }
    problems.extend(probe_problem(s));
    s.healthy = problems.is_empty();
    s.problems = problems;
}

/// The single shape's verdict: see [`super::single::problems`], and the probe.
pub fn judge_single(s: &mut Status, domain: bool, mysql: bool) {
    let mut problems = super::single::problems(s, domain, mysql);
    problems.extend(probe_problem(s));
    s.healthy = problems.is_empty();
    s.problems = problems;
}

/// The database's problem: missing, or not `available`.
pub(super) fn database_problem(s: &Status) -> Option<String> {
    match &s.database {
        None => Some("the database does not exist".to_string()),
        Some(d) if d.state.as_deref() == Some("available") => None,
        Some(d) => Some(format!(
            "database {} is {}, not available",
            d.identifier,
            d.state.as_deref().unwrap_or("in an unknown state")
        )),
    }
}

/// The probe's problem: anything but 200.
fn probe_problem(s: &Status) -> Option<String> {
    let p = s.probe.as_ref().filter(|p| p.status != Some(200))?;
    let got = match (p.status, &p.error) {
        (Some(c), _) => format!("answered {c}"),
        (None, Some(e)) => format!("failed: {e}"),
        (None, None) => "failed".into(),
    };
    Some(format!("GET {} {got}", p.url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Cert, Database, Group, Instance, Target};

    fn instance(id: &str, lifecycle: &str, target: Option<&str>) -> Instance {
        Instance {
            id: id.into(),
            zone: Some("us-east-1a".into()),
            lifecycle_state: Some(lifecycle.into()),
            health_status: Some("Healthy".into()),
            launch_template_version: Some("1".into()),
            target: target.map(|s| Target {
                state: s.into(),
                reason: (s != "healthy").then(|| "Target.FailedHealthChecks".into()),
                description: None,
            }),
        }
    }

    fn healthy_status(instances: Vec<Instance>) -> Status {
        let healthy_targets = instances
            .iter()
            .filter(|i| i.target.as_ref().is_some_and(|t| t.state == "healthy"))
            .count();
        Status {
            stack: "s".into(),
            region: "us-east-1".into(),
            url: None,
            group: Some(Group {
                name: "g".into(),
                desired: 2,
                min: 1,
                max: 3,
                launch_template_id: Some("lt-1".into()),
                wanted_version: Some("1".into()),
                configured_version: Some("1".into()),
                rolled_out_version: Some("1".into()),
                refresh: None,
                refresh_unreadable: None,
                instances,
                healthy_targets,
            }),
            database: Some(Database {
                identifier: "db".into(),
                state: Some("available".into()),
                class: Some("db.t3.micro".into()),
                multi_az: Some(false),
                engine: Some("mysql".into()),
                engine_version: Some("8.0.35".into()),
                pending: Default::default(),
            }),
            certificate: Some(Cert {
                arn: "arn".into(),
                domain: Some("d.example.com".into()),
                status: Some("PENDING_VALIDATION".into()),
            }),
            probe: None,
            single: None,
            fargate: None,
            healthy: false,
            problems: vec![],
        }
    }

    fn verdict(mut s: Status, domain: bool) -> Vec<String> {
        judge(&mut s, true, domain);
        assert_eq!(s.healthy, s.problems.is_empty());
        s.problems
    }

    #[test]
    fn targets_still_in_their_first_checks_count_as_healthy_if_one_is_healthy() {
        let s = healthy_status(vec![
            instance("i-1", "InService", Some("healthy")),
            instance("i-2", "InService", Some("initial")),
            // Leaving the group: its target does not count.
            instance("i-3", "Terminating", Some("draining")),
        ]);
        assert_eq!(verdict(s, false), Vec::<String>::new());
        let s = healthy_status(vec![instance("i-2", "InService", Some("initial"))]);
        assert_eq!(
            verdict(s, false),
            vec!["no target is healthy behind the load balancer"]
        );
    }

    #[test]
    fn an_unhealthy_target_the_database_and_the_certificate_each_fail_the_verdict() {
        let mut s = healthy_status(vec![
            instance("i-1", "InService", Some("healthy")),
            instance("i-2", "InService", Some("unhealthy")),
        ]);
        s.database.as_mut().unwrap().state = Some("modifying".into());
        assert_eq!(
            verdict(s.clone(), true),
            vec![
                "instance i-2 is unhealthy behind the load balancer (Target.FailedHealthChecks)",
                "database db is modifying, not available",
                "certificate for d.example.com is PENDING_VALIDATION, not ISSUED",
            ]
        );
        // Without a domain the certificate is not judged.
        assert_eq!(verdict(s, false).len(), 2);
    }

    #[test]
    fn a_probe_fails_the_verdict_unless_it_answered_200() {
        let mut s = healthy_status(vec![instance("i-1", "InService", Some("healthy"))]);
        let probe = |status: Option<u16>, error: Option<&str>| Probe {
            url: "http://x/healthz".into(),
            status,
            error: error.map(str::to_string),
            millis: 1,
        };
        s.probe = Some(probe(Some(200), None));
        assert_eq!(verdict(s.clone(), false), Vec::<String>::new());
        s.probe = Some(probe(None, Some("connection refused")));
        assert_eq!(
            verdict(s, false),
            vec!["GET http://x/healthz failed: connection refused"]
        );
    }

    #[test]
    fn a_missing_group_or_database_fails_only_a_stack_that_runs_the_app() {
        let mut s = healthy_status(vec![]);
        s.group = None;
        s.database = None;
        assert_eq!(
            verdict(s.clone(), false),
            vec![
                "the Auto Scaling group does not exist",
                "the database does not exist"
            ]
        );
        judge(&mut s, false, false);
        assert!(s.healthy, "{:?}", s.problems);
    }
}
