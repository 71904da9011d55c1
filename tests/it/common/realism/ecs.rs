//! Amazon ECS deployments, which the emulator records but never runs: a
//! service's deployment starts IN_PROGRESS and turns COMPLETED once its
//! tasks run ("Amazon ECS deployment types", rolling update: `rolloutState`
//! IN_PROGRESS, COMPLETED or FAILED); an UpdateService with another task
//! definition starts a new PRIMARY deployment while the one before stays
//! ACTIVE until the new one completes. With the deployment circuit breaker
//! on, a deployment whose tasks fail to start is FAILED ("ECS deployment
//! circuit breaker: tasks failed to start.") and, with rollback on, ECS
//! starts a deployment of the last completed task definition, which
//! becomes the service's again ("How the Amazon ECS deployment circuit
//! breaker detects failures"). The service's events say so.
//!
//! The tasks of a completed deployment are the target group's targets, by
//! address (an `ip` target group), as ECS registers them; they then pass
//! `initial` and `unhealthy` like any new target ([`super::elb`]).
//!
//! A test names the images whose tasks fail to start
//! ([`super::Realism::fail_image`]).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use super::super::http::Response;
use super::{Call, Inner, Request, State, Timing};

#[derive(Debug, Clone, PartialEq)]
enum Rollout {
    InProgress,
    Completed,
    Failed(String),
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    task_definition: String,
    primary: bool,
    rollout: Rollout,
    since: Instant,
}

/// One service, as ECS runs it.
#[derive(Debug, Clone)]
pub(super) struct Service {
    name: String,
    target_group: String,
    port: i64,
    desired: i64,
    deployments: Vec<Deployment>,
    /// Newest last.
    events: Vec<String>,
    /// The targets of its tasks, once registered.
    targets: Vec<String>,
    next: u32,
    /// ECS Exec is on for its tasks.
    exec: bool,
    /// When its latest deployment completed.
    completed: Option<Instant>,
    /// The CreateService client token that made it.
    token: String,
}

impl Service {
    /// The revision its tasks run: the newest completed deployment's.
    pub(super) fn running_revision(&self) -> Option<&str> {
        self.deployments
            .iter()
            .rev()
            .find(|d| d.rollout == Rollout::Completed)
            .map(|d| d.task_definition.as_str())
    }

    pub(super) fn targets(&self) -> &[String] {
        &self.targets
    }

    pub(super) fn completed_at(&self) -> Option<Instant> {
        self.completed
    }

    pub(super) fn exec_enabled(&self) -> bool {
        self.exec
    }

    fn deploy(&mut self, task_definition: &str, now: Instant) {
        for d in &mut self.deployments {
            d.primary = false;
        }
        self.next += 1;
        let id = format!("ecs-svc/{:018}", self.next);
        self.events.push(format!(
            "(service {}) has started a deployment ({id}) of {}.",
            self.name,
            task_definition.rsplit('/').next().unwrap_or_default()
        ));
        self.deployments.push(Deployment {
            id,
            task_definition: task_definition.to_string(),
            primary: true,
            rollout: Rollout::InProgress,
            since: now,
        });
    }
}

fn body(req: &str) -> Value {
    serde_json::from_str(req).unwrap_or(Value::Null)
}

