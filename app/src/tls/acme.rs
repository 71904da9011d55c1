//! Obtaining and renewing the certificate from the ACME CA (RFC 8555),
//! with the `instant-acme` client. The CA's HTTP-01 challenges are
//! answered on the plain HTTP listener (see [`super::plain`]) from
//! [`Challenges`].
//!
//! One task runs [`Acme::run`] for the life of the server: it sleeps
//! until the certificate served is due for renewal (checking at least
//! hourly), orders a new one, installs it for new connections at once
//! and keeps it in the TLS directory. A failure is logged and tried again
//! after a growing pause; meanwhile the certificate served, if any, stays.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::Request;
use bytes::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};

use super::cert::Cert;
use super::store::Store;
use super::{Served, TlsError};

/// The longest sleep between two looks at the certificate's renewal time
/// (the wall clock may jump while the process sleeps).
const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// The pause after the first failure, doubled after each further one...
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// ...up to this.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// How long one request to the CA may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the CA may take to validate the challenges, and to issue.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// The HTTP-01 challenges under way: token → key authorization, the body
/// `/.well-known/acme-challenge/<token>` answers with.
#[derive(Debug, Default)]
pub struct Challenges(RwLock<HashMap<String, String>>);

impl Challenges {
    pub fn get(&self, token: &str) -> Option<String> {
        self.0.read().unwrap().get(token).cloned()
    }

    pub(super) fn insert(&self, token: String, key_authorization: String) {
        self.0.write().unwrap().insert(token, key_authorization);
    }

    pub(super) fn remove(&self, token: &str) {
        self.0.write().unwrap().remove(token);
    }
}

/// What the ACME client needs to know, from the command line.
pub struct Settings {
    pub domains: Vec<String>,
    pub directory: String,
    pub contact: Option<String>,
    /// Roots trusted for the directory's HTTPS: the public ones and any
    /// from `--acme-ca-file`.
    pub roots: rustls::RootCertStore,
}

/// Keeps a valid certificate for the domains in [`Served`].
pub struct Acme {
    settings: Settings,
    http: AcmeHttp,
    store: Store,
    served: Arc<Served>,
    challenges: Arc<Challenges>,
    account: Option<Account>,
}

impl Acme {
    pub fn new(
        settings: Settings,
        store: Store,
        served: Arc<Served>,
        challenges: Arc<Challenges>,
    ) -> Result<Self, TlsError> {
        let http = AcmeHttp::new(settings.roots.clone())?;
        Ok(Acme {
            settings,
            http,
            store,
            served,
            challenges,
            account: None,
        })
    }

