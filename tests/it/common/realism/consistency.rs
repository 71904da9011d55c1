//! Eventual consistency: an id a create just returned is not found for a
//! moment by the calls that name it ("Eventual consistency in the Amazon
//! EC2 API"; the same holds of S3 buckets and IAM roles). Each service
//! records its new ids (`learn` in its file); they are refused here.

use std::time::Instant;

use super::super::http::Response;
use super::errors::error;
use super::{Call, State, Timing};

/// An id just created, and what AWS answers to a call naming it meanwhile.
pub(super) struct Invisible {
    /// The operation that made it: its repeat (the SDK's retry after a lost
    /// answer) meets the made thing as AWS answers it, not this.
    pub(super) made_by: String,
    pub(super) id: String,
    pub(super) since: Instant,
    pub(super) service: &'static str,
    /// Only this operation meets it (where AWS documents only that one).
    pub(super) only_op: Option<&'static str>,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) status: u16,
}

/// A call naming an id not visible yet (calls that delete or detach are
/// let through).
pub(super) fn not_visible_yet(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
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
                && v.made_by != c.op
                && v.only_op.is_none_or(|o| o == c.op)
                && c.values().any(|x| x == v.id)
        })
        .map(|v| (v.code, v.message.clone(), v.status));
    if let Some((code, msg, status)) = hit {
        st.count("consistency");
        return Some(error(&c.service, status, code, &msg));
    }
    None
}
