//! EFS: file systems and mount targets pass `creating` (LifeCycleState)
//! before `available`.

use std::time::Instant;

use serde_json::{json, Value};

use super::super::http::Response;
use super::errors::error;
use super::{within, Call, State, Timing};

/// Learns from a successful answer: file systems and mount targets created,
/// mount targets deleted.
pub(super) fn learn(c: &Call, body: &str, st: &mut State, t: &Timing, now: Instant) {
    match c.op.as_str() {
        "DeleteMountTarget" => st.linger_until = Some(now + t.linger),
        "CreateFileSystem" | "CreateMountTarget" => {
            if let Ok(v) = serde_json::from_str::<Value>(body) {
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

/// New file systems and mount targets are `creating`: the answer
/// rewritten, if it changed.
pub(super) fn lifecycle(c: &Call, body: &str, st: &State, t: &Timing) -> Option<String> {
    let (list, key, d) = if c.op == "DescribeFileSystems" {
        ("FileSystems", "FileSystemId", t.efs_creating)
    } else {
        ("MountTargets", "MountTargetId", t.mount_creating)
    };
    let mut v = serde_json::from_str::<Value>(body).ok()?;
    let mut rewrote = false;
    if let Some(items) = v[list].as_array_mut() {
        for it in items {
            let id = it[key].as_str().unwrap_or_default().to_string();
            if it["LifeCycleState"] == "available" && within(st.efs_created.get(&id).copied(), d) {
                it["LifeCycleState"] = json!("creating");
                rewrote = true;
            }
        }
    }
    rewrote.then(|| v.to_string())
}

/// A mount target or access point asked of a file system still `creating`
/// is refused: "IncorrectFileSystemLifeCycleState: Returned if the file
/// system's lifecycle state is not 'available'" (CreateMountTarget,
/// CreateAccessPoint, Amazon EFS API reference).
pub(super) fn not_available_yet(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if !matches!(c.op.as_str(), "CreateMountTarget" | "CreateAccessPoint") {
        return None;
    }
    let fs = c.get("FileSystemId")?;
    if !within(st.efs_created.get(fs).copied(), t.efs_creating) {
        return None;
    }
    st.count("transitional");
    Some(error(
        "elasticfilesystem",
        409,
        "IncorrectFileSystemLifeCycleState",
        &format!("File system '{fs}' is not in the 'available' state"),
    ))
}
