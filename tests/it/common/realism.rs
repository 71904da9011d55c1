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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::http::{self, pairs, unpairs, Request, Response};
use super::xml::{self, escape};

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
    /// Bursts of throttling longer than one call's standard retry budget.
    pub throttling: bool,
    /// ACM gives every certificate for a name the same validation record.
    pub shared_validation: bool,
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
            refresh_per_instance: s(1.5),
        }
    }
}

/// Consecutive throttled answers in one burst: more than the 8 attempts of
/// a standard SDK retry budget configured for 8, so a client that relies on
/// that budget alone fails.
pub const THROTTLE_BURST: u32 = 12;
/// A burst starts at an operation's first request and every this many after.
pub const THROTTLE_EVERY: u32 = 40;

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
}

/// A request, understood: which service and operation, with its parameters.
#[derive(Debug, Clone)]
struct Call {
    service: String,
    region: String,
    op: String,
    form: Vec<(String, String)>,
}

impl Call {
    fn get(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        self.form
            .iter()
            .filter(|(k, _)| !k.contains("Filter."))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Refresh {
    id: String,
    group: String,
    started: Instant,
    started_at: SystemTime,
    /// (launch template id, version) asked for.
    desired: Option<(String, String)>,
    prefs: Prefs,
    to_update: usize,
    /// Why it will fail half way, if it will.
    fail: Option<String>,
    cancelled: Option<Instant>,
    rolled_back: Option<Instant>,
    applied: bool,
}

#[derive(Debug, Clone, Default)]
struct Prefs {
    min_healthy: i64,
    warmup: Option<i64>,
    skip_matching: bool,
    auto_rollback: bool,
}

#[derive(Debug, Clone, Default)]
struct Db {
    /// Deletion protection as last asked for.
    protected: bool,
    created: Option<Instant>,
    modified: Option<Instant>,
    protection_lifted: Option<Instant>,
    /// When deleted, and the instance's last XML (shown while `deleting`).
    deleted: Option<(Instant, String)>,
}

/// An id just created, and what AWS answers to a call naming it meanwhile.
struct Invisible {
    id: String,
    since: Instant,
    service: &'static str,
    /// Only this operation meets it (where AWS documents only that one).
    only_op: Option<&'static str>,
    code: &'static str,
    message: String,
    status: u16,
}

#[derive(Default)]
struct State {
    /// Ids not visible yet.
    invisible: Vec<Invisible>,
    /// When an instance profile last got its role, and its name.
    profile: Option<(Instant, String)>,
    cert_issued: HashMap<String, Instant>,
    db: HashMap<String, Db>,
    nat_created: HashMap<String, Instant>,
    nat_deleted: HashMap<String, Instant>,
    lb_created: HashMap<String, Instant>,
    efs_created: HashMap<String, Instant>,
    linger_until: Option<Instant>,
    targets: HashMap<String, Instant>,
    op_count: HashMap<String, u32>,
    throttle_left: HashMap<String, u32>,
    bucket_region: HashMap<String, String>,
    refreshes: Vec<Refresh>,
    fail_refreshes: Option<String>,
    hold_certificates: bool,
    injected: BTreeMap<String, usize>,
    log: Vec<Seen>,
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

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.state.lock().unwrap().log.clone()
    }

    /// The requests of operation `op` that were answered with success.
    pub fn accepted(&self, op: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.op == op && s.status < 300)
            .collect()
    }

    /// Declares that bucket `name` lives in `region`.
    pub fn bucket_in_region(&self, name: &str, region: &str) {
        self.inner
            .state
            .lock()
            .unwrap()
            .bucket_region
            .insert(name.into(), region.into());
    }

    /// While held, certificates stay PENDING_VALIDATION, as when nobody has
    /// created their validation records yet (ACM validates only once the
    /// CNAME resolves).
    pub fn hold_certificates(&self, hold: bool) {
        self.inner.state.lock().unwrap().hold_certificates = hold;
    }

    /// Instance refreshes started from now on fail half way with `reason`
    /// (as when new instances fail their health checks); `None` lets them
    /// succeed again.
    pub fn fail_refreshes(&self, reason: Option<&str>) {
        self.inner.state.lock().unwrap().fail_refreshes = reason.map(str::to_string);
    }
}

/// The service and region of a request, from its SigV4 credential scope.
fn scope(req: &Request) -> (String, String) {
    let auth = req.header("authorization").unwrap_or_default();
    let cred = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split([',', ' ']).next())
        .unwrap_or_default();
    let parts: Vec<&str> = cred.split('/').collect();
    match parts.as_slice() {
        [_, _, region, service, ..] => (service.to_string(), region.to_string()),
        _ => (String::new(), String::new()),
    }
}

fn understand(req: &Request) -> Call {
    let (service, region) = scope(req);
    let body = String::from_utf8_lossy(&req.body);
    let form_body = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut form = if form_body {
        pairs(&body)
    } else {
        pairs(req.query())
    };
    let path = req.path();
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let op = if let Some(a) = form.iter().find(|(k, _)| k == "Action") {
        a.1.clone()
    } else if let Some(t) = req.header("x-amz-target") {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&body) {
            for (k, v) in m {
                if let Some(s) = v.as_str() {
                    form.push((k, s.to_string()));
                }
            }
        }
        t.rsplit('.').next().unwrap_or_default().to_string()
    } else {
        match service.as_str() {
            "elasticfilesystem" => {
                let what = seg.get(1).copied().unwrap_or_default();
                let op = match (req.method.as_str(), what, seg.len()) {
                    ("GET", "file-systems", _) => "DescribeFileSystems",
                    ("POST", "file-systems", _) => "CreateFileSystem",
                    ("DELETE", "file-systems", _) => "DeleteFileSystem",
                    ("GET", "mount-targets", 4) => "DescribeMountTargetSecurityGroups",
                    ("PUT", "mount-targets", _) => "ModifyMountTargetSecurityGroups",
                    ("GET", "mount-targets", _) => "DescribeMountTargets",
                    ("POST", "mount-targets", _) => "CreateMountTarget",
                    ("DELETE", "mount-targets", _) => "DeleteMountTarget",
                    ("GET", "access-points", _) => "DescribeAccessPoints",
                    ("POST", "access-points", _) => "CreateAccessPoint",
                    ("DELETE", "access-points", _) => "DeleteAccessPoint",
                    ("GET", "resource-tags", _) => "ListTagsForResource",
                    ("POST", "resource-tags", _) => "TagResource",
                    (m, w, _) => return call(service, region, format!("{m}:{w}"), form),
                };
                if let Some(id) = seg.get(2) {
                    form.push(("Id".into(), id.to_string()));
                }
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&body) {
                    for (k, v) in m {
                        if let Some(s) = v.as_str() {
                            form.push((k, s.to_string()));
                        }
                    }
                }
                op.to_string()
            }
            "route53" => match (req.method.as_str(), seg.get(1).copied(), seg.len()) {
                ("GET", Some("hostedzone"), 2) => "ListHostedZones".into(),
                ("GET", Some("hostedzonesbyname"), _) => "ListHostedZonesByName".into(),
                ("GET", Some("hostedzone"), 4) => "ListResourceRecordSets".into(),
                ("POST", Some("hostedzone"), 4) => "ChangeResourceRecordSets".into(),
                ("GET", Some("change"), _) => "GetChange".into(),
                (m, w, _) => format!("{m}:{}", w.unwrap_or_default()),
            },
            "s3" => {
                let sub = req
                    .query()
                    .split('&')
                    .next()
                    .and_then(|q| q.split('=').next())
                    .unwrap_or_default()
                    .to_string();
                if let Some(b) = seg.first() {
                    form.push(("Bucket".into(), b.to_string()));
                }
                match (req.method.as_str(), seg.len(), sub.as_str()) {
                    ("GET", 0, _) => "ListBuckets".into(),
                    ("PUT", 1, "") => "CreateBucket".into(),
                    ("HEAD", 1, _) => "HeadBucket".into(),
                    ("DELETE", 1, "") => "DeleteBucket".into(),
                    ("GET", 1, "location") => "GetBucketLocation".into(),
                    (m, 1, s) => format!("{m}:bucket?{s}"),
                    (m, _, s) => format!("{m}:object?{s}"),
                }
            }
            _ => format!("{}:{}", req.method, path),
        }
    };
    call(service, region, op, form)
}

fn call(service: String, region: String, op: String, form: Vec<(String, String)>) -> Call {
    Call {
        service,
        region,
        op,
        form,
    }
}

/// An error answer in the service's own protocol.
fn error(service: &str, status: u16, code: &str, message: &str) -> Response {
    let (m, c) = (escape(message), escape(code));
    let mut r = match service {
        "ec2" => Response::new(
            status,
            "text/xml;charset=UTF-8",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{c}</Code><Message>{m}</Message></Error></Errors><RequestID>realism-0000</RequestID></Response>"),
        ),
        // CloudWatch Logs speaks JSON 1.1 too.
        "acm" | "ssm" | "logs" => Response::new(
            status,
            "application/x-amz-json-1.1",
            json!({"__type": code, "message": message}).to_string(),
        ),
        "elasticfilesystem" => {
            let mut r = Response::new(
                status,
                "application/json",
                json!({"ErrorCode": code, "Message": message}).to_string(),
            );
            r.headers.push(("x-amzn-ErrorType".into(), code.into()));
            r
        }
        "s3" => Response::new(
            status,
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{c}</Code><Message>{m}</Message><RequestId>realism-0000</RequestId></Error>"),
        ),
        _ => Response::new(
            status,
            "text/xml",
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{c}</Code><Message>{m}</Message></Error><RequestId>realism-0000</RequestId></ErrorResponse>"),
        ),
    };
    r.headers
        .push(("x-amzn-query-error".into(), format!("{code};Sender")));
    r
}

