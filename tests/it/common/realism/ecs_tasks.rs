//! The tasks of ECS services, which the emulator never runs, and ECS Exec
//! into them (an API the emulator lacks).
//!
//! A completed deployment's tasks are the ones whose addresses are the
//! target group's targets ([`super::ecs`]). ListTasks and DescribeTasks
//! answer them as ECS does (Amazon ECS API Reference: `lastStatus`
//! RUNNING, the `awsvpc` attachment's `privateIPv4Address`, each
//! container's `managedAgents`). The ECS Exec agent of the first task
//! (by id) is still PENDING for a while ([`super::Timing::exec_agent`]),
//! as a task's agent is when it has just started.
//!
//! ExecuteCommand follows the API reference's rules: `interactive` must be
//! true ("Interactive is the only mode supported currently."), a task of
//! more than one container needs `container`, the task must have ECS Exec
//! enabled and its agent running (InvalidParameterException otherwise),
//! and an unknown task is InvalidParameterException too. It answers a
//! `Session` whose stream URL is the harness's agent ([`super::exec_agent`]),
//! which runs the program the test gave for the task's image with the
//! command's arguments (split as the agent splits them, google/shlex) and
//! the container's environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::super::http::Response;
use super::errors::error;
use super::exec_agent::ExecAgent;
use super::{Call, Inner, State};

/// One task of a service.
struct Task {
    arn: String,
    service: String,
    cluster_arn: String,
    task_definition: String,
    address: String,
    agent_running: bool,
    exec_enabled: bool,
}

/// The running tasks of every service, sorted by ARN.
fn tasks(st: &State, t: &super::Timing) -> Vec<Task> {
    let mut out = Vec::new();
    for (arn, svc) in &st.ecs {
        let Some((prefix, rest)) = arn.split_once(":service/") else {
            continue;
        };
        let cluster = rest.split('/').next().unwrap_or_default();
        let Some(td) = svc.running_revision() else {
            continue;
        };
        let mut ids: Vec<(String, &String)> = svc
            .targets()
            .iter()
            .map(|ip| {
                use sha2::{Digest, Sha256};
                let h = hex::encode(Sha256::digest(format!("{arn} {td} {ip}").as_bytes()));
                (h[..32].to_string(), ip)
            })
            .collect();
        ids.sort();
        let started = svc.completed_at().unwrap_or_else(Instant::now);
        for (n, (id, ip)) in ids.into_iter().enumerate() {
            out.push(Task {
                arn: format!("{prefix}:task/{cluster}/{id}"),
                service: rest.rsplit('/').next().unwrap_or_default().to_string(),
                cluster_arn: format!("{prefix}:cluster/{cluster}"),
                task_definition: td.to_string(),
                address: ip.clone(),
                agent_running: n > 0 || started.elapsed() >= t.exec_agent,
                exec_enabled: svc.exec_enabled(),
            });
        }
    }
    out.sort_by(|a, b| a.arn.cmp(&b.arn));
    out
}

fn describe(t: &Task, st: &State) -> Value {
    let containers = st.ecs_containers.get(&t.task_definition);
    let container = |name: &str, running: bool| {
        let mut c = json!({
            "name": name,
            "taskArn": t.arn,
            "lastStatus": if running { "RUNNING" } else { "STOPPED" },
            "networkInterfaces": [{"privateIpv4Address": t.address}],
        });
        if running {
            if t.exec_enabled {
                c["managedAgents"] = json!([{
                    "name": "ExecuteCommandAgent",
                    "lastStatus": if t.agent_running { "RUNNING" } else { "PENDING" },
                }]);
            }
        } else {
            c["exitCode"] = json!(0);
        }
        c
    };
    let list: Vec<Value> = containers
        .map(|cs| cs.iter().map(|c| container(&c.name, c.essential)).collect())
        .unwrap_or_default();
    json!({
        "taskArn": t.arn,
        "clusterArn": t.cluster_arn,
        "taskDefinitionArn": t.task_definition,
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "launchType": "FARGATE",
        "enableExecuteCommand": t.exec_enabled,
        "attachments": [{
            "type": "ElasticNetworkInterface",
            "status": "ATTACHED",
            "details": [{"name": "privateIPv4Address", "value": t.address}],
        }],
        "containers": list,
    })
}

fn invalid(message: &str) -> Response {
    error("ecs", 400, "InvalidParameterException", message)
}

/// A container of a task definition, as ECS Exec needs it.
#[derive(Debug, Clone)]
pub(super) struct ContainerSeen {
    pub name: String,
    pub essential: bool,
    pub image: String,
    pub env: Vec<(String, String)>,
}

