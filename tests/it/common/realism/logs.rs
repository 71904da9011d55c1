//! CloudWatch Logs paging: FilterLogEvents, under `paging`, answers one
//! event a page through its own `limit` parameter, so the emulator's
//! `nextToken` pages the way AWS's does.

use serde_json::{json, Value};

use super::super::http::Request;
use super::{Call, Inner};

impl Inner {
    /// Rewrites a FilterLogEvents request in place to ask for one page.
    pub(super) fn page_log_events(&self, c: &Call, req: &mut Request) {
        if let ("logs", "FilterLogEvents", true) =
            (c.service.as_str(), c.op.as_str(), self.b.paging)
        {
            if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&req.body) {
                m.insert("limit".into(), json!(self.page_size));
                req.body = Value::Object(m).to_string().into_bytes();
                self.state.lock().unwrap().count("paging");
            }
        }
    }
}
