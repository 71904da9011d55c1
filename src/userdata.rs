//! The boot script of an app instance, one per deployment shape:
//! `userdata/scaled.sh` (instances behind the load balancer, data on EFS,
//! database on RDS) and `userdata/single.sh` (the one instance with its own
//! address and data volume, TLS itself), each with `userdata/common.sh`
//! (what both do) spliced in where it says `# @@COMMON@@`.
//!
//! The rendered script starts with a header line holding the shape's
//! template digest and the values it was rendered with, so that what a
//! launch template carries can be read back and compared with what is
//! wanted. AWS takes at most 16 KB of user data (RequestLaunchTemplateData
//! `UserData`, before base64), so the rendered script leaves out the
//! templates' comment lines and blank lines, and the indentation of the
//! shell code (not of what its here-documents write); the templates keep
//! them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// What both shapes do: functions, spliced into each shape's template.
pub const COMMON: &str = include_str!("../userdata/common.sh");
/// The scaled shape's template.
pub const SCALED: &str = include_str!("../userdata/scaled.sh");
/// The single shape's template.
pub const SINGLE: &str = include_str!("../userdata/single.sh");
const SPLICE: &str = "# @@COMMON@@\n";
const HEADER: &str = "# bookstore-infra user-data v1 template=";

/// The deployment shape an instance boots as. Vars without one are the
/// scaled shape's (as written before there were shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Scaled,
    Single,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Scaled => "scaled",
            Shape::Single => "single",
        }
    }

    /// The shape's template with the common part spliced in.
    pub fn template(self) -> String {
        let own = match self {
            Shape::Scaled => SCALED,
            Shape::Single => SINGLE,
        };
        own.replacen(SPLICE, COMMON, 1)
    }

    /// sha256 (hex) of [`Shape::template`]: changes with either file.
    pub fn template_digest(self) -> String {
        hex::encode(Sha256::digest(self.template().as_bytes()))
    }
}

/// Everything the boot script needs to know. No secret: the database
/// passwords are fetched on the instance, the master user's from
/// `db_secret_arn` (for the migrate step only), the app user's from
/// `db_app_secret_arn` (handed to the web server).
///
/// Both shapes' values, each shape's optional in the other's: the scaled
/// shape needs `file_system_id`, `access_point_id`, `port` and the whole
/// database group; the single shape needs `shape = "single"`, `volume_id`
/// and `allocation_id`, and takes the database group (all of it or none:
/// none is SQLite on the data volume) and `tls_domains` (none: plain HTTP
/// only; `acme_directory` and `acme_contact` only with it). A value the
/// shape does not use is refused. Absent values are left out of the JSON,
/// so the scaled shape's JSON is what it was before shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDataVars {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    pub stack: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    /// Scaled: the shared file system and its access point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    /// Where the app's data is mounted (EFS, or the data volume).
    pub data_dir: String,
    /// Scaled: the port the load balancer sends to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,
    /// The master user: migrations and the app user's rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_secret_arn: Option<String>,
    /// The user the web server connects as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_app_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_app_secret_arn: Option<String>,
    /// uid and gid of the app's user: the file system access point's (the
    /// owner of the data volume's root).
    pub app_uid: u32,
    /// Single: the stack's data volume (vol-...) and Elastic IP
    /// (eipalloc-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    /// Single: the names the app gets ACME certificates for, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_domains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_contact: Option<String>,
}

