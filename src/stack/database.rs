//! `[database]`: the RDS for MySQL instance.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::field::{aws_id, string_newtype, Invalid};

/// A MySQL database or user name: 1 to 16 letters, digits or _, starting
/// with a letter.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SqlName(String);

impl SqlName {
    pub fn parse(s: &str) -> Result<SqlName, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= 16
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        ok.then(|| SqlName(s.to_string())).ok_or(Invalid::Rule(
            "1 to 16 letters, digits or _, starting with a letter",
        ))
    }
}

string_newtype!(SqlName);

#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub instance_class: String,
    pub allocated_storage: u32,
    pub engine_version: String,
    pub multi_az: bool,
    pub backup_retention_days: u32,
    pub name: SqlName,
    pub username: SqlName,
    pub apply_immediately: bool,
    pub final_snapshot: bool,
    pub deletion_protection: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
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

pub(super) fn parse(src: &Source, db: RawDatabase) -> Result<Database, StackError> {
    Ok(Database {
        instance_class: src.text(
            &db.instance_class,
            "database.instance_class",
            |s| aws_id(s) && s.starts_with("db."),
            "not a DB instance class like db.t3.micro",
            "db.t3.micro",
        )?,
        allocated_storage: src.int(
            &db.allocated_storage,
            "database.allocated_storage",
            20..=65536,
            20,
        )?,
        engine_version: src.text(
            &db.engine_version,
            "database.engine_version",
            |s| s.starts_with("8."),
            "MySQL 8 versions only (8.0, 8.0.39, 8.4...)",
            "8.0",
        )?,
        multi_az: db.multi_az.unwrap_or(true),
        backup_retention_days: src.int(
            &db.backup_retention_days,
            "database.backup_retention_days",
            1..=35,
            7,
        )?,
        name: src.parse_or(&db.name, "database.name", SqlName::parse, "bookstore")?,
        username: src.parse_or(
            &db.username,
            "database.username",
            SqlName::parse,
            "bookstore",
        )?,
        apply_immediately: db.apply_immediately.unwrap_or(false),
        final_snapshot: db.final_snapshot.unwrap_or(true),
        deletion_protection: db.deletion_protection.unwrap_or(true),
    })
}
