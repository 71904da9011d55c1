//! The client end of an ECS Exec session: the AWS Session Manager data
//! channel protocol over a WebSocket, as `session-manager-plugin` speaks it
//! with the SSM agent beside the container. `ecs:ExecuteCommand` answers
//! `Session { sessionId, streamUrl, tokenValue }` (Amazon ECS API Reference);
//! the token goes in a text frame on `streamUrl`, then binary
//! [`ClientMessage`]s flow. Each rule names its file in
//! github.com/aws/session-manager-plugin or github.com/aws/amazon-ssm-agent.
//!
//! ECS Exec's agent runs in container mode (the ECS agent writes
//! `"ContainerMode": true` into its configuration): the command is split
//! with google/shlex and run without a shell, in a pty (`shell_unix.go`,
//! StartCommandExecutor; ExecuteCommand takes only `interactive: true`). So
//! standard error comes merged into Output payloads, `\n` as `\r\n`, and
//! **no exit status reaches the client**: the pty path (`shell.go`,
//! executeCommandsWithPty) sends Output only, then the service sends
//! `channel_closed`. StdErr (11) and ExitCode (12, `EXIT_CODE: N`) payloads
//! come only from NonInteractiveCommands with `separateOutputStream`
//! (`shell.go`, sendExitCode); they are honoured when they come.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::Connector;
use uuid::Uuid;

/// Message types (`clientmessage.go`; the agent's `contracts/model.go`).
pub mod message_type {
    pub const INPUT_STREAM_DATA: &str = "input_stream_data";
    pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
    pub const ACKNOWLEDGE: &str = "acknowledge";
    pub const CHANNEL_CLOSED: &str = "channel_closed";
    pub const START_PUBLICATION: &str = "start_publication";
    pub const PAUSE_PUBLICATION: &str = "pause_publication";
}

/// Payload types (`clientmessage.go`, PayloadType; the same numbers in the
/// agent's `contracts/model.go`). Unused here: 4 Parameter, 8 and 9
/// EncChallengeRequest/Response (KMS only), 10 Flag (port sessions).
pub mod payload_type {
    pub const OUTPUT: u32 = 1;
    pub const ERROR: u32 = 2;
    pub const SIZE: u32 = 3;
    pub const HANDSHAKE_REQUEST: u32 = 5;
    pub const HANDSHAKE_RESPONSE: u32 = 6;
    pub const HANDSHAKE_COMPLETE: u32 = 7;
    pub const STDERR: u32 = 11;
    pub const EXIT_CODE: u32 = 12;
}