/// The throttling answer of each service ("Error retries and exponential
/// backoff in AWS", and each API reference's common errors).
fn throttled(service: &str) -> Response {
    match service {
        "ec2" => error(
            service,
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        "acm" | "ssm" | "logs" => error(service, 400, "ThrottlingException", "Rate exceeded"),
        "elasticfilesystem" => error(service, 429, "ThrottlingException", "Rate exceeded"),
        "s3" => error(service, 503, "SlowDown", "Please reduce your request rate."),
        _ => error(service, 400, "Throttling", "Rate exceeded"),
    }
}

/// The error code of an answer, whatever its protocol.
fn code_of(r: &Response) -> Option<String> {
    if r.status < 300 {
        return None;
    }
    if let Some(c) = r.header("x-amzn-ErrorType") {
        return Some(c.split(':').next().unwrap_or(c).to_string());
    }
    let t = r.text();
    if let Some(c) = xml::text(&t, "Code") {
        return Some(c.to_string());
    }
    serde_json::from_str::<Value>(&t).ok().and_then(|v| {
        v["__type"]
            .as_str()
            .map(|s| s.rsplit('#').next().unwrap_or(s).to_string())
    })
}

/// `2026-11-27T13:04:18.000Z`.
fn iso(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, day) = bookstore_infra::resources::db_instance::civil(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn within(since: Option<Instant>, d: Duration) -> bool {
    since.is_some_and(|s| s.elapsed() < d)
}

/// How an operation's list pages: the list element, the request's token
/// and page-size parameters, the answer's token element.
struct PageSpec {
    list: &'static str,
    req_token: &'static str,
    req_size: &'static str,
    resp_token: &'static str,
    /// IAM and Route 53 also say `<IsTruncated>true</IsTruncated>`.
    truncated_flag: bool,
}

/// Every list operation the tool reads, as its API reference pages it.
fn page_spec(service: &str, op: &str) -> Option<PageSpec> {
    let p = |list, req_token, req_size, resp_token, truncated_flag| {
        Some(PageSpec {
            list,
            req_token,
            req_size,
            resp_token,
            truncated_flag,
        })
    };
    match (service, op) {
        ("ec2", "DescribeTags") => p("tagSet", "NextToken", "MaxResults", "nextToken", false),
        ("ec2", "DescribeVpcs") => p("vpcSet", "NextToken", "MaxResults", "nextToken", false),
        ("ec2", "DescribeSubnets") => p("subnetSet", "NextToken", "MaxResults", "nextToken", false),
        ("ec2", "DescribeSecurityGroups") => p(
            "securityGroupInfo",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeSecurityGroupRules") => p(
            "securityGroupRuleSet",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeRouteTables") => p(
            "routeTableSet",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeInternetGateways") => p(
            "internetGatewaySet",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeNatGateways") => p(
            "natGatewaySet",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeLaunchTemplates") => p(
            "launchTemplates",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("ec2", "DescribeLaunchTemplateVersions") => p(
            "launchTemplateVersionSet",
            "NextToken",
            "MaxResults",
            "nextToken",
            false,
        ),
        ("elasticloadbalancing", "DescribeLoadBalancers") => {
            p("LoadBalancers", "Marker", "PageSize", "NextMarker", false)
        }
        ("elasticloadbalancing", "DescribeTargetGroups") => {
            p("TargetGroups", "Marker", "PageSize", "NextMarker", false)
        }
        ("elasticloadbalancing", "DescribeListeners") => {
            p("Listeners", "Marker", "PageSize", "NextMarker", false)
        }
        ("autoscaling", "DescribeAutoScalingGroups") => p(
            "AutoScalingGroups",
            "NextToken",
            "MaxRecords",
            "NextToken",
            false,
        ),
        ("autoscaling", "DescribePolicies") => p(
            "ScalingPolicies",
            "NextToken",
            "MaxRecords",
            "NextToken",
            false,
        ),
        ("rds", "DescribeDBInstances") => p("DBInstances", "Marker", "MaxRecords", "Marker", false),
        ("rds", "DescribeDBSubnetGroups") => {
            p("DBSubnetGroups", "Marker", "MaxRecords", "Marker", false)
        }
        ("iam", "ListRoles") => p("Roles", "Marker", "MaxItems", "Marker", true),
        ("iam", "ListInstanceProfiles") => {
            p("InstanceProfiles", "Marker", "MaxItems", "Marker", true)
        }
        ("iam", "ListRoleTags") => p("Tags", "Marker", "MaxItems", "Marker", true),
        ("iam", "ListRolePolicies") => p("PolicyNames", "Marker", "MaxItems", "Marker", true),
        ("route53", "ListHostedZones") => {
            p("HostedZones", "marker", "maxitems", "NextMarker", true)
        }
        ("acm", "ListCertificates") => p(
            "CertificateSummaryList",
            "NextToken",
            "MaxItems",
            "NextToken",
            false,
        ),
        ("elasticfilesystem", "DescribeFileSystems") => {
            p("FileSystems", "Marker", "MaxItems", "NextMarker", false)
        }
        ("elasticfilesystem", "DescribeMountTargets") => {
            p("MountTargets", "Marker", "MaxItems", "NextMarker", false)
        }
        ("elasticfilesystem", "DescribeAccessPoints") => p(
            "AccessPoints",
            "NextToken",
            "MaxResults",
            "NextToken",
            false,
        ),
        _ => None,
    }
}

const PAGE_TOKEN: &str = "realism-page-";

fn token_offset(v: Option<&str>) -> Option<usize> {
    v.and_then(|t| t.strip_prefix(PAGE_TOKEN))
        .and_then(|n| n.parse().ok())
}

/// The EC2 ids a create returns, with the code and message AWS answers for
/// an id it does not know yet ("Eventual consistency in the Amazon EC2
/// API"; codes from "Error codes for the Amazon EC2 API").
const EC2_IDS: &[(&str, &str, &str, &str)] = &[
    (
        "CreateVpc",
        "vpcId",
        "InvalidVpcID.NotFound",
        "The vpc ID '{}' does not exist",
    ),
    (
        "CreateInternetGateway",
        "internetGatewayId",
        "InvalidInternetGatewayID.NotFound",
        "The internetGateway ID '{}' does not exist",
    ),
    (
        "CreateSubnet",
        "subnetId",
        "InvalidSubnetID.NotFound",
        "The subnet ID '{}' does not exist",
    ),
    (
        "CreateSecurityGroup",
        "groupId",
        "InvalidGroup.NotFound",
        "The security group '{}' does not exist",
    ),
    (
        "CreateRouteTable",
        "routeTableId",
        "InvalidRouteTableID.NotFound",
        "The routeTable ID '{}' does not exist",
    ),
    (
        "AllocateAddress",
        "allocationId",
        "InvalidAllocationID.NotFound",
        "The allocation ID '{}' does not exist",
    ),
    (
        "CreateNatGateway",
        "natGatewayId",
        "NatGatewayNotFound",
        "The Nat Gateway {} was not found",
    ),
    (
        "CreateLaunchTemplate",
        "launchTemplateId",
        "InvalidLaunchTemplateId.NotFound",
        "The specified launch template, with template ID {}, does not exist.",
    ),
];

impl Inner {
    fn handle(&self, req: Request) -> Response {
        let c = understand(&req);
        self.advance_refreshes(&req);
        let path = req.target.split('?').next().unwrap_or_default().to_string();
        let resp = self.respond(&c, req);
        let code = code_of(&resp);
        self.state.lock().unwrap().log.push(Seen {
            service: c.service.clone(),
            op: c.op.clone(),
            form: c.form.iter().cloned().collect(),
            status: resp.status,
            code,
            path,
        });
        resp
    }

    fn respond(&self, c: &Call, mut req: Request) -> Response {
        if let Some(r) = self.throttle(c) {
            return r;
        }
        if c.service == "autoscaling" {
            match c.op.as_str() {
                "StartInstanceRefresh" => return self.start_refresh(c, &req),
                "DescribeInstanceRefreshes" => return self.describe_refreshes(c),
                "CancelInstanceRefresh" => return self.cancel_refresh(c),
                "RollbackInstanceRefresh" => return self.rollback_refresh(c),
                _ => {}
            }
        }
        // Run Command and log paging: see their section below.
        if let Some(r) = self.run_command(c, &mut req) {
            return r;
        }
        if let Some(r) = self.refuse(c) {
            return r;
        }
        // Paging: ask the emulator for everything, then cut.
        let spec = if self.b.paging {
            page_spec(&c.service, &c.op)
        } else {
            None
        };
        let mut offset = 0;
        if let Some(s) = &spec {
            let strip = |p: &[(String, String)]| -> (Vec<(String, String)>, Option<usize>) {
                let off = token_offset(
                    p.iter()
                        .find(|(k, _)| k == s.req_token)
                        .map(|(_, v)| v.as_str()),
                );
                let kept = p
                    .iter()
                    .filter(|(k, _)| k != s.req_token && k != s.req_size)
                    .cloned()
                    .collect();
                (kept, off)
            };
            if c.form.iter().any(|(k, _)| k == "Action") {
                let (kept, off) = strip(&pairs(&String::from_utf8_lossy(&req.body)));
                req.body = unpairs(&kept).into_bytes();
                offset = off.unwrap_or(0);
            } else if req.header("x-amz-target").is_some() {
                if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&req.body) {
                    offset = token_offset(m.get(s.req_token).and_then(Value::as_str)).unwrap_or(0);
                    m.remove(s.req_token);
                    m.remove(s.req_size);
                    req.body = Value::Object(m).to_string().into_bytes();
                }
            } else {
                let (kept, off) = strip(&pairs(req.query()));
                let path = req.path().to_string();
                req.target = if kept.is_empty() {
                    path
                } else {
                    format!("{path}?{}", unpairs(&kept))
                };
                offset = off.unwrap_or(0);
            }
        }
        // Lists that page by where the next page starts, not by a token.
        let named = if self.b.paging {
            named_spec(&c.op)
        } else {
            None
        };
        let mut start_at = None;
        if let Some(n) = &named {
            let q = pairs(req.query());
            let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
            start_at = get(n.req.0).map(|a| (a, get(n.req.1).unwrap_or_default()));
            let kept: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| k != n.req.0 && k != n.req.1 && k != n.req_size)
                .cloned()
                .collect();
            let path = req.path().to_string();
            req.target = if kept.is_empty() {
                path
            } else {
                format!("{path}?{}", unpairs(&kept))
            };
        }
        let mut resp = match self.forward_atomic(c, &req) {
            Ok(r) => r,
            Err(e) => return error(&c.service, 500, "InternalFailure", &e.to_string()),
        };
        self.after(c, &mut resp);
        if let Some(s) = spec {
            if resp.status < 300 {
                self.page(c, &s, offset, &mut resp);
            }
        }
        if let (Some(n), true) = (named, resp.status < 300) {
            self.page_named(&n, start_at, &mut resp);
        }
        resp
    }

    /// Throttling bursts (each operation has its own rate limit: "Request
    /// throttling for the Amazon EC2 API", and the same per-action quotas
    /// elsewhere).
    fn throttle(&self, c: &Call) -> Option<Response> {
        if !self.b.throttling {
            return None;
        }
        let key = format!("{}:{}", c.service, c.op);
        let mut st = self.state.lock().unwrap();
        let n = {
            let n = st.op_count.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        if (n - 1) % THROTTLE_EVERY == 0 {
            st.throttle_left.insert(key.clone(), THROTTLE_BURST);
        }
        let left = st.throttle_left.entry(key).or_default();
        if *left > 0 {
            *left -= 1;
            st.count("throttling");
            return Some(throttled(&c.service));
        }
        None
    }

    /// Answers AWS would give before the emulator is asked.
    fn refuse(&self, c: &Call) -> Option<Response> {
        let b = self.b;
        let t = self.t;
        let mut st = self.state.lock().unwrap();
        if b.consistency {
            let deleting = c.op.starts_with("Delete")
                || c.op.starts_with("Release")
                || c.op.starts_with("Detach")
                || c.op.starts_with("Disassociate")
                || c.op.starts_with("Revoke");
            st.invisible.retain(|v| v.since.elapsed() < t.visible);
            let hit = st
                .invisible
                .iter()
                .filter(|_| !deleting)
                .find(|v| {
                    v.service == c.service
                        && v.only_op.is_none_or(|o| o == c.op)
                        && c.values().any(|x| x == v.id)
                })
                .map(|v| (v.code, v.message.clone(), v.status));
            if let Some((code, msg, status)) = hit {
                st.count("consistency");
                return Some(error(&c.service, status, code, &msg));
            }
            // An instance profile that just got its role is not usable by
            // Auto Scaling for seconds (Terraform's autoscaling group.go
            // retries "Invalid IAM Instance Profile" for 2 minutes).
            if c.op == "CreateAutoScalingGroup" {
                if let Some((since, name)) = st.profile.clone() {
                    if since.elapsed() < t.visible {
                        st.count("consistency");
                        return Some(error(
                            "autoscaling",
                            400,
                            "ValidationError",
                            &format!("You must use a valid fully-formed launch template. Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
                        ));
                    }
                }
            }
            // A certificate just issued is not found by the load balancer
            // for a moment (Terraform's elbv2 listener.go retries
            // CertificateNotFound for 5 minutes).
            if matches!(c.op.as_str(), "CreateListener" | "ModifyListener") {
                let arn = c
                    .form
                    .iter()
                    .find(|(k, _)| k.ends_with("CertificateArn"))
                    .map(|(_, v)| v.clone());
                if let Some(arn) = arn {
                    if within(st.cert_issued.get(&arn).copied(), t.visible) {
                        st.count("consistency");
                        return Some(error(
                            "elasticloadbalancing",
                            400,
                            "CertificateNotFound",
                            &format!("Certificate '{arn}' not found"),
                        ));
                    }
                }
            }
        }
        if b.dependencies {
            let lingering = st.linger_until.is_some_and(|u| Instant::now() < u);
            // "DependencyViolation" while the network interfaces of a
            // deleted load balancer, NAT gateway, mount target or database
            // are released (EC2 API error codes; Terraform retries these
            // for 5 to 20 minutes).
            let violation = match c.op.as_str() {
                "DeleteSecurityGroup" => c
                    .get("GroupId")
                    .map(|g| format!("resource {g} has a dependent object")),
                "DeleteSubnet" => c
                    .get("SubnetId")
                    .map(|s| format!("The subnet '{s}' has dependencies and cannot be deleted.")),
                "DeleteVpc" => c
                    .get("VpcId")
                    .map(|v| format!("The vpc '{v}' has dependencies and cannot be deleted.")),
                "DetachInternetGateway" => c.get("VpcId").map(|v| {
                    format!("Network {v} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.")
                }),
                _ => None,
            };
            if let (true, Some(msg)) = (lingering, violation) {
                st.count("dependencies");
                return Some(error("ec2", 400, "DependencyViolation", &msg));
            }
            // An address a NAT gateway still holds while it is deleting.
            if c.op == "ReleaseAddress"
                && st
                    .nat_deleted
                    .values()
                    .any(|d| d.elapsed() < t.nat_deleting)
            {
                st.count("dependencies");
                return Some(error(
                    "ec2",
                    400,
                    "AuthFailure",
                    "You do not have permission to access the specified resource.",
                ));
            }
            if c.op == "DeleteDBInstance" {
                let id = c.get("DBInstanceIdentifier").unwrap_or_default();
                if within(
                    st.db.get(id).and_then(|d| d.protection_lifted),
                    t.db_modifying,
                ) {
                    st.count("dependencies");
                    return Some(error(
                        "rds",
                        400,
                        "InvalidParameterCombination",
                        "Cannot delete protected DB Instance, please disable deletion protection and try again.",
                    ));
                }
            }
            if c.op == "DeleteDBSubnetGroup" {
                let name = c.get("DBSubnetGroupName").unwrap_or_default().to_string();
                let user = st.db.iter().find_map(|(id, d)| {
                    d.deleted.as_ref().and_then(|(at, x)| {
                        (at.elapsed() < t.db_deleting
                            && xml::text(x, "DBSubnetGroupName") == Some(name.as_str()))
                        .then(|| id.clone())
                    })
                });
                if let Some(db) = user {
                    st.count("dependencies");
                    return Some(error(
                        "rds",
                        400,
                        "InvalidDBSubnetGroupStateFault",
                        &format!("Cannot delete the subnet group '{name}' because at least one database instance: {db} is still using it."),
                    ));
                }
            }
        }
        if b.other_region
            && c.service == "s3"
            && c.op != "ListBuckets"
            && c.op != "GetBucketLocation"
        {
            let bucket = c.get("Bucket").unwrap_or_default();
            if let Some(r) = st.bucket_region.get(bucket).cloned() {
                if r != c.region {
                    st.count("other_region");
                    let mut resp = error(
                        "s3",
                        301,
                        "PermanentRedirect",
                        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
                    );
                    resp.headers.push(("x-amz-bucket-region".into(), r));
                    return Some(resp);
                }
            }
        }
        // Instance refresh owns the group's launch template while active
        // ("Update restriction" in the EC2 Auto Scaling user guide).
        if c.op == "UpdateAutoScalingGroup"
            && c.form.iter().any(|(k, _)| k.starts_with("LaunchTemplate."))
        {
            let group = c.get("AutoScalingGroupName").unwrap_or_default();
            if st.refreshes.iter().any(|r| {
                r.group == group && r.desired.is_some() && is_active(&status(r, &self.t).0)
            }) {
                return Some(error(
                    "autoscaling",
                    400,
                    "ValidationError",
                    "An active instance refresh with a desired configuration exists. All configuration options derived from the desired configuration are not available for update while the instance refresh is active.",
                ));
            }
        }
        None
    }

    /// Learns from the emulator's answer and makes it look like AWS's.
    fn after(&self, c: &Call, resp: &mut Response) {
        let ok = resp.status < 300;
        let now = Instant::now();
        let t = self.t;
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        if ok {
            match (c.service.as_str(), c.op.as_str()) {
                ("ec2", op) if op.starts_with("Create") || op == "AllocateAddress" => {
                    for (_, tag, code, msg) in EC2_IDS.iter().filter(|x| x.0 == op) {
                        if let Some(id) = xml::text(&body, tag) {
                            st.invisible.push(Invisible {
                                id: id.to_string(),
                                since: now,
                                service: "ec2",
                                only_op: None,
                                code,
                                message: msg.replace("{}", id),
                                status: 400,
                            });
                        }
                    }
                    if op == "CreateNatGateway" {
                        if let Some(id) = xml::text(&body, "natGatewayId") {
                            st.nat_created.insert(id.into(), now);
                        }
                    }
                }
                ("ec2", "DeleteNatGateway") => {
                    if let Some(id) = c.get("NatGatewayId") {
                        st.nat_deleted.insert(id.into(), now);
                    }
                    st.linger_until = Some(now + t.linger);
                }
                ("s3", "CreateBucket") => {
                    if let Some(b) = c.get("Bucket") {
                        st.invisible.push(Invisible {
                            id: b.to_string(),
                            since: now,
                            service: "s3",
                            only_op: None,
                            code: "NoSuchBucket",
                            message: "The specified bucket does not exist".into(),
                            status: 404,
                        });
                    }
                }
                ("iam", "CreateRole") => {
                    if let Some(r) = c.get("RoleName") {
                        // Terraform's iam instance_profile.go retries exactly
                        // this for its 2-minute propagation timeout.
                        st.invisible.push(Invisible {
                            id: r.to_string(),
                            since: now,
                            service: "iam",
                            only_op: Some("AddRoleToInstanceProfile"),
                            code: "NoSuchEntity",
                            message: format!("The role with name {r} cannot be found."),
                            status: 404,
                        });
                    }
                }
                ("iam", "AddRoleToInstanceProfile") => {
                    let name = c.get("InstanceProfileName").unwrap_or_default().to_string();
                    st.profile = Some((now, name));
                }
                ("acm", "DescribeCertificate") if body.contains("\"ISSUED\"") => {
                    if let Some(arn) = c.get("CertificateArn") {
                        st.cert_issued.entry(arn.to_string()).or_insert(now);
                    }
                }
                ("rds", "CreateDBInstance") => {
                    if let Some(id) = c.get("DBInstanceIdentifier") {
                        let d = st.db.entry(id.into()).or_default();
                        d.created = Some(now);
                        d.protected = c.get("DeletionProtection") == Some("true");
                    }
                }
                ("rds", "ModifyDBInstance") => {
                    if let Some(id) = c.get("DBInstanceIdentifier") {
                        let d = st.db.entry(id.into()).or_default();
                        d.modified = Some(now);
                        match c.get("DeletionProtection") {
                            // Lifting it takes effect once the modification
                            // is applied; lifting it again changes nothing.
                            Some("false") if d.protected => {
                                d.protected = false;
                                d.protection_lifted = Some(now);
                            }
                            Some("true") => d.protected = true,
                            _ => {}
                        }
                    }
                }
                ("rds", "DeleteDBInstance") => {
                    if let (Some(id), Some(sp)) = (
                        c.get("DBInstanceIdentifier"),
                        xml::find(&body, "DBInstance", 0),
                    ) {
                        let elem =
                            xml::set_text(&body[sp.open..sp.end], "DBInstanceStatus", "deleting");
                        st.db.entry(id.into()).or_default().deleted = Some((now, elem));
                    }
                    st.linger_until = Some(now + t.linger);
                }
                ("elasticloadbalancing", "CreateLoadBalancer") => {
                    if let Some(arn) = xml::text(&body, "LoadBalancerArn") {
                        st.lb_created.insert(arn.into(), now);
                    }
                }
                ("elasticloadbalancing", "DeleteLoadBalancer")
                | ("elasticfilesystem", "DeleteMountTarget") => {
                    st.linger_until = Some(now + t.linger);
                }
                ("elasticfilesystem", "CreateFileSystem")
                | ("elasticfilesystem", "CreateMountTarget") => {
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        for k in ["MountTargetId", "FileSystemId"] {
                            if let Some(id) = v[k].as_str() {
                                st.efs_created.insert(id.into(), now);
                                break;
                            }
                        }
                    }
                }
                _ => {}
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
        }
        if self.b.target_health && ok && c.op == "DescribeTargetHealth" {
            self.target_health(resp);
        }
        if ok && c.op == "DescribeCertificate" && self.state.lock().unwrap().hold_certificates {
            hold_validation(resp);
        }
        if self.b.shared_validation
            && ok
            && c.op == "DescribeCertificate"
            && shared_validation(resp)
        {
            self.state.lock().unwrap().count("shared_validation");
        }
        if self.b.other_region && ok && c.op == "ListBuckets" {
            self.bucket_regions(resp);
        }
    }

    /// States AWS passes through that the emulator skips: RDS ("Viewing
    /// Amazon RDS DB instance status"), NAT gateways (API_NatGateway),
    /// load balancers (API_LoadBalancerState), EFS (LifeCycleState).
    fn lifecycles(&self, c: &Call, resp: &mut Response) {
        let t = self.t;
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        let mut rewrote = false;
        let out = match (c.service.as_str(), c.op.as_str()) {
            ("rds", "DescribeDBInstances") => {
                let mut s = body.clone();
                // Databases being deleted stay visible as `deleting`.
                let deleting: Vec<(String, String)> = st
                    .db
                    .iter()
                    .filter_map(|(id, d)| {
                        d.deleted
                            .as_ref()
                            .filter(|(at, _)| at.elapsed() < t.db_deleting)
                            .map(|(_, x)| (id.clone(), x.clone()))
                    })
                    .collect();
                let asked = c.get("DBInstanceIdentifier").map(str::to_string);
                for (id, elem) in deleting {
                    if asked.as_deref().is_some_and(|a| a != id) {
                        continue;
                    }
                    if resp.status == 404 {
                        s = format!("<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBInstancesResult><DBInstances>{elem}</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></DescribeDBInstancesResponse>");
                        resp.status = 200;
                        rewrote = true;
                    } else if let Some(sp) = xml::find(&s, "DBInstances", 0) {
                        if !s[sp.inner.0..sp.inner.1]
                            .contains(&format!("<DBInstanceIdentifier>{id}<"))
                        {
                            if sp.inner == (sp.end, sp.end) {
                                s = format!(
                                    "{}<DBInstances>{elem}</DBInstances>{}",
                                    &s[..sp.open],
                                    &s[sp.end..]
                                );
                            } else {
                                s = format!("{}{elem}{}", &s[..sp.inner.1], &s[sp.inner.1..]);
                            }
                            rewrote = true;
                        }
                    }
                }
                if resp.status < 300 {
                    if let Some(sp) = xml::find(&s, "DBInstances", 0) {
                        let mut out = String::from(&s[..sp.inner.0]);
                        for item in xml::children(&s, sp.inner) {
                            let mut e = s[item.open..item.end].to_string();
                            let id = xml::text(&e, "DBInstanceIdentifier")
                                .unwrap_or_default()
                                .to_string();
                            if let Some(d) = st.db.get(&id) {
                                let state = if within(d.created, t.db_creating) {
                                    Some("creating")
                                } else if within(d.created, t.db_creating + t.db_backing_up) {
                                    Some("backing-up")
                                } else if within(d.modified, t.db_modifying) {
                                    Some("modifying")
                                } else {
                                    None
                                };
                                if let Some(state) = state {
                                    if xml::text(&e, "DBInstanceStatus") == Some("available") {
                                        e = xml::set_text(&e, "DBInstanceStatus", state);
                                        if state == "creating" {
                                            e = xml::remove(&e, "Endpoint");
                                        }
                                        rewrote = true;
                                    }
                                }
                            }
                            out.push_str(&e);
                        }
                        out.push_str(&s[sp.inner.1..]);
                        s = out;
                    }
                }
                s
            }
            ("ec2", "DescribeNatGateways") => rewrite_items(&body, "natGatewaySet", |e| {
                let id = xml::text(e, "natGatewayId").unwrap_or_default();
                let state = xml::text(e, "state").unwrap_or_default();
                let to = if state == "available"
                    && within(st.nat_created.get(id).copied(), t.nat_pending)
                {
                    Some("pending")
                } else if state == "deleted"
                    && within(st.nat_deleted.get(id).copied(), t.nat_deleting)
                {
                    Some("deleting")
                } else {
                    None
                };
                to.map(|s| {
                    rewrote = true;
                    xml::set_text(e, "state", s)
                })
            }),
            ("elasticloadbalancing", "DescribeLoadBalancers") => {
                rewrite_items(&body, "LoadBalancers", |e| {
                    let arn = xml::text(e, "LoadBalancerArn").unwrap_or_default();
                    (within(st.lb_created.get(arn).copied(), t.lb_provisioning)
                        && xml::text(e, "Code") == Some("active"))
                    .then(|| {
                        rewrote = true;
                        xml::set_text(e, "Code", "provisioning")
                    })
                })
            }
            ("elasticfilesystem", "DescribeFileSystems")
            | ("elasticfilesystem", "DescribeMountTargets") => {
                let (list, key, d) = if c.op == "DescribeFileSystems" {
                    ("FileSystems", "FileSystemId", t.efs_creating)
                } else {
                    ("MountTargets", "MountTargetId", t.mount_creating)
                };
                match serde_json::from_str::<Value>(&body) {
                    Ok(mut v) => {
                        if let Some(items) = v[list].as_array_mut() {
                            for it in items {
                                let id = it[key].as_str().unwrap_or_default().to_string();
                                if it["LifeCycleState"] == "available"
                                    && within(st.efs_created.get(&id).copied(), d)
                                {
                                    it["LifeCycleState"] = json!("creating");
                                    rewrote = true;
                                }
                            }
                        }
                        v.to_string()
                    }
                    Err(_) => body.clone(),
                }
            }
            _ => body.clone(),
        };
        if rewrote {
            st.count("lifecycles");
            resp.body = out.into_bytes();
        }
    }

    /// ListBuckets lists every bucket of the account, whatever its region,
    /// with its `BucketRegion` (S3 API reference, ListBuckets).
    fn bucket_regions(&self, resp: &mut Response) {
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        let mut seen = false;
        let out = rewrite_items(&body, "Buckets", |e| {
            let name = xml::text(e, "Name")?;
            let region = st.bucket_region.get(name)?;
            seen = true;
            let e = xml::remove(e, "BucketRegion");
            let close = e.rfind("</Bucket>")?;
            Some(format!(
                "{}<BucketRegion>{region}</BucketRegion>{}",
                &e[..close],
                &e[close..]
            ))
        });
        if seen {
            st.count("other_region");
            resp.body = out.into_bytes();
        }
    }

    /// Targets pass `initial` and `unhealthy` before `healthy` (ELB
    /// "Target health status"), while Auto Scaling reports the instances
    /// InService and Healthy through their grace period.
    fn target_health(&self, resp: &mut Response) {
        let t = self.t;
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        let mut rewrote = false;
        let out = rewrite_items(&body, "TargetHealthDescriptions", |e| {
            let target = xml::find(e, "Target", 0)?;
            let id = xml::text(&e[target.open..target.end], "Id")?.to_string();
            let since = *st.targets.entry(id).or_insert_with(Instant::now);
            let (state, reason, desc) = if since.elapsed() < t.target_initial {
                (
                    "initial",
                    "Elb.RegistrationInProgress",
                    "Target registration is in progress",
                )
            } else if since.elapsed() < t.target_initial + t.target_unhealthy {
                (
                    "unhealthy",
                    "Target.FailedHealthChecks",
                    "Health checks failed",
                )
            } else {
                return None;
            };
            let th = xml::find(e, "TargetHealth", 0)?;
            rewrote = true;
            Some(format!(
                "{}<TargetHealth><State>{state}</State><Reason>{reason}</Reason><Description>{desc}</Description></TargetHealth>{}",
                &e[..th.open],
                &e[th.end..]
            ))
        });
        if rewrote {
            st.count("target_health");
            resp.body = out.into_bytes();
        }
    }

    fn page(&self, c: &Call, s: &PageSpec, offset: usize, resp: &mut Response) {
        let body = resp.text();
        let json_list = !body.trim_start().starts_with('<');
        let n = self.page_size;
        if json_list {
            let Ok(mut v) = serde_json::from_str::<Value>(&body) else {
                return;
            };
            let items = v[s.list].as_array().cloned().unwrap_or_default();
            let page: Vec<Value> = items.iter().skip(offset).take(n).cloned().collect();
            v[s.list] = Value::Array(page);
            if let Some(m) = v.as_object_mut() {
                m.remove(s.resp_token);
                if offset + n < items.len() {
                    m.insert(
                        s.resp_token.into(),
                        json!(format!("{PAGE_TOKEN}{}", offset + n)),
                    );
                }
            }
            if items.len() > n {
                self.state.lock().unwrap().count("paging");
            }
            resp.body = v.to_string().into_bytes();
            return;
        }
        let Some(sp) = xml::find(&body, s.list, 0) else {
            return;
        };
        let items = xml::children(&body, sp.inner);
        let page: String = items
            .iter()
            .skip(offset)
            .take(n)
            .map(|i| &body[i.open..i.end])
            .collect();
        let more = offset + n < items.len();
        let after = xml::remove(&body[sp.end..], s.resp_token);
        let after = if s.truncated_flag {
            xml::remove(&after, "IsTruncated")
        } else {
            after
        };
        let mut token = String::new();
        if s.truncated_flag {
            token.push_str(&format!("<IsTruncated>{more}</IsTruncated>"));
        }
        if more {
            token.push_str(&format!(
                "<{0}>{PAGE_TOKEN}{1}</{0}>",
                s.resp_token,
                offset + n
            ));
        }
        if items.len() > n {
            self.state.lock().unwrap().count("paging");
        }
        let _ = c;
        resp.body = format!(
            "{}<{list}>{page}</{list}>{token}{after}",
            &body[..sp.open],
            list = s.list
        )
        .into_bytes();
    }

    /// Pages a list whose next page is named by its first item's keys
    /// (Route 53 record sets by name and type, hosted zones by name and id,
    /// S3 object versions by key and version id).
    fn page_named(&self, n: &NamedSpec, start: Option<(String, String)>, resp: &mut Response) {
        let body = resp.text();
        let (inner, items) = match n.list {
            Some(list) => {
                let Some(sp) = xml::find(&body, list, 0) else {
                    return;
                };
                (sp, xml::children(&body, sp.inner))
            }
            None => {
                let Some(sp) = xml::find(&body, n.root, 0) else {
                    return;
                };
                let items: Vec<xml::Span> = xml::children(&body, sp.inner)
                    .into_iter()
                    .filter(|c| {
                        n.items.iter().any(|t| {
                            let head = &body[c.open + 1..];
                            head.starts_with(t)
                                && matches!(head.as_bytes().get(t.len()), Some(b'>' | b' ' | b'/'))
                        })
                    })
                    .collect();
                (sp, items)
            }
        };
        let key = |i: &xml::Span| {
            let e = &body[i.open..i.end];
            (
                xml::text(e, n.keys.0).unwrap_or_default().to_string(),
                xml::text(e, n.keys.1).unwrap_or_default().to_string(),
            )
        };
        let norm = |v: &str| {
            v.trim_start_matches("/hostedzone/")
                .trim_end_matches('.')
                .to_string()
        };
        let offset = match &start {
            Some((a, b)) => items
                .iter()
                .position(|i| {
                    let (x, y) = key(i);
                    norm(&x) == norm(a) && (b.is_empty() || norm(&y) == norm(b))
                })
                .map(|p| p + usize::from(n.after))
                .unwrap_or(items.len()),
            None => 0,
        };
        let size = self.page_size;
        let keep: Vec<&xml::Span> = items.iter().skip(offset).take(size).collect();
        let more = items.get(offset + size);
        let mut token = format!("<IsTruncated>{}</IsTruncated>", more.is_some());
        // S3 names the last item returned and starts after it; Route 53
        // names the first item of the next page.
        let named = if n.after { keep.last().copied() } else { more };
        if let (Some(next), true) = (named, more.is_some()) {
            let (a, b) = key(next);
            token.push_str(&format!(
                "<{0}>{2}</{0}><{1}>{3}</{1}>",
                n.resp.0,
                n.resp.1,
                norm_out(n, &a),
                norm_out(n, &b)
            ));
        }
        if items.len() > size {
            self.state.lock().unwrap().count("paging");
        }
        let mut out = String::new();
        let mut last = inner.inner.0;
        out.push_str(&body[..inner.inner.0]);
        for i in &items {
            out.push_str(&body[last..i.open]);
            if keep.iter().any(|k| k.open == i.open) {
                out.push_str(&body[i.open..i.end]);
            }
            last = i.end;
        }
        out.push_str(&body[last..inner.inner.1]);
        let mut rest = body[inner.inner.1..].to_string();
        if n.list.is_none() {
            // Flat: the token goes inside the root, replacing the emulator's.
            for tag in ["IsTruncated", n.resp.0, n.resp.1] {
                out = xml::remove(&out, tag);
            }
            out.push_str(&token);
        } else {
            for tag in ["IsTruncated", n.resp.0, n.resp.1] {
                rest = xml::remove(&rest, tag);
            }
            let close = rest.find('>').map(|p| p + 1).unwrap_or(0);
            rest = format!("{}{token}{}", &rest[..close], &rest[close..]);
        }
        out.push_str(&rest);
        resp.body = out.into_bytes();
    }
}

fn norm_out(n: &NamedSpec, v: &str) -> String {
    if n.resp.1 == "NextHostedZoneId" {
        v.trim_start_matches("/hostedzone/").to_string()
    } else {
        v.to_string()
    }
}

/// A list paged by the keys of the item the next page starts at.
struct NamedSpec {
    /// The list element, or `None` when the items sit in `root` directly.
    list: Option<&'static str>,
    root: &'static str,
    items: &'static [&'static str],
    keys: (&'static str, &'static str),
    req: (&'static str, &'static str),
    req_size: &'static str,
    resp: (&'static str, &'static str),
    /// The request's keys name the last item seen, not the next one.
    after: bool,
}

fn named_spec(op: &str) -> Option<NamedSpec> {
    match op {
        // Route 53 API reference, ListResourceRecordSets (up to 300 a page).
        "ListResourceRecordSets" => Some(NamedSpec {
            list: Some("ResourceRecordSets"),
            root: "",
            items: &[],
            keys: ("Name", "Type"),
            req: ("name", "type"),
            req_size: "maxitems",
            resp: ("NextRecordName", "NextRecordType"),
            after: false,
        }),
        // ListHostedZonesByName (up to 100 a page).
        "ListHostedZonesByName" => Some(NamedSpec {
            list: Some("HostedZones"),
            root: "",
            items: &[],
            keys: ("Name", "Id"),
            req: ("dnsname", "hostedzoneid"),
            req_size: "maxitems",
            resp: ("NextDNSName", "NextHostedZoneId"),
            after: false,
        }),
        // S3 ListObjectVersions (up to 1,000 a page).
        "GET:bucket?versions" => Some(NamedSpec {
            list: None,
            root: "ListVersionsResult",
            items: &["Version", "DeleteMarker"],
            keys: ("Key", "VersionId"),
            req: ("key-marker", "version-id-marker"),
            req_size: "max-keys",
            resp: ("NextKeyMarker", "NextVersionIdMarker"),
            after: true,
        }),
        _ => None,
    }
}

/// `body` with each item of list `list` replaced where `f` returns a new one.
fn rewrite_items(body: &str, list: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let Some(sp) = xml::find(body, list, 0) else {
        return body.to_string();
    };
    let mut out = String::from(&body[..sp.inner.0]);
    let mut last = sp.inner.0;
    for item in xml::children(body, sp.inner) {
        out.push_str(&body[last..item.open]);
        let e = &body[item.open..item.end];
        out.push_str(&f(e).unwrap_or_else(|| e.to_string()));
        last = item.end;
    }
    out.push_str(&body[last..]);
    out
}

/// The certificate as ACM shows it before its validation records resolve.
fn hold_validation(resp: &mut Response) {
    let Ok(mut v) = serde_json::from_slice::<Value>(&resp.body) else {
        return;
    };
    let c = &mut v["Certificate"];
    if c["Status"] == "ISSUED" {
        c["Status"] = json!("PENDING_VALIDATION");
        if let Some(opts) = c["DomainValidationOptions"].as_array_mut() {
            for o in opts {
                o["ValidationStatus"] = json!("PENDING_VALIDATION");
            }
        }
        resp.body = v.to_string().into_bytes();
    }
}

/// ACM uses one validation CNAME per domain name and account ("DNS
/// validation" in the ACM user guide: the record is created for your domain
/// and account and stays valid for every certificate of that name).
fn shared_validation(resp: &mut Response) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(mut v) = serde_json::from_slice::<Value>(&resp.body) else {
        return false;
    };
    let mut rewrote = false;
    if let Some(opts) = v["Certificate"]["DomainValidationOptions"].as_array_mut() {
        for o in opts {
            let domain = o["DomainName"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("*.")
                .to_string();
            if o["ResourceRecord"].is_object() {
                let h = hex::encode(Sha256::digest(format!("name:{domain}")));
                let hv = hex::encode(Sha256::digest(format!("value:{domain}")));
                o["ResourceRecord"]["Name"] = json!(format!("_{}.{domain}.", &h[..32]));
                o["ResourceRecord"]["Value"] =
                    json!(format!("_{}.acm-validations.aws.", &hv[..32]));
                rewrote = true;
            }
        }
    }
    resp.body = v.to_string().into_bytes();
    rewrote
}

fn is_active(status: &str) -> bool {
    matches!(
        status,
        "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress" | "Baking"
    )
}

/// A refresh's status, percentage and reason now, from its timeline:
/// Pending, InProgress (one instance at a time), then Successful; or, when
/// it fails half way, Failed (or RollbackInProgress -> RollbackSuccessful
/// with auto rollback); Cancelling -> Cancelled after a cancel.
fn status(r: &Refresh, t: &Timing) -> (String, i32, Option<String>) {
    let el = r.started.elapsed();
    let run = t.refresh_per_instance * r.to_update.max(1) as u32;
    let short = Duration::from_millis(300);
    if let Some(c) = r.cancelled {
        let pct = pct(
            c.duration_since(r.started)
                .saturating_sub(t.refresh_pending),
            run,
        );
        return if c.elapsed() < short {
            ("Cancelling".into(), pct, None)
        } else {
            (
                "Cancelled".into(),
                pct,
                Some("Cancelled due to user request.".into()),
            )
        };
    }
    if let Some(b) = r.rolled_back {
        return if b.elapsed() < run / 2 {
            (
                "RollbackInProgress".into(),
                0,
                Some("Rollback requested by user.".into()),
            )
        } else {
            (
                "RollbackSuccessful".into(),
                100,
                Some("Rollback requested by user.".into()),
            )
        };
    }
    if el < t.refresh_pending {
        return ("Pending".into(), 0, None);
    }
    let into = el - t.refresh_pending;
    if let Some(reason) = &r.fail {
        let fail_at = run / 2;
        if into >= fail_at {
            if !r.prefs.auto_rollback {
                return ("Failed".into(), 50, Some(reason.clone()));
            }
            let rb = into - fail_at;
            return if rb < fail_at {
                (
                    "RollbackInProgress".into(),
                    50 - pct(rb, fail_at * 2),
                    Some(reason.clone()),
                )
            } else {
                (
                    "RollbackSuccessful".into(),
                    100,
                    Some(format!("{reason} The instance refresh was rolled back to the previous configuration.")),
                )
            };
        }
    }
    if into < run {
        return ("InProgress".into(), pct(into, run), None);
    }
    ("Successful".into(), 100, None)
}

fn pct(part: Duration, whole: Duration) -> i32 {
    if whole.is_zero() {
        return 100;
    }
    ((part.as_secs_f64() / whole.as_secs_f64()) * 100.0).min(100.0) as i32
}

impl Inner {
    /// A query request of our own to the emulator.
    fn upstream_query(&self, like: &Request, service: &str, form: &[(&str, String)]) -> Response {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let _ = like;
        let body = form
            .iter()
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

    /// The group as the emulator has it: (launch template id, version,
    /// instance ids, subnets).
    fn group(
        &self,
        req: &Request,
        name: &str,
    ) -> Option<(String, String, Vec<String>, Vec<String>)> {
        let r = self.upstream_query(
            req,
            "autoscaling",
            &[
                ("Action", "DescribeAutoScalingGroups".into()),
                ("Version", "2011-01-01".into()),
                ("AutoScalingGroupNames.member.1", name.into()),
            ],
        );
        let body = r.text();
        let groups = xml::find(&body, "AutoScalingGroups", 0)?;
        let g = xml::children(&body, groups.inner).into_iter().next()?;
        let g = &body[g.open..g.end];
        let own = xml::remove(g, "Instances");
        let lt = xml::find(&own, "LaunchTemplate", 0)
            .map(|s| own[s.open..s.end].to_string())
            .unwrap_or_default();
        let lt = lt.as_str();
        let instances = xml::find(g, "Instances", 0)
            .map(|sp| {
                xml::children(g, sp.inner)
                    .iter()
                    .filter_map(|i| xml::text(&g[i.open..i.end], "InstanceId").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let subnets = xml::text(&own, "VPCZoneIdentifier")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some((
            xml::text(lt, "LaunchTemplateId")
                .unwrap_or_default()
                .to_string(),
            xml::text(lt, "Version").unwrap_or_default().to_string(),
            instances,
            subnets,
        ))
    }

    /// StartInstanceRefresh, with the API reference's validation rules.
    fn start_refresh(&self, c: &Call, req: &Request) -> Response {
        let v = |m: &str| error("autoscaling", 400, "ValidationError", m);
        let Some(group) = c.get("AutoScalingGroupName").map(str::to_string) else {
            return v("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null");
        };
        let strategy = c.get("Strategy").unwrap_or("Rolling");
        if strategy != "Rolling" && strategy != "ReplaceRootVolume" {
            return v(&format!("1 validation error detected: Value '{strategy}' at 'strategy' failed to satisfy constraint: Member must satisfy enum value set: [Rolling, ReplaceRootVolume]"));
        }
        let flag = |k: &str| c.get(k) == Some("true");
        let num = |k: &str| c.get(k).and_then(|s| s.parse::<i64>().ok());
        let prefs = Prefs {
            min_healthy: num("Preferences.MinHealthyPercentage").unwrap_or(90),
            warmup: num("Preferences.InstanceWarmup"),
            skip_matching: flag("Preferences.SkipMatching"),
            auto_rollback: flag("Preferences.AutoRollback"),
        };
        if !(0..=100).contains(&prefs.min_healthy) {
            return v(&format!("1 validation error detected: Value '{}' at 'preferences.minHealthyPercentage' failed to satisfy constraint: Member must have value less than or equal to 100", prefs.min_healthy));
        }
        if let Some(max) = num("Preferences.MaxHealthyPercentage") {
            if !(100..=200).contains(&max) || max - prefs.min_healthy > 100 {
                return v("The difference between MaxHealthyPercentage and MinHealthyPercentage cannot be greater than 100, and MaxHealthyPercentage must be between 100 and 200.");
            }
        }
        if prefs.warmup.is_some_and(|w| w < 0) {
            return v("1 validation error detected: Value at 'preferences.instanceWarmup' failed to satisfy constraint: Member must have value greater than or equal to 0");
        }
        let lt_id = c.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateId");
        let lt_name = c.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateName");
        let lt_version = c
            .get("DesiredConfiguration.LaunchTemplate.Version")
            .unwrap_or("$Default");
        let has_desired = c
            .form
            .iter()
            .any(|(k, _)| k.starts_with("DesiredConfiguration."));
        if has_desired && lt_id.is_none() && lt_name.is_none() {
            return v(
                "A launch template must be specified by ID or name in the desired configuration.",
            );
        }
        if prefs.auto_rollback && !has_desired {
            return v("The request isn't valid. The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty. Set AutoRollback to false or specify a desired configuration and try again.");
        }
        if strategy == "ReplaceRootVolume" {
            return v("The ReplaceRootVolume strategy requires a desired configuration with a mixed instances policy.");
        }
        let Some((cur_lt, cur_version, instances, _)) = self.group(req, &group) else {
            return v(&format!(
                "AutoScalingGroup name not found - AutoScalingGroup {group} not found"
            ));
        };
        if prefs.auto_rollback && (cur_version == "$Latest" || cur_version == "$Default") {
            return v("The AutoRollback parameter cannot be set to true when the Auto Scaling group uses the $Latest or $Default launch template version.");
        }
        let desired = match (lt_id, has_desired) {
            (Some(id), true) => {
                // The launch template version must exist.
                let r = self.upstream_query(
                    req,
                    "ec2",
                    &[
                        ("Action", "DescribeLaunchTemplateVersions".into()),
                        ("Version", "2016-11-15".into()),
                        ("LaunchTemplateId", id.into()),
                        ("LaunchTemplateVersion.1", lt_version.into()),
                    ],
                );
                if r.status >= 300 || !r.text().contains("<versionNumber>") {
                    return v(&format!("The specified launch template, with template ID {id}, does not exist or has no version {lt_version}."));
                }
                Some((id.to_string(), lt_version.to_string()))
            }
            _ => None,
        };
        let mut st = self.state.lock().unwrap();
        if st
            .refreshes
            .iter()
            .any(|r| r.group == group && is_active(&status(r, &self.t).0))
        {
            return error(
                "autoscaling",
                400,
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            );
        }
        let matches = desired
            .as_ref()
            .is_some_and(|(id, ver)| *id == cur_lt && *ver == cur_version);
        let to_update = if prefs.skip_matching && matches {
            0
        } else {
            instances.len()
        };
        let n = st.refreshes.len() + 1;
        let id = format!("{:08x}-realism-4000-8000-{:012x}", n, n);
        let fail = st.fail_refreshes.clone();
        st.refreshes.push(Refresh {
            id: id.clone(),
            group,
            started: Instant::now(),
            started_at: SystemTime::now(),
            desired,
            prefs,
            to_update,
            fail,
            cancelled: None,
            rolled_back: None,
            applied: to_update == 0,
        });
        Response::new(
            200,
            "text/xml",
            format!("<StartInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><StartInstanceRefreshResult><InstanceRefreshId>{id}</InstanceRefreshId></StartInstanceRefreshResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></StartInstanceRefreshResponse>"),
        )
    }

    fn describe_refreshes(&self, c: &Call) -> Response {
        let Some(group) = c.get("AutoScalingGroupName") else {
            return error("autoscaling", 400, "ValidationError", "1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null");
        };
        let ids: Vec<&str> = c
            .form
            .iter()
            .filter(|(k, _)| k.starts_with("InstanceRefreshIds.member."))
            .map(|(_, v)| v.as_str())
            .collect();
        let st = self.state.lock().unwrap();
        let mut items: Vec<String> = Vec::new();
        // Newest first.
        for r in st.refreshes.iter().rev() {
            if r.group != group || (!ids.is_empty() && !ids.contains(&r.id.as_str())) {
                continue;
            }
            let (status, pct, reason) = status(r, &self.t);
            let mut m = format!(
                "<member><InstanceRefreshId>{}</InstanceRefreshId><AutoScalingGroupName>{}</AutoScalingGroupName><Status>{status}</Status>",
                r.id, r.group
            );
            if let Some(reason) = reason {
                m.push_str(&format!("<StatusReason>{}</StatusReason>", escape(&reason)));
            }
            m.push_str(&format!("<StartTime>{}</StartTime>", iso(r.started_at)));
            if !is_active(&status) {
                m.push_str(&format!("<EndTime>{}</EndTime>", iso(SystemTime::now())));
            }
            let left = if status == "Successful" {
                0
            } else {
                r.to_update - (r.to_update as i32 * pct / 100) as usize
            };
            m.push_str(&format!(
                "<PercentageComplete>{pct}</PercentageComplete><InstancesToUpdate>{left}</InstancesToUpdate>"
            ));
            m.push_str(&format!(
                "<Preferences><MinHealthyPercentage>{}</MinHealthyPercentage>{}<SkipMatching>{}</SkipMatching><AutoRollback>{}</AutoRollback><ScaleInProtectedInstances>Wait</ScaleInProtectedInstances><StandbyInstances>Wait</StandbyInstances></Preferences>",
                r.prefs.min_healthy,
                r.prefs.warmup.map(|w| format!("<InstanceWarmup>{w}</InstanceWarmup>")).unwrap_or_default(),
                r.prefs.skip_matching,
                r.prefs.auto_rollback
            ));
            if let Some((lt, v)) = &r.desired {
                m.push_str(&format!("<DesiredConfiguration><LaunchTemplate><LaunchTemplateId>{lt}</LaunchTemplateId><Version>{v}</Version></LaunchTemplate></DesiredConfiguration>"));
            }
            m.push_str("<Strategy>Rolling</Strategy></member>");
            items.push(m);
        }
        let total = items.len();
        let (offset, n) = if self.b.paging {
            (
                token_offset(c.get("NextToken")).unwrap_or(0),
                self.page_size,
            )
        } else {
            (0, usize::MAX)
        };
        let page: String = items.into_iter().skip(offset).take(n).collect();
        let token = if offset.saturating_add(n) < total {
            format!("<NextToken>{PAGE_TOKEN}{}</NextToken>", offset + n)
        } else {
            String::new()
        };
        Response::new(
            200,
            "text/xml",
            format!("<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeInstanceRefreshesResult><InstanceRefreshes>{page}</InstanceRefreshes>{token}</DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>"),
        )
    }

    fn active_mut<'s>(&self, st: &'s mut State, group: &str) -> Option<&'s mut Refresh> {
        let t = self.t;
        st.refreshes
            .iter_mut()
            .rev()
            .find(|r| r.group == group && is_active(&status(r, &t).0))
    }

    fn cancel_refresh(&self, c: &Call) -> Response {
        let group = c
            .get("AutoScalingGroupName")
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock().unwrap();
        match self.active_mut(&mut st, &group) {
            Some(r) if r.cancelled.is_none() => {
                r.cancelled = Some(Instant::now());
                Response::new(
                    200,
                    "text/xml",
                    format!("<CancelInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><CancelInstanceRefreshResult><InstanceRefreshId>{}</InstanceRefreshId></CancelInstanceRefreshResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></CancelInstanceRefreshResponse>", r.id),
                )
            }
            _ => error(
                "autoscaling",
                400,
                "ActiveInstanceRefreshNotFound",
                &format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}"),
            ),
        }
    }

    fn rollback_refresh(&self, c: &Call) -> Response {
        let group = c
            .get("AutoScalingGroupName")
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock().unwrap();
        match self.active_mut(&mut st, &group) {
            Some(r) if r.desired.is_none() => error(
                "autoscaling",
                400,
                "IrreversibleInstanceRefresh",
                "The instance refresh cannot be rolled back because it has no desired configuration.",
            ),
            Some(r) if r.cancelled.is_none() && r.rolled_back.is_none() => {
                r.rolled_back = Some(Instant::now());
                Response::new(
                    200,
                    "text/xml",
                    format!("<RollbackInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><RollbackInstanceRefreshResult><InstanceRefreshId>{}</InstanceRefreshId></RollbackInstanceRefreshResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></RollbackInstanceRefreshResponse>", r.id),
                )
            }
            _ => error(
                "autoscaling",
                400,
                "ActiveInstanceRefreshNotFound",
                &format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}"),
            ),
        }
    }

    /// Applies the desired configuration of refreshes that succeeded: "Once
    /// the instance refresh succeeds, Amazon EC2 Auto Scaling updates the
    /// settings of the Auto Scaling group to reflect the new desired
    /// configuration"; the instances were replaced on the way, so new
    /// instances (new targets) take the old ones' places.
    fn advance_refreshes(&self, req: &Request) {
        type Due = (usize, String, Option<(String, String)>);
        let due: Vec<Due> = {
            let st = self.state.lock().unwrap();
            st.refreshes
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.applied && status(r, &self.t).0 == "Successful")
                .map(|(i, r)| (i, r.group.clone(), r.desired.clone()))
                .collect()
        };
        for (i, group, desired) in due {
            {
                let mut st = self.state.lock().unwrap();
                if st.refreshes[i].applied {
                    continue;
                }
                st.refreshes[i].applied = true;
            }
            let Some((_, _, old, subnets)) = self.group(req, &group) else {
                continue;
            };
            let Some((lt, v)) = desired else {
                continue;
            };
            // New instances from the desired version replace the old ones.
            // (The emulator cannot launch a group's instances from a
            // template version made by CreateLaunchTemplateVersion with
            // user data, so the proxy launches them and attaches them.)
            let ver = self.upstream_query(
                req,
                "ec2",
                &[
                    ("Action", "DescribeLaunchTemplateVersions".into()),
                    ("Version", "2016-11-15".into()),
                    ("LaunchTemplateId", lt.clone()),
                    ("LaunchTemplateVersion.1", v.clone()),
                ],
            );
            let body = ver.text();
            let image = xml::text(&body, "imageId")
                .unwrap_or("ami-12c6146b")
                .to_string();
            let itype = xml::text(&body, "instanceType")
                .unwrap_or("t3.small")
                .to_string();
            for inst in &old {
                self.upstream_query(
                    req,
                    "autoscaling",
                    &[
                        ("Action", "DetachInstances".into()),
                        ("Version", "2011-01-01".into()),
                        ("AutoScalingGroupName", group.clone()),
                        ("InstanceIds.member.1", inst.clone()),
                        ("ShouldDecrementDesiredCapacity", "true".into()),
                    ],
                );
                self.upstream_query(
                    req,
                    "ec2",
                    &[
                        ("Action", "TerminateInstances".into()),
                        ("Version", "2016-11-15".into()),
                        ("InstanceId.1", inst.clone()),
                    ],
                );
            }
            let mut new_ids = Vec::new();
            for (i, _) in old.iter().enumerate() {
                let subnet = subnets
                    .get(i % subnets.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                let r = self.upstream_query(
                    req,
                    "ec2",
                    &[
                        ("Action", "RunInstances".into()),
                        ("Version", "2016-11-15".into()),
                        ("ImageId", image.clone()),
                        ("InstanceType", itype.clone()),
                        ("MinCount", "1".into()),
                        ("MaxCount", "1".into()),
                        ("SubnetId", subnet),
                    ],
                );
                if let Some(id) = xml::text(&r.text(), "instanceId") {
                    new_ids.push(id.to_string());
                }
            }
            let mut attach = vec![
                ("Action", "AttachInstances".to_string()),
                ("Version", "2011-01-01".into()),
                ("AutoScalingGroupName", group.clone()),
            ];
            let keys: Vec<String> = (1..=new_ids.len())
                .map(|i| format!("InstanceIds.member.{i}"))
                .collect();
            for (k, id) in keys.iter().zip(&new_ids) {
                attach.push((k.as_str(), id.clone()));
            }
            if !new_ids.is_empty() {
                self.upstream_query(req, "autoscaling", &attach);
            }
            self.upstream_query(
                req,
                "autoscaling",
                &[
                    ("Action", "UpdateAutoScalingGroup".into()),
                    ("Version", "2011-01-01".into()),
                    ("AutoScalingGroupName", group.clone()),
                    ("LaunchTemplate.LaunchTemplateId", lt),
                    ("LaunchTemplate.Version", v),
                ],
            );
        }
    }
}

// ---------------------------------------------------------------------------
// S3 conditional writes, atomic as in S3.
//
// S3 evaluates a write's precondition (`If-None-Match: *`, `If-Match:
// <etag>`) and applies the write as one step: of concurrent conditional
// writes to a key exactly one succeeds, the others get 412
// `PreconditionFailed` or 409 `ConditionalRequestConflict` ("Conditional
// writes" and "Conditional deletes", Amazon S3 User Guide). The emulator
// checks the precondition, then writes, on concurrent server threads: two
// `If-Match` writes naming the same ETag can both pass. Every PutObject and
// DeleteObject to one key is therefore forwarded one at a time, per
// emulator, across every proxy of the test process (runs given proxies of
// their own still share S3). The emulator's answers are S3's own: 412
// `PreconditionFailed` in S3's XML error format.
// ---------------------------------------------------------------------------

/// Keys (emulator + path) with a write in flight, and their waiters.
type InFlight = (Mutex<std::collections::HashSet<String>>, std::sync::Condvar);

fn writes_in_flight() -> &'static InFlight {
    static IN_FLIGHT: std::sync::OnceLock<InFlight> = std::sync::OnceLock::new();
    IN_FLIGHT.get_or_init(Default::default)
}

/// One object write in flight; the next one to the key waits for its drop.
struct ObjectWrite(String);

impl ObjectWrite {
    fn begin(key: String) -> Self {
        let (set, cv) = writes_in_flight();
        let mut busy = set.lock().unwrap();
        while busy.contains(&key) {
            busy = cv.wait(busy).unwrap();
        }
        busy.insert(key.clone());
        ObjectWrite(key)
    }
}

impl Drop for ObjectWrite {
    fn drop(&mut self) {
        let (set, cv) = writes_in_flight();
        set.lock().unwrap().remove(&self.0);
        cv.notify_all();
    }
}

/// Holds back this proxy's answer to the next accepted write of an object,
/// until [`Gate::open`]: the writer's request took effect but it has not
/// heard so yet (so a test can stop it at that exact point).
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>,
    cv: std::sync::Condvar,
}

