//! The app against a MariaDB server of the test's own (so it can be
//! stopped, restarted and have its password rotated): it recovers without
//! a restart.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Server, TestDb};
use reqwest::StatusCode;
use sqlx::{Connection, Executor};

/// A private mariadbd on a free loopback port, with its own data directory.
struct MariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    extra: Vec<String>,
}

impl MariaDb {
    fn install() -> Self {
        Self::install_with(Vec::new())
    }

    /// With more server options (given to every start).
    fn install_with(extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // A temporary directory of its own: two servers bootstrapping at
        // once in the shared /tmp can delete each other's temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .output()
            .expect("mariadb-install-db (package mariadb-server) is needed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m = MariaDb {
            child: None,
            dir,
            port: free_port(),
            extra,
        };
        m.start();
        m
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("mariadbd.log")).unwrap();
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--tmpdir={}",
                self.dir.path().join("tmp").display()
            ))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mariadbd.log")).unwrap_or_default()
    }

    fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_for(c: &common::Client, path: &str, want: StatusCode, secs: u64) -> common::Page {
    let start = Instant::now();
    loop {
        let r = c.get(path).await;
        if r.status == want {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{path} still {} after {secs}s: {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write_password(p: &Path, pw: &str) {
    std::fs::write(p, format!("{pw}\n")).unwrap();
}

#[tokio::test]
async fn the_app_survives_a_database_restart_and_a_password_rotation() {
    let mut server = MariaDb::install();
    let mut root = sqlx::MySqlConnection::connect(&format!("{}/", server.root_url()))
        .await
        .unwrap();
    root.execute("CREATE DATABASE shop").await.unwrap();
    root.execute("CREATE USER 'shop'@'%' IDENTIFIED BY 'first-password'")
        .await
        .unwrap();
    root.execute("GRANT ALL ON shop.* TO 'shop'@'%'")
        .await
        .unwrap();

    // The password comes from a command (on AWS: the secret RDS rotates).
    let db = TestDb {
        url: format!("mysql://shop@127.0.0.1:{}/shop", server.port),
        ..TestDb::sqlite()
    };
    let pw_file = db.dir.path().join("password");
    write_password(&pw_file, "first-password");
    let cmd = format!("cat {}", pw_file.display());
    let app = Server::start_with(
        &db,
        &db.dir.path().join("data"),
        &[("BOOKSTORE_DATABASE_PASSWORD_COMMAND", &cmd)],
    )
    .await;
    let c = app.client();
    c.signup("Ruth", "ruth@example.com").await;
    c.add_book("Survivor", "5", "2").await;

    // Rotation: a new password, and the old connections gone.
    root.execute("ALTER USER 'shop'@'%' IDENTIFIED BY 'second-password'")
        .await
        .unwrap();
    write_password(&pw_file, "second-password");
    let ids: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM information_schema.processlist WHERE user = 'shop'")
            .fetch_all(&mut root)
            .await
            .unwrap();
    for (id,) in ids {
        let _ = root.execute(format!("KILL {id}").as_str()).await;
    }
    // Pages find out by themselves, without a health check to prompt them.
    assert_eq!(
        wait_for(&c, "/api/books", StatusCode::OK, 20).await.json()["total"],
        1
    );
    let log = std::fs::read_to_string(&app.log).unwrap();
    assert!(
        log.contains("refused the password; fetching it again"),
        "the new password was fetched:\n{log}"
    );
    drop(root);

    // The database goes away: health says so, pages say so politely.
    server.stop();
    let r = wait_for(&c, "/healthz", StatusCode::SERVICE_UNAVAILABLE, 20).await;
    assert!(r.json()["reason"].as_str().unwrap().contains("database"));
    let page = c.get("/book/catalog").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.is_html() && page.body.contains("cannot reach its database"));

    // And comes back: the same process serves again.
    server.start();
    wait_for(&c, "/healthz", StatusCode::OK, 60).await;
    assert_eq!(
        wait_for(&c, "/api/books", StatusCode::OK, 20).await.json()["total"],
        1
    );
    assert!(
        c.get("/book/my_books").await.body.contains("Survivor"),
        "the session survived too"
    );
    drop(app);
}

/// A self-signed certificate and its key, for a server that speaks TLS.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// With `ssl-mode=required` the app connects over TLS to a server that
/// refuses plain connections (as the stack's parameter group makes RDS do,
/// `require_secure_transport`), and the same server really refuses a client
/// that does not use TLS. (On AWS the instances also verify the server's
/// certificate: the next test.)
#[tokio::test]
async fn the_app_talks_to_the_database_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let server = MariaDb::install_with(vec![
        format!("--ssl-cert={}", cert.display()),
        format!("--ssl-key={}", key.display()),
        "--require-secure-transport=ON".into(),
    ]);
    let root_opts = format!("{}/?ssl-mode=required", server.root_url());
    let mut root = sqlx::MySqlConnection::connect(&root_opts)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", server.log()));
    root.execute("CREATE DATABASE shop").await.unwrap();

    let tls = TestDb {
        url: format!("{}/shop?ssl-mode=required", server.root_url()),
        ..TestDb::sqlite()
    };
    let app = Server::start(&tls).await;
    let c = app.client();
    c.signup("Tess", "tess@example.com").await;
    c.add_book("Sealed", "5", "1").await;
    assert_eq!(c.get("/api/books").await.json()["total"], 1);
    drop(app);

    let plain = TestDb {
        url: format!("{}/shop?ssl-mode=disabled", server.root_url()),
        ..TestDb::sqlite()
    };
    let out = Command::new(common::BIN)
        .args(["migrate"])
        .env("BOOKSTORE_DATABASE_URL", &plain.url)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a plain connection was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    // MariaDB answers a plain connection under require_secure_transport
    // with "access denied", for the same user and password that worked
    // over TLS above.
    assert!(
        err.contains("secure transport") || err.contains("Access denied"),
        "{err}"
    );
}

/// Runs `openssl ARGS`, and panics unless it succeeds.
fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority of the test's own, and a server certificate it
/// signed for the name `localhost` (and no other name or address).
fn ca_and_server_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=bookstore test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
        dir,
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// The instances connect with `ssl-mode=VERIFY_IDENTITY` and the RDS
/// authorities as `ssl-ca` (the boot script's URLs): the server's
/// certificate must be signed by one of the given authorities and name the
/// host connected to. Against a server whose certificate a test authority
/// signed for `localhost`: with that authority, by that name, the app
/// connects; with the shipped RDS authorities it refuses the certificate,
/// and by another name (127.0.0.1) too. Nothing is sent in the clear.
#[tokio::test]
async fn the_database_certificate_is_verified_against_the_authorities_and_the_name() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server_cert(certs.path());
    let server = MariaDb::install_with(vec![
        format!("--ssl-cert={}", cert.display()),
        format!("--ssl-key={}", key.display()),
        "--require-secure-transport=ON".into(),
    ]);
    let mut root =
        sqlx::MySqlConnection::connect(&format!("{}/?ssl-mode=required", server.root_url()))
            .await
            .unwrap_or_else(|e| panic!("{e}: {}", server.log()));
    root.execute("CREATE DATABASE shop").await.unwrap();
    let rds = certs.path().join("rds-ca.pem");
    let bundle = Command::new(common::BIN)
        .arg("rds-ca-bundle")
        .output()
        .unwrap();
    std::fs::write(&rds, bundle.stdout).unwrap();

    let migrate = |host: &str, ca: &Path| {
        let url = format!(
            "mysql://root@{host}:{}/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
            server.port,
            ca.display()
        );
        Command::new(common::BIN)
            .arg("migrate")
            .env("BOOKSTORE_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let ok = migrate("localhost", &ca);
    assert!(
        ok.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        server.log()
    );
    let stranger = migrate("localhost", &rds);
    let said = String::from_utf8_lossy(&stranger.stderr);
    assert!(
        !stranger.status.success(),
        "a certificate no RDS authority signed was accepted"
    );
    assert!(said.contains("UnknownIssuer"), "{said}");
    let other_name = migrate("127.0.0.1", &ca);
    let said = String::from_utf8_lossy(&other_name.stderr);
    assert!(
        !other_name.status.success(),
        "a certificate for another name was accepted"
    );
    assert!(said.contains("not valid for name"), "{said}");
}
