//! What `status` adds for the single shape: the stack's address and the
//! instance holding it, the data volume and its newest snapshot, and the
//! certificate the app serves (its issuer and expiry, from the summary the
//! instance publishes in the stack's bucket).

use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::Observed;
use crate::resources::{elastic_ip, s3, volume};

use super::Status;

/// Days of validity under which the certificate counts as a problem: the
/// app renews a third of the way before expiry (30 days for Let's
/// Encrypt's 90), so one this close has failed to renew.
pub const CERT_DAYS_WARN: i64 = 14;

/// The single shape's own part of the status.
#[derive(Debug, Clone, Serialize)]
pub struct Single {
    pub address: Option<Address>,
    pub volume: Option<Volume>,
    /// `None`: no domain, or no certificate published yet.
    pub tls: Option<Tls>,
}

/// Reads the address, the volume and the certificate summary.
pub async fn gather(
    cloud: &Cloud,
    stack: &str,
    observed: &[Observed],
) -> Result<Single, CloudError> {
    let find = |kind: &str| observed.iter().find(|o| o.kind == kind);
    let address = match find(elastic_ip::KIND) {
        Some(o) => Some(address(cloud, &o.physical_id).await?),
        None => None,
    };
    let vol = match find(volume::KIND) {
        Some(o) => Some(volume(cloud, stack, &o.physical_id).await?),
        None => None,
    };
    let tls = match find(s3::BUCKET) {
        Some(o) => tls(cloud, &o.physical_id).await?,
        None => None,
    };
    Ok(Single {
        address,
        volume: vol,
        tls,
    })
}

/// The problems of the single shape: its one instance in service and
/// healthy (EC2's checks), holding the address and the volume; the
/// volume's newest snapshot not failed; the certificate published and not
/// close to expiry (with a domain); the database available (with MySQL).
pub fn problems(s: &Status, domain: bool, mysql: bool) -> Vec<String> {
    let mut out = Vec::new();
    let serving: Option<&str> = s.group.as_ref().and_then(|g| {
        g.instances
            .iter()
            .find(|i| {
                i.lifecycle_state.as_deref() == Some("InService")
                    && i.health_status.as_deref() == Some("Healthy")
            })
            .map(|i| i.id.as_str())
    });
    match (&s.group, serving) {
        (None, _) => out.push("the Auto Scaling group does not exist".to_string()),
        (Some(_), None) => out.push("no instance is in service and healthy".to_string()),
        _ => {}
    }
    let one = s.single.as_ref();
    match one.and_then(|o| o.address.as_ref()) {
        None => out.push("the stack's address does not exist".into()),
        Some(a) if serving.is_some() && a.instance.as_deref() != serving => out.push(format!(
            "address {} is on {}, not on the instance in service",
            a.public_ip.as_deref().unwrap_or("?"),
            a.instance.as_deref().unwrap_or("no instance")
        )),
        Some(_) => {}
    }
    match one.and_then(|o| o.volume.as_ref()) {
        None => out.push("the data volume does not exist".into()),
        Some(v) => {
            if serving.is_some() && v.attached_to.as_deref() != serving {
                out.push(format!(
                    "data volume {} is attached to {}, not to the instance in service",
                    v.id,
                    v.attached_to.as_deref().unwrap_or("no instance")
                ));
            }
            if let Some(snap) = &v.last_snapshot {
                if snap.state.as_deref() == Some("error") {
                    out.push(format!(
                        "the newest snapshot of the data volume, {}, failed",
                        snap.id
                    ));
                }
            }
        }
    }
    if domain {
        match one.and_then(|o| o.tls.as_ref()) {
            None => out.push("the instance has published no certificate yet".into()),
            Some(t) => match t.days_left {
                Some(d) if d >= CERT_DAYS_WARN => {}
                Some(d) => out.push(format!(
                    "the certificate expires in {d} days ({}): renewal has not happened",
                    t.not_after.as_deref().unwrap_or("?")
                )),
                None => out.push("the certificate summary has no expiry".into()),
            },
        }
    }
    if mysql {
        out.extend(super::judge::database_problem(s));
    }
    out
}

/// The stack's Elastic IP address.
#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub public_ip: Option<String>,
    /// The instance it is associated with, if any.
    pub instance: Option<String>,
}

