//! ECS Exec's far end: the Session Manager service's data channel and the
//! SSM agent that ECS runs beside a task's container, as one WebSocket
//! server on a loopback port. A session the proxy's ExecuteCommand made
//! ([`ExecAgent::open`]) runs a real program as a child process and streams
//! its output to the client as the agent does.
//!
//! The agent's rules, from github.com/aws/amazon-ssm-agent:
//! - `agent/session/datachannel/datachannel.go`: stream messages numbered
//!   from 0, the first flagged SYN (1), empty payloads not sent; every sent
//!   message kept until acknowledged, the oldest resent every 100 ms once
//!   older than the retransmission timeout (200 ms at first); client
//!   messages handled in sequence, later ones acknowledged and buffered,
//!   earlier ones acknowledged again; a message whose handler is not ready
//!   neither acknowledged nor counted, so the client resends it; stream
//!   data ignored while a handshake is under way; the handshake (request,
//!   at most 15 s for the answer, any action not Success fails it, then
//!   complete); before closing, up to 2 s for every message to be
//!   acknowledged (PrepareToCloseChannel).
//! - `agent/session/plugins/sessionplugin/sessionplugin.go` and
//!   `plugins/singlecommand/singlecommand.go`: InteractiveCommands (what
//!   ECS Exec runs) skips the handshake unless the session is KMS-encrypted;
//!   NonInteractiveCommands always does it.
//! - `agent/session/shell/shell_unix.go` (StartCommandExecutor, container
//!   mode): the command runs without a shell, with the container's
//!   environment plus `TERM=xterm-256color` and, if unset, `LANG=C.UTF-8`,
//!   in a pty; input is refused until the pty has started
//!   (InputStreamMessageHandler); Size resizes the pty, Output is typed in.
//! - `agent/session/shell/shell.go`: output read up to 1024 bytes at a
//!   time, an incomplete UTF-8 character kept for the next read
//!   (processStdoutData), sent as Output payloads; no exit code on the pty
//!   path (executeCommandsWithPty). NonInteractiveCommands with
//!   separateOutputStream reads stdout and stderr from pipes (Output and
//!   StdErr payloads), then sends `EXIT_CODE: N` as an ExitCode payload.
//!
//! The pty is emulated with a socket pair shared by stdin, stdout and
//! stderr: one ordered stream, as a pty gives, with the pty's output
//! processing (ONLCR: `\n` becomes `\r\n`); the program sees no terminal,
//! and typed input is not echoed.
//!
//! The service's part (closed source, so inferred from the plugin's
//! handling, `session-manager-plugin` `src/datachannel/streaming.go`): the
//! session ends with a `channel_closed` message, sequence 0, flags 3, whose
//! Output is empty after the command ended and says why otherwise (a
//! failed handshake, a command that could not start: the agent's own
//! messages), then a WebSocket close. A wrong token in the open frame gets
//! no data channel message, only a WebSocket close (1008).
//!
//! Misbehaviours ([`AgentBehaviour`]) are counted ([`AgentStats`]) so a
//! test can prove the client met them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bookstore_infra::exec::session::{
    acknowledgement, json_payload, message_type, payload_type, ClientMessage, ACK_FLAGS,
    RESEND_SLEEP_INTERVAL,
};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// The agent version the handshake names (the agent repository's VERSION).
pub const AGENT_VERSION: &str = "3.3.0.0";
/// `shell.go`: StreamDataPayloadSize, the agent's read size.
const READ_SIZE: usize = 1024;
/// The read size when output is split into small parts.
const SPLIT_READ_SIZE: usize = 5;
/// `datachannel.go`: handshakeTimeout; PrepareToCloseChannel's wait.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a message held back to be sent out of order may wait.
const HOLD: Duration = Duration::from_millis(50);
/// How long a read waits for the client, each turn of a session's loop.
const TURN: Duration = Duration::from_millis(10);

