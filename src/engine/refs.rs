//! References between resources inside property values.
//!
//! A reference is the JSON object `{"$ref": "<logical id>", "attr": "<attribute>"}`.
//! It is resolved against the attributes of the resource it names once that
//! resource exists; before that, its value is unknown ("known after apply").

use serde_json::{json, Value};

use super::Attrs;

const REF: &str = "$ref";
const ATTR: &str = "attr";
const CONCAT: &str = "$concat";

/// The strings (or references) in `parts`, joined once all are known.
pub fn concat(parts: Vec<Value>) -> Value {
    json!({ CONCAT: parts })
}

/// A reference to the `id` attribute of the resource `id`.
pub fn r(id: &str) -> Value {
    json!({ REF: id, ATTR: "id" })
}

/// A reference to the attribute `attr` of the resource `id`.
pub fn r_attr(id: &str, attr: &str) -> Value {
    json!({ REF: id, ATTR: attr })
}

/// `Some((id, attr))` when `v` is a reference.
pub fn as_ref(v: &Value) -> Option<(&str, &str)> {
    let o = v.as_object()?;
    let id = o.get(REF)?.as_str()?;
    let attr = o.get(ATTR).and_then(Value::as_str).unwrap_or("id");
    Some((id, attr))
}

/// Every logical id referenced anywhere in `v`, in first-seen order.
pub fn referenced_ids(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut |id, _| {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    });
    out
}

fn walk<'a>(v: &'a Value, f: &mut dyn FnMut(&'a str, &'a str)) {
    if let Some((id, attr)) = as_ref(v) {
        f(id, attr);
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        Value::Object(o) => o.values().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// Outcome of resolving a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Known(Value),
    /// Some reference points at a resource that does not exist yet (or will be replaced).
    Unknown,
}

/// Resolves every reference in `v` with `lookup(id)`, which returns the
/// attributes of a resource, or `None` when they are not known yet.
pub fn resolve<'a>(v: &Value, lookup: &dyn Fn(&str) -> Option<&'a Attrs>) -> Resolution {
    fn go<'a>(v: &Value, lookup: &dyn Fn(&str) -> Option<&'a Attrs>) -> Option<Value> {
        if let Some((id, attr)) = as_ref(v) {
            return lookup(id)
                .and_then(|a| a.get(attr))
                .map(|s| Value::String(s.clone()));
        }
        if let Some(parts) = v.get(CONCAT).and_then(Value::as_array) {
            let mut out = String::new();
            for p in parts {
                match go(p, lookup)? {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                }
            }
            return Some(Value::String(out));
        }
        Some(match v {
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| go(x, lookup)).collect::<Option<_>>()?)
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| go(x, lookup).map(|x| (k.clone(), x)))
                    .collect::<Option<_>>()?,
            ),
            other => other.clone(),
        })
    }
    match go(v, lookup) {
        Some(v) => Resolution::Known(v),
        None => Resolution::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_nested_references() {
        let mut vpc = Attrs::new();
        vpc.insert("id".into(), "vpc-1".into());
        let v = json!({"vpc": r("vpc"), "list": [r("vpc"), "x"]});
        let got = resolve(&v, &|id| (id == "vpc").then_some(&vpc));
        assert_eq!(
            got,
            Resolution::Known(json!({"vpc": "vpc-1", "list": ["vpc-1", "x"]}))
        );
    }

    #[test]
    fn concatenation_waits_for_every_part() {
        let mut lb = Attrs::new();
        lb.insert("dns".into(), "lb.example".into());
        let v = concat(vec![json!("http://"), r_attr("lb", "dns")]);
        assert_eq!(referenced_ids(&v), vec!["lb"]);
        assert_eq!(
            resolve(&v, &|id| (id == "lb").then_some(&lb)),
            Resolution::Known(json!("http://lb.example"))
        );
        assert_eq!(resolve(&v, &|_| None), Resolution::Unknown);
    }

    #[test]
    fn missing_target_is_unknown() {
        let v = json!([r("nat-a")]);
        assert_eq!(resolve(&v, &|_| None), Resolution::Unknown);
        assert_eq!(referenced_ids(&v), vec!["nat-a"]);
    }
}
