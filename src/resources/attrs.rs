//! Readers of the JSON properties the kinds share: string lists as the
//! plan resolves them (an array of strings; anything else reads as none).

use serde_json::Value;

/// The strings of an array, in order (what is not a string is skipped).
pub(crate) fn strings<'a>(v: impl Into<Option<&'a Value>>) -> Vec<String> {
    v.into()
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of an array, sorted: the order AWS does not keep.
pub(crate) fn sorted_strings<'a>(v: impl Into<Option<&'a Value>>) -> Vec<String> {
    let mut s = strings(v);
    s.sort();
    s
}

/// The strings of an array joined by commas (`subnet-1,subnet-2`).
pub(crate) fn csv(v: &Value) -> String {
    strings(v).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_lists_read_arrays_of_strings_only() {
        let v = json!(["b", 1, "a"]);
        assert_eq!(strings(&v), ["b", "a"]);
        assert_eq!(sorted_strings(&v), ["a", "b"]);
        assert_eq!(csv(&v), "b,a");
        assert!(strings(None).is_empty());
        assert!(strings(&json!("a")).is_empty());
        assert_eq!(csv(&Value::Null), "");
    }
}
