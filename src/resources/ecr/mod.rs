//! `ecr:repository`: the stack's own image repository. Tags are immutable
//! (a tag names one image forever), images are scanned on push and
//! encrypted at rest, and a lifecycle policy expires all but the newest
//! `keep` images, so the repository does not grow with every release.

mod image;
mod push;

pub use image::{image_id, Image, IMAGE_KIND};
pub use push::{push, Pushed};

use async_trait::async_trait;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use serde_json::{json, Value};

use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "ecr:repository";

/// The stack's image repository.
pub fn repository_name(stack: &str) -> String {
    format!("{stack}-app")
}

pub struct Repository;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ecr", "describe_repositories", "DescribeRepositories", &["ecr:DescribeRepositories"]),
    r("ecr", "list_tags_for_resource", "ListTagsForResource", &["ecr:ListTagsForResource"]),
    r("ecr", "get_lifecycle_policy", "GetLifecyclePolicy", &["ecr:GetLifecyclePolicy"]),
    w("ecr", "create_repository", "CreateRepository", &["ecr:CreateRepository", "ecr:TagResource"]),
    w("ecr", "put_lifecycle_policy", "PutLifecyclePolicy", &["ecr:PutLifecyclePolicy"]),
    w("ecr", "put_image_scanning_configuration", "PutImageScanningConfiguration", &["ecr:PutImageScanningConfiguration"]),
    w("ecr", "put_image_tag_mutability", "PutImageTagMutability", &["ecr:PutImageTagMutability"]),
    w("ecr", "delete_repository", "DeleteRepository", &["ecr:DeleteRepository", "ecr:BatchDeleteImage"]),
];

/// The lifecycle policy keeping the newest `keep` images (ECR's
/// "Lifecycle policy parameters": `imageCountMoreThan` over any tag status).
pub fn lifecycle_policy(keep: i64) -> String {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the newest {keep} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep,
            },
            "action": {"type": "expire"},
        }]
    })
    .to_string()
}

/// How many images a lifecycle policy text keeps, if it is one of ours.
fn kept_by(policy: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(policy).ok()?;
    let rules = v["rules"].as_array()?;
    match rules.as_slice() {
        [rule]
            if rule["selection"]["countType"] == "imageCountMoreThan"
                && rule["selection"]["tagStatus"] == "any"
                && rule["action"]["type"] == "expire" =>
        {
            rule["selection"]["countNumber"].as_i64()
        }
        _ => None,
    }
}

fn observed(id: &str, repo: &aws_sdk_ecr::types::Repository, keep: Option<i64>) -> Observed {
    let name = repo.repository_name().unwrap_or_default();
    Observed::new(KIND, id, name)
        .prop("name", name)
        .prop("keep", keep.map(Value::from).unwrap_or(Value::Null))
        .prop(
            "scan_on_push",
            repo.image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push()),
        )
        .prop(
            "immutable_tags",
            repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        )
        .attr("name", name)
        .attr("uri", repo.repository_uri().unwrap_or_default())
        .attr("arn", repo.repository_arn().unwrap_or_default())
}

