//! `s3:bucket` (the private, encrypted, versioned artifact bucket) and
//! `s3:artifact` (the app binary in it, under a key holding its sha256).
//!
//! S3 cannot list buckets by tag: `ListBuckets` gives the names, and only
//! the names with the stack's prefix have their tags read.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind, TAG_STACK,
};

mod artifact;
pub use artifact::Artifact;

pub const BUCKET: &str = "s3:bucket";
pub const ARTIFACT: &str = "s3:artifact";
/// Where binaries go: `bookstore/<sha256>/bookstore`.
pub const KEY_PREFIX: &str = "bookstore/";
/// Where the single shape's instance keeps its ACME account and
/// certificates (readable by the instances' role only).
pub const TLS_PREFIX: &str = "tls/";
/// The public summary of the certificate the single shape's app serves
/// (issuer, expiry, names), which the instance copies there with the rest
/// of its TLS state; `status` reads it.
pub const CERTIFICATE_SUMMARY: &str = "tls/certificate.json";
/// The files of the TLS state that are secret: the ACME account's key and
/// the certificate's private key. Nobody but the instances' role reads them.
pub const TLS_SECRETS: &[&str] = &["tls/account.json", "tls/key.pem"];

/// The bucket's name: stack, account and region make it unique and stable.
/// Bucket names have at most 63 characters: a long stack name is cut short.
pub fn bucket_name(stack: &str, account: &str, region: &str) -> String {
    let tail = format!("-artifacts-{account}-{region}");
    let keep = 63usize.saturating_sub(tail.len()).min(stack.len());
    format!("{}{tail}", stack[..keep].trim_end_matches('-'))
}

/// The bucket policy refusing every request to `bucket` and its objects
/// that does not come over TLS: the form AWS documents ("Enforce
/// encryption in transit", Amazon S3 User Guide; the
/// `s3-bucket-ssl-requests-only` Config rule), a Deny of `s3:*` when
/// `aws:SecureTransport` is false. It grants nothing, so a public-access
/// block that blocks public policies accepts it.
pub fn tls_only_policy(bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RestrictToTLSRequestsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })
}

pub fn artifact_key(sha256: &str) -> String {
    format!("{KEY_PREFIX}{sha256}/bookstore")
}

/// Logical id of the artifact for a binary.
pub fn artifact_id(sha256: &str) -> String {
    format!("artifact-{}", &sha256[..12.min(sha256.len())])
}

fn invalid(id: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError::invalid(id, e.to_string())
}

/// What every name [`bucket_name`] gives `stack` in `region` starts with
/// (`<stack>-artifacts-`, the stack cut short the same way).
fn name_prefix(stack: &str, region: &str) -> String {
    // An account id has 12 digits.
    let name = bucket_name(stack, "000000000000", region);
    name[..name.len() - format!("000000000000-{region}").len()].to_string()
}

/// The region a `GetBucketLocation` answer means: no constraint (or an
/// empty one) is us-east-1, and the legacy `EU` is eu-west-1 (S3 API
/// reference, GetBucketLocation).
fn location_region(constraint: Option<&str>) -> &str {
    match constraint {
        None | Some("") => "us-east-1",
        Some("EU") => "eu-west-1",
        Some(r) => r,
    }
}

/// Whether a call on a bucket was refused because the bucket lives in
/// another region than the client's: 301 `PermanentRedirect` (with no body,
/// hence no code, for a HEAD), 400 `AuthorizationHeaderMalformed` ("the
/// region 'us-east-1' is wrong; expecting ..."), or
/// `IllegalLocationConstraintException`.
fn in_other_region(code: Option<&str>, status: Option<u16>) -> bool {
    status == Some(301)
        || matches!(
            code,
            Some(
                "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException"
            )
        )
}

/// Whether a per-bucket read's failure means the bucket is not one of ours
/// here: gone since the list, untagged, or in another region.
fn not_ours(e: &CloudError, status: Option<u16>) -> bool {
    in_other_region(e.code(), status)
        || matches!(
            e.code(),
            Some("NoSuchBucket" | "NoSuchTagSet" | "NoSuchTagSetError")
        )
}

