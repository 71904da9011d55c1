//! The database's parameter group against the emulator behind the realism
//! proxy (which shows a group given to a running database `pending-reboot`
//! until it reboots, as RDS does): a group put back by `up` after a hand
//! change is said to wait for a reboot, and rebooted for when the stack
//! allows it.

use crate::common;

use common::realism::{Behaviours, Realism};
use common::Emulator;

fn changed_attrs(e: &Emulator, proxy: &Realism, stack: &str) -> Vec<String> {
    let plan = e.ok_via(&proxy.endpoint, &["diff", stack, "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let db = common::step(&plan, "db");
    db["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_parameter_group_given_back_waits_for_a_reboot_the_stack_allows() {
    let e = Emulator::start();
    let proxy = Realism::start(
        &e.endpoint,
        Behaviours {
            lifecycles: true,
            ..Behaviours::none()
        },
    );
    let (bin, _) = e.binary("bookstore binary");
    let text = std::fs::read_to_string(common::root().join("stacks/demo.toml")).unwrap();
    let text = common::with_binary(&text, &bin)
        .replace("apply_immediately = true", "apply_immediately = false");
    let stack = e.stack("demo.toml", &text);
    e.ok_via(&proxy.endpoint, &["up", &stack, "--yes"]);
    assert!(changed_attrs(&e, &proxy, &stack).is_empty());

    // By hand, through the same (realistic) endpoint: another group.
    let rds = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(e.conf())
            .endpoint_url(&proxy.endpoint)
            .build(),
    );
    // (Refused while the new database is still backing up: tried again.)
    e.block_on(async {
        rds.create_db_parameter_group()
            .db_parameter_group_name("handmade")
            .db_parameter_group_family("mysql8.0")
            .description("made by hand")
            .send()
            .await
            .unwrap();
        let start = std::time::Instant::now();
        while let Err(err) = rds
            .modify_db_instance()
            .db_instance_identifier("demo-db")
            .db_parameter_group_name("handmade")
            .apply_immediately(true)
            .send()
            .await
        {
            let busy = err.as_service_error().and_then(|e| e.meta().code())
                == Some("InvalidDBInstanceState");
            assert!(busy && start.elapsed().as_secs() < 60, "{err:?}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let drift = changed_attrs(&e, &proxy, &stack);
    assert!(
        drift.contains(&"parameter_group".to_string())
            && drift.contains(&"parameters_applied".to_string()),
        "{drift:?}"
    );

    // The stack does not allow a reboot: the group is given back, and the
    // run says the database waits for one; the plan still shows it.
    let up = e.ok_via(&proxy.endpoint, &["up", &stack, "--yes"]);
    let said = format!("{}{}", up.stdout, up.stderr);
    assert!(
        said.contains(
            "applies its parameter group (require_secure_transport) only when it reboots"
        ),
        "{said}"
    );
    assert_eq!(changed_attrs(&e, &proxy, &stack), ["parameters_applied"]);
    let group = e.block_on(async {
        let d = rds
            .describe_db_instances()
            .db_instance_identifier("demo-db")
            .send()
            .await
            .unwrap();
        d.db_instances()[0].db_parameter_groups()[0]
            .db_parameter_group_name()
            .map(str::to_string)
    });
    assert_eq!(group.as_deref(), Some("demo-db-mysql8-0"));

    // Allowed: `up` reboots it, and then nothing is left to do.
    std::fs::write(
        &stack,
        text.replace("apply_immediately = false", "apply_immediately = true"),
    )
    .unwrap();
    let up = e.ok_via(&proxy.endpoint, &["--stats", "up", &stack, "--yes"]);
    assert!(
        up.stdout.contains("RebootDBInstance") || up.stderr.contains("RebootDBInstance"),
        "{}{}",
        up.stdout,
        up.stderr
    );
    assert!(changed_attrs(&e, &proxy, &stack).is_empty());
    e.ok_via(
        &proxy.endpoint,
        &["destroy", &stack, "--yes", "--allow-delete", "db"],
    );
    let left = common::inventory::owned(&e, "demo");
    assert!(left.is_empty(), "destroy left {left:?}");
}