/// Which misbehaviours the agent adds, and which of its modes it runs.
#[derive(Debug, Clone)]
pub struct AgentBehaviour {
    /// Handshake first, as the agent does for an encrypted session and for
    /// NonInteractiveCommands (ECS Exec's InteractiveCommands skips it
    /// otherwise, and starts with output).
    pub handshake: bool,
    /// Ask for KMS encryption in the handshake, with this key id.
    pub kms_key: Option<String>,
    /// Run as NonInteractiveCommands with separateOutputStream (not what
    /// ECS Exec runs): StdErr payloads, then an ExitCode payload.
    pub separate_output: bool,
    /// Read the output a few bytes at a time: many small messages, UTF-8
    /// characters held across reads.
    pub split_output: bool,
    /// Send every 4th message after the one that follows it.
    pub reorder: bool,
    /// Send every 5th message twice.
    pub duplicate: bool,
    /// Ignore the client's first acknowledgement of every 3rd message, so
    /// the message is resent after the retransmission timeout. (As the
    /// agent, only the oldest is resent each 100 ms, and the session closes
    /// at most 2 s after the command's end whatever is still unacknowledged:
    /// long output adds up to 2 s.)
    pub ignore_acks: bool,
    /// Refuse the first copy of each of the client's input messages, as
    /// the agent does while its pty is not ready, so the client resends it.
    pub reject_input_once: bool,
    /// The retransmission timeout (the agent starts at 200 ms, then adapts).
    pub resend_after: Duration,
}

impl AgentBehaviour {
    /// Every misbehaviour, with the handshake, as ECS Exec's
    /// InteractiveCommands otherwise runs.
    pub fn all() -> Self {
        AgentBehaviour {
            handshake: true,
            kms_key: None,
            separate_output: false,
            split_output: true,
            reorder: true,
            duplicate: true,
            ignore_acks: true,
            reject_input_once: true,
            resend_after: Duration::from_millis(200),
        }
    }

    /// ECS Exec's agent as it is, behaving well.
    pub fn none() -> Self {
        AgentBehaviour {
            handshake: false,
            split_output: false,
            reorder: false,
            duplicate: false,
            ignore_acks: false,
            reject_input_once: false,
            ..Self::all()
        }
    }
}

/// What the agent did and saw, over all sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Connections whose open frame had the session's token.
    pub sessions: usize,
    /// Connections refused for a wrong or unknown token.
    pub refused: usize,
    /// Handshakes completed.
    pub handshakes: usize,
    /// Stream messages the agent numbered (each sent once or more).
    pub stream_messages: usize,
    /// Messages resent for lack of an acknowledgement.
    pub resent: usize,
    /// Messages sent twice on purpose.
    pub duplicates_sent: usize,
    /// Messages sent after their successor.
    pub out_of_order: usize,
    /// Acknowledgements received, and ignored on purpose.
    pub acks_received: usize,
    pub acks_ignored: usize,
    /// The client's input messages, distinct; those that came again;
    /// copies refused (not acknowledged).
    pub input_messages: usize,
    pub input_resent: usize,
    pub input_rejected: usize,
    /// Terminal sizes the client sent (columns, rows).
    pub terminal_sizes: Vec<(u64, u64)>,
    /// Sessions ended by `channel_closed` after their command ended.
    pub completed: usize,
}

#[derive(Clone)]
struct Registered {
    token: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub struct ExecAgent {
    /// `127.0.0.1:PORT`.
    pub endpoint: String,
    behaviour: AgentBehaviour,
    sessions: Mutex<HashMap<String, Registered>>,
    stats: Mutex<AgentStats>,
}

impl ExecAgent {
    pub fn start(behaviour: AgentBehaviour) -> Arc<ExecAgent> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let endpoint = listener.local_addr().expect("its address").to_string();
        let agent = Arc::new(ExecAgent {
            endpoint,
            behaviour,
            sessions: Mutex::new(HashMap::new()),
            stats: Mutex::new(AgentStats::default()),
        });
        let a = agent.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let a = a.clone();
                thread::spawn(move || a.serve(conn));
            }
        });
        agent
    }

    /// Registers a session the proxy's ExecuteCommand made; returns
    /// (stream_url, token). The program runs with exactly `env` (the
    /// container's environment) and the agent's TERM and LANG.
    pub fn open(
        &self,
        session_id: &str,
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> (String, String) {
        let token = format!("AAEAA{}", uuid::Uuid::new_v4().simple());
        let url = format!(
            "ws://{}/v1/data-channel/{session_id}?role=publish_subscribe",
            self.endpoint
        );
        let reg = Registered {
            token: token.clone(),
            program,
            args,
            env,
        };
        self.sessions
            .lock()
            .unwrap()
            .insert(session_id.to_string(), reg);
        (url, token)
    }

    pub fn stats(&self) -> AgentStats {
        self.stats.lock().unwrap().clone()
    }

    fn count(&self, f: impl FnOnce(&mut AgentStats)) {
        f(&mut self.stats.lock().unwrap());
    }

    // tungstenite's handshake callback returns its own (large) error type.
    #[allow(clippy::result_large_err)]
    fn serve(self: Arc<Self>, tcp: TcpStream) {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let mut path = String::new();
        let accepted = tungstenite::accept_hdr(
            tcp,
            |req: &tungstenite::handshake::server::Request, resp| {
                path = req.uri().path().to_string();
                Ok(resp)
            },
        );
        let Ok(mut ws) = accepted else { return };
        let session_id = path.rsplit('/').next().unwrap_or_default().to_string();
        // The open frame (`streaming.go`, FinalizeDataChannelHandshake).
        let open = match ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str::<Value>(t.as_str()).ok(),
            _ => None,
        };
        let token = open.as_ref().and_then(|v| v["TokenValue"].as_str());
        let reg = self.sessions.lock().unwrap().get(&session_id).cloned();
        let Some(reg) = reg.filter(|r| Some(r.token.as_str()) == token) else {
            self.count(|s| s.refused += 1);
            let reason = "invalid token".into();
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason,
            }));
            while ws.read().is_ok() {}
            return;
        };
        self.count(|s| s.sessions += 1);
        let _ = ws.get_ref().set_read_timeout(Some(TURN));
        let mut conn = Conn {
            ws,
            b: self.behaviour.clone(),
            agent: self,
            session_id,
            gone: false,
            next_seq: 0,
            unacked: VecDeque::new(),
            held: None,
            ignored: BTreeSet::new(),
            checked: Instant::now(),
            expected: 0,
            early: BTreeMap::new(),
            seen: BTreeSet::new(),
            rejected: BTreeSet::new(),
            handshaking: false,
            answer: None,
            stdin: None,
            ready: false,
        };
        conn.run(&reg);
    }
}

