//! A hostile client against a real server (PROTOCOL.md section 9): what
//! one client can make the server hold or do is bounded, whatever it sends.

mod support;
use support::*;

#[path = "support/process.rs"]
mod process;
use process::*;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

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

#[test]
fn out_of_descriptors_the_accept_loops_back_off_instead_of_spinning() {
    let dir = TempDir::new("hostile-emfile");
    dir.write("a.txt", "a\n");
    // A limit of 12 open files leaves a serve process with one session and
    // its data channel a handful of descriptors: silent connections to the
    // data port and to the control port use them up, and every further
    // accept fails with EMFILE.
    let (server, addr) = serve_limited(dir.path(), 12, &[]);
    let pid = server.id();
    let mut c = Conn::open(addr);
    let r150 = c.cmd("FileDownload a.txt");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let base = open_fds(pid);
    let silent: Vec<TcpStream> = (0..12)
        .filter_map(|_| TcpStream::connect((addr.ip(), port)).ok())
        .chain((0..4).filter_map(|_| TcpStream::connect(addr).ok()))
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || open_fds(pid) >= 12),
        "the server never reached its limit: {} open",
        open_fds(pid)
    );
    let cpu_before = cpu_time(pid);
    let began = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let cpu = cpu_time(pid) - cpu_before;
    assert!(
        cpu.as_secs_f64() < 0.2 * began.elapsed().as_secs_f64(),
        "{cpu:?} of CPU in {:?} at the descriptor limit",
        began.elapsed()
    );
    // Once they are gone (the server closes those still in its listeners'
    // queues as it accepts them), the transfer and the session go on.
    drop(silent);
    assert!(
        wait_until(Duration::from_secs(10), || open_fds(pid) <= base),
        "{} descriptors open, {base} before",
        open_fds(pid)
    );
    let mut d = data_connect(addr, port, &token);
    assert_eq!(read_exact_n(&mut d, 2), b"a\n");
    assert_eq!(c.read_reply().code, 226);
    c.assert_alive();
}

#[test]
fn sessions_are_capped_to_what_the_open_file_limit_holds() {
    let dir = TempDir::new("hostile-nofile");
    // (256 - 64) / 17 = 11 sessions fit in 256 open files.
    let (server, addr) = serve_limited(dir.path(), 256, &["--max-per-ip", "100"]);
    let fits = "p2pshare: the open-file limit of 256 fits 11 sessions (17 descriptors each, \
                64 for the server): admitting at most 11, not 256";
    assert!(server.stderr().contains(fits), "{}", server.dump());
    assert_eq!(server.stderr().matches("open-file limit").count(), 1);
    let mut held: Vec<Conn> = (0..11).map(|_| Conn::open(addr)).collect();
    let mut next = TcpStream::connect(addr).unwrap();
    let mut got = String::new();
    next.read_to_string(&mut got).unwrap();
    assert_eq!(got, "421 too many connections; try again later\n");
    for c in &mut held {
        c.assert_alive();
    }
    held.pop();
    assert!(wait_until(Duration::from_secs(5), || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).is_ok() && &b == b"220 "
    }));
}
