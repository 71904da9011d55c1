//! Every name and value a stack composes, checked against AWS's rules
//! ([`super::rules`]) before any API call.
//!
//! The desired resources are built offline from placeholder facts of the
//! lengths a real run looks up (a 12-digit account, the stack's region or
//! `us-east-1`, zones `<region>a`..., an AMI id, a sha256), so that every
//! composed value is exactly as long as it will be. A refusal is located
//! at the stack key whose value made the composed one break the rule.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::engine::refs::{resolve, Resolution};
use crate::engine::{client_token, owner_tags, Attrs, Desired};
use crate::resources::{
    autoscaling_group, certificate, db_instance, db_subnet_group, dns_alias, efs_access_point,
    efs_file_system, iam, launch_template, load_balancer, log_group, s3, security_group,
    target_group,
};
use crate::stack::{Stack, StackError, Topology};
use crate::userdata::{self, UserDataError, UserDataVars};

use super::rules::{self, Broken, Rule};
use super::{AppFacts, Facts};

/// The region composed names are checked for when the stack names none.
pub const PLACEHOLDER_REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// Which property of which kind obeys which rule, and the key blamed when
/// no key's value can be found in the refused one.
const PROPS: &[(&str, &str, Rule, &str)] = &[
    (
        security_group::KIND,
        "name",
        rules::SECURITY_GROUP_NAME,
        "name",
    ),
    (
        security_group::KIND,
        "description",
        rules::SECURITY_GROUP_DESCRIPTION,
        "name",
    ),
    (
        db_subnet_group::KIND,
        "name",
        rules::DB_SUBNET_GROUP_NAME,
        "name",
    ),
    (
        db_instance::KIND,
        "identifier",
        rules::DB_INSTANCE_IDENTIFIER,
        "name",
    ),
    (
        db_instance::KIND,
        "db_name",
        rules::MYSQL_DB_NAME,
        "database.name",
    ),
    (
        db_instance::KIND,
        "master_username",
        rules::MYSQL_MASTER_USERNAME,
        "database.username",
    ),
    (target_group::KIND, "name", rules::TARGET_GROUP_NAME, "name"),
    (
        load_balancer::KIND,
        "name",
        rules::LOAD_BALANCER_NAME,
        "name",
    ),
    (
        certificate::KIND,
        "domain",
        rules::CERTIFICATE_DOMAIN,
        "domain.name",
    ),
    (
        certificate::KIND,
        "alternative_names",
        rules::CERTIFICATE_ALTERNATIVE_NAME,
        "domain.alternative_names",
    ),
    (
        dns_alias::KIND,
        "name",
        rules::DNS_RECORD_NAME,
        "domain.name",
    ),
    (s3::BUCKET, "name", rules::BUCKET_NAME, "name"),
    (s3::ARTIFACT, "key", rules::OBJECT_KEY, "app"),
    (log_group::KIND, "name", rules::LOG_GROUP_NAME, "name"),
    (iam::ROLE, "name", rules::IAM_ROLE_NAME, "name"),
    (iam::ROLE, "path", rules::IAM_PATH, "name"),
    (
        iam::PROFILE,
        "name",
        rules::IAM_INSTANCE_PROFILE_NAME,
        "name",
    ),
    (iam::PROFILE, "path", rules::IAM_PATH, "name"),
    (
        launch_template::KIND,
        "name",
        rules::LAUNCH_TEMPLATE_NAME,
        "name",
    ),
    (
        autoscaling_group::KIND,
        "name",
        rules::AUTO_SCALING_GROUP_NAME,
        "name",
    ),
];

/// A composed value that breaks a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The resource's logical id.
    pub resource: String,
    pub kind: &'static str,
    /// What of the resource: a property, `tag Name`, `user data`...
    pub field: String,
    pub value: String,
    pub rule: &'static str,
    pub broken: Broken,
    /// The key blamed when no key's value is found in `value`.
    pub default_key: &'static str,
}

/// The first composed name or value of `stack` that AWS would refuse,
/// located at the key that caused it.
pub fn composed(stack: &Stack) -> Result<(), StackError> {
    match violations(stack).first() {
        Some(v) => Err(located(stack, v)),
        None => Ok(()),
    }
}

