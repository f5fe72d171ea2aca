//! The client's disk: a download never grows its partial file past the
//! size the peer announced, a full disk ends a download at once (not
//! retried, its partial file removed, `no space left on device` with the
//! name) and leaves room for the next file, and a file that arrives never
//! takes a name another writer holds.
//!
//! A full disk is made for real: as root, the test runs itself again in a
//! mount namespace of its own (`unshare -m`) where a small tmpfs is
//! mounted over a temporary folder. A file system that refuses hard links
//! is made for real too: the test runs itself again under a seccomp filter
//! (through python3 and libseccomp) that answers link(2) and linkat(2)
//! with EPERM, as vfat does.

use crate::support::*;

use crate::process::*;

use crate::fake::FakeServer;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    run(&client_args(addr, dest, args), "")
}

fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// Every file below `dir`, hidden ones too, with its size, sorted.
fn files_below(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// The partial files below `dir`.
fn partial_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    files_below(dir)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".p2pshare-part"))
        .collect()
}

/// The `FileDownload` requests a fake peer saw.
fn downloads_asked(peer: &FakeServer) -> Vec<String> {
    peer.requests()
        .into_iter()
        .filter(|r| r.starts_with("FileDownload"))
        .collect()
}

/// The content a fake below serves under `small.txt`.
const SMALL: &[u8] = b"a small file, \t with a tab\n";

/// One size in bytes that no disk here holds: 1 TiB.
const TIB: u64 = 1 << 40;

