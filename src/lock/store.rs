//! Where the lock lives: an S3 object in a bucket of its own, read and
//! written with S3's conditional requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::{DateTime, Format};

use crate::cloud::{api_error, Cloud, CloudError};

use super::*;

pub fn bucket_name(account: &str, region: &str) -> String {
    format!("bookstore-infra-locks-{account}-{region}")
}

/// The lock object's key in the lock bucket.
pub fn object_key(stack: &str) -> String {
    format!("bookstore-infra/{stack}/lock.json")
}

/// Where a stack's lock lives.
#[derive(Debug, Clone)]
pub struct Place {
    pub account: String,
    pub bucket: String,
    pub key: String,
}

/// The stack's lock object, in this account's lock bucket.
pub async fn place(cloud: &Cloud, stack: &str) -> Result<Place, CloudError> {
    let account = cloud.account().await?;
    Ok(Place {
        bucket: bucket_name(&account, &cloud.region),
        key: object_key(stack),
        account,
    })
}

/// A 412 `PreconditionFailed` or 409 `ConditionalRequestConflict`: the
/// condition did not hold, or another conditional write raced this one;
/// either way nothing was written.
pub(super) fn refused(e: &CloudError) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "HTTP 412" | "HTTP 409")
    )
}

pub(super) fn missing(e: &CloudError) -> bool {
    matches!(e.code(), Some("NoSuchKey" | "NotFound" | "HTTP 404"))
}

pub(super) fn no_bucket(e: &CloudError) -> bool {
    e.code() == Some("NoSuchBucket")
}

/// The condition of a write.
#[derive(Debug, Clone)]
pub(super) enum Cond {
    /// Only if there is no lock (`If-None-Match: *`).
    Absent,
    /// Only if the lock is still this version (`If-Match: <etag>`).
    Is(String),
}

/// The lock as read.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) holder: Holder,
    pub(super) etag: String,
    /// Since the object was last written, by S3's clock: its
    /// `Last-Modified` against the `Date` of the same answer. `None` when
    /// either is missing: then the age is unknown, and the lock is never
    /// taken for stale by age.
    pub(super) age: Option<Duration>,
}

/// Keeps the `Date` header of a response: S3's clock when it answered.
#[derive(Debug, Clone, Default)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "LockServerDate"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Each attempt overwrites: the answer read is the last one's.
        *self.0.lock().unwrap() = context.response().headers().get("date").map(String::from);
        Ok(())
    }
}

