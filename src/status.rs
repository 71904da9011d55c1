//! `status`: how a deployed stack is doing now. The Auto Scaling group's
//! instances and the load balancer's view of each, the launch template
//! version wanted against the one rolled out, a running instance refresh,
//! the database and the certificate; optionally a request to the app's
//! health check through the load balancer. Read-only: no lock is taken.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::Observed;
use crate::resources::autoscaling_group::{self as asg, is_active, TAG_ROLLED_OUT};
use crate::resources::{certificate, db_instance, launch_template};

pub mod fargate;
mod judge;
mod render;
pub mod single;
pub use judge::{judge, judge_fargate, judge_single, probe, probe_url, HEALTH_PATH};
pub use render::text;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("stack {stack} does not exist in {region}: no resource carries its tag (check the region, or run `up`)")]
    NoStack { stack: String, region: String },
}

/// Everything `status` reports, in the shape `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub stack: String,
    pub region: String,
    pub url: Option<String>,
    pub group: Option<Group>,
    pub database: Option<Database>,
    pub certificate: Option<Cert>,
    pub probe: Option<Probe>,
    /// The single shape's address, volume and certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single: Option<single::Single>,
    /// The app on Fargate: its service, deployments and targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fargate: Option<fargate::Fargate>,
    /// Healthy as [`judge`] defines it.
    pub healthy: bool,
    /// Why not, one sentence each.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    pub launch_template_id: Option<String>,
    /// The version the stack made last: what `up` rolls out.
    pub wanted_version: Option<String>,
    /// The version the group is configured with (a refresh moves it on success).
    pub configured_version: Option<String>,
    /// The version a finished rollout recorded in the group's tag.
    pub rolled_out_version: Option<String>,
    /// The newest instance refresh, whether running or ended.
    pub refresh: Option<Refresh>,
    /// Why the instance refreshes could not be read (an endpoint without the
    /// API, such as a local emulator): status reports the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_unreadable: Option<String>,
    pub instances: Vec<Instance>,
    /// Targets the load balancer reports healthy, in the group's target groups.
    pub healthy_targets: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub id: String,
    pub status: String,
    pub active: bool,
    pub percentage_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    pub target_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub id: String,
    pub zone: Option<String>,
    pub lifecycle_state: Option<String>,
    pub health_status: Option<String>,
    pub launch_template_version: Option<String>,
    /// The load balancer's view; `None`: not registered in a target group.
    pub target: Option<Target>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Database {
    pub identifier: String,
    pub state: Option<String>,
    pub class: Option<String>,
    pub multi_az: Option<bool>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    /// Changes waiting for the maintenance window (or being applied).
    pub pending: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cert {
    pub arn: String,
    pub domain: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub url: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub millis: u128,
}

fn of_kind<'a>(observed: &'a [Observed], kind: &str) -> Option<&'a Observed> {
    observed.iter().find(|o| o.kind == kind)
}

/// Reads the stack's state. `observed` is what [`crate::pipeline::observe`]
/// found, `outputs` the resolved outputs (for the URL).
pub async fn gather(
    cloud: &Cloud,
    stack: &str,
    observed: &[Observed],
    outputs: &Map<String, Value>,
) -> Result<Status, StatusError> {
    if observed.is_empty() {
        return Err(StatusError::NoStack {
            stack: stack.to_string(),
            region: cloud.region.clone(),
        });
    }
    let wanted = of_kind(observed, launch_template::KIND).map(|o| {
        (
            o.physical_id.clone(),
            o.attrs.get("latest_version").cloned(),
        )
    });
    let (group, database, certificate) = tokio::try_join!(
        async {
            match of_kind(observed, asg::KIND) {
                Some(o) => group(cloud, &o.physical_id, wanted).await,
                None => Ok(None),
            }
        },
        async {
            match of_kind(observed, db_instance::KIND) {
                Some(o) => database(cloud, &o.physical_id).await,
                None => Ok(None),
            }
        },
        async {
            match of_kind(observed, certificate::KIND) {
                Some(o) => cert(cloud, &o.physical_id).await.map(Some),
                None => Ok(None),
            }
        },
    )?;
    Ok(Status {
        stack: stack.to_string(),
        region: cloud.region.clone(),
        url: outputs
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string),
        group,
        database,
        certificate,
        probe: None,
        single: None,
        fargate: None,
        healthy: false,
        problems: Vec::new(),
    })
}