/// The containers of a RegisterTaskDefinition request.
pub(super) fn containers_of(req: &Value) -> Vec<ContainerSeen> {
    req["containerDefinitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| ContainerSeen {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    essential: c["essential"].as_bool().unwrap_or(true),
                    image: c["image"].as_str().unwrap_or_default().to_string(),
                    env: c["environment"]
                        .as_array()
                        .map(|e| {
                            e.iter()
                                .filter_map(|kv| {
                                    Some((
                                        kv["name"].as_str()?.to_string(),
                                        kv["value"].as_str()?.to_string(),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Inner {
    /// ListTasks, DescribeTasks and ExecuteCommand, answered here.
    pub(super) fn ecs_tasks(&self, c: &Call, body: &[u8]) -> Option<Response> {
        if c.service != "ecs" {
            return None;
        }
        let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let st = self.state.lock().unwrap();
        let all = tasks(&st, &self.t);
        let ok = |v: Value| Response::new(200, "application/x-amz-json-1.1", v.to_string());
        match c.op.as_str() {
            "ListTasks" => {
                let service = req["serviceName"].as_str();
                let cluster = req["cluster"].as_str().unwrap_or("default");
                let arns: Vec<&String> = all
                    .iter()
                    .filter(|t| service.is_none_or(|s| t.service == s))
                    .filter(|t| {
                        t.cluster_arn == cluster || t.cluster_arn.ends_with(&format!("/{cluster}"))
                    })
                    .map(|t| &t.arn)
                    .collect();
                // One a page under `paging`, as every list here.
                let from: usize = req["nextToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let size = if self.b.paging { 1 } else { 100 };
                let to = (from + size).min(arns.len());
                let page = &arns[from.min(to)..to];
                let mut v = json!({"taskArns": page});
                if to < arns.len() {
                    v["nextToken"] = json!(to.to_string());
                }
                Some(ok(v))
            }
            "DescribeTasks" => {
                let wanted: Vec<&str> = req["tasks"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut found = Vec::new();
                let mut failures = Vec::new();
                for w in wanted {
                    match all
                        .iter()
                        .find(|t| t.arn == w || t.arn.ends_with(&format!("/{w}")))
                    {
                        Some(t) => found.push(describe(t, &st)),
                        None => failures.push(json!({"arn": w, "reason": "MISSING"})),
                    }
                }
                Some(ok(json!({"tasks": found, "failures": failures})))
            }
            "ExecuteCommand" => Some(self.execute(&req, &all, &st)),
            _ => None,
        }
    }

    fn execute(&self, req: &Value, all: &[Task], st: &State) -> Response {
        if req["interactive"].as_bool() != Some(true) {
            return invalid("Interactive is the only mode supported currently.");
        }
        let Some(command) = req["command"].as_str().filter(|c| !c.is_empty()) else {
            return invalid("Command must not be empty.");
        };
        let wanted = req["task"].as_str().unwrap_or_default();
        let Some(t) = all.iter().find(|t| {
            !wanted.is_empty() && (t.arn == wanted || t.arn.ends_with(&format!("/{wanted}")))
        }) else {
            return invalid("The specified task is not found.");
        };
        let containers = st
            .ecs_containers
            .get(&t.task_definition)
            .cloned()
            .unwrap_or_default();
        let running: Vec<&ContainerSeen> = containers.iter().filter(|c| c.essential).collect();
        let container = match req["container"].as_str() {
            Some(name) => match containers.iter().find(|c| c.name == name) {
                Some(c) => c,
                None => return invalid("The specified container is not found in the task."),
            },
            None if containers.len() > 1 => {
                return invalid(
                    "The container name is required when the task has more than one container.",
                )
            }
            None => match running.first() {
                Some(c) => c,
                None => return invalid("The specified container is not found in the task."),
            },
        };
        if !t.exec_enabled || !t.agent_running || !container.essential {
            return invalid("The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try the command again or run a new task with execute command enabled and try again.");
        }
        let words = match super::exec_agent::split_command(command) {
            Ok(w) => w,
            Err(e) => return invalid(&format!("The command could not be parsed: {e}")),
        };
        let digest = container
            .image
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        let program = st.ecs_programs.get(digest).cloned();
        let (Some(program), Some(first)) = (program, words.first()) else {
            return invalid("The specified container has no program for this test.");
        };
        // The image's binary is the app; the agent runs the command's
        // first word from the container's PATH.
        let (program, args): (PathBuf, Vec<String>) = if first == "bookstore" {
            (program, words[1..].to_vec())
        } else {
            (PathBuf::from(first), words[1..].to_vec())
        };
        let agent = self.exec_agent();
        let session_id = format!("ecs-execute-command-{:016x}", rand_id());
        let (url, token) = agent.open(&session_id, program, args, container.env.clone());
        Response::new(
            200,
            "application/x-amz-json-1.1",
            json!({
                "clusterArn": t.cluster_arn,
                "containerArn": format!("{}/{}", t.arn.replace(":task/", ":container/"), container.name),
                "containerName": container.name,
                "interactive": true,
                "taskArn": t.arn,
                "session": {"sessionId": session_id, "streamUrl": url, "tokenValue": token},
            })
            .to_string(),
        )
    }

    /// The harness's ECS Exec agent, started at the first session.
    fn exec_agent(&self) -> Arc<ExecAgent> {
        self.exec_agent
            .get_or_init(|| ExecAgent::start(super::exec_agent::AgentBehaviour::all()))
            .clone()
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    n ^ (std::process::id() as u64) << 32
}