/// Learns from an answered request: task definitions' images, services
/// made, updated and deleted.
pub(super) fn learn(c: &Call, req: &str, answer: &str, st: &mut State, now: Instant) {
    let (req, answer) = (body(req), body(answer));
    match c.op.as_str() {
        "RegisterTaskDefinition" => {
            let arn = answer["taskDefinition"]["taskDefinitionArn"]
                .as_str()
                .unwrap_or_default();
            let images = req["containerDefinitions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["image"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            st.ecs_images.insert(arn.to_string(), images);
            st.ecs_containers
                .insert(arn.to_string(), super::ecs_tasks::containers_of(&req));
        }
        "CreateService" => {
            let s = &answer["service"];
            let Some(arn) = s["serviceArn"].as_str() else {
                return;
            };
            let token = req["clientToken"].as_str().unwrap_or_default();
            if st.ecs.get(arn).is_some_and(|s| s.token == token) {
                // A repeat answered with the service made.
                return;
            }
            // Otherwise a service of the same name made again after one
            // deleted (whose DeleteService answer may have been lost).
            let lb = &s["loadBalancers"][0];
            let mut svc = Service {
                name: s["serviceName"].as_str().unwrap_or_default().to_string(),
                target_group: lb["targetGroupArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                port: lb["containerPort"].as_i64().unwrap_or(80),
                desired: s["desiredCount"].as_i64().unwrap_or(1),
                deployments: Vec::new(),
                events: Vec::new(),
                targets: Vec::new(),
                next: 0,
                exec: s["enableExecuteCommand"].as_bool().unwrap_or(false),
                completed: None,
                token: token.to_string(),
            };
            svc.deploy(s["taskDefinition"].as_str().unwrap_or_default(), now);
            st.ecs.insert(arn.to_string(), svc);
        }
        "UpdateService" => {
            let arn = answer["service"]["serviceArn"].as_str().unwrap_or_default();
            let Some(svc) = st.ecs.get_mut(arn) else {
                return;
            };
            if let Some(n) = req["desiredCount"].as_i64() {
                svc.desired = n;
            }
            if let Some(e) = req["enableExecuteCommand"].as_bool() {
                svc.exec = e;
            }
            let primary = svc
                .deployments
                .iter()
                .find(|d| d.primary)
                .map(|d| d.task_definition.clone());
            if let Some(td) = req["taskDefinition"].as_str() {
                let td = answer["service"]["taskDefinition"].as_str().unwrap_or(td);
                if primary.as_deref() != Some(td) {
                    svc.deploy(td, now);
                }
            }
        }
        "DeleteService" => {
            let arn = answer["service"]["serviceArn"].as_str().unwrap_or_default();
            st.ecs.remove(arn);
        }
        _ => {}
    }
}

/// Moves each service's deployments on to where `now` finds them.
fn advance(st: &mut State, t: &Timing, now: Instant) {
    let failing = st.ecs_failing.clone();
    let images = st.ecs_images.clone();
    let mut counted = Vec::new();
    for svc in st.ecs.values_mut() {
        let Some(i) = svc.deployments.iter().position(|d| d.primary) else {
            continue;
        };
        let d = svc.deployments[i].clone();
        if d.rollout != Rollout::InProgress || now.duration_since(d.since) < t.ecs_deploy {
            continue;
        }
        let fails = images.get(&d.task_definition).is_some_and(|imgs| {
            imgs.iter()
                .any(|img| failing.iter().any(|f| img.ends_with(f.as_str())))
        });
        if fails {
            let reason = "ECS deployment circuit breaker: tasks failed to start.".to_string();
            svc.deployments[i].rollout = Rollout::Failed(reason);
            svc.events.push(format!(
                "(service {}) (deployment {}) deployment failed: tasks failed to start.",
                svc.name, d.id
            ));
            counted.push("ecs_circuit_breaker");
            // Back to the newest deployment that completed.
            let back = svc
                .deployments
                .iter()
                .rev()
                .find(|x| x.rollout == Rollout::Completed)
                .map(|x| (x.id.clone(), x.task_definition.clone()));
            if let Some((id, td)) = back {
                svc.events.push(format!(
                    "(service {}) (deployment {}) rolling back to deployment {id}.",
                    svc.name, d.id
                ));
                svc.deploy(&td, now);
            }
        } else {
            svc.deployments[i].rollout = Rollout::Completed;
            svc.completed = Some(now);
            // The tasks before go; so does a failed deployment's record.
            let keep = svc.deployments[i].id.clone();
            svc.deployments.retain(|x| x.id == keep);
            let base = svc.next;
            svc.targets = (0..svc.desired)
                .map(|n| format!("10.0.{}.{}", 100 + base % 100, 10 + n))
                .collect();
            svc.events.push(format!(
                "(service {}) (deployment {}) deployment completed.",
                svc.name, d.id
            ));
            svc.events.push(format!(
                "(service {}) has reached a steady state.",
                svc.name
            ));
            counted.push("ecs_deployment");
        }
    }
    for c in counted {
        st.count(c);
    }
}

fn epoch(at: Instant) -> f64 {
    let ago = Instant::now().saturating_duration_since(at);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(ago)
        .as_secs_f64()
}

/// A DescribeServices answer with each service as ECS would show it now.
pub(super) fn describe_services(resp: &mut Response, st: &mut State, t: &Timing) {
    advance(st, t, Instant::now());
    let mut v = body(&resp.text());
    let Some(list) = v["services"].as_array_mut() else {
        return;
    };
    for s in list {
        let Some(svc) = s["serviceArn"].as_str().and_then(|a| st.ecs.get(a)) else {
            continue;
        };
        let running = |d: &Deployment| match d.rollout {
            Rollout::Completed => svc.desired,
            _ => 0,
        };
        let deployments: Vec<Value> = svc
            .deployments
            .iter()
            .rev()
            .map(|d| {
                let (state, reason) = match &d.rollout {
                    Rollout::InProgress => (
                        "IN_PROGRESS",
                        format!("ECS deployment {} in progress.", d.id),
                    ),
                    Rollout::Completed => {
                        ("COMPLETED", format!("ECS deployment {} completed.", d.id))
                    }
                    Rollout::Failed(r) => ("FAILED", r.clone()),
                };
                json!({
                    "id": d.id,
                    "status": if d.primary { "PRIMARY" } else { "ACTIVE" },
                    "taskDefinition": d.task_definition,
                    "desiredCount": svc.desired,
                    "runningCount": running(d),
                    "pendingCount": svc.desired - running(d),
                    "failedTasks": if matches!(d.rollout, Rollout::Failed(_)) { 3 } else { 0 },
                    "rolloutState": state,
                    "rolloutStateReason": reason,
                    "launchType": "FARGATE",
                    "createdAt": epoch(d.since),
                    "updatedAt": epoch(d.since),
                })
            })
            .collect();
        let primary = svc.deployments.iter().find(|d| d.primary);
        if let Some(p) = primary {
            s["taskDefinition"] = json!(p.task_definition);
        }
        s["runningCount"] = json!(primary.map(running).unwrap_or(0));
        s["pendingCount"] = json!(svc.desired - primary.map(running).unwrap_or(0));
        s["desiredCount"] = json!(svc.desired);
        s["deployments"] = json!(deployments);
        s["events"] = json!(svc
            .events
            .iter()
            .enumerate()
            .rev()
            .map(|(i, m)| json!({"id": format!("event-{i}"), "message": m}))
            .collect::<Vec<_>>());
    }
    resp.body = v.to_string().into_bytes();
}

/// A DescribeTargetHealth answer for a service's target group: its
/// tasks' addresses, as ECS registers them.
pub(super) fn target_health(c: &Call, resp: &mut Response, st: &mut State, t: &Timing) {
    advance(st, t, Instant::now());
    let Some(tg) = c.get("TargetGroupArn") else {
        return;
    };
    let Some(svc) = st.ecs.values().find(|s| s.target_group == tg) else {
        return;
    };
    let members: String = svc
        .targets
        .iter()
        .map(|ip| {
            format!(
                "<member><Target><Id>{ip}</Id><Port>{port}</Port></Target><HealthCheckPort>{port}</HealthCheckPort><TargetHealth><State>healthy</State></TargetHealth></member>",
                port = svc.port
            )
        })
        .collect();
    resp.body = format!(
        "<DescribeTargetHealthResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><DescribeTargetHealthResult><TargetHealthDescriptions>{members}</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></DescribeTargetHealthResponse>"
    )
    .into_bytes();
}

/// The services the proxy runs, by ARN: for tests.
pub(super) fn services(st: &State) -> HashMap<String, Vec<String>> {
    st.ecs
        .iter()
        .map(|(arn, s)| (arn.clone(), s.events.clone()))
        .collect()
}

impl Inner {
    /// ECS as it runs: learns from each answered ECS request, and shows
    /// services and their targets as they are now.
    pub(super) fn ecs(&self, c: &Call, req: &Request, resp: &mut Response) {
        let mut st = self.state.lock().unwrap();
        match (c.service.as_str(), c.op.as_str()) {
            ("ecs", "DescribeServices") => describe_services(resp, &mut st, &self.t),
            ("ecs", _) => learn(
                c,
                &String::from_utf8_lossy(&req.body),
                &resp.text(),
                &mut st,
                Instant::now(),
            ),
            ("elasticloadbalancing", "DescribeTargetHealth") => {
                target_health(c, resp, &mut st, &self.t)
            }
            _ => {}
        }
    }
}
