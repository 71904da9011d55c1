//! The app's container image, built without a container daemon (as ko
//! and Jib build theirs): an OCI image of two layers, the runtime (a
//! non-root user, CA certificates, the C library the binary links) and
//! the `bookstore` binary. Nothing in it depends on the time or the
//! machine's state beyond those files, so the same binary gives the same
//! digest; a new binary changes only the second layer, and a registry
//! that has the first is not sent it again.

mod layer;
mod layout;
mod runtime;

use std::path::Path;

use serde_json::json;

pub use layer::{Files, Owner};
pub use layout::write_layout;

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The app's user and group id in the image (the one distroless images use
/// for `nonroot`); the file system's access point writes as this id too.
pub const APP_UID: u64 = 65532;
/// Where the binary is.
pub const BINARY_PATH: &str = "/usr/local/bin/bookstore";
/// The app's data directory: the shared file system is mounted here.
pub const DATA_DIR: &str = "/var/lib/bookstore";
/// The port the app listens on in the container.
pub const PORT: u16 = 8080;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("cannot write the layer entry {0}: {1}")]
    Layer(String, #[source] std::io::Error),
    #[error("cannot find the libraries {0} needs: {1}")]
    Libraries(String, String),
    #[error("cannot write the image to {0}: {1}")]
    Write(String, #[source] std::io::Error),
}

/// Content-addressed bytes: a layer, the config or the manifest.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: &'static str,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub bytes: Vec<u8>,
    /// Layers only: `sha256:<hex>` of the uncompressed tar.
    pub diff_id: Option<String>,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: layer::sha256(&bytes),
            bytes,
            diff_id: None,
        }
    }

    fn with_diff_id(mut self, diff_id: String) -> Blob {
        self.diff_id = Some(diff_id);
        self
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// A built image: its layers (runtime first), config and manifest. The
/// image's digest is the manifest's.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
}

impl Image {
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Every blob a registry must hold before the manifest: the layers
    /// and the config.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }
}

/// Builds the image of the `bookstore` binary at `binary`.
pub fn build(binary: &Path) -> Result<Image, ImageError> {
    let bytes =
        std::fs::read(binary).map_err(|e| ImageError::Read(binary.display().to_string(), e))?;
    let runtime = runtime::files(binary)?.layer()?;
    let mut app = Files::default();
    app.file(BINARY_PATH, 0o755, bytes);
    let app = app.layer()?;
    Ok(assemble(vec![runtime, app]))
}

fn assemble(layers: Vec<Blob>) -> Image {
    let diff_ids: Vec<&str> = layers.iter().filter_map(|l| l.diff_id.as_deref()).collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": format!("{APP_UID}:{APP_UID}"),
            "Entrypoint": [BINARY_PATH],
            "Cmd": ["serve"],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                format!("BOOKSTORE_LISTEN=0.0.0.0:{PORT}"),
                format!("BOOKSTORE_DATA_DIR={DATA_DIR}"),
                "BOOKSTORE_LOG_FORMAT=json",
            ],
            "WorkingDir": DATA_DIR,
            "ExposedPorts": { format!("{PORT}/tcp"): {} },
            "StopSignal": "SIGTERM",
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [
            { "created": "1970-01-01T00:00:00Z", "created_by": "bookstore-infra: runtime" },
            { "created": "1970-01-01T00:00:00Z", "created_by": "bookstore-infra: bookstore" },
        ],
    });
    let config = Blob::new(CONFIG_MEDIA_TYPE, canonical_json(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    let manifest = Blob::new(MANIFEST_MEDIA_TYPE, canonical_json(&manifest));
    Image {
        layers,
        config,
        manifest,
    }
}

/// JSON with object keys in sorted order, whatever order the map keeps
/// them in: the bytes, and so the digest, depend only on the content.
fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: std::collections::BTreeMap<_, _> =
                    m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_of(bytes: &[u8]) -> Image {
        let mut app = Files::default();
        app.file(BINARY_PATH, 0o755, bytes.to_vec());
        let mut rt = Files::default();
        rt.file(
            "etc/passwd",
            0o644,
            b"root:x:0:0::/:/sbin/nologin\n".to_vec(),
        );
        assemble(vec![rt.layer().unwrap(), app.layer().unwrap()])
    }

    #[test]
    fn the_manifest_names_the_config_and_layers_by_digest_and_size() {
        let img = image_of(b"binary");
        let m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], img.config.digest);
        assert_eq!(m["config"]["size"], img.config.bytes.len());
        assert_eq!(m["layers"][1]["digest"], img.layers[1].digest);
        let c: serde_json::Value = serde_json::from_slice(&img.config.bytes).unwrap();
        assert_eq!(
            c["rootfs"]["diff_ids"][1].as_str(),
            img.layers[1].diff_id.as_deref()
        );
        assert_eq!(c["config"]["User"], "65532:65532");
        assert_eq!(img.digest(), layer::sha256(&img.manifest.bytes));
    }

    #[test]
    fn a_new_binary_changes_only_its_layer() {
        let (a, b) = (image_of(b"one"), image_of(b"two"));
        assert_eq!(a.layers[0].digest, b.layers[0].digest);
        assert_ne!(a.layers[1].digest, b.layers[1].digest);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(image_of(b"one").digest(), a.digest());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 3}});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
