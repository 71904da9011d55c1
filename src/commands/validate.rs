//! `validate STACK`: checks the stack file, and every name and value it
//! composes, without calling AWS.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct ValidateArgs {
    pub stack: PathBuf,
}

pub fn run(a: &ValidateArgs) -> Result<u8> {
    let s = super::load_checked(&a.stack)?;
    println!(
        "{}: valid. Stack `{}`: {} zones, VPC {}, NAT {:?}, app port {}.",
        a.stack.display(),
        s.name,
        s.network.az_count,
        s.network.cidr,
        s.network.nat,
        s.app.port
    );
    Ok(super::exit::OK)
}
