//! Releases: every rollout of the app is a launch template version, and the
//! cloud is where a release is recorded (there is no state file).
//!
//! - The launch template version is the release's number. Its
//!   `VersionDescription` says `release sha256=<binary sha256>
//!   commit=<git commit or ->` (at most 255 characters:
//!   CreateLaunchTemplateVersion, EC2 API reference), its `CreateTime` is
//!   when it was made, and its user data names the artifact it boots.
//! - The binary of a release is the artifact `bookstore/<sha256>/bookstore`
//!   in the stack's bucket. `up` keeps the artifacts of the newest
//!   `[app] keep_releases` releases (and of the release the group runs
//!   after a `rollback`); older artifacts leave the plan, and launch
//!   template versions beyond that many are deleted, never the default or
//!   latest version nor the one the group is on.
//! - `rollback` rolls the group onto an earlier version with the same
//!   instance refresh as `up`, and tags the group
//!   [`TAG_ROLLED_BACK`](crate::resources::autoscaling_group::TAG_ROLLED_BACK).
//!   The next `up` does not undo it: while the stack file still ships the
//!   binary rolled back from, the group stays on its release and the plan
//!   says so in a note ([`pinned`]). A new binary (the fix) rolls forward as
//!   any release does, and `up --roll-forward` rolls forward to the same
//!   binary on purpose; either plan shows the group's `rolled_back` note
//!   going away next to its `launch_template_version` change.

use std::collections::BTreeSet;
use std::path::Path;

use aws_smithy_types::date_time::Format;
use serde::Serialize;

use crate::cloud::{api_error, Cloud, CloudError};
use crate::resources::{autoscaling_group, launch_template, s3};

pub use crate::resources::autoscaling_group::GroupState;
pub use crate::resources::launch_template::{description, parse_description};

/// Errors of the release commands that are not the cloud's.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("stack `{0}` has no launch template: nothing was released yet (run `up`)")]
    NoTemplate(String),
    #[error("stack `{0}` has no auto scaling group: run `up` first")]
    NoGroup(String),
    #[error("stack `{0}` has no ECS service: run `up` first")]
    NoService(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// One release, as the cloud records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    /// The launch template version.
    pub version: i64,
    /// The binary's sha256 (hex), from the version's description or user data.
    pub sha256: Option<String>,
    /// The git commit `HEAD` of the stack file's repository at `up` time.
    pub commit: Option<String>,
    /// When the version was made (RFC 3339).
    pub created: Option<String>,
    /// The binary is still in the artifact bucket (needed to roll back to it).
    pub artifact: bool,
    /// The template's default version.
    pub default: bool,
    /// The group names this version (what AWS launches new instances from).
    pub wanted: bool,
    /// A refresh rolled this version out, every target healthy.
    pub rolled_out: bool,
    /// Fargate: the task definition revision's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// Fargate: the digest of the image the revision runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Every release of a stack on Fargate, newest first: the ACTIVE task
/// definition revisions of its app family (each tagged with the binary's
/// sha256), which one the service names and which one it has rolled out
/// (its PRIMARY deployment COMPLETED), and whether its image is still in
/// the repository. The service stands where the instances' group does
/// ([`GroupState`]: the revision numbers, and the `rollback` tag).
pub async fn list_fargate(cloud: &Cloud, stack: &str) -> Result<Listing, CloudError> {
    use crate::resources::{ecr, ecs_service, ecs_task_definition};
    let revisions = ecs_task_definition::stack_revisions(cloud, stack).await?;
    let service = ecs_service::current(cloud, stack).await?;
    let images: BTreeSet<String> = match cloud
        .ecr
        .describe_images()
        .repository_name(ecr::repository_name(stack))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
    {
        Ok(list) => list
            .iter()
            .filter_map(|d| d.image_digest().map(str::to_string))
            .collect(),
        Err(e) => {
            let e = api_error("releases", "DescribeImages", e);
            if !e.is_not_found() {
                return Err(e);
            }
            BTreeSet::new()
        }
    };
    let group = service.as_ref().map(ecs_service::release_state);
    let newest = revisions.first().map(|r| r.number);
    let releases = revisions
        .iter()
        .map(|r| Release {
            version: r.number,
            sha256: r.release.clone(),
            commit: r.commit.clone(),
            created: r.registered.clone(),
            artifact: r.image.as_ref().is_some_and(|d| images.contains(d)),
            default: Some(r.number) == newest,
            wanted: group.as_ref().and_then(|g| g.version) == Some(r.number),
            rolled_out: group.as_ref().and_then(|g| g.rolled_out) == Some(r.number),
            task_definition: Some(r.arn.clone()),
            image: r.image.clone(),
        })
        .collect();
    Ok(Listing {
        stack: stack.to_string(),
        launch_template_id: None,
        bucket: None,
        group,
        releases,
    })
}

/// The images `up` keeps in the repository besides the one it pushes: the
/// newest `keep` releases' and the one the service runs or names (after a
/// `rollback` it may be older). Only images still there.
pub fn kept_images(listing: &Listing, keep: u32) -> Vec<String> {
    let in_use = listing
        .group
        .as_ref()
        .map(GroupState::versions_in_use)
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let newest = listing.releases.iter().take(keep.max(1) as usize);
    let used = listing
        .releases
        .iter()
        .filter(|r| in_use.contains(&Some(r.version)));
    for r in newest.chain(used).filter(|r| r.artifact) {
        if let Some(d) = r.image.as_ref().filter(|d| !out.contains(d)) {
            out.push(d.clone());
        }
    }
    out
}

/// Every release of a stack, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    pub stack: String,
    pub launch_template_id: Option<String>,
    pub bucket: Option<String>,
    pub group: Option<GroupState>,
    pub releases: Vec<Release>,
}

