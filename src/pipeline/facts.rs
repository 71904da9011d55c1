//! The facts a plan needs besides the stack file and what exists: the
//! app binary and its hash, the zones, the account, the AMI, the hosted
//! zone, the releases kept.

use std::path::PathBuf;

use crate::cloud::{Cloud, CloudError, SdkResultExt};

use sha2::{Digest, Sha256};

use crate::stack::{Stack, Topology};
use crate::topology::{AppFacts, Facts};

/// Where `up` takes the app binary from when the stack does not say.
pub const DEFAULT_BINARY: &str = "target/x86_64-unknown-linux-gnu/release/bookstore";
/// The public parameter naming the latest Amazon Linux 2023 AMI.
pub const AL2023_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// The app binary to ship and its sha256, read locally before any API call.
/// `None` when the stack deploys no instances.
pub fn binary(stack: &Stack) -> Result<Option<(PathBuf, String)>, CloudError> {
    if stack.topology != Topology::Full {
        return Ok(None);
    }
    let path = match &stack.app.binary {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => stack.dir.join(p),
        None => PathBuf::from(DEFAULT_BINARY),
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        CloudError::invalid(
            "app.binary",
            format!(
                "cannot read {}: {e}. Build it with `scripts/build-app`, or set `binary` under [app]",
                path.display()
            ),
        )
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok(Some((path, sha)))
}

/// Zone names and, for the full topology, the account, AMI and hosted zone.
pub async fn facts(
    cloud: &Cloud,
    stack: &Stack,
    binary: Option<(PathBuf, String)>,
) -> Result<Facts, CloudError> {
    let (zones, app) = tokio::try_join!(zones(cloud, stack), async {
        match binary {
            Some((binary, sha256)) => app_facts(cloud, stack, binary, sha256).await.map(Some),
            None => Ok(None),
        }
    })?;
    Ok(Facts { zones, app })
}

async fn app_facts(
    cloud: &Cloud,
    stack: &Stack,
    binary: PathBuf,
    sha256: String,
) -> Result<AppFacts, CloudError> {
    let account = cloud.account();
    let ami_id = async {
        if let Some(a) = &stack.app.ami {
            return Ok(a.clone());
        }
        let p = cloud
            .ssm
            .get_parameter()
            .name(AL2023_PARAMETER)
            .send()
            .await
            .ctx("ami", "GetParameter")?;
        p.parameter()
            .and_then(|p| p.value())
            .map(str::to_string)
            .ok_or_else(|| CloudError::invalid("ami", format!("{AL2023_PARAMETER} has no value")))
    };
    let fargate = stack.app.runtime == crate::stack::Runtime::Fargate;
    // The launch template encrypts the AMI's root volume: its device name.
    // Fargate tasks boot no AMI.
    let ami = async {
        if fargate {
            return Ok((String::new(), String::new(), 0));
        }
        let id = ami_id.await?;
        let (device, gib) = crate::resources::launch_template::root_device(cloud, &id).await?;
        Ok::<_, CloudError>((id, device, gib))
    };
    let zone = async {
        let Some(zone) = stack
            .domain
            .as_ref()
            .and_then(|d| d.hosted_zone.as_ref().map(|z| z.to_string()))
        else {
            return Ok(None);
        };
        let want = format!("{}.", zone.trim_end_matches('.'));
        // Zones come sorted by name from `DNSName`, 100 a page; a private
        // zone of the same name may fill the first page, so pages are followed
        // (NextDNSName / NextHostedZoneId, no SDK paginator) while the next
        // page still starts at the wanted name.
        let list = crate::resources::all_pages(|start: Option<(String, Option<String>)>| {
            let (name, id) = start.unwrap_or((zone.clone(), None));
            let want = want.as_str();
            async move {
                let page = cloud
                    .route53
                    .list_hosted_zones_by_name()
                    .dns_name(name)
                    .set_hosted_zone_id(id)
                    .send()
                    .await
                    .ctx("hosted-zone", "ListHostedZonesByName")?;
                let next = match page.next_dns_name() {
                    Some(n) if page.is_truncated() && n == want => Some((
                        n.to_string(),
                        page.next_hosted_zone_id().map(str::to_string),
                    )),
                    _ => None,
                };
                Ok((page.hosted_zones().to_vec(), next))
            }
        })
        .await?;
        let found = list
            .iter()
            .filter(|z| z.name() == want && !z.config().is_some_and(|c| c.private_zone()))
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .next();
        found.map(Some).ok_or_else(|| {
            CloudError::invalid(
                "hosted-zone",
                format!("no public Route 53 hosted zone named {zone} in this account"),
            )
        })
    };
    // The releases so far decide which earlier binaries (or, on Fargate,
    // images) stay for `rollback`, and whether one holds the app.
    let kept = async {
        let keep = stack.app.keep_releases;
        if fargate {
            let listing = crate::releases::list_fargate(cloud, &stack.name).await?;
            return Ok::<_, CloudError>((
                Vec::new(),
                crate::releases::pinned(&listing, &sha256),
                crate::releases::kept_images(&listing, keep),
            ));
        }
        let listing = crate::releases::list(cloud, &stack.name).await?;
        Ok((
            crate::releases::kept_artifacts(&listing, &sha256, keep),
            crate::releases::pinned(&listing, &sha256),
            Vec::new(),
        ))
    };
    // Fargate: the image the binary makes (its digest names it in the
    // plan).
    let image = async {
        if !fargate {
            return Ok(None);
        }
        let b = binary.clone();
        let built = tokio::task::spawn_blocking(move || crate::image::build(&b))
            .await
            .map_err(|e| CloudError::invalid("app.binary", format!("building the image: {e}")))?
            .map_err(|e| CloudError::invalid("app.binary", e.to_string()))?;
        Ok::<_, CloudError>(Some(built.digest().to_string()))
    };
    let (account, (ami, root_device, root_volume_gib), hosted_zone_id, kept, image) =
        tokio::try_join!(account, ami, zone, kept, image)?;
    Ok(AppFacts {
        region: cloud.region.clone(),
        account,
        ami,
        root_device,
        root_volume_gib,
        binary,
        commit: crate::releases::git_commit(&stack.dir),
        sha256,
        kept: kept.0,
        pinned: kept.1,
        hosted_zone_id,
        image,
        kept_images: kept.2,
    })
}

/// Zone names: the stack's own, or the first ones the region offers.
async fn zones(cloud: &Cloud, stack: &Stack) -> Result<Vec<String>, CloudError> {
    if let Some(z) = &stack.network.zones {
        return Ok(z.clone());
    }
    let out = cloud
        .ec2
        .describe_availability_zones()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("available")
                .build(),
        )
        .send()
        .await
        .ctx("zones", "DescribeAvailabilityZones")?;
    let mut zones: Vec<String> = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    zones.sort();
    if zones.len() < stack.network.az_count {
        return Err(CloudError::invalid(
            "zones",
            format!(
                "region {} offers {} zones, the stack wants {}",
                cloud.region,
                zones.len(),
                stack.network.az_count
            ),
        ));
    }
    zones.truncate(stack.network.az_count);
    Ok(zones)
}
