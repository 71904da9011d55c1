//! The policies read as an attacker holding them would read them.
//!
//! Each known way to turn IAM rights into more rights (the published
//! catalogues of IAM privilege escalation: Rhino Security Labs' "AWS IAM
//! Privilege Escalation – Methods and Mitigation", Bishop Fox's
//! iam-vulnerable, the paths `cloudsplaining` and `pacu` look for), and
//! each way to reach what belongs to another stack, is a request here that
//! the generated policy must refuse, with the statement or condition that
//! refuses it. Every statement of both documents must say why it opens no
//! such path ([`ANSWERS`]): a statement added without an answer fails.
//! What AWS gives no condition to close is listed as open ([`OPEN`]) and is
//! in the README's threat model.

use std::collections::BTreeSet;

use serde_json::Value;

use super::evaluate::{context, decide, Context, Decision};
use super::{boundary_document, policy, Scope};
use crate::stack::Stack;

pub(super) const ACCOUNT: &str = "123456789012";
pub(super) const REGION: &str = "us-east-1";
pub(super) const STACK: &str = "bookstore-prod";
const OTHER: &str = "other-stack";

/// Why each statement opens no way out of the stack.
const ANSWERS: &[(&str, &str)] = &[
    ("ReadOnly", "Describe and List calls that name no resource: metadata, no secret, no policy text (IAM lists give names, paths and trust policies)"),
    ("StackIamReads", "IAM reads of the stack's own roles, profiles and boundary only"),
    ("AmiParameter", "the public Amazon Linux AMI parameters only"),
    ("ArtifactBucketRead", "the stack's artifact buckets only"),
    ("StackLogGroups", "the stack's log groups only"),
    ("CreateTagged", "creates only resources carrying the stack's tag, naming only what the stack or no stack owns; tags a certificate no other stack claims"),
    ("Ec2TagOnCreate", "tags only as part of a create (ec2:CreateAction), with the stack's tag"),
    ("ElbTagOnCreate", "tags only as part of a create (elasticloadbalancing:CreateAction), with the stack's tag"),
    ("EfsTagOnCreate", "tags only as part of a create (elasticfilesystem:CreateAction), with the stack's tag"),
    ("NamedTagOnCreate", "tags only the stack's own RDS, Auto Scaling and secret names, with the stack's tag"),
    ("ManageOwned", "changes, deletes and retags only what carries the stack's tag, never handing it to another stack; launches only from its template into its subnets and security groups"),
    ("LaunchedInstances", "instances, volumes and interfaces only of a launch from a template"),
    ("PassRoleToEc2", "passes only the instance role, only to EC2; the role is capped by the boundary"),
    ("MountTargetEnis", "interfaces for EFS mount targets; deleting and changing attributes has no stack condition (OPEN)"),
    ("RdsManagedSecret", "the master user secrets RDS makes, never one tagged for another database"),
    ("RdsGroupsSnapshots", "parameter and option groups a database of the stack uses, and its snapshots"),
    ("RolesWithBoundary", "roles created and changed only with the stack's boundary attached"),
    ("AttachSsmCore", "one AWS managed policy, only to a role with the stack's boundary"),
    ("StackRolesProfiles", "tags, deletes and instance profiles under the stack's path; roles there carry the boundary"),
    ("ServiceLinkedRoles", "the service-linked roles of four services, which AWS defines"),
    ("RunCommandDocument", "one AWS document, AWS-RunShellScript"),
    ("RunCommandOnStack", "only instances carrying the stack's tag, whose role the boundary caps"),
    ("ArtifactBucketWrite", "the stack's artifact bucket only"),
    ("RunLock", "the stack's lock object in the shared lock bucket, which it cannot create or configure"),
    ("StackDnsRecords", "only the stack's record names, of the types it writes"),
    ("PassRoleToDlm", "passes only the stack's snapshot role, only to Data Lifecycle Manager; the role is capped by the boundary"),
    ("DlmTagOnCreate", "tags a lifecycle policy only with the stack's tag, never one another stack's tag claims; an untagged one can be (OPEN)"),
    ("ContainersCreateTagged", "the stack's repository, cluster, services and task definitions by their names, and scalable targets, each made or tagged with the stack's tag; never retags another stack's"),
    ("ContainersManageOwned", "pushes to, changes and deletes only the stack's repository, cluster, services and scalable targets while they carry its tag; pulls nothing"),
    ("ExecInStackTasks", "ECS Exec into the app container only, of tasks of the stack's cluster carrying its tag; the task role, capped by the boundary, is what a shell there holds"),
    ("EcsTaskDefinitions", "task definitions made with the stack's tag (RegisterTaskDefinition takes no resource); they run only where the stack's services and roles let them"),
    ("EcsDeregister", "deregisters task definitions, which stops no running task; any of the account's (OPEN)"),
    ("PassRoleToEcsTasks", "passes only the stack's two task roles, only to ECS tasks; both are capped by the boundary"),
    ("ScalingAlarms", "only the target tracking alarms of the stack's service"),
    ("DenyEscapes", "a deny: the boundary stays as the administrator made it, no role loses it, and the CI role becomes no other role, whatever trust policies say"),
];

