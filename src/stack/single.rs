//! `shape`, and the `single` shape's own sections: `[volume]` (the data
//! volume and its snapshots) and `[acme]` (where certificates come from).
//!
//! The single shape is one instance with its own address: settings that
//! only a load-balanced group of instances has are refused where they are
//! written, before any API call.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::field::Invalid;
use super::origin::Origin;

/// How the app is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// A load balancer, an Auto Scaling group across zones, a Multi-AZ
    /// database and a shared file system.
    #[default]
    Scaled,
    /// One instance with its own address, TLS by ACME, its data on an EBS
    /// volume the stack owns.
    Single,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Scaled => "scaled",
            Shape::Single => "single",
        }
    }
}

/// Let's Encrypt's production directory: the default ACME CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The single shape's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Single {
    pub volume: Volume,
    pub acme: Acme,
    /// The stack names a MySQL database (`[database]`): a single-AZ RDS
    /// instance. Otherwise the app's SQLite database lives on the volume.
    pub mysql: bool,
}

/// The EBS volume holding the app's database and covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub size_gib: u32,
    /// Daily snapshots Data Lifecycle Manager keeps.
    pub snapshots_kept: u32,
    /// The hour (UTC, `HH:MM`) the daily snapshot starts.
    pub snapshot_time: String,
}

/// Where the app gets its certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct Acme {
    pub directory: String,
    /// An email address the CA may write to about the certificates.
    pub contact: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVolume {
    size_gib: Option<Spanned<i64>>,
    snapshots_kept: Option<Spanned<i64>>,
    snapshot_time: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    directory: Option<Spanned<String>>,
    contact: Option<Spanned<String>>,
}

/// Settings only the scaled shape has, and why the single shape has none.
const SCALED_ONLY: &[(&str, &str)] = &[
    (
        "network.az_count",
        "the instance and its volume live in the first zone",
    ),
    (
        "network.nat",
        "the instance is in a public subnet: it needs no NAT gateway",
    ),
    (
        "network.endpoints",
        "the instance is in a public subnet: it needs no VPC endpoints",
    ),
    (
        "network.private_subnets",
        "only a MySQL database uses private subnets, carved from the VPC range",
    ),
    ("app.port", "the app listens on ports 80 and 443 itself"),
    ("app.min_size", "exactly one instance runs"),
    ("app.desired_capacity", "exactly one instance runs"),
    ("app.max_size", "exactly one instance runs"),
    ("app.scaling_metric", "one instance does not scale"),
    ("app.scaling_target", "one instance does not scale"),
    (
        "app.refresh_min_healthy",
        "a new instance replaces the one there (the site is down for a boot)",
    ),
    (
        "app.refresh_warmup",
        "a new instance replaces the one there (the site is down for a boot)",
    ),
    (
        "app.data_dir",
        "the data lives on the stack's volume, mounted at /var/lib/bookstore",
    ),
    (
        "database.multi_az",
        "the single shape's database is single-AZ",
    ),
    (
        "domain.validation_timeout",
        "certificates come from the ACME CA, not from ACM",
    ),
];

/// Where the data volume is mounted on the instance.
pub const SINGLE_DATA_DIR: &str = "/var/lib/bookstore";

/// Refuses, where they are written, the sections and settings the other
/// shape has: checked before the sections themselves, so a single stack's
/// `min_size = 3` is refused for being a scaled setting.
pub(super) fn refuse_other_shapes_settings(
    origin: &Origin,
    shape: Shape,
) -> Result<(), StackError> {
    if shape == Shape::Scaled {
        for key in ["volume", "acme"] {
            if origin.position(key).is_some() {
                return Err(origin.error(
                    &[key],
                    format!("[{key}] belongs to shape = \"single\"; the scaled shape keeps its data in the database and the shared file system, and its certificate in ACM"),
                ));
            }
        }
        return Ok(());
    }
    for (key, why) in SCALED_ONLY {
        if origin.position(key).is_some() {
            return Err(origin.error(
                &[key],
                format!("`{key}` is a setting of shape = \"scaled\": in shape = \"single\" {why}"),
            ));
        }
    }
    Ok(())
}