#[async_trait]
impl ResourceKind for Repository {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            in_place("keep"),
            in_place("scan_on_push"),
            in_place("immutable_tags"),
        ];
        A
    }

    /// A repeated CreateRepository meets the name taken
    /// (`RepositoryAlreadyExistsException`); the repository is adopted
    /// when its tags say it is this one.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let pages = cloud
            .ecr
            .describe_repositories()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "DescribeRepositories")?;
        let mut out = Vec::new();
        for page in pages {
            for repo in page.repositories() {
                let (Some(arn), Some(name)) = (repo.repository_arn(), repo.repository_name())
                else {
                    continue;
                };
                let Some(id) = owner(cloud, arn, stack).await? else {
                    continue;
                };
                let keep = match cloud
                    .ecr
                    .get_lifecycle_policy()
                    .repository_name(name)
                    .send()
                    .await
                {
                    Ok(p) => p.lifecycle_policy_text().and_then(kept_by),
                    Err(e) => {
                        let e = api_error(&id, "GetLifecyclePolicy", e);
                        if !e.is_not_found() {
                            return Err(e);
                        }
                        None
                    }
                };
                out.push(observed(&id, repo, keep));
            }
        }
        Ok(out)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let tags: Vec<Tag> = r
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<_, _>>()
            .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?;
        let made = cloud
            .ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(EncryptionType::Aes256)
                    .build()
                    .map_err(|e| CloudError::invalid(&r.id, e.to_string()))?,
            )
            .set_tags(Some(tags))
            .send()
            .await
            .ctx(&r.id, "CreateRepository");
        let repo = match made {
            Ok(out) => out.repository().cloned(),
            Err(e) if e.is_already_exists() => {
                let repo = describe(cloud, &r.id, name).await?;
                let arn = repo.repository_arn().unwrap_or_default();
                super::adopt_if_ours(
                    r,
                    "an image repository of that name",
                    owner(cloud, arn, &r.stack).await?,
                )?;
                Some(repo)
            }
            Err(e) => return Err(e),
        }
        .ok_or_else(|| CloudError::invalid(&r.id, "CreateRepository returned no repository"))?;
        put_lifecycle(cloud, r).await?;
        Ok(observed(&r.id, &repo, Some(r.i64("keep")?)))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        if changed.iter().any(|c| c == "keep") {
            put_lifecycle(cloud, r).await?;
        }
        if changed.iter().any(|c| c == "scan_on_push") {
            cloud
                .ecr
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .send()
                .await
                .ctx(&r.id, "PutImageScanningConfiguration")?;
        }
        if changed.iter().any(|c| c == "immutable_tags") {
            cloud
                .ecr
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::Immutable)
                .send()
                .await
                .ctx(&r.id, "PutImageTagMutability")?;
        }
        let repo = describe(cloud, &r.id, name).await?;
        let mut o = observed(&r.id, &repo, Some(r.i64("keep")?));
        o.physical_id = current.physical_id.clone();
        Ok(o)
    }

    /// The images go with the repository (`force`): each is rebuilt from
    /// its binary whenever it is wanted again.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        super::gone_ok(
            cloud
                .ecr
                .delete_repository()
                .repository_name(&current.physical_id)
                .force(true)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteRepository"),
        )
    }
}

async fn put_lifecycle(cloud: &Cloud, r: &Resolved) -> Result<(), CloudError> {
    let policy = lifecycle_policy(r.i64("keep")?);
    let req = cloud
        .ecr
        .put_lifecycle_policy()
        .repository_name(r.str("name")?)
        .lifecycle_policy_text(policy);
    // A repository just made may not be visible to the next call yet.
    cloud
        .settle(&r.id, "PutLifecyclePolicy", || req.clone().send())
        .await
        .map(|_| ())
}

async fn describe(
    cloud: &Cloud,
    id: &str,
    name: &str,
) -> Result<aws_sdk_ecr::types::Repository, CloudError> {
    let out = cloud
        .settle(id, "DescribeRepositories", || {
            cloud
                .ecr
                .describe_repositories()
                .repository_names(name)
                .send()
        })
        .await?;
    out.repositories()
        .first()
        .cloned()
        .ok_or_else(|| CloudError::invalid(id, format!("repository {name} is not there")))
}

/// The logical id the repository's tags give it, when `stack` owns it.
async fn owner(cloud: &Cloud, arn: &str, stack: &str) -> Result<Option<String>, CloudError> {
    match cloud
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
    {
        Ok(t) => Ok(super::owner_id(
            t.tags().iter().map(|t| (t.key(), t.value())),
            stack,
        )),
        Err(e) => {
            // Deleted between the list and this read.
            let e = api_error(KIND, "ListTagsForResource", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_policy_reads_back_as_the_count_it_keeps() {
        assert_eq!(kept_by(&lifecycle_policy(5)), Some(5));
        assert_eq!(kept_by(r#"{"rules":[]}"#), None);
        let tagged = lifecycle_policy(3).replace("\"any\"", "\"tagged\"");
        assert_eq!(kept_by(&tagged), None, "a policy that keeps other images");
    }
}