/// Paths AWS offers no condition to close, allowed on purpose.
const OPEN: &[&str] = &[
    "delete a detached network interface of another stack",
    "change an interface's attributes other than its security groups",
    "tag an untagged certificate of the account, then delete it",
    "create a resource of the stack in an untagged network of the account",
    "give a role of the stack a trust policy naming anyone",
    "read the names, paths and trust policies of every role",
    "tag an untagged lifecycle policy of the account, then delete it",
    "deregister another task definition of the account",
    "put the stack's tasks behind another stack's target group",
];

fn stack() -> Stack {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/production.toml");
    crate::stack::load(&path).expect("the production stack loads")
}

pub(super) fn ec2(rest: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{rest}")
}

pub(super) fn iam(rest: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{rest}")
}

pub(super) fn ours() -> Context {
    context([("aws:ResourceTag/bookstore-infra:stack", STACK)])
}

pub(super) fn theirs() -> Context {
    context([("aws:ResourceTag/bookstore-infra:stack", OTHER)])
}

pub(super) fn with(mut c: Context, k: &str, v: &str) -> Context {
    c.insert(k.to_string(), vec![v.to_string()]);
    c
}

/// One request an attacker would make.
pub(super) struct Attack {
    pub(super) what: &'static str,
    pub(super) action: &'static str,
    pub(super) resource: String,
    pub(super) ctx: Context,
}

pub(super) fn attack(
    what: &'static str,
    action: &'static str,
    resource: String,
    ctx: Context,
) -> Attack {
    Attack {
        what,
        action,
        resource,
        ctx,
    }
}

fn boundary() -> String {
    iam(&format!(
        "policy/bookstore-infra/{STACK}/{STACK}-{REGION}-boundary"
    ))
}

pub(super) fn stack_role() -> String {
    iam(&format!(
        "role/bookstore-infra/{STACK}/{STACK}-{REGION}-app-role"
    ))
}