/// The commit `HEAD` of the git repository holding `dir`, if any. Never
/// fails: no git, no repository, or no commit yet is `None`.
pub fn git_commit(dir: &Path) -> Option<String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let c = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && c.len() >= 40 && c.chars().all(|c| c.is_ascii_hexdigit())).then_some(c)
}

/// Reads the stack's releases: its launch template's versions, the
/// artifacts in its bucket, and its group.
pub async fn list(cloud: &Cloud, stack: &str) -> Result<Listing, CloudError> {
    const ID: &str = "releases";
    let templates = launch_template::stack_templates(cloud, ID, stack).await?;
    let template = templates.first().map(|(_, t)| t);
    let mut listing = Listing {
        stack: stack.to_string(),
        launch_template_id: None,
        bucket: None,
        group: autoscaling_group::group_state(cloud, ID, stack).await?,
        releases: Vec::new(),
    };
    let Some(t) = template else {
        return Ok(listing);
    };
    let lt = t.launch_template_id().unwrap_or_default();
    listing.launch_template_id = Some(lt.to_string());
    let default = t.default_version_number();
    let versions = launch_template::versions(cloud, ID, lt, None).await?;
    for v in &versions {
        let Some(n) = v.version_number() else {
            continue;
        };
        let vars = v
            .launch_template_data()
            .and_then(launch_template::user_data_of)
            .map(|(_, vars)| vars);
        if listing.bucket.is_none() {
            listing.bucket = vars.as_ref().map(|v| v.bucket.clone());
        }
        let (sha, commit) = parse_description(v.version_description().unwrap_or_default());
        let g = listing.group.as_ref();
        listing.releases.push(Release {
            version: n,
            sha256: sha.or_else(|| vars.map(|v| v.sha256)),
            commit,
            created: v.create_time().and_then(|t| t.fmt(Format::DateTime).ok()),
            artifact: false,
            default: default == Some(n),
            wanted: g.and_then(|g| g.version) == Some(n),
            rolled_out: g.and_then(|g| g.rolled_out) == Some(n),
            task_definition: None,
            image: None,
        });
    }
    listing
        .releases
        .sort_by_key(|r| std::cmp::Reverse(r.version));
    if let Some(bucket) = &listing.bucket {
        let present = artifacts(cloud, bucket).await?;
        for r in &mut listing.releases {
            r.artifact = r.sha256.as_ref().is_some_and(|s| present.contains(s));
        }
    }
    Ok(listing)
}

