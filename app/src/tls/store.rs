//! The TLS directory (`--tls-dir`): what survives a restart, and what a
//! replacement instance is given so it need not ask the CA again.
//!
//! - `account.json`: the ACME account (its id, private key and the
//!   directory URL it belongs to), mode 0600;
//! - `key.pem`: the certificate's private key (PKCS#8), mode 0600;
//! - `cert.pem`: the certificate chain, the certificate first, mode 0600;
//! - `certificate.json`: public facts about the certificate served
//!   (issuer, validity, names, serial), rewritten whenever one is obtained
//!   or loaded.
//!
//! Each file is written whole to a temporary file and renamed into place:
//! a crash leaves the old file or the new one, never half of one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;

use super::cert::{Cert, Summary};
use super::TlsError;

pub const ACCOUNT: &str = "account.json";
pub const KEY: &str = "key.pem";
pub const CERT: &str = "cert.pem";
pub const SUMMARY: &str = "certificate.json";

/// The TLS directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the directory, creating it (mode 0700) if missing.
    pub fn open(dir: &Path) -> Result<Self, TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(dir, e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The kept account, if there is one for this directory URL (an
    /// account of another CA, such as the staging one, is not used).
    pub fn account(&self, directory: &str) -> Result<Option<AccountCredentials>, TlsError> {
        let Some(text) = self.read(ACCOUNT)? else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| TlsError::Store(format!("{ACCOUNT}: {e}")))?;
        if value.get("directory").and_then(|d| d.as_str()) != Some(directory) {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| TlsError::Store(format!("{ACCOUNT}: {e}")))
    }

    /// Keeps the account.
    pub fn save_account(&self, account: &AccountCredentials) -> Result<(), TlsError> {
        let text = serde_json::to_vec_pretty(account)
            .map_err(|e| TlsError::Store(format!("{ACCOUNT}: {e}")))?;
        self.write(ACCOUNT, &text)
    }

    /// The kept certificate with its key, if both files are there.
    pub fn cert(&self) -> Result<Option<Cert>, TlsError> {
        match (self.read(CERT)?, self.read(KEY)?) {
            (Some(chain), Some(key)) => Cert::from_pem(&chain, &key).map(Some),
            _ => Ok(None),
        }
    }

    /// Keeps a new certificate: its key first, so that a crash between
    /// the two leaves a key without its certificate (ordered anew), not a
    /// certificate beside the old key.
    pub fn save_cert(&self, chain_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        self.write(KEY, key_pem.as_bytes())?;
        self.write(CERT, chain_pem.as_bytes())
    }

    /// Writes `certificate.json` for the certificate served.
    pub fn save_summary(&self, summary: &Summary) -> Result<(), TlsError> {
        let mut text = serde_json::to_vec_pretty(summary)
            .map_err(|e| TlsError::Store(format!("{SUMMARY}: {e}")))?;
        text.push(b'\n');
        self.write(SUMMARY, &text)
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, TlsError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Writes a file whole (mode 0600): a temporary file, synced, renamed.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TlsError> {
        let path = self.path(name);
        let tmp = self.path(&format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_written_whole_and_for_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("tls")).unwrap();
        store.write(KEY, b"first").unwrap();
        store.write(KEY, b"second").unwrap();
        let path = dir.path().join("tls").join(KEY);
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let names: Vec<_> = fs::read_dir(dir.path().join("tls"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [KEY], "no temporary file is left behind");
    }

    #[test]
    fn an_account_of_another_directory_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(
                ACCOUNT,
                br#"{"id":"https://ca.example/acct/1","key_pkcs8":"AAAA","directory":"https://ca.example/dir"}"#,
            )
            .unwrap();
        assert!(store.account("https://ca.example/dir").unwrap().is_some());
        assert!(store
            .account("https://other.example/dir")
            .unwrap()
            .is_none());
    }
}
