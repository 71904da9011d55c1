//! The realism layer: an HTTP proxy between the tool and the AWS API
//! emulator (moto) that makes the emulator behave as AWS documents where the
//! emulator is kinder than AWS: eventual consistency after create, slow
//! lifecycles, dependency violations while network interfaces linger,
//! paging, buckets in other regions, targets failing behind instances that
//! Auto Scaling calls healthy, throttling bursts, shared ACM validation
//! records, and the instance refresh APIs the emulator lacks.
//!
//! Each behaviour is switchable ([`Behaviours`]); AWS's minutes are scaled
//! down to seconds ([`Timing`]). Each is counted when it bites
//! ([`Realism::injected`]), so a test can prove the behaviour it names was
//! really met. Every answer the proxy makes itself uses the service's own
//! error format, code and message, as the AWS API references give them.

//!
//! This module holds the proxy itself: which behaviours, at what pace,
//! what it saw, and how it answers a request (understand it, refuse it as
//! AWS would, or forward it and make the emulator's answer look like
//! AWS's). Each service's behaviours live in a module of their own.

mod acm;
mod autoscaling;
mod consistency;
mod ec2;
mod ecr;
mod ecs;
mod ecs_tasks;
mod efs;
mod elb;
mod errors;
mod exec_agent;
mod iam;
mod logs;
mod lost;
mod paging;
mod policies;
mod rds;
mod refresh;
mod request;
mod route53;
mod s3;
mod ssm;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::{self, Request, Response};

use errors::{code_of, error};
use request::{understand, Call};

// What tests may name, as when this was one file.
#[allow(unused_imports)]
pub use route53::Change;
#[allow(unused_imports)]
pub use s3::Gate;
#[allow(unused_imports)]
pub use ssm::{Agent, Invocation};

/// Which of AWS's behaviours the proxy adds. Instance refresh (an API the
/// emulator lacks) is always served.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviours {
    /// An id just returned by a create is not found for a moment.
    pub consistency: bool,
    /// Databases, NAT gateways, load balancers and file systems take time
    /// to become available and to go away.
    pub lifecycles: bool,
    /// Network interfaces of deleted load balancers, NAT gateways, mount
    /// targets and databases linger and block their subnets, groups, VPC.
    pub dependencies: bool,
    /// List calls answer one item a page.
    pub paging: bool,
    /// Buckets of other regions answer 301 PermanentRedirect.
    pub other_region: bool,
    /// New targets are `initial`, then `unhealthy`, before `healthy`.
    pub target_health: bool,
    /// Throttling by time: a token bucket per operation, empty at first.
    pub throttling: bool,
    /// ACM gives every certificate for a name the same validation record.
    pub shared_validation: bool,
    /// The first answer of each changing operation is lost after the work
    /// was done, and the SDK's retry meets that work.
    pub lost_answers: bool,
}

impl Behaviours {
    pub fn all() -> Self {
        Behaviours {
            consistency: true,
            lifecycles: true,
            dependencies: true,
            paging: true,
            other_region: true,
            target_health: true,
            throttling: true,
            shared_validation: true,
            lost_answers: true,
        }
    }

    pub fn none() -> Self {
        Behaviours::default()
    }
}

