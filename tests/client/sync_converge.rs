//! Two `p2pshare peer --sync --delete` processes after a conflict: both
//! end with the winner's version under the name and the loser's beside
//! it under one conflict name, whichever side syncs first; the user's
//! resolution on one side travels to the other; and a change on one
//! side soon after the other copied the file is never a conflict.

use crate::fake::{FakeServer, Session};
use crate::support::*;

use crate::process::*;
use crate::sync_peer::{await_converged, files};

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

const WAIT: Duration = Duration::from_secs(30);

/// The peers of these tests: `--sync --delete`, polling every `poll`.
fn start(a_dir: &Path, b_dir: &Path, poll: &str) -> (Proc, Proc) {
    let extra = ["--sync", "--delete", "--poll", poll];
    let (a, b, _, _) = start_peers(a_dir, b_dir, &extra, WAIT);
    (a, b)
}

fn copies(f: &BTreeMap<String, Vec<u8>>) -> Vec<&String> {
    f.keys().filter(|n| n.contains(".sync-conflict-")).collect()
}

/// History rows of `dir` for requests this peer made (`out`) that start
/// with `prefix`.
fn made(dir: &Path, prefix: &str) -> usize {
    fs::read_to_string(dir.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&"out") && f.get(3).is_some_and(|r| r.starts_with(prefix)))
        .count()
}

/// Lets both peers poll `n` more times each, then checks that nothing
/// was downloaded meanwhile.
fn quiet_for(a: &Path, b: &Path, n: usize, who: (&Proc, &Proc)) {
    let got = (made(a, "FileDownload"), made(b, "FileDownload"));
    let polls = (made(a, "FileHash checkall"), made(b, "FileHash checkall"));
    assert!(wait_until(WAIT, || {
        made(a, "FileHash checkall") >= polls.0 + n && made(b, "FileHash checkall") >= polls.1 + n
    }));
    assert_eq!(
        (made(a, "FileDownload"), made(b, "FileDownload")),
        got,
        "downloads once in step\nA {}\nB {}",
        who.0.dump(),
        who.1.dump()
    );
}

/// `YYYYMMDD-HHMMSS` of a time, in UTC.
fn stamp(t: SystemTime) -> String {
    let s = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let (days, rest) = ((s / 86_400) as i64, s % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, se) = (rest / 3600, rest / 60 % 60, rest % 60);
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{se:02}")
}

fn conflict_then_resolution_converges_with_one_copy() {
    let (a_dir, b_dir) = (TempDir::new("conv-a"), TempDir::new("conv-b"));
    let (ap, bp) = (a_dir.path(), b_dir.path());
    let name = "new \t🦀 *?[].txt";
    a_dir.write(name, "first\n");
    a_dir.write("other.txt", "other\n");
    a_dir.write("third.txt", "third\n");
    let (a, b) = start(ap, bp, "200ms");
    await_converged(ap, bp, |f| f.len() == 3, (&a, &b));
    // Both sync states know the file before the peers stop.
    quiet_for(ap, bp, 6, (&a, &b));
    drop((a, b));

    // Changed on both sides while stopped; A's version is the older one.
    let now = SystemTime::now();
    let a_time = now - Duration::from_secs(100);
    a_dir.write(name, "A version\n");
    set_mtime(&ap.join(name), a_time);
    b_dir.write(name, "B version\n");
    set_mtime(&bp.join(name), now - Duration::from_secs(50));
    let a_id = fs::read_to_string(ap.join(".p2pshare/share-id")).unwrap();
    let copy = format!(
        "new \t🦀 *?[].sync-conflict-{}-{}.txt",
        stamp(a_time),
        &a_id.trim()[..8]
    );

    let extra = ["--sync", "--delete", "--poll", "200ms"];
    let (a, b, a_addr, _) = start_peers(ap, bp, &extra, WAIT);
    await_converged(
        ap,
        bp,
        |f| {
            f.get(name).is_some_and(|c| c == b"B version\n")
                && f.get(&copy).is_some_and(|c| c == b"A version\n")
        },
        (&a, &b),
    );
    assert_eq!(copies(&files(ap)), [&copy], "one conflict copy");
    quiet_for(ap, bp, 4, (&a, &b));

    // The user resolves it on A: merged text, the copy deleted. From the
    // moment A lists it, B follows within two of its polls.
    a_dir.write(name, "merged\n");
    fs::remove_file(ap.join(&copy)).unwrap();
    let merged = md5_hex(b"merged\n");
    let mut to_a = Conn::open(a_addr);
    let listed = wait_until(WAIT, || {
        let rows = to_a.cmd("FileHash checkall").rows();
        rows.len() == 3 && rows.iter().any(|r| r[1] == merged)
    });
    assert!(listed, "A never listed the resolution\nA {}", a.dump());
    let b_polls = made(bp, "FileHash checkall");
    await_converged(
        ap,
        bp,
        |f| f.get(name).is_some_and(|c| c == b"merged\n") && copies(f).is_empty(),
        (&a, &b),
    );
    // Two polls of B, each with its sync's own listing: one that sees the
    // change (and leaves it, still changing), one that finds it settled
    // and syncs.
    let took = made(bp, "FileHash checkall") - b_polls;
    assert!(
        took <= 4,
        "B took {took} listings to follow\nB {}",
        b.dump()
    );
    quiet_for(ap, bp, 4, (&a, &b));
    assert!(copies(&files(ap)).is_empty() && copies(&files(bp)).is_empty());
    assert_eq!(files(ap), files(bp));
    assert_eq!(files(ap).len(), 3);
}

