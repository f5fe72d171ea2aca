//! Path safety: every name a request carries either names a shared file or
//! is answered `550`, and the refusal reads exactly like the one for a
//! plain missing file, whether or not anything exists at the outside
//! target.
//!
//! ```text
//! > FileDownload ../x
//! < 550 no such file or not shared: ../x
//! > FileHash verify leak.txt          (leak.txt -> /…/outside/secret.txt)
//! < 550 no such file or not shared: leak.txt
//! ```

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

const SECRET: &str = "TOP SECRET: outside the shared folder\n";
const SECRET_DIR: &str = "TOP SECRET: in a folder outside the share\n";

/// `root/` holds the share and, beside it, files that must never be
/// reachable: `root/x`, `root/outside/secret.txt`,
/// `root/outside/dir/inner.txt`.
struct Layout {
    root: TempDir,
}

impl Layout {
    fn new(tag: &str) -> Layout {
        let root = TempDir::new(tag);
        let l = Layout { root };
        l.make_outside();
        l.root.write("share/inside.txt", "inside\n");
        l.root.write("share/a/b.txt", "b\n");
        l.root.write("share/docs/real.txt", "real\n");
        l.root.write("share/.hidden", "hidden\n");
        let share = l.share();
        let outside = l.root.path().join("outside");
        symlink(outside.join("secret.txt"), share.join("leak.txt")).unwrap();
        symlink("../outside/secret.txt", share.join("rel-leak.txt")).unwrap();
        symlink(outside.join("dir"), share.join("outdir")).unwrap();
        symlink(".p2pshare/history.tsv", share.join("peek.tsv")).unwrap();
        symlink(".hidden", share.join("peek-hidden")).unwrap();
        symlink(".p2pshare", share.join("statedir")).unwrap();
        l
    }

    fn share(&self) -> std::path::PathBuf {
        self.root.path().join("share")
    }

    fn make_outside(&self) {
        self.root.write("x", SECRET);
        self.root.write("outside/secret.txt", SECRET);
        self.root.write("outside/dir/inner.txt", SECRET_DIR);
    }

    /// Takes away every target the attempts could reach, so a second pass
    /// can show the replies do not depend on them.
    fn remove_targets(&self) {
        fs::remove_file(self.root.path().join("x")).unwrap();
        fs::remove_dir_all(self.root.path().join("outside")).unwrap();
        fs::remove_file(self.share().join(".hidden")).unwrap();
    }
}

/// Every traversal attempt, as the name the server receives.
fn attempts(outside: &Path) -> Vec<String> {
    let abs_secret = outside.join("secret.txt").display().to_string();
    vec![
        "../x".into(),
        "../outside/secret.txt".into(),
        "/etc/passwd".into(),
        abs_secret,
        "a/../../x".into(),
        "a/../inside.txt".into(),
        "./a".into(),
        "./inside.txt".into(),
        "a/./b.txt".into(),
        "a//b.txt".into(),
        "a/b.txt/".into(),
        "..".into(),
        ".".into(),
        "docs".into(),
        // NUL: a C library would stop reading the name at the NUL.
        "inside.txt\0".into(),
        "../x\0inside.txt".into(),
        // The server's own state folder and other hidden names.
        ".p2pshare/history.tsv".into(),
        ".p2pshare/hashes.tsv".into(),
        ".p2pshare".into(),
        ".hidden".into(),
        "a/.hidden".into(),
        // Symlinks inside the share pointing out of it, or into hidden
        // places.
        "leak.txt".into(),
        "rel-leak.txt".into(),
        "outdir".into(),
        "outdir/inner.txt".into(),
        "peek.tsv".into(),
        "peek-hidden".into(),
        "statedir".into(),
        "statedir/history.tsv".into(),
        // Encodings that only a decoder would turn into `..` or `/`.
        "..%2fx".into(),
        "%2e%2e/x".into(),
        "%2e%2e%2f%2e%2e%2fx".into(),
        "..\\x".into(),
        "a\\..\\..\\x".into(),
        "\u{ff0e}\u{ff0e}/x".into(),
        // Very long names: one huge component, a deep climb, a deep path.
        "a".repeat(300),
        format!("{}x", "../".repeat(1300)),
        format!("{}x", "d/".repeat(2000)),
    ]
}

