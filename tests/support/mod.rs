//! Test helpers, std only: a temporary folder that cleans up on drop, a real
//! server on 127.0.0.1:0, and a raw line client that reads replies the way
//! `nc` shows them.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use p2pshare::server::{Config, RunningServer, Server};

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "p2pshare-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file (creating parent folders) and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&p, content).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A config for a test server: loopback, port 0, fast rescans.
pub fn config(share: &Path) -> Config {
    Config {
        share: share.to_path_buf(),
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        rescan: Duration::from_millis(100),
        ..Config::default()
    }
}

/// Starts a real server sharing `share` on 127.0.0.1:0.
pub fn start(share: &Path) -> RunningServer {
    start_with(config(share))
}

pub fn start_with(config: Config) -> RunningServer {
    Server::bind(config)
        .expect("bind test server")
        .spawn()
        .expect("spawn test server")
}

/// One reply: every line of it, with its final code.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of the last line (after `DDD `).
    pub fn last(&self) -> &str {
        self.lines
            .last()
            .map(|l| &l[4.min(l.len())..])
            .unwrap_or("")
    }

    /// The rows of a 213 table: every line but the header and the count,
    /// split on TAB.
    pub fn rows(&self) -> Vec<Vec<String>> {
        assert_eq!(self.code, 213, "not a table: {:?}", self.lines);
        self.lines[1..self.lines.len() - 1]
            .iter()
            .map(|l| l[4..].split('\t').map(str::to_string).collect())
            .collect()
    }

    /// The first column of a table.
    pub fn names(&self) -> Vec<String> {
        self.rows().into_iter().map(|r| r[0].clone()).collect()
    }

    pub fn header(&self) -> String {
        self.lines[0][4..].to_string()
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A raw control connection, as `nc` would have.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
    pub greeting: String,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut c = Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            greeting: String::new(),
        };
        let g = c.read_reply();
        assert_eq!(g.code, 220, "greeting: {:?}", g.lines);
        c.greeting = g.lines[0].clone();
        c
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a line (LF added).
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Reads one line; None at end of stream.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads lines until one with `DDD ` (code then space).
    pub fn read_reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let line = self
                .read_line()
                .unwrap_or_else(|| panic!("connection closed in the middle of a reply: {lines:?}"));
            let b = line.as_bytes();
            assert!(
                b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit),
                "not a reply line: {line:?}"
            );
            let last = b.len() == 3 || b[3] == b' ';
            lines.push(line.clone());
            if last {
                return Reply {
                    code: line[..3].parse().unwrap(),
                    lines,
                };
            }
            assert_eq!(b[3], b'-', "bad reply line {line:?}");
        }
    }

    /// Sends a line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.read_reply()
    }

    /// Asserts the session still answers.
    pub fn assert_alive(&mut self) {
        let r = self.cmd("NOOP");
        assert_eq!(r.code, 200, "{:?}", r.lines);
    }
}

/// The port and token of a `150 DATA` line.
pub fn data_of(reply: &Reply) -> (u16, String) {
    let line = reply.lines.last().unwrap();
    let mut port = None;
    let mut token = None;
    for w in line.split_whitespace() {
        if let Some(p) = w.strip_prefix("port=") {
            port = p.parse().ok();
        }
        if let Some(t) = w.strip_prefix("token=") {
            token = Some(t.to_string());
        }
    }
    (port.expect("port="), token.expect("token="))
}

/// Opens a data connection and sends the token line.
pub fn data_connect(addr: SocketAddr, port: u16, token: &str) -> TcpStream {
    let mut s = TcpStream::connect((addr.ip(), port)).expect("data connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(format!("{token}\n").as_bytes()).unwrap();
    s
}

/// Reads exactly `n` bytes.
pub fn read_exact_n(s: &mut impl Read, n: u64) -> Vec<u8> {
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf).expect("read data");
    buf
}

/// Downloads a file over TCP on `conn`, opening a new data connection, and
/// returns (150 reply, bytes, final reply).
pub fn download(conn: &mut Conn, addr: SocketAddr, name: &str) -> (Reply, Vec<u8>, Reply) {
    let r150 = conn.cmd(&format!("FileDownload TCP {name}"));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let size: u64 = r150.lines[0][4..]
        .split('\t')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let (port, token) = data_of(&r150);
    let mut d = data_connect(addr, port, &token);
    let bytes = read_exact_n(&mut d, size);
    let done = conn.read_reply();
    (r150, bytes, done)
}

/// Polls `f` until it returns true, up to `limit`.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lowercase hex md5 of bytes.
pub fn md5_hex(b: &[u8]) -> String {
    format!("{:x}", md5::compute(b))
}
