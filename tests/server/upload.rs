//! Uploads (PROTOCOL.md, `FileUpload`) against a real server: off by
//! default, stored only after the size and md5 match, never over other
//! content, never outside the share, nothing left behind when they fail;
//! and the client's `FileUpload` run as the real binary.
//!
//! ```text
//! > FileUpload new.txt 15 5c0502b4ae024e29b2206838a92cdc09
//! < 150 DATA tcp port=35531 token=71bd792afd54369f
//!   (15 bytes on the data connection)
//! < 226 stored new.txt
//! ```

use crate::support::*;

use crate::process::*;

use std::fs;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p2pshare::server::{Config, RunningServer};

const WAIT: Duration = Duration::from_secs(20);

/// A share below a temp folder (so the folder beside it is "outside").
struct Setup {
    root: TempDir,
    share: PathBuf,
    outside: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let root = TempDir::new(tag);
        let share = root.path().join("share");
        let outside = root.path().join("outside");
        fs::create_dir_all(&share).unwrap();
        fs::create_dir_all(&outside).unwrap();
        Setup {
            root,
            share,
            outside,
        }
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        self.root.write(&format!("share/{rel}"), content)
    }

    /// A server with `--allow-upload`.
    fn serve(&self) -> RunningServer {
        start_with(Config {
            allow_upload: true,
            ..config(&self.share)
        })
    }
}

/// Waits until `name` is listed by `IndexGet longlist`.
fn await_listed(c: &mut Conn, name: &str) {
    let listed = wait_until(WAIT, || {
        c.cmd("IndexGet longlist")
            .names()
            .iter()
            .any(|n| n.as_str() == name)
    });
    assert!(listed, "{name} never appeared in the longlist");
}

fn uploads_are_refused_by_default() {
    let s = Setup::new("up-off");
    s.write("a.txt", "old\n");
    let server = start(&s.share);
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    let got = upload_raw(&mut c, server.addr(), "new.txt", b"hello\n", None);
    assert_eq!(got.first.code, 550, "{:?}", got.first.lines);
    assert_eq!(got.first.last(), "uploads are disabled on this peer");
    // Even a name that exists with the same content: still refused.
    let got = upload_raw(&mut c, server.addr(), "a.txt", b"old\n", None);
    assert_eq!(got.first.code, 550, "{:?}", got.first.lines);
    assert_eq!(entries_below(&s.share), before);
    c.assert_alive();
}

fn an_upload_is_stored_only_after_every_byte_and_its_md5_arrived() {
    let s = Setup::new("up-store");
    s.write("a.txt", "a\n");
    let server = s.serve();
    let mut c = Conn::open(server.addr());
    let content = pseudo_random(300_000, 11);
    let name = "new dir/deeper/file.bin";
    let r150 = c.cmd(&format!(
        "FileUpload {} {} {}",
        quote(name),
        content.len(),
        md5_hex(&content)
    ));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert_eq!(r150.lines.len(), 1, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    assert_eq!(token.len(), 16);
    let mut d = data_connect(server.addr(), port, &token);

    // Half the bytes: nothing under the name yet, only a hidden temporary
    // file beside it.
    d.write_all(&content[..150_000]).unwrap();
    let target = s.share.join(name);
    let folder = target.parent().unwrap().to_path_buf();
    let temps = || -> Vec<String> {
        fs::read_dir(&folder)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The temporary file is made before the 150 is sent.
    assert!(!target.exists(), "visible before it was verified");
    let t = temps();
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].starts_with(".file.bin.p2pshare-up-"), "{t:?}");
    assert!(
        c.quiet_for(Duration::from_millis(200)),
        "a reply came before the bytes"
    );

    d.write_all(&content[150_000..]).unwrap();
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    assert_eq!(done.last(), format!("stored {name}"));
    assert!(fs::read(&target).unwrap() == content, "stored bytes differ");
    assert!(temps().is_empty(), "temporary file left: {:?}", temps());

    // It is shared like any other file: listed after the next rescan,
    // hashed and downloaded with the same md5.
    await_listed(&mut c, name);
    let v = c.cmd(&format!("FileHash verify {}", quote(name)));
    assert_eq!(v.rows()[0][1], md5_hex(&content));
    let mut ds = DataSession::open(server.addr());
    let back = ds.fetch(name, None).unwrap();
    assert_eq!(back.done.code, 226);
    assert!(back.bytes == content);

    // The data connection is reused by the next upload of the session.
    let second = b"second file\n";
    let r = c.cmd(&format!(
        "FileUpload second.txt {} {}",
        second.len(),
        md5_hex(second)
    ));
    assert_eq!(data_of(&r), (port, token.clone()));
    d.write_all(second).unwrap();
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    assert_eq!(fs::read(s.share.join("second.txt")).unwrap(), second);

    // An empty file still takes the data connection, and stores.
    let r = c.cmd(&format!("FileUpload empty.txt 0 {}", md5_hex(b"")));
    assert_eq!(r.code, 150, "{:?}", r.lines);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
    assert_eq!(fs::read(s.share.join("empty.txt")).unwrap(), b"");
}

