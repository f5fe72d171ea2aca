//! A hostile client against a real server (PROTOCOL.md section 9): what
//! one client can make the server hold or do is bounded, whatever it sends.

use crate::support::*;

use crate::process::*;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::history::History;
use p2pshare::server::Server;
use p2pshare::share::Share;
use p2pshare::transfer::net::AcceptBackoff;

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

/// A serve process on `dir` under an open-file limit of `nofile`, with one
/// session holding a pending download of `a.txt`: the process, the
/// session, the data port and token, and how many descriptors it has open.
fn serve_with_pending_download(
    dir: &TempDir,
    nofile: u32,
) -> (Proc, SocketAddr, Conn, u16, String, usize) {
    let (server, addr) = serve_limited(dir.path(), nofile, &[]);
    let mut c = Conn::open(addr);
    let r150 = c.cmd("FileDownload a.txt");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let base = open_fds(server.id());
    (server, addr, c, port, token, base)
}

fn out_of_descriptors_the_accept_loops_back_off_instead_of_spinning() {
    let dir = TempDir::new("hostile-emfile");
    dir.write("a.txt", "a\n");
    // What a serve process with one session and a pending download holds
    // depends on what it inherits: measure it under a roomy limit, then
    // run the real one with room for only three more descriptors. Silent
    // connections to the data port and to the control port use those up
    // (or an accept waiting for one holds the last number), and every
    // further accept fails with EMFILE.
    let needed = serve_with_pending_download(&dir, 1024).5;
    let limit = needed + 3;
    let (server, addr, mut c, port, token, base) = serve_with_pending_download(&dir, limit as u32);
    let pid = server.id();
    let silent: Vec<TcpStream> = (0..12)
        .filter_map(|_| TcpStream::connect((addr.ip(), port)).ok())
        .chain((0..4).filter_map(|_| TcpStream::connect(addr).ok()))
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || fds_taken(pid) >= limit),
        "the server never reached its limit of {limit}: {} taken",
        fds_taken(pid)
    );
    let cpu_before = cpu_time(pid);
    let began = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let cpu = cpu_time(pid) - cpu_before;
    assert!(
        cpu.as_secs_f64() < 0.2 * began.elapsed().as_secs_f64(),
        "{cpu:?} of CPU in {:?} at the descriptor limit",
        began.elapsed()
    );
    // Once they are gone (the server closes those still in its listeners'
    // queues as it accepts them), the transfer and the session go on.
    // Their listeners' queues are empty once the count stayed down for
    // longer than the longest back-off.
    drop(silent);
    let mut down_since = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), || {
            if open_fds(pid) > base {
                down_since = Instant::now();
            }
            down_since.elapsed() > AcceptBackoff::MAX + Duration::from_millis(100)
        }),
        "{} descriptors open, {base} before",
        open_fds(pid)
    );
    let mut d = data_connect(addr, port, &token);
    assert_eq!(read_exact_n(&mut d, 2), b"a\n");
    assert_eq!(c.read_reply().code, 226);
    c.assert_alive();
}

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

/// Whether every port of the range can be bound (TCP and UDP): nobody holds
/// one.
fn range_is_free((lo, hi): (u16, u16)) -> bool {
    let held: Vec<_> = (lo..=hi)
        .map(|p| {
            (
                std::net::TcpListener::bind(("127.0.0.1", p)),
                std::net::UdpSocket::bind(("127.0.0.1", p)),
            )
        })
        .collect();
    held.iter().all(|(t, u)| t.is_ok() && u.is_ok())
}