/// Facts of the lengths a real run looks up, without looking anything up.
pub fn placeholder_facts(stack: &Stack) -> Facts {
    let region = stack
        .region
        .clone()
        .unwrap_or_else(|| PLACEHOLDER_REGION.to_string());
    let zones = match &stack.network.zones {
        Some(z) => z.clone(),
        None => (0..stack.network.az_count)
            .map(|i| format!("{region}{}", char::from(b'a' + i as u8)))
            .collect(),
    };
    let app = (stack.topology == Topology::Full).then(|| AppFacts {
        account: ACCOUNT.into(),
        ami: (stack.app.ami.clone()).unwrap_or_else(|| "ami-0123456789abcdef0".into()),
        root_device: "/dev/xvda".into(),
        root_volume_gib: 8,
        binary: PathBuf::from("bookstore"),
        sha256: "0123456789abcdef".repeat(4),
        commit: Some("0123456789".repeat(4)),
        kept: Vec::new(),
        image: None,
        kept_images: Vec::new(),
        pinned: None,
        hosted_zone_id: stack
            .domain
            .as_ref()
            .and_then(|d| d.hosted_zone.as_ref())
            .map(|_| "Z0123456789ABCDEFGHIJ".into()),
        region,
    });
    Facts { zones, app }
}

/// Every composed value of `stack` that breaks its rule, in the order of
/// the desired resources.
pub fn violations(stack: &Stack) -> Vec<Violation> {
    let facts = placeholder_facts(stack);
    let desired = super::desired(stack, &facts);
    let attrs = placeholder_attrs(&desired, &facts);
    let mut out = Vec::new();
    for d in &desired {
        let mut check = |field: String, value: &str, rule: Rule, default_key| {
            if let Err(broken) = rule.check(value) {
                out.push(Violation {
                    resource: d.id.clone(),
                    kind: d.kind,
                    field,
                    value: value.to_string(),
                    rule: rule.what,
                    broken,
                    default_key,
                });
            }
        };
        for (k, v) in owner_tags(&stack.name, &d.id) {
            check(format!("tag key {k:?}"), &k, rules::TAG_KEY, "name");
            check(format!("tag {k}"), &v, rules::TAG_VALUE, "name");
        }
        let token = client_token(&stack.name, &d.id);
        check("client token".into(), &token, rules::CLIENT_TOKEN, "name");
        for (_, prop, rule, key) in PROPS.iter().filter(|p| p.0 == d.kind) {
            match d.props.get(*prop) {
                Some(Value::String(s)) => check(prop.to_string(), s, *rule, key),
                Some(Value::Array(items)) => {
                    for (i, s) in items.iter().filter_map(Value::as_str).enumerate() {
                        check(format!("{prop}[{i}]"), s, *rule, key);
                    }
                }
                _ => {}
            }
        }
        if d.kind == launch_template::KIND {
            if let Some(v) = user_data(d, &attrs) {
                out.push(v);
            }
        }
    }
    out
}

/// The boot script of a launch template, rendered with the placeholder
/// attributes: a value it refuses, or a script over the size limit.
fn user_data(d: &Desired, attrs: &BTreeMap<String, Attrs>) -> Option<Violation> {
    let vars = d.props.get("user_data")?.get("vars")?;
    let Resolution::Known(vars) = resolve(vars, &|id| attrs.get(id)) else {
        return None;
    };
    let vars: UserDataVars = serde_json::from_value(vars).ok()?;
    let v = |field: String, value: String, rule, broken| Violation {
        resource: d.id.clone(),
        kind: d.kind,
        field,
        value,
        rule,
        broken,
        default_key: "app",
    };
    match userdata::render(&vars) {
        Err(UserDataError::Unsafe { name, value, why }) => {
            let over = value.len().checked_sub(userdata::MAX_VALUE_LEN);
            let broken = Broken {
                why: why.to_string(),
                over: over.filter(|n| *n > 0),
                at: None,
            };
            let field = format!("user data value `{name}`");
            Some(v(field, value, "the boot script's values", broken))
        }
        Ok(script) => rules::USER_DATA
            .check(&script)
            .err()
            .map(|broken| v("user data".into(), script, rules::USER_DATA.what, broken)),
    }
}

