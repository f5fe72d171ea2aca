//! Seeded fuzzing of a live server, std only: thousands of random and
//! mutated request lines (byte flips, truncation, duplication, random
//! UTF-8 and invalid bytes, quotes, over-long lines), each of which must
//! get exactly one well-formed reply (or none, for a blank line) without
//! costing the session; then random and mutated datagrams at a session's
//! UDP data port, after which a normal UDP download still works.
//!
//! What each line must get comes from `grammar.rs`, an oracle written from
//! PROTOCOL.md's grammar apart from the server's parser.
//!
//! The seed is printed; `P2PSHARE_FUZZ_SEED=<seed> cargo test --test server
//! fuzz::` replays a run.

use crate::support::*;

use crate::process::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::grammar::{expect, Expect, Transport};
use p2pshare::server::Config;

const SEED_VAR: &str = "P2PSHARE_FUZZ_SEED";
const SESSIONS: usize = 4;
const LINES_PER_SESSION: usize = 1200;
/// How long any one reply may take.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Valid requests, the starting points of the mutations.
fn seeds() -> Vec<String> {
    let hello_md5 = md5_hex(b"hello\n");
    vec![
        "IndexGet longlist".into(),
        "IndexGet shortlist 2020-01-01 2030-01-01".into(),
        "IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 12:00:00".into(),
        "IndexGet shortlist 1764237600 \"2026-11-27 12:00:00+02:00\"".into(),
        "IndexGet regex *.txt".into(),
        "IndexGet regex \"my docs/*\"".into(),
        "IndexGet regex **/[a-c]?*".into(),
        "FileHash verify a.txt".into(),
        "FileHash verify \"my docs/read me.txt\"".into(),
        "FileHash checkall".into(),
        "FileDownload a.txt".into(),
        "FileDownload TCP big.bin 1000".into(),
        "FileDownload \"my docs/read me.txt\" 3".into(),
        "FileDownload UDP a.txt".into(),
        format!("FileUpload up/new.txt 6 {hello_md5}"),
        format!("FileUpload \"up/with space.txt\" 6 {hello_md5}"),
        "History".into(),
        "History 3".into(),
        "HELP".into(),
        "HELP FileUpload".into(),
        "NOOP".into(),
        "AUTH \"a secret\"".into(),
        "QUIT".into(),
    ]
}

/// Bits that tend to find edge cases.
const SPICE: &[&str] = &[
    "é",
    "日本語",
    "🙂",
    "\u{202e}",
    "\u{0}",
    "\u{feff}",
    "\u{7f}",
    "\"",
    "\\",
    "\\\"",
    "\t",
    "\r",
    " ",
    "*",
    "**",
    "***",
    "[",
    "]",
    "[!",
    "?",
    "..",
    "/",
    "../",
    "./",
    "//",
    "%s%n",
    "-1",
    "0",
    "18446744073709551616",
    "99999999999999999999",
    "1e9",
    "TCP",
    "UDP",
    "\"\"",
    "longlist",
    "shortlist",
    "regex",
    "verify",
    "checkall",
];

fn mutate(rng: &mut Rng, line: &mut Vec<u8>) {
    let pos = |rng: &mut Rng, line: &Vec<u8>| rng.below(line.len() + 1);
    match rng.below(11) {
        0 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] ^= 1 << rng.below(8);
        }
        1 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] = rng.next_u64() as u8;
        }
        2 => {
            let at = pos(rng, line);
            let n = 1 + rng.below(8);
            let bytes = rng.bytes(n);
            line.splice(at..at, bytes);
        }
        3 => {
            let at = pos(rng, line);
            let spice = rng.pick(SPICE).as_bytes().to_vec();
            line.splice(at..at, spice);
        }
        4 if !line.is_empty() => {
            let a = rng.below(line.len());
            let b = (a + 1 + rng.below(8)).min(line.len());
            line.drain(a..b);
        }
        5 => {
            let at = pos(rng, line);
            line.truncate(at);
        }
        6 if !line.is_empty() => {
            let a = rng.below(line.len());
            let b = (a + 1 + rng.below(16)).min(line.len());
            let copy = line[a..b].to_vec();
            let at = pos(rng, line);
            line.splice(at..at, copy);
        }
        7 => {
            for b in line.iter_mut() {
                if rng.one_in(3) {
                    *b = if b.is_ascii_lowercase() {
                        b.to_ascii_uppercase()
                    } else {
                        b.to_ascii_lowercase()
                    };
                }
            }
        }
        8 => {
            let copy = line.clone();
            for _ in 0..rng.below(40) {
                line.push(b' ');
                line.extend_from_slice(&copy);
            }
        }
        9 => {
            let n = 4000 + rng.below(300);
            while line.len() < n {
                line.push(*rng.pick(b"x \"*a/"));
            }
        }
        _ => {
            // Quote a stretch, or leave a quote open.
            let a = pos(rng, line);
            line.insert(a, b'"');
            if rng.one_in(2) {
                let b = a + 1 + rng.below(line.len() - a);
                line.insert(b, b'"');
            }
        }
    }
}

