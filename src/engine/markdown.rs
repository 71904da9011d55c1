//! The plan as GitHub-flavoured markdown (`diff --format markdown`), for a
//! pull request comment or a job summary.
//!
//! It says what the terminal plan says ([`Plan::render`]), laid out for a
//! reviewer of a whole production stack: what is replaced or destroyed comes
//! first and stays visible, with why and whether `up` needs
//! `--allow-replace`; what is updated or created is listed one line per
//! resource (created ones grouped by kind), each line folding its attribute
//! values in a `<details>` block; unchanged resources are only counted.
//!
//! A value longer than [`MAX_INLINE`] characters is shown as its size and a
//! short digest (and, for an update, which of its fields change), so a
//! policy or a boot script never becomes a wall of JSON. The boot script
//! (`user_data`) is never shown, whatever its length.
//!
//! Everything that comes from the stack or the cloud is escaped for where
//! it lands (a code span, a table cell, raw HTML), so no value can break
//! the layout or inject markup. GitHub's markdown:
//! <https://github.github.com/gfm/>; folded sections:
//! <https://docs.github.com/en/get-started/writing-on-github/working-with-advanced-formatting/organizing-information-with-collapsed-sections>.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::plan::{Action, AttrDiff, Plan, Step};

/// The longest value, as compact JSON (or a bare string), shown whole; a
/// list of at most [`MAX_ITEMS`] such values is shown one item a line.
pub const MAX_INLINE: usize = 100;
const MAX_ITEMS: usize = 10;
/// The longest before or after value of a field named in a long value's change.
const MAX_FIELD: usize = 40;
/// How many resource ids (or attribute names) a one-line summary names.
const MAX_NAMED: usize = 6;
/// How many changed fields of a long value are named.
const MAX_PATHS: usize = 5;

/// Attributes whose values are never printed, only sized and digested.
const OPAQUE: &[&str] = &["user_data"];

/// A one-line title without markup (a check run's title, a notification):
/// `bookstore-prod: 41 to add, 0 to change, 0 to destroy`.
pub fn title(plan: &Plan) -> String {
    if plan.has_changes() {
        format!(
            "{}: {} to add, {} to change, {} to destroy",
            plan.stack, plan.summary.add, plan.summary.change, plan.summary.destroy
        )
    } else {
        format!("{}: no changes", plan.stack)
    }
}

/// The first line of [`render`]'s output: an HTML comment (invisible once
/// rendered) by which a CI job finds its earlier comment on a pull request
/// to edit it rather than add another.
pub fn marker(stack: &str) -> String {
    // `--` may not appear inside an HTML comment.
    let mut name: String = stack
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    format!("<!-- bookstore-infra plan: {} -->", name.trim_matches('-'))
}

