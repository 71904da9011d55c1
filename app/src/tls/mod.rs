//! HTTPS served by the app itself, with a certificate from an ACME CA
//! (Let's Encrypt by default), for a deployment with no load balancer in
//! front: set `--tls-domains` and the app
//!
//! - serves the site over HTTPS on `--tls-listen`, with the certificate
//!   for those names; requests there count as HTTPS
//!   (Secure cookies, HSTS) whatever `X-Forwarded-*` headers the client
//!   sends, and the peer is the client;
//! - answers plain HTTP on `--listen` with a redirect to HTTPS, except the
//!   CA's HTTP-01 challenges ([`plain`]);
//! - obtains the certificate, and renews it before it expires without a
//!   restart ([`acme`]); keeps it with the account in `--tls-dir`
//!   ([`store`], which lists the files), and on start serves a kept
//!   certificate that is still valid for the same names from the same CA
//!   instead of asking again.
//!
//! Until a certificate is obtained HTTPS handshakes fail; plain HTTP
//! answers all along.

pub mod acme;
pub mod cert;
pub mod plain;
pub mod store;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::map_request;
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::Serve;
use acme::{Acme, Challenges, Settings};
use cert::{Cert, Summary};
use store::Store;

/// How long a client may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS directory: {0}")]
    Store(String),
    #[error("the certificate: {0}")]
    Certificate(String),
    #[error("--acme-ca-file {}: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("the ACME order: {0}")]
    Order(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate served to new connections, replaced when renewed.
#[derive(Debug, Default)]
pub struct Served(RwLock<Option<Cert>>);

impl Served {
    /// Facts about the certificate served, if any.
    pub fn summary(&self) -> Option<Summary> {
        self.0.read().unwrap().as_ref().map(|c| c.summary.clone())
    }

    /// Serves `cert` from now on and rewrites `certificate.json`.
    fn install(&self, store: &Store, cert: Cert, how: &str) {
        let s = &cert.summary;
        tracing::info!(
            how,
            serial = s.serial,
            issuer = s.issuer,
            not_after = s.not_after,
            domains = ?s.domains,
            "serving a certificate"
        );
        if let Err(e) = store.save_summary(s) {
            tracing::warn!(error = %e, "writing certificate.json");
        }
        *self.0.write().unwrap() = Some(cert);
    }
}

impl ResolvesServerCert for Served {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().unwrap().as_ref().map(|c| c.key.clone())
    }
}

/// The app's HTTPS: the pieces the server is built from
/// ([`crate::startup`] serves them on its listeners with
/// [`crate::drain::Server`]).
pub struct Tls {
    domains: Vec<String>,
    config: Arc<rustls::ServerConfig>,
    challenges: Arc<Challenges>,
    acme: Acme,
}

/// A TLS handshake on an accepted connection, as the server runs it.
pub type Handshake = Pin<Box<dyn Future<Output = io::Result<TlsStream<TcpStream>>> + Send>>;

impl Tls {
    /// From the `serve` settings: `None` unless `--tls-domains` is set.
    /// Reads the TLS directory, and serves the kept certificate if it is
    /// still valid for these domains and was issued through this CA's
    /// account.
    pub fn from_opts(opts: &Serve) -> Result<Option<Self>, TlsError> {
        let domains = opts.tls_domains();
        if domains.is_empty() {
            return Ok(None);
        }
        let store = Store::open(&opts.tls_dir())?;
        let served = Arc::new(Served::default());
        let same_ca = store.account(&opts.acme_directory)?.is_some();
        match store.cert() {
            Ok(Some(cert)) => {
                let s = &cert.summary;
                if !same_ca {
                    tracing::info!("the kept certificate is not from this ACME CA's account");
                } else if !s.is_for(&domains) {
                    tracing::info!(kept = ?s.domains, "the kept certificate is for other names");
                } else if !s.is_valid_at(SystemTime::now()) {
                    tracing::info!(
                        not_after = s.not_after,
                        "the kept certificate is not valid now"
                    );
                } else {
                    served.install(&store, cert, "kept");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the kept certificate cannot be used"),
        }
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(served.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let settings = Settings {
            domains: domains.clone(),
            directory: opts.acme_directory.clone(),
            contact: opts.acme_contact.clone(),
            roots: roots(opts.acme_ca_file.as_ref())?,
        };
        let challenges = Arc::new(Challenges::default());
        let acme = Acme::new(settings, store, served, challenges.clone())?;
        Ok(Some(Tls {
            domains,
            config: Arc::new(config),
            challenges,
            acme,
        }))
    }

    /// What the plain HTTP listeners serve: the CA's challenges, and a
    /// redirect to HTTPS for everything else.
    pub fn plain(&self) -> Router {
        plain::router(&self.domains, self.challenges.clone())
    }

    /// The site as served over HTTPS (see [`direct`]).
    pub fn site(&self, app: Router) -> Router {
        app.layer(map_request(direct))
    }

    /// The TLS handshake for each connection accepted on an HTTPS
    /// listener, with the certificate served at that moment. A client
    /// gets [`HANDSHAKE_TIMEOUT`] for it; without a certificate yet, it
    /// fails.
    pub fn handshake(&self) -> impl Fn(TcpStream) -> Handshake + Send + Sync + 'static {
        let acceptor = TlsAcceptor::from(self.config.clone());
        move |tcp| {
            let accept = acceptor.accept(tcp);
            Box::pin(async move {
                tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
                    .await
                    .unwrap_or_else(|_| {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        ))
                    })
            })
        }
    }

    /// Obtains the certificate if none is served, and renews it when due,
    /// for as long as it runs (spawned beside the server).
    pub async fn renewal(self) {
        self.acme.run().await
    }
}

/// Over the app's own HTTPS the client is connected directly: the request
/// came over HTTPS, whatever `X-Forwarded-Proto` says, and the peer is
/// the client, whatever `X-Forwarded-For` says (headers the app otherwise
/// takes from its load balancer: see [`crate::session`] and
/// [`crate::limit::client_key`]).
async fn direct(mut req: Request) -> Request {
    let h = req.headers_mut();
    h.remove("x-forwarded-for");
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    req
}

/// The roots trusted for the ACME directory's HTTPS: the public ones
/// (webpki-roots), and those in `ca_file`.
fn roots(ca_file: Option<&PathBuf>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let bad = |why: String| TlsError::CaFile {
            path: path.clone(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_direct_client_cannot_say_where_it_comes_from() {
        let app = Router::new()
            .route(
                "/",
                get(|h: axum::http::HeaderMap| async move {
                    format!(
                        "{:?} {:?}",
                        h.get("x-forwarded-proto"),
                        h.get("x-forwarded-for")
                    )
                }),
            )
            .layer(map_request(direct));
        let req = axum::http::Request::get("/")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-for", "192.0.2.1")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"Some("https") None"#);
    }
}
