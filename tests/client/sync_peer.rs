//! `p2pshare peer --sync`: two real peer processes on loopback, each
//! pulling the other's changes after every poll that found one. They
//! converge both ways (new, changed and deleted files), then go quiet;
//! a file still being written waits for a quiet poll.

use crate::support::*;

use crate::process::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// Starts A, then B ([`start_peers`]), both with `--sync --delete`.
fn start_pair(a_dir: &Path, b_dir: &Path) -> (Proc, Proc) {
    start_pair_with(a_dir, b_dir, &["--sync", "--delete"])
}

/// [`start_pair`], with these options for both instead of `--sync --delete`.
fn start_pair_with(a_dir: &Path, b_dir: &Path, sync: &[&str]) -> (Proc, Proc) {
    let (a, b, _, _) = start_peers(a_dir, b_dir, sync, WAIT);
    (a, b)
}

/// The visible files below `dir`, name → content.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    entries_below(dir)
        .into_iter()
        .filter(|n| !n.ends_with('/') && !n.split('/').any(|c| c.starts_with('.')))
        .map(|n| {
            let c = fs::read(dir.join(&n)).unwrap_or_default();
            (n, c)
        })
        .collect()
}

/// Polls until both folders hold the same files and `want` says yes.
pub(crate) fn await_converged(
    a: &Path,
    b: &Path,
    want: impl Fn(&BTreeMap<String, Vec<u8>>) -> bool,
    who: (&Proc, &Proc),
) {
    let ok = wait_until(WAIT, || {
        let fa = files(a);
        fa == files(b) && want(&fa)
    });
    assert!(
        ok,
        "never converged\nA: {:?}\nB: {:?}\nA {}\nB {}",
        files(a).keys(),
        files(b).keys(),
        who.0.dump(),
        who.1.dump()
    );
}

/// The rows of the sync states in `dir`'s state folder (one per file the
/// two sides last agreed on).
fn synced(dir: &Path) -> usize {
    fs::read_dir(dir.join(".p2pshare/sync"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "tsv"))
                .map(|e| {
                    let text = fs::read_to_string(e.path()).unwrap_or_default();
                    text.lines().count().saturating_sub(1)
                })
                .sum()
        })
        .unwrap_or(0)
}

/// History rows of `dir` whose request starts with `prefix`.
fn requests(dir: &Path, prefix: &str) -> usize {
    fs::read_to_string(dir.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split('\t').nth(3).is_some_and(|r| r.starts_with(prefix)))
        .count()
}

fn two_sync_peers_converge_both_ways_then_go_quiet() {
    let (a_dir, b_dir) = (TempDir::new("syncpeer-a"), TempDir::new("syncpeer-b"));
    a_dir.write("from-a.txt", "A\n");
    a_dir.write("tab\there \u{1f980}.txt", "odd\n");
    b_dir.write("from-b/deep.txt", "B\n");
    b_dir.write("common.txt", "same\n");
    a_dir.write("common.txt", "same\n");
    let (a, b) = start_pair(a_dir.path(), b_dir.path());
    let (ap, bp) = (a_dir.path(), b_dir.path());
    await_converged(ap, bp, |f| f.len() == 4, (&a, &b));
    // The folders agree; the sync states too once each side has synced
    // after the other's downloads (a file kept as new here is recorded
    // only then). A change made before would meet no common version: a
    // conflict, not a change.
    assert!(
        wait_until(WAIT, || synced(ap) == 4 && synced(bp) == 4),
        "the sync states never held all 4 files: A {}, B {}\nA {}\nB {}",
        synced(ap),
        synced(bp),
        a.dump(),
        b.dump()
    );

    // Made, changed and deleted, on either side.
    a_dir.write("new-on-a.txt", "new A\n");
    b_dir.write("from-a.txt", "changed on B\n");
    fs::remove_file(bp.join("common.txt")).unwrap();
    await_converged(
        ap,
        bp,
        |f| {
            f.get("from-a.txt").is_some_and(|c| c == b"changed on B\n")
                && f.contains_key("new-on-a.txt")
                && !f.contains_key("common.txt")
        },
        (&a, &b),
    );
    assert!(
        entries_below(&ap.join(".p2pshare/trash"))
            .iter()
            .any(|n| n.ends_with("/common.txt")),
        "the deletion went to A's trash"
    );

    // In step: several more polls on both sides, and no download. The
    // count starts two polls after the folders agreed: a download's
    // history rows are written once it is done, which may be just after
    // its file took its name.
    let polls = || {
        (
            requests(ap, "FileHash checkall"),
            requests(bp, "FileHash checkall"),
        )
    };
    let agreed = polls();
    assert!(wait_until(WAIT, || {
        let now = polls();
        now.0 >= agreed.0 + 2 && now.1 >= agreed.1 + 2
    }));
    let downloads = (requests(ap, "FileDownload"), requests(bp, "FileDownload"));
    let polls = polls();
    assert!(wait_until(WAIT, || {
        requests(ap, "FileHash checkall") >= polls.0 + 6
            && requests(bp, "FileHash checkall") >= polls.1 + 6
    }));
    assert_eq!(
        (requests(ap, "FileDownload"), requests(bp, "FileDownload")),
        downloads,
        "downloads after the folders were in step\nA {}\nB {}",
        a.dump(),
        b.dump()
    );
    assert!(
        files(ap).keys().all(|n| !n.contains("sync-conflict")),
        "{:?}",
        files(ap).keys()
    );
}

