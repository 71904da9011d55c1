//! `iam-policy STACK`: the least-privilege IAM policy a CI role needs to run
//! `diff` (read-only) or `up` and `destroy` on this stack. No API call.
//!
//! The document is meant as the role's inline policy. When it is longer
//! than a role's inline policies hold (a long stack name, a long region,
//! Fargate with a domain), `--out-dir DIR` writes it as customer managed
//! policies instead, each within their own limit, the statements unchanged.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
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
    /// Write the policy into DIR as `<diff|up>-policy-N.json` documents of
    /// at most 6,144 characters each (customer managed policies), one when
    /// it fits; print the AWS CLI commands that attach them.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
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
    if let Some(dir) = &a.out_dir {
        return write_parts(&doc, a, dir);
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    // A role's inline policies hold 10,240 characters, white space not
    // counted ("IAM and AWS STS quotas"): a longer stack name or region can
    // push the document past it, and IAM would refuse it.
    let size = iam_policy::size(&doc);
    if a.scope != For::Boundary && size > iam_policy::INLINE_POLICY_LIMIT {
        eprintln!(
            "warning: this policy has {size} characters, more than the {} a role's inline policies may hold: write it as customer managed policies with `--out-dir DIR` ({} parts)",
            iam_policy::INLINE_POLICY_LIMIT,
            iam_policy::split(&doc, iam_policy::MANAGED_POLICY_LIMIT).len()
        );
    }
    Ok(super::exit::OK)
}

/// The policy as customer managed policies in `dir`, and how to attach them.
fn write_parts(doc: &serde_json::Value, a: &IamPolicyArgs, dir: &std::path::Path) -> Result<u8> {
    let scope = match a.scope {
        For::Diff => "diff",
        For::Up => "up",
        For::Boundary => anyhow::bail!(
            "--out-dir is for the CI roles' policies; the boundary is one document `bootstrap` makes"
        ),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let parts = iam_policy::split(doc, iam_policy::MANAGED_POLICY_LIMIT);
    let stack = super::load(&a.stack)?.name.to_string();
    println!(
        "# {} customer managed policies for the {scope} role:",
        parts.len()
    );
    for (i, part) in parts.iter().enumerate() {
        let file = dir.join(format!("{scope}-policy-{}.json", i + 1));
        std::fs::write(&file, serde_json::to_string_pretty(part)? + "\n")
            .with_context(|| format!("writing {}", file.display()))?;
        let name = format!("bookstore-infra-{stack}-{scope}-{}", i + 1);
        println!(
            "aws iam create-policy --policy-name {name} --policy-document file://{}",
            file.display()
        );
        println!(
            "aws iam attach-role-policy --role-name ROLE --policy-arn arn:aws:iam::{}:policy/{name}",
            a.account.as_deref().unwrap_or("ACCOUNT")
        );
    }
    println!("# Made before? Update each with `aws iam create-policy-version --policy-arn ARN --policy-document file://FILE --set-as-default`, and detach and delete any part beyond the last here: an old part left attached keeps granting.");
    Ok(super::exit::OK)
}
