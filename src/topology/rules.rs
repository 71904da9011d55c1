//! The rules AWS puts on the names and values this tool composes and sends,
//! one [`Rule`] each, with the API reference page and parameter it comes
//! from. [`super::check`] applies them to the desired resources of a stack.

use std::ops::Range;

/// How a value breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The part of the rule it breaks: "must not start with \"sg-\"".
    pub why: String,
    /// For a limit on length: by how much the value is over it.
    pub over: Option<usize>,
    /// Where in the value the refused part is, when it is one place.
    pub at: Option<Range<usize>>,
}

impl Broken {
    fn new(why: impl Into<String>) -> Broken {
        Broken {
            why: why.into(),
            over: None,
            at: None,
        }
    }

    fn at(mut self, at: Range<usize>) -> Broken {
        self.at = Some(at);
        self
    }
}

/// A rule on one value AWS is sent.
#[derive(Clone, Copy)]
pub struct Rule {
    /// The value, as the API reference names it.
    pub what: &'static str,
    check: fn(&str) -> Result<(), Broken>,
}

impl Rule {
    pub fn check(&self, value: &str) -> Result<(), Broken> {
        (self.check)(value)
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

/// `n` (of `unit`: characters, bytes) between `min` and `max`.
fn length(n: usize, min: usize, max: usize, unit: &str) -> Result<(), Broken> {
    if n < min {
        return Err(Broken::new(format!(
            "it is {n} {unit}, under the {min} required"
        )));
    }
    if n > max {
        return Err(Broken {
            over: Some(n - max),
            ..Broken::new(format!("it is {n} {unit}, over the {max} allowed"))
        });
    }
    Ok(())
}

fn chars(v: &str, min: usize, max: usize) -> Result<(), Broken> {
    length(v.chars().count(), min, max, "characters")
}

/// Only characters `ok` accepts (`allowed` says which).
fn only(v: &str, ok: fn(char) -> bool, allowed: &str) -> Result<(), Broken> {
    match v.char_indices().find(|(_, c)| !ok(*c)) {
        Some((i, c)) => Err(
            Broken::new(format!("it holds {c:?}; allowed are {allowed}")).at(i..i + c.len_utf8()),
        ),
        None => Ok(()),
    }
}

fn no_prefix(v: &str, prefixes: &[&str]) -> Result<(), Broken> {
    match prefixes.iter().find(|p| v.starts_with(*p)) {
        Some(p) => Err(Broken::new(format!("it must not start with {p:?}")).at(0..p.len())),
        None => Ok(()),
    }
}

fn no_suffix(v: &str, suffixes: &[&str]) -> Result<(), Broken> {
    match suffixes.iter().find(|s| v.ends_with(*s)) {
        Some(s) => {
            Err(Broken::new(format!("it must not end with {s:?}")).at(v.len() - s.len()..v.len()))
        }
        None => Ok(()),
    }
}

fn starts_with_letter(v: &str) -> Result<(), Broken> {
    match v.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => Ok(()),
        Some(c) => Err(Broken::new("it must start with a letter").at(0..c.len_utf8())),
        None => Ok(()),
    }
}

/// No hyphen first or last.
fn hyphen_inside(v: &str) -> Result<(), Broken> {
    if v.starts_with('-') {
        return Err(Broken::new("it must not start with a hyphen").at(0..1));
    }
    if v.ends_with('-') {
        return Err(Broken::new("it must not end with a hyphen").at(v.len() - 1..v.len()));
    }
    Ok(())
}

fn no_double_hyphen(v: &str) -> Result<(), Broken> {
    match v.find("--") {
        Some(i) => Err(Broken::new("it must not hold two hyphens in a row").at(i..i + 2)),
        None => Ok(()),
    }
}

/// EC2 security group names and descriptions (VPC): "a-z, A-Z, 0-9,
/// spaces, and ._-:/()#,@[]+=&;{}!$*".
fn ec2_text(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}

/// EC2 API reference, CreateSecurityGroup, `GroupName`: "Up to 255
/// characters in length. Cannot start with sg-. Valid characters: a-z,
/// A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*".
pub const SECURITY_GROUP_NAME: Rule = Rule {
    what: "EC2 CreateSecurityGroup `GroupName`",
    check: |v| {
        chars(v, 1, 255)?;
        no_prefix(v, &["sg-"])?;
        only(
            v,
            ec2_text,
            "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*",
        )
    },
};

/// EC2 API reference, CreateSecurityGroup, `GroupDescription`: "Up to 255
/// characters in length", of the same characters as the name.
pub const SECURITY_GROUP_DESCRIPTION: Rule = Rule {
    what: "EC2 CreateSecurityGroup `GroupDescription`",
    check: |v| {
        chars(v, 0, 255)?;
        only(
            v,
            ec2_text,
            "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*",
        )
    },
};

/// "Tag restrictions" (EC2 User Guide, and the tagging pages of every
/// service tagged here): a key is 1 to 128 Unicode characters; "Don't use
/// `aws:` ... as a prefix for either keys or values, as it is reserved for
/// AWS use".
pub const TAG_KEY: Rule = Rule {
    what: "the tag key rules (\"Tag restrictions\")",
    check: |v| {
        chars(v, 1, 128)?;
        reserved_aws_prefix(v)
    },
};

/// "Tag restrictions": a value is at most 256 Unicode characters, and may
/// not start with `aws:` either.
pub const TAG_VALUE: Rule = Rule {
    what: "the tag value rules (\"Tag restrictions\")",
    check: |v| {
        chars(v, 0, 256)?;
        reserved_aws_prefix(v)
    },
};

fn reserved_aws_prefix(v: &str) -> Result<(), Broken> {
    if v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(Broken::new("it must not start with \"aws:\", which AWS reserves").at(0..4));
    }
    Ok(())
}

