//! `acm:certificate`: the TLS certificate of the stack's domain, validated
//! by DNS: in the stack's Route 53 zone when it names one, otherwise by
//! records the user creates (printed, then waited for).
//!
//! ACM cannot filter by tag: `ListCertificates` gives the ARNs, then one
//! `ListTagsForCertificate` per certificate tells which are the stack's.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_acm::types::{
    CertificateStatus, CertificateSummary, CertificateType, Filters, KeyAlgorithm, Tag,
    ValidationMethod,
};
use aws_sdk_route53::types::ChangeAction;
use serde_json::{json, Value};

use super::attrs::strings;
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use crate::lifecycle::{self, Readiness};

mod validation;
use validation::*;

pub const KIND: &str = "acm:certificate";
const TAG_ZONE: &str = "bookstore-infra:zone";

pub struct Certificate;

/// A DNS validation record: (name, type, value).
type Record = (String, String, String);

async fn describe(
    cloud: &Cloud,
    id: &str,
    arn: &str,
) -> Result<aws_sdk_acm::types::CertificateDetail, CloudError> {
    let d = cloud
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .ctx(id, "DescribeCertificate")?;
    d.certificate()
        .cloned()
        .ok_or_else(|| CloudError::invalid(id, "DescribeCertificate returned nothing"))
}
/// Every certificate of the region, all pages, of every key type (without
/// `Includes.keyTypes`, ListCertificates answers only RSA_2048 certificates:
/// ACM API reference, ListCertificates), in `statuses` (empty: any status).
async fn list_certificates(
    acm: &aws_sdk_acm::Client,
    statuses: &[CertificateStatus],
) -> Result<Vec<CertificateSummary>, CloudError> {
    acm.list_certificates()
        .set_certificate_statuses((!statuses.is_empty()).then(|| statuses.to_vec()))
        .includes(
            Filters::builder()
                .set_key_types(Some(
                    KeyAlgorithm::values()
                        .iter()
                        .map(|k| KeyAlgorithm::from(*k))
                        .collect(),
                ))
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(KIND, "ListCertificates")
}
fn sans(c: &aws_sdk_acm::types::CertificateDetail) -> Vec<String> {
    let domain = c.domain_name().unwrap_or_default();
    let mut v: Vec<String> = c
        .subject_alternative_names()
        .iter()
        .filter(|n| n.as_str() != domain)
        .cloned()
        .collect();
    v.sort();
    v
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_regions", "DescribeRegions", &["ec2:DescribeRegions"]),
    r("acm", "list_certificates", "ListCertificates", &["acm:ListCertificates"]),
    r("acm", "list_tags_for_certificate", "ListTagsForCertificate", &["acm:ListTagsForCertificate"]),
    w("acm", "delete_certificate", "DeleteCertificate", &["acm:DeleteCertificate"]),
    w("acm", "request_certificate", "RequestCertificate", &["acm:RequestCertificate", "acm:AddTagsToCertificate"]),
];

#[async_trait]
impl ResourceKind for Certificate {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// RequestCertificate carries an idempotency token (an hour long).
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            Phase::Create | Phase::Rollout => t.certificate,
            Phase::Delete => t.delete,
        }
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("domain"), replace("alternative_names")];
        A
    }

    // A new certificate can be issued while the listener still uses the old one.
    fn create_before_destroy(&self, _: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        true
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let list = list_certificates(&cloud.acm, &[]).await?;
        let mut out = Vec::new();
        for s in &list {
            let Some(arn) = s.certificate_arn() else {
                continue;
            };
            // ListTagsForCertificate has no paging: one answer holds all (at most 50) tags.
            let tags = cloud
                .acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .ctx(KIND, "ListTagsForCertificate")?;
            let get = |k: &str| {
                tags.tags()
                    .iter()
                    .find(|t| t.key() == k)
                    .and_then(|t| t.value())
            };
            let pairs = tags
                .tags()
                .iter()
                .filter_map(|t| Some((t.key(), t.value()?)));
            let Some(id) = super::owner_id(pairs, stack) else {
                continue;
            };
            let id = id.as_str();
            let c = describe(cloud, id, arn).await?;
            let mut o = Observed::new(KIND, id, arn)
                .prop("domain", c.domain_name().unwrap_or_default())
                .prop("alternative_names", json!(sans(&c)))
                .attr("arn", arn)
                .pending(c.status() != Some(&CertificateStatus::Issued));
            if let Some(z) = get(TAG_ZONE) {
                o.props.insert("zone".into(), Value::String(z.to_string()));
            }
            out.push(o);
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let domain = r.str("domain")?;
        let alt = strings(&r.props["alternative_names"]);
        let mut tags: Vec<(String, String)> = r.tags.clone();
        if let Some(z) = r.opt_str("hosted_zone_id") {
            tags.push((TAG_ZONE.into(), z.into()));
        }
        let tags: Vec<Tag> = tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        // ACM's idempotency token: at most 32 word characters.
        let token: String = r
            .token
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(32)
            .collect();
        let out = cloud
            .acm
            .request_certificate()
            .domain_name(domain)
            .set_subject_alternative_names((!alt.is_empty()).then(|| alt.clone()))
            .validation_method(ValidationMethod::Dns)
            .idempotency_token(token)
            .set_tags(Some(tags))
            .send()
            .await
            .ctx(&r.id, "RequestCertificate")?;
        let arn = out
            .certificate_arn()
            .ok_or_else(|| CloudError::invalid(&r.id, "RequestCertificate returned no ARN"))?;
        let mut alt = alt;
        alt.sort();
        let mut o = Observed::new(KIND, &r.id, arn)
            .prop("domain", domain)
            .prop("alternative_names", json!(alt))
            .attr("arn", arn);
        if let Some(z) = r.opt_str("hosted_zone_id") {
            o.props.insert("zone".into(), json!(z));
        }
        o.props.insert(
            "validation_timeout_secs".into(),
            r.props
                .get("validation_timeout_secs")
                .cloned()
                .unwrap_or(json!(1800)),
        );
        Ok(o)
    }

    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        Ok(current.clone())
    }

    /// Waits for ISSUED, creating the validation records in the zone when
    /// the stack names one, printing them otherwise.
    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let (id, arn) = (current.id.clone(), current.physical_id.clone());
        let zone = current
            .props
            .get("zone")
            .and_then(Value::as_str)
            .map(str::to_string);
        let limit = Duration::from_secs(
            current
                .props
                .get("validation_timeout_secs")
                .and_then(Value::as_u64)
                .unwrap_or(cloud.timeouts.for_kind(KIND, Phase::Create).as_secs()),
        );
        let start = tokio::time::Instant::now();
        let mut published = false;
        loop {
            let c = match describe(cloud, &id, &arn).await {
                Ok(c) => c,
                // Throttling or a 5xx answer: poll again, within the limit.
                Err(e) if e.is_transient() && start.elapsed() < limit => {
                    cloud.status(&id, &format!("transient error, still polling: {e}"));
                    tokio::time::sleep(cloud.poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = c
                .status()
                .map(CertificateStatus::as_str)
                .unwrap_or("PENDING_VALIDATION");
            // The records are written even when the certificate is issued
            // already (another certificate's identical records validated it):
            // ACM's managed renewal needs them to stay in place, and this
            // stack's certificate must not depend on another's.
            let recs = records(&c);
            if !published && !recs.is_empty() {
                match &zone {
                    Some(z) => {
                        cloud.status(
                            &id,
                            &format!("writing {} validation record(s) in zone {z}", recs.len()),
                        );
                        change_records(cloud, &id, z, ChangeAction::Upsert, &recs).await?;
                    }
                    None => {
                        for (n, t, v) in &recs {
                            cloud.reporter.note(&format!("{id}: create this DNS record to validate the certificate: {n} {t} {v}"));
                        }
                    }
                }
                published = true;
            }
            match lifecycle::certificate(status, c.failure_reason().map(|f| f.as_str())) {
                Readiness::Ready => return Ok(current),
                Readiness::Pending => {}
                Readiness::Terminal(why) => {
                    return Err(CloudError::invalid(
                        &id,
                        format!("certificate {arn} is {why}"),
                    ))
                }
            }
            if start.elapsed() > limit {
                let list: Vec<String> = recs
                    .iter()
                    .map(|(n, t, v)| format!("{n} {t} {v}"))
                    .collect();
                return Err(CloudError::invalid(
                    &id,
                    format!(
                        "certificate {arn} is not issued after {}s. Validation records: {}. Once they exist, run `up` again: it resumes waiting",
                        limit.as_secs(),
                        list.join("; ")
                    ),
                ));
            }
            cloud.status(&id, "waiting for validation (PENDING_VALIDATION)");
            tokio::time::sleep(cloud.poll).await;
        }
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let arn = &current.physical_id;
        let ours = match describe(cloud, &current.id, arn).await {
            Ok(c) => validations(&c),
            Err(_) => Vec::new(),
        };
        match cloud
            .acm
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => super::gone_ok(Err(api_error(&current.id, "DeleteCertificate", e)))?,
        }
        // The validation records this stack wrote go too, unless another
        // certificate still needs them: see `unused_records`.
        let Some(zone) = current.props.get("zone").and_then(Value::as_str) else {
            return Ok(());
        };
        if ours.is_empty() {
            return Ok(());
        }
        let domains: BTreeSet<String> = ours.iter().map(|(d, _)| dns_key(d)).collect();
        let others = match other_certificates(cloud, &current.id, arn, &domains).await {
            Ok(o) => o,
            Err(e) => {
                cloud.reporter.note(&format!(
                    "{}: DNS validation record(s) kept in zone {zone}: cannot tell whether other certificates use them ({e})",
                    current.id
                ));
                return Ok(());
            }
        };
        let (gone, kept) = unused_records(&ours, &others);
        for (n, _, _) in &kept {
            cloud.reporter.note(&format!(
                "{}: DNS validation record {n} kept: another certificate of the account validates or renews with it",
                current.id
            ));
        }
        for rec in &gone {
            // One change per record: a batch fails whole when one record is already gone.
            let _ = delete_record(cloud, &current.id, zone, rec).await;
        }
        Ok(())
    }
}
