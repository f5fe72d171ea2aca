//! Limits against a real server (PROTOCOL.md section 9): the connection
//! cap and the per-address cap (`421` and closed, and recovery once
//! sessions end), the idle timeout, the data stall timeout, and slow
//! clients that must not hold up anyone else.

use crate::support::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::server::Config;

const WAIT: Duration = Duration::from_secs(20);

/// What a new connection got: the first line, and whether the server
/// closed it right after.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Greeted(String),
    Refused(String),
}

/// Connects and reads the first line. A refusal must be one `421` line
/// followed by the close.
fn knock(addr: SocketAddr) -> (Admission, Option<Conn>) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    let line = line.trim_end().to_string();
    if line.starts_with("220 ") {
        let conn = Conn {
            reader,
            stream,
            greeting: line.clone(),
        };
        return (Admission::Greeted(line), Some(conn));
    }
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest);
    assert!(
        closed.is_ok() && rest.is_empty(),
        "after {line:?} the server must close: {closed:?} {rest:?}"
    );
    (Admission::Refused(line), None)
}

/// Sends QUIT and waits for the close.
fn quit(mut c: Conn) {
    assert_eq!(c.cmd("QUIT").code, 221);
    assert_eq!(c.read_to_close(), "");
}

fn past_the_connection_cap_the_next_gets_421_and_a_flood_recovers() {
    let server = Share::new("lim-cap")
        .file("a.txt", "a\n")
        .with(|c| Config {
            max_connections: 4,
            max_per_ip: 100,
            ..c
        })
        .serve();
    let addr = server.addr();
    let mut held: Vec<Conn> = (0..4).map(|_| Conn::open(addr)).collect();
    let (a, none) = knock(addr);
    assert_eq!(
        a,
        Admission::Refused("421 too many connections; try again later".into())
    );
    assert!(none.is_none());

    // A flood from several threads at once: every one refused cleanly,
    // and the sessions already in are served meanwhile.
    let flood: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                (0..25)
                    .map(|_| knock(addr).0)
                    .filter(|a| matches!(a, Admission::Refused(l) if l.starts_with("421 too many connections")))
                    .count()
            })
        })
        .collect();
    for c in &mut held {
        c.assert_alive();
    }
    let refused: usize = flood.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 100);

    // Once two sessions end, exactly two new ones are let in.
    quit(held.pop().unwrap());
    drop(held.pop().unwrap()); // closed without QUIT
    let mut new = Vec::new();
    assert!(
        wait_until(WAIT, || {
            if let (Admission::Greeted(_), Some(c)) = knock(addr) {
                new.push(c);
            }
            new.len() == 2
        }),
        "the server never took new sessions again"
    );
    let (a, _) = knock(addr);
    assert!(matches!(a, Admission::Refused(_)), "{a:?}");
    for c in held.iter_mut().chain(new.iter_mut()) {
        c.assert_alive();
        let (_, bytes, done) = download(c, addr, "a.txt");
        assert_eq!((bytes.as_slice(), done.code), (&b"a\n"[..], 226));
    }
    // And all of them gone, the full cap again.
    held.into_iter().chain(new).for_each(quit);
    let mut again = Vec::new();
    assert!(wait_until(WAIT, || {
        if let (Admission::Greeted(_), Some(c)) = knock(addr) {
            again.push(c);
        }
        again.len() == 4
    }));
}

fn past_the_per_address_cap_the_next_gets_421() {
    let server = Share::new("lim-ip")
        .with(|c| Config {
            max_connections: 100,
            max_per_ip: 3,
            ..c
        })
        .serve();
    let addr = server.addr();
    let mut held: Vec<Conn> = (0..3).map(|_| Conn::open(addr)).collect();
    for _ in 0..5 {
        let (a, _) = knock(addr);
        assert_eq!(
            a,
            Admission::Refused(
                "421 too many connections from your address; try again later".into()
            )
        );
    }
    for c in &mut held {
        c.assert_alive();
    }
    quit(held.pop().unwrap());
    let mut next = None;
    assert!(wait_until(WAIT, || {
        next = knock(addr).1;
        next.is_some()
    }));
    next.unwrap().assert_alive();
}

