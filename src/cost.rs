//! The estimated monthly cost of a stack's resources, from a price table
//! shipped with the tool (`src/cost/prices.json`): AWS on-demand list prices
//! for Linux, in USD, for a few regions, at 730 hours a month.
//!
//! Only what a stack provisions and pays for by the hour or by the
//! provisioned gigabyte is counted; usage-based charges (data transfer,
//! load balancer capacity units, stored files and objects...) depend on
//! traffic this tool cannot know, and are listed in [`NOT_COUNTED`] so every
//! rendering says what the figures leave out.
//!
//! Desired and observed resources have properties of the same shape, so the
//! same estimate prices the stack before a plan (what exists) and after it
//! (what the stack wants); [`compare`] puts the two side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

use crate::engine::{refs, Desired, Observed, Props};
use crate::resources::{
    autoscaling_group, certificate, db_instance, db_subnet_group, dns_alias, efs_access_point,
    efs_file_system, elastic_ip, iam, internet_gateway, launch_template, listener, load_balancer,
    log_group, nat_gateway, route_table, s3, security_group, subnet, target_group, vpc,
    vpc_endpoint,
};

const PRICES_JSON: &str = include_str!("cost/prices.json");

/// Size of an instance's root volume when the launch template names none:
/// the template sets no block device mapping, so the AMI's applies, and the
/// Amazon Linux 2023 AMI the stack uses by default has an 8 GiB gp3 root
/// volume (https://docs.aws.amazon.com/linux/al2023/ug/ec2.html). A stack
/// with its own AMI may have a larger one.
pub const DEFAULT_ROOT_VOLUME_GIB: f64 = 8.0;

/// RDS storage type when the database names none: CreateDBInstance's
/// `StorageType` defaults to gp3 unless IOPS are given
/// (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html).
pub const DEFAULT_RDS_STORAGE_TYPE: &str = "gp3";

/// What the estimate leaves out; every rendering prints it.
pub const NOT_COUNTED: &[&str] = &[
    "data transfer (internet egress, cross-zone traffic) and NAT gateway data processing per GB",
    "load balancer capacity units (LCUs): only the load balancer's hourly charge is counted",
    "EFS storage and throughput, and S3 storage and requests: usage-based, counted as 0 GB",
    "RDS backup storage beyond the free allowance, which equals the provisioned storage: \
     automated backups within the retention period are assumed to fit in it",
    "the database's Secrets Manager secret (its managed master password), CloudWatch metrics, \
     alarms and logs, Route 53 hosted zone and queries",
    "taxes, the AWS Free Tier, Savings Plans and Reserved Instance discounts",
];

/// The price table as shipped.
#[derive(Debug, Deserialize)]
struct PriceTable {
    date: String,
    source: String,
    currency: String,
    hours_per_month: f64,
    regions: BTreeMap<String, RegionPrices>,
}

/// One region's prices, in USD.
#[derive(Debug, Deserialize)]
struct RegionPrices {
    /// EC2 on-demand Linux, per instance-hour, by instance type.
    ec2_hour: BTreeMap<String, f64>,
    /// RDS for MySQL Single-AZ, per instance-hour, by instance class.
    rds_mysql_hour: BTreeMap<String, f64>,
    /// RDS storage per GB-month (Single-AZ), by storage type.
    rds_storage_gb_month: BTreeMap<String, f64>,
    rds_backup_gb_month: f64,
    ebs_gp3_gb_month: f64,
    nat_gateway_hour: f64,
    alb_hour: f64,
    public_ipv4_hour: f64,
    efs_standard_gb_month: f64,
    s3_standard_gb_month: f64,
    /// An interface VPC endpoint, per hour per zone it is in
    /// (https://aws.amazon.com/privatelink/pricing/); gateway endpoints are
    /// free. Only where the table has the figure.
    #[serde(default)]
    interface_endpoint_az_hour: Option<f64>,
}

fn table() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(PRICES_JSON).expect("src/cost/prices.json is a valid price table")
    })
}

/// The month the price table's figures were taken (`2026-11`).
pub fn table_date() -> &'static str {
    &table().date
}

/// Where the price table's figures come from.
pub fn table_source() -> &'static str {
    &table().source
}

/// The regions the price table covers.
pub fn covered_regions() -> Vec<&'static str> {
    table().regions.keys().map(String::as_str).collect()
}

#[derive(Debug, Error, PartialEq)]
pub enum CostError {
    #[error("no prices for region {region}: the price table of {date} covers {covered}")]
    UnknownRegion {
        region: String,
        date: String,
        covered: String,
    },
    #[error("{id}: no {region} price for EC2 instance type {instance_type} in the price table of {date}")]
    UnknownInstanceType {
        id: String,
        region: String,
        instance_type: String,
        date: String,
    },
    #[error("{id}: no {region} price for RDS for MySQL instance class {class} in the price table of {date}")]
    UnknownDbClass {
        id: String,
        region: String,
        class: String,
        date: String,
    },
    #[error(
        "{id}: no {region} price for RDS storage type {storage_type} in the price table of {date}"
    )]
    UnknownStorageType {
        id: String,
        region: String,
        storage_type: String,
        date: String,
    },
    #[error("{id}: the price table only prices RDS for MySQL, not engine {engine}")]
    UnsupportedEngine { id: String, engine: String },
    #[error("{id}: cannot tell which launch template the Auto Scaling group uses")]
    NoLaunchTemplate { id: String },
    #[error("{id}: property {key} is missing or is not {expected}")]
    BadProp {
        id: String,
        key: &'static str,
        expected: &'static str,
    },
}

