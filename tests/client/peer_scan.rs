//! Peer mode and first scans: a `p2pshare peer` opens its port before the
//! first scan of its share, as `serve` does, and marks its listings until
//! that scan is done; its poller neither reports nor syncs from a listing
//! the other peer marks incomplete.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fake::{FakeServer, Session};
use crate::first_scan::{many_files, MANY, MARK};
use crate::process::*;
use crate::support::*;

/// Generous: these machines are small and noisy. Every wait polls.
const WAIT: Duration = Duration::from_secs(20);

fn a_peer_greets_at_once_and_marks_its_listings_until_its_first_scan_is_done() {
    let dir = TempDir::new("peer-scan");
    let odd = "odd \t\\ \"*?[]\" ✓.txt";
    dir.write(odd, "found by name\n");
    many_files(dir.path());
    // The scan may still end before the listing is made on a loaded
    // machine: a listing counts only when it is marked, and an unmarked
    // one must come from a scan that is done; then the peer is started
    // again (its warm md5 cache does not spare the walk).
    for _ in 0..5 {
        let started = Instant::now();
        let p = Proc::spawn(&peer_args(dir.path(), 0, &closed_addr().to_string(), &[]));
        assert!(
            wait_until(WAIT, || bound_addr(&p).is_some()),
            "{}",
            p.dump()
        );
        let addr = bound_addr(&p).unwrap();
        let mut c = Conn::open(addr);
        let greeted = started.elapsed();
        let list = c.cmd("IndexGet longlist");
        let checkall = c.cmd("FileHash checkall");
        if !list.last().ends_with(MARK) {
            // Only a scan that is done makes an unmarked listing.
            p.await_stderr("p2pshare: the first scan is done", WAIT);
            continue;
        }
        assert!(
            greeted < Duration::from_secs(10),
            "greeted {greeted:?} after start"
        );
        assert!(p.stderr().contains(&format!(
            "p2pshare: sharing {} (first scan running) on {addr}; other peer ",
            fs::canonicalize(dir.path()).unwrap().display()
        )));
        assert!(list.rows().len() < MANY + 1, "{}", list.last());
        // A table made after the longlist's may come from the scan done.
        let done = p.stderr().contains("the first scan is done");
        assert!(
            done || checkall.last().ends_with(MARK),
            "{:?}",
            checkall.last()
        );
        // A file is found by name whether the scan reached it or not.
        let (r150, bytes, end) = download(&mut c, addr, &quote(odd));
        assert_eq!((r150.code, end.code), (150, 226), "{:?}", end.lines);
        assert_eq!(bytes, b"found by name\n");

        p.await_stderr(
            &format!("p2pshare: the first scan is done: {} files", MANY + 1),
            Duration::from_secs(120),
        );
        let after = c.cmd("IndexGet longlist");
        assert!(!after.last().contains("incomplete"), "{:?}", after.last());
        assert_eq!(after.rows().len(), MANY + 1);
        let checkall = c.cmd("FileHash checkall");
        assert!(!checkall.last().contains("incomplete"));
        return;
    }
    panic!("the first scan always ended before the listing was made");
}

/// The share id the fake other peer announces.
const PEER_ID: &str = "00112233445566778899aabbccddeeff";
const TS: &str = "2026-01-02T03:04:05Z";

/// What the fake other peer lists: its files (name and content), and
/// whether its `FileHash checkall` carries the incomplete mark; and how
/// many marked tables and longlists (one per Sync) it sent.
#[derive(Default)]
struct Listed {
    files: Vec<(String, String)>,
    marked: bool,
    marked_sent: usize,
    longlists: usize,
}