/// AWS's durations, scaled to seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a new id stays invisible (EC2: "a few seconds" to minutes).
    pub visible: Duration,
    /// RDS `creating` (a Multi-AZ MySQL takes tens of minutes), then `backing-up`.
    pub db_creating: Duration,
    pub db_backing_up: Duration,
    /// RDS `modifying` after ModifyDBInstance, and the time a lifted
    /// deletion protection takes to apply.
    pub db_modifying: Duration,
    /// RDS `deleting`.
    pub db_deleting: Duration,
    /// NAT gateway `pending` (minutes) and `deleting`.
    pub nat_pending: Duration,
    pub nat_deleting: Duration,
    /// Load balancer `provisioning`.
    pub lb_provisioning: Duration,
    /// EFS file system and mount target `creating`.
    pub efs_creating: Duration,
    pub mount_creating: Duration,
    /// How long network interfaces of deleted resources linger.
    pub linger: Duration,
    /// A new target's `initial`, then `unhealthy`, phases.
    pub target_initial: Duration,
    pub target_unhealthy: Duration,
    /// An instance refresh's `Pending`, then time per instance replaced.
    pub refresh_pending: Duration,
    pub refresh_per_instance: Duration,
    /// A Route 53 change `PENDING` before it is `INSYNC`.
    pub dns_sync: Duration,
    /// An EBS volume `creating`, a snapshot `pending`.
    pub volume_creating: Duration,
    pub snapshot_pending: Duration,
    /// How long a resource just made is left out of lists and tag filters
    /// (within the tool's own window for them, 120 s scaled like its polls).
    pub list_lag: Duration,
    /// An ECS deployment IN_PROGRESS before it completes or fails.
    pub ecs_deploy: Duration,
    /// How long the ECS Exec agent of a service's first task is PENDING
    /// after its deployment completed.
    pub exec_agent: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        let s = Duration::from_secs_f64;
        Timing {
            visible: s(1.5),
            db_creating: s(3.0),
            db_backing_up: s(1.5),
            db_modifying: s(1.0),
            db_deleting: s(2.0),
            nat_pending: s(2.0),
            nat_deleting: s(1.5),
            lb_provisioning: s(2.0),
            efs_creating: s(1.0),
            mount_creating: s(1.5),
            linger: s(3.0),
            target_initial: s(1.0),
            target_unhealthy: s(1.5),
            refresh_pending: s(0.5),
            refresh_per_instance: s(1.0),
            dns_sync: s(1.0),
            volume_creating: s(1.0),
            snapshot_pending: s(1.5),
            list_lag: s(1.0),
            ecs_deploy: s(1.5),
            exec_agent: s(30.0),
        }
    }
}

/// Each operation's token bucket: at most this many tokens (AWS's are tens
/// to hundreds of requests; the scale here is the tool's test pace, a poll
/// every 50 ms instead of 5 s) ...
pub const THROTTLE_CAPACITY: f64 = 5.0;
/// ... refilled at this many tokens a second: a token every 100 ms, two
/// of the tool's test-pace polls. (At 4 a second, five resources of one
/// kind created at once could outlast the tool's scaled retry budget of
/// about 4 s, a budget that is minutes against AWS.)
pub const THROTTLE_REFILL: f64 = 10.0;

/// One request the proxy saw, and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub service: String,
    pub op: String,
    /// Query-protocol form fields (or the query string, for REST APIs).
    pub form: BTreeMap<String, String>,
    pub status: u16,
    /// The error code of an error answer.
    pub code: Option<String>,
    /// The request's path (REST APIs name the resource there: an S3 key).
    pub path: String,
    /// When it was answered.
    pub at: Instant,
    /// The request's body, as text (its first 64 KiB): JSON requests keep
    /// their lists and maps here.
    pub body: String,
    /// The answer's body, as text (its first 64 KiB).
    pub answer: String,
}

#[derive(Default)]
struct State {
    /// Ids not visible yet.
    invisible: Vec<consistency::Invisible>,
    /// When an instance profile last got its role, and its name.
    profile: Option<(Instant, String)>,
    cert_issued: HashMap<String, Instant>,
    /// Certificates a DescribeCertificate answer showed ISSUED.
    issued_seen: BTreeSet<String>,
    db: HashMap<String, rds::Db>,
    nat_created: HashMap<String, Instant>,
    nat_deleted: HashMap<String, Instant>,
    volume_created: HashMap<String, Instant>,
    snapshot_created: HashMap<String, Instant>,
    /// Snapshots a DescribeSnapshots answer showed under `lifecycles`:
    /// when, which, and whether `completed`.
    snapshot_reads: Vec<(Instant, String, bool)>,
    lb_created: HashMap<String, Instant>,
    efs_created: HashMap<String, Instant>,
    linger_until: Option<Instant>,
    targets: HashMap<String, Instant>,
    /// Each operation's token bucket (`region:service:Op`).
    buckets: HashMap<String, errors::Bucket>,
    bucket_region: HashMap<String, String>,
    /// ListBuckets answers without `BucketRegion`.
    no_bucket_region: bool,
    refreshes: Vec<refresh::Refresh>,
    fail_refreshes: Option<String>,
    hold_certificates: bool,
    injected: BTreeMap<String, usize>,
    log: Vec<Seen>,
    /// The first answer to each idempotent request (a client token, an
    /// ELBv2 name), with the request's other parameters.
    answered: HashMap<String, (BTreeMap<String, String>, Response)>,
    /// The operations whose answer was lost once.
    lost: BTreeSet<String>,
    /// Deletes whose answer was lost (the whole request): their repeat
    /// meets a thing that is gone.
    gone: BTreeSet<String>,
    /// Each DescribeTargetHealth answer given while targets fail at first:
    /// when, and whether every target in it was healthy.
    health_answers: Vec<(Instant, bool)>,
    /// Instances whose targets fail their health checks for good.
    failing: BTreeSet<String>,
    /// Route 53 change batches answered `PENDING`.
    dns_changes: Vec<route53::Change>,
    /// Each database a DescribeDBInstances answer showed under
    /// `lifecycles`: when, which, and whether it was `available` with
    /// nothing pending.
    db_reads: Vec<(Instant, String, bool)>,
    /// The size of each part ECR took, by upload id.
    ecr_parts: HashMap<String, Vec<u64>>,
    /// ECS services as ECS runs them, by ARN.
    ecs: HashMap<String, ecs::Service>,
    /// The images of each task definition revision.
    ecs_images: HashMap<String, Vec<String>>,
    /// Images (digests) whose tasks fail to start.
    ecs_failing: BTreeSet<String>,
    /// The containers of each task definition revision.
    ecs_containers: HashMap<String, Vec<ecs_tasks::ContainerSeen>>,
    /// The program ECS Exec runs for `bookstore` in a task of each image.
    ecs_programs: HashMap<String, std::path::PathBuf>,
}

