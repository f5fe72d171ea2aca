//! Data port protection (PROTOCOL.md section 7) against a real server: a
//! connection from any address but the control connection's is closed at
//! once without a byte, even with the right token; so is one with a wrong
//! token, or one that sends nothing within its token deadline (10 s by
//! default); tokens are 16 hex digits
//! from the OS's random source, different for every session.

use crate::support::*;

use crate::process;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::server::Config;

/// Expects the server to close `s` without sending a byte, within `limit`.
/// Returns how long that took.
fn closed_without_a_byte(s: &mut TcpStream, limit: Duration) -> Duration {
    let began = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes: {:?}", &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within {limit:?}: {e}"),
    }
    began.elapsed()
}

/// Asks for `name` and returns the 150 reply (the transfer then waits for
/// its data connection).
fn start_download(c: &mut Conn, name: &str) -> Reply {
    let r = c.cmd(&format!("FileDownload {name}"));
    assert_eq!(r.code, 150, "{:?}", r.lines);
    r
}

/// Finishes a transfer with a good data connection.
fn finish_download(c: &mut Conn, addr: SocketAddr, r150: &Reply, content: &[u8]) {
    let (port, token) = data_of(r150);
    let mut d = data_connect(addr, port, &token);
    let bytes = read_exact_n(&mut d, content.len() as u64);
    assert!(bytes == content);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
}

/// Why `nc -s 127.0.0.2` cannot be used here, if it cannot.
fn no_foreign_source() -> Option<String> {
    if UdpSocket::bind("127.0.0.2:0").is_err() {
        return Some("127.0.0.2 is not a local address here".into());
    }
    match Command::new("nc").arg("-h").output() {
        Err(e) => Some(format!("nc is not installed ({e})")),
        Ok(_) => nc_from_127_0_0_2_works()
            .err()
            .map(|e| format!("nc -s 127.0.0.2 does not work here: {e}")),
    }
}