fn a_change_soon_after_the_copy_is_never_a_conflict() {
    let (p_dir, q_dir) = (TempDir::new("soon-p"), TempDir::new("soon-q"));
    let (pp, qp) = (p_dir.path(), q_dir.path());
    p_dir.write("start.txt", "start\n");
    let (p, q) = start(pp, qp, "100ms");
    await_converged(pp, qp, |f| f.len() == 1, (&p, &q));
    let before = (made(pp, "FileDownload"), made(qp, "FileDownload"));
    let runs = 20;
    for i in 0..runs {
        let from_q = format!("from-q {i}.txt");
        q_dir.write(&from_q, format!("Q {i} one\n"));
        let copied = wait_until(WAIT, || pp.join(&from_q).exists());
        assert!(copied, "run {i}\nP {}\nQ {}", p.dump(), q.dump());
        // Q changes it, P adds a file, at once.
        q_dir.write(&from_q, format!("Q {i} two, longer\n"));
        p_dir.write(&format!("later/p{i}.txt"), "P\n");
        await_converged(
            pp,
            qp,
            |f| {
                f.get(&from_q)
                    .is_some_and(|c| *c == format!("Q {i} two, longer\n").into_bytes())
                    && f.contains_key(&format!("later/p{i}.txt"))
            },
            (&p, &q),
        );
        assert!(
            copies(&files(pp)).is_empty(),
            "run {i}: {:?}\nP {}\nQ {}",
            files(pp).keys(),
            p.dump(),
            q.dump()
        );
    }
    quiet_for(pp, qp, 4, (&p, &q));
    // Each file came over once per version: P took both of Q's, Q took P's.
    assert_eq!(
        (made(pp, "FileDownload"), made(qp, "FileDownload")),
        (before.0 + 2 * runs, before.1 + runs),
        "a file was downloaded again\nP {}\nQ {}",
        p.dump(),
        q.dump()
    );
    assert!(copies(&files(qp)).is_empty());
}

/// A peer that lists `doc.txt` as one version (older than this side's)
/// and serves another when asked for it: it changed in between.
fn changing_peer(s: &mut Session) -> std::io::Result<()> {
    let (listed, served) = (b"listed\n", b"changed meanwhile\n");
    s.say("220 fake ready; share-id=0123456789abcdef0123456789abcdef\n")?;
    while let Some(line) = s.request()? {
        if line == "FileHash checkall" {
            let md5 = md5_hex(listed);
            s.say(&format!(
                "213-name\tmd5\ttimestamp\n213-doc.txt\t{md5}\t2026-01-01T00:00:00Z\n213 1 files\n"
            ))?;
        } else if line == "IndexGet longlist" {
            s.say("213-name\tsize\ttimestamp\ttype\n213-doc.txt\t7\t2026-01-01T00:00:00Z\ttext/plain\n213 1 files\n")?;
        } else if line.starts_with("FileDownload TCP doc.txt") {
            s.announce("doc.txt", served)?;
            s.data()?.write_all(served)?;
            s.drop_data();
            s.say("226 ok\n")?;
        } else if line == "QUIT" {
            return s.say("221 bye\n");
        } else {
            s.say("500 the fake peer does not know that\n")?;
        }
    }
    Ok(())
}

fn a_conflict_copy_is_only_ever_the_version_planned() {
    let here = TempDir::new("copy-planned");
    here.write("doc.txt", "here\n");
    let fake = FakeServer::start(changing_peer);
    let sync = || {
        let args = client_args(fake.addr, here.path(), &["-c", "Sync"]);
        run(&args, "")
    };
    let got = sync();
    assert_eq!(got.code(), Some(1), "{got}");
    assert!(
        got.stderr
            .contains("changed on the peer since it was listed"),
        "{got}"
    );
    // This side's version won and stays; no copy of a version nobody
    // planned, which the peer would never have under that name.
    assert_eq!(files(here.path()).keys().collect::<Vec<_>>(), ["doc.txt"]);
    assert_eq!(fs::read(here.path().join("doc.txt")).unwrap(), b"here\n");
}

cases![
    a_conflict_copy_is_only_ever_the_version_planned,
    conflict_then_resolution_converges_with_one_copy,
    a_change_soon_after_the_copy_is_never_a_conflict,
];
