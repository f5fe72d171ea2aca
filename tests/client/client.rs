//! The thin client, `p2pshare client`, run as the real binary against a real
//! server on loopback (and, where a server has to misbehave, against a small
//! test server in this file that speaks the protocol and then breaks it):
//! commands from `-c` and from a pipe, output into a pipe, exit statuses,
//! verified downloads, resume, md5 retries and no clobbering.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

const WAIT: Duration = Duration::from_secs(20);

/// `p2pshare client ADDR --share DEST ARGS...`, run to the end.
fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    client_with_input(addr, dest, args, "")
}

fn client_with_input(addr: SocketAddr, dest: &Path, args: &[&str], input: &str) -> Finished {
    run(&client_args(addr, dest, args), input)
}

/// The rows of a share's history file, each split on TAB.
fn history_rows(share: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(share.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// How many `FileDownload` requests a server's history holds.
fn downloads_served(share: &Path) -> usize {
    history_rows(share)
        .iter()
        .filter(|r| r.len() == 5 && r[1] == "in" && r[3].starts_with("FileDownload"))
        .count()
}

/// Every file below `dir`, relative and `/`-separated, sorted; the client's
/// state folder left out, hidden files (partial downloads, locks) kept.
fn files_below(dir: &Path) -> Vec<String> {
    entries_below(dir)
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect()
}

/// Files whose own name starts with a dot (partial downloads, locks).
fn hidden_files(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|f| f.rsplit('/').next().unwrap().starts_with('.'))
        .collect()
}

fn md5_of_file(p: &Path) -> String {
    md5_hex(&fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

// ---------------------------------------------------------------------
// Commands, output and exit statuses
// ---------------------------------------------------------------------

fn one_shot_commands_run_in_order_and_print_tsv_into_a_pipe() {
    let dest = TempDir::new("cl-oneshot-dst");
    let crate::support::Served { dir: srv, server } = Share::new("cl-oneshot-srv")
        .file("a.txt", "hello\n")
        .file("docs/b.txt", "bee\n")
        .serve();

    let out = client(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "IndexGet longlist",
            "-c",
            "FileHash verify docs/b.txt",
            "-c",
            "NOOP",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let lines = out.lines();
    // Tables as TSV with their header line, no reply codes, no counts.
    assert_eq!(lines[0], "name\tsize\ttimestamp\ttype", "{out}");
    assert!(lines[1].starts_with("a.txt\t6\t"), "{out}");
    assert!(lines[2].starts_with("docs/b.txt\t4\t"), "{out}");
    assert_eq!(lines[3], "name\tmd5\ttimestamp", "{out}");
    let row: Vec<&str> = lines[4].split('\t').collect();
    assert_eq!(
        row[..2],
        ["docs/b.txt", md5_hex(b"bee\n").as_str()],
        "{out}"
    );
    assert_eq!(lines[5], "ok", "{out}");
    assert_eq!(lines.len(), 6, "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    // The server saw them in the order given.
    let asked: Vec<String> = history_rows(srv.path())
        .into_iter()
        .filter(|r| r[1] == "in")
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(
        asked,
        [
            "IndexGet longlist",
            "FileHash verify docs/b.txt",
            "NOOP",
            "QUIT"
        ]
    );
}

fn a_piped_script_runs_every_line() {
    let dest = TempDir::new("cl-pipe-dst");
    let crate::support::Served { dir: srv, server } = Share::new("cl-pipe-srv")
        .file("one.txt", "1\n")
        .file("two.txt", "22\n")
        .file("img/three.bin", pseudo_random(1000, 3))
        .serve();

    let script = "IndexGet regex *.txt\n\
                  \n\
                  filehash CHECKALL\r\n\
                  FileDownload two.txt\n\
                  HELP noop\n";
    let out = client_with_input(server.addr(), dest.path(), &[], script);
    assert_eq!(out.code(), Some(0), "{out}");
    let lines = out.lines();
    let ts = |name: &str| timefmt_of(&srv.path().join(name));
    assert_eq!(
        lines,
        [
            "name\tsize\ttimestamp\ttype".to_string(),
            format!("one.txt\t2\t{}\ttext/plain", ts("one.txt")),
            format!("two.txt\t3\t{}\ttext/plain", ts("two.txt")),
            "name\tmd5\ttimestamp".to_string(),
            format!(
                "img/three.bin\t{}\t{}",
                md5_hex(&pseudo_random(1000, 3)),
                ts("img/three.bin")
            ),
            format!("one.txt\t{}\t{}", md5_hex(b"1\n"), ts("one.txt")),
            format!("two.txt\t{}\t{}", md5_hex(b"22\n"), ts("two.txt")),
            // The download's line: name, size, timestamp, md5.
            format!("two.txt\t3\t{}\t{}", ts("two.txt"), md5_hex(b"22\n")),
            "usage: NOOP".to_string(),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "{out}"
    );
    assert!(!out.stdout.contains('\r'), "no redraws into a pipe: {out}");
    assert_eq!(fs::read(dest.path().join("two.txt")).unwrap(), b"22\n");
}

/// A file's mtime as the protocol prints it.
fn timefmt_of(p: &Path) -> String {
    humantime::format_rfc3339_seconds(mtime(p)).to_string()
}

fn failures_go_to_stderr_with_the_servers_text_and_exit_1() {
    let dest = TempDir::new("cl-fail-dst");
    let server = Share::new("cl-fail-srv").file("a.txt", "a\n").serve();

    let out = client(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "FileHash verify missing.txt",
            "-c",
            "Frobnicate",
            "-c",
            "FileDownload nothing-here.bin",
            "-c",
            "NOOP",
        ],
    );
    // Every command ran; three failed.
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.lines(), ["ok"], "{out}");
    // Each error is the server's own reply line, as `nc` shows it.
    let mut nc = Conn::open(server.addr());
    let said: Vec<String> = ["FileHash verify missing.txt", "Frobnicate"]
        .iter()
        .map(|c| nc.cmd(c).lines.join("\n"))
        .collect();
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(err.len(), 3, "{out}");
    assert!(
        said[0].starts_with("550 ") && err[0].ends_with(&said[0]),
        "{said:?}\n{out}"
    );
    assert!(
        said[1].starts_with("500 ") && err[1].ends_with(&said[1]),
        "{said:?}\n{out}"
    );
    assert!(
        err[2].contains("550") && err[2].contains("nothing-here.bin"),
        "{out}"
    );
    assert!(files_below(dest.path()).is_empty(), "{out}");

    // A failure in a piped script counts the same way.
    let out = client_with_input(server.addr(), dest.path(), &[], "NOOP\nIndexGet bogus\n");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("501"), "{out}");
}

fn usage_errors_and_unreachable_servers_exit_2() {
    let dest = TempDir::new("cl-usage-dst");
    let share = dest.path().display().to_string();

    let out = run(&["client", "--bogus"], "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--bogus"), "{out}");

    let out = run(&["client", "127.0.0.1:1", "--share", &share, "-c"], "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("-c needs a value"), "{out}");

    let out = run(&["client", "a:1", "b:2"], "");
    assert_eq!(out.code(), Some(2), "{out}");

    let nobody = closed_addr().to_string();
    let out = run(&["client", &nobody, "--share", &share, "-c", "NOOP"], "");
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("cannot connect") && out.stderr.contains(&nobody),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

fn local_history_shows_the_clients_requests_as_out_rows() {
    let dest = TempDir::new("cl-hist-dst");
    let crate::support::Served { dir: srv, server } =
        Share::new("cl-hist-srv").file("a.txt", "a\n").serve();
    let peer = server.addr().to_string();

    let out = client(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "IndexGet longlist",
            "-c",
            "FileDownload a.txt",
            "-c",
            "FileHash verify nope",
            "-c",
            "history",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let lines = out.lines();
    let at = lines
        .iter()
        .position(|l| *l == "time\tdirection\tpeer\trequest\treply")
        .unwrap_or_else(|| panic!("no history header: {out}"));
    let rows: Vec<Vec<&str>> = lines[at + 1..]
        .iter()
        .map(|l| l.split('\t').collect())
        .collect();
    let seen: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r[1], r[2], r[3], r[4])).collect();
    assert_eq!(
        seen,
        [
            ("out", peer.as_str(), "IndexGet longlist", "213"),
            ("out", peer.as_str(), "FileDownload TCP a.txt", "226"),
            ("out", peer.as_str(), "FileHash verify nope", "550"),
        ],
        "{out}"
    );
    // `history` is local: the server never heard of it.
    assert!(
        !history_rows(srv.path()).iter().any(|r| r[3] == "history"),
        "{:?}",
        history_rows(srv.path())
    );
}

// ---------------------------------------------------------------------
// Downloads from a real server
// ---------------------------------------------------------------------

fn a_single_download_lands_verified_with_the_servers_mtime() {
    let srv = TempDir::new("cl-single-srv");
    let dest = TempDir::new("cl-single-dst");
    let content = pseudo_random(300_000, 7);
    let p = srv.write("data/report.bin", &content);
    set_mtime(&p, time("2026-03-04T05:06:07Z"));
    let server = start(srv.path());

    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload TCP data/report.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        out.lines(),
        [format!(
            "data/report.bin\t300000\t2026-03-04T05:06:07Z\t{}",
            md5_hex(&content)
        )],
        "{out}"
    );
    let got = dest.path().join("data/report.bin");
    assert_eq!(fs::read(&got).unwrap(), content);
    assert_eq!(mtime(&got), time("2026-03-04T05:06:07Z"));
    // No partial or lock file left beside it.
    assert_eq!(files_below(dest.path()), ["data/report.bin"]);
}

fn a_pattern_downloads_every_match_in_subfolders() {
    let dest = TempDir::new("cl-glob-dst");
    let crate::support::Served { dir: srv, server } = Share::new("cl-glob-srv")
        .file("docs/a.txt", "a\n")
        .file("docs/b.md", "b\n")
        .file("docs/deep/c.txt", "c\n")
        .file("top.txt", "t\n")
        .file("other/x/y/z.txt", "z\n")
        .file("other/no.bin", pseudo_random(100, 1))
        .serve();

    // `docs/*` holds a slash: matched against the whole path, one level.
    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload \"docs/*\""],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        files_below(dest.path()),
        ["docs/a.txt", "docs/b.md"],
        "{out}"
    );
    let names: Vec<&str> = out
        .lines()
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["docs/a.txt", "docs/b.md"], "{out}");

    // `**/*.txt`: every .txt file at any depth.
    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload \"**/*.txt\""],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        files_below(dest.path()),
        [
            "docs/a.txt",
            "docs/b.md",
            "docs/deep/c.txt",
            "other/x/y/z.txt",
            "top.txt"
        ],
        "{out}"
    );
    for f in files_below(dest.path()) {
        assert_eq!(
            fs::read(dest.path().join(&f)).unwrap(),
            fs::read(srv.path().join(&f)).unwrap(),
            "{f}"
        );
    }
    // docs/a.txt was already here with the same content: not sent again.
    assert_eq!(downloads_served(srv.path()), 2 + 3);

    // A pattern that matches nothing is a failure.
    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload \"*.pdf\""],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("*.pdf"), "{out}");
}