/// One resource as priced: desired and observed resources both convert.
#[derive(Debug, Clone, Copy)]
pub struct Priced<'a> {
    pub kind: &'a str,
    /// Logical id in the stack.
    pub id: &'a str,
    /// The provider's id, when the resource exists: an observed Auto Scaling
    /// group names its launch template by it.
    pub physical_id: Option<&'a str>,
    pub props: &'a Props,
}

impl<'a> From<&'a Desired> for Priced<'a> {
    fn from(d: &'a Desired) -> Self {
        Priced {
            kind: d.kind,
            id: &d.id,
            physical_id: None,
            props: &d.props,
        }
    }
}

impl<'a> From<&'a Observed> for Priced<'a> {
    fn from(o: &'a Observed) -> Self {
        Priced {
            kind: o.kind,
            id: &o.id,
            physical_id: Some(&o.physical_id),
            props: &o.props,
        }
    }
}

impl<'a> From<(&'a str, &'a str, &'a Props)> for Priced<'a> {
    fn from((kind, id, props): (&'a str, &'a str, &'a Props)) -> Self {
        Priced {
            kind,
            id,
            physical_id: None,
            props,
        }
    }
}

/// Serializes money rounded to a hundredth of a cent: enough to add up, no
/// floating-point noise.
fn money<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 10_000.0).round() / 10_000.0)
}

/// One priced part of a resource. An Auto Scaling group is priced at its
/// minimum and maximum size; everything else has `monthly_min == monthly_max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    pub id: String,
    pub kind: String,
    /// What part of the resource (`instances`, `storage`, `public IPv4`...),
    /// stable between estimates so lines can be matched.
    pub item: String,
    /// What is priced, e.g. `2-6 x t3.small`.
    pub what: String,
    #[serde(serialize_with = "money")]
    pub monthly_min: f64,
    #[serde(serialize_with = "money")]
    pub monthly_max: f64,
}

/// The estimated monthly cost of a set of resources.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Estimate {
    pub lines: Vec<CostLine>,
    #[serde(serialize_with = "money")]
    pub total_min: f64,
    #[serde(serialize_with = "money")]
    pub total_max: f64,
    /// Resources of a kind the estimate does not know how to price.
    pub unpriced: Vec<String>,
}

/// Kinds that cost nothing by themselves: the network's plumbing, identity,
/// listeners and target groups (billed with the load balancer), public ACM
/// certificates (free), alias records (queries to an ELB alias are free),
/// the launch template (its instances are priced on the Auto Scaling group),
/// the artifact object (stored in the bucket) and the log group (its
/// ingestion and storage are usage-based: see [`NOT_COUNTED`]).
const FREE_KINDS: &[&str] = &[
    vpc::KIND,
    subnet::KIND,
    internet_gateway::KIND,
    route_table::KIND,
    security_group::KIND,
    iam::ROLE,
    iam::PROFILE,
    listener::KIND,
    target_group::KIND,
    certificate::KIND,
    dns_alias::KIND,
    db_subnet_group::KIND,
    efs_access_point::KIND,
    launch_template::KIND,
    s3::ARTIFACT,
    log_group::KIND,
];