/// A fake peer that announces `huge.bin` as `size` bytes and streams
/// zeros until the client stops taking them (then says `426`), and
/// serves `small.txt` as a real server does.
fn zeros_forever(size: u64) -> FakeServer {
    FakeServer::start(move |s| {
        s.greet()?;
        while let Some(line) = s.until("FileDownload")? {
            if line.ends_with(" small.txt") {
                s.announce("small.txt", SMALL)?;
                s.data()?.write_all(SMALL)?;
                s.say(&format!("226 sent {} bytes\n", SMALL.len()))?;
                continue;
            }
            let data_line = s.data_line();
            s.say(&format!(
                "150-huge.bin\t{size}\t2026-01-02T03:04:05Z\t{}\n150 {data_line}\n",
                "0".repeat(32)
            ))?;
            let zeros = vec![0u8; 1 << 20];
            let mut sent = 0u64;
            let data = s.data()?;
            while sent < size {
                let n = zeros.len().min((size - sent) as usize);
                if data.write_all(&zeros[..n]).is_err() {
                    break;
                }
                sent += n as u64;
            }
            s.drop_data();
            s.say("426 the data connection broke\n")?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Never past the announced size
// ---------------------------------------------------------------------

fn a_peer_that_streams_more_than_it_announced_never_grows_the_file_past_it() {
    // The peer announces 1000 bytes (and their md5), then streams 4 MiB
    // more on the data connection before its 226.
    let content = pseudo_random(1000, 61);
    let peer = {
        let content = content.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            while s.until("FileDownload")?.is_some() {
                s.announce("more.bin", &content)?;
                let data = s.data()?;
                data.write_all(&content)?;
                // The surplus goes on while the final reply is given.
                let mut more = data.try_clone()?;
                std::thread::spawn(move || more.write_all(&pseudo_random(4 << 20, 62)));
                s.say("226 sent 1000 bytes\n")?;
            }
            Ok(())
        })
    };
    let dest = TempDir::new("disk-more-dst");
    let out = client(peer.addr, dest.path(), &["-c", "FileDownload more.bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(fs::read(dest.path().join("more.bin")).unwrap() == content);
    assert!(partial_files(dest.path()).is_empty(), "{out}");
}

fn a_partial_file_kept_for_resume_holds_at_most_the_announced_size() {
    // Each attempt announces 300 KiB, sends 200 KiB of it and breaks the
    // data connection: the partial file kept for resume is never longer
    // than what was announced, however often the peer tries again.
    let content = pseudo_random(300 << 10, 63);
    let peer = {
        let content = content.clone();
        FakeServer::start(move |s| {
            s.greet()?;
            while let Some(line) = s.until("FileDownload")? {
                let offset: usize = match line.split(' ').nth(3) {
                    Some(o) => o.parse().unwrap(),
                    None => 0,
                };
                s.announce("resume.bin", &content)?;
                let rest = &content[offset.min(content.len())..];
                let data = s.data()?;
                // Twice what is left, as far as the client takes it.
                let _ = data.write_all(&rest[..rest.len().min(200 << 10)]);
                let _ = data.write_all(&pseudo_random(200 << 10, 64));
                s.drop_data();
                s.say("426 the data connection broke\n")?;
            }
            Ok(())
        })
    };
    let dest = TempDir::new("disk-resume-dst");
    let out = client(peer.addr, dest.path(), &["-c", "FileDownload resume.bin"]);
    for (path, len) in partial_files(dest.path()) {
        assert!(len <= content.len() as u64, "{path:?}: {len} bytes\n{out}");
    }
    let asked = downloads_asked(&peer);
    assert!(asked.len() >= 2, "{asked:?}\n{out}");
    // What came in the end is the peer's file, or nothing under its name.
    if let Ok(got) = fs::read(dest.path().join("resume.bin")) {
        assert!(got == content, "{out}");
    }
}

// ---------------------------------------------------------------------
// A full disk, for real
// ---------------------------------------------------------------------

/// Set, to the mounted tmpfs, in the run of a test inside its mount
/// namespace.
const DISK_ENV: &str = "P2PSHARE_TEST_SMALL_DISK";

/// Runs `test` (a test of this module, whose body is `inner`) again in a
/// mount namespace of its own with a tmpfs of `size` mounted over a
/// temporary folder, and `inner` there gets that folder.
fn on_a_small_disk(test: &str, size: &str, inner: fn(&Path)) {
    if let Some(dir) = std::env::var_os(DISK_ENV) {
        inner(Path::new(&dir));
        return;
    }
    assert!(is_root(), "mounting a tmpfs needs root");
    let disk = TempDir::new("small-disk");
    // The test's name without the binary's: `disk::...`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let mount =
        r#"d=$1; size=$2; shift 2; mount -t tmpfs -o "size=$size" p2pshare-test "$d" && exec "$@""#;
    let mut wrap = Command::new("unshare");
    wrap.args(["-m", "--propagation", "private", "sh", "-c", mount, "sh"])
        .arg(disk.path())
        .arg(size);
    run_again_inside(
        wrap,
        &format!("{module}::{test}"),
        (DISK_ENV, disk.path().as_os_str()),
        "small disk",
    );
    // The mount was the namespace's only: here the folder is as it was.
    assert!(files_below(disk.path()).is_empty());
}

/// How many bytes the files below `dir` hold.
fn bytes_below(dir: &Path) -> u64 {
    files_below(dir).iter().map(|(_, n)| n).sum()
}

fn a_1_tib_announcement_onto_a_small_disk_fails_at_once_and_frees_the_disk() {
    on_a_small_disk(
        "a_1_tib_announcement_onto_a_small_disk_fails_at_once_and_frees_the_disk",
        "8m",
        |disk| {
            let peer = zeros_forever(TIB);
            let share = disk.join("share");
            let out = client(
                peer.addr,
                &share,
                &[
                    "-c",
                    "FileDownload huge.bin",
                    "-c",
                    "FileDownload small.txt",
                ],
            );
            assert_eq!(out.code(), Some(1), "{out}");
            assert!(
                out.stderr
                    .contains("huge.bin: no space left on device (writing "),
                "{out}"
            );
            // Not retried: asked for once, and no retry is told.
            assert!(!out.stderr.contains("trying again"), "{out}");
            assert_eq!(
                downloads_asked(&peer),
                ["FileDownload TCP huge.bin", "FileDownload TCP small.txt"],
                "{out}"
            );
            // Nothing of it is left: the next file had room.
            assert!(partial_files(&share).is_empty(), "{out}");
            assert_eq!(fs::read(share.join("small.txt")).unwrap(), SMALL, "{out}");
            assert!(!share.join("huge.bin").exists());
            assert!(bytes_below(disk) < 1 << 20, "{:?}", files_below(disk));
        },
    );
}

fn a_real_download_bigger_than_the_disk_fails_at_once_and_frees_the_disk() {
    on_a_small_disk(
        "a_real_download_bigger_than_the_disk_fails_at_once_and_frees_the_disk",
        "8m",
        |disk| {
            let big = pseudo_random(24 << 20, 65);
            let server = Share::new("disk-big-srv")
                .file("big \t file.bin", &big)
                .file("small.txt", SMALL)
                .serve();
            let share = disk.join("share");
            for transport in ["TCP", "UDP"] {
                let out = client(
                    server.addr(),
                    &share,
                    &[
                        "-c",
                        &format!("FileDownload {transport} \"big \\t file.bin\""),
                        "-c",
                        &format!("FileDownload {transport} small.txt"),
                    ],
                );
                assert_eq!(out.code(), Some(1), "{transport}: {out}");
                assert!(
                    out.stderr
                        .contains("big \\t file.bin: no space left on device (writing "),
                    "{transport}: {out}"
                );
                assert!(!out.stderr.contains("trying again"), "{transport}: {out}");
                assert!(partial_files(&share).is_empty(), "{transport}: {out}");
                assert_eq!(fs::read(share.join("small.txt")).unwrap(), SMALL);
                assert!(bytes_below(disk) < 1 << 20, "{:?}", files_below(disk));
                fs::remove_file(share.join("small.txt")).unwrap();
            }
        },
    );
}

fn a_sync_onto_a_disk_too_small_for_one_file_brings_the_rest_and_its_state() {
    on_a_small_disk(
        "a_sync_onto_a_disk_too_small_for_one_file_brings_the_rest_and_its_state",
        "8m",
        |disk| {
            let big = pseudo_random(24 << 20, 67);
            let server = Share::new("disk-sync-srv")
                .file("big.bin", &big)
                .file("small.txt", SMALL)
                .file("sub/other \t name.txt", SMALL)
                .serve();
            let share = disk.join("share");
            let out = client(server.addr(), &share, &["-c", "Sync"]);
            assert_eq!(out.code(), Some(1), "{out}");
            assert!(
                out.stderr
                    .contains("big.bin: no space left on device (writing "),
                "{out}"
            );
            assert!(!out.stderr.contains("trying again"), "{out}");
            assert!(partial_files(&share).is_empty(), "{out}");
            assert!(!share.join("big.bin").exists());
            assert_eq!(fs::read(share.join("small.txt")).unwrap(), SMALL);
            assert_eq!(
                fs::read(share.join("sub/other \t name.txt")).unwrap(),
                SMALL
            );
            // Sync had the room to write down what it did.
            let states: Vec<_> = files_below(&share.join(".p2pshare/sync"))
                .into_iter()
                .filter(|(p, _)| p.extension().is_some_and(|e| e == "tsv"))
                .collect();
            assert_eq!(states.len(), 1, "{:?}\n{out}", files_below(&share));
            let state = fs::read_to_string(&states[0].0).unwrap();
            assert!(state.contains("small.txt"), "{state}");
            assert!(bytes_below(disk) < 1 << 20, "{:?}", files_below(disk));
        },
    );
}

// ---------------------------------------------------------------------
// Placement where the file system refuses hard links
// ---------------------------------------------------------------------

/// Set in the run of a test under the filter that refuses hard links.
const NO_LINKS_ENV: &str = "P2PSHARE_TEST_NO_HARD_LINKS";

/// Runs the rest of its arguments with link(2) and linkat(2) answered
/// by EPERM (what vfat answers), through libseccomp. The filter is kept
/// by every child.
const NO_LINKS: &str = r#"
import ctypes, errno, os, sys
lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ctx = lib.seccomp_init(0x7fff0000)  # SCMP_ACT_ALLOW
for name in (b"link", b"linkat"):
    nr = lib.seccomp_syscall_resolve_name(name)
    if nr < 0 or lib.seccomp_rule_add(ctx, 0x00050000 | errno.EPERM, nr, 0) != 0:
        sys.exit("cannot filter " + name.decode())
if lib.seccomp_load(ctx) != 0:
    sys.exit("cannot load the filter")
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// Runs `test` (whose body is `inner`) again where hard links are
/// refused, and `inner` runs there.
fn without_hard_links(test: &str, inner: fn()) {
    if std::env::var_os(NO_LINKS_ENV).is_some() {
        // The filter really is there.
        let dir = TempDir::new("no-links-probe");
        let a = dir.write("a", "a");
        let e = fs::hard_link(&a, dir.path().join("b")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        inner();
        return;
    }
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let mut wrap = Command::new("python3");
    wrap.args(["-c", NO_LINKS]);
    run_again_inside(
        wrap,
        &format!("{module}::{test}"),
        (NO_LINKS_ENV, "1".as_ref()),
        "no hard links",
    );
}

/// Uploads of `n` different files under one new name through the
/// server's share, all placed at the same moment: exactly one is
/// stored, every other is told the name is taken, and the file is the
/// one stored.
fn uploads_race_for_one_name(n: usize) {
    use p2pshare::share::{Placed, Share};
    use std::sync::{Arc, Barrier};
    let dir = TempDir::new("place-race");
    let config = config(dir.path());
    let share = Arc::new(Share::open(&config.share, &config.state).unwrap());
    let name = "sub/one \t name *?.txt";
    for round in 0..100 {
        let gate = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (share, gate) = (share.clone(), gate.clone());
                std::thread::spawn(move || {
                    let content = format!("round {round} upload {i}\n").repeat(100 + i);
                    let incoming = share.begin_upload(name, &format!("{round}-{i}")).unwrap();
                    let mut f = incoming.file().unwrap();
                    f.write_all(content.as_bytes()).unwrap();
                    f.sync_all().unwrap();
                    let md5 = p2pshare::share::hash::md5_of_reader(content.as_bytes()).unwrap();
                    gate.wait();
                    (incoming.place(&md5).unwrap(), content)
                })
            })
            .collect();
        let placed: Vec<(Placed, String)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let stored: Vec<&String> = placed
            .iter()
            .filter(|(p, _)| *p == Placed::Stored)
            .map(|(_, c)| c)
            .collect();
        let kinds: Vec<Placed> = placed.iter().map(|(p, _)| *p).collect();
        assert_eq!(stored.len(), 1, "round {round}: {kinds:?}");
        assert_eq!(
            kinds.iter().filter(|p| **p == Placed::Exists).count(),
            n - 1,
            "{kinds:?}"
        );
        let path = dir.path().join(name);
        assert_eq!(fs::read_to_string(&path).unwrap(), *stored[0]);
        // Nothing else is left beside it: no temporary file, no
        // placeholder.
        let left = files_below(&dir.path().join("sub"));
        assert_eq!(left.len(), 1, "{left:?}");
        fs::remove_file(&path).unwrap();
    }
}

fn concurrent_uploads_of_one_name_store_exactly_one() {
    uploads_race_for_one_name(16);
}

fn where_hard_links_are_refused_concurrent_uploads_store_exactly_one() {
    without_hard_links(
        "where_hard_links_are_refused_concurrent_uploads_store_exactly_one",
        || uploads_race_for_one_name(16),
    );
}

fn where_hard_links_are_refused_a_download_never_replaces_a_file_that_appeared() {
    without_hard_links(
        "where_hard_links_are_refused_a_download_never_replaces_a_file_that_appeared",
        || {
            let content = pseudo_random(200_000, 66);
            let server = Share::new("nolink-srv")
                .file("new \t one.bin", &content)
                .file("in the way.bin", &content)
                .serve();
            let dest = TempDir::new("nolink-dst");
            // Where nothing is in the way, it is stored.
            let out = client(
                server.addr(),
                dest.path(),
                &["-c", "FileDownload \"new \\t one.bin\""],
            );
            assert_eq!(out.code(), Some(0), "{out}");
            assert!(fs::read(dest.path().join("new \t one.bin")).unwrap() == content);
            // A file that appears while the bytes come (here: made by a
            // peer that waits before its 226) is never replaced.
            let local = b"the user's own file\n";
            let peer = {
                let (content, dest) = (content.clone(), dest.path().to_path_buf());
                FakeServer::start(move |s| {
                    s.greet()?;
                    while s.until("FileDownload")?.is_some() {
                        s.announce("in the way.bin", &content)?;
                        s.data()?.write_all(&content)?;
                        fs::write(dest.join("in the way.bin"), local)?;
                        s.say("226 sent\n")?;
                    }
                    Ok(())
                })
            };
            let out = client(
                peer.addr,
                dest.path(),
                &["-c", "FileDownload \"in the way.bin\""],
            );
            assert_eq!(out.code(), Some(1), "{out}");
            assert!(
                out.stderr
                    .contains("a different local file appeared in the way"),
                "{out}"
            );
            assert_eq!(fs::read(dest.path().join("in the way.bin")).unwrap(), local);
            assert!(partial_files(dest.path()).is_empty(), "{out}");
        },
    );
}

cases![
    a_peer_that_streams_more_than_it_announced_never_grows_the_file_past_it,
    a_partial_file_kept_for_resume_holds_at_most_the_announced_size,
    concurrent_uploads_of_one_name_store_exactly_one,
    #[ignore = "needs python3 and libseccomp"]
    where_hard_links_are_refused_concurrent_uploads_store_exactly_one,
    #[ignore = "needs python3 and libseccomp"]
    where_hard_links_are_refused_a_download_never_replaces_a_file_that_appeared,
    #[ignore = "needs root and mount"]
    a_1_tib_announcement_onto_a_small_disk_fails_at_once_and_frees_the_disk,
    #[ignore = "needs root and mount"]
    a_real_download_bigger_than_the_disk_fails_at_once_and_frees_the_disk,
    #[ignore = "needs root and mount"]
    a_sync_onto_a_disk_too_small_for_one_file_brings_the_rest_and_its_state,
];
