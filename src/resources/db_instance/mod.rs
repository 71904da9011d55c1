//! `rds:db-instance`: the MySQL database. It holds data: the engine never
//! replaces or deletes it in `up` without `--allow-replace db`, and
//! `destroy` takes a final snapshot unless the stack says otherwise.
//!
//! The master password is created and kept by RDS in Secrets Manager
//! (`ManageMasterUserPassword`); this tool never sees it.
//!
//! The instance uses the stack's parameter group (`rds:db-parameter-group`).
//! A group given to a running instance applies only when it reboots
//! (`ParameterApplyStatus` `pending-reboot`): `up` reboots it when the stack
//! says `apply_immediately`, and otherwise says so, and the plan shows
//! `parameters_applied: false -> true` until it is rebooted.

mod modify;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Tag};
use serde_json::json;

use super::attrs::sorted_strings;
use super::db_subnet_group::{owner, rds_tags};
use crate::cloud::{api_error, Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::calls::{w, Call};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Repeat, ReplacePolicy, Resolved, ResourceKind,
};
use crate::lifecycle::{self, Readiness};
pub use modify::civil;
use modify::{applied, modify, pending_reboot, reboot, utc_stamp, wait_deleted};

pub const KIND: &str = "rds:db-instance";
/// Whether `destroy` snapshots the database first ("true"/"false").
pub const TAG_FINAL_SNAPSHOT: &str = "bookstore-infra:final-snapshot";
/// The engine version the stack asked for ("8.0" is satisfied by 8.0.x).
pub const TAG_ENGINE_VERSION: &str = "bookstore-infra:engine-version";

pub struct Database;

fn tag_value<'a>(d: &'a DbInstance, k: &str) -> Option<&'a str> {
    d.tag_list()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
}

/// The instance as props. Changes waiting for the maintenance window count
/// as made: they are requested, and asking again would change nothing.
pub(super) fn observed(id: &str, d: &DbInstance) -> Observed {
    let p = d.pending_modified_values();
    let actual = d.engine_version().unwrap_or_default();
    let version = match (
        p.and_then(|p| p.engine_version()),
        tag_value(d, TAG_ENGINE_VERSION),
    ) {
        (Some(v), _) => v.to_string(),
        (None, Some(asked)) if actual == asked || actual.starts_with(&format!("{asked}.")) => {
            asked.to_string()
        }
        _ => actual.to_string(),
    };
    let mut sgs: Vec<&str> = d
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    sgs.sort();
    let ident = d.db_instance_identifier().unwrap_or_default();
    Observed::new(KIND, id, ident)
        .prop("identifier", ident)
        .prop("engine", d.engine().unwrap_or_default())
        .prop("engine_version", version)
        .prop(
            "instance_class",
            p.and_then(|p| p.db_instance_class())
                .or(d.db_instance_class())
                .unwrap_or_default(),
        )
        .prop(
            "allocated_storage",
            p.and_then(|p| p.allocated_storage())
                .or(d.allocated_storage())
                .unwrap_or(0),
        )
        .prop(
            "multi_az",
            p.and_then(|p| p.multi_az())
                .or(d.multi_az())
                .unwrap_or(false),
        )
        .prop(
            "backup_retention_days",
            p.and_then(|p| p.backup_retention_period())
                .or(d.backup_retention_period())
                .unwrap_or(0),
        )
        .prop("storage_encrypted", d.storage_encrypted().unwrap_or(false))
        .prop(
            "publicly_accessible",
            d.publicly_accessible().unwrap_or(false),
        )
        .prop(
            "deletion_protection",
            d.deletion_protection().unwrap_or(false),
        )
        .prop(
            "db_subnet_group",
            d.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .unwrap_or_default(),
        )
        .prop("security_group_ids", json!(sgs))
        .prop(
            "parameter_group",
            d.db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .unwrap_or_default(),
        )
        .prop("parameters_applied", !pending_reboot(d))
        .prop("db_name", d.db_name().unwrap_or_default())
        .prop("master_username", d.master_username().unwrap_or_default())
        .prop(
            "final_snapshot",
            tag_value(d, TAG_FINAL_SNAPSHOT) != Some("false"),
        )
        .attr("arn", d.db_instance_arn().unwrap_or_default())
        .attr(
            "endpoint",
            d.endpoint().and_then(|e| e.address()).unwrap_or_default(),
        )
        .attr(
            "port",
            d.endpoint()
                .and_then(|e| e.port())
                .unwrap_or(3306)
                .to_string(),
        )
        .attr(
            "secret_arn",
            d.master_user_secret()
                .and_then(|s| s.secret_arn())
                .unwrap_or_default(),
        )
        // Being created (no endpoint yet) or otherwise not available.
        .pending(
            d.db_instance_status() != Some("available")
                || d.endpoint().and_then(|e| e.address()).is_none(),
        )
}

