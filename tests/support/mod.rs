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

pub mod relay;

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

/// Starts a real server with `config` and waits for its first scan and
/// the hashing after it, which reads each file for its type (the port
/// opens before both; see [`start_scanning`]).
pub fn start_with(config: Config) -> RunningServer {
    let server = Server::bind(config).expect("bind test server");
    let share = server.share().clone();
    let running = server.spawn().expect("spawn test server");
    assert!(
        wait_until(Duration::from_secs(30), || share.scanned()
            && share.hashed()),
        "the first scan and hashing did not end"
    );
    running
}

/// Starts a real server with `config` without waiting for its first
/// scan; returns its share too, to see when the scan is done.
pub fn start_scanning(config: Config) -> (RunningServer, std::sync::Arc<p2pshare::share::Share>) {
    let server = Server::bind(config).expect("bind test server");
    let share = server.share().clone();
    (server.spawn().expect("spawn test server"), share)
}

/// A share to test against, built in steps: its files, then its config,
/// then a server on 127.0.0.1:0 (`serve`), or only the folder (`folder`,
/// for the binary as a child process).
///
/// ```ignore
/// let Served { dir, server } = Share::new("tag")
///     .file("a.txt", "a\n")
///     .with(|c| Config { allow_upload: true, ..c })
///     .serve();
/// ```
pub struct Share {
    dir: TempDir,
    config: Config,
}

impl Share {
    /// An empty share in a fresh temporary folder, with the test config
    /// ([`config`]).
    pub fn new(tag: &str) -> Share {
        let dir = TempDir::new(tag);
        let config = config(dir.path());
        Share { dir, config }
    }

    /// Adds a file (parent folders too).
    pub fn file(self, rel: &str, content: impl AsRef<[u8]>) -> Share {
        self.dir.write(rel, content);
        self
    }

    /// Changes the server's config, from the test config.
    pub fn with(mut self, change: impl FnOnce(Config) -> Config) -> Share {
        self.config = change(self.config);
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Only the folder, for a server or client started some other way.
    pub fn folder(self) -> TempDir {
        self.dir
    }

    /// Starts a real server on the share.
    pub fn serve(self) -> Served {
        let server = start_with(self.config);
        Served {
            server,
            dir: self.dir,
        }
    }
}

/// A running server and its share. The server stops before the folder is
/// removed (fields drop in order; so do the bindings of
/// `let Served { dir, server } = ...`, the last first).
pub struct Served {
    pub server: RunningServer,
    pub dir: TempDir,
}

impl Served {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A new control connection, greeted.
    pub fn conn(&self) -> Conn {
        Conn::open(self.server.addr())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
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
        // The greeting ends with CR LF (the replies after it with LF).
        let g = g.lines[0].strip_suffix('\r');
        c.greeting = g.expect("a greeting ending with CR LF").to_string();
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
    close_data(d);
    (r150, bytes, done)
}

/// Closes a data connection and waits (up to 5 s) until the server's end
/// has taken the close in. A client that closes its data connection and
/// asks for the next download at once races its close: when the request
/// is read first, the server still holds the connection as open and
/// sends into it (PROTOCOL.md, "Closed-connection detection").
pub fn close_data(d: TcpStream) {
    let (Ok(mine), Ok(theirs)) = (d.local_addr(), d.peer_addr()) else {
        return;
    };
    drop(d);
    // /proc/net/tcp: the server's end, still ESTABLISHED (01)?
    let open = || {
        let key = |a: SocketAddr| match a {
            SocketAddr::V4(a) => format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(a.ip().octets()),
                a.port()
            ),
            SocketAddr::V6(_) => String::new(),
        };
        let (local, remote) = (key(theirs), key(mine));
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == local && f[2] == remote && f[3] == "01"
            })
    };
    wait_until(Duration::from_secs(5), || !open());
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