async fn group(
    cloud: &Cloud,
    name: &str,
    wanted: Option<(String, Option<String>)>,
) -> Result<Option<Group>, CloudError> {
    // One name asked for: one page (DescribeAutoScalingGroups, EC2 Auto
    // Scaling API Reference: MaxRecords defaults to 50).
    let d = cloud
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .ctx(asg::KIND, "DescribeAutoScalingGroups")?;
    let Some(g) = d.auto_scaling_groups().first() else {
        return Ok(None);
    };
    let refreshes = cloud
        .autoscaling
        .describe_instance_refreshes()
        .auto_scaling_group_name(name)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(asg::KIND, "DescribeInstanceRefreshes");
    let (refresh, refresh_unreadable) = match refreshes {
        Ok(pages) => (
            newest_refresh(pages.iter().flat_map(|p| p.instance_refreshes())),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    let mut healthy_targets = 0;
    for tg in g.target_group_arns() {
        let h = crate::resources::target_group::target_health(cloud, asg::KIND, tg).await?;
        for t in &h {
            let (Some(id), Some(th)) = (t.target().and_then(|t| t.id()), t.target_health()) else {
                continue;
            };
            let seen = Target {
                state: th.state().map(|s| s.as_str()).unwrap_or("unknown").into(),
                reason: th.reason().map(|r| r.as_str().to_string()),
                description: th.description().map(str::to_string),
            };
            healthy_targets += usize::from(seen.state == "healthy");
            // With several target groups, the worst state is the one shown.
            match targets.get(id) {
                Some(old) if old.state != "healthy" => {}
                _ => {
                    targets.insert(id.to_string(), seen);
                }
            }
        }
    }
    let tag = |k: &str| {
        g.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    let lt = g.launch_template();
    let instances = g
        .instances()
        .iter()
        .map(|i| Instance {
            id: i.instance_id().unwrap_or_default().to_string(),
            zone: i.availability_zone().map(str::to_string),
            lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_string()),
            health_status: i.health_status().map(str::to_string),
            launch_template_version: i
                .launch_template()
                .and_then(|l| l.version())
                .map(str::to_string),
            target: i.instance_id().and_then(|id| targets.get(id).cloned()),
        })
        .collect();
    let (lt_id, wanted_version) = match wanted {
        Some((id, v)) => (Some(id), v),
        None => (
            lt.and_then(|l| l.launch_template_id()).map(str::to_string),
            None,
        ),
    };
    Ok(Some(Group {
        name: name.to_string(),
        desired: g.desired_capacity().unwrap_or(0),
        min: g.min_size().unwrap_or(0),
        max: g.max_size().unwrap_or(0),
        launch_template_id: lt_id,
        wanted_version,
        configured_version: lt.and_then(|l| l.version()).map(str::to_string),
        rolled_out_version: tag(TAG_ROLLED_OUT),
        refresh,
        refresh_unreadable,
        instances,
        healthy_targets,
    }))
}

/// The newest refresh: a Pending one (no start time yet) first, then by start time.
fn newest_refresh<'a>(
    all: impl Iterator<Item = &'a aws_sdk_autoscaling::types::InstanceRefresh>,
) -> Option<Refresh> {
    let ir = all.max_by_key(|r| r.start_time().map(|t| t.secs()).unwrap_or(i64::MAX))?;
    let seen = asg::RefreshSeen::of(ir);
    Some(Refresh {
        active: is_active(&seen.status),
        status: seen.status.as_str().to_string(),
        id: seen.id,
        percentage_complete: ir.percentage_complete(),
        instances_to_update: ir.instances_to_update(),
        target_version: seen.target.map(|t| t.version),
    })
}

async fn database(cloud: &Cloud, ident: &str) -> Result<Option<Database>, CloudError> {
    let d = cloud
        .rds
        .describe_db_instances()
        .db_instance_identifier(ident)
        .send()
        .await
        .ctx(db_instance::KIND, "DescribeDBInstances")?;
    let Some(db) = d.db_instances().first() else {
        return Ok(None);
    };
    let mut pending = BTreeMap::new();
    if let Some(p) = db.pending_modified_values() {
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                pending.insert(k.to_string(), v);
            }
        };
        put("instance_class", p.db_instance_class().map(|v| json!(v)));
        put("allocated_storage", p.allocated_storage().map(|v| json!(v)));
        put("multi_az", p.multi_az().map(|v| json!(v)));
        put("engine_version", p.engine_version().map(|v| json!(v)));
        put(
            "backup_retention_days",
            p.backup_retention_period().map(|v| json!(v)),
        );
        put("storage_type", p.storage_type().map(|v| json!(v)));
        put("iops", p.iops().map(|v| json!(v)));
        put(
            "ca_certificate",
            p.ca_certificate_identifier().map(|v| json!(v)),
        );
        put("subnet_group", p.db_subnet_group_name().map(|v| json!(v)));
        put(
            "master_user_password",
            p.master_user_password().map(|_| json!("(changing)")),
        );
    }
    Ok(Some(Database {
        identifier: ident.to_string(),
        state: db.db_instance_status().map(str::to_string),
        class: db.db_instance_class().map(str::to_string),
        multi_az: db.multi_az(),
        engine: db.engine().map(str::to_string),
        engine_version: db.engine_version().map(str::to_string),
        pending,
    }))
}

async fn cert(cloud: &Cloud, arn: &str) -> Result<Cert, CloudError> {
    let d = cloud
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .ctx(certificate::KIND, "DescribeCertificate")?;
    let c = d.certificate();
    Ok(Cert {
        arn: arn.to_string(),
        domain: c.and_then(|c| c.domain_name()).map(str::to_string),
        status: c.and_then(|c| c.status()).map(|s| s.as_str().to_string()),
    })
}