fn a_file_still_being_written_waits_for_a_quiet_poll() {
    let (a_dir, b_dir) = (TempDir::new("syncbusy-a"), TempDir::new("syncbusy-b"));
    a_dir.write("calm.txt", "calm\n");
    let (a, b) = start_pair(a_dir.path(), b_dir.path());
    let (ap, bp) = (a_dir.path(), b_dir.path());
    await_converged(ap, bp, |f| f.len() == 1, (&a, &b));

    // Grows on A, a line every 20 ms, for a while: B, polling every
    // 200 ms, sees it change at every poll and leaves it alone. On a
    // machine so loaded that the writer stalls for a whole poll, the file
    // did sit still for a poll, and B may rightly take it: such a round
    // proves nothing and runs again, under a new name.
    for round in 0..4 {
        let name = format!("growing-{round}.log");
        let path = ap.join(&name);
        let mut written = Vec::new();
        let until = Instant::now() + Duration::from_millis(1500);
        let (mut seen_early, mut longest_gap) = (false, Duration::ZERO);
        let mut last = Instant::now();
        while Instant::now() < until {
            written.extend_from_slice(format!("line {}\n", written.len()).as_bytes());
            fs::write(&path, &written).unwrap();
            longest_gap = longest_gap.max(last.elapsed());
            last = Instant::now();
            seen_early |= bp.join(&name).exists();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Then quiet: it comes over whole.
        await_converged(
            ap,
            bp,
            |f| f.get(&name).is_some_and(|c| *c == written),
            (&a, &b),
        );
        if longest_gap < Duration::from_millis(150) {
            assert!(
                !seen_early,
                "B took the file while it was still being written\nB {}",
                b.dump()
            );
            return;
        }
        eprintln!("  (the writer stalled {longest_gap:?}: the round runs again)");
    }
    panic!("the writer never kept its pace of a line every 20 ms in four rounds");
}

fn sync_typed_at_the_peers_console_pulls_from_the_other_peer() {
    let (a_dir, b_dir) = (TempDir::new("syncconsole-a"), TempDir::new("syncconsole-b"));
    a_dir.write("from-a.txt", "A\n");
    let (a, mut b) = start_pair_with(a_dir.path(), b_dir.path(), &[]);
    b.await_stderr("connected to the other peer", WAIT);
    b.send("Sync --dry-run\n");
    b.await_stdout("download\tfrom-a.txt\t2\t", WAIT);
    assert!(!b_dir.path().join("from-a.txt").exists(), "a dry run");
    b.send("Sync\n");
    let arrived = wait_until(WAIT, || {
        fs::read(b_dir.path().join("from-a.txt")).is_ok_and(|c| c == b"A\n")
    });
    assert!(arrived, "A {}\nB {}", a.dump(), b.dump());
    // The sync state is the peer's own state folder's, written once the
    // downloads are in place.
    let state = b_dir.path().join(".p2pshare/sync");
    assert!(
        wait_until(WAIT, || entries_below(&state).len() == 1),
        "{:?}",
        entries_below(&state)
    );
}

cases![
    two_sync_peers_converge_both_ways_then_go_quiet,
    a_file_still_being_written_waits_for_a_quiet_poll,
    sync_typed_at_the_peers_console_pulls_from_the_other_peer,
];
