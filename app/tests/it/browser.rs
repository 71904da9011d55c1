//! The whole customer path in headless Chromium (driven by playwright-core
//! from `tests/browser/`): register, log in, sell a book with a cover, buy,
//! pay, choose delivery, see it in "My purchases". A screenshot of each page
//! is kept under `target/browser-screenshots/`, and checked: its size is the
//! page's, and it shows something (colours, text) rather than a blank page.
//! The cover is checked loaded (a natural size) with the uploaded bytes.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, TestDb, PNG};
use sha2::Digest;

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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no report from walk.mjs:\n{stdout}"));

    // The cover was loaded by the browser, and it is the uploaded image (1x1).
    let cover = &report["cover"];
    assert_eq!(cover["complete"], true, "{cover}");
    assert_eq!(
        (
            cover["naturalWidth"].as_i64(),
            cover["naturalHeight"].as_i64()
        ),
        (Some(1), Some(1)),
        "the cover decoded at the uploaded image's size: {cover}"
    );
    assert_eq!(cover["status"], 200, "{cover}");
    assert_eq!(cover["content_type"], "image/png", "{cover}");
    assert_eq!(cover["path"], cover["response_path"], "{cover}");
    assert_eq!(cover["uploaded"], hex::encode(PNG));
    assert_eq!(
        cover["bytes"],
        hex::encode(PNG),
        "the bytes the browser got"
    );

    for n in &names {
        let bytes = std::fs::read(shots.join(n)).unwrap();
        let s = &report["shots"][n];
        assert!(bytes.starts_with(b"\x89PNG"), "{n} is a PNG");
        assert_eq!(
            s["sha256"].as_str(),
            Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()),
            "{n}: the report describes this file"
        );
        // As large as the page (a full-page screenshot), in device pixels.
        let dom = &s["dom"];
        let scale = dom["scale"].as_f64().unwrap();
        let px = |k: &str| (dom[k].as_f64().unwrap() * scale).round() as i64;
        assert_eq!(
            (s["width"].as_i64(), s["height"].as_i64()),
            (Some(px("width")), Some(px("height"))),
            "{n}: {s}"
        );
        assert!(px("width") >= 600 && px("height") >= 300, "{n}: {s}");
        // Not blank: text on the page, and in the picture many colours (text
        // is anti-aliased) over a good share of non-background pixels.
        assert!(dom["text"].as_i64().unwrap() > 20, "{n}: {s}");
        assert!(s["colours"].as_i64().unwrap() >= MIN_COLOURS, "{n}: {s}");
        assert!(s["ink"].as_f64().unwrap() >= MIN_INK, "{n}: {s}");
    }
}

/// A rendered page has hundreds of colours (anti-aliased text, the navbar,
/// buttons); a blank or unstyled error page has a handful.
const MIN_COLOURS: i64 = 100;
/// The share of pixels not of the background colour.
const MIN_INK: f64 = 0.03;