fn a_wrong_md5_stores_nothing_and_leaves_no_temporary_file() {
    let s = Setup::new("up-md5");
    s.write("a.txt", "a\n");
    let server = s.serve();
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    let content = pseudo_random(100_000, 12);
    let wrong = md5_hex(b"something else");
    for name in ["bad.bin", "new/folder/bad.bin"] {
        let got = upload_raw(&mut c, server.addr(), name, &content, Some(&wrong));
        assert_eq!(got.code(), 550, "{:?}", got);
        assert_eq!(
            got.text(),
            format!(
                "550 md5 mismatch: received {}, announced {wrong}; nothing stored",
                md5_hex(&content)
            )
        );
        assert_eq!(
            entries_below(&s.share),
            before,
            "{name}: something was left behind"
        );
    }
    c.assert_alive();
    // The same bytes with their own md5 then store fine.
    let got = upload_raw(&mut c, server.addr(), "bad.bin", &content, None);
    assert_eq!(got.code(), 226, "{:?}", got);
}

fn a_sender_that_stops_short_gets_426_and_nothing_is_stored() {
    let s = Setup::new("up-short");
    let server = s.serve();
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    let content = pseudo_random(100_000, 13);
    let r150 = c.cmd(&format!(
        "FileUpload sub/short.bin {} {}",
        content.len(),
        md5_hex(&content)
    ));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(server.addr(), port, &token);
    d.write_all(&content[..1000]).unwrap();
    d.shutdown(Shutdown::Both).unwrap();
    drop(d);
    let done = c.read_reply();
    assert_eq!(done.code, 426, "{:?}", done.lines);
    assert!(
        done.last()
            .starts_with("data connection broken after 1000 of 100000 bytes"),
        "{:?}",
        done.lines
    );
    assert!(done.last().ends_with("nothing stored"), "{:?}", done.lines);
    assert_eq!(entries_below(&s.share), before);
    c.assert_alive();
}

fn a_sender_that_stalls_gets_426_within_the_data_timeout() {
    let s = Setup::new("up-stall");
    let server = start_with(Config {
        allow_upload: true,
        data_timeout: Duration::from_millis(500),
        ..config(&s.share)
    });
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd(&format!("FileUpload stall.bin 5000 {}", md5_hex(b"x")));
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let mut d = data_connect(server.addr(), port, &token);
    d.write_all(&[7u8; 100]).unwrap();
    let began = std::time::Instant::now();
    let done = c.read_reply();
    assert_eq!(done.code, 426, "{:?}", done.lines);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert!(
        done.last().contains("after 100 of 5000 bytes"),
        "{:?}",
        done.lines
    );
    assert_eq!(entries_below(&s.share), before);
    c.assert_alive();
}

fn other_content_under_the_name_is_553_and_untouched() {
    let s = Setup::new("up-553");
    let path = s.write("docs/a.txt", "the original\n");
    set_mtime(&path, unix(1_700_000_000));
    let server = s.serve();
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    let got = upload_raw(&mut c, server.addr(), "docs/a.txt", b"an impostor\n", None);
    assert!(got.last.is_none(), "no transfer expected: {got:?}");
    assert_eq!(got.first.code, 553, "{:?}", got.first.lines);
    assert_eq!(
        got.first.last(),
        "docs/a.txt exists with other content; nothing was overwritten"
    );
    assert_eq!(fs::read(&path).unwrap(), b"the original\n");
    assert_eq!(
        fs::metadata(&path).unwrap().modified().unwrap(),
        unix(1_700_000_000)
    );
    assert_eq!(entries_below(&s.share), before);
}

