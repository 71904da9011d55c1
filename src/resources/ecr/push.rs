//! Pushing an image through the ECR API (no registry client, no daemon):
//! the blobs the repository lacks are uploaded in parts, then the manifest
//! is put. Each step survives its answer being lost: a layer part repeated
//! after a lost answer is refused as out of order, and the upload resumes
//! from the last byte ECR says it has; a layer completed or an image put
//! by the first attempt is "already exists", which is what was wanted.

use aws_sdk_ecr::operation::complete_layer_upload::CompleteLayerUploadError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob as SdkBlob;

use crate::cloud::{api_error, Cloud, CloudError};
use crate::image::{Blob, Image, MANIFEST_MEDIA_TYPE};

/// The part size when ECR names none. ECR's own answer (`partSize`) is
/// used otherwise; parts other than the last must be at least 5 MiB.
const DEFAULT_PART: usize = 10 << 20;
/// How many times an upload starts over after ECR forgot it
/// (`UploadNotFoundException`: uploads expire).
const UPLOAD_ATTEMPTS: usize = 3;

/// What a push sent: the blobs uploaded and those the repository had.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub uploaded: Vec<String>,
    pub skipped: Vec<String>,
}

/// Pushes `image` into the repository `repo` under `tag`.
pub async fn push(
    cloud: &Cloud,
    id: &str,
    repo: &str,
    image: &Image,
    tag: &str,
) -> Result<Pushed, CloudError> {
    let blobs: Vec<&Blob> = image.blobs().collect();
    let check = cloud
        .settle(id, "BatchCheckLayerAvailability", || {
            cloud
                .ecr
                .batch_check_layer_availability()
                .repository_name(repo)
                .set_layer_digests(Some(blobs.iter().map(|b| b.digest.clone()).collect()))
                .send()
        })
        .await?;
    let have: Vec<&str> = check
        .layers()
        .iter()
        .filter(|l| {
            l.layer_availability()
                .is_some_and(|a| a.as_str() == "AVAILABLE")
        })
        .filter_map(|l| l.layer_digest())
        .collect();
    for f in check.failures() {
        let code = f.failure_code().map(|c| c.as_str()).unwrap_or_default();
        if code != "MissingLayerDigest" {
            return Err(CloudError::invalid(
                id,
                format!(
                    "BatchCheckLayerAvailability: {code} for {}: {}",
                    f.layer_digest().unwrap_or_default(),
                    f.failure_reason().unwrap_or_default()
                ),
            ));
        }
    }
    let mut pushed = Pushed::default();
    for blob in blobs {
        if have.contains(&blob.digest.as_str()) {
            pushed.skipped.push(blob.digest.clone());
            continue;
        }
        cloud.status(
            id,
            &format!("uploading {} ({} bytes)", blob.digest, blob.bytes.len()),
        );
        upload(cloud, id, repo, blob).await?;
        pushed.uploaded.push(blob.digest.clone());
    }
    put_manifest(cloud, id, repo, image, tag).await?;
    Ok(pushed)
}

/// Uploads one blob. `UploadNotFoundException` means ECR no longer knows
/// the upload: it expired, or a completion whose answer was lost finished
/// it. ECR is asked which; only an upload that did not finish starts over.
async fn upload(cloud: &Cloud, id: &str, repo: &str, blob: &Blob) -> Result<(), CloudError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match upload_once(cloud, id, repo, blob).await {
            Err(e) if e.code() == Some("UploadNotFoundException") => {
                if available(cloud, id, repo, &blob.digest).await? {
                    return Ok(());
                }
                if attempt >= UPLOAD_ATTEMPTS {
                    return Err(e);
                }
                cloud.status(id, "the upload expired; starting it again");
            }
            other => return other,
        }
    }
}

/// Whether the repository holds the blob `digest`.
async fn available(cloud: &Cloud, id: &str, repo: &str, digest: &str) -> Result<bool, CloudError> {
    let check = cloud
        .ecr
        .batch_check_layer_availability()
        .repository_name(repo)
        .layer_digests(digest)
        .send()
        .await
        .map_err(|e| api_error(id, "BatchCheckLayerAvailability", e))?;
    Ok(check.layers().iter().any(|l| {
        l.layer_digest() == Some(digest)
            && l.layer_availability()
                .is_some_and(|a| a.as_str() == "AVAILABLE")
    }))
}

