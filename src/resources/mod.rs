//! Resource kinds: the only code that calls the provider's API.
//! One module per kind; [`registry`] lists them all.

pub mod autoscaling_group;
pub mod certificate;
pub mod db_instance;
pub mod db_subnet_group;
pub mod dns_alias;
pub mod efs_access_point;
pub mod efs_file_system;
pub mod elastic_ip;
pub mod iam;
pub mod internet_gateway;
pub mod launch_template;
pub mod listener;
pub mod load_balancer;
pub mod nat_gateway;
pub mod route_table;
pub mod s3;
pub mod security_group;
pub mod subnet;
pub mod target_group;
pub mod vpc;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::cloud::CloudError;
use crate::engine::{Registry, TAG_ID, TAG_STACK};

/// Every kind this tool manages, roughly in dependency order.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Box::new(vpc::Vpc));
    r.register(Box::new(internet_gateway::InternetGateway));
    r.register(Box::new(subnet::Subnet));
    r.register(Box::new(elastic_ip::ElasticIp));
    r.register(Box::new(nat_gateway::NatGateway));
    r.register(Box::new(route_table::RouteTable));
    r.register(Box::new(security_group::SecurityGroup));
    r.register(Box::new(db_subnet_group::DbSubnetGroup));
    r.register(Box::new(db_instance::Database));
    r.register(Box::new(efs_file_system::FileSystem));
    r.register(Box::new(efs_access_point::AccessPoint));
    r.register(Box::new(certificate::Certificate));
    r.register(Box::new(target_group::TargetGroup));
    r.register(Box::new(load_balancer::LoadBalancer));
    r.register(Box::new(listener::Listener));
    r.register(Box::new(dns_alias::DnsAlias));
    r.register(Box::new(iam::Role));
    r.register(Box::new(iam::InstanceProfile));
    r.register(Box::new(s3::Bucket));
    r.register(Box::new(s3::Artifact));
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

/// The logical id in a resource's EC2 tags.
pub(crate) fn logical_id(tags: &[Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(TAG_ID))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// A deletion that finds the resource already gone has done its job.
pub(crate) fn gone_ok(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e)
            if e.code().is_some_and(|c| {
                c.ends_with("NotFound") || c.ends_with("NotFoundFault") || c.starts_with("NoSuch")
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}