/// Checks that `nc -s 127.0.0.2` really connects from 127.0.0.2, with a
/// listener of the test's own.
fn nc_from_127_0_0_2_works() -> Result<(), String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = l.local_addr().unwrap().port();
    let mut nc = Command::new("nc")
        .args(["-s", "127.0.0.2", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let _ = nc.stdin.take().unwrap().write_all(b"hello\n");
    l.set_nonblocking(true).unwrap();
    let mut got = None;
    wait_until(Duration::from_secs(5), || {
        got = l.accept().ok();
        got.is_some() || matches!(nc.try_wait(), Ok(Some(_)))
    });
    let _ = nc.kill();
    let out = nc.wait_with_output().map_err(|e| e.to_string())?;
    match got {
        Some((_, from)) if from.ip() == std::net::Ipv4Addr::new(127, 0, 0, 2) => Ok(()),
        Some((_, from)) => Err(format!("it connected from {from}")),
        None => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

fn a_data_connection_from_another_address_is_closed_at_once_even_with_the_token() {
    if let Some(why) = no_foreign_source() {
        panic!("cannot connect from another address: {why}");
    }
    let content = pseudo_random(200_000, 21);
    let server = Share::new("dp-foreign").file("f.bin", &content).serve();
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let r150 = start_download(&mut c, "f.bin");
    let (port, token) = data_of(&r150);

    // std cannot pick a TCP source address, nc can: 127.0.0.2 is loopback
    // too, but not the control connection's peer (127.0.0.1). stdin stays
    // open, so nc ends only when the server closes the connection.
    let began = Instant::now();
    let mut nc = Command::new("nc")
        .args(["-s", "127.0.0.2", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nc");
    let mut stdin = nc.stdin.take().unwrap();
    let _ = stdin.write_all(format!("{token}\n").as_bytes());
    let ended = wait_until(Duration::from_secs(8), || {
        matches!(nc.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = nc.kill();
    }
    let out = nc.wait_with_output().unwrap();
    drop(stdin);
    assert!(
        ended,
        "the foreign data connection was held open ({:?})",
        began.elapsed()
    );
    assert!(
        out.stdout.is_empty(),
        "{} bytes went to 127.0.0.2",
        out.stdout.len()
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "not closed at once: {:?}",
        began.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("annot assign"),
        "nc could not use 127.0.0.2: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The transfer is still waiting, and 127.0.0.1 gets it.
    finish_download(&mut c, addr, &r150, &content);
}

fn a_wrong_token_or_another_sessions_token_is_closed_without_a_byte() {
    let content = pseudo_random(100_000, 22);
    let server = Share::new("dp-token").file("f.bin", &content).serve();
    let addr = server.addr();
    let mut a = Conn::open(addr);
    let mut b = Conn::open(addr);
    let ra = start_download(&mut a, "f.bin");
    let rb = start_download(&mut b, "f.bin");
    let (port_a, token_a) = data_of(&ra);
    let (port_b, token_b) = data_of(&rb);
    assert_ne!(port_a, port_b);
    assert_ne!(token_a, token_b);

    // b's token on a's port, a near miss, junk, an over-long line.
    let mut near = token_a.clone().into_bytes();
    near[15] = if near[15] == b'0' { b'1' } else { b'0' };
    let near = String::from_utf8(near).unwrap();
    for bad in [
        token_b.clone(),
        near,
        token_a.to_uppercase() + "x",
        format!(" {token_a}"),
        "GET / HTTP/1.0\r\n".into(),
        "0".repeat(4000),
    ] {
        let mut s = data_connect(addr, port_a, &bad);
        let took = closed_without_a_byte(&mut s, Duration::from_secs(5));
        assert!(took < Duration::from_secs(5), "{bad:?}: {took:?}");
    }
    // Both transfers still go to their own sessions' connections.
    finish_download(&mut a, addr, &ra, &content);
    finish_download(&mut b, addr, &rb, &content);
}

fn tokens_are_16_hex_digits_kept_for_the_session_and_differ_between_sessions() {
    let server = Share::new("dp-random").file("a.txt", "a\n").serve();
    let addr = server.addr();
    let mut tokens = HashSet::new();
    for _ in 0..12 {
        let mut c = Conn::open(addr);
        let (first, _, done) = download(&mut c, addr, "a.txt");
        assert_eq!(done.code, 226);
        let (port, token) = data_of(&first);
        assert_eq!(token.len(), 16, "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{token}"
        );
        // The session's channel is reused: same port and token again.
        let again = c.cmd("FileDownload a.txt");
        assert_eq!(data_of(&again), (port, token.clone()));
        let mut d = data_connect(addr, port, &token);
        assert_eq!(read_exact_n(&mut d, 2), b"a\n");
        assert_eq!(c.read_reply().code, 226);
        assert!(tokens.insert(token.clone()), "token {token} seen twice");
    }
    assert_eq!(tokens.len(), 12);
}

fn a_silent_data_connection_is_closed_after_the_token_deadline_and_blocks_nobody() {
    // The deadline is 10 s by default (a unit test in src/server checks
    // that); a short one here, so that the test does not wait it out.
    let deadline = Duration::from_secs(1);
    let content = pseudo_random(50_000, 23);
    let server = Share::new("dp-deadline")
        .file("f.bin", &content)
        .with(|c| Config {
            token_deadline: deadline,
            ..c
        })
        .serve();
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let r150 = start_download(&mut c, "f.bin");
    let (port, token) = data_of(&r150);
    // Half a token and then nothing.
    let began = Instant::now();
    let mut silent = TcpStream::connect((addr.ip(), port)).unwrap();
    silent.write_all(&token.as_bytes()[..8]).unwrap();
    // A good connection is not held up by it.
    finish_download(&mut c, addr, &r150, &content);
    assert!(began.elapsed() < deadline, "{:?}", began.elapsed());
    closed_without_a_byte(&mut silent, Duration::from_secs(30));
    let took = began.elapsed();
    assert!(
        took >= deadline * 9 / 10 && took < deadline * 2 + Duration::from_secs(1),
        "closed after {took:?}, the deadline is {deadline:?}"
    );
}

fn past_four_connections_waiting_for_their_token_the_next_is_closed_at_once() {
    let server = Share::new("dp-pending")
        .file("a.txt", "a\n")
        .with(|c| Config {
            data_wait: Duration::from_secs(60),
            ..c
        })
        .serve();
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let r150 = start_download(&mut c, "a.txt");
    let (port, token) = data_of(&r150);
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect((addr.ip(), port)).unwrap())
        .collect();
    // The acceptor has taken all four before the fifth comes.
    assert!(wait_until(Duration::from_secs(10), || silent
        .iter()
        .all(server_read_all)));
    let mut fifth = data_connect(addr, port, &token);
    let took = closed_without_a_byte(&mut fifth, Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Once the silent ones are gone, the right token gets the file.
    drop(silent);
    let data_addr = SocketAddr::new(addr.ip(), port);
    assert!(wait_until(Duration::from_secs(10), || server_holds_none(
        data_addr
    )));
    finish_download(&mut c, addr, &r150, b"a\n");
}

fn past_two_queued_connections_with_the_token_the_next_is_closed_at_once() {
    let server = Share::new("dp-queued").file("a.txt", "a\n").serve();
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let (r150, bytes, done) = download(&mut c, addr, "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"a\n"[..], 226));
    let (port, token) = data_of(&r150);
    // The one used above is closed on the client's side now (the server
    // still holds it). Of three more with the token, two are queued and one
    // is closed without a byte, whichever the server took last.
    let mut three: Vec<TcpStream> = (0..3)
        .map(|_| {
            let s = data_connect(addr, port, &token);
            // One at a time: the server has taken its token first.
            assert!(wait_until(Duration::from_secs(10), || server_read_all(&s)));
            s
        })
        .collect();
    let mut closed = None;
    assert!(wait_until(Duration::from_secs(5), || {
        closed = three.iter().position(|s| {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            let gone = matches!(s.peek(&mut b), Ok(0))
                || matches!(s.peek(&mut b), Err(e) if e.kind() == ErrorKind::ConnectionReset);
            s.set_nonblocking(false).unwrap();
            gone
        });
        closed.is_some()
    }));
    let mut gone = three.remove(closed.unwrap());
    closed_without_a_byte(&mut gone, Duration::from_secs(1));
    // The queued ones carry the next two transfers.
    for _ in 0..2 {
        let r = c.cmd("FileDownload a.txt");
        assert_eq!(r.code, 150, "{:?}", r.lines);
        let mut got = None;
        assert!(wait_until(Duration::from_secs(5), || {
            got = three.iter_mut().position(|q| {
                q.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut b = [0u8; 2];
                q.read_exact(&mut b).is_ok() && &b == b"a\n"
            });
            got.is_some()
        }));
        assert_eq!(c.read_reply().code, 226);
        let used = three.remove(got.unwrap());
        let (server_side, client_side) = (used.peer_addr().unwrap(), used.local_addr().unwrap());
        drop(used);
        assert!(wait_until(Duration::from_secs(10), || server_saw_close(
            server_side,
            client_side
        )));
    }
    // A queued connection the client closed makes room for a new one.
    let gone = data_connect(addr, port, &token);
    let kept = data_connect(addr, port, &token);
    assert!(wait_until(Duration::from_secs(10), || server_read_all(
        &gone
    ) && server_read_all(
        &kept
    )));
    let (server_side, client_side) = (gone.peer_addr().unwrap(), gone.local_addr().unwrap());
    drop(gone);
    assert!(wait_until(Duration::from_secs(10), || server_saw_close(
        server_side,
        client_side
    )));
    let mut fresh = data_connect(addr, port, &token);
    assert!(wait_until(Duration::from_secs(10), || server_read_all(
        &fresh
    )));
    drop(kept);
    let r = c.cmd("FileDownload a.txt");
    assert_eq!(r.code, 150, "{:?}", r.lines);
    assert_eq!(read_exact_n(&mut fresh, 2), b"a\n");
    assert_eq!(c.read_reply().code, 226);
}

/// Drops the connections the server has closed (reads as end of file or a
/// reset), keeping those it still holds.
fn keep_open(conns: &mut Vec<TcpStream>) {
    conns.retain(|c| {
        if c.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let open = matches!(c.peek(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
        let _ = c.set_nonblocking(false);
        open
    });
}

/// `nc -s 127.0.0.2` to `addr`: the lines the server sent to a session
/// from another address that asked to QUIT.
fn session_from_127_0_0_2(addr: SocketAddr) -> String {
    let mut nc = Command::new("nc")
        .args(["-s", "127.0.0.2", "127.0.0.1", &addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nc");
    // Then the end of its input: nc ends when the server has closed too.
    let mut stdin = nc.stdin.take().unwrap();
    let _ = stdin.write_all(b"QUIT\n");
    drop(stdin);
    let ended = wait_until(Duration::from_secs(10), || {
        matches!(nc.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = nc.kill();
    }
    let out = nc.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A session floods its own data port with 1,000 connections that each
/// send the right token, as fast as it can, and keeps every one the server
/// keeps. The server (a `serve` process under the usual limit of 1,024
/// open files) must stay far below that limit and nearly idle, and go on
/// serving everyone. Returns the server's control address and the server,
/// still running.
fn flood_one_data_port(dir: &TempDir) -> (process::Proc, SocketAddr) {
    dir.write("a.txt", "a\n");
    let (server, addr) = process::serve_limited(dir.path(), 1024, &[]);
    let pid = server.id();
    let mut c = Conn::open(addr);
    let (r150, _, done) = download(&mut c, addr, "a.txt");
    assert_eq!(done.code, 226, "{:?}", done.lines);
    let (port, token) = data_of(&r150);

    let cpu_before = process::cpu_time(pid);
    let began = Instant::now();
    let mut held = Vec::new();
    let mut most = process::open_fds(pid);
    let mut refused = 0;
    for i in 0..1000 {
        match TcpStream::connect_timeout(&(addr.ip(), port).into(), Duration::from_secs(5)) {
            Ok(mut s) => {
                let _ = s.write_all(format!("{token}\n").as_bytes());
                held.push(s);
                // The second half a little slower, so that the server
                // reads their tokens and has to queue or close them.
                if i >= 500 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            Err(_) => refused += 1,
        }
        if i % 50 == 49 {
            keep_open(&mut held);
            most = most.max(process::open_fds(pid));
        }
    }
    // Then hold what is still open for half a second.
    let flood_took = began.elapsed();
    while began.elapsed() < flood_took + Duration::from_millis(500) {
        keep_open(&mut held);
        most = most.max(process::open_fds(pid));
        thread::sleep(Duration::from_millis(100));
    }
    let cpu = process::cpu_time(pid) - cpu_before;
    let wall = began.elapsed();
    eprintln!(
        "flood: {flood_took:?}, {refused} connects failed, {} held open at the end, \
         at most {most} descriptors in the server, {cpu:?} CPU in {wall:?}",
        held.len()
    );
    assert!(
        most < 150,
        "the server held {most} descriptors\n{}",
        server.dump()
    );
    assert!(
        cpu.as_secs_f64() < 0.2 * wall.as_secs_f64(),
        "the server used {cpu:?} of CPU in {wall:?}"
    );
    // Still serving: another session is greeted, and this one goes on
    // over a data connection it kept.
    Conn::open(addr).assert_alive();
    c.assert_alive();
    let r = c.cmd("FileDownload a.txt");
    assert_eq!(r.code, 150, "{:?}", r.lines);
    let mut got = Vec::new();
    for mut d in held {
        if let Ok(b) = {
            let _ = d.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 2];
            d.read_exact(&mut buf).map(|_| buf)
        } {
            got.push(b);
            break;
        }
    }
    assert_eq!(got, [*b"a\n"], "no kept data connection carried the file");
    assert_eq!(c.read_reply().code, 226);
    (server, addr)
}

fn a_flood_of_good_data_connections_keeps_the_server_within_its_descriptors() {
    let dir = TempDir::new("dp-flood");
    // That other addresses are still served is the next test's (it needs
    // nc).
    flood_one_data_port(&dir);
}

fn a_flood_of_good_data_connections_leaves_other_addresses_served() {
    if let Some(why) = no_foreign_source() {
        panic!("cannot connect from 127.0.0.2: {why}");
    }
    let dir = TempDir::new("dp-flood-other");
    let (_server, addr) = flood_one_data_port(&dir);
    let got = session_from_127_0_0_2(addr);
    assert!(got.starts_with("220 "), "127.0.0.2 got {got:?}");
    assert!(got.ends_with("221 bye\n"), "127.0.0.2 got {got:?}");
}

cases![
    #[ignore = "needs `nc -s` (netcat-openbsd) and 127.0.0.2"]
    a_data_connection_from_another_address_is_closed_at_once_even_with_the_token,
    a_wrong_token_or_another_sessions_token_is_closed_without_a_byte,
    tokens_are_16_hex_digits_kept_for_the_session_and_differ_between_sessions,
    a_silent_data_connection_is_closed_after_the_token_deadline_and_blocks_nobody,
    past_four_connections_waiting_for_their_token_the_next_is_closed_at_once,
    past_two_queued_connections_with_the_token_the_next_is_closed_at_once,
    a_flood_of_good_data_connections_keeps_the_server_within_its_descriptors,
    #[ignore = "needs `nc -s` (netcat-openbsd) and 127.0.0.2"]
    a_flood_of_good_data_connections_leaves_other_addresses_served,
];