/// The age of an object last modified at `modified`, by S3's clock at
/// `date` (an HTTP date). Both are S3's, to the second.
fn age_of(modified: Option<&DateTime>, date: Option<&str>) -> Option<Duration> {
    let date = DateTime::from_str(date?, Format::HttpDate).ok()?;
    let secs = date.secs().checked_sub(modified?.secs())?;
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Reads the lock: its holder, ETag and heartbeat's age by S3's clock.
pub(super) async fn read(cloud: &Cloud, p: &Place) -> Result<Option<Seen>, CloudError> {
    let date = ServerDate::default();
    let got = cloud
        .s3
        .get_object()
        .bucket(&p.bucket)
        .key(&p.key)
        .expected_bucket_owner(&p.account)
        .customize()
        .interceptor(date.clone())
        .send()
        .await
        .map_err(|e| api_error("lock", "GetObject", e));
    let o = match got {
        Ok(o) => o,
        Err(e) if missing(&e) || no_bucket(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let etag = o.e_tag().unwrap_or_default().to_string();
    let age = age_of(o.last_modified(), date.0.lock().unwrap().as_deref());
    let bytes = o
        .body
        .collect()
        .await
        .map_err(|e| CloudError::invalid("lock", format!("reading the lock: {e}")))?
        .into_bytes();
    let holder = serde_json::from_slice(&bytes).unwrap_or_else(|_| Holder {
        host: "?".into(),
        pid: 0,
        command: String::from_utf8_lossy(&bytes).into_owned(),
        started: 0,
        heartbeat: 0,
        nonce: String::new(),
        boot_id: String::new(),
        pid_ns: String::new(),
    });
    Ok(Some(Seen { holder, etag, age }))
}

/// Writes `h` under `cond`: its new ETag, or `None` when the condition did
/// not hold. A write whose answer was lost and retried by the SDK may find
/// its own first attempt there (412): the nonce tells.
pub(super) async fn write(
    cloud: &Cloud,
    p: &Place,
    h: &Holder,
    cond: &Cond,
) -> Result<Option<String>, CloudError> {
    let body = serde_json::to_vec(h).expect("serialisable");
    let send = || {
        let mut req = cloud
            .s3
            .put_object()
            .bucket(&p.bucket)
            .key(&p.key)
            .expected_bucket_owner(&p.account)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body.clone()));
        req = match cond {
            Cond::Absent => req.if_none_match("*"),
            Cond::Is(etag) => req.if_match(etag),
        };
        async move {
            req.send()
                .await
                .map_err(|e| api_error("lock", "PutObject", e))
        }
    };
    let mut sent = send().await;
    if matches!(&sent, Err(e) if no_bucket(e)) && matches!(cond, Cond::Absent) {
        ensure_bucket(cloud, p).await?;
        // CreateBucket's bucket may not be visible at once.
        sent = cloud.settle_ctx("lock", "PutObject", &send).await;
    }
    match sent {
        Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
        Err(e) if refused(&e) || (missing(&e) && matches!(cond, Cond::Is(_))) => {
            match read(cloud, p).await? {
                Some(now) if now.holder.nonce == h.nonce => Ok(Some(now.etag)),
                _ => Ok(None),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates the lock bucket: private (all public access blocked), encrypted
/// at rest (SSE-S3). `BucketAlreadyOwnedByYou` means another run created it
/// first; `BucketAlreadyExists` means another account owns the name, and
/// every call names the expected owner, so such a bucket is never used.
///
/// The bucket is shared by every stack of the account in the region:
/// `bootstrap` makes it with an administrator's credentials, and a CI role
/// may not create or configure it (`iam-policy`), which it is told.
pub async fn ensure_bucket(cloud: &Cloud, p: &Place) -> Result<(), CloudError> {
    let mut req = cloud.s3.create_bucket().bucket(&p.bucket);
    if cloud.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(cloud.region.as_str()))
                .build(),
        );
    }
    match req
        .send()
        .await
        .map_err(|e| api_error("lock", "CreateBucket", e))
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) if e.code().is_some_and(|c| c.contains("AccessDenied")) => {
            return Err(CloudError::invalid(
                "lock",
                format!(
                    "the lock bucket {} does not exist and this role may not make it: run \
                     `bookstore-infra bootstrap STACK` once with administrator credentials",
                    p.bucket
                ),
            ))
        }
        Err(e) if e.code() == Some("BucketAlreadyExists") => {
            return Err(CloudError::invalid(
                "lock",
                format!(
                    "the lock bucket {} belongs to another account: refusing to use it",
                    p.bucket
                ),
            ))
        }
        Err(e) => return Err(e),
    }
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    cloud
        .settle("lock", "PutPublicAccessBlock", || {
            cloud
                .s3
                .put_public_access_block()
                .bucket(&p.bucket)
                .expected_bucket_owner(&p.account)
                .public_access_block_configuration(block.clone())
                .send()
        })
        .await?;
    let sse = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .expect("algorithm set"),
                )
                .build(),
        )
        .build()
        .expect("rules set");
    cloud
        .settle("lock", "PutBucketEncryption", || {
            cloud
                .s3
                .put_bucket_encryption()
                .bucket(&p.bucket)
                .expected_bucket_owner(&p.account)
                .server_side_encryption_configuration(sse.clone())
                .send()
        })
        .await?;
    Ok(())
}

/// The current holder, if any.
pub async fn holder(cloud: &Cloud, stack: &str) -> Result<Option<Holder>, CloudError> {
    let p = place(cloud, stack).await?;
    Ok(read(cloud, &p).await?.map(|seen| seen.holder))
}

/// Removes the lock whoever holds it.
pub async fn force_unlock(cloud: &Cloud, stack: &str) -> Result<(), CloudError> {
    let p = place(cloud, stack).await?;
    match cloud
        .s3
        .delete_object()
        .bucket(&p.bucket)
        .key(&p.key)
        .expected_bucket_owner(&p.account)
        .send()
        .await
        .map_err(|e| api_error("lock", "DeleteObject", e))
    {
        Ok(_) => Ok(()),
        Err(e) if missing(&e) || no_bucket(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_s3s_date_less_the_objects_last_modified() {
        let modified = DateTime::from_str("2026-01-01T00:00:00Z", Format::DateTime).unwrap();
        let age = |d: &str| age_of(Some(&modified), Some(d));
        assert_eq!(
            age("Thu, 01 Jan 2026 00:10:01 GMT"),
            Some(Duration::from_secs(601))
        );
        // A date a second before the write (the two are to the second).
        assert_eq!(age("Wed, 31 Dec 2025 23:59:59 GMT"), Some(Duration::ZERO));
        assert_eq!(age("not a date"), None);
        assert_eq!(age_of(None, Some("Thu, 01 Jan 2026 00:10:01 GMT")), None);
        assert_eq!(age_of(Some(&modified), None), None);
    }
}
