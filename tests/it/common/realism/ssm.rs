//! Systems Manager Run Command.
//!
//! The emulator accepts SendCommand for any instance id and answers
//! GetCommandInvocation at once with Success, exit status 0 and no output.
//! AWS (Systems Manager API reference, SendCommand and GetCommandInvocation):
//! - SendCommand refuses an instance that is not a running managed node with
//!   `InvalidInstanceId` ("the instance isn't in a valid state", among the
//!   reasons listed for that error);
//! - the invocation is created asynchronously: right after SendCommand,
//!   GetCommandInvocation answers `InvocationDoesNotExist`;
//! - its `Status` goes Pending, InProgress, then Success or Failed;
//!   `ResponseCode` is -1 until the command completes, then its exit status;
//!   `StandardOutputContent` and `StandardErrorContent` hold at most the
//!   first 24,000 characters.
//!
//! - an instance is a managed node once its agent has registered; its
//!   agent's `PingStatus` (`Online`, `ConnectionLost`, `Inactive`) is what
//!   DescribeInstanceInformation lists, and SendCommand refuses an
//!   instance whose agent is not online with `InvalidInstanceId`. The
//!   emulator has no DescribeInstanceInformation: the proxy serves it for
//!   the emulator's running instances, with its `InstanceIds` filter.
//!
//! What the command does on the instance comes from a stand-in agent a test
//! sets ([`Realism::ssm_agent`]); whether its agent is online, from
//! [`Realism::agent_state`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::http::{self, Request, Response};
use super::super::xml;
use super::errors::error;
use super::{Call, Inner, Realism};

/// What the SSM agent of an instance does with a command's lines: (exit
/// status, standard output, standard error).
pub type Agent = Arc<dyn Fn(&str, &[String]) -> (i32, String, String) + Send + Sync>;

/// One command sent to one instance.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub command_id: String,
    pub instance: String,
    pub document: String,
    pub commands: Vec<String>,
    sent: Instant,
    outcome: (i32, String, String),
}

#[derive(Default)]
struct RunCommands {
    agent: Option<Agent>,
    invocations: Vec<Invocation>,
    /// Instances whose agent is not online: its `PingStatus`, or `None`
    /// when it has not registered yet.
    not_online: HashMap<String, Option<String>>,
}

/// Run Command state of each proxy, by the address of its state.
fn run_commands() -> &'static Mutex<HashMap<usize, RunCommands>> {
    static S: std::sync::OnceLock<Mutex<HashMap<usize, RunCommands>>> = std::sync::OnceLock::new();
    S.get_or_init(Default::default)
}

/// How long an invocation is not visible, then Pending, then InProgress.
const RC_INVISIBLE: Duration = Duration::from_millis(300);
const RC_PENDING: Duration = Duration::from_millis(600);
const RC_RUNNING: Duration = Duration::from_millis(1200);
/// GetCommandInvocation's output limit, in characters.
const RC_OUTPUT: usize = 24_000;

impl Realism {
    /// Sets what the instances' agent does with the commands sent from now
    /// on. Without one, a command succeeds with no output.
    pub fn ssm_agent(
        &self,
        f: impl Fn(&str, &[String]) -> (i32, String, String) + Send + Sync + 'static,
    ) {
        let me = self.inner.me();
        run_commands().lock().unwrap().entry(me).or_default().agent = Some(Arc::new(f));
    }

    /// The agent of `instance` from now on: online (`None`), not registered
    /// yet (`Some("")`), or with that `PingStatus` (`Some("ConnectionLost")`).
    pub fn agent_state(&self, instance: &str, state: Option<&str>) {
        let me = self.inner.me();
        let mut all = run_commands().lock().unwrap();
        let rc = all.entry(me).or_default();
        match state {
            None => {
                rc.not_online.remove(instance);
            }
            Some(s) => {
                rc.not_online
                    .insert(instance.to_string(), (!s.is_empty()).then(|| s.to_string()));
            }
        }
    }

