//! `iam-policy STACK`: the least-privilege IAM policy a CI role needs to run
//! `diff` (read-only) or `up` and `destroy` on this stack. No API call.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use bookstore_infra::iam_policy::{self, Scope};

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
pub enum For {
    /// `diff`, `outputs`, `validate`: reads only.
    Diff,
    /// `up` and `destroy`: everything they create, change and delete.
    Up,
    /// The permissions boundary of the stack's roles (`bootstrap` makes it).
    Boundary,
}

#[derive(Args)]
pub struct IamPolicyArgs {
    pub stack: PathBuf,
    /// Which runs the role is for.
    #[arg(long = "for", value_enum, default_value_t = For::Up)]
    pub scope: For,
    /// The account id to put in the ARNs (otherwise `*`).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
}

pub fn run(a: &IamPolicyArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    if let Some(id) = &a.account {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!("--account {id}: an AWS account id is 12 digits");
        }
    }
    let doc = match a.scope {
        For::Diff => iam_policy::policy(&s, a.account.as_deref(), Scope::Plan),
        For::Up => iam_policy::policy(&s, a.account.as_deref(), Scope::Apply),
        For::Boundary => iam_policy::boundary_document(&s, a.account.as_deref()),
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    // A role's inline policies hold 10,240 characters, white space not
    // counted ("IAM and AWS STS quotas"): a longer stack name or region can
    // push the document past it, and IAM would refuse it.
    let size = serde_json::to_string(&doc)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .count();
    if a.scope != For::Boundary && size > iam_policy::INLINE_POLICY_LIMIT {
        eprintln!(
            "warning: this policy has {size} characters, more than the {} a role's inline policies may hold: attach it as customer managed policies instead (split its statements in two)",
            iam_policy::INLINE_POLICY_LIMIT
        );
    }
    Ok(super::exit::OK)
}
