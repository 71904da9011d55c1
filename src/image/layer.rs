//! One image layer: a gzip-compressed tar whose bytes depend only on
//! the files in it, never on when, where or by whom it was made.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use super::{Blob, ImageError, LAYER_MEDIA_TYPE};

/// Who owns an entry: root, or the app's own user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Root,
    App,
}

impl Owner {
    fn id(self) -> u64 {
        match self {
            Owner::Root => 0,
            Owner::App => super::APP_UID,
        }
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Dir { mode: u32, owner: Owner },
    File { mode: u32, bytes: Vec<u8> },
}

/// The files of a layer, by path (relative, no leading `/`). Parent
/// directories are added as root-owned 0755 unless given; entries are
/// written in path order, so the order they were added in does not matter.
#[derive(Default)]
pub struct Files {
    entries: BTreeMap<String, Entry>,
}

impl Files {
    pub fn dir(&mut self, path: &str, mode: u32, owner: Owner) -> &mut Self {
        self.parents(path);
        self.entries.insert(clean(path), Entry::Dir { mode, owner });
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, bytes: Vec<u8>) -> &mut Self {
        self.parents(path);
        self.entries
            .insert(clean(path), Entry::File { mode, bytes });
        self
    }

    fn parents(&mut self, path: &str) {
        let path = clean(path);
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = path[..at + i].to_string();
            self.entries.entry(parent).or_insert(Entry::Dir {
                mode: 0o755,
                owner: Owner::Root,
            });
            at += i + 1;
        }
    }

    /// The paths in the layer, in the order they are written.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The layer: the tar (whose sha256 is the config's `diff_id`) and
    /// its gzip (whose sha256 is the blob's digest).
    pub fn layer(&self) -> Result<Blob, ImageError> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            match entry {
                Entry::Dir { mode, owner } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_uid(owner.id());
                    h.set_gid(owner.id());
                    h.set_size(0);
                    tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                }
                Entry::File { mode, bytes } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_size(bytes.len() as u64);
                    tar.append_data(&mut h, path, bytes.as_slice())
                }
            }
            .map_err(|e| ImageError::Layer(path.clone(), e))?;
        }
        let tar = tar
            .into_inner()
            .map_err(|e| ImageError::Layer("(end)".into(), e))?;
        let diff_id = sha256(&tar);
        // No file name, no modification time: the gzip header is the same
        // for the same tar.
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::default());
        gz.write_all(&tar)
            .and_then(|()| gz.try_finish())
            .map_err(|e| ImageError::Layer("(gzip)".into(), e))?;
        let bytes = gz
            .finish()
            .map_err(|e| ImageError::Layer("(gzip)".into(), e))?;
        Ok(Blob::new(LAYER_MEDIA_TYPE, bytes).with_diff_id(diff_id))
    }
}

fn clean(path: &str) -> String {
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(blob: &Blob) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        let tar = flate2::read::GzDecoder::new(blob.bytes.as_slice());
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut body).unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                    body,
                )
            })
            .collect()
    }

    #[test]
    fn parents_come_first_and_order_of_adding_does_not_matter() {
        let mut a = Files::default();
        a.file("/usr/local/bin/x", 0o755, b"x".to_vec())
            .dir("/tmp", 0o1777, Owner::Root)
            .dir("var/lib/app", 0o750, Owner::App);
        let mut b = Files::default();
        b.dir("var/lib/app", 0o750, Owner::App)
            .dir("tmp/", 0o1777, Owner::Root)
            .file("usr/local/bin/x", 0o755, b"x".to_vec());
        let (la, lb) = (a.layer().unwrap(), b.layer().unwrap());
        assert_eq!(la.digest, lb.digest);
        assert_eq!(la.diff_id, lb.diff_id);
        let entries = read_back(&la);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "tmp/",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/x",
                "var/",
                "var/lib/",
                "var/lib/app/"
            ]
        );
        let app = entries.iter().find(|e| e.0 == "var/lib/app/").unwrap();
        assert_eq!(
            (app.1, app.2),
            (0o750, u64::from(crate::image::APP_UID as u32))
        );
        let tmp = entries.iter().find(|e| e.0 == "tmp/").unwrap();
        assert_eq!(tmp.1, 0o1777);
        assert!(entries.iter().all(|e| e.3 == 0), "every mtime is 0");
        assert_eq!(entries[4].4, b"x");
    }

    #[test]
    fn the_digest_is_of_the_gzip_and_the_diff_id_of_the_tar() {
        let mut f = Files::default();
        f.file("a", 0o644, b"hello".to_vec());
        let blob = f.layer().unwrap();
        assert_eq!(blob.digest, sha256(&blob.bytes));
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(blob.bytes.as_slice()),
            &mut tar,
        )
        .unwrap();
        assert_eq!(blob.diff_id.as_deref(), Some(sha256(&tar).as_str()));
        let mut g = Files::default();
        g.file("a", 0o644, b"hellO".to_vec());
        assert_ne!(g.layer().unwrap().digest, blob.digest);
    }
}
