//! Resource kinds: the only code that calls the provider's API.
//! One module per kind; [`registry`] lists them all.

mod attrs;
pub mod autoscaling_group;
pub mod boundary;
pub mod certificate;
pub mod db_instance;
pub mod db_parameter_group;
pub mod db_subnet_group;
pub mod dlm_policy;
pub mod dns_alias;
pub mod ecr;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod ecs_task_definition;
pub mod efs_access_point;
pub mod efs_file_system;
pub mod efs_policy;
pub mod elastic_ip;
pub mod iam;
pub mod internet_gateway;
pub mod launch_template;
pub mod listener;
pub mod load_balancer;
pub mod log_group;
pub mod nat_gateway;
pub mod policy;
pub mod route_table;
pub mod s3;
pub mod secret;
pub mod security_group;
pub mod service_scaling;
pub mod subnet;
pub mod target_group;
pub mod volume;
pub mod vpc;
pub mod vpc_endpoint;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::cloud::{Cloud, CloudError};
use crate::engine::{Registry, TAG_ID, TAG_STACK};

/// Every kind this tool manages, roughly in dependency order.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Box::new(vpc::Vpc));
    r.register(Box::new(internet_gateway::InternetGateway));
    r.register(Box::new(subnet::Subnet));
    r.register(Box::new(elastic_ip::ElasticIp));
    r.register(Box::new(nat_gateway::NatGateway));
    r.register(Box::new(volume::Volume));
    r.register(Box::new(route_table::RouteTable));
    r.register(Box::new(security_group::SecurityGroup));
    r.register(Box::new(vpc_endpoint::VpcEndpoint));
    r.register(Box::new(db_subnet_group::DbSubnetGroup));
    r.register(Box::new(db_parameter_group::DbParameterGroup));
    r.register(Box::new(db_instance::Database));
    r.register(Box::new(secret::Secret));
    r.register(Box::new(efs_file_system::FileSystem));
    r.register(Box::new(efs_access_point::AccessPoint));
    r.register(Box::new(certificate::Certificate));
    r.register(Box::new(target_group::TargetGroup));
    r.register(Box::new(load_balancer::LoadBalancer));
    r.register(Box::new(listener::Listener));
    r.register(Box::new(dns_alias::DnsAlias));
    r.register(Box::new(boundary::Boundary));
    r.register(Box::new(iam::Role));
    r.register(Box::new(iam::InstanceProfile));
    r.register(Box::new(dlm_policy::LifecyclePolicy));
    r.register(Box::new(efs_policy::FileSystemPolicy));
    r.register(Box::new(s3::Bucket));
    r.register(Box::new(s3::Artifact));
    r.register(Box::new(log_group::LogGroup));
    r.register(Box::new(ecr::Repository));
    r.register(Box::new(ecr::Image));
    r.register(Box::new(ecs_cluster::Cluster));
    r.register(Box::new(ecs_task_definition::TaskDefinitionKind));
    r.register(Box::new(ecs_service::EcsService));
    r.register(Box::new(service_scaling::ServiceScaling));
    r.register(Box::new(launch_template::LaunchTemplate));
    r.register(Box::new(autoscaling_group::AutoScalingGroup));
    r
}

/// The EC2 filter selecting what a stack owns.
pub(crate) fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{TAG_STACK}"))
        .values(stack)
        .build()
}

