//! The price of the app on Fargate: its tasks, each of the task
//! definition's size, at the scaling's minimum and maximum count.

use serde_json::Value;

use super::estimate::Part;
use super::prices::RegionPrices;
use super::Priced;
use crate::engine::refs;
use crate::resources::{ecs_task_definition, service_scaling};

/// The service's tasks, or `None` when the table has no Fargate prices
/// for the region or the task size is not known.
pub(super) fn tasks(p: &RegionPrices, h: f64, svc: &Priced, all: &[Priced]) -> Option<Vec<Part>> {
    let (vcpu_hour, gb_hour) = (p.fargate_vcpu_hour?, p.fargate_gb_hour?);
    let task = task_definition_of(svc, all)?;
    let number = |k: &str| match task.props.get(k)? {
        Value::String(s) => s.parse::<f64>().ok(),
        v => v.as_f64(),
    };
    let (cpu, memory) = (number("cpu")?, number("memory")?);
    let scaling = all.iter().find(|r| r.kind == service_scaling::KIND);
    let count = |k: &str| {
        scaling
            .and_then(|s| s.props.get(k))
            .or_else(|| svc.props.get("desired_count"))
            .and_then(Value::as_f64)
            .unwrap_or(1.0)
    };
    let (min, max) = (count("min"), count("max"));
    let hourly = cpu / 1024.0 * vcpu_hour + memory / 1024.0 * gb_hour;
    let n = if min == max {
        format!("{min}")
    } else {
        format!("{min}-{max}")
    };
    Some(vec![Part {
        item: "tasks",
        what: format!(
            "{n} x Fargate task ({} vCPU, {} GB)",
            cpu / 1024.0,
            memory / 1024.0
        ),
        min: min * hourly * h,
        max: max * hourly * h,
    }])
}

/// The task definition a service runs: desired, by reference; observed, by ARN.
fn task_definition_of<'a>(svc: &Priced, all: &[Priced<'a>]) -> Option<Priced<'a>> {
    let tds: Vec<&Priced<'a>> = all
        .iter()
        .filter(|r| r.kind == ecs_task_definition::KIND)
        .collect();
    let named = svc.props.get("task_definition");
    let found = named.and_then(|v| match refs::as_ref(v) {
        Some((id, _)) => tds.iter().find(|t| t.id == id),
        None => v
            .as_str()
            .and_then(|arn| tds.iter().find(|t| t.physical_id == Some(arn))),
    });
    match (found, tds.as_slice()) {
        (Some(t), _) => Some(**t),
        (None, [only]) => Some(**only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::cost::estimate;
    use crate::cost::test_support::*;
    use crate::topology::desired;

    #[test]
    fn the_fargate_stack_pays_for_its_tasks_not_for_instances() {
        let s = stack("fargate.toml");
        let rg = region(&s);
        let e = estimate(&rg, &desired(&s, &facts(&rg))).unwrap();
        // us-east-1: 1-4 tasks of 0.5 vCPU and 1 GB at $0.04048 per
        // vCPU-hour and $0.004445 per GB-hour.
        let task = (0.5 * 0.04048 + 1.0 * 0.004445) * H;
        let tasks = line(&e, "service", "tasks");
        close(tasks.monthly_min, task);
        close(tasks.monthly_max, 4.0 * task);
        assert_eq!(tasks.what, "1-4 x Fargate task (0.5 vCPU, 1 GB)");
        // Nothing of instances; nothing left unpriced.
        assert!(e.lines.iter().all(|l| l.kind != "autoscaling:group"));
        assert!(e.unpriced.is_empty(), "{:?}", e.unpriced);
        // The same shape on instances, for the README's comparison.
        let instances = stack("demo.toml");
        let i = estimate(&rg, &desired(&instances, &facts(&rg))).unwrap();
        println!(
            "fargate {:.2}-{:.2} USD/month, instances {:.2}-{:.2}",
            e.total_min, e.total_max, i.total_min, i.total_max
        );
    }
}
