//! The runtime layer: what the binary needs besides itself. A user and
//! group of its own, the CA certificates (Mozilla's, as the tool is built
//! with them: the same on every machine), the name service order, a
//! sticky `/tmp`, the data directory, the database's certificate
//! authorities, and, when the binary is linked
//! dynamically, its loader and libraries as this machine resolves them.

use std::path::Path;
use std::process::Command;

use base64::Engine;

use super::{Files, ImageError, Owner, APP_UID, DATA_DIR};

/// The Amazon RDS certificate authorities the app ships (`app/certs`).
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../app/certs/rds-global-bundle.pem");

pub(super) fn files(binary: &Path) -> Result<Files, ImageError> {
    let mut f = Files::default();
    f.file(
        "etc/passwd",
        0o644,
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n\
             bookstore:x:{APP_UID}:{APP_UID}:bookstore:/nonexistent:/sbin/nologin\n"
        )
        .into_bytes(),
    )
    .file(
        "etc/group",
        0o644,
        format!("root:x:0:\nbookstore:x:{APP_UID}:\n").into_bytes(),
    )
    .file("etc/nsswitch.conf", 0o644, b"hosts: files dns\n".to_vec())
    .file("etc/ssl/certs/ca-certificates.crt", 0o644, ca_bundle())
    // The database's authorities, which the app verifies its server by
    // (`ssl-ca`), the same the app is built with.
    .file("etc/bookstore/rds-ca.pem", 0o644, RDS_CA_BUNDLE.to_vec())
    .dir("tmp", 0o1777, Owner::Root)
    .dir(DATA_DIR, 0o750, Owner::App);
    for lib in libraries(binary)? {
        let bytes = std::fs::read(&lib).map_err(|e| ImageError::Read(lib.clone(), e))?;
        f.file(&lib, 0o755, bytes);
    }
    Ok(f)
}

/// Mozilla's trusted roots as PEM, in the order the crate lists them.
fn ca_bundle() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = b64.encode(cert.as_ref());
        for line in text.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// The loader and shared libraries a dynamically linked binary loads,
/// as `ldd` resolves them here (none for a static binary), sorted.
fn libraries(binary: &Path) -> Result<Vec<String>, ImageError> {
    let shown = binary.display().to_string();
    let out = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| ImageError::Libraries(shown.clone(), format!("running ldd: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if text.contains("not a dynamic executable") || err.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(ImageError::Libraries(shown, err.trim().to_string()));
    }
    parse_ldd(&text).map_err(|line| ImageError::Libraries(shown, format!("ldd says: {line}")))
}

/// The absolute paths in `ldd`'s answer; a library it cannot find is
/// the offending line.
fn parse_ldd(text: &str) -> Result<Vec<String>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once("=>") {
            Some((_, right)) => {
                let right = right.trim();
                if right.starts_with("not found") {
                    return Err(line.to_string());
                }
                right.split(" (").next().unwrap_or_default().trim()
            }
            None => line.split(" (").next().unwrap_or_default().trim(),
        };
        // The vDSO is the kernel's, not a file.
        if path.starts_with('/') {
            libs.push(path.to_string());
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_paths_are_read_and_the_vdso_skipped() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert_eq!(
            parse_ldd("\tstatically linked\n").unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n")
            .unwrap_err()
            .contains("libfoo"));
    }

    #[test]
    fn the_ca_bundle_is_pem_and_the_same_every_time() {
        let a = ca_bundle();
        assert_eq!(a, ca_bundle());
        let text = String::from_utf8(a).unwrap();
        let n = text.matches("-----BEGIN CERTIFICATE-----").count();
        assert!(n > 100, "{n} roots");
        assert_eq!(n, text.matches("-----END CERTIFICATE-----").count());
        assert!(text
            .lines()
            .all(|l| l.len() <= 64 || l.starts_with("-----")));
    }

    #[test]
    fn the_runtime_holds_the_user_and_this_machines_c_library() {
        // The tool's own test binary is linked dynamically, as the app's is.
        let me = std::env::current_exe().unwrap();
        let f = files(&me).unwrap();
        let paths: Vec<&str> = f.paths().collect();
        assert!(paths.contains(&"etc/passwd"));
        assert!(paths.contains(&"var/lib/bookstore"));
        assert!(paths.iter().any(|p| p.ends_with("/libc.so.6")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("ld-linux")), "{paths:?}");
    }
}
