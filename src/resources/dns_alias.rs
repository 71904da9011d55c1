//! `route53:alias`: the domain's A record: an alias of the load balancer
//! (`target_dns`, `target_zone_id`), or the single instance's address
//! (`addresses`).
//!
//! Records cannot carry tags, so ownership is a TXT record beside it,
//! `_bookstore-infra.<name>` = `"stack=<stack>,id=<logical id>"`, written in
//! the same change. A record without that marker is never changed.
//! Records are read zone by zone (Route 53 has no search by value).

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "route53:alias";

pub struct DnsAlias;

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn marker_name(name: &str) -> String {
    fqdn(&format!("_bookstore-infra.{}", name.trim_end_matches('.')))
}

fn marker_value(stack: &str, id: &str) -> String {
    format!("\"stack={stack},id={id}\"")
}

fn bad(id: &str) -> impl Fn(aws_sdk_route53::error::BuildError) -> CloudError + '_ {
    move |e| CloudError::invalid(id, e.to_string())
}

/// What an A record points at.
enum Target<'a> {
    /// An alias of a load balancer: its DNS name and zone.
    Alias { dns: &'a str, zone: &'a str },
    /// Addresses, with a short TTL (a replaced address shows within it).
    Addresses(Vec<String>),
}

/// The TTL of an address record.
const ADDRESS_TTL: i64 = 60;

/// The A record and its TXT marker, for one change.
fn sets(
    id: &str,
    stack: &str,
    name: &str,
    target: &Target,
) -> Result<[ResourceRecordSet; 2], CloudError> {
    let a = ResourceRecordSet::builder()
        .name(fqdn(name))
        .r#type(RrType::A);
    let a = match target {
        Target::Alias { dns, zone } => a.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(*zone)
                .dns_name(*dns)
                .evaluate_target_health(true)
                .build()
                .map_err(bad(id))?,
        ),
        Target::Addresses(ips) => a.ttl(ADDRESS_TTL).set_resource_records(Some(
            ips.iter()
                .map(|ip| ResourceRecord::builder().value(ip).build().map_err(bad(id)))
                .collect::<Result<Vec<_>, _>>()?,
        )),
    };
    let a = a.build().map_err(bad(id))?;
    let txt = ResourceRecordSet::builder()
        .name(marker_name(name))
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value(marker_value(stack, id))
                .build()
                .map_err(bad(id))?,
        )
        .build()
        .map_err(bad(id))?;
    Ok([a, txt])
}