impl Gate {
    /// Waits until a write was held back here; false after `limit`.
    pub fn wait_reached(&self, limit: Duration) -> bool {
        let g = self.state.lock().unwrap();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, limit, |(reached, _)| !*reached)
            .unwrap();
        g.0
    }

    /// Lets the held answer go.
    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// Gates set on a proxy (by the address of its state) for object paths
/// ending with a suffix.
type Gates = Mutex<Vec<(usize, String, Arc<Gate>)>>;

fn gates() -> &'static Gates {
    static GATES: std::sync::OnceLock<Gates> = std::sync::OnceLock::new();
    GATES.get_or_init(Default::default)
}

impl Realism {
    /// The answer to the next accepted PutObject, through this proxy, of an
    /// object whose path ends with `suffix` is held back until the gate opens.
    pub fn hold_next_write(&self, suffix: &str) -> Arc<Gate> {
        let g = Arc::new(Gate::default());
        gates().lock().unwrap().push((
            Arc::as_ptr(&self.inner) as usize,
            suffix.to_string(),
            g.clone(),
        ));
        g
    }
}

impl Inner {
    /// Forwards `req`; an object write one at a time per key (see above).
    fn forward_atomic(&self, c: &Call, req: &Request) -> std::io::Result<Response> {
        let write = c.service == "s3"
            && (c.op.starts_with("PUT:object?") || c.op.starts_with("DELETE:object?"));
        if !write {
            return http::forward(&self.upstream, req);
        }
        let key = format!("{}{}", self.upstream, req.path());
        let one = ObjectWrite::begin(key);
        let resp = http::forward(&self.upstream, req);
        drop(one);
        if matches!(&resp, Ok(r) if r.status < 300) && req.method == "PUT" {
            let me = self as *const Inner as usize;
            let gate = {
                let mut all = gates().lock().unwrap();
                all.iter()
                    .position(|(p, suffix, _)| *p == me && req.path().ends_with(suffix.as_str()))
                    .map(|i| all.remove(i).2)
            };
            if let Some(g) = gate {
                let mut st = g.state.lock().unwrap();
                st.0 = true;
                g.cv.notify_all();
                while !st.1 {
                    st = g.cv.wait(st).unwrap();
                }
            }
        }
        resp
    }
}