/// The reply with the echoed name cut out, so refusals of different names
/// can be compared.
fn shape(reply: &Reply, name: &str) -> String {
    let text = reply.text();
    let echoed = p2pshare::protocol::shown(name);
    match text.strip_suffix(&echoed) {
        Some(head) => format!("{head}<name>"),
        None => text.replace(&echoed, "<name>"),
    }
}

/// Sends every attempt with each file verb; returns the replies in order
/// after checking each is a refusal shaped like the one for a missing file.
fn refuse_all(c: &mut Conn, names: &[String]) -> Vec<String> {
    let missing = "no-such-file.txt";
    let mut replies = Vec::new();
    for verb in ["FileDownload", "FileDownload TCP", "FileHash verify"] {
        let template = shape(&c.cmd(&format!("{verb} {missing}")), missing);
        assert!(template.starts_with("550 "), "{template}");
        for name in names {
            let r = c.cmd(&format!("{verb} {}", quote(name)));
            assert_eq!(r.code, 550, "{verb} {name:?}: {:?}", r.lines);
            assert_eq!(
                shape(&r, name),
                template,
                "{verb} {name:?} must read like a missing file"
            );
            assert!(!r.text().contains("TOP SECRET"), "{:?}", r.lines);
            replies.push(r.text());
        }
    }
    c.assert_alive();
    replies
}

fn traversal_attempts_get_550_that_reveal_nothing() {
    let l = Layout::new("trav-refuse");
    let outside = l.root.path().join("outside");
    let server = start(&l.share());
    let names = attempts(&outside);
    assert!(names.len() >= 30);

    let mut c = Conn::open(server.addr());
    // After one request the state folder has a history, so peek.tsv has a
    // target.
    c.assert_alive();
    assert!(l.share().join(".p2pshare/history.tsv").exists());
    let with_targets = refuse_all(&mut c, &names);

    // Same requests with nothing at the outside targets: byte for byte the
    // same replies, so a client cannot probe what exists outside.
    l.remove_targets();
    let mut c = Conn::open(server.addr());
    let without_targets = refuse_all(&mut c, &names);
    assert_eq!(with_targets, without_targets);

    // The session and the server are fine: real files still come through.
    let (_, bytes, done) = download(&mut c, server.addr(), "inside.txt");
    assert_eq!(bytes, b"inside\n");
    assert_eq!(done.code, 226, "{:?}", done.lines);
}

fn nul_byte_sent_raw_inside_quotes_is_refused() {
    let l = Layout::new("trav-nul");
    let server = start(&l.share());
    let mut c = Conn::open(server.addr());
    for verb in ["FileDownload ", "FileHash verify "] {
        c.send_raw(format!("{verb}\"inside.txt\0../../x\"\n").as_bytes());
        let r = c.read_reply();
        assert_eq!(r.code, 550, "{:?}", r.lines);
    }
    c.assert_alive();
}

