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
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::{json, Value};

use super::attrs::strings;
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::{replace, AttrSpec, Observed, Resolved, ResourceKind};
use crate::lifecycle::{self, Readiness};

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

/// A certificate's DNS validation records, each with the domain it validates.
fn validations(c: &aws_sdk_acm::types::CertificateDetail) -> Vec<(String, Record)> {
    let set: BTreeSet<(String, Record)> = c
        .domain_validation_options()
        .iter()
        .filter_map(|o| {
            let r = o.resource_record()?;
            Some((
                o.domain_name().to_string(),
                (
                    r.name().to_string(),
                    r.r#type().as_str().to_string(),
                    r.value().to_string(),
                ),
            ))
        })
        .collect();
    set.into_iter().collect()
}

/// A DNS name as ACM's validation compares it: case and the final dot do
/// not matter, and a wildcard `*.example.com` is validated by the record of
/// `example.com` ("the random strings created by ACM are the same as those
/// created for its base domain": ACM User Guide, DNS validation).
fn dns_key(name: &str) -> String {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    match n.strip_prefix("*.") {
        Some(base) => base.to_string(),
        None => n,
    }
}

/// What another certificate of the account validates (and renews) with:
/// its validation records' names, and the domain names whose record ACM
/// does not show yet (just requested), which count for their record.
#[derive(Debug, Default, Clone, PartialEq)]
struct Usage {
    domains: BTreeSet<String>,
    records: BTreeSet<String>,
}

fn usage(c: &aws_sdk_acm::types::CertificateDetail) -> Usage {
    let mut u = Usage::default();
    for o in c.domain_validation_options() {
        match o.resource_record() {
            Some(r) => u.records.insert(dns_key(r.name())),
            None => u.domains.insert(dns_key(o.domain_name())),
        };
    }
    if c.domain_validation_options().is_empty() {
        // Nothing said about validation: its names count.
        u.domains.extend(c.domain_name().map(dns_key));
        u.domains
            .extend(c.subject_alternative_names().iter().map(|n| dns_key(n)));
    }
    u
}

/// Splits a deleted certificate's validation records into those that may
/// go and those another certificate still uses.
///
/// ACM gives one validation CNAME per domain name and account, whatever the
/// certificate and region ("ACM uses the same CNAME record for a domain name
/// across certificates in the same account"; "the CNAME validation token
/// works for any region": ACM User Guide, DNS validation). Another
/// certificate for the same name (the replacement `up` creates before
/// deleting this one, or anyone's, anywhere in the account) validates and
/// is renewed by the same record: deleting it would stop that certificate's
/// managed renewal. So a record goes only when no other certificate that
/// can still validate or renew names its domain or its record.
fn unused_records(ours: &[(String, Record)], others: &[Usage]) -> (Vec<Record>, Vec<Record>) {
    let mut gone: Vec<Record> = Vec::new();
    let mut kept: Vec<Record> = Vec::new();
    for (domain, rec) in ours {
        let (d, n) = (dns_key(domain), dns_key(&rec.0));
        let used = others
            .iter()
            .any(|u| u.domains.contains(&d) || u.records.contains(&n));
        let to = if used { &mut kept } else { &mut gone };
        // A wildcard and its base domain share one record: list it once.
        if !to.contains(rec) {
            to.push(rec.clone());
        }
    }
    gone.retain(|r| !kept.contains(r));
    (gone, kept)
}

/// Statuses of a certificate that may still validate or renew with its DNS
/// record: PENDING_VALIDATION (validating), ISSUED (renews before it
/// expires), INACTIVE (kept to be safe). EXPIRED, VALIDATION_TIMED_OUT,
/// REVOKED and FAILED never validate again.
const LIVE: &[CertificateStatus] = &[
    CertificateStatus::PendingValidation,
    CertificateStatus::Issued,
    CertificateStatus::Inactive,
];