/// EC2 tags to apply at creation, so a resource is never untagged, even for a moment.
pub(crate) fn tag_spec(rt: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// The logical id in a resource's EC2 tags, when they name `stack` as its
/// owner. The reads ask EC2 for the stack's tag ([`stack_filter`]), and
/// check it again here: a server that ignores a filter (the emulator does,
/// for NAT gateways) must not make another stack's resource ours.
pub(crate) fn logical_id(tags: &[Tag], stack: &str) -> Option<String> {
    owner_id(
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
        stack,
    )
}

/// The answer to a create that met an existing resource of the same name
/// (an interrupted run made it, the SDK's retry of this very create met
/// the first attempt's work, or someone else made it): `Ok` when its tags
/// (`owner`, see [`owner_id`]) say it is this resource of this stack, to be
/// adopted; otherwise a refusal naming `what` exists.
pub(crate) fn adopt_if_ours(
    r: &crate::engine::Resolved,
    what: &str,
    owner: Option<String>,
) -> Result<(), CloudError> {
    if owner.as_deref() == Some(r.id.as_str()) {
        return Ok(());
    }
    Err(CloudError::invalid(
        &r.id,
        format!("{what} exists and stack {} does not own it", r.stack),
    ))
}

/// The logical id in a resource's tags, when the tags name `stack` as its
/// owner: for the APIs that cannot filter by tag server-side (RDS, EFS,
/// ELBv2, IAM, ACM, S3), so another stack's resource, or an untagged one,
/// is skipped here and never touched.
pub(crate) fn owner_id<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    stack: &str,
) -> Option<String> {
    let (mut owner, mut id) = (None, None);
    for (k, v) in tags {
        match k {
            TAG_STACK => owner = Some(v),
            TAG_ID => id = Some(v),
            _ => {}
        }
    }
    (owner == Some(stack))
        .then_some(id)
        .flatten()
        .map(str::to_string)
}

/// Collects every page of a list call the SDK has no paginator for (Route 53's
/// `ListResourceRecordSets`, `ListHostedZonesByName`). `fetch` reads the page
/// starting at a token (`None`: the first) and returns its items and the next
/// token, `None` on the last page. A token answered twice in a row ends the
/// walk, as the SDK's own paginators do, rather than loop forever.
pub(crate) async fn all_pages<K, T, F, Fut>(mut fetch: F) -> Result<Vec<T>, CloudError>
where
    K: PartialEq + Clone,
    F: FnMut(Option<K>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<K>), CloudError>>,
{
    let mut out = Vec::new();
    let mut token: Option<K> = None;
    loop {
        let (items, next) = fetch(token.clone()).await?;
        out.extend(items);
        match next {
            Some(n) if token.as_ref() != Some(&n) => token = Some(n),
            _ => return Ok(out),
        }
    }
}

/// How long a Route 53 change may take to reach every name server of its
/// zone (Terraform's `aws_route53_record` waits up to 30 minutes).
const DNS_SYNC_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Waits until a Route 53 change has taken effect: ChangeResourceRecordSets
/// answers `PENDING`, and GetChange answers `INSYNC` once the change "has
/// propagated to all Amazon Route 53 DNS servers" (Route 53 API reference,
/// GetChange). Until then a record just written may not resolve, and a
/// certificate validated by it is not issued.
pub(crate) async fn dns_in_sync(
    cloud: &Cloud,
    id: &str,
    info: Option<&aws_sdk_route53::types::ChangeInfo>,
) -> Result<(), CloudError> {
    use crate::cloud::SdkResultExt;
    use aws_sdk_route53::types::ChangeStatus;
    let Some(info) = info else {
        return Ok(());
    };
    if info.status() == &ChangeStatus::Insync {
        return Ok(());
    }
    let change = info.id().to_string();
    cloud
        .wait_until(id, "the DNS change in sync", DNS_SYNC_LIMIT, || async {
            let c = cloud
                .route53
                .get_change()
                .id(&change)
                .send()
                .await
                .ctx(id, "GetChange")?;
            let status = c.change_info().map(|i| i.status().clone());
            Ok(match status {
                Some(ChangeStatus::Insync) => (Some(()), "INSYNC".to_string()),
                s => (None, s.map(|s| s.as_str().to_string()).unwrap_or_default()),
            })
        })
        .await
}

