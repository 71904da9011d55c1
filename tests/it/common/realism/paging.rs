//! Paging as the API references describe it: the emulator answers every
//! item at once, so the proxy asks it for everything and cuts the answer to
//! one item a page, with the service's own continuation token.

use serde_json::{json, Value};

use super::super::http::{pairs, unpairs, Request, Response};
use super::super::xml;
use super::{Call, Inner};

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
    // Each service's paging parameters, the same for all its lists.
    let ec2 = |list| p(list, "NextToken", "MaxResults", "nextToken", false);
    let elb = |list| p(list, "Marker", "PageSize", "NextMarker", false);
    let autoscaling = |list| p(list, "NextToken", "MaxRecords", "NextToken", false);
    let rds = |list| p(list, "Marker", "MaxRecords", "Marker", false);
    let iam = |list| p(list, "Marker", "MaxItems", "Marker", true);
    let efs = |list| p(list, "Marker", "MaxItems", "NextMarker", false);
    match (service, op) {
        ("ec2", "DescribeTags") => ec2("tagSet"),
        ("ec2", "DescribeVpcs") => ec2("vpcSet"),
        ("ec2", "DescribeSubnets") => ec2("subnetSet"),
        ("ec2", "DescribeSecurityGroups") => ec2("securityGroupInfo"),
        ("ec2", "DescribeSecurityGroupRules") => ec2("securityGroupRuleSet"),
        ("ec2", "DescribeRouteTables") => ec2("routeTableSet"),
        ("ec2", "DescribeInternetGateways") => ec2("internetGatewaySet"),
        ("ec2", "DescribeNatGateways") => ec2("natGatewaySet"),
        ("ec2", "DescribeLaunchTemplates") => ec2("launchTemplates"),
        ("ec2", "DescribeLaunchTemplateVersions") => ec2("launchTemplateVersionSet"),
        ("elasticloadbalancing", "DescribeLoadBalancers") => elb("LoadBalancers"),
        ("elasticloadbalancing", "DescribeTargetGroups") => elb("TargetGroups"),
        ("elasticloadbalancing", "DescribeListeners") => elb("Listeners"),
        ("autoscaling", "DescribeAutoScalingGroups") => autoscaling("AutoScalingGroups"),
        ("autoscaling", "DescribePolicies") => autoscaling("ScalingPolicies"),
        ("rds", "DescribeDBInstances") => rds("DBInstances"),
        ("rds", "DescribeDBSubnetGroups") => rds("DBSubnetGroups"),
        ("iam", "ListRoles") => iam("Roles"),
        ("iam", "ListInstanceProfiles") => iam("InstanceProfiles"),
        ("iam", "ListRoleTags") => iam("Tags"),
        ("iam", "ListRolePolicies") => iam("PolicyNames"),
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
        ("elasticfilesystem", "DescribeFileSystems") => efs("FileSystems"),
        ("elasticfilesystem", "DescribeMountTargets") => efs("MountTargets"),
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

pub(super) const PAGE_TOKEN: &str = "realism-page-";

pub(super) fn token_offset(v: Option<&str>) -> Option<usize> {
    v.and_then(|t| t.strip_prefix(PAGE_TOKEN))
        .and_then(|n| n.parse().ok())
}

/// `req` with `kept` as its whole query string.
fn set_query(req: &mut Request, kept: &[(String, String)]) {
    let path = req.path().to_string();
    req.target = if kept.is_empty() {
        path
    } else {
        format!("{path}?{}", unpairs(kept))
    };
}

/// The paging a request asked for, its parameters taken out of the request.
pub(super) struct Paging {
    /// A list paged by token, and the offset the token names.
    token: Option<(PageSpec, usize)>,
    /// A list paged by the keys of the item a page starts at, and those keys.
    named: Option<(NamedSpec, Option<(String, String)>)>,
}

impl Inner {
    /// Takes the paging parameters out of `req`: the emulator is asked for
    /// everything, and [`Inner::repage`] cuts its answer.
    pub(super) fn unpage(&self, c: &Call, req: &mut Request) -> Paging {
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
                set_query(req, &kept);
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
            set_query(req, &kept);
        }
        Paging {
            token: spec.map(|s| (s, offset)),
            named: named.map(|n| (n, start_at)),
        }
    }

    /// Cuts a successful answer to the page [`Inner::unpage`] took note of.
    pub(super) fn repage(&self, p: Paging, resp: &mut Response) {
        if let Some((s, offset)) = p.token {
            if resp.status < 300 {
                self.page(&s, offset, resp);
            }
        }
        if let (Some((n, start_at)), true) = (p.named, resp.status < 300) {
            self.page_named(&n, start_at, resp);
        }
    }

    fn page(&self, s: &PageSpec, offset: usize, resp: &mut Response) {
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
        // Route 53 starts at the name given or, when it is gone (deleted
        // between two pages), at the next one in its order: names compared
        // label by label from the right, then types ("ListResourceRecordSets":
        // "sorted by name ... the labels reversed").
        let order = |name: &str, ty: &str| {
            let mut labels: Vec<String> = norm(name).split('.').rev().map(str::to_string).collect();
            labels.push(format!("\u{0}{ty}"));
            labels
        };
        let offset = match &start {
            Some((a, b)) => items
                .iter()
                .position(|i| {
                    let (x, y) = key(i);
                    norm(&x) == norm(a) && (b.is_empty() || norm(&y) == norm(b))
                })
                .map(|p| p + usize::from(n.after))
                .or_else(|| {
                    (!n.after).then(|| {
                        let want = order(a, b);
                        items
                            .iter()
                            .position(|i| {
                                let (x, y) = key(i);
                                order(&x, &y) > want
                            })
                            .unwrap_or(items.len())
                    })
                })
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
