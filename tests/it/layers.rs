//! The layers of both crates, read from their sources: which top-level
//! module names which (`crate::x` paths outside comments and unit tests),
//! no cycle among them, a ground floor (`cloud`) that names nothing of the
//! project, and files small enough to hold one purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`None`: the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The code of a file without comments and without its `#[cfg(test)]`
/// part (unit tests may reach anywhere).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` names through `crate::`, including the
/// items of `crate::{a, b::c}` groups.
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let m = ident(item.trim());
                if !m.is_empty() && m != "self" {
                    out.insert(m.to_string());
                }
            }
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.insert(m.to_string());
            }
        }
    }
    out
}

/// Which top-level module of the crate in `src` names which.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let Some(me) = module_of(src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        let entry = g.entry(me.clone()).or_default();
        for m in named(&code(&text)) {
            if m != me {
                entry.insert(m);
            }
        }
    }
    g
}

/// The strongly connected groups of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[v].min(self.low[w]);
                    self.low.insert(v, l);
                } else if self.on.contains(w) {
                    let l = self.low[v].min(self.index[w]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.out.push(group);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

fn explain(g: &Graph, cycles: &[Vec<String>]) -> String {
    cycles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g[a].iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("cycle {c:?}: {}", edges.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_graph_reader_sees_a_cycle_it_is_shown() {
    let g: Graph = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        named("use crate::x::{self, Y};\nuse crate::{a, b::c, d as e};\nf(crate::z::w)"),
        ["a", "b", "d", "x", "z"].map(String::from).into()
    );
    assert_eq!(
        code("a\n// crate::x\n#[cfg(test)]\nmod tests { crate::y }"),
        "a"
    );
}

#[test]
fn the_cloud_client_is_the_ground_floor() {
    let g = graph(&root().join("src"));
    assert_eq!(
        g["cloud"],
        BTreeSet::new(),
        "src/cloud.rs names modules of the project"
    );
}

#[test]
fn no_import_cycle_between_the_tools_modules() {
    let g = graph(&root().join("src"));
    let c = cycles(&g);
    assert!(c.is_empty(), "{}", explain(&g, &c));
}

#[test]
fn no_import_cycle_between_the_apps_modules() {
    let g = graph(&root().join("app/src"));
    let c = cycles(&g);
    assert!(c.is_empty(), "{}", explain(&g, &c));
}

/// Files that are data rather than logic may be longer.
const DATA_TABLES: &[&str] = &["src/cost/prices.rs"];
const MAX_LINES: usize = 600;

#[test]
fn no_source_file_holds_more_than_one_purposes_worth_of_lines() {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    sources(&root().join("app/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| {
            let rel = f
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .to_string();
            !DATA_TABLES.contains(&rel.as_str())
        })
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // Unit tests beside the code do not count.
            let code = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text,
            };
            let n = code.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}
