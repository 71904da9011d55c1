//! DNS validation records: what a certificate asks for, which of them
//! other certificates still use, and writing them to Route 53.

use std::collections::BTreeSet;

use aws_sdk_acm::types::CertificateStatus;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};

use super::*;

pub(super) fn records(c: &aws_sdk_acm::types::CertificateDetail) -> Vec<Record> {
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

pub(super) async fn change_records(
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
    let out = cloud
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
    crate::resources::dns_in_sync(cloud, id, out.change_info()).await
}

/// A certificate's DNS validation records, each with the domain it validates.
pub(super) fn validations(c: &aws_sdk_acm::types::CertificateDetail) -> Vec<(String, Record)> {
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
pub(super) fn dns_key(name: &str) -> String {
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
pub(super) struct Usage {
    domains: BTreeSet<String>,
    records: BTreeSet<String>,
}

pub(super) fn usage(c: &aws_sdk_acm::types::CertificateDetail) -> Usage {
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
pub(super) fn unused_records(
    ours: &[(String, Record)],
    others: &[Usage],
) -> (Vec<Record>, Vec<Record>) {
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
pub(super) const LIVE: &[CertificateStatus] = &[
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
pub(super) async fn other_certificates(
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
pub(super) async fn delete_record(
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
    let deleted = cloud
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
        .map(|_| ())
        .ctx(id, "ChangeResourceRecordSets");
    // A repeated batch (its first answer lost) finds the record gone.
    crate::resources::gone_ok(deleted)
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
