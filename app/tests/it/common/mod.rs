//! Starts the real `bookstore` binary on a free port against a fresh
//! database, and speaks HTTP to it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

/// For each feature `f(&TestDb)`: a module `f` with the tests `on_sqlite`
/// and `on_mariadb`, each on a fresh database (`cargo test --test app f::`).
/// The MariaDB database is dropped even when the test panics.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($($feature:ident),* $(,)?) => {$(
        mod $feature {
            #[tokio::test]
            async fn on_sqlite() {
                super::$feature(&super::TestDb::sqlite()).await;
            }

            #[tokio::test]
            async fn on_mariadb() {
                super::$feature(&super::TestDb::mariadb().await).await;
            }
        }
    )*};
}

pub const BIN: &str = env!("CARGO_BIN_EXE_bookstore");
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306";

// How a test server's port is chosen, shared with the tool's harness.
#[path = "../../../../tests/support/port.rs"]
mod port;
pub use port::free_port;

/// A fresh database: an SQLite file, or a MariaDB database dropped when
/// this is dropped (also when the test panics).
pub struct TestDb {
    pub url: String,
    pub mysql_name: Option<String>,
    pub dir: tempfile::TempDir,
    pub drop_guard: Option<DropDatabase>,
}

/// Drops a MariaDB database when dropped, whether the test passed or
/// panicked. Runs on a thread of its own: `Drop` cannot await, and the
/// test's runtime may be the one unwinding.
pub struct DropDatabase {
    pub server: String,
    pub name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::MySqlConnection::connect(&format!("{server}/")).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {}: the thread panicked", self.name),
        }
    }
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("bookstore.db").display());
        TestDb {
            url,
            mysql_name: None,
            dir,
            drop_guard: None,
        }
    }

    /// Needs the MariaDB server on 127.0.0.1:3306 (root, no password): fails loudly without it.
    pub async fn mariadb() -> Self {
        Self::mariadb_at(MARIADB).await
    }

    pub async fn mariadb_at(server: &str) -> Self {
        let name = format!("bookstore_test_{}_{}", std::process::id(), rand_suffix());
        let mut conn = connect_mysql(&format!("{server}/")).await;
        use sqlx::Executor;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        TestDb {
            url: format!("{server}/{name}"),
            drop_guard: Some(DropDatabase {
                server: server.to_string(),
                name: name.clone(),
            }),
            mysql_name: Some(name),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn is_mariadb(&self) -> bool {
        self.mysql_name.is_some()
    }

    /// A connection to this database, for checks the app does not expose.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let url = if self.is_mariadb() || self.url.contains('?') {
            self.url.clone()
        } else {
            format!("{}?mode=rwc", self.url)
        };
        sqlx::AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }
}

pub async fn connect_mysql(url: &str) -> sqlx::MySqlConnection {
    use sqlx::Connection;
    sqlx::MySqlConnection::connect(url)
        .await
        .unwrap_or_else(|e| {
            panic!("MariaDB must answer at {url} for these tests (.ci/run starts it): {e}")
        })
}

fn rand_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:x}")
}

/// Runs `bookstore migrate ARGS` on `url` with `env`, and panics unless it succeeds.
pub fn migrate_with(url: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .arg("migrate")
        .args(args)
        .env("BOOKSTORE_DATABASE_URL", url)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bookstore migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Applies the migrations to `url` (with `env`), as the boot script does.
pub fn migrate(url: &str, env: &[(&str, &str)]) {
    migrate_with(url, env, &[]);
}

/// A running server, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &db.dir.path().join("data"), &[]).await
    }

    /// On MySQL the server never changes the schema: `bookstore migrate`
    /// runs first, as the boot script runs it on an instance.
    pub async fn start_with(db: &TestDb, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        if !db.url.starts_with("sqlite:") {
            migrate(&db.url, env);
        }
        Self::spawn(db, data_dir, env).await
    }

    /// Starts the server without migrating first.
    pub async fn spawn(db: &TestDb, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = db.dir.path().join(format!("server-{port}.log"));
        let child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("BOOKSTORE_DATABASE_URL", &db.url)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            log,
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "server exited ({status}) before it was healthy:\n{}",
                    s.log_text()
                );
            }
            if let Ok(r) = reqwest::get(format!("{}/healthz", s.base)).await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server did not become healthy:\n{}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf_token" value=""#;
        let i = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF token in page:\n{}", self.body));
        self.body[i + marker.len()..]
            .split('"')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn is_html(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Self::with_jar(base, jar)
    }

    /// A client for another server sharing this client's cookies.
    pub fn with_jar(base: &str, jar: std::sync::Arc<reqwest::cookie::Jar>) -> Self {
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .unwrap();
        Client {
            http,
            base: base.to_string(),
            jar,
        }
    }

    async fn page(r: reqwest::Response) -> Page {
        Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The CSRF token of the form at `path`.
    pub async fn token(&self, path: &str) -> String {
        self.get(path).await.csrf()
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> Page {
        let t = self.token("/register").await;
        self.post(
            "/register",
            &[
                ("csrf_token", &t),
                ("name", name),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        let t = self.token("/login").await;
        self.post(
            "/login",
            &[("csrf_token", &t), ("email", email), ("password", password)],
        )
        .await
    }

    pub async fn signup(&self, name: &str, email: &str) {
        let r = self.register(name, email, "a good password").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = self.login(email, "a good password").await;
        assert_eq!(r.location(), "/book/catalog", "{}", r.body);
    }

    pub async fn add_book(&self, title: &str, price: &str, stock: &str) -> Page {
        let t = self.token("/book/add_book").await;
        self.post(
            "/book/add_book",
            &[
                ("csrf_token", &t),
                ("title", title),
                ("author", "Some Author"),
                ("description", "A book."),
                ("price", price),
                ("stock", stock),
            ],
        )
        .await
    }

    /// The id of the newest book with this title, from the JSON API.
    pub async fn book_id(&self, title: &str) -> i64 {
        let p = self
            .get(&format!("/api/books?q={}", urlencode(title)))
            .await
            .json();
        p["books"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["title"] == title)
            .unwrap_or_else(|| panic!("{title} not in {p}"))["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().unwrap();
        let h = self.jar.cookies(&url)?;
        h.to_str()
            .ok()?
            .split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix("bookstore_session="))
            .map(str::to_string)
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A tiny valid PNG (1x1).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];
