//! `ec2:route-table`: routes, and the subnets that use them.
//!
//! Associations are part of the table (they cannot carry tags of their own):
//! `subnets` lists the subnets associated with it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, RouteOrigin};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ec2:route-table";

pub struct RouteTable;

/// One route: a destination and exactly one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Route {
    pub destination: String,
    #[serde(default)]
    pub gateway_id: Option<String>,
    #[serde(default)]
    pub nat_gateway_id: Option<String>,
}

impl Route {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("destination".into(), json!(self.destination));
        if let Some(g) = &self.gateway_id {
            m.insert("gateway_id".into(), json!(g));
        }
        if let Some(n) = &self.nat_gateway_id {
            m.insert("nat_gateway_id".into(), json!(n));
        }
        Value::Object(m)
    }
}

#[derive(Deserialize)]
struct Props {
    vpc_id: String,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    subnets: Vec<String>,
}

fn observed(
    id: String,
    rt: &str,
    vpc: &str,
    routes: &[Route],
    assoc: &BTreeMap<String, String>,
) -> Observed {
    let mut o = Observed::new(KIND, id, rt)
        .prop("vpc_id", vpc)
        .prop(
            "routes",
            Value::Array(routes.iter().map(Route::to_json).collect()),
        )
        .prop(
            "subnets",
            Value::Array(assoc.keys().map(|s| json!(s)).collect()),
        );
    // Not diffed: the association ids, needed to undo them.
    o.props.insert("associations".into(), json!(assoc));
    o
}

