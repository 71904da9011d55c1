//! `ec2:launch-template`: what an app instance boots. Any change creates a
//! new version (made the default); the group then rolls onto it.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    DeviceType, InstanceType, LaunchTemplate as Template, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplateVersion,
    RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData, VolumeType,
};
use aws_smithy_types::base64;
use serde_json::{json, Value};

use super::attrs::strings;
use super::autoscaling_group::{self, GroupState};
use super::{gone_ok, logical_id, stack_filter, tag_spec};
use crate::cloud::{Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};
use crate::userdata::{self, UserDataVars};

pub const KIND: &str = "ec2:launch-template";

pub struct LaunchTemplate;

const DIFFED: &[&str] = &[
    "image_id",
    "instance_type",
    "security_group_ids",
    "public_ip",
    "instance_profile_arn",
    "user_data",
    "http_tokens",
    "block_device_mappings",
];

/// One block device mapping of a launch template, as the stack asks for
/// it and as it is read back (`null` where the version leaves it unset).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct Mapping {
    device_name: String,
    volume_size: Option<i32>,
    encrypted: Option<bool>,
    volume_type: Option<String>,
    delete_on_termination: Option<bool>,
}

/// The mappings a version is to carry: the root volume, encrypted (with
/// the account's default EBS key), gp3, deleted with its instance.
fn mappings(r: &Resolved) -> Result<Vec<LaunchTemplateBlockDeviceMappingRequest>, CloudError> {
    let Some(v) = r.props.get("block_device_mappings") else {
        return Ok(Vec::new());
    };
    let want: Vec<Mapping> = serde_json::from_value(v.clone())
        .map_err(|e| CloudError::invalid(&r.id, format!("block_device_mappings: {e}")))?;
    Ok(want
        .into_iter()
        .map(|m| {
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(m.device_name)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .set_volume_size(m.volume_size)
                        .set_encrypted(m.encrypted)
                        .set_volume_type(m.volume_type.map(|t| VolumeType::from(t.as_str())))
                        .set_delete_on_termination(m.delete_on_termination)
                        .build(),
                )
                .build()
        })
        .collect())
}

/// A version's block device mappings, read back.
fn mappings_of(d: Option<&ResponseLaunchTemplateData>) -> Value {
    let mut v: Vec<Mapping> = d
        .map(|d| d.block_device_mappings())
        .unwrap_or_default()
        .iter()
        .map(|m| Mapping {
            device_name: m.device_name().unwrap_or_default().to_string(),
            volume_size: m.ebs().and_then(|e| e.volume_size()),
            encrypted: m.ebs().and_then(|e| e.encrypted()),
            volume_type: m
                .ebs()
                .and_then(|e| e.volume_type())
                .map(|t| t.as_str().to_string()),
            delete_on_termination: m.ebs().and_then(|e| e.delete_on_termination()),
        })
        .collect();
    v.sort_by(|a, b| a.device_name.cmp(&b.device_name));
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The root device name of AMI `ami` (`/dev/xvda` for Amazon Linux 2023,
/// `/dev/sda1` for others) and its size in GiB: the launch template's root
/// volume mapping must name the device, or it adds a second volume and
/// leaves the root one as the AMI has it; the size is the AMI's (a mapping
/// without one takes the snapshot's, which some EC2 implementations
/// refuse). An AMI whose root device is not EBS cannot have it encrypted.
pub async fn root_device(cloud: &Cloud, ami: &str) -> Result<(String, i32), CloudError> {
    let got = cloud
        .ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .ctx("ami", "DescribeImages")?;
    let image = got.images().first().ok_or_else(|| {
        CloudError::invalid(
            "ami",
            format!("AMI {ami} is not available in {}", cloud.region),
        )
    })?;
    if image.root_device_type() != Some(&DeviceType::Ebs) {
        return Err(CloudError::invalid(
            "ami",
            format!("AMI {ami} has no EBS root volume, which the stack encrypts"),
        ));
    }
    let device = image
        .root_device_name()
        .ok_or_else(|| CloudError::invalid("ami", format!("AMI {ami} names no root device")))?;
    let size = image
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(device))
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_size())
        .ok_or_else(|| {
            CloudError::invalid("ami", format!("AMI {ami} gives no size for {device}"))
        })?;
    Ok((device.to_string(), size))
}

