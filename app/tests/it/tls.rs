//! HTTPS served by the app itself with certificates from a real ACME CA:
//! Pebble, Let's Encrypt's test CA (`apt-get install pebble`), validating
//! HTTP-01 challenges against the app's plain HTTP listener, for names
//! that pebble-challtestsrv (its DNS server) resolves to 127.0.0.1.
//! Clients trust only Pebble's issuing root.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, TestDb, BIN};
use reqwest::header::{LOCATION, SET_COOKIE, STRICT_TRANSPORT_SECURITY};
use reqwest::StatusCode;
use x509_cert::der::Decode;

const DOMAINS: [&str; 2] = ["shop.bookstore.test", "www.bookstore.test"];

/// Pebble and its DNS server, killed when dropped.
struct Pebble {
    ca: Child,
    dns: Child,
    /// Its configuration, certificates and log, removed when dropped.
    _dir: tempfile::TempDir,
    directory: String,
    management: String,
    /// The test CA Pebble's own HTTPS certificate is signed by.
    ca_file: PathBuf,
    log: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in [&mut self.ca, &mut self.dns] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The path of a program of the pebble package; panics without it.
fn pebble_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: these tests need Debian's pebble package (apt-get install pebble; .ci/run installs it)")
        })
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 on `http_port`, issuing
    /// certificates valid for `validity_secs`.
    async fn start(http_port: u16, validity_secs: u64) -> Self {
        let (pebble, challtestsrv) = (
            pebble_program("pebble"),
            pebble_program("pebble-challtestsrv"),
        );
        let dir = tempfile::tempdir().unwrap();
        // Pebble's own HTTPS: a certificate for 127.0.0.1 from a test CA.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bookstore test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();

        let (acme, management, dns_port) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity_secs,
        }});
        let config_file = dir.path().join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let log = dir.path().join("pebble.log");
        let dns = Command::new(challtestsrv)
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ca = Command::new(pebble)
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Pebble {
            ca,
            dns,
            _dir: dir,
            directory: format!("https://127.0.0.1:{acme}/dir"),
            management: format!("https://127.0.0.1:{management}"),
            ca_file,
            log,
        };
        let http = p.management_client();
        let start = Instant::now();
        while http.get(&p.directory).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "pebble did not start:\n{}",
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        p
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many certificates Pebble has issued (it logs each).
    fn issued(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("Issued certificate serial"))
            .count()
    }

    /// A client trusting the test CA of Pebble's own HTTPS.
    fn management_client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca_file).unwrap();
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// The root Pebble issues under (from its management interface).
    async fn issuing_root(&self) -> reqwest::Certificate {
        let r = self
            .management_client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        reqwest::Certificate::from_pem(&r.bytes().await.unwrap()).unwrap()
    }
}

/// The app serving HTTPS with Pebble's certificates; stopped (SIGTERM)
/// when dropped.
struct TlsServer {
    child: Child,
    https: u16,
    log: PathBuf,
}

impl TlsServer {
    fn spawn(db: &TestDb, http: u16, tls_dir: &Path, pebble: &Pebble) -> Self {
        Self::spawn_with(db, http, tls_dir, &pebble.directory, &pebble.ca_file)
    }

