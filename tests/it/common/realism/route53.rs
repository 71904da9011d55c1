//! Route 53 changes take time to reach every name server: a
//! ChangeResourceRecordSets is answered `PENDING`, and GetChange answers
//! `INSYNC` once the change "has propagated to all Amazon Route 53 DNS
//! servers" (Route 53 API reference, ChangeResourceRecordSets and
//! GetChange; usually within 60 seconds). The emulator answers `INSYNC` at
//! once, with the same change id for every batch, so under `lifecycles`
//! the proxy gives each batch an id of its own and answers GetChange for
//! it.

use std::time::Instant;

use super::super::http::Response;
use super::super::xml;
use super::{Call, Inner, State};

/// A change batch the proxy answered `PENDING`.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: String,
    /// Its first change's action: CREATE, UPSERT or DELETE.
    pub action: String,
    pub submitted: Instant,
    /// When a GetChange first answered it `INSYNC`.
    pub insync_read: Option<Instant>,
}

const NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

fn info(id: &str, status: &str) -> String {
    format!(
        "<ChangeInfo><Id>/change/{id}</Id><Status>{status}</Status><SubmittedAt>2026-01-01T00:00:00.000Z</SubmittedAt></ChangeInfo>"
    )
}

/// Gives an accepted change batch an id of its own, `PENDING`.
pub(super) fn submitted(c: &Call, resp: &mut Response, st: &mut State, now: Instant) {
    if c.service != "route53" || c.op != "ChangeResourceRecordSets" || resp.status >= 300 {
        return;
    }
    let id = format!("CREALISM{:06}", st.dns_changes.len() + 1);
    let body = resp.text();
    let Some(span) = xml::find(&body, "ChangeInfo", 0) else {
        return;
    };
    resp.body = format!(
        "{}{}{}",
        &body[..span.open],
        info(&id, "PENDING"),
        &body[span.end..]
    )
    .into_bytes();
    st.dns_changes.push(Change {
        id,
        action: c.get("ChangeAction").unwrap_or_default().to_string(),
        submitted: now,
        insync_read: None,
    });
    st.count("lifecycles");
}

impl Inner {
    /// GetChange for the ids the proxy gave: `PENDING` for `dns_sync`, then
    /// `INSYNC`; `NoSuchChange` (404) for an id never given.
    pub(super) fn get_change(&self, c: &Call) -> Option<Response> {
        if c.service != "route53" || c.op != "GetChange" || !self.b.lifecycles {
            return None;
        }
        let id = c.get("Id")?.trim_start_matches("/change/").to_string();
        let mut st = self.state.lock().unwrap();
        let Some(ch) = st.dns_changes.iter_mut().find(|ch| ch.id == id) else {
            return Some(super::errors::error(
                "route53",
                404,
                "NoSuchChange",
                &format!("A change with the specified change ID does not exist: {id}"),
            ));
        };
        let status = if ch.submitted.elapsed() < self.t.dns_sync {
            "PENDING"
        } else {
            ch.insync_read.get_or_insert_with(Instant::now);
            "INSYNC"
        };
        Some(Response::new(
            200,
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetChangeResponse xmlns=\"{NS}\">{}</GetChangeResponse>",
                info(&id, status)
            ),
        ))
    }
}