// ---------------------------------------------------------------------------
// Systems Manager Run Command and CloudWatch Logs paging.
//
// The emulator accepts SendCommand for any instance id and answers
// GetCommandInvocation at once with Success, exit status 0 and no output.
// AWS (Systems Manager API reference, SendCommand and GetCommandInvocation):
// - SendCommand refuses an instance that is not a running managed node with
//   `InvalidInstanceId` ("the instance isn't in a valid state", among the
//   reasons listed for that error);
// - the invocation is created asynchronously: right after SendCommand,
//   GetCommandInvocation answers `InvocationDoesNotExist`;
// - its `Status` goes Pending, InProgress, then Success or Failed;
//   `ResponseCode` is -1 until the command completes, then its exit status;
//   `StandardOutputContent` and `StandardErrorContent` hold at most the
//   first 24,000 characters.
// What the command does on the instance comes from a stand-in agent a test
// sets ([`Realism::ssm_agent`]). FilterLogEvents, under `paging`, answers
// one event a page through its own `limit` parameter, so the emulator's
// `nextToken` pages the way AWS's does.
// ---------------------------------------------------------------------------

/// What the SSM agent of an instance does with a command's lines: (exit
/// status, standard output, standard error).
pub type Agent = Arc<dyn Fn(&str, &[String]) -> (i32, String, String) + Send + Sync>;

