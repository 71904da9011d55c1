//! Every AWS call the tool makes, with the IAM actions AWS authorizes it
//! against and who needs it.

use std::collections::BTreeSet;

use super::{service, Access, Call, Scope};

pub(super) const fn r(
    client: &'static str,
    method: &'static str,
    operation: &'static str,
    actions: &'static [&'static str],
) -> Call {
    Call {
        client,
        method,
        operation,
        actions,
        access: Access::Read,
    }
}

pub(super) const fn w(
    client: &'static str,
    method: &'static str,
    operation: &'static str,
    actions: &'static [&'static str],
) -> Call {
    Call {
        client,
        method,
        operation,
        actions,
        access: Access::Write,
    }
}

/// Every SDK call the tool makes, and the IAM actions behind it.
///
/// Tag-on-create needs the tagging action too: EC2 `ec2:CreateTags`
/// ("Grant permission to tag Amazon EC2 resources during creation"), ELB
/// `elasticloadbalancing:AddTags` ("Identity-based policies for Elastic Load
/// Balancing", tagging on create), RDS `rds:AddTagsToResource`, EFS
/// `elasticfilesystem:TagResource`, ACM `acm:AddTagsToCertificate`, IAM
/// `iam:TagRole` / `iam:TagInstanceProfile`.
/// Creating or updating an Auto Scaling group from a launch template whose
/// instance profile holds a role needs `ec2:RunInstances` and `iam:PassRole`
/// ("Control Amazon EC2 launch template use in Auto Scaling groups"), and so
/// does `AddRoleToInstanceProfile` (`iam:PassRole`). EFS mount targets are
/// network interfaces the caller creates (EFS API reference,
/// CreateMountTarget / DeleteMountTarget / ModifyMountTargetSecurityGroups:
/// "also requires permissions for the following Amazon EC2 actions").
/// S3 names differ: ListObjectsV2 and HeadBucket are `s3:ListBucket`,
/// HeadObject is `s3:GetObject`, (Get|Put)BucketEncryption are
/// `s3:(Get|Put)EncryptionConfiguration`, (Get|Put)PublicAccessBlock are
/// `s3:(Get|Put)BucketPublicAccessBlock`, ListBuckets is
/// `s3:ListAllMyBuckets`, deleting a version is `s3:DeleteObjectVersion`
/// ("Amazon S3 API operations and required permissions").
#[rustfmt::skip]
pub const CALLS: &[Call] = &[
    // EC2
    r("ec2", "describe_addresses", "DescribeAddresses", &["ec2:DescribeAddresses"]),
    r("ec2", "describe_availability_zones", "DescribeAvailabilityZones", &["ec2:DescribeAvailabilityZones"]),
    r("ec2", "describe_internet_gateways", "DescribeInternetGateways", &["ec2:DescribeInternetGateways"]),
    r("ec2", "describe_launch_template_versions", "DescribeLaunchTemplateVersions", &["ec2:DescribeLaunchTemplateVersions"]),
    r("ec2", "describe_launch_templates", "DescribeLaunchTemplates", &["ec2:DescribeLaunchTemplates"]),
    r("ec2", "describe_nat_gateways", "DescribeNatGateways", &["ec2:DescribeNatGateways"]),
    r("ec2", "describe_regions", "DescribeRegions", &["ec2:DescribeRegions"]),
    r("ec2", "describe_route_tables", "DescribeRouteTables", &["ec2:DescribeRouteTables"]),
    r("ec2", "describe_security_groups", "DescribeSecurityGroups", &["ec2:DescribeSecurityGroups"]),
    r("ec2", "describe_subnets", "DescribeSubnets", &["ec2:DescribeSubnets"]),
    r("ec2", "describe_vpc_attribute", "DescribeVpcAttribute", &["ec2:DescribeVpcAttribute"]),
    r("ec2", "describe_vpcs", "DescribeVpcs", &["ec2:DescribeVpcs"]),
    r("ec2", "describe_vpc_endpoints", "DescribeVpcEndpoints", &["ec2:DescribeVpcEndpoints"]),
    w("ec2", "allocate_address", "AllocateAddress", &["ec2:AllocateAddress", "ec2:CreateTags"]),
    w("ec2", "associate_route_table", "AssociateRouteTable", &["ec2:AssociateRouteTable"]),
    w("ec2", "attach_internet_gateway", "AttachInternetGateway", &["ec2:AttachInternetGateway"]),
    w("ec2", "authorize_security_group_ingress", "AuthorizeSecurityGroupIngress", &["ec2:AuthorizeSecurityGroupIngress"]),
    w("ec2", "create_internet_gateway", "CreateInternetGateway", &["ec2:CreateInternetGateway", "ec2:CreateTags"]),
    w("ec2", "create_launch_template", "CreateLaunchTemplate", &["ec2:CreateLaunchTemplate", "ec2:CreateTags"]),
    w("ec2", "create_launch_template_version", "CreateLaunchTemplateVersion", &["ec2:CreateLaunchTemplateVersion"]),
    w("ec2", "create_nat_gateway", "CreateNatGateway", &["ec2:CreateNatGateway", "ec2:CreateTags"]),
    w("ec2", "create_route", "CreateRoute", &["ec2:CreateRoute"]),
    w("ec2", "create_route_table", "CreateRouteTable", &["ec2:CreateRouteTable", "ec2:CreateTags"]),
    w("ec2", "create_security_group", "CreateSecurityGroup", &["ec2:CreateSecurityGroup", "ec2:CreateTags"]),
    w("ec2", "create_subnet", "CreateSubnet", &["ec2:CreateSubnet", "ec2:CreateTags"]),
    w("ec2", "create_vpc", "CreateVpc", &["ec2:CreateVpc", "ec2:CreateTags"]),
    w("ec2", "create_vpc_endpoint", "CreateVpcEndpoint", &["ec2:CreateVpcEndpoint", "ec2:CreateTags"]),
    w("ec2", "delete_internet_gateway", "DeleteInternetGateway", &["ec2:DeleteInternetGateway"]),
    w("ec2", "delete_launch_template", "DeleteLaunchTemplate", &["ec2:DeleteLaunchTemplate"]),
    w("ec2", "delete_launch_template_versions", "DeleteLaunchTemplateVersions", &["ec2:DeleteLaunchTemplateVersions"]),
    w("ec2", "delete_nat_gateway", "DeleteNatGateway", &["ec2:DeleteNatGateway"]),
    w("ec2", "delete_route", "DeleteRoute", &["ec2:DeleteRoute"]),
    w("ec2", "delete_route_table", "DeleteRouteTable", &["ec2:DeleteRouteTable"]),
    w("ec2", "delete_security_group", "DeleteSecurityGroup", &["ec2:DeleteSecurityGroup"]),
    w("ec2", "delete_subnet", "DeleteSubnet", &["ec2:DeleteSubnet"]),
    w("ec2", "delete_vpc", "DeleteVpc", &["ec2:DeleteVpc"]),
    w("ec2", "delete_vpc_endpoints", "DeleteVpcEndpoints", &["ec2:DeleteVpcEndpoints"]),
    w("ec2", "detach_internet_gateway", "DetachInternetGateway", &["ec2:DetachInternetGateway"]),
    w("ec2", "disassociate_route_table", "DisassociateRouteTable", &["ec2:DisassociateRouteTable"]),
    w("ec2", "modify_launch_template", "ModifyLaunchTemplate", &["ec2:ModifyLaunchTemplate"]),
    w("ec2", "modify_vpc_attribute", "ModifyVpcAttribute", &["ec2:ModifyVpcAttribute"]),
    w("ec2", "modify_vpc_endpoint", "ModifyVpcEndpoint", &["ec2:ModifyVpcEndpoint"]),
    w("ec2", "release_address", "ReleaseAddress", &["ec2:ReleaseAddress"]),
    w("ec2", "replace_route", "ReplaceRoute", &["ec2:ReplaceRoute"]),
    w("ec2", "revoke_security_group_ingress", "RevokeSecurityGroupIngress", &["ec2:RevokeSecurityGroupIngress"]),
    // Elastic Load Balancing v2
    r("elbv2", "describe_listeners", "DescribeListeners", &["elasticloadbalancing:DescribeListeners"]),
    r("elbv2", "describe_load_balancers", "DescribeLoadBalancers", &["elasticloadbalancing:DescribeLoadBalancers"]),
    r("elbv2", "describe_tags", "DescribeTags", &["elasticloadbalancing:DescribeTags"]),
    r("elbv2", "describe_target_group_attributes", "DescribeTargetGroupAttributes", &["elasticloadbalancing:DescribeTargetGroupAttributes"]),
    r("elbv2", "describe_target_groups", "DescribeTargetGroups", &["elasticloadbalancing:DescribeTargetGroups"]),
    r("elbv2", "describe_target_health", "DescribeTargetHealth", &["elasticloadbalancing:DescribeTargetHealth"]),
    w("elbv2", "create_listener", "CreateListener", &["elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"]),
    w("elbv2", "create_load_balancer", "CreateLoadBalancer", &["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:AddTags", "iam:CreateServiceLinkedRole"]),
    w("elbv2", "create_target_group", "CreateTargetGroup", &["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"]),
    w("elbv2", "delete_listener", "DeleteListener", &["elasticloadbalancing:DeleteListener"]),
    w("elbv2", "delete_load_balancer", "DeleteLoadBalancer", &["elasticloadbalancing:DeleteLoadBalancer"]),
    w("elbv2", "delete_target_group", "DeleteTargetGroup", &["elasticloadbalancing:DeleteTargetGroup"]),
    w("elbv2", "modify_listener", "ModifyListener", &["elasticloadbalancing:ModifyListener"]),
    w("elbv2", "modify_target_group", "ModifyTargetGroup", &["elasticloadbalancing:ModifyTargetGroup"]),
    w("elbv2", "modify_target_group_attributes", "ModifyTargetGroupAttributes", &["elasticloadbalancing:ModifyTargetGroupAttributes"]),
    w("elbv2", "set_security_groups", "SetSecurityGroups", &["elasticloadbalancing:SetSecurityGroups"]),
    w("elbv2", "set_subnets", "SetSubnets", &["elasticloadbalancing:SetSubnets"]),
    // EC2 Auto Scaling
    r("autoscaling", "describe_auto_scaling_groups", "DescribeAutoScalingGroups", &["autoscaling:DescribeAutoScalingGroups"]),
    r("autoscaling", "describe_instance_refreshes", "DescribeInstanceRefreshes", &["autoscaling:DescribeInstanceRefreshes"]),
    r("autoscaling", "describe_policies", "DescribePolicies", &["autoscaling:DescribePolicies"]),
    w("autoscaling", "attach_load_balancer_target_groups", "AttachLoadBalancerTargetGroups", &["autoscaling:AttachLoadBalancerTargetGroups"]),
    w("autoscaling", "cancel_instance_refresh", "CancelInstanceRefresh", &["autoscaling:CancelInstanceRefresh"]),
    w("autoscaling", "create_auto_scaling_group", "CreateAutoScalingGroup", &["autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "ec2:RunInstances", "iam:PassRole", "iam:CreateServiceLinkedRole"]),
    w("autoscaling", "create_or_update_tags", "CreateOrUpdateTags", &["autoscaling:CreateOrUpdateTags"]),
    w("autoscaling", "delete_auto_scaling_group", "DeleteAutoScalingGroup", &["autoscaling:DeleteAutoScalingGroup"]),
    w("autoscaling", "delete_tags", "DeleteTags", &["autoscaling:DeleteTags"]),
    w("autoscaling", "detach_load_balancer_target_groups", "DetachLoadBalancerTargetGroups", &["autoscaling:DetachLoadBalancerTargetGroups"]),
    w("autoscaling", "put_scaling_policy", "PutScalingPolicy", &["autoscaling:PutScalingPolicy"]),
    w("autoscaling", "start_instance_refresh", "StartInstanceRefresh", &["autoscaling:StartInstanceRefresh", "ec2:RunInstances", "iam:PassRole"]),
    w("autoscaling", "update_auto_scaling_group", "UpdateAutoScalingGroup", &["autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances", "iam:PassRole"]),
    // RDS
    r("rds", "describe_db_instances", "DescribeDBInstances", &["rds:DescribeDBInstances"]),
    r("rds", "describe_db_subnet_groups", "DescribeDBSubnetGroups", &["rds:DescribeDBSubnetGroups"]),
    r("rds", "list_tags_for_resource", "ListTagsForResource", &["rds:ListTagsForResource"]),
    w("rds", "add_tags_to_resource", "AddTagsToResource", &["rds:AddTagsToResource"]),
    w("rds", "create_db_instance", "CreateDBInstance", &["rds:CreateDBInstance", "rds:AddTagsToResource", "iam:CreateServiceLinkedRole"]),
    w("rds", "create_db_subnet_group", "CreateDBSubnetGroup", &["rds:CreateDBSubnetGroup", "rds:AddTagsToResource"]),
    // A final snapshot is a snapshot the caller creates.
    w("rds", "delete_db_instance", "DeleteDBInstance", &["rds:DeleteDBInstance", "rds:CreateDBSnapshot"]),
    w("rds", "delete_db_subnet_group", "DeleteDBSubnetGroup", &["rds:DeleteDBSubnetGroup"]),
    w("rds", "modify_db_instance", "ModifyDBInstance", &["rds:ModifyDBInstance"]),
    w("rds", "modify_db_subnet_group", "ModifyDBSubnetGroup", &["rds:ModifyDBSubnetGroup"]),
    // EFS
    r("efs", "describe_access_points", "DescribeAccessPoints", &["elasticfilesystem:DescribeAccessPoints"]),
    r("efs", "describe_file_systems", "DescribeFileSystems", &["elasticfilesystem:DescribeFileSystems"]),
    r("efs", "describe_mount_target_security_groups", "DescribeMountTargetSecurityGroups", &["elasticfilesystem:DescribeMountTargetSecurityGroups"]),
    r("efs", "describe_mount_targets", "DescribeMountTargets", &["elasticfilesystem:DescribeMountTargets"]),
    w("efs", "create_access_point", "CreateAccessPoint", &["elasticfilesystem:CreateAccessPoint", "elasticfilesystem:TagResource"]),
    w("efs", "create_file_system", "CreateFileSystem", &["elasticfilesystem:CreateFileSystem", "elasticfilesystem:TagResource", "iam:CreateServiceLinkedRole"]),
    w("efs", "create_mount_target", "CreateMountTarget", &["elasticfilesystem:CreateMountTarget", "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces"]),
    w("efs", "delete_access_point", "DeleteAccessPoint", &["elasticfilesystem:DeleteAccessPoint"]),
    w("efs", "delete_file_system", "DeleteFileSystem", &["elasticfilesystem:DeleteFileSystem"]),
    w("efs", "delete_mount_target", "DeleteMountTarget", &["elasticfilesystem:DeleteMountTarget", "ec2:DeleteNetworkInterface"]),
    w("efs", "modify_mount_target_security_groups", "ModifyMountTargetSecurityGroups", &["elasticfilesystem:ModifyMountTargetSecurityGroups", "ec2:ModifyNetworkInterfaceAttribute"]),
    // ACM
    r("acm", "describe_certificate", "DescribeCertificate", &["acm:DescribeCertificate"]),
    r("acm", "list_certificates", "ListCertificates", &["acm:ListCertificates"]),
    r("acm", "list_tags_for_certificate", "ListTagsForCertificate", &["acm:ListTagsForCertificate"]),
    w("acm", "delete_certificate", "DeleteCertificate", &["acm:DeleteCertificate"]),
    w("acm", "request_certificate", "RequestCertificate", &["acm:RequestCertificate", "acm:AddTagsToCertificate"]),
    // IAM
    r("iam", "get_instance_profile", "GetInstanceProfile", &["iam:GetInstanceProfile"]),
    r("iam", "get_role", "GetRole", &["iam:GetRole"]),
    r("iam", "get_role_policy", "GetRolePolicy", &["iam:GetRolePolicy"]),
    r("iam", "list_instance_profiles", "ListInstanceProfiles", &["iam:ListInstanceProfiles"]),
    r("iam", "list_role_tags", "ListRoleTags", &["iam:ListRoleTags"]),
    r("iam", "list_roles", "ListRoles", &["iam:ListRoles"]),
    r("iam", "list_attached_role_policies", "ListAttachedRolePolicies", &["iam:ListAttachedRolePolicies"]),
    w("iam", "attach_role_policy", "AttachRolePolicy", &["iam:AttachRolePolicy"]),
    w("iam", "detach_role_policy", "DetachRolePolicy", &["iam:DetachRolePolicy"]),
    w("iam", "add_role_to_instance_profile", "AddRoleToInstanceProfile", &["iam:AddRoleToInstanceProfile", "iam:PassRole"]),
    w("iam", "create_instance_profile", "CreateInstanceProfile", &["iam:CreateInstanceProfile", "iam:TagInstanceProfile"]),
    w("iam", "create_role", "CreateRole", &["iam:CreateRole", "iam:TagRole"]),
    w("iam", "delete_instance_profile", "DeleteInstanceProfile", &["iam:DeleteInstanceProfile"]),
    w("iam", "delete_role", "DeleteRole", &["iam:DeleteRole"]),
    w("iam", "delete_role_policy", "DeleteRolePolicy", &["iam:DeleteRolePolicy"]),
    w("iam", "put_role_policy", "PutRolePolicy", &["iam:PutRolePolicy"]),
    w("iam", "remove_role_from_instance_profile", "RemoveRoleFromInstanceProfile", &["iam:RemoveRoleFromInstanceProfile"]),
    // S3: the artifact bucket, and the run lock's bucket.
    r("s3", "get_bucket_encryption", "GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    r("s3", "get_bucket_location", "GetBucketLocation", &["s3:GetBucketLocation"]),
    r("s3", "get_bucket_tagging", "GetBucketTagging", &["s3:GetBucketTagging"]),
    r("s3", "get_bucket_versioning", "GetBucketVersioning", &["s3:GetBucketVersioning"]),
    r("s3", "get_object", "GetObject", &["s3:GetObject"]),
    r("s3", "get_public_access_block", "GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"]),
    r("s3", "head_object", "HeadObject", &["s3:GetObject"]),
    r("s3", "list_buckets", "ListBuckets", &["s3:ListAllMyBuckets"]),
    r("s3", "list_object_versions", "ListObjectVersions", &["s3:ListBucketVersions"]),
    r("s3", "list_objects_v2", "ListObjectsV2", &["s3:ListBucket"]),
    w("s3", "create_bucket", "CreateBucket", &["s3:CreateBucket"]),
    w("s3", "delete_bucket", "DeleteBucket", &["s3:DeleteBucket"]),
    w("s3", "delete_object", "DeleteObject", &["s3:DeleteObject", "s3:DeleteObjectVersion"]),
    w("s3", "delete_objects", "DeleteObjects", &["s3:DeleteObject", "s3:DeleteObjectVersion"]),
    w("s3", "put_bucket_encryption", "PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    w("s3", "put_bucket_tagging", "PutBucketTagging", &["s3:PutBucketTagging"]),
    w("s3", "put_bucket_versioning", "PutBucketVersioning", &["s3:PutBucketVersioning"]),
    w("s3", "put_object", "PutObject", &["s3:PutObject"]),
    w("s3", "put_public_access_block", "PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    // Route 53
    r("route53", "list_hosted_zones", "ListHostedZones", &["route53:ListHostedZones"]),
    r("route53", "list_hosted_zones_by_name", "ListHostedZonesByName", &["route53:ListHostedZonesByName"]),
    r("route53", "list_resource_record_sets", "ListResourceRecordSets", &["route53:ListResourceRecordSets"]),
    w("route53", "change_resource_record_sets", "ChangeResourceRecordSets", &["route53:ChangeResourceRecordSets"]),
    // SSM: the public AMI parameter; `exec` runs a command on an instance.
    r("ssm", "get_parameter", "GetParameter", &["ssm:GetParameter"]),
    r("ssm", "get_command_invocation", "GetCommandInvocation", &["ssm:GetCommandInvocation"]),
    w("ssm", "send_command", "SendCommand", &["ssm:SendCommand"]),
    // CloudWatch Logs: the app's log group; `logs` reads its events.
    r("logs", "describe_log_groups", "DescribeLogGroups", &["logs:DescribeLogGroups"]),
    r("logs", "filter_log_events", "FilterLogEvents", &["logs:FilterLogEvents"]),
    r("logs", "list_tags_for_resource", "ListTagsForResource", &["logs:ListTagsForResource"]),
    w("logs", "create_log_group", "CreateLogGroup", &["logs:CreateLogGroup", "logs:TagResource"]),
    w("logs", "delete_log_group", "DeleteLogGroup", &["logs:DeleteLogGroup"]),
    w("logs", "put_retention_policy", "PutRetentionPolicy", &["logs:PutRetentionPolicy"]),
    // STS: GetCallerIdentity needs no permission ("GetCallerIdentity", STS
    // API reference); it is listed so the table covers every call.
    r("sts", "get_caller_identity", "GetCallerIdentity", &["sts:GetCallerIdentity"]),
];

/// The actions that authorize the tags a create carries, in the services
/// whose creates the stack's tag scopes (the rows' first actions are the
/// creates themselves).
pub(super) const TAG_ON_CREATE: &[&str] = &[
    "ec2:CreateTags",
    "elasticloadbalancing:AddTags",
    "autoscaling:CreateOrUpdateTags",
    "rds:AddTagsToResource",
    "elasticfilesystem:TagResource",
    "acm:AddTagsToCertificate",
];

/// The row for an API operation of a service (IAM prefix: `ec2`,
/// `elasticloadbalancing`, `elasticfilesystem`...), as a request names it.
pub fn call(service_prefix: &str, operation: &str) -> Option<&'static Call> {
    CALLS
        .iter()
        .find(|c| service(c.client) == Some(service_prefix) && c.operation == operation)
}

/// Every IAM action a scope needs.
pub fn actions(scope: Scope) -> BTreeSet<String> {
    CALLS
        .iter()
        .filter(|c| scope == Scope::Apply || c.access == Access::Read)
        .flat_map(|c| c.actions.iter().map(|a| a.to_string()))
        .collect()
}
