//! The first scan runs behind an open port: a server of a large share
//! greets at once, its listings say they are incomplete until the scan is
//! done, a file is downloaded by name before the scan reached it, and a
//! `Sync --delete` against the still scanning server deletes nothing.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::*;
use crate::support::*;

/// The mark on the last line of a table made during the first scan.
const MARK: &str = "(incomplete: the first scan is still running)";

/// Files enough that the first scan takes a while on any machine.
const MANY: usize = 50_000;

/// Writes `MANY` small files into 250 folders below `dir`.
fn many_files(dir: &Path) {
    for d in 0..250 {
        let folder = dir.join(format!("many/{d:03}"));
        fs::create_dir_all(&folder).unwrap();
        for f in 0..MANY / 250 {
            fs::write(folder.join(format!("{f:03}")), b"x").unwrap();
        }
    }
}

/// Runs `client ADDR --share SHARE -c "Sync ARGS"`.
fn sync(addr: SocketAddr, share: &Path, args: &str) -> Finished {
    let command = format!("Sync {args}");
    run(&client_args(addr, share, &["-c", &command]), "")
}

fn the_first_scan_runs_behind_an_open_port_and_listings_say_so() {
    let (there, here) = (TempDir::new("scan-there"), TempDir::new("scan-here"));
    let odd = "gone \t\\ \"*?[]\" ✓.txt";
    let kept = "kept \t\\ ✓.txt";
    there.write(odd, "synced once\n");
    // A first sync, against a server whose scan is done, makes the file
    // one both sides had.
    let server = start(there.path());
    let first = sync(server.addr(), here.path(), "");
    assert_eq!(first.code(), Some(0), "{first}");
    assert!(here.path().join(odd).exists(), "{first}");
    server.stop();
    // Then it goes there, and the share grows large.
    fs::remove_file(there.path().join(odd)).unwrap();
    there.write(kept, "found by name\n");
    many_files(there.path());

    // The scan of a fresh server may still end before a check is made on
    // a loaded machine; a check counts only when the scan was still
    // running after it, else the server is started again.
    let mut proven = (false, false, false);
    for _ in 0..5 {
        let started = Instant::now();
        let (server, share) = start_scanning(config(there.path()));
        assert!(started.elapsed() < Duration::from_secs(1));
        let mut c = Conn::open(server.addr());

        let list = c.cmd("IndexGet longlist");
        if !share.scanned() {
            assert!(list.last().ends_with(MARK), "{:?}", list.last());
            proven.0 = true;
        }
        let (r150, bytes, done) = download(&mut c, server.addr(), &quote(kept));
        assert_eq!(r150.code, 150);
        assert_eq!(bytes, b"found by name\n");
        assert_eq!(done.code, 226, "{:?}", done.lines);
        proven.1 |= !share.scanned();

        let out = sync(server.addr(), here.path(), "--delete --force-delete");
        if !share.scanned() {
            assert!(here.path().join(odd).exists(), "deleted: {out}");
            assert!(
                out.stderr
                    .contains("Sync deleted nothing: the peer's listing is incomplete"),
                "{out}"
            );
            proven.2 = true;
        }
        assert!(wait_until(Duration::from_secs(60), || share.scanned()));
        let after = c.cmd("IndexGet longlist");
        assert!(!after.last().contains("incomplete"), "{:?}", after.last());
        assert_eq!(after.rows().len(), MANY + 1);
        server.stop();
        if proven.0 && proven.1 && proven.2 {
            return;
        }
    }
    panic!("the first scan always ended before the checks: {proven:?}");
}

cases![the_first_scan_runs_behind_an_open_port_and_listings_say_so];
