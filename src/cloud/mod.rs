//! Clients for the AWS services the resource kinds use, their retry
//! policy, and their errors ([`error`]) and wait limits ([`wait`]). The
//! ground floor: nothing here names another module of the project.

pub mod error;
pub mod run_command;
pub mod wait;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use std::fmt::Debug;

pub use error::*;
pub use wait::*;

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
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub dlm: aws_sdk_dlm::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub app_scaling: aws_sdk_applicationautoscaling::Client,
    pub sts: aws_sdk_sts::Client,
    pub reporter: Arc<dyn Reporter>,
    /// Every API request made through these clients, by operation.
    pub calls: Arc<CallCounter>,
    /// Scales every readiness wait's poll interval (tests against an emulator poll fast).
    pub poll: Duration,
    /// How long each kind of wait may last (the stack's `[timeouts]`, as
    /// each kind reads them).
    pub timeouts: WaitLimits,
    /// The account the credentials belong to, asked of STS once per run
    /// (facts, the lock's bucket and a saved plan's fingerprint all need it).
    account: Arc<tokio::sync::OnceCell<String>>,
}

/// The SDK's retry policy for every client, scaled by the readiness poll
/// interval `poll` (5 s in production, 50 ms in tests against an emulator).
///
/// AWS throttles per action per account ("Request throttling for the Amazon
/// EC2 API"; the other services likewise), so a burst of calls from eight
/// resources worked on at once, or from other tools in the account, can be
/// throttled for longer than the SDK's default three attempts. Standard
/// mode with 20 attempts and exponential backoff with full jitter, capped at
/// 20 s as in every AWS SDK, outlasts such a burst. The standard retry quota
/// (a token bucket of 500, 5 per retry, 10 per retried timeout) is shared by
/// all the clients' calls and drains within one such burst, after which the
/// SDK stops retrying anything: the quota is made unlimited instead, the
/// attempts and backoff bound each call.
pub fn retry_policy(poll: Duration) -> (RetryConfig, RetryPartition) {
    let initial = Duration::from_millis(200).min(poll);
    let cap = Duration::from_secs(20).min(poll * 4).max(initial);
    let config = RetryConfig::standard()
        .with_max_attempts(20)
        .with_initial_backoff(initial)
        .with_max_backoff(cap);
    let partition = RetryPartition::custom("bookstore-infra")
        .token_bucket(TokenBucket::unlimited())
        .build();
    (config, partition)
}

impl Cloud {
    /// The account id of the credentials (STS GetCallerIdentity, asked once
    /// and shared by every copy of this `Cloud`).
    pub async fn account(&self) -> Result<String, CloudError> {
        self.account
            .get_or_try_init(|| async {
                let me = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .ctx("account", "GetCallerIdentity")?;
                me.account().map(str::to_string).ok_or_else(|| {
                    CloudError::invalid("account", "GetCallerIdentity named no account")
                })
            })
            .await
            .cloned()
    }

    /// Loads the standard credential chain, region and `AWS_ENDPOINT_URL`.
    pub async fn connect(
        region: Option<String>,
        profile: Option<String>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        let poll = std::env::var("BOOKSTORE_INFRA_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(5));
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_policy(poll).0);
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
        Self::from_conf(&conf, reporter, poll)
    }

