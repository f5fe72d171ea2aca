//! `Sync`: the client pulls a real server's changes into its share, one
//! decision per file, with a sync state that follows the server's share
//! id. Each test runs the binary against a server on 127.0.0.1:0 over
//! real sockets and real folders.

use crate::support::*;

use crate::process::*;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Names that must sync like any other.
const ODD: [&str; 7] = [
    "tab\tname.txt",
    "line\nfeed.txt",
    "carriage\rreturn.txt",
    "emoji \u{1f980}.txt",
    "glob *?[].txt",
    "back\\slash \"q\".txt",
    "deep/er/x y.txt",
];

/// The visible files below `dir` (hidden names and the state folder left
/// out), name → md5.
fn md5s_below(dir: &Path) -> BTreeMap<String, String> {
    entries_below(dir)
        .into_iter()
        .filter(|n| !n.ends_with('/') && !n.split('/').any(|c| c.starts_with('.')))
        .map(|n| {
            let md5 = md5_hex(&fs::read(dir.join(&n)).unwrap());
            (n, md5)
        })
        .collect()
}

/// Polls until the server's `FileHash checkall` lists exactly what is in
/// `dir` now.
fn await_index(addr: SocketAddr, dir: &Path) {
    let want = md5s_below(dir);
    let mut c = Conn::open(addr);
    let seen = wait_until(WAIT, || {
        let r = c.cmd("FileHash checkall");
        let got: BTreeMap<String, String> = r
            .rows()
            .into_iter()
            .map(|row| (unescaped(&row[0]), row[1].clone()))
            .collect();
        got == want
    });
    assert!(seen, "the server never listed {want:?}");
}

/// Runs `client ADDR --share SHARE -c "Sync ARGS"`.
fn sync(addr: SocketAddr, share: &Path, args: &str) -> Finished {
    let command = format!("Sync {args}");
    run(&client_args(addr, share, &["-c", command.trim_end()]), "")
}

/// The rows of a sync's TSV output (header checked), as (action, name,
/// reason), names unescaped.
fn rows(f: &Finished) -> Vec<(String, String, String)> {
    let mut lines = f.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("action\tname\tsize\ttimestamp\tmd5\treason"),
        "{f}"
    );
    lines
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(v.len(), 6, "{l:?}");
            (v[0].to_string(), unescaped(v[1]), v[5].to_string())
        })
        .collect()
}

fn action_of(rows: &[(String, String, String)], name: &str) -> Option<String> {
    rows.iter().find(|r| r.1 == name).map(|r| r.0.clone())
}

/// A server sharing `dir`, its files indexed.
fn serve(dir: &Path) -> p2pshare::server::RunningServer {
    let s = start(dir);
    await_index(s.addr(), dir);
    s
}