/// The data volume and its newest snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    pub id: String,
    pub state: Option<String>,
    pub size_gib: Option<i32>,
    pub attached_to: Option<String>,
    pub last_snapshot: Option<Snapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub state: Option<String>,
    /// When it was started (RFC 3339).
    pub started: Option<String>,
    /// Seconds since it was started.
    pub age_secs: Option<i64>,
}

/// The certificate the app serves, as the instance last published it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tls {
    pub issuer: Option<String>,
    pub not_after: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    /// Days until `not_after`, computed when read.
    #[serde(default)]
    pub days_left: Option<i64>,
}

use s3::CERTIFICATE_SUMMARY;

pub async fn address(cloud: &Cloud, allocation: &str) -> Result<Address, CloudError> {
    let out = cloud
        .ec2
        .describe_addresses()
        .allocation_ids(allocation)
        .send()
        .await
        .ctx(elastic_ip::KIND, "DescribeAddresses")?;
    let a = out.addresses().first();
    Ok(Address {
        public_ip: a.and_then(|a| a.public_ip()).map(str::to_string),
        instance: a.and_then(|a| a.instance_id()).map(str::to_string),
    })
}

pub async fn volume(cloud: &Cloud, stack: &str, id: &str) -> Result<Volume, CloudError> {
    let out = cloud
        .ec2
        .describe_volumes()
        .volume_ids(id)
        .send()
        .await
        .ctx(volume::KIND, "DescribeVolumes")?;
    let v = out.volumes().first();
    // Snapshots the lifecycle policy made carry the volume's snapshot tag.
    let snaps = cloud
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{}", volume::SNAPSHOT_TAG))
                .values(stack)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(volume::KIND, "DescribeSnapshots")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let last = snaps
        .iter()
        .max_by_key(|s| s.start_time().map(|t| t.secs()).unwrap_or_default())
        .map(|s| Snapshot {
            id: s.snapshot_id().unwrap_or_default().to_string(),
            state: s.state().map(|s| s.as_str().to_string()),
            started: s
                .start_time()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            age_secs: s.start_time().map(|t| now - t.secs()),
        });
    Ok(Volume {
        id: id.to_string(),
        state: v.and_then(|v| v.state()).map(|s| s.as_str().to_string()),
        size_gib: v.and_then(|v| v.size()),
        attached_to: v
            .and_then(|v| v.attachments().iter().find_map(|a| a.instance_id()))
            .map(str::to_string),
        last_snapshot: last,
    })
}

/// The certificate summary in `bucket`, or `None` before the instance
/// published one.
pub async fn tls(cloud: &Cloud, bucket: &str) -> Result<Option<Tls>, CloudError> {
    let got = cloud
        .s3
        .get_object()
        .bucket(bucket)
        .key(CERTIFICATE_SUMMARY)
        .send()
        .await;
    let obj = match got {
        Ok(o) => o,
        Err(e) => {
            let e = api_error(s3::BUCKET, "GetObject", e);
            return if e.code() == Some("NoSuchKey") {
                Ok(None)
            } else {
                Err(e)
            };
        }
    };
    let bytes = obj
        .body
        .collect()
        .await
        .map_err(|e| {
            CloudError::invalid(s3::BUCKET, format!("reading {CERTIFICATE_SUMMARY}: {e}"))
        })?
        .into_bytes();
    let mut t: Tls = serde_json::from_slice(&bytes).map_err(|e| {
        CloudError::invalid(
            s3::BUCKET,
            format!("{CERTIFICATE_SUMMARY} is not a certificate summary: {e}"),
        )
    })?;
    t.days_left = t.not_after.as_deref().and_then(days_until);
    Ok(Some(t))
}

/// Whole days from now until the RFC 3339 time `at` (negative once past).
fn days_until(at: &str) -> Option<i64> {
    let t = aws_smithy_types::DateTime::from_str(at, aws_smithy_types::date_time::Format::DateTime)
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some((t.secs() - now).div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_count_down_and_go_negative() {
        assert!(days_until("2999-01-01T00:00:00Z").unwrap() > 300_000);
        assert!(days_until("2000-01-01T00:00:00Z").unwrap() < 0);
        assert_eq!(days_until("not a time"), None);
    }
}