fn the_same_content_is_226_without_a_transfer() {
    let s = Setup::new("up-same");
    let content = pseudo_random(5000, 14);
    s.write("same.bin", &content);
    let server = s.serve();
    let mut c = Conn::open(server.addr());
    let r = c.cmd(&format!("FileUpload same.bin 5000 {}", md5_hex(&content)));
    assert_eq!(r.code, 226, "{:?}", r.lines);
    assert_eq!(r.lines.len(), 1, "no 150 first: {:?}", r.lines);
    assert_eq!(r.last(), "stored same.bin (same content already here)");
    // md5 digits in capitals are the same md5.
    let r = c.cmd(&format!(
        "FileUpload same.bin 5000 {}",
        md5_hex(&content).to_uppercase()
    ));
    assert_eq!(r.code, 226, "{:?}", r.lines);
    c.assert_alive();
}

fn names_that_break_the_rules_are_refused_and_nothing_is_written() {
    let s = Setup::new("up-names");
    s.write("a.txt", "a\n");
    s.write("docs/b.txt", "b\n");
    let server = s.serve();
    let share_before = entries_below(&s.share);
    // Everything beside the share too (its state folder changes: history).
    let beside = || -> Vec<String> {
        entries_below(s.root.path())
            .into_iter()
            .filter(|e| !e.starts_with("share/.p2pshare/"))
            .collect()
    };
    let root_before = beside();
    let mut c = Conn::open(server.addr());
    let abs = s.outside.join("abs.txt");
    let names = [
        "../escape.txt".to_string(),
        "../outside/escape.txt".to_string(),
        "docs/../../escape.txt".to_string(),
        "docs/../a2.txt".to_string(),
        "./a3.txt".to_string(),
        abs.display().to_string(),
        "/etc/p2pshare-upload-test".to_string(),
        ".hidden".to_string(),
        "docs/.hidden".to_string(),
        ".p2pshare/history.tsv".to_string(),
        ".p2pshare/evil".to_string(),
        "docs//b2.txt".to_string(),
        "docs/".to_string(),
        "a\0b".to_string(),
        ".".to_string(),
        "..".to_string(),
        "docs".to_string(),
    ];
    for name in &names {
        let got = upload_raw(&mut c, server.addr(), name, b"payload\n", None);
        assert!(
            got.last.is_none(),
            "{name:?}: no transfer expected: {got:?}"
        );
        assert_eq!(
            got.first.lines,
            [format!(
                "553 name not allowed: {}",
                p2pshare::protocol::shown(name)
            )],
            "{name:?}"
        );
        c.assert_alive();
    }
    assert_eq!(entries_below(&s.share), share_before);
    assert_eq!(beside(), root_before);
    assert!(!Path::new("/etc/p2pshare-upload-test").exists());
}

fn a_symlinked_folder_or_file_leading_outside_is_refused() {
    let s = Setup::new("up-link");
    fs::write(s.outside.join("secret.txt"), "outside secret\n").unwrap();
    symlink(&s.outside, s.share.join("out")).unwrap();
    symlink(s.outside.join("secret.txt"), s.share.join("secret-link")).unwrap();
    fs::create_dir(s.share.join("real")).unwrap();
    symlink(s.share.join("real"), s.share.join("alias")).unwrap();
    let server = s.serve();
    let outside_before = entries_below(&s.outside);
    let share_before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());

    for name in ["out/new.txt", "out/deeper/new.txt"] {
        let got = upload_raw(&mut c, server.addr(), name, b"intruder\n", None);
        assert_eq!(got.code(), 553, "{name}: {got:?}");
        assert!(got.last.is_none(), "{name}: no transfer expected: {got:?}");
    }
    // The name of a link leading outside: refused before any transfer,
    // whether or not the content matches what lies outside (the reply
    // must not confirm an outside file's content).
    for content in [&b"outside secret\n"[..], b"other\n"] {
        let got = upload_raw(&mut c, server.addr(), "secret-link", content, None);
        assert_eq!(got.code(), 553, "{got:?}");
        assert!(got.last.is_none(), "no transfer expected: {got:?}");
    }
    assert_eq!(entries_below(&s.outside), outside_before);
    assert_eq!(entries_below(&s.share), share_before);
    assert_eq!(
        fs::read(s.outside.join("secret.txt")).unwrap(),
        b"outside secret\n"
    );

    // A link to a folder inside the share is fine: the file lands in the
    // real folder.
    let got = upload_raw(&mut c, server.addr(), "alias/in.txt", b"inside\n", None);
    assert_eq!(got.code(), 226, "{got:?}");
    assert_eq!(fs::read(s.share.join("real/in.txt")).unwrap(), b"inside\n");
}