// The table, its VPC, the gateways and subnets it names may all have been
// created moments before: calls naming them go through `Cloud::settle`.
impl RouteTable {
    async fn sync_routes(
        &self,
        cloud: &Cloud,
        id: &str,
        rt: &str,
        have: &[Route],
        want: &[Route],
    ) -> Result<(), CloudError> {
        let have: BTreeMap<&str, &Route> =
            have.iter().map(|r| (r.destination.as_str(), r)).collect();
        let want_by: BTreeMap<&str, &Route> =
            want.iter().map(|r| (r.destination.as_str(), r)).collect();
        for (dest, _) in have.iter().filter(|(d, _)| !want_by.contains_key(*d)) {
            gone_ok(
                cloud
                    .ec2
                    .delete_route()
                    .route_table_id(rt)
                    .destination_cidr_block(*dest)
                    .send()
                    .await
                    .map(|_| ())
                    .ctx(id, "DeleteRoute"),
            )?;
        }
        for (dest, w) in &want_by {
            match have.get(dest) {
                Some(h) if h == w => {}
                Some(_) => {
                    let req = cloud
                        .ec2
                        .replace_route()
                        .route_table_id(rt)
                        .destination_cidr_block(*dest)
                        .set_gateway_id(w.gateway_id.clone())
                        .set_nat_gateway_id(w.nat_gateway_id.clone());
                    cloud
                        .settle(id, "ReplaceRoute", || req.clone().send())
                        .await?;
                }
                None => {
                    let req = cloud
                        .ec2
                        .create_route()
                        .route_table_id(rt)
                        .destination_cidr_block(*dest)
                        .set_gateway_id(w.gateway_id.clone())
                        .set_nat_gateway_id(w.nat_gateway_id.clone());
                    cloud
                        .settle(id, "CreateRoute", || req.clone().send())
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn sync_subnets(
        &self,
        cloud: &Cloud,
        id: &str,
        rt: &str,
        have: &BTreeMap<String, String>,
        want: &[String],
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let mut now = BTreeMap::new();
        for (subnet, assoc) in have {
            if want.contains(subnet) {
                now.insert(subnet.clone(), assoc.clone());
            } else {
                gone_ok(
                    cloud
                        .ec2
                        .disassociate_route_table()
                        .association_id(assoc)
                        .send()
                        .await
                        .map(|_| ())
                        .ctx(id, "DisassociateRouteTable"),
                )?;
            }
        }
        for subnet in want.iter().filter(|s| !have.contains_key(*s)) {
            let req = cloud
                .ec2
                .associate_route_table()
                .route_table_id(rt)
                .subnet_id(subnet);
            let out = cloud
                .settle(id, "AssociateRouteTable", || req.clone().send())
                .await?;
            now.insert(
                subnet.clone(),
                out.association_id().unwrap_or_default().to_string(),
            );
        }
        Ok(now)
    }
}

fn current_routes(o: &Observed) -> Vec<Route> {
    o.props
        .get("routes")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn current_assoc(o: &Observed) -> BTreeMap<String, String> {
    o.props
        .get("associations")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_route_tables", "DescribeRouteTables", &["ec2:DescribeRouteTables"]),
    w("ec2", "associate_route_table", "AssociateRouteTable", &["ec2:AssociateRouteTable"]),
    w("ec2", "create_route", "CreateRoute", &["ec2:CreateRoute"]),
    w("ec2", "create_route_table", "CreateRouteTable", &["ec2:CreateRouteTable", "ec2:CreateTags"]),
    w("ec2", "delete_route", "DeleteRoute", &["ec2:DeleteRoute"]),
    w("ec2", "delete_route_table", "DeleteRouteTable", &["ec2:DeleteRouteTable"]),
    w("ec2", "disassociate_route_table", "DisassociateRouteTable", &["ec2:DisassociateRouteTable"]),
    w("ec2", "replace_route", "ReplaceRoute", &["ec2:ReplaceRoute"]),
];

#[async_trait]
impl ResourceKind for RouteTable {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateRouteTable is sent without a client token: a repeat makes a second table.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("vpc_id"), in_place("routes"), in_place("subnets")];
        A
    }

    fn create_before_destroy(&self, _: &[crate::engine::plan::AttrDiff], _: &Observed) -> bool {
        true
    }

    // A route to a NAT or internet gateway does not keep it from being deleted.
    fn reference_blocks_deletion(&self, attr: &str) -> bool {
        attr != "routes"
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let tables = cloud
            .ec2
            .describe_route_tables()
            .filters(stack_filter(stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeRouteTables")?;
        Ok(tables
            .iter()
            .filter_map(|t| {
                let mut routes: Vec<Route> = t
                    .routes()
                    .iter()
                    // The VPC's own local route and propagated routes are not ours.
                    .filter(|r| r.gateway_id() != Some("local"))
                    .filter(|r| !matches!(r.origin(), Some(RouteOrigin::EnableVgwRoutePropagation)))
                    .filter_map(|r| {
                        Some(Route {
                            destination: r.destination_cidr_block()?.to_string(),
                            gateway_id: r.gateway_id().map(str::to_string),
                            nat_gateway_id: r.nat_gateway_id().map(str::to_string),
                        })
                    })
                    .collect();
                routes.sort();
                let assoc: BTreeMap<String, String> = t
                    .associations()
                    .iter()
                    .filter(|a| a.main() != Some(true))
                    .filter_map(|a| {
                        Some((
                            a.subnet_id()?.to_string(),
                            a.route_table_association_id()?.to_string(),
                        ))
                    })
                    .collect();
                Some(observed(
                    logical_id(t.tags(), stack)?,
                    t.route_table_id()?,
                    t.vpc_id().unwrap_or_default(),
                    &routes,
                    &assoc,
                ))
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let p: Props = r.typed()?;
        let req = cloud
            .ec2
            .create_route_table()
            .vpc_id(&p.vpc_id)
            .tag_specifications(tag_spec(ResourceType::RouteTable, &r.tags));
        let out = cloud
            .settle(&r.id, "CreateRouteTable", || req.clone().send())
            .await?;
        let rt = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateRouteTable returned no id"))?
            .to_string();
        // Interrupted here, the next run finds the table and adds what is missing.
        self.sync_routes(cloud, &r.id, &rt, &[], &p.routes).await?;
        let assoc = self
            .sync_subnets(cloud, &r.id, &rt, &BTreeMap::new(), &p.subnets)
            .await?;
        Ok(observed(r.id.clone(), &rt, &p.vpc_id, &p.routes, &assoc))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let p: Props = r.typed()?;
        let rt = &current.physical_id;
        self.sync_routes(cloud, &r.id, rt, &current_routes(current), &p.routes)
            .await?;
        let assoc = self
            .sync_subnets(cloud, &r.id, rt, &current_assoc(current), &p.subnets)
            .await?;
        Ok(observed(r.id.clone(), rt, &p.vpc_id, &p.routes, &assoc))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        for assoc in current_assoc(current).values() {
            gone_ok(
                cloud
                    .ec2
                    .disassociate_route_table()
                    .association_id(assoc)
                    .send()
                    .await
                    .map(|_| ())
                    .ctx(&current.id, "DisassociateRouteTable"),
            )?;
        }
        gone_ok(
            cloud
                .ec2
                .delete_route_table()
                .route_table_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteRouteTable"),
        )
    }
}