/// CloudWatch Logs API reference, CreateLogGroup, `logGroupName`: length
/// 1 to 512, pattern `[\.\-_/#A-Za-z0-9]+`.
pub const LOG_GROUP_NAME: Rule = Rule {
    what: "CloudWatch Logs CreateLogGroup `logGroupName`",
    check: |v| {
        chars(v, 1, 512)?;
        only(
            v,
            |c| c.is_ascii_alphanumeric() || "._-/#".contains(c),
            "letters, digits and ._-/#",
        )
    },
};

/// IAM names: "upper and lowercase alphanumeric characters with no spaces
/// ... and any of the following characters: _+=,.@-" (pattern `[\w+=,.@-]+`).
fn iam_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// IAM API reference, CreateRole, `RoleName`: length 1 to 64, pattern
/// `[\w+=,.@-]+`.
pub const IAM_ROLE_NAME: Rule = Rule {
    what: "IAM CreateRole `RoleName`",
    check: |v| {
        chars(v, 1, 64)?;
        only(v, iam_name, "letters, digits and _+=,.@-")
    },
};

/// IAM API reference, CreateInstanceProfile, `InstanceProfileName`:
/// length 1 to 128, pattern `[\w+=,.@-]+`.
pub const IAM_INSTANCE_PROFILE_NAME: Rule = Rule {
    what: "IAM CreateInstanceProfile `InstanceProfileName`",
    check: |v| {
        chars(v, 1, 128)?;
        only(v, iam_name, "letters, digits and _+=,.@-")
    },
};

/// IAM API reference, CreateRole and CreateInstanceProfile, `Path`: length
/// 1 to 512, "either a forward slash (/) by itself or a string that must
/// begin and end with forward slashes", of the ASCII characters from `!`
/// (U+0021) through DEL (U+007F).
pub const IAM_PATH: Rule = Rule {
    what: "IAM CreateRole/CreateInstanceProfile `Path`",
    check: |v| {
        chars(v, 1, 512)?;
        if !(v.starts_with('/') && v.ends_with('/')) {
            return Err(Broken::new("it must begin and end with \"/\""));
        }
        only(
            v,
            |c| ('\u{21}'..='\u{7f}').contains(&c),
            "ASCII from ! to DEL",
        )
    },
};

