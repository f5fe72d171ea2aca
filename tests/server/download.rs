//! TCP downloads and the session's reusable data channel (contract
//! section 6), as a person with two `nc` windows sees them:
//!
//! ```text
//! > FileDownload TCP docs/a.txt
//! < 150-docs/a.txt<TAB>5123<TAB>2026-11-26T09:00:00Z<TAB><md5>
//! < 150 DATA tcp port=40123 token=5f2a9c0e81d3b7aa
//!   (second nc: connect to 40123, send "5f2a9c0e81d3b7aa\n", read 5123 bytes)
//! < 226 docs/a.txt 5123 bytes md5=<md5>
//! ```

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::*;
use p2pshare::server::Config;

const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Reads whatever is left on a data connection until the server closes
/// it; a reset counts as closed.
fn rest_of(d: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    match d.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("data connection: {e}"),
    }
    rest
}

/// The 150 line naming the data channel, checked word by word.
fn data_line(reply: &Reply, control: SocketAddr) -> (u16, String) {
    let last = reply.lines.last().unwrap();
    let words: Vec<&str> = last.split(' ').collect();
    assert_eq!(words.len(), 5, "{last:?}");
    assert_eq!(words[..3], ["150", "DATA", "tcp"], "{last:?}");
    let (port, token) = data_of(reply);
    assert_eq!(words[3], format!("port={port}"));
    assert_eq!(words[4], format!("token={token}"));
    assert!(port != 0 && port != control.port());
    assert!(token.len() >= 16 && token.bytes().all(|b| b.is_ascii_hexdigit()));
    (port, token)
}

fn two_line_150_then_exactly_size_bytes_then_226() {
    let dir = TempDir::new("dl-basic");
    let content = pseudo_random(5123, 1);
    let path = dir.write("docs/a.txt", &content);
    set_mtime(&path, time("2026-11-26T09:00:00Z"));
    let md5 = md5_hex(&content);
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());

    let r150 = c.cmd("FileDownload TCP docs/a.txt");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert_eq!(r150.lines.len(), 2, "{:?}", r150.lines);
    assert_eq!(
        r150.lines[0],
        format!("150-docs/a.txt\t5123\t2026-11-26T09:00:00Z\t{md5}")
    );
    let (port, token) = data_line(&r150, server.addr());

    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 5123), content);
    let done = c.read_reply();
    assert_eq!(done.lines, [format!("226 docs/a.txt 5123 bytes md5={md5}")]);

    // Nothing but the file came on the data connection: after QUIT the
    // server closes it and not one more byte arrives.
    assert_eq!(c.cmd("QUIT").code, 221);
    assert_eq!(rest_of(&mut d), b"");
}

fn tcp_is_the_default_and_names_with_spaces_are_quoted() {
    let server = Share::new("dl-quoted")
        .file("my file.txt", "spaces in the name\n")
        .serve();
    let mut s = DataSession::open(server.addr());
    // > FileDownload "my file.txt"
    let r150 = s.conn.cmd("FileDownload \"my file.txt\"");
    assert_eq!(row_of_150(&r150)[..2], ["my file.txt", "19"]);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 19), b"spaces in the name\n");
    let done = s.conn.read_reply();
    let md5 = md5_hex(b"spaces in the name\n");
    assert_eq!(done.lines, [format!("226 my file.txt 19 bytes md5={md5}")]);
}