fn a_file_in_the_way_of_a_folder_is_refused_and_leaves_nothing() {
    let s = Setup::new("up-blocked");
    s.write("blocker", "a file, not a folder\n");
    let server = s.serve();
    let before = entries_below(&s.share);
    let mut c = Conn::open(server.addr());
    for name in ["blocker/x.txt", "blocker/deep/x.txt"] {
        let got = upload_raw(&mut c, server.addr(), name, b"x\n", None);
        assert_eq!(got.code(), 553, "{name}: {got:?}");
        assert!(got.text().contains("name not allowed"), "{name}: {got:?}");
    }
    // A folder where the file would go.
    fs::create_dir_all(s.share.join("folder/inner")).unwrap();
    let before_dir = entries_below(&s.share);
    let got = upload_raw(&mut c, server.addr(), "folder", b"x\n", None);
    assert_eq!(got.code(), 553, "{got:?}");
    assert!(got.last.is_none(), "no transfer expected: {got:?}");
    assert_eq!(entries_below(&s.share), before_dir);
    fs::remove_dir_all(s.share.join("folder")).unwrap();
    assert_eq!(entries_below(&s.share), before);
    c.assert_alive();
}

/// A write error on the server's disk: the server runs as a child with a
/// file size limit (`ulimit -f`, with SIGXFSZ ignored so the write fails
/// with EFBIG instead of killing it). Tests run as root, so a read-only
/// folder would not stop the server; a size limit does.
fn a_write_error_on_the_server_is_451_and_leaves_nothing() {
    let s = Setup::new("up-efbig");
    s.write("a.txt", "a\n");
    let limited = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ && ulimit -f 256"])
        .status();
    assert!(
        limited.as_ref().is_ok_and(|s| s.success()),
        "sh cannot set a file size limit: {limited:?}"
    );
    let script = "trap '' XFSZ; ulimit -f 256 || exit 97; exec \"$0\" serve --share \"$1\" \
                  --bind 127.0.0.1 --port 0 --rescan 100ms --allow-upload";
    let share = s.share.display().to_string();
    let server = Proc::spawn_program("sh", &["-c", script, bin(), &share], &[]);
    let addr = server.serving_addr();
    let before = entries_below(&s.share);
    let mut c = Conn::open(addr);
    // Far past the limit (256 blocks: at most 256 KiB).
    let content = pseudo_random(4 << 20, 15);
    let got = upload_raw(&mut c, addr, "sub/too-big.bin", &content, None);
    assert_eq!(got.code(), 451, "{got:?}\n{}", server.dump());
    let text = got.text();
    assert!(
        text.starts_with("451 cannot store sub/too-big.bin:") && text.ends_with("nothing stored"),
        "{text}"
    );
    assert_eq!(entries_below(&s.share), before);
    // The session and the server go on: a small file still stores.
    c.assert_alive();
    let got = upload_raw(&mut c, addr, "small.txt", b"fits\n", None);
    assert_eq!(got.code(), 226, "{got:?}");
    assert_eq!(fs::read(s.share.join("small.txt")).unwrap(), b"fits\n");
}

// ---- the client's FileUpload, as the real binary ----

fn client(addr: SocketAddr, from: &Path, commands: &[&str]) -> Finished {
    let mut args = client_args(addr, from, &[]);
    for c in commands {
        args.push("-c".into());
        args.push(c.to_string());
    }
    run(&args, "")
}

