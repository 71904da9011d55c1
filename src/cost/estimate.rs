//! The monthly estimate of a set of resources: each resource kind's priced
//! parts, from the price table.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::prices::{region_prices, table, usd, RegionPrices};
use super::{CostError, Priced};
use crate::engine::refs;
use crate::resources::{
    autoscaling_group, boundary, certificate, db_instance, db_subnet_group, dns_alias,
    efs_access_point, efs_file_system, elastic_ip, iam, internet_gateway, launch_template,
    listener, load_balancer, log_group, nat_gateway, route_table, s3, security_group, subnet,
    target_group, vpc, vpc_endpoint,
};

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

/// Serializes money rounded to a hundredth of a cent: enough to add up, no
/// floating-point noise.
pub(super) fn money<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
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
/// ingestion and storage are usage-based: see [`super::NOT_COUNTED`]).
const FREE_KINDS: &[&str] = &[
    vpc::KIND,
    subnet::KIND,
    internet_gateway::KIND,
    route_table::KIND,
    security_group::KIND,
    iam::ROLE,
    iam::PROFILE,
    boundary::KIND,
    listener::KIND,
    target_group::KIND,
    certificate::KIND,
    dns_alias::KIND,
    db_subnet_group::KIND,
    crate::resources::db_parameter_group::KIND,
    efs_access_point::KIND,
    crate::resources::efs_policy::KIND,
    launch_template::KIND,
    // Data Lifecycle Manager is free; its snapshots are priced with the volume.
    crate::resources::dlm_policy::KIND,
    s3::ARTIFACT,
    log_group::KIND,
    // The repository's storage is usage-based (NOT_COUNTED); an image is
    // stored in it. Clusters, task definitions and scaling are free: the
    // tasks are priced on the service.
    crate::resources::ecr::KIND,
    crate::resources::ecr::IMAGE_KIND,
    crate::resources::ecs_cluster::KIND,
    crate::resources::ecs_task_definition::KIND,
    crate::resources::service_scaling::KIND,
];

/// Prices `resources` in `region`.
pub fn estimate<'a, R: Into<Priced<'a>>>(
    region: &str,
    resources: impl IntoIterator<Item = R>,
) -> Result<Estimate, CostError> {
    let t = table();
    let rates = Rates {
        region,
        p: region_prices(region)?,
        h: t.hours_per_month,
        date: &t.date,
    };
    let all: Vec<Priced<'a>> = resources.into_iter().map(Into::into).collect();
    let mut est = Estimate::default();
    for r in &all {
        match rates.price(r, &all)? {
            Some(parts) => est.lines.extend(parts.into_iter().map(|p| CostLine {
                id: r.id.to_string(),
                kind: r.kind.to_string(),
                item: p.item.to_string(),
                what: p.what,
                monthly_min: p.min,
                monthly_max: p.max,
            })),
            None => est.unpriced.push(r.id.to_string()),
        }
    }
    est.total_min = est.lines.iter().map(|l| l.monthly_min).sum();
    est.total_max = est.lines.iter().map(|l| l.monthly_max).sum();
    Ok(est)
}

/// One priced part of a resource, before it is a [`CostLine`].
pub(super) struct Part {
    pub(super) item: &'static str,
    pub(super) what: String,
    pub(super) min: f64,
    pub(super) max: f64,
}

/// A part whose monthly cost does not depend on a group's size.
fn flat(item: &'static str, what: String, monthly: f64) -> Part {
    Part {
        item,
        what,
        min: monthly,
        max: monthly,
    }
}

/// One region's prices, at the table's hours a month.
struct Rates<'t> {
    region: &'t str,
    p: &'static RegionPrices,
    h: f64,
    /// The table's date, for the errors naming a missing price.
    date: &'static str,
}

