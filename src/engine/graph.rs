//! Dependency ordering of logical ids.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum GraphError {
    #[error("resource `{from}` refers to `{to}`, which the stack does not define")]
    Unknown { from: String, to: String },
    #[error("dependency cycle among: {0}")]
    Cycle(String),
}

/// Orders `nodes` so that every node comes after its dependencies.
/// Ties keep the input order, so the result is deterministic.
pub fn topo_order(nodes: &[(String, Vec<String>)]) -> Result<Vec<String>, GraphError> {
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    for (id, deps) in nodes {
        for d in deps {
            if !index.contains_key(d.as_str()) {
                return Err(GraphError::Unknown {
                    from: id.clone(),
                    to: d.clone(),
                });
            }
        }
    }
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::with_capacity(nodes.len());
    while out.len() < nodes.len() {
        let before = out.len();
        for (i, (id, deps)) in nodes.iter().enumerate() {
            if done.contains(&i) {
                continue;
            }
            if deps.iter().all(|d| done.contains(&index[d.as_str()])) {
                done.insert(i);
                out.push(id.clone());
            }
        }
        if out.len() == before {
            let stuck: Vec<&str> = nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.contains(i))
                .map(|(_, (id, _))| id.as_str())
                .collect();
            return Err(GraphError::Cycle(stuck.join(", ")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str, deps: &[&str]) -> (String, Vec<String>) {
        (id.into(), deps.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn dependencies_come_first() {
        let order = topo_order(&[
            n("route", &["rt", "igw"]),
            n("rt", &["vpc"]),
            n("igw", &["vpc"]),
            n("vpc", &[]),
        ])
        .unwrap();
        let pos = |x: &str| order.iter().position(|o| o == x).unwrap();
        assert!(pos("vpc") < pos("rt"));
        assert!(pos("vpc") < pos("igw"));
        assert!(pos("rt") < pos("route"));
        assert!(pos("igw") < pos("route"));
    }

    #[test]
    fn cycles_and_unknown_ids_are_errors() {
        assert!(matches!(
            topo_order(&[n("a", &["b"]), n("b", &["a"])]),
            Err(GraphError::Cycle(_))
        ));
        assert_eq!(
            topo_order(&[n("a", &["zzz"])]),
            Err(GraphError::Unknown {
                from: "a".into(),
                to: "zzz".into()
            })
        );
    }
}
