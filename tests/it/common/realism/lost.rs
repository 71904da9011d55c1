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

/// The key an ELBv2 create is idempotent by, and the code refusing the
/// same key with other settings.
fn natural_key(c: &Call) -> Option<(String, &'static str)> {
    if c.service != "elasticloadbalancing" {
        return None;
    }
    match c.op.as_str() {
        "CreateLoadBalancer" => Some((
            format!("lb:{}", c.get("Name")?),
            "DuplicateLoadBalancerName",
        )),
        "CreateTargetGroup" => Some((format!("tg:{}", c.get("Name")?), "DuplicateTargetGroupName")),
        "CreateListener" => Some((
            format!("listener:{}:{}", c.get("LoadBalancerArn")?, c.get("Port")?),
            "DuplicateListener",
        )),
        _ => None,
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

/// A token already answered: its first answer, or AWS's refusal when the
/// parameters differ.
pub(super) fn repeated(c: &Call, st: &mut State) -> Option<Response> {
    if let Some((key, duplicate)) = natural_key(c) {
        let (params, first) = st.tokens.get(&key)?.clone();
        if params != fingerprint(c) {
            return Some(error(
                &c.service,
                400,
                duplicate,
                "A resource with the same name or port exists with other settings",
            ));
        }
        st.count("idempotent_create");
        return Some(first);
    }
    let token = token_of(c)?;
    let key = format!("{}:{}:{token}", c.service, c.op);
    let (params, first) = st.tokens.get(&key)?.clone();
    if params != fingerprint(c) {
        st.count("client_token_mismatch");
        return Some(error(
            &c.service,
            400,
            "IdempotentParameterMismatch",
            "The client token you have provided is associated with a resource that is already deleted or with different parameters. Please use a different client token.",
        ));
    }
    st.count("client_token");
    Some(first)
}

/// Remembers the answer to a request with a client token.
pub(super) fn remember(c: &Call, resp: &Response, st: &mut State) {
    if resp.status >= 300 {
        return;
    }
    if let Some((key, _)) = natural_key(c) {
        st.tokens
            .entry(key)
            .or_insert_with(|| (fingerprint(c), resp.clone()));
        return;
    }
    // A deleted load balancer, group or listener frees its name or port
    // (a load balancer's listeners go with it).
    if c.service == "elasticloadbalancing" && c.op.starts_with("Delete") {
        let arn = ["LoadBalancerArn", "TargetGroupArn", "ListenerArn"]
            .iter()
            .find_map(|k| c.get(k));
        if let Some(arn) = arn {
            st.tokens.retain(|_, (_, r)| !r.text().contains(arn));
        }
        return;
    }
    if let Some(token) = token_of(c) {
        let key = format!("{}:{}:{token}", c.service, c.op);
        st.tokens
            .entry(key)
            .or_insert_with(|| (fingerprint(c), resp.clone()));
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
    let (status, code) = match c.service.as_str() {
        "ec2" => (500, "InternalError"),
        "s3" => (500, "InternalError"),
        "acm" | "ssm" | "logs" | "elasticfilesystem" => (500, "InternalFailure"),
        _ => (500, "InternalFailure"),
    };
    Some(error(
        &c.service,
        status,
        code,
        "We encountered an internal error. Please try again.",
    ))
}
