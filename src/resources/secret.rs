//! `secretsmanager:secret`: a password the stack owns, made by Secrets
//! Manager (`GetRandomPassword`) and stored in the secret at creation. The
//! tool never reads it back, prints it or keeps it: the plan compares the
//! secret's name and description, never its value. The instances read it
//! with their role (GetSecretValue on this secret only).
//!
//! `ListSecrets` filters by tag key and by tag value (each matching any
//! tag), and answers with the tags, so ownership is checked here.
//! Deletion is immediate (`ForceDeleteWithoutRecovery`): with a recovery
//! window the name would stay taken for days, and `up` after `destroy`
//! could not make it again.

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use super::gone_ok;
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt, PROPAGATION_WINDOW};
use crate::engine::calls::{r, w, Call};
use crate::engine::{
    in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind, TAG_STACK,
};

pub const KIND: &str = "secretsmanager:secret";

/// The secret holding the app's database password.
pub fn db_app_secret_name(stack: &str) -> String {
    format!("bookstore-infra/{stack}/db-app-password")
}

/// Length of the passwords made: letters and digits only (no quoting
/// anywhere it goes), 40 of them: about 238 bits.
pub const PASSWORD_LENGTH: i64 = 40;

pub struct Secret;

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("secretsmanager", "list_secrets", "ListSecrets", &["secretsmanager:ListSecrets"]),
    r("secretsmanager", "get_random_password", "GetRandomPassword", &["secretsmanager:GetRandomPassword"]),
    w("secretsmanager", "create_secret", "CreateSecret", &["secretsmanager:CreateSecret", "secretsmanager:TagResource"]),
    w("secretsmanager", "update_secret", "UpdateSecret", &["secretsmanager:UpdateSecret"]),
    w("secretsmanager", "delete_secret", "DeleteSecret", &["secretsmanager:DeleteSecret"]),
];

fn observed(id: &str, arn: &str, name: &str, description: &str) -> Observed {
    Observed::new(KIND, id, arn)
        .prop("name", name)
        .prop("description", description)
        .attr("arn", arn)
}

#[async_trait]
impl ResourceKind for Secret {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Names are unique: `ResourceExistsException`.
    fn on_repeat(&self) -> Repeat {
        Repeat::Refused
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[replace("name"), in_place("description")];
        A
    }

    // The instance role's policy naming the secret does not keep it.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let all = cloud
            .secretsmanager
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::TagKey)
                    .values(TAG_STACK)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::TagValue)
                    .values(stack)
                    .build(),
            )
            .into_paginator()
            .send()
            .try_collect()
            .await
            .ctx(KIND, "ListSecrets")?;
        Ok(all
            .iter()
            .flat_map(|page| page.secret_list())
            .filter(|s| s.deleted_date().is_none())
            .filter_map(|s| {
                let id = super::owner_id(
                    s.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))),
                    stack,
                )?;
                Some(observed(
                    &id,
                    s.arn()?,
                    s.name()?,
                    s.description().unwrap_or_default(),
                ))
            })
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        let description = r.str("description")?;
        let password = cloud
            .secretsmanager
            .get_random_password()
            .password_length(PASSWORD_LENGTH)
            .exclude_punctuation(true)
            .include_space(false)
            .require_each_included_type(true)
            .send()
            .await
            .ctx(&r.id, "GetRandomPassword")?
            .random_password
            .ok_or_else(|| CloudError::invalid(&r.id, "GetRandomPassword returned nothing"))?;
        let req = cloud
            .secretsmanager
            .create_secret()
            .name(name)
            .description(description)
            .secret_string(password)
            .set_tags(Some(
                r.tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ));
        // A secret of this name deleted moments before (a `destroy` then
        // an `up`) is refused until Secrets Manager has finished deleting
        // it, asynchronously even without a recovery window ("DeleteSecret",
        // Secrets Manager API reference).
        let start = tokio::time::Instant::now();
        let made = loop {
            match req.clone().send().await {
                Ok(o) => break o,
                Err(e) => {
                    let e = api_error(&r.id, "CreateSecret", e);
                    let deleting = e.code() == Some("InvalidRequestException")
                        && e.message()
                            .is_some_and(|m| m.contains("scheduled for deletion"));
                    if !deleting || start.elapsed() > PROPAGATION_WINDOW {
                        return Err(e);
                    }
                    cloud.status(&r.id, "the previous secret of this name is being deleted");
                    tokio::time::sleep(cloud.poll).await;
                }
            }
        };
        let arn = made
            .arn()
            .ok_or_else(|| CloudError::invalid(&r.id, "CreateSecret returned no ARN"))?;
        Ok(observed(&r.id, arn, name, description))
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        cloud
            .secretsmanager
            .update_secret()
            .secret_id(&current.physical_id)
            .description(r.str("description")?)
            .send()
            .await
            .ctx(&r.id, "UpdateSecret")?;
        Ok(current.clone().prop("description", r.str("description")?))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        let res = cloud
            .secretsmanager
            .delete_secret()
            .secret_id(&current.physical_id)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => gone_ok(Err(api_error(&current.id, "DeleteSecret", e))),
        }
    }
}