    /// Every command AWS accepted through this proxy.
    pub fn invocations(&self) -> Vec<Invocation> {
        let me = self.inner.me();
        run_commands()
            .lock()
            .unwrap()
            .get(&me)
            .map(|r| r.invocations.clone())
            .unwrap_or_default()
    }
}

impl Inner {
    /// The proxy's own answer to a Run Command call, or `None` to forward.
    pub(super) fn run_command(&self, c: &Call, req: &Request) -> Option<Response> {
        match (c.service.as_str(), c.op.as_str()) {
            ("ssm", "SendCommand") => Some(self.send_command(req)),
            ("ssm", "GetCommandInvocation") => self.command_invocation(c),
            ("ssm", "DescribeInstanceInformation") => Some(self.instance_information(req)),
            _ => None,
        }
    }

    /// The instance's state name in the emulator, if it exists.
    fn instance_state(&self, id: &str) -> Option<String> {
        let r = self.upstream_query("ec2", "DescribeInstances", &[("InstanceId.1", id.into())]);
        let body = r.text();
        if r.status >= 300 || !body.contains(&format!("<instanceId>{id}</instanceId>")) {
            return None;
        }
        let state = body.split("<instanceState>").nth(1)?;
        xml::text(state, "name").map(str::to_string)
    }

    fn send_command(&self, req: &Request) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let document = body["DocumentName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let instances: Vec<String> = strings(&body["InstanceIds"]);
        let commands: Vec<String> = strings(&body["Parameters"]["commands"]);
        if document.is_empty() {
            return error("ssm", 400, "ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null");
        }
        if document == "AWS-RunShellScript" && commands.is_empty() {
            return error(
                "ssm",
                400,
                "InvalidParameters",
                "Parameter \"commands\" is required.",
            );
        }
        if instances.is_empty() {
            return error(
                "ssm",
                400,
                "ValidationException",
                "Either InstanceIds or Targets must be specified.",
            );
        }
        let not_online = self.not_online();
        let invalid: Vec<&String> = instances
            .iter()
            .filter(|i| {
                not_online.contains_key(*i) || self.instance_state(i).as_deref() != Some("running")
            })
            .collect();
        if !invalid.is_empty() {
            self.state.lock().unwrap().count("invalid_instance");
            let list: Vec<String> = invalid.iter().map(|i| format!("[{i}]")).collect();
            return error(
                "ssm",
                400,
                "InvalidInstanceId",
                &format!(
                    "Instances [{}] not in a valid state for account 123456789012",
                    list.join(", ")
                ),
            );
        }
        let resp = match http::forward(&self.upstream, req) {
            Ok(r) => r,
            Err(e) => return error("ssm", 500, "InternalServerError", &e.to_string()),
        };
        if resp.status >= 300 {
            return resp;
        }
        let mut answer: Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let Some(id) = answer["Command"]["CommandId"].as_str().map(str::to_string) else {
            return resp;
        };
        // Just sent: nothing has run yet.
        answer["Command"]["Status"] = json!("Pending");
        answer["Command"]["StatusDetails"] = json!("Pending");
        let mut all = run_commands().lock().unwrap();
        let rc = all.entry(self.me()).or_default();
        for i in &instances {
            let outcome = match &rc.agent {
                Some(a) => a(i, &commands),
                None => (0, String::new(), String::new()),
            };
            rc.invocations.push(Invocation {
                command_id: id.clone(),
                instance: i.clone(),
                document: document.clone(),
                commands: commands.clone(),
                sent: Instant::now(),
                outcome,
            });
        }
        Response::new(200, "application/x-amz-json-1.1", answer.to_string())
    }

    fn not_online(&self) -> HashMap<String, Option<String>> {
        run_commands()
            .lock()
            .unwrap()
            .get(&self.me())
            .map(|r| r.not_online.clone())
            .unwrap_or_default()
    }

