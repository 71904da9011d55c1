//! `status` as text for people.

use std::fmt::Write;

use super::{Group, Status};
use crate::terminal::{visible, Shown};

fn or<'a>(v: &'a Option<String>, default: &'a str) -> &'a str {
    v.as_deref().unwrap_or(default)
}

/// The status as aligned lines, ending with the verdict. Values come from
/// the cloud (a target's health reason, a refresh's status): each line
/// shows their control characters rather than obeying them.
pub fn text(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(out, "{k:<16} {}", visible(v, Shown::Line));
    };
    line("stack", &format!("{} ({})", s.stack, s.region));
    if let Some(u) = &s.url {
        line("url", u);
    }
    if let Some(g) = &s.group {
        group(&mut line, g);
    }
    if let Some(d) = &s.database {
        let mut v = format!(
            "{} {}, {}, {}, {} {}",
            d.identifier,
            or(&d.state, "?"),
            or(&d.class, "?"),
            if d.multi_az == Some(true) {
                "Multi-AZ"
            } else {
                "single-AZ"
            },
            or(&d.engine, "?"),
            or(&d.engine_version, "?"),
        );
        if d.pending.is_empty() {
            v.push_str(", no pending changes");
        } else {
            let p: Vec<String> = d.pending.iter().map(|(k, v)| format!("{k}={v}")).collect();
            v.push_str(&format!(", pending: {}", p.join(" ")));
        }
        line("database", &v);
    }
    if let Some(c) = &s.certificate {
        line(
            "certificate",
            &format!("{} {}", or(&c.domain, "?"), or(&c.status, "?")),
        );
    }
    if let Some(one) = &s.single {
        single(&mut line, one);
    }
    if let Some(f) = &s.fargate {
        if let Some(svc) = &f.service {
            line(
                "service",
                &format!(
                    "{} runs {}: {}/{} tasks running, {} pending",
                    svc.name, svc.task_definition, svc.running, svc.desired, svc.pending
                ),
            );
        }
        for d in &f.deployments {
            line(
                "deployment",
                &format!(
                    "{} {} {} {}/{}{}",
                    d.status.to_lowercase(),
                    d.task_definition,
                    d.rollout_state.to_lowercase(),
                    d.running,
                    d.desired,
                    d.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            );
        }
        let healthy = f.targets.iter().filter(|(_, st)| st == "healthy").count();
        line("targets", &format!("{healthy}/{} healthy", f.targets.len()));
        for t in &f.tasks {
            line(
                "task",
                &format!(
                    "{} {} {} {}, ECS Exec agent {}",
                    t.id,
                    t.revision,
                    t.address.as_deref().unwrap_or("-"),
                    if t.healthy { "healthy" } else { "not healthy" },
                    t.agent.to_lowercase()
                ),
            );
        }
    }
    if let Some(p) = &s.probe {
        let got = match (p.status, &p.error) {
            (Some(code), _) => code.to_string(),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "failed".into(),
        };
        line("probe", &format!("GET {}: {got} in {} ms", p.url, p.millis));
    }
    if s.healthy {
        out.push_str("healthy\n");
    } else {
        out.push_str("not healthy:\n");
        for p in &s.problems {
            let _ = writeln!(out, "  - {}", visible(p, Shown::Line));
        }
    }
    out
}

fn single(line: &mut impl FnMut(&str, &str), one: &super::single::Single) {
    if let Some(a) = &one.address {
        line(
            "address",
            &format!(
                "{} on {}",
                or(&a.public_ip, "?"),
                or(&a.instance, "no instance")
            ),
        );
    }
    if let Some(v) = &one.volume {
        let snap = match &v.last_snapshot {
            None => "no snapshot yet".to_string(),
            Some(s) => format!(
                "last snapshot {} {} at {}",
                s.id,
                or(&s.state, "?"),
                or(&s.started, "?")
            ),
        };
        line(
            "volume",
            &format!(
                "{} {} GiB {}, attached to {}; {snap}",
                v.id,
                v.size_gib
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "?".into()),
                or(&v.state, "?"),
                or(&v.attached_to, "nothing"),
            ),
        );
    }
    if let Some(t) = &one.tls {
        line(
            "certificate",
            &format!(
                "{} from {}, expires {}{}",
                t.domains.join(", "),
                or(&t.issuer, "?"),
                or(&t.not_after, "?"),
                t.days_left
                    .map(|d| format!(" ({d} days left)"))
                    .unwrap_or_default()
            ),
        );
    }
}

fn group(line: &mut impl FnMut(&str, &str), g: &Group) {
    let in_service = g
        .instances
        .iter()
        .filter(|i| i.lifecycle_state.as_deref() == Some("InService"))
        .count();
    line(
        "group",
        &format!(
            "{}: {in_service} in service of {} desired (min {}, max {}), {} healthy target{}",
            g.name,
            g.desired,
            g.min,
            g.max,
            g.healthy_targets,
            if g.healthy_targets == 1 { "" } else { "s" }
        ),
    );
    for i in &g.instances {
        let target = match &i.target {
            None => "not registered".to_string(),
            Some(t) => {
                let mut s = format!("target {}", t.state);
                match (&t.reason, &t.description) {
                    (Some(r), Some(d)) => s.push_str(&format!(" ({r}: {d})")),
                    (Some(r), None) => s.push_str(&format!(" ({r})")),
                    (None, Some(d)) => s.push_str(&format!(" ({d})")),
                    (None, None) => {}
                }
                s
            }
        };
        line(
            "",
            &format!(
                "{}  {}  {}  {}  v{}  {target}",
                i.id,
                or(&i.zone, "?"),
                or(&i.lifecycle_state, "?"),
                or(&i.health_status, "?"),
                or(&i.launch_template_version, "?"),
            ),
        );
    }
    let mut v = format!(
        "{}: version {} wanted, {} rolled out, group on {}",
        or(&g.launch_template_id, "?"),
        or(&g.wanted_version, "?"),
        or(&g.rolled_out_version, "none"),
        or(&g.configured_version, "?"),
    );
    if g.wanted_version.is_some() && g.wanted_version != g.rolled_out_version {
        v.push_str(" (not rolled out yet: run `up`)");
    }
    line("launch template", &v);
    let r = match &g.refresh {
        None if g.refresh_unreadable.is_some() => {
            "unknown: the instance refreshes could not be read".to_string()
        }
        None => "none".to_string(),
        Some(r) if r.active => format!(
            "{} {}, {}% done{} (to version {})",
            r.id,
            r.status,
            r.percentage_complete.unwrap_or(0),
            r.instances_to_update
                .map(|n| format!(", {n} to update"))
                .unwrap_or_default(),
            or(&r.target_version, "?"),
        ),
        Some(r) => format!("none running; the last, {}, ended {}", r.id, r.status),
    };
    line("refresh", &r);
}
