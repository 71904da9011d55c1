//! Stack files: TOML, typed, validated, defaults filled, before any API call.
//!
//! Every error names `file:line:column` and the key it is about.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde_spanned::Spanned;
use thiserror::Error;

/// A stack file error, located in the file.
#[derive(Debug, Error)]
pub struct StackError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// How private subnets reach the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nat {
    /// No NAT gateway: private subnets have no route out.
    None,
    /// One NAT gateway, in the first zone, shared by every private subnet.
    Single,
    /// One NAT gateway per zone: a zone outage does not cut the others off.
    PerAz,
}

/// Which layers a stack deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Everything: network, database, files, certificate, load balancer, instances.
    Full,
    /// Only the network layer (VPC, subnets, gateways, routes, security groups).
    Network,
}

/// What the instances' group scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMetric {
    /// Average CPU utilisation of the group, in percent.
    Cpu,
    /// Load balancer requests per instance per minute.
    Requests,
}

/// A validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub name: String,
    pub region: Option<String>,
    pub topology: Topology,
    pub network: Network,
    pub app: App,
    pub database: Database,
    pub domain: Option<Domain>,
    /// How long each kind of wait may last (`[timeouts]`).
    pub timeouts: Timeouts,
    /// The app's log group (`[logs]`).
    pub logs: Logs,
    /// The directory holding the stack file: relative paths in it start here.
    pub dir: PathBuf,
}

/// The log group the instances ship the app's journal to.
#[derive(Debug, Clone, PartialEq)]
pub struct Logs {
    /// Days CloudWatch Logs keeps events: one of
    /// [`crate::resources::log_group::RETENTION_DAYS`].
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub cidr: Ipv4Net,
    /// Explicit zone names, or `None` to take the first `az_count` the region offers.
    pub zones: Option<Vec<String>>,
    pub az_count: usize,
    pub nat: Nat,
    /// VPC endpoints for the AWS services the instances use (`[network]
    /// endpoints`): what they need without a NAT gateway.
    pub endpoints: bool,
    /// One per zone, in zone order.
    pub public_subnets: Vec<Ipv4Net>,
    pub private_subnets: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub port: u16,
    pub instance_type: String,
    /// An AMI id, or `None` for the latest Amazon Linux 2023 (from the public SSM parameter).
    pub ami: Option<String>,
    /// The `bookstore` binary to ship, or `None` for the one the workspace builds.
    pub binary: Option<PathBuf>,
    pub min_size: u32,
    pub desired_capacity: u32,
    pub max_size: u32,
    pub health_check_grace: u32,
    pub scaling_metric: ScalingMetric,
    pub scaling_target: f64,
    pub refresh_min_healthy: u32,
    pub refresh_warmup: u32,
    /// How many releases keep their artifact (and launch template version) for `rollback`.
    pub keep_releases: u32,
    pub data_dir: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub instance_class: String,
    pub allocated_storage: u32,
    pub engine_version: String,
    pub multi_az: bool,
    pub backup_retention_days: u32,
    pub name: String,
    pub username: String,
    pub apply_immediately: bool,
    pub final_snapshot: bool,
    pub deletion_protection: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub name: String,
    pub alternative_names: Vec<String>,
    /// A Route 53 hosted zone name (e.g. `example.com`) holding the domain.
    pub hosted_zone: Option<String>,
    /// Point the domain at the load balancer (needs `hosted_zone`).
    pub alias: bool,
    pub validation_timeout: u32,
}

/// How long `up` and `destroy` wait for AWS before giving up, by what they
/// wait for. Set in the optional `[timeouts]` table of the stack file, in
/// seconds (each a positive integer); the defaults follow the times AWS
/// documents, as recorded by Terraform's AWS provider defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// `database`: creating or modifying the RDS instance until it is
    /// available (default 2400 s = 40 min: a Multi-AZ MySQL instance takes
    /// 10 to 30 minutes to create, then backs up).
    pub database: Duration,
    /// `database_delete`: deleting the RDS instance, final snapshot
    /// included, until it is gone (default 3600 s = 60 min).
    pub database_delete: Duration,
    /// `nat_gateway`: a NAT gateway from pending to available (default
    /// 600 s = 10 min).
    pub nat_gateway: Duration,
    /// `load_balancer`: the application load balancer from provisioning to
    /// active (default 600 s = 10 min).
    pub load_balancer: Duration,
    /// `file_system`: the EFS file system and each mount target from
    /// creating to available (default 1800 s = 30 min).
    pub file_system: Duration,
    /// `instances`: the Auto Scaling group's instances in service and
    /// healthy (default 600 s = 10 min).
    pub instances: Duration,
    /// `instance_refresh`: an instance refresh replacing the instances after
    /// a launch template change (default 3600 s = 60 min).
    pub instance_refresh: Duration,
    /// `delete`: deleting any other resource, including retrying while AWS
    /// still reports it in use (a security group or subnet stays in use for
    /// minutes after the load balancer, NAT gateway or mount target in it is
    /// deleted) and waiting until it is gone (default 1800 s = 30 min).
    pub delete: Duration,
    /// Not a `[timeouts]` key: certificate validation, from
    /// `domain.validation_timeout`.
    pub certificate: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        Timeouts {
            database: min(40),
            database_delete: min(60),
            nat_gateway: min(10),
            load_balancer: min(10),
            file_system: min(30),
            instances: min(10),
            instance_refresh: min(60),
            delete: min(30),
            certificate: min(30),
        }
    }
}

