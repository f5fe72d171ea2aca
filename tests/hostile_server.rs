//! A hostile client against a real server (PROTOCOL.md section 9): what
//! one client can make the server hold or do is bounded, whatever it sends.

mod support;
use support::*;

#[path = "support/process.rs"]
mod process;
use process::*;

use std::time::Duration;

#[test]
fn a_session_costs_one_descriptor_for_its_control_connection() {
    let dir = TempDir::new("hostile-fds");
    dir.write("a.txt", "a\n");
    let (server, addr) = serve_limited(dir.path(), 4096, &["--max-per-ip", "100"]);
    let pid = server.id();
    let mut probe = Conn::open(addr);
    probe.assert_alive();
    let before = open_fds(pid);
    let mut held: Vec<Conn> = (0..40).map(|_| Conn::open(addr)).collect();
    for c in &mut held {
        c.assert_alive();
    }
    let during = open_fds(pid);
    assert!(
        during - before <= 40 + 4,
        "40 idle sessions hold {} descriptors",
        during - before
    );
    drop(held);
    assert!(
        wait_until(Duration::from_secs(10), || open_fds(pid) <= before),
        "{} descriptors open after the sessions ended, {before} before",
        open_fds(pid)
    );
}
