//! Lost answers and client tokens.
//!
//! A call can do its work and its answer never reach the caller: the
//! connection drops, or the service answers 500 after the change was made
//! ("Error retries and exponential backoff in AWS": a 5xx "does not mean
//! the request failed"). The SDK retries the very same request, which then
//! meets the first attempt's work: "already exists", a CIDR or name
//! conflict, NotFound for a delete, or a second resource where the API
//! has no way to tell (CreateVpc, AllocateAddress).
//!
//! Where an API takes a client token, AWS answers a repeat with the first
//! answer instead ("Ensuring idempotency in Amazon EC2 API requests": "If
//! you repeat a request with the same client token and the same
//! parameters, the same response is returned"; a repeat with other
//! parameters is refused with `IdempotentParameterMismatch`). ACM's
//! RequestCertificate does the same for its `IdempotencyToken` within an
//! hour, EFS's CreateAccessPoint for its `ClientToken`. ELBv2's creates
//! are idempotent by name, or by load balancer and port for listeners ("If
//! you attempt to create multiple load balancers with the same settings,
//! each call succeeds"; other settings are `DuplicateLoadBalancerName`,
//! `DuplicateTargetGroupName`, `DuplicateListener`). The emulator ignores
//! tokens and makes a second listener; this module answers repeats as AWS
//! does.

use std::collections::BTreeMap;

use super::super::http::Response;
use super::errors::error;
use super::{Call, State};

/// The parameters that carry a client token, by service.
fn token_of(c: &Call) -> Option<&str> {
    match c.service.as_str() {
        "ec2" => c.get("ClientToken"),
        "acm" => c.get("IdempotencyToken"),
        "elasticfilesystem" if c.op == "CreateAccessPoint" => c.get("ClientToken"),
        _ => None,
    }
}

/// What makes a request idempotent, and how AWS refuses the same key with
/// other parameters.
struct Idempotent {
    key: String,
    /// The error code and message of a reuse with other parameters.
    mismatch: (&'static str, &'static str),
    /// What a repeat answered with the first answer is counted as.
    counted: &'static str,
}

/// A client token; or, for ELBv2's creates, the name (the load balancer
/// and port for a listener).
fn idempotent(c: &Call) -> Option<Idempotent> {
    const OTHER_SETTINGS: &str = "A resource with the same name or port exists with other settings";
    let by_name = |key: String, code| Idempotent {
        key,
        mismatch: (code, OTHER_SETTINGS),
        counted: "idempotent_create",
    };
    match (c.service.as_str(), c.op.as_str()) {
        ("elasticloadbalancing", "CreateLoadBalancer") => Some(by_name(
            format!("lb:{}", c.get("Name")?),
            "DuplicateLoadBalancerName",
        )),
        ("elasticloadbalancing", "CreateTargetGroup") => Some(by_name(
            format!("tg:{}", c.get("Name")?),
            "DuplicateTargetGroupName",
        )),
        ("elasticloadbalancing", "CreateListener") => Some(by_name(
            format!("listener:{}:{}", c.get("LoadBalancerArn")?, c.get("Port")?),
            "DuplicateListener",
        )),
        _ => Some(Idempotent {
            key: format!("{}:{}:{}", c.service, c.op, token_of(c)?),
            mismatch: (
                "IdempotentParameterMismatch",
                "The client token you have provided is associated with a resource that is already deleted or with different parameters. Please use a different client token.",
            ),
            counted: "client_token",
        }),
    }
}

/// A request's parameters but its token, to tell a repeat from a reuse.
fn fingerprint(c: &Call) -> BTreeMap<String, String> {
    c.form
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "ClientToken" | "IdempotencyToken" | "CreationToken"
            )
        })
        .cloned()
        .collect()
}

/// An idempotent request already answered: its first answer, or AWS's
/// refusal when the parameters differ.
pub(super) fn repeated(c: &Call, st: &mut State) -> Option<Response> {
    let i = idempotent(c)?;
    let (params, first) = st.answered.get(&i.key)?.clone();
    if params != fingerprint(c) {
        st.count("idempotent_mismatch");
        let (code, message) = i.mismatch;
        return Some(error(&c.service, 400, code, message));
    }
    st.count(i.counted);
    Some(first)
}

/// Remembers the first answer to an idempotent request; a deleted load
/// balancer, target group or listener frees its name or port (a load
/// balancer's listeners go with it).
pub(super) fn remember(c: &Call, resp: &Response, st: &mut State) {
    if resp.status >= 300 {
        return;
    }
    if let Some(i) = idempotent(c) {
        st.answered
            .entry(i.key)
            .or_insert_with(|| (fingerprint(c), resp.clone()));
    } else if c.service == "elasticloadbalancing" && c.op.starts_with("Delete") {
        let arn = ["LoadBalancerArn", "TargetGroupArn", "ListenerArn"]
            .iter()
            .find_map(|k| c.get(k));
        if let Some(arn) = arn {
            st.answered.retain(|_, (_, r)| !r.text().contains(arn));
        }
    }
}

/// Whether `c` changes something, so that losing its answer matters: the
/// creates and deletes, and what attaches, associates or authorizes.
fn changes(c: &Call) -> bool {
    const VERBS: [&str; 11] = [
        "Create",
        "Allocate",
        "Request",
        "Delete",
        "Release",
        "Authorize",
        "Attach",
        "Associate",
        "Register",
        "Deregister",
        "Terminate",
    ];
    VERBS.iter().any(|v| c.op.starts_with(v)) || c.op == "ChangeResourceRecordSets"
}

/// The work was done; the answer is lost on the way back: the first
/// successful request of each changing operation is answered as a server
/// failure, which the SDK retries.
pub(super) fn lose(c: &Call, resp: &Response, st: &mut State) -> Option<Response> {
    if resp.status >= 300 || !changes(c) {
        return None;
    }
    let key = format!("{}:{}", c.service, c.op);
    if !st.lost.insert(key) {
        return None;
    }
    st.count("lost_answers");
    // EC2 and S3 call it InternalError, the other services InternalFailure.
    let code = if matches!(c.service.as_str(), "ec2" | "s3") {
        "InternalError"
    } else {
        "InternalFailure"
    };
    Some(error(
        &c.service,
        500,
        code,
        "We encountered an internal error. Please try again.",
    ))
}
