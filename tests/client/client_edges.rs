//! The thin client at the edges of what a download promises, against real
//! servers: names that look like patterns, empty files, complete partial
//! files, retries that start at once, connections that drop between and
//! during commands, and the console's own options and messages.

use crate::support::*;

use crate::process;
use crate::process::*;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    run(&client_args(addr, dest, args), "")
}

/// The files below `dir` (no folders), as `entries_below` lists them.
fn files_below(dir: &Path) -> Vec<String> {
    entries_below(dir)
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect()
}

/// The requests a server's history holds that start with `prefix`.
fn served(share: &Path, prefix: &str) -> Vec<String> {
    fs::read_to_string(share.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(3).map(str::to_string))
        .filter(|r| r.starts_with(prefix))
        .collect()
}

// ---------------------------------------------------------------------
// Names that look like patterns
// ---------------------------------------------------------------------

fn a_name_that_exists_literally_is_that_file_and_not_a_pattern() {
    let dest = TempDir::new("edges-literal-dst");
    let Served { dir: srv, server } = Share::new("edges-literal-srv")
        .file("[br].txt", "brackets\n")
        .file("b.txt", "b\n")
        .file("r.txt", "r\n")
        .file("what?.txt", "question\n")
        .serve();

    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload \"[br].txt\""],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(files_below(dest.path()), ["[br].txt"], "{out}");
    assert_eq!(
        fs::read(dest.path().join("[br].txt")).unwrap(),
        b"brackets\n"
    );
    assert_eq!(
        served(srv.path(), "FileDownload"),
        ["FileDownload TCP [br].txt"]
    );

    // No such file: the same word is a pattern.
    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload \"[bw]*.txt\""],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        files_below(dest.path()),
        ["[br].txt", "b.txt", "what?.txt"],
        "{out}"
    );
}

// ---------------------------------------------------------------------
// Zero bytes to fetch
// ---------------------------------------------------------------------

/// A server that waits 3 s for a data connection (instead of 30 s), so
/// that a client waiting for it is seen without waiting that long.
fn server_waiting_3s(share: &Path) -> p2pshare::server::RunningServer {
    start_with(p2pshare::server::Config {
        data_wait: Duration::from_secs(3),
        ..config(share)
    })
}