/// HeaderLength as written: the offset of PayloadLength; the payload starts
/// 4 bytes after it (`messageparser.go`, SerializeClientMessage).
pub const HEADER_LENGTH: u32 = 116;
const PAYLOAD_OFFSET: usize = 120;
/// The plugin version claimed: the last numbered one of the plugin's
/// RELEASENOTES.md (the agent checks it is past 1.2.312.0, `datachannel.go`).
pub const CLIENT_VERSION: &str = "1.2.650.0";
/// Flags of acknowledgements (SYN|FIN, `messageparser.go`).
pub const ACK_FLAGS: u64 = 3;
/// `config.go`: resend check interval, first retransmission timeout (the
/// first round-trip estimate is 100 ms), resend limit ("5 minutes /
/// ResendSleepInterval"), buffer capacities, ping interval.
pub const RESEND_SLEEP_INTERVAL: Duration = Duration::from_millis(100);
pub const DEFAULT_TRANSMISSION_TIMEOUT: Duration = Duration::from_millis(200);
pub const RESEND_MAX_ATTEMPT: u32 = 3000;
const BUFFER_CAPACITY: usize = 10_000;
const PING_INTERVAL: Duration = Duration::from_secs(300);
/// The terminal size the plugin sends when its output is not a terminal
/// (`shellsession.go`, handleTerminalResize).
pub const FALLBACK_TERMINAL: (u32, u32) = (300, 100);

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("cannot open the session's data channel at {0}: {1}")]
    Connect(String, #[source] Box<tungstenite::Error>),
    #[error("the session's data channel failed: {0}")]
    Socket(#[source] Box<tungstenite::Error>),
    #[error("the session's data channel was closed before the command ended ({0})")]
    Closed(String),
    #[error("the command's session did not end within {0:?}")]
    Timeout(Duration),
    #[error("malformed data channel message: {0}")]
    Malformed(String),
    #[error("data channel message {0} #{1}: its payload does not match its SHA-256 digest")]
    Digest(String, i64),
    #[error("the session requires AWS KMS encryption ({0}), which this client does not implement; ECS asks for it when the cluster's execute command configuration names a KMS key")]
    EncryptionRequired(String),
    #[error("the agent's handshake cannot be met: {0}")]
    Handshake(String),
    #[error("the session was terminated: {0}")]
    Terminated(String),
    #[error("the agent did not acknowledge this client's message #{0} after {1} resends")]
    NotAcknowledged(i64, u32),
    #[error("the session ended without output message #{0} ({1} later ones undelivered)")]
    Incomplete(i64, usize),
}

fn socket(e: tungstenite::Error) -> SessionError {
    SessionError::Socket(Box::new(e))
}

/// One data channel message. Layout (`clientmessage.go`; big-endian):
/// HeaderLength u32 | MessageType 32 bytes, space-padded | SchemaVersion
/// u32 | CreatedDate u64 (ms) | SequenceNumber i64 | Flags u64 | MessageId
/// 16 bytes | PayloadDigest 32 bytes (SHA-256) | PayloadType u32 |
/// PayloadLength u32 | Payload. MessageId is written with its least
/// significant half first (`messageparser.go`, putUuid and getUuid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub message_type: String,
    pub schema_version: u32,
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    pub message_id: Uuid,
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

fn be<const N: usize>(raw: &[u8], at: usize) -> [u8; N] {
    let mut b = [0; N];
    b.copy_from_slice(&raw[at..at + N]);
    b
}

impl ClientMessage {
    /// A message of schema 1, created now, with a fresh id.
    pub fn new(kind: &str, seq: i64, flags: u64, payload_type: u32, payload: Vec<u8>) -> Self {
        ClientMessage {
            message_type: kind.to_string(),
            schema_version: 1,
            created_date: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            sequence_number: seq,
            flags,
            message_id: Uuid::new_v4(),
            payload_type,
            payload,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; 32];
        let t = self.message_type.as_bytes();
        debug_assert!(t.len() <= 32, "message types have at most 32 bytes");
        kind[..t.len().min(32)].copy_from_slice(&t[..t.len().min(32)]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        let id = self.message_id.as_bytes();
        out.extend_from_slice(&id[8..]);
        out.extend_from_slice(&id[..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses and validates as the plugin does (`messageparser.go`,
    /// DeserializeClientMessage and Validate): the payload starts at
    /// HeaderLength + 4; MessageType and CreatedDate must be set; a
    /// non-empty payload must match its digest; start/pause_publication are
    /// not validated. Stricter than the plugin: a HeaderLength below 116,
    /// or a PayloadLength other than the payload's, is refused.
    pub fn decode(raw: &[u8]) -> Result<Self, SessionError> {
        let bad = |what: String| Err(SessionError::Malformed(what));
        if raw.len() < PAYLOAD_OFFSET {
            return bad(format!("{} bytes, less than a header", raw.len()));
        }
        let header_length = u32::from_be_bytes(be(raw, 0)) as usize;
        if header_length < HEADER_LENGTH as usize || header_length + 4 > raw.len() {
            return bad(format!(
                "header length {header_length}, {} bytes",
                raw.len()
            ));
        }
        let (id, mut uuid) = (be::<16>(raw, 64), [0; 16]);
        uuid[..8].copy_from_slice(&id[8..]);
        uuid[8..].copy_from_slice(&id[..8]);
        let kind = String::from_utf8_lossy(&raw[4..36]);
        let m = ClientMessage {
            message_type: kind.trim_matches('\0').trim().to_string(),
            schema_version: u32::from_be_bytes(be(raw, 36)),
            created_date: u64::from_be_bytes(be(raw, 40)),
            sequence_number: i64::from_be_bytes(be(raw, 48)),
            flags: u64::from_be_bytes(be(raw, 56)),
            message_id: Uuid::from_bytes(uuid),
            payload_type: u32::from_be_bytes(be(raw, 112)),
            payload: raw[header_length + 4..].to_vec(),
        };
        let kind = m.message_type.as_str();
        if kind == message_type::START_PUBLICATION || kind == message_type::PAUSE_PUBLICATION {
            return Ok(m);
        }
        let length = u32::from_be_bytes(be(raw, 116)) as usize;
        if kind.is_empty() || m.created_date == 0 || length != m.payload.len() {
            return bad(format!(
                "{kind:?}, dated {}, length {length}",
                m.created_date
            ));
        }
        if length != 0 && Sha256::digest(&m.payload)[..] != raw[80..112] {
            return Err(SessionError::Digest(m.message_type, m.sequence_number));
        }
        Ok(m)
    }
}

/// The text frame that opens the channel (`streaming.go`,
/// FinalizeDataChannelHandshake; `service.go`; `config.go`: schema "1.0").
pub fn open_frame(token: &str) -> String {
    let (request, client) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    json!({ "MessageSchemaVersion": "1.0", "RequestId": request,
        "TokenValue": token, "ClientId": client, "ClientVersion": CLIENT_VERSION })
    .to_string()
}

/// The acknowledgement of `m`, alike from either side (`streaming.go` and the
/// agent's `datachannel.go`, SendAcknowledgeMessage; `messageparser.go`).
pub fn acknowledgement(m: &ClientMessage) -> ClientMessage {
    let body = json!({
        "AcknowledgedMessageType": m.message_type,
        "AcknowledgedMessageId": m.message_id.hyphenated().to_string(),
        "AcknowledgedMessageSequenceNumber": m.sequence_number,
        "IsSequentialMessage": true,
    });
    let body = body.to_string().into_bytes();
    ClientMessage::new(message_type::ACKNOWLEDGE, 0, ACK_FLAGS, 0, body)
}

/// A JSON payload (`clientmessage.go`, `handshakemessage.go`).
pub fn json_payload(m: &ClientMessage) -> Result<Value, SessionError> {
    serde_json::from_slice(&m.payload).map_err(|e| {
        SessionError::Malformed(format!("{} #{}: {e}", m.message_type, m.sequence_number))
    })
}

/// What the command wrote, and how it ended, as far as the protocol says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Output payloads in order (ECS Exec: stdout, stderr merged, `\n` as `\r\n`).
    pub stdout: Vec<u8>,
    /// StdErr payloads (NonInteractiveCommands with separate output only).
    pub stderr: Vec<u8>,
    /// From an ExitCode payload; `None` under ECS Exec, whose agent sends none.
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Connection options.
#[derive(Default)]
pub struct Options {
    /// TLS for `wss://`; `None`: tokio-tungstenite's rustls default, which
    /// needs a process-default rustls crypto provider if both ring and
    /// aws-lc-rs are built in.
    pub connector: Option<Connector>,
    /// Terminal size sent once the session starts; `None`: [`FALLBACK_TERMINAL`].
    pub terminal: Option<(u32, u32)>,
}

/// A message of this client's until acknowledged: sequence number, frame,
/// when last sent, resends so far.
struct Pending(i64, Vec<u8>, Instant, u32);

/// The protocol's state, without I/O (`streaming.go`, DataChannel).
#[derive(Default)]
struct Channel {
    /// ExpectedSequenceNumber, IncomingMessageBuffer, OutgoingMessageBuffer.
    expected: i64,
    incoming: BTreeMap<i64, ClientMessage>,
    outgoing: VecDeque<Pending>,
    next_seq: i64,
    /// Round-trip estimate and variation (s); retransmission timeout.
    rtt: f64,
    rttvar: f64,
    rto: Duration,
    started: bool,
    terminal: (u32, u32),
    out: Outcome,
    /// Frames to send, and output to hand over, now.
    frames: Vec<Vec<u8>>,
    fresh: Vec<(Stream, Vec<u8>)>,
    end: Option<Result<(), SessionError>>,
}

impl Channel {
    fn new(terminal: (u32, u32)) -> Self {
        let mut c = Channel::default();
        (c.rtt, c.rto, c.terminal) = (0.1, DEFAULT_TRANSMISSION_TIMEOUT, terminal);
        c
    }

    /// One frame from the agent (`streaming.go`, OutputMessageHandler).
    fn receive(&mut self, raw: &[u8], now: Instant) -> Result<(), SessionError> {
        let m = ClientMessage::decode(raw)?;
        match m.message_type.as_str() {
            message_type::OUTPUT_STREAM_DATA => self.stream(m, now)?,
            message_type::ACKNOWLEDGE => self.acknowledged(&m, now)?,
            message_type::CHANNEL_CLOSED => self.closed(&m),
            message_type::START_PUBLICATION | message_type::PAUSE_PUBLICATION => {}
            other => tracing::warn!("ignoring a data channel message of type {other:?}"),
        }
        Ok(())
    }

    /// `streaming.go`, HandleOutputMessage: the expected message is
    /// acknowledged and handled, then its buffered successors; a later one
    /// is acknowledged and buffered while there is room (else dropped: the
    /// agent resends it). An earlier or buffered one is acknowledged again,
    /// as the agent does (`datachannel.go`, handleStreamDataMessage; the
    /// plugin drops it silently), and dropped.
    fn stream(&mut self, m: ClientMessage, now: Instant) -> Result<(), SessionError> {
        let seq = m.sequence_number;
        if seq > self.expected && self.incoming.len() >= BUFFER_CAPACITY {
            return Ok(());
        }
        self.frames.push(acknowledgement(&m).encode());
        if seq < self.expected || self.incoming.contains_key(&seq) {
            return Ok(());
        }
        if seq > self.expected {
            self.incoming.insert(seq, m);
            return Ok(());
        }
        self.handle(m, now)?;
        self.expected += 1;
        while let Some(next) = self.incoming.remove(&self.expected) {
            self.handle(next, now)?;
            self.expected += 1;
        }
        Ok(())
    }

    /// One message in sequence, by payload type (`streaming.go`,
    /// HandleOutputMessage; `sessionhandler.go`, ProcessFirstMessage: an
    /// agent that skips the handshake starts with output).
    fn handle(&mut self, m: ClientMessage, now: Instant) -> Result<(), SessionError> {
        match m.payload_type {
            payload_type::HANDSHAKE_REQUEST => self.handshake(&json_payload(&m)?, now)?,
            payload_type::HANDSHAKE_COMPLETE => {
                let complete = json_payload(&m)?; // the plugin prints CustomerMessage
                tracing::info!("handshake complete: {}", complete["CustomerMessage"]);
                self.start(now);
            }
            payload_type::OUTPUT => {
                self.start(now);
                self.deliver(Stream::Stdout, m.payload);
            }
            payload_type::STDERR | payload_type::ERROR => self.deliver(Stream::Stderr, m.payload),
            payload_type::EXIT_CODE => {
                let text = String::from_utf8_lossy(&m.payload);
                let code = text.trim().strip_prefix("EXIT_CODE:");
                match code.and_then(|c| c.trim().parse().ok()) {
                    Some(code) => self.out.exit_code = Some(code),
                    None => return Err(SessionError::Malformed(format!("exit code {text:?}"))),
                }
            }
            other => tracing::debug!("ignoring payload type {other} #{}", m.sequence_number),
        }
        Ok(())
    }

    /// Answers as the plugin does (`streaming.go`, handleHandshakeRequest):
    /// a shell or command SessionType succeeds; KMSEncryption, not done
    /// here, fails (the agent then cancels the session), as anything else.
    fn handshake(&mut self, request: &Value, now: Instant) -> Result<(), SessionError> {
        let (mut processed, mut errors, mut failure) = (Vec::new(), Vec::new(), None);
        let actions = request["RequestedClientActions"].as_array();
        for action in actions.into_iter().flatten() {
            let kind = action["ActionType"].as_str().unwrap_or_default();
            let params = &action["ActionParameters"];
            // ActionStatus 1 Success, 2 Failed, 3 Unsupported (`handshakemessage.go`).
            let (status, error) = match kind {
                "SessionType" => match params["SessionType"].as_str().unwrap_or_default() {
                    "Standard_Stream" | "InteractiveCommands" | "NonInteractiveCommands" => {
                        (1, String::new())
                    }
                    other => (2, format!("Unknown session type {other}")),
                },
                "KMSEncryption" => {
                    let key = params["KMSKeyId"].as_str().unwrap_or_default();
                    failure = Some(SessionError::EncryptionRequired(format!("key {key}")));
                    (2, "KMS encryption is not supported by this client".into())
                }
                other => (3, format!("Unsupported action {other}")),
            };
            if !error.is_empty() {
                failure.get_or_insert_with(|| SessionError::Handshake(error.clone()));
                errors.push(error.clone());
            }
            let result = json!({ "ActionType": kind, "ActionStatus": status,
                "ActionResult": null, "Error": error });
            processed.push(result);
        }
        let answer = json!({ "ClientVersion": CLIENT_VERSION,
            "ProcessedClientActions": processed, "Errors": errors });
        let body = answer.to_string().into_bytes();
        self.send(payload_type::HANDSHAKE_RESPONSE, body, now);
        failure.map_or(Ok(()), Err)
    }

    /// The session started (handshake complete, or first output): the
    /// plugin's shell session then sends the terminal size (`shellsession.go`).
    fn start(&mut self, now: Instant) {
        if !std::mem::replace(&mut self.started, true) {
            let (cols, rows) = self.terminal;
            let body = json!({ "cols": cols, "rows": rows }).to_string();
            self.send(payload_type::SIZE, body.into_bytes(), now);
        }
    }

    fn deliver(&mut self, s: Stream, bytes: Vec<u8>) {
        match s {
            Stream::Stdout => self.out.stdout.extend_from_slice(&bytes),
            Stream::Stderr => self.out.stderr.extend_from_slice(&bytes),
        }
        self.fresh.push((s, bytes));
    }

    /// An input message, kept until acknowledged (`streaming.go`,
    /// SendInputDataMessage; AddDataToOutgoingMessageBuffer drops the
    /// oldest of a full buffer).
    fn send(&mut self, payload_type: u32, payload: Vec<u8>, now: Instant) {
        let kind = message_type::INPUT_STREAM_DATA;
        let bytes = ClientMessage::new(kind, self.next_seq, 0, payload_type, payload).encode();
        self.frames.push(bytes.clone());
        if self.outgoing.len() == BUFFER_CAPACITY {
            self.outgoing.pop_front();
        }
        self.outgoing
            .push_back(Pending(self.next_seq, bytes, now, 0));
        self.next_seq += 1;
    }

    /// `streaming.go`, ProcessAcknowledgedMessage: the message of that
    /// sequence number is done, and its round trip updates the timeout.
    fn acknowledged(&mut self, m: &ClientMessage, now: Instant) -> Result<(), SessionError> {
        let seq = json_payload(m)?["AcknowledgedMessageSequenceNumber"].as_i64();
        let i = self.outgoing.iter().position(|p| Some(p.0) == seq);
        if let Some(p) = i.and_then(|i| self.outgoing.remove(i)) {
            self.update_rto(now.saturating_duration_since(p.2).as_secs_f64());
        }
        Ok(())
    }

    /// `streaming.go`, CalculateRetransmissionTimeout: RTTVAR = 3/4 RTTVAR +
    /// 1/4 |RTT - sample|, RTT = 7/8 RTT + 1/8 sample, timeout = RTT +
    /// max(10 ms, 4 RTTVAR), at most 1 s.
    fn update_rto(&mut self, sample: f64) {
        self.rttvar = 0.75 * self.rttvar + 0.25 * (self.rtt - sample).abs();
        self.rtt = 0.875 * self.rtt + 0.125 * sample;
        let rto = self.rtt + (4.0 * self.rttvar).max(0.01);
        self.rto = Duration::from_secs_f64(rto.min(1.0));
    }

    /// `streaming.go`, ResendStreamDataMessageScheduler: every 100 ms the
    /// oldest unacknowledged message is resent once older than the timeout,
    /// at most 3000 times. (The plugin never records a resend's time, so
    /// resends each tick; the agent's scheduler records it, as here.)
    fn resend_due(&mut self, now: Instant) -> Result<Option<Vec<u8>>, SessionError> {
        let rto = self.rto;
        let Some(p) = self.outgoing.front_mut() else {
            return Ok(None);
        };
        if now.saturating_duration_since(p.2) <= rto {
            return Ok(None);
        }
        if p.3 >= RESEND_MAX_ATTEMPT {
            return Err(SessionError::NotAcknowledged(p.0, p.3));
        }
        (p.2, p.3) = (now, p.3 + 1);
        Ok(Some(p.1.clone()))
    }

    /// `channel_closed` ends the session (`streaming.go`): its Output is empty
    /// when the command ended, else the reason the session was ended.
    fn closed(&mut self, m: &ClientMessage) {
        let closed = json_payload(m).unwrap_or_default();
        let output = closed["Output"].as_str().unwrap_or_default();
        self.end = Some(if !self.incoming.is_empty() {
            Err(SessionError::Incomplete(self.expected, self.incoming.len()))
        } else if !output.trim().is_empty() {
            Err(SessionError::Terminated(output.trim().to_string()))
        } else {
            Ok(())
        });
    }
}

/// Runs the session at `stream_url` to its end, within `limit`, handing
/// each piece of output to `on_output` once, in order, as it is delivered.
pub async fn run_with(
    stream_url: &str,
    token: &str,
    limit: Duration,
    options: Options,
    mut on_output: impl FnMut(Stream, &[u8]),
) -> Result<Outcome, SessionError> {
    let deadline = tokio::time::Instant::now() + limit;
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(stream_url, None, true, options.connector);
    let connected = tokio::time::timeout_at(deadline, connect).await;
    let connected = connected.map_err(|_| SessionError::Timeout(limit))?;
    let (ws, _) = connected.map_err(|e| SessionError::Connect(stream_url.into(), Box::new(e)))?;
    let (mut sink, mut stream) = ws.split();
    let open = Message::text(open_frame(token));
    sink.send(open).await.map_err(socket)?;

    let mut ch = Channel::new(options.terminal.unwrap_or(FALLBACK_TERMINAL));
    let mut tick = tokio::time::interval(RESEND_SLEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pinged = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Err(SessionError::Timeout(limit)),
            _ = tick.tick() => {
                let now = Instant::now();
                if let Some(frame) = ch.resend_due(now)? {
                    sink.send(Message::binary(frame)).await.map_err(socket)?;
                }
                // `websocketchannel.go`, StartPings.
                if now.duration_since(pinged) >= PING_INTERVAL {
                    pinged = now;
                    sink.send(Message::Ping("keepalive".into())).await.map_err(socket)?;
                }
            }
            next = stream.next() => {
                let received = match next {
                    None => return Err(SessionError::Closed("the connection ended".into())),
                    Some(Err(e)) => return Err(socket(e)),
                    Some(Ok(Message::Binary(b))) => ch.receive(&b, Instant::now()),
                    Some(Ok(Message::Text(t))) => ch.receive(t.as_bytes(), Instant::now()),
                    Some(Ok(Message::Close(frame))) => {
                        return Err(SessionError::Closed(match frame {
                            Some(f) => format!("close code {}: {}", u16::from(f.code), f.reason),
                            None => "closed without a reason".into(),
                        }))
                    }
                    Some(Ok(_)) => continue,
                };
                for frame in ch.frames.drain(..) {
                    sink.feed(Message::binary(frame)).await.map_err(socket)?;
                }
                sink.flush().await.map_err(socket)?;
                for (s, bytes) in ch.fresh.drain(..) {
                    on_output(s, &bytes);
                }
                received?;
                if let Some(end) = ch.end.take() {
                    let _ = sink.close().await;
                    return end.map(|()| std::mem::take(&mut ch.out));
                }
            }
        }
    }
}

/// The ExecuteCommand `command` that runs exactly `args`, which the agent
/// splits with google/shlex and runs without a shell (`shell_unix.go`).
pub fn command_line(args: &[String]) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    let quote = |a: &String| match !a.is_empty() && a.chars().all(safe) {
        true => a.clone(),
        false => format!("'{}'", a.replace('\'', r#"'"'"'"#)),
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use message_type::*;

    /// The id, date and payload of the plugin's own tests
    /// (`src/message/messageparser_test.go`).
    const ID: &str = "dd01e56b-ff48-483e-a508-b5f073f31b16";
    const CREATED: u64 = 1503434274948;

    fn message(kind: &str, seq: i64, flags: u64, ptype: u32, payload: &[u8]) -> ClientMessage {
        ClientMessage {
            message_type: kind.into(),
            schema_version: 1,
            created_date: CREATED,
            sequence_number: seq,
            flags,
            message_id: Uuid::parse_str(ID).unwrap(),
            payload_type: ptype,
            payload: payload.to_vec(),
        }
    }

    /// An agent's stream message, encoded.
    fn agent(seq: i64, ptype: u32, payload: &[u8]) -> Vec<u8> {
        ClientMessage::new(
            OUTPUT_STREAM_DATA,
            seq,
            u64::from(seq == 0),
            ptype,
            payload.to_vec(),
        )
        .encode()
    }

    fn sent(ch: &mut Channel) -> Vec<ClientMessage> {
        let frames = std::mem::take(&mut ch.frames);
        frames
            .iter()
            .map(|f| ClientMessage::decode(f).unwrap())
            .collect()
    }

    fn acks(frames: &[ClientMessage]) -> Vec<i64> {
        let acks = frames.iter().filter(|m| m.message_type == ACKNOWLEDGE);
        let seq = |m: &ClientMessage| {
            json_payload(m).unwrap()["AcknowledgedMessageSequenceNumber"].as_i64()
        };
        acks.map(|m| seq(m).unwrap()).collect()
    }

    #[test]
    fn layout_is_the_plugins() {
        // messageparser_test.go, TestSerializeAndDeserializeClientMessage:
        // input_stream_data, schema 1, that date, sequence 1, flags 2, that
        // id, payload "payload".
        let m = message(INPUT_STREAM_DATA, 1, 2, 0, b"payload");
        let b = m.encode();
        assert_eq!(b.len(), 127);
        assert_eq!(b[0..4], [0, 0, 0, 116]);
        assert_eq!(&b[4..36], b"input_stream_data               ");
        assert_eq!(b[36..40], [0, 0, 0, 1]);
        assert_eq!(b[40..48], [0, 0, 0x01, 0x5e, 0x0b, 0xaa, 0x78, 0x84]);
        assert_eq!(b[48..56], [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(b[56..64], [0, 0, 0, 0, 0, 0, 0, 2]);
        // The id's halves swapped (putUuid: least significant long first).
        let id = [0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3, 0x1b, 0x16];
        assert_eq!(b[64..72], id);
        assert_eq!(b[72..80], [0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48, 0x48, 0x3e]);
        let digest = "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5";
        let hex: String = b[80..112].iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, digest);
        assert_eq!(b[112..120], [0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(&b[120..], b"payload");
        let back = ClientMessage::decode(&b).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.message_id.to_string(), ID);
    }

    #[test]
    fn integers_are_written_as_the_plugin_writes_them() {
        // messageparser_test.go, TestPutLong (5747283) and TestPutInteger (324).
        let b = message(OUTPUT_STREAM_DATA, 5747283, 0, 324, b"x").encode();
        assert_eq!(b[48..56], [0, 0, 0, 0, 0, 0x57, 0xb2, 0x53]);
        assert_eq!(b[112..116], [0, 0, 0x01, 0x44]);
    }

    #[test]
    fn decode_refuses_bad_lengths_and_digests() {
        let good = message(OUTPUT_STREAM_DATA, 3, 0, 1, b"hello").encode();
        let refused = |b: &[u8]| ClientMessage::decode(b).unwrap_err();
        assert!(matches!(refused(&good[..119]), SessionError::Malformed(_)));
        let mut b = good.clone();
        b[3] = 115;
        assert!(matches!(refused(&b), SessionError::Malformed(_)));
        let mut b = good.clone();
        b[3] = 200;
        assert!(matches!(refused(&b), SessionError::Malformed(_)));
        let mut b = good.clone();
        b[119] = 6;
        assert!(matches!(refused(&b), SessionError::Malformed(_)));
        let mut b = good.clone();
        b[120] = b'j';
        assert!(matches!(refused(&b), SessionError::Digest(t, 3) if t == OUTPUT_STREAM_DATA));
        let mut b = good.clone();
        b[80] ^= 1;
        assert!(matches!(refused(&b), SessionError::Digest(..)));
        let mut b = good.clone();
        b[4..36].fill(b' ');
        assert!(matches!(refused(&b), SessionError::Malformed(_)));
        let mut b = good.clone();
        b[40..48].fill(0);
        assert!(matches!(refused(&b), SessionError::Malformed(_)));
        // NUL padding is trimmed too (messageparser.go, getString).
        let mut b = good.clone();
        b[22..36].fill(0);
        assert_eq!(
            ClientMessage::decode(&b).unwrap().message_type,
            OUTPUT_STREAM_DATA
        );
        // An empty payload has no digest to check (messageparser.go, Validate).
        let mut b = message(OUTPUT_STREAM_DATA, 0, 0, 1, b"").encode();
        b[80..112].fill(0);
        assert!(ClientMessage::decode(&b).is_ok());
        // Publication messages are not validated.
        let mut b = message(PAUSE_PUBLICATION, 0, 0, 0, b"{}").encode();
        b[80..112].fill(0);
        assert!(ClientMessage::decode(&b).is_ok());
    }

    #[test]
    fn acknowledgements_name_the_message() {
        let m = message(OUTPUT_STREAM_DATA, 42, 0, 1, b"x");
        let ack = ClientMessage::decode(&acknowledgement(&m).encode()).unwrap();
        assert_eq!(
            (ack.message_type.as_str(), ack.sequence_number, ack.flags),
            (ACKNOWLEDGE, 0, 3)
        );
        let v = json_payload(&ack).unwrap();
        assert_eq!(v["AcknowledgedMessageType"], OUTPUT_STREAM_DATA);
        assert_eq!(v["AcknowledgedMessageId"], ID);
        assert_eq!(v["AcknowledgedMessageSequenceNumber"], 42);
        assert_eq!(v["IsSequentialMessage"], true);
    }

    #[test]
    fn output_is_delivered_in_order_once() {
        // streaming_test.go, TestDataChannelIncomingMessageHandlerForExpected
        // InputStreamDataMessage: 0 arrives, then 2, 6, 4, 3 are buffered;
        // 1 releases 1 to 4, and 6 waits for 5.
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        let now = Instant::now();
        let payload = |i: i64| format!("testPayload{i}");
        for i in [0, 2, 6, 4, 3, 1] {
            ch.receive(&agent(i, payload_type::OUTPUT, payload(i).as_bytes()), now)
                .unwrap();
        }
        let want: String = (0..5).map(payload).collect();
        assert_eq!(String::from_utf8_lossy(&ch.out.stdout), want);
        assert_eq!(ch.expected, 5);
        assert_eq!(ch.incoming.keys().copied().collect::<Vec<_>>(), [6]);
        let frames = sent(&mut ch);
        assert_eq!(acks(&frames), [0, 2, 6, 4, 3, 1]);
        let fresh: Vec<_> = ch.fresh.iter().map(|(_, b)| b.clone()).collect();
        assert_eq!(fresh.concat(), want.as_bytes());
        // Duplicates, delivered or buffered, are acknowledged and dropped.
        ch.receive(&agent(3, payload_type::OUTPUT, b"again"), now)
            .unwrap();
        ch.receive(&agent(6, payload_type::OUTPUT, b"again"), now)
            .unwrap();
        assert_eq!(acks(&sent(&mut ch)), [3, 6]);
        assert_eq!(String::from_utf8_lossy(&ch.out.stdout), want);
        ch.receive(&agent(5, payload_type::OUTPUT, b"5"), now)
            .unwrap();
        assert!(String::from_utf8_lossy(&ch.out.stdout).ends_with("5testPayload6"));
        assert!(ch.incoming.is_empty());
    }

    #[test]
    fn a_full_buffer_drops_without_acknowledging() {
        // streaming_test.go, TestDataChannelIncomingMessageHandlerForUnexpected
        // InputStreamDataMessage (there with a capacity of 2).
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        let now = Instant::now();
        for i in 1..=BUFFER_CAPACITY as i64 + 1 {
            ch.receive(&agent(i, payload_type::OUTPUT, b"."), now)
                .unwrap();
        }
        assert_eq!(ch.incoming.len(), BUFFER_CAPACITY);
        assert_eq!(acks(&sent(&mut ch)).len(), BUFFER_CAPACITY);
    }

    #[test]
    fn the_handshake_is_answered_then_the_terminal_size_sent() {
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        let now = Instant::now();
        let request = json!({ "AgentVersion": "3.3.0.0", "RequestedClientActions": [
            { "ActionType": "SessionType",
              "ActionParameters": { "SessionType": "InteractiveCommands", "Properties": null } }] });
        let request = request.to_string();
        ch.receive(
            &agent(0, payload_type::HANDSHAKE_REQUEST, request.as_bytes()),
            now,
        )
        .unwrap();
        let frames = sent(&mut ch);
        assert_eq!(acks(&frames), [0]);
        let answer = &frames[1];
        assert_eq!(answer.message_type, INPUT_STREAM_DATA);
        assert_eq!(
            (answer.sequence_number, answer.payload_type),
            (0, payload_type::HANDSHAKE_RESPONSE)
        );
        let v = json_payload(answer).unwrap();
        assert_eq!(v["ClientVersion"], CLIENT_VERSION);
        assert_eq!(v["ProcessedClientActions"][0]["ActionType"], "SessionType");
        assert_eq!(v["ProcessedClientActions"][0]["ActionStatus"], 1);
        let complete = json!({ "HandshakeTimeToComplete": 1_000_000, "CustomerMessage": "" });
        let complete = complete.to_string();
        ch.receive(
            &agent(1, payload_type::HANDSHAKE_COMPLETE, complete.as_bytes()),
            now,
        )
        .unwrap();
        let frames = sent(&mut ch);
        assert_eq!(acks(&frames), [1]);
        assert_eq!(
            (frames[1].sequence_number, frames[1].payload_type),
            (1, payload_type::SIZE)
        );
        assert_eq!(
            json_payload(&frames[1]).unwrap(),
            json!({ "cols": 300, "rows": 100 })
        );
        ch.receive(&agent(2, payload_type::OUTPUT, b"hi\r\n"), now)
            .unwrap();
        assert_eq!(acks(&sent(&mut ch)), [2]);
        assert_eq!(ch.out.stdout, b"hi\r\n");
    }

    #[test]
    fn encryption_is_refused_in_the_handshake_answer() {
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        let request = json!({ "AgentVersion": "3.3.0.0", "RequestedClientActions": [
            { "ActionType": "SessionType", "ActionParameters": { "SessionType": "InteractiveCommands" } },
            { "ActionType": "KMSEncryption", "ActionParameters": { "KMSKeyId": "alias/exec" } }] });
        let raw = agent(
            0,
            payload_type::HANDSHAKE_REQUEST,
            request.to_string().as_bytes(),
        );
        let err = ch.receive(&raw, Instant::now()).unwrap_err();
        assert!(matches!(&err, SessionError::EncryptionRequired(k) if k.contains("alias/exec")));
        let frames = sent(&mut ch);
        let v = json_payload(&frames[1]).unwrap();
        assert_eq!(v["ProcessedClientActions"][0]["ActionStatus"], 1);
        assert_eq!(v["ProcessedClientActions"][1]["ActionStatus"], 2);
        assert_eq!(v["Errors"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn unacknowledged_input_is_resent_on_the_schedule() {
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        let t0 = Instant::now();
        ch.send(payload_type::SIZE, b"{}".to_vec(), t0);
        let first = sent(&mut ch).remove(0);
        assert_eq!(
            ch.resend_due(t0 + Duration::from_millis(150)).unwrap(),
            None
        );
        let again = ch
            .resend_due(t0 + Duration::from_millis(201))
            .unwrap()
            .unwrap();
        assert_eq!(ClientMessage::decode(&again).unwrap(), first);
        assert_eq!(
            ch.resend_due(t0 + Duration::from_millis(300)).unwrap(),
            None
        );
        // The acknowledgement ends it, and the round trip (99 ms since the
        // resend) updates the timeout: 0.099875 s + max(10 ms, 4 x 0.25 ms).
        let ack = acknowledgement(&first).encode();
        ch.receive(&ack, t0 + Duration::from_millis(300)).unwrap();
        assert!(ch.outgoing.is_empty());
        assert!(
            (ch.rto.as_secs_f64() - 0.109875).abs() < 1e-6,
            "{:?}",
            ch.rto
        );
        // Past the limit, the session is given up.
        ch.send(payload_type::SIZE, b"{}".to_vec(), t0);
        ch.outgoing[0].3 = RESEND_MAX_ATTEMPT;
        let err = ch.resend_due(t0 + Duration::from_secs(2)).unwrap_err();
        assert!(matches!(
            err,
            SessionError::NotAcknowledged(1, RESEND_MAX_ATTEMPT)
        ));
    }

    #[test]
    fn channel_closed_ends_the_session() {
        let closed = |output: &str| {
            let body = json!({ "MessageType": CHANNEL_CLOSED, "SessionId": "s", "Output": output });
            ClientMessage::new(CHANNEL_CLOSED, 0, 3, 0, body.to_string().into_bytes()).encode()
        };
        let now = Instant::now();
        let mut ch = Channel::new(FALLBACK_TERMINAL);
        ch.receive(&agent(0, payload_type::OUTPUT, b"a"), now)
            .unwrap();
        ch.receive(&agent(1, payload_type::STDERR, b"b"), now)
            .unwrap();
        ch.receive(&agent(2, payload_type::EXIT_CODE, b"EXIT_CODE: 3"), now)
            .unwrap();
        ch.receive(&closed(""), now).unwrap();
        assert!(matches!(ch.end, Some(Ok(()))));
        let want = Outcome {
            stdout: b"a".to_vec(),
            stderr: b"b".to_vec(),
            exit_code: Some(3),
        };
        assert_eq!(ch.out, want);

        let mut ch = Channel::new(FALLBACK_TERMINAL);
        ch.receive(&closed("Unable to start command"), now).unwrap();
        assert!(matches!(ch.end, Some(Err(SessionError::Terminated(_)))));

        let mut ch = Channel::new(FALLBACK_TERMINAL);
        ch.receive(&agent(1, payload_type::OUTPUT, b"late"), now)
            .unwrap();
        ch.receive(&closed(""), now).unwrap();
        assert!(matches!(ch.end, Some(Err(SessionError::Incomplete(0, 1)))));
    }

    #[test]
    fn command_lines_survive_shlex() {
        let args = [
            "bookstore",
            "admin",
            "grant",
            "a b",
            "it's",
            "",
            "#x",
            "a@b.c",
        ];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let want = r#"bookstore admin grant 'a b' 'it'"'"'s' '' '#x' a@b.c"#;
        assert_eq!(command_line(&args), want);
    }
}