/// Every record set of a hosted zone. `ListResourceRecordSets` has no SDK
/// paginator: a truncated answer names where the next page starts, by
/// `NextRecordName`, `NextRecordType` and, for records sharing name and type
/// (weighted, latency...), `NextRecordIdentifier` (Route 53 API reference,
/// ListResourceRecordSets: up to 300 sets a page).
pub(crate) async fn record_sets(
    cloud: &Cloud,
    id: &str,
    zone: &str,
) -> Result<Vec<aws_sdk_route53::types::ResourceRecordSet>, CloudError> {
    use crate::cloud::SdkResultExt;
    type Start = (String, aws_sdk_route53::types::RrType, Option<String>);
    all_pages(|start: Option<Start>| async move {
        let mut req = cloud
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone);
        if let Some((name, ty, ident)) = start {
            req = req
                .start_record_name(name)
                .start_record_type(ty)
                .set_start_record_identifier(ident);
        }
        let page = req.send().await.ctx(id, "ListResourceRecordSets")?;
        let next = match (page.next_record_name(), page.next_record_type()) {
            (Some(n), Some(t)) if page.is_truncated() => Some((
                n.to_string(),
                t.clone(),
                page.next_record_identifier().map(str::to_string),
            )),
            _ => None,
        };
        Ok((page.resource_record_sets().to_vec(), next))
    })
    .await
}