fn every_decision_dry_run_then_carried_out() {
    let (there, here) = (TempDir::new("sync-there"), TempDir::new("sync-here"));
    for n in [
        "changed.txt",
        "kept.txt",
        "both.txt",
        "same.txt",
        "gone-here.txt",
        "gone-there.txt",
    ] {
        there.write(n, format!("v1 of {n}\n"));
    }
    let server = serve(there.path());
    let first = sync(server.addr(), here.path(), "");
    assert_eq!(first.code(), Some(0), "{first}");
    assert_eq!(md5s_below(here.path()), md5s_below(there.path()));

    there.write("changed.txt", "v2 there\n");
    here.write("kept.txt", "v2 here\n");
    there.write("both.txt", "v2 there\n");
    here.write("both.txt", "v2 here\n");
    fs::remove_file(here.path().join("gone-here.txt")).unwrap();
    fs::remove_file(there.path().join("gone-there.txt")).unwrap();
    here.write("new-here.txt", "mine\n");
    for n in ODD {
        there.write(n, format!("odd {n:?}\n"));
    }
    // The peer's version of both.txt is the older: this side's wins.
    set_mtime(&there.path().join("both.txt"), time("2026-01-01T00:00:00Z"));
    // The peer's time, to see that it is kept.
    set_mtime(
        &there.path().join("changed.txt"),
        time("2026-01-02T03:04:05Z"),
    );
    await_index(server.addr(), there.path());
    let before = md5s_below(here.path());

    let dry = sync(server.addr(), here.path(), "--dry-run");
    assert_eq!(dry.code(), Some(0), "{dry}");
    let plan = rows(&dry);
    let want = [
        ("changed.txt", "download"),
        ("kept.txt", "keep"),
        ("both.txt", "conflict"),
        ("gone-here.txt", "skip"),
        ("gone-there.txt", "skip"),
        ("new-here.txt", "keep"),
    ];
    for (name, action) in want {
        assert_eq!(
            action_of(&plan, name).as_deref(),
            Some(action),
            "{name}\n{dry}"
        );
    }
    for n in ODD {
        assert_eq!(
            action_of(&plan, n).as_deref(),
            Some("download"),
            "{n:?}\n{dry}"
        );
    }
    assert_eq!(
        action_of(&plan, "same.txt"),
        None,
        "files in step are not listed\n{dry}"
    );
    assert_eq!(md5s_below(here.path()), before, "a dry run changes nothing");

    let real = sync(server.addr(), here.path(), "");
    assert_eq!(real.code(), Some(0), "{real}");
    assert_eq!(
        rows(&real).len(),
        plan.len(),
        "the same rows as the plan\n{real}"
    );
    assert!(real.stderr.contains("1 conflicts"), "{real}");
    let read = |n: &str| fs::read_to_string(here.path().join(n)).unwrap();
    assert_eq!(read("changed.txt"), "v2 there\n");
    let mtime = fs::metadata(here.path().join("changed.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, time("2026-01-02T03:04:05Z"));
    assert_eq!(read("kept.txt"), "v2 here\n");
    assert_eq!(read("both.txt"), "v2 here\n", "the local version stays");
    let conflict: Vec<String> = entries_below(here.path())
        .into_iter()
        .filter(|n| n.starts_with("both.sync-conflict-") && n.ends_with(".txt"))
        .collect();
    assert_eq!(conflict.len(), 1, "{:?}", entries_below(here.path()));
    assert_eq!(read(&conflict[0]), "v2 there\n");
    let peer8 = &share_id(server.addr())[..8];
    assert_eq!(
        conflict,
        [format!("both.sync-conflict-20260101-000000-{peer8}.txt")],
        "named after the losing version's time and side"
    );
    assert!(
        !here.path().join("gone-here.txt").exists(),
        "no resurrection"
    );
    assert!(
        here.path().join("gone-there.txt").exists(),
        "no deletion without --delete"
    );
    for n in ODD {
        assert_eq!(read(n), format!("odd {n:?}\n"), "{n:?}");
    }

    // Nothing left to do: no downloads, and no second conflict file.
    let again = sync(server.addr(), here.path(), "");
    assert_eq!(again.code(), Some(0), "{again}");
    assert!(
        rows(&again).iter().all(|r| r.0 == "keep" || r.0 == "skip"),
        "{again}"
    );

    // With --delete the file deleted there goes to the trash.
    let del = sync(server.addr(), here.path(), "--delete");
    assert_eq!(del.code(), Some(0), "{del}");
    assert_eq!(
        action_of(&rows(&del), "gone-there.txt").as_deref(),
        Some("delete"),
        "{del}"
    );
    assert!(!here.path().join("gone-there.txt").exists());
    let trash = here.path().join(".p2pshare/trash");
    let kept: Vec<String> = entries_below(&trash);
    assert!(
        kept.iter().any(|n| n.ends_with("/gone-there.txt")),
        "{kept:?}"
    );
    assert!(
        !here.path().join("gone-here.txt").exists(),
        "still not fetched"
    );
}

/// The share id the server announces in its greeting.
fn share_id(addr: SocketAddr) -> String {
    let c = Conn::open(addr);
    let after = c.greeting.split("share-id=").nth(1).unwrap();
    let id = after.split(';').next().unwrap().to_string();
    assert_eq!(id.len(), 32, "{}", c.greeting);
    id
}

fn the_guard_holds_back_mass_deletions() {
    let (there, here) = (TempDir::new("guard-there"), TempDir::new("guard-here"));
    for n in ["a", "b", "c", "d"] {
        there.write(n, n);
    }
    let server = serve(there.path());
    assert_eq!(sync(server.addr(), here.path(), "").code(), Some(0));
    for n in ["a", "b", "c"] {
        fs::remove_file(there.path().join(n)).unwrap();
    }
    await_index(server.addr(), there.path());
    let held = sync(server.addr(), here.path(), "--delete");
    assert_eq!(held.code(), Some(1), "{held}");
    assert!(held.stderr.contains("3 of the 4"), "{held}");
    assert_eq!(md5s_below(here.path()).len(), 4, "nothing deleted");

    // A peer that suddenly lists nothing is held back too.
    fs::remove_file(there.path().join("d")).unwrap();
    await_index(server.addr(), there.path());
    let empty = sync(server.addr(), here.path(), "--delete");
    assert_eq!(empty.code(), Some(1), "{empty}");
    assert!(empty.stderr.contains("lists no file at all"), "{empty}");
    assert_eq!(md5s_below(here.path()).len(), 4, "nothing deleted");

    let forced = sync(server.addr(), here.path(), "--delete --force-delete");
    assert_eq!(forced.code(), Some(0), "{forced}");
    assert!(md5s_below(here.path()).is_empty());
    assert_eq!(
        entries_below(&here.path().join(".p2pshare/trash"))
            .iter()
            .filter(|n| !n.ends_with('/'))
            .count(),
        4
    );
}

fn the_same_share_on_a_new_port_keeps_its_sync_state() {
    let (there, here) = (TempDir::new("port-there"), TempDir::new("port-here"));
    there.write("a.txt", "a");
    here.write("mine.txt", "mine");
    let server = serve(there.path());
    let (old_addr, id) = (server.addr(), share_id(server.addr()));
    assert_eq!(sync(old_addr, here.path(), "").code(), Some(0));
    server.stop();
    // Changed there and here while the peer was away.
    there.write("a.txt", "a2");
    here.write("mine.txt", "mine2");
    let server = serve(there.path());
    assert_ne!(server.addr(), old_addr);
    assert_eq!(share_id(server.addr()), id, "the share id is kept");
    let f = sync(server.addr(), here.path(), "");
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(
        action_of(&rows(&f), "a.txt").as_deref(),
        Some("download"),
        "{f}"
    );
    assert!(f.stderr.contains(" 0 conflicts"), "{f}");
    assert_eq!(fs::read_to_string(here.path().join("a.txt")).unwrap(), "a2");
}

fn a_pattern_syncs_only_its_files() {
    let (there, here) = (TempDir::new("pat-there"), TempDir::new("pat-here"));
    there.write("a.txt", "a");
    there.write("b.bin", "b");
    let server = serve(there.path());
    let f = sync(server.addr(), here.path(), "\"*.txt\"");
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(
        md5s_below(here.path()).keys().collect::<Vec<_>>(),
        ["a.txt"]
    );
}

fn a_file_that_keeps_changing_during_a_sync_is_never_stored_half_made() {
    let (there, here) = (TempDir::new("busy-there"), TempDir::new("busy-here"));
    let versions = [pseudo_random(2 << 20, 1), pseudo_random(2 << 20, 2)];
    there.write("busy.bin", &versions[0]);
    there.write("calm.txt", "calm");
    let server = serve(there.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path, versions) = (
            stop.clone(),
            there.path().join("busy.bin"),
            versions.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                // Rewritten in place, never truncated: a reader sees it
                // change under it, and only whole versions between writes.
                let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                std::io::Write::write_all(&mut f, &versions[i % 2]).unwrap();
            }
        })
    };
    let f = sync(server.addr(), here.path(), "");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(
        fs::read_to_string(here.path().join("calm.txt")).unwrap(),
        "calm",
        "{f}"
    );
    let whole: Vec<String> = versions.iter().map(|v| md5_hex(v)).collect();
    if let Ok(got) = fs::read(here.path().join("busy.bin")) {
        assert!(
            whole.contains(&md5_hex(&got)),
            "a mixed file was stored\n{f}"
        );
    }
    // Once it is quiet, the next Sync brings the two sides in step.
    await_index(server.addr(), there.path());
    let f = sync(server.addr(), here.path(), "");
    assert!(f.code() == Some(0), "{f}");
    assert_eq!(
        md5s_below(here.path()).get("busy.bin"),
        md5s_below(there.path()).get("busy.bin"),
        "{f}"
    );
}

