//! `p2pshare serve --stdio` (PROTOCOL.md, "The stdio session" and "The
//! inline data mode"): the real binary as a child, its stdin and stdout
//! the control stream, as ssh runs it on the far side:
//!
//! ```text
//! > FileDownload a.txt
//! < 150-a.txt<TAB>5<TAB>2026-11-26T09:00:00Z<TAB><md5>
//! < 150 DATA inline bytes=5
//!   (5 raw bytes on stdout)
//! < 226 a.txt 5 bytes md5=<md5>
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{bin, LIMIT};
use crate::support::*;
use p2pshare::proof::{greeting_nonce, split_mac, Nonce, Proofs, SessionKey};

/// A `serve --stdio` child: what it writes on stdout read as a client
/// reads the stream (lines, then raw bytes where a 150 announced them),
/// stderr collected apart. Killed when dropped.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    chunks: Receiver<Vec<u8>>,
    /// Read from stdout and not taken yet.
    got: Vec<u8>,
    /// stdout ended.
    ended: bool,
    err: Arc<Mutex<Vec<u8>>>,
    greeting: String,
}

impl Peer {
    /// `p2pshare serve --stdio --share SHARE ARGS`, its greeting read.
    fn start(share: &std::path::Path, args: &[&str]) -> Peer {
        let mut child = Command::new(bin())
            .args(["serve", "--stdio", "--share"])
            .arg(share)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start p2pshare serve --stdio");
        // Bounded: a test that stops reading holds the server back, as a
        // client that stops reading does.
        let (tx, chunks) = mpsc::sync_channel(2);
        let mut out = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        let err = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = child.stderr.take().unwrap();
        let into = err.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    return;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut p = Peer {
            stdin: child.stdin.take(),
            child,
            chunks,
            got: Vec::new(),
            ended: false,
            err,
            greeting: String::new(),
        };
        let g = p.reply();
        assert_eq!(g.code, 220, "greeting: {:?}", g.lines);
        p.greeting = g.lines[0]
            .strip_suffix('\r')
            .expect("a greeting ending with CR LF")
            .to_string();
        p
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to stdin");
        stdin.flush().unwrap();
    }

    fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Waits until `n` bytes are at hand (or stdout ended); false when
    /// neither happened within `limit`.
    fn fill(&mut self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.got.len() < n && !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.got.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }

    /// Exactly `n` raw bytes of stdout.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        assert!(self.fill(n, LIMIT), "{n} bytes did not come in time");
        assert!(
            self.got.len() >= n,
            "stdout ended after {} of {n} bytes",
            self.got.len()
        );
        self.got.drain(..n).collect()
    }

    /// One line of stdout (without its LF); None once stdout ended.
    fn line(&mut self) -> Option<String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(i) = self.got.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.got.drain(..=i).collect();
                let text = String::from_utf8(line[..i].to_vec()).expect("a UTF-8 line");
                return Some(text);
            }
            if self.ended {
                assert!(
                    self.got.is_empty(),
                    "stdout ended inside a line: {:?}",
                    self.got
                );
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no line within {LIMIT:?}; {}",
                self.stderr()
            );
            self.fill(self.got.len() + 1, left);
        }
    }

    /// One whole reply; every line must be a reply line.
    fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let line = self
                .line()
                .unwrap_or_else(|| panic!("stdout ended inside a reply: {lines:?}"));
            let b = line.as_bytes();
            assert!(
                b.len() >= 4
                    && b[..3].iter().all(u8::is_ascii_digit)
                    && matches!(b[3], b' ' | b'-'),
                "not a reply line on stdout: {line:?}"
            );
            lines.push(line.clone());
            if b[3] == b' ' {
                return Reply {
                    code: line[..3].parse().unwrap(),
                    lines,
                };
            }
        }
    }

    fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// A download of `word` from `offset`: its 150, the inline bytes it
    /// announced, and its final reply.
    fn download(&mut self, word: &str, offset: Option<u64>) -> (Reply, Vec<u8>, Reply) {
        let line = match offset {
            Some(o) => format!("FileDownload {word} {o}"),
            None => format!("FileDownload {word}"),
        };
        let r150 = self.cmd(&line);
        assert_eq!(r150.code, 150, "{line}: {:?}", r150.lines);
        let n = inline_bytes(&r150);
        let bytes = self.bytes(n as usize);
        (r150, bytes, self.reply())
    }

    /// Waits for the child to end by itself.
    fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve --stdio did not end; {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything left on stdout once the child ended.
    fn rest(&mut self) -> Vec<u8> {
        assert!(self.fill(usize::MAX, LIMIT), "stdout did not end");
        std::mem::take(&mut self.got)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// N of a `150 DATA inline bytes=N` line, the last of `r`.
fn inline_bytes(r: &Reply) -> u64 {
    let last = r.lines.last().unwrap();
    let n = last
        .trim_end_matches('\r')
        .strip_prefix("150 DATA inline bytes=")
        .unwrap_or_else(|| panic!("not an inline data line: {last:?}"));
    n.parse().expect("a byte count")
}

fn greeting_commands_and_history_rows_named_stdio() {
    let share = TempDir::new("stdio-greet");
    share.write("a.txt", "hello");
    let mut p = Peer::start(share.path(), &[]);
    assert!(p.greeting.starts_with("220 p2pshare "), "{}", p.greeting);
    assert!(p.greeting.contains("share-id="), "{}", p.greeting);
    assert_eq!(p.cmd("NOOP").lines, ["200 ok"]);
    let help = p.cmd("HELP FileDownload");
    assert_eq!(
        help.lines,
        ["214 usage: FileDownload [TCP|UDP] <name> [<offset>]"]
    );
    let verify = p.cmd("FileHash verify a.txt");
    assert_eq!(verify.rows()[0][1], md5_hex(b"hello"));
    let history = p.cmd("History 3");
    let rows = history.rows();
    assert_eq!(rows.len(), 3, "{:?}", history.lines);
    for row in &rows {
        assert_eq!(row[1], "in");
        assert_eq!(row[2], "stdio", "the peer of a stdio session: {row:?}");
    }
    assert_eq!(rows[2][3..], ["FileHash verify a.txt", "213"]);
    assert_eq!(p.cmd("QUIT").lines, ["221 bye"]);
    assert_eq!(p.exit().code(), Some(0));
    assert!(p.rest().is_empty(), "nothing after 221");
}

fn every_hard_name_lists_and_downloads_inline() {
    let share = TempDir::new("stdio-names");
    let names = troublesome_names();
    write_named_files(&share, &names);
    let mut p = Peer::start(share.path(), &[]);
    let list = p.cmd("IndexGet longlist");
    let fields = list.names();
    let listed: BTreeSet<String> = fields.iter().map(|f| unescaped(f)).collect();
    let want: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(listed, want, "every name, once");
    for field in &fields {
        let name = unescaped(field);
        let (r150, bytes, done) = p.download(&quote(&name), None);
        assert_eq!(row_of_150(&r150)[0], *field);
        let want = fs::read(share.path().join(&name)).unwrap();
        assert_eq!(bytes, want, "the bytes of {name:?}");
        assert_eq!(done.code, 226, "{name:?}: {:?}", done.lines);
    }
    assert_eq!(p.cmd("NOOP").code, 200);
}

fn a_1_mib_download_comes_inline_whole_and_resumes_by_offset() {
    let share = TempDir::new("stdio-big");
    let content = pseudo_random(1 << 20, 21);
    share.write("big.bin", &content);
    share.write("empty.txt", "");
    let md5 = md5_hex(&content);
    let mut p = Peer::start(share.path(), &[]);
    let (r150, bytes, done) = p.download("big.bin", None);
    let row = row_of_150(&r150);
    assert_eq!(row[0], "big.bin");
    assert_eq!(row[1], "1048576");
    assert_eq!(row[3], md5);
    assert_eq!(r150.lines[1], "150 DATA inline bytes=1048576");
    assert_eq!(md5_hex(&bytes), md5, "the bytes read inline");
    assert_eq!(done.lines, [format!("226 big.bin 1048576 bytes md5={md5}")]);
    // Resumed: the rest from the offset on; the md5 is the whole file's.
    let (r150, bytes, done) = p.download("big.bin", Some(1000));
    assert_eq!(r150.lines[1], "150 DATA inline bytes=1047576");
    assert_eq!(bytes, content[1000..]);
    assert_eq!(done.code, 226, "{:?}", done.lines);
    assert_eq!(row_of_150(&r150)[3], md5);
    // At the end: nothing to send; past it: 501, and nothing inline.
    let (r150, bytes, done) = p.download("TCP big.bin", Some(1 << 20));
    assert_eq!(r150.lines[1], "150 DATA inline bytes=0");
    assert!(bytes.is_empty());
    assert_eq!(done.code, 226);
    let past = p.cmd("FileDownload big.bin 1048577");
    assert_eq!(past.code, 501, "{:?}", past.lines);
    let (_, bytes, done) = p.download("empty.txt", None);
    assert!(bytes.is_empty());
    assert_eq!(done.code, 226);
    assert_eq!(p.cmd("FileDownload nothere.txt").code, 550);
    // Pipelined: both downloads' lines and bytes in order.
    p.send("FileDownload big.bin 1048000\nFileDownload empty.txt");
    for want in [&content[1_048_000..], &[][..]] {
        let r150 = p.reply();
        let bytes = p.bytes(inline_bytes(&r150) as usize);
        assert_eq!(bytes, want);
        assert_eq!(p.reply().code, 226);
    }
    assert_eq!(p.cmd("NOOP").code, 200, "the stream is in step");
}

fn a_file_that_shrinks_while_sent_still_gives_the_bytes_promised_then_451() {
    let share = TempDir::new("stdio-shrink");
    let content = pseudo_random(8 << 20, 5);
    let path = share.write("big.bin", &content);
    let mut p = Peer::start(share.path(), &[]);
    p.send("FileDownload big.bin");
    let r150 = p.reply();
    let n = inline_bytes(&r150) as usize;
    assert_eq!(n, content.len());
    // Unread, the pipe holds the server at its first chunks: the file
    // shrinks to nothing before it reads on.
    fs::write(&path, b"").unwrap();
    let bytes = p.bytes(n);
    assert_eq!(bytes.len(), n, "the count the 150 promised");
    assert_ne!(md5_hex(&bytes), md5_hex(&content));
    let done = p.reply();
    assert_eq!(
        done.lines,
        ["451 big.bin changed while it was being sent; try again"]
    );
    assert_eq!(p.cmd("NOOP").code, 200, "the stream is in step");
}

fn an_upload_comes_inline_and_is_stored_under_its_name() {
    let share = TempDir::new("stdio-up");
    share.write("have.txt", "have");
    let mut p = Peer::start(share.path(), &["--allow-upload"]);
    let name = "new dir/up \"load\"\t\u{1f600}.bin";
    let content = pseudo_random(300_000, 9);
    let md5 = md5_hex(&content);
    let r = p.cmd(&format!(
        "FileUpload {} {} {md5}",
        quote(name),
        content.len()
    ));
    assert_eq!(
        r.lines,
        [format!("150 DATA inline bytes={}", content.len())]
    );
    // The bytes, and the next request in the same write.
    let mut sent = content.clone();
    sent.extend_from_slice(b"NOOP\n");
    p.send_raw(&sent);
    let done = p.reply();
    assert_eq!(
        done.lines,
        [format!("226 stored {}", name.replace('\t', "\\t"))]
    );
    assert_eq!(p.reply().lines, ["200 ok"], "the stream is in step");
    assert_eq!(fs::read(share.path().join(name)).unwrap(), content);
    // The same again: nothing is sent. Other content: refused before any
    // byte. A wrong md5: the bytes are taken, nothing is stored.
    let again = p.cmd(&format!(
        "FileUpload {} {} {md5}",
        quote(name),
        content.len()
    ));
    assert_eq!(again.code, 226, "{:?}", again.lines);
    let other = p.cmd(&format!("FileUpload have.txt 3 {}", md5_hex(b"abc")));
    assert_eq!(other.code, 553, "{:?}", other.lines);
    let wrong = p.cmd(&format!("FileUpload bad.txt 3 {}", md5_hex(b"abd")));
    assert_eq!(wrong.lines, ["150 DATA inline bytes=3"]);
    p.send_raw(b"abc");
    assert_eq!(p.reply().code, 550);
    assert!(!share.path().join("bad.txt").exists());
    let empty = p.cmd(&format!("FileUpload empty.txt 0 {}", md5_hex(b"")));
    assert_eq!(empty.lines, ["150 DATA inline bytes=0"]);
    assert_eq!(p.reply().lines, ["226 stored empty.txt"]);
    assert_eq!(p.cmd("NOOP").code, 200);
    assert_eq!(
        entries_below(share.path())
            .iter()
            .filter(|e| e.contains("p2pshare-up"))
            .count(),
        0,
        "no temporary file left: {:?}",
        entries_below(share.path())
    );
    // Without --allow-upload: refused, nothing inline.
    let closed = TempDir::new("stdio-up-off");
    let mut p = Peer::start(closed.path(), &[]);
    let r = p.cmd(&format!("FileUpload x.txt 3 {}", md5_hex(b"abc")));
    assert_eq!(r.lines, ["550 uploads are disabled on this peer"]);
    assert_eq!(p.cmd("NOOP").code, 200);
}

fn an_upload_that_stops_midway_is_426_and_the_session_closes() {
    let share = TempDir::new("stdio-up-stall");
    let mut p = Peer::start(share.path(), &["--allow-upload", "--data-timeout", "1s"]);
    let r = p.cmd(&format!(
        "FileUpload half.bin 10 {}",
        md5_hex(b"0123456789")
    ));
    assert_eq!(r.lines, ["150 DATA inline bytes=10"]);
    p.send_raw(b"01234");
    let done = p.reply();
    assert_eq!(
        done.lines,
        ["426 upload broken after 5 of 10 bytes (nothing came for 1s); nothing stored; closing the session"]
    );
    assert_eq!(p.exit().code(), Some(0));
    assert!(p.rest().is_empty());
    assert!(entries_below(share.path())
        .iter()
        .all(|e| !e.contains("half.bin")));
}

fn udp_and_passive_mode_are_refused_and_the_session_goes_on() {
    let share = TempDir::new("stdio-udp");
    share.write("a.txt", "hello");
    share.write("lines.txt", "a\nb\n");
    let mut p = Peer::start(share.path(), &[]);
    let r = p.cmd("FileDownload UDP a.txt");
    assert_eq!(r.code, 550, "{:?}", r.lines);
    assert!(
        r.last()
            .starts_with("UDP is not available over a stdio session")
            && r.last().contains("FileDownload TCP"),
        "{:?}",
        r.lines
    );
    let r = p.cmd("PASV");
    assert_eq!(r.code, 502, "{:?}", r.lines);
    assert!(r.last().contains("stdio session"), "{:?}", r.lines);
    let r = p.cmd("EPSV");
    assert_eq!(r.code, 502, "{:?}", r.lines);
    // FTP spoken: replies end in CR LF now, the inline bytes stay as
    // they are.
    let (_, bytes, done) = p.download("lines.txt", None);
    assert_eq!(done.code, 226, "{:?}", done.lines);
    assert_eq!(bytes, b"a\nb\n");
    assert_eq!(p.cmd("NOOP").lines, ["200 ok\r"]);
}

fn bad_lines_get_5xx_and_the_session_goes_on() {
    let share = TempDir::new("stdio-bad");
    let mut p = Peer::start(share.path(), &["--max-line", "100"]);
    assert_eq!(p.cmd("frob").code, 500);
    p.send_raw(b"\xff\xfe\n");
    assert_eq!(p.reply().code, 500);
    let long = "x".repeat(500);
    assert_eq!(p.cmd(&long).code, 500);
    assert_eq!(p.cmd("FileDownload").code, 501);
    assert_eq!(p.cmd("FileUpload a 1 xyz").code, 501);
    assert_eq!(p.cmd("NOOP").lines, ["200 ok"]);
}

fn the_session_ends_with_0_at_quit_at_the_end_of_input_and_when_idle() {
    let share = TempDir::new("stdio-end");
    let mut p = Peer::start(share.path(), &[]);
    p.stdin = None;
    assert_eq!(p.exit().code(), Some(0), "{}", p.stderr());
    assert!(p.rest().is_empty());
    let mut p = Peer::start(share.path(), &["--idle-timeout", "1s"]);
    assert_eq!(p.cmd("NOOP").code, 200);
    let began = Instant::now();
    assert_eq!(p.reply().lines, ["421 idle timeout"]);
    assert!(began.elapsed() >= Duration::from_millis(500));
    assert_eq!(p.exit().code(), Some(0), "{}", p.stderr());
    // Pipelined after QUIT: nothing more is answered.
    let mut p = Peer::start(share.path(), &[]);
    p.send("QUIT\nNOOP");
    assert_eq!(p.reply().lines, ["221 bye"]);
    assert_eq!(p.exit().code(), Some(0));
    assert!(p.rest().is_empty());
}

fn stdout_holds_nothing_but_the_protocol() {
    let share = TempDir::new("stdio-clean");
    let content = pseudo_random(70_000, 3);
    share.write("x.bin", &content);
    // A hidden state note goes to stderr, if any; stdout is replies and
    // announced bytes only, through the end of the session.
    let mut p = Peer::start(share.path(), &["--rescan", "100ms"]);
    p.send("IndexGet longlist\nFileDownload x.bin\nHELP\nfrob\nHistory\nFileHash checkall\nQUIT");
    let mut replies = 0;
    loop {
        let r = p.reply();
        replies += 1;
        if r.code == 150 {
            let bytes = p.bytes(inline_bytes(&r) as usize);
            assert_eq!(bytes, content);
            continue;
        }
        if r.code == 221 {
            break;
        }
    }
    assert_eq!(replies, 8);
    assert_eq!(p.exit().code(), Some(0));
    assert!(p.rest().is_empty(), "nothing but replies and their bytes");
    let err = p.stderr();
    assert!(
        err.lines().all(|l| l.starts_with("p2pshare: ")),
        "stderr holds messages only: {err:?}"
    );
}

fn files_that_appear_are_listed_while_the_session_lasts() {
    let share = TempDir::new("stdio-rescan");
    let mut p = Peer::start(share.path(), &["--rescan", "100ms"]);
    assert!(p.cmd("IndexGet longlist").names().is_empty());
    share.write("late.txt", "late");
    assert!(
        wait_until(LIMIT, || p.cmd("IndexGet longlist").names() == ["late.txt"]),
        "the rescan finds a new file"
    );
}

fn a_client_that_reads_no_replies_is_cut_off_after_the_data_timeout() {
    let share = TempDir::new("stdio-unread");
    let mut p = Peer::start(share.path(), &["--data-timeout", "1s"]);
    // Some megabytes of help, none of it read: the server's writes wait,
    // and after a second of waiting in all it gives up.
    p.send(&"HELP\n".repeat(2000));
    let began = Instant::now();
    let status = p.exit();
    assert_eq!(status.code(), Some(1), "{}", p.stderr());
    assert!(began.elapsed() >= Duration::from_millis(900));
    assert!(
        p.stderr().contains("standard output took nothing in time"),
        "{}",
        p.stderr()
    );
}

/// The MAC'd side of a stdio session after a proof login (PROTOCOL.md
/// section 12): requests sent with their MACs, replies checked against
/// theirs and returned without them.
struct Proven {
    p: Peer,
    key: SessionKey,
    /// The number of the last request sent.
    n: u64,
    /// The number of the next reply.
    r: u64,
}

impl Proven {
    fn login(p: Peer, secret: &str) -> Proven {
        let sn = greeting_nonce(&p.greeting).expect("a nonce in the greeting");
        let cn = Nonce(pseudo_random(16, 8).try_into().unwrap());
        let proofs = Proofs::new(secret.as_bytes(), &sn, &cn);
        let mut me = Proven {
            p,
            key: proofs.key,
            n: 0,
            r: 0,
        };
        let auth = format!("AUTH PROOF {cn} {}", proofs.client);
        me.p.send(&auth);
        let r = me.read(&auth);
        assert_eq!(
            r.lines,
            [format!("230 authenticated; proof={}", proofs.server)]
        );
        me
    }

    fn send(&mut self, line: &str) {
        self.n += 1;
        let mac = self.key.request_mac(self.n, line);
        self.p.send(&format!("{line} mac={mac}"));
    }

    /// The next reply, answering `request`, its MAC checked.
    fn read(&mut self, request: &str) -> Reply {
        let mut reply = self.p.reply();
        let last = reply.lines.pop().unwrap();
        let (text, mac) = split_mac(&last).unwrap_or_else(|| panic!("no mac in {last:?}"));
        reply.lines.push(text.to_string());
        let mut want = self.key.reply_mac(self.r, request);
        for l in &reply.lines {
            want.line(l.as_bytes());
        }
        assert!(
            want.finish().same_as(&mac),
            "reply {} to {request:?} has a wrong mac: {:?}",
            self.r,
            reply.lines
        );
        self.r += 1;
        reply
    }

    fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.read(line)
    }
}

fn after_a_proof_login_the_inline_replies_carry_their_macs() {
    let share = TempDir::new("stdio-macs");
    let content = pseudo_random(100_000, 6);
    share.write("a.bin", &content);
    let secret = "s3cret-Word";
    let p = Peer::start(share.path(), &["--secret", secret, "--allow-upload"]);
    let mut p = Proven::login(p, secret);
    assert_eq!(p.cmd("NOOP").lines, ["200 ok"]);
    // A download: the 150 and the 226 are two replies, each with its MAC;
    // the bytes between them carry none.
    let request = "FileDownload a.bin 10";
    let r150 = p.cmd(request);
    assert_eq!(r150.lines[1], "150 DATA inline bytes=99990");
    assert_eq!(row_of_150(&r150)[3], md5_hex(&content));
    assert_eq!(p.p.bytes(99_990), content[10..]);
    assert_eq!(p.read(request).code, 226);
    // An upload: its 150, the bytes, its 226.
    let up = format!("FileUpload up.txt 3 {}", md5_hex(b"up\n"));
    assert_eq!(p.cmd(&up).lines, ["150 DATA inline bytes=3"]);
    p.p.send_raw(b"up\n");
    assert_eq!(p.read(&up).lines, ["226 stored up.txt"]);
    assert_eq!(fs::read(share.path().join("up.txt")).unwrap(), b"up\n");
    // Refusals too.
    assert_eq!(p.cmd("FileDownload UDP a.bin").code, 550);
    assert_eq!(p.cmd("QUIT").lines, ["221 bye"]);
    assert_eq!(p.p.exit().code(), Some(0));
}

/// Set, to the mounted tmpfs, in the run of the full-disk test inside its
/// mount namespace.
const DISK_ENV: &str = "P2PSHARE_TEST_STDIO_DISK";

fn an_upload_onto_a_full_disk_is_451_and_the_stream_stays_in_step() {
    let Some(disk) = std::env::var_os(DISK_ENV) else {
        // Again, in a mount namespace of its own with a 1 MiB tmpfs.
        let disk = TempDir::new("stdio-disk");
        let mount = r#"d=$1; shift; mount -t tmpfs -o size=1m p2pshare-test "$d" && exec "$@""#;
        let mut wrap = Command::new("unshare");
        wrap.args(["-m", "--propagation", "private", "sh", "-c", mount, "sh"])
            .arg(disk.path());
        crate::process::run_again_inside(
            wrap,
            "stdio::an_upload_onto_a_full_disk_is_451_and_the_stream_stays_in_step",
            (DISK_ENV, disk.path().as_os_str()),
            "small disk",
        );
        return;
    };
    let share = std::path::Path::new(&disk).join("share");
    fs::create_dir_all(&share).unwrap();
    // The state folder elsewhere: the disk is for the upload alone.
    let state = TempDir::new("stdio-disk-state");
    let state = state.path().to_str().unwrap();
    let mut p = Peer::start(&share, &["--allow-upload", "--state", state]);
    let content = pseudo_random(3 << 20, 4);
    let r = p.cmd(&format!(
        "FileUpload big.bin {} {}",
        content.len(),
        md5_hex(&content)
    ));
    assert_eq!(inline_bytes(&r), content.len() as u64);
    let mut sent = content;
    sent.extend_from_slice(b"NOOP\n");
    p.send_raw(&sent);
    let done = p.reply();
    assert_eq!(done.code, 451, "{:?}", done.lines);
    assert!(
        done.last()
            .starts_with("cannot store big.bin: No space left on device")
            && done.last().ends_with("; nothing stored"),
        "{:?}",
        done.lines
    );
    assert_eq!(p.reply().lines, ["200 ok"], "every byte was read");
    assert!(
        entries_below(&share).is_empty(),
        "{:?}",
        entries_below(&share)
    );
}

/// The inodes of the sockets process `pid` holds, from /proc/PID/fd.
fn sockets_of(pid: u32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.starts_with("socket:"))
        .collect()
}