/// A deletion that finds the resource already gone, in any service's words
/// ([`CloudError::is_not_found`]), has done its job: the steps after it
/// (a certificate's validation records) still run.
pub(crate) fn gone_ok(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_its_own_timeouts_from_the_stack() {
        use crate::cloud::{Phase, DEFAULT_CREATE_TIMEOUT};
        use std::time::Duration;
        let t = crate::stack::Timeouts {
            database: Duration::from_secs(1),
            database_delete: Duration::from_secs(2),
            nat_gateway: Duration::from_secs(3),
            load_balancer: Duration::from_secs(4),
            delete: Duration::from_secs(5),
            instances: Duration::from_secs(6),
            instance_refresh: Duration::from_secs(7),
            file_system: Duration::from_secs(8),
            certificate: Duration::from_secs(9),
        };
        let w = registry().wait_limits(&t);
        let s = Duration::from_secs;
        for (kind, phase, want) in [
            (db_instance::KIND, Phase::Create, s(1)),
            (db_instance::KIND, Phase::Delete, s(2)),
            (nat_gateway::KIND, Phase::Create, s(3)),
            (nat_gateway::KIND, Phase::Delete, s(5)),
            (load_balancer::KIND, Phase::Create, s(4)),
            (autoscaling_group::KIND, Phase::Create, s(6)),
            (autoscaling_group::KIND, Phase::Rollout, s(7)),
            (efs_file_system::KIND, Phase::Create, s(8)),
            (certificate::KIND, Phase::Create, s(9)),
            (vpc::KIND, Phase::Create, DEFAULT_CREATE_TIMEOUT),
            (vpc::KIND, Phase::Delete, s(5)),
            (vpc_endpoint::KIND, Phase::Delete, s(5)),
        ] {
            assert_eq!(w.for_kind(kind, phase), want, "{kind} {phase:?}");
        }
    }
    use crate::engine::Change;

    #[test]
    fn ownership_needs_the_stack_tag_and_an_id() {
        let tags = |s: &'static str| vec![(TAG_STACK, s), (TAG_ID, "vpc"), ("Name", "x")];
        assert_eq!(owner_id(tags("demo"), "demo").as_deref(), Some("vpc"));
        // Another stack's, or one whose name only starts like ours.
        assert_eq!(owner_id(tags("demo2"), "demo"), None);
        assert_eq!(owner_id(tags("prod"), "demo"), None);
        // Untagged, or tagged with the stack but no logical id.
        assert_eq!(owner_id(Vec::<(&str, &str)>::new(), "demo"), None);
        assert_eq!(owner_id(vec![(TAG_STACK, "demo")], "demo"), None);
        assert_eq!(owner_id(vec![(TAG_ID, "vpc")], "demo"), None);
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn all_pages_follows_every_token() {
        let pages = [
            (vec![1, 2], Some("a")),
            (vec![], Some("b")),
            (vec![3], None),
        ];
        let mut seen = Vec::new();
        let got = block_on(all_pages(|t: Option<&str>| {
            seen.push(t);
            let i = match t {
                None => 0,
                Some("a") => 1,
                _ => 2,
            };
            let page = pages[i].clone();
            async move { Ok(page) }
        }))
        .unwrap();
        // An empty page with a token is not the end.
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(seen, vec![None, Some("a"), Some("b")]);
    }

    #[test]
    fn all_pages_stops_on_a_repeated_token_and_on_errors() {
        let mut calls = 0;
        let got = block_on(all_pages(|_: Option<u8>| {
            calls += 1;
            async { Ok((vec!['x'], Some(7u8))) }
        }))
        .unwrap();
        assert_eq!((got.len(), calls), (2, 2));
        let err = block_on(all_pages(|t: Option<u8>| async move {
            match t {
                None => Ok((vec![1], Some(1u8))),
                Some(_) => Err(CloudError::invalid("k", "page two failed")),
            }
        }));
        assert!(
            err.is_err(),
            "a failed page fails the read, never a partial list"
        );
    }

    /// Which attributes of each kind force a replacement: the contract the
    /// plan shows users (`-/+` with the reason) and the README documents.
    #[test]
    fn what_each_kind_replaces_and_changes_in_place() {
        let expect: &[(&str, &[&str], &[&str])] = &[
            ("ec2:vpc", &["cidr"], &["dns_support", "dns_hostnames"]),
            ("ec2:internet-gateway", &[], &["vpc_id"]),
            ("ec2:subnet", &["vpc_id", "cidr", "zone"], &[]),
            ("ec2:eip", &[], &[]),
            ("ec2:nat-gateway", &["subnet_id", "allocation_id"], &[]),
            (
                "ec2:volume",
                &["zone", "encrypted"],
                &["size_gib", "volume_type"],
            ),
            ("ec2:route-table", &["vpc_id"], &["routes", "subnets"]),
            (
                "ec2:security-group",
                &["vpc_id", "name", "description"],
                &["ingress"],
            ),
            (
                "ec2:vpc-endpoint",
                &["vpc_id", "service_name", "type"],
                &["subnet_ids", "security_group_ids", "route_table_ids"],
            ),
            (
                "rds:db-subnet-group",
                &["name"],
                &["description", "subnet_ids"],
            ),
            (
                "rds:db-parameter-group",
                &["name", "family", "description"],
                &["parameters"],
            ),
            (
                "rds:db-instance",
                &[
                    "identifier",
                    "engine",
                    "storage_encrypted",
                    "db_subnet_group",
                    "db_name",
                    "master_username",
                ],
                &[
                    "engine_version",
                    "instance_class",
                    "allocated_storage",
                    "multi_az",
                    "backup_retention_days",
                    "publicly_accessible",
                    "deletion_protection",
                    "security_group_ids",
                    "parameter_group",
                    "parameters_applied",
                    "final_snapshot",
                ],
            ),
            ("secretsmanager:secret", &["name"], &["description"]),
            (
                "efs:file-system",
                &["encrypted", "performance_mode"],
                &["mount_targets"],
            ),
            (
                "efs:access-point",
                &["file_system_id", "uid", "gid", "path", "permissions"],
                &[],
            ),
            ("acm:certificate", &["domain", "alternative_names"], &[]),
            (
                "elbv2:target-group",
                &["name", "port", "protocol", "vpc_id", "target_type"],
                &[
                    "health_check_path",
                    "health_check_interval",
                    "healthy_threshold",
                    "unhealthy_threshold",
                    "deregistration_delay",
                ],
            ),
            (
                "elbv2:load-balancer",
                &["name", "scheme"],
                &["subnets", "security_groups"],
            ),
            (
                "elbv2:listener",
                &["load_balancer_arn", "port"],
                &["protocol", "certificate_arn", "ssl_policy", "action"],
            ),
            (
                "route53:alias",
                &["zone_id", "name"],
                &["target_dns", "target_zone_id", "addresses"],
            ),
            ("iam:boundary", &["name", "path"], &["document"]),
            (
                "iam:role",
                &["name", "path"],
                &[
                    "trust_policy",
                    "policy",
                    "other_inline_policies",
                    "managed_policies",
                    "permissions_boundary",
                ],
            ),
            ("iam:instance-profile", &["name", "path"], &["role"]),
            (
                "dlm:lifecycle-policy",
                &[],
                &[
                    "description",
                    "execution_role_arn",
                    "state",
                    "target_tag",
                    "time",
                    "keep",
                ],
            ),
            ("efs:file-system-policy", &["file_system_id"], &["policy"]),
            (
                "s3:bucket",
                &["name"],
                &["versioning", "encryption", "block_public_access", "policy"],
            ),
            ("s3:artifact", &["bucket", "key", "sha256"], &[]),
            ("logs:log-group", &["name"], &["retention_days"]),
            (
                "ecr:repository",
                &["name"],
                &["keep", "scan_on_push", "immutable_tags"],
            ),
            ("ecr:image", &["repository", "digest"], &[]),
            ("ecs:cluster", &["name"], &["container_insights"]),
            (
                "ecs:task-definition",
                &["family"],
                &[
                    "cpu",
                    "memory",
                    "task_role_arn",
                    "execution_role_arn",
                    "containers",
                    "volumes",
                ],
            ),
            (
                "ecs:service",
                &["name", "cluster", "target_group_arn", "container_port"],
                &[
                    "task_definition",
                    "subnets",
                    "security_groups",
                    "grace_secs",
                    "circuit_breaker",
                    "execute_command",
                    "rolled_back",
                ],
            ),
            (
                "app-scaling:ecs-service",
                &["resource_id"],
                &["min", "max", "metric", "target"],
            ),
            (
                "ec2:launch-template",
                &["name"],
                &[
                    "image_id",
                    "instance_type",
                    "security_group_ids",
                    "public_ip",
                    "instance_profile_arn",
                    "user_data",
                    "http_tokens",
                    "block_device_mappings",
                ],
            ),
            (
                "autoscaling:group",
                &["name"],
                &[
                    "launch_template_id",
                    "launch_template_version",
                    "subnets",
                    "target_group_arns",
                    "min",
                    "max",
                    "health_check_grace",
                    "scaling",
                    "health_check_type",
                    "in_place",
                    "rolled_back",
                ],
            ),
        ];
        let reg = registry();
        let kinds: Vec<&str> = reg.kinds().map(|k| k.kind()).collect();
        assert_eq!(kinds, expect.iter().map(|e| e.0).collect::<Vec<_>>());
        for (kind, replace, in_place) in expect {
            let k = reg.get(kind).unwrap();
            let of = |c: Change| -> Vec<&str> {
                k.attributes()
                    .iter()
                    .filter(|a| a.change == c)
                    .map(|a| a.name)
                    .collect()
            };
            assert_eq!(&of(Change::Replace), replace, "{kind} replaces");
            assert_eq!(&of(Change::InPlace), in_place, "{kind} in place");
        }
        // Only the database and the data volume need consent to be replaced or deleted.
        for k in reg.kinds() {
            let data = matches!(k.kind(), "rds:db-instance" | "ec2:volume");
            assert_eq!(
                k.replace_policy() == crate::engine::ReplacePolicy::RequireConfirmation,
                data,
                "{}",
                k.kind()
            );
        }
    }
}