impl State {
    fn count(&mut self, what: &str) {
        *self.injected.entry(what.to_string()).or_default() += 1;
    }
}

struct Inner {
    upstream: String,
    b: Behaviours,
    t: Timing,
    page_size: usize,
    state: Mutex<State>,
    exec_agent: std::sync::OnceLock<Arc<exec_agent::ExecAgent>>,
}

/// The proxy. Point the tool's `AWS_ENDPOINT_URL` at [`Realism::endpoint`].
#[derive(Clone)]
pub struct Realism {
    pub endpoint: String,
    inner: Arc<Inner>,
}

impl Realism {
    pub fn start(upstream: &str, b: Behaviours) -> Self {
        Self::start_with(upstream, b, Timing::default())
    }

    pub fn start_with(upstream: &str, b: Behaviours, t: Timing) -> Self {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_start_matches("http://").to_string(),
            b,
            t,
            page_size: 1,
            state: Mutex::new(State::default()),
            exec_agent: std::sync::OnceLock::new(),
        });
        let h = inner.clone();
        let endpoint = http::serve(Arc::new(move |req| h.handle(req)));
        Realism { endpoint, inner }
    }

    /// How often each behaviour bit, by name.
    pub fn injected(&self) -> BTreeMap<String, usize> {
        self.inner.state.lock().unwrap().injected.clone()
    }

    /// How often `what` bit.
    pub fn bit(&self, what: &str) -> usize {
        self.injected().get(what).copied().unwrap_or(0)
    }

    /// The operations (`service:Op`) whose first answer was lost.
    pub fn lost(&self) -> BTreeSet<String> {
        self.inner.state.lock().unwrap().lost.clone()
    }

    /// Each DescribeTargetHealth answer given with `target_health` on:
    /// when, and whether it named targets, all healthy.
    pub fn health_answers(&self) -> Vec<(Instant, bool)> {
        self.inner.state.lock().unwrap().health_answers.clone()
    }

    /// Makes `instance`'s targets fail their health checks from now on.
    pub fn fail_target(&self, instance: &str) {
        self.inner
            .state
            .lock()
            .unwrap()
            .failing
            .insert(instance.to_string());
    }

    /// Makes `instance`'s targets pass their health checks again.
    pub fn pass_target(&self, instance: &str) {
        self.inner.state.lock().unwrap().failing.remove(instance);
    }

    /// The Route 53 change batches answered `PENDING` (under `lifecycles`).
    pub fn dns_changes(&self) -> Vec<route53::Change> {
        self.inner.state.lock().unwrap().dns_changes.clone()
    }

    /// Each database a DescribeDBInstances answer showed (under
    /// `lifecycles`): when, which, and whether `available` with nothing
    /// pending.
    pub fn snapshot_reads(&self) -> Vec<(Instant, String, bool)> {
        self.inner.state.lock().unwrap().snapshot_reads.clone()
    }

    pub fn db_reads(&self) -> Vec<(Instant, String, bool)> {
        self.inner.state.lock().unwrap().db_reads.clone()
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.state.lock().unwrap().log.clone()
    }

    /// The requests of operation `op` that were answered with success.
    /// Tasks of task definitions running an image whose reference ends
    /// with `digest` fail to start: their deployments fail.
    pub fn fail_image(&self, digest: &str) {
        self.inner
            .state
            .lock()
            .unwrap()
            .ecs_failing
            .insert(digest.to_string());
    }

    /// Tasks of image `digest` start again.
    pub fn pass_image(&self, digest: &str) {
        self.inner.state.lock().unwrap().ecs_failing.remove(digest);
    }

    /// What ECS Exec runs as `bookstore` in tasks of image `digest`.
    pub fn task_program(&self, digest: &str, program: &std::path::Path) {
        self.inner
            .state
            .lock()
            .unwrap()
            .ecs_programs
            .insert(digest.to_string(), program.to_path_buf());
    }

    /// What the harness's ECS Exec agent met, once a session was opened.
    pub fn exec_stats(&self) -> Option<exec_agent::AgentStats> {
        self.inner.exec_agent.get().map(|a| a.stats())
    }

    /// Each ECS service's events, oldest first, by ARN.
    pub fn ecs_events(&self) -> HashMap<String, Vec<String>> {
        ecs::services(&self.inner.state.lock().unwrap())
    }

    pub fn accepted(&self, op: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.op == op && s.status < 300)
            .collect()
    }
}