/// The plan as markdown, then `extra_sections` (already rendered markdown
/// blocks, such as a cost estimate), each after a blank line.
pub fn render(plan: &Plan, extra_sections: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&plan.stack));
    blank(&mut out);
    let s = &plan.summary;
    if plan.has_changes() {
        let _ = writeln!(
            out,
            "**Plan for {}:** {} to add, {} to change, {} to destroy",
            code(&plan.stack),
            s.add,
            s.change,
            s.destroy
        );
    } else {
        let _ = writeln!(
            out,
            "**Plan for {}:** no changes, the stack matches its file ({} resources)",
            code(&plan.stack),
            plan.steps.len()
        );
    }
    for n in &plan.notes {
        blank(&mut out);
        let _ = writeln!(out, "> [!NOTE]\n> {}", text(n));
    }

    let of = |a: Action| plan.steps.iter().filter(move |x| x.action == a);
    let consent: Vec<&Step> = plan.steps.iter().filter(|x| x.needs_consent).collect();
    if !consent.is_empty() {
        let flags: Vec<String> = consent
            .iter()
            .map(|x| code(&format!("--allow-replace {}", x.id)))
            .collect();
        blank(&mut out);
        let _ = writeln!(out, "> [!CAUTION]");
        let _ = writeln!(
            out,
            "> **{} holding data would be replaced or deleted.** `up` refuses unless given {}.",
            count(consent.len(), "resource", "resources"),
            flags.join(" ")
        );
    }

    let gone: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|x| matches!(x.action, Action::Replace | Action::Delete))
        .collect();
    if !gone.is_empty() {
        blank(&mut out);
        let _ = writeln!(out, "### Replaced or destroyed ({})", gone.len());
        blank(&mut out);
        let _ = writeln!(out, "| | Resource | Why | How |");
        let _ = writeln!(out, "|---|---|---|---|");
        for x in &gone {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                code(x.action.symbol()),
                resource_cell(x),
                x.reason.as_deref().map(text).unwrap_or_default(),
                how(x)
            );
        }
        let replaced: Vec<&&Step> = gone.iter().filter(|x| !x.changes.is_empty()).collect();
        if !replaced.is_empty() {
            blank(&mut out);
            for x in replaced {
                changed_resource(&mut out, x);
            }
        }
    }

    let updates: Vec<&Step> = of(Action::Update).collect();
    if !updates.is_empty() {
        blank(&mut out);
        let _ = writeln!(out, "### Updated in place ({})", updates.len());
        blank(&mut out);
        for x in updates {
            changed_resource(&mut out, x);
        }
    }

    let creates: Vec<&Step> = of(Action::Create).collect();
    if !creates.is_empty() {
        blank(&mut out);
        let _ = writeln!(out, "### Created ({})", creates.len());
        blank(&mut out);
        // Grouped by kind, kinds in the order the plan first meets them
        // (roughly the dependency order).
        let mut kinds: Vec<&str> = Vec::new();
        for x in &creates {
            if !kinds.contains(&x.kind.as_str()) {
                kinds.push(&x.kind);
            }
        }
        for kind in kinds {
            let group: Vec<&Step> = creates.iter().copied().filter(|x| x.kind == kind).collect();
            created_kind(&mut out, kind, &group);
        }
    }

    let pending: Vec<&Step> = plan.steps.iter().filter(|x| x.pending).collect();
    if !pending.is_empty() {
        blank(&mut out);
        let _ = writeln!(out, "### Not ready yet ({})", pending.len());
        blank(&mut out);
        for x in pending {
            let _ = writeln!(
                out,
                "- {} {}: exists but is not ready yet, `up` waits for it before what needs it",
                code(&x.id),
                code(&x.kind)
            );
        }
    }

    let unchanged = of(Action::NoOp).count();
    if plan.has_changes() && unchanged > 0 {
        blank(&mut out);
        let _ = writeln!(
            out,
            "_{} unchanged, not listed._",
            count(unchanged, "resource", "resources")
        );
    }

    for section in extra_sections {
        blank(&mut out);
        let _ = writeln!(out, "{}", section.trim_end());
    }
    out
}

/// Id, kind and physical id of a replaced or deleted resource, for a table cell.
fn resource_cell(x: &Step) -> String {
    let mut cell = format!("**{}** {}", cell_code(&x.id), cell_code(&x.kind));
    if let Some(p) = &x.physical_id {
        let _ = write!(cell, "<br>{}", cell_code(p));
    }
    cell
}

/// How a replaced or deleted resource goes, and whether it needs consent.
fn how(x: &Step) -> String {
    let mut how = match (x.action, x.create_first) {
        (Action::Replace, true) => "new one created first, then the old one deleted".to_string(),
        (Action::Replace, false) => "old one deleted first, then the new one created".to_string(),
        _ => "deleted".to_string(),
    };
    if x.needs_consent {
        let _ = write!(
            how,
            "<br>**holds data:** needs {}",
            cell_code(&format!("--allow-replace {}", x.id))
        );
    }
    how
}

