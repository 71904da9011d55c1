//! The scaled shape with the app on Fargate (`stacks/fargate.toml`)
//! against the AWS API emulator, through the realism proxy with every
//! behaviour on (ECS deployments that take time, targets that start
//! unhealthy, a circuit breaker that fails a deployment and rolls back):
//! `up` from empty, an empty plan, a new binary rolled out, a failing one
//! rolled back by ECS with its reason in the error, an empty plan again,
//! `rollback` to the first release and the roll forward, a switch to
//! instances and back that keeps the data, and `destroy` leaving nothing
//! tagged. Each resource is checked with
//! independent SDK calls.

use crate::common;

use common::inventory;
use common::realism::{Behaviours, Realism};
use common::{changes, with_binary, Emulator};
use serde_json::Value;

const STACK: &str = "shop";

/// What `bookstore --report-exit admin grant EMAIL` prints in the second
/// image's tasks (the app's flag is its own test's): a line, a line on
/// standard error, and the status line; a user who does not exist fails.
const APP_IN_IMAGE: &str = r#"#!/bin/sh
[ "$1" = --report-exit ] || { echo "run without --report-exit: $*" >&2; exit 9; }
shift
if [ "$3" = nobody@example.com ]; then
    echo "error: no user $3" >&2
    printf '\nbookstore-exit-status: 1\n'
    exit 1
fi
echo "granted the admin role to $3"
echo "note: on stderr" >&2
printf '\nbookstore-exit-status: 0\n'
"#;

struct Env {
    e: Emulator,
    proxy: Realism,
    stack: String,
}

impl Env {
    fn run(&self, args: &[&str]) -> common::Run {
        self.e.run_via(&self.proxy.endpoint, args)
    }

    fn ok(&self, args: &[&str]) -> common::Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "`{}` failed:\n{}\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r
    }

    fn plan(&self) -> Value {
        serde_json::from_str(&self.ok(&["diff", &self.stack, "--json"]).stdout).unwrap()
    }

    /// Ships `binary` (a path); returns its image's digest.
    fn ship(&self, binary: &str) -> String {
        let text = std::fs::read_to_string(common::root().join("stacks/fargate.toml")).unwrap();
        std::fs::write(&self.stack, with_binary(&text, binary)).unwrap();
        bookstore_infra::image::build(std::path::Path::new(binary))
            .unwrap()
            .digest()
            .to_string()
    }

    /// The service as ECS shows it (the proxy runs its deployments).
    fn service(&self) -> aws_sdk_ecs::types::Service {
        let ecs = self.e.cloud_via(&self.proxy.endpoint).ecs;
        self.e
            .block_on(
                ecs.describe_services()
                    .cluster(STACK)
                    .services("app")
                    .include(aws_sdk_ecs::types::ServiceField::Tags)
                    .send(),
            )
            .unwrap()
            .services()[0]
            .clone()
    }

    fn task_definition(&self, arn: &str) -> aws_sdk_ecs::types::TaskDefinition {
        let ecs = aws_sdk_ecs::Client::new(self.e.conf());
        self.e
            .block_on(ecs.describe_task_definition().task_definition(arn).send())
            .unwrap()
            .task_definition()
            .unwrap()
            .clone()
    }
}

fn no_changes(env: &Env) {
    let plan = env.plan();
    assert!(changes(&plan).is_empty(), "{:#?}", changes(&plan));
}