/// What the references among the desired resources resolve to once they
/// exist, as long as AWS makes them: ids, ARNs, the database's endpoint
/// and secret.
fn placeholder_attrs(desired: &[Desired], facts: &Facts) -> BTreeMap<String, Attrs> {
    let region = facts
        .app
        .as_ref()
        .map_or(PLACEHOLDER_REGION, |a| a.region.as_str());
    desired
        .iter()
        .map(|d| {
            let prop = |k: &str| d.props.get(k).and_then(Value::as_str).unwrap_or_default();
            let mut a = Attrs::new();
            let id = match d.kind {
                s3::BUCKET => prop("name").to_string(),
                efs_file_system::KIND => "fs-0123456789abcdef0".into(),
                efs_access_point::KIND => "fsap-0123456789abcdef0".into(),
                crate::resources::volume::KIND => "vol-0123456789abcdef0".into(),
                crate::resources::elastic_ip::KIND => "eipalloc-0123456789abcdef0".into(),
                _ => format!("{}-0123456789abcdef0", d.id),
            };
            a.insert("arn".into(), format!("arn:aws:x:{region}:{ACCOUNT}:{id}"));
            a.insert("id".into(), id);
            if d.kind == db_instance::KIND {
                let host = format!(
                    "{}.c0123456789a.{region}.rds.amazonaws.com",
                    prop("identifier")
                );
                a.insert("endpoint".into(), host);
                let secret = "rds!db-01234567-89ab-cdef-0123-456789abcdef-AbCdEf";
                let arn = format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret}");
                a.insert("secret_arn".into(), arn);
            }
            if d.kind == crate::resources::elastic_ip::KIND {
                a.insert("public_ip".into(), "203.0.113.255".into());
            }
            if d.kind == crate::resources::secret::KIND {
                let arn = format!(
                    "arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{}-AbCdEf",
                    prop("name")
                );
                a.insert("arn".into(), arn);
            }
            (d.id.clone(), a)
        })
        .collect()
}

/// A value of the stack file that composed values are made from.
struct Input {
    /// The key as messages name it.
    shown: String,
    /// Where it may be written, in order.
    keys: Vec<String>,
    value: String,
}

fn inputs(stack: &Stack) -> Vec<Input> {
    let one = |shown: &str, keys: &[&str], value: &str| Input {
        shown: shown.to_string(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        value: value.to_string(),
    };
    let mut out = vec![one("name", &["name", "stack.name"], &stack.name)];
    if let Some(r) = &stack.region {
        out.push(one("region", &["region", "stack.region"], r));
    }
    for (i, z) in stack.network.zones.iter().flatten().enumerate() {
        let key = format!("network.zones.{i}");
        out.push(one(
            &format!("network.zones[{i}]"),
            &[&key, "network.zones"],
            z,
        ));
    }
    out.push(one("app.data_dir", &["app.data_dir"], &stack.app.data_dir));
    out.push(one(
        "database.name",
        &["database.name"],
        &stack.database.name,
    ));
    let user = &stack.database.username;
    out.push(one("database.username", &["database.username"], user));
    if let Some(d) = &stack.domain {
        out.push(one("domain.name", &["domain.name"], &d.name));
        for (i, n) in d.alternative_names.iter().enumerate() {
            let key = format!("domain.alternative_names.{i}");
            let shown = format!("domain.alternative_names[{i}]");
            out.push(one(&shown, &[&key, "domain.alternative_names"], n));
        }
    }
    out
}

/// The input whose value made `v` break its rule: the one written where
/// the refused part is; for a limit on length, the one taking the most
/// room, if shortening it can be enough; else the one taking the most room.
fn blame<'a>(v: &Violation, inputs: &'a [Input]) -> Option<&'a Input> {
    let spans = |i: &Input| -> Vec<std::ops::Range<usize>> {
        if i.value.is_empty() {
            return Vec::new();
        }
        let n = i.value.len();
        v.value
            .match_indices(&i.value)
            .map(|(at, _)| at..at + n)
            .collect()
    };
    let room = |i: &&Input| spans(i).iter().map(|s| s.len()).sum::<usize>();
    if let Some(at) = &v.broken.at {
        let overlap = |i: &&Input| {
            spans(i)
                .iter()
                .map(|s| s.end.min(at.end).saturating_sub(s.start.max(at.start)))
                .max()
                .unwrap_or(0)
        };
        return inputs
            .iter()
            .filter(|i| overlap(i) > 0)
            .max_by_key(|i| (overlap(i), room(i)));
    }
    let most = inputs.iter().filter(|i| room(i) > 0).max_by_key(room)?;
    match v.broken.over {
        Some(over) if room(&most) < over => None,
        _ => Some(most),
    }
}

