//! Policy documents (IAM identity and trust policies, S3 bucket policies,
//! EFS file system policies) compared by what they mean, not by their
//! bytes: AWS hands a document back in its own order and form.
//!
//! The IAM JSON policy reference makes these equivalent, and [`canonical`]
//! gives each the same form:
//! - a list of one value and the value alone (`"Action": "s3:*"` and
//!   `"Action": ["s3:*"]`; `Statement` as one object or a list of one);
//! - `"Principal": "*"` and `"Principal": {"AWS": "*"}`;
//! - a condition value as a JSON boolean or number and as its string
//!   (`false` and `"false"`: condition values are compared as strings).
//!
//! Order (of statements, of actions, of keys) is left to [`crate::engine::same`],
//! which compares lists as multisets.

use serde_json::{Map, Value};

/// `doc` in the one form every equivalent document has (see the module).
pub fn canonical(doc: &Value) -> Value {
    go(doc, false)
}

fn go(v: &Value, in_condition: bool) -> Value {
    match v {
        Value::Array(a) if a.len() == 1 => go(&a[0], in_condition),
        Value::Array(a) => Value::Array(a.iter().map(|x| go(x, in_condition)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x) {
                        ("Principal" | "NotPrincipal", Value::String(s)) if s == "*" => {
                            let mut m = Map::new();
                            m.insert("AWS".into(), Value::String("*".into()));
                            Value::Object(m)
                        }
                        _ => go(x, in_condition || k == "Condition"),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Bool(b) if in_condition => Value::String(b.to_string()),
        Value::Number(n) if in_condition => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// Whether the live document `have` says what `want` says.
pub fn same_document(want: &Value, have: Option<&Value>) -> bool {
    let have = have.map(canonical);
    crate::engine::same(&canonical(want), have.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trust(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn equivalent_forms_are_the_same() {
        let want = trust(json!([{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }]));
        // As IAM may give it back: one statement alone, lists of one, keys reordered.
        let have = json!({
            "Statement": {
                "Action": ["sts:AssumeRole"],
                "Principal": {"Service": ["ec2.amazonaws.com"]},
                "Effect": "Allow",
            },
            "Version": "2012-10-17",
        });
        assert!(same_document(&want, Some(&have)));
        // Statements and actions in another order.
        let two = |a: Value, b: Value| trust(json!([a, b]));
        let s1 = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}});
        let s1b = json!({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
            "Condition": {"Bool": {"aws:SecureTransport": false}}});
        let s2 = json!({"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"]});
        let s2b = json!({"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket", "s3:GetObject"]});
        assert!(same_document(
            &two(s1.clone(), s2.clone()),
            Some(&two(s2b, s1b))
        ));
    }

    #[test]
    fn a_statement_more_or_a_value_changed_is_not_the_same() {
        let ours = json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"});
        let theirs = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"});
        let want = trust(json!([ours.clone()]));
        assert!(!same_document(
            &want,
            Some(&trust(json!([ours.clone(), theirs])))
        ));
        assert!(!same_document(&want, None));
        assert!(!same_document(
            &trust(
                json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])
            ),
            Some(&trust(
                json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}}])
            ))
        ));
        // Two values are not one.
        assert!(!same_document(
            &json!({"Action": ["a", "b"]}),
            Some(&json!({"Action": "a"}))
        ));
    }
}
