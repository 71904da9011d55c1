//! Error answers, in each service's own protocol, and throttling by time.

use serde_json::{json, Value};

use super::super::http::Response;
use super::super::xml::{self, escape};
use std::time::Instant;

use super::{Call, Inner, THROTTLE_CAPACITY, THROTTLE_REFILL};

/// An error answer in the service's own protocol.
pub(super) fn error(service: &str, status: u16, code: &str, message: &str) -> Response {
    let (m, c) = (escape(message), escape(code));
    let mut r = match service {
        "ec2" => Response::new(
            status,
            "text/xml;charset=UTF-8",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{c}</Code><Message>{m}</Message></Error></Errors><RequestID>realism-0000</RequestID></Response>"),
        ),
        // CloudWatch Logs, Secrets Manager, ECR, ECS and Application
        // Auto Scaling speak JSON 1.1 too.
        "acm" | "ssm" | "logs" | "secretsmanager" | "ecr" | "ecs" | "application-autoscaling" => Response::new(
            status,
            "application/x-amz-json-1.1",
            json!({"__type": code, "message": message}).to_string(),
        ),
        // REST-JSON: the code in `x-amzn-ErrorType`.
        "elasticfilesystem" | "dlm" => {
            let mut r = Response::new(
                status,
                "application/json",
                json!({"ErrorCode": code, "Message": message}).to_string(),
            );
            r.headers.push(("x-amzn-ErrorType".into(), code.into()));
            r
        }
        "s3" => Response::new(
            status,
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{c}</Code><Message>{m}</Message><RequestId>realism-0000</RequestId></Error>"),
        ),
        _ => Response::new(
            status,
            "text/xml",
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{c}</Code><Message>{m}</Message></Error><RequestId>realism-0000</RequestId></ErrorResponse>"),
        ),
    };
    r.headers
        .push(("x-amzn-query-error".into(), format!("{code};Sender")));
    r
}

/// The throttling answer of each service ("Error retries and exponential
/// backoff in AWS", and each API reference's common errors).
fn throttled(service: &str) -> Response {
    match service {
        "ec2" => error(
            service,
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        "acm" | "ssm" | "logs" | "secretsmanager" | "ecr" | "ecs" | "application-autoscaling" => {
            error(service, 400, "ThrottlingException", "Rate exceeded")
        }
        "elasticfilesystem" => error(service, 429, "ThrottlingException", "Rate exceeded"),
        // Data Lifecycle Manager's common errors: ThrottlingException, 400.
        "dlm" => error(service, 400, "ThrottlingException", "Rate exceeded"),
        "s3" => error(service, 503, "SlowDown", "Please reduce your request rate."),
        _ => error(service, 400, "Throttling", "Rate exceeded"),
    }
}

/// The error code of an answer, whatever its protocol.
pub(super) fn code_of(r: &Response) -> Option<String> {
    if r.status < 300 {
        return None;
    }
    if let Some(c) = r.header("x-amzn-ErrorType") {
        return Some(c.split(':').next().unwrap_or(c).to_string());
    }
    let t = r.text();
    if let Some(c) = xml::text(&t, "Code") {
        return Some(c.to_string());
    }
    serde_json::from_str::<Value>(&t).ok().and_then(|v| {
        v["__type"]
            .as_str()
            .map(|s| s.rsplit('#').next().unwrap_or(s).to_string())
    })
}

/// One operation's token bucket ("Request throttling for the Amazon EC2
/// API": each API has a bucket of tokens; each request takes one and is
/// throttled when none is left; the bucket refills at a set rate per second
/// up to its capacity, and refill tokens may be used as soon as they come).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A bucket other callers of the account emptied just before.
    pub(super) fn drained(now: Instant) -> Self {
        Bucket {
            tokens: 0.0,
            at: now,
        }
    }

    /// Takes a token if one is there at `now`, after refilling for the
    /// time since the last request.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * THROTTLE_REFILL;
        self.tokens = (self.tokens + refill).min(THROTTLE_CAPACITY);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Inner {
    /// Throttling by time, with a token bucket per operation (each
    /// operation has its own rate limit: "Request throttling for the Amazon
    /// EC2 API", and the same per-action quotas elsewhere), per region. Every bucket
    /// starts empty, as when other tools of the account just used it up: a
    /// client that tries again at once, or gives up after the SDK's default
    /// three attempts, fails; one that backs off gets through at the refill
    /// rate.
    pub(super) fn throttle(&self, c: &Call) -> Option<Response> {
        if !self.b.throttling {
            return None;
        }
        // Per account and region, as AWS throttles.
        let key = format!("{}:{}:{}", c.region, c.service, c.op);
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        let bucket = st
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::drained(now));
        if bucket.take(now) {
            return None;
        }
        st.count("throttling");
        Some(throttled(&c.service))
    }
}