/// The message about `v`, at the key that caused it.
fn located(stack: &Stack, v: &Violation) -> StackError {
    let inputs = inputs(stack);
    let culprit = blame(v, &inputs);
    let (shown, keys, what) = match culprit {
        Some(i) => (
            format!("`{}`", i.shown),
            i.keys.clone(),
            format!("`{}` = {}", i.shown, brief(&i.value)),
        ),
        None => match v.default_key {
            "name" => (
                "`name`".into(),
                vec!["name".into(), "stack.name".into()],
                format!("`name` = {:?}", stack.name.as_str()),
            ),
            key if !key.contains('.') => (
                format!("what [{key}] sets"),
                vec![key.to_string()],
                format!("[{key}]"),
            ),
            key => (
                format!("`{key}`"),
                vec![key.to_string()],
                format!("`{key}`"),
            ),
        },
    };
    let fix = match v.broken.over {
        Some(n) => format!("shorten {shown} by at least {n} characters"),
        None => format!("change {shown}"),
    };
    let message = format!(
        "{what} makes the {} of {} ({}) {}, which {} refuses: {}; {fix}",
        v.field,
        short(&v.resource),
        v.kind,
        brief(&v.value),
        v.rule,
        v.broken.why
    );
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    stack.origin.error(&keys, message)
}

/// A logical id as messages name it: long ones cut short.
fn short(id: &str) -> String {
    match id.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &id[..i]),
        None => id.to_string(),
    }
}