/// Prices `resources` in `region`.
pub fn estimate<'a, R: Into<Priced<'a>>>(
    region: &str,
    resources: impl IntoIterator<Item = R>,
) -> Result<Estimate, CostError> {
    let t = table();
    let p = region_prices(region)?;
    let h = t.hours_per_month;
    let all: Vec<Priced<'a>> = resources.into_iter().map(Into::into).collect();
    let mut est = Estimate::default();
    for r in &all {
        let mut line = |item: &str, what: String, min: f64, max: f64| {
            est.lines.push(CostLine {
                id: r.id.to_string(),
                kind: r.kind.to_string(),
                item: item.to_string(),
                what,
                monthly_min: min,
                monthly_max: max,
            })
        };
        match r.kind {
            autoscaling_group::KIND => {
                let min = count(r, "min")?;
                let max = count(r, "max")?;
                let lt = launch_template_of(r, &all)?;
                let ty = lt
                    .props
                    .get("instance_type")
                    .and_then(Value::as_str)
                    .ok_or(CostError::BadProp {
                        id: lt.id.to_string(),
                        key: "instance_type",
                        expected: "a string",
                    })?;
                let hourly = *p
                    .ec2_hour
                    .get(ty)
                    .ok_or_else(|| CostError::UnknownInstanceType {
                        id: r.id.to_string(),
                        region: region.to_string(),
                        instance_type: ty.to_string(),
                        date: t.date.clone(),
                    })?;
                let n = sizes(min, max);
                line(
                    "instances",
                    format!("{n} x {ty}"),
                    min * hourly * h,
                    max * hourly * h,
                );
                let gib = lt
                    .props
                    .get("root_volume_gib")
                    .and_then(Value::as_f64)
                    .unwrap_or(DEFAULT_ROOT_VOLUME_GIB);
                let volume = gib * p.ebs_gp3_gb_month;
                line(
                    "root volumes",
                    format!("{n} x {gib} GiB gp3 root volume"),
                    min * volume,
                    max * volume,
                );
                // Instances in the stack's private subnets have no public
                // address; a template asking for one pays for it.
                if lt.props.get("associate_public_ip_address") == Some(&Value::Bool(true)) {
                    let ip = p.public_ipv4_hour * h;
                    line(
                        "public IPv4",
                        format!("{n} x public IPv4 address"),
                        min * ip,
                        max * ip,
                    );
                }
            }
            db_instance::KIND => {
                if let Some(engine) = r.props.get("engine").and_then(Value::as_str) {
                    if !engine.is_empty() && engine != "mysql" {
                        return Err(CostError::UnsupportedEngine {
                            id: r.id.to_string(),
                            engine: engine.to_string(),
                        });
                    }
                }
                let class = r
                    .props
                    .get("instance_class")
                    .and_then(Value::as_str)
                    .ok_or(CostError::BadProp {
                        id: r.id.to_string(),
                        key: "instance_class",
                        expected: "a string",
                    })?;
                let hourly =
                    *p.rds_mysql_hour
                        .get(class)
                        .ok_or_else(|| CostError::UnknownDbClass {
                            id: r.id.to_string(),
                            region: region.to_string(),
                            class: class.to_string(),
                            date: t.date.clone(),
                        })?;
                let multi_az = r
                    .props
                    .get("multi_az")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                // A Multi-AZ DB instance deployment bills the primary and the
                // standby, instance hours and storage alike
                // (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_OnDemandDBInstances.html).
                let copies = if multi_az { 2.0 } else { 1.0 };
                let az = if multi_az { "Multi-AZ" } else { "Single-AZ" };
                let compute = copies * hourly * h;
                line("instance", format!("{class} {az}"), compute, compute);
                let gb = count(r, "allocated_storage")?;
                let st = r
                    .props
                    .get("storage_type")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(DEFAULT_RDS_STORAGE_TYPE);
                let per_gb = *p.rds_storage_gb_month.get(st).ok_or_else(|| {
                    CostError::UnknownStorageType {
                        id: r.id.to_string(),
                        region: region.to_string(),
                        storage_type: st.to_string(),
                        date: t.date.clone(),
                    }
                })?;
                let storage = copies * gb * per_gb;
                let what = if multi_az {
                    format!("{gb} GiB {st} x 2 (Multi-AZ)")
                } else {
                    format!("{gb} GiB {st}")
                };
                line("storage", what, storage, storage);
            }
            vpc_endpoint::KIND => {
                let interface = r.props.get("type").and_then(Value::as_str) == Some("Interface");
                let zones = r
                    .props
                    .get("subnet_ids")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                match (interface, p.interface_endpoint_az_hour) {
                    (false, _) => line("hourly", "gateway endpoint (free)".to_string(), 0.0, 0.0),
                    (true, Some(price)) => {
                        let c = zones as f64 * price * h;
                        line(
                            "hourly",
                            format!(
                                "interface endpoint in {zones} zones, data processed not counted"
                            ),
                            c,
                            c,
                        );
                    }
                    (true, None) => est.unpriced.push(r.id.to_string()),
                }
            }
            nat_gateway::KIND => {
                let c = p.nat_gateway_hour * h;
                line("hourly", "NAT gateway".to_string(), c, c);
            }
            // Every public IPv4 address is billed by the hour since
            // 2024-02-01, attached or not (https://aws.amazon.com/vpc/pricing/).
            elastic_ip::KIND => {
                let c = p.public_ipv4_hour * h;
                line("public IPv4", "Elastic IP address".to_string(), c, c);
            }
            load_balancer::KIND => {
                let c = p.alb_hour * h;
                line("hourly", "Application Load Balancer".to_string(), c, c);
                // CreateLoadBalancer's scheme defaults to internet-facing
                // (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html);
                // such a load balancer has a public address in each of its zones.
                let scheme = r
                    .props
                    .get("scheme")
                    .and_then(Value::as_str)
                    .unwrap_or("internet-facing");
                if scheme == "internet-facing" {
                    let zones = r
                        .props
                        .get("subnets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    let c = zones as f64 * p.public_ipv4_hour * h;
                    line(
                        "public IPv4",
                        format!("{zones} x public IPv4 address (one per zone)"),
                        c,
                        c,
                    );
                }
            }
            efs_file_system::KIND => line(
                "storage",
                format!(
                    "EFS Standard, usage-based at ${}/GB-month: 0 GB counted",
                    usd(p.efs_standard_gb_month)
                ),
                0.0,
                0.0,
            ),
            s3::BUCKET => line(
                "storage",
                format!(
                    "S3 Standard, usage-based at ${}/GB-month: 0 GB counted",
                    usd(p.s3_standard_gb_month)
                ),
                0.0,
                0.0,
            ),
            k if FREE_KINDS.contains(&k) => {}
            _ => est.unpriced.push(r.id.to_string()),
        }
    }
    est.total_min = est.lines.iter().map(|l| l.monthly_min).sum();
    est.total_max = est.lines.iter().map(|l| l.monthly_max).sum();
    Ok(est)
}

fn region_prices(region: &str) -> Result<&'static RegionPrices, CostError> {
    let t = table();
    t.regions
        .get(region)
        .ok_or_else(|| CostError::UnknownRegion {
            region: region.to_string(),
            date: t.date.clone(),
            covered: covered_regions().join(", "),
        })
}