/// The time `secs` seconds after the Unix epoch.
pub fn unix(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

/// `file --mime-type -b <path>`, or None when `file` is not installed.
pub fn file_mime(path: &Path) -> Option<String> {
    let out = std::process::Command::new("file")
        .args(["--mime-type", "-b"])
        .arg(path)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---- Transfers over a kept data connection, and file tricks ----

/// A word as a client types it (PROTOCOL.md section 1): bare when it
/// needs nothing, else double-quoted with `\\`, `\"`, `\t`, `\n`, `\r` for
/// a backslash, quote, TAB, LF and CR. Written apart from the crate's own
/// codec, so that tests check one against the other.
pub fn quote(name: &str) -> String {
    let bare = !name.is_empty()
        && !name
            .chars()
            .any(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '"' | '\\' | '\0'));
    if bare {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Relative paths with every character a name may hold that needs care on
/// the wire or on a screen: space, TAB, LF, CR, backslash, quotes, glob
/// characters, a leading `-`, a trailing space, non-ASCII and emoji, an
/// escape sequence, a 200-byte name and deep paths. Each is a different
/// file on Linux.
pub fn troublesome_names() -> Vec<String> {
    vec![
        "two words.txt".into(),
        "tab\there.txt".into(),
        "line\nfeed.txt".into(),
        "carriage\rreturn.txt".into(),
        "back\\slash.txt".into(),
        "ends with backslash\\".into(),
        "q\"uote.txt".into(),
        "\"quoted\".txt".into(),
        "star*.txt".into(),
        "question?.txt".into(),
        "[br].txt".into(),
        "b.txt".into(),
        "-rf".into(),
        "trailing space ".into(),
        "caf\u{e9} na\u{ef}ve.txt".into(),
        "emoji \u{1f600}\u{1f4c1}.txt".into(),
        "esc\u{1b}[31mred.txt".into(),
        "TCP".into(),
        "UDP".into(),
        "123".into(),
        "x".repeat(196) + ".bin",
        "deep/er/and/deeper/still/file.txt".into(),
        "dir with space/sub\tdir/f\\g \"h\".txt".into(),
    ]
}

/// Writes each of `names` below `dir`, each with content of its own.
pub fn write_named_files(dir: &TempDir, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        dir.write(name, format!("file {i}: {name:?}\n").repeat(i + 1));
    }
}

/// A table field pasted into a request as a person would: bare when it
/// holds no space and does not start with a quote, else in quotes with
/// `\"` for each quote inside.
pub fn pasted(field: &str) -> String {
    if field.contains(' ') || field.starts_with('"') || field.is_empty() {
        format!("\"{}\"", field.replace('"', "\\\""))
    } else {
        field.to_string()
    }
}

/// Undoes the table escapes (`\t`, `\n`, `\r`, `\\`) of one field; any
/// other backslash stays. Written apart from the crate's codec.
pub fn unescaped(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// The fields of the first `150-` line of a download: name, size,
/// timestamp, md5.
pub fn row_of_150(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.code, 150, "{:?}", reply.lines);
    assert_eq!(reply.lines.len(), 2, "150 is two lines: {:?}", reply.lines);
    let first = &reply.lines[0];
    assert!(first.starts_with("150-"), "{first:?}");
    first[4..].split('\t').map(str::to_string).collect()
}

/// A control connection that keeps its data connection open between
/// transfers, as a client reusing the session's data channel does.
pub struct DataSession {
    pub conn: Conn,
    pub addr: SocketAddr,
    pub data: Option<TcpStream>,
}

/// What one `FileDownload` gave.
#[derive(Debug)]
pub struct Fetched {
    pub r150: Reply,
    pub bytes: Vec<u8>,
    pub done: Reply,
}

impl DataSession {
    pub fn open(addr: SocketAddr) -> DataSession {
        DataSession {
            conn: Conn::open(addr),
            addr,
            data: None,
        }
    }

    /// `FileDownload TCP <name> [<offset>]`: on 150 reads `size - offset`
    /// bytes from the held data connection (connecting with the token when
    /// there is none) and then the final reply. Any other first reply is
    /// returned as the error. A data connection the server closed early is
    /// forgotten, and the bytes that did arrive are returned.
    pub fn fetch(&mut self, name: &str, offset: Option<u64>) -> Result<Fetched, Reply> {
        let mut line = format!("FileDownload TCP {}", quote(name));
        if let Some(o) = offset {
            line.push_str(&format!(" {o}"));
        }
        let r150 = self.conn.cmd(&line);
        if r150.code != 150 {
            return Err(r150);
        }
        let size: u64 = row_of_150(&r150)[1].parse().expect("size in 150");
        let want = size - offset.unwrap_or(0);
        if self.data.is_none() {
            let (port, token) = data_of(&r150);
            self.data = Some(data_connect(self.addr, port, &token));
        }
        let data = self.data.as_mut().unwrap();
        let mut bytes = Vec::with_capacity(want as usize);
        let got = Read::by_ref(data).take(want).read_to_end(&mut bytes);
        let done = self.conn.read_reply();
        // After a failed transfer the server drops the data connection.
        if got.is_err() || (bytes.len() as u64) < want || done.code != 226 {
            self.data = None;
        }
        Ok(Fetched { r150, bytes, done })
    }
}

/// Deterministic pseudo-random bytes (xorshift), so content is binary and
/// every file is different.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Sets a file's modification time.
pub fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .expect("set mtime");
}

/// A time from RFC 3339 text.
pub fn time(rfc3339: &str) -> std::time::SystemTime {
    humantime::parse_rfc3339(rfc3339).expect("RFC 3339 time")
}

/// Replaces a file's content in place with `content` of the same length,
/// then puts its mtime back, so size, mtime and inode (what the md5 cache
/// is keyed by) are all as before while the bytes are not.
pub fn rewrite_keeping_key(path: &Path, content: &[u8]) {
    let before = fs::metadata(path).expect("stat");
    assert_eq!(before.len(), content.len() as u64, "same size needed");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for rewrite");
    f.write_all(content).expect("rewrite");
    f.set_modified(before.modified().unwrap()).expect("mtime");
    drop(f);
    let after = fs::metadata(path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        )
    );
}