/// A line to send: mostly mutated seeds, sometimes pure noise. Never holds
/// an LF (that would make it two lines).
fn make_line(rng: &mut Rng, seeds: &[String]) -> Vec<u8> {
    let mut line = if rng.one_in(10) {
        let n = rng.below(300);
        rng.bytes(n)
    } else {
        let seed = rng.pick(seeds).as_bytes().to_vec();
        // Half the time the command word stays whole, so the mutations
        // reach the argument checks behind it.
        let keep = if rng.one_in(2) {
            seed.iter().position(|&b| b == b' ').unwrap_or(seed.len())
        } else {
            0
        };
        let (head, tail) = seed.split_at(keep);
        let mut l = tail.to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate(rng, &mut l);
        }
        [head, &l].concat()
    };
    for b in line.iter_mut() {
        if *b == b'\n' {
            *b = b' ';
        }
    }
    line
}

/// A control connection read with a deadline, its replies checked line
/// by line.
struct Session {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    data: Option<TcpStream>,
    /// How many replies of each code (for the summary).
    codes: BTreeMap<u16, usize>,
    /// True once the session answers in FTP's CR LF (after a line with an
    /// FTP verb, which a mutated line may well be).
    crlf: bool,
}

impl Session {
    fn open(addr: SocketAddr) -> Session {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(REPLY_WAIT)).unwrap();
        let mut session = Session {
            addr,
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            data: None,
            codes: BTreeMap::new(),
            crlf: false,
        };
        // The greeting ends with CR LF; the native replies after it with
        // LF until the session speaks FTP.
        session.crlf = true;
        let g = session.reply().expect("greeting");
        assert_eq!(g.code, 220, "{:?}", g.lines);
        session.crlf = false;
        session
    }

    /// Reads one reply and checks its form: every line `DDD-` but the last
    /// `DDD ` (or a bare code), one code throughout, no CR, valid UTF-8.
    /// Lines end with LF until a reply starts with CR LF (the session
    /// speaks FTP from then on), then with CR LF; only then may a line
    /// inside a reply start with a space (RFC 959's multi-line form).
    fn reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            match self.reader.read_until(b'\n', &mut raw) {
                Ok(0) => return Err(format!("connection closed after {lines:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("no reply within {REPLY_WAIT:?}: {e}")),
            }
            if raw.pop() != Some(b'\n') {
                return Err(format!("reply line without LF: {raw:?}"));
            }
            match raw.last() {
                Some(b'\r') if self.crlf || lines.is_empty() => {
                    self.crlf = true;
                    raw.pop();
                }
                _ if self.crlf => return Err(format!("LF without CR after CR LF: {raw:?}")),
                _ => {}
            }
            let line = String::from_utf8(raw).map_err(|e| format!("reply not UTF-8: {e}"))?;
            if line.contains('\r') {
                return Err(format!("CR inside a reply line: {line:?}"));
            }
            if self.crlf && !lines.is_empty() && line.starts_with(' ') {
                lines.push(line);
                continue;
            }
            let b = line.as_bytes();
            if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || b[0] == b'0' {
                return Err(format!("not a reply line: {line:?}"));
            }
            let code: u16 = line[..3].parse().unwrap();
            if !(100..600).contains(&code) {
                return Err(format!("code out of range: {line:?}"));
            }
            if let Some(first) = lines.first() {
                let first: &String = first;
                if first[..3] != line[..3] {
                    return Err(format!("codes differ within a reply: {lines:?} {line:?}"));
                }
            }
            let last = b.len() == 3 || b[3] == b' ';
            if !last && b[3] != b'-' {
                return Err(format!("bad separator: {line:?}"));
            }
            lines.push(line);
            if last {
                *self.codes.entry(code).or_default() += 1;
                return Ok(Reply { code, lines });
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .map_err(|e| format!("send failed: {e}"))
    }

    fn noop(&mut self) -> Result<(), String> {
        self.send(b"NOOP\n")?;
        let r = self.reply()?;
        if r.lines != ["200 ok"] {
            return Err(format!("NOOP got {:?}", r.lines));
        }
        Ok(())
    }

    /// The data connection held for this session, connecting when there
    /// is none.
    fn data(&mut self, r150: &Reply) -> Result<&mut TcpStream, String> {
        if self.data.is_none() {
            let (port, token) = data_of(r150);
            let mut d = TcpStream::connect((self.addr.ip(), port))
                .map_err(|e| format!("data connect: {e}"))?;
            d.set_read_timeout(Some(REPLY_WAIT)).unwrap();
            d.write_all(format!("{token}\n").as_bytes())
                .map_err(|e| format!("token: {e}"))?;
            self.data = Some(d);
        }
        Ok(self.data.as_mut().unwrap())
    }

    /// Sends one line and checks what comes back. Returns false when the
    /// session ended (QUIT).
    fn exchange(&mut self, line: &[u8]) -> Result<bool, String> {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        match expect(line) {
            Expect::Nothing => {
                // No reply: the NOOP behind it is answered first.
                self.send(&bytes)?;
                self.noop()?;
            }
            Expect::Code(code) => {
                self.send(&bytes)?;
                let r = self.reply()?;
                if r.code != code {
                    return Err(format!("expected {code}, got {:?}", r.lines));
                }
            }
            Expect::Bye => {
                self.send(&bytes)?;
                let r = self.reply()?;
                if r.code != 221 {
                    return Err(format!("QUIT got {:?}", r.lines));
                }
                let mut rest = Vec::new();
                let _ = self.reader.read_to_end(&mut rest);
                if !rest.is_empty() {
                    return Err(format!("bytes after 221: {rest:?}"));
                }
                return Ok(false);
            }
            Expect::OneOf(codes) => {
                self.send(&bytes)?;
                let r = self.reply()?;
                if !codes.contains(&r.code) {
                    return Err(format!("expected one of {codes:?}, got {:?}", r.lines));
                }
            }
            Expect::Any => {
                self.send(&bytes)?;
                self.reply()?;
            }
            Expect::Download(transport, offset) => {
                self.send(&bytes)?;
                let r = self.reply()?;
                if r.code == 150 {
                    if r.lines.len() != 2 {
                        return Err(format!("150 of a download is two lines: {:?}", r.lines));
                    }
                    if transport == Transport::Tcp {
                        let size: u64 = r.lines[0][4..]
                            .split('\t')
                            .nth(1)
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| format!("no size in {:?}", r.lines))?;
                        let d = self.data(&r)?;
                        let mut buf = Vec::new();
                        let got = Read::by_ref(d).take(size - offset).read_to_end(&mut buf);
                        if got.is_err() || buf.len() as u64 != size - offset {
                            return Err(format!("download short: {got:?} {}", buf.len()));
                        }
                    }
                    // (UDP: nobody says HELLO, so the server gives up: 425.)
                    let done = self.reply()?;
                    if done.code != 226 {
                        self.data = None;
                        if transport == Transport::Tcp {
                            return Err(format!("download ended {:?}", done.lines));
                        }
                    }
                }
            }
            Expect::Upload(size) => {
                self.send(&bytes)?;
                let r = self.reply()?;
                if r.code == 150 {
                    if size <= 64 * 1024 {
                        let junk = vec![b'z'; size as usize];
                        let d = self.data(&r)?;
                        d.write_all(&junk).map_err(|e| format!("upload: {e}"))?;
                    } else {
                        // Too much to send: hang up. The server says 426,
                        // or 425 when the hang-up reached it before the
                        // transfer began (a connection closed before its
                        // first byte is passed over for the next one).
                        let d = self.data(&r)?;
                        let _ = d.shutdown(Shutdown::Both);
                        self.data = None;
                    }
                    let done = self.reply()?;
                    let hung_up = size > 64 * 1024;
                    if !(matches!(done.code, 226 | 550 | 426) || hung_up && done.code == 425) {
                        return Err(format!("upload ended {:?}", done.lines));
                    }
                    if done.code == 426 {
                        self.data = None;
                    }
                }
            }
        }
        Ok(true)
    }
}