fn an_idle_session_gets_421_idle_timeout_and_is_closed() {
    let idle = Duration::from_millis(400);
    let server = Share::new("lim-idle")
        .with(|c| Config {
            idle_timeout: idle,
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    // Requests keep it alive well past the timeout.
    let began = Instant::now();
    let mut quiet = Instant::now();
    while began.elapsed() < idle * 3 / 2 {
        c.send("NOOP");
        quiet = Instant::now();
        assert_eq!(c.read_reply().code, 200);
        thread::sleep(idle / 4);
    }
    // Then silence: 421 and the close, no sooner than the timeout after
    // the last request.
    let r = c.read_reply();
    let took = quiet.elapsed();
    assert_eq!(r.lines, ["421 idle timeout"]);
    assert_eq!(c.read_to_close(), "");
    assert!(took >= idle - Duration::from_millis(50), "{took:?}");
    assert!(took < idle + Duration::from_secs(10), "{took:?}");
    // The session's slot is free again.
    let mut other = Conn::open(server.addr());
    other.assert_alive();
}

fn a_transfer_longer_than_the_idle_timeout_is_not_idle() {
    let idle = Duration::from_millis(300);
    let server = Share::new("lim-idle-xfer")
        .with(|c| Config {
            idle_timeout: idle,
            allow_upload: true,
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    let content = pseudo_random(64 * 1024, 3);
    let r = c.cmd(&format!(
        "FileUpload slow.bin {} {}",
        content.len(),
        md5_hex(&content)
    ));
    assert_eq!(r.code, 150, "{:?}", r.lines);
    let (port, token) = data_of(&r);
    let mut d = data_connect(server.addr(), port, &token);
    // Trickle the bytes over about three idle timeouts.
    let began = Instant::now();
    for chunk in content.chunks(content.len() / 8) {
        d.write_all(chunk).unwrap();
        thread::sleep(idle * 3 / 8);
    }
    assert!(began.elapsed() > idle * 2);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    c.assert_alive();
}

fn a_client_that_never_reads_its_download_gets_426_and_others_are_served() {
    let dir = TempDir::new("lim-stall");
    // Far more than the socket buffers on both ends hold.
    let big = pseudo_random(48 << 20, 4);
    dir.write("big.bin", &big);
    dir.write("small.txt", "small\n");
    let data_timeout = Duration::from_millis(300);
    let server = start_with(Config {
        data_timeout,
        ..config(dir.path())
    });
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let r150 = c.cmd("FileDownload big.bin");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let d = data_connect(addr, port, &token);
    let began = Instant::now();

    // Meanwhile another session is served.
    let mut other = Conn::open(addr);
    let (_, bytes, done) = download(&mut other, addr, "small.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"small\n"[..], 226));

    let r = c.read_reply();
    let took = began.elapsed();
    assert_eq!(r.code, 426, "{:?}", r.lines);
    assert!(took >= data_timeout, "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    drop(d);
    // The stalled session goes on, on a new data connection.
    c.assert_alive();
    let (_, bytes, done) = download(&mut c, addr, "small.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"small\n"[..], 226));
}

fn slow_byte_by_byte_lines_do_not_hold_up_other_sessions() {
    let server = Share::new("lim-slowloris")
        .file("a.txt", "a\n")
        .with(|c| Config {
            max_per_ip: 64,
            ..c
        })
        .serve();
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    // How many of them have sent their verb and a space, so that the line
    // finished at once at the end is a NOOP.
    let dribbling = Arc::new(AtomicUsize::new(0));
    // Ten clients each dribbling one byte of a request every 20 ms.
    let slow: Vec<_> = (0..10)
        .map(|i| {
            let stop = stop.clone();
            let dribbling = dribbling.clone();
            thread::spawn(move || {
                let mut c = Conn::open(addr);
                let line = format!("NOOP{}\n", " ".repeat(200 + i));
                let mut sent = 0;
                for b in line.as_bytes() {
                    if stop.load(Ordering::SeqCst) && *b != b'\n' {
                        // Finish the line in one go once the test is done.
                        continue;
                    }
                    c.send_raw(&[*b]);
                    sent += 1;
                    if sent == 5 {
                        dribbling.fetch_add(1, Ordering::SeqCst);
                    }
                    if !stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(20));
                    }
                }
                // The slow line was a request like any other.
                let r = c.read_reply();
                (sent, r.code)
            })
        })
        .collect();

    // Meanwhile a normal session gets quick answers and a download.
    assert!(wait_until(Duration::from_secs(20), || dribbling
        .load(Ordering::SeqCst)
        == 10));
    let mut c = Conn::open(addr);
    for _ in 0..20 {
        let t = Instant::now();
        c.assert_alive();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let (_, bytes, done) = download(&mut c, addr, "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"a\n"[..], 226));
    let names = c.cmd("IndexGet longlist").names();
    assert_eq!(names, ["a.txt"]);

    stop.store(true, Ordering::SeqCst);
    for t in slow {
        let (sent, code) = t.join().unwrap();
        assert!(sent > 1);
        // "NOOP" followed by spaces: a NOOP.
        assert_eq!(code, 200);
    }
}

fn stopping_the_server_tells_waiting_sessions_and_lets_a_transfer_finish() {
    let dir = TempDir::new("lim-stop");
    // More than the socket buffers hold, so the transfer is still going
    // when the stop comes.
    let big = pseudo_random(48 << 20, 5);
    dir.write("big.bin", &big);
    let server = start(dir.path());
    let addr = server.addr();
    let mut idle = Conn::open(addr);
    idle.assert_alive();
    let mut busy = Conn::open(addr);
    let r150 = busy.cmd("FileDownload big.bin");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(addr, port, &token);
    let first = read_exact_n(&mut d, 1 << 20);

    server.stop();
    // The idle session is told, and closed.
    assert_eq!(idle.read_reply().lines, ["421 shutting down"]);
    assert_eq!(idle.read_to_close(), "");
    // Nobody new gets in.
    assert!(TcpStream::connect(addr).is_err());
    // The transfer finishes, then its session is told too.
    let rest = read_exact_n(&mut d, big.len() as u64 - (1 << 20));
    assert!([first, rest].concat() == big);
    assert_eq!(busy.read_reply().code, 226);
    assert_eq!(busy.read_reply().lines, ["421 shutting down"]);
    assert_eq!(busy.read_to_close(), "");
}

fn waiting_for_data_connections_that_never_come_is_idle_time() {
    let idle = Duration::from_millis(400);
    let server = Share::new("lim-idle-data")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .with(|c| Config {
            idle_timeout: idle,
            data_wait: Duration::from_secs(5),
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    // Three downloads in one go, and no data connection for any of them.
    let began = Instant::now();
    c.send_raw(b"FileDownload a.txt\nFileDownload b.txt\nFileDownload a.txt\n");
    for _ in 0..3 {
        let r150 = c.read_reply();
        assert_eq!(r150.code, 150, "{:?}", r150.lines);
        let (port, _) = data_of(&r150);
        let r = c.read_reply();
        assert_eq!(
            r.lines,
            [format!(
                "425 no data connection before the idle timeout: connect to port {port} and send the token line"
            )]
        );
    }
    assert_eq!(c.read_reply().lines, ["421 idle timeout"]);
    assert_eq!(c.read_to_close(), "");
    let took = began.elapsed();
    assert!(took >= idle - Duration::from_millis(50), "{took:?}");
    assert!(took < idle + Duration::from_secs(3), "{took:?}");
}

fn a_data_wait_within_the_idle_timeout_is_the_full_wait() {
    let server = Share::new("lim-idle-data-full")
        .file("a.txt", "a\n")
        .with(|c| Config {
            idle_timeout: Duration::from_secs(30),
            data_wait: Duration::from_millis(300),
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload a.txt");
    let (port, token) = data_of(&r150);
    let r = c.read_reply();
    assert_eq!(
        r.lines,
        [format!(
            "425 no data connection within 300ms: connect to port {port} and send the token line"
        )]
    );
    // The channel still takes the connection that comes late.
    let r150 = c.cmd("FileDownload a.txt");
    assert_eq!(data_of(&r150), (port, token.clone()));
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 2), b"a\n");
    assert_eq!(c.read_reply().code, 226);
}

/// A client asks for many replies at once and then reads a little of
/// them now and then, each read well within the data timeout: its replies
/// wait unread for longer than the data timeout in all, so the session is
/// closed, as an idle one would be. A client that reads its replies is
/// served whatever their number.
fn a_client_that_leaves_its_replies_unread_is_closed() {
    let dir = TempDir::new("limits-unread");
    let server = start_with(Config {
        idle_timeout: Duration::from_secs(1),
        data_timeout: Duration::from_secs(3),
        ..config(dir.path())
    });
    // A reader that keeps up gets every reply.
    let mut fast = Conn::open(server.addr());
    fast.send_raw("HELP\n".repeat(1000).as_bytes());
    for _ in 0..1000 {
        assert_eq!(fast.read_reply().code, 214);
    }
    fast.assert_alive();
    // A slow one: 32 KB every 2 s, never the 3 s of the data timeout
    // apart.
    let helps = "HELP\n".repeat(3000);
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.write_all(helps.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let began = Instant::now();
    let (mut got, mut closed) = (0usize, false);
    while began.elapsed() < Duration::from_secs(40) {
        thread::sleep(Duration::from_secs(2));
        let mut buf = vec![0u8; 32 * 1024];
        let mut n = 0;
        while n < buf.len() {
            match slow.read(&mut buf[n..]) {
                Ok(0) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(k) => n += k,
            }
        }
        got += n;
        if closed {
            break;
        }
    }
    assert!(
        closed,
        "still served after {:?} and {got} bytes read",
        began.elapsed()
    );
    assert!(got < 3000 * 500, "{got} bytes read: every reply came");
    // Others are served after it.
    Conn::open(server.addr()).assert_alive();
}

cases![
    a_client_that_leaves_its_replies_unread_is_closed,
    past_the_connection_cap_the_next_gets_421_and_a_flood_recovers,
    past_the_per_address_cap_the_next_gets_421,
    an_idle_session_gets_421_idle_timeout_and_is_closed,
    a_transfer_longer_than_the_idle_timeout_is_not_idle,
    a_client_that_never_reads_its_download_gets_426_and_others_are_served,
    slow_byte_by_byte_lines_do_not_hold_up_other_sessions,
    stopping_the_server_tells_waiting_sessions_and_lets_a_transfer_finish,
    waiting_for_data_connections_that_never_come_is_idle_time,
    a_data_wait_within_the_idle_timeout_is_the_full_wait,
];
