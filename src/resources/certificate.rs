//! `acm:certificate`: the TLS certificate of the stack's domain, validated
//! by DNS: in the stack's Route 53 zone when it names one, otherwise by
//! records the user creates (printed, then waited for).
//!
//! ACM cannot filter by tag: `ListCertificates` gives the ARNs, then one
//! `ListTagsForCertificate` per certificate tells which are the stack's.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::{replace, AttrSpec, Observed, Resolved, ResourceKind, TAG_ID, TAG_STACK};

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

fn records(c: &aws_sdk_acm::types::CertificateDetail) -> Vec<Record> {
    let set: BTreeSet<Record> = c
        .domain_validation_options()
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| {
            (
                r.name().to_string(),
                r.r#type().as_str().to_string(),
                r.value().to_string(),
            )
        })
        .collect();
    set.into_iter().collect()
}

async fn change_records(
    cloud: &Cloud,
    id: &str,
    zone: &str,
    action: ChangeAction,
    recs: &[Record],
) -> Result<(), CloudError> {
    if recs.is_empty() {
        return Ok(());
    }
    let bad = |e: aws_sdk_route53::error::BuildError| CloudError::invalid(id, e.to_string());
    let mut changes = Vec::new();
    for (name, ty, value) in recs {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::from(ty.as_str()))
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(bad)?,
            )
            .build()
            .map_err(bad)?;
        changes.push(
            Change::builder()
                .action(action.clone())
                .resource_record_set(set)
                .build()
                .map_err(bad)?,
        );
    }
    cloud
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .map_err(bad)?,
        )
        .send()
        .await
        .ctx(id, "ChangeResourceRecordSets")?;
    Ok(())
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

#[async_trait]
impl ResourceKind for Certificate {
    fn kind(&self) -> &'static str {
        KIND
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
        let list = cloud
            .acm
            .list_certificates()
            .send()
            .await
            .ctx(KIND, "ListCertificates")?;
        let mut out = Vec::new();
        for s in list.certificate_summary_list() {
            let Some(arn) = s.certificate_arn() else {
                continue;
            };
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
            if get(TAG_STACK) != Some(stack) {
                continue;
            }
            let Some(id) = get(TAG_ID) else { continue };
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
        let alt: Vec<String> = r.props["alternative_names"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
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
                .unwrap_or(1800),
        );
        let start = Instant::now();
        let mut published = false;
        loop {
            let c = describe(cloud, &id, &arn).await?;
            match c.status() {
                Some(CertificateStatus::Issued) => return Ok(current),
                Some(CertificateStatus::PendingValidation) | None => {}
                Some(s) => {
                    return Err(CloudError::invalid(
                        &id,
                        format!(
                            "certificate {arn} is {}: {}",
                            s.as_str(),
                            c.failure_reason().map(|f| f.as_str()).unwrap_or("")
                        ),
                    ))
                }
            }
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
        let recs = match describe(cloud, &current.id, arn).await {
            Ok(c) => records(&c),
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
        // The validation records this stack wrote go too.
        if let Some(z) = current.props.get("zone").and_then(Value::as_str) {
            let _ = change_records(cloud, &current.id, z, ChangeAction::Delete, &recs).await;
        }
        Ok(())
    }
}
