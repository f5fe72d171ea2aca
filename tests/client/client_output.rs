//! Output that cannot be written fails the command: the real binary with
//! its stdout or stderr on `/dev/full` (every write fails with ENOSPC),
//! against a real server. Exit status 1, and a message on stderr when
//! stderr can take it; never a panic (exit 101) and never a silent 0.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

const NO_SPACE: &str = "cannot write to stdout: No space left on device";

/// Starts `p2pshare ARGS` through `sh` with `redirect` (`>/dev/full` or
/// `2>/dev/full`); the other stream is collected.
fn spawn_into_full(args: &[String], redirect: &str) -> Proc {
    let mut all = vec![
        "-c".to_string(),
        format!("exec \"$0\" \"$@\" {redirect}"),
        bin().to_string(),
    ];
    all.extend(args.iter().cloned());
    Proc::spawn_program("sh", &all, &[])
}

fn run_into_full(args: &[String], redirect: &str) -> Finished {
    spawn_into_full(args, redirect).finish()
}

fn client(addr: std::net::SocketAddr, dest: &Path, commands: &[&str]) -> Vec<String> {
    let mut args = client_args(addr, dest, &[]);
    for c in commands {
        args.push("-c".into());
        args.push(c.to_string());
    }
    args
}

fn a_full_stdout_fails_every_command_that_writes_to_it() {
    let dir = TempDir::new("out-full-srv");
    for i in 0..200 {
        dir.write(&format!("file {i:03}.txt"), "some text\n");
    }
    let server = start(dir.path());
    let dest = TempDir::new("out-full-dst");
    for command in [
        "IndexGet longlist",
        "FileHash verify \"file 001.txt\"",
        "FileHash checkall",
        "NOOP",
        "HELP",
        "help",
        "history",
    ] {
        let out = run_into_full(
            &client(server.addr(), dest.path(), &[command]),
            ">/dev/full",
        );
        assert_eq!(out.code(), Some(1), "{command}: {out}");
        assert!(out.stderr.contains(NO_SPACE), "{command}: {out}");
    }
    // The binary's own help and version too.
    for args in [["--help"], ["--version"]] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_into_full(&args, ">/dev/full");
        assert_eq!(out.code(), Some(1), "{args:?}: {out}");
        assert!(out.stderr.contains(NO_SPACE), "{args:?}: {out}");
    }
}

fn download_and_sync_rows_into_a_full_stdout_fail_the_command() {
    let dir = TempDir::new("out-full-dl-srv");
    dir.write("a b.txt", "alpha\n");
    dir.write("sub/c.txt", "gamma\n");
    let server = start(dir.path());
    let dest = TempDir::new("out-full-dl-dst");
    let out = run_into_full(
        &client(server.addr(), dest.path(), &["FileDownload \"a b.txt\""]),
        ">/dev/full",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains(NO_SPACE), "{out}");
    // The file itself is stored: only its row could not be shown.
    assert_eq!(fs::read(dest.path().join("a b.txt")).unwrap(), b"alpha\n");

    let synced = TempDir::new("out-full-sync-dst");
    let out = run_into_full(
        &client(server.addr(), synced.path(), &["Sync"]),
        ">/dev/full",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains(NO_SPACE), "{out}");
    assert_eq!(
        fs::read(synced.path().join("sub/c.txt")).unwrap(),
        b"gamma\n"
    );
}

fn a_full_stderr_fails_the_command_without_a_panic() {
    let dir = TempDir::new("out-full-err-srv");
    dir.write("a.txt", "a\n");
    let server = start(dir.path());
    let dest = TempDir::new("out-full-err-dst");
    // A refusal goes to stderr, which takes nothing: exit 1, not a panic.
    let out = run_into_full(
        &client(server.addr(), dest.path(), &["FileHash verify missing.txt"]),
        "2>/dev/full",
    );
    assert_eq!(out.code(), Some(1), "{out}");
    // A command that succeeds and has nothing for stderr is not failed
    // by it: its output went to stdout.
    let out = run_into_full(
        &client(server.addr(), dest.path(), &["IndexGet longlist"]),
        "2>/dev/full",
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("a.txt"), "{out}");
    // A history that cannot be written is warned about on stderr: no
    // panic when stderr cannot take the warning either.
    let file = dest.write("not-a-folder", "x");
    let state = file.join("state").display().to_string();
    let out = run_into_full(
        &client(server.addr(), dest.path(), &["NOOP"])
            .into_iter()
            .chain(["--state".to_string(), state])
            .collect::<Vec<_>>(),
        "2>/dev/full",
    );
    assert!(matches!(out.code(), Some(0 | 1)), "{out}");
    assert_eq!(out.stdout, "ok\n", "{out}");
    // A usage error of the command line: status 2 still, and no panic.
    let out = run_into_full(&["client".into(), "--frob".into()], "2>/dev/full");
    assert_eq!(out.code(), Some(2), "{out}");
}

fn peer_mode_says_when_its_console_or_poller_cannot_write_to_stdout() {
    let other = TempDir::new("out-full-peer-other");
    other.write("there.txt", "there\n");
    let server = start(other.path());
    let mine = TempDir::new("out-full-peer-mine");
    let args = peer_args(mine.path(), 0, &server.addr().to_string(), &[]);
    let mut p = spawn_into_full(&args, ">/dev/full");
    p.await_stderr("connected to the other peer", WAIT);
    // A console command whose output cannot be written.
    p.send("IndexGet longlist\n");
    p.await_stderr(NO_SPACE, WAIT);
    // The poller's report of a change, likewise.
    other.write("new.txt", "new\n");
    let twice = wait_until(WAIT, || p.stderr().matches(NO_SPACE).count() >= 2);
    assert!(twice, "{}", p.dump());
}

cases![
    a_full_stdout_fails_every_command_that_writes_to_it,
    download_and_sync_rows_into_a_full_stdout_fail_the_command,
    a_full_stderr_fails_the_command_without_a_panic,
    peer_mode_says_when_its_console_or_poller_cannot_write_to_stdout,
];