fn the_client_uploads_one_file_and_patterns_with_exit_statuses() {
    let s = Setup::new("up-client");
    s.write("taken.txt", "server's own\n");
    let server = s.serve();
    let local = TempDir::new("up-client-local");
    let one = pseudo_random(700_000, 16);
    local.write("one.bin", &one);
    local.write("docs/a.txt", "doc a\n");
    local.write("docs/b.txt", "doc b\n");
    local.write("docs/c.pdf", "%PDF-1.4 c\n");
    local.write("taken.txt", "client's version\n");

    let run1 = client(server.addr(), local.path(), &["FileUpload one.bin"]);
    assert_eq!(run1.code(), Some(0), "{run1}");
    assert!(fs::read(s.share.join("one.bin")).unwrap() == one);
    let row = run1.lines()[0].split('\t').collect::<Vec<_>>();
    assert_eq!(row[0], "one.bin");
    assert_eq!(row[1], "700000");
    assert_eq!(row[3], md5_hex(&one));

    let run2 = client(server.addr(), local.path(), &["FileUpload docs/*.txt"]);
    assert_eq!(run2.code(), Some(0), "{run2}");
    assert_eq!(fs::read(s.share.join("docs/a.txt")).unwrap(), b"doc a\n");
    assert_eq!(fs::read(s.share.join("docs/b.txt")).unwrap(), b"doc b\n");
    assert!(!s.share.join("docs/c.pdf").exists());

    // Again: up to date, still success.
    let run3 = client(server.addr(), local.path(), &["FileUpload docs/*.txt"]);
    assert_eq!(run3.code(), Some(0), "{run3}");
    assert!(run3.stderr.contains("up to date"), "{run3}");

    // Other content on the server: refused, exit 1, nothing overwritten;
    // the other commands still run.
    let run4 = client(
        server.addr(),
        local.path(),
        &["FileUpload taken.txt", "FileUpload docs/c.pdf"],
    );
    assert_eq!(run4.code(), Some(1), "{run4}");
    assert!(run4.stderr.contains("553"), "{run4}");
    assert_eq!(
        fs::read(s.share.join("taken.txt")).unwrap(),
        b"server's own\n"
    );
    assert_eq!(
        fs::read(s.share.join("docs/c.pdf")).unwrap(),
        b"%PDF-1.4 c\n"
    );

    // A local file that does not exist, and a pattern matching nothing.
    let run5 = client(server.addr(), local.path(), &["FileUpload nothere.txt"]);
    assert_eq!(run5.code(), Some(1), "{run5}");
    let run6 = client(server.addr(), local.path(), &["FileUpload *.zzz"]);
    assert_eq!(run6.code(), Some(1), "{run6}");
    assert!(run6.stderr.contains("no local file matches"), "{run6}");

    // The server's history has the uploads.
    let history = fs::read_to_string(s.share.join(".p2pshare/history.tsv")).unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains("\tFileUpload one.bin 700000 ") && l.ends_with("\t226")),
        "{history}"
    );
}