    /// DescribeInstanceInformation: the managed nodes among the emulator's
    /// running instances (those of the `InstanceIds` filter, if given),
    /// with their agent's `PingStatus`.
    fn instance_information(&self, req: &Request) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let mut asked: Option<Vec<String>> = None;
        for f in body["Filters"].as_array().into_iter().flatten() {
            match f["Key"].as_str() {
                Some("InstanceIds") => asked = Some(strings(&f["Values"])),
                Some(k) => {
                    return error(
                        "ssm",
                        400,
                        "InvalidInstanceInformationFilterValue",
                        &format!("The filter key {k} is not handled here."),
                    )
                }
                None => {}
            }
        }
        let all = self.upstream_query("ec2", "DescribeInstances", &[]);
        let text = all.text();
        let mut running: Vec<String> = text
            .split("<instanceId>")
            .skip(1)
            .filter_map(|rest| {
                let id = rest.split('<').next()?;
                let state = rest.split("<instanceState>").nth(1)?;
                (xml::text(state, "name") == Some("running")).then(|| id.to_string())
            })
            .collect();
        running.dedup();
        let not_online = self.not_online();
        let mut list = Vec::new();
        for id in running {
            if asked.as_ref().is_some_and(|a| !a.contains(&id)) {
                continue;
            }
            let ping = match not_online.get(&id) {
                None => "Online".to_string(),
                Some(None) => {
                    self.state.lock().unwrap().count("agent_not_online");
                    continue;
                }
                Some(Some(p)) => {
                    self.state.lock().unwrap().count("agent_not_online");
                    p.clone()
                }
            };
            list.push(json!({
                "InstanceId": id,
                "PingStatus": ping,
                "ResourceType": "EC2Instance",
                "PlatformType": "Linux",
                "PlatformName": "Amazon Linux",
                "AgentVersion": "3.3.0.0",
                "IsLatestVersion": true,
            }));
        }
        Response::new(
            200,
            "application/x-amz-json-1.1",
            json!({ "InstanceInformationList": list }).to_string(),
        )
    }

    fn command_invocation(&self, c: &Call) -> Option<Response> {
        let (id, instance) = (c.get("CommandId")?, c.get("InstanceId").unwrap_or_default());
        let inv = {
            let all = run_commands().lock().unwrap();
            let rc = all.get(&self.me())?;
            if !rc.invocations.iter().any(|i| i.command_id == id) {
                // Not sent through here: the emulator answers (InvalidCommandId).
                return None;
            }
            rc.invocations
                .iter()
                .find(|i| i.command_id == id && i.instance == instance)
                .cloned()
        };
        let not_yet = || {
            error(
                "ssm",
                400,
                "InvocationDoesNotExist",
                "The command ID and instance ID you specified didn't match any invocations. Verify the command ID and the instance ID and try again.",
            )
        };
        let Some(inv) = inv else {
            return Some(not_yet());
        };
        let age = inv.sent.elapsed();
        if age < RC_INVISIBLE {
            self.state.lock().unwrap().count("invocation_not_yet");
            return Some(not_yet());
        }
        let (exit, out, err) = &inv.outcome;
        let cut = |s: &str| s.chars().take(RC_OUTPUT).collect::<String>();
        let (status, code, stdout, stderr) = if age < RC_PENDING {
            ("Pending", -1, String::new(), String::new())
        } else if age < RC_RUNNING {
            ("InProgress", -1, String::new(), String::new())
        } else if *exit == 0 {
            ("Success", 0, cut(out), cut(err))
        } else {
            ("Failed", *exit, cut(out), cut(err))
        };
        if status != "Success" && status != "Failed" {
            self.state.lock().unwrap().count("invocation_in_progress");
        }
        Some(Response::new(
            200,
            "application/x-amz-json-1.1",
            json!({
                "CommandId": inv.command_id,
                "InstanceId": inv.instance,
                "DocumentName": inv.document,
                "DocumentVersion": "$DEFAULT",
                "PluginName": "aws:runShellScript",
                "ResponseCode": code,
                "Status": status,
                "StatusDetails": status,
                "StandardOutputContent": stdout,
                "StandardOutputUrl": "",
                "StandardErrorContent": stderr,
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
            })
            .to_string(),
        ))
    }
}

/// The strings of a JSON array.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