/// The escalation and takeover paths, each a request the apply policy must
/// refuse.
fn apply_attacks() -> Vec<Attack> {
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let new_role = iam(&format!("role/bookstore-infra/{STACK}/escalate"));
    let other_role = iam("role/some-admin-role");
    let boundary_ctx = |arn: &str| context([("iam:PermissionsBoundary", arn)]);
    let tag_req = |c: Context| {
        with(
            with(c, "aws:RequestTag/bookstore-infra:stack", STACK),
            "aws:RequestedRegion",
            REGION,
        )
    };
    vec![
        // Roles: new ones, changed ones, the boundary itself.
        attack("create a role with no boundary", "iam:CreateRole", new_role.clone(), Context::new()),
        attack("create a role with another boundary", "iam:CreateRole", new_role.clone(), boundary_ctx(admin)),
        attack("give a boundless role an inline policy", "iam:PutRolePolicy", new_role.clone(), Context::new()),
        attack("attach AdministratorAccess to a stack role", "iam:AttachRolePolicy", stack_role(), with(boundary_ctx(&boundary()), "iam:PolicyARN", admin)),
        attack("attach a policy to a role outside the stack", "iam:AttachRolePolicy", other_role.clone(), with(Context::new(), "iam:PolicyARN", admin)),
        attack("put an inline policy on a role outside the stack", "iam:PutRolePolicy", other_role.clone(), Context::new()),
        attack("swap a stack role's boundary for AdministratorAccess", "iam:PutRolePermissionsBoundary", stack_role(), boundary_ctx(admin)),
        attack("remove a stack role's boundary", "iam:DeleteRolePermissionsBoundary", stack_role(), boundary_ctx(&boundary())),
        attack("rewrite the boundary", "iam:CreatePolicyVersion", boundary(), Context::new()),
        attack("roll the boundary back to an old version", "iam:SetDefaultPolicyVersion", boundary(), Context::new()),
        attack("delete the boundary", "iam:DeletePolicy", boundary(), Context::new()),
        attack("create a managed policy", "iam:CreatePolicy", iam("policy/anything"), Context::new()),
        attack("trust yourself from a role outside the stack", "iam:UpdateAssumeRolePolicy", other_role.clone(), Context::new()),
        attack("assume a stack role", "sts:AssumeRole", stack_role(), Context::new()),
        attack("pass a role outside the stack", "iam:PassRole", other_role.clone(), context([("iam:PassedToService", "ec2.amazonaws.com")])),
        attack("pass the stack's role to Lambda", "iam:PassRole", stack_role(), context([("iam:PassedToService", "lambda.amazonaws.com")])),
        attack("pass a stack role other than the instance role", "iam:PassRole", new_role, context([("iam:PassedToService", "ec2.amazonaws.com")])),
        // Users and groups: none is ever granted.
        attack("create an access key", "iam:CreateAccessKey", iam("user/admin"), Context::new()),
        attack("set a console password", "iam:CreateLoginProfile", iam("user/admin"), Context::new()),
        attack("change a console password", "iam:UpdateLoginProfile", iam("user/admin"), Context::new()),
        attack("attach a user policy", "iam:AttachUserPolicy", iam("user/me"), Context::new()),
        attack("put a user policy", "iam:PutUserPolicy", iam("user/me"), Context::new()),
        attack("attach a group policy", "iam:AttachGroupPolicy", iam("group/g"), Context::new()),
        attack("put a group policy", "iam:PutGroupPolicy", iam("group/g"), Context::new()),
        attack("join an admin group", "iam:AddUserToGroup", iam("group/admins"), Context::new()),
        // Services that run code with a passed role.
        attack("run a Lambda function", "lambda:CreateFunction", format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"), Context::new()),
        attack("run a CloudFormation stack", "cloudformation:CreateStack", format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/x/*"), Context::new()),
        attack("run a Glue endpoint", "glue:CreateDevEndpoint", format!("arn:aws:glue:{REGION}:{ACCOUNT}:devEndpoint/x"), Context::new()),
        attack("run a CodeBuild project", "codebuild:CreateProject", format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/x"), Context::new()),
        attack("open an SSH key on an instance", "ec2-instance-connect:SendSSHPublicKey", ec2("instance/i-1"), Context::new()),
        attack("start a shell on any instance", "ssm:StartSession", ec2("instance/i-1"), Context::new()),
        // Instances and what runs on them.
        attack("launch without a launch template", "ec2:RunInstances", ec2("instance/*"), Context::new()),
        attack("launch from another stack's template", "ec2:RunInstances", ec2("launch-template/lt-1"), theirs()),
        attack("launch into another stack's subnet", "ec2:RunInstances", ec2("subnet/subnet-1"), theirs()),
        attack("change another stack's launch template", "ec2:CreateLaunchTemplateVersion", ec2("launch-template/lt-1"), theirs()),
        attack("point another stack's group at our template", "autoscaling:UpdateAutoScalingGroup", format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/x"), theirs()),
        attack("run a command on another stack's instance", "ssm:SendCommand", ec2("instance/i-1"), context([("ssm:resourceTag/bookstore-infra:stack", OTHER)])),
        attack("replace an instance's user data", "ec2:ModifyInstanceAttribute", ec2("instance/i-1"), theirs()),
        // Adopting what is not ours by tagging it.
        attack("tag another stack's database as ours", "rds:AddTagsToResource", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{OTHER}-db"), tag_req(theirs())),
        attack("tag an untagged database as ours", "rds:AddTagsToResource", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:legacy"), tag_req(Context::new())),
        attack("tag a foreign load balancer as ours", "elasticloadbalancing:AddTags", format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/x/1"), tag_req(Context::new())),
        attack("tag a foreign file system as ours", "elasticfilesystem:TagResource", format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-1"), tag_req(Context::new())),
        attack("tag a foreign VPC as ours", "ec2:CreateTags", ec2("vpc/vpc-1"), tag_req(Context::new())),
        attack("tag a foreign group as ours", "autoscaling:CreateOrUpdateTags", format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/x"), tag_req(Context::new())),
        attack("tag another stack's certificate as ours", "acm:AddTagsToCertificate", format!("arn:aws:acm:{REGION}:{ACCOUNT}:certificate/c"), tag_req(theirs())),
        attack("hand one of ours to another stack", "rds:AddTagsToResource", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{STACK}-db"), with(ours(), "aws:RequestTag/bookstore-infra:stack", OTHER)),
        attack("change another stack's database", "rds:ModifyDBInstance", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{OTHER}-db"), theirs()),
        attack("delete another stack's database", "rds:DeleteDBInstance", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{OTHER}-db"), theirs()),
        attack("delete an untagged VPC", "ec2:DeleteVpc", ec2("vpc/vpc-1"), Context::new()),
        attack("create the stack's resources in another region", "ec2:CreateVpc", format!("arn:aws:ec2:eu-west-1:{ACCOUNT}:vpc/*"), with(with(Context::new(), "aws:RequestTag/bookstore-infra:stack", STACK), "aws:RequestedRegion", "eu-west-1")),
        attack("create a subnet in another stack's VPC", "ec2:CreateSubnet", ec2("vpc/vpc-1"), tag_req(theirs())),
        attack("add a listener to another stack's load balancer", "elasticloadbalancing:CreateListener", format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/x/1"), tag_req(theirs())),
        // Networks, names, buckets.
        attack("put our security group on another stack's interface", "ec2:ModifyNetworkInterfaceAttribute", ec2("security-group/sg-1"), theirs()),
        attack("make an interface in another stack's subnet", "ec2:CreateNetworkInterface", ec2("subnet/subnet-1"), theirs()),
        attack("open another stack's security group", "ec2:AuthorizeSecurityGroupIngress", ec2("security-group/sg-1"), theirs()),
        attack("change a record outside the stack's names", "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1".into(), Context::from([("route53:ChangeResourceRecordSetsNormalizedRecordNames".to_string(), vec!["shop.example.com".to_string(), "mail.example.com".to_string()]), ("route53:ChangeResourceRecordSetsRecordTypes".to_string(), vec!["A".to_string()])])),
        attack("take the domain's mail", "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1".into(), Context::from([("route53:ChangeResourceRecordSetsNormalizedRecordNames".to_string(), vec!["shop.example.com".to_string()]), ("route53:ChangeResourceRecordSetsRecordTypes".to_string(), vec!["MX".to_string()])])),
        attack("write into another bucket", "s3:PutObject", "arn:aws:s3:::someone-else/x".into(), Context::new()),
        attack("open a bucket to the world", "s3:PutBucketPolicy", "arn:aws:s3:::someone-else".into(), Context::new()),
        attack("read a secret", "secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x"), Context::new()),
        attack("delete another stack's logs", "logs:DeleteLogGroup", format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bookstore-infra/{OTHER}/app"), Context::new()),
        attack("turn off the shared lock bucket's public-access block", "s3:PutBucketPublicAccessBlock", format!("arn:aws:s3:::bookstore-infra-locks-{ACCOUNT}-{REGION}"), Context::new()),
        attack("delete another database's master secret", "secretsmanager:DeleteSecret", format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1"), context([("aws:ResourceTag/aws:rds:primaryDBInstanceArn", format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{OTHER}-db"))])),
        attack("take another stack's lock", "s3:PutObject", format!("arn:aws:s3:::bookstore-infra-locks-{ACCOUNT}-{REGION}/bookstore-infra/{OTHER}/lock.json"), Context::new()),
    ]
}

/// What the plan role must not read.
fn plan_attacks() -> Vec<Attack> {
    vec![
        attack(
            "read a role's policy outside the stack",
            "iam:GetRolePolicy",
            iam("role/some-admin-role"),
            Context::new(),
        ),
        attack(
            "read a role outside the stack",
            "iam:GetRole",
            iam("role/some-admin-role"),
            Context::new(),
        ),
        attack(
            "read Run Command output",
            "ssm:GetCommandInvocation",
            "*".into(),
            Context::new(),
        ),
        attack(
            "read another bucket",
            "s3:GetObject",
            "arn:aws:s3:::someone-else/x".into(),
            Context::new(),
        ),
        attack(
            "read another stack's logs",
            "logs:FilterLogEvents",
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bookstore-infra/{OTHER}/app"),
            Context::new(),
        ),
        attack(
            "read a secret",
            "secretsmanager:GetSecretValue",
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x"),
            Context::new(),
        ),
        attack(
            "read a parameter",
            "ssm:GetParameter",
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/db-password"),
            Context::new(),
        ),
        attack("change anything", "ec2:DeleteVpc", ec2("vpc/vpc-1"), ours()),
    ]
}

/// What a role made with the boundary can never do, whatever policy the
/// apply role gives it.
fn boundary_attacks() -> Vec<Attack> {
    let tag = "aws:ResourceTag/bookstore-infra:stack";
    vec![
        attack("anything of IAM", "iam:CreateRole", iam("role/x"), Context::new()),
        attack("another bucket's objects", "s3:GetObject", "arn:aws:s3:::someone-else/x".into(), Context::new()),
        attack("another database's master secret", "secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1"), context([("secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn", &format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{OTHER}-db"))])),
        attack("another stack's secret", "secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x"), context([(tag, OTHER)])),
        attack("another stack's file system", "elasticfilesystem:ClientWrite", format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-1"), context([(tag, OTHER)])),
        attack("root on the file system", "elasticfilesystem:ClientRootAccess", format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-1"), ours()),
        attack("another stack's logs", "logs:PutLogEvents", format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bookstore-infra/{OTHER}/app:log-stream:i-1"), Context::new()),
        attack("every parameter of the account", "ssm:GetParameter", format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/db-password"), Context::new()),
        attack("run commands elsewhere", "ssm:SendCommand", ec2("instance/i-1"), Context::new()),
        attack("launch instances", "ec2:RunInstances", ec2("instance/*"), Context::new()),
    ]
}

fn sids(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap().to_string())
        .collect()
}

/// The single shape's stack of the same name, region and domain.
pub(super) fn single() -> Stack {
    let text = format!(
        "name = \"{STACK}\"\nregion = \"{REGION}\"\nshape = \"single\"\n[domain]\nname = \"shop.example.com\"\nhosted_zone = \"example.com\"\n"
    );
    crate::stack::parse(std::path::Path::new("single.toml"), &text).unwrap()
}

#[test]
fn every_statement_answers_why_it_opens_no_way_out() {
    let answered: BTreeSet<String> = ANSWERS.iter().map(|(sid, _)| sid.to_string()).collect();
    let mut seen = BTreeSet::new();
    for (s, scope) in [stack(), single(), super::escalation_fargate::fargate()]
        .into_iter()
        .flat_map(|s| [(s.clone(), Scope::Plan), (s, Scope::Apply)])
    {
        for account in [Some(ACCOUNT), None] {
            let found = sids(&policy(&s, account, scope));
            let unanswered: Vec<_> = found.difference(&answered).collect();
            assert!(
                unanswered.is_empty(),
                "{scope:?}: statements without an answer in ANSWERS: {unanswered:?}"
            );
            seen.extend(found);
        }
    }
    let stale: Vec<_> = answered.difference(&seen).collect();
    assert!(
        stale.is_empty(),
        "answers for statements no policy has: {stale:?}"
    );
}

#[test]
fn the_apply_policy_refuses_every_known_escalation_and_takeover() {
    let doc = policy(&stack(), Some(ACCOUNT), Scope::Apply);
    let attacks = apply_attacks();
    assert!(attacks.len() >= 50);
    let allowed: Vec<String> = attacks
        .iter()
        .filter(|a| decide(&doc, a.action, &a.resource, &a.ctx) == Decision::Allow)
        .map(|a| {
            format!(
                "{}: {} on {} with {:?}",
                a.what, a.action, a.resource, a.ctx
            )
        })
        .collect();
    assert!(
        allowed.is_empty(),
        "the apply policy allows:\n{}",
        allowed.join("\n")
    );
    // The denials hold even if the role is given more by another policy.
    for (action, resource) in [
        ("iam:DeleteRolePermissionsBoundary", stack_role()),
        ("iam:CreatePolicyVersion", boundary()),
        ("sts:AssumeRole", stack_role()),
    ] {
        assert_eq!(
            decide(&doc, action, &resource, &Context::new()),
            Decision::ExplicitDeny,
            "{action}"
        );
    }
}

#[test]
fn the_tool_s_own_requests_pass_where_the_attacks_fail() {
    // The same keys with the stack's own values are allowed: the refusals
    // above come from the conditions, not from a missing action.
    let doc = policy(&stack(), Some(ACCOUNT), Scope::Apply);
    let b = boundary();
    let allowed = [
        (
            "iam:CreateRole",
            iam(&format!("role/bookstore-infra/{STACK}/x")),
            context([("iam:PermissionsBoundary", b.as_str())]),
        ),
        (
            "iam:PassRole",
            stack_role(),
            context([("iam:PassedToService", "ec2.amazonaws.com")]),
        ),
        ("ec2:RunInstances", ec2("launch-template/lt-1"), ours()),
        (
            "ec2:RunInstances",
            ec2("instance/*"),
            context([("ec2:LaunchTemplate", &ec2("launch-template/lt-1"))]),
        ),
        (
            "rds:AddTagsToResource",
            format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{STACK}-db"),
            context([("aws:RequestTag/bookstore-infra:stack", STACK)]),
        ),
        (
            "elasticloadbalancing:AddTags",
            format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/x/1"),
            context([
                ("aws:RequestTag/bookstore-infra:stack", STACK),
                ("elasticloadbalancing:CreateAction", "CreateLoadBalancer"),
            ]),
        ),
        (
            "rds:ModifyDBInstance",
            format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{STACK}-db"),
            ours(),
        ),
        (
            "ec2:ModifyNetworkInterfaceAttribute",
            ec2("security-group/sg-1"),
            ours(),
        ),
    ];
    for (action, resource, ctx) in allowed {
        assert_eq!(
            decide(&doc, action, &resource, &ctx),
            Decision::Allow,
            "{action} on {resource}"
        );
    }
    let route53 = Context::from([
        (
            "route53:ChangeResourceRecordSetsNormalizedRecordNames".to_string(),
            vec![
                "shop.example.com".to_string(),
                "_x1.www.shop.example.com".to_string(),
            ],
        ),
        (
            "route53:ChangeResourceRecordSetsRecordTypes".to_string(),
            vec!["A".to_string(), "CNAME".to_string()],
        ),
    ]);
    let names = super::statements::record_names(&stack());
    assert!(names.iter().any(|n| n == "shop.example.com"), "{names:?}");
    assert_eq!(
        decide(
            &doc,
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z1",
            &route53
        ),
        Decision::Allow,
        "{names:?}"
    );
}

#[test]
fn what_stays_open_is_open_as_the_threat_model_says() {
    let doc = policy(&stack(), Some(ACCOUNT), Scope::Apply);
    let mine = context([
        ("aws:RequestTag/bookstore-infra:stack", STACK),
        ("aws:RequestedRegion", REGION),
    ]);
    let open = [
        (
            "ec2:DeleteNetworkInterface",
            ec2("network-interface/eni-1"),
            theirs(),
        ),
        (
            "ec2:ModifyNetworkInterfaceAttribute",
            ec2("network-interface/eni-1"),
            theirs(),
        ),
        (
            "acm:AddTagsToCertificate",
            format!("arn:aws:acm:{REGION}:{ACCOUNT}:certificate/c"),
            mine.clone(),
        ),
        ("ec2:CreateSubnet", ec2("vpc/vpc-legacy"), mine),
        (
            "iam:UpdateAssumeRolePolicy",
            stack_role(),
            context([("iam:PermissionsBoundary", boundary())]),
        ),
        ("iam:ListRoles", "*".to_string(), Context::new()),
    ];
    // The single shape's own: a lifecycle policy no stack's tag claims.
    let one = policy(&single(), Some(ACCOUNT), Scope::Apply);
    let untagged_policy = (
        "dlm:TagResource",
        format!("arn:aws:dlm:{REGION}:{ACCOUNT}:policy/p-untagged"),
        context([("aws:RequestTag/bookstore-infra:stack", STACK)]),
    );
    // The Fargate runtime's own: task definitions take no resource, and
    // ECS takes a service's target group with no condition on it.
    let containers = policy(
        &super::escalation_fargate::fargate(),
        Some(ACCOUNT),
        Scope::Apply,
    );
    let any_task_definition = (
        "ecs:DeregisterTaskDefinition",
        "*".to_string(),
        Context::new(),
    );
    let service_behind_theirs = (
        "ecs:CreateService",
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{STACK}/intruder"),
        context([("aws:RequestTag/bookstore-infra:stack", STACK)]),
    );
    let open: Vec<(&Value, _)> = open
        .iter()
        .map(|o| (&doc, o.clone()))
        .chain([(&one, untagged_policy)])
        .chain([
            (&containers, any_task_definition),
            (&containers, service_behind_theirs),
        ])
        .collect();
    assert_eq!(open.len(), OPEN.len());
    for ((doc, (action, resource, ctx)), what) in open.iter().zip(OPEN) {
        assert_eq!(
            decide(doc, action, resource, ctx),
            Decision::Allow,
            "{what}: AWS added a condition? close it and move it to the attacks"
        );
    }
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for what in OPEN {
        assert!(
            readme.contains(what),
            "the README's threat model does not say: {what}"
        );
    }
}

#[test]
fn the_plan_policy_reads_the_stack_only() {
    let doc = policy(&stack(), Some(ACCOUNT), Scope::Plan);
    for a in plan_attacks() {
        assert_ne!(
            decide(&doc, a.action, &a.resource, &a.ctx),
            Decision::Allow,
            "{}",
            a.what
        );
    }
}

#[test]
fn the_boundary_caps_any_role_the_apply_role_makes() {
    let s = stack();
    let doc = boundary_document(&s, Some(ACCOUNT));
    for a in boundary_attacks() {
        assert_ne!(
            decide(&doc, a.action, &a.resource, &a.ctx),
            Decision::Allow,
            "{}",
            a.what
        );
    }
    // And lets the instances do their work.
    let bucket = crate::resources::s3::bucket_name(STACK, ACCOUNT, REGION);
    let db = format!("arn:aws:rds:{REGION}:{ACCOUNT}:db:{STACK}-db");
    for (action, resource, ctx) in [
        ("s3:GetObject", format!("arn:aws:s3:::{bucket}/releases/x"), Context::new()),
        ("secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1"), context([("secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn", db.as_str())])),
        ("elasticfilesystem:ClientWrite", format!("arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-1"), ours()),
        ("logs:PutLogEvents", format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bookstore-infra/{STACK}/app:log-stream:i-1"), Context::new()),
        ("ssmmessages:OpenControlChannel", "*".to_string(), Context::new()),
    ] {
        assert_eq!(decide(&doc, action, &resource, &ctx), Decision::Allow, "{action}");
    }
}