/// A field of a table row as a server escapes it (written apart from the
/// crate's codec).
fn escaped(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// One session of the fake other peer: `FileHash checkall` and `IndexGet
/// longlist` of what `listed` holds now.
fn serve_listed(s: &mut Session, listed: &Mutex<Listed>) -> std::io::Result<()> {
    s.say(&format!(
        "220 fake ready; share-id={PEER_ID}; HELP lists commands\r\n"
    ))?;
    while let Some(line) = s.request()? {
        let mut l = listed.lock().unwrap();
        let n = l.files.len();
        let rows = |row: &dyn Fn(&str, &str) -> String| -> String {
            l.files
                .iter()
                .map(|(name, body)| format!("213-{}\n", row(&escaped(name), body)))
                .collect()
        };
        if line == "FileHash checkall" {
            let rows = rows(&|name, body| format!("{name}\t{}\t{TS}", md5_hex(body.as_bytes())));
            let mark = match l.marked {
                true => format!(" {MARK}"),
                false => String::new(),
            };
            l.marked_sent += usize::from(l.marked);
            s.say(&format!(
                "213-name\tmd5\ttimestamp\n{rows}213 {n} files{mark}\n"
            ))?;
        } else if line == "IndexGet longlist" {
            let rows = rows(&|name, body| format!("{name}\t{}\t{TS}\ttext/plain", body.len()));
            l.longlists += 1;
            s.say(&format!(
                "213-name\tsize\ttimestamp\ttype\n{rows}213 {n} files\n"
            ))?;
        } else if line == "QUIT" {
            return s.say("221 bye\n");
        } else {
            s.say("500 the fake peer does not know that\n")?;
        }
    }
    Ok(())
}

fn a_poller_neither_reports_nor_syncs_from_a_listing_marked_incomplete() {
    let here = TempDir::new("peer-marked");
    let gone = "gone \\ \"*?[]\" ✓.txt";
    let files: Vec<(String, String)> = [
        (gone, "goes there\n"),
        ("tab\there.txt", "stays\n"),
        ("kept one.txt", "stays too\n"),
        ("emoji \u{1f600}.txt", "and this\n"),
    ]
    .iter()
    .map(|(n, b)| (n.to_string(), b.to_string()))
    .collect();
    for (name, body) in &files {
        here.write(name, body);
    }
    let listed = Arc::new(Mutex::new(Listed {
        files: files.clone(),
        ..Listed::default()
    }));
    let fake = {
        let listed = listed.clone();
        FakeServer::start(move |s| serve_listed(s, &listed))
    };
    let p = Proc::spawn(&peer_args(
        here.path(),
        0,
        &fake.addr.to_string(),
        &["--sync", "--delete"],
    ));
    // The first Sync finds both sides alike: the four files are synced.
    let state = here.path().join(format!(".p2pshare/sync/{PEER_ID}.tsv"));
    let synced = || {
        let text = fs::read_to_string(&state).unwrap_or_default();
        files.iter().all(|(n, _)| text.contains(&escaped(n)))
    };
    assert!(wait_until(WAIT, synced), "no sync state\n{}", p.dump());

    // The other side restarts: its listings lack a file and say so.
    let syncs_before = {
        let mut l = listed.lock().unwrap();
        l.files.retain(|(n, _)| n != gone);
        l.marked = true;
        l.longlists
    };
    let marked_polls = || listed.lock().unwrap().marked_sent >= 5;
    assert!(wait_until(WAIT, marked_polls), "{}", p.dump());
    assert!(!p.stdout().contains("removed"), "{}", p.dump());
    assert_eq!(
        listed.lock().unwrap().longlists,
        syncs_before,
        "a Sync ran from a marked listing\n{}",
        p.dump()
    );
    assert!(here.path().join(gone).exists(), "{}", p.dump());
    p.await_stderr("the other peer's first scan is still running", WAIT);

    // Its scan is done and the file is still missing: now it is gone
    // there, reported and (a poll later, once it is quiet) deleted here.
    listed.lock().unwrap().marked = false;
    p.await_stdout(&format!("{}: removed {}", fake.addr, escaped(gone)), WAIT);
    assert!(
        wait_until(WAIT, || !here.path().join(gone).exists()),
        "{}",
        p.dump()
    );
    for (name, body) in &files[1..] {
        assert_eq!(fs::read_to_string(here.path().join(name)).unwrap(), *body);
    }
    let trash = here.path().join(".p2pshare/trash");
    assert!(contains_file_named(&trash, gone), "not in the trash");
}

/// True when a file named `name` lies anywhere below `dir`.
fn contains_file_named(dir: &Path, name: &str) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        match path.is_dir() {
            true => contains_file_named(&path, name),
            false => e.file_name().to_str() == Some(name),
        }
    })
}