async fn upload_once(cloud: &Cloud, id: &str, repo: &str, blob: &Blob) -> Result<(), CloudError> {
    let started = cloud
        .settle(id, "InitiateLayerUpload", || {
            cloud
                .ecr
                .initiate_layer_upload()
                .repository_name(repo)
                .send()
        })
        .await?;
    let upload_id = started
        .upload_id()
        .ok_or_else(|| CloudError::invalid(id, "InitiateLayerUpload returned no upload id"))?
        .to_string();
    let part = started
        .part_size()
        .filter(|p| *p > 0)
        .map(|p| p as usize)
        .unwrap_or(DEFAULT_PART);
    let len = blob.bytes.len();
    let mut at = 0;
    while at < len {
        let end = (at + part).min(len);
        let sent = cloud
            .ecr
            .upload_layer_part()
            .repository_name(repo)
            .upload_id(&upload_id)
            .part_first_byte(at as i64)
            .part_last_byte(end as i64 - 1)
            .layer_part_blob(SdkBlob::new(blob.bytes[at..end].to_vec()))
            .send()
            .await;
        match sent {
            Ok(o) => at = o.last_byte_received().map_or(end, |b| b as usize + 1),
            Err(e) => {
                // The SDK repeated a part whose answer was lost: ECR has it
                // and refuses the repeat as out of order, naming the last
                // byte it holds. Go on from there.
                if let Some(UploadLayerPartError::InvalidLayerPartException(x)) =
                    e.as_service_error()
                {
                    if let Some(last) = x.last_valid_byte_received() {
                        let next = last as usize + 1;
                        if next > at && next <= len {
                            at = next;
                            continue;
                        }
                    }
                }
                return Err(api_error(id, "UploadLayerPart", e));
            }
        }
    }
    let done = cloud
        .ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(&upload_id)
        .layer_digests(&blob.digest)
        .send()
        .await;
    match done {
        Ok(o) if o.layer_digest() == Some(blob.digest.as_str()) => Ok(()),
        Ok(o) => Err(CloudError::invalid(
            id,
            format!(
                "ECR computed the digest {} for the blob {}",
                o.layer_digest().unwrap_or_default(),
                blob.digest
            ),
        )),
        // The first attempt's answer was lost, or another push sent the
        // same blob meanwhile: the repository has it.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CompleteLayerUploadError::LayerAlreadyExistsException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(api_error(id, "CompleteLayerUpload", e)),
    }
}

async fn put_manifest(
    cloud: &Cloud,
    id: &str,
    repo: &str,
    image: &Image,
    tag: &str,
) -> Result<(), CloudError> {
    let manifest = std::str::from_utf8(&image.manifest.bytes)
        .map_err(|e| CloudError::invalid(id, format!("the manifest is not UTF-8: {e}")))?;
    let put = cloud
        .ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest)
        .image_manifest_media_type(MANIFEST_MEDIA_TYPE)
        .image_digest(image.digest())
        .image_tag(tag)
        .send()
        .await;
    match put {
        Ok(o) => {
            let got = o
                .image()
                .and_then(|i| i.image_id())
                .and_then(|i| i.image_digest());
            match got {
                Some(d) if d != image.digest() => Err(CloudError::invalid(
                    id,
                    format!("ECR stored the image as {d}, not {}", image.digest()),
                )),
                _ => Ok(()),
            }
        }
        // This image with this tag is there: the first attempt put it.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(PutImageError::ImageAlreadyExistsException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(api_error(id, "PutImage", e)).map_err(|e| {
            if e.code() == Some("ImageTagAlreadyExistsException") {
                CloudError::invalid(
                    id,
                    format!("the tag {tag} names another image in {repo} (tags are immutable)"),
                )
            } else {
                e
            }
        }),
    }
}