// ---- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    stack: Option<RawStack>,
    #[serde(default)]
    network: Option<Spanned<RawNetwork>>,
    app: Option<RawApp>,
    topology: Option<Topology>,
    database: Option<RawDatabase>,
    domain: Option<Spanned<RawDomain>>,
    timeouts: Option<RawTimeouts>,
    logs: Option<RawLogs>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLogs {
    retention_days: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    database: Option<Spanned<i64>>,
    database_delete: Option<Spanned<i64>>,
    nat_gateway: Option<Spanned<i64>>,
    load_balancer: Option<Spanned<i64>>,
    file_system: Option<Spanned<i64>>,
    instances: Option<Spanned<i64>>,
    instance_refresh: Option<Spanned<i64>>,
    delete: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    cidr: Option<Spanned<String>>,
    zones: Option<Spanned<Vec<String>>>,
    az_count: Option<Spanned<i64>>,
    nat: Option<Spanned<Nat>>,
    endpoints: Option<bool>,
    public_subnets: Option<Spanned<Vec<Spanned<String>>>>,
    private_subnets: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApp {
    port: Option<Spanned<i64>>,
    instance_type: Option<Spanned<String>>,
    ami: Option<Spanned<String>>,
    binary: Option<String>,
    min_size: Option<Spanned<i64>>,
    desired_capacity: Option<Spanned<i64>>,
    max_size: Option<Spanned<i64>>,
    health_check_grace: Option<Spanned<i64>>,
    scaling_metric: Option<ScalingMetric>,
    scaling_target: Option<Spanned<f64>>,
    refresh_min_healthy: Option<Spanned<i64>>,
    refresh_warmup: Option<Spanned<i64>>,
    keep_releases: Option<Spanned<i64>>,
    data_dir: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    instance_class: Option<Spanned<String>>,
    allocated_storage: Option<Spanned<i64>>,
    engine_version: Option<Spanned<String>>,
    multi_az: Option<bool>,
    backup_retention_days: Option<Spanned<i64>>,
    name: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    apply_immediately: Option<bool>,
    final_snapshot: Option<bool>,
    deletion_protection: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    alternative_names: Vec<Spanned<String>>,
    hosted_zone: Option<Spanned<String>>,
    alias: Option<bool>,
    validation_timeout: Option<Spanned<i64>>,
}

/// Default VPC range.
pub const DEFAULT_CIDR: &str = "10.0.0.0/16";
/// Default number of availability zones.
pub const DEFAULT_AZ_COUNT: usize = 2;
/// Default port the app listens on.
pub const DEFAULT_APP_PORT: u16 = 8080;
/// Days the app's log group keeps events unless `[logs] retention_days` says otherwise.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;

/// Reads and validates a stack file.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|e| StackError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the stack file: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates stack file text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Stack, StackError> {
    let at = |offset: usize, message: String| -> StackError {
        let (line, column) = line_col(text, offset);
        StackError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        at(offset, e.message().trim().to_string())
    })?;

    // name: top level or [stack].
    let (name, region) = match (raw.name, raw.stack) {
        (Some(_), Some(RawStack { name: Some(n), .. })) => {
            return Err(at(
                n.span().start,
                "`name` is given both at the top level and under [stack]; keep one".into(),
            ))
        }
        (Some(n), s) => (n, raw.region.or(s.and_then(|s| s.region))),
        (None, Some(s)) => match s.name {
            Some(n) => (n, s.region.or(raw.region)),
            None => return Err(at(0, "the stack has no `name` (top level or under [stack])".into())),
        },
        (None, None) => {
            return Err(at(
                0,
                "the stack has no `name` (top level or under [stack]); it tags every resource the stack owns".into(),
            ))
        }
    };
    let name_ok = {
        let n = name.get_ref();
        !n.is_empty()
            && n.len() <= 32
            && n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !name_ok {
        return Err(at(
            name.span().start,
            format!(
                "`name` = {:?}: use 1 to 32 lowercase letters, digits or '-', starting with a letter",
                name.get_ref()
            ),
        ));
    }
    let region = match region {
        Some(r) if r.get_ref().is_empty() => {
            return Err(at(r.span().start, "`region` must not be empty".into()))
        }
        r => r.map(|r| r.into_inner()),
    };

    let (net_span, net) = match raw.network {
        Some(n) => (n.span().start, n.into_inner()),
        None => (0, RawNetwork::default()),
    };

    let cidr = match &net.cidr {
        Some(c) => {
            let v: Ipv4Net = c.get_ref().parse().map_err(|_| {
                at(
                    c.span().start,
                    format!(
                        "`network.cidr` = {:?} is not an IPv4 CIDR block",
                        c.get_ref()
                    ),
                )
            })?;
            if v.trunc() != v {
                return Err(at(
                    c.span().start,
                    format!(
                        "`network.cidr` = {v}: host bits are set; did you mean {}?",
                        v.trunc()
                    ),
                ));
            }
            if !(16..=24).contains(&v.prefix_len()) {
                return Err(at(
                    c.span().start,
                    format!("`network.cidr` = {v}: the prefix must be between /16 and /24"),
                ));
            }
            v
        }
        None => DEFAULT_CIDR.parse().expect("valid default"),
    };

    let zones = match &net.zones {
        Some(z) => {
            let list = z.get_ref();
            let mut seen = std::collections::BTreeSet::new();
            for zone in list {
                if zone.is_empty() || !seen.insert(zone) {
                    return Err(at(
                        z.span().start,
                        format!("`network.zones`: zone {zone:?} is empty or listed twice"),
                    ));
                }
            }
            Some(list.clone())
        }
        None => None,
    };
    let az_count = match (&net.az_count, &zones) {
        (Some(c), Some(z)) if *c.get_ref() as usize != z.len() => {
            return Err(at(
                c.span().start,
                format!(
                "`network.az_count` = {} but `network.zones` lists {}; give one or make them agree",
                c.get_ref(),
                z.len()
            ),
            ))
        }
        (Some(c), _) => {
            let n = *c.get_ref();
            if !(2..=6).contains(&n) {
                return Err(at(
                    c.span().start,
                    format!("`network.az_count` = {n}: must be between 2 and 6 (high availability needs at least 2 zones)"),
                ));
            }
            n as usize
        }
        (None, Some(z)) => {
            if !(2..=6).contains(&z.len()) {
                return Err(at(
                    net.zones
                        .as_ref()
                        .map(|z| z.span().start)
                        .unwrap_or(net_span),
                    format!(
                        "`network.zones` lists {} zones: give between 2 and 6",
                        z.len()
                    ),
                ));
            }
            z.len()
        }
        (None, None) => DEFAULT_AZ_COUNT,
    };

    // Subnets: given, or carved from the VPC range (16 equal blocks: public
    // ones from the first, private ones from the ninth, so adding a zone
    // never moves an existing subnet).
    let blocks: Vec<Ipv4Net> = cidr
        .subnets(cidr.prefix_len() + 4)
        .expect("prefix at most /28")
        .collect();
    let public_subnets = subnets_for(
        &net.public_subnets,
        "public_subnets",
        az_count,
        cidr,
        || blocks[..az_count].to_vec(),
        &at,
    )?;
    let private_subnets = subnets_for(
        &net.private_subnets,
        "private_subnets",
        az_count,
        cidr,
        || blocks[8..8 + az_count].to_vec(),
        &at,
    )?;
    let all: Vec<(Ipv4Net, &str, usize)> = public_subnets
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, "public_subnets", i))
        .chain(
            private_subnets
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, "private_subnets", i)),
        )
        .collect();
    for (i, (a, ka, ia)) in all.iter().enumerate() {
        for (b, kb, ib) in &all[i + 1..] {
            if a.contains(b) || b.contains(a) {
                let span = match *kb {
                    "public_subnets" => net.public_subnets.as_ref(),
                    _ => net.private_subnets.as_ref(),
                }
                .and_then(|l| l.get_ref().get(*ib).map(|s| s.span().start))
                .unwrap_or(net_span);
                return Err(at(
                    span,
                    format!("`network.{kb}[{ib}]` = {b} overlaps `network.{ka}[{ia}]` = {a}"),
                ));
            }
        }
    }

    let app = raw.app.unwrap_or_default();
    let port = match &app.port {
        Some(p) => {
            let v = *p.get_ref();
            if !(1024..=65535).contains(&v) {
                return Err(at(
                    p.span().start,
                    format!("`app.port` = {v}: use an unprivileged port, 1024 to 65535"),
                ));
            }
            v as u16
        }
        None => DEFAULT_APP_PORT,
    };
    let int = |v: &Option<Spanned<i64>>,
               key: &str,
               range: std::ops::RangeInclusive<i64>,
               default: i64| {
        match v {
            Some(x) if !range.contains(x.get_ref()) => Err(at(
                x.span().start,
                format!(
                    "`{key}` = {}: must be between {} and {}",
                    x.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
            Some(x) => Ok(*x.get_ref() as u32),
            None => Ok(default as u32),
        }
    };
    let text = |v: &Option<Spanned<String>>,
                key: &str,
                ok: &dyn Fn(&str) -> bool,
                what: &str,
                default: &str| {
        match v {
            Some(x) if !ok(x.get_ref()) => Err(at(
                x.span().start,
                format!("`{key}` = {:?}: {what}", x.get_ref()),
            )),
            Some(x) => Ok(x.get_ref().clone()),
            None => Ok(default.to_string()),
        }
    };
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    let min_size = int(&app.min_size, "app.min_size", 0..=100, 1)?;
    let max_size = int(&app.max_size, "app.max_size", 1..=100, 2)?;
    let desired_capacity = int(
        &app.desired_capacity,
        "app.desired_capacity",
        0..=100,
        min_size as i64,
    )?;
    if min_size > desired_capacity || desired_capacity > max_size {
        let span = app
            .desired_capacity
            .as_ref()
            .or(app.min_size.as_ref())
            .or(app.max_size.as_ref())
            .map(|s| s.span().start)
            .unwrap_or(0);
        return Err(at(
            span,
            format!(
                "instance counts must satisfy min_size <= desired_capacity <= max_size, got {min_size} <= {desired_capacity} <= {max_size}"
            ),
        ));
    }
    let scaling_target = match &app.scaling_target {
        Some(t) if !(*t.get_ref() > 0.0 && t.get_ref().is_finite()) => {
            return Err(at(
                t.span().start,
                format!("`app.scaling_target` = {}: must be positive", t.get_ref()),
            ))
        }
        Some(t) => *t.get_ref(),
        None => 50.0,
    };
    let data_dir = text(
        &app.data_dir,
        "app.data_dir",
        &|s| {
            s.starts_with('/')
                && s.len() > 1
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        },
        "an absolute path of letters, digits and /._-",
        "/var/lib/bookstore/data",
    )?;
    let ami = match &app.ami {
        Some(a) if !(a.get_ref().starts_with("ami-") && ident(a.get_ref())) => {
            return Err(at(
                a.span().start,
                format!("`app.ami` = {:?} is not an AMI id (ami-...)", a.get_ref()),
            ))
        }
        a => a.as_ref().map(|a| a.get_ref().clone()),
    };
    let app = App {
        port,
        instance_type: text(
            &app.instance_type,
            "app.instance_type",
            &|s| ident(s) && s.contains('.'),
            "not an instance type like t3.small",
            "t3.small",
        )?,
        ami,
        binary: app.binary.map(PathBuf::from),
        min_size,
        desired_capacity,
        max_size,
        health_check_grace: int(
            &app.health_check_grace,
            "app.health_check_grace",
            0..=7200,
            120,
        )?,
        scaling_metric: app.scaling_metric.unwrap_or(ScalingMetric::Cpu),
        scaling_target,
        refresh_min_healthy: int(
            &app.refresh_min_healthy,
            "app.refresh_min_healthy",
            0..=100,
            90,
        )?,
        refresh_warmup: int(&app.refresh_warmup, "app.refresh_warmup", 0..=3600, 120)?,
        keep_releases: int(&app.keep_releases, "app.keep_releases", 1..=50, 5)?,
        data_dir,
    };

    let db = raw.database.unwrap_or_default();
    let sql_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 16
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let database = Database {
        instance_class: text(
            &db.instance_class,
            "database.instance_class",
            &|s| ident(s) && s.starts_with("db."),
            "not a DB instance class like db.t3.micro",
            "db.t3.micro",
        )?,
        allocated_storage: int(
            &db.allocated_storage,
            "database.allocated_storage",
            20..=65536,
            20,
        )?,
        engine_version: text(
            &db.engine_version,
            "database.engine_version",
            &|s| s.starts_with("8."),
            "MySQL 8 versions only (8.0, 8.0.39, 8.4...)",
            "8.0",
        )?,
        multi_az: db.multi_az.unwrap_or(true),
        backup_retention_days: int(
            &db.backup_retention_days,
            "database.backup_retention_days",
            1..=35,
            7,
        )?,
        name: text(
            &db.name,
            "database.name",
            &sql_name,
            "1 to 16 letters, digits or _, starting with a letter",
            "bookstore",
        )?,
        username: text(
            &db.username,
            "database.username",
            &sql_name,
            "1 to 16 letters, digits or _, starting with a letter",
            "bookstore",
        )?,
        apply_immediately: db.apply_immediately.unwrap_or(false),
        final_snapshot: db.final_snapshot.unwrap_or(true),
        deletion_protection: db.deletion_protection.unwrap_or(true),
    };

    let hostname = |s: &str| {
        s.len() <= 253
            && s.contains('.')
            && s.split('.').enumerate().all(|(i, l)| {
                (!l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                    || (i == 0 && l == "*")
            })
    };
    let domain = match raw.domain {
        None => None,
        Some(d) => {
            let span = d.span().start;
            let d = d.into_inner();
            let check = |x: &Spanned<String>, key: &str| {
                if hostname(&x.get_ref().to_ascii_lowercase()) {
                    Ok(x.get_ref().to_ascii_lowercase())
                } else {
                    Err(at(
                        x.span().start,
                        format!("`{key}` = {:?} is not a domain name", x.get_ref()),
                    ))
                }
            };
            let name = check(&d.name, "domain.name")?;
            let alternative_names = d
                .alternative_names
                .iter()
                .map(|a| check(a, "domain.alternative_names"))
                .collect::<Result<Vec<_>, _>>()?;
            let hosted_zone = match &d.hosted_zone {
                Some(z) => {
                    let zone = check(z, "domain.hosted_zone")?;
                    let zone = zone.trim_end_matches('.').to_string();
                    if !(name == zone || name.ends_with(&format!(".{zone}"))) {
                        return Err(at(
                            z.span().start,
                            format!("`domain.hosted_zone` = {zone:?} does not contain {name:?}"),
                        ));
                    }
                    Some(zone)
                }
                None => None,
            };
            let alias = d.alias.unwrap_or(hosted_zone.is_some());
            if alias && hosted_zone.is_none() {
                return Err(at(
                    span,
                    "`domain.alias` needs `domain.hosted_zone`, the zone to write the record in"
                        .into(),
                ));
            }
            Some(Domain {
                name,
                alternative_names,
                hosted_zone,
                alias,
                validation_timeout: int(
                    &d.validation_timeout,
                    "domain.validation_timeout",
                    10..=86400,
                    1800,
                )?,
            })
        }
    };

    let mut timeouts = Timeouts::default();
    if let Some(t) = &raw.timeouts {
        let secs = |v: &Option<Spanned<i64>>, key: &str, default: Duration| {
            match v {
            Some(x) if !(1..=7 * 86400).contains(x.get_ref()) => Err(at(
                x.span().start,
                format!(
                    "`timeouts.{key}` = {}: give a positive number of seconds, at most 604800 (7 days)",
                    x.get_ref()
                ),
            )),
            Some(x) => Ok(Duration::from_secs(*x.get_ref() as u64)),
            None => Ok(default),
        }
        };
        let d = Timeouts::default();
        timeouts = Timeouts {
            database: secs(&t.database, "database", d.database)?,
            database_delete: secs(&t.database_delete, "database_delete", d.database_delete)?,
            nat_gateway: secs(&t.nat_gateway, "nat_gateway", d.nat_gateway)?,
            load_balancer: secs(&t.load_balancer, "load_balancer", d.load_balancer)?,
            file_system: secs(&t.file_system, "file_system", d.file_system)?,
            instances: secs(&t.instances, "instances", d.instances)?,
            instance_refresh: secs(&t.instance_refresh, "instance_refresh", d.instance_refresh)?,
            delete: secs(&t.delete, "delete", d.delete)?,
            certificate: d.certificate,
        };
    }
    if let Some(d) = &domain {
        timeouts.certificate = Duration::from_secs(d.validation_timeout.into());
    }

    let retention_days = match &raw.logs {
        Some(RawLogs {
            retention_days: Some(x),
        }) => {
            let allowed = crate::resources::log_group::RETENTION_DAYS;
            match u32::try_from(*x.get_ref()) {
                Ok(v) if allowed.contains(&v) => v,
                _ => {
                    let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
                    return Err(at(
                        x.span().start,
                        format!(
                            "`logs.retention_days` = {}: CloudWatch Logs accepts only {}",
                            x.get_ref(),
                            list.join(", ")
                        ),
                    ));
                }
            }
        }
        _ => DEFAULT_LOG_RETENTION_DAYS,
    };

    // Without a NAT gateway the instances reach no AWS endpoint: they could
    // not fetch the binary (S3), the database password (Secrets Manager),
    // ship logs (CloudWatch Logs) nor be reached by Systems Manager, and
    // would never become healthy, unless the VPC has endpoints for each
    // ("Access AWS services through AWS PrivateLink").
    let topology = raw.topology.unwrap_or(Topology::Full);
    if let (Topology::Full, Some(n), false) = (topology, &net.nat, net.endpoints.unwrap_or(false)) {
        if *n.get_ref() == Nat::None {
            return Err(at(
                n.span().start,
                "`network.nat` = \"none\": the app instances would have no route to S3, Secrets Manager, \
                 CloudWatch Logs and Systems Manager (ssm, ssmmessages, ec2messages); set \
                 `endpoints = true` under [network] to create VPC endpoints for them, or use \
                 nat = \"single\" or \"per-az\""
                    .into(),
            ));
        }
    }

    Ok(Stack {
        name: name.into_inner(),
        timeouts,
        region,
        topology,
        logs: Logs { retention_days },
        database,
        domain,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        network: Network {
            cidr,
            zones,
            az_count,
            nat: net.nat.as_ref().map_or(Nat::Single, |n| *n.get_ref()),
            endpoints: net.endpoints.unwrap_or(false),
            public_subnets,
            private_subnets,
        },
        app,
    })
}

fn subnets_for(
    given: &Option<Spanned<Vec<Spanned<String>>>>,
    key: &str,
    az_count: usize,
    vpc: Ipv4Net,
    default: impl FnOnce() -> Vec<Ipv4Net>,
    at: &dyn Fn(usize, String) -> StackError,
) -> Result<Vec<Ipv4Net>, StackError> {
    let Some(list) = given else {
        return Ok(default());
    };
    if list.get_ref().len() != az_count {
        return Err(at(
            list.span().start,
            format!(
                "`network.{key}` lists {} blocks but the stack uses {az_count} zones: give one per zone",
                list.get_ref().len()
            ),
        ));
    }
    list.get_ref()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n: Ipv4Net = s.get_ref().parse().map_err(|_| {
                at(
                    s.span().start,
                    format!(
                        "`network.{key}[{i}]` = {:?} is not an IPv4 CIDR block",
                        s.get_ref()
                    ),
                )
            })?;
            if !vpc.contains(&n) {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n} is not inside the VPC range {vpc}"),
                ));
            }
            if n.prefix_len() > 28 {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n}: AWS subnets are at most /28"),
                ));
            }
            if n.trunc() != n {
                return Err(at(
                    s.span().start,
                    format!("`network.{key}[{i}]` = {n}: host bits are set"),
                ));
            }
            Ok(n)
        })
        .collect()
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before[i + 1..].chars().count())
        .unwrap_or_else(|| before.chars().count())
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Stack, StackError> {
        parse(Path::new("stacks/t.toml"), text)
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_stack_gets_every_default() {
        let s = p("name = \"demo\"\n").unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.region, None);
        assert_eq!(s.network.cidr.to_string(), "10.0.0.0/16");
        assert_eq!(s.network.az_count, 2);
        assert_eq!(s.network.nat, Nat::Single);
        assert_eq!(s.app.port, 8080);
        let pubs: Vec<String> = s
            .network
            .public_subnets
            .iter()
            .map(|n| n.to_string())
            .collect();
        let privs: Vec<String> = s
            .network
            .private_subnets
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(pubs, ["10.0.0.0/20", "10.0.16.0/20"]);
        assert_eq!(privs, ["10.0.128.0/20", "10.0.144.0/20"]);
    }

    #[test]
    fn name_may_live_under_stack_section() {
        let s = p("[stack]\nname = \"prod\"\nregion = \"eu-west-1\"\n").unwrap();
        assert_eq!(s.name, "prod");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn timeouts_default_to_aws_documented_times() {
        let t = p("name = \"demo\"\n").unwrap().timeouts;
        assert_eq!(t, Timeouts::default());
        assert_eq!(t.database, Duration::from_secs(40 * 60));
        assert_eq!(t.database_delete, Duration::from_secs(60 * 60));
        assert_eq!(t.nat_gateway, Duration::from_secs(10 * 60));
        assert_eq!(t.load_balancer, Duration::from_secs(10 * 60));
        assert_eq!(t.file_system, Duration::from_secs(30 * 60));
        assert_eq!(t.instances, Duration::from_secs(10 * 60));
        assert_eq!(t.instance_refresh, Duration::from_secs(60 * 60));
        assert_eq!(t.delete, Duration::from_secs(30 * 60));
    }

    #[test]
    fn timeouts_are_overridden_in_seconds() {
        let t = p(
            "name = \"demo\"\n[timeouts]\ndatabase = 3600\ninstance_refresh = 7200\ndelete = 60\n",
        )
        .unwrap()
        .timeouts;
        assert_eq!(t.database, Duration::from_secs(3600));
        assert_eq!(t.instance_refresh, Duration::from_secs(7200));
        assert_eq!(t.delete, Duration::from_secs(60));
        assert_eq!(t.nat_gateway, Timeouts::default().nat_gateway);
        // The certificate's comes from the domain section.
        let t = p("name = \"d\"\n[domain]\nname = \"a.example.com\"\nvalidation_timeout = 600\n")
            .unwrap()
            .timeouts;
        assert_eq!(t.certificate, Duration::from_secs(600));
    }

    #[test]
    fn bad_timeouts_are_located() {
        let e = err("name = \"demo\"\n[timeouts]\ndatabase = 60\nnat = 5\n");
        assert!(e.starts_with("stacks/t.toml:4:1:"), "{e}");
        assert!(e.contains("nat"), "{e}");
        let e = err("name = \"demo\"\n[timeouts]\nload_balancer = 0\n");
        assert!(e.starts_with("stacks/t.toml:3:17:"), "{e}");
        assert!(e.contains("timeouts.load_balancer"), "{e}");
        let e = err("name = \"demo\"\n[timeouts]\ndelete = -5\n");
        assert!(e.starts_with("stacks/t.toml:3:10:"), "{e}");
        let e = err("name = \"demo\"\n[timeouts]\ndelete = \"10m\"\n");
        assert!(e.starts_with("stacks/t.toml:3:10:"), "{e}");
    }

    #[test]
    fn log_retention_is_one_cloudwatch_accepts() {
        assert_eq!(p("name = \"demo\"\n").unwrap().logs.retention_days, 30);
        let s = p("name = \"demo\"\n[logs]\nretention_days = 365\n").unwrap();
        assert_eq!(s.logs.retention_days, 365);
        for bad in ["31", "0", "-1", "3654"] {
            let e = err(&format!(
                "name = \"demo\"\n[logs]\nretention_days = {bad}\n"
            ));
            assert!(e.starts_with("stacks/t.toml:3:18:"), "{e}");
            assert!(
                e.contains("logs.retention_days") && e.contains("1, 3, 5, 7, 14, 30,"),
                "{e}"
            );
        }
        let e = err("name = \"demo\"\n[logs]\nretention = 7\n");
        assert!(e.starts_with("stacks/t.toml:3:1:"), "{e}");
    }

    #[test]
    fn no_nat_needs_endpoints() {
        let e = err("name = \"demo\"\n[network]\nnat = \"none\"\n");
        assert!(e.starts_with("stacks/t.toml:3:7:"), "{e}");
        for what in [
            "S3",
            "Secrets Manager",
            "CloudWatch Logs",
            "ssmmessages",
            "endpoints = true",
        ] {
            assert!(e.contains(what), "{what}: {e}");
        }
        let s = p("name = \"demo\"\n[network]\nnat = \"none\"\nendpoints = true\n").unwrap();
        assert!(s.network.endpoints);
        assert!(!p("name = \"demo\"\n").unwrap().network.endpoints);
        // Without instances there is nothing to reach AWS.
        let s = p("name = \"demo\"\ntopology = \"network\"\n[network]\nnat = \"none\"\n").unwrap();
        assert_eq!(s.network.nat, Nat::None);
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = err("name = \"demo\"\n\n[network]\ncidr = \"10.0.0.0/16\"\nnatt = \"single\"\n");
        assert!(e.starts_with("stacks/t.toml:5:1:"), "{e}");
        assert!(e.contains("natt"), "{e}");
    }

    #[test]
    fn invalid_enum_value_is_located() {
        let e = err("name = \"demo\"\n[network]\nnat = \"sometimes\"\n");
        assert!(e.starts_with("stacks/t.toml:3:7:"), "{e}");
        assert!(e.contains("per-az"), "{e}");
    }

    #[test]
    fn missing_name_is_an_error() {
        assert!(err("[network]\n").contains("no `name`"));
    }

    #[test]
    fn bad_names_are_refused() {
        for n in ["Demo", "1demo", "", "a_b"] {
            let e = err(&format!("name = {n:?}\n"));
            assert!(e.starts_with("stacks/t.toml:1:8:"), "{e}");
        }
    }

    #[test]
    fn subnet_outside_the_vpc_is_located() {
        let e = err(
            "name = \"d\"\n[network]\ncidr = \"10.0.0.0/16\"\npublic_subnets = [\"10.0.0.0/24\", \"10.1.0.0/24\"]\n",
        );
        assert!(e.starts_with("stacks/t.toml:4:34:"), "{e}");
        assert!(e.contains("not inside the VPC"), "{e}");
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let e = err(
            "name = \"d\"\n[network]\npublic_subnets = [\"10.0.0.0/24\", \"10.0.1.0/24\"]\nprivate_subnets = [\"10.0.2.0/24\", \"10.0.0.0/23\"]\n",
        );
        assert!(e.contains("overlaps"), "{e}");
        assert!(e.starts_with("stacks/t.toml:4:35:"), "{e}");
    }

    #[test]
    fn one_zone_is_not_enough() {
        let e = err("name = \"d\"\n[network]\naz_count = 1\n");
        assert!(e.starts_with("stacks/t.toml:3:12:"), "{e}");
        let e = err("name = \"d\"\n[network]\nzones = [\"us-east-1a\"]\n");
        assert!(e.contains("between 2 and 6"), "{e}");
    }

    #[test]
    fn explicit_zones_set_the_count() {
        let s = p(
            "name = \"d\"\n[network]\nzones = [\"x-1a\", \"x-1b\", \"x-1c\"]\nnat = \"per-az\"\n",
        )
        .unwrap();
        assert_eq!(s.network.az_count, 3);
        assert_eq!(s.network.private_subnets.len(), 3);
        assert_eq!(s.network.nat, Nat::PerAz);
    }

    #[test]
    fn bad_cidr_and_port_are_located() {
        let e = err("name = \"d\"\n[network]\ncidr = \"10.0.0.1/16\"\n");
        assert!(
            e.contains("host bits") && e.starts_with("stacks/t.toml:3:8:"),
            "{e}"
        );
        let e = err("name = \"d\"\n[network]\ncidr = \"10.0.0.0/8\"\n");
        assert!(e.contains("/16 and /24"), "{e}");
        let e = err("name = \"d\"\n[app]\nport = 80\n");
        assert!(
            e.starts_with("stacks/t.toml:3:8:") && e.contains("1024"),
            "{e}"
        );
    }

    #[test]
    fn application_defaults_and_checks() {
        let s = p("name = \"d\"\n").unwrap();
        assert_eq!(s.topology, Topology::Full);
        assert_eq!(
            (s.app.min_size, s.app.desired_capacity, s.app.max_size),
            (1, 1, 2)
        );
        assert!(s.database.multi_az && s.database.final_snapshot && s.database.deletion_protection);
        assert_eq!(s.domain, None);
        let e = err("name = \"d\"\n[app]\nmin_size = 3\nmax_size = 2\n");
        assert!(
            e.contains("min_size <= desired_capacity <= max_size"),
            "{e}"
        );
        let e = err("name = \"d\"\n[app]\ndesired_capacity = 9\nmax_size = 4\n");
        assert!(e.starts_with("stacks/t.toml:3:20:"), "{e}");
        let e = err("name = \"d\"\n[database]\ninstance_class = \"t3.micro\"\n");
        assert!(
            e.starts_with("stacks/t.toml:3:18:") && e.contains("db.t3.micro"),
            "{e}"
        );
        let e = err("name = \"d\"\n[database]\npassword = \"hunter2\"\n");
        assert!(
            e.starts_with("stacks/t.toml:3:1:") && e.contains("password"),
            "{e}"
        );
    }

    #[test]
    fn domain_checks() {
        let s = p(
            "name = \"d\"\n[domain]\nname = \"Shop.Example.com\"\nhosted_zone = \"example.com\"\n",
        )
        .unwrap();
        let d = s.domain.unwrap();
        assert_eq!(d.name, "shop.example.com");
        assert!(d.alias);
        let e = err(
            "name = \"d\"\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"other.org\"\n",
        );
        assert!(
            e.starts_with("stacks/t.toml:4:15:") && e.contains("does not contain"),
            "{e}"
        );
        let e = err("name = \"d\"\n[domain]\nname = \"not a domain\"\n");
        assert!(e.starts_with("stacks/t.toml:3:8:"), "{e}");
        let e = err("name = \"d\"\n[domain]\nname = \"a.example.com\"\nalias = true\n");
        assert!(e.contains("needs `domain.hosted_zone`"), "{e}");
    }

    #[test]
    fn shipped_stacks_are_valid() {
        for f in [
            "stacks/demo.toml",
            "stacks/production.toml",
            "stacks/network.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err("name = \"d\"\n[network]\naz_count = \"two\"\n");
        assert!(e.starts_with("stacks/t.toml:3:12:"), "{e}");
    }
}