impl Rates<'_> {
    /// The parts of one resource (none for a free kind), or `None` when its
    /// kind is unknown or the table lacks its figure. `all` is every
    /// resource being priced: an Auto Scaling group's launch template is
    /// among them.
    fn price(&self, r: &Priced, all: &[Priced]) -> Result<Option<Vec<Part>>, CostError> {
        let (p, h) = (self.p, self.h);
        Ok(Some(match r.kind {
            autoscaling_group::KIND => self.group(r, all)?,
            crate::resources::ecs_service::KIND => match super::fargate::tasks(p, self.h, r, all) {
                Some(parts) => parts,
                None => return Ok(None),
            },
            db_instance::KIND => self.database(r)?,
            vpc_endpoint::KIND => match self.endpoint(r) {
                Some(parts) => parts,
                None => return Ok(None),
            },
            nat_gateway::KIND => vec![flat(
                "hourly",
                "NAT gateway".to_string(),
                p.nat_gateway_hour * h,
            )],
            // Every public IPv4 address is billed by the hour since
            // 2024-02-01, attached or not (https://aws.amazon.com/vpc/pricing/).
            elastic_ip::KIND => vec![flat(
                "public IPv4",
                "Elastic IP address".to_string(),
                p.public_ipv4_hour * h,
            )],
            load_balancer::KIND => self.load_balancer(r),
            efs_file_system::KIND => vec![flat(
                "storage",
                format!(
                    "EFS Standard, usage-based at ${}/GB-month: 0 GB counted",
                    usd(p.efs_standard_gb_month)
                ),
                0.0,
            )],
            s3::BUCKET => vec![flat(
                "storage",
                format!(
                    "S3 Standard, usage-based at ${}/GB-month: 0 GB counted",
                    usd(p.s3_standard_gb_month)
                ),
                0.0,
            )],
            crate::resources::secret::KIND => match p.secret_month {
                Some(price) => vec![flat(
                    "monthly",
                    "Secrets Manager secret, API calls not counted".to_string(),
                    price,
                )],
                None => return Ok(None),
            },
            // The data volume, and its snapshots: the first is a full
            // copy, the daily ones after it hold what changed (usage-based).
            crate::resources::volume::KIND => {
                let gb = r
                    .props
                    .get("size_gib")
                    .and_then(Value::as_f64)
                    .unwrap_or_default();
                let mut parts = vec![flat(
                    "storage",
                    format!(
                        "EBS gp3 volume, {gb} GB at ${}/GB-month",
                        usd(p.ebs_gp3_gb_month)
                    ),
                    gb * p.ebs_gp3_gb_month,
                )];
                if let Some(price) = p.ebs_snapshot_gb_month {
                    parts.push(flat(
                        "snapshots",
                        format!(
                            "EBS snapshots at ${}/GB-month: one full copy ({gb} GB) counted, daily changes not",
                            usd(price)
                        ),
                        gb * price,
                    ));
                }
                parts
            }
            k if FREE_KINDS.contains(&k) => Vec::new(),
            _ => return Ok(None),
        }))
    }

    /// An Auto Scaling group: its instances and their root volumes (and
    /// public addresses, when its template asks for them) at its minimum
    /// and maximum size.
    fn group(&self, r: &Priced, all: &[Priced]) -> Result<Vec<Part>, CostError> {
        let (p, h) = (self.p, self.h);
        let min = count(r, "min")?;
        let max = count(r, "max")?;
        let lt = launch_template_of(r, all)?;
        let ty = str_prop(&lt, "instance_type")?;
        let hourly = *p
            .ec2_hour
            .get(ty)
            .ok_or_else(|| CostError::UnknownInstanceType {
                id: r.id.to_string(),
                region: self.region.to_string(),
                instance_type: ty.to_string(),
                date: self.date.to_string(),
            })?;
        let n = sizes(min, max);
        let each = |item, what, monthly: f64| Part {
            item,
            what,
            min: min * monthly,
            max: max * monthly,
        };
        let mut parts = vec![Part {
            item: "instances",
            what: format!("{n} x {ty}"),
            min: min * hourly * h,
            max: max * hourly * h,
        }];
        let gib = lt
            .props
            .get("root_volume_gib")
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_ROOT_VOLUME_GIB);
        parts.push(each(
            "root volumes",
            format!("{n} x {gib} GiB gp3 root volume"),
            gib * p.ebs_gp3_gb_month,
        ));
        // Instances in the stack's private subnets have no public
        // address; a template asking for one pays for it.
        if lt.props.get("associate_public_ip_address") == Some(&Value::Bool(true)) {
            parts.push(each(
                "public IPv4",
                format!("{n} x public IPv4 address"),
                p.public_ipv4_hour * h,
            ));
        }
        Ok(parts)
    }

    /// An RDS for MySQL instance: its hours and its storage.
    fn database(&self, r: &Priced) -> Result<Vec<Part>, CostError> {
        let (p, h) = (self.p, self.h);
        if let Some(engine) = r.props.get("engine").and_then(Value::as_str) {
            if !engine.is_empty() && engine != "mysql" {
                return Err(CostError::UnsupportedEngine {
                    id: r.id.to_string(),
                    engine: engine.to_string(),
                });
            }
        }
        let class = str_prop(r, "instance_class")?;
        let hourly = *p
            .rds_mysql_hour
            .get(class)
            .ok_or_else(|| CostError::UnknownDbClass {
                id: r.id.to_string(),
                region: self.region.to_string(),
                class: class.to_string(),
                date: self.date.to_string(),
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
        let compute = flat("instance", format!("{class} {az}"), copies * hourly * h);
        let gb = count(r, "allocated_storage")?;
        let st = r
            .props
            .get("storage_type")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_RDS_STORAGE_TYPE);
        let per_gb =
            *p.rds_storage_gb_month
                .get(st)
                .ok_or_else(|| CostError::UnknownStorageType {
                    id: r.id.to_string(),
                    region: self.region.to_string(),
                    storage_type: st.to_string(),
                    date: self.date.to_string(),
                })?;
        let what = if multi_az {
            format!("{gb} GiB {st} x 2 (Multi-AZ)")
        } else {
            format!("{gb} GiB {st}")
        };
        Ok(vec![compute, flat("storage", what, copies * gb * per_gb)])
    }

    /// A VPC endpoint: a gateway one is free, an interface one is billed
    /// per zone; `None` when the table lacks that figure for the region.
    fn endpoint(&self, r: &Priced) -> Option<Vec<Part>> {
        let interface = r.props.get("type").and_then(Value::as_str) == Some("Interface");
        let zones = list_len(r, "subnet_ids");
        match (interface, self.p.interface_endpoint_az_hour) {
            (false, _) => Some(vec![flat(
                "hourly",
                "gateway endpoint (free)".to_string(),
                0.0,
            )]),
            (true, Some(price)) => Some(vec![flat(
                "hourly",
                format!("interface endpoint in {zones} zones, data processed not counted"),
                zones as f64 * price * self.h,
            )]),
            (true, None) => None,
        }
    }

    /// An Application Load Balancer: its hours, and its public addresses
    /// when it faces the internet.
    fn load_balancer(&self, r: &Priced) -> Vec<Part> {
        let (p, h) = (self.p, self.h);
        let mut parts = vec![flat(
            "hourly",
            "Application Load Balancer".to_string(),
            p.alb_hour * h,
        )];
        // CreateLoadBalancer's scheme defaults to internet-facing
        // (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html);
        // such a load balancer has a public address in each of its zones.
        let scheme = r
            .props
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("internet-facing");
        if scheme == "internet-facing" {
            let zones = list_len(r, "subnets");
            parts.push(flat(
                "public IPv4",
                format!("{zones} x public IPv4 address (one per zone)"),
                zones as f64 * p.public_ipv4_hour * h,
            ));
        }
        parts
    }
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

/// A string property.
fn str_prop<'a>(r: &Priced<'a>, key: &'static str) -> Result<&'a str, CostError> {
    r.props
        .get(key)
        .and_then(Value::as_str)
        .ok_or(CostError::BadProp {
            id: r.id.to_string(),
            key,
            expected: "a string",
        })
}

/// How many items a list property has (0 when it has none).
fn list_len(r: &Priced, key: &str) -> usize {
    r.props
        .get(key)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::test_support::*;
    use crate::engine::Observed;
    use crate::topology::desired;
    use std::path::Path;

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
        // address in each of 2 zones at $0.005/h; the app user's secret at
        // $0.40 a month.
        let fixed =
            0.017 * H + 20.0 * 0.115 + 0.045 * H + 0.005 * H + 0.0225 * H + 2.0 * 0.005 * H + 0.40;
        let per_instance = 0.0104 * H + 8.0 * 0.08;
        close(e.total_min, fixed + per_instance);
        close(e.total_max, fixed + 2.0 * per_instance);
        // The same in round figures.
        assert_eq!(format!("{:.2}", e.total_min), "83.57");
        assert_eq!(format!("{:.2}", e.total_max), "91.80");
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
        // $0.005/h; the load balancer at $0.0225/h with 2 public addresses;
        // the app user's secret at $0.40 a month.
        let fixed = 2.0 * 0.068 * H
            + 2.0 * 50.0 * 0.115
            + 2.0 * 0.045 * H
            + 2.0 * 0.005 * H
            + 0.0225 * H
            + 2.0 * 0.005 * H
            + 0.40;
        let per_instance = 0.0208 * H + 8.0 * 0.08;
        close(e.total_min, fixed + 2.0 * per_instance);
        close(e.total_max, fixed + 6.0 * per_instance);
        assert_eq!(format!("{:.2}", e.total_min), "239.55");
        assert_eq!(format!("{:.2}", e.total_max), "302.85");
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
        let fixed =
            0.018 * H + 20.0 * 0.127 + 0.048 * H + 0.005 * H + 0.0252 * H + 2.0 * 0.005 * H + 0.40;
        let per_instance = 0.0114 * H + 8.0 * 0.088;
        close(e.total_min, fixed + per_instance);
        close(e.total_max, fixed + 2.0 * per_instance);
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
}