fn fuzz_share(dir: &TempDir) {
    dir.write("a.txt", "hello\n");
    dir.write("my docs/read me.txt", "read me\n");
    dir.write("big.bin", pseudo_random(64 * 1024, 1));
    dir.write("sub/deep/c.log", "c\n");
}

fn random_and_mutated_lines_each_get_one_well_formed_reply() {
    let seed = Rng::seed_from_env(SEED_VAR);
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("fuzz-lines");
    fuzz_share(&dir);
    let server = start_with(Config {
        allow_upload: true,
        data_wait: Duration::from_millis(300),
        data_timeout: Duration::from_secs(2),
        ..config(dir.path())
    });
    let addr = server.addr();
    let seeds = seeds();
    let began = Instant::now();
    let mut sent = 0;
    let mut codes = BTreeMap::new();
    for _ in 0..SESSIONS {
        let mut s = Session::open(addr);
        for i in 0..LINES_PER_SESSION {
            let line = make_line(&mut rng, &seeds);
            sent += 1;
            let fail = |e: String| -> ! {
                panic!(
                    "seed {seed} (replay with {SEED_VAR}={seed}), line {i} of a session: {:?}\n{e}",
                    String::from_utf8_lossy(&line)
                )
            };
            match s.exchange(&line) {
                Ok(true) => {}
                Ok(false) => {
                    for (k, v) in &s.codes {
                        *codes.entry(*k).or_insert(0) += v;
                    }
                    s = Session::open(addr);
                }
                Err(e) => fail(e),
            }
            if i % 50 == 0 {
                s.noop().unwrap_or_else(|e| fail(e));
            }
        }
        s.noop()
            .unwrap_or_else(|e| panic!("seed {seed}: session broken at the end: {e}"));
        for (k, v) in &s.codes {
            *codes.entry(*k).or_insert(0) += v;
        }
    }
    eprintln!(
        "{sent} lines in {:?}; replies by code: {codes:?}",
        began.elapsed()
    );
    // The server still takes new sessions and serves them.
    let mut c = Conn::open(addr);
    let (_, bytes, done) = download(&mut c, addr, "a.txt");
    assert_eq!((bytes.as_slice(), done.code), (&b"hello\n"[..], 226));
    assert!(c.cmd("IndexGet longlist").names().contains(&"a.txt".into()));
}