fn the_same_content_is_up_to_date_and_not_transferred_again() {
    let dest = TempDir::new("cl-same-dst");
    let crate::support::Served { dir: srv, server } = Share::new("cl-same-srv")
        .file("a.bin", pseudo_random(50_000, 11))
        .file("sub/b.txt", "bee\n")
        .serve();

    let first = client(server.addr(), dest.path(), &["-c", "FileDownload a.bin"]);
    assert_eq!(first.code(), Some(0), "{first}");
    assert_eq!(downloads_served(srv.path()), 1);

    let again = client(server.addr(), dest.path(), &["-c", "FileDownload a.bin"]);
    assert_eq!(again.code(), Some(0), "{again}");
    assert!(again.stderr.contains("a.bin: up to date"), "{again}");
    // Its line is still printed, with the peer's md5.
    assert_eq!(again.stdout, first.stdout, "{again}");
    assert_eq!(
        downloads_served(srv.path()),
        1,
        "{:?}",
        history_rows(srv.path())
    );

    // The same through a pattern: only the missing file travels.
    let out = client(server.addr(), dest.path(), &["-c", "FileDownload \"**\""]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(files_below(dest.path()), ["a.bin", "sub/b.txt"], "{out}");
    assert_eq!(
        downloads_served(srv.path()),
        2,
        "{:?}",
        history_rows(srv.path())
    );
}

fn a_different_local_file_is_kept_unless_overwrite_is_given() {
    let dest = TempDir::new("cl-clobber-dst");
    let crate::support::Served { dir: srv, server } = Share::new("cl-clobber-srv")
        .file("notes.txt", "the server's notes\n")
        .serve();
    let mine = dest.write("notes.txt", "my own notes\n");
    let before = mtime(&mine);

    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload notes.txt"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("notes.txt") && out.stderr.contains("--overwrite"),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(fs::read(&mine).unwrap(), b"my own notes\n");
    assert_eq!(mtime(&mine), before);
    assert_eq!(files_below(dest.path()), ["notes.txt"]);
    assert_eq!(downloads_served(srv.path()), 0);

    let out = client(
        server.addr(),
        dest.path(),
        &["--overwrite", "-c", "FileDownload notes.txt"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(&mine).unwrap(), b"the server's notes\n");
    assert_eq!(files_below(dest.path()), ["notes.txt"]);
}

// ---------------------------------------------------------------------
// A test server that misbehaves on purpose
// ---------------------------------------------------------------------

/// What the test server does with one `FileDownload`.
#[derive(Clone)]
enum Plan {
    /// Sends the file as it is, then 226.
    Correct,
    /// Sends the file with one byte flipped, then 226 (with the true md5).
    FlipByte,
    /// Sends the first half of the bytes, then closes the control and the
    /// data connection, as a server that dies.
    HalfThenDie,
    /// Sends the first `n` bytes, waits until the flag is set, then the
    /// rest.
    PartThenWait(usize, Arc<AtomicBool>),
}

/// A server speaking just enough of the protocol for one file: the
/// greeting, `FileHash verify`, `FileDownload` over a reused TCP data
/// channel, and `QUIT`. Each session runs on its own thread; `plan` says
/// what to do with the n-th `FileDownload` (counted over all sessions).
struct TestServer {
    addr: SocketAddr,
    /// Every request line received, over all sessions.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

struct Served {
    name: String,
    bytes: Vec<u8>,
    md5: String,
    timestamp: String,
    plan: Box<dyn Fn(usize) -> Plan + Send + Sync>,
    downloads: AtomicUsize,
    sessions: AtomicUsize,
}

impl TestServer {
    fn start(
        name: &str,
        bytes: Vec<u8>,
        plan: impl Fn(usize) -> Plan + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Served {
            name: name.to_string(),
            md5: md5_hex(&bytes),
            bytes,
            timestamp: "2026-01-02T03:04:05Z".into(),
            plan: Box::new(plan),
            downloads: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let requests = requests.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let served = served.clone();
                    let requests = requests.clone();
                    served.sessions.fetch_add(1, Ordering::SeqCst);
                    thread::spawn(move || {
                        let _ = session(conn, &served, &requests);
                    });
                }
            });
        }
        TestServer {
            addr,
            requests,
            stop,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn downloads_asked(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("FileDownload"))
            .count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// One control session of the test server.
fn session(conn: TcpStream, served: &Served, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn.try_clone()?);
    let data_listener = TcpListener::bind("127.0.0.1:0")?;
    let data_port = data_listener.local_addr()?.port();
    let token = "0123456789abcdef";
    let mut data: Option<TcpStream> = None;
    writeln!(out, "220 test server (speaks just enough p2pshare)")?;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        requests.lock().unwrap().push(line.clone());
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["QUIT"] => {
                writeln!(out, "221 bye")?;
                return Ok(());
            }
            ["FileHash", "verify", name] if *name == served.name => {
                writeln!(out, "213-name\tmd5\ttimestamp")?;
                writeln!(
                    out,
                    "213-{}\t{}\t{}",
                    served.name, served.md5, served.timestamp
                )?;
                writeln!(out, "213 1 files")?;
            }
            ["FileDownload", "TCP", name, rest @ ..] if *name == served.name => {
                let offset: usize = rest.first().map_or(0, |o| o.parse().unwrap());
                let n = served.downloads.fetch_add(1, Ordering::SeqCst);
                writeln!(
                    out,
                    "150-{}\t{}\t{}\t{}",
                    served.name,
                    served.bytes.len(),
                    served.timestamp,
                    served.md5
                )?;
                writeln!(out, "150 DATA tcp port={data_port} token={token}")?;
                if data.is_none() {
                    let (mut s, _) = data_listener.accept()?;
                    let mut got = String::new();
                    BufReader::new(&mut s).read_line(&mut got)?;
                    assert_eq!(got.trim(), token);
                    data = Some(s);
                }
                let d = data.as_mut().unwrap();
                let bytes = &served.bytes[offset..];
                let half = bytes.len() / 2;
                match (served.plan)(n) {
                    Plan::Correct => d.write_all(bytes)?,
                    Plan::FlipByte => {
                        let mut bad = bytes.to_vec();
                        bad[half] ^= 0x01;
                        d.write_all(&bad)?;
                    }
                    Plan::HalfThenDie => {
                        d.write_all(&bytes[..half])?;
                        d.flush()?;
                        let _ = d.shutdown(std::net::Shutdown::Both);
                        let _ = out.shutdown(std::net::Shutdown::Both);
                        return Ok(());
                    }
                    Plan::PartThenWait(part, go) => {
                        let part = part.min(bytes.len());
                        d.write_all(&bytes[..part])?;
                        while !go.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(10));
                        }
                        d.write_all(&bytes[part..])?;
                    }
                }
                writeln!(
                    out,
                    "226 {} {} bytes md5={}",
                    served.name,
                    bytes.len(),
                    served.md5
                )?;
            }
            ["FileHash", ..] | ["FileDownload", ..] => {
                writeln!(out, "550 no such file or not shared")?;
            }
            _ => writeln!(out, "500 the test server does not know that")?,
        }
    }
}