    /// Renews whenever due, forever (the server aborts the task when it
    /// stops).
    pub async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            if let Some(current) = self.served.summary() {
                let now = SystemTime::now();
                let renew_at = current.renew_at();
                if now < renew_at {
                    let wait = renew_at.duration_since(now).unwrap_or_default();
                    tokio::time::sleep(wait.min(CHECK_EVERY)).await;
                    continue;
                }
                tracing::info!(
                    serial = current.serial,
                    not_after = current.not_after,
                    "renewing the certificate"
                );
            }
            match self.obtain().await {
                Ok(cert) => {
                    failures = 0;
                    self.served.install(&self.store, cert, "obtained");
                }
                Err(e) => {
                    let wait = FIRST_RETRY
                        .saturating_mul(1 << failures.min(20))
                        .min(MAX_RETRY);
                    failures += 1;
                    // The account is looked up again on the next try.
                    self.account = None;
                    tracing::warn!(
                        error = %with_causes(&e),
                        failures,
                        retry_in_secs = wait.as_secs(),
                        "obtaining a certificate failed, trying again later"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The ACME account: the kept one for this CA, else a new one (kept).
    async fn account(&mut self) -> Result<Account, TlsError> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let builder = Account::builder_with_http(Box::new(self.http.clone()));
        let account = match self.store.account(&self.settings.directory)? {
            Some(credentials) => builder.from_credentials(credentials).await?,
            None => {
                let contact = self.settings.contact.as_ref().map(|c| {
                    if c.starts_with("mailto:") {
                        c.clone()
                    } else {
                        format!("mailto:{c}")
                    }
                });
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = builder
                    .create(&new, self.settings.directory.clone(), None)
                    .await?;
                self.store.save_account(&credentials)?;
                tracing::info!(account = account.id(), "ACME account created");
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for the domains, answers its challenges, and
    /// keeps what the CA issues.
    async fn obtain(&mut self) -> Result<Cert, TlsError> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        tracing::info!(order = order.url(), domains = ?self.settings.domains, "certificate ordered");
        let mut tokens = Vec::new();
        let issued = self.fulfil(&mut order, &mut tokens).await;
        for t in &tokens {
            self.challenges.remove(t);
        }
        let (chain, key) = issued?;
        let cert = Cert::from_pem(chain.as_bytes(), key.as_bytes())?;
        if !cert.summary.is_for(&self.settings.domains) {
            return Err(TlsError::Certificate(format!(
                "the CA issued a certificate for {:?}",
                cert.summary.domains
            )));
        }
        self.store.save_cert(&chain, &key)?;
        Ok(cert)
    }

    /// Answers the order's pending challenges (their tokens are pushed to
    /// `tokens`, for the caller to forget), waits for it to be ready and
    /// finalizes it: the chain and the new private key, PEM.
    async fn fulfil(
        &self,
        order: &mut Order,
        tokens: &mut Vec<String>,
    ) -> Result<(String, String), TlsError> {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => {
                    return Err(TlsError::Order(format!(
                        "the authorization for {} is {status:?}",
                        authz.identifier()
                    )))
                }
            }
            let name = authz.identifier().to_string();
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
                TlsError::Order(format!("the CA offers no HTTP-01 challenge for {name}"))
            })?;
            self.challenges.insert(
                challenge.token.clone(),
                challenge.key_authorization().as_str().to_string(),
            );
            tokens.push(challenge.token.clone());
            challenge.set_ready().await?;
        }
        let retry = RetryPolicy::new().timeout(ORDER_TIMEOUT);
        match order.poll_ready(&retry).await? {
            OrderStatus::Ready => {}
            status => return Err(TlsError::Order(why_not(order, status).await)),
        }
        let key = order.finalize().await?;
        let chain = order.poll_certificate(&retry).await?;
        Ok((chain, key))
    }
}

/// An error and what caused it, on one line ("client error (Connect):
/// tcp connect error: Connection refused").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !line.contains(&c_text) {
            line.push_str(": ");
            line.push_str(&c_text);
        }
        cause = c.source();
    }
    line
}

/// Why an order did not become ready: its status and what the CA said of
/// each challenge that failed (an unreachable port 80, a wrong address).
async fn why_not(order: &mut Order, status: OrderStatus) -> String {
    let mut why = format!("the order is {status:?}");
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if let Ok(state) = authz.refresh().await {
            for c in &state.challenges {
                if let Some(e) = &c.error {
                    why.push_str(&format!("; {}: {e}", state.identifier()));
                }
            }
        }
    }
    why
}

/// The HTTPS client the ACME client speaks through: HTTP/1.1, rustls with
/// ring, the roots given, a time limit on each request.
#[derive(Clone)]
struct AcmeHttp(Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>);

impl AcmeHttp {
    fn new(roots: rustls::RootCertStore) -> Result<Self, TlsError> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Ok(AcmeHttp(
            Client::builder(TokioExecutor::new()).build(connector),
        ))
    }
}

impl instant_acme::HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let sent = self.0.request(req);
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                Ok(Ok(res)) => Ok(BytesResponse::from(res)),
                Ok(Err(e)) => Err(instant_acme::Error::Other(Box::new(e))),
                Err(_) => Err(instant_acme::Error::Str(
                    "the ACME CA did not answer in time",
                )),
            }
        })
    }
}