async fn change(
    cloud: &Cloud,
    id: &str,
    zone: &str,
    action: ChangeAction,
    sets: [ResourceRecordSet; 2],
) -> Result<(), CloudError> {
    let changes = sets
        .into_iter()
        .map(|s| {
            Change::builder()
                .action(action.clone())
                .resource_record_set(s)
                .build()
                .map_err(bad(id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = cloud
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .map_err(bad(id))?,
        )
        .send()
        .await
        .ctx(id, "ChangeResourceRecordSets")?;
    super::dns_in_sync(cloud, id, out.change_info()).await
}

async fn records(
    cloud: &Cloud,
    id: &str,
    zone: &str,
) -> Result<Vec<ResourceRecordSet>, CloudError> {
    super::record_sets(cloud, id, zone).await
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("route53", "list_hosted_zones", "ListHostedZones", &["route53:ListHostedZones"]),
];

#[async_trait]
impl ResourceKind for DnsAlias {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// The record is written with UPSERT.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("zone_id"),
            replace("name"),
            in_place("target_dns"),
            in_place("target_zone_id"),
            in_place("addresses"),
        ];
        A
    }

    // A record pointing at a load balancer does not keep it from being deleted.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // Paged by Marker/NextMarker, 100 zones a page.
        let zones = cloud
            .route53
            .list_hosted_zones()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "ListHostedZones")?;
        let prefix = format!("\"stack={stack},id=");
        let mut out = Vec::new();
        for z in &zones {
            let zone = z.id().trim_start_matches("/hostedzone/").to_string();
            let sets = records(cloud, KIND, &zone).await?;
            for m in sets
                .iter()
                .filter(|s| s.r#type() == &RrType::Txt && s.name().starts_with("_bookstore-infra."))
            {
                let Some(id) = m
                    .resource_records()
                    .iter()
                    .find_map(|r| r.value().strip_prefix(&prefix))
                    .map(|v| v.trim_end_matches('"').to_string())
                else {
                    continue;
                };
                let name = m
                    .name()
                    .trim_start_matches("_bookstore-infra.")
                    .trim_end_matches('.')
                    .to_string();
                let a = sets
                    .iter()
                    .find(|s| s.r#type() == &RrType::A && s.name().trim_end_matches('.') == name);
                let target = a.and_then(|a| a.alias_target());
                let addresses: Vec<&str> = a
                    .map(|a| a.resource_records().iter().map(|r| r.value()).collect())
                    .unwrap_or_default();
                out.push(
                    Observed::new(KIND, id, format!("{zone}/{name}"))
                        .prop("addresses", addresses)
                        .prop("zone_id", zone.as_str())
                        .prop("name", name.as_str())
                        .prop(
                            "target_dns",
                            target
                                .map(|t| t.dns_name().trim_end_matches('.'))
                                .unwrap_or_default(),
                        )
                        .prop(
                            "target_zone_id",
                            target.map(|t| t.hosted_zone_id()).unwrap_or_default(),
                        ),
                );
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (zone, name) = (r.str("zone_id")?, r.str("name")?);
        // An A record already there and not marked as ours is someone else's.
        let existing = records(cloud, &r.id, zone).await?;
        let taken = existing
            .iter()
            .any(|s| s.r#type() == &RrType::A && s.name().trim_end_matches('.') == name);
        let ours = existing.iter().any(|s| {
            s.name() == marker_name(name)
                && s.resource_records()
                    .iter()
                    .any(|v| v.value() == marker_value(&r.stack, &r.id))
        });
        if taken && !ours {
            return Err(CloudError::invalid(
                &r.id,
                format!("{name} already has an A record in zone {zone} that stack {} does not own; remove it or choose another name", r.stack),
            ));
        }
        self.update_record(cloud, r).await
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        _: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        self.update_record(cloud, r).await
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let get = |k: &str| {
            current
                .props
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let (zone, name) = (get("zone_id"), get("name"));
        // Delete exactly what is there: the marker and the A record it marks.
        let sets = records(cloud, &current.id, &zone).await?;
        let marker = sets
            .iter()
            .find(|s| s.name() == marker_name(&name) && s.r#type() == &RrType::Txt);
        let Some(marker) = marker.cloned() else {
            return Ok(());
        };
        let mut changes = vec![marker];
        if let Some(a) = sets
            .iter()
            .find(|s| s.r#type() == &RrType::A && s.name().trim_end_matches('.') == name)
        {
            changes.push(a.clone());
        }
        let changes = changes
            .into_iter()
            .map(|s| {
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(s)
                    .build()
                    .map_err(bad(&current.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let deleted = cloud
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(changes))
                    .build()
                    .map_err(bad(&current.id))?,
            )
            .send()
            .await
            .map(|_| ())
            .ctx(&current.id, "ChangeResourceRecordSets");
        // A repeated batch (its first answer lost) finds the records gone.
        super::gone_ok(deleted)
    }
}

impl DnsAlias {
    async fn update_record(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (zone, name) = (r.str("zone_id")?, r.str("name")?);
        let o = Observed::new(KIND, &r.id, format!("{zone}/{name}"))
            .prop("zone_id", zone)
            .prop("name", name);
        let (target, o) = match r.props.get("addresses") {
            Some(list) => {
                let ips: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let o = o.prop("addresses", ips.clone());
                (Target::Addresses(ips), o)
            }
            None => {
                let (dns, tz) = (r.str("target_dns")?, r.str("target_zone_id")?);
                let o = o
                    .prop("target_dns", dns.trim_end_matches('.'))
                    .prop("target_zone_id", tz);
                (Target::Alias { dns, zone: tz }, o)
            }
        };
        let s = sets(&r.id, &r.stack, name, &target)?;
        change(cloud, &r.id, zone, ChangeAction::Upsert, s).await?;
        Ok(o)
    }
}