// ---- Uploads, limits and attack tests ----

/// Every entry below `dir` (files, folders and links, hidden ones too),
/// relative and `/`-separated, folders with a trailing `/`, sorted; the
/// state folder `.p2pshare` at the top is left out. Links are not
/// followed. For "nothing was written" checks.
pub fn entries_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".p2pshare" {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// What a raw `FileUpload` gave: the first reply and, after a 150, the
/// final one.
#[derive(Debug)]
pub struct Uploaded {
    pub first: Reply,
    pub last: Option<Reply>,
}

impl Uploaded {
    /// The code that ended the upload: the final reply's, else the first's.
    pub fn code(&self) -> u16 {
        self.last.as_ref().map_or(self.first.code, |r| r.code)
    }

    pub fn text(&self) -> String {
        self.last.as_ref().unwrap_or(&self.first).text()
    }
}

/// `FileUpload <name> <len> <md5>` over `conn`: on 150 opens a new data
/// connection, sends `content` and reads the final reply. The md5 sent is
/// `md5` when given, else the content's own.
pub fn upload_raw(
    conn: &mut Conn,
    addr: SocketAddr,
    name: &str,
    content: &[u8],
    md5: Option<&str>,
) -> Uploaded {
    let md5 = md5.map_or_else(|| md5_hex(content), str::to_string);
    let first = conn.cmd(&format!(
        "FileUpload {} {} {md5}",
        quote(name),
        content.len()
    ));
    if first.code != 150 {
        return Uploaded { first, last: None };
    }
    assert_eq!(
        first.lines.len(),
        1,
        "upload 150 is one line: {:?}",
        first.lines
    );
    assert!(
        first.lines[0].starts_with("150 DATA tcp port="),
        "{:?}",
        first.lines
    );
    let (port, token) = data_of(&first);
    let mut d = data_connect(addr, port, &token);
    // The server may stop reading (a write error on its side): a failed
    // send is the server's answer to read, not the test's failure.
    let _ = d.write_all(content);
    let last = conn.read_reply();
    Uploaded {
        first,
        last: Some(last),
    }
}

/// A small seeded pseudo-random generator (xorshift64*), so a test that
/// draws random input can print its seed and be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A seed from the environment variable `var` when set (to replay a
    /// failure), else from the clock; printed either way.
    pub fn seed_from_env(var: &str) -> u64 {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("seed: {seed} (replay with {var}={seed})");
        seed
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

impl Conn {
    /// True when nothing arrives on the control connection within `wait`
    /// (no reply sent early).
    pub fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        let quiet = match self.stream.peek(&mut b) {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        quiet
    }

    /// Reads until the server closes the connection, returning what came
    /// (panics if it stays open past the read timeout).
    pub fn read_to_close(&mut self) -> String {
        let mut rest = String::new();
        match std::io::Read::read_to_string(&mut self.reader, &mut rest) {
            Ok(_) => rest,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("connection not closed: {e} (read so far {rest:?})"),
        }
    }
}

/// Runs a control session from the address 127.0.0.2 with `nc -s`
/// (std cannot choose the source address of a TCP connection): sends
/// `input`, closes its sending side, and returns what the server sent
/// until it closed. Err says why it cannot be done here (no nc, an nc
/// without `-s`, 127.0.0.2 not on loopback).
pub fn nc_from_127_0_0_2(addr: SocketAddr, input: &str) -> Result<String, String> {
    use std::process::{Command, Stdio};
    if std::net::UdpSocket::bind("127.0.0.2:0").is_err() {
        return Err("127.0.0.2 is not a local address here".into());
    }
    let mut nc = Command::new("nc")
        .args([
            "-s",
            "127.0.0.2",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nc is not installed ({e})"))?;
    let mut stdin = nc.stdin.take().expect("nc stdin");
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let ended = wait_until(Duration::from_secs(20), || {
        matches!(nc.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = nc.kill();
    }
    let out = nc.wait_with_output().map_err(|e| e.to_string())?;
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    if !got.starts_with("220 ") {
        return Err(format!(
            "nc -s 127.0.0.2 does not work here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(got)
}

// ---- What the server's side of a loopback connection has done ----

/// One IPv4 TCP socket of this network namespace, from /proc/net/tcp.
struct TcpSocket {
    local: SocketAddr,
    remote: SocketAddr,
    /// The kernel's state number: 1 established, 10 listening.
    state: u8,
    /// Bytes received and not yet read; for a listener, the connections
    /// waiting to be accepted.
    rx_queue: u64,
}

const TCP_ESTABLISHED: u8 = 1;
const TCP_LISTEN: u8 = 10;

/// The IPv4 TCP sockets of this network namespace.
fn tcp_sockets() -> Vec<TcpSocket> {
    let addr = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        // The address as the kernel holds it, printed as a host u32.
        let ip = u32::from_str_radix(ip, 16).ok()?.to_le_bytes();
        Some(SocketAddr::from((ip, u16::from_str_radix(port, 16).ok()?)))
    };
    let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(TcpSocket {
                local: addr(f.get(1)?)?,
                remote: addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                rx_queue: u64::from_str_radix(f.get(4)?.split_once(':')?.1, 16).ok()?,
            })
        })
        .collect()
}

/// True once the server has accepted `client` (an IPv4 loopback
/// connection) and read everything sent on it so far, or closed it: its
/// listener has no connection waiting, and its side of `client` no unread
/// byte, if it is still there.
pub fn server_read_all(client: &TcpStream) -> bool {
    let (Ok(me), Ok(server)) = (client.local_addr(), client.peer_addr()) else {
        // No longer connected: the server has closed it (reset).
        return true;
    };
    let sockets = tcp_sockets();
    let nothing_waits = sockets
        .iter()
        .filter(|s| s.state == TCP_LISTEN && s.local.port() == server.port())
        .all(|s| s.rx_queue == 0);
    let read = sockets
        .iter()
        .filter(|s| s.local == server && s.remote == me)
        .all(|s| s.rx_queue == 0);
    nothing_waits && read
}

/// True once the server's side of the connection between `server` and
/// `client` (since closed by the client) has seen the close: it is no
/// longer established, or gone.
pub fn server_saw_close(server: SocketAddr, client: SocketAddr) -> bool {
    !tcp_sockets()
        .iter()
        .any(|s| s.local == server && s.remote == client && s.state == TCP_ESTABLISHED)
}

/// True once no connection to `server`'s port is held by the server
/// (established or closing), only its listener.
pub fn server_holds_none(server: SocketAddr) -> bool {
    !tcp_sockets()
        .iter()
        .any(|s| s.local == server && s.state != TCP_LISTEN)
}

/// `n` consecutive ports free for TCP and UDP on 127.0.0.1 a moment ago,
/// below the kernel's ephemeral range: no other test's connection or
/// port-0 listener is ever given one of them, so the range stays this
/// test's (an ephemeral range would be shared with every test running
/// beside it, and a check that the server gave its ports back could see
/// another test's connection there).
pub fn free_port_range(n: u16) -> (u16, u16) {
    let ephemeral_lo: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (first, last) = (10_000u16, ephemeral_lo.saturating_sub(n));
    assert!(
        first < last,
        "no ports below the ephemeral range {ephemeral_lo}"
    );
    // A start of its own for each call, so that tests running at once
    // rarely probe the same ports.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(call.wrapping_mul(104_729));
    let span = u32::from(last - first);
    for i in 0..200u32 {
        let lo = first + ((seed.wrapping_add(i.wrapping_mul(n.into()) * 13)) % span) as u16;
        let hi = lo + n - 1;
        let all_free = (lo..=hi).all(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if all_free {
            return (lo, hi);
        }
    }
    panic!("no {n} free consecutive ports");
}

/// Runs an outside program (a real client: curl, wget, lftp, ...) to its
/// end; a panic naming it when it is not installed.
pub fn tool(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not installed: {e}"))
}

/// The standard output of a program that succeeded; a panic with its
/// status and standard error when it did not.
pub fn tool_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
