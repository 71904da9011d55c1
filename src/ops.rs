//! The steps every command shares: look up facts, read what exists, build
//! what is wanted, resolve outputs.

use futures::future::try_join_all;
use serde_json::{Map, Value};

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::refs::{resolve, Resolution};
use crate::engine::{Attrs, Observed, Registry};
use crate::stack::Stack;
use crate::topology::Facts;

/// Zone names: the stack's own, or the first ones the region offers.
pub async fn facts(cloud: &Cloud, stack: &Stack) -> Result<Facts, CloudError> {
    if let Some(z) = &stack.network.zones {
        return Ok(Facts { zones: z.clone() });
    }
    let out = cloud
        .ec2
        .describe_availability_zones()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("available")
                .build(),
        )
        .send()
        .await
        .ctx("zones", "DescribeAvailabilityZones")?;
    let mut zones: Vec<String> = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    zones.sort();
    if zones.len() < stack.network.az_count {
        return Err(CloudError::invalid(
            "zones",
            format!(
                "region {} offers {} zones, the stack wants {}",
                cloud.region,
                zones.len(),
                stack.network.az_count
            ),
        ));
    }
    zones.truncate(stack.network.az_count);
    Ok(Facts { zones })
}

/// Everything the stack owns: one batch read per kind, all kinds at once.
pub async fn observe(
    cloud: &Cloud,
    registry: &Registry,
    stack: &str,
) -> Result<Vec<Observed>, CloudError> {
    let per_kind = try_join_all(registry.kinds().map(|k| k.read_all(cloud, stack))).await?;
    let mut all: Vec<Observed> = per_kind.into_iter().flatten().collect();
    // Deterministic order: by kind rank, then logical id, then physical id.
    all.sort_by(|a, b| {
        (registry.rank(a.kind), &a.id, &a.physical_id).cmp(&(
            registry.rank(b.kind),
            &b.id,
            &b.physical_id,
        ))
    });
    Ok(all)
}

/// Resolves output values against what exists. A list keeps the items that
/// exist; a single value that does not exist yet is `null`.
pub fn resolve_outputs(
    outputs: &[(&'static str, Value)],
    observed: &[Observed],
) -> Map<String, Value> {
    let mut known: std::collections::BTreeMap<&str, &Attrs> = std::collections::BTreeMap::new();
    for o in observed {
        known.entry(o.id.as_str()).or_insert(&o.attrs);
    }
    let one = |v: &Value| match resolve(v, &|id| known.get(id).copied()) {
        Resolution::Known(v) => Some(v),
        Resolution::Unknown => None,
    };
    outputs
        .iter()
        .map(|(name, v)| {
            let value = match v {
                Value::Array(items) => Value::Array(items.iter().filter_map(one).collect()),
                other => one(other).unwrap_or(Value::Null),
            };
            (name.to_string(), value)
        })
        .collect()
}

/// Outputs as `name = value` lines.
pub fn render_outputs(outputs: &Map<String, Value>) -> String {
    let mut s = String::new();
    for (k, v) in outputs {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}
