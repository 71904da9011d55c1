//! The boot script of an app instance, rendered from `userdata/bookstore.sh`.
//!
//! The rendered script starts with a header line holding the template's
//! digest and the values it was rendered with, so that what a launch
//! template carries can be read back and compared with what is wanted.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The template, as shipped.
pub const TEMPLATE: &str = include_str!("../userdata/bookstore.sh");
const HEADER: &str = "# bookstore-infra user-data v1 template=";

/// Everything the boot script needs to know. No secret: the database
/// passwords are fetched on the instance, the master user's from
/// `db_secret_arn` (for the migrate step only), the app user's from
/// `db_app_secret_arn` (handed to the web server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDataVars {
    pub stack: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub file_system_id: String,
    pub access_point_id: String,
    pub data_dir: String,
    pub port: u16,
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    /// The master user: migrations and the app user's rights.
    pub db_user: String,
    pub db_secret_arn: String,
    /// The user the web server connects as.
    pub db_app_user: String,
    pub db_app_secret_arn: String,
    /// uid and gid of the app's user: the file system access point's.
    pub app_uid: u32,
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

/// sha256 (hex) of the template text.
pub fn template_digest() -> String {
    hex::encode(Sha256::digest(TEMPLATE.as_bytes()))
}

/// The longest value the boot script takes.
pub const MAX_VALUE_LEN: usize = 2048;

fn safe(name: &'static str, value: &str) -> Result<String, UserDataError> {
    let why = if value.len() > MAX_VALUE_LEN {
        Some("use at most 2048 characters")
    } else if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@+=,!-".contains(c))
    {
        Some("use letters, digits and ._:/@+=,!- only")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(UserDataError::Unsafe {
            name,
            value: value.into(),
            why,
        });
    }
    Ok(format!("'{value}'"))
}

/// Renders the boot script for `v`.
pub fn render(v: &UserDataVars) -> Result<String, UserDataError> {
    if v.sha256.len() != 64 || !v.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(UserDataError::Unsafe {
            name: "sha256",
            value: v.sha256.clone(),
            why: "expected 64 hex digits",
        });
    }
    if !v.data_dir.starts_with('/') {
        return Err(UserDataError::Unsafe {
            name: "data_dir",
            value: v.data_dir.clone(),
            why: "expected an absolute path",
        });
    }
    let pairs: [(&str, String); 17] = [
        ("STACK", safe("stack", &v.stack)?),
        ("REGION", safe("region", &v.region)?),
        ("BUCKET", safe("bucket", &v.bucket)?),
        ("KEY", safe("key", &v.key)?),
        ("SHA256", safe("sha256", &v.sha256)?),
        ("FILE_SYSTEM_ID", safe("file_system_id", &v.file_system_id)?),
        (
            "ACCESS_POINT_ID",
            safe("access_point_id", &v.access_point_id)?,
        ),
        ("DATA_DIR", safe("data_dir", &v.data_dir)?),
        ("PORT", v.port.to_string()),
        ("DB_HOST", safe("db_host", &v.db_host)?),
        ("DB_PORT", v.db_port.to_string()),
        ("DB_NAME", safe("db_name", &v.db_name)?),
        ("DB_USER", safe("db_user", &v.db_user)?),
        ("DB_SECRET_ARN", safe("db_secret_arn", &v.db_secret_arn)?),
        ("DB_APP_USER", safe("db_app_user", &v.db_app_user)?),
        (
            "DB_APP_SECRET_ARN",
            safe("db_app_secret_arn", &v.db_app_secret_arn)?,
        ),
        ("APP_UID", v.app_uid.to_string()),
    ];
    let mut body = TEMPLATE.to_string();
    for (k, val) in &pairs {
        body = body.replace(&format!("@@{k}@@"), val);
    }
    let (shebang, rest) = body.split_once('\n').unwrap_or((&body, ""));
    let vars = serde_json::to_string(v).expect("plain strings and numbers");
    Ok(format!(
        "{shebang}\n{HEADER}{} vars={vars}\n{rest}",
        template_digest()
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
            stack: "demo".into(),
            region: "us-east-1".into(),
            bucket: "demo-artifacts-123456789012-us-east-1".into(),
            key: format!("bookstore/{}/bookstore", "a".repeat(64)),
            sha256: "a".repeat(64),
            file_system_id: "fs-0123abcd".into(),
            access_point_id: "fsap-0123abcd".into(),
            data_dir: "/var/lib/bookstore/data".into(),
            port: 8080,
            db_host: "demo-db.abc.us-east-1.rds.amazonaws.com".into(),
            db_port: 3306,
            db_name: "bookstore".into(),
            db_user: "bookstore".into(),
            db_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCd"
                .into(),
            db_app_user: "bookstore_app".into(),
            db_app_secret_arn:
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:bookstore-infra/demo/db-app-password-AbCd"
                    .into(),
            app_uid: 50000,
        }
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
    fn refuses_values_that_could_escape_their_quotes() {
        for bad in ["x'; rm -rf /", "a b", "$(id)", "`id`", "x\ny"] {
            let mut v = vars();
            v.db_host = bad.into();
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
        }
        let mut v = vars();
        v.sha256 = "nothex".into();
        assert!(render(&v).is_err());
    }

    #[test]
    fn the_rendered_script_parses() {
        let s = render(&vars()).unwrap();
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