fn data(r: &Resolved) -> Result<RequestLaunchTemplateData, CloudError> {
    let ud = r
        .props
        .get("user_data")
        .ok_or_else(|| CloudError::invalid(&r.id, "property `user_data` missing"))?;
    let vars: UserDataVars = serde_json::from_value(ud["vars"].clone())
        .map_err(|e| CloudError::invalid(&r.id, format!("user data settings: {e}")))?;
    let script = userdata::render(&vars).map_err(|e| CloudError::invalid(&r.id, e.to_string()))?;
    let sgs = strings(&r.props["security_group_ids"]);
    // An instance with a public address from launch names its groups on
    // its network interface (EC2 refuses both places at once).
    let (sgs, interfaces) = if r.bool("public_ip") {
        let nic = LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
            .device_index(0)
            .associate_public_ip_address(true)
            .delete_on_termination(true)
            .set_groups(Some(sgs))
            .build();
        (None, Some(vec![nic]))
    } else {
        (Some(sgs), None)
    };
    Ok(RequestLaunchTemplateData::builder()
        .image_id(r.str("image_id")?)
        .instance_type(InstanceType::from(r.str("instance_type")?))
        .set_security_group_ids(sgs)
        .set_network_interfaces(interfaces)
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(r.str("instance_profile_arn")?)
                .build(),
        )
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_tokens(LaunchTemplateHttpTokensState::from(r.str("http_tokens")?))
                .http_put_response_hop_limit(2)
                .build(),
        )
        .user_data(base64::encode(script.as_bytes()))
        .set_block_device_mappings(Some(mappings(r)?))
        .build())
}

/// The release this version is (see [`crate::releases`]): the binary's
/// sha256 from the user data, the commit from the `release` property.
fn release_description(r: &Resolved) -> String {
    let sha = r.props["user_data"]["vars"]["sha256"]
        .as_str()
        .unwrap_or_default();
    let commit = r.props.get("release").and_then(|x| x["commit"].as_str());
    description(sha, commit)
}

/// The version description of a release (at most 255 characters,
/// CreateLaunchTemplateVersion `VersionDescription`): `release
/// sha256=<binary sha256> commit=<git commit or ->`.
pub fn description(sha256: &str, commit: Option<&str>) -> String {
    let mut d = format!("release sha256={sha256} commit={}", commit.unwrap_or("-"));
    d.truncate(255);
    d
}

/// (sha256, commit) from a description [`description`] wrote.
pub fn parse_description(d: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = d.strip_prefix("release ") else {
        return (None, None);
    };
    let mut sha = None;
    let mut commit = None;
    for w in rest.split_whitespace() {
        match w.split_once('=') {
            Some(("sha256", v)) if !v.is_empty() => sha = Some(v.to_string()),
            Some(("commit", v)) if !v.is_empty() && v != "-" => commit = Some(v.to_string()),
            _ => {}
        }
    }
    (sha, commit)
}

/// The stack's launch templates, each with its logical id: those
/// DescribeLaunchTemplates lists by the stack's tag (every page) whose tags
/// name the stack and an id. `ctx` names the reader in errors. The one
/// reading of the stack's templates, for the plan and for the releases.
pub(crate) async fn stack_templates(
    cloud: &Cloud,
    ctx: &str,
    stack: &str,
) -> Result<Vec<(String, Template)>, CloudError> {
    let templates = cloud
        .ec2
        .describe_launch_templates()
        .filters(stack_filter(stack))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(ctx, "DescribeLaunchTemplates")?;
    Ok(templates
        .into_iter()
        .filter_map(|t| {
            t.launch_template_id()?;
            Some((logical_id(t.tags(), stack)?, t))
        })
        .collect())
}

/// The versions of template `lt`: `only` that one, or every version. A
/// paged answer may hold even a single version on a later page: every page.
pub(crate) async fn versions(
    cloud: &Cloud,
    ctx: &str,
    lt: &str,
    only: Option<i64>,
) -> Result<Vec<LaunchTemplateVersion>, CloudError> {
    cloud
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(lt)
        .set_versions(only.map(|v| vec![v.to_string()]))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx(ctx, "DescribeLaunchTemplateVersions")
}

/// A version's user data read back: the template digest and the settings
/// (None when it is not user data this tool wrote).
pub(crate) fn user_data_of(d: &ResponseLaunchTemplateData) -> Option<(String, UserDataVars)> {
    d.user_data()
        .and_then(|b| base64::decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| userdata::read_back(&s))
}

/// The versions `up` deletes: those beyond the newest `keep` (`versions`
/// is newest first, each with whether it is the default), except the
/// default one and those `in_use` by the group.
pub fn prunable(
    versions: impl IntoIterator<Item = (i64, bool)>,
    keep: u32,
    in_use: &[Option<i64>],
) -> Vec<i64> {
    versions
        .into_iter()
        .skip(keep as usize)
        .filter(|(v, default)| !default && !in_use.contains(&Some(*v)))
        .map(|(v, _)| v)
        .collect()
}