fn an_empty_file_as_the_first_transfer_arrives_at_once() {
    let srv = TempDir::new("edges-empty-srv");
    let dest = TempDir::new("edges-empty-dst");
    srv.write("empty.txt", "");
    srv.write("sub/also-empty", "");
    let server = server_waiting_3s(srv.path());

    let began = Instant::now();
    let out = client(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "FileDownload empty.txt",
            "-c",
            "FileDownload \"sub/*\"",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(files_below(dest.path()), ["empty.txt", "sub/also-empty"]);
    assert_eq!(fs::read(dest.path().join("empty.txt")).unwrap(), b"");
    assert!(!out.stderr.contains("425"), "{out}");
}

fn a_partial_file_that_already_holds_every_byte_is_placed_at_once() {
    let srv = TempDir::new("edges-whole-part-srv");
    let dest = TempDir::new("edges-whole-part-dst");
    let content = pseudo_random(70_000, 12);
    srv.write("whole.bin", &content);
    // What a peer that died after its last byte and before its 226 left.
    dest.write(".whole.bin.p2pshare-part", &content);
    let server = server_waiting_3s(srv.path());

    let began = Instant::now();
    let out = client(
        server.addr(),
        dest.path(),
        &["-c", "FileDownload whole.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(files_below(dest.path()), ["whole.bin"], "{out}");
    assert!(fs::read(dest.path().join("whole.bin")).unwrap() == content);
}

// ---------------------------------------------------------------------
// Connections that drop
// ---------------------------------------------------------------------

/// A server on `port` (0: any) sharing `share`.
/// A server on `port` (0: any). A port just given up may for a moment be
/// the local end of some other connection on this busy machine: binding
/// it is tried again until it is free, for a few seconds.
fn server_on(share: &Path, port: u16) -> p2pshare::server::RunningServer {
    let mut bound = None;
    let mut last = String::new();
    wait_until(Duration::from_secs(5), || {
        match p2pshare::server::Server::bind(p2pshare::server::Config {
            port,
            ..config(share)
        }) {
            Ok(s) => bound = Some(s),
            Err(e) => last = format!("{e:?}"),
        }
        bound.is_some()
    });
    let server = bound.unwrap_or_else(|| panic!("cannot bind port {port}: {last}"));
    let share = server.share().clone();
    let running = server.spawn().expect("spawn test server");
    wait_until(Duration::from_secs(30), || share.scanned());
    running
}

fn after_the_server_restarts_the_next_command_reconnects_and_runs() {
    let srv = TempDir::new("edges-restart-srv");
    let dest = TempDir::new("edges-restart-dst");
    srv.write("a.txt", "before\n");
    srv.write("b.txt", "after\n");
    let server = server_on(srv.path(), 0);
    let addr = server.addr();
    let mut c = Proc::spawn(&client_args(addr, dest.path(), &[]));
    c.send("FileDownload a.txt\n");
    c.await_stdout("a.txt\t7\t", process::LIMIT);

    // The server stops (its sessions are told `421 shutting down`) and a
    // new one starts on the same port.
    server.stop();
    let server = server_on(srv.path(), addr.port());
    c.send("FileDownload b.txt\n");
    c.await_stdout("b.txt\t6\t", process::LIMIT);
    c.send("IndexGet longlist\n");
    let out = c.finish();
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dest.path().join("b.txt")).unwrap(), b"after\n");
    assert!(out.stdout.contains("name\tsize\ttimestamp\ttype"), "{out}");
    drop(server);
}

fn after_the_server_process_dies_the_next_command_reconnects_and_runs() {
    let srv = TempDir::new("edges-killed-srv");
    let dest = TempDir::new("edges-killed-dst");
    srv.write("a.txt", "aaa\n");
    let share = srv.path().display().to_string();
    let serve = |port: &str| {
        Proc::spawn(&[
            "serve",
            "--share",
            &share,
            "--bind",
            "127.0.0.1",
            "--port",
            port,
        ])
    };
    let first = serve("0");
    let addr = first.serving_addr();
    let mut c = Proc::spawn(&client_args(addr, dest.path(), &[]));
    c.send("NOOP\n");
    c.await_stdout("ok\n", process::LIMIT);
    // Killed: its connections close without a word.
    drop(first);
    let second = serve(&addr.port().to_string());
    assert_eq!(second.serving_addr(), addr);
    c.send("FileHash verify a.txt\n");
    c.send("FileDownload a.txt\n");
    let out = c.finish();
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        out.stdout
            .contains(&format!("a.txt\t{}\t", md5_hex(b"aaa\n"))),
        "{out}"
    );
    assert_eq!(fs::read(dest.path().join("a.txt")).unwrap(), b"aaa\n");
}

// ---------------------------------------------------------------------
// The console's own options, usage errors and messages
// ---------------------------------------------------------------------

fn overwrite_can_be_asked_for_one_download() {
    let dest = TempDir::new("edges-ow-dst");
    let server = Share::new("edges-ow-srv")
        .file("news.txt", "the peer's news\n")
        .file("other.txt", "the peer's other\n")
        .serve();
    dest.write("news.txt", "old news\n");
    dest.write("other.txt", "my other\n");

    let out = client(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "FileDownload --overwrite news.txt",
            "-c",
            "FileDownload other.txt",
        ],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        fs::read(dest.path().join("news.txt")).unwrap(),
        b"the peer's news\n"
    );
    // Only for that one command.
    assert_eq!(
        fs::read(dest.path().join("other.txt")).unwrap(),
        b"my other\n"
    );
    assert!(
        out.stderr.contains("other.txt") && out.stderr.contains("--overwrite"),
        "{out}"
    );

    // After the transport too, and in a piped script.
    let out = run(
        &client_args(server.addr(), dest.path(), &[]),
        "FileDownload UDP --overwrite other.txt\n",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        fs::read(dest.path().join("other.txt")).unwrap(),
        b"the peer's other\n"
    );
    // `help` says so.
    let out = client(server.addr(), dest.path(), &["-c", "help"]);
    assert!(
        out.stdout.contains("FileDownload [TCP|UDP] [--overwrite]"),
        "{out}"
    );
}

