//! `.p2pignore` (PROTOCOL.md section 4) against a real server: patterns by
//! base name, by path, anchored, folder-only; comments and blank lines;
//! read again at every rescan. An ignored file is not listed, not hashed,
//! not downloadable (the same 550 as a missing file), and not a name an
//! upload may take.

use crate::support::*;

use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

use p2pshare::server::{Config, RunningServer};

const WAIT: Duration = Duration::from_secs(20);

const IGNORE: &str = "\
# build output and logs
*.log

secret/
build/out.bin
/top-only.txt
   # an indented comment
#keep.txt
[invalid
";

/// Every file of the test share, with whether `.p2pignore` keeps it out.
const FILES: &[(&str, bool)] = &[
    ("a.txt", false),
    ("a.log", true),
    ("deep/x/b.log", true),
    ("logs.txt", false),
    ("secret/plan.txt", true),
    ("docs/secret/inner.txt", true),
    ("notes/secret", false), // a file named like the folder pattern
    ("build/out.bin", true),
    ("build/other.bin", false),
    ("other/build/out.bin", false),
    ("top-only.txt", true),
    ("sub/top-only.txt", false),
    ("#keep.txt", false),
    ("[invalid", false),
];

fn setup(tag: &str) -> (TempDir, RunningServer) {
    let dir = TempDir::new(tag);
    for (name, _) in FILES {
        dir.write(name, format!("content of {name}\n"));
    }
    dir.write(".p2pignore", IGNORE);
    let server = start_with(Config {
        allow_upload: true,
        ..config(dir.path())
    });
    (dir, server)
}

fn shared() -> Vec<String> {
    let mut v: Vec<String> = FILES
        .iter()
        .filter(|(_, ignored)| !ignored)
        .map(|(n, _)| n.to_string())
        .collect();
    v.sort();
    v
}

fn ignored_files_are_not_listed_anywhere() {
    let (_dir, server) = setup("ign-list");
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("IndexGet longlist").names(), shared());
    assert_eq!(c.cmd("FileHash checkall").names(), shared());
    assert_eq!(c.cmd("IndexGet regex *").names(), shared());
    assert_eq!(c.cmd("IndexGet regex *.log").names(), Vec::<String>::new());
    assert_eq!(
        c.cmd("IndexGet regex **/out.bin").names(),
        ["other/build/out.bin"]
    );
    assert_eq!(
        c.cmd("IndexGet shortlist 1970-01-01 9999-12-31").names(),
        shared()
    );
}

fn ignored_files_cannot_be_hashed_or_downloaded() {
    let (_dir, server) = setup("ign-get");
    let mut c = Conn::open(server.addr());
    for (name, ignored) in FILES {
        let verify = c.cmd(&format!("FileHash verify {}", quote(name)));
        let down = c.cmd(&format!("FileDownload {}", quote(name)));
        if *ignored {
            // The very reply a missing file gets.
            let text = format!("550 no such file or not shared: {name}");
            assert_eq!(verify.lines, std::slice::from_ref(&text), "{name}");
            assert_eq!(down.lines, [text], "{name}");
        } else {
            assert_eq!(verify.code, 213, "{name}: {:?}", verify.lines);
            assert_eq!(down.code, 150, "{name}: {:?}", down.lines);
            let (port, token) = data_of(&down);
            let mut d = data_connect(server.addr(), port, &token);
            let want = format!("content of {name}\n");
            assert_eq!(read_exact_n(&mut d, want.len() as u64), want.as_bytes());
            assert_eq!(c.read_reply().code, 226);
        }
    }
    // The ignore file itself is hidden.
    assert_eq!(c.cmd("FileDownload .p2pignore").code, 550);
}

fn a_link_to_an_ignored_file_or_folder_is_not_shared_either() {
    let (dir, server) = setup("ign-link");
    symlink(
        dir.path().join("secret/plan.txt"),
        dir.path().join("alias.txt"),
    )
    .unwrap();
    symlink(dir.path().join("secret"), dir.path().join("alias-dir")).unwrap();
    symlink(dir.path().join("a.log"), dir.path().join("log-link.txt")).unwrap();
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("FileHash verify alias.txt").code, 550);
    assert_eq!(c.cmd("FileDownload alias-dir/plan.txt").code, 550);
    assert_eq!(c.cmd("FileDownload log-link.txt").code, 550);
    // After a rescan the links are still not listed.
    c.cmd("NOOP");
    dir.write("marker.txt", "m\n");
    assert!(wait_until(WAIT, || c
        .cmd("IndexGet longlist")
        .names()
        .contains(&"marker.txt".to_string())));
    let names = c.cmd("IndexGet longlist").names();
    for link in ["alias.txt", "alias-dir/plan.txt", "log-link.txt"] {
        assert!(
            !names.contains(&link.to_string()),
            "{link} listed: {names:?}"
        );
    }
}

fn uploads_of_ignored_names_are_refused() {
    let (dir, server) = setup("ign-up");
    let before = entries_below(dir.path());
    let mut c = Conn::open(server.addr());
    for name in [
        "new.log",
        "deep/new.log",
        "secret/new.txt",
        "secret/deeper/new.txt",
        "x/secret/new.txt",
        "build/out.bin",
        "top-only.txt",
    ] {
        let got = upload_raw(&mut c, server.addr(), name, b"sneaky\n", None);
        assert_eq!(got.code(), 553, "{name}: {got:?}");
        assert!(got.last.is_none(), "{name}: no transfer expected");
    }
    assert_eq!(entries_below(dir.path()), before);
    // Names the file does not cover are fine.
    let got = upload_raw(&mut c, server.addr(), "sub/build/out.bin", b"fine\n", None);
    assert_eq!(got.code(), 226, "{got:?}");
}

fn the_ignore_file_is_read_again_at_every_rescan() {
    let (dir, server) = setup("ign-rescan");
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("IndexGet longlist").names(), shared());

    // Now logs are shared and text files are not.
    dir.write(".p2pignore", "*.txt\n");
    let expect: Vec<String> = {
        let mut v: Vec<String> = FILES
            .iter()
            .map(|(n, _)| n.to_string())
            .filter(|n| !n.ends_with(".txt"))
            .collect();
        v.sort();
        v
    };
    assert!(
        wait_until(WAIT, || c.cmd("IndexGet longlist").names() == expect),
        "{:?}",
        c.cmd("IndexGet longlist").names()
    );
    assert_eq!(c.cmd("FileHash verify a.log").code, 213);
    assert_eq!(c.cmd("FileHash verify a.txt").code, 550);

    // No ignore file at all: everything (visible) is shared.
    fs::remove_file(dir.path().join(".p2pignore")).unwrap();
    let mut all: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
    all.sort();
    assert!(wait_until(WAIT, || c.cmd("IndexGet longlist").names() == all));
    assert_eq!(c.cmd("FileHash verify secret/plan.txt").code, 213);
}

cases![
    ignored_files_are_not_listed_anywhere,
    ignored_files_cannot_be_hashed_or_downloaded,
    a_link_to_an_ignored_file_or_folder_is_not_shared_either,
    uploads_of_ignored_names_are_refused,
    the_ignore_file_is_read_again_at_every_rescan,
];