/// The sha256 of every artifact in `bucket` (none when the bucket is gone).
async fn artifacts(cloud: &Cloud, bucket: &str) -> Result<BTreeSet<String>, CloudError> {
    let pages = cloud
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(s3::KEY_PREFIX)
        .into_paginator()
        .send()
        .try_collect()
        .await;
    let pages = match pages {
        Ok(p) => p,
        Err(e) => {
            let e = api_error("releases", "ListObjectsV2", e);
            if e.code() == Some("NoSuchBucket") {
                return Ok(BTreeSet::new());
            }
            return Err(e);
        }
    };
    Ok(pages
        .iter()
        .flat_map(|p| p.contents())
        .filter_map(|o| o.key())
        .filter_map(|k| {
            k.strip_prefix(s3::KEY_PREFIX)
                .and_then(|k| k.strip_suffix("/bookstore"))
        })
        .map(str::to_string)
        .collect())
}

/// The release `rollback` left the group on, while the stack file still
/// ships `current`, the binary of the release rolled back from: `up` keeps
/// the group there (rolling forward again to the binary that was rolled
/// back would undo the rollback behind the operator's back). Another
/// binary, or `up --roll-forward`, rolls forward.
pub fn pinned(listing: &Listing, current: &str) -> Option<crate::topology::Pinned> {
    let tag = listing.group.as_ref()?.rolled_back.clone()?;
    let (to, from) = tag.split_once(" from ")?;
    let from: i64 = from.trim().parse().ok()?;
    let rolled_back_from = listing.releases.iter().find(|r| r.version == from)?;
    // On Fargate the service names the revision by its ARN; a revision
    // no longer registered pins nothing.
    let target = listing
        .releases
        .iter()
        .find(|r| r.version.to_string() == to.trim());
    let fargate = listing.releases.iter().any(|r| r.task_definition.is_some());
    let version = match target.and_then(|r| r.task_definition.clone()) {
        Some(arn) => arn,
        None if fargate => return None,
        None => to.trim().to_string(),
    };
    (rolled_back_from.sha256.as_deref() == Some(current)).then(|| crate::topology::Pinned {
        version,
        tag: tag.clone(),
    })
}

/// What a rollback from release `from` records: `from`, or, when the
/// group (or service) was already rolled back, the release first rolled
/// back from, so that `up` keeps holding while the file ships that binary.
pub fn rolled_back_from(listing: &Listing, from: &str) -> String {
    listing
        .group
        .as_ref()
        .and_then(|g| g.rolled_back.as_deref())
        .and_then(|t| t.split_once(" from "))
        .map(|(_, f)| f.trim().to_string())
        .unwrap_or_else(|| from.to_string())
}