/// A piece of the command's output (payload type, bytes), or the end of
/// one of its streams.
type Event = Option<(u32, Vec<u8>)>;

/// One session's data channel.
struct Conn {
    ws: WebSocket<TcpStream>,
    agent: Arc<ExecAgent>,
    b: AgentBehaviour,
    session_id: String,
    gone: bool,
    // The agent's messages.
    next_seq: i64,
    /// Sent and not acknowledged: sequence number, frame, last sent.
    unacked: VecDeque<(i64, Vec<u8>, Instant)>,
    /// A message held back to be sent after its successor.
    held: Option<(i64, Vec<u8>, Instant)>,
    ignored: BTreeSet<i64>,
    checked: Instant,
    // The client's messages.
    expected: i64,
    early: BTreeMap<i64, ClientMessage>,
    seen: BTreeSet<i64>,
    rejected: BTreeSet<i64>,
    handshaking: bool,
    answer: Option<Value>,
    stdin: Option<UnixStream>,
    ready: bool,
}

impl Conn {
    fn run(&mut self, reg: &Registered) {
        let kind = match self.b.separate_output {
            true => "NonInteractiveCommands",
            false => "InteractiveCommands",
        };
        // sessionplugin.go: RequireHandshake() || encryptionEnabled.
        if self.b.handshake || self.b.separate_output || self.b.kms_key.is_some() {
            if let Err(reason) = self.handshake(kind) {
                let reason = format!("Encountered error while initiating handshake. {reason}");
                return self.close(&reason);
            }
        }
        let (mut child, events) = match self.spawn(reg) {
            Ok(started) => started,
            // shell.go: "Unable to start command: %s\n".
            Err(e) => return self.close(&format!("Unable to start command: {e}")),
        };
        self.ready = true;
        let mut streams = if self.b.separate_output { 2 } else { 1 };
        while streams > 0 {
            if !self.turn() {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            while let Ok(event) = events.try_recv() {
                match event {
                    Some((kind, bytes)) => self.send_stream(kind, bytes),
                    None => streams -= 1,
                }
            }
        }
        let status = child.wait();
        if self.b.separate_output {
            // shell.go, sendExitCode (an unknown status is ErrorExitCode, 1).
            let code = status.ok().and_then(|s| s.code()).unwrap_or(1);
            let text = format!("EXIT_CODE: {code}");
            self.send_stream(payload_type::EXIT_CODE, text.into_bytes());
        }
        if let Some((_, bytes, _)) = self.held.take() {
            self.write(bytes);
        }
        let until = Instant::now() + CLOSE_WAIT;
        while !self.unacked.is_empty() && Instant::now() < until {
            if !self.turn() {
                return;
            }
        }
        self.agent.count(|s| s.completed += 1);
        self.close("");
    }

    /// `datachannel.go`, PerformHandshake and handleHandshakeResponse.
    fn handshake(&mut self, kind: &str) -> Result<(), String> {
        let mut actions = vec![json!({ "ActionType": "SessionType",
            "ActionParameters": { "SessionType": kind, "Properties": null } })];
        if let Some(key) = &self.b.kms_key {
            actions.push(json!({ "ActionType": "KMSEncryption",
                "ActionParameters": { "KMSKeyId": key, "Challenge": "Y2hhbGxlbmdl" } }));
        }
        let request = json!({ "AgentVersion": AGENT_VERSION, "RequestedClientActions": actions });
        let started = Instant::now();
        self.handshaking = true;
        self.send_stream(
            payload_type::HANDSHAKE_REQUEST,
            request.to_string().into_bytes(),
        );
        while self.answer.is_none() {
            if !self.turn() || started.elapsed() > HANDSHAKE_TIMEOUT {
                return Err("Handshake timed out. Please ensure that you have the latest version of the session manager plugin.".into());
            }
        }
        let answer = self.answer.take().unwrap_or_default();
        for action in answer["ProcessedClientActions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if action["ActionStatus"] != 1 {
                return Err(format!(
                    "{} failed on client with status {} error: {}",
                    action["ActionType"].as_str().unwrap_or_default(),
                    action["ActionStatus"],
                    action["Error"].as_str().unwrap_or_default()
                ));
            }
        }
        if self.b.kms_key.is_some() {
            return Err("the encryption challenge is not emulated".into());
        }
        let took = started.elapsed().as_nanos() as i64;
        let complete = json!({ "HandshakeTimeToComplete": took, "CustomerMessage": "" });
        self.send_stream(
            payload_type::HANDSHAKE_COMPLETE,
            complete.to_string().into_bytes(),
        );
        self.handshaking = false;
        self.agent.count(|s| s.handshakes += 1);
        Ok(())
    }

