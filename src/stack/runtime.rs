//! `app.runtime`: what runs the app in the scaled shape. Instances (an
//! Auto Scaling group booting the binary) by default, or Fargate (an ECS
//! service running the app's container image, which the tool builds).
//! Settings of the other runtime are refused where they are written.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::error::{Source, StackError};
use super::origin::Origin;
use super::single::Shape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// An Auto Scaling group of EC2 instances.
    #[default]
    Instances,
    /// An ECS service of Fargate tasks.
    Fargate,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Instances => "instances",
            Runtime::Fargate => "fargate",
        }
    }
}

/// A Fargate task's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSize {
    /// CPU units (1024 = one vCPU).
    pub cpu: u32,
    /// MiB.
    pub memory: u32,
}

impl Default for TaskSize {
    fn default() -> Self {
        TaskSize {
            cpu: 512,
            memory: 1024,
        }
    }
}

/// The memory sizes Fargate allows for each CPU size ("Amazon ECS task
/// definition parameters for Fargate", Task size): (cpu, lowest, highest,
/// step), in MiB.
const SIZES: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 0),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// Whether Fargate runs a task of `cpu` units with `memory` MiB.
pub fn valid_size(cpu: u32, memory: u32) -> bool {
    SIZES.iter().any(|&(c, lo, hi, step)| {
        c == cpu
            && match step {
                // 0.25 vCPU: 512, 1024 or 2048 MiB.
                0 => [512, 1024, 2048].contains(&memory),
                step => (lo..=hi).contains(&memory) && (memory - lo) % step == 0,
            }
    })
}

/// Settings only instances have, and why Fargate has none.
const INSTANCES_ONLY: &[(&str, &str)] = &[
    ("app.instance_type", "a task's size is `cpu` and `memory`"),
    ("app.ami", "tasks run the app's image, not an AMI"),
    (
        "app.refresh_min_healthy",
        "ECS replaces tasks, keeping the service at full strength",
    ),
    (
        "app.refresh_warmup",
        "ECS replaces tasks, keeping the service at full strength",
    ),
    (
        "app.data_dir",
        "the shared file system is mounted at /var/lib/bookstore in the container",
    ),
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    pub(super) runtime: Option<Spanned<Runtime>>,
    pub(super) cpu: Option<Spanned<i64>>,
    pub(super) memory: Option<Spanned<i64>>,
}

/// The runtime and, for Fargate, the task size.
pub(super) fn parse(
    src: &Source,
    origin: &Origin,
    shape: Shape,
    raw: &RawRuntime,
) -> Result<(Runtime, Option<TaskSize>), StackError> {
    let runtime = raw
        .runtime
        .as_ref()
        .map(|r| *r.get_ref())
        .unwrap_or_default();
    if runtime == Runtime::Instances {
        for key in ["app.cpu", "app.memory"] {
            if origin.position(key).is_some() {
                return Err(origin.error(
                    &[key],
                    format!("`{key}` sizes a Fargate task: set `app.runtime = \"fargate\"`, or size instances with `app.instance_type`"),
                ));
            }
        }
        return Ok((runtime, None));
    }
    if shape != Shape::Scaled {
        return Err(origin.error(
            &["app.runtime"],
            "`app.runtime = \"fargate\"` runs the scaled shape's service: shape = \"single\" is one instance",
        ));
    }
    for (key, why) in INSTANCES_ONLY {
        if origin.position(key).is_some() {
            return Err(origin.error(
                &[key],
                format!(
                    "`{key}` is a setting of instances: with `app.runtime = \"fargate\"` {why}"
                ),
            ));
        }
    }
    let d = TaskSize::default();
    let cpu = src.int(&raw.cpu, "app.cpu", 256..=16384, d.cpu as i64)?;
    let memory = src.int(&raw.memory, "app.memory", 512..=122880, d.memory as i64)?;
    if !valid_size(cpu, memory) {
        let at = raw.memory.as_ref().or(raw.cpu.as_ref());
        let message = format!(
            "Fargate has no task of cpu = {cpu} with memory = {memory}: {}",
            sizes_for(cpu)
        );
        return Err(match at {
            Some(v) => src.at_value(v, message),
            None => origin.error(&["app.cpu", "app.memory"], message),
        });
    }
    Ok((runtime, Some(TaskSize { cpu, memory })))
}

fn sizes_for(cpu: u32) -> String {
    match SIZES.iter().find(|s| s.0 == cpu) {
        Some((_, _, _, 0)) => "with cpu = 256, memory is 512, 1024 or 2048".into(),
        Some((c, lo, hi, step)) => {
            format!("with cpu = {c}, memory is {lo} to {hi} in steps of {step}")
        }
        None => "cpu is 256, 512, 1024, 2048, 4096, 8192 or 16384".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_sizes_are_the_documented_pairs() {
        for (cpu, mem) in [
            (256, 512),
            (256, 2048),
            (512, 4096),
            (1024, 3072),
            (4096, 30720),
            (8192, 20480),
            (16384, 122880),
        ] {
            assert!(valid_size(cpu, mem), "{cpu}/{mem}");
        }
        for (cpu, mem) in [
            (256, 1536),
            (256, 4096),
            (512, 512),
            (1024, 1024),
            (8192, 18432),
            (300, 1024),
            (16384, 36864),
        ] {
            assert!(!valid_size(cpu, mem), "{cpu}/{mem}");
        }
    }

    fn parse(text: &str) -> Result<crate::stack::Stack, StackError> {
        crate::stack::parse(std::path::Path::new("s.toml"), text)
    }

    #[test]
    fn fargate_is_chosen_sized_and_refuses_instance_settings_where_written() {
        let s = parse("name = \"shop\"\n[app]\nruntime = \"fargate\"\n").unwrap();
        assert_eq!(s.app.runtime, Runtime::Fargate);
        assert_eq!(
            s.app.task,
            Some(TaskSize {
                cpu: 512,
                memory: 1024
            })
        );
        let s = parse("name = \"shop\"\n").unwrap();
        assert_eq!((s.app.runtime, s.app.task), (Runtime::Instances, None));

        let e =
            parse("name = \"shop\"\n[app]\nruntime = \"fargate\"\ninstance_type = \"t3.small\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("s.toml:4:17"), "{e}");
        assert!(
            e.contains("`app.instance_type` is a setting of instances"),
            "{e}"
        );

        let e = parse("name = \"shop\"\n[app]\nruntime = \"fargate\"\ncpu = 1024\nmemory = 1024\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:5:10"), "{e}");
        assert!(e.contains("memory is 2048 to 8192 in steps of 1024"), "{e}");

        let e = parse("name = \"shop\"\n[app]\nmemory = 2048\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:3:10"), "{e}");
        assert!(e.contains("sizes a Fargate task"), "{e}");

        let e = parse("name = \"shop\"\nshape = \"single\"\n[app]\nruntime = \"fargate\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:4:11"), "{e}");

        let e = parse("name = \"shop\"\n[app]\nruntime = \"lambda\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:3:11"), "{e}");
    }
}