impl UserDataVars {
    pub fn shape(&self) -> Shape {
        self.shape.unwrap_or(Shape::Scaled)
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum UserDataError {
    #[error("user data value `{name}` = {value:?} is not allowed in the boot script: {why}")]
    Unsafe {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

/// sha256 (hex) of the scaled shape's template.
pub fn template_digest() -> String {
    Shape::Scaled.template_digest()
}

/// The longest value the boot script takes.
pub const MAX_VALUE_LEN: usize = 2048;

fn unsafe_(name: &'static str, value: &str, why: &'static str) -> UserDataError {
    UserDataError::Unsafe {
        name,
        value: value.into(),
        why,
    }
}

fn safe(name: &'static str, value: &str) -> Result<String, UserDataError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(unsafe_(name, value, "use at most 2048 characters"));
    }
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@+=,!-".contains(c))
    {
        return Err(unsafe_(
            name,
            value,
            "use letters, digits and ._:/@+=,!- only",
        ));
    }
    Ok(format!("'{value}'"))
}

/// A value the shape needs.
fn needed(name: &'static str, v: &Option<String>, shape: Shape) -> Result<String, UserDataError> {
    let why = match shape {
        Shape::Scaled => "the scaled shape needs it",
        Shape::Single => "the single shape needs it",
    };
    safe(name, v.as_deref().ok_or_else(|| unsafe_(name, "", why))?)
}

/// A value the shape may do without: `''` when absent.
fn optional(name: &'static str, v: &Option<String>) -> Result<String, UserDataError> {
    v.as_deref().map_or(Ok("''".into()), |v| safe(name, v))
}

fn absent<T: ToString>(
    name: &'static str,
    v: &Option<T>,
    shape: Shape,
) -> Result<(), UserDataError> {
    let why = match shape {
        Shape::Scaled => "the scaled shape does not use it",
        Shape::Single => "the single shape does not use it",
    };
    match v {
        Some(v) => Err(unsafe_(name, &v.to_string(), why)),
        None => Ok(()),
    }
}

/// A comma-separated list of DNS names.
fn domains(v: &str) -> Result<(), UserDataError> {
    let name_ok = |d: &str| {
        !d.is_empty()
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    if v.split(',').all(name_ok) {
        Ok(())
    } else {
        Err(unsafe_(
            "tls_domains",
            v,
            "expected DNS names separated by commas",
        ))
    }
}

type Pairs = Vec<(&'static str, String)>;

/// The database group: all of it (the scaled shape always), or none.
fn database(v: &UserDataVars, shape: Shape, out: &mut Pairs) -> Result<(), UserDataError> {
    let named = [
        ("DB_HOST", "db_host", &v.db_host),
        ("DB_NAME", "db_name", &v.db_name),
        ("DB_USER", "db_user", &v.db_user),
        ("DB_SECRET_ARN", "db_secret_arn", &v.db_secret_arn),
        ("DB_APP_USER", "db_app_user", &v.db_app_user),
        (
            "DB_APP_SECRET_ARN",
            "db_app_secret_arn",
            &v.db_app_secret_arn,
        ),
    ];
    let any = v.db_port.is_some() || named.iter().any(|(_, _, x)| x.is_some());
    for (placeholder, name, value) in named {
        let rendered = if any || shape == Shape::Scaled {
            needed(name, value, shape)?
        } else {
            "''".into()
        };
        out.push((placeholder, rendered));
    }
    let port = match v.db_port {
        Some(p) => p.to_string(),
        None if any || shape == Shape::Scaled => {
            return Err(unsafe_("db_port", "", "the database group needs it"))
        }
        None => "''".into(),
    };
    out.push(("DB_PORT", port));
    Ok(())
}

/// The placeholders of `v`'s shape and their values.
fn pairs(v: &UserDataVars) -> Result<Pairs, UserDataError> {
    let shape = v.shape();
    if v.sha256.len() != 64 || !v.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(unsafe_("sha256", &v.sha256, "expected 64 hex digits"));
    }
    if !v.data_dir.starts_with('/') {
        return Err(unsafe_(
            "data_dir",
            &v.data_dir,
            "expected an absolute path",
        ));
    }
    let mut out: Pairs = vec![
        ("STACK", safe("stack", &v.stack)?),
        ("REGION", safe("region", &v.region)?),
        ("BUCKET", safe("bucket", &v.bucket)?),
        ("KEY", safe("key", &v.key)?),
        ("SHA256", safe("sha256", &v.sha256)?),
        ("DATA_DIR", safe("data_dir", &v.data_dir)?),
        ("APP_UID", v.app_uid.to_string()),
    ];
    match shape {
        Shape::Scaled => {
            out.push((
                "FILE_SYSTEM_ID",
                needed("file_system_id", &v.file_system_id, shape)?,
            ));
            out.push((
                "ACCESS_POINT_ID",
                needed("access_point_id", &v.access_point_id, shape)?,
            ));
            let port = v
                .port
                .ok_or_else(|| unsafe_("port", "", "the scaled shape needs it"))?;
            out.push(("PORT", port.to_string()));
            absent("volume_id", &v.volume_id, shape)?;
            absent("allocation_id", &v.allocation_id, shape)?;
            absent("tls_domains", &v.tls_domains, shape)?;
            absent("acme_directory", &v.acme_directory, shape)?;
            absent("acme_contact", &v.acme_contact, shape)?;
        }
        Shape::Single => {
            absent("file_system_id", &v.file_system_id, shape)?;
            absent("access_point_id", &v.access_point_id, shape)?;
            absent("port", &v.port, shape)?;
            out.push(("VOLUME_ID", needed("volume_id", &v.volume_id, shape)?));
            out.push((
                "ALLOCATION_ID",
                needed("allocation_id", &v.allocation_id, shape)?,
            ));
            if let Some(d) = &v.tls_domains {
                domains(d)?;
            } else if let Some(x) = v.acme_directory.as_ref().or(v.acme_contact.as_ref()) {
                return Err(unsafe_(
                    "acme_directory",
                    x,
                    "ACME settings need tls_domains",
                ));
            }
            out.push(("TLS_DOMAINS", optional("tls_domains", &v.tls_domains)?));
            out.push((
                "ACME_DIRECTORY",
                optional("acme_directory", &v.acme_directory)?,
            ));
            out.push(("ACME_CONTACT", optional("acme_contact", &v.acme_contact)?));
        }
    }
    database(v, shape, &mut out)?;
    Ok(out)
}

/// `script` without its comment lines (but `#!` and `# shellcheck`
/// directives) and blank lines, and with the shell code's indentation
/// dropped; what here-documents write keeps its indentation. A line
/// continued from one ending in `\` keeps one space before it.
pub fn minify(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut heredoc: Option<String> = None;
    let mut continued = false;
    for (i, line) in script.lines().enumerate() {
        let t = line.trim();
        let comment = t.starts_with('#') && !t.starts_with("#!") && !t.starts_with("# shellcheck");
        if let Some(end) = &heredoc {
            if line == end {
                heredoc = None;
            } else if comment {
                continue;
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if i > 0 && (t.is_empty() || comment) {
            continue;
        }
        if continued {
            out.push(' ');
        }
        out.push_str(if i == 0 { line } else { t });
        out.push('\n');
        continued = t.ends_with('\\');
        heredoc = heredoc_end(t);
    }
    out
}

/// The word ending the here-document a line of shell starts, if any
/// (`<<EOF`, `<<'EOF'`).
fn heredoc_end(line: &str) -> Option<String> {
    let at = line.find("<<")?;
    let rest = line[at + 2..].trim_start_matches('-').trim_start();
    let rest = rest.strip_prefix('\'').unwrap_or(rest);
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Renders the boot script for `v`, of `v`'s shape.
pub fn render(v: &UserDataVars) -> Result<String, UserDataError> {
    let pairs = pairs(v)?;
    let shape = v.shape();
    let mut body = minify(&shape.template());
    for (k, val) in &pairs {
        body = body.replace(&format!("@@{k}@@"), val);
    }
    let (shebang, rest) = body.split_once('\n').unwrap_or((&body, ""));
    let vars = serde_json::to_string(v).expect("plain strings and numbers");
    Ok(format!(
        "{shebang}\n{HEADER}{} vars={vars}\n{rest}",
        shape.template_digest()
    ))
}

/// The template digest and values a rendered script was made from.
pub fn read_back(script: &str) -> Option<(String, UserDataVars)> {
    let line = script.lines().nth(1)?.strip_prefix(HEADER)?;
    let (digest, vars) = line.split_once(" vars=")?;
    Some((digest.to_string(), serde_json::from_str(vars).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn vars() -> UserDataVars {
        UserDataVars {
            shape: None,
            stack: "demo".into(),
            region: "us-east-1".into(),
            bucket: "demo-artifacts-123456789012-us-east-1".into(),
            key: format!("bookstore/{}/bookstore", "a".repeat(64)),
            sha256: "a".repeat(64),
            file_system_id: Some("fs-0123abcd".into()),
            access_point_id: Some("fsap-0123abcd".into()),
            data_dir: "/var/lib/bookstore/data".into(),
            port: Some(8080),
            db_host: Some("demo-db.abc.us-east-1.rds.amazonaws.com".into()),
            db_port: Some(3306),
            db_name: Some("bookstore".into()),
            db_user: Some("bookstore".into()),
            db_secret_arn: Some(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCd".into(),
            ),
            db_app_user: Some("bookstore_app".into()),
            db_app_secret_arn: Some(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:bookstore-infra/demo/db-app-password-AbCd"
                    .into(),
            ),
            app_uid: 50000,
            volume_id: None,
            allocation_id: None,
            tls_domains: None,
            acme_directory: None,
            acme_contact: None,
        }
    }

    /// The single shape on SQLite, plain HTTP.
    pub fn single() -> UserDataVars {
        UserDataVars {
            shape: Some(Shape::Single),
            file_system_id: None,
            access_point_id: None,
            port: None,
            db_host: None,
            db_port: None,
            db_name: None,
            db_user: None,
            db_secret_arn: None,
            db_app_user: None,
            db_app_secret_arn: None,
            data_dir: "/var/lib/bookstore".into(),
            volume_id: Some("vol-0123456789abcdef0".into()),
            allocation_id: Some("eipalloc-0123456789abcdef0".into()),
            ..vars()
        }
    }

    /// The single shape with TLS and MySQL, every value as long as it
    /// gets in practice: names at their AWS limits, three domains, the
    /// ACME staging directory, ARNs of long stack names.
    fn longest(shape: Shape) -> UserDataVars {
        let stack = "bookstore-production-eu-central".to_string();
        let region = "ap-southeast-3".to_string();
        let secret =
            |n: &str| format!("arn:aws:secretsmanager:{region}:123456789012:secret:{n}-AbCdEf");
        let mut v = if shape == Shape::Single {
            single()
        } else {
            vars()
        };
        v.stack = stack.clone();
        v.region = region.clone();
        v.bucket = format!("{stack}-art-123456789012-{region}")[..63].to_string();
        v.key = format!("bookstore/{}/bookstore", "f".repeat(64));
        v.sha256 = "f".repeat(64);
        v.data_dir = "/var/lib/bookstore/data".into();
        v.app_uid = 4_294_967_294;
        v.db_host = Some(format!(
            "{stack}-db.c9akciq32xyz.{region}.rds.amazonaws.com"
        ));
        v.db_port = Some(3306);
        v.db_name = Some("bookstore_production".into());
        v.db_user = Some("bookstore_admin1".into());
        v.db_secret_arn = Some(secret("rds!db-0123abcd-4567-89ef-0123-456789abcdef"));
        v.db_app_user = Some("bookstore_admin1_app".into());
        v.db_app_secret_arn = Some(secret(&format!("bookstore-infra/{stack}/db-app-password")));
        if shape == Shape::Single {
            v.tls_domains = Some(
                "shop.bookstore-production.example.com,www.shop.bookstore-production.example.com,books.bookstore-production.example.com"
                    .into(),
            );
            v.acme_directory =
                Some("https://acme-staging-v02.api.letsencrypt.org/directory".into());
            v.acme_contact = Some("mailto:operations-team@bookstore-production.example.com".into());
        } else {
            v.file_system_id = Some("fs-0123456789abcdef0".into());
            v.access_point_id = Some("fsap-0123456789abcdef0".into());
            v.port = Some(65535);
        }
        v
    }

    #[test]
    fn renders_every_placeholder_and_reads_back() {
        let s = render(&vars()).unwrap();
        assert!(!s.contains("@@"), "a placeholder is left");
        assert!(s.starts_with("#!/bin/bash\n# bookstore-infra user-data v1 template="));
        assert_eq!(read_back(&s), Some((template_digest(), vars())));
        assert!(s.contains("SHA256='aaaa"));
        assert!(s.contains("PORT=8080"));
    }

    #[test]
    fn the_scaled_shapes_vars_are_written_as_before_shapes() {
        let json = serde_json::to_value(vars()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut before = vec![
            "stack",
            "region",
            "bucket",
            "key",
            "sha256",
            "file_system_id",
            "access_point_id",
            "data_dir",
            "port",
            "db_host",
            "db_port",
            "db_name",
            "db_user",
            "db_secret_arn",
            "db_app_user",
            "db_app_secret_arn",
            "app_uid",
        ];
        before.sort();
        assert_eq!(keys, before);
        assert_eq!(json["port"], 8080);
        // What launch templates made before shapes carry reads back.
        let old: UserDataVars = serde_json::from_value(json).unwrap();
        assert_eq!((old.shape(), old), (Shape::Scaled, vars()));
    }

    #[test]
    fn renders_the_single_shape_and_reads_it_back() {
        let s = render(&single()).unwrap();
        assert!(!s.contains("@@"), "a placeholder is left");
        let (digest, back) = read_back(&s).unwrap();
        assert_eq!(
            (digest.as_str(), &back),
            (Shape::Single.template_digest().as_str(), &single())
        );
        assert_ne!(digest, template_digest());
        for line in [
            "VOLUME_ID='vol-0123456789abcdef0'",
            "ALLOCATION_ID='eipalloc-0123456789abcdef0'",
            "TLS_DOMAINS=''",
            "DB_HOST=''",
            "DB_PORT=''",
        ] {
            assert!(s.lines().any(|l| l == line), "{line}");
        }
        let json = serde_json::to_value(single()).unwrap();
        assert_eq!(json["shape"], "single");
        assert!(json.get("db_host").is_none() && json.get("port").is_none());
        // Nothing of the scaled shape's: no EFS, no fixed port.
        assert!(!s.contains("mount -t efs") && !s.contains("BOOKSTORE_LISTEN"));

        let v = longest(Shape::Single);
        let s = render(&v).unwrap();
        assert_eq!(read_back(&s).unwrap().1, v);
        assert!(s.contains("DB_PORT=3306\n"));
        assert!(
            s.contains("ACME_CONTACT='mailto:operations-team@bookstore-production.example.com'\n")
        );
    }

    #[test]
    fn each_shape_takes_its_own_values_only() {
        let refused = |v: UserDataVars, field: &str| match render(&v) {
            Err(UserDataError::Unsafe { name, .. }) => assert_eq!(name, field),
            Ok(_) => panic!("{field}: rendered"),
        };
        let mut v = single();
        v.volume_id = None;
        refused(v, "volume_id");
        let mut v = single();
        v.allocation_id = None;
        refused(v, "allocation_id");
        let mut v = single();
        v.file_system_id = Some("fs-1".into());
        refused(v, "file_system_id");
        let mut v = single();
        v.port = Some(80);
        refused(v, "port");
        // The database group is all there or not at all.
        let mut v = single();
        v.db_host = Some("db.example.com".into());
        refused(v, "db_name");
        let mut v = longest(Shape::Single);
        v.db_port = None;
        refused(v, "db_port");
        let mut v = single();
        v.acme_contact = Some("mailto:a@example.com".into());
        refused(v, "acme_directory");
        for bad in [
            "a..b",
            "-a.example.com",
            "a.example.com,",
            "a_b.example.com",
        ] {
            let mut v = single();
            v.tls_domains = Some(bad.into());
            refused(v, "tls_domains");
        }
        let mut v = vars();
        v.volume_id = Some("vol-1".into());
        refused(v, "volume_id");
        let mut v = vars();
        v.db_secret_arn = None;
        refused(v, "db_secret_arn");
        let mut v = vars();
        v.port = None;
        refused(v, "port");
    }

    #[test]
    fn both_shapes_fit_in_16_kb_with_the_longest_values() {
        for shape in [Shape::Scaled, Shape::Single] {
            let s = render(&longest(shape)).unwrap();
            let max = crate::topology::rules::USER_DATA_MAX;
            assert!(s.len() <= max, "{}: {} bytes", shape.name(), s.len());
            // With some room for the templates to grow.
            assert!(s.len() + 256 <= max, "{}: {} bytes", shape.name(), s.len());
        }
    }

    #[test]
    fn refuses_values_that_could_escape_their_quotes() {
        for bad in ["x'; rm -rf /", "a b", "$(id)", "`id`", "x\ny"] {
            let mut v = vars();
            v.db_host = Some(bad.into());
            assert!(
                matches!(
                    render(&v),
                    Err(UserDataError::Unsafe {
                        name: "db_host",
                        ..
                    })
                ),
                "{bad:?}"
            );
            let mut v = single();
            v.acme_contact = Some(bad.into());
            v.tls_domains = Some("a.example.com".into());
            assert!(render(&v).is_err(), "{bad:?}");
        }
        let mut v = vars();
        v.sha256 = "nothex".into();
        assert!(render(&v).is_err());
    }

    #[test]
    fn minifying_keeps_what_here_documents_write() {
        let t = "#!/bin/bash\n# a comment\n\nif x; then\n    y \\\n        --z\nfi\n# shellcheck disable=SC2086\ncat >f <<'EOF'\n#!/bin/sh\n# gone\n    indented\n\nEOF\n    z\n";
        assert_eq!(
            minify(t),
            "#!/bin/bash\nif x; then\ny \\\n --z\nfi\n# shellcheck disable=SC2086\ncat >f <<'EOF'\n#!/bin/sh\n    indented\n\nEOF\nz\n"
        );
        // The log shipper, Python, keeps its indentation.
        let s = render(&vars()).unwrap();
        assert!(s.contains("\n    if first_at is None:\n        first_at = time.monotonic()\n"));
    }

    #[test]
    fn the_rendered_scripts_parse() {
        for v in [vars(), single(), longest(Shape::Single)] {
            let s = render(&v).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("boot.sh");
            std::fs::write(&p, s).unwrap();
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