/// A non-negative whole number property, as a float to multiply prices by.
fn count(r: &Priced, key: &'static str) -> Result<f64, CostError> {
    r.props
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| n as f64)
        .ok_or(CostError::BadProp {
            id: r.id.to_string(),
            key,
            expected: "a non-negative whole number",
        })
}

/// `2-6`, or `2` when the group has a fixed size.
fn sizes(min: f64, max: f64) -> String {
    if min == max {
        format!("{min}")
    } else {
        format!("{min}-{max}")
    }
}

/// The launch template an Auto Scaling group launches: a desired group
/// refers to it by logical id, an observed one by the provider's id; a set
/// with a single template can only mean that one.
fn launch_template_of<'a>(asg: &Priced, all: &[Priced<'a>]) -> Result<Priced<'a>, CostError> {
    let templates: Vec<&Priced<'a>> = all
        .iter()
        .filter(|r| r.kind == launch_template::KIND)
        .collect();
    let named = asg.props.get("launch_template_id");
    let found = match named {
        Some(v) => match refs::as_ref(v) {
            Some((id, _)) => templates.iter().find(|t| t.id == id),
            None => v
                .as_str()
                .and_then(|pid| templates.iter().find(|t| t.physical_id == Some(pid))),
        },
        None => None,
    };
    match (found, templates.as_slice()) {
        (Some(t), _) => Ok(**t),
        (None, [only]) => Ok(**only),
        _ => Err(CostError::NoLaunchTemplate {
            id: asg.id.to_string(),
        }),
    }
}

/// The stack's estimated monthly cost before and after a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub region: String,
    pub currency: String,
    pub hours_per_month: f64,
    /// The month the price table's figures were taken.
    pub table_date: String,
    pub table_source: String,
    pub before: Estimate,
    pub after: Estimate,
    /// `after.total_min - before.total_min`.
    #[serde(serialize_with = "money")]
    pub increase_min: f64,
    /// `after.total_max - before.total_max`: what [`exceeds`] checks.
    #[serde(serialize_with = "money")]
    pub increase_max: f64,
    pub not_counted: Vec<String>,
}

/// Prices what exists (`before`) and what the stack wants (`after`).
pub fn compare<'a, 'b, B: Into<Priced<'a>>, A: Into<Priced<'b>>>(
    region: &str,
    before: impl IntoIterator<Item = B>,
    after: impl IntoIterator<Item = A>,
) -> Result<Comparison, CostError> {
    let before = estimate(region, before)?;
    let after = estimate(region, after)?;
    let t = table();
    let backup = region_prices(region)?.rds_backup_gb_month;
    let not_counted = NOT_COUNTED
        .iter()
        .map(|s| {
            if s.starts_with("RDS backup storage") {
                format!("{s} (beyond it: ${}/GB-month in {region})", usd(backup))
            } else {
                s.to_string()
            }
        })
        .collect();
    Ok(Comparison {
        region: region.to_string(),
        currency: t.currency.clone(),
        hours_per_month: t.hours_per_month,
        table_date: t.date.clone(),
        table_source: t.source.clone(),
        increase_min: after.total_min - before.total_min,
        increase_max: after.total_max - before.total_max,
        before,
        after,
        not_counted,
    })
}

/// Whether the plan raises the monthly cost at the groups' maximum sizes by
/// more than `max_increase_usd`. The increase is rounded to the cent first,
/// so a change of exactly the limit passes.
pub fn exceeds(c: &Comparison, max_increase_usd: f64) -> bool {
    (c.increase_max * 100.0).round() / 100.0 > max_increase_usd
}

/// One row of a rendered comparison: a resource's item before and after.
struct Row<'c> {
    id: &'c str,
    item: &'c str,
    detail: String,
    before: Option<&'c CostLine>,
    after: Option<&'c CostLine>,
}

/// A unit price: `0.30`, `0.023`.
fn usd(v: f64) -> String {
    let cents = format!("{v:.2}");
    if cents.parse::<f64>() == Ok(v) {
        cents
    } else {
        format!("{v}")
    }
}