// ---- UDP ----

/// Datagram header and HELLO layout (src/transfer/frame.rs): version,
/// kind, 8 token bytes, transfer id; HELLO adds offset, length, max data
/// (u64 each) and the payload size (u16), all big-endian.
fn frame(kind: u8, token: &[u8; 8], transfer: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![1, kind];
    v.extend_from_slice(token);
    v.extend_from_slice(&transfer.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn hello(token: &[u8; 8], transfer: u32, offset: u64, len: u64, payload: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(&(offset + len).to_be_bytes());
    body.extend_from_slice(&payload.to_be_bytes());
    frame(1, token, transfer, &body)
}

fn token_bytes(hex: &str) -> [u8; 8] {
    let mut t = [0u8; 8];
    for (i, b) in t.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    t
}

/// A datagram for the fuzzer: noise, or a frame of any kind with the right
/// token (so it gets past the first check) and random fields, mutated.
fn datagram(rng: &mut Rng, token: &[u8; 8], len: u64) -> Vec<u8> {
    let mut d = match rng.below(6) {
        0 => {
            let n = rng.below(1600);
            rng.bytes(n)
        }
        1 => hello(
            token,
            rng.next_u64() as u32,
            rng.next_u64() % (len + 2),
            rng.next_u64() % (len + 2),
            rng.below(70_000) as u16,
        ),
        2 => {
            // ACK: delivered, max data, delay, then ranges.
            let mut body = Vec::new();
            body.extend_from_slice(&(rng.next_u64() % (len + 2)).to_be_bytes());
            body.extend_from_slice(&rng.next_u64().to_be_bytes());
            body.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
            let n = rng.below(70);
            body.push(n as u8);
            for _ in 0..n {
                body.extend_from_slice(&(rng.next_u64() % (len * 2 + 2)).to_be_bytes());
                body.extend_from_slice(&(rng.next_u64() % (len * 2 + 2)).to_be_bytes());
            }
            frame(3, token, rng.next_u64() as u32, &body)
        }
        3 => {
            let kind = 4 + rng.below(3) as u8;
            let n = rng.below(3) * 8;
            let body = rng.bytes(n);
            frame(kind, token, rng.next_u64() as u32, &body)
        }
        4 => {
            let mut body = rng.bytes(19);
            let n = rng.below(1400);
            body.extend(rng.bytes(n));
            frame(2, token, rng.next_u64() as u32, &body)
        }
        _ => {
            let kind = rng.below(256) as u8;
            let n = rng.below(100);
            frame(kind, token, rng.next_u64() as u32, &rng.bytes(n))
        }
    };
    // Then a mutation or two.
    for _ in 0..rng.below(3) {
        if d.is_empty() {
            break;
        }
        let i = rng.below(d.len());
        match rng.below(3) {
            0 => d[i] ^= 1 << rng.below(8),
            1 => d.truncate(i),
            _ => d[i] = rng.next_u64() as u8,
        }
    }
    d
}

fn random_and_mutated_datagrams_leave_udp_downloads_working() {
    let seed = Rng::seed_from_env(SEED_VAR);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let content = pseudo_random(300_000, 2);
    let server = Share::new("fuzz-udp")
        .file("big.bin", &content)
        .with(|c| Config {
            data_wait: Duration::from_millis(500),
            udp_silence: Duration::from_millis(500),
            data_timeout: Duration::from_secs(2),
            ..c
        })
        .serve();
    let addr = server.addr();
    let mut c = Conn::open(addr);
    let r = c.cmd("FileDownload UDP big.bin");
    assert_eq!(r.code, 150, "{:?}", r.lines);
    assert!(
        r.lines[1].starts_with("150 DATA udp port="),
        "{:?}",
        r.lines
    );
    let (port, token) = data_of(&r);
    let to = SocketAddr::new(addr.ip(), port);
    let tb = token_bytes(&token);
    let len = content.len() as u64;
    let near = UdpSocket::bind("127.0.0.1:0").unwrap();
    let far = UdpSocket::bind("127.0.0.2:0").ok();
    near.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 70_000];
    for i in 0..3000 {
        let d = datagram(&mut rng, &tb, len);
        let from = match &far {
            Some(f) if i % 3 == 0 => f,
            _ => &near,
        };
        let _ = from.send_to(&d, to);
        // Whatever the server sends back is read and dropped.
        while near.recv_from(&mut buf).is_ok() {}
    }
    // The transfer ends one way or another, and the session goes on.
    let done = c.read_reply();
    assert!(
        matches!(done.code, 226 | 425 | 426 | 451),
        "seed {seed}: {:?}",
        done.lines
    );
    c.assert_alive();

    // A normal UDP download from another session, by the real client.
    let local = TempDir::new("fuzz-udp-client");
    let r = run(
        &client_args(addr, local.path(), &["-c", "FileDownload UDP big.bin"]),
        "",
    );
    assert_eq!(r.code(), Some(0), "seed {seed}: {r}");
    assert!(std::fs::read(local.path().join("big.bin")).unwrap() == content);
    // And the fuzzed port still serves its own session over UDP.
    let r = c.cmd("FileDownload UDP big.bin");
    assert_eq!(r.code, 150, "{:?}", r.lines);
    assert_eq!(data_of(&r), (port, token));
    match c.read_reply().code {
        425 => {}
        other => panic!("seed {seed}: no receiver, yet {other}"),
    }
}

cases![
    random_and_mutated_lines_each_get_one_well_formed_reply,
    random_and_mutated_datagrams_leave_udp_downloads_working,
];
