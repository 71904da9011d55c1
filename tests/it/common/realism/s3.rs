//! S3: buckets not found right after their create, buckets of other
//! regions (301 PermanentRedirect, and ListBuckets' `BucketRegion`), and
//! conditional writes applied atomically.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::http::{self, Request, Response};
use super::super::xml::{self, rewrite_items};
use super::consistency::Invisible;
use super::errors::error;
use super::{Call, Inner, Realism, State, Timing};

impl Realism {
    /// Declares that bucket `name` lives in `region`.
    pub fn bucket_in_region(&self, name: &str, region: &str) {
        self.inner
            .state
            .lock()
            .unwrap()
            .bucket_region
            .insert(name.into(), region.into());
    }

    /// From now on ListBuckets names no `BucketRegion`, as S3 did before
    /// 2024 and S3-compatible endpoints still do: a client learns a
    /// bucket's region only by calling it (and meeting the redirect).
    pub fn lists_without_bucket_region(&self) {
        self.inner.state.lock().unwrap().no_bucket_region = true;
    }
}

/// Learns from a successful answer: buckets created.
pub(super) fn learn(c: &Call, st: &mut State, now: Instant) {
    if c.op == "CreateBucket" {
        if let Some(b) = c.get("Bucket") {
            st.invisible.push(Invisible {
                made_by: c.op.clone(),
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
}

/// A bucket of another region answers 301 PermanentRedirect, with its
/// region in `x-amz-bucket-region`.
pub(super) fn bucket_elsewhere(c: &Call, st: &mut State, _t: &Timing) -> Option<Response> {
    if c.service == "s3" && c.op != "ListBuckets" && c.op != "GetBucketLocation" {
        let bucket = c.get("Bucket").unwrap_or_default();
        if let Some(r) = st.bucket_region.get(bucket).cloned() {
            if r != c.region {
                st.count("other_region");
                st.count("redirect");
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
    None
}

impl Inner {
    /// ListBuckets lists every bucket of the account, whatever its region,
    /// with its `BucketRegion` (S3 API reference, ListBuckets).
    pub(super) fn bucket_regions(&self, resp: &mut Response) {
        let mut st = self.state.lock().unwrap();
        let body = resp.text();
        let mut seen = false;
        let bare = st.no_bucket_region;
        let out = rewrite_items(&body, "Buckets", |e| {
            if bare {
                seen = true;
                return Some(xml::remove(e, "BucketRegion"));
            }
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
        gates()
            .lock()
            .unwrap()
            .push((self.inner.me(), suffix.to_string(), g.clone()));
        g
    }
}

impl Inner {
    /// Forwards `req`; an object write one at a time per key (see above).
    pub(super) fn forward_atomic(&self, c: &Call, req: &Request) -> std::io::Result<Response> {
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
            let me = self.me();
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