/// One command sent to one instance.
#[derive(Clone)]
pub struct Invocation {
    pub command_id: String,
    pub instance: String,
    pub document: String,
    pub commands: Vec<String>,
    sent: Instant,
    outcome: (i32, String, String),
}

#[derive(Default)]
struct RunCommands {
    agent: Option<Agent>,
    invocations: Vec<Invocation>,
}

/// Run Command state of each proxy, by the address of its state.
fn run_commands() -> &'static Mutex<HashMap<usize, RunCommands>> {
    static S: std::sync::OnceLock<Mutex<HashMap<usize, RunCommands>>> = std::sync::OnceLock::new();
    S.get_or_init(Default::default)
}

/// How long an invocation is not visible, then Pending, then InProgress.
const RC_INVISIBLE: Duration = Duration::from_millis(300);
const RC_PENDING: Duration = Duration::from_millis(600);
const RC_RUNNING: Duration = Duration::from_millis(1200);
/// GetCommandInvocation's output limit, in characters.
const RC_OUTPUT: usize = 24_000;

impl Realism {
    /// Sets what the instances' agent does with the commands sent from now
    /// on. Without one, a command succeeds with no output.
    pub fn ssm_agent(
        &self,
        f: impl Fn(&str, &[String]) -> (i32, String, String) + Send + Sync + 'static,
    ) {
        let me = Arc::as_ptr(&self.inner) as usize;
        run_commands().lock().unwrap().entry(me).or_default().agent = Some(Arc::new(f));
    }