    fn spawn_with(db: &TestDb, http: u16, tls_dir: &Path, directory: &str, ca: &Path) -> Self {
        let https = free_port();
        let log = db.dir.path().join(format!("server-{https}.log"));
        let child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{http}")])
            .args(["--tls-listen", &format!("127.0.0.1:{https}")])
            .args(["--tls-domains", &DOMAINS.join(",")])
            .args(["--acme-directory", directory])
            .args(["--acme-contact", "admin@bookstore.test"])
            .arg("--acme-ca-file")
            .arg(ca)
            .arg("--tls-dir")
            .arg(tls_dir)
            .arg("--data-dir")
            .arg(db.dir.path().join("data"))
            .env("BOOKSTORE_DATABASE_URL", &db.url)
            .env("BOOKSTORE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        TlsServer { child, https, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client on a new connection, trusting only `root`, that reaches
    /// the domains on this server's HTTPS port.
    fn client(&self, root: &reqwest::Certificate) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root.clone())
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none());
        for d in DOMAINS {
            b = b.resolve(d, ([127, 0, 0, 1], self.https).into());
        }
        b.build().unwrap()
    }

    /// GET `path` over HTTPS for `domain`; the response and the serial
    /// of the certificate the server presented.
    async fn get(
        &self,
        root: &reqwest::Certificate,
        domain: &str,
        path: &str,
    ) -> reqwest::Result<(reqwest::Response, String)> {
        let r = self
            .client(root)
            .get(format!("https://{domain}:{}{path}", self.https))
            .send()
            .await?;
        let der = r
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .expect("the server's certificate")
            .to_vec();
        Ok((r, serial(&der)))
    }

    /// Waits until HTTPS answers with a certificate the client trusts;
    /// its serial.
    async fn wait_for_https(&mut self, root: &reqwest::Certificate, pebble: &Pebble) -> String {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}):\n{}", self.log_text());
            }
            if let Ok((r, serial)) = self.get(root, DOMAINS[0], "/healthz").await {
                assert_eq!(r.status(), StatusCode::OK);
                return serial;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "no certificate served:\n{}\npebble:\n{}",
                self.log_text(),
                pebble.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TlsServer {
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

/// A certificate's serial number, lower-case hex without leading zeros.
fn serial(der: &[u8]) -> String {
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let hex: String = cert
        .tbs_certificate
        .serial_number
        .as_bytes()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect();
    hex
}

fn certificate_json(tls_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(tls_dir.join("certificate.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn https_with_a_certificate_obtained_once_and_kept() {
    let db = TestDb::sqlite();
    let http = free_port();
    // Pebble's default validity (five years): no renewal in this test.
    let pebble = Pebble::start(http, 5 * 365 * 24 * 3600).await;
    let root = pebble.issuing_root().await;
    let tls_dir = db.dir.path().join("tls");
    let mut srv = TlsServer::spawn(&db, http, &tls_dir, &pebble);
    let first = srv.wait_for_https(&root, &pebble).await;
    assert_eq!(pebble.issued(), 1, "{}", pebble.log_text());

    // Both names, over TLS, with a page of the site.
    for d in DOMAINS {
        let (r, serial) = srv.get(&root, d, "/book/catalog").await.unwrap();
        assert_eq!(serial, first);
        assert_eq!(r.status(), StatusCode::OK, "{d}");
        assert_eq!(r.version(), reqwest::Version::HTTP_11);
        let hsts = r.headers().get(STRICT_TRANSPORT_SECURITY);
        assert_eq!(hsts.unwrap(), "max-age=31536000", "{d}");
        assert!(r.text().await.unwrap().contains("<html"));
    }

    // Cookies are Secure over the app's own TLS, and the client cannot
    // say otherwise.
    let (r, _) = srv.get(&root, DOMAINS[0], "/login").await.unwrap();
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let r = srv
        .client(&root)
        .get(format!("https://{}:{}/login", DOMAINS[0], srv.https))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(r.headers().contains_key(STRICT_TRANSPORT_SECURITY));

    // Plain HTTP: a permanent redirect to the same path over HTTPS, on
    // the name asked for if it is one of the site's, else the first.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (host, to) in [(DOMAINS[1], DOMAINS[1]), ("elsewhere.test", DOMAINS[0])] {
        let r = plain
            .get(format!("http://127.0.0.1:{http}/book/catalog?page=2"))
            .header("host", format!("{host}:{http}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT, "{host}");
        assert_eq!(
            r.headers()[LOCATION],
            format!("https://{to}/book/catalog?page=2").as_str()
        );
    }

    // The TLS directory: the files, private ones for the owner only, and
    // the public summary.
    use std::os::unix::fs::PermissionsExt;
    for f in ["account.json", "key.pem", "cert.pem"] {
        let mode = std::fs::metadata(tls_dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}: {mode:o}");
    }
    let summary = certificate_json(&tls_dir);
    assert_eq!(summary["serial"], first.as_str(), "{summary}");
    assert_eq!(summary["domains"], serde_json::json!(DOMAINS), "{summary}");
    let issuer = summary["issuer"].as_str().unwrap();
    assert!(issuer.contains("CN=Pebble Intermediate CA"), "{summary}");
    let not_before = summary["not_before"].as_str().unwrap();
    let not_after = summary["not_after"].as_str().unwrap();
    for t in [not_before, not_after] {
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "RFC 3339: {t}"
        );
    }
    assert!(not_before < not_after, "{summary}");
    let keys: Vec<_> = summary.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["domains", "issuer", "not_after", "not_before", "serial"],
        "nothing else (no key) in the public summary"
    );

    // A restart with the same TLS directory serves the kept certificate
    // at once, without asking the CA again.
    drop(srv);
    std::fs::remove_file(tls_dir.join("certificate.json")).unwrap();
    let mut srv = TlsServer::spawn(&db, http, &tls_dir, &pebble);
    let again = srv.wait_for_https(&root, &pebble).await;
    assert_eq!(again, first);
    assert!(
        srv.log_text().contains(r#""how":"kept""#),
        "{}",
        srv.log_text()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.issued(), 1, "{}", pebble.log_text());
    assert_eq!(
        certificate_json(&tls_dir),
        summary,
        "rewritten when the kept certificate is loaded"
    );
}

#[tokio::test]
async fn a_certificate_near_its_end_is_renewed_without_a_restart() {
    let db = TestDb::sqlite();
    let http = free_port();
    // 45 s of validity: renewed once a third is left, 30 s after issue.
    let pebble = Pebble::start(http, 45).await;
    let root = pebble.issuing_root().await;
    let tls_dir = db.dir.path().join("tls");
    let mut srv = TlsServer::spawn(&db, http, &tls_dir, &pebble);
    let first = srv.wait_for_https(&root, &pebble).await;
    let obtained = Instant::now();
    assert_eq!(pebble.issued(), 1, "{}", pebble.log_text());

    let renewed = loop {
        let (r, serial) = srv.get(&root, DOMAINS[1], "/healthz").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        if serial != first {
            break serial;
        }
        assert!(
            obtained.elapsed() < Duration::from_secs(90),
            "not renewed:\n{}",
            srv.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let after = obtained.elapsed();
    assert!(
        after > Duration::from_secs(20),
        "renewed after {after:?}: not before a third of the 45 s is left"
    );
    assert_eq!(pebble.issued(), 2, "{}", pebble.log_text());
    assert_eq!(certificate_json(&tls_dir)["serial"], renewed.as_str());
    assert!(
        srv.log_text().contains("renewing the certificate"),
        "{}",
        srv.log_text()
    );
}

#[tokio::test]
async fn without_a_certificate_plain_http_still_answers_and_the_ca_is_tried_again() {
    let db = TestDb::sqlite();
    let http = free_port();
    // A CA that is not there.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(&ca, cert.pem()).unwrap();
    let directory = format!("https://127.0.0.1:{}/dir", free_port());
    let tls_dir = db.dir.path().join("tls");
    let srv = TlsServer::spawn_with(&db, http, &tls_dir, &directory, &ca);

    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = Instant::now();
    loop {
        let failures = srv
            .log_text()
            .matches("obtaining a certificate failed")
            .count();
        if failures >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not tried again:\n{}",
            srv.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = srv.log_text();
    assert!(log.contains("\"retry_in_secs\":5"), "{log}");
    assert!(log.contains("\"retry_in_secs\":10"), "{log}");
    let r = plain
        .get(format!("http://127.0.0.1:{http}/login"))
        .header("host", DOMAINS[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()[LOCATION],
        format!("https://{}/login", DOMAINS[0]).as_str()
    );
    assert!(!tls_dir.join("certificate.json").exists());
}
