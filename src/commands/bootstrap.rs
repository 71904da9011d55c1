//! `bootstrap STACK`: what an administrator makes once, before a CI role
//! runs the stack, and what the CI roles may never change: the permissions
//! boundary every role of the stack carries, and the run lock's bucket the
//! account's stacks share in the region.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use bookstore_infra::resources::boundary;

use super::Ctx;

#[derive(Args)]
pub struct BootstrapArgs {
    pub stack: PathBuf,
}

pub async fn run(ctx: &Ctx, a: &BootstrapArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, true).await;
    let (arn, changed) = boundary::ensure(&cloud, &s.name)
        .await
        .context("making the permissions boundary (this needs an administrator's credentials)")?;
    // The run lock's bucket, shared by the account's stacks in the region.
    let place = bookstore_infra::lock::place(&cloud, &s.name).await?;
    bookstore_infra::lock::ensure_bucket(&cloud, &place)
        .await
        .context("making the run lock's bucket")?;
    let account = cloud.account().await?;
    let file = a.stack.display();
    println!(
        "permissions boundary {arn}: {}",
        if changed { "made" } else { "already as wanted" }
    );
    println!("run lock bucket {}: ready", place.bucket);
    println!();
    println!("Next, once: give the CI roles their policies (as an administrator):");
    println!(
        "  bookstore-infra iam-policy {file} --for diff --account {account} > plan-policy.json"
    );
    let apply = bookstore_infra::iam_policy::policy(
        &s,
        Some(&account),
        bookstore_infra::iam_policy::Scope::Apply,
    );
    println!("  aws iam put-role-policy --role-name PLAN_ROLE --policy-name bookstore-infra --policy-document file://plan-policy.json");
    if bookstore_infra::iam_policy::size(&apply) > bookstore_infra::iam_policy::INLINE_POLICY_LIMIT
    {
        // More than a role's inline policies hold: managed policies.
        println!(
            "  bookstore-infra iam-policy {file} --for up --account {account} --out-dir apply-policy"
        );
        println!("  (then run the create-policy and attach-role-policy commands it prints, with ROLE the apply role)");
    } else {
        println!(
            "  bookstore-infra iam-policy {file} --for up --account {account} > apply-policy.json"
        );
        println!("  aws iam put-role-policy --role-name APPLY_ROLE --policy-name bookstore-infra --policy-document file://apply-policy.json");
    }
    println!(
        "The apply role creates the stack's roles only with this boundary, and cannot change it."
    );
    ctx.print_stats(&cloud);
    Ok(super::exit::OK)
}
