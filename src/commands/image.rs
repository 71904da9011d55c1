//! `image`: builds the app's container image, without a container daemon,
//! into an OCI image layout directory, and prints its digest. `up` builds
//! the same image (the same digest) for a Fargate stack; this verb shows
//! it, or hands it to other tools (`skopeo copy oci:DIR:TAG ...`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use bookstore_infra::image;
use bookstore_infra::pipeline::facts::DEFAULT_BINARY;

#[derive(Args)]
pub struct ImageArgs {
    /// The `bookstore` binary to put in the image.
    #[arg(long, default_value = DEFAULT_BINARY)]
    pub app_binary: PathBuf,
    /// The OCI image layout directory to write (created if missing).
    #[arg(long, default_value = "target/image")]
    pub out: PathBuf,
    /// The reference name inside the layout.
    #[arg(long, default_value = "latest")]
    pub tag: String,
}

pub fn run(a: &ImageArgs) -> Result<u8> {
    let img = image::build(&a.app_binary)
        .with_context(|| format!("building the image of {}", a.app_binary.display()))?;
    image::write_layout(&img, &a.out, &a.tag)?;
    for (layer, what) in img.layers.iter().zip(["runtime", "bookstore"]) {
        println!(
            "layer {what:9} {} ({} bytes)",
            layer.digest,
            layer.bytes.len()
        );
    }
    println!("image {}", img.digest());
    println!("written to oci:{}:{}", a.out.display(), a.tag);
    Ok(super::exit::OK)
}
