//! A certificate as the app holds it: the chain and key rustls serves,
//! and the facts about it the renewal and `certificate.json` need.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use super::TlsError;

/// Renewal starts when less than this fraction of the validity is left
/// (a third)...
const RENEW_FRACTION: u32 = 3;
/// ...but not earlier than this before the end (long-lived certificates).
const RENEW_BEFORE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// A certificate chain with its private key, ready to serve.
#[derive(Clone, Debug)]
pub struct Cert {
    pub key: Arc<CertifiedKey>,
    pub summary: Summary,
}

/// What `certificate.json` says of the certificate served: public facts
/// only (no key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The issuer's distinguished name (RFC 4514).
    pub issuer: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// The DNS names the certificate is for, sorted.
    pub domains: Vec<String>,
    /// The serial number, lower-case hex without leading zeros.
    pub serial: String,
    #[serde(skip)]
    pub valid_from: SystemTime,
    #[serde(skip)]
    pub valid_until: SystemTime,
}

impl Cert {
    /// Reads a PEM chain (the certificate first) and its PEM private key.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate(format!("reading the PEM chain: {e}")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::Certificate("the PEM chain holds no certificate".into()))?;
        let summary = Summary::of(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::Certificate(format!("reading the PEM private key: {e}")))?;
        let key = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| TlsError::Certificate(format!("the private key: {e}")))?;
        let key = CertifiedKey::new(chain, key);
        key.keys_match()
            .map_err(|e| TlsError::Certificate(format!("the key is not the certificate's: {e}")))?;
        Ok(Cert {
            key: Arc::new(key),
            summary,
        })
    }
}

impl Summary {
    /// Reads the facts out of a DER certificate.
    pub fn of(der: &[u8]) -> Result<Self, TlsError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| TlsError::Certificate(format!("decoding the certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let sans = tbs
            .get::<SubjectAltName>()
            .map_err(|e| TlsError::Certificate(format!("decoding its names: {e}")))?;
        let mut domains: Vec<String> = sans
            .map(|(_, san)| san.0)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| match n {
                GeneralName::DnsName(d) => Some(d.as_str().to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        domains.sort();
        let serial = tbs
            .serial_number
            .as_bytes()
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let validity = &tbs.validity;
        Ok(Summary {
            issuer: tbs.issuer.to_string(),
            not_before: validity.not_before.to_date_time().to_string(),
            not_after: validity.not_after.to_date_time().to_string(),
            domains,
            serial: if serial.is_empty() {
                "0".into()
            } else {
                serial
            },
            valid_from: validity.not_before.to_system_time(),
            valid_until: validity.not_after.to_system_time(),
        })
    }

    /// When to ask for the next certificate: when a third of its validity
    /// or 30 days is left, whichever is less (90-day certificates: 30 days
    /// before the end; a year-long one too; a 6-day one: 2 days before).
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .valid_until
            .duration_since(self.valid_from)
            .unwrap_or_default();
        self.valid_until - (life / RENEW_FRACTION).min(RENEW_BEFORE_MAX)
    }

    /// Whether it is for exactly these names (in any order).
    pub fn is_for(&self, domains: &[String]) -> bool {
        let mut mine = self.domains.clone();
        let mut theirs = domains.to_vec();
        mine.sort();
        theirs.sort();
        mine == theirs
    }

    /// Whether it may still be served at `now`.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(days: u64) -> Summary {
        let from = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Summary {
            issuer: "CN=test".into(),
            not_before: String::new(),
            not_after: String::new(),
            domains: vec!["b.example".into(), "a.example".into()],
            serial: "1".into(),
            valid_from: from,
            valid_until: from + Duration::from_secs(days * 24 * 3600),
        }
    }

    #[test]
    fn a_90_day_certificate_is_renewed_30_days_before_its_end() {
        let s = summary(90);
        assert_eq!(
            s.valid_until.duration_since(s.renew_at()).unwrap(),
            Duration::from_secs(30 * 24 * 3600)
        );
    }

    #[test]
    fn a_year_long_certificate_is_renewed_30_days_before_its_end() {
        let s = summary(365);
        assert_eq!(
            s.valid_until.duration_since(s.renew_at()).unwrap(),
            Duration::from_secs(30 * 24 * 3600)
        );
    }

    #[test]
    fn a_short_certificate_is_renewed_with_a_third_of_its_life_left() {
        let s = summary(6);
        assert_eq!(
            s.valid_until.duration_since(s.renew_at()).unwrap(),
            Duration::from_secs(2 * 24 * 3600)
        );
    }

    #[test]
    fn names_match_in_any_order_but_not_a_subset() {
        let s = summary(90);
        assert!(s.is_for(&["a.example".into(), "b.example".into()]));
        assert!(!s.is_for(&["a.example".into()]));
        assert!(!s.is_for(&["a.example".into(), "b.example".into(), "c.example".into()]));
    }
}
