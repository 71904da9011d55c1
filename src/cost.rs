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
//!
//! The prices are data (`cost/prices.json`, read by `cost/prices.rs`);
//! `cost/estimate.rs` prices each resource kind; `cost/render.rs` writes a
//! comparison as text or markdown tables.

use serde::Serialize;
use thiserror::Error;

use crate::engine::{Desired, Observed, Props};

mod estimate;
mod fargate;
mod prices;
mod render;

use estimate::money;
use prices::{region_prices, table, usd};

pub use estimate::{
    estimate, CostLine, Estimate, DEFAULT_RDS_STORAGE_TYPE, DEFAULT_ROOT_VOLUME_GIB,
};
pub use prices::{covered_regions, table_date, table_source};

/// What the estimate leaves out; every rendering prints it.
pub const NOT_COUNTED: &[&str] = &[
    "data transfer (internet egress, cross-zone traffic) and NAT gateway data processing per GB",
    "load balancer capacity units (LCUs): only the load balancer's hourly charge is counted",
    "EFS storage and throughput, S3 storage and requests, and ECR image storage: usage-based, counted as 0 GB",
    "the CloudWatch alarms target tracking makes for a Fargate service's scaling",
    "RDS backup storage beyond the free allowance, which equals the provisioned storage: \
     automated backups within the retention period are assumed to fit in it",
    "the database's Secrets Manager secret (its managed master password), CloudWatch metrics, \
     alarms and logs, Route 53 hosted zone and queries",
    "taxes, the AWS Free Tier, Savings Plans and Reserved Instance discounts",
];

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

#[cfg(test)]
mod test_support {
    use super::*;
    use crate::stack::Stack;
    use crate::topology::{desired, AppFacts, Facts};
    use std::path::Path;

    /// Hours in the month the estimates use.
    pub(super) const H: f64 = 730.0;

    pub(super) fn stack(file: &str) -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("stacks")
            .join(file);
        crate::stack::load(&path).unwrap()
    }

    pub(super) fn facts(region: &str) -> Facts {
        Facts {
            zones: vec![format!("{region}a"), format!("{region}b")],
            app: Some(AppFacts {
                region: region.into(),
                account: "123456789012".into(),
                ami: "ami-0123456789abcdef0".into(),
                root_device: "/dev/xvda".into(),
                root_volume_gib: 8,
                binary: "bookstore".into(),
                sha256: "ab".repeat(32),
                commit: None,
                kept: Vec::new(),
                image: None,
                kept_images: Vec::new(),
                pinned: None,
                hosted_zone_id: Some("Z123".into()),
            }),
        }
    }

    pub(super) fn region(s: &Stack) -> String {
        s.region.clone().expect("the stack names its region")
    }

    pub(super) fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    pub(super) fn line<'e>(e: &'e Estimate, id: &str, item: &str) -> &'e CostLine {
        e.lines
            .iter()
            .find(|l| l.id == id && l.item == item)
            .unwrap_or_else(|| panic!("no line {id}/{item} in {:?}", e.lines))
    }

    pub(super) fn production_change(from: &str, to: &str) -> Comparison {
        let mut s = stack("production.toml");
        let rg = region(&s);
        s.app.instance_type = from.into();
        let before = desired(&s, &facts(&rg));
        s.app.instance_type = to.into();
        let after = desired(&s, &facts(&rg));
        compare(&rg, &before, &after).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::topology::desired;

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
}