    /// Starts the command (`shell_unix.go`, StartCommandExecutor) and a
    /// reader for each of its output streams.
    fn spawn(&mut self, reg: &Registered) -> io::Result<(Child, Receiver<Event>)> {
        let mut cmd = Command::new(&reg.program);
        cmd.args(&reg.args).env_clear();
        cmd.envs(reg.env.iter().map(|(k, v)| (k, v)));
        cmd.env("TERM", "xterm-256color");
        if !reg.env.iter().any(|(k, _)| k == "LANG") {
            cmd.env("LANG", "C.UTF-8");
        }
        let size = match self.b.split_output {
            true => SPLIT_READ_SIZE,
            false => READ_SIZE,
        };
        let (tx, rx) = mpsc::channel();
        if self.b.separate_output {
            cmd.stdin(Stdio::null());
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn()?;
            if let Some(out) = child.stdout.take() {
                reader(out, payload_type::OUTPUT, false, size, tx.clone());
            }
            if let Some(err) = child.stderr.take() {
                reader(err, payload_type::STDERR, false, size, tx);
            }
            return Ok((child, rx));
        }
        let (ours, theirs) = UnixStream::pair()?;
        cmd.stdin(Stdio::from(OwnedFd::from(theirs.try_clone()?)));
        cmd.stdout(Stdio::from(OwnedFd::from(theirs.try_clone()?)));
        cmd.stderr(Stdio::from(OwnedFd::from(theirs)));
        let child = cmd.spawn();
        // The command holds the far end's copies: without it, the reader
        // sees the end when the program (and what it started) is gone.
        drop(cmd);
        let child = child?;
        self.stdin = Some(ours.try_clone()?);
        reader(ours, payload_type::OUTPUT, true, size, tx);
        Ok((child, rx))
    }

    /// One turn: a message from the client if one comes within a moment,
    /// a held message released, a due resend (`datachannel.go`,
    /// ResendStreamDataMessageScheduler: the oldest unacknowledged). False
    /// once the client is gone.
    fn turn(&mut self) -> bool {
        match self.ws.read() {
            Ok(Message::Binary(b)) => self.received(&b),
            Ok(Message::Text(t)) => self.received(t.as_bytes()),
            Ok(Message::Close(_)) => self.gone = true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => self.gone = true,
        }
        let now = Instant::now();
        let release = self
            .held
            .as_ref()
            .is_some_and(|h| now.duration_since(h.2) > HOLD);
        if release {
            if let Some((_, bytes, _)) = self.held.take() {
                self.write(bytes);
            }
        }
        if now.duration_since(self.checked) >= RESEND_SLEEP_INTERVAL {
            self.checked = now;
            let held = self.held.as_ref().map(|h| h.0);
            let due = self.unacked.front_mut().filter(|(seq, _, sent)| {
                Some(*seq) != held && now.duration_since(*sent) > self.b.resend_after
            });
            if let Some((_, bytes, sent)) = due {
                *sent = now;
                let bytes = bytes.clone();
                self.write(bytes);
                self.agent.count(|s| s.resent += 1);
            }
        }
        !self.gone
    }