fn data_connection_is_reused_and_can_be_reopened_with_the_same_token() {
    let dir = TempDir::new("dl-reuse");
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                format!("f{i}.bin"),
                pseudo_random(1000 + i * 7777, i as u64),
            )
        })
        .collect();
    for (name, content) in &files {
        dir.write(name, content);
    }
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());

    // First transfer: open the one data connection.
    let first = c.cmd("FileDownload f0.bin");
    let (port, token) = data_line(&first, server.addr());
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, files[0].1.len() as u64), files[0].1);
    assert_eq!(c.read_reply().code, 226);

    // Second and third: the same port and token, and the next file simply
    // arrives on the connection already open.
    for (name, content) in &files[1..3] {
        let r = c.cmd(&format!("FileDownload TCP {name}"));
        assert_eq!(data_line(&r, server.addr()), (port, token.clone()));
        assert_eq!(read_exact_n(&mut d, content.len() as u64), *content);
        let done = c.read_reply();
        assert_eq!(done.code, 226, "{:?}", done.lines);
        assert!(done.last().ends_with(&md5_hex(content)));
    }

    // The client closes its data connection; the next transfer waits for a
    // new one with the same token instead of writing into the dead one.
    drop(d);
    let r = c.cmd("FileDownload f3.bin");
    assert_eq!(data_line(&r, server.addr()), (port, token.clone()));
    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, files[3].1.len() as u64), files[3].1);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    c.assert_alive();
}

fn resume_from_an_offset_sends_the_rest_with_the_whole_files_md5() {
    let content = pseudo_random(100_000, 7);
    let md5 = md5_hex(&content);
    let server = Share::new("dl-resume")
        .file("big.bin", &content)
        .file("next.txt", "next\n")
        .serve();
    let mut s = DataSession::open(server.addr());

    let f = s.fetch("big.bin", Some(40_000)).unwrap();
    assert_eq!(row_of_150(&f.r150)[1..2], ["100000"]);
    assert_eq!(row_of_150(&f.r150)[3], md5);
    assert_eq!(f.bytes.len(), 60_000);
    assert!(f.bytes == content[40_000..]);
    assert_eq!(
        f.done.lines,
        [format!("226 big.bin 100000 bytes md5={md5}")]
    );

    // Offset == size: a transfer of 0 bytes. The next file on the same
    // connection starts right away, so not a byte was sent for it.
    let f = s.fetch("big.bin", Some(100_000)).unwrap();
    assert_eq!(f.bytes, b"");
    assert_eq!(f.done.code, 226, "{:?}", f.done.lines);
    assert!(f.done.last().ends_with(&md5));
    let f = s.fetch("next.txt", None).unwrap();
    assert_eq!(f.bytes, b"next\n");
    assert_eq!(f.done.code, 226);

    // Past the end, or not a number: 501, nothing starts, the session goes
    // on.
    for line in [
        "FileDownload big.bin 100001",
        "FileDownload TCP big.bin 18446744073709551615",
        "FileDownload TCP big.bin -1",
        "FileDownload TCP big.bin 12abc",
    ] {
        let r = s.conn.cmd(line);
        assert_eq!(r.code, 501, "{line}: {:?}", r.lines);
        assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
    }
    let f = s.fetch("next.txt", Some(2)).unwrap();
    assert_eq!(f.bytes, b"xt\n");
    assert_eq!(f.done.code, 226);
}

fn wrong_token_is_closed_without_a_byte_and_the_right_one_still_works() {
    let server = Share::new("dl-token")
        .file("a.txt", "the real content\n")
        .serve();
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload a.txt");
    let (port, token) = data_of(&r150);

    let wrong = if token.starts_with('0') { "1" } else { "0" }.repeat(token.len());
    let junk = "x".repeat(300); // no line end, longer than any token
    let empty = String::new();
    for bad in [&wrong, &token[..token.len() - 1].to_string(), &junk, &empty] {
        let mut d = TcpStream::connect((server.addr().ip(), port)).unwrap();
        d.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        if bad != &junk {
            d.write_all(format!("{bad}\n").as_bytes()).unwrap();
        } else {
            d.write_all(bad.as_bytes()).unwrap();
        }
        // Closed by the server (end of file, or a reset when it left our
        // junk unread), never a byte of the file.
        assert_eq!(rest_of(&mut d), b"", "token {bad:?}");
    }

    let mut d = data_connect(server.addr(), port, &token);
    assert_eq!(read_exact_n(&mut d, 17), b"the real content\n");
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
}

