//! The whole customer path in headless Chromium (driven by playwright-core
//! from `tests/browser/`): register, log in, sell a book with a cover, buy,
//! pay, choose delivery, see it in "My purchases". A screenshot of each page
//! is kept under `target/browser-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, TestDb, PNG};

#[tokio::test]
async fn a_customer_walks_through_the_shop_in_chromium() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        here.join("node_modules/playwright-core").exists(),
        "run `npm ci` (or `npm install`) in {} first (.ci/run does)",
        here.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        PathBuf::from(&chromium).exists(),
        "Chromium is needed at {chromium} (Debian package `chromium`; .ci/run installs it)"
    );

    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let cover = db.dir.path().join("cover.png");
    std::fs::write(&cover, PNG).unwrap();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let shots = target.join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let base = srv.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&here)
            .arg("walk.mjs")
            .arg(&base)
            .arg(&shots)
            .arg(&cover)
            .env("CHROMIUM", &chromium)
            .output()
            .expect("node is needed")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&srv.log).unwrap_or_default()
    );
    let shots = target.join("browser-screenshots");
    let mut names: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "01-register.png",
            "02-login.png",
            "03-add-book.png",
            "04-my-books.png",
            "05-catalog.png",
            "06-payment.png",
            "07-delivery.png",
            "08-my-purchases.png"
        ]
    );
    for n in &names {
        let bytes = std::fs::read(shots.join(n)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{n} is a real screenshot"
        );
    }
}
