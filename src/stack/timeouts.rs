//! `[timeouts]`: how long each kind of wait for AWS may last.

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::domain::Domain;
use super::error::{Source, StackError};

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    database: Option<Spanned<i64>>,
    database_delete: Option<Spanned<i64>>,
    nat_gateway: Option<Spanned<i64>>,
    load_balancer: Option<Spanned<i64>>,
    file_system: Option<Spanned<i64>>,
    instances: Option<Spanned<i64>>,
    instance_refresh: Option<Spanned<i64>>,
    delete: Option<Spanned<i64>>,
}

/// The waits `[timeouts]` sets, the defaults for the others; the
/// certificate's comes from the domain section.
pub(super) fn parse(
    src: &Source,
    raw: Option<&RawTimeouts>,
    domain: Option<&Domain>,
) -> Result<Timeouts, StackError> {
    let d = Timeouts::default();
    let mut timeouts = match raw {
        None => d,
        Some(t) => {
            let secs = |v: &Option<Spanned<i64>>, key: &str, default: Duration| {
                match v {
                Some(x) if !(1..=7 * 86400).contains(x.get_ref()) => Err(src.at_value(
                    x,
                    format!(
                        "`timeouts.{key}` = {}: give a positive number of seconds, at most 604800 (7 days)",
                        x.get_ref()
                    ),
                )),
                Some(x) => Ok(Duration::from_secs(*x.get_ref() as u64)),
                None => Ok(default),
            }
            };
            Timeouts {
                database: secs(&t.database, "database", d.database)?,
                database_delete: secs(&t.database_delete, "database_delete", d.database_delete)?,
                nat_gateway: secs(&t.nat_gateway, "nat_gateway", d.nat_gateway)?,
                load_balancer: secs(&t.load_balancer, "load_balancer", d.load_balancer)?,
                file_system: secs(&t.file_system, "file_system", d.file_system)?,
                instances: secs(&t.instances, "instances", d.instances)?,
                instance_refresh: secs(
                    &t.instance_refresh,
                    "instance_refresh",
                    d.instance_refresh,
                )?,
                delete: secs(&t.delete, "delete", d.delete)?,
                certificate: d.certificate,
            }
        }
    };
    if let Some(d) = domain {
        timeouts.certificate = Duration::from_secs(d.validation_timeout.into());
    }
    Ok(timeouts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::{err, p};

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
}