fn no_data_connection_in_time_gives_425_and_a_late_one_serves_the_next() {
    let server = Share::new("dl-425")
        .file("a.txt", "abc\n")
        // Long enough for the late connection's token to be taken in
        // on a loaded machine, before the next request gives up on it.
        .with(|c| Config {
            data_wait: Duration::from_secs(2),
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload a.txt");
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let r = c.read_reply();
    assert_eq!(r.code, 425, "{:?}", r.lines);
    // The reply says how long it waited and where to connect.
    assert!(r.last().contains("2s"), "{:?}", r.lines);
    assert!(r.last().contains(&port.to_string()), "{:?}", r.lines);
    c.assert_alive();

    // The channel stays open: connecting now serves the next transfer.
    let mut d = data_connect(server.addr(), port, &token);
    let again = c.cmd("FileDownload a.txt");
    assert_eq!(data_of(&again), (port, token));
    assert_eq!(read_exact_n(&mut d, 4), b"abc\n");
    assert_eq!(c.read_reply().code, 226);
}

fn empty_file_is_zero_bytes_with_the_empty_md5() {
    let server = Share::new("dl-empty")
        .file("empty.bin", "")
        .file("after.txt", "after\n")
        .serve();
    let mut s = DataSession::open(server.addr());
    let f = s.fetch("empty.bin", None).unwrap();
    assert_eq!(row_of_150(&f.r150)[1..2], ["0"]);
    assert_eq!(row_of_150(&f.r150)[3], EMPTY_MD5);
    assert_eq!(f.bytes, b"");
    assert_eq!(
        f.done.lines,
        [format!("226 empty.bin 0 bytes md5={EMPTY_MD5}")]
    );
    let f = s.fetch("after.txt", None).unwrap();
    assert_eq!(f.bytes, b"after\n");
}

fn several_mib_arrive_intact() {
    let content = pseudo_random(6 * 1024 * 1024 + 123, 42);
    let md5 = md5_hex(&content);
    let server = Share::new("dl-big").file("big.bin", &content).serve();
    let mut s = DataSession::open(server.addr());
    let f = s.fetch("big.bin", None).unwrap();
    assert_eq!(row_of_150(&f.r150)[3], md5);
    assert_eq!(f.bytes.len(), content.len());
    assert_eq!(md5_hex(&f.bytes), md5);
    assert_eq!(
        f.done.lines,
        [format!("226 big.bin {} bytes md5={md5}", content.len())]
    );
}

/// Session A vanishes (both connections dropped) in the middle of a large
/// transfer while session B is in the middle of its own: B finishes
/// intact, the server records A's transfer as aborted, and new sessions
/// are served.
fn a_client_vanishing_mid_transfer_disturbs_no_one() {
    let content = pseudo_random(24 * 1024 * 1024, 3);
    let server = Share::new("dl-vanish")
        .file("big.bin", &content)
        .file("small.txt", "small\n")
        .serve();
    let addr = server.addr();

    let start_reading = |c: &mut Conn| {
        let r150 = c.cmd("FileDownload TCP big.bin");
        let (port, token) = data_of(&r150);
        let mut d = data_connect(addr, port, &token);
        let head = read_exact_n(&mut d, 1 << 20);
        assert!(head == content[..1 << 20]);
        d
    };
    let mut b = Conn::open(addr);
    let mut b_data = start_reading(&mut b);
    let mut a = Conn::open(addr);
    let a_data = start_reading(&mut a);
    drop(a_data);
    drop(a);

    let rest = read_exact_n(&mut b_data, (content.len() - (1 << 20)) as u64);
    assert!(rest == content[1 << 20..]);
    let done = b.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    b.assert_alive();

    // A's session noticed the broken connection and recorded a 426.
    assert!(wait_until(Duration::from_secs(20), || {
        let h = b.cmd("History 200");
        h.rows()
            .iter()
            .any(|r| r[3] == "FileDownload TCP big.bin" && r[4] == "426")
    }));

    let mut c = Conn::open(addr);
    assert_eq!(c.cmd("IndexGet longlist").names(), ["big.bin", "small.txt"]);
    let (_, bytes, done) = download(&mut c, addr, "small.txt");
    assert_eq!(bytes, b"small\n");
    assert_eq!(done.code, 226);
}

/// Starts a large download and reads only its first 256 KiB, so the
/// server is blocked in the middle of sending (the rest cannot fit in the
/// socket buffers).
fn start_slow_download(s: &mut DataSession, name: &str) -> (Reply, TcpStream) {
    let r150 = s.conn.cmd(&format!("FileDownload TCP {name}"));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(s.addr, port, &token);
    read_exact_n(&mut d, 256 * 1024);
    (r150, d)
}

const CHANGING_SIZE: usize = 32 * 1024 * 1024;

fn file_truncated_while_sent_gives_451_not_226() {
    let dir = TempDir::new("dl-trunc");
    let content = pseudo_random(CHANGING_SIZE, 5);
    let path = dir.write("big.bin", &content);
    let server = start(dir.path());
    let mut s = DataSession::open(server.addr());

    let (_, mut d) = start_slow_download(&mut s, "big.bin");
    let shorter = &content[..3 * 1024 * 1024];
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(shorter.len() as u64)
        .unwrap();
    // The server gives up on this transfer and closes the data connection.
    let got = 256 * 1024 + rest_of(&mut d).len();
    assert!(got < CHANGING_SIZE, "got the whole size from a shrunk file");
    let r = s.conn.read_reply();
    assert_eq!(r.code, 451, "{:?}", r.lines);

    // Retrying gets the file as it is now, whole and consistent.
    let f = s.fetch("big.bin", None).unwrap();
    assert_eq!(row_of_150(&f.r150)[3], md5_hex(shorter));
    assert!(f.bytes == shorter);
    assert_eq!(f.done.code, 226, "{:?}", f.done.lines);
}

fn file_rewritten_while_sent_gives_451_not_mixed_content() {
    let dir = TempDir::new("dl-rewrite");
    let content = pseudo_random(CHANGING_SIZE, 6);
    let path = dir.write("big.bin", &content);
    // An old mtime, so the rewrite below certainly moves it even on a file
    // system with coarse timestamps.
    set_mtime(&path, time("2020-01-01T00:00:00Z"));
    let server = start(dir.path());
    let mut s = DataSession::open(server.addr());

    let (_, mut d) = start_slow_download(&mut s, "big.bin");
    // Same size, other bytes at the end that has not been sent yet.
    let tail = pseudo_random(1 << 20, 99);
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start((CHANGING_SIZE - tail.len()) as u64))
        .unwrap();
    f.write_all(&tail).unwrap();
    drop(f);
    let mut now = content.clone();
    now[CHANGING_SIZE - tail.len()..].copy_from_slice(&tail);

    let mut got = content[..256 * 1024].to_vec();
    got.extend(rest_of(&mut d));
    let r = s.conn.read_reply();
    assert_eq!(r.code, 451, "{:?}", r.lines);
    // What came was indeed a mix of old and new: exactly the case the
    // 451 warns about.
    assert!(got.len() < CHANGING_SIZE || (got != content && got == now));

    let f = s.fetch("big.bin", None).unwrap();
    assert_eq!(row_of_150(&f.r150)[3], md5_hex(&now));
    assert!(f.bytes == now);
    assert_eq!(f.done.code, 226, "{:?}", f.done.lines);
}

cases![
    two_line_150_then_exactly_size_bytes_then_226,
    tcp_is_the_default_and_names_with_spaces_are_quoted,
    data_connection_is_reused_and_can_be_reopened_with_the_same_token,
    resume_from_an_offset_sends_the_rest_with_the_whole_files_md5,
    wrong_token_is_closed_without_a_byte_and_the_right_one_still_works,
    no_data_connection_in_time_gives_425_and_a_late_one_serves_the_next,
    empty_file_is_zero_bytes_with_the_empty_md5,
    several_mib_arrive_intact,
    a_client_vanishing_mid_transfer_disturbs_no_one,
    file_truncated_while_sent_gives_451_not_226,
    file_rewritten_while_sent_gives_451_not_mixed_content,
];
