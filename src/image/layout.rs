//! The image as an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/`), which skopeo, umoci and every registry client read.

use std::path::Path;

use serde_json::json;

use super::{Image, ImageError, MANIFEST_MEDIA_TYPE};

/// Writes `image` into `dir` (created if missing) under the reference
/// `tag`. Blobs already there are content-addressed and kept.
pub fn write_layout(image: &Image, dir: &Path, tag: &str) -> Result<(), ImageError> {
    let err = |e| ImageError::Write(dir.display().to_string(), e);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(err)?;
    for blob in image.blobs().chain(std::iter::once(&image.manifest)) {
        let hex = blob.digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), &blob.bytes).map_err(err)?;
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": image.manifest.digest,
            "size": image.manifest.bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(dir.join("index.json"), super::canonical_json(&index)).map_err(err)
}