/// Owned buckets: (logical id, name).
///
/// S3 cannot list buckets by tag, and `ListBuckets` names every bucket of
/// the account, in every region: a bucket with the stack's prefix may be
/// the same stack's in another region (same tags), which is not this
/// deployment's and cannot even be read with this region's client (301
/// `PermanentRedirect`). So the list asks for the stack's prefix only
/// (`prefix`, paged by `ContinuationToken`), a bucket whose `BucketRegion`
/// is another region is skipped without a call, a redirect on its tags
/// counts as "not ours", and only when the answer has no `BucketRegion` (S3
/// before 2024, emulators) does a bucket whose tags say it is ours cost a
/// `GetBucketLocation`. Calls per read: the list pages, one
/// `GetBucketTagging` per candidate in this region, and at most one
/// location per owned bucket.
async fn owned_buckets(cloud: &Cloud, stack: &str) -> Result<Vec<(String, String)>, CloudError> {
    let prefix = name_prefix(stack, &cloud.region);
    let list = cloud
        .s3
        .list_buckets()
        .prefix(&prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(BUCKET, "ListBuckets")?;
    let mut out = Vec::new();
    for b in &list {
        let Some(name) = b.name().filter(|n| n.starts_with(&prefix)) else {
            continue;
        };
        if b.bucket_region().is_some_and(|r| r != cloud.region) {
            continue;
        }
        let tags = match cloud.s3.get_bucket_tagging().bucket(name).send().await {
            Ok(t) => t.tag_set().to_vec(),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let e = api_error(BUCKET, "GetBucketTagging", e);
                if not_ours(&e, status) {
                    continue;
                }
                return Err(e);
            }
        };
        let Some(id) = super::owner_id(tags.iter().map(|t| (t.key(), t.value())), stack) else {
            continue;
        };
        if b.bucket_region().is_none() && !in_this_region(cloud, name).await? {
            continue;
        }
        out.push((id, name.to_string()));
    }
    Ok(out)
}

/// Whether the bucket lives in the client's region (for list answers
/// without `BucketRegion`): `GetBucketLocation` is answered for a bucket in
/// any region.
async fn in_this_region(cloud: &Cloud, name: &str) -> Result<bool, CloudError> {
    match cloud.s3.get_bucket_location().bucket(name).send().await {
        Ok(l) => Ok(location_region(l.location_constraint().map(|c| c.as_str())) == cloud.region),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let e = api_error(BUCKET, "GetBucketLocation", e);
            if not_ours(&e, status) {
                return Ok(false);
            }
            Err(e)
        }
    }
}

pub struct Bucket;

/// Whether versioning is on. Some S3-compatible servers name the response's
/// root element after the operation instead of `VersioningConfiguration`;
/// the SDK refuses that document, so the status is then read from the raw body.
async fn versioning_enabled(cloud: &Cloud, id: &str, bucket: &str) -> Result<bool, CloudError> {
    match cloud.s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(v.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(aws_sdk_s3::error::SdkError::ServiceError(e)) if e.raw().status().is_success() => {
            let body = e
                .raw()
                .body()
                .bytes()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Ok(body.contains("<Status>Enabled</Status>"))
        }
        Err(e) => Err(api_error(id, "GetBucketVersioning", e)),
    }
}

impl Bucket {
    /// Sets the bucket's configuration, right after CreateBucket too: S3
    /// may answer `NoSuchBucket` for moments, hence `Cloud::settle`.
    async fn configure(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        name: &str,
        changed: Option<&[String]>,
    ) -> Result<(), CloudError> {
        let want = |a: &str| changed.is_none_or(|c| c.iter().any(|x| x == a));
        if want("versioning") {
            let status = if r.bool("versioning") {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            let req = cloud
                .s3
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder().status(status).build(),
                );
            cloud
                .settle(&r.id, "PutBucketVersioning", || req.clone().send())
                .await?;
        }
        if want("encryption") {
            let algo = ServerSideEncryption::from(r.str("encryption")?);
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(algo)
                        .build()
                        .map_err(|e| invalid(&r.id, e))?,
                )
                .build();
            let req = cloud
                .s3
                .put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .map_err(|e| invalid(&r.id, e))?,
                );
            cloud
                .settle(&r.id, "PutBucketEncryption", || req.clone().send())
                .await?;
        }
        if want("block_public_access") {
            let on = r.bool("block_public_access");
            let req = cloud
                .s3
                .put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(on)
                        .ignore_public_acls(on)
                        .block_public_policy(on)
                        .restrict_public_buckets(on)
                        .build(),
                );
            cloud
                .settle(&r.id, "PutPublicAccessBlock", || req.clone().send())
                .await?;
        }
        // After the public-access block: the policy grants nothing, which
        // a block of public policies lets through.
        if let (true, Some(policy)) = (want("policy"), r.props.get("policy")) {
            if policy.is_object() {
                let req = cloud
                    .s3
                    .put_bucket_policy()
                    .bucket(name)
                    .policy(policy.to_string());
                cloud
                    .settle(&r.id, "PutBucketPolicy", || req.clone().send())
                    .await?;
            }
        }
        Ok(())
    }
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    w("s3", "create_bucket", "CreateBucket", &["s3:CreateBucket"]),
    w("s3", "put_bucket_encryption", "PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    w("s3", "put_public_access_block", "PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    r("s3", "get_bucket_encryption", "GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    r("s3", "get_bucket_location", "GetBucketLocation", &["s3:GetBucketLocation"]),
    r("s3", "get_bucket_policy", "GetBucketPolicy", &["s3:GetBucketPolicy"]),
    r("s3", "get_bucket_tagging", "GetBucketTagging", &["s3:GetBucketTagging"]),
    r("s3", "get_bucket_versioning", "GetBucketVersioning", &["s3:GetBucketVersioning"]),
    r("s3", "get_public_access_block", "GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"]),
    r("s3", "head_object", "HeadObject", &["s3:GetObject"]),
    r("s3", "list_buckets", "ListBuckets", &["s3:ListAllMyBuckets"]),
    r("s3", "list_object_versions", "ListObjectVersions", &["s3:ListBucketVersions"]),
    w("s3", "delete_bucket", "DeleteBucket", &["s3:DeleteBucket"]),
    w("s3", "delete_objects", "DeleteObjects", &["s3:DeleteObject", "s3:DeleteObjectVersion"]),
    w("s3", "put_bucket_policy", "PutBucketPolicy", &["s3:PutBucketPolicy"]),
    w("s3", "put_bucket_tagging", "PutBucketTagging", &["s3:PutBucketTagging"]),
    w("s3", "put_bucket_versioning", "PutBucketVersioning", &["s3:PutBucketVersioning"]),
];