fn inside_links_are_served_and_listed_escaping_ones_are_not() {
    let l = Layout::new("trav-inside");
    let share = l.share();
    symlink("docs/real.txt", share.join("alias.txt")).unwrap();
    symlink(share.join("inside.txt"), share.join("abs-alias.txt")).unwrap();
    symlink("../docs/real.txt", share.join("a/up-alias.txt")).unwrap();
    let server = start(&share);
    let mut c = Conn::open(server.addr());

    // > IndexGet longlist
    // < 213-name	size	timestamp	type
    // < 213-a/b.txt	2	…	text/plain
    // …
    let list = c.cmd("IndexGet longlist");
    assert_eq!(
        list.names(),
        [
            "a/b.txt",
            "a/up-alias.txt",
            "abs-alias.txt",
            "alias.txt",
            "docs/real.txt",
            "inside.txt"
        ]
    );
    let sizes: Vec<_> = list.rows().into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(sizes, ["2", "5", "7", "5", "5", "7"]);

    let sums = c.cmd("FileHash checkall");
    assert_eq!(sums.names(), list.names());

    for (name, content) in [
        ("alias.txt", "real\n"),
        ("abs-alias.txt", "inside\n"),
        ("a/up-alias.txt", "real\n"),
    ] {
        let (r150, bytes, done) = download(&mut c, server.addr(), name);
        assert_eq!(bytes, content.as_bytes(), "{name}");
        assert_eq!(done.code, 226, "{:?}", done.lines);
        assert_eq!(row_of_150(&r150)[3], md5_hex(content.as_bytes()));
        let v = c.cmd(&format!("FileHash verify {name}"));
        assert_eq!(
            v.rows()[0][..2],
            [name.to_string(), md5_hex(content.as_bytes())]
        );
    }
}

fn symlinked_folder_inside_the_share_is_served() {
    let l = Layout::new("trav-dirlink");
    let share = l.share();
    // Several names, so some sort before the real folder whatever order
    // the file system lists them in.
    let aliases = ["docs-alias", "aaa-docs", "zzz-docs", "d"];
    for alias in aliases {
        symlink("docs", share.join(alias)).unwrap();
    }
    let server = start(&share);
    let mut s = DataSession::open(server.addr());
    for alias in aliases {
        let f = s.fetch(&format!("{alias}/real.txt"), None).unwrap();
        assert_eq!(f.bytes, b"real\n");
        assert_eq!(f.done.code, 226, "{:?}", f.done.lines);
    }
    // Listed once, under the real folder's name.
    let list = s.conn.cmd("IndexGet regex real.txt");
    assert_eq!(list.names(), ["docs/real.txt"]);
}

/// A symlink is swapped between an inside and an outside target (and a
/// symlinked folder between an inside and an outside folder) as fast as
/// possible while one session downloads and verifies through it: every
/// answer is the inside content or 550, never the outside content.
fn swapping_symlinks_never_leak_the_outside() {
    let l = Layout::new("trav-race");
    let share = l.share();
    let outside = l.root.path().join("outside");
    // Same name below both folders, so only the folder link decides.
    l.root.write("share/docs/inner.txt", "inner\n");
    let inside_file = share.join("inside.txt");
    let inside_dir = share.join("docs");
    symlink(&inside_file, share.join("link.txt")).unwrap();
    symlink(&inside_dir, share.join("dirlink")).unwrap();
    let server = start(&share);

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let share = share.clone();
        thread::spawn(move || {
            let pairs = [
                ("link.txt", inside_file, outside.join("secret.txt")),
                ("dirlink", inside_dir, outside.join("dir")),
            ];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (name, inside, out) in &pairs {
                    let target = if n.is_multiple_of(2) { out } else { inside };
                    // Replace atomically: the name always exists.
                    let tmp = share.join(format!(".swap-{name}"));
                    let _ = fs::remove_file(&tmp);
                    symlink(target, &tmp).unwrap();
                    fs::rename(&tmp, share.join(name)).unwrap();
                }
                n += 1;
            }
        })
    };

    let mut s = DataSession::open(server.addr());
    let cases = [("link.txt", "inside\n"), ("dirlink/inner.txt", "inner\n")];
    let (mut served, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0usize;
    while i < 400 || ((served < 20 || refused < 20) && Instant::now() < deadline) {
        let (name, content) = cases[i % 2];
        if i % 4 < 2 {
            match s.fetch(name, None) {
                Ok(f) => {
                    assert_eq!(f.bytes, content.as_bytes(), "{name}: {:?}", f.r150.lines);
                    assert_eq!(f.done.code, 226, "{:?}", f.done.lines);
                    assert_eq!(row_of_150(&f.r150)[3], md5_hex(content.as_bytes()));
                    served += 1;
                }
                Err(r) => {
                    assert_eq!(r.code, 550, "{name}: {:?}", r.lines);
                    refused += 1;
                }
            }
        } else {
            let r = s.conn.cmd(&format!("FileHash verify {name}"));
            match r.code {
                213 => {
                    assert_eq!(r.rows()[0][1], md5_hex(content.as_bytes()), "{name}");
                    served += 1;
                }
                550 => refused += 1,
                _ => panic!("{name}: {:?}", r.lines),
            }
        }
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    // Both sides of the swap were seen, so the race was really run.
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
}

/// A FIFO at `path`, made by mkfifo(1) (std has no mkfifo).
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// A writer that opens the FIFO at `path` on a thread of its own: that
/// open returns only once something opens the FIFO for reading. The
/// receiver hears when it did.
fn fifo_watch(path: &Path) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    thread::spawn(move || {
        let f = fs::OpenOptions::new().write(true).open(&path);
        let _ = tx.send(());
        drop(f);
    });
    rx
}

