//! Clients for the AWS services the resource kinds use, and their errors.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use thiserror::Error;

use crate::progress::Reporter;

#[derive(Debug, Error)]
pub enum CloudError {
    /// The provider refused or failed a call.
    #[error("{id}: {op} failed: {code}: {message}")]
    Api {
        id: String,
        op: String,
        code: String,
        message: String,
    },
    /// A resource's own properties are unusable.
    #[error("{id}: {message}")]
    Invalid { id: String, message: String },
    #[error("{id}: gave up after {waited:?} waiting for {what}")]
    Timeout {
        id: String,
        what: String,
        waited: Duration,
    },
}

impl CloudError {
    pub fn invalid(id: &str, message: impl Into<String>) -> Self {
        CloudError::Invalid {
            id: id.into(),
            message: message.into(),
        }
    }

    /// The provider's error code, when the provider answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Converts an SDK error into a [`CloudError`] naming the resource and operation.
pub fn api_error<E, R>(id: &str, op: &str, e: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let code = e.code().unwrap_or("Unknown").to_string();
    let message = match e.message() {
        Some(m) => m.to_string(),
        None => DisplayErrorContext(&e).to_string(),
    };
    CloudError::Api {
        id: id.into(),
        op: op.into(),
        code,
        message,
    }
}

/// `result.ctx(id, op)?` turns an SDK error into a [`CloudError`].
pub trait SdkResultExt<T> {
    fn ctx(self, id: &str, op: &str) -> Result<T, CloudError>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    fn ctx(self, id: &str, op: &str) -> Result<T, CloudError> {
        self.map_err(|e| api_error(id, op, e))
    }
}

/// Everything a resource kind needs to talk to the cloud.
#[derive(Clone)]
pub struct Cloud {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub rds: aws_sdk_rds::Client,
    pub efs: aws_sdk_efs::Client,
    pub acm: aws_sdk_acm::Client,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub route53: aws_sdk_route53::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub reporter: Arc<dyn Reporter>,
    /// Every API request made through these clients, by operation.
    pub calls: Arc<CallCounter>,
    /// Scales every readiness wait's poll interval (tests against an emulator poll fast).
    pub poll: Duration,
}

impl Cloud {
    /// Loads the standard credential chain, region and `AWS_ENDPOINT_URL`.
    pub async fn connect(
        region: Option<String>,
        profile: Option<String>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
            RetryConfig::standard()
                .with_max_attempts(8)
                .with_initial_backoff(Duration::from_millis(200)),
        );
        if let Some(r) = region {
            loader = loader.region(Region::new(r));
        }
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        let conf = loader.load().await;
        let conf = if conf.region().is_none() {
            conf.into_builder().region(Region::new("us-east-1")).build()
        } else {
            conf
        };
        let poll = std::env::var("BOOKSTORE_INFRA_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(5));
        Self::from_conf(&conf, reporter, poll)
    }

    /// Clients for an already loaded configuration (tests build their own).
    pub fn from_conf(
        conf: &aws_types::SdkConfig,
        reporter: Arc<dyn Reporter>,
        poll: Duration,
    ) -> Self {
        let region = conf
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let calls = Arc::new(CallCounter::default());
        let counted = Counted(calls.clone());
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(conf)
                        .interceptor(counted.clone())
                        .build(),
                )
            };
        }
        let s3_conf = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .interceptor(counted.clone())
            .build();
        Cloud {
            region,
            ec2: client!(aws_sdk_ec2),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            autoscaling: client!(aws_sdk_autoscaling),
            rds: client!(aws_sdk_rds),
            efs: client!(aws_sdk_efs),
            acm: client!(aws_sdk_acm),
            iam: client!(aws_sdk_iam),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            route53: client!(aws_sdk_route53),
            ssm: client!(aws_sdk_ssm),
            sts: client!(aws_sdk_sts),
            reporter,
            calls,
            poll,
        }
    }

    /// Reports a resource's state while it is being worked on.
    pub fn status(&self, id: &str, msg: &str) {
        self.reporter.status(id, msg);
    }

    /// Polls `check` until it returns `Some`, reporting the state it reports, up to `limit`.
    pub async fn wait_until<T, F, Fut>(
        &self,
        id: &str,
        what: &str,
        limit: Duration,
        mut check: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(Option<T>, String), CloudError>>,
    {
        let start = Instant::now();
        loop {
            let (done, state) = check().await?;
            if let Some(v) = done {
                return Ok(v);
            }
            if start.elapsed() > limit {
                return Err(CloudError::Timeout {
                    id: id.into(),
                    what: what.into(),
                    waited: start.elapsed(),
                });
            }
            self.status(id, &format!("{what}: {state}"));
            tokio::time::sleep(self.poll).await;
        }
    }
}

/// Counts API requests (attempts, so retries count too), by operation.
#[derive(Debug, Default)]
pub struct CallCounter {
    by_op: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

impl CallCounter {
    pub fn total(&self) -> usize {
        self.by_op.lock().unwrap().values().sum()
    }

    pub fn by_operation(&self) -> std::collections::BTreeMap<String, usize> {
        self.by_op.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone)]
struct Counted(Arc<CallCounter>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for Counted {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_attempt(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{}:{}", m.service().replace(' ', ""), m.name()))
            .unwrap_or_else(|| "unknown".into());
        *self.0.by_op.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}