/// A replaced or updated resource: one line naming what changes, its
/// before and after folded.
fn changed_resource(out: &mut String, x: &Step) {
    let mut names: Vec<String> = x
        .changes
        .iter()
        .take(MAX_NAMED)
        .map(|c| format!("<code>{}</code>", html(&c.name)))
        .collect();
    if x.changes.len() > MAX_NAMED {
        names.push(format!("{} more", x.changes.len() - MAX_NAMED));
    }
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code> <b>{}</b> <i>{}</i>{}: {}</summary>",
        html(x.action.symbol()),
        html(&x.id),
        html(&x.kind),
        x.physical_id
            .as_deref()
            .map(|p| format!(" <code>{}</code>", html(p)))
            .unwrap_or_default(),
        names.join(", ")
    );
    blank(out);
    let _ = writeln!(out, "| Attribute | Before | After |");
    let _ = writeln!(out, "|---|---|---|");
    for c in &x.changes {
        let (before, after) = before_after(c);
        let name = if c.forces_replacement {
            format!("{} (forces replacement)", cell_code(&c.name))
        } else {
            cell_code(&c.name)
        };
        let _ = writeln!(out, "| {name} | {before} | {after} |");
    }
    blank(out);
    let _ = writeln!(out, "</details>");
    blank(out);
}

/// The resources of one kind to create: one line naming them, their
/// attributes folded.
fn created_kind(out: &mut String, kind: &str, group: &[&Step]) {
    let mut ids: Vec<String> = group
        .iter()
        .take(MAX_NAMED)
        .map(|x| format!("<b>{}</b>", html(&x.id)))
        .collect();
    if group.len() > MAX_NAMED {
        ids.push(format!("{} more", group.len() - MAX_NAMED));
    }
    let many = if group.len() > 1 {
        format!(" ×{}", group.len())
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<details><summary><code>+</code> <i>{}</i>{many}: {}</summary>",
        html(kind),
        ids.join(", ")
    );
    for x in group {
        blank(out);
        if group.len() > 1 {
            let _ = writeln!(out, "**{}**", code(&x.id));
            blank(out);
        }
        if x.changes.is_empty() {
            let _ = writeln!(out, "_no attributes_");
            continue;
        }
        let _ = writeln!(out, "| Attribute | Value |");
        let _ = writeln!(out, "|---|---|");
        for c in &x.changes {
            let _ = writeln!(
                out,
                "| {} | {} |",
                cell_code(&c.name),
                value(&c.name, c.after.as_ref())
            );
        }
    }
    blank(out);
    let _ = writeln!(out, "</details>");
    blank(out);
}

/// The before and after cells of a changed attribute.
fn before_after(c: &AttrDiff) -> (String, String) {
    let before = match &c.before {
        Some(b) => value(&c.name, Some(b)),
        None => "_none_".to_string(),
    };
    let mut after = value(&c.name, c.after.as_ref());
    // A long or hidden value is shown by its digest, a list or an object
    // may differ in one field: name what changes in it.
    if let (Some(b), Some(a)) = (&c.before, &c.after) {
        let scalar = |v: &Value| !v.is_array() && !v.is_object();
        if !(scalar(b) && scalar(a) && whole(&c.name, b).is_some() && whole(&c.name, a).is_some()) {
            let mut paths = Vec::new();
            changed_paths("", Some(b), Some(a), &mut paths);
            if !paths.iter().any(|(p, _, _)| p.is_empty()) {
                let opaque = OPAQUE.contains(&c.name.as_str());
                let mut named: Vec<String> = paths
                    .iter()
                    .take(MAX_PATHS)
                    .map(|(p, b, a)| field_change(p, *b, *a, opaque))
                    .collect();
                if paths.len() > MAX_PATHS {
                    named.push(format!("{} more", paths.len() - MAX_PATHS));
                }
                let _ = write!(after, "<br>changes {}", named.join(", "));
            }
        }
    }
    (before, after)
}

/// A field of a long value that changes, with its values when short and
/// not `opaque`.
fn field_change(path: &str, b: Option<&Value>, a: Option<&Value>, opaque: bool) -> String {
    let short = |v: Option<&Value>| {
        v.map(inline)
            .filter(|s| !opaque && !s.is_empty() && s.chars().count() <= MAX_FIELD)
    };
    match (short(b), short(a)) {
        (Some(b), Some(a)) => format!("{} {} → {}", cell_code(path), cell_code(&b), cell_code(&a)),
        _ => cell_code(path),
    }
}

