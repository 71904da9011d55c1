//! The scaled shape with the app on Fargate (`stacks/fargate.toml`)
//! against the AWS API emulator, through the realism proxy with every
//! behaviour on (ECS deployments that take time, targets that start
//! unhealthy, a circuit breaker that fails a deployment and rolls back):
//! `up` from empty, an empty plan, a new binary rolled out, a failing one
//! rolled back by ECS with its reason in the error, an empty plan again,
//! and `destroy` leaving nothing tagged. Each resource is checked with
//! independent SDK calls.

use crate::common;

use common::inventory;
use common::realism::{Behaviours, Realism};
use common::{changes, with_binary, Emulator};
use serde_json::Value;

const STACK: &str = "shop";

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
    let (bin1, _) = e.binary("bookstore binary, first build");
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

    // A new binary: a new image, a new revision, a deployment.
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

    // Switching to instances is a plan like any other: the containers go,
    // the instances come, and no data-bearing resource is replaced.
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
    std::fs::write(&env.stack, instances).unwrap();
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
    std::fs::write(&env.stack, text).unwrap();

    // Nothing tagged is left.
    env.ok(&["destroy", &env.stack, "--yes", "--allow-delete", "db"]);
    let left = inventory::owned(e, STACK);
    assert!(left.is_empty(), "{left:#?}");
}
