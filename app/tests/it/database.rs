//! The database, least privilege: the web server connects as a MySQL user
//! of its own that `bookstore migrate` (run with a user allowed to change
//! the schema) makes and keeps with the rights to read and write rows, and
//! nothing else; the server never changes the schema; the Amazon RDS
//! authorities the app ships are the ones it verifies the server against.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{migrate_with, Server, TestDb, BIN, MARIADB};
use reqwest::StatusCode;
use sqlx::{Connection, Executor};

/// A MariaDB user dropped when this is dropped (also when the test panics).
struct DropUser(String);

impl Drop for DropUser {
    fn drop(&mut self) {
        let user = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut c = sqlx::MySqlConnection::connect(&format!("{MARIADB}/")).await?;
                    c.execute(format!("DROP USER IF EXISTS '{user}'@'%'").as_str())
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })
        })
        .join();
    }
}

/// The app's user for `db`: a name of its own on the shared server, its
/// password in a file as the boot script leaves it.
fn app_user(db: &TestDb) -> (String, String, std::path::PathBuf, DropUser) {
    let name = db.mysql_name.clone().unwrap();
    let user = format!("app_{}", &name[name.len() - 10..]);
    let password: String = {
        use rand::Rng;
        rand::thread_rng()
            .sample_iter(rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    };
    let file = db.dir.path().join("db-app-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    (user.clone(), password, file, DropUser(user))
}

fn grant_args<'a>(user: &'a str, file: &'a Path) -> [&'a str; 4] {
    [
        "--app-user",
        user,
        "--app-password-file",
        file.to_str().unwrap(),
    ]
}

/// The error a statement got, as the server said it.
async fn refused(conn: &mut sqlx::MySqlConnection, sql: &str) -> String {
    match conn.execute(sql).await {
        Ok(_) => panic!("the app's user could run {sql}"),
        Err(sqlx::Error::Database(e)) => e.message().to_string(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// The app's user may read and write rows of its database, and that is
/// all: creating, altering, dropping, indexing and granting are refused,
/// and no other database is visible. Migrations still run, with the
/// privileged user, twice and from two instances at once, and a right
/// given by hand is taken back by the next migrate.
#[tokio::test]
async fn the_serving_user_reads_and_writes_rows_and_nothing_else() {
    let db = TestDb::mariadb().await;
    let name = db.mysql_name.clone().unwrap();
    let (user, password, file, _drop) = app_user(&db);
    let args = grant_args(&user, &file);

    // Two instances booting at once, each running its migrate step.
    let steps: Vec<_> = (0..2)
        .map(|_| {
            Command::new(BIN)
                .arg("migrate")
                .args(args)
                .env("BOOKSTORE_DATABASE_URL", &db.url)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for s in steps {
        let out = s.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And again: nothing to do, nothing fails.
    let again = migrate_with(&db.url, &[], &args);
    assert!(String::from_utf8_lossy(&again.stdout)
        .contains(&format!("user {user} may read and write rows")));

    let app_url = format!("mysql://{user}:{password}@127.0.0.1:3306/{name}");
    let mut app = common::connect_mysql(&app_url).await;
    let grants: Vec<String> = sqlx::query_scalar("SHOW GRANTS FOR CURRENT_USER")
        .fetch_all(&mut app)
        .await
        .unwrap();
    let escaped = name.replace('_', "\\_");
    assert_eq!(
        grants
            .iter()
            .filter(|g| !g.starts_with("GRANT USAGE ON *.*"))
            .collect::<Vec<_>>(),
        [&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `{escaped}`.* TO `{user}`@`%`"
        )],
        "{grants:?}"
    );
    for sql in [
        "CREATE TABLE intruder (x INT)".to_string(),
        "DROP TABLE books".into(),
        "ALTER TABLE books ADD COLUMN intruder INT".into(),
        "CREATE INDEX intruder ON books (stock)".into(),
        "TRUNCATE TABLE sessions".into(),
        "CREATE DATABASE intruder".into(),
        format!("GRANT SELECT ON `{escaped}`.* TO CURRENT_USER"),
        "SELECT COUNT(*) FROM mysql.user".into(),
    ] {
        let said = refused(&mut app, &sql).await;
        assert!(said.contains("denied"), "{sql}: {said}");
    }
    let visible: Vec<String> = sqlx::query_scalar("SHOW DATABASES")
        .fetch_all(&mut app)
        .await
        .unwrap();
    assert_eq!(
        visible
            .iter()
            .filter(|d| *d != "information_schema")
            .collect::<Vec<_>>(),
        [&name]
    );

    // What serving needs works: a whole purchase, as this user.
    let as_app = TestDb {
        url: format!("mysql://{user}@127.0.0.1:3306/{name}"),
        mysql_name: Some(name.clone()),
        dir: tempfile::tempdir().unwrap(),
        drop_guard: None,
    };
    let command = format!("cat {}", file.display());
    let srv = Server::spawn(
        &as_app,
        &as_app.dir.path().join("data"),
        &[("BOOKSTORE_DATABASE_PASSWORD_COMMAND", &command)],
    )
    .await;
    let seller = srv.client();
    seller.signup("Sal", "sal@example.com").await;
    seller.add_book("Dune", "12.50", "3").await;
    let book = seller.book_id("Dune").await;
    let buyer = srv.client();
    buyer.signup("Bea", "bea@example.com").await;
    let t = buyer.token("/book/add_book").await;
    let r = buyer
        .post(
            &format!("/buy/{book}"),
            &[("csrf_token", &t), ("quantity", "2")],
        )
        .await;
    let pay = r.location().to_string();
    assert!(pay.starts_with("/payment/"), "{}", r.body);
    let r = buyer
        .post(&pay, &[("csrf_token", &t), ("payment_method", "card")])
        .await;
    assert!(r.location().starts_with("/delivery/"), "{}", r.body);
    let r = buyer
        .post(r.location(), &[("csrf_token", &t), ("provider_id", "1")])
        .await;
    assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    let mine = buyer.get("/api/purchases").await.json();
    assert_eq!(mine["purchases"][0]["status"], "shipping", "{mine}");
    assert_eq!(
        seller.get(&format!("/api/books/{book}")).await.json()["stock"],
        1
    );
    let log = srv.log_text();
    assert!(!log.contains("ERROR"), "{log}");
    drop(srv);

    // Rights given by hand, and a password changed by hand, are put back.
    let mut root = common::connect_mysql(&db.url).await;
    root.execute(format!("GRANT CREATE, DROP ON `{escaped}`.* TO '{user}'@'%'").as_str())
        .await
        .unwrap();
    root.execute(format!("GRANT SELECT ON mysql.* TO '{user}'@'%'").as_str())
        .await
        .unwrap();
    root.execute(format!("ALTER USER '{user}'@'%' IDENTIFIED BY 'changed-by-hand'").as_str())
        .await
        .unwrap();
    migrate_with(&db.url, &[], &args);
    let mut app = common::connect_mysql(&app_url).await;
    let said = refused(&mut app, "CREATE TABLE intruder (x INT)").await;
    assert!(said.contains("denied"), "{said}");
    let said = refused(&mut app, "SELECT COUNT(*) FROM mysql.user").await;
    assert!(said.contains("denied"), "{said}");
}

/// On MySQL the server never applies migrations, even as a user that
/// could: it waits for `bookstore migrate`, then serves.
#[tokio::test]
async fn the_server_waits_for_the_migrate_step_and_never_migrates() {
    let db = TestDb::mariadb().await;
    let port = common::free_port();
    let log = db.dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(db.dir.path().join("data"))
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("the schema is not ready yet")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut root = common::connect_mysql(&db.url).await;
    let tables: Vec<String> = sqlx::query_scalar("SHOW TABLES")
        .fetch_all(&mut root)
        .await
        .unwrap();
    assert!(tables.is_empty(), "the server made {tables:?}");
    common::migrate(&db.url, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// `bookstore migrate --app-user` on SQLite is a mistake, said so.
#[tokio::test]
async fn an_app_user_on_sqlite_is_refused() {
    let db = TestDb::sqlite();
    let file = db.dir.path().join("pw");
    std::fs::write(&file, "Abcdefgh12345678\n").unwrap();
    let out = Command::new(BIN)
        .arg("migrate")
        .args(grant_args("app", &file))
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SQLite has no users"));
}

/// The bundle the app prints (and the boot script installs as `ssl-ca`) is
/// the committed file, and every certificate in it parses and is a
/// self-signed Amazon RDS root: `<region> Root CA {RSA2048,RSA4096,ECC384} G1`.
#[test]
fn the_shipped_ca_bundle_parses_and_holds_the_rds_roots() {
    let out = Command::new(BIN).arg("rds-ca-bundle").output().unwrap();
    assert!(out.status.success());
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/rds-global-bundle.pem");
    let pem = String::from_utf8(out.stdout).unwrap();
    assert_eq!(pem, std::fs::read_to_string(file).unwrap());
    let certs: Vec<String> = pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .map(str::to_string)
        .collect();
    assert_eq!(certs.len(), 102);
    let dir = tempfile::tempdir().unwrap();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for (i, cert) in certs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.pem"));
        std::fs::write(&p, cert).unwrap();
        let x = Command::new("openssl")
            .args([
                "x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253", "-in",
            ])
            .arg(&p)
            .output()
            .expect("openssl is needed");
        assert!(
            x.status.success(),
            "certificate {i}: {}",
            String::from_utf8_lossy(&x.stderr)
        );
        let text = String::from_utf8(x.stdout).unwrap();
        let subject = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("subject=")
            .to_string();
        let issuer = text.lines().nth(1).unwrap().trim_start_matches("issuer=");
        assert_eq!(subject, issuer, "certificate {i} is a root");
        assert!(
            subject.contains("OU=Amazon RDS") && subject.contains("O=Amazon Web Services\\, Inc."),
            "{subject}"
        );
        let cn = subject
            .split(',')
            .find_map(|p| p.strip_prefix("CN="))
            .unwrap();
        assert!(cn.starts_with("Amazon RDS ") && cn.ends_with(" G1"), "{cn}");
        *kinds
            .entry(cn.rsplit(' ').nth(1).unwrap().to_string())
            .or_default() += 1;
        let v = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&p)
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{cn}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            ("ECC384".to_string(), 34),
            ("RSA2048".into(), 34),
            ("RSA4096".into(), 34)
        ]
    );
}

/// A container gets its passwords as environment variables (ECS secrets),
/// with no file and no shell: `migrate` makes the app's user from
/// `BOOKSTORE_APP_DB_PASSWORD`, and `serve` connects as that user with
/// `BOOKSTORE_DATABASE_PASSWORD` and a URL that holds no password.
#[tokio::test]
async fn passwords_from_the_environment_make_and_serve_as_the_apps_user() {
    let db = TestDb::mariadb().await;
    let name = db.mysql_name.clone().unwrap();
    let (user, password, _file, _drop) = app_user(&db);
    let without = Command::new(BIN)
        .args(["migrate", "--app-user", &user])
        .env("BOOKSTORE_DATABASE_URL", &db.url)
        .env_remove("BOOKSTORE_APP_DB_PASSWORD")
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "a user without a password was made"
    );
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("BOOKSTORE_APP_DB_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let made = migrate_with(
        &db.url,
        &[("BOOKSTORE_APP_DB_PASSWORD", &password)],
        &["--app-user", &user],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let as_app = TestDb {
        url: format!("mysql://{user}@127.0.0.1:3306/{name}"),
        mysql_name: None,
        dir: tempfile::tempdir().unwrap(),
        drop_guard: None,
    };
    let server = Server::spawn(
        &as_app,
        &as_app.dir.path().join("data"),
        &[("BOOKSTORE_DATABASE_PASSWORD", &password)],
    )
    .await;
    let page = server.client().get("/book/catalog").await;
    assert_eq!(page.status, reqwest::StatusCode::OK);
    assert!(
        !server.log_text().contains(&password),
        "the password was logged"
    );
}