/// The table cell of a value shown whole, if it is short enough: a short
/// list one item a line.
fn whole(name: &str, v: &Value) -> Option<String> {
    if OPAQUE.contains(&name) {
        return None;
    }
    let text = inline(v);
    if text.chars().count() <= MAX_INLINE {
        return Some(cell_code(&text));
    }
    let items = v.as_array()?;
    let short = items.len() <= MAX_ITEMS
        && items
            .iter()
            .all(|i| inline(i).chars().count() <= MAX_INLINE);
    short.then(|| {
        items
            .iter()
            .map(|i| cell_code(&inline(i)))
            .collect::<Vec<_>>()
            .join("<br>")
    })
}

/// A value as compact text: a string bare, anything else as JSON.
fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value for a table cell: whole when short, else its size and digest;
/// `None` is a value known only after apply.
fn value(name: &str, v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "_known after apply_".to_string();
    };
    if v.as_str() == Some("") {
        return "_empty_".to_string();
    }
    if let Some(cell) = whole(name, v) {
        return cell;
    }
    let json = v.to_string();
    let digest = cell_code(&format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(json.as_bytes()))[..12]
    ));
    let size = match v {
        Value::Object(o) => format!("{} {}", count(o.len(), "field", "fields"), digest),
        Value::Array(a) => format!("{} {}", count(a.len(), "item", "items"), digest),
        Value::String(s) => format!("{} chars {}", s.chars().count(), digest),
        _ => digest,
    };
    if OPAQUE.contains(&name) {
        return format!("_not shown_, {size}");
    }
    match v {
        Value::String(s) => {
            let head: String = s.chars().take(MAX_INLINE - 20).collect();
            format!("{}…, {size}", cell_code(&head))
        }
        _ => size,
    }
}

