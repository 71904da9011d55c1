//! `ecr:image`: the app's container image in the stack's repository,
//! named by its digest. The image is built from the binary when it is
//! pushed, and must come out with the digest the plan computed from the
//! same binary: a binary changed between the plan and the push is refused,
//! not shipped unreviewed.

use async_trait::async_trait;
use aws_sdk_ecr::types::ImageIdentifier;

use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const IMAGE_KIND: &str = "ecr:image";

pub struct Image;

/// The logical id of the image with `digest` (`sha256:<hex>`).
pub fn image_id(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("image-{}", &hex[..hex.len().min(12)])
}

/// The tag a pushed image carries: its digest, shortened. Tags are
/// immutable in the repository, and this one can only ever name this image.
pub fn image_tag(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("sha256-{}", &hex[..hex.len().min(16)])
}

/// (It reads the repositories through [`super::Repository`], whose calls
/// are listed there.)
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ecr", "describe_images", "DescribeImages", &["ecr:DescribeImages"]),
    // Only a push asks which blobs the repository has: granted with the
    // repository's writes.
    w("ecr", "batch_check_layer_availability", "BatchCheckLayerAvailability", &["ecr:BatchCheckLayerAvailability"]),
    w("ecr", "initiate_layer_upload", "InitiateLayerUpload", &["ecr:InitiateLayerUpload"]),
    w("ecr", "upload_layer_part", "UploadLayerPart", &["ecr:UploadLayerPart"]),
    w("ecr", "complete_layer_upload", "CompleteLayerUpload", &["ecr:CompleteLayerUpload"]),
    w("ecr", "put_image", "PutImage", &["ecr:PutImage"]),
    w("ecr", "batch_delete_image", "BatchDeleteImage", &["ecr:BatchDeleteImage"]),
];

fn observed(id: &str, repo: &str, uri: &str, digest: &str) -> Observed {
    Observed::new(IMAGE_KIND, id, format!("{repo}@{digest}"))
        .prop("repository", repo)
        .prop("digest", digest)
        .attr("image", format!("{uri}@{digest}"))
        .attr("digest", digest)
}

#[async_trait]
impl ResourceKind for Image {
    fn kind(&self) -> &'static str {
        IMAGE_KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("repository"), replace("digest")];
        A
    }

    /// A push repeated after a lost answer sends what the registry has
    /// (layers are skipped, the manifest is the same image).
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let mut out = Vec::new();
        for repo in super::Repository.read_all(cloud, stack).await? {
            let name = repo.physical_id.clone();
            let uri = repo.attrs.get("uri").cloned().unwrap_or_default();
            let pages = cloud
                .ecr
                .describe_images()
                .repository_name(&name)
                .into_paginator()
                .send()
                .try_collect()
                .await;
            let pages = match pages.ctx(IMAGE_KIND, "DescribeImages") {
                Ok(p) => p,
                // The repository went between the two reads.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            for d in pages.iter().flat_map(|p| p.image_details()) {
                if let Some(digest) = d.image_digest() {
                    out.push(observed(&image_id(digest), &name, &uri, digest));
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let (repo, uri, digest) = (r.str("repository")?, r.str("uri")?, r.str("digest")?);
        let binary = r.str("binary")?;
        cloud.status(&r.id, &format!("building the image of {binary}"));
        let built = tokio::task::spawn_blocking({
            let binary = std::path::PathBuf::from(binary);
            move || crate::image::build(&binary)
        })
        .await
        .map_err(|e| CloudError::invalid(&r.id, format!("building the image: {e}")))?
        .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?;
        if built.digest() != digest {
            return Err(CloudError::invalid(
                &r.id,
                format!(
                    "{binary} gives the image {}, not the plan's {digest}: the binary \
                     or this machine's libraries changed since the plan; plan again",
                    built.digest()
                ),
            ));
        }
        super::push(cloud, &r.id, repo, &built, &image_tag(digest)).await?;
        Ok(observed(&r.id, repo, uri, digest))
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
        let get = |k: &str| {
            current
                .props
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let out = cloud
            .ecr
            .batch_delete_image()
            .repository_name(get("repository"))
            .image_ids(
                ImageIdentifier::builder()
                    .image_digest(get("digest"))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .ctx(&current.id, "BatchDeleteImage");
        // BatchDeleteImage answers an image already gone as a failure in
        // its body (ImageNotFound), not an error.
        super::super::gone_ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags_come_from_the_digest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(image_id(&d), "image-abababababab");
        assert_eq!(image_tag(&d), "sha256-abababababababab");
    }
}
