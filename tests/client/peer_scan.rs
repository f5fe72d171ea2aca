//! Peer mode and first scans: a `p2pshare peer` opens its port before the
//! first scan of its share, as `serve` does, and marks its listings until
//! that scan is done.

use std::fs;
use std::time::{Duration, Instant};

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

cases![a_peer_greets_at_once_and_marks_its_listings_until_its_first_scan_is_done];