fn client_side_usage_errors_in_commands_exit_2_and_say_what_is_wrong() {
    let dest = TempDir::new("edges-usage-dst");
    let server = Share::new("edges-usage-srv").file("a.txt", "a\n").serve();
    let cases: &[(&str, &str)] = &[
        // The client resumes by itself: an offset is refused, not ignored.
        ("FileDownload a.txt 1", "resumes"),
        ("FileDownload SCTP x", "'SCTP' is not a transport"),
        ("FileDownload", "usage: FileDownload"),
        ("FileUpload", "usage: FileUpload"),
        ("FileHash verify \"unterminated", "unterminated quote"),
        ("history lots", "usage: history"),
    ];
    for (command, said) in cases {
        let out = client(server.addr(), dest.path(), &["-c", command, "-c", "NOOP"]);
        assert_eq!(out.code(), Some(2), "{command}: {out}");
        assert!(out.stderr.contains(said), "{command}: {out}");
        // The other commands still ran.
        assert_eq!(out.stdout, "ok\n", "{command}: {out}");
    }
    assert!(!dest.path().join("a.txt").exists());
    // The server's own refusal of the same words names what is wrong too.
    let mut c = Conn::open(server.addr());
    let r = c.cmd("FileDownload SCTP x");
    assert_eq!(r.code, 501, "{:?}", r.lines);
    assert!(
        r.last().contains("'SCTP' is not a transport (TCP or UDP)"),
        "{:?}",
        r.lines
    );
    // A peer's refusal is a failed command, not a usage error.
    let out = client(server.addr(), dest.path(), &["-c", "IndexGet sideways"]);
    assert_eq!(out.code(), Some(1), "{out}");
}

fn at_a_terminal_resumes_and_pattern_downloads_say_so_and_counts_read_right() {
    assert!(
        terminal_available(),
        "`script` cannot run the client at a terminal here"
    );
    let dest = TempDir::new("edges-tty-dst");
    let big = pseudo_random(3 << 20, 5);
    let server = Share::new("edges-tty-srv")
        .file("big.bin", &big)
        .file("p/one.txt", "1\n")
        .file("p/two.txt", "2\n")
        .file("p/three.txt", "3\n")
        .serve();
    // A partial big.bin of 2 MiB, one file up to date, one in the way.
    dest.write(".big.bin.p2pshare-part", &big[..2 << 20]);
    dest.write("p/one.txt", "1\n");
    dest.write("p/two.txt", "mine\n");

    let out = at_a_terminal(&client_args(
        server.addr(),
        dest.path(),
        &[
            "-c",
            "FileDownload big.bin",
            "-c",
            "FileDownload \"p/*\"",
            "-c",
            "FileHash verify big.bin",
        ],
    ));
    let shown = out.stdout.replace("\r\n", "\n");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        shown.contains("p2pshare: resuming big.bin at 2.0 MiB\n"),
        "{shown}"
    );
    assert!(
        shown.contains("p2pshare: p/*: 1 downloaded, 1 up to date, 1 failed\n"),
        "{shown}"
    );
    assert!(shown.contains("\n(1 file)\n"), "{shown}");
    assert!(fs::read(dest.path().join("big.bin")).unwrap() == big);
}

cases![
    a_name_that_exists_literally_is_that_file_and_not_a_pattern,
    an_empty_file_as_the_first_transfer_arrives_at_once,
    a_partial_file_that_already_holds_every_byte_is_placed_at_once,
    after_the_server_restarts_the_next_command_reconnects_and_runs,
    after_the_server_process_dies_the_next_command_reconnects_and_runs,
    overwrite_can_be_asked_for_one_download,
    client_side_usage_errors_in_commands_exit_2_and_say_what_is_wrong,
    #[ignore = "needs a terminal: `script` (util-linux)"]
    at_a_terminal_resumes_and_pattern_downloads_say_so_and_counts_read_right,
];