fn a_stdio_session_opens_no_socket() {
    let share = TempDir::new("stdio-nosock");
    share.write("a.txt", pseudo_random(200_000, 1));
    let mut p = Peer::start(share.path(), &["--allow-upload"]);
    let pid = p.child.id();
    assert_eq!(sockets_of(pid), Vec::<String>::new(), "at start");
    let (_, bytes, done) = p.download("a.txt", None);
    assert_eq!((bytes.len(), done.code), (200_000, 226));
    assert_eq!(p.cmd("FileDownload UDP a.txt").code, 550);
    assert_eq!(p.cmd("PASV").code, 502);
    let r = p.cmd(&format!("FileUpload b.txt 2 {}", md5_hex(b"hi")));
    assert_eq!(inline_bytes(&r), 2);
    p.send_raw(b"hi");
    assert_eq!(p.reply().code, 226);
    assert_eq!(sockets_of(pid), Vec::<String>::new(), "after transfers");
    // Nor does anything of the process listen: no listening TCP socket in
    // its network namespace belongs to it.
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let inode = line.split_whitespace().nth(9).unwrap_or("");
            assert!(
                !sockets_of(pid).contains(&format!("socket:[{inode}]")),
                "{table}: {line}"
            );
        }
    }
}

fn serve_stdio_refuses_options_of_a_listening_server() {
    let share = TempDir::new("stdio-opts");
    let out = Command::new(bin())
        .args(["serve", "--stdio", "--port", "0", "--share"])
        .arg(share.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--port does not apply to --stdio"), "{err}");
    let help = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--stdio"));
}

fn a_share_that_cannot_be_opened_is_exit_1_and_nothing_on_stdout() {
    let dir = TempDir::new("stdio-noshare");
    let out = Command::new(bin())
        .args(["serve", "--stdio", "--share"])
        .arg(dir.path().join("no/such/parent"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("p2pshare: cannot share "), "{err}");
}

cases![
    greeting_commands_and_history_rows_named_stdio,
    every_hard_name_lists_and_downloads_inline,
    a_1_mib_download_comes_inline_whole_and_resumes_by_offset,
    a_file_that_shrinks_while_sent_still_gives_the_bytes_promised_then_451,
    an_upload_comes_inline_and_is_stored_under_its_name,
    an_upload_that_stops_midway_is_426_and_the_session_closes,
    udp_and_passive_mode_are_refused_and_the_session_goes_on,
    bad_lines_get_5xx_and_the_session_goes_on,
    the_session_ends_with_0_at_quit_at_the_end_of_input_and_when_idle,
    stdout_holds_nothing_but_the_protocol,
    files_that_appear_are_listed_while_the_session_lasts,
    a_stdio_session_opens_no_socket,
    a_client_that_reads_no_replies_is_cut_off_after_the_data_timeout,
    serve_stdio_refuses_options_of_a_listening_server,
    a_share_that_cannot_be_opened_is_exit_1_and_nothing_on_stdout,
    after_a_proof_login_the_inline_replies_carry_their_macs,
    #[ignore = "needs root and mount"]
    an_upload_onto_a_full_disk_is_451_and_the_stream_stays_in_step,
];