fn a_server_dying_mid_transfer_leaves_a_partial_file_that_a_rerun_resumes() {
    let content = pseudo_random(1 << 20, 21);
    let dest = TempDir::new("cl-resume-dst");
    let dying = TestServer::start("big.bin", content.clone(), |_| Plan::HalfThenDie);

    let out = client(dying.addr, dest.path(), &["-c", "FileDownload big.bin"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(!out.stderr.is_empty(), "{out}");
    // Nothing under the real name; a hidden partial file holds what came.
    assert!(!dest.path().join("big.bin").exists());
    let hidden = hidden_files(dest.path());
    assert_eq!(hidden.len(), 1, "one partial file expected: {hidden:?}");
    let partial = fs::read(dest.path().join(&hidden[0])).unwrap();
    assert!(
        !partial.is_empty() && partial.len() < content.len(),
        "partial of {} bytes",
        partial.len()
    );
    assert_eq!(
        partial[..],
        content[..partial.len()],
        "a prefix of the file"
    );

    // The rerun against a real server sharing the file asks only for the
    // rest, and checks the md5 of the whole.
    let crate::support::Served { dir: srv, server } = Share::new("cl-resume-srv")
        .file("big.bin", &content)
        .serve();
    let out = client(server.addr(), dest.path(), &["-c", "FileDownload big.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    // Said on stderr in a pipe too, not only at a terminal.
    assert!(
        out.stderr.contains("p2pshare: resuming big.bin at "),
        "{out}"
    );
    let asked: Vec<String> = history_rows(srv.path())
        .into_iter()
        .filter(|r| r[3].starts_with("FileDownload"))
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(
        asked,
        [format!("FileDownload TCP big.bin {}", partial.len())],
        "resumed at the partial file's length"
    );
    assert_eq!(md5_of_file(&dest.path().join("big.bin")), md5_hex(&content));
    assert_eq!(files_below(dest.path()), ["big.bin"], "partial file gone");
}

fn a_corrupted_transfer_is_caught_by_md5_and_retried() {
    let content = pseudo_random(200_000, 31);
    let dest = TempDir::new("cl-flip-dst");
    let flaky = TestServer::start("f.bin", content.clone(), |n| {
        if n == 0 {
            Plan::FlipByte
        } else {
            Plan::Correct
        }
    });

    let out = client(flaky.addr, dest.path(), &["-c", "FileDownload f.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stderr.contains("md5"), "the retry is told: {out}");
    assert_eq!(flaky.downloads_asked(), 2, "{:?}", flaky.requests());
    assert_eq!(fs::read(dest.path().join("f.bin")).unwrap(), content);
    assert_eq!(files_below(dest.path()), ["f.bin"]);
    assert_eq!(
        out.lines(),
        [format!(
            "f.bin\t200000\t2026-01-02T03:04:05Z\t{}",
            md5_hex(&content)
        )]
    );
}

fn a_transfer_corrupted_every_time_fails_and_stores_nothing() {
    let content = pseudo_random(100_000, 41);
    let dest = TempDir::new("cl-bad-dst");
    let broken = TestServer::start("g.bin", content, |_| Plan::FlipByte);

    let out = client(broken.addr, dest.path(), &["-c", "FileDownload g.bin"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("md5"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    // A bounded number of attempts (the first plus a few retries).
    let tries = broken.downloads_asked();
    assert!((2..=5).contains(&tries), "{tries} attempts");
    assert_eq!(files_below(dest.path()), Vec::<String>::new());
}

fn two_clients_downloading_one_name_into_one_folder_end_with_one_good_file() {
    let content = pseudo_random(1_500_000, 51);
    let dest = TempDir::new("cl-two-dst");
    // The first transfer stops halfway, a second one (if the second
    // client makes one) right at its start, each until its flag is set.
    let go: [Arc<AtomicBool>; 2] = Default::default();
    let server = {
        let go = go.clone();
        let stop_at = [content.len() / 2, 1000];
        TestServer::start("same.bin", content.clone(), move |n| match go.get(n) {
            Some(flag) => Plan::PartThenWait(stop_at[n], flag.clone()),
            None => Plan::Correct,
        })
    };
    let args = client_args(server.addr, dest.path(), &["-c", "FileDownload same.bin"]);

    // The first client is in the middle of the transfer...
    let first = Proc::spawn(&args);
    assert!(
        wait_until(WAIT, || server.downloads_asked() == 1),
        "{}",
        first.dump()
    );
    // (Give it the time to put some of the bytes on disk, where a second
    // writer could spoil them; a client that keeps them elsewhere is fine.)
    wait_until(Duration::from_secs(5), || {
        hidden_files(dest.path())
            .iter()
            .any(|f| fs::metadata(dest.path().join(f)).is_ok_and(|m| m.len() > 100_000))
    });
    // ...when the second starts on the same name. It must not get in the
    // first one's way: it either waits for it or keeps to files of its own.
    let second = Proc::spawn(&args);
    let overlapped = wait_until(WAIT, || {
        second.stderr().contains("waiting") || server.downloads_asked() >= 2
    });
    // The first finishes while the second is still waiting or halfway.
    go[0].store(true, Ordering::SeqCst);
    let first = first.finish();
    // What the first one put in place is whole while the second still runs.
    let placed = fs::read(dest.path().join("same.bin"));
    go[1].store(true, Ordering::SeqCst);
    let second = second.finish();
    assert!(
        overlapped,
        "the second never ran alongside:\n{first}\n{second}"
    );
    assert_eq!(first.code(), Some(0), "{first}");
    assert!(placed.unwrap() == content, "the first placed a bad file");
    assert_eq!(second.code(), Some(0), "{second}");
    assert!(fs::read(dest.path().join("same.bin")).unwrap() == content);
    assert_eq!(files_below(dest.path()), ["same.bin"], "{first}\n{second}");
}

fn what_a_killed_client_leaves_behind_does_not_block_the_next_run() {
    let content = pseudo_random(1_000_000, 61);
    let dest = TempDir::new("cl-killed-dst");
    let never = Arc::new(AtomicBool::new(false));
    let stalled = {
        let never = never.clone();
        TestServer::start("k.bin", content.clone(), move |_| {
            Plan::PartThenWait(500_000, never.clone())
        })
    };
    let is_partial = |f: &String| {
        fs::read(dest.path().join(f)).is_ok_and(|b| b.len() > 1000 && content.starts_with(&b))
    };

    // A client is killed (as by kill -9) in the middle of a transfer, once
    // some of the bytes are on disk.
    let killed = Proc::spawn(&client_args(
        stalled.addr,
        dest.path(),
        &["-c", "FileDownload k.bin"],
    ));
    assert!(
        wait_until(WAIT, || hidden_files(dest.path()).iter().any(is_partial)),
        "{}",
        killed.dump()
    );
    drop(killed);
    never.store(true, Ordering::SeqCst);
    // Its process id is free now and may be handed to any other process
    // (pid_max is often 32768). Whatever else it left behind now names a
    // live process that is not downloading anything: this test.
    let me = std::process::id().to_string();
    for f in hidden_files(dest.path()) {
        if !is_partial(&f) {
            fs::write(dest.path().join(&f), &me).unwrap();
        }
    }

    // The next run is not held up, and resumes what the killed one got.
    let crate::support::Served { dir: srv, server } =
        Share::new("cl-killed-srv").file("k.bin", &content).serve();
    let out = client(server.addr(), dest.path(), &["-c", "FileDownload k.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(fs::read(dest.path().join("k.bin")).unwrap() == content);
    assert_eq!(files_below(dest.path()), ["k.bin"], "{out}");
    let resumed = history_rows(srv.path())
        .iter()
        .any(|r| r[3].starts_with("FileDownload TCP k.bin ") && r[4] == "226");
    assert!(resumed, "{:?}", history_rows(srv.path()));
}

fn a_pattern_of_many_files_fits_in_a_small_open_file_limit() {
    let src = TempDir::new("client-fd-src");
    let dst = TempDir::new("client-fd-dst");
    for i in 0..600 {
        src.write(&format!("many/f{i:03}"), format!("{i}\n"));
    }
    let server = start(src.path());
    // 64 descriptors in all: far fewer than files in the pattern, so locks
    // and partial files must not all be open at once.
    let script = "ulimit -n 64 || exit 97; exec \"$0\" \"$@\"";
    let mut args = vec!["-c".to_string(), script.to_string(), bin().to_string()];
    args.extend(client_args(
        server.addr(),
        dst.path(),
        &["-c", "FileDownload \"many/*\""],
    ));
    let out = Proc::spawn_program("sh", &args, &[]).finish();
    assert_ne!(out.code(), Some(97), "sh cannot lower the open file limit");
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.lines().len(), 600, "{out}");
    assert_eq!(fs::read_dir(dst.path().join("many")).unwrap().count(), 600);
    assert_eq!(fs::read(dst.path().join("many/f599")).unwrap(), b"599\n");
}

cases![
    one_shot_commands_run_in_order_and_print_tsv_into_a_pipe,
    a_piped_script_runs_every_line,
    failures_go_to_stderr_with_the_servers_text_and_exit_1,
    usage_errors_and_unreachable_servers_exit_2,
    local_history_shows_the_clients_requests_as_out_rows,
    a_single_download_lands_verified_with_the_servers_mtime,
    a_pattern_downloads_every_match_in_subfolders,
    the_same_content_is_up_to_date_and_not_transferred_again,
    a_different_local_file_is_kept_unless_overwrite_is_given,
    a_server_dying_mid_transfer_leaves_a_partial_file_that_a_rerun_resumes,
    a_corrupted_transfer_is_caught_by_md5_and_retried,
    a_transfer_corrupted_every_time_fails_and_stores_nothing,
    two_clients_downloading_one_name_into_one_folder_end_with_one_good_file,
    what_a_killed_client_leaves_behind_does_not_block_the_next_run,
    a_pattern_of_many_files_fits_in_a_small_open_file_limit,
];
