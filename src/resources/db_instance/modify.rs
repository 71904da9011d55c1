//! The database's slower steps: waiting for a deletion or a modification
//! to take effect, retrying while RDS says the instance is busy, and
//! rebooting it to apply its parameter group.

use crate::cloud::{Cloud, CloudError, Phase, SdkResultExt};
use crate::engine::Observed;

use super::{describe, observed, KIND};

/// Waits until the instance is gone (a final snapshot first takes minutes).
pub(super) async fn wait_deleted(cloud: &Cloud, id: &str, ident: &str) -> Result<(), CloudError> {
    cloud
        .wait_until(
            id,
            "deleted",
            cloud.timeouts.for_kind(KIND, Phase::Delete),
            || async {
                Ok(match describe(cloud, id, ident).await? {
                    None => (Some(()), "deleted".into()),
                    Some(d) => (
                        None,
                        d.db_instance_status().unwrap_or("deleting").to_string(),
                    ),
                })
            },
        )
        .await
}

/// Waits until a modification applied immediately has taken effect: RDS
/// accepts ModifyDBInstance at once, then shows the instance `modifying`
/// with the asked values under `PendingModifiedValues` until it has applied
/// them ("Modifying an Amazon RDS DB instance"; Terraform's provider waits
/// for `available` likewise). Until then the old class, storage or
/// Multi-AZ setting is what serves.
pub(super) async fn applied(cloud: &Cloud, id: &str, ident: &str) -> Result<Observed, CloudError> {
    let nothing_pending = aws_sdk_rds::types::PendingModifiedValues::builder().build();
    let d = cloud
        .wait_until(
            id,
            "the modification applied",
            cloud.timeouts.for_kind(KIND, Phase::Create),
            || async {
                let Some(d) = describe(cloud, id, ident).await? else {
                    return Err(CloudError::invalid(
                        id,
                        format!("database {ident} disappeared"),
                    ));
                };
                let status = d.db_instance_status().unwrap_or_default().to_string();
                let pending = d
                    .pending_modified_values()
                    .is_some_and(|p| p != &nothing_pending);
                // Storage optimization after a storage change runs for
                // hours with the new size already in use; Terraform's
                // provider counts it as available too.
                let serving = matches!(status.as_str(), "available" | "storage-optimization");
                Ok(if serving && !pending {
                    (Some(d), status)
                } else if pending {
                    (None, format!("{status}, changes pending"))
                } else {
                    (None, status)
                })
            },
        )
        .await?;
    Ok(observed(id, &d))
}

/// Sends a ModifyDBInstance, trying again while RDS answers
/// `InvalidDBInstanceState` (the instance is busy: backing up, another
/// modification under way; Terraform's provider retries it likewise), up to
/// the database's create/modify timeout.
pub(super) async fn modify(
    cloud: &Cloud,
    id: &str,
    m: aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder,
) -> Result<(), CloudError> {
    let start = tokio::time::Instant::now();
    let limit = cloud.timeouts.for_kind(KIND, Phase::Create);
    loop {
        match m.clone().send().await.ctx(id, "ModifyDBInstance") {
            Err(e)
                if e.code()
                    .is_some_and(|c| c.starts_with("InvalidDBInstanceState"))
                    && start.elapsed() < limit =>
            {
                cloud.status(id, &format!("busy, retrying: {e}"));
                tokio::time::sleep(cloud.poll).await;
            }
            other => return other.map(|_| ()),
        }
    }
}

/// The civil date (year, month, day) of a day counted from 1970-01-01
/// (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `yyyymmddHHMMSS` in UTC.
pub(super) fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Whether the instance's parameter group waits for a reboot to apply
/// (`ParameterApplyStatus` `pending-reboot`: a group newly given to a
/// running instance, or a static parameter changed).
pub(super) fn pending_reboot(d: &aws_sdk_rds::types::DbInstance) -> bool {
    d.db_parameter_groups()
        .iter()
        .any(|g| g.parameter_apply_status() == Some("pending-reboot"))
}

/// Reboots the instance so its parameter group applies, and waits until it
/// is available with the group in sync ("Rebooting a DB instance", Amazon
/// RDS User Guide: a group's changes that wait for a reboot apply then; a
/// Multi-AZ instance restarts without failing over, a minute or two). RDS
/// refuses a reboot while the instance is modifying: tried again then, as
/// a modification is.
pub(super) async fn reboot(cloud: &Cloud, id: &str, ident: &str) -> Result<Observed, CloudError> {
    let start = tokio::time::Instant::now();
    let limit = cloud.timeouts.for_kind(KIND, Phase::Create);
    loop {
        let sent = cloud
            .rds
            .reboot_db_instance()
            .db_instance_identifier(ident)
            .send()
            .await
            .ctx(id, "RebootDBInstance");
        match sent {
            Err(e)
                if e.code()
                    .is_some_and(|c| c.starts_with("InvalidDBInstanceState"))
                    && start.elapsed() < limit =>
            {
                cloud.status(id, &format!("busy, retrying the reboot: {e}"));
                tokio::time::sleep(cloud.poll).await;
            }
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let d = cloud
        .wait_until(
            id,
            "rebooted with its parameters applied",
            limit,
            || async {
                let Some(d) = describe(cloud, id, ident).await? else {
                    return Err(CloudError::invalid(
                        id,
                        format!("database {ident} disappeared"),
                    ));
                };
                let status = d.db_instance_status().unwrap_or_default().to_string();
                Ok(if status == "available" && !pending_reboot(&d) {
                    (Some(d), status)
                } else {
                    (None, status)
                })
            },
        )
        .await?;
    Ok(observed(id, &d))
}