fn large_files_come_over_two_connections() {
    let (there, here) = (TempDir::new("par-there"), TempDir::new("par-here"));
    for i in 0..2 {
        there.write(&format!("big{i}.bin"), pseudo_random(9 << 20, i));
    }
    let server = serve(there.path());
    let f = sync(server.addr(), here.path(), "");
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(md5s_below(here.path()), md5s_below(there.path()));
    // The server saw the two downloads come from two control connections.
    let history = fs::read_to_string(there.path().join(".p2pshare/history.tsv")).unwrap();
    let peers: std::collections::BTreeSet<&str> = history
        .lines()
        .filter(|l| l.contains("\tFileDownload TCP big"))
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    assert_eq!(peers.len(), 2, "{history}");
}

fn a_peer_without_a_share_id_is_refused() {
    let here = TempDir::new("noid-here");
    let fake = fake::FakeServer::start(|s| {
        s.greet()?;
        while let Some(line) = s.request()? {
            if line == "QUIT" {
                return s.say("221 bye\n");
            }
            s.say("500 no\n")?;
        }
        Ok(())
    });
    let f = sync(fake.addr, here.path(), "");
    assert_eq!(f.code(), Some(1), "{f}");
    assert!(f.stderr.contains("no share id"), "{f}");
}

use crate::fake;