/// The paths (`vars.db_host`, `Statement[1]`) where `b` and `a` differ,
/// with their values there (`None`: not there); `""` when they differ at
/// the top.
fn changed_paths<'v>(
    path: &str,
    b: Option<&'v Value>,
    a: Option<&'v Value>,
    out: &mut Vec<(String, Option<&'v Value>, Option<&'v Value>)>,
) {
    match (b, a) {
        (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
            let mut keys: Vec<&String> = bo.keys().chain(ao.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                changed_paths(&p, bo.get(k), ao.get(k), out);
            }
        }
        (Some(Value::Array(ba)), Some(Value::Array(aa))) if ba.len() == aa.len() => {
            for (i, (x, y)) in ba.iter().zip(aa).enumerate() {
                changed_paths(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        _ if b != a => out.push((path.to_string(), b, a)),
        _ => {}
    }
}

/// Ends a block with a blank line, once.
fn blank(out: &mut String) {
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `s` as a code span outside tables: any backticks, `<`, `*` inside stay
/// literal text (<https://github.github.com/gfm/#code-spans>).
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest = s
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    let fence = "`".repeat(longest + 1);
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (s.starts_with(' ') && s.ends_with(' ') && !s.trim().is_empty());
    if pad {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// `s` as a code span inside a table cell, where a `|` must be escaped even
/// in a code span (<https://github.github.com/gfm/#example-200>).
fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Markdown prose from the plan (a reason), whose backticks mark code:
/// the code parts become code spans, the rest has every markdown and HTML
/// special character escaped. Fit for a table cell.
fn text(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    // Unbalanced backticks: no code at all.
    let balanced = parts.len() % 2 == 1;
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if balanced && i % 2 == 1 {
            out.push_str(&cell_code(part));
            continue;
        }
        if !balanced && i > 0 {
            out.push_str("\\`");
        }
        for c in part.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c if c.is_control() => out.push(' '),
                c if c.is_ascii_punctuation() && !"-.,:;'\"()/=+%?".contains(c) => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// `s` as text inside raw HTML (a `<summary>`), where markdown is not
/// parsed but tags and entities are.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Summary;
    use serde_json::json;

    fn step(id: &str, action: Action) -> Step {
        Step {
            id: id.into(),
            kind: "k:thing".into(),
            action,
            physical_id: (action != Action::Create).then(|| format!("{id}-1")),
            changes: Vec::new(),
            reason: None,
            needs_consent: false,
            create_first: false,
            pending: false,
            deps: Vec::new(),
        }
    }

    fn plan_of(steps: Vec<Step>) -> Plan {
        let mut s = Summary {
            add: 0,
            change: 0,
            destroy: 0,
        };
        for x in &steps {
            match x.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1
                }
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        Plan {
            format_version: 1,
            stack: "shop".into(),
            steps,
            summary: s,
            notes: Vec::new(),
        }
    }

    #[test]
    fn code_spans_hold_backticks_and_pipes() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("<b>"), "`<b>`");
        assert_eq!(cell_code("a|b"), "`a\\|b`");
        assert_eq!(code("a\nb"), "`a b`");
    }

    #[test]
    fn prose_keeps_its_code_and_escapes_the_rest() {
        assert_eq!(
            text("`cidr` cannot change in place"),
            "`cidr` cannot change in place"
        );
        assert_eq!(text("a <b>|*c*"), "a &lt;b&gt;\\|\\*c\\*");
        assert_eq!(text("odd ` tick"), "odd \\` tick");
    }

    #[test]
    fn html_is_escaped_in_summaries() {
        let mut s = step("x<script>", Action::Update);
        s.changes = vec![AttrDiff {
            name: "n\"&".into(),
            before: Some(json!("a")),
            after: Some(json!("b")),
            forces_replacement: false,
        }];
        let md = render(&plan_of(vec![s]), &[]);
        assert!(md.contains("<b>x&lt;script&gt;</b>"), "{md}");
        assert!(md.contains("<code>n&quot;&amp;</code>"), "{md}");
        assert!(!md.contains("<script>"), "{md}");
    }

    #[test]
    fn long_values_are_digested_and_user_data_never_shown() {
        let long = "x".repeat(500);
        let mut s = step("lt", Action::Update);
        s.changes = vec![
            AttrDiff {
                name: "user_data".into(),
                before: Some(json!({"vars": {"port": 80, "host": "h"}})),
                after: Some(json!({"vars": {"port": 81, "host": "h"}})),
                forces_replacement: false,
            },
            AttrDiff {
                name: "policy".into(),
                before: Some(json!({"Statement": [long.clone()]})),
                after: Some(json!({"Statement": [long.clone() + "y"]})),
                forces_replacement: false,
            },
            AttrDiff {
                name: "listener".into(),
                before: Some(json!({"arn": long.clone(), "port": 80})),
                after: Some(json!({"arn": long.clone(), "port": 81})),
                forces_replacement: false,
            },
            AttrDiff {
                name: "description".into(),
                before: None,
                after: Some(json!(long)),
                forces_replacement: false,
            },
        ];
        let md = render(&plan_of(vec![s]), &[]);
        assert!(!md.contains("\"port\""), "{md}");
        assert!(md.contains("_not shown_"), "{md}");
        assert!(md.contains("changes `vars.port`"), "{md}");
        assert!(md.contains("changes `Statement[0]` |"), "{md}");
        assert!(md.contains("changes `vars.port` |"), "{md}");
        assert!(md.contains("changes `port` `80` → `81` |"), "{md}");
        assert!(md.contains("…, 500 chars `sha256:"), "{md}");
        assert!(md.lines().all(|l| l.len() < 300), "{md}");
    }

    #[test]
    fn no_changes_says_so_and_lists_what_is_not_ready() {
        let mut waiting = step("cert", Action::NoOp);
        waiting.pending = true;
        let p = plan_of(vec![step("vpc", Action::NoOp), waiting]);
        let md = render(&p, &["## Cost\n\nnone\n".to_string()]);
        assert!(
            md.contains(
                "**Plan for `shop`:** no changes, the stack matches its file (2 resources)"
            ),
            "{md}"
        );
        assert!(md.contains("- `cert` `k:thing`: exists but is not ready yet"));
        assert!(md.ends_with("\n## Cost\n\nnone\n"), "{md}");
        assert_eq!(title(&p), "shop: no changes");
    }

    #[test]
    fn the_marker_is_a_well_formed_comment() {
        assert_eq!(marker("a--b>c"), "<!-- bookstore-infra plan: a-b-c -->");
    }
}