fn the_client_gets_exit_1_where_uploads_are_off() {
    let s = Setup::new("up-client-off");
    let server = start(&s.share);
    let local = TempDir::new("up-client-off-local");
    local.write("one.txt", "one\n");
    let before = entries_below(&s.share);
    let r = client(server.addr(), local.path(), &["FileUpload one.txt"]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(
        r.stderr.contains("550 uploads are disabled on this peer"),
        "{r}"
    );
    assert_eq!(entries_below(&s.share), before);
}

fn the_clients_upload_pattern_leaves_out_its_own_state_folder() {
    let s = Setup::new("up-client-state");
    let server = s.serve();
    let local = TempDir::new("up-client-state-local");
    local.write("a.txt", "a\n");
    local.write("docs/b.txt", "b\n");
    let state = local.path().join("state").display().to_string();
    let with_state = |command: &str| {
        let args = client_args(
            server.addr(),
            local.path(),
            &["--state", &state, "-c", command],
        );
        run(&args, "")
    };
    // The first run makes the history in the visible folder `state`.
    let first = with_state("NOOP");
    assert_eq!(first.code(), Some(0), "{first}");
    assert!(local.path().join("state/history.tsv").exists(), "{first}");
    // `*` matches every base name: the files, not the history.
    let r = with_state("FileUpload *");
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(fs::read(s.share.join("a.txt")).unwrap(), b"a\n");
    assert_eq!(fs::read(s.share.join("docs/b.txt")).unwrap(), b"b\n");
    assert!(!s.share.join("state").exists(), "{r}");
    assert!(!r.stdout.contains("history.tsv"), "{r}");
}

/// A local user swapping a folder of the share for a link leading out, over
/// and over, while uploads go into it: no uploaded byte ever lands outside,
/// nothing is left there, and what was stored is inside the share (in
/// whichever folder the swapping left it: the server recreates a missing
/// folder of a name, and the swapper moves such folders aside).
fn a_folder_swapped_for_an_outside_link_during_uploads_never_leaks_bytes_out() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let s = Setup::new("up-swap");
    fs::create_dir(s.share.join("sw")).unwrap();
    let server = s.serve();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, share, outside) = (stop.clone(), s.share.clone(), s.outside.clone());
        std::thread::spawn(move || {
            let (sw, real) = (share.join("sw"), share.join("sw-real"));
            let mut swaps = 0;
            let mut aside = 0;
            // Moves whatever is at `sw` now (a folder the server made) out
            // of the way, inside the share.
            let clear = |aside: &mut usize| {
                *aside += 1;
                let _ = fs::rename(&sw, share.join(format!("sw-made-{aside}")));
            };
            while !stop.load(Ordering::SeqCst) {
                if fs::rename(&sw, &real).is_err() {
                    continue;
                }
                if symlink(&outside, &sw).is_ok() {
                    std::thread::yield_now();
                    let _ = fs::remove_file(&sw);
                    swaps += 1;
                }
                while fs::rename(&real, &sw).is_err() {
                    clear(&mut aside);
                }
            }
            swaps
        })
    };
    let watcher = {
        let (stop, outside) = (stop.clone(), s.outside.clone());
        std::thread::spawn(move || {
            let mut leaked = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                for e in fs::read_dir(&outside).unwrap().flatten() {
                    if e.metadata().is_ok_and(|m| m.len() > 0) {
                        leaked.push(e.file_name());
                    }
                }
            }
            leaked
        })
    };
    let mut c = Conn::open(server.addr());
    let mut stored = Vec::new();
    let began = std::time::Instant::now();
    let mut n = 0;
    while began.elapsed() < Duration::from_millis(1000) {
        let name = format!("sw/f{n}.txt");
        let content = format!("upload number {n}\n");
        let got = upload_raw(&mut c, server.addr(), &name, content.as_bytes(), None);
        match got.code() {
            226 => stored.push((format!("f{n}.txt"), content)),
            553 | 550 | 451 => {}
            _ => panic!("{name}: {got:?}"),
        }
        n += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    let leaked = watcher.join().unwrap();
    assert!(swaps > 10, "only {swaps} swaps");
    assert!(leaked.is_empty(), "bytes landed outside: {leaked:?}");
    assert_eq!(entries_below(&s.outside), Vec::<String>::new());
    let inside = entries_below(&s.share);
    for (base, content) in &stored {
        let at = inside
            .iter()
            .find(|e| e.ends_with(&format!("/{base}")))
            .unwrap_or_else(|| panic!("{base} stored but not in the share: {inside:?}"));
        assert_eq!(fs::read_to_string(s.share.join(at)).unwrap(), *content);
    }
    eprintln!("{n} uploads, {} stored, {swaps} swaps", stored.len());
}

cases![
    uploads_are_refused_by_default,
    an_upload_is_stored_only_after_every_byte_and_its_md5_arrived,
    a_wrong_md5_stores_nothing_and_leaves_no_temporary_file,
    a_sender_that_stops_short_gets_426_and_nothing_is_stored,
    a_sender_that_stalls_gets_426_within_the_data_timeout,
    other_content_under_the_name_is_553_and_untouched,
    the_same_content_is_226_without_a_transfer,
    names_that_break_the_rules_are_refused_and_nothing_is_written,
    a_symlinked_folder_or_file_leading_outside_is_refused,
    a_file_in_the_way_of_a_folder_is_refused_and_leaves_nothing,
    a_write_error_on_the_server_is_451_and_leaves_nothing,
    the_client_uploads_one_file_and_patterns_with_exit_statuses,
    the_client_gets_exit_1_where_uploads_are_off,
    the_clients_upload_pattern_leaves_out_its_own_state_folder,
    a_folder_swapped_for_an_outside_link_during_uploads_never_leaks_bytes_out,
];
