//! Bad input costs the client a 5xx, never the session: junk bytes, invalid
//! UTF-8, over-long lines, broken quoting, unknown verbs and missing
//! arguments, each followed by a `NOOP` that must still answer 200.

use crate::support::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use p2pshare::server::RunningServer;

/// Sends raw bytes (which must end the line) and expects one 5xx reply,
/// then checks the session still answers NOOP. Returns the 5xx reply.
fn refused(c: &mut Conn, bytes: &[u8]) -> Reply {
    c.send_raw(bytes);
    let r = c.read_reply();
    assert_eq!(
        r.code / 100,
        5,
        "{:?} got {:?}",
        String::from_utf8_lossy(bytes),
        r.lines
    );
    assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
    c.assert_alive();
    r
}

fn session() -> (TempDir, RunningServer, Conn) {
    let Served { dir, server } = Share::new("bad").file("a.txt", "hello\n").serve();
    let c = Conn::open(server.addr());
    (dir, server, c)
}

fn junk_bytes_get_500() {
    let (_dir, _server, mut c) = session();
    let r = refused(&mut c, b"\x00\x01\x02\x03\x04\n");
    assert!(r.last().contains("unknown command"), "{:?}", r.lines);
    refused(&mut c, b"\x1b[A\x1b[B\x7f\x08\n");
    refused(&mut c, b"\x00\n");
    refused(&mut c, b"NO\rOP\n");
    // A telnet client's negotiation bytes are not UTF-8.
    refused(&mut c, b"\xff\xf4\xff\xfd\x06\n");
}

fn a_stream_of_binary_noise_gets_one_5xx_per_line() {
    let (_dir, server, mut c) = session();
    let mut noise = pseudo_random(64 * 1024, 7);
    noise.push(b'\n');
    // What the server will see as lines: LF-separated, CR before LF
    // dropped, blank ones (spaces and tabs only) ignored.
    let mut lines: Vec<&[u8]> = noise.split(|&b| b == b'\n').collect();
    assert_eq!(lines.pop(), Some(&b""[..]));
    let expected = lines
        .iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(|&b| b == b' ' || b == b'\t'))
        .count();
    assert!(expected > 100, "the noise should hold many lines");
    c.send_raw(&noise);
    for i in 0..expected {
        let r = c.read_reply();
        assert_eq!(r.code / 100, 5, "line {i}: {:?}", r.lines);
    }
    c.assert_alive();
    // The server is fine for everyone else too.
    let mut other = Conn::open(server.addr());
    assert_eq!(other.cmd("IndexGet longlist").names(), ["a.txt"]);
}

fn invalid_utf8_gets_500() {
    let (_dir, _server, mut c) = session();
    for bytes in [
        &b"\xff\xfe\xfd\n"[..],
        b"FileHash verify caf\xe9.txt\n",
        b"IndexGet regex \xc0\xaf*\n",      // overlong '/'
        b"FileDownload \xed\xa0\x80.txt\n", // a surrogate
        b"NOOP \x80\n",
        b"\xe2\x82\n", // cut short
    ] {
        let r = refused(&mut c, bytes);
        assert_eq!(r.code, 500, "{:?}", r.lines);
        assert!(r.last().contains("UTF-8"), "{:?}", r.lines);
    }
}

fn a_100kb_line_is_too_long_and_the_rest_of_it_is_discarded() {
    let (_dir, _server, mut c) = session();
    // The tail of the long line looks like requests; none must be run.
    let mut line = vec![b'x'; 100 * 1024];
    line.extend(b" NOOP QUIT");
    line.push(b'\n');
    line.extend(b"NOOP\n");
    c.send_raw(&line);
    let r = c.read_reply();
    assert_eq!(r.code, 500, "{:?}", r.lines);
    assert!(r.last().starts_with("line too long"), "{:?}", r.lines);
    // The very next reply is the NOOP's: the long line got exactly one.
    assert_eq!(c.read_reply().code, 200);
    c.assert_alive();
}