/// What every other live, ACM-issued certificate of the account that may
/// share a record with `domains` (ours, as [`dns_key`]s) validates with, in
/// every region enabled for the account (the record is shared across
/// regions too). Calls: DescribeRegions, the ListCertificates pages of each
/// region, and a DescribeCertificate for each certificate naming one of our
/// domains (or whose summary does not list all its names).
async fn other_certificates(
    cloud: &Cloud,
    id: &str,
    deleted: &str,
    domains: &BTreeSet<String>,
) -> Result<Vec<Usage>, CloudError> {
    // DescribeRegions has no paging; without AllRegions it lists the enabled ones.
    let regions = cloud
        .ec2
        .describe_regions()
        .send()
        .await
        .ctx(id, "DescribeRegions")?;
    let mut names: Vec<String> = regions
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    if !names.contains(&cloud.region) {
        names.push(cloud.region.clone());
    }
    let per_region = futures::future::try_join_all(names.into_iter().map(|r| async move {
        let acm = if r == cloud.region {
            cloud.acm.clone()
        } else {
            aws_sdk_acm::Client::from_conf(
                cloud
                    .acm
                    .config()
                    .to_builder()
                    .region(aws_sdk_acm::config::Region::new(r))
                    .build(),
            )
        };
        let mut out = Vec::new();
        for s in list_certificates(&acm, LIVE).await? {
            let Some(arn) = s.certificate_arn().filter(|a| *a != deleted) else {
                continue;
            };
            // Imported and private certificates never validate by DNS.
            if matches!(
                s.r#type(),
                Some(CertificateType::Imported | CertificateType::Private)
            ) {
                continue;
            }
            let listed: BTreeSet<String> = s
                .domain_name()
                .into_iter()
                .chain(
                    s.subject_alternative_name_summaries()
                        .iter()
                        .map(String::as_str),
                )
                .map(dns_key)
                .collect();
            // A record belongs to one domain name: a certificate whose summary
            // lists all its names (at most 100; some answers list none) and
            // none of ours cannot use our records.
            let complete = s.has_additional_subject_alternative_names() != Some(true)
                && !s.subject_alternative_name_summaries().is_empty();
            if complete && listed.is_disjoint(domains) {
                continue;
            }
            let d = match acm.describe_certificate().certificate_arn(arn).send().await {
                Ok(d) => d,
                Err(e) => {
                    let e = api_error(id, "DescribeCertificate", e);
                    // Deleted since the list: it uses nothing any more.
                    if e.code() == Some("ResourceNotFoundException") {
                        continue;
                    }
                    return Err(e);
                }
            };
            out.push(match d.certificate() {
                Some(c) => usage(c),
                None => Usage {
                    domains: listed,
                    records: BTreeSet::new(),
                },
            });
        }
        Ok::<_, CloudError>(out)
    }))
    .await?;
    Ok(per_region.into_iter().flatten().collect())
}

