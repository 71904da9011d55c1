//! Understanding a request: which service and operation it is, with its
//! parameters, whatever the protocol (query, JSON, REST).

use serde_json::Value;

use super::super::http::{pairs, Request};

/// A request, understood: which service and operation, with its parameters.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) service: String,
    pub(super) region: String,
    pub(super) op: String,
    pub(super) form: Vec<(String, String)>,
}

impl Call {
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &str> {
        self.form
            .iter()
            .filter(|(k, _)| !k.contains("Filter."))
            .map(|(_, v)| v.as_str())
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

pub(super) fn understand(req: &Request) -> Call {
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
        json_strings(&body, &mut form);
        t.rsplit('.').next().unwrap_or_default().to_string()
    } else {
        match service.as_str() {
            "elasticfilesystem" => {
                let what = seg.get(1).copied().unwrap_or_default();
                let policy = seg.get(3) == Some(&"policy");
                let op = match (req.method.as_str(), what, seg.len()) {
                    ("GET", "file-systems", 4) if policy => "DescribeFileSystemPolicy",
                    ("PUT", "file-systems", 4) if policy => "PutFileSystemPolicy",
                    ("DELETE", "file-systems", 4) if policy => "DeleteFileSystemPolicy",
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
                json_strings(&body, &mut form);
                op.to_string()
            }
            // Data Lifecycle Manager (REST-JSON): /policies[/{id}], /tags/{arn}.
            "dlm" => {
                if let Some(id) = seg.get(1) {
                    form.push(("PolicyId".into(), id.to_string()));
                }
                json_strings(&body, &mut form);
                match (req.method.as_str(), seg.first().copied(), seg.len()) {
                    ("GET", Some("policies"), 1) => "GetLifecyclePolicies".into(),
                    ("POST", Some("policies"), 1) => "CreateLifecyclePolicy".into(),
                    ("GET", Some("policies"), _) => "GetLifecyclePolicy".into(),
                    ("PATCH", Some("policies"), _) => "UpdateLifecyclePolicy".into(),
                    ("DELETE", Some("policies"), _) => "DeleteLifecyclePolicy".into(),
                    ("GET", Some("tags"), _) => "ListTagsForResource".into(),
                    ("POST", Some("tags"), _) => "TagResource".into(),
                    ("DELETE", Some("tags"), _) => "UntagResource".into(),
                    (m, w, _) => format!("{m}:{}", w.unwrap_or_default()),
                }
            }
            "route53" => match (req.method.as_str(), seg.get(1).copied(), seg.len()) {
                ("GET", Some("hostedzone"), 2) => "ListHostedZones".into(),
                ("GET", Some("hostedzonesbyname"), _) => "ListHostedZonesByName".into(),
                ("GET", Some("hostedzone"), 4) => "ListResourceRecordSets".into(),
                ("POST", Some("hostedzone"), 4) => {
                    // What the batch does: its first change's action and
                    // record name.
                    for (tag, key) in [("Action", "ChangeAction"), ("Name", "RecordName")] {
                        let open = format!("<{tag}>");
                        if let Some(v) = body
                            .split(open.as_str())
                            .nth(1)
                            .and_then(|a| a.split('<').next())
                        {
                            form.push((key.into(), v.to_string()));
                        }
                    }
                    "ChangeResourceRecordSets".into()
                }
                ("GET", Some("change"), _) => {
                    if let Some(id) = seg.get(2) {
                        form.push(("Id".into(), id.to_string()));
                    }
                    "GetChange".into()
                }
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

/// The string members of a JSON object body, as parameters.
fn json_strings(body: &str, form: &mut Vec<(String, String)>) {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body) {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                form.push((k, s.to_string()));
            } else if v.is_number() {
                form.push((k, v.to_string()));
            }
        }
    }
}

fn call(service: String, region: String, op: String, form: Vec<(String, String)>) -> Call {
    Call {
        service,
        region,
        op,
        form,
    }
}