/// Deletes the stack's launch template versions beyond the newest `keep`
/// releases ([`prunable`]; DeleteLaunchTemplateVersions: up to 200 a call;
/// "You can't delete the default version of a launch template", EC2 API
/// reference). Returns the versions deleted.
pub async fn prune_versions(cloud: &Cloud, stack: &str, keep: u32) -> Result<Vec<i64>, CloudError> {
    const ID: &str = "releases";
    let templates = stack_templates(cloud, ID, stack).await?;
    let group = autoscaling_group::group_state(cloud, ID, stack).await?;
    let Some((_, t)) = templates.first() else {
        return Ok(Vec::new());
    };
    let lt = t.launch_template_id().unwrap_or_default();
    let default = t.default_version_number();
    let mut numbers: Vec<i64> = versions(cloud, ID, lt, None)
        .await?
        .iter()
        .filter_map(|v| v.version_number())
        .collect();
    numbers.sort_by_key(|n| std::cmp::Reverse(*n));
    let in_use = group
        .as_ref()
        .map(GroupState::versions_in_use)
        .unwrap_or_default();
    let gone = prunable(
        numbers.iter().map(|n| (*n, default == Some(*n))),
        keep,
        &in_use,
    );
    for chunk in gone.chunks(200) {
        cloud
            .ec2
            .delete_launch_template_versions()
            .launch_template_id(lt)
            .set_versions(Some(chunk.iter().map(|v| v.to_string()).collect()))
            .send()
            .await
            .ctx(KIND, "DeleteLaunchTemplateVersions")?;
    }
    Ok(gone)
}

fn observed(r: &Resolved, id: &str, name: &str, version: i64) -> Observed {
    let mut o = Observed::new(KIND, &r.id, id)
        .attr("latest_version", version.to_string())
        .attr("name", name)
        .prop("name", name);
    for k in DIFFED {
        if let Some(v) = r.props.get(*k) {
            o.props.insert(k.to_string(), v.clone());
        }
    }
    o
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("ec2", "describe_launch_template_versions", "DescribeLaunchTemplateVersions", &["ec2:DescribeLaunchTemplateVersions"]),
    r("ec2", "describe_launch_templates", "DescribeLaunchTemplates", &["ec2:DescribeLaunchTemplates"]),
    // The AMI's root device, looked up with the plan's facts.
    r("ec2", "describe_images", "DescribeImages", &["ec2:DescribeImages"]),
    w("ec2", "create_launch_template", "CreateLaunchTemplate", &["ec2:CreateLaunchTemplate", "ec2:CreateTags"]),
    w("ec2", "create_launch_template_version", "CreateLaunchTemplateVersion", &["ec2:CreateLaunchTemplateVersion"]),
    w("ec2", "delete_launch_template", "DeleteLaunchTemplate", &["ec2:DeleteLaunchTemplate"]),
    w("ec2", "delete_launch_template_versions", "DeleteLaunchTemplateVersions", &["ec2:DeleteLaunchTemplateVersions"]),
    w("ec2", "modify_launch_template", "ModifyLaunchTemplate", &["ec2:ModifyLaunchTemplate"]),
];

