//! The price table shipped with the tool (`src/cost/prices.json`), read once.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::CostError;

const PRICES_JSON: &str = include_str!("prices.json");

/// The price table as shipped.
#[derive(Debug, Deserialize)]
pub(super) struct PriceTable {
    pub date: String,
    pub source: String,
    pub currency: String,
    pub hours_per_month: f64,
    pub regions: BTreeMap<String, RegionPrices>,
}

/// One region's prices, in USD.
#[derive(Debug, Deserialize)]
pub(super) struct RegionPrices {
    /// EC2 on-demand Linux, per instance-hour, by instance type.
    pub ec2_hour: BTreeMap<String, f64>,
    /// RDS for MySQL Single-AZ, per instance-hour, by instance class.
    pub rds_mysql_hour: BTreeMap<String, f64>,
    /// RDS storage per GB-month (Single-AZ), by storage type.
    pub rds_storage_gb_month: BTreeMap<String, f64>,
    pub rds_backup_gb_month: f64,
    pub ebs_gp3_gb_month: f64,
    pub nat_gateway_hour: f64,
    pub alb_hour: f64,
    pub public_ipv4_hour: f64,
    pub efs_standard_gb_month: f64,
    pub s3_standard_gb_month: f64,
    /// An interface VPC endpoint, per hour per zone it is in
    /// (https://aws.amazon.com/privatelink/pricing/); gateway endpoints are
    /// free. Only where the table has the figure.
    #[serde(default)]
    pub interface_endpoint_az_hour: Option<f64>,
    /// A Secrets Manager secret, per month, API calls not counted
    /// (https://aws.amazon.com/secrets-manager/pricing/). Only where the
    /// table has the figure.
    #[serde(default)]
    pub secret_month: Option<f64>,
    /// EBS snapshots (standard tier), per GB-month
    /// (https://aws.amazon.com/ebs/pricing/). Only where the table has it.
    #[serde(default)]
    pub ebs_snapshot_gb_month: Option<f64>,
    /// Fargate (Linux, x86), per vCPU-hour and per GB of memory per hour
    /// (https://aws.amazon.com/fargate/pricing/). Only where the table has them.
    #[serde(default)]
    pub fargate_vcpu_hour: Option<f64>,
    #[serde(default)]
    pub fargate_gb_hour: Option<f64>,
}

pub(super) fn table() -> &'static PriceTable {
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

/// `region`'s prices, or an error naming the regions the table covers.
pub(super) fn region_prices(region: &str) -> Result<&'static RegionPrices, CostError> {
    let t = table();
    t.regions
        .get(region)
        .ok_or_else(|| CostError::UnknownRegion {
            region: region.to_string(),
            date: t.date.clone(),
            covered: covered_regions().join(", "),
        })
}

/// A unit price: `0.30`, `0.023`.
pub(super) fn usd(v: f64) -> String {
    let cents = format!("{v:.2}");
    if cents.parse::<f64>() == Ok(v) {
        cents
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::test_support::H;

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
}
