//! Takes a stack's run lock through the library, as a run would, and says
//! how it went on one line of stdout:
//!
//! ```text
//! lock_contender ENDPOINT STACK STALE_SECS [WAIT_MS] [START_AT_UNIX_MS]
//! RESULT acquired pid=<pid> etag=<etag>   then holds it (heartbeating)
//!                                         until stdin closes, releases it,
//!                                         and prints RESULT released|lost ...
//! RESULT held pid=<pid of the holder>
//! RESULT error <message>
//! ```
//!
//! Notes (who holds the lock while waiting) go to stderr. Several of these
//! at once, started at the same instant (START_AT_UNIX_MS), race for one
//! lock from separate processes.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bookstore_infra::cloud::Cloud;
use bookstore_infra::lock::{Lock, LockError};
use bookstore_infra::progress::Reporter;

/// Prints notes on stderr.
struct Notes;

impl Reporter for Notes {
    fn start(&self, _: &str, _: &str) {}
    fn status(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: bool, _: &str) {}
    fn note(&self, msg: &str) {
        eprintln!("note: {msg}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: lock_contender ENDPOINT STACK STALE_SECS [WAIT_MS] [START_AT_UNIX_MS]");
        std::process::exit(2);
    }
    let endpoint = args[1].clone();
    let stack = args[2].clone();
    let stale = Duration::from_secs(args[3].parse().expect("STALE_SECS"));
    let wait = args
        .get(4)
        .map(|w| w.parse().expect("WAIT_MS"))
        .filter(|w| *w > 0)
        .map(Duration::from_millis);
    let start_at: Option<u128> = args.get(5).map(|s| s.parse().expect("START_AT_UNIX_MS"));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let cloud = Cloud::from_conf(&conf, Arc::new(Notes), Duration::from_millis(50));
        if let Some(at) = start_at {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis();
            if at > now {
                tokio::time::sleep(Duration::from_millis((at - now) as u64)).await;
            }
        }
        match Lock::acquire_waiting(&cloud, &stack, "contender", stale, wait).await {
            Ok(lock) => {
                println!(
                    "RESULT acquired pid={} etag={}",
                    std::process::id(),
                    lock.fence().etag().await
                );
                // Hold it until told to let go.
                tokio::task::spawn_blocking(|| {
                    let mut sink = Vec::new();
                    let _ = std::io::stdin().read_to_end(&mut sink);
                })
                .await
                .unwrap();
                match lock.release().await {
                    Ok(()) => println!("RESULT released"),
                    Err(e @ LockError::Lost { .. }) => println!("RESULT lost {e}"),
                    Err(e) => println!("RESULT error {e}"),
                }
            }
            Err(LockError::Held { holder, .. }) => println!("RESULT held pid={}", holder.pid),
            Err(e) => println!("RESULT error {e}"),
        }
    });
}