#[test]
fn fargate_stack_from_empty_through_a_rollback_to_nothing() {
    let e = Emulator::start();
    let proxy = Realism::start(&e.endpoint, Behaviours::all());
    let (bin1, sha1) = e.binary("bookstore binary, first build");
    let stack = e.stack("fargate.toml", "");
    let env = Env { e, proxy, stack };
    let first = env.ship(&bin1);
    env.ok(&["up", &env.stack, "--yes"]);
    let e = &env.e;
    let conf = e.conf();

    // The image, by digest, in the stack's repository, which keeps as
    // many images as releases and never moves a tag.
    let ecr = aws_sdk_ecr::Client::new(conf);
    let repo = e
        .block_on(
            ecr.describe_repositories()
                .repository_names("shop-app")
                .send(),
        )
        .unwrap()
        .repositories()[0]
        .clone();
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&aws_sdk_ecr::types::ImageTagMutability::Immutable)
    );
    let policy = e
        .block_on(
            ecr.get_lifecycle_policy()
                .repository_name("shop-app")
                .send(),
        )
        .unwrap();
    let policy: Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(policy["rules"][0]["selection"]["countNumber"], 3);
    let images = e
        .block_on(ecr.describe_images().repository_name("shop-app").send())
        .unwrap();
    let digests: Vec<&str> = images
        .image_details()
        .iter()
        .filter_map(|d| d.image_digest())
        .collect();
    assert_eq!(digests, [first.as_str()]);

    // The service runs the task definition naming the image by digest,
    // with the circuit breaker, in the private subnets, behind an `ip`
    // target group.
    let svc = env.service();
    assert_eq!(
        svc.launch_type(),
        Some(&aws_sdk_ecs::types::LaunchType::Fargate)
    );
    let breaker = svc
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker())
        .unwrap();
    assert!(breaker.enable() && breaker.rollback());
    assert!(svc.enable_execute_command());
    let td = env.task_definition(svc.task_definition().unwrap());
    assert_eq!((td.cpu(), td.memory()), (Some("512"), Some("1024")));
    let app = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("app"))
        .unwrap();
    let migrate = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("migrate"))
        .unwrap();
    assert!(
        app.image().unwrap().ends_with(&format!("shop-app@{first}")),
        "{:?}",
        app.image()
    );
    assert_eq!(app.user(), Some("65532:65532"));
    assert_eq!(app.readonly_root_filesystem(), Some(true));
    // The master password reaches the migrate container only.
    let secret_names = |c: &aws_sdk_ecs::types::ContainerDefinition| {
        c.secrets()
            .iter()
            .map(|s| s.value_from().to_string())
            .collect::<Vec<_>>()
    };
    assert!(secret_names(migrate)
        .iter()
        .any(|v| v.ends_with(":password::")));
    assert!(secret_names(app)
        .iter()
        .all(|v| !v.ends_with(":password::")));
    assert_eq!(app.depends_on()[0].container_name(), "migrate");
    let efs = td.volumes()[0].efs_volume_configuration().unwrap();
    assert_eq!(
        efs.transit_encryption(),
        Some(&aws_sdk_ecs::types::EfsTransitEncryption::Enabled)
    );
    assert!(efs
        .authorization_config()
        .and_then(|a| a.access_point_id())
        .is_some());
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(conf);
    let tg_arn = svc.load_balancers()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let tg = e
        .block_on(
            elb.describe_target_groups()
                .target_group_arns(&tg_arn)
                .send(),
        )
        .unwrap();
    assert_eq!(
        tg.target_groups()[0].target_type(),
        Some(&aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
    );
    // `up` waited for ECS: the deployment completed, and the targets
    // passed `initial` and `unhealthy` before it returned.
    assert!(env.proxy.bit("ecs_deployment") >= 1);
    let answers = env.proxy.health_answers();
    assert!(answers.iter().any(|(_, healthy)| !healthy), "{answers:?}");
    assert!(
        answers.last().is_some_and(|(_, healthy)| *healthy),
        "{answers:?}"
    );

    // Task count scaling between min and max.
    let scaling = aws_sdk_applicationautoscaling::Client::new(conf);
    let targets = e
        .block_on(
            scaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .send(),
        )
        .unwrap();
    let t = &targets.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (1, 4));
    assert_eq!(t.resource_id(), "service/shop/app");

    no_changes(&env);

    // `status`: the service's tasks, its completed deployment, its targets.
    let st: Value =
        serde_json::from_str(&env.ok(&["status", &env.stack, "--json"]).stdout).unwrap();
    assert_eq!(st["healthy"], true, "{st:#}");
    assert_eq!(st["fargate"]["service"]["running"], 2, "{st:#}");
    assert_eq!(
        st["fargate"]["deployments"][0]["rollout_state"], "COMPLETED",
        "{st:#}"
    );
    assert_eq!(
        st["fargate"]["targets"].as_array().unwrap().len(),
        2,
        "{st:#}"
    );
    // Its tasks: each at a healthy target's address, on the revision.
    let tasks = st["fargate"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{st:#}");
    assert!(
        tasks
            .iter()
            .all(|t| t["healthy"] == true
                && t["revision"].as_str().unwrap().starts_with("shop-app:")),
        "{st:#}"
    );
    let text = env.ok(&["status", &env.stack]).stdout;
    assert!(text.contains("ECS Exec agent"), "{text}");

    // A new binary: a new image, a new revision, a deployment; the stack
    // file's repository is at a commit now, which the revision records.
    let dir = std::path::Path::new(&env.stack).parent().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "the second release"]);
    let head = git(&["rev-parse", "HEAD"]);
    let (bin2, sha2) = e.binary("bookstore binary, the second build");
    let second = env.ship(&bin2);
    let plan = env.plan();
    let c = changes(&plan);
    assert!(
        c.contains(&(
            bookstore_infra::resources::ecr::image_id(&second),
            "create".into()
        )),
        "{c:?}"
    );
    assert!(c.contains(&("task".into(), "update".into())), "{c:?}");
    assert!(c.contains(&("service".into(), "update".into())), "{c:?}");
    env.ok(&["up", &env.stack, "--yes"]);
    let svc = env.service();
    // (A revision registered twice, once by the SDK's retry after a lost
    // answer, is an identical twin: the newest is used.)
    let td2 = svc.task_definition().unwrap().to_string();
    assert!(td2.contains("shop-app:"), "{td2}");
    assert!(env.task_definition(&td2).container_definitions()[0]
        .image()
        .unwrap()
        .ends_with(&second));
    no_changes(&env);
    // `releases`: the revisions, newest first, each with its binary; the
    // newest is the one running, the first one's image is still there.
    let listing: Value =
        serde_json::from_str(&env.ok(&["releases", &env.stack, "--json"]).stdout).unwrap();
    let releases = listing["releases"].as_array().unwrap();
    assert!(releases.len() >= 2, "{listing:#}");
    assert_eq!(releases[0]["sha256"], sha2.as_str(), "{listing:#}");
    assert_eq!(releases[0]["commit"], head.as_str(), "{listing:#}");
    assert_eq!(releases[0]["rolled_out"], true, "{listing:#}");
    assert_eq!(releases[0]["wanted"], true, "{listing:#}");
    let last = releases.last().unwrap();
    assert_eq!(last["rolled_out"], false, "{listing:#}");
    assert_eq!(last["artifact"], true, "{listing:#}");

    // A binary whose tasks fail to start: ECS's circuit breaker fails the
    // deployment and rolls back; `up` says so with ECS's reason.
    let (bin3, _) = e.binary("bookstore binary that crashes at start");
    let third = env.ship(&bin3);
    env.proxy.fail_image(&third);
    let failed = env.run(&["up", &env.stack, "--yes"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed
            .stderr
            .contains("ECS deployment circuit breaker: tasks failed to start"),
        "{}",
        failed.stderr
    );
    let back = format!(
        "rolled the service back to {}",
        td2.rsplit('/').next().unwrap()
    );
    assert!(failed.stderr.contains(&back), "{}", failed.stderr);
    assert!(env.proxy.bit("ecs_circuit_breaker") >= 1);
    assert_eq!(env.service().task_definition(), Some(td2.as_str()));
    // Back to the binary that worked: nothing runs again; the failed
    // image goes.
    env.ship(&bin2);
    let c = changes(&env.plan());
    assert_eq!(
        c,
        common::set(&[(&bookstore_infra::resources::ecr::image_id(&third), "delete")]),
    );
    env.ok(&["up", &env.stack, "--yes"]);
    no_changes(&env);
    assert_eq!(env.service().task_definition(), Some(td2.as_str()));

    // `rollback --to` the first release: the service rolls onto its
    // revision with a deployment judged like `up`'s, and says so.
    let listing: Value =
        serde_json::from_str(&env.ok(&["releases", &env.stack, "--json"]).stdout).unwrap();
    let first_release = listing["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sha256"] == sha1.as_str())
        .unwrap_or_else(|| panic!("the first release is listed: {listing:#}"))
        .clone();
    let td1 = first_release["task_definition"]
        .as_str()
        .unwrap()
        .to_string();
    let n1 = first_release["version"].as_i64().unwrap();
    let n2: i64 = td2.rsplit(':').next().unwrap().parse().unwrap();
    // A rollback whose tasks fail: ECS puts the service back, the
    // revision gone to stays registered, and nothing is recorded.
    let first_image = first_release["image"].as_str().unwrap().to_string();
    env.proxy.fail_image(&first_image);
    let failed = env.run(&["rollback", &env.stack, "--to", &n1.to_string(), "--yes"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("tasks failed to start") && !failed.stderr.contains("deregistered"),
        "{}",
        failed.stderr
    );
    env.proxy.pass_image(&first_image);
    let svc = env.service();
    assert_eq!(svc.task_definition(), Some(td2.as_str()));
    assert!(
        !svc.tags()
            .iter()
            .any(|t| t.key() == Some("bookstore-infra:rolled-back")),
        "{:?}",
        svc.tags()
    );
    assert_eq!(
        env.task_definition(&td1).status(),
        Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active)
    );
    no_changes(&env);
    let deployments = env.proxy.bit("ecs_deployment");
    let out = env.ok(&["rollback", &env.stack, "--to", &n1.to_string(), "--yes"]);
    assert!(
        out.stdout
            .contains(&format!("Rolled back to revision {n1}")),
        "{}",
        out.stdout
    );
    assert!(
        env.proxy.bit("ecs_deployment") > deployments,
        "it waited for ECS"
    );
    let svc = env.service();
    assert_eq!(svc.task_definition(), Some(td1.as_str()));
    let tag = |svc: &aws_sdk_ecs::types::Service| {
        svc.tags()
            .iter()
            .find(|t| t.key() == Some("bookstore-infra:rolled-back"))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag(&svc), Some(format!("{n1} from {n2}")));
    let listing: Value =
        serde_json::from_str(&env.ok(&["releases", &env.stack, "--json"]).stdout).unwrap();
    let now = listing["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == n1)
        .unwrap();
    assert_eq!(
        (&now["wanted"], &now["rolled_out"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    // The next plan keeps it there while the file ships the second binary,
    // and says so; the first image stays.
    let kept = env.plan();
    assert!(changes(&kept).is_empty(), "{:#?}", changes(&kept));
    assert!(
        kept["notes"].to_string().contains(&format!(
            "the service stays on release {n1}, where `rollback` left it"
        )),
        "{kept}"
    );
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(env.service().task_definition(), Some(td1.as_str()));
    // Rolling forward on purpose: the service goes back to the second
    // revision and the record goes.
    let forward: Value = serde_json::from_str(
        &env.ok(&["diff", &env.stack, "--json", "--roll-forward"])
            .stdout,
    )
    .unwrap();
    assert_eq!(changes(&forward), common::set(&[("service", "update")]));
    env.ok(&["up", &env.stack, "--yes", "--roll-forward"]);
    let svc = env.service();
    assert_eq!(svc.task_definition(), Some(td2.as_str()));
    assert_eq!(tag(&svc), None);
    no_changes(&env);

    // `exec` through ECS Exec, into the healthy task whose agent runs (the
    // other's is still starting), over a data channel that splits, repeats,
    // reorders and resends what it sends.
    let program = std::path::Path::new(&env.stack).with_file_name("app-in-image.sh");
    std::fs::write(&program, APP_IN_IMAGE).unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    env.proxy.task_program(&second, &program);
    let out = env.run(&[
        "exec",
        &env.stack,
        "--",
        "bookstore",
        "admin",
        "grant",
        "o'neil@example.com",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "granted the admin role to o'neil@example.com\nnote: on stderr\n",
        "the output once, in order, without the terminal's \\r or the status line"
    );
    let stats = env.proxy.exec_stats().expect("a session was opened");
    assert!(
        stats.resent >= 1 && stats.duplicates_sent >= 1 && stats.out_of_order >= 1,
        "{stats:?}"
    );
    assert_eq!((stats.sessions, stats.handshakes), (1, 1), "{stats:?}");
    let tasks = {
        let ecs = env.e.cloud_via(&env.proxy.endpoint).ecs;
        let arns = e
            .block_on(ecs.list_tasks().cluster(STACK).service_name("app").send())
            .unwrap();
        assert!(arns.next_token().is_some(), "paged");
        let all: Vec<String> = e
            .block_on(
                ecs.list_tasks()
                    .cluster(STACK)
                    .service_name("app")
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect(),
            )
            .unwrap();
        e.block_on(
            ecs.describe_tasks()
                .cluster(STACK)
                .set_tasks(Some(all))
                .send(),
        )
        .unwrap()
        .tasks()
        .to_vec()
    };
    let agent = |t: &aws_sdk_ecs::types::Task| {
        t.containers()
            .iter()
            .flat_map(|c| c.managed_agents())
            .find_map(|a| a.last_status().map(str::to_string))
    };
    let id = |t: &aws_sdk_ecs::types::Task| {
        t.task_arn()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    let running = tasks
        .iter()
        .find(|t| agent(t).as_deref() == Some("RUNNING"))
        .unwrap();
    let pending = tasks
        .iter()
        .find(|t| agent(t).as_deref() == Some("PENDING"))
        .unwrap();
    assert!(
        out.stderr
            .contains(&format!("running in task {}", id(running))),
        "{}",
        out.stderr
    );
    // The command's own failure is `exec`'s exit status.
    let failed = env.run(&[
        "exec",
        &env.stack,
        "--",
        "bookstore",
        "admin",
        "grant",
        "nobody@example.com",
    ]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stdout.contains("error: no user nobody@example.com"),
        "{}",
        failed.stdout
    );
    // `logs` reads the tasks' streams, as the awslogs driver names them;
    // `--task` one task's (its two containers').
    let cw = aws_sdk_cloudwatchlogs::Client::new(e.conf());
    let group = bookstore_infra::resources::log_group::app_group(STACK);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (stream, text) in [
        (
            format!("migrate/migrate/{}", id(running)),
            "schema up to date",
        ),
        (
            format!("app/app/{}", id(running)),
            "listening on 0.0.0.0:8080",
        ),
        (format!("app/app/{}", id(pending)), "from the other task"),
    ] {
        e.block_on(
            cw.create_log_stream()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .send(),
        )
        .unwrap();
        e.block_on(
            cw.put_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(now)
                        .message(text)
                        .build()
                        .unwrap(),
                )
                .send(),
        )
        .unwrap();
    }
    let all = env.ok(&["logs", &env.stack, "--since", "10m"]).stdout;
    assert!(
        all.contains("schema up to date") && all.contains("from the other task"),
        "{all}"
    );
    let one = env
        .ok(&["logs", &env.stack, "--since", "10m", "--task", &id(running)])
        .stdout;
    assert!(
        one.contains("schema up to date")
            && one.contains("listening on 0.0.0.0:8080")
            && !one.contains("from the other task"),
        "{one}"
    );
    // The other task has only its `app` stream: what it has is shown.
    let other = env
        .ok(&["logs", &env.stack, "--since", "10m", "--task", &id(pending)])
        .stdout;
    assert!(
        other.contains("from the other task") && !other.contains("schema up to date"),
        "{other}"
    );
    let wrong = env.run(&[
        "exec",
        &env.stack,
        "--instance",
        "i-0123",
        "--",
        "bookstore",
        "admin",
        "grant",
        "a@example.com",
    ]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("name a task with --task"),
        "{}",
        wrong.stderr
    );
    // A task whose agent has not started is waited for, then named.
    let refused = env.run(&[
        "exec",
        &env.stack,
        "--task",
        &id(pending),
        "--",
        "bookstore",
        "admin",
        "grant",
        "a@example.com",
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("waiting for an ECS Exec agent")
            && refused
                .stderr
                .contains(&format!("{} agent pending", id(pending))),
        "{}",
        refused.stderr
    );

    // Switching to instances is a plan like any other: the containers go,
    // the instances come, and no data-bearing resource is replaced; then
    // it is applied, and undone.
    let data = |env: &Env| {
        let rds = aws_sdk_rds::Client::new(env.e.conf());
        let db = env
            .e
            .block_on(rds.describe_db_instances().send())
            .unwrap()
            .db_instances()[0]
            .dbi_resource_id()
            .unwrap()
            .to_string();
        let efs = aws_sdk_efs::Client::new(env.e.conf());
        let fs = env
            .e
            .block_on(efs.describe_file_systems().send())
            .unwrap()
            .file_systems()[0]
            .file_system_id()
            .to_string();
        (db, fs)
    };
    let before = data(&env);
    let text = std::fs::read_to_string(&env.stack).unwrap();
    let instances: String = text
        .lines()
        .filter(|l| {
            !["runtime =", "cpu =", "memory ="]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&env.stack, &instances).unwrap();
    let c = changes(&env.plan());
    for (id, action) in [
        ("service", "delete"),
        ("cluster", "delete"),
        ("repo", "delete"),
        ("scaling", "delete"),
        ("asg", "create"),
        ("launch-template", "create"),
        ("artifacts", "create"),
    ] {
        assert!(
            c.contains(&(id.to_string(), action.to_string())),
            "{id} {action}: {c:?}"
        );
    }
    for kept in ["db", "efs", "efs-ap", "lb", "db-app-secret"] {
        assert!(!c.iter().any(|(id, _)| id == kept), "{kept}: {c:?}");
    }
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(data(&env), before, "the database and file system stayed");
    let asg = aws_sdk_autoscaling::Client::new(e.conf());
    let groups = e
        .block_on(asg.describe_auto_scaling_groups().send())
        .unwrap();
    let group = &groups.auto_scaling_groups()[0];
    assert_eq!(group.instances().len(), 2, "{group:?}");
    let ecs = aws_sdk_ecs::Client::new(e.conf());
    // (A deleted cluster stays INACTIVE for a while, as ECS shows it.)
    let clusters = e
        .block_on(ecs.describe_clusters().clusters(STACK).send())
        .unwrap();
    assert!(
        clusters
            .clusters()
            .iter()
            .all(|c| c.status() == Some("INACTIVE")),
        "{clusters:?}"
    );
    no_changes(&env);

    // And back: the instances go, the service comes again.
    std::fs::write(&env.stack, &text).unwrap();
    env.ok(&["up", &env.stack, "--yes"]);
    assert_eq!(data(&env), before, "the database and file system stayed");
    let groups = e
        .block_on(asg.describe_auto_scaling_groups().send())
        .unwrap();
    assert!(groups.auto_scaling_groups().is_empty(), "{groups:?}");
    let svc = env.service();
    assert_eq!(svc.running_count(), 2, "{svc:?}");
    no_changes(&env);

    // Nothing tagged is left.
    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
    let left = inventory::owned(e, STACK);
    assert!(left.is_empty(), "{left:#?}");
}