#[async_trait]
impl ResourceKind for LaunchTemplate {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateLaunchTemplate carries a client token (and names are unique).
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("name"),
            in_place("image_id"),
            in_place("instance_type"),
            in_place("security_group_ids"),
            in_place("public_ip"),
            in_place("instance_profile_arn"),
            in_place("user_data"),
            in_place("http_tokens"),
            in_place("block_device_mappings"),
        ];
        A
    }

    // A template naming a group or profile does not keep either from being deleted.
    fn reference_blocks_deletion(&self, _: &str) -> bool {
        false
    }

    fn attrs_changed_by_update(&self) -> &'static [&'static str] {
        &["latest_version"]
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let mut res = Vec::new();
        for (id, t) in &stack_templates(cloud, KIND, stack).await? {
            let lt = t.launch_template_id().unwrap_or_default();
            let latest = t.latest_version_number().unwrap_or(1);
            // The template list does not carry version data: one read per template.
            let read = versions(cloud, id, lt, Some(latest)).await?;
            let d = read.first().and_then(|v| v.launch_template_data());
            let user_data = d
                .and_then(user_data_of)
                .map(|(template, vars)| json!({"template": template, "vars": vars}))
                .unwrap_or(Value::Null);
            let name = t.launch_template_name().unwrap_or_default();
            let nic = d.and_then(|d| d.network_interfaces().first());
            let mut sgs: Vec<&str> = d
                .map(|d| d.security_group_ids().iter().map(String::as_str).collect())
                .unwrap_or_default();
            if let Some(n) = nic {
                sgs.extend(n.groups().iter().map(String::as_str));
            }
            sgs.sort();
            res.push(
                Observed::new(KIND, id, lt)
                    .prop("name", name)
                    .prop("image_id", d.and_then(|d| d.image_id()).unwrap_or_default())
                    .prop(
                        "instance_type",
                        d.and_then(|d| d.instance_type())
                            .map(|t| t.as_str())
                            .unwrap_or_default(),
                    )
                    .prop("security_group_ids", json!(sgs))
                    .prop(
                        "public_ip",
                        nic.and_then(|n| n.associate_public_ip_address())
                            .unwrap_or(false),
                    )
                    .prop(
                        "instance_profile_arn",
                        d.and_then(|d| d.iam_instance_profile())
                            .and_then(|p| p.arn())
                            .unwrap_or_default(),
                    )
                    .prop("user_data", user_data)
                    .prop(
                        "http_tokens",
                        d.and_then(|d| d.metadata_options())
                            .and_then(|m| m.http_tokens())
                            .map(|t| t.as_str())
                            .unwrap_or_default(),
                    )
                    .prop("block_device_mappings", mappings_of(d))
                    .attr("latest_version", latest.to_string())
                    .attr("name", name),
            );
        }
        Ok(res)
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        let name = r.str("name")?;
        // The instance profile and security groups it names may have been
        // created moments before; the client token makes a repeat safe.
        let req = cloud
            .ec2
            .create_launch_template()
            .launch_template_name(name)
            .client_token(&r.token)
            .version_description(release_description(r))
            .launch_template_data(data(r)?)
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &r.tags));
        let res = cloud
            .settle(&r.id, "CreateLaunchTemplate", || req.clone().send())
            .await;
        match res {
            Ok(o) => {
                let t = o.launch_template().ok_or_else(|| {
                    CloudError::invalid(&r.id, "CreateLaunchTemplate returned nothing")
                })?;
                Ok(observed(
                    r,
                    t.launch_template_id().unwrap_or_default(),
                    name,
                    t.latest_version_number().unwrap_or(1),
                ))
            }
            Err(e) => Err(e),
        }
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        let lt = &current.physical_id;
        let req = cloud
            .ec2
            .create_launch_template_version()
            .launch_template_id(lt)
            .version_description(release_description(r))
            .launch_template_data(data(r)?);
        let v = cloud
            .settle(&r.id, "CreateLaunchTemplateVersion", || req.clone().send())
            .await?;
        let n = v
            .launch_template_version()
            .and_then(|v| v.version_number())
            .ok_or_else(|| {
                CloudError::invalid(&r.id, "CreateLaunchTemplateVersion returned no version")
            })?;
        cloud
            .ec2
            .modify_launch_template()
            .launch_template_id(lt)
            .default_version(n.to_string())
            .send()
            .await
            .ctx(&r.id, "ModifyLaunchTemplate")?;
        // Versions beyond `[app] keep_releases` go; a failure to prune
        // leaves old versions, never a broken rollout.
        let keep = r
            .props
            .get("release")
            .and_then(|x| x["keep"].as_u64())
            .unwrap_or(5) as u32;
        match prune_versions(cloud, &r.stack, keep).await {
            Ok(gone) if !gone.is_empty() => cloud.reporter.note(&format!(
                "{}: deleted launch template versions {gone:?} (beyond the newest {keep} releases)",
                r.id
            )),
            Ok(_) => {}
            Err(e) => cloud.reporter.note(&format!(
                "{}: old launch template versions not pruned: {e}",
                r.id
            )),
        }
        let name = current.attrs.get("name").cloned().unwrap_or_default();
        Ok(observed(r, lt, &name, n))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        gone_ok(
            cloud
                .ec2
                .delete_launch_template()
                .launch_template_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .ctx(&current.id, "DeleteLaunchTemplate"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_read_back_and_fit() {
        let d = description(&"a".repeat(64), Some(&"c".repeat(40)));
        assert!(d.len() <= 255);
        assert_eq!(
            parse_description(&d),
            (Some("a".repeat(64)), Some("c".repeat(40)))
        );
        assert_eq!(
            parse_description(&description("ab", None)),
            (Some("ab".into()), None)
        );
        assert_eq!(parse_description("made by hand"), (None, None));
        assert!(description(&"a".repeat(300), None).len() == 255);
    }
}