fn an_idle_session_gives_its_data_channel_back() {
    let dir = TempDir::new("hostile-release");
    dir.write("a.txt", "a\n");
    let data_idle = Duration::from_millis(250);
    let server = start_with(p2pshare::server::Config {
        data_idle: Some(data_idle),
        ..config(dir.path())
    });
    let addr = server.addr();
    let mut s = DataSession::open(addr);
    let first = s.fetch("a.txt", None).unwrap();
    assert_eq!(first.done.code, 226);
    let (port, token) = data_of(&first.r150);
    let mut held = s.data.take().unwrap();
    // NOOPs keep the session, not its data channel: the server closes the
    // held data connection and the listener.
    let began = Instant::now();
    while began.elapsed() < data_idle * 3 {
        s.conn.assert_alive();
        thread::sleep(Duration::from_millis(50));
    }
    held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(held.read(&mut b), Ok(0) | Err(_)),
        "the data connection is still open"
    );
    assert!(
        TcpStream::connect((addr.ip(), port)).is_err(),
        "port {port} still listens"
    );
    // The next transfer opens a new channel: a new token (and port).
    let next = s.fetch("a.txt", None).unwrap();
    assert_eq!((next.bytes.as_slice(), next.done.code), (&b"a\n"[..], 226));
    assert_ne!(data_of(&next.r150).1, token);
    // A busy session keeps its channel: transfers closer than the idle
    // time reuse it.
    let (port, token) = data_of(&next.r150);
    for _ in 0..4 {
        thread::sleep(data_idle / 2);
        let again = s.fetch("a.txt", None).unwrap();
        assert_eq!(again.done.code, 226);
        assert_eq!(data_of(&again.r150), (port, token.clone()));
    }
}

fn one_address_holds_at_most_half_of_the_data_ports_and_idle_ones_come_back() {
    let dir = TempDir::new("hostile-ports");
    dir.write("a.txt", "a\n");
    let range = free_port_range(4);
    let server = start_with(p2pshare::server::Config {
        data_ports: Some(range),
        data_idle: Some(Duration::from_millis(800)),
        data_wait: Duration::from_millis(50),
        ..config(dir.path())
    });
    let addr = server.addr();
    let mut sessions: Vec<DataSession> = (0..4).map(|_| DataSession::open(addr)).collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        for transport in ["TCP", "UDP"] {
            let r = s.conn.cmd(&format!("FileDownload {transport} a.txt"));
            if i < 2 {
                assert_eq!(r.code, 150, "session {i} {transport}: {:?}", r.lines);
                let (port, _) = data_of(&r);
                assert!((range.0..=range.1).contains(&port), "{port}");
                // No data connection: 425 after the wait.
                assert_eq!(s.conn.read_reply().code, 425);
            } else {
                assert_eq!(
                    r.lines,
                    [format!(
                        "425 cannot open a {}data port: your address holds 2 of the 4 {transport} \
                         data ports already, the most one address may hold; try again when a \
                         transfer of another of its sessions has ended",
                        if transport == "UDP" { "UDP " } else { "" }
                    )],
                    "session {i}"
                );
            }
        }
    }
    // NOOPs keep the sessions but not their ports.
    let began = Instant::now();
    while began.elapsed() < Duration::from_millis(1200) {
        for s in &mut sessions {
            s.conn.assert_alive();
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        wait_until(Duration::from_secs(5), || range_is_free(range)),
        "idle sessions still hold data ports of {range:?}"
    );
    let got = sessions[3].fetch("a.txt", None).unwrap();
    assert_eq!((got.bytes.as_slice(), got.done.code), (&b"a\n"[..], 226));
}

fn history_10000_of_long_rows_is_quick_and_small() {
    let dir = TempDir::new("hostile-history");
    // 12,000 rows of about 2 KiB each, as a long-running peer has them.
    let mut rows = String::new();
    for i in 0..12_000 {
        rows.push_str(&format!(
            "2026-11-27T10:00:00Z\tin\t127.0.0.1:4000\tr{i:05} {}\t200\n",
            "x".repeat(2030)
        ));
    }
    dir.write(".p2pshare/history.tsv", &rows);
    drop(rows);
    let (server, addr) = serve_limited(dir.path(), 4096, &[]);
    let pid = server.id();
    let before = peak_memory(pid);
    let mut c = Conn::open(addr);
    let began = Instant::now();
    let cpu0 = cpu_time(pid);
    let r = c.cmd("History 10000");
    let took = began.elapsed();
    eprintln!(
        "History 10000 took {took:?}, server cpu {:?}",
        cpu_time(pid) - cpu0
    );
    let rows = r.rows();
    assert_eq!(rows.len(), 10_000);
    assert!(
        rows[0][3].starts_with("r02000 x"),
        "{:?}",
        &rows[0][3][..10]
    );
    assert!(rows[9_999][3].starts_with("r11999 x"));
    assert!(rows.iter().all(|r| r.len() == 5 && r[3].len() == 2037));
    assert_eq!(r.lines.last().unwrap(), "213 10000 requests");
    assert!(took < Duration::from_secs(5), "History 10000 took {took:?}");
    // Several at once from one address: memory does not add up.
    let many: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::open(addr);
                c.send("History 10000");
                let mut all = Vec::new();
                let end = b"\n213 10000 requests\n";
                let mut buf = vec![0u8; 1 << 16];
                while !all.ends_with(end) {
                    let n = c.reader.read(&mut buf).unwrap();
                    assert!(n > 0, "closed");
                    all.extend_from_slice(&buf[..n]);
                }
                all.len()
            })
        })
        .collect();
    for t in many {
        assert!(t.join().unwrap() > 20_000_000);
    }
    let peak = peak_memory(pid);
    eprintln!(
        "peak memory {} KiB, {} KiB before",
        peak / 1024,
        before / 1024
    );
    assert!(
        peak < before + (24 << 20),
        "History calls took the server from {} to {} KiB",
        before / 1024,
        peak / 1024
    );
}