/// A value as messages quote it: long ones cut short, with their length.
fn brief(s: &str) -> String {
    if s.chars().count() <= 80 {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(40).collect();
    format!(
        "\"{}...\" ({} characters)",
        head.escape_debug(),
        s.chars().count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn stack(text: &str) -> Stack {
        crate::stack::parse(Path::new("stacks/t.toml"), text).unwrap()
    }

    fn err(text: &str) -> String {
        composed(&stack(text)).unwrap_err().to_string()
    }

    #[test]
    fn shipped_stacks_compose_only_names_aws_accepts() {
        for f in ["demo", "production", "network"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("stacks/{f}.toml"));
            let s = crate::stack::load(&path).unwrap();
            assert_eq!(violations(&s), Vec::new(), "{f}");
        }
    }

    #[test]
    fn placeholder_facts_have_the_lengths_of_real_ones() {
        let s = stack(
            "name = \"d\"\n[domain]\nname = \"a.example.com\"\nhosted_zone = \"example.com\"\n",
        );
        let f = placeholder_facts(&s);
        assert_eq!(f.zones, ["us-east-1a", "us-east-1b"]);
        let a = f.app.unwrap();
        assert_eq!((a.region.as_str(), a.account.len()), ("us-east-1", 12));
        assert_eq!((a.sha256.len(), a.ami.len()), (64, 21));
        assert!(a.hosted_zone_id.is_some());
        let s = stack("name = \"d\"\nregion = \"eu-west-3\"\ntopology = \"network\"\n[network]\naz_count = 3\n");
        let f = placeholder_facts(&s);
        assert_eq!(f.zones, ["eu-west-3a", "eu-west-3b", "eu-west-3c"]);
        assert!(f.app.is_none());
    }

    #[test]
    fn a_security_group_name_starting_sg_is_refused_at_the_name() {
        let e = err("name = \"sg-shop\"\n");
        assert!(e.starts_with("stacks/t.toml:1:8: `name` = \"sg-shop\" makes the name of sg-lb (ec2:security-group) \"sg-shop-sg-lb\""), "{e}");
        assert!(
            e.contains("EC2 CreateSecurityGroup `GroupName` refuses: it must not start with \"sg-\"; change `name`"),
            "{e}"
        );
        let e = err("[stack]\nname = \"sg\"\n");
        assert!(e.starts_with("stacks/t.toml:2:8: `name` = \"sg\""), "{e}");
    }

    #[test]
    fn reserved_database_names_are_refused_at_their_key() {
        let e = err("name = \"d\"\n[database]\nname = \"select\"\n");
        assert!(
            e.starts_with("stacks/t.toml:3:8: `database.name` = \"select\""),
            "{e}"
        );
        assert!(
            e.contains("`DBName` (MySQL) refuses: it is a word MySQL reserves"),
            "{e}"
        );
        let e = err("name = \"d\"\n[database]\nusername = \"key\"\n");
        assert!(
            e.starts_with("stacks/t.toml:3:12: `database.username`"),
            "{e}"
        );
        // The network alone has no database.
        assert!(composed(&stack(
            "name = \"d\"\ntopology = \"network\"\n[database]\nname = \"select\"\n"
        ))
        .is_ok());
    }

    #[test]
    fn a_boot_script_value_too_long_is_refused_at_its_key() {
        let dir = format!("/{}", "d".repeat(2100));
        let e = err(&format!(
            "name = \"d\"\n[app]\nport = 9000\ndata_dir = \"{dir}\"\n"
        ));
        assert!(
            e.starts_with("stacks/t.toml:4:12: `app.data_dir` = \"/ddd"),
            "{e}"
        );
        assert!(
            e.contains(
                "use at most 2048 characters; shorten `app.data_dir` by at least 53 characters"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_long_zone_makes_a_name_tag_too_long() {
        let z = "z".repeat(250);
        let e = err(&format!(
            "name = \"d\"\ntopology = \"network\"\n[network]\nzones = [\"{z}\", \"b\"]\n"
        ));
        assert!(
            e.starts_with("stacks/t.toml:4:10: `network.zones[0]`"),
            "{e}"
        );
        assert!(
            e.contains("the tag bookstore-infra:id of subnet-public-zzz"),
            "{e}"
        );
        assert!(
            e.contains("over the 256 allowed; shorten `network.zones[0]` by at least"),
            "{e}"
        );
    }

    #[test]
    fn a_region_that_breaks_the_bucket_name_is_blamed() {
        let e = err("name = \"d\"\nregion = \"EU_west\"\n");
        assert!(
            e.starts_with("stacks/t.toml:2:10: `region` = \"EU_west\""),
            "{e}"
        );
        assert!(
            e.contains("S3 general purpose bucket naming rules refuses"),
            "{e}"
        );
    }

    #[test]
    fn a_certificate_domain_over_64_characters_is_refused() {
        let name = format!("{}.example.com", "a".repeat(60));
        let e = err(&format!("name = \"d\"\n[domain]\nname = \"{name}\"\n"));
        assert!(e.starts_with("stacks/t.toml:3:8: `domain.name`"), "{e}");
        assert!(e.contains("ACM RequestCertificate `DomainName` refuses: it is 72 characters, over the 64 allowed"), "{e}");
        let e = err("name = \"d\"\n[domain]\nname = \"a.example.com\"\nalternative_names = [\"b.example.com\", \"-c.example.com\"]\n");
        assert!(
            e.starts_with("stacks/t.toml:4:39: `domain.alternative_names[1]`"),
            "{e}"
        );
    }

    #[test]
    fn user_data_over_16_kb_is_blamed_on_the_app_table() {
        let s = stack("name = \"d\"\n\n[app]\nport = 9000\n");
        let long = "x".repeat(2000);
        let vars = json!({
            "stack": "d", "region": "us-east-1", "bucket": long, "key": long,
            "sha256": "a".repeat(64), "file_system_id": long, "access_point_id": long,
            "data_dir": format!("/{long}"), "port": 9000, "db_host": long, "db_port": 3306,
            "db_name": "bookstore", "db_user": "bookstore", "db_secret_arn": long,
            "db_app_user": "bookstore_app", "db_app_secret_arn": long, "app_uid": 1,
        });
        let d = Desired::new(
            launch_template::KIND,
            "launch-template",
            json!({"user_data": {"vars": vars}}),
        );
        let v = user_data(&d, &BTreeMap::new()).unwrap();
        assert_eq!((v.field.as_str(), v.default_key), ("user data", "app"));
        assert!(v.broken.over.unwrap() > 0);
        let e = located(&s, &v).to_string();
        assert!(
            e.starts_with("stacks/t.toml:3:1: [app] makes the user data of launch-template"),
            "{e}"
        );
        assert!(
            e.contains("RequestLaunchTemplateData `UserData` (16 KB before base64) refuses: it is"),
            "{e}"
        );
        assert!(e.contains("shorten what [app] sets by at least"), "{e}");
    }
}
