//! Shared by both crates' test harnesses (`#[path]`-included): one place
//! for how a test server's port is chosen.

use std::net::TcpListener;

/// A loopback port nobody listens on, for a server a test starts.
///
/// Not one the kernel hands out itself (`bind` to port 0): those come from
/// the ephemeral range, the same range every outgoing connection's local
/// port is taken from, so between this call and the server's `bind` a
/// database or HTTP client connection of a parallel test could be given
/// it ("Address already in use"). The ports below that range are given out
/// only by this counter, each once per test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (
        ephemeral_low.saturating_sub(20_000).max(1024),
        ephemeral_low,
    );
    let span = high - low;
    // Spread test processes of one machine apart; step through the rest.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}")
}
