//! Where each key of the stack file is written, kept with the parsed stack:
//! checks that run on the whole stack later (the names and values composed
//! from it) locate what they refuse at the key that caused it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

use super::error::{line_col, Source, StackError};

/// Where the keys of one stack file are written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origin {
    file: PathBuf,
    /// Dotted key path (`app.data_dir`, `domain.alternative_names.1`, a
    /// table's own name for the table) -> 1-based line and column of its
    /// value, or of the table's header.
    at: BTreeMap<String, (usize, usize)>,
}

impl Origin {
    /// Reads where every key of `src` is written. The text has parsed as
    /// a stack file already, so it is valid TOML.
    pub(super) fn read(src: &Source) -> Origin {
        let mut at = BTreeMap::new();
        if let Ok(root) = toml::from_str::<Node>(src.source_text()) {
            root.flatten("", &mut |path, offset| {
                at.insert(path, line_col(src.source_text(), offset));
            });
        }
        Origin {
            file: src.path().to_path_buf(),
            at,
        }
    }

    /// Where `key` is written, if it is.
    pub fn position(&self, key: &str) -> Option<(usize, usize)> {
        self.at.get(key).copied()
    }

    /// An error located at the first of `keys` the file writes; for a key
    /// not written, at the table that would hold it (`app` for
    /// `app.data_dir`); else at the file's first line.
    pub fn error(&self, keys: &[&str], message: impl Into<String>) -> StackError {
        let mut found = keys.iter().find_map(|k| self.position(k));
        for k in keys {
            let mut k: &str = k;
            while found.is_none() {
                let Some((table, _)) = k.rsplit_once('.') else {
                    break;
                };
                found = self.position(table);
                k = table;
            }
        }
        let (line, column) = found.unwrap_or((1, 1));
        StackError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// A value of the file and what it holds: keys of a table, items of an
/// array (by index), each with where it is written; nothing for a scalar.
struct Node(Vec<(String, Spanned<Node>)>);

impl Node {
    fn flatten(&self, prefix: &str, out: &mut dyn FnMut(String, usize)) {
        for (k, v) in &self.0 {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out(path.clone(), v.span().start);
            v.get_ref().flatten(&path, out);
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node(Vec::new()))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node(Vec::new()))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node(Vec::new()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node(Vec::new()))
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            out.push((k, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Spanned<Node>>()? {
            out.push((out.len().to_string(), v));
        }
        Ok(Node(out))
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::tests::p;

    #[test]
    fn keys_tables_and_items_are_located() {
        let s = p("name = \"demo\"\n\n[app]\nport = 9000\ndata_dir = \"/d\"\n\n[domain]\nname = \"a.example.com\"\nalternative_names = [\"b.example.com\", \"c.example.com\"]\n").unwrap();
        let o = &s.origin;
        assert_eq!(o.position("name"), Some((1, 8)));
        assert_eq!(o.position("app"), Some((3, 1)));
        assert_eq!(o.position("app.data_dir"), Some((5, 12)));
        assert_eq!(o.position("domain.alternative_names.1"), Some((9, 39)));
        // A key not written is located at its table, a table not written
        // at the first line.
        assert_eq!(
            o.error(&["app.ami"], "m").to_string(),
            "stacks/t.toml:3:1: m"
        );
        assert_eq!(
            o.error(&["logs.x"], "m").to_string(),
            "stacks/t.toml:1:1: m"
        );
        // The first written of several places a key may be.
        let s = p("[stack]\nname = \"demo\"\n").unwrap();
        assert_eq!(
            s.origin.error(&["name", "stack.name"], "m").to_string(),
            "stacks/t.toml:2:8: m"
        );
    }
}