/// The earlier binaries whose artifacts `up` keeps besides `current`: the
/// distinct ones of the newest releases, `keep - 1` of them, and the one the
/// group runs when `rollback` left it on an older release. Only artifacts
/// still present: one gone cannot be uploaded again.
pub fn kept_artifacts(listing: &Listing, current: &str, keep: u32) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &listing.releases {
        if out.len() + 1 >= keep as usize {
            break;
        }
        if let Some(s) = r.sha256.as_deref().filter(|s| *s != current && r.artifact) {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    }
    let latest = listing.releases.first().map(|r| r.version);
    let running = listing.group.as_ref().and_then(|g| g.rolled_out);
    if running.is_some() && running != latest {
        let r = listing.releases.iter().find(|r| Some(r.version) == running);
        if let Some(s) = r
            .filter(|r| r.artifact)
            .and_then(|r| r.sha256.as_deref())
            .filter(|s| *s != current)
        {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    }
    out
}

/// The launch template versions beyond the newest `keep`, except the
/// default one and those the group names or runs.
pub fn prunable_versions(listing: &Listing, keep: u32) -> Vec<i64> {
    let in_use = listing
        .group
        .as_ref()
        .map(GroupState::versions_in_use)
        .unwrap_or_default();
    launch_template::prunable(
        listing.releases.iter().map(|r| (r.version, r.default)),
        keep,
        &in_use,
    )
}

/// The release `rollback` goes to: `to`, or the newest one older than the
/// release the group runs. It must not be the one running, and its
/// artifact must still be there.
pub fn rollback_target(listing: &Listing, to: Option<i64>) -> Result<&Release, ReleaseError> {
    let g = listing
        .group
        .as_ref()
        .ok_or_else(|| ReleaseError::NoGroup(listing.stack.clone()))?;
    let running = g.rolled_out.or(g.version);
    let target = match to {
        Some(v) => listing
            .releases
            .iter()
            .find(|r| r.version == v)
            .ok_or_else(|| {
                ReleaseError::Refused(format!(
                    "release {v} does not exist (or was pruned); `releases {}` lists them",
                    listing.stack
                ))
            })?,
        None => {
            let Some(cur) = running else {
                return Err(ReleaseError::Refused(
                    "the group runs no known release: name one with --to".into(),
                ));
            };
            listing
                .releases
                .iter()
                .find(|r| r.version < cur)
                .ok_or_else(|| {
                    ReleaseError::Refused(format!(
                        "there is no release before {cur} to roll back to"
                    ))
                })?
        }
    };
    if Some(target.version) == running {
        return Err(ReleaseError::Refused(format!(
            "the group already runs release {}",
            target.version
        )));
    }
    if !target.artifact {
        return Err(ReleaseError::Refused(format!(
            "the binary of release {} ({}) is no longer kept (the artifact bucket, or the image repository on Fargate): it cannot be rolled back to",
            target.version,
            target.sha256.as_deref().unwrap_or("unknown sha256")
        )));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(version: i64, sha: &str, artifact: bool) -> Release {
        Release {
            version,
            sha256: Some(sha.into()),
            commit: None,
            created: None,
            artifact,
            default: false,
            wanted: false,
            rolled_out: false,
            task_definition: None,
            image: None,
        }
    }

    fn listing(releases: Vec<Release>, running: Option<i64>) -> Listing {
        Listing {
            stack: "demo".into(),
            launch_template_id: Some("lt-0abc".into()),
            bucket: Some("b".into()),
            group: Some(GroupState {
                name: "demo-app".into(),
                version: running,
                rolled_out: running,
                rolled_back: None,
            }),
            releases,
        }
    }

    #[test]
    fn a_rollback_holds_only_while_the_file_ships_the_binary_rolled_back_from() {
        let mut l = listing(vec![rel(2, "bbb", true), rel(1, "aaa", true)], Some(1));
        assert_eq!(pinned(&l, "bbb"), None, "no rollback recorded");
        l.group.as_mut().unwrap().rolled_back = Some("1 from 2".into());
        assert_eq!(
            pinned(&l, "bbb"),
            Some(crate::topology::Pinned {
                version: "1".into(),
                tag: "1 from 2".into()
            })
        );
        // The fix ships: it rolls forward like any release.
        assert_eq!(pinned(&l, "ccc"), None);
        // A tag naming a release no longer listed pins nothing.
        l.group.as_mut().unwrap().rolled_back = Some("1 from 7".into());
        assert_eq!(pinned(&l, "bbb"), None);
        // A second rollback keeps the release first rolled back from.
        l.group.as_mut().unwrap().rolled_back = Some("2 from 3".into());
        assert_eq!(rolled_back_from(&l, "2"), "3");
        l.group.as_mut().unwrap().rolled_back = None;
        assert_eq!(rolled_back_from(&l, "2"), "2");
    }

    #[test]
    fn the_commit_is_heads_when_in_a_repository_else_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_commit(dir.path()), None, "not a repository");
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .output()
                .expect("git runs")
        };
        assert!(git(&["init", "-q"]).status.success());
        assert_eq!(git_commit(dir.path()), None, "no commit yet");
        assert!(git(&["commit", "-q", "--allow-empty", "-m", "first"])
            .status
            .success());
        let head = String::from_utf8(git(&["rev-parse", "HEAD"]).stdout).unwrap();
        let sub = dir.path().join("stacks");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(git_commit(&sub).as_deref(), Some(head.trim()));
    }

    #[test]
    fn kept_artifacts_are_the_newest_distinct_and_the_running_one() {
        let l = listing(
            vec![
                rel(5, "e", true),
                rel(4, "d", true),
                rel(3, "d", true),
                rel(2, "b", true),
                rel(1, "a", true),
            ],
            Some(5),
        );
        assert_eq!(kept_artifacts(&l, "f", 3), ["e", "d"]);
        assert_eq!(kept_artifacts(&l, "e", 3), ["d", "b"]);
        assert!(kept_artifacts(&l, "f", 1).is_empty());
        // Rolled back to 1: its binary stays.
        let l = listing(l.releases.clone(), Some(1));
        assert_eq!(kept_artifacts(&l, "f", 2), ["e", "a"]);
        // A binary already gone is not wanted back.
        let l = listing(vec![rel(2, "b", false), rel(1, "a", true)], Some(2));
        assert_eq!(kept_artifacts(&l, "c", 5), ["a"]);
    }

    #[test]
    fn kept_images_are_the_newest_and_the_one_the_service_runs() {
        let image = |v: i64, d: &str, kept: bool| Release {
            image: Some(d.into()),
            task_definition: Some(format!("arn:...:task-definition/shop-app:{v}")),
            ..rel(v, d, kept)
        };
        let releases = vec![
            image(5, "e", true),
            image(4, "d", true),
            image(3, "d", true),
            image(2, "b", true),
            image(1, "a", true),
        ];
        // The newest two releases' images, once each.
        let l = listing(releases.clone(), Some(5));
        assert_eq!(kept_images(&l, 2), ["e", "d"]);
        assert_eq!(kept_images(&l, 3), ["e", "d"]);
        // Rolled back to 1: its image stays, beyond the newest.
        let mut l = listing(releases.clone(), Some(1));
        l.group.as_mut().unwrap().rolled_back = Some("1 from 5".into());
        assert_eq!(kept_images(&l, 2), ["e", "d", "a"]);
        // An image gone is not wanted back.
        let mut gone = releases;
        gone[0].artifact = false;
        assert_eq!(kept_images(&listing(gone, Some(5)), 2), ["d"]);
        // Pinned there, the service is named by its revision's ARN.
        assert_eq!(
            pinned(&l, "e").map(|p| p.version),
            Some("arn:...:task-definition/shop-app:1".to_string())
        );
        // A revision deregistered since pins nothing.
        l.releases.retain(|r| r.version != 1);
        assert_eq!(pinned(&l, "e"), None);
    }

    #[test]
    fn pruning_spares_the_newest_the_default_and_the_running() {
        let mut rs = vec![rel(6, "f", true), rel(5, "e", true), rel(4, "d", true)];
        rs.extend([rel(3, "c", true), rel(2, "b", true), rel(1, "a", true)]);
        rs[5].default = true;
        let l = listing(rs, Some(3));
        assert_eq!(prunable_versions(&l, 2), [4, 2]);
        assert!(prunable_versions(&l, 50).is_empty());
    }

    #[test]
    fn rollback_goes_to_the_release_before_the_running_one() {
        let l = listing(
            vec![rel(3, "c", true), rel(2, "b", false), rel(1, "a", true)],
            Some(3),
        );
        // The one before has no artifact any more.
        let e = rollback_target(&l, None).unwrap_err().to_string();
        assert!(e.contains("no longer kept"), "{e}");
        assert_eq!(rollback_target(&l, Some(1)).unwrap().version, 1);
        let e = rollback_target(&l, Some(3)).unwrap_err().to_string();
        assert!(e.contains("already runs release 3"), "{e}");
        let e = rollback_target(&l, Some(9)).unwrap_err().to_string();
        assert!(e.contains("release 9 does not exist"), "{e}");
        let l = listing(vec![rel(2, "b", true), rel(1, "a", true)], Some(2));
        assert_eq!(rollback_target(&l, None).unwrap().version, 1);
        let l = listing(vec![rel(1, "a", true)], Some(1));
        assert!(rollback_target(&l, None).is_err());
    }
}
