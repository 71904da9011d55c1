//! `status STACK`: how the deployed stack is doing now; exit code 7 when
//! it is not healthy (see [`bookstore_infra::status::judge`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use bookstore_infra::stack::Topology;
use bookstore_infra::terminal::{visible, Shown};
use bookstore_infra::{pipeline, status};

use super::Ctx;

#[derive(Args)]
pub struct StatusArgs {
    pub stack: PathBuf,
    /// Print the status as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also GET the app's health check (`/healthz`) through the load
    /// balancer; anything but 200 is unhealthy.
    #[arg(long)]
    pub probe: bool,
    /// The URL --probe requests instead of the stack's URL + `/healthz`
    /// (a name the stack's DNS does not resolve yet, a tunnel). Implies --probe.
    #[arg(long, value_name = "URL")]
    pub probe_url: Option<String>,
    /// How long the probe waits for an answer.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub probe_timeout: u64,
}

pub async fn run(ctx: &Ctx, a: &StatusArgs) -> Result<u8> {
    let s = super::load(&a.stack)?;
    let cloud = ctx.connect(&s, true).await;
    let now = pipeline::current(&cloud, &s).await?;
    let mut st = status::gather(&cloud, &s.name, &now.observed, &now.outputs).await?;
    if a.probe || a.probe_url.is_some() {
        let url = match &a.probe_url {
            Some(u) => u.clone(),
            None => status::probe_url(st.url.as_deref().context(
                "--probe: the stack has no URL (no load balancer yet); pass --probe-url",
            )?),
        };
        st.probe = Some(status::probe(&url, Duration::from_secs(a.probe_timeout)).await);
    }
    match &s.single {
        Some(one) => {
            st.single = Some(status::single::gather(&cloud, &s.name, &now.observed).await?);
            status::judge_single(&mut st, s.domain.is_some(), one.mysql);
        }
        None if s.app.runtime == bookstore_infra::stack::Runtime::Fargate => {
            st.fargate = Some(status::fargate::gather(&cloud, &s.name).await?);
            status::judge_fargate(&mut st, s.domain.is_some());
        }
        None => status::judge(&mut st, s.topology == Topology::Full, s.domain.is_some()),
    }
    if a.json {
        // Reasons and descriptions come from the cloud: JSON's encoder
        // leaves DEL, C1 and bidirectional controls raw in strings.
        let json = serde_json::to_string_pretty(&st)?;
        println!("{}", visible(&json, Shown::Json));
    } else {
        print!("{}", status::text(&st));
    }
    ctx.print_stats(&cloud);
    Ok(if st.healthy {
        super::exit::OK
    } else {
        super::exit::UNHEALTHY
    })
}