/// A server on `dir` whose history is rotated at `max_file` bytes.
fn serve_with_history(
    config: p2pshare::server::Config,
    max_file: u64,
) -> (p2pshare::server::RunningServer, std::sync::Arc<History>) {
    let share = std::sync::Arc::new(Share::open(&config.share, &config.state).unwrap());
    let history =
        std::sync::Arc::new(History::of_share(&share.state_dir()).with_max_file(max_file));
    let server = Server::bind_with(config, share, history.clone())
        .unwrap()
        .spawn()
        .unwrap();
    (server, history)
}

fn the_history_file_is_rotated_and_history_reads_across_it() {
    let dir = TempDir::new("hostile-rotate");
    let (server, history) = serve_with_history(config(dir.path()), 8192);
    let mut c = Conn::open(server.addr());
    for i in 0..300 {
        assert_eq!(c.cmd(&format!("IndexGet regex h{i:03}")).code, 213);
        // Each row is about 60 bytes: the file never passes its bound.
        let len = std::fs::metadata(history.path()).map_or(0, |m| m.len());
        assert!(len <= 8192, "{len}");
    }
    let old = std::fs::metadata(history.old_path()).unwrap().len();
    assert!(old > 6000 && old <= 8192, "{old}");
    let rows = c.cmd("History 150").rows();
    let requests: Vec<String> = rows.iter().map(|r| r[3].clone()).collect();
    let want: Vec<String> = (150..300)
        .map(|i| format!("IndexGet regex h{i:03}"))
        .collect();
    assert_eq!(requests, want);
}

fn refused_and_unauthenticated_requests_cannot_fill_the_history() {
    let dir = TempDir::new("hostile-rows");
    let server = start_with(p2pshare::server::Config {
        secret: Some("s3cret".into()),
        ..config(dir.path())
    });
    let history = dir.path().join(".p2pshare/history.tsv");
    let rows = || {
        std::fs::read_to_string(&history)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    // Junk lines of 1 KiB before AUTH, from two connections of one
    // address: each answered, few recorded.
    let began = Instant::now();
    let mut a = Conn::open(server.addr());
    let mut b = Conn::open(server.addr());
    let junk: String = (0..500)
        .map(|i| format!("junk{i:03}{}\n", "j".repeat(1000)))
        .collect();
    a.send_raw(junk.as_bytes());
    b.send_raw(junk.as_bytes());
    for c in [&mut a, &mut b] {
        for _ in 0..500 {
            assert_eq!(c.read_reply().code, 500);
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    let written = rows().len();
    assert!(written >= 64, "{written}");
    assert!(
        written as f64 <= 64.0 + 2.0 * elapsed + 1.0,
        "{written} rows in {elapsed:.1}s"
    );
    assert!(std::fs::metadata(&history).unwrap().len() < 128 * 1024);
    // Once the address may write again, one row sums up what was left out.
    let mut again = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        assert_eq!(a.cmd("junk again").code, 500);
        again += 1;
        rows().len() > written
    }));
    let all = rows();
    let summary = &all[written];
    assert_eq!(
        summary[3],
        format!(
            "({} more refused or unauthenticated requests from this address not recorded: \
             over 64 rows at once or 2 a second)",
            1000 - written + again - 1
        )
    );
    assert_eq!(
        (summary[2].as_str(), summary[4].as_str()),
        ("127.0.0.1", "500")
    );
    assert!(all[written + 1][3].starts_with("junk again"));
    // Requests of an authenticated session that succeed are all recorded.
    assert_eq!(a.cmd("AUTH s3cret").code, 230);
    let before = rows().len();
    for _ in 0..100 {
        a.assert_alive();
    }
    assert_eq!(rows().len(), before + 100);
}

