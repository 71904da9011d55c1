//! The stylesheets built into the program, each with its ETag and the
//! content-versioned URL pages link to (served by `routes::assets`).

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub const BOOTSTRAP_PATH: &str = "/static/bootstrap.min.css";
pub const SHOP_PATH: &str = "/static/bookstore.css";

/// The few styles Bootstrap has no class for (the pages have no inline
/// styles: the content security policy forbids them).
const SHOP_CSS: &str = ".cover-thumb{max-width:80px}.qty-input{width:5em}\n";

/// A file built into the program, with its ETag and versioned URL.
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// `"<hex>"`, quotes included.
    pub etag: String,
    /// The URL pages link to: the path and `?v=<hex>`.
    pub url: String,
}

impl Asset {
    fn new(path: &str, bytes: &'static [u8], content_type: &'static str) -> Asset {
        let version = hex::encode(&Sha256::digest(bytes)[..8]);
        Asset {
            bytes,
            content_type,
            etag: format!("\"{version}\""),
            url: format!("{path}?v={version}"),
        }
    }

    /// The version in the URL, without quotes.
    pub fn version(&self) -> &str {
        self.etag.trim_matches('"')
    }
}

pub static BOOTSTRAP: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        BOOTSTRAP_PATH,
        include_bytes!("../assets/bootstrap.min.css"),
        "text/css; charset=utf-8",
    )
});

pub static SHOP: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(SHOP_PATH, SHOP_CSS.as_bytes(), "text/css; charset=utf-8"));

/// The URL of the Bootstrap stylesheet, for the layout.
pub fn bootstrap_url() -> &'static str {
    &BOOTSTRAP.url
}

/// The URL of the shop's own stylesheet, for the layout.
pub fn shop_url() -> &'static str {
    &SHOP.url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_urls_name_the_content() {
        assert!(bootstrap_url().starts_with("/static/bootstrap.min.css?v="));
        assert_eq!(SHOP.etag.len(), 18);
        assert_eq!(
            shop_url(),
            format!("/static/bookstore.css?v={}", SHOP.version())
        );
    }
}