fn a_huge_line_of_many_megabytes_is_one_500() {
    let (_dir, _server, mut c) = session();
    let mut line = vec![b'A'; 8 * 1024 * 1024];
    line.push(b'\n');
    let r = refused(&mut c, &line);
    assert!(r.last().starts_with("line too long"), "{:?}", r.lines);
}

fn the_line_cap_is_exactly_4096_bytes() {
    let (_dir, _server, mut c) = session();
    let line = |len: usize| -> Vec<u8> {
        let mut l = b"NOOP".to_vec();
        l.resize(len, b' ');
        l
    };
    // 4096 bytes: a valid NOOP padded with spaces.
    let mut ok = line(4096);
    ok.push(b'\n');
    assert_eq!(ok.len(), 4097);
    c.send_raw(&ok);
    assert_eq!(c.read_reply().code, 200);
    // The CR of a CR LF does not count against the cap.
    let mut ok_crlf = line(4096);
    ok_crlf.extend(b"\r\n");
    c.send_raw(&ok_crlf);
    assert_eq!(c.read_reply().code, 200);
    // 4097 bytes: too long, with or without CR.
    let mut long = line(4097);
    long.push(b'\n');
    let r = refused(&mut c, &long);
    assert_eq!(r.lines, ["500 line too long (the limit is 4096 bytes)"]);
    let mut long_crlf = line(4097);
    long_crlf.extend(b"\r\n");
    let r = refused(&mut c, &long_crlf);
    assert!(r.last().starts_with("line too long"), "{:?}", r.lines);
    // A 4096-byte request that is a real command works.
    let mut list = b"IndexGet longlist".to_vec();
    list.resize(4096, b'\t');
    list.push(b'\n');
    c.send_raw(&list);
    assert_eq!(c.read_reply().names(), ["a.txt"]);
}

fn unterminated_quotes_get_500() {
    let (_dir, _server, mut c) = session();
    for line in [
        "FileHash verify \"a.txt\n",
        "FileDownload \"my file\n",
        "\"\n",
        "IndexGet regex \"*.txt\\\"\n",
    ] {
        let r = refused(&mut c, line.as_bytes());
        assert_eq!(r.code, 500, "{line:?}: {:?}", r.lines);
        assert!(r.last().contains("unterminated quote"), "{:?}", r.lines);
    }
    let r = refused(&mut c, b"FileHash verify \"a\"b\n");
    assert!(r.last().contains("closing quote"), "{:?}", r.lines);
}

fn unknown_verbs_get_500() {
    let (_dir, _server, mut c) = session();
    for line in [
        "frobnicate",
        "GET / HTTP/1.1",
        // FTP verbs the FTP dialect does not have.
        "SITE CHMOD 777 a.txt",
        "RNFR a.txt",
        "IndexGetlonglist",
        "longlist",
        "\"IndexGet longlist\"",
    ] {
        let r = refused(&mut c, format!("{line}\n").as_bytes());
        assert_eq!(r.code, 500, "{line}: {:?}", r.lines);
        assert!(r.last().contains("unknown command"), "{:?}", r.lines);
        assert!(r.last().contains("HELP"), "{:?}", r.lines);
    }
    // The echo of a long verb is cut short and never holds raw control bytes.
    let long = format!("{}\x07\n", "v".repeat(3000));
    let r = refused(&mut c, long.as_bytes());
    assert!(r.lines[0].len() < 200, "{:?}", r.lines);
}

fn missing_arguments_get_501_with_the_usage() {
    let (_dir, _server, mut c) = session();
    for (line, usage) in [
        ("IndexGet", "usage: IndexGet"),
        ("IndexGet shortlist", "usage: IndexGet shortlist"),
        ("IndexGet shortlist 2026-11-27", "usage: IndexGet shortlist"),
        ("IndexGet regex", "usage: IndexGet regex"),
        ("FileHash", "usage: FileHash"),
        ("FileHash verify", "usage: FileHash verify"),
        ("FileDownload", "usage: FileDownload"),
        ("FileUpload", "usage: FileUpload"),
        ("FileUpload a.txt 3", "usage: FileUpload"),
        ("AUTH", "usage: AUTH"),
    ] {
        let r = refused(&mut c, format!("{line}\n").as_bytes());
        assert_eq!(r.code, 501, "{line}: {:?}", r.lines);
        assert!(r.last().contains(usage), "{line}: {:?}", r.lines);
    }
    // A lone transport flag is read as a file name, which is not shared.
    let r = refused(&mut c, b"FileDownload TCP\n");
    assert_eq!(r.code, 550, "{:?}", r.lines);
}

