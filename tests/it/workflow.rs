//! The example GitHub Actions workflow (examples/github-actions/) is a valid
//! workflow, and runs verbs and flags the tool has.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

fn workflow() -> PathBuf {
    common::root().join("examples/github-actions/bookstore-infra.yml")
}

/// check-jsonschema, installed with the emulator by scripts/ensure-emulator.
fn check_jsonschema(file: &std::path::Path) -> std::process::Output {
    let bin = common::root().join(".venv/bin/check-jsonschema");
    assert!(
        bin.exists(),
        "check-jsonschema is not installed at {}: run scripts/ensure-emulator (.ci/run does)",
        bin.display()
    );
    Command::new(&bin)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(file)
        .output()
        .expect("run check-jsonschema")
}

#[test]
fn the_example_workflow_passes_the_github_workflow_schema() {
    let out = check_jsonschema(&workflow());
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_schema_rejects_a_broken_copy() {
    let text = std::fs::read_to_string(workflow()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A job without `runs-on`, and a step that both uses an action and runs.
    for (what, broken) in [
        ("runs_on", text.replacen("runs-on:", "runs_on:", 1)),
        (
            "uses and run",
            text.replacen(
                "      - uses: actions/checkout@v4\n",
                "      - uses: actions/checkout@v4\n        run: echo both\n",
                1,
            ),
        ),
    ] {
        assert_ne!(broken, text, "{what}: nothing was broken");
        let p = dir.path().join("broken.yml");
        std::fs::write(&p, &broken).unwrap();
        let out = check_jsonschema(&p);
        assert!(
            !out.status.success(),
            "{what}: the broken copy passed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// `bookstore-infra <verb> ...` commands of the workflow (continued lines
/// joined), as (verb, flags).
fn invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| {
            // A command starts its line, or follows a one-line `run:`.
            let l = l.trim_start();
            let l = l.strip_prefix("run: ").unwrap_or(l);
            l.strip_prefix("target/release/bookstore-infra ")
        })
        .map(|cmd| {
            let mut words = cmd.split_whitespace();
            let verb = words.next().unwrap_or_default().to_string();
            let flags = words
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split('=').next().unwrap().to_string())
                .collect();
            (verb, flags)
        })
        .collect()
}

#[test]
fn the_workflow_runs_verbs_and_flags_the_tool_has() {
    let text = std::fs::read_to_string(workflow()).unwrap();
    let calls = invocations(&text);
    let verbs: Vec<&str> = calls.iter().map(|(v, _)| v.as_str()).collect();
    for v in ["validate", "diff", "up"] {
        assert!(
            verbs.contains(&v),
            "the workflow never runs `{v}`: {verbs:?}"
        );
    }
    for (verb, flags) in &calls {
        let out = Command::new(common::bin())
            .args([verb.as_str(), "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "`{verb}` is not a verb of the tool");
        for f in flags {
            assert!(
                help.contains(&format!("{f} ")) || help.contains(&format!("{f}\n")),
                "`{verb}` has no flag {f}:\n{help}"
            );
        }
    }
    let all: Vec<String> = calls
        .iter()
        .flat_map(|(v, f)| f.iter().map(move |f| format!("{v} {f}")))
        .collect();
    for want in [
        "diff --out",
        "diff --format",
        "diff --max-monthly-increase",
        "diff --detailed-exitcode",
        "up --plan",
        "up --yes",
        "up --lock-wait",
    ] {
        assert!(all.iter().any(|a| a == want), "no `{want}` in {all:?}");
    }
    // Exit codes the job explains are the ones the tool documents.
    let help = String::from_utf8_lossy(
        &Command::new(common::bin())
            .arg("--help")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for code in ["2 changes present", "3 the stack's lock is held", "5 stale"] {
        assert!(
            help.contains(code),
            "the tool's help no longer says {code:?}"
        );
    }
    for (code, why) in [("2)", "drift"), ("5)", "stale plan"), ("3)", "lock")] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(code) && l.contains(why)),
            "the workflow does not explain exit code {code} ({why})"
        );
    }
    // Credentials through OIDC, a plan role and an apply role, one apply at
    // a time, the reviewed plan handed from the pull request's run.
    for want in [
        "id-token: write",
        "aws-actions/configure-aws-credentials@v4",
        "vars.AWS_PLAN_ROLE_ARN",
        "vars.AWS_APPLY_ROLE_ARN",
        "concurrency:",
        "actions/upload-artifact@v4",
        "actions/download-artifact@v4",
        "run-id: ${{ steps.pr.outputs.run-id }}",
        "github-token:",
        "cargo build --release",
        "scripts/build-app",
        "cron:",
    ] {
        assert!(text.contains(want), "the workflow lacks {want:?}");
    }
    assert!(common::root().join("scripts/build-app").exists());
    let stack = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("STACK: "))
        .expect("a STACK variable");
    assert!(
        common::root().join(stack).exists(),
        "{stack} does not exist"
    );
}

#[test]
fn cargo_does_not_take_the_example_directory_for_an_example() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(common::root())
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .expect("run cargo metadata");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bookstore-infra")
        .unwrap();
    let examples: Vec<&serde_json::Value> = pkg["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "example"))
        .filter(|t| {
            t["src_path"]
                .as_str()
                .unwrap()
                .contains("examples/github-actions")
        })
        .collect();
    assert!(examples.is_empty(), "{examples:?}");
}
