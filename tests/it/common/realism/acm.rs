//! ACM: certificates held in PENDING_VALIDATION until their records
//! resolve, one validation record per domain name, and a certificate just
//! issued that the load balancer does not find yet.

use std::time::Instant;

use serde_json::{json, Value};

use super::super::http::Response;
use super::errors::error;
use super::{within, Call, Realism, State, Timing};

impl Realism {
    /// While held, certificates stay PENDING_VALIDATION, as when nobody has
    /// created their validation records yet (ACM validates only once the
    /// CNAME resolves).
    pub fn hold_certificates(&self, hold: bool) {
        self.inner.state.lock().unwrap().hold_certificates = hold;
    }
}

/// Learns from a successful answer: when a certificate was first seen issued.
pub(super) fn learn(c: &Call, body: &str, st: &mut State, now: Instant) {
    if c.op == "DescribeCertificate" && body.contains("\"ISSUED\"") {
        if let Some(arn) = c.get("CertificateArn") {
            st.cert_issued.entry(arn.to_string()).or_insert(now);
            st.issued_seen.insert(arn.to_string());
        }
    }
}

/// A certificate just issued is not found by the load balancer for a
/// moment (Terraform's elbv2 listener.go retries CertificateNotFound for 5
/// minutes).
pub(super) fn certificate_propagating(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if matches!(c.op.as_str(), "CreateListener" | "ModifyListener") {
        let arn = c
            .form
            .iter()
            .find(|(k, _)| k.ends_with("CertificateArn"))
            .map(|(_, v)| v.clone());
        if let Some(arn) = arn {
            if within(st.cert_issued.get(&arn).copied(), t.visible) {
                st.count("consistency");
                return Some(error(
                    "elasticloadbalancing",
                    400,
                    "CertificateNotFound",
                    &format!("Certificate '{arn}' not found"),
                ));
            }
        }
    }
    None
}

/// A listener naming a certificate not issued yet: the load balancer does
/// not find it (`CertificateNotFound`; ACM hands a certificate to the
/// integrated services only once it is ISSUED). "Not issued yet" is what
/// the caller was told: a certificate it never read ISSUED. Counted as
/// `transitional`: a call on a resource still on its way.
pub(super) fn certificate_not_issued(c: &Call, st: &mut State, _t: &Timing) -> Option<Response> {
    if !matches!(c.op.as_str(), "CreateListener" | "ModifyListener") {
        return None;
    }
    let arn = c
        .form
        .iter()
        .find(|(k, _)| k.ends_with("CertificateArn"))
        .map(|(_, v)| v.clone())?;
    if st.issued_seen.contains(&arn) {
        return None;
    }
    st.count("transitional");
    Some(error(
        "elasticloadbalancing",
        400,
        "CertificateNotFound",
        &format!("Certificate '{arn}' not found"),
    ))
}

/// The certificate as ACM shows it before its validation records resolve.
pub(super) fn hold_validation(resp: &mut Response) {
    let Ok(mut v) = serde_json::from_slice::<Value>(&resp.body) else {
        return;
    };
    let c = &mut v["Certificate"];
    if c["Status"] == "ISSUED" {
        c["Status"] = json!("PENDING_VALIDATION");
        if let Some(opts) = c["DomainValidationOptions"].as_array_mut() {
            for o in opts {
                o["ValidationStatus"] = json!("PENDING_VALIDATION");
            }
        }
        resp.body = v.to_string().into_bytes();
    }
}

/// ACM uses one validation CNAME per domain name and account ("DNS
/// validation" in the ACM user guide: the record is created for your domain
/// and account and stays valid for every certificate of that name).
pub(super) fn shared_validation(resp: &mut Response) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(mut v) = serde_json::from_slice::<Value>(&resp.body) else {
        return false;
    };
    let mut rewrote = false;
    if let Some(opts) = v["Certificate"]["DomainValidationOptions"].as_array_mut() {
        for o in opts {
            let domain = o["DomainName"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("*.")
                .to_string();
            if o["ResourceRecord"].is_object() {
                let h = hex::encode(Sha256::digest(format!("name:{domain}")));
                let hv = hex::encode(Sha256::digest(format!("value:{domain}")));
                o["ResourceRecord"]["Name"] = json!(format!("_{}.{domain}.", &h[..32]));
                o["ResourceRecord"]["Value"] =
                    json!(format!("_{}.acm-validations.aws.", &hv[..32]));
                rewrote = true;
            }
        }
    }
    resp.body = v.to_string().into_bytes();
    rewrote
}
