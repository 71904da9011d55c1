//! `rds:db-parameter-group`: the database's settings that the stack owns.
//! Today one: `require_secure_transport = 1`, so MySQL refuses any
//! connection that is not TLS ("Requiring SSL/TLS for all connections to a
//! MySQL DB instance", Amazon RDS User Guide). A parameter set by hand is
//! drift: `up` sets the wanted ones again and resets any other.
//!
//! The family follows the engine version (`mysql8.0`, `mysql8.4`) and is in
//! the name, so a new family's group is made beside the old one and the
//! database moves to it before the old one is deleted.
//! DescribeDBParameterGroups returns no tags: only groups whose name starts
//! with the stack's name have their tags read, one call each;
//! `DescribeDBParameters` with `Source=user` lists what was set.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_rds::types::{ApplyMethod, Parameter};
use serde_json::{json, Value};

use super::db_subnet_group::{owner, rds_tags};
use super::gone_ok;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, plan, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "rds:db-parameter-group";

pub struct DbParameterGroup;

/// The parameter group family of a MySQL engine version: `8.0` and
/// `8.0.39` are `mysql8.0`, `8.4` is `mysql8.4`.
pub fn family(engine_version: &str) -> String {
    let mut parts = engine_version.split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or("0");
    format!("mysql{major}.{minor}")
}

/// The group's name for a stack and family: letters, digits and single
/// hyphens, as RDS requires.
pub fn name(stack: &str, family: &str) -> String {
    format!("{stack}-db-{}", family.replace('.', "-"))
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("rds", "describe_db_parameter_groups", "DescribeDBParameterGroups", &["rds:DescribeDBParameterGroups"]),
    r("rds", "describe_db_parameters", "DescribeDBParameters", &["rds:DescribeDBParameters"]),
    w("rds", "create_db_parameter_group", "CreateDBParameterGroup", &["rds:CreateDBParameterGroup", "rds:AddTagsToResource"]),
    w("rds", "modify_db_parameter_group", "ModifyDBParameterGroup", &["rds:ModifyDBParameterGroup"]),
    w("rds", "reset_db_parameter_group", "ResetDBParameterGroup", &["rds:ResetDBParameterGroup"]),
    w("rds", "delete_db_parameter_group", "DeleteDBParameterGroup", &["rds:DeleteDBParameterGroup"]),
];

fn wanted(r: &Resolved) -> BTreeMap<String, String> {
    r.props
        .get("parameters")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The parameters set in a group (`Source=user`), by name.
async fn user_parameters(
    cloud: &Cloud,
    id: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, CloudError> {
    let params = cloud
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(name)
        .source("user")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(id, "DescribeDBParameters")?;
    Ok(params
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_name()?.to_string(),
                p.parameter_value()?.to_string(),
            ))
        })
        .collect())
}

/// Sets `want` (applied at once: these are dynamic parameters) and resets
/// whatever else is set (`have` minus `want`).
async fn converge(
    cloud: &Cloud,
    id: &str,
    name: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> Result<(), CloudError> {
    let set: Vec<Parameter> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_name(k)
                .parameter_value(v)
                .apply_method(ApplyMethod::Immediate)
                .build()
        })
        .collect();
    if !set.is_empty() {
        let req = cloud
            .rds
            .modify_db_parameter_group()
            .db_parameter_group_name(name)
            .set_parameters(Some(set));
        cloud
            .settle(id, "ModifyDBParameterGroup", || req.clone().send())
            .await?;
    }
    let extra: Vec<Parameter> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(|k| {
            Parameter::builder()
                .parameter_name(k)
                .apply_method(ApplyMethod::Immediate)
                .build()
        })
        .collect();
    if !extra.is_empty() {
        cloud
            .rds
            .reset_db_parameter_group()
            .db_parameter_group_name(name)
            .set_parameters(Some(extra))
            .send()
            .await
            .ctx(id, "ResetDBParameterGroup")?;
    }
    Ok(())
}

#[async_trait]
impl ResourceKind for DbParameterGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Names are unique: `DBParameterGroupAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            replace("family"),
            replace("description"),
            in_place("parameters"),
        ];
        A
    }

    /// A new family is a new name: the new group can exist beside the old.
    fn create_before_destroy(&self, changes: &[plan::AttrDiff], _: &Observed) -> bool {
        crate::engine::changes(changes, "name")
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let all = cloud
            .rds
            .describe_db_parameter_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeDBParameterGroups")?;
        let mut out = Vec::new();
        for g in &all {
            let (Some(name), Some(arn)) = (g.db_parameter_group_name(), g.db_parameter_group_arn())
            else {
                continue;
            };
            if !name.starts_with(stack) {
                continue;
            }
            let tags = cloud
                .rds
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .ctx(KIND, "ListTagsForResource")?;
            let Some(id) = owner(tags.tag_list(), stack) else {
                continue;
            };
            let params = user_parameters(cloud, &id, name).await?;
            out.push(
                Observed::new(KIND, id, name)
                    .prop("name", name)
                    .prop("family", g.db_parameter_group_family().unwrap_or_default())
                    .prop("description", g.description().unwrap_or_default())
                    .prop("parameters", json!(params))
                    .attr("arn", arn),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let made = cloud
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(name)
            .db_parameter_group_family(r.str("family")?)
            .description(r.str("description")?)
            .set_tags(Some(rds_tags(&r.tags)))
            .send()
            .await
            .ctx(&r.id, "CreateDBParameterGroup")?;
        let arn = made
            .db_parameter_group()
            .and_then(|g| g.db_parameter_group_arn())
            .unwrap_or_default()
            .to_string();
        let want = wanted(r);
        converge(cloud, &r.id, name, &want, &BTreeMap::new()).await?;
        Ok(Observed::new(KIND, &r.id, name)
            .prop("name", name)
            .prop("family", r.str("family")?)
            .prop("description", r.str("description")?)
            .prop("parameters", json!(want))
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let have: BTreeMap<String, String> = current
            .props
            .get("parameters")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let want = wanted(r);
        converge(cloud, &r.id, &current.physical_id, &want, &have).await?;
        Ok(current.clone().prop("parameters", json!(want)))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        // Refused with `InvalidDBParameterGroupState` while a database
        // uses it (the executor tries again, see `engine::retry`).
        match cloud
            .rds
            .delete_db_parameter_group()
            .db_parameter_group_name(&current.physical_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => gone_ok(Err(api_error(&current.id, "DeleteDBParameterGroup", e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_follows_the_engine_version() {
        assert_eq!(family("8.0"), "mysql8.0");
        assert_eq!(family("8.0.39"), "mysql8.0");
        assert_eq!(family("8.4"), "mysql8.4");
        assert_eq!(name("demo", "mysql8.0"), "demo-db-mysql8-0");
    }
}
