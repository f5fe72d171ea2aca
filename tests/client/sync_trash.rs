//! Sync's trash: every version a Sync replaces or removes is kept there
//! first, `Sync --restore` lists and brings it back under any name, and
//! the trash stays within its bounds, refusing a step it has no room for.
//! Each test runs the binary against a real server on 127.0.0.1:0, over
//! real sockets and real folders.

use crate::process::*;
use crate::support::*;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The visible files below `dir` (hidden names left out), name → md5.
/// A file gone between the listing and its read (a running peer moved it
/// into the trash meanwhile) is left out, as a later look would.
fn md5s_below(dir: &Path) -> BTreeMap<String, String> {
    entries_below(dir)
        .into_iter()
        .filter(|n| !n.ends_with('/') && !n.split('/').any(|c| c.starts_with('.')))
        .filter_map(|n| match fs::read(dir.join(&n)) {
            Ok(bytes) => Some((n, md5_hex(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{n}: {e}"),
        })
        .collect()
}

/// Polls until the server's `FileHash checkall` lists exactly what is in
/// `dir` now.
fn await_index(addr: SocketAddr, dir: &Path) {
    let want = md5s_below(dir);
    let mut c = Conn::open(addr);
    let seen = wait_until(WAIT, || {
        let got: BTreeMap<String, String> = c
            .cmd("FileHash checkall")
            .rows()
            .into_iter()
            .map(|row| (unescaped(&row[0]), row[1].clone()))
            .collect();
        got == want
    });
    assert!(seen, "the server never listed {want:?}");
}

/// A server sharing `dir`, its files indexed.
fn serve(dir: &Path) -> p2pshare::server::RunningServer {
    let s = start(dir);
    await_index(s.addr(), dir);
    s
}

/// Runs `client ADDR --share SHARE OPTIONS... -c COMMAND`.
fn client(addr: SocketAddr, share: &Path, options: &[&str], command: &str) -> Finished {
    let mut extra = options.to_vec();
    extra.extend(["-c", command]);
    run(&client_args(addr, share, &extra), "")
}

/// The rows of a Sync's (or a restore's) TSV output, header checked, as
/// (action, name, reason), names unescaped.
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

fn row_of(f: &Finished, name: &str) -> (String, String) {
    let r = rows(f).into_iter().find(|r| r.1 == name);
    let (action, _, reason) = r.unwrap_or_else(|| panic!("no row for {name:?}\n{f}"));
    (action, reason)
}

/// The rows of `Sync --restore` (the list), header checked, as (time,
/// name, size), names unescaped.
fn trash_list(f: &Finished) -> Vec<(String, String, u64)> {
    let mut lines = f.stdout.lines();
    assert_eq!(lines.next(), Some("time\tname\tsize\ttimestamp"), "{f}");
    lines
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(v.len(), 4, "{l:?}");
            (v[0].to_string(), unescaped(v[1]), v[2].parse().unwrap())
        })
        .collect()
}

/// What the trash below `here`'s state folder holds: path below
/// `trash/` → content.
fn trash_of(here: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = here.join(".p2pshare/trash");
    entries_below(&dir)
        .into_iter()
        .filter(|n| !n.ends_with('/'))
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn trash_bytes(here: &Path) -> u64 {
    trash_of(here).values().map(|v| v.len() as u64).sum()
}

fn a_version_the_peer_agreed_on_then_changed_is_kept_in_the_trash_and_restorable() {
    let (there, here) = (TempDir::new("agree-there"), TempDir::new("agree-here"));
    there.write("thesis.txt", "my thesis, years of work\n");
    here.write("thesis.txt", "my thesis, years of work\n");
    there.write("other.txt", "other\n");
    let server = serve(there.path());
    // The peer lists the file with this side's md5: in step, agreed.
    let f = client(server.addr(), here.path(), &[], "Sync");
    assert_eq!(f.code(), Some(0), "{f}");
    // Then it offers other bytes under that name.
    there.write("thesis.txt", "the peer's bytes\n");
    await_index(server.addr(), there.path());
    let dry = client(server.addr(), here.path(), &[], "Sync --dry-run");
    assert_eq!(dry.code(), Some(0), "{dry}");
    let (action, reason) = row_of(&dry, "thesis.txt");
    assert_eq!(action, "download", "{dry}");
    assert!(
        reason.ends_with("changed there; the version here goes to the trash"),
        "{dry}"
    );
    let f = client(server.addr(), here.path(), &[], "Sync");
    assert_eq!(f.code(), Some(0), "{f}");
    let (_, reason) = row_of(&f, "thesis.txt");
    assert!(
        reason.starts_with("changed there; the version here went to trash/"),
        "{f}"
    );
    let read = |p: &str| fs::read_to_string(here.path().join(p)).unwrap();
    assert_eq!(read("thesis.txt"), "the peer's bytes\n");
    let trash = trash_of(here.path());
    assert_eq!(trash.len(), 1, "{trash:?}");
    let (at, old) = trash.iter().next().unwrap();
    assert!(at.ends_with("/thesis.txt"), "{at}");
    assert_eq!(old, b"my thesis, years of work\n");

    // Listed, then brought back; the peer's version goes to the trash in
    // turn, nothing is lost either way.
    let list = client(server.addr(), here.path(), &[], "Sync --restore");
    assert_eq!(list.code(), Some(0), "{list}");
    let listed = trash_list(&list);
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!((listed[0].1.as_str(), listed[0].2), ("thesis.txt", 25));
    let back = client(server.addr(), here.path(), &[], "Sync --restore thesis.txt");
    assert_eq!(back.code(), Some(0), "{back}");
    let (action, reason) = row_of(&back, "thesis.txt");
    assert_eq!(action, "restore", "{back}");
    assert!(
        reason.contains("the file that was here went to trash/"),
        "{back}"
    );
    assert_eq!(read("thesis.txt"), "my thesis, years of work\n");
    let trash = trash_of(here.path());
    let kept: Vec<&Vec<u8>> = trash.values().collect();
    assert_eq!(kept, [&b"the peer's bytes\n".to_vec()], "{trash:?}");
    // Without room in the trash for the file here, a restore is refused.
    let refused = client(
        server.addr(),
        here.path(),
        &["--trash-max-size", "0"],
        "Sync --restore thesis.txt",
    );
    assert_eq!(refused.code(), Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .contains("thesis.txt: not restored: the file here differs and cannot go to the trash"),
        "{refused}"
    );
    assert_eq!(read("thesis.txt"), "my thesis, years of work\n");
    assert_eq!(trash_of(here.path()).len(), 1);
    // The next Sync keeps the restored version: it changed here.
    let f = client(server.addr(), here.path(), &[], "Sync");
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(row_of(&f, "thesis.txt").0, "keep", "{f}");
    assert_eq!(read("thesis.txt"), "my thesis, years of work\n");
}

/// Names that must go to the trash and come back like any other.
const ODD: [&str; 6] = [
    "tab\tname.txt",
    "line\nfeed.txt",
    "emoji \u{1f980}.txt",
    "back\\slash \"q\".txt",
    "glob *?[].txt",
    "deep/er/x y.txt",
];

fn every_name_is_listed_and_restored_from_the_trash() {
    let (there, here) = (TempDir::new("odd-there"), TempDir::new("odd-here"));
    for n in ODD {
        there.write(n, format!("odd {n:?}\n"));
    }
    let server = serve(there.path());
    assert_eq!(
        client(server.addr(), here.path(), &[], "Sync").code(),
        Some(0)
    );
    for n in ODD {
        fs::remove_file(there.path().join(n)).unwrap();
    }
    there.write("left.txt", "so the listing is not empty\n");
    await_index(server.addr(), there.path());
    let f = client(
        server.addr(),
        here.path(),
        &[],
        "Sync --delete --force-delete",
    );
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(
        md5s_below(here.path()).keys().collect::<Vec<_>>(),
        ["left.txt"]
    );
    let list = client(server.addr(), here.path(), &[], "Sync --restore");
    assert_eq!(list.code(), Some(0), "{list}");
    let mut listed: Vec<String> = trash_list(&list).into_iter().map(|r| r.1).collect();
    listed.sort();
    let mut want: Vec<String> = ODD.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(listed, want, "{list}");
    // Each name as the list shows it, typed back as a word.
    for line in list.stdout.lines().skip(1) {
        let (time, field) = {
            let v: Vec<&str> = line.split('\t').collect();
            (v[0].to_string(), v[1].to_string())
        };
        let command = format!("Sync --restore {} {time}", pasted(&field));
        let back = client(server.addr(), here.path(), &[], &command);
        assert_eq!(back.code(), Some(0), "{command}\n{back}");
        let name = unescaped(&field);
        assert_eq!(row_of(&back, &name).0, "restore", "{back}");
        assert_eq!(
            fs::read_to_string(here.path().join(&name)).unwrap(),
            format!("odd {name:?}\n")
        );
    }
    assert!(
        trash_of(here.path()).is_empty(),
        "{:?}",
        trash_of(here.path())
    );
    // A name that is not there is said so, exit 1.
    let none = client(
        server.addr(),
        here.path(),
        &[],
        "Sync --restore \"no such\\tfile\"",
    );
    assert_eq!(none.code(), Some(1), "{none}");
    assert!(
        none.stderr.contains("no such\\tfile is not in the trash"),
        "{none}"
    );
}

fn a_withdrawn_file_loop_keeps_the_trash_within_its_bound() {
    let (there, here) = (TempDir::new("loop-there"), TempDir::new("loop-here"));
    for n in ["a.txt", "b.txt", "c.txt"] {
        there.write(n, n);
    }
    // A version of an earlier run, older than the age bound: dropped.
    let old = here.write(".p2pshare/trash/20200101-000000/old/x.txt", "old");
    let server = serve(there.path());
    let bound = ["--trash-max-size", "5MiB"];
    let f = client(server.addr(), here.path(), &bound, "Sync");
    assert_eq!(f.code(), Some(0), "{f}");
    assert!(!old.exists(), "a version past 30 days is dropped");
    assert!(!here.path().join(".p2pshare/trash/20200101-000000").exists());
    let big = |i: u64| pseudo_random(2 << 20, 100 + i);
    for i in 0..4 {
        there.write("big.bin", big(i));
        await_index(server.addr(), there.path());
        let f = client(server.addr(), here.path(), &bound, "Sync --delete");
        assert_eq!(f.code(), Some(0), "{f}");
        assert_eq!(row_of(&f, "big.bin").0, "download", "{f}");
        fs::remove_file(there.path().join("big.bin")).unwrap();
        await_index(server.addr(), there.path());
        let f = client(
            server.addr(),
            here.path(),
            &bound,
            "Sync --delete --force-delete",
        );
        assert_eq!(f.code(), Some(0), "{f}");
        assert_eq!(row_of(&f, "big.bin").0, "delete", "{f}");
        assert!(
            trash_bytes(here.path()) <= 5 << 20,
            "the trash holds {} bytes after round {i}",
            trash_bytes(here.path())
        );
    }
    // What the last run took is there, the oldest went first.
    let kept: Vec<Vec<u8>> = trash_of(here.path()).into_values().collect();
    assert_eq!(kept.len(), 2, "two 2 MiB versions fit in 5 MiB");
    assert!(kept.contains(&big(3)) && kept.contains(&big(2)));
}

fn a_peer_that_offers_and_withdraws_a_file_in_a_loop_keeps_the_trash_bounded() {
    let (there, here) = (TempDir::new("ploop-there"), TempDir::new("ploop-here"));
    for n in ["a.txt", "b.txt", "c.txt"] {
        there.write(n, n);
    }
    let server = serve(there.path());
    let extra = [
        "--sync",
        "--delete",
        "--force-delete",
        "--trash-max-size",
        "20MiB",
    ];
    let args = peer_args(here.path(), 0, &server.addr().to_string(), &extra);
    let peer = Proc::spawn(&args);
    let has = |want: Option<&str>| {
        wait_until(WAIT, || {
            md5s_below(here.path()).get("big.bin").map(String::as_str) == want
        })
    };
    for i in 0..4 {
        let big = pseudo_random(8 << 20, 200 + i);
        // Made whole under a hidden name, then renamed: offered at once.
        let tmp = there.write(".big.tmp", &big);
        fs::rename(&tmp, there.path().join("big.bin")).unwrap();
        assert!(
            has(Some(&md5_hex(&big))),
            "round {i}: never fetched\n{}",
            peer.dump()
        );
        fs::remove_file(there.path().join("big.bin")).unwrap();
        assert!(has(None), "round {i}: never deleted\n{}", peer.dump());
        let bytes = trash_bytes(here.path());
        assert!(
            bytes <= 20 << 20,
            "round {i}: the trash holds {bytes} bytes"
        );
    }
    assert_eq!(trash_of(here.path()).len(), 2, "{}", peer.dump());
}

fn a_step_the_trash_has_no_room_for_is_refused() {
    let (there, here) = (TempDir::new("full-there"), TempDir::new("full-here"));
    for n in ["a.txt", "b.txt", "c.txt"] {
        there.write(n, n);
    }
    there.write("big.bin", pseudo_random(2 << 20, 1));
    there.write("grows.bin", pseudo_random(2 << 20, 2));
    let server = serve(there.path());
    let bound = ["--trash-max-size", "1MiB"];
    assert_eq!(
        client(server.addr(), here.path(), &bound, "Sync").code(),
        Some(0)
    );
    fs::remove_file(there.path().join("big.bin")).unwrap();
    there.write("grows.bin", pseudo_random(2 << 20, 3));
    await_index(server.addr(), there.path());
    let before = md5s_below(here.path());

    let dry = client(
        server.addr(),
        here.path(),
        &bound,
        "Sync --dry-run --delete",
    );
    assert_eq!(dry.code(), Some(1), "{dry}");
    for n in ["big.bin", "grows.bin"] {
        let (_, reason) = row_of(&dry, n);
        assert!(
            reason.contains("would be refused: the trash would outgrow its bound of 1.0 MiB"),
            "{dry}"
        );
    }
    let f = client(server.addr(), here.path(), &bound, "Sync --delete");
    assert_eq!(f.code(), Some(1), "{f}");
    let (action, reason) = row_of(&f, "big.bin");
    assert_eq!(action, "skip", "{f}");
    assert!(
        reason.contains(
            "not deleted: the trash would outgrow its bound of 1.0 MiB (--trash-max-size)"
        ),
        "{f}"
    );
    let (action, reason) = row_of(&f, "grows.bin");
    assert_eq!(action, "skip", "{f}");
    assert!(
        reason.contains("not downloaded: the trash would outgrow"),
        "{f}"
    );
    assert!(f.stderr.contains(" 2 failed"), "{f}");
    assert_eq!(md5s_below(here.path()), before, "nothing changed here");
    assert!(trash_of(here.path()).is_empty());
    // The base is kept: with room, the same steps are taken.
    let f = client(server.addr(), here.path(), &[], "Sync --delete");
    assert_eq!(f.code(), Some(0), "{f}");
    assert_eq!(row_of(&f, "big.bin").0, "delete", "{f}");
    assert_eq!(row_of(&f, "grows.bin").0, "download", "{f}");
    assert_eq!(trash_of(here.path()).len(), 2);
}

fn a_peer_restores_while_the_other_peer_is_away() {
    let here = TempDir::new("away-here");
    here.write(".p2pshare/trash/20261201-101010/d/tab\tname.txt", "kept\n");
    let args = peer_args(here.path(), 0, &closed_addr().to_string(), &[]);
    let mut peer = Proc::spawn(&args);
    peer.send("Sync --restore\n");
    peer.await_stdout("20261201-101010\td/tab\\tname.txt\t5\t", WAIT);
    peer.send("Sync --restore d/tab\\tname.txt\n");
    peer.await_stdout("restore\td/tab\\tname.txt\t5\t", WAIT);
    let back = fs::read_to_string(here.path().join("d/tab\tname.txt")).unwrap();
    assert_eq!(back, "kept\n");
}

fn the_trash_options_are_checked_and_told() {
    let bad = run(&["client", "--trash-max-size", "lots"], "");
    assert_eq!(bad.code(), Some(2), "{bad}");
    assert!(
        bad.stderr
            .contains("--trash-max-size: 'lots' is not a size"),
        "{bad}"
    );
    for who in ["client", "peer"] {
        let help = run(&[who, "--help"], "");
        assert!(help.stdout.contains("--trash-max-age DUR"), "{help}");
        assert!(help.stdout.contains("--trash-max-size SIZE"), "{help}");
    }
}

cases![
    a_version_the_peer_agreed_on_then_changed_is_kept_in_the_trash_and_restorable,
    every_name_is_listed_and_restored_from_the_trash,
    a_withdrawn_file_loop_keeps_the_trash_within_its_bound,
    a_peer_that_offers_and_withdraws_a_file_in_a_loop_keeps_the_trash_bounded,
    a_step_the_trash_has_no_room_for_is_refused,
    a_peer_restores_while_the_other_peer_is_away,
    the_trash_options_are_checked_and_told,
];
