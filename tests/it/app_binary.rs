//! The app binary `up` ships must run on Amazon Linux 2023 (glibc 2.34):
//! build it the way `scripts/build-app` does and read the glibc symbol
//! versions it requires.

use std::process::Command;

#[test]
fn the_shipped_binary_needs_no_glibc_newer_than_2_34() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/build-app"))
        .output()
        .expect("run scripts/build-app");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let header = Command::new("readelf")
        .args(["-h", &path])
        .output()
        .expect("readelf (binutils) is needed");
    let header = String::from_utf8_lossy(&header.stdout);
    assert!(
        header.contains("ELF64") && header.contains("X86-64"),
        "{header}"
    );

    let syms = Command::new("objdump")
        .args(["-T", &path])
        .output()
        .expect("objdump (binutils) is needed");
    assert!(syms.status.success());
    let text = String::from_utf8_lossy(&syms.stdout);
    let mut versions: Vec<(u32, u32)> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut p = v.split('.');
            Some((
                p.next()?.parse().ok()?,
                p.next().unwrap_or("0").parse().ok()?,
            ))
        })
        .collect();
    versions.sort();
    let newest = *versions
        .last()
        .expect("a dynamically linked binary names glibc versions");
    assert!(
        newest <= (2, 34),
        "needs GLIBC_{}.{}, Amazon Linux 2023 has 2.34",
        newest.0,
        newest.1
    );
}