fn within(since: Option<Instant>, d: Duration) -> bool {
    since.is_some_and(|s| s.elapsed() < d)
}

/// A refusal AWS would answer before the emulator is asked, if it applies.
type Refusal = fn(&Call, &mut State, &Timing) -> Option<Response>;

impl Inner {
    fn handle(&self, req: Request) -> Response {
        let c = understand(&req);
        self.advance_refreshes();
        let path = req.target.split('?').next().unwrap_or_default().to_string();
        let body = String::from_utf8_lossy(&req.body[..req.body.len().min(64 << 10)]).into_owned();
        let resp = self.respond(&c, req);
        let code = code_of(&resp);
        self.state.lock().unwrap().log.push(Seen {
            service: c.service.clone(),
            op: c.op.clone(),
            form: c.form.iter().cloned().collect(),
            status: resp.status,
            code,
            path,
            at: Instant::now(),
            body,
            answer: String::from_utf8_lossy(&resp.body[..resp.body.len().min(64 << 10)])
                .into_owned(),
        });
        resp
    }

    fn respond(&self, c: &Call, mut req: Request) -> Response {
        if let Some(r) = self.throttle(c) {
            return r;
        }
        if let Some(r) = self.refresh_api(c) {
            return r;
        }
        if let Some(r) = self.run_command(c, &req) {
            return r;
        }
        if let Some(r) = self.ecs_tasks(c, &req.body) {
            return r;
        }
        if let Some(r) = self.get_change(c) {
            return r;
        }
        self.page_log_events(c, &mut req);
        if let Some(r) = policies::refuse(c, &req.body) {
            return r;
        }
        if let Some(r) = self.refuse(c) {
            return r;
        }
        if let Some(r) = lost::repeated(c, &mut self.state.lock().unwrap()) {
            return r;
        }
        if let Some(r) = lost::gone_again(c, &mut self.state.lock().unwrap()) {
            return r;
        }
        // Paging: ask the emulator for everything, then cut.
        let paging = self.unpage(c, &mut req);
        let mut resp = match self.forward_atomic(c, &req) {
            Ok(r) => r,
            Err(e) => return error(&c.service, 500, "InternalFailure", &e.to_string()),
        };
        if resp.status < 300 {
            self.ecs(c, &req, &mut resp);
        }
        self.after(c, &mut resp);
        self.repage(paging, &mut resp);
        let mut st = self.state.lock().unwrap();
        lost::remember(c, &resp, &mut st);
        if self.b.lost_answers {
            if let Some(lost) = lost::lose(c, &resp, &mut st) {
                return lost;
            }
        }
        resp
    }

    /// Answers AWS would give before the emulator is asked: the first
    /// refusal that applies, of the behaviours switched on.
    fn refuse(&self, c: &Call) -> Option<Response> {
        let b = self.b;
        let refusals: [(bool, Refusal); 13] = [
            (b.lifecycles, efs::not_available_yet),
            (b.lifecycles, rds::not_available_yet),
            (b.lifecycles, acm::certificate_not_issued),
            (b.consistency, consistency::not_visible_yet),
            (b.consistency, iam::profile_propagating),
            (b.consistency, acm::certificate_propagating),
            (b.dependencies, ec2::dependency_violation),
            (b.dependencies, ec2::address_held),
            (b.dependencies, rds::protection_lifting),
            (b.dependencies, rds::subnet_group_in_use),
            (b.other_region, s3::bucket_elsewhere),
            (true, autoscaling::refresh_owns_template),
            (true, ecr::part_sizes),
        ];
        let mut st = self.state.lock().unwrap();
        refusals
            .iter()
            .filter(|(on, _)| *on)
            .find_map(|(_, refusal)| refusal(c, &mut st, &self.t))
    }