fn devices_sockets_and_fifos_get_550_and_are_never_opened() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("traversal-special");
    let outside = TempDir::new("traversal-special-outside");
    dir.write("a.txt", "a\n");
    let fifo = dir.path().join("a fifo \t\\ ✓");
    mkfifo(&fifo);
    let far_fifo = outside.path().join("far fifo");
    mkfifo(&far_fifo);
    symlink(&far_fifo, dir.path().join("to a fifo \"q\"")).unwrap();
    let socket = dir.path().join("a socket [*?]");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    symlink(&socket, dir.path().join("to a socket")).unwrap();
    symlink("/dev/null", dir.path().join("null")).unwrap();
    symlink("/dev/zero", dir.path().join("zero 🎉")).unwrap();
    let watches = [fifo_watch(&fifo), fifo_watch(&far_fifo)];
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let names = [
        "a fifo \t\\ ✓",
        "to a fifo \"q\"",
        "a socket [*?]",
        "to a socket",
        "null",
        "zero 🎉",
    ];
    for name in names {
        for verb in ["FileDownload", "FileDownload UDP", "FileHash verify"] {
            let began = Instant::now();
            let r = c.cmd(&format!("{verb} {}", quote(name)));
            assert_eq!(r.code, 550, "{verb} {name:?}: {:?}", r.lines);
            assert!(
                r.lines[0].starts_with("550 no such file or not shared: "),
                "{verb} {name:?}: {:?}",
                r.lines
            );
            assert!(began.elapsed() < Duration::from_secs(10), "{verb} {name:?}");
        }
    }
    let listed = c.cmd("IndexGet longlist").names();
    assert_eq!(listed, ["a.txt"]);
    c.assert_alive();
    // No FIFO was opened: their writers still wait.
    for (w, path) in watches.iter().zip([&fifo, &far_fifo]) {
        assert!(
            w.recv_timeout(Duration::from_millis(300)).is_err(),
            "{} was opened",
            path.display()
        );
    }
    // Let the writers go.
    for (w, path) in watches.iter().zip([&fifo, &far_fifo]) {
        let reader = fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000)
            .open(path)
            .unwrap();
        assert!(w.recv_timeout(Duration::from_secs(10)).is_ok());
        drop(reader);
    }
}

cases![
    devices_sockets_and_fifos_get_550_and_are_never_opened,
    traversal_attempts_get_550_that_reveal_nothing,
    nul_byte_sent_raw_inside_quotes_is_refused,
    inside_links_are_served_and_listed_escaping_ones_are_not,
    symlinked_folder_inside_the_share_is_served,
    swapping_symlinks_never_leak_the_outside,
];