/// EC2 API reference, CreateLaunchTemplate, `LaunchTemplateName`: length 3
/// to 128, pattern `[a-zA-Z0-9\(\)\.\-/_]+`.
pub const LAUNCH_TEMPLATE_NAME: Rule = Rule {
    what: "EC2 CreateLaunchTemplate `LaunchTemplateName`",
    check: |v| {
        chars(v, 3, 128)?;
        only(
            v,
            |c| c.is_ascii_alphanumeric() || "().-/_".contains(c),
            "letters, digits and ().-/_",
        )
    },
};

/// The most user data an instance may have, in bytes before base64.
pub const USER_DATA_MAX: usize = 16 * 1024;

/// EC2 User Guide, "Work with instance user data": "User data is limited
/// to 16 KB, in raw form, before it is base64-encoded" (EC2 API reference,
/// RequestLaunchTemplateData `UserData`: "User data is limited to 16 KB").
pub const USER_DATA: Rule = Rule {
    what: "EC2 RequestLaunchTemplateData `UserData` (16 KB before base64)",
    check: |v| length(v.len(), 0, USER_DATA_MAX, "bytes"),
};

/// ELB names: "a maximum of 32 characters, must contain only alphanumeric
/// characters or hyphens, must not begin or end with a hyphen".
fn elb_name(v: &str) -> Result<(), Broken> {
    chars(v, 1, 32)?;
    only(
        v,
        |c| c.is_ascii_alphanumeric() || c == '-',
        "letters, digits and -",
    )?;
    hyphen_inside(v)
}

/// ELB API reference (version 2015-12-01), CreateTargetGroup, `Name`:
/// "can have a maximum of 32 characters, must contain only alphanumeric
/// characters or hyphens, and must not begin or end with a hyphen".
pub const TARGET_GROUP_NAME: Rule = Rule {
    what: "ELB CreateTargetGroup `Name`",
    check: elb_name,
};

/// ELB API reference (version 2015-12-01), CreateLoadBalancer, `Name`: as
/// a target group's, "and must not begin with \"internal-\"".
pub const LOAD_BALANCER_NAME: Rule = Rule {
    what: "ELB CreateLoadBalancer `Name`",
    check: |v| {
        elb_name(v)?;
        no_prefix(v, &["internal-"])
    },
};

/// RDS API reference, CreateDBInstance, `DBInstanceIdentifier`: "Must
/// contain from 1 to 63 letters, numbers, or hyphens. First character must
/// be a letter. Can't end with a hyphen or contain two consecutive hyphens."
pub const DB_INSTANCE_IDENTIFIER: Rule = Rule {
    what: "RDS CreateDBInstance `DBInstanceIdentifier`",
    check: |v| {
        chars(v, 1, 63)?;
        only(
            v,
            |c| c.is_ascii_alphanumeric() || c == '-',
            "letters, digits and -",
        )?;
        starts_with_letter(v)?;
        hyphen_inside(v)?;
        no_double_hyphen(v)
    },
};

/// RDS API reference, CreateDBSubnetGroup, `DBSubnetGroupName`: "Must
/// contain no more than 255 letters, numbers, periods, underscores,
/// spaces, or hyphens. Must not be default. First character must be a
/// letter."
pub const DB_SUBNET_GROUP_NAME: Rule = Rule {
    what: "RDS CreateDBSubnetGroup `DBSubnetGroupName`",
    check: |v| {
        chars(v, 1, 255)?;
        only(
            v,
            |c| c.is_ascii_alphanumeric() || "._ -".contains(c),
            "letters, digits, spaces and ._-",
        )?;
        starts_with_letter(v)?;
        if v.eq_ignore_ascii_case("default") {
            return Err(Broken::new("it must not be \"default\"").at(0..v.len()));
        }
        Ok(())
    },
};

/// RDS API reference, CreateDBInstance, `DBName`, for MySQL: "Must contain
/// 1 to 64 letters or numbers. Must begin with a letter. Subsequent
/// characters can be letters, underscores, or digits (0-9). Can't be a
/// word reserved by the specified database engine."
pub const MYSQL_DB_NAME: Rule = Rule {
    what: "RDS CreateDBInstance `DBName` (MySQL)",
    check: |v| sql_name(v, 64),
};