pub(super) async fn describe(
    cloud: &Cloud,
    id: &str,
    ident: &str,
) -> Result<Option<DbInstance>, CloudError> {
    match cloud
        .rds
        .describe_db_instances()
        .db_instance_identifier(ident)
        .send()
        .await
    {
        Ok(d) => Ok(d.db_instances().first().cloned()),
        Err(e) => {
            let e = api_error(id, "DescribeDBInstances", e);
            if e.code() == Some("DBInstanceNotFound") || e.code() == Some("DBInstanceNotFoundFault")
            {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    w("rds", "add_tags_to_resource", "AddTagsToResource", &["rds:AddTagsToResource"]),
    // RDS makes (and deletes) the master user's secret with the caller's
    // rights ("Required permissions for Secrets Manager integration",
    // Amazon RDS User Guide).
    w("rds", "create_db_instance", "CreateDBInstance", &["rds:CreateDBInstance", "rds:AddTagsToResource", "iam:CreateServiceLinkedRole", "secretsmanager:CreateSecret", "secretsmanager:TagResource"]),
    w("rds", "delete_db_instance", "DeleteDBInstance", &["rds:DeleteDBInstance", "rds:CreateDBSnapshot", "secretsmanager:DeleteSecret"]),
    w("rds", "modify_db_instance", "ModifyDBInstance", &["rds:ModifyDBInstance"]),
    w("rds", "reboot_db_instance", "RebootDBInstance", &["rds:RebootDBInstance"]),
];

#[async_trait]
impl ResourceKind for Database {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Identifiers are unique: `DBInstanceAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn timeout(&self, t: &crate::stack::Timeouts, phase: Phase) -> std::time::Duration {
        match phase {
            Phase::Create | Phase::Rollout => t.database,
            Phase::Delete => t.database_delete,
        }
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("identifier"),
            replace("engine"),
            replace("storage_encrypted"),
            replace("db_subnet_group"),
            replace("db_name"),
            replace("master_username"),
            in_place("engine_version"),
            in_place("instance_class"),
            in_place("allocated_storage"),
            in_place("multi_az"),
            in_place("backup_retention_days"),
            in_place("publicly_accessible"),
            in_place("deletion_protection"),
            in_place("security_group_ids"),
            in_place("parameter_group"),
            in_place("parameters_applied"),
            in_place("final_snapshot"),
        ];
        A
    }

    fn replace_policy(&self) -> ReplacePolicy {
        ReplacePolicy::RequireConfirmation
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // RDS cannot filter instances by tag; DescribeDBInstances carries the
        // tags, so other stacks' and untagged instances are skipped here.
        let all = cloud
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeDBInstances")?;
        Ok(all
            .iter()
            .filter(|d| d.db_instance_status() != Some("deleting"))
            .filter_map(|d| Some(observed(&owner(d.tag_list(), stack)?, d)))
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let ident = r.str("identifier")?;
        let mut tags = rds_tags(&r.tags);
        tags.push(
            Tag::builder()
                .key(TAG_FINAL_SNAPSHOT)
                .value(r.bool("final_snapshot").to_string())
                .build(),
        );
        tags.push(
            Tag::builder()
                .key(TAG_ENGINE_VERSION)
                .value(r.str("engine_version")?)
                .build(),
        );
        let res = cloud
            .rds
            .create_db_instance()
            .db_instance_identifier(ident)
            .engine(r.str("engine")?)
            .engine_version(r.str("engine_version")?)
            .db_instance_class(r.str("instance_class")?)
            .allocated_storage(r.i64("allocated_storage")? as i32)
            .multi_az(r.bool("multi_az"))
            .backup_retention_period(r.i64("backup_retention_days")? as i32)
            .storage_encrypted(r.bool("storage_encrypted"))
            .publicly_accessible(r.bool("publicly_accessible"))
            .deletion_protection(r.bool("deletion_protection"))
            .db_subnet_group_name(r.str("db_subnet_group")?)
            .db_parameter_group_name(r.str("parameter_group")?)
            .set_vpc_security_group_ids(Some(sorted_strings(r.props.get("security_group_ids"))))
            .db_name(r.str("db_name")?)
            .master_username(r.str("master_username")?)
            .manage_master_user_password(true)
            .copy_tags_to_snapshot(true)
            .set_tags(Some(tags))
            .send()
            .await;
        let d = match res {
            Ok(o) => o.db_instance().cloned(),
            Err(e) => {
                let e = api_error(&r.id, "CreateDBInstance", e);
                if e.code() != Some("DBInstanceAlreadyExists")
                    && e.code() != Some("DBInstanceAlreadyExistsFault")
                {
                    return Err(e);
                }
                let d = describe(cloud, &r.id, ident).await?;
                super::adopt_if_ours(
                    r,
                    &format!("a database named {ident}"),
                    d.as_ref().and_then(|d| owner(d.tag_list(), &r.stack)),
                )?;
                d
            }
        };
        let d = d.ok_or_else(|| CloudError::invalid(&r.id, "CreateDBInstance returned nothing"))?;
        Ok(observed(&r.id, &d))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let ident = &current.physical_id;
        let has = |a: &str| changed.iter().any(|c| c == a);
        let arn = current.attrs.get("arn").cloned().unwrap_or_default();
        if has("final_snapshot") || has("engine_version") {
            cloud
                .rds
                .add_tags_to_resource()
                .resource_name(&arn)
                .tags(
                    Tag::builder()
                        .key(TAG_FINAL_SNAPSHOT)
                        .value(r.bool("final_snapshot").to_string())
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key(TAG_ENGINE_VERSION)
                        .value(r.str("engine_version")?)
                        .build(),
                )
                .send()
                .await
                .ctx(&r.id, "AddTagsToResource")?;
        }
        // The reboot a parameter group waits for is no setting to modify.
        let settings = changed
            .iter()
            .any(|c| c != "final_snapshot" && c != "parameters_applied");
        if settings {
            let mut m = cloud
                .rds
                .modify_db_instance()
                .db_instance_identifier(ident)
                .apply_immediately(r.bool("apply_immediately"));
            if has("engine_version") {
                m = m
                    .engine_version(r.str("engine_version")?)
                    .allow_major_version_upgrade(false);
            }
            if has("instance_class") {
                m = m.db_instance_class(r.str("instance_class")?);
            }
            if has("allocated_storage") {
                m = m.allocated_storage(r.i64("allocated_storage")? as i32);
            }
            if has("multi_az") {
                m = m.multi_az(r.bool("multi_az"));
            }
            if has("backup_retention_days") {
                m = m.backup_retention_period(r.i64("backup_retention_days")? as i32);
            }
            if has("publicly_accessible") {
                m = m.publicly_accessible(r.bool("publicly_accessible"));
            }
            if has("deletion_protection") {
                m = m.deletion_protection(r.bool("deletion_protection"));
            }
            if has("security_group_ids") {
                m = m.set_vpc_security_group_ids(Some(sorted_strings(
                    r.props.get("security_group_ids"),
                )));
            }
            if has("parameter_group") {
                m = m.db_parameter_group_name(r.str("parameter_group")?);
            }
            modify(cloud, &r.id, m).await?;
            if r.bool("apply_immediately") {
                applied(cloud, &r.id, ident).await?;
            }
        }
        let d = describe(cloud, &r.id, ident)
            .await?
            .ok_or_else(|| CloudError::invalid(&r.id, format!("database {ident} disappeared")))?;
        if !pending_reboot(&d) {
            return Ok(observed(&r.id, &d));
        }
        if r.bool("apply_immediately") {
            return reboot(cloud, &r.id, ident).await;
        }
        cloud.reporter.note(&format!(
            "{}: database {ident} applies its parameter group (require_secure_transport) \
             only when it reboots: reboot it in a quiet hour \
             (aws rds reboot-db-instance --db-instance-identifier {ident}), or set \
             [database] apply_immediately = true and run up again",
            r.id
        ));
        Ok(observed(&r.id, &d))
    }

    async fn wait_ready(&self, cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        let (id, ident) = (current.id.clone(), current.physical_id.clone());
        let d = cloud
            .wait_until(
                &id,
                "available",
                cloud.timeouts.for_kind(KIND, Phase::Create),
                || async {
                    let Some(d) = describe(cloud, &id, &ident).await? else {
                        return Ok((None, "not visible yet".into()));
                    };
                    let status = d.db_instance_status().unwrap_or("creating").to_string();
                    let has_endpoint = d.endpoint().and_then(|e| e.address()).is_some();
                    match lifecycle::db_instance(&status, has_endpoint) {
                        Readiness::Ready => Ok((Some(d), status)),
                        Readiness::Pending => Ok((None, status)),
                        Readiness::Terminal(why) => Err(CloudError::invalid(
                            &id,
                            format!("database {ident} is {why}"),
                        )),
                    }
                },
            )
            .await?;
        Ok(observed(&id, &d))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let (id, ident) = (current.id.clone(), current.physical_id.clone());
        // Restartable: the executor tries the whole delete again while RDS
        // refuses it (deletion protection not lifted yet, instance busy).
        let status = match describe(cloud, &id, &ident).await? {
            None => return Ok(()),
            Some(d) => d.db_instance_status().unwrap_or_default().to_string(),
        };
        if status == "deleting" {
            return wait_deleted(cloud, &id, &ident).await;
        }
        if current.props.get("deletion_protection") == Some(&json!(true)) {
            cloud
                .rds
                .modify_db_instance()
                .db_instance_identifier(&ident)
                .deletion_protection(false)
                .apply_immediately(true)
                .send()
                .await
                .ctx(&id, "ModifyDBInstance")?;
        }
        let snapshot = current.props.get("final_snapshot") != Some(&json!(false));
        let mut req = cloud
            .rds
            .delete_db_instance()
            .db_instance_identifier(&ident);
        if snapshot {
            let name = format!("{ident}-final-{}", utc_stamp());
            cloud.reporter.note(&format!("{id}: final snapshot {name}"));
            req = req.final_db_snapshot_identifier(name);
        } else {
            req = req.skip_final_snapshot(true);
        }
        if let Err(e) = req.send().await {
            let e = api_error(&id, "DeleteDBInstance", e);
            let gone = e
                .code()
                .is_some_and(|c| c.starts_with("DBInstanceNotFound"));
            // "Instance ... is already being deleted" (Terraform's provider
            // treats it as success too).
            let deleting = e
                .code()
                .is_some_and(|c| c.starts_with("InvalidDBInstanceState"))
                && e.message()
                    .is_some_and(|m| m.contains("already being deleted"));
            if !(gone || deleting) {
                return Err(e);
            }
        }
        wait_deleted(cloud, &id, &ident).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fourteen_digits() {
        let s = utc_stamp();
        assert_eq!(s.len(), 14);
        assert!(s.starts_with("20"));
    }

    #[test]
    fn what_forces_a_replacement() {
        let k = Database;
        let replace: Vec<&str> = k
            .attributes()
            .iter()
            .filter(|a| a.change == crate::engine::Change::Replace)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            replace,
            [
                "identifier",
                "engine",
                "storage_encrypted",
                "db_subnet_group",
                "db_name",
                "master_username"
            ]
        );
        assert_eq!(k.replace_policy(), ReplacePolicy::RequireConfirmation);
    }
}