    /// `datachannel.go`, SendStreamDataMessage, with the misbehaviours.
    fn send_stream(&mut self, kind: u32, payload: Vec<u8>) {
        if payload.is_empty() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let flags = u64::from(seq == 0);
        let m = ClientMessage::new(message_type::OUTPUT_STREAM_DATA, seq, flags, kind, payload);
        let (bytes, now) = (m.encode(), Instant::now());
        self.unacked.push_back((seq, bytes.clone(), now));
        self.agent.count(|s| s.stream_messages += 1);
        if self.b.reorder && seq % 4 == 1 && self.held.is_none() {
            self.held = Some((seq, bytes, now));
            return;
        }
        self.write(bytes.clone());
        if self.b.duplicate && seq % 5 == 3 {
            self.write(bytes);
            self.agent.count(|s| s.duplicates_sent += 1);
        }
        if let Some((_, held, _)) = self.held.take() {
            self.write(held);
            self.agent.count(|s| s.out_of_order += 1);
        }
    }

    fn write(&mut self, bytes: Vec<u8>) {
        if self.ws.send(Message::binary(bytes)).is_err() {
            self.gone = true;
        }
    }

    /// `datachannel.go`, dataChannelIncomingMessageHandler: an invalid
    /// message is dropped.
    fn received(&mut self, raw: &[u8]) {
        let Ok(m) = ClientMessage::decode(raw) else {
            return;
        };
        match m.message_type.as_str() {
            message_type::ACKNOWLEDGE => self.acknowledged(&m),
            message_type::INPUT_STREAM_DATA => self.input(m),
            _ => {}
        }
    }

    /// `datachannel.go`, ProcessAcknowledgedMessage (by sequence number).
    fn acknowledged(&mut self, m: &ClientMessage) {
        self.agent.count(|s| s.acks_received += 1);
        let payload = json_payload(m).unwrap_or_default();
        let Some(seq) = payload["AcknowledgedMessageSequenceNumber"].as_i64() else {
            return;
        };
        if self.b.ignore_acks && seq % 3 == 2 && self.ignored.insert(seq) {
            self.agent.count(|s| s.acks_ignored += 1);
            return;
        }
        self.unacked.retain(|(s, ..)| *s != seq);
    }

    /// `datachannel.go`, handleStreamDataMessage and
    /// processIncomingMessageBufferItems.
    fn input(&mut self, m: ClientMessage) {
        let seq = m.sequence_number;
        match self.seen.insert(seq) {
            true => self.agent.count(|s| s.input_messages += 1),
            false => self.agent.count(|s| s.input_resent += 1),
        }
        if seq != self.expected {
            self.write(acknowledgement(&m).encode());
            if seq > self.expected {
                self.early.insert(seq, m);
            }
            return;
        }
        if !self.process(&m) {
            self.agent.count(|s| s.input_rejected += 1);
            return;
        }
        self.write(acknowledgement(&m).encode());
        self.expected += 1;
        while let Some(next) = self.early.remove(&self.expected) {
            if !self.process(&next) {
                self.early.insert(next.sequence_number, next);
                break;
            }
            self.expected += 1;
        }
    }

    /// `datachannel.go`, processStreamDataMessage, and `shell_unix.go`,
    /// InputStreamMessageHandler: false when refused (handler not ready).
    fn process(&mut self, m: &ClientMessage) -> bool {
        match m.payload_type {
            payload_type::HANDSHAKE_RESPONSE => {
                self.answer = Some(json_payload(m).unwrap_or_default());
                true
            }
            _ if self.handshaking => true,
            _ if !self.ready => false,
            _ if self.b.reject_input_once && self.rejected.insert(m.sequence_number) => false,
            payload_type::SIZE => {
                let size = json_payload(m).unwrap_or_default();
                let (cols, rows) = (size["cols"].as_u64(), size["rows"].as_u64());
                let size = (cols.unwrap_or_default(), rows.unwrap_or_default());
                self.agent.count(|s| s.terminal_sizes.push(size));
                true
            }
            payload_type::OUTPUT => {
                if let Some(stdin) = self.stdin.as_mut() {
                    let _ = stdin.write_all(&m.payload);
                }
                true
            }
            _ => true,
        }
    }