/// RDS API reference, CreateDBInstance, `MasterUsername`: "Must be 1 to 16
/// letters, numbers, or underscores. First character must be a letter.
/// Can't be a reserved word for the chosen database engine."
pub const MYSQL_MASTER_USERNAME: Rule = Rule {
    what: "RDS CreateDBInstance `MasterUsername` (MySQL)",
    check: |v| sql_name(v, 16),
};

fn sql_name(v: &str, max: usize) -> Result<(), Broken> {
    chars(v, 1, max)?;
    only(
        v,
        |c| c.is_ascii_alphanumeric() || c == '_',
        "letters, digits and _",
    )?;
    starts_with_letter(v)?;
    if MYSQL_RESERVED.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        return Err(Broken::new("it is a word MySQL reserves").at(0..v.len()));
    }
    Ok(())
}

/// The words MySQL 8.0 reserves (MySQL 8.0 Reference Manual, "Keywords and
/// Reserved Words", the ones marked (R)).
#[rustfmt::skip]
pub const MYSQL_RESERVED: &[&str] = &[
    "accessible", "add", "all", "alter", "analyze", "and", "as", "asc", "asensitive", "before",
    "between", "bigint", "binary", "blob", "both", "by", "call", "cascade", "case", "change",
    "char", "character", "check", "collate", "column", "condition", "constraint", "continue",
    "convert", "create", "cross", "cube", "cume_dist", "current_date", "current_time",
    "current_timestamp", "current_user", "cursor", "database", "databases", "day_hour",
    "day_microsecond", "day_minute", "day_second", "dec", "decimal", "declare", "default",
    "delayed", "delete", "dense_rank", "desc", "describe", "deterministic", "distinct",
    "distinctrow", "div", "double", "drop", "dual", "each", "else", "elseif", "empty", "enclosed",
    "escaped", "except", "exists", "exit", "explain", "false", "fetch", "first_value", "float",
    "float4", "float8", "for", "force", "foreign", "from", "fulltext", "function", "generated",
    "get", "grant", "group", "grouping", "groups", "having", "high_priority", "hour_microsecond",
    "hour_minute", "hour_second", "if", "ignore", "in", "index", "infile", "inner", "inout",
    "insensitive", "insert", "int", "int1", "int2", "int3", "int4", "int8", "integer", "intersect",
    "interval", "into", "io_after_gtids", "io_before_gtids", "is", "iterate", "join", "json_table",
    "key", "keys", "kill", "lag", "last_value", "lateral", "lead", "leading", "leave", "left",
    "like", "limit", "linear", "lines", "load", "localtime", "localtimestamp", "lock", "long",
    "longblob", "longtext", "loop", "low_priority", "master_bind", "master_ssl_verify_server_cert",
    "match", "maxvalue", "mediumblob", "mediumint", "mediumtext", "middleint", "minute_microsecond",
    "minute_second", "mod", "modifies", "natural", "not", "no_write_to_binlog", "nth_value",
    "ntile", "null", "numeric", "of", "on", "optimize", "optimizer_costs", "option", "optionally",
    "or", "order", "out", "outer", "outfile", "over", "partition", "percent_rank", "precision",
    "primary", "procedure", "purge", "range", "rank", "read", "reads", "read_write", "real",
    "recursive", "references", "regexp", "release", "rename", "repeat", "replace", "require",
    "resignal", "restrict", "return", "revoke", "right", "rlike", "row", "rows", "row_number",
    "schema", "schemas", "second_microsecond", "select", "sensitive", "separator", "set", "show",
    "signal", "smallint", "spatial", "specific", "sql", "sqlexception", "sqlstate", "sqlwarning",
    "sql_big_result", "sql_calc_found_rows", "sql_small_result", "ssl", "starting", "stored",
    "straight_join", "system", "table", "terminated", "then", "tinyblob", "tinyint", "tinytext",
    "to", "trailing", "trigger", "true", "undo", "union", "unique", "unlock", "unsigned", "update",
    "usage", "use", "using", "utc_date", "utc_time", "utc_timestamp", "values", "varbinary",
    "varchar", "varcharacter", "varying", "virtual", "when", "where", "while", "window", "with",
    "write", "xor", "year_month", "zerofill",
];