pub(super) fn parse(
    src: &Source,
    origin: &Origin,
    shape: Shape,
    volume: Option<RawVolume>,
    acme: Option<RawAcme>,
    mysql: bool,
    domain: Option<&super::Domain>,
) -> Result<Option<Single>, StackError> {
    if shape == Shape::Scaled {
        return Ok(None);
    }
    // The app proves it holds a name by answering on it (TLS-ALPN-01 or
    // HTTP-01); a wildcard needs DNS-01, which it does not do.
    if let Some(d) = domain {
        let names = std::iter::once(&d.name).chain(&d.alternative_names);
        for (i, n) in names.enumerate() {
            if n.as_str().starts_with("*.") {
                let key = match i {
                    0 => "domain.name".to_string(),
                    i => format!("domain.alternative_names.{}", i - 1),
                };
                return Err(origin.error(
                    &[key.as_str()],
                    format!("`{key}` = {:?}: the single shape's certificates come from an ACME CA by a challenge the app answers on the name itself, which cannot prove a wildcard; list the names", n.as_str()),
                ));
            }
        }
    }
    let v = volume.unwrap_or_default();
    let snapshot_time = src.text(
        &v.snapshot_time,
        "volume.snapshot_time",
        valid_time,
        "a time of day in UTC as HH:MM",
        "03:00",
    )?;
    let a = acme.unwrap_or_default();
    let directory = src.parse_or(
        &a.directory,
        "acme.directory",
        |s| {
            let ok = s.starts_with("https://")
                && s.len() > "https://".len()
                && s.len() <= 512
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && !"'\"`$\\".contains(c));
            ok.then(|| s.to_string())
                .ok_or(Invalid::NotA("an https:// URL of an ACME directory"))
        },
        LETS_ENCRYPT,
    )?;
    let contact = match &a.contact {
        Some(c) => Some(src.parse(c, "acme.contact", |s| {
            let ok = s.len() <= 254
                && s.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-@".contains(c));
            ok.then(|| s.to_string())
                .ok_or(Invalid::NotA("an email address"))
        })?),
        None => None,
    };
    Ok(Some(Single {
        volume: Volume {
            size_gib: src.int(&v.size_gib, "volume.size_gib", 1..=16384, 10)?,
            snapshots_kept: src.int(&v.snapshots_kept, "volume.snapshots_kept", 1..=1000, 7)?,
            snapshot_time,
        },
        acme: Acme { directory, contact },
        mysql,
    }))
}

fn valid_time(s: &str) -> bool {
    let Some((h, m)) = s.split_once(':') else {
        return false;
    };
    h.len() == 2
        && m.len() == 2
        && h.parse::<u8>().is_ok_and(|h| h < 24)
        && m.parse::<u8>().is_ok_and(|m| m < 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::{err, p};

    const SINGLE: &str = "name = \"one\"\nshape = \"single\"\n";

    #[test]
    fn the_single_shape_takes_defaults() {
        let s = p(SINGLE).unwrap();
        assert_eq!(s.shape, Shape::Single);
        let one = s.single.unwrap();
        assert_eq!(one.volume.size_gib, 10);
        assert_eq!(one.volume.snapshots_kept, 7);
        assert_eq!(one.volume.snapshot_time, "03:00");
        assert_eq!(one.acme.directory, LETS_ENCRYPT);
        assert!(!one.mysql);
        assert_eq!(p("name = \"x\"\n").unwrap().shape, Shape::Scaled);
        assert!(p("name = \"x\"\n").unwrap().single.is_none());
        let s = p(&format!(
            "{SINGLE}[database]\ninstance_class = \"db.t3.micro\"\n"
        ))
        .unwrap();
        assert!(s.single.unwrap().mysql);
    }

    #[test]
    fn scaled_settings_are_refused_where_written() {
        let e = err(&format!("{SINGLE}[app]\nmin_size = 3\n"));
        assert!(e.starts_with("stacks/t.toml:4:12:"), "{e}");
        assert!(
            e.contains("app.min_size") && e.contains("exactly one instance"),
            "{e}"
        );
        let e = err(&format!("{SINGLE}[network]\nnat = \"per-az\"\n"));
        assert!(e.starts_with("stacks/t.toml:4:7:"), "{e}");
        let e = err(&format!("{SINGLE}[database]\nmulti_az = true\n"));
        assert!(
            e.starts_with("stacks/t.toml:4:12:") && e.contains("single-AZ"),
            "{e}"
        );
        let e = err(&format!("{SINGLE}[app]\nport = 9000\n"));
        assert!(e.contains("80 and 443"), "{e}");
        let e = err(&format!("{SINGLE}[domain]\nname = \"shop.example.com\"\nalternative_names = [\"*.example.com\"]\n"));
        assert!(
            e.starts_with("stacks/t.toml:5:22:") && e.contains("wildcard"),
            "{e}"
        );
        let e = err("name = \"x\"\n[volume]\nsize_gib = 20\n");
        assert!(
            e.starts_with("stacks/t.toml:2:") && e.contains("shape = \"single\""),
            "{e}"
        );
    }

    #[test]
    fn volume_and_acme_settings_are_checked() {
        let e = err(&format!("{SINGLE}[volume]\nsnapshot_time = \"25:00\"\n"));
        assert!(
            e.starts_with("stacks/t.toml:4:17:") && e.contains("HH:MM"),
            "{e}"
        );
        let e = err(&format!("{SINGLE}[volume]\nsnapshots_kept = 0\n"));
        assert!(e.contains("volume.snapshots_kept"), "{e}");
        let e = err(&format!(
            "{SINGLE}[acme]\ndirectory = \"http://ca.test/dir\"\n"
        ));
        assert!(
            e.contains("acme.directory") && e.contains("https://"),
            "{e}"
        );
        let e = err(&format!("{SINGLE}[acme]\ncontact = \"not-an-email\"\n"));
        assert!(e.contains("acme.contact"), "{e}");
        let s = p(&format!(
            "{SINGLE}[acme]\ndirectory = \"https://acme-staging-v02.api.letsencrypt.org/directory\"\ncontact = \"ops@example.com\"\n[volume]\nsize_gib = 20\nsnapshots_kept = 14\nsnapshot_time = \"04:30\"\n"
        ))
        .unwrap();
        let one = s.single.unwrap();
        assert_eq!(one.acme.contact.as_deref(), Some("ops@example.com"));
        assert_eq!((one.volume.size_gib, one.volume.snapshots_kept), (20, 14));
    }
}