#[async_trait]
impl ResourceKind for Bucket {
    fn kind(&self) -> &'static str {
        BUCKET
    }

    /// Bucket names are unique: `BucketAlreadyOwnedByYou` (200 in us-east-1).
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            in_place("versioning"),
            in_place("encryption"),
            in_place("block_public_access"),
            in_place("policy"),
        ];
        A
    }

    /// The bucket policy is compared by what it says (see [`super::policy`]).
    fn same(&self, attr: &str, want: &Value, have: Option<&Value>) -> bool {
        match attr {
            "policy" => super::policy::same_document(want, have),
            _ => crate::engine::same(want, have),
        }
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let mut out = Vec::new();
        for (id, name) in owned_buckets(cloud, stack).await? {
            // A bucket's settings are four reads, asked at once.
            let (versioning, encryption, blocked, policy) = tokio::join!(
                versioning_enabled(cloud, &id, &name),
                cloud.s3.get_bucket_encryption().bucket(&name).send(),
                cloud.s3.get_public_access_block().bucket(&name).send(),
                cloud.s3.get_bucket_policy().bucket(&name).send(),
            );
            let versioning = match versioning {
                Ok(v) => v,
                // Deleted or moved since the list: not ours here after all.
                Err(e) if not_ours(&e, None) => continue,
                Err(e) => return Err(e),
            };
            let encryption = match encryption {
                Ok(e) => e
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .map(|d| d.sse_algorithm().as_str().to_string())
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            let blocked = match blocked {
                Ok(p) => p.public_access_block_configuration().is_some_and(|c| {
                    c.block_public_acls() == Some(true)
                        && c.ignore_public_acls() == Some(true)
                        && c.block_public_policy() == Some(true)
                        && c.restrict_public_buckets() == Some(true)
                }),
                Err(_) => false,
            };
            // No policy is `NoSuchBucketPolicy`: null, as a policy deleted by hand.
            let policy = match policy {
                Ok(p) => p
                    .policy()
                    .map(|p| serde_json::from_str(p).unwrap_or(Value::String(p.into())))
                    .unwrap_or(Value::Null),
                Err(e) => {
                    let e = api_error(&id, "GetBucketPolicy", e);
                    if e.code() != Some("NoSuchBucketPolicy") {
                        return Err(e);
                    }
                    Value::Null
                }
            };
            out.push(
                Observed::new(BUCKET, id, name.clone())
                    .prop("name", name.clone())
                    .prop("versioning", versioning)
                    .prop("encryption", encryption)
                    .prop("block_public_access", blocked)
                    .prop("policy", policy)
                    .attr("arn", format!("arn:aws:s3:::{name}")),
            );
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let mut req = cloud.s3.create_bucket().bucket(name);
        if cloud.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(cloud.region.as_str()))
                    .build(),
            );
        }
        if let Err(e) = req.send().await {
            let e = api_error(&r.id, "CreateBucket", e);
            // The name holds stack, account and region: an existing bucket of
            // ours is one an interrupted run made (tags decide if it is another stack's).
            if e.code() != Some("BucketAlreadyOwnedByYou") {
                return Err(e);
            }
            if let Ok(t) = cloud.s3.get_bucket_tagging().bucket(name).send().await {
                let other = t
                    .tag_set()
                    .iter()
                    .any(|t| t.key() == TAG_STACK && t.value() != r.stack);
                if other {
                    return Err(CloudError::invalid(
                        &r.id,
                        format!("bucket {name} belongs to another stack"),
                    ));
                }
            }
        }
        let tags: Vec<Tag> = r
            .tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let req = cloud.s3.put_bucket_tagging().bucket(name).tagging(
            Tagging::builder()
                .set_tag_set(Some(tags))
                .build()
                .map_err(|e| invalid(&r.id, e))?,
        );
        cloud
            .settle(&r.id, "PutBucketTagging", || req.clone().send())
            .await?;
        self.configure(cloud, r, name, None).await?;
        Ok(Observed::new(BUCKET, &r.id, name)
            .prop("name", name)
            .prop("versioning", r.bool("versioning"))
            .prop("encryption", r.str("encryption")?)
            .prop("block_public_access", r.bool("block_public_access"))
            .prop(
                "policy",
                r.props.get("policy").cloned().unwrap_or(Value::Null),
            )
            .attr("arn", format!("arn:aws:s3:::{name}")))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        self.configure(cloud, r, &current.physical_id, Some(changed))
            .await?;
        Ok(current
            .clone()
            .prop("versioning", r.bool("versioning"))
            .prop("encryption", r.str("encryption")?)
            .prop("block_public_access", r.bool("block_public_access"))
            .prop(
                "policy",
                r.props.get("policy").cloned().unwrap_or(Value::Null),
            ))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let name = &current.physical_id;
        // Empty it first, every version and delete marker.
        loop {
            let list = match cloud.s3.list_object_versions().bucket(name).send().await {
                Ok(l) => l,
                Err(e) => {
                    let e = api_error(&current.id, "ListObjectVersions", e);
                    if e.code() == Some("NoSuchBucket") {
                        return Ok(());
                    }
                    return Err(e);
                }
            };
            let ids: Vec<ObjectIdentifier> = list
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    list.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                )
                .filter_map(|(k, v)| {
                    ObjectIdentifier::builder()
                        .set_key(k.map(str::to_string))
                        .set_version_id(v.map(str::to_string))
                        .build()
                        .ok()
                })
                .collect();
            if ids.is_empty() {
                break;
            }
            cloud
                .s3
                .delete_objects()
                .bucket(name)
                .delete(
                    Delete::builder()
                        .set_objects(Some(ids))
                        .quiet(true)
                        .build()
                        .map_err(|e| invalid(&current.id, e))?,
                )
                .send()
                .await
                .ctx(&current.id, "DeleteObjects")?;
        }
        super::gone_ok(
            cloud
                .s3
                .delete_bucket()
                .bucket(name)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteBucket"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_matches_every_name_of_the_stack() {
        for stack in ["demo", "a-much-longer-stack-name-of-32ch", "x-"] {
            for region in ["us-east-1", "ap-southeast-2", "eu-central-1"] {
                let p = name_prefix(stack, region);
                assert!(p.ends_with("-artifacts-"), "{p}");
                assert!(bucket_name(stack, "123456789012", region).starts_with(&p));
            }
        }
        assert_eq!(name_prefix("demo", "us-east-1"), "demo-artifacts-");
        // A long name is cut: the prefix is cut the same way.
        let long = "a".repeat(32);
        assert_eq!(
            name_prefix(&long, "ap-southeast-2"),
            format!("{}-artifacts-", &long[..25])
        );
    }

    #[test]
    fn bucket_regions() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("eu-west-2")), "eu-west-2");
        assert!(in_other_region(Some("PermanentRedirect"), Some(301)));
        assert!(in_other_region(None, Some(301)));
        assert!(in_other_region(
            Some("AuthorizationHeaderMalformed"),
            Some(400)
        ));
        assert!(in_other_region(
            Some("IllegalLocationConstraintException"),
            None
        ));
        assert!(!in_other_region(Some("AccessDenied"), Some(403)));
        assert!(!in_other_region(Some("NoSuchBucket"), Some(404)));
        let e = |c: &str| CloudError::Api {
            id: "b".into(),
            op: "GetBucketTagging".into(),
            code: c.into(),
            message: String::new(),
        };
        assert!(not_ours(&e("NoSuchTagSet"), Some(404)));
        assert!(not_ours(&e("PermanentRedirect"), Some(301)));
        assert!(not_ours(&e("Unknown"), Some(301)));
        assert!(!not_ours(&e("AccessDenied"), Some(403)));
        assert!(!not_ours(&e("InternalError"), Some(500)));
    }

    #[test]
    fn bucket_names_fit() {
        assert_eq!(
            bucket_name("demo", "123456789012", "us-east-1"),
            "demo-artifacts-123456789012-us-east-1"
        );
        let long = bucket_name(&"x".repeat(32), "123456789012", "ap-southeast-2");
        assert!(long.len() <= 63, "{long}");
        assert_eq!(
            artifact_key(&"a".repeat(64)),
            format!("bookstore/{}/bookstore", "a".repeat(64))
        );
    }
}