fn amount(min: f64, max: f64) -> String {
    if (min - max).abs() < 0.005 {
        format!("{min:.2}")
    } else {
        format!("{min:.2}..{max:.2}")
    }
}

fn change(min: f64, max: f64) -> String {
    if (min - max).abs() < 0.005 {
        format!("{min:+.2}")
    } else {
        format!("{min:+.2}..{max:+.2}")
    }
}

impl Comparison {
    /// Rows in the order of `after`, then what only `before` has.
    fn rows(&self) -> Vec<Row<'_>> {
        let key = |l: &CostLine| (l.id.clone(), l.item.clone());
        let before: BTreeMap<(String, String), &CostLine> =
            self.before.lines.iter().map(|l| (key(l), l)).collect();
        let mut rows: Vec<Row> = self
            .after
            .lines
            .iter()
            .map(|a| {
                let b = before.get(&key(a)).copied();
                let detail = match b {
                    Some(b) if b.what != a.what => format!("{} -> {}", b.what, a.what),
                    _ => a.what.clone(),
                };
                Row {
                    id: &a.id,
                    item: &a.item,
                    detail,
                    before: b,
                    after: Some(a),
                }
            })
            .collect();
        for b in &self.before.lines {
            if !self
                .after
                .lines
                .iter()
                .any(|a| a.id == b.id && a.item == b.item)
            {
                rows.push(Row {
                    id: &b.id,
                    item: &b.item,
                    detail: format!("{} (removed)", b.what),
                    before: Some(b),
                    after: None,
                });
            }
        }
        rows
    }

    fn cells(&self) -> (Vec<[String; 6]>, [String; 6]) {
        let cell = |l: Option<&CostLine>| {
            l.map_or("-".to_string(), |l| amount(l.monthly_min, l.monthly_max))
        };
        let body = self
            .rows()
            .into_iter()
            .map(|r| {
                let (bmin, bmax) = r
                    .before
                    .map_or((0.0, 0.0), |l| (l.monthly_min, l.monthly_max));
                let (amin, amax) = r
                    .after
                    .map_or((0.0, 0.0), |l| (l.monthly_min, l.monthly_max));
                [
                    r.id.to_string(),
                    r.item.to_string(),
                    r.detail,
                    cell(r.before),
                    cell(r.after),
                    change(amin - bmin, amax - bmax),
                ]
            })
            .collect();
        let total = [
            "total".to_string(),
            String::new(),
            String::new(),
            amount(self.before.total_min, self.before.total_max),
            amount(self.after.total_min, self.after.total_max),
            change(self.increase_min, self.increase_max),
        ];
        (body, total)
    }

    fn heading(&self) -> String {
        format!(
            "Estimated monthly cost in {} ({}, on-demand list prices of {}, {} hours a month)",
            self.region, self.currency, self.table_date, self.hours_per_month
        )
    }

    fn unpriced(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .before
            .unpriced
            .iter()
            .chain(&self.after.unpriced)
            .map(String::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A table for the terminal.
    pub fn render_text(&self) -> String {
        const HEAD: [&str; 6] = ["RESOURCE", "ITEM", "DETAIL", "BEFORE", "AFTER", "CHANGE"];
        let (body, total) = self.cells();
        let mut width = HEAD.map(|h| h.chars().count());
        for row in body.iter().chain([&total]) {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String; 6]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                let pad = w - c.chars().count();
                if i >= 3 {
                    // Amounts align right.
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                }
                if i < 5 {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = self.heading();
        out.push('\n');
        out.push_str(&line(&HEAD.map(String::from)));
        out.push('\n');
        for row in &body {
            out.push_str(&line(row));
            out.push('\n');
        }
        out.push_str(&line(&total));
        out.push('\n');
        for id in self.unpriced() {
            let _ = writeln!(out, "Not priced (unknown kind): {id}");
        }
        out.push_str("Not counted:\n");
        for n in &self.not_counted {
            let _ = writeln!(out, "  - {n}");
        }
        out
    }

    /// A markdown table, for pull requests and chat.
    pub fn render_markdown(&self) -> String {
        let (body, total) = self.cells();
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!("**{}**\n\n", self.heading());
        out.push_str("| Resource | Item | Detail | Before | After | Change |\n");
        out.push_str("|---|---|---|---:|---:|---:|\n");
        for r in &body {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                esc(&r[0]),
                esc(&r[1]),
                esc(&r[2]),
                r[3],
                r[4],
                r[5]
            );
        }
        let _ = writeln!(
            out,
            "| **total** | | | **{}** | **{}** | **{}** |",
            total[3], total[4], total[5]
        );
        let unpriced = self.unpriced();
        if !unpriced.is_empty() {
            let _ = writeln!(
                out,
                "\nNot priced (unknown kind): {}",
                unpriced
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push_str("\nNot counted:\n");
        for n in &self.not_counted {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out, "\nPrices: {}", self.table_source);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Stack;
    use crate::topology::{desired, AppFacts, Facts};
    use std::path::Path;

    /// Hours in the month the estimates use.
    const H: f64 = 730.0;

    fn stack(file: &str) -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("stacks")
            .join(file);
        crate::stack::load(&path).unwrap()
    }

    fn facts(region: &str) -> Facts {
        Facts {
            zones: vec![format!("{region}a"), format!("{region}b")],
            app: Some(AppFacts {
                region: region.into(),
                account: "123456789012".into(),
                ami: "ami-0123456789abcdef0".into(),
                binary: "bookstore".into(),
                sha256: "ab".repeat(32),
                commit: None,
                kept: Vec::new(),
                pinned: None,
                hosted_zone_id: Some("Z123".into()),
            }),
        }
    }

    fn region(s: &Stack) -> String {
        s.region.clone().expect("the stack names its region")
    }

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    fn line<'e>(e: &'e Estimate, id: &str, item: &str) -> &'e CostLine {
        e.lines
            .iter()
            .find(|l| l.id == id && l.item == item)
            .unwrap_or_else(|| panic!("no line {id}/{item} in {:?}", e.lines))
    }

    #[test]
    fn the_table_covers_its_regions_and_says_its_date() {
        assert_eq!(covered_regions(), ["eu-west-1", "us-east-1", "us-west-2"]);
        assert_eq!(table_date(), "2026-11");
        assert!(table_source().contains("on-demand"));
        assert_eq!(table().hours_per_month, H);
        // Every region prices the same instance types and classes.
        let r = &table().regions;
        for p in r.values() {
            assert_eq!(
                p.ec2_hour.keys().collect::<Vec<_>>(),
                r["us-east-1"].ec2_hour.keys().collect::<Vec<_>>()
            );
            assert_eq!(
                p.rds_mysql_hour.keys().collect::<Vec<_>>(),
                r["us-east-1"].rds_mysql_hour.keys().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn demo_stack_monthly_cost() {
        let s = stack("demo.toml");
        let rg = region(&s);
        assert_eq!(rg, "us-east-1");
        let e = estimate(&rg, &desired(&s, &facts(&rg))).unwrap();
        // us-east-1: 1-2 x t3.micro at $0.0104/h with an 8 GiB gp3 root
        // volume at $0.08/GB-month; db.t3.micro Single-AZ at $0.017/h with
        // 20 GB gp3 at $0.115; one NAT gateway at $0.045/h and its Elastic
        // IP at $0.005/h; the load balancer at $0.0225/h with one public
        // address in each of 2 zones at $0.005/h.
        let fixed = 0.017 * H + 20.0 * 0.115 + 0.045 * H + 0.005 * H + 0.0225 * H + 2.0 * 0.005 * H;
        let per_instance = 0.0104 * H + 8.0 * 0.08;
        close(e.total_min, fixed + per_instance);
        close(e.total_max, fixed + 2.0 * per_instance);
        // The same in round figures.
        assert_eq!(format!("{:.2}", e.total_min), "83.17");
        assert_eq!(format!("{:.2}", e.total_max), "91.40");
        assert_eq!(line(&e, "asg", "instances").what, "1-2 x t3.micro");
        assert_eq!(line(&e, "db", "instance").what, "db.t3.micro Single-AZ");
        assert_eq!(line(&e, "db", "storage").what, "20 GiB gp3");
        close(line(&e, "nat-a", "hourly").monthly_max, 0.045 * H);
        assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
    }

    #[test]
    fn endpoints_cost_per_zone_and_replace_the_nat_gateway() {
        let s = stack("demo.toml");
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/demo.toml"))
                .unwrap()
                .replace("nat = \"single\"", "nat = \"none\"\nendpoints = true");
        let none = crate::stack::parse(Path::new("demo.toml"), &text).unwrap();
        let with_nat = estimate("us-east-1", &desired(&s, &facts("us-east-1"))).unwrap();
        let e = estimate("us-east-1", &desired(&none, &facts("us-east-1"))).unwrap();
        // Five interface endpoints in 2 zones at $0.01/h each; the S3
        // gateway endpoint is free.
        for svc in [
            "ssm",
            "ssmmessages",
            "ec2messages",
            "secretsmanager",
            "logs",
        ] {
            close(
                line(&e, &format!("vpce-{svc}"), "hourly").monthly_max,
                2.0 * 0.01 * H,
            );
        }
        close(line(&e, "vpce-s3", "hourly").monthly_max, 0.0);
        // The NAT gateway and its address are gone.
        let nat = 0.045 * H + 0.005 * H;
        close(e.total_min, with_nat.total_min - nat + 10.0 * 0.01 * H);
        assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
        // A region without the figure says so.
        let eu = estimate("eu-west-1", &desired(&none, &facts("eu-west-1"))).unwrap();
        assert!(
            eu.unpriced.contains(&"vpce-ssm".to_string()),
            "{:?}",
            eu.unpriced
        );
        assert!(!eu.unpriced.contains(&"vpce-s3".to_string()));
    }

    #[test]
    fn production_stack_monthly_cost() {
        let s = stack("production.toml");
        let rg = region(&s);
        let e = estimate(&rg, &desired(&s, &facts(&rg))).unwrap();
        // us-east-1: 2-6 x t3.small at $0.0208/h, 8 GiB gp3 root each at
        // $0.08; db.t3.medium Multi-AZ: 2 x $0.068/h and 2 x 50 GB gp3 at
        // $0.115; 2 NAT gateways at $0.045/h and their 2 Elastic IPs at
        // $0.005/h; the load balancer at $0.0225/h with 2 public addresses.
        let fixed = 2.0 * 0.068 * H
            + 2.0 * 50.0 * 0.115
            + 2.0 * 0.045 * H
            + 2.0 * 0.005 * H
            + 0.0225 * H
            + 2.0 * 0.005 * H;
        let per_instance = 0.0208 * H + 8.0 * 0.08;
        close(e.total_min, fixed + 2.0 * per_instance);
        close(e.total_max, fixed + 6.0 * per_instance);
        assert_eq!(format!("{:.2}", e.total_min), "239.15");
        assert_eq!(format!("{:.2}", e.total_max), "302.45");
        assert_eq!(line(&e, "asg", "instances").what, "2-6 x t3.small");
        assert_eq!(line(&e, "db", "instance").what, "db.t3.medium Multi-AZ");
        close(line(&e, "db", "storage").monthly_min, 2.0 * 50.0 * 0.115);
        close(line(&e, "lb", "public IPv4").monthly_min, 2.0 * 0.005 * H);
        // Usage-based storage is listed at nothing.
        close(line(&e, "efs", "storage").monthly_max, 0.0);
        close(line(&e, "artifacts", "storage").monthly_max, 0.0);
    }

    #[test]
    fn demo_stack_in_eu_west_1_uses_that_regions_prices() {
        let s = stack("demo.toml");
        let e = estimate("eu-west-1", &desired(&s, &facts("eu-west-1"))).unwrap();
        // eu-west-1: t3.micro $0.0114/h, gp3 $0.088; db.t3.micro $0.018/h,
        // RDS gp3 $0.127; NAT $0.048/h; ALB $0.0252/h; IPv4 $0.005/h.
        let fixed = 0.018 * H + 20.0 * 0.127 + 0.048 * H + 0.005 * H + 0.0252 * H + 2.0 * 0.005 * H;
        let per_instance = 0.0114 * H + 8.0 * 0.088;
        close(e.total_min, fixed + per_instance);
        close(e.total_max, fixed + 2.0 * per_instance);
    }

    fn production_change(from: &str, to: &str) -> Comparison {
        let mut s = stack("production.toml");
        let rg = region(&s);
        s.app.instance_type = from.into();
        let before = desired(&s, &facts(&rg));
        s.app.instance_type = to.into();
        let after = desired(&s, &facts(&rg));
        compare(&rg, &before, &after).unwrap()
    }

    #[test]
    fn an_instance_type_change_shows_the_increase() {
        let c = production_change("t3.small", "t3.medium");
        // t3.medium $0.0416/h against t3.small $0.0208/h, 2 to 6 instances.
        close(c.increase_min, 2.0 * (0.0416 - 0.0208) * H);
        close(c.increase_max, 6.0 * (0.0416 - 0.0208) * H);
        assert_eq!(format!("{:.2}", c.increase_max), "91.10");
        assert_eq!(c.table_date, "2026-11");
        let text = c.render_text();
        assert!(text.contains("2-6 x t3.small -> 2-6 x t3.medium"), "{text}");
        assert!(text.contains("+30.37..+91.10"), "{text}");
        // Nothing else changes.
        let changed: Vec<&CostLine> = c
            .after
            .lines
            .iter()
            .filter(|a| !c.before.lines.contains(a))
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0].item, "instances");
    }

    #[test]
    fn the_limit_applies_to_the_increase_at_maximum_size() {
        let c = production_change("t3.small", "t3.medium");
        // The increase at maximum size is 6 x 0.0208 x 730 = 91.104.
        assert!(exceeds(&c, 91.0));
        assert!(
            exceeds(&c, 30.0),
            "the minimum-size increase does not decide"
        );
        assert!(!exceeds(&c, 91.10), "an increase equal to the limit passes");
        assert!(!exceeds(&c, 100.0));
        let down = production_change("t3.medium", "t3.small");
        close(down.increase_max, -6.0 * (0.0416 - 0.0208) * H);
        assert!(!exceeds(&down, 0.0));
    }

    #[test]
    fn a_new_stack_costs_nothing_before() {
        let s = stack("demo.toml");
        let rg = region(&s);
        let after = desired(&s, &facts(&rg));
        let c = compare(&rg, Vec::<&Desired>::new(), &after).unwrap();
        close(c.before.total_max, 0.0);
        close(c.increase_min, c.after.total_min);
        close(c.increase_max, c.after.total_max);
        let text = c.render_text();
        assert!(text.contains("total"), "{text}");
    }

    #[test]
    fn an_unknown_region_is_refused_naming_the_covered_ones() {
        let s = stack("demo.toml");
        let d = desired(&s, &facts("ap-south-2"));
        let e = estimate("ap-south-2", &d).unwrap_err();
        assert!(matches!(&e, CostError::UnknownRegion { region, .. } if region == "ap-south-2"));
        let msg = e.to_string();
        assert!(
            msg.contains("ap-south-2") && msg.contains("eu-west-1, us-east-1, us-west-2"),
            "{msg}"
        );
        assert!(compare("ap-south-2", &d, &d).is_err());
    }

    #[test]
    fn an_unknown_instance_type_or_class_is_named() {
        let mut s = stack("production.toml");
        s.app.instance_type = "t3.huge".into();
        let e = estimate("us-east-1", &desired(&s, &facts("us-east-1"))).unwrap_err();
        assert!(e.to_string().contains("t3.huge"), "{e}");
        assert!(matches!(e, CostError::UnknownInstanceType { .. }));

        let mut s = stack("production.toml");
        s.database.instance_class = "db.x9.large".into();
        let e = estimate("us-east-1", &desired(&s, &facts("us-east-1"))).unwrap_err();
        assert!(e.to_string().contains("db.x9.large"), "{e}");
        assert!(matches!(e, CostError::UnknownDbClass { .. }));
    }

    #[test]
    fn observed_resources_are_priced_like_desired_ones() {
        // As read back from the cloud: the group names its template by the
        // provider's id, and another stack's template is beside it.
        let observed = [
            Observed::new(launch_template::KIND, "other-template", "lt-0aaa")
                .prop("instance_type", "m5.2xlarge"),
            Observed::new(launch_template::KIND, "launch-template", "lt-0bbb")
                .prop("instance_type", "t3.small"),
            Observed::new(autoscaling_group::KIND, "asg", "bookstore-prod-app")
                .prop("launch_template_id", "lt-0bbb")
                .prop("min", 2)
                .prop("max", 6),
            Observed::new(db_instance::KIND, "db", "bookstore-prod-db")
                .prop("engine", "mysql")
                .prop("instance_class", "db.t3.medium")
                .prop("allocated_storage", 50)
                .prop("multi_az", true),
        ];
        let e = estimate("us-east-1", &observed).unwrap();
        close(line(&e, "asg", "instances").monthly_min, 2.0 * 0.0208 * H);
        close(line(&e, "asg", "instances").monthly_max, 6.0 * 0.0208 * H);
        close(
            line(&e, "asg", "root volumes").monthly_max,
            6.0 * 8.0 * 0.08,
        );
        close(line(&e, "db", "instance").monthly_max, 2.0 * 0.068 * H);

        // The desired production stack prices its group and database the same.
        let s = stack("production.toml");
        let d = estimate("us-east-1", &desired(&s, &facts("us-east-1"))).unwrap();
        for (id, item) in [
            ("asg", "instances"),
            ("asg", "root volumes"),
            ("db", "instance"),
            ("db", "storage"),
        ] {
            assert_eq!(line(&d, id, item), line(&e, id, item));
        }

        // A group whose template cannot be told apart is an error, not a guess.
        let lost = [
            observed[0].clone(),
            observed[1].clone(),
            Observed::new(autoscaling_group::KIND, "asg", "x")
                .prop("launch_template_id", "lt-0ccc")
                .prop("min", 1)
                .prop("max", 1),
        ];
        assert_eq!(
            estimate("us-east-1", &lost).unwrap_err(),
            CostError::NoLaunchTemplate { id: "asg".into() }
        );
    }

    #[test]
    fn every_rendering_says_what_is_not_counted() {
        let c = production_change("t3.small", "t3.medium");
        let text = c.render_text();
        let md = c.render_markdown();
        let json = serde_json::to_value(&c).unwrap();
        for n in NOT_COUNTED {
            assert!(text.contains(n), "text lacks {n}");
            assert!(md.contains(n), "markdown lacks {n}");
        }
        assert!(
            text.contains("(beyond it: $0.095/GB-month in us-east-1)"),
            "{text}"
        );
        assert!(md.contains("usage-based at $0.30/GB-month"), "{md}");
        assert_eq!(
            json["not_counted"].as_array().unwrap().len(),
            NOT_COUNTED.len()
        );
        // Totals: before 239.153 at the minimum, after 302.449 + 91.104 at the maximum.
        assert!(text.contains("239.15..302.45"), "{text}");
        assert!(
            md.contains(
                "| **total** | | | **239.15..302.45** | **269.52..393.55** | **+30.37..+91.10** |"
            ),
            "{md}"
        );
        assert!(md.contains("|---|---|---|---:|---:|---:|"));
        assert_eq!(json["increase_max"], serde_json::json!(91.104));
        assert_eq!(json["after"]["total_max"], serde_json::json!(393.553));
        assert_eq!(json["table_date"], "2026-11");
        assert_eq!(json["region"], "us-east-1");
        assert!(json["after"]["lines"][0]["monthly_min"].is_f64());
    }
}