fn names_a_peer_should_never_list_are_left_out_and_nothing_lands_outside() {
    let outer = TempDir::new("sync-hostile");
    let here = outer.path().join("share");
    let fake = fake::FakeServer::start(|s| {
        s.say("220 fake ready; share-id=0123456789abcdef0123456789abcdef; HELP lists commands\n")?;
        let md5 = format!("{:x}", md5::compute(b"evil"));
        let names = ["../evil.txt", "/etc/evil", "a//b", ".hidden", "ok/../../x"];
        let _ = s.until("FileHash checkall")?;
        let mut table = String::from("213-name\tmd5\ttimestamp\n");
        for n in names {
            table.push_str(&format!("213-{n}\t{md5}\t2026-01-02T03:04:05Z\n"));
        }
        table.push_str(&format!("213 {} files\n", names.len()));
        s.say(&table)?;
        let _ = s.until("IndexGet longlist")?;
        s.say("213-name\tsize\ttimestamp\ttype\n213 0 files\n")?;
        let _ = s.until("never")?;
        Ok(())
    });
    let f = sync(fake.addr, &here, "");
    assert_eq!(f.code(), Some(0), "{f}");
    assert!(f.stderr.contains("5 of the peer's files"), "{f}");
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.starts_with("FileDownload")),
        "{:?}",
        fake.requests()
    );
    let outside: Vec<String> = entries_below(outer.path())
        .into_iter()
        .filter(|e| !e.starts_with("share/"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    assert!(md5s_below(&here).is_empty(), "{:?}", md5s_below(&here));
}

fn a_conflict_lost_here_moves_this_sides_version_beside_it() {
    let (there, here) = (TempDir::new("lost-there"), TempDir::new("lost-here"));
    let name = "odd\tname \u{1f980}.txt";
    there.write(name, "v1\n");
    let server = serve(there.path());
    assert_eq!(sync(server.addr(), here.path(), "").code(), Some(0));
    // Changed on both sides; the peer's version is the newer.
    there.write(name, "there v2\n");
    set_mtime(&there.path().join(name), time("2026-03-01T00:00:00Z"));
    here.write(name, "here v2\n");
    set_mtime(&here.path().join(name), time("2026-02-01T00:00:00Z"));
    await_index(server.addr(), there.path());

    let dry = sync(server.addr(), here.path(), "--dry-run");
    let plan = rows(&dry);
    let row = plan.iter().find(|r| r.1 == name).expect("a row");
    assert_eq!(row.0, "conflict", "{dry}");
    assert!(row.2.contains("the peer's version wins"), "{dry}");
    let read = |n: &str| fs::read_to_string(here.path().join(n)).unwrap();
    assert_eq!(read(name), "here v2\n", "a dry run");

    let here_id = fs::read_to_string(here.path().join(".p2pshare/share-id")).unwrap();
    let copy = format!(
        "odd\tname \u{1f980}.sync-conflict-20260201-000000-{}.txt",
        &here_id.trim()[..8]
    );
    // Another file in the way of the copy: nothing moves, nothing is lost.
    here.write(&copy, "in the way\n");
    let blocked = sync(server.addr(), here.path(), "");
    assert_eq!(blocked.code(), Some(1), "{blocked}");
    assert!(blocked.stderr.contains("is in the way"), "{blocked}");
    assert_eq!(read(name), "here v2\n");
    assert_eq!(read(&copy), "in the way\n");
    fs::remove_file(here.path().join(&copy)).unwrap();

    let real = sync(server.addr(), here.path(), "");
    assert_eq!(real.code(), Some(0), "{real}");
    assert!(real.stderr.contains("1 conflicts"), "{real}");
    assert_eq!(read(name), "there v2\n", "the winner under the name");
    assert_eq!(read(&copy), "here v2\n", "this side's version beside it");
    let copies = entries_below(here.path())
        .into_iter()
        .filter(|n| n.contains(".sync-conflict-"))
        .count();
    assert_eq!(copies, 1, "{:?}", entries_below(here.path()));

    // In step now: the copy is new here, nothing else to do.
    let again = sync(server.addr(), here.path(), "");
    assert_eq!(
        rows(&again),
        [("keep".to_string(), copy.clone(), "new here".to_string())],
        "{again}"
    );
}

cases![
    a_conflict_lost_here_moves_this_sides_version_beside_it,
    every_decision_dry_run_then_carried_out,
    the_guard_holds_back_mass_deletions,
    the_same_share_on_a_new_port_keeps_its_sync_state,
    a_pattern_syncs_only_its_files,
    a_file_that_keeps_changing_during_a_sync_is_never_stored_half_made,
    large_files_come_over_two_connections,
    a_peer_without_a_share_id_is_refused,
    names_a_peer_should_never_list_are_left_out_and_nothing_lands_outside,
];
