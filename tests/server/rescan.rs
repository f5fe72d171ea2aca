//! The rescan thread and the md5 cache: files added, changed and removed
//! while the server runs show up in `IndexGet longlist` and
//! `FileHash checkall`; unchanged files are answered from the cache, also
//! after a restart.
//!
//! Cache trick used below: the md5 cache is keyed by size, mtime and inode.
//! Rewriting a file in place with other bytes of the same length and then
//! putting its mtime back leaves all three unchanged, so a server that
//! still reports the OLD md5 has provably not read the file again.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::*;
use p2pshare::server::Config;

const WAIT: Duration = Duration::from_secs(20);

/// name -> (size, timestamp) from `IndexGet longlist`.
fn listing(c: &mut Conn) -> Vec<(String, String, String)> {
    c.cmd("IndexGet longlist")
        .rows()
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

/// name -> md5 from `FileHash checkall`.
fn sums(c: &mut Conn) -> Vec<(String, String)> {
    c.cmd("FileHash checkall")
        .rows()
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn md5_in(c: &mut Conn, name: &str) -> Option<String> {
    sums(c).into_iter().find(|(n, _)| n == name).map(|(_, m)| m)
}

fn added_changed_and_removed_files_show_up() {
    let dir = TempDir::new("rescan-live");
    dir.write("a.txt", "a\n");
    dir.write("b.txt", "b\n");
    let c_path = dir.write("c.txt", "cccc\n");
    set_mtime(&c_path, time("2026-01-01T00:00:00Z"));
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    assert_eq!(
        c.cmd("IndexGet longlist").names(),
        ["a.txt", "b.txt", "c.txt"]
    );

    // Added: a file, and a file in a new folder.
    dir.write("d.txt", "new file\n");
    dir.write("new/e.txt", "in a new folder\n");
    assert!(
        wait_until(WAIT, || c.cmd("IndexGet longlist").names()
            == ["a.txt", "b.txt", "c.txt", "d.txt", "new/e.txt"]),
        "added files not listed: {:?}",
        listing(&mut c)
    );
    assert_eq!(md5_in(&mut c, "d.txt"), Some(md5_hex(b"new file\n")));
    assert_eq!(
        md5_in(&mut c, "new/e.txt"),
        Some(md5_hex(b"in a new folder\n"))
    );

    // Changed size.
    dir.write("b.txt", "b, now longer\n");
    assert!(
        wait_until(WAIT, || listing(&mut c)
            .iter()
            .any(|(n, size, _)| n == "b.txt" && size == "14")),
        "{:?}",
        listing(&mut c)
    );
    assert_eq!(md5_in(&mut c, "b.txt"), Some(md5_hex(b"b, now longer\n")));

    // Changed mtime only: same size, other bytes, another timestamp.
    fs::write(&c_path, "CCCC\n").unwrap();
    set_mtime(&c_path, time("2001-02-03T04:05:06Z"));
    assert!(
        wait_until(WAIT, || listing(&mut c)
            .iter()
            .any(|(n, size, t)| n == "c.txt"
                && size == "5"
                && t == "2001-02-03T04:05:06Z")),
        "{:?}",
        listing(&mut c)
    );
    let row = c.cmd("FileHash checkall").rows();
    let c_row = row.iter().find(|r| r[0] == "c.txt").unwrap();
    assert_eq!(
        c_row[1..],
        [md5_hex(b"CCCC\n"), "2001-02-03T04:05:06Z".into()]
    );

    // Removed.
    fs::remove_file(dir.path().join("a.txt")).unwrap();
    fs::remove_dir_all(dir.path().join("new")).unwrap();
    assert!(
        wait_until(WAIT, || c.cmd("IndexGet longlist").names()
            == ["b.txt", "c.txt", "d.txt"]),
        "{:?}",
        listing(&mut c)
    );
    assert_eq!(sums(&mut c).len(), 3);
    assert_eq!(c.cmd("FileHash verify a.txt").code, 550);
    assert_eq!(c.cmd("FileDownload new/e.txt").code, 550);
}

fn unchanged_folder_answers_checkall_from_the_cache() {
    let dir = TempDir::new("rescan-cache");
    let path = dir.write("same.txt", "original content\n");
    dir.write("other.txt", "other\n");
    // No timed rescan during this test: the in-place rewrite below passes
    // through a moment where the mtime is new, and a scan seeing that
    // moment would rightly rehash. What is tested is that checkall answers
    // from the cache instead of reading files.
    let server = start_with(Config {
        rescan: Duration::from_secs(3600),
        ..config(dir.path())
    });
    let mut c = Conn::open(server.addr());
    let old = md5_hex(b"original content\n");
    assert_eq!(md5_in(&mut c, "same.txt"), Some(old.clone()));

    rewrite_keeping_key(&path, b"ORIGINAL CONTENT\n");
    assert_eq!(md5_in(&mut c, "same.txt"), Some(old.clone()));
    assert_eq!(md5_in(&mut c, "other.txt"), Some(md5_hex(b"other\n")));
    let v = c.cmd("FileHash verify same.txt");
    assert_eq!(v.rows()[0][1], old);
}

/// Every file in the state folder, read as text.
fn state_files(share: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(share.join(".p2pshare")) {
        for e in entries.flatten() {
            if let Ok(text) = fs::read_to_string(e.path()) {
                out.push((e.file_name().to_string_lossy().into_owned(), text));
            }
        }
    }
    out
}

fn restart_does_not_rehash_an_unchanged_folder() {
    let dir = TempDir::new("rescan-restart");
    let same = dir.write("same.txt", "original content\n");
    let grown = dir.write("grown.txt", "short\n");
    let big = pseudo_random(300_000, 11);
    dir.write("sub/big.bin", &big);
    let old_same = md5_hex(b"original content\n");
    let expected = [
        ("grown.txt".to_string(), md5_hex(b"short\n")),
        ("same.txt".to_string(), old_same.clone()),
        ("sub/big.bin".to_string(), md5_hex(&big)),
    ];

    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    assert_eq!(sums(&mut c), expected);
    // The background hasher persists the cache under .p2pshare/.
    assert!(
        wait_until(WAIT, || state_files(dir.path()).iter().any(|(_, text)| {
            expected.iter().all(|(_, md5)| text.contains(md5))
        })),
        "no md5 cache under .p2pshare/: {:?}",
        state_files(dir.path())
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    );
    drop(c);
    server.stop();

    // While the server is down: same.txt gets other bytes with its size,
    // mtime and inode kept (see the trick at the top); grown.txt really
    // changes.
    rewrite_keeping_key(&same, b"ORIGINAL CONTENT\n");
    fs::write(&grown, "no longer short\n").unwrap();

    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    assert_eq!(
        sums(&mut c),
        [
            ("grown.txt".to_string(), md5_hex(b"no longer short\n")),
            // The old md5: the restarted server trusted its cache.
            ("same.txt".to_string(), old_same),
            ("sub/big.bin".to_string(), md5_hex(&big)),
        ]
    );
}

cases![
    added_changed_and_removed_files_show_up,
    unchanged_folder_answers_checkall_from_the_cache,
    restart_does_not_rehash_an_unchanged_folder,
];