    /// Learns from the emulator's answer and makes it look like AWS's.
    fn after(&self, c: &Call, resp: &mut Response) {
        let ok = resp.status < 300;
        let now = Instant::now();
        let t = &self.t;
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        if ok {
            match c.service.as_str() {
                "ec2" => ec2::learn(c, &body, &mut st, t, now),
                "s3" => s3::learn(c, &mut st, now),
                "iam" => iam::learn(c, &mut st, now),
                "acm" => acm::learn(c, &body, &mut st, now),
                "rds" => rds::learn(c, &body, &mut st, t, now),
                "elasticloadbalancing" => elb::learn(c, &body, &mut st, t, now),
                "elasticfilesystem" => efs::learn(c, &body, &mut st, t, now),
                "ecr" => ecr::learn(c, &mut st),
                _ => {}
            }
        }
        if self.b.consistency && ok && c.service == "ec2" {
            if let Some(out) = ec2::lagging_list(c, &body, &mut st, t) {
                resp.body = out.into_bytes();
            }
        }
        if !self.b.consistency {
            st.invisible.clear();
            st.profile = None;
            st.cert_issued.clear();
        }
        drop(st);
        if self.b.lifecycles {
            self.lifecycles(c, resp);
            route53::submitted(c, resp, &mut self.state.lock().unwrap(), now);
        }
        if ok && c.op == "DescribeTargetHealth" {
            self.failing_targets(resp);
        }
        if self.b.target_health && ok && c.op == "DescribeTargetHealth" {
            self.target_health(resp);
        }
        if ok && c.op == "DescribeCertificate" && self.state.lock().unwrap().hold_certificates {
            acm::hold_validation(resp);
        }
        if self.b.shared_validation
            && ok
            && c.op == "DescribeCertificate"
            && acm::shared_validation(resp)
        {
            self.state.lock().unwrap().count("shared_validation");
        }
        if self.b.other_region && ok && c.op == "ListBuckets" {
            self.bucket_regions(resp);
        }
    }

    /// States AWS passes through that the emulator skips (each service's
    /// `lifecycle`).
    fn lifecycles(&self, c: &Call, resp: &mut Response) {
        let t = &self.t;
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        let out = match (c.service.as_str(), c.op.as_str()) {
            ("rds", "DescribeDBInstances") => rds::lifecycle(c, &body, resp, &st, t),
            ("ec2", "DescribeNatGateways") => ec2::nat_lifecycle(&body, &st, t),
            ("ec2", "DescribeVolumes") => ec2::volume_lifecycle(&body, &st, t),
            ("ec2", "DescribeSnapshots") => ec2::snapshot_lifecycle(&body, &mut st, t),
            ("elasticloadbalancing", "DescribeLoadBalancers") => elb::lifecycle(&body, &st, t),
            ("elasticfilesystem", "DescribeFileSystems")
            | ("elasticfilesystem", "DescribeMountTargets") => efs::lifecycle(c, &body, &st, t),
            _ => None,
        };
        if let Some(out) = out {
            st.count("lifecycles");
            resp.body = out.into_bytes();
        }
        if c.op == "DescribeDBInstances" && resp.status < 300 {
            let reads = rds::reads(&resp.text());
            let now = Instant::now();
            st.db_reads
                .extend(reads.into_iter().map(|(id, settled)| (now, id, settled)));
        }
    }

    /// This proxy, for state kept across proxies (by the address of its
    /// state).
    fn me(&self) -> usize {
        self as *const Inner as usize
    }

    /// A query request of our own to the emulator: `action` of `service`
    /// (EC2 or Auto Scaling) with `params`.
    fn upstream_query(&self, service: &str, action: &str, params: &[(&str, String)]) -> Response {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let version = if service == "ec2" {
            "2016-11-15"
        } else {
            "2011-01-01"
        };
        let head = [("Action", action), ("Version", version)];
        let body = head
            .into_iter()
            .chain(params.iter().map(|(k, v)| (*k, v.as_str())))
            .map(|(k, v)| format!("{}={}", http::encode(k), http::encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![
                ("Host".into(), self.upstream.clone()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("Authorization".into(), auth),
            ],
            body: body.into_bytes(),
        };
        http::forward(&self.upstream, &req)
            .unwrap_or_else(|e| error(service, 500, "InternalFailure", &e.to_string()))
    }
}