/// S3 User Guide, "General purpose bucket naming rules": 3 to 63
/// characters; lowercase letters, numbers, dots and hyphens; beginning and
/// ending with a letter or number; no two adjacent periods; not formatted
/// as an IP address; not starting with `xn--`, `sthree-` or
/// `amzn-s3-demo-`; not ending with `-s3alias`, `--ol-s3`, `.mrap`,
/// `--x-s3` or `--table-s3`.
pub const BUCKET_NAME: Rule = Rule {
    what: "the S3 general purpose bucket naming rules",
    check: |v| {
        chars(v, 3, 63)?;
        only(
            v,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c),
            "lowercase letters, digits, . and -",
        )?;
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !edge(v.chars().next()) || !edge(v.chars().last()) {
            return Err(Broken::new("it must begin and end with a letter or digit"));
        }
        if let Some(i) = v.find("..") {
            return Err(Broken::new("it must not hold two adjacent periods").at(i..i + 2));
        }
        if v.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(Broken::new("it must not be formatted as an IP address"));
        }
        no_prefix(v, &["xn--", "sthree-", "amzn-s3-demo-"])?;
        no_suffix(v, &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"])
    },
};

/// S3 User Guide, "Naming Amazon S3 objects": "The name for a key is a
/// sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes
/// long."
pub const OBJECT_KEY: Rule = Rule {
    what: "the S3 object key rules",
    check: |v| length(v.len(), 1, 1024, "bytes"),
};

/// EC2 API reference, "Ensuring idempotency": "a unique, case-sensitive
/// string of up to 64 ASCII characters"; EFS API reference,
/// CreateFileSystem `CreationToken` and CreateAccessPoint `ClientToken`:
/// length 1 to 64.
pub const CLIENT_TOKEN: Rule = Rule {
    what: "the client token rules (EC2 `ClientToken`, EFS `CreationToken`)",
    check: |v| {
        chars(v, 1, 64)?;
        only(v, |c| c.is_ascii_graphic(), "printable ASCII")
    },
};

/// EC2 Auto Scaling API reference, CreateAutoScalingGroup,
/// `AutoScalingGroupName`: length 1 to 255; "any ASCII character 33 to 126
/// ... You cannot use a colon (:) in the name."
pub const AUTO_SCALING_GROUP_NAME: Rule = Rule {
    what: "Auto Scaling CreateAutoScalingGroup `AutoScalingGroupName`",
    check: |v| {
        chars(v, 1, 255)?;
        only(
            v,
            |c| c.is_ascii_graphic() && c != ':',
            "printable ASCII but :",
        )
    },
};

/// A DNS name of at most `max` characters, of labels of 1 to 63 letters,
/// digits or hyphens neither first nor last (the first may be `*`).
fn dns_name(v: &str, max: usize) -> Result<(), Broken> {
    chars(v, 1, max)?;
    let mut start = 0;
    for (i, label) in v.split('.').enumerate() {
        let at = start..start + label.len();
        start += label.len() + 1;
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(Broken::new("each label must be 1 to 63 characters").at(at));
        }
        only(
            label,
            |c| c.is_ascii_alphanumeric() || c == '-',
            "letters, digits and -",
        )
        .map_err(|b| b.at(at.clone()))?;
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Broken::new("a label must not begin or end with a hyphen").at(at));
        }
    }
    Ok(())
}

/// ACM API reference, RequestCertificate, `DomainName`: "the length of the
/// domain name (technically, the Common Name) that you provide cannot
/// exceed 64 octets (characters), including periods"; labels follow the
/// parameter's pattern (no label beginning or ending with a hyphen).
pub const CERTIFICATE_DOMAIN: Rule = Rule {
    what: "ACM RequestCertificate `DomainName`",
    check: |v| dns_name(v, 64),
};

