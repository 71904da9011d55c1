//! `rds:db-subnet-group`: the private subnets the database may use.
//!
//! DescribeDBSubnetGroups returns no tags: only groups whose name starts
//! with the stack's name have their tags read, one call each.

use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use serde_json::json;

use super::attrs::sorted_strings;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "rds:db-subnet-group";

pub struct DbSubnetGroup;

pub(crate) fn rds_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn owner(tags: &[Tag], stack: &str) -> Option<String> {
    super::owner_id(
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
        stack,
    )
}

fn subnet_ids(r: &Resolved) -> Vec<String> {
    sorted_strings(&r.props["subnet_ids"])
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("rds", "describe_db_subnet_groups", "DescribeDBSubnetGroups", &["rds:DescribeDBSubnetGroups"]),
    r("rds", "list_tags_for_resource", "ListTagsForResource", &["rds:ListTagsForResource"]),
    w("rds", "create_db_subnet_group", "CreateDBSubnetGroup", &["rds:CreateDBSubnetGroup", "rds:AddTagsToResource"]),
    w("rds", "delete_db_subnet_group", "DeleteDBSubnetGroup", &["rds:DeleteDBSubnetGroup"]),
    w("rds", "modify_db_subnet_group", "ModifyDBSubnetGroup", &["rds:ModifyDBSubnetGroup"]),
];

#[async_trait]
impl ResourceKind for DbSubnetGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Names are unique: `DBSubnetGroupAlreadyExists`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            in_place("description"),
            in_place("subnet_ids"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        // No tag filter and no tags in the answer: the name prefix narrows the
        // groups whose tags are read (ListTagsForResource, unpaged, one per group).
        let all = cloud
            .rds
            .describe_db_subnet_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeDBSubnetGroups")?;
        let mut out = Vec::new();
        for g in &all {
            let (Some(name), Some(arn)) = (g.db_subnet_group_name(), g.db_subnet_group_arn())
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
            let mut subnets: Vec<&str> = g
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_identifier())
                .collect();
            subnets.sort();
            out.push(
                Observed::new(KIND, id, name)
                    .prop("name", name)
                    .prop(
                        "description",
                        g.db_subnet_group_description().unwrap_or_default(),
                    )
                    .prop("subnet_ids", json!(subnets))
                    .attr("arn", arn),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        // The subnets may have been created moments before.
        let req = cloud
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description(r.str("description")?)
            .set_subnet_ids(Some(subnet_ids(r)))
            .set_tags(Some(rds_tags(&r.tags)));
        let res = cloud
            .settle(&r.id, "CreateDBSubnetGroup", || req.clone().send())
            .await;
        let arn = match res {
            Ok(o) => o
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_arn())
                .unwrap_or_default()
                .to_string(),
            Err(e) => {
                if e.code() != Some("DBSubnetGroupAlreadyExists") {
                    return Err(e);
                }
                // Ours from an interrupted run, if the tags say so.
                let d = cloud
                    .rds
                    .describe_db_subnet_groups()
                    .db_subnet_group_name(name)
                    .send()
                    .await
                    .ctx(&r.id, "DescribeDBSubnetGroups")?;
                let arn = d
                    .db_subnet_groups()
                    .first()
                    .and_then(|g| g.db_subnet_group_arn())
                    .unwrap_or_default()
                    .to_string();
                let tags = cloud
                    .rds
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
                    .await
                    .ctx(&r.id, "ListTagsForResource")?;
                super::adopt_if_ours(
                    r,
                    &format!("DB subnet group {name}"),
                    owner(tags.tag_list(), &r.stack),
                )?;
                cloud
                    .rds
                    .modify_db_subnet_group()
                    .db_subnet_group_name(name)
                    .db_subnet_group_description(r.str("description")?)
                    .set_subnet_ids(Some(subnet_ids(r)))
                    .send()
                    .await
                    .ctx(&r.id, "ModifyDBSubnetGroup")?;
                arn
            }
        };
        Ok(Observed::new(KIND, &r.id, name)
            .prop("name", name)
            .prop("description", r.str("description")?)
            .prop("subnet_ids", json!(subnet_ids(r)))
            .attr("arn", arn))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        cloud
            .rds
            .modify_db_subnet_group()
            .db_subnet_group_name(&current.physical_id)
            .db_subnet_group_description(r.str("description")?)
            .set_subnet_ids(Some(subnet_ids(r)))
            .send()
            .await
            .ctx(&r.id, "ModifyDBSubnetGroup")?;
        Ok(current
            .clone()
            .prop("description", r.str("description")?)
            .prop("subnet_ids", json!(subnet_ids(r))))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        match cloud
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(&current.physical_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => super::gone_ok(Err(api_error(&current.id, "DeleteDBSubnetGroup", e))),
        }
    }
}