    /// The service's end of the session: `channel_closed`, then the
    /// WebSocket close, waiting a moment for the client's.
    fn close(&mut self, output: &str) {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let body = json!({
            "MessageId": uuid::Uuid::new_v4().to_string(),
            "CreatedDate": millis.to_string(),
            "DestinationId": "",
            "SessionId": self.session_id,
            "MessageType": message_type::CHANNEL_CLOSED,
            "SchemaVersion": 1,
            "Output": output,
        });
        let body = body.to_string().into_bytes();
        let m = ClientMessage::new(message_type::CHANNEL_CLOSED, 0, ACK_FLAGS, 0, body);
        self.write(m.encode());
        let _ = self.ws.close(None);
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    }
}

/// Reads one of the command's streams as `shell.go` does (writePump,
/// processStdoutData): up to `size` bytes a read, an incomplete UTF-8
/// character kept for the next; with a pty, ONLCR.
fn reader(
    mut from: impl Read + Send + 'static,
    kind: u32,
    pty: bool,
    size: usize,
    tx: Sender<Event>,
) {
    thread::spawn(move || {
        let (mut buf, mut pending) = (vec![0; size], Vec::new());
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            pending.extend_from_slice(&buf[..n]);
            let ready: Vec<u8> = pending.drain(..complete_utf8(&pending)).collect();
            if !ready.is_empty() {
                let _ = tx.send(Some((kind, if pty { onlcr(&ready) } else { ready })));
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(Some((kind, if pty { onlcr(&pending) } else { pending })));
        }
        let _ = tx.send(None);
    });
}

/// How much of `b` can be sent: all but an incomplete UTF-8 character at
/// its end; invalid bytes go as they are.
fn complete_utf8(b: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match std::str::from_utf8(&b[at..]) {
            Ok(_) => return b.len(),
            Err(e) => match e.error_len() {
                None => return at + e.valid_up_to(),
                Some(n) => at += e.valid_up_to() + n,
            },
        }
    }
}

/// A pty's output processing: each `\n` written as `\r\n`.
fn onlcr(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 8);
    for &c in b {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

/// google/shlex's Split, which the agent applies to ExecuteCommand's
/// `command` in container mode (`shell_unix.go`; the agent's
/// `vendor/github.com/google/shlex/shlex.go`): words split at space, tab,
/// CR and LF; `'...'` literal; `"..."` where `\` takes the next character
/// as it is; `\` outside quotes likewise; `#` starting a word comments the
/// line out.
pub fn split_command(command: &str) -> Result<Vec<String>, String> {
    #[derive(Clone, Copy)]
    enum S {
        Start,
        Word,
        Escaping,
        Double,
        DoubleEscaping,
        Single,
        Comment,
    }
    let space = |c: char| " \t\r\n".contains(c);
    let (mut words, mut word, mut state) = (Vec::new(), String::new(), S::Start);
    for c in command.chars() {
        state = match (state, c) {
            (S::Start, c) if space(c) => S::Start,
            (S::Start, '#') => S::Comment,
            (S::Start | S::Word, '"') => S::Double,
            (S::Start | S::Word, '\'') => S::Single,
            (S::Start | S::Word, '\\') => S::Escaping,
            (S::Word, c) if space(c) => {
                words.push(std::mem::take(&mut word));
                S::Start
            }
            (S::Start | S::Word | S::Escaping, c) => {
                word.push(c);
                S::Word
            }
            (S::Double, '"') | (S::Single, '\'') => S::Word,
            (S::Double, '\\') => S::DoubleEscaping,
            (S::Double | S::DoubleEscaping, c) => {
                word.push(c);
                S::Double
            }
            (S::Single, c) => {
                word.push(c);
                S::Single
            }
            (S::Comment, '\n') => S::Start,
            (S::Comment, _) => S::Comment,
        };
    }
    match state {
        S::Start | S::Comment => Ok(words),
        S::Word => {
            words.push(word);
            Ok(words)
        }
        S::Escaping | S::DoubleEscaping => Err("EOF found after escape character".into()),
        S::Double | S::Single => Err("EOF found when expecting closing quote".into()),
    }
}