fn the_client_follows_a_data_channel_given_back_while_idle() {
    let dir = TempDir::new("hostile-release-client");
    dir.write("a.txt", "a\n");
    dir.write("b.txt", "bb\n");
    // One data port, so that its release can be seen.
    let range = free_port_range(1);
    let server = start_with(p2pshare::server::Config {
        data_idle: Some(Duration::from_millis(200)),
        data_ports: Some(range),
        ..config(dir.path())
    });
    let local = TempDir::new("hostile-release-client-local");
    let mut client = Proc::spawn(&client_args(server.addr(), local.path(), &[]));
    client.send("FileDownload a.txt\n");
    assert!(wait_until(Duration::from_secs(10), || local
        .path()
        .join("a.txt")
        .exists()));
    // The server gives back the data port the client's channel is on.
    assert!(
        wait_until(Duration::from_secs(10), || range_is_free(range)),
        "the data port {range:?} was never given back"
    );
    client.send("FileDownload b.txt\n");
    let done = client.finish();
    assert_eq!(done.code(), Some(0), "{done}");
    assert_eq!(std::fs::read(local.path().join("b.txt")).unwrap(), b"bb\n");
}

/// How many of process `pid`'s descriptors are the OS's random source.
fn random_sources_open(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t == std::path::Path::new("/dev/urandom"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The random source is opened once, at start, and kept: a token costs
/// no descriptor when it is made, so tokens come from it even when the
/// server is at its open-file limit, and never from anything weaker.
fn the_random_source_is_opened_once_at_start_and_kept() {
    let dir = TempDir::new("hostile-random");
    dir.write("a.txt", "a\n");
    let (server, addr) = serve_limited(dir.path(), 1024, &[]);
    let pid = server.id();
    assert_eq!(random_sources_open(pid), 1, "{}", server.dump());
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let mut c = Conn::open(addr);
        let r150 = c.cmd("FileDownload a.txt");
        assert_eq!(r150.code, 150, "{:?}", r150.lines);
        let (port, token) = data_of(&r150);
        let mut d = data_connect(addr, port, &token);
        assert_eq!(read_exact_n(&mut d, 2), b"a\n");
        assert_eq!(c.read_reply().code, 226);
        tokens.push(token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 5);
    assert_eq!(random_sources_open(pid), 1);
}

/// Without a random source (here /dev/null bound over /dev/urandom in a
/// mount namespace of its own) the server does not start.
fn without_a_random_source_the_server_does_not_start() {
    let dir = TempDir::new("hostile-no-random");
    let share = dir.path().display().to_string();
    let script = r#"mount --bind /dev/null /dev/urandom && exec "$0" "$@""#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script, bin()])
        .args([
            "serve",
            "--share",
            &share,
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ]);
    let mut p = Proc::spawn_command(cmd, "serve without /dev/urandom".into());
    let ended = wait_until(Duration::from_secs(20), || !p.running());
    assert!(ended, "still running: {}", p.dump());
    let done = p.finish();
    assert_eq!(done.code(), Some(1), "{done}");
    assert!(done.stderr.contains("cannot read /dev/urandom"), "{done}");
    assert!(!done.stderr.contains(" on 127.0.0.1:"), "{done}");
}

cases![
    the_random_source_is_opened_once_at_start_and_kept,
    #[ignore = "needs root (a mount namespace without /dev/urandom)"]
    without_a_random_source_the_server_does_not_start,
    a_session_costs_one_descriptor_for_its_control_connection,
    out_of_descriptors_the_accept_loops_back_off_instead_of_spinning,
    sessions_are_capped_to_what_the_open_file_limit_holds,
    an_idle_session_gives_its_data_channel_back,
    one_address_holds_at_most_half_of_the_data_ports_and_idle_ones_come_back,
    history_10000_of_long_rows_is_quick_and_small,
    the_history_file_is_rotated_and_history_reads_across_it,
    refused_and_unauthenticated_requests_cannot_fill_the_history,
    the_client_follows_a_data_channel_given_back_while_idle,
];