/// Deletes one validation record exactly as it stands in the zone (a
/// deletion must repeat the record's TTL and values), if it is still there
/// and still holds the value ACM gave.
async fn delete_record(
    cloud: &Cloud,
    id: &str,
    zone: &str,
    rec: &Record,
) -> Result<(), CloudError> {
    let (name, ty, value) = rec;
    let ty = RrType::from(ty.as_str());
    // The listing starts at this name and type: the first set is it, if it exists.
    let page = cloud
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(ty.clone())
        .max_items(1)
        .send()
        .await
        .ctx(id, "ListResourceRecordSets")?;
    let Some(set) = page.resource_record_sets().first().filter(|s| {
        dns_key(s.name()) == dns_key(name)
            && s.r#type() == &ty
            && s.resource_records().iter().any(|r| r.value() == value)
    }) else {
        return Ok(());
    };
    let bad = |e: aws_sdk_route53::error::BuildError| CloudError::invalid(id, e.to_string());
    cloud
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(set.clone())
                        .build()
                        .map_err(bad)?,
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> Record {
        (
            name.into(),
            "CNAME".into(),
            "_v.acm-validations.aws.".into(),
        )
    }

    fn used_by(domains: &[&str], records: &[&str]) -> Usage {
        Usage {
            domains: domains.iter().map(|d| dns_key(d)).collect(),
            records: records.iter().map(|r| dns_key(r)).collect(),
        }
    }

    #[test]
    fn names_compare_as_acm_validates_them() {
        assert_eq!(dns_key("Example.COM."), "example.com");
        assert_eq!(dns_key("*.example.com"), "example.com");
        assert_eq!(dns_key("_abc.example.com."), "_abc.example.com");
    }

    #[test]
    fn a_record_another_certificate_uses_stays() {
        let ours = vec![
            ("shop.example.com".to_string(), rec("_a.shop.example.com.")),
            ("www.example.com".to_string(), rec("_b.www.example.com.")),
        ];
        // No other certificate: both go.
        let (gone, kept) = unused_records(&ours, &[]);
        assert_eq!((gone.len(), kept.len()), (2, 0));
        // Another certificate (the replacement, or anyone's) for one of the names.
        let (gone, kept) = unused_records(&ours, &[used_by(&["WWW.example.com"], &[])]);
        assert_eq!(gone, vec![rec("_a.shop.example.com.")]);
        assert_eq!(kept, vec![rec("_b.www.example.com.")]);
        // Known by its record only (its names unread), or through a wildcard.
        let (gone, _) = unused_records(&ours, &[used_by(&[], &["_a.shop.example.com"])]);
        assert_eq!(gone, vec![rec("_b.www.example.com.")]);
        let (gone, _) = unused_records(&ours, &[used_by(&["*.shop.example.com"], &[])]);
        assert_eq!(gone, vec![rec("_b.www.example.com.")]);
        // Unrelated certificates change nothing.
        let (gone, _) = unused_records(&ours, &[used_by(&["other.org"], &["_c.other.org."])]);
        assert_eq!(gone.len(), 2);
    }

    #[test]
    fn another_certificate_counts_by_record_or_by_name_until_it_has_one() {
        use aws_sdk_acm::types::{CertificateDetail, DomainValidation, RecordType, ResourceRecord};
        let opt = |domain: &str, record: Option<&str>| {
            DomainValidation::builder()
                .domain_name(domain)
                .set_resource_record(record.map(|n| {
                    ResourceRecord::builder()
                        .name(n)
                        .r#type(RecordType::Cname)
                        .value("_v.acm-validations.aws.")
                        .build()
                        .unwrap()
                }))
                .build()
                .unwrap()
        };
        let c = CertificateDetail::builder()
            .domain_name("shop.example.com")
            .subject_alternative_names("shop.example.com")
            .subject_alternative_names("new.example.com")
            .domain_validation_options(opt("shop.example.com", Some("_a.Shop.example.com.")))
            .domain_validation_options(opt("new.example.com", None))
            .build();
        assert_eq!(
            super::usage(&c),
            used_by(&["new.example.com"], &["_a.shop.example.com"])
        );
        // No validation options at all: every name counts.
        let bare = CertificateDetail::builder()
            .domain_name("a.example.com")
            .subject_alternative_names("*.b.example.com")
            .build();
        assert_eq!(
            super::usage(&bare),
            used_by(&["a.example.com", "b.example.com"], &[])
        );
    }

    #[test]
    fn a_wildcard_and_its_base_share_one_record() {
        let shared = rec("_a.example.com.");
        let ours = vec![
            ("example.com".to_string(), shared.clone()),
            ("*.example.com".to_string(), shared.clone()),
        ];
        assert_eq!(unused_records(&ours, &[]), (vec![shared.clone()], vec![]));
        let (gone, kept) = unused_records(&ours, &[used_by(&["*.example.com"], &[])]);
        assert_eq!((gone, kept), (vec![], vec![shared]));
    }
}