/// ACM API reference, RequestCertificate, `SubjectAlternativeNames`: each
/// name "can be up to 253 octets in length" ("The maximum length of a DNS
/// name is 253 octets ... No label can be longer than 63 octets").
pub const CERTIFICATE_ALTERNATIVE_NAME: Rule = Rule {
    what: "ACM RequestCertificate `SubjectAlternativeNames`",
    check: |v| dns_name(v, 253),
};

/// Route 53 Developer Guide, "DNS domain name format": "Each label can be
/// up to 63 bytes long. The total length of a domain name cannot exceed 255
/// bytes, including the dots" (in the wire form: 253 characters written).
pub const DNS_RECORD_NAME: Rule = Rule {
    what: "the Route 53 domain name format",
    check: |v| dns_name(v.trim_end_matches('.'), 253),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: usize) -> String {
        "a".repeat(n)
    }

    /// A DNS name of `n` characters, of labels of 60.
    fn dns(n: usize) -> String {
        let mut s = String::new();
        while s.len() < n {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&a((n - s.len()).min(60)));
        }
        s
    }

    fn ok(rule: Rule, v: &str) {
        assert_eq!(rule.check(v), Ok(()), "{rule:?} refuses {v:?}");
    }

    fn no(rule: Rule, v: &str) -> Broken {
        rule.check(v).expect_err(&format!("{rule:?} accepts {v:?}"))
    }

    /// `rule` accepts `max` characters of `fill` and refuses one more,
    /// saying by how much it is over.
    fn max(rule: Rule, fill: &dyn Fn(usize) -> String, max: usize) {
        ok(rule, &fill(max));
        assert_eq!(no(rule, &fill(max + 1)).over, Some(1), "{rule:?}");
    }

    #[test]
    fn ec2_security_groups() {
        max(SECURITY_GROUP_NAME, &a, 255);
        max(SECURITY_GROUP_DESCRIPTION, &a, 255);
        let b = no(SECURITY_GROUP_NAME, "sg-shop-sg-lb");
        assert_eq!(
            (b.why.as_str(), b.at),
            ("it must not start with \"sg-\"", Some(0..3))
        );
        ok(
            SECURITY_GROUP_NAME,
            "sgx-shop Load_balancer.(1):#,@[]+=&;{}!$*",
        );
        assert_eq!(no(SECURITY_GROUP_NAME, "a%b").at, Some(1..2));
        assert_eq!(no(SECURITY_GROUP_NAME, "").over, None);
    }

    #[test]
    fn tags() {
        max(TAG_KEY, &a, 128);
        max(TAG_VALUE, &a, 256);
        no(TAG_KEY, "");
        ok(TAG_VALUE, "");
        for v in ["aws:x", "AWS:x", "Aws:"] {
            no(TAG_KEY, v);
            no(TAG_VALUE, v);
        }
        ok(TAG_KEY, "bookstore-infra:stack");
    }

    #[test]
    fn cloudwatch_log_groups() {
        max(LOG_GROUP_NAME, &a, 512);
        no(LOG_GROUP_NAME, "");
        ok(LOG_GROUP_NAME, "/bookstore-infra/demo_1.x#/app");
        no(LOG_GROUP_NAME, "/a b/");
    }

    #[test]
    fn iam_names_and_paths() {
        max(IAM_ROLE_NAME, &a, 64);
        max(IAM_INSTANCE_PROFILE_NAME, &a, 128);
        ok(IAM_ROLE_NAME, "demo-us-east-1_app+=,.@");
        no(IAM_ROLE_NAME, "a/b");
        no(IAM_ROLE_NAME, "");
        max(IAM_PATH, &|n| format!("/{}/", a(n - 2)), 512);
        ok(IAM_PATH, "/");
        ok(IAM_PATH, "/bookstore-infra/demo/");
        no(IAM_PATH, "bookstore-infra/");
        no(IAM_PATH, "/a b/");
    }

    #[test]
    fn launch_templates_and_user_data() {
        max(LAUNCH_TEMPLATE_NAME, &a, 128);
        ok(LAUNCH_TEMPLATE_NAME, "abc");
        no(LAUNCH_TEMPLATE_NAME, "ab");
        ok(LAUNCH_TEMPLATE_NAME, "a(1).b-c/d_e");
        no(LAUNCH_TEMPLATE_NAME, "a b c");
        max(USER_DATA, &a, 16384);
        max(AUTO_SCALING_GROUP_NAME, &a, 255);
        no(AUTO_SCALING_GROUP_NAME, "a:b");
        no(AUTO_SCALING_GROUP_NAME, "a b");
    }

    #[test]
    fn load_balancers_and_target_groups() {
        for rule in [TARGET_GROUP_NAME, LOAD_BALANCER_NAME] {
            max(rule, &a, 32);
            for bad in ["-ab", "ab-", "a_b", ""] {
                no(rule, bad);
            }
            ok(rule, "demo-app-8080");
        }
        no(LOAD_BALANCER_NAME, "internal-lb");
        ok(LOAD_BALANCER_NAME, "internals-lb");
        ok(TARGET_GROUP_NAME, "internal-app");
    }

    #[test]
    fn rds_identifiers_and_names() {
        max(DB_INSTANCE_IDENTIFIER, &a, 63);
        for bad in ["1db", "a--b", "a-", "a_b", ""] {
            no(DB_INSTANCE_IDENTIFIER, bad);
        }
        max(DB_SUBNET_GROUP_NAME, &a, 255);
        ok(DB_SUBNET_GROUP_NAME, "demo-db subnets_1.x");
        for bad in ["default", "Default", "1a", "a/b"] {
            no(DB_SUBNET_GROUP_NAME, bad);
        }
        max(MYSQL_DB_NAME, &a, 64);
        max(MYSQL_MASTER_USERNAME, &a, 16);
        for rule in [MYSQL_DB_NAME, MYSQL_MASTER_USERNAME] {
            ok(rule, "book_store1");
            for bad in ["select", "KEY", "Order", "_a", "1a", "a-b", ""] {
                no(rule, bad);
            }
        }
        assert_eq!(
            no(MYSQL_DB_NAME, "table").why,
            "it is a word MySQL reserves"
        );
    }

    #[test]
    fn s3_buckets_and_keys() {
        max(BUCKET_NAME, &a, 63);
        ok(BUCKET_NAME, "abc");
        no(BUCKET_NAME, "ab");
        ok(BUCKET_NAME, "demo-artifacts-123456789012-us-east-1");
        for bad in [
            "Demo",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.5.4",
            "xn--ab",
            "sthree-ab",
            "amzn-s3-demo-ab",
            "ab-s3alias",
            "ab--ol-s3",
            "ab.mrap",
            "ab--x-s3",
            "ab--table-s3",
        ] {
            no(BUCKET_NAME, bad);
        }
        assert_eq!(no(BUCKET_NAME, "ab--x-s3").at, Some(2..8));
        max(OBJECT_KEY, &a, 1024);
        no(OBJECT_KEY, "");
    }

    #[test]
    fn client_tokens() {
        max(CLIENT_TOKEN, &a, 64);
        no(CLIENT_TOKEN, "");
        no(CLIENT_TOKEN, "a b");
    }

    #[test]
    fn domain_names() {
        max(CERTIFICATE_DOMAIN, &dns, 64);
        max(CERTIFICATE_ALTERNATIVE_NAME, &dns, 253);
        max(DNS_RECORD_NAME, &dns, 253);
        ok(DNS_RECORD_NAME, &format!("{}.", dns(253)));
        for rule in [
            CERTIFICATE_DOMAIN,
            CERTIFICATE_ALTERNATIVE_NAME,
            DNS_RECORD_NAME,
        ] {
            ok(rule, "*.shop.example.com");
            ok(rule, &format!("{}.co", a(61)));
            for bad in ["-a.com", "a-.com", "a..com", "a.*.com", "a_b.com"] {
                no(rule, bad);
            }
        }
        for rule in [CERTIFICATE_ALTERNATIVE_NAME, DNS_RECORD_NAME] {
            assert_eq!(no(rule, &format!("{}.com", a(64))).at, Some(0..64));
        }
    }
}
