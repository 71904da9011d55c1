//! What a stack owns, read straight from the emulator with independent SDK
//! calls (never the tool's own read path): every kind the tool creates.

use std::collections::BTreeMap;

use super::Emulator;

const TAG_STACK: &str = "bookstore-infra:stack";

/// Everything in the account that carries `stack`'s ownership tag (or, for
/// what cannot be tagged, its name or marker), by kind. Empty means the
/// stack left nothing behind.
pub fn owned(e: &Emulator, stack: &str) -> BTreeMap<String, Vec<String>> {
    let conf = e.conf().clone();
    e.block_on(async move {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut put = |k: &str, v: String| m.entry(k.to_string()).or_default().push(v);
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let mine = aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{TAG_STACK}"))
            .values(stack)
            .build();
        // Every EC2 resource the filter finds, by id.
        macro_rules! tagged {
            ($kind:literal, $describe:ident, $list:ident, $id:ident) => {
                for v in ec2
                    .$describe()
                    .filters(mine.clone())
                    .send()
                    .await
                    .unwrap()
                    .$list()
                {
                    put($kind, v.$id().unwrap().into());
                }
            };
        }
        tagged!("ec2:vpc", describe_vpcs, vpcs, vpc_id);
        tagged!("ec2:subnet", describe_subnets, subnets, subnet_id);
        tagged!(
            "ec2:security-group",
            describe_security_groups,
            security_groups,
            group_id
        );
        tagged!(
            "ec2:route-table",
            describe_route_tables,
            route_tables,
            route_table_id
        );
        tagged!(
            "ec2:internet-gateway",
            describe_internet_gateways,
            internet_gateways,
            internet_gateway_id
        );
        // The emulator's NAT gateway filter is not to be trusted: the tags
        // are checked here.
        let nats = ec2
            .describe_nat_gateways()
            .filter(mine.clone())
            .send()
            .await
            .unwrap();
        for v in nats.nat_gateways() {
            let state = v.state().map(|s| s.as_str()).unwrap_or_default();
            let is_ours = v.tags().iter().any(|t| ours(t.key(), t.value(), stack));
            if is_ours && state != "deleted" {
                put(
                    "ec2:nat-gateway",
                    format!("{} ({state})", v.nat_gateway_id().unwrap()),
                );
            }
        }
        tagged!("ec2:eip", describe_addresses, addresses, allocation_id);
        tagged!(
            "ec2:launch-template",
            describe_launch_templates,
            launch_templates,
            launch_template_id
        );

        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        let mut arns: Vec<(String, String)> = Vec::new();
        for l in elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
        {
            arns.push((
                "elbv2:load-balancer".into(),
                l.load_balancer_arn().unwrap().into(),
            ));
        }
        for t in elb
            .describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
        {
            arns.push((
                "elbv2:target-group".into(),
                t.target_group_arn().unwrap().into(),
            ));
        }
        for (kind, arn) in arns {
            let tags = elb
                .describe_tags()
                .resource_arns(&arn)
                .send()
                .await
                .unwrap();
            let owned = tags
                .tag_descriptions()
                .iter()
                .any(|d| d.tags().iter().any(|t| ours(t.key(), t.value(), stack)));
            if owned {
                put(&kind, arn);
            }
        }

        let asg = aws_sdk_autoscaling::Client::new(&conf);
        for g in asg
            .describe_auto_scaling_groups()
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
        {
            if g.tags().iter().any(|t| ours(t.key(), t.value(), stack)) {
                put(
                    "autoscaling:group",
                    g.auto_scaling_group_name().unwrap().into(),
                );
            }
        }

        let rds = aws_sdk_rds::Client::new(&conf);
        for d in rds
            .describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
        {
            if d.tag_list().iter().any(|t| ours(t.key(), t.value(), stack)) {
                put(
                    "rds:db-instance",
                    d.db_instance_identifier().unwrap().into(),
                );
            }
        }
        for g in rds
            .describe_db_subnet_groups()
            .send()
            .await
            .unwrap()
            .db_subnet_groups()
        {
            let tags = rds
                .list_tags_for_resource()
                .resource_name(g.db_subnet_group_arn().unwrap())
                .send()
                .await
                .unwrap();
            if tags
                .tag_list()
                .iter()
                .any(|t| ours(t.key(), t.value(), stack))
            {
                put(
                    "rds:db-subnet-group",
                    g.db_subnet_group_name().unwrap().into(),
                );
            }
        }
        for g in rds
            .describe_db_parameter_groups()
            .send()
            .await
            .unwrap()
            .db_parameter_groups()
        {
            let tags = rds
                .list_tags_for_resource()
                .resource_name(g.db_parameter_group_arn().unwrap())
                .send()
                .await
                .unwrap();
            if tags
                .tag_list()
                .iter()
                .any(|t| ours(t.key(), t.value(), stack))
            {
                put(
                    "rds:db-parameter-group",
                    g.db_parameter_group_name().unwrap().into(),
                );
            }
        }

        // Secrets, but not those scheduled for deletion (gone for the
        // stack: their names are what a recovery window keeps).
        let sm = aws_sdk_secretsmanager::Client::new(&conf);
        for s in sm.list_secrets().send().await.unwrap().secret_list() {
            if s.tags().iter().any(|t| ours(t.key(), t.value(), stack)) {
                put("secretsmanager:secret", s.name().unwrap_or_default().into());
            }
        }

        let efs = aws_sdk_efs::Client::new(&conf);
        for f in efs
            .describe_file_systems()
            .send()
            .await
            .unwrap()
            .file_systems()
        {
            if f.tags()
                .iter()
                .any(|t| ours(Some(t.key()), Some(t.value()), stack))
            {
                put("efs:file-system", f.file_system_id().into());
            }
        }

        let acm = aws_sdk_acm::Client::new(&conf);
        for c in acm
            .list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
        {
            let arn = c.certificate_arn().unwrap();
            let tags = acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .unwrap();
            if tags
                .tags()
                .iter()
                .any(|t| ours(Some(t.key()), t.value(), stack))
            {
                put("acm:certificate", arn.into());
            }
        }

        let iam = aws_sdk_iam::Client::new(&conf);
        let path = format!("/bookstore-infra/{stack}/");
        // Filtered by path here too: the emulator may ignore PathPrefix.
        for r in iam
            .list_roles()
            .path_prefix(&path)
            .send()
            .await
            .unwrap()
            .roles()
        {
            if r.path().starts_with(&path) {
                put("iam:role", r.role_name().into());
            }
        }
        let profiles = iam
            .list_instance_profiles()
            .path_prefix(&path)
            .send()
            .await
            .unwrap();
        for p in profiles.instance_profiles() {
            if p.path().starts_with(&path) {
                put("iam:instance-profile", p.instance_profile_name().into());
            }
        }

        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        );
        for b in s3.list_buckets().send().await.unwrap().buckets() {
            let name = b.name().unwrap_or_default();
            if !name.starts_with(&format!("{stack}-artifacts-")) {
                continue;
            }
            // Only a bucket carrying the stack's tag is the stack's (a
            // bucket of the same prefix may belong to anyone).
            if let Ok(t) = s3.get_bucket_tagging().bucket(name).send().await {
                if t.tag_set()
                    .iter()
                    .any(|t| ours(Some(t.key()), Some(t.value()), stack))
                {
                    put("s3:bucket", name.into());
                }
            }
        }

        let marker = format!("stack={stack},");
        for s in record_sets(&conf).await {
            if s.resource_records()
                .iter()
                .any(|r| r.value().contains(&marker))
            {
                put("route53:record", name_type(&s));
            }
        }

        // VPC endpoints, by their tags (every endpoint of the region read).
        for v in ec2
            .describe_vpc_endpoints()
            .send()
            .await
            .unwrap()
            .vpc_endpoints()
        {
            let state = v
                .state()
                .map(|s| s.as_str().to_lowercase())
                .unwrap_or_default();
            if state != "deleted" && v.tags().iter().any(|t| ours(t.key(), t.value(), stack)) {
                put(
                    "ec2:vpc-endpoint",
                    v.vpc_endpoint_id().unwrap_or_default().into(),
                );
            }
        }

        // The single shape's data volume, its final snapshot, and the
        // lifecycle policy snapshotting it.
        tagged!("ec2:volume", describe_volumes, volumes, volume_id);
        for snap in ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(mine.clone())
            .send()
            .await
            .unwrap()
            .snapshots()
        {
            put("ec2:snapshot", snap.snapshot_id().unwrap().into());
        }
        let dlm = aws_sdk_dlm::Client::new(&conf);
        for p in dlm
            .get_lifecycle_policies()
            .send()
            .await
            .unwrap()
            .policies()
        {
            if p.tags().and_then(|t| t.get(TAG_STACK)).map(String::as_str) == Some(stack) {
                put(
                    "dlm:lifecycle-policy",
                    p.policy_id().unwrap_or_default().into(),
                );
            }
        }

        // Log groups, by their tags (every group of the region read).
        let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
        for g in logs
            .describe_log_groups()
            .send()
            .await
            .unwrap()
            .log_groups()
        {
            let Some(arn) = g.arn() else { continue };
            let arn = arn.trim_end_matches(":*");
            let tags = logs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .unwrap();
            if tags
                .tags()
                .and_then(|t| t.get(TAG_STACK))
                .map(String::as_str)
                == Some(stack)
            {
                put(
                    "logs:log-group",
                    g.log_group_name().unwrap_or_default().into(),
                );
            }
        }

        // ECR repositories, ECS clusters, services and task definitions,
        // and Application Auto Scaling targets, by their tags.
        let ecr = aws_sdk_ecr::Client::new(&conf);
        for r in ecr
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
        {
            let tags = ecr
                .list_tags_for_resource()
                .resource_arn(r.repository_arn().unwrap())
                .send()
                .await
                .unwrap();
            if tags
                .tags()
                .iter()
                .any(|t| ours(Some(t.key()), Some(t.value()), stack))
            {
                put("ecr:repository", r.repository_name().unwrap().into());
            }
        }
        let ecs = aws_sdk_ecs::Client::new(&conf);
        let clusters = ecs.list_clusters().send().await.unwrap();
        if !clusters.cluster_arns().is_empty() {
            let d = ecs
                .describe_clusters()
                .set_clusters(Some(clusters.cluster_arns().to_vec()))
                .include(aws_sdk_ecs::types::ClusterField::Tags)
                .send()
                .await
                .unwrap();
            for c in d.clusters() {
                let mine = c.tags().iter().any(|t| ours(t.key(), t.value(), stack));
                if mine && c.status() == Some("ACTIVE") {
                    put("ecs:cluster", c.cluster_name().unwrap().into());
                }
                let services = ecs
                    .list_services()
                    .cluster(c.cluster_arn().unwrap())
                    .send()
                    .await
                    .unwrap();
                if services.service_arns().is_empty() {
                    continue;
                }
                let d = ecs
                    .describe_services()
                    .cluster(c.cluster_arn().unwrap())
                    .set_services(Some(services.service_arns().to_vec()))
                    .include(aws_sdk_ecs::types::ServiceField::Tags)
                    .send()
                    .await
                    .unwrap();
                for s in d.services() {
                    if s.status() != Some("INACTIVE")
                        && s.tags().iter().any(|t| ours(t.key(), t.value(), stack))
                    {
                        put("ecs:service", s.service_arn().unwrap().into());
                    }
                }
            }
        }
        let defs = ecs
            .list_task_definitions()
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .send()
            .await
            .unwrap();
        for arn in defs.task_definition_arns() {
            let d = ecs
                .describe_task_definition()
                .task_definition(arn)
                .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                .send()
                .await
                .unwrap();
            if d.tags().iter().any(|t| ours(t.key(), t.value(), stack)) {
                put("ecs:task-definition", arn.into());
            }
        }
        let scaling = aws_sdk_applicationautoscaling::Client::new(&conf);
        for t in scaling
            .describe_scalable_targets()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .unwrap()
            .scalable_targets()
        {
            let tags = scaling
                .list_tags_for_resource()
                .resource_arn(t.scalable_target_arn().unwrap())
                .send()
                .await
                .unwrap();
            if tags
                .tags()
                .and_then(|m| m.get(TAG_STACK))
                .map(String::as_str)
                == Some(stack)
            {
                put("app-scaling:ecs-service", t.resource_id().into());
            }
        }

        // The stack's run lock is its object in the account's lock bucket;
        // the bucket itself is shared by every stack (and untagged).
        let cloud = super::cloud_of(&conf);
        if bookstore_infra::lock::holder(&cloud, stack)
            .await
            .unwrap()
            .is_some()
        {
            put("s3:lock", bookstore_infra::lock::object_key(stack));
        }
        m
    })
}

/// The records of every hosted zone, as `name type`.
pub fn records(e: &Emulator) -> Vec<String> {
    let conf = e.conf().clone();
    e.block_on(async move {
        record_sets(&conf)
            .await
            .iter()
            .map(name_type)
            .collect::<Vec<_>>()
    })
}

/// The record sets of every hosted zone.
async fn record_sets(
    conf: &aws_config::SdkConfig,
) -> Vec<aws_sdk_route53::types::ResourceRecordSet> {
    let r53 = aws_sdk_route53::Client::new(conf);
    let mut out = Vec::new();
    for z in r53.list_hosted_zones().send().await.unwrap().hosted_zones() {
        let sets = r53
            .list_resource_record_sets()
            .hosted_zone_id(z.id())
            .send()
            .await
            .unwrap();
        out.extend(sets.resource_record_sets().iter().cloned());
    }
    out
}

/// A record set as `name type`.
fn name_type(s: &aws_sdk_route53::types::ResourceRecordSet) -> String {
    format!("{} {}", s.name(), s.r#type().as_str())
}

/// Whether a tag is the stack's ownership tag.
fn ours(key: Option<&str>, value: Option<&str>, stack: &str) -> bool {
    key == Some(TAG_STACK) && value == Some(stack)
}