fn a_sync_typed_during_the_peers_first_scan_waits_for_it() {
    let there = TempDir::new("peer-sync-there");
    let here = TempDir::new("peer-sync-here");
    let odd = "new \t\\ \"*?[]\" ✓.txt";
    there.write(odd, "from there\n");
    there.write("same.txt", "on both\n");
    here.write("same.txt", "on both\n");
    here.write("only here.txt", "mine\n");
    many_files(here.path());
    let server = start(there.path());
    // The scan may end before the Sync reaches the share on a loaded
    // machine: a run counts only when the Sync said it waits, else the
    // peer is started again on a share as it was.
    for _ in 0..5 {
        let mut p = Proc::spawn(&peer_args(here.path(), 0, &server.addr().to_string(), &[]));
        p.send("Sync --delete\n");
        p.await_stderr("p2pshare: Sync with ", Duration::from_secs(120));
        let err = p.stderr();
        let waited = err.find("p2pshare: Sync waits for the first scan of this side's share");
        let scanned = err.find("p2pshare: the first scan is done");
        let summary = err.find("p2pshare: Sync with ").unwrap();
        if waited.is_some() {
            // It waited for the scan, and planned from the whole share.
            assert!(waited < scanned && scanned < Some(summary), "{}", p.dump());
            assert!(
                err.contains(": 1 downloaded, 0 conflicts, 0 deleted, "),
                "{}",
                p.dump()
            );
            assert!(err.contains(" 1 in step, 0 failed"), "{}", p.dump());
            assert_eq!(fs::read(here.path().join(odd)).unwrap(), b"from there\n");
            assert!(here.path().join("only here.txt").exists());
            assert!(here.path().join("many/249/199").exists());
            return;
        }
        drop(p);
        let _ = fs::remove_file(here.path().join(odd));
        let _ = fs::remove_dir_all(here.path().join(".p2pshare/sync"));
    }
    panic!("the first scan always ended before the Sync reached the share");
}

fn a_sync_peer_syncs_at_its_first_poll_after_its_own_first_scan() {
    let there = TempDir::new("peer-poll-there");
    let here = TempDir::new("peer-poll-here");
    let odd = "new \t\\ \"*?[]\" ✓.txt";
    there.write(odd, "from there\n");
    there.write("same.txt", "on both\n");
    here.write("same.txt", "on both\n");
    many_files(here.path());
    let server = start(there.path());
    // A run counts only when the poller reached the other peer before
    // the scan was done (its first poll comes at once).
    for _ in 0..5 {
        let p = Proc::spawn(&peer_args(
            here.path(),
            0,
            &server.addr().to_string(),
            &["--sync"],
        ));
        p.await_stderr("p2pshare: Sync with ", Duration::from_secs(120));
        let err = p.stderr();
        let connected = err.find("p2pshare: connected to the other peer").unwrap();
        let scanned = err.find("p2pshare: the first scan is done");
        let summary = err.find("p2pshare: Sync with ").unwrap();
        if scanned.is_some_and(|s| connected < s) {
            // The poll during the scan left the Sync to a later one.
            assert!(!err.contains("Sync waits"), "{}", p.dump());
            assert!(scanned < Some(summary), "{}", p.dump());
            assert!(
                err.contains(": 1 downloaded, 0 conflicts, 0 deleted, "),
                "{}",
                p.dump()
            );
            assert_eq!(fs::read(here.path().join(odd)).unwrap(), b"from there\n");
            return;
        }
        drop(p);
        let _ = fs::remove_file(here.path().join(odd));
        let _ = fs::remove_dir_all(here.path().join(".p2pshare/sync"));
    }
    panic!("the first scan always ended before the poller reached the other peer");
}

cases![
    a_peer_greets_at_once_and_marks_its_listings_until_its_first_scan_is_done,
    a_poller_neither_reports_nor_syncs_from_a_listing_marked_incomplete,
    a_sync_typed_during_the_peers_first_scan_waits_for_it,
    a_sync_peer_syncs_at_its_first_poll_after_its_own_first_scan,
];
