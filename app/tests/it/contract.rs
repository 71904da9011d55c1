//! The API against its published contract, checked by a tool nobody here
//! wrote: Schemathesis (pinned in `scripts/requirements-emulator.txt`,
//! installed in `.venv/` by `scripts/ensure-emulator`) reads
//! `/api/openapi.json` from the running server and sends every operation
//! generated requests, valid and not, with a token of every scope. No
//! answer may be a server error, break the document's schema, have a
//! status code or a content type the document does not list.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::api::Program;
use crate::common::{Server, TestDb};
use reqwest::StatusCode;
use serde_json::json;

/// The repository's root, from the app's manifest directory.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("app/ is in the repository")
        .to_path_buf()
}

#[tokio::test]
async fn the_api_keeps_its_published_contract() {
    let st = repo_root().join(".venv/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: run scripts/ensure-emulator (it installs the pinned Schemathesis)",
        st.display()
    );
    let db = TestDb::sqlite();
    let srv = Server::start(&db).await;
    let anon = Program::new(&srv);
    // An administrator with a token of every scope, and some books.
    anon.account_and_token("Ada", &["read"]).await;
    {
        let mut conn = db.connect().await;
        sqlx::query("UPDATE users SET is_admin = 1")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let token = anon
        .token_for("ada@example.com", &["read", "buy", "sell", "admin"])
        .await;
    // Out of the fuzzer's way: it revokes tokens by guessing small ids.
    {
        let mut conn = db.connect().await;
        sqlx::query(
            "UPDATE api_tokens SET id = 900000001 WHERE id = (SELECT MAX(id) FROM api_tokens)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let ada = anon.with_token(&token);
    for i in 0..5 {
        let r = ada
            .post(
                "/api/books",
                json!({"title": format!("Book {i}"), "author": "Writer", "price": "9.99", "stock": 1_000_000}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // A purchase waiting for payment, for the routes of one.
    let r = ada.post("/api/purchases", json!({"book_id": 1})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let doc = anon.get("/api/openapi.json").await;
    assert_eq!(doc.json["openapi"], "3.1.0");
    let started = Instant::now();
    let report = db.dir.path().join("schemathesis");
    let out = Command::new(&st)
        .args([
            "run",
            &format!("{}/api/openapi.json", srv.base),
            "--url",
            &srv.base,
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "24",
            // One worker: Hypothesis describes strategies with `ast`, which
            // CPython 3.11 does not parse safely from two threads at once
            // ("AST constructor recursion depth mismatch", a fault of the
            // fuzzer's interpreter, not of the API).
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--report-dir",
        ])
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its example database and caches go with the test's directory.
        .current_dir(db.dir.path())
        .output()
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "schemathesis ran for {:.1} s:\n{stdout}\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        srv.log_text()
    );
    // The run did test every operation, many times, and the server stayed
    // healthy.
    assert!(stdout.contains("Tested: 20"), "{stdout}");
    let generated: u64 = stdout
        .lines()
        .find_map(|l| l.trim().split_once(" generated, "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of test cases in:\n{stdout}"));
    assert!(generated >= 20 * 20, "only {generated} test cases");
    assert!(
        !srv.log_text().contains("internal error"),
        "{}",
        srv.log_text()
    );
    assert_eq!(anon.get("/healthz").await.status, StatusCode::OK);
}