    /// Every command AWS accepted through this proxy.
    pub fn invocations(&self) -> Vec<Invocation> {
        let me = Arc::as_ptr(&self.inner) as usize;
        run_commands()
            .lock()
            .unwrap()
            .get(&me)
            .map(|r| r.invocations.clone())
            .unwrap_or_default()
    }
}

impl Inner {
    /// The proxy's own answer to a Run Command call, or `None` to forward.
    /// FilterLogEvents is rewritten in place to page.
    fn run_command(&self, c: &Call, req: &mut Request) -> Option<Response> {
        match (c.service.as_str(), c.op.as_str()) {
            ("ssm", "SendCommand") => Some(self.send_command(req)),
            ("ssm", "GetCommandInvocation") => self.command_invocation(c),
            ("logs", "FilterLogEvents") if self.b.paging => {
                if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&req.body) {
                    m.insert("limit".into(), json!(self.page_size));
                    req.body = Value::Object(m).to_string().into_bytes();
                    self.state.lock().unwrap().count("paging");
                }
                None
            }
            _ => None,
        }
    }

    fn me(&self) -> usize {
        self as *const Inner as usize
    }

    /// The instance's state name in the emulator, if it exists.
    fn instance_state(&self, req: &Request, id: &str) -> Option<String> {
        let r = self.upstream_query(
            req,
            "ec2",
            &[
                ("Action", "DescribeInstances".into()),
                ("Version", "2016-11-15".into()),
                ("InstanceId.1", id.into()),
            ],
        );
        let body = r.text();
        if r.status >= 300 || !body.contains(&format!("<instanceId>{id}</instanceId>")) {
            return None;
        }
        let state = body.split("<instanceState>").nth(1)?;
        xml::text(state, "name").map(str::to_string)
    }

    fn send_command(&self, req: &Request) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let document = body["DocumentName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let instances: Vec<String> = body["InstanceIds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let commands: Vec<String> = body["Parameters"]["commands"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if document.is_empty() {
            return error("ssm", 400, "ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null");
        }
        if document == "AWS-RunShellScript" && commands.is_empty() {
            return error(
                "ssm",
                400,
                "InvalidParameters",
                "Parameter \"commands\" is required.",
            );
        }
        if instances.is_empty() {
            return error(
                "ssm",
                400,
                "ValidationException",
                "Either InstanceIds or Targets must be specified.",
            );
        }
        let invalid: Vec<&String> = instances
            .iter()
            .filter(|i| self.instance_state(req, i).as_deref() != Some("running"))
            .collect();
        if !invalid.is_empty() {
            self.state.lock().unwrap().count("invalid_instance");
            let list: Vec<String> = invalid.iter().map(|i| format!("[{i}]")).collect();
            return error(
                "ssm",
                400,
                "InvalidInstanceId",
                &format!(
                    "Instances [{}] not in a valid state for account 123456789012",
                    list.join(", ")
                ),
            );
        }
        let resp = match http::forward(&self.upstream, req) {
            Ok(r) => r,
            Err(e) => return error("ssm", 500, "InternalServerError", &e.to_string()),
        };
        if resp.status >= 300 {
            return resp;
        }
        let mut answer: Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let Some(id) = answer["Command"]["CommandId"].as_str().map(str::to_string) else {
            return resp;
        };
        // Just sent: nothing has run yet.
        answer["Command"]["Status"] = json!("Pending");
        answer["Command"]["StatusDetails"] = json!("Pending");
        let mut all = run_commands().lock().unwrap();
        let rc = all.entry(self.me()).or_default();
        for i in &instances {
            let outcome = match &rc.agent {
                Some(a) => a(i, &commands),
                None => (0, String::new(), String::new()),
            };
            rc.invocations.push(Invocation {
                command_id: id.clone(),
                instance: i.clone(),
                document: document.clone(),
                commands: commands.clone(),
                sent: Instant::now(),
                outcome,
            });
        }
        Response::new(200, "application/x-amz-json-1.1", answer.to_string())
    }

    fn command_invocation(&self, c: &Call) -> Option<Response> {
        let (id, instance) = (c.get("CommandId")?, c.get("InstanceId").unwrap_or_default());
        let inv = {
            let all = run_commands().lock().unwrap();
            let rc = all.get(&self.me())?;
            if !rc.invocations.iter().any(|i| i.command_id == id) {
                // Not sent through here: the emulator answers (InvalidCommandId).
                return None;
            }
            rc.invocations
                .iter()
                .find(|i| i.command_id == id && i.instance == instance)
                .cloned()
        };
        let not_yet = || {
            error(
                "ssm",
                400,
                "InvocationDoesNotExist",
                "The command ID and instance ID you specified didn't match any invocations. Verify the command ID and the instance ID and try again.",
            )
        };
        let Some(inv) = inv else {
            return Some(not_yet());
        };
        let age = inv.sent.elapsed();
        if age < RC_INVISIBLE {
            self.state.lock().unwrap().count("invocation_not_yet");
            return Some(not_yet());
        }
        let (exit, out, err) = &inv.outcome;
        let cut = |s: &str| s.chars().take(RC_OUTPUT).collect::<String>();
        let (status, code, stdout, stderr) = if age < RC_PENDING {
            ("Pending", -1, String::new(), String::new())
        } else if age < RC_RUNNING {
            ("InProgress", -1, String::new(), String::new())
        } else if *exit == 0 {
            ("Success", 0, cut(out), cut(err))
        } else {
            ("Failed", *exit, cut(out), cut(err))
        };
        if status != "Success" && status != "Failed" {
            self.state.lock().unwrap().count("invocation_in_progress");
        }
        Some(Response::new(
            200,
            "application/x-amz-json-1.1",
            json!({
                "CommandId": inv.command_id,
                "InstanceId": inv.instance,
                "DocumentName": inv.document,
                "DocumentVersion": "$DEFAULT",
                "PluginName": "aws:runShellScript",
                "ResponseCode": code,
                "Status": status,
                "StatusDetails": status,
                "StandardOutputContent": stdout,
                "StandardOutputUrl": "",
                "StandardErrorContent": stderr,
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
            })
            .to_string(),
        ))
    }
}
