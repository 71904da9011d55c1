//! `s3:artifact`: the app binary in the artifact bucket, under a key
//! holding its sha256.

use super::*;

pub struct Artifact;

#[async_trait]
impl ResourceKind for Artifact {
    fn kind(&self) -> &'static str {
        ARTIFACT
    }

    /// A PutObject to the same key writes the same object.
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("bucket"), replace("key"), replace("sha256")];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let mut out = Vec::new();
        for (_, bucket) in owned_buckets(cloud, stack).await? {
            // Paged at 1000 keys by ContinuationToken.
            let pages = cloud
                .s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(KEY_PREFIX)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .ctx(ARTIFACT, "ListObjectsV2")?;
            for o in pages.iter().flat_map(|p| p.contents()) {
                let Some(key) = o.key() else { continue };
                let Some(sha) = key
                    .strip_prefix(KEY_PREFIX)
                    .and_then(|k| k.strip_suffix("/bookstore"))
                    .filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
                else {
                    continue;
                };
                out.push(
                    Observed::new(ARTIFACT, artifact_id(sha), format!("s3://{bucket}/{key}"))
                        .prop("bucket", bucket.clone())
                        .prop("key", key)
                        .prop("sha256", sha)
                        .attr("key", key)
                        .attr("bucket", bucket.clone()),
                );
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (bucket, key, sha) = (r.str("bucket")?, r.str("key")?, r.str("sha256")?);
        let exists = match cloud.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => true,
            Err(e) => {
                let e = api_error(&r.id, "HeadObject", e);
                if matches!(e.code(), Some("NotFound") | Some("NoSuchKey")) {
                    false
                } else {
                    return Err(e);
                }
            }
        };
        if !exists {
            let file = r.str("file")?;
            let body = ByteStream::from_path(file)
                .await
                .map_err(|e| CloudError::invalid(&r.id, format!("cannot read {file}: {e}")))?;
            cloud.status(&r.id, &format!("uploading {file}"));
            // The bucket may have been created moments before (`NoSuchBucket`).
            let mut body = Some(body);
            cloud
                .settle_ctx(&r.id, "PutObject", || {
                    let body = body.take();
                    async move {
                        let body = match body {
                            Some(b) => b,
                            None => ByteStream::from_path(file).await.map_err(|e| {
                                CloudError::invalid(&r.id, format!("cannot read {file}: {e}"))
                            })?,
                        };
                        cloud
                            .s3
                            .put_object()
                            .bucket(bucket)
                            .key(key)
                            .body(body)
                            .metadata("sha256", sha)
                            .server_side_encryption(ServerSideEncryption::Aes256)
                            .send()
                            .await
                            .ctx(&r.id, "PutObject")
                    }
                })
                .await?;
        }
        Ok(
            Observed::new(ARTIFACT, &r.id, format!("s3://{bucket}/{key}"))
                .prop("bucket", bucket)
                .prop("key", key)
                .prop("sha256", sha)
                .attr("key", key)
                .attr("bucket", bucket),
        )
    }

    async fn update(
        &self,
        _: &Cloud,
        _: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        Ok(current.clone())
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let bucket = current
            .props
            .get("bucket")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let key = current
            .props
            .get("key")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        crate::resources::gone_ok(
            cloud
                .s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteObject"),
        )
    }
}
