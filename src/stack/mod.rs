//! Stack files: TOML, typed, validated, defaults filled, before any API call.
//!
//! Every error names `file:line:column` and the key it is about.
//!
//! One module per section of the file, each with its types, the section as
//! written and its checks; values of a checked shape (the stack's name, a
//! CIDR block, a domain or SQL name) are parsed once into a type that
//! cannot hold anything else. The module depends on nothing else in the
//! crate: the rest of the tool is built on it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

mod app;
mod cidr;
mod database;
mod domain;
mod error;
mod field;
mod logs;
mod name;
mod network;
mod origin;
mod runtime;
mod single;
mod timeouts;

pub use app::{App, ScalingMetric, DEFAULT_APP_PORT};
pub use cidr::{Cidr, CidrError};
pub use database::{Database, SqlName};
pub use domain::{Domain, DomainName};
pub use error::StackError;
pub use field::Invalid;
pub use logs::{Logs, DEFAULT_LOG_RETENTION_DAYS, LOG_RETENTION_DAYS};
pub use name::StackName;
pub use network::{Nat, Network, DEFAULT_AZ_COUNT, DEFAULT_CIDR};
pub use origin::Origin;
pub use runtime::{valid_size, Runtime, TaskSize};
pub use single::{Acme, Shape, Single, Volume, LETS_ENCRYPT, SINGLE_DATA_DIR};
pub use timeouts::Timeouts;

use error::Source;

/// Which layers a stack deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Everything: network, database, files, certificate, load balancer, instances.
    Full,
    /// Only the network layer (VPC, subnets, gateways, routes, security groups).
    Network,
}

/// A validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub name: StackName,
    pub region: Option<String>,
    pub topology: Topology,
    /// How the app is deployed (`shape`): the scaled shape, or one instance.
    pub shape: Shape,
    /// The single shape's own settings (`[volume]`, `[acme]`).
    pub single: Option<Single>,
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
    /// Where each key is written, for the checks that run on the whole
    /// stack (`file:line:column` of the key a refusal is about).
    pub origin: Origin,
}

/// The file as written: one field per top-level key or table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    stack: Option<name::RawStack>,
    #[serde(default)]
    network: Option<Spanned<network::RawNetwork>>,
    app: Option<app::RawApp>,
    topology: Option<Topology>,
    shape: Option<Shape>,
    volume: Option<single::RawVolume>,
    acme: Option<single::RawAcme>,
    database: Option<database::RawDatabase>,
    domain: Option<Spanned<domain::RawDomain>>,
    timeouts: Option<timeouts::RawTimeouts>,
    logs: Option<logs::RawLogs>,
}

/// Reads and validates a stack file.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|e| StackError::unreadable(path, e))?;
    parse(path, &text)
}

/// Parses and validates stack file text; `path` is only used in messages.
///
/// Sections are checked in the order below, so a file with several
/// mistakes is always refused for the same one.
pub fn parse(path: &Path, text: &str) -> Result<Stack, StackError> {
    let src = Source::new(path, text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        src.at(offset, e.message().trim())
    })?;
    let shape = raw.shape.unwrap_or_default();
    let origin = Origin::read(&src);
    single::refuse_other_shapes_settings(&origin, shape)?;
    let (name, region) = name::name_and_region(&src, raw.name, raw.region, raw.stack)?;
    let net = network::Section::new(raw.network);
    let network = net.parse(&src)?;
    let (mut app, raw_runtime) = app::parse(&src, raw.app.unwrap_or_default())?;
    (app.runtime, app.task) = runtime::parse(&src, &origin, shape, &raw_runtime)?;
    let mysql = raw.database.is_some();
    let mut database = database::parse(&src, raw.database.unwrap_or_default())?;
    let domain = raw.domain.map(|d| domain::parse(&src, d)).transpose()?;
    let timeouts = timeouts::parse(&src, raw.timeouts.as_ref(), domain.as_ref())?;
    let logs = logs::parse(&src, raw.logs)?;
    let topology = raw.topology.unwrap_or(Topology::Full);
    if shape == Shape::Scaled {
        net.check_route_out(&src, topology)?;
    }
    let single = single::parse(
        &src,
        &origin,
        shape,
        raw.volume,
        raw.acme,
        mysql,
        domain.as_ref(),
    )?;
    if single.is_some() {
        database.multi_az = false;
    }
    Ok(Stack {
        name,
        region,
        topology,
        shape,
        single,
        network,
        app,
        database,
        domain,
        timeouts,
        logs,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn p(text: &str) -> Result<Stack, StackError> {
        parse(Path::new("stacks/t.toml"), text)
    }

    pub(super) fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn a_name_that_would_make_names_aws_refuses_is_an_error_at_its_value() {
        for (name, says) in [
            ("shop-", "RDS identifiers allow neither"),
            ("a--b", "RDS identifiers allow neither"),
            ("xn--shop", "RDS identifiers allow neither"),
            ("internal", "AWS reserves them"),
            ("sthree-shop", "AWS reserves them"),
            ("amzn-s3-demo-x", "AWS reserves them"),
        ] {
            let e = err(&format!("name = \"{name}\"\n"));
            assert!(e.contains(says), "{name}: {e}");
            assert!(e.starts_with("stacks/t.toml:1:8"), "{name}: {e}");
        }
        for name in ["shop", "internals", "my-shop-2", "sthreex"] {
            assert!(p(&format!("name = \"{name}\"\n")).is_ok(), "{name}");
        }
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
