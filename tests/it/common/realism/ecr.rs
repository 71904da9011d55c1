//! Amazon ECR's layer uploads, checked as ECR checks them ("Amazon ECR
//! service quotas": a layer part is at most 10 MiB, and every part but
//! the last at least 5 MiB; CompleteLayerUpload refuses an upload with a
//! smaller one, `LayerPartTooSmallException`, "Layer parts must be at
//! least 5 MiB in size"). The emulator takes parts of any size.

use super::super::http::Response;
use super::errors::error;
use super::{Call, State, Timing};

const MIN_PART: u64 = 5 << 20;
const MAX_PART: u64 = 10 << 20;

fn part_size(c: &Call) -> Option<u64> {
    let first: u64 = c.get("partFirstByte")?.parse().ok()?;
    let last: u64 = c.get("partLastByte")?.parse().ok()?;
    Some(last.saturating_sub(first) + 1)
}

/// Refuses a part over 10 MiB, and the completion of an upload whose
/// parts but the last were not all at least 5 MiB.
pub(super) fn part_sizes(c: &Call, st: &mut State, _: &Timing) -> Option<Response> {
    if c.service != "ecr" {
        return None;
    }
    match c.op.as_str() {
        "UploadLayerPart" if part_size(c)? > MAX_PART => {
            st.count("ecr_part_refused");
            Some(error(
                "ecr",
                400,
                "InvalidParameterException",
                "Layer part size must be at most 10485760 bytes",
            ))
        }
        "CompleteLayerUpload" => {
            let parts = st.ecr_parts.get(c.get("uploadId")?)?;
            let (_, all_but_last) = parts.split_last()?;
            if all_but_last.iter().any(|p| *p < MIN_PART) {
                st.count("ecr_part_refused");
                return Some(error(
                    "ecr",
                    400,
                    "LayerPartTooSmallException",
                    "Layer parts must be at least 5 MiB in size.",
                ));
            }
            None
        }
        _ => None,
    }
}

/// Remembers the size of each part ECR took, by upload.
pub(super) fn learn(c: &Call, st: &mut State) {
    if c.op == "UploadLayerPart" {
        if let (Some(id), Some(size)) = (c.get("uploadId"), part_size(c)) {
            st.ecr_parts.entry(id.to_string()).or_default().push(size);
        }
    }
}