fn crlf_line_ends_are_accepted() {
    let (_dir, _server, mut c) = session();
    c.send_raw(b"NOOP\r\n");
    assert_eq!(c.read_reply().code, 200);
    c.send_raw(b"IndexGet longlist\r\n");
    let r = c.read_reply();
    assert_eq!(r.names(), ["a.txt"]);
    c.send_raw(b"FileHash verify a.txt\r\n");
    let r = c.read_reply();
    assert_eq!(r.rows()[0][..2], ["a.txt", &md5_hex(b"hello\n")]);
    c.send_raw(b"IndexGet regex a.txt\r\n");
    assert_eq!(c.read_reply().names(), ["a.txt"]);
    // Replies end with LF only.
    c.send_raw(b"NOOP\r\n");
    let mut raw = String::new();
    c.reader.read_line(&mut raw).unwrap();
    assert_eq!(raw, "200 ok\n");
    c.send_raw(b"QUIT\r\n");
    assert_eq!(c.read_reply().code, 221);
    assert_eq!(c.read_line(), None);
}

fn junk_sent_before_the_greeting_is_answered_after_it() {
    let server = Share::new("bad-early").serve();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"\xde\xad\xbe\xef\nbogus\nNOOP\n").unwrap();
    let mut r = BufReader::new(s);
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        lines.push(l);
    }
    assert!(lines[0].starts_with("220 "), "{lines:?}");
    assert!(lines[1].starts_with("500 "), "{lines:?}");
    assert!(lines[2].starts_with("500 "), "{lines:?}");
    assert_eq!(lines[3], "200 ok\n");
}

fn a_client_hanging_up_mid_line_disturbs_no_one() {
    let server = Share::new("bad-hangup").file("a.txt", "hello\n").serve();
    let mut watcher = Conn::open(server.addr());
    for junk in [&b"IndexGet long"[..], b"\xff\xff", &[b'x'; 10_000]] {
        let mut c = Conn::open(server.addr());
        c.send_raw(junk);
        drop(c);
        watcher.assert_alive();
    }
    // Each was answered and recorded, and the server still serves new peers.
    let mut fresh = Conn::open(server.addr());
    assert_eq!(fresh.cmd("IndexGet longlist").names(), ["a.txt"]);
    let recorded = wait_until(Duration::from_secs(10), || {
        let h = fresh.cmd("History");
        let replies: Vec<(String, String)> = h
            .rows()
            .into_iter()
            .map(|r| (r[3].clone(), r[4].clone()))
            .collect();
        [
            ("IndexGet long", "501"),
            ("\u{fffd}\u{fffd}", "500"),
            ("(line too long)", "500"),
        ]
        .iter()
        .all(|(q, code)| replies.contains(&(q.to_string(), code.to_string())))
    });
    assert!(recorded, "{:?}", fresh.cmd("History").lines);
}

cases![
    junk_bytes_get_500,
    a_stream_of_binary_noise_gets_one_5xx_per_line,
    invalid_utf8_gets_500,
    a_100kb_line_is_too_long_and_the_rest_of_it_is_discarded,
    a_huge_line_of_many_megabytes_is_one_500,
    the_line_cap_is_exactly_4096_bytes,
    unterminated_quotes_get_500,
    unknown_verbs_get_500,
    missing_arguments_get_501_with_the_usage,
    crlf_line_ends_are_accepted,
    junk_sent_before_the_greeting_is_answered_after_it,
    a_client_hanging_up_mid_line_disturbs_no_one,
];
