//! A [`Comparison`] as tables: text for the terminal, markdown for pull
//! requests and chat.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Comparison, CostLine};

/// One row of a rendered comparison: a resource's item before and after.
struct Row<'c> {
    id: &'c str,
    item: &'c str,
    detail: String,
    before: Option<&'c CostLine>,
    after: Option<&'c CostLine>,
}

/// `min..max` in the way `one` writes an amount, or one amount when they
/// are the same to the cent.
fn range(min: f64, max: f64, one: fn(f64) -> String) -> String {
    if (min - max).abs() < 0.005 {
        one(min)
    } else {
        format!("{}..{}", one(min), one(max))
    }
}

/// A monthly amount: `12.30` or `12.30..45.60`.
fn amount(min: f64, max: f64) -> String {
    range(min, max, |v| format!("{v:.2}"))
}

/// A change of a monthly amount: `+12.30` or `-1.00..+45.60`.
fn change(min: f64, max: f64) -> String {
    range(min, max, |v| format!("{v:+.2}"))
}

impl Comparison {
    /// Rows in the order of `after`, then what only `before` has.
    fn rows(&self) -> Vec<Row<'_>> {
        let key = |l: &CostLine| (l.id.clone(), l.item.clone());
        let before: BTreeMap<(String, String), &CostLine> =
            self.before.lines.iter().map(|l| (key(l), l)).collect();
        let mut rows: Vec<Row> = self
            .after
            .lines
            .iter()
            .map(|a| {
                let b = before.get(&key(a)).copied();
                let detail = match b {
                    Some(b) if b.what != a.what => format!("{} -> {}", b.what, a.what),
                    _ => a.what.clone(),
                };
                Row {
                    id: &a.id,
                    item: &a.item,
                    detail,
                    before: b,
                    after: Some(a),
                }
            })
            .collect();
        for b in &self.before.lines {
            if !self
                .after
                .lines
                .iter()
                .any(|a| a.id == b.id && a.item == b.item)
            {
                rows.push(Row {
                    id: &b.id,
                    item: &b.item,
                    detail: format!("{} (removed)", b.what),
                    before: Some(b),
                    after: None,
                });
            }
        }
        rows
    }

    fn cells(&self) -> (Vec<[String; 6]>, [String; 6]) {
        let cell = |l: Option<&CostLine>| {
            l.map_or("-".to_string(), |l| amount(l.monthly_min, l.monthly_max))
        };
        let body = self
            .rows()
            .into_iter()
            .map(|r| {
                let (bmin, bmax) = r
                    .before
                    .map_or((0.0, 0.0), |l| (l.monthly_min, l.monthly_max));
                let (amin, amax) = r
                    .after
                    .map_or((0.0, 0.0), |l| (l.monthly_min, l.monthly_max));
                [
                    r.id.to_string(),
                    r.item.to_string(),
                    r.detail,
                    cell(r.before),
                    cell(r.after),
                    change(amin - bmin, amax - bmax),
                ]
            })
            .collect();
        let total = [
            "total".to_string(),
            String::new(),
            String::new(),
            amount(self.before.total_min, self.before.total_max),
            amount(self.after.total_min, self.after.total_max),
            change(self.increase_min, self.increase_max),
        ];
        (body, total)
    }

    fn heading(&self) -> String {
        format!(
            "Estimated monthly cost in {} ({}, on-demand list prices of {}, {} hours a month)",
            self.region, self.currency, self.table_date, self.hours_per_month
        )
    }

    fn unpriced(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .before
            .unpriced
            .iter()
            .chain(&self.after.unpriced)
            .map(String::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A table for the terminal.
    pub fn render_text(&self) -> String {
        const HEAD: [&str; 6] = ["RESOURCE", "ITEM", "DETAIL", "BEFORE", "AFTER", "CHANGE"];
        let (body, total) = self.cells();
        let mut width = HEAD.map(|h| h.chars().count());
        for row in body.iter().chain([&total]) {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String; 6]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                let pad = w - c.chars().count();
                if i >= 3 {
                    // Amounts align right.
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                }
                if i < 5 {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = self.heading();
        out.push('\n');
        out.push_str(&line(&HEAD.map(String::from)));
        out.push('\n');
        for row in &body {
            out.push_str(&line(row));
            out.push('\n');
        }
        out.push_str(&line(&total));
        out.push('\n');
        for id in self.unpriced() {
            let _ = writeln!(out, "Not priced (unknown kind): {id}");
        }
        out.push_str("Not counted:\n");
        for n in &self.not_counted {
            let _ = writeln!(out, "  - {n}");
        }
        out
    }

    /// A markdown table, for pull requests and chat.
    pub fn render_markdown(&self) -> String {
        let (body, total) = self.cells();
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!("**{}**\n\n", self.heading());
        out.push_str("| Resource | Item | Detail | Before | After | Change |\n");
        out.push_str("|---|---|---|---:|---:|---:|\n");
        for r in &body {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                esc(&r[0]),
                esc(&r[1]),
                esc(&r[2]),
                r[3],
                r[4],
                r[5]
            );
        }
        let _ = writeln!(
            out,
            "| **total** | | | **{}** | **{}** | **{}** |",
            total[3], total[4], total[5]
        );
        let unpriced = self.unpriced();
        if !unpriced.is_empty() {
            let _ = writeln!(
                out,
                "\nNot priced (unknown kind): {}",
                unpriced
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push_str("\nNot counted:\n");
        for n in &self.not_counted {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out, "\nPrices: {}", self.table_source);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::cost::test_support::*;
    use crate::cost::NOT_COUNTED;

    #[test]
    fn every_rendering_says_what_is_not_counted() {
        let c = production_change("t3.small", "t3.medium");
        let text = c.render_text();
        let md = c.render_markdown();
        let json = serde_json::to_value(&c).unwrap();
        for n in NOT_COUNTED {
            assert!(text.contains(n), "text lacks {n}");
            assert!(md.contains(n), "markdown lacks {n}");
        }
        assert!(
            text.contains("(beyond it: $0.095/GB-month in us-east-1)"),
            "{text}"
        );
        assert!(md.contains("usage-based at $0.30/GB-month"), "{md}");
        assert_eq!(
            json["not_counted"].as_array().unwrap().len(),
            NOT_COUNTED.len()
        );
        // Totals: before 239.553 at the minimum, after 302.849 + 91.104 at the maximum.
        assert!(text.contains("239.55..302.85"), "{text}");
        assert!(
            md.contains(
                "| **total** | | | **239.55..302.85** | **269.92..393.95** | **+30.37..+91.10** |"
            ),
            "{md}"
        );
        assert!(md.contains("|---|---|---|---:|---:|---:|"));
        assert_eq!(json["increase_max"], serde_json::json!(91.104));
        assert_eq!(json["after"]["total_max"], serde_json::json!(393.953));
        assert_eq!(json["table_date"], "2026-11");
        assert_eq!(json["region"], "us-east-1");
        assert!(json["after"]["lines"][0]["monthly_min"].is_f64());
    }
}
