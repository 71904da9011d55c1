//! `[app]`: the instances running the shop, their group and its scaling.

use std::path::PathBuf;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::field::{aws_id, Invalid};
use super::runtime::{RawRuntime, Runtime, TaskSize};

/// Default port the app listens on.
pub const DEFAULT_APP_PORT: u16 = 8080;

/// What the instances' group scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMetric {
    /// Average CPU utilisation of the group, in percent.
    Cpu,
    /// Load balancer requests per instance per minute.
    Requests,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub port: u16,
    pub instance_type: String,
    /// An AMI id, or `None` for the latest Amazon Linux 2023 (from the public SSM parameter).
    pub ami: Option<String>,
    /// The `bookstore` binary to ship, or `None` for the one the workspace builds.
    pub binary: Option<PathBuf>,
    pub min_size: u32,
    pub desired_capacity: u32,
    pub max_size: u32,
    pub health_check_grace: u32,
    pub scaling_metric: ScalingMetric,
    pub scaling_target: f64,
    pub refresh_min_healthy: u32,
    pub refresh_warmup: u32,
    /// How many releases keep their artifact (and launch template version) for `rollback`.
    pub keep_releases: u32,
    pub data_dir: String,
    /// What runs the app: instances, or Fargate tasks of `task` size.
    pub runtime: Runtime,
    pub task: Option<TaskSize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    port: Option<Spanned<i64>>,
    instance_type: Option<Spanned<String>>,
    ami: Option<Spanned<String>>,
    binary: Option<String>,
    min_size: Option<Spanned<i64>>,
    desired_capacity: Option<Spanned<i64>>,
    max_size: Option<Spanned<i64>>,
    health_check_grace: Option<Spanned<i64>>,
    scaling_metric: Option<ScalingMetric>,
    scaling_target: Option<Spanned<f64>>,
    refresh_min_healthy: Option<Spanned<i64>>,
    refresh_warmup: Option<Spanned<i64>>,
    keep_releases: Option<Spanned<i64>>,
    data_dir: Option<Spanned<String>>,
    runtime: Option<Spanned<Runtime>>,
    cpu: Option<Spanned<i64>>,
    memory: Option<Spanned<i64>>,
}

/// The section, and its runtime settings (checked with the whole stack).
pub(super) fn parse(src: &Source, mut app: RawApp) -> Result<(App, RawRuntime), StackError> {
    let runtime = RawRuntime {
        runtime: app.runtime.take(),
        cpu: app.cpu.take(),
        memory: app.memory.take(),
    };
    let port = match &app.port {
        Some(p) => {
            let v = *p.get_ref();
            if !(1024..=65535).contains(&v) {
                return Err(src.at_value(
                    p,
                    format!("`app.port` = {v}: use an unprivileged port, 1024 to 65535"),
                ));
            }
            v as u16
        }
        None => DEFAULT_APP_PORT,
    };
    let min_size = src.int(&app.min_size, "app.min_size", 0..=100, 1)?;
    let max_size = src.int(&app.max_size, "app.max_size", 1..=100, 2)?;
    let desired_capacity = src.int(
        &app.desired_capacity,
        "app.desired_capacity",
        0..=100,
        min_size as i64,
    )?;
    if min_size > desired_capacity || desired_capacity > max_size {
        let span = app
            .desired_capacity
            .as_ref()
            .or(app.min_size.as_ref())
            .or(app.max_size.as_ref())
            .map(|s| s.span().start)
            .unwrap_or(0);
        return Err(src.at(
            span,
            format!(
                "instance counts must satisfy min_size <= desired_capacity <= max_size, got {min_size} <= {desired_capacity} <= {max_size}"
            ),
        ));
    }
    let scaling_target = match &app.scaling_target {
        Some(t) if !(*t.get_ref() > 0.0 && t.get_ref().is_finite()) => {
            return Err(src.at_value(
                t,
                format!("`app.scaling_target` = {}: must be positive", t.get_ref()),
            ))
        }
        Some(t) => *t.get_ref(),
        None => 50.0,
    };
    let data_dir = src.text(
        &app.data_dir,
        "app.data_dir",
        |s| {
            s.starts_with('/')
                && s.len() > 1
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        },
        "an absolute path of letters, digits and /._-",
        "/var/lib/bookstore/data",
    )?;
    let ami = match &app.ami {
        Some(a) => Some(src.parse(a, "app.ami", |s| {
            (s.starts_with("ami-") && aws_id(s))
                .then(|| s.to_string())
                .ok_or(Invalid::NotA("an AMI id (ami-...)"))
        })?),
        None => None,
    };
    let app = App {
        port,
        instance_type: src.text(
            &app.instance_type,
            "app.instance_type",
            |s| aws_id(s) && s.contains('.'),
            "not an instance type like t3.small",
            "t3.small",
        )?,
        ami,
        binary: app.binary.map(PathBuf::from),
        min_size,
        desired_capacity,
        max_size,
        health_check_grace: src.int(
            &app.health_check_grace,
            "app.health_check_grace",
            0..=7200,
            120,
        )?,
        scaling_metric: app.scaling_metric.unwrap_or(ScalingMetric::Cpu),
        scaling_target,
        refresh_min_healthy: src.int(
            &app.refresh_min_healthy,
            "app.refresh_min_healthy",
            0..=100,
            90,
        )?,
        refresh_warmup: src.int(&app.refresh_warmup, "app.refresh_warmup", 0..=3600, 120)?,
        keep_releases: src.int(&app.keep_releases, "app.keep_releases", 1..=50, 5)?,
        data_dir,
        runtime: Runtime::Instances,
        task: None,
    };
    Ok((app, runtime))
}
