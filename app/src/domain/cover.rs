//! A cover's file name: 32 hex digits and the image's extension.

/// The name of a stored cover file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover(String);

impl Cover {
    /// A name as stored or as asked for in a URL; anything else is `None`.
    pub fn parse(name: &str) -> Option<Cover> {
        let (stem, ext) = name.split_once('.')?;
        let ok = stem.len() == 32
            && stem.chars().all(|c| c.is_ascii_hexdigit())
            && matches!(ext, "jpg" | "png" | "webp");
        ok.then(|| Cover(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The MIME type its extension stands for.
    pub fn mime(&self) -> &'static str {
        match self.0.rsplit('.').next() {
            Some("jpg") => "image/jpeg",
            Some("png") => "image/png",
            _ => "image/webp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names() {
        let n = format!("{}.png", "a".repeat(32));
        assert_eq!(Cover::parse(&n).unwrap().mime(), "image/png");
        assert!(Cover::parse("../etc/passwd").is_none());
        assert!(Cover::parse(&format!("{}.svg", "a".repeat(32))).is_none());
        assert!(Cover::parse(&format!("{}.png", "g".repeat(32))).is_none());
    }
}