    /// Clients for an already loaded configuration (tests build their own),
    /// with the retry policy of [`retry_policy`] and the default timeouts.
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
        let (retry, partition) = retry_policy(poll);
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(conf)
                        .retry_config(retry.clone())
                        .retry_partition(partition.clone())
                        .interceptor(counted.clone())
                        .build(),
                )
            };
        }
        let s3_conf = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .retry_config(retry.clone())
            .retry_partition(partition.clone())
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
            logs: client!(aws_sdk_cloudwatchlogs),
            secretsmanager: client!(aws_sdk_secretsmanager),
            dlm: client!(aws_sdk_dlm),
            ecr: client!(aws_sdk_ecr),
            ecs: client!(aws_sdk_ecs),
            app_scaling: client!(aws_sdk_applicationautoscaling),
            sts: client!(aws_sdk_sts),
            reporter,
            calls,
            poll,
            timeouts: WaitLimits::default(),
            account: Arc::default(),
        }
    }

    /// Reports a resource's state while it is being worked on.
    pub fn status(&self, id: &str, msg: &str) {
        self.reporter.status(id, msg);
    }

    /// Polls `check` until it returns `Some`, reporting the state it reports, up to `limit`.
    ///
    /// A transient error from `check` (throttling, 5xx, timeout: see
    /// [`is_transient`]) is reported and polled through until `limit`, and so
    /// is a "not visible yet" answer (see [`not_yet_visible`]) within the
    /// first [`PROPAGATION_WINDOW`]: describing a resource just created is
    /// the EC2 eventual-consistency guide's own example. Any other error ends
    /// the wait at once.
    pub async fn wait_until<T, F, Fut>(
        &self,
        id: &str,
        what: &str,
        limit: Duration,
        mut check: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Option<T>, String), CloudError>>,
    {
        let start = tokio::time::Instant::now();
        loop {
            let (done, state) = match check().await {
                Ok(v) => v,
                Err(e) if e.is_transient() && start.elapsed() < limit => {
                    (None, format!("transient error, still polling: {e}"))
                }
                Err(e) if e.is_not_yet_visible() && start.elapsed() < PROPAGATION_WINDOW => {
                    (None, format!("not visible yet, still polling: {e}"))
                }
                Err(e) => return Err(e),
            };
            if let Some(v) = done {
                return Ok(v);
            }
            if start.elapsed() > limit {
                return Err(CloudError::Timeout {
                    id: id.into(),
                    what: format!("{what} (last state: {state})"),
                    waited: start.elapsed(),
                });
            }
            self.status(id, &format!("{what}: {state}"));
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Sends a request that names a resource created moments before (by
    /// this resource's create or another's), retrying while AWS answers
    /// that it does not know it yet (see [`not_yet_visible`]), for up to
    /// [`PROPAGATION_WINDOW`]. `f` makes the request; fluent builders are
    /// `Clone`: `cloud.settle(id, "ModifyVpcAttribute", || req.clone().send())`.
    ///
    /// Only use it where such an answer means the request did nothing (every
    /// code in the list is a refusal naming an unknown id), never to retry a
    /// create on an answer that could mean it happened.
    pub async fn settle<T, E, R, F, Fut>(
        &self,
        id: &str,
        op: &str,
        mut f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        self.settle_ctx(id, op, || {
            let sent = f();
            async move { sent.await.ctx(id, op) }
        })
        .await
    }

    /// [`Cloud::settle`] for a closure that already returns [`CloudError`].
    pub async fn settle_ctx<T, F, Fut>(&self, id: &str, op: &str, mut f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let start = tokio::time::Instant::now();
        // EC2's guide advises exponential backoff starting from about a
        // second; at most one poll interval between tries.
        let cap = self.poll.max(Duration::from_millis(10));
        let mut delay = (cap / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            match f().await {
                Err(e) if e.is_not_yet_visible() && start.elapsed() < PROPAGATION_WINDOW => {
                    self.status(
                        id,
                        &format!(
                            "{op}: waiting for a resource just created to become visible ({}: {})",
                            e.code().unwrap_or_default(),
                            e.message().unwrap_or_default()
                        ),
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(cap);
                }
                other => return other,
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use error::tests::api;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    fn cloud(poll: Duration) -> Cloud {
        let conf = aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Cloud::from_conf(&conf, Arc::new(Silent), poll)
    }

    #[test]
    fn not_yet_visible_codes() {
        for code in [
            "InvalidVpcID.NotFound",
            "InvalidGroup.NotFound",
            "InvalidSubnetID.NotFound",
            "InvalidRouteTableID.NotFound",
            "InvalidInternetGatewayID.NotFound",
            "InvalidAllocationID.NotFound",
            "NatGatewayNotFound",
            "InvalidLaunchTemplateId.NotFound",
            "NoSuchBucket",
            "NoSuchEntity",
            "CertificateNotFound",
            "TargetGroupNotFound",
            "LoadBalancerNotFound",
            "FileSystemNotFound",
        ] {
            assert!(api(code, "").is_not_yet_visible(), "{code}");
        }
        assert!(not_yet_visible(
            "ValidationError",
            "You must use a valid fully-formed launch template. Value (p) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
        ));
        assert!(not_yet_visible(
            "ValidationError",
            "Invalid IamInstanceProfile: p"
        ));
        assert!(not_yet_visible(
            "InvalidPolicyException",
            "Policy contains invalid Principal block"
        ));
        // A policy EFS refuses for what it says is not retried.
        assert!(!not_yet_visible(
            "InvalidPolicyException",
            "Policy must be valid JSON"
        ));
        // Other validation errors, and errors that can follow a create that
        // happened, are not retried.
        assert!(!not_yet_visible(
            "ValidationError",
            "Max bound, 200, must be ..."
        ));
        for code in [
            "InvalidParameterValue",
            "DuplicateListener",
            "EntityAlreadyExists",
            "Resource.AlreadyAssociated",
            "RouteAlreadyExists",
            "InvalidPermission.Duplicate",
            "UnauthorizedOperation",
            "Throttling",
        ] {
            assert!(!not_yet_visible(code, ""), "{code}");
        }
        assert!(!CloudError::invalid("x", "InvalidVpcID.NotFound").is_not_yet_visible());
    }

    #[test]
    fn transient_codes() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "SlowDown",
            "TooManyRequestsException",
            "PriorRequestNotComplete",
            "RequestTimeout",
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
            "HTTP 503",
            "HTTP 500",
            "Timeout",
            "DispatchFailure",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in [
            "HTTP 404",
            "DependencyViolation",
            "InvalidVpcID.NotFound",
            "AccessDenied",
            "ValidationError",
            "Unknown",
        ] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[test]
    fn wait_limits_per_kind_and_phase_with_defaults() {
        let w = WaitLimits::new(
            [
                ("a", Phase::Create, Duration::from_secs(1)),
                ("a", Phase::Delete, Duration::from_secs(2)),
                ("b", Phase::Rollout, Duration::from_secs(3)),
            ],
            Duration::from_secs(5),
        );
        assert_eq!(w.for_kind("a", Phase::Create), Duration::from_secs(1));
        assert_eq!(w.for_kind("a", Phase::Delete), Duration::from_secs(2));
        assert_eq!(w.for_kind("a", Phase::Rollout), DEFAULT_CREATE_TIMEOUT);
        // The documented defaults: 10 minutes for a kind without its own
        // key, 30 for `[timeouts] delete` (README, stack file reference).
        assert_eq!(DEFAULT_CREATE_TIMEOUT, Duration::from_secs(600));
        assert_eq!(DEFAULT_DELETE_TIMEOUT, Duration::from_secs(1800));
        assert_eq!(w.for_kind("b", Phase::Rollout), Duration::from_secs(3));
        assert_eq!(w.for_kind("c", Phase::Create), DEFAULT_CREATE_TIMEOUT);
        assert_eq!(w.for_kind("c", Phase::Delete), Duration::from_secs(5));
        let d = WaitLimits::default();
        assert_eq!(d.for_kind("c", Phase::Delete), DEFAULT_DELETE_TIMEOUT);
    }

    #[test]
    fn retry_policy_scales_with_the_poll_interval() {
        let (c, _) = retry_policy(Duration::from_secs(5));
        assert_eq!(c.max_attempts(), 20);
        assert_eq!(c.initial_backoff(), Duration::from_millis(200));
        assert_eq!(c.max_backoff(), Duration::from_secs(20));
        let (c, _) = retry_policy(Duration::from_millis(50));
        assert_eq!(c.initial_backoff(), Duration::from_millis(50));
        assert_eq!(c.max_backoff(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn settle_retries_only_while_not_visible() {
        let c = cloud(Duration::from_millis(5));
        let tries = AtomicUsize::new(0);
        let r = c
            .settle_ctx("vpc", "ModifyVpcAttribute", || {
                let n = tries.fetch_add(1, SeqCst);
                async move {
                    if n < 3 {
                        Err(api(
                            "InvalidVpcID.NotFound",
                            "The vpc ID 'vpc-1' does not exist",
                        ))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);

        let tries = AtomicUsize::new(0);
        let r: Result<(), _> = c
            .settle_ctx("vpc", "CreateSubnet", || {
                tries.fetch_add(1, SeqCst);
                async { Err(api("InvalidSubnet.Conflict", "overlaps")) }
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Some("InvalidSubnet.Conflict"));
        assert_eq!(tries.load(SeqCst), 1);
    }

    #[tokio::test]
    async fn waits_poll_through_transient_errors_and_stop_on_others() {
        let c = cloud(Duration::from_millis(1));
        let tries = AtomicUsize::new(0);
        let r = c
            .wait_until("db", "available", Duration::from_secs(10), || {
                let n = tries.fetch_add(1, SeqCst);
                async move {
                    match n {
                        0 => Err(api("Throttling", "Rate exceeded")),
                        1 => Err(api("HTTP 503", "")),
                        2 => Ok((None, "creating".to_string())),
                        _ => Ok((Some(n), "available".to_string())),
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);

        let tries = AtomicUsize::new(0);
        let r: Result<(), _> = c
            .wait_until("db", "available", Duration::from_secs(10), || {
                tries.fetch_add(1, SeqCst);
                async { Err(api("AccessDenied", "no")) }
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Some("AccessDenied"));
        assert_eq!(tries.load(SeqCst), 1);

        let r: Result<(), _> = c
            .wait_until("db", "available", Duration::from_millis(20), || async {
                Ok((None, "creating".to_string()))
            })
            .await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("gave up") && e.contains("last state: creating"),
            "{e}"
        );
    }
}
