//! The first scan runs behind an open port: a server of a large share
//! greets at once, its listings say they are incomplete until the scan is
//! done, a file is downloaded by name before the scan reached it, and a
//! `Sync --delete` against the still scanning server deletes nothing.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::*;
use crate::support::*;
use p2pshare::server::{Config, HttpAt};

/// The mark on the last line of a table made during the first scan.
pub(crate) const MARK: &str = "(incomplete: the first scan is still running)";

/// Files enough that the first scan takes a while on any machine.
pub(crate) const MANY: usize = 50_000;

/// Writes `MANY` small files into 250 folders below `dir`.
pub(crate) fn many_files(dir: &Path) {
    for d in 0..250 {
        let folder = dir.join(format!("many/{d:03}"));
        fs::create_dir_all(&folder).unwrap();
        for f in 0..MANY / 250 {
            fs::write(folder.join(format!("{f:03}")), b"x").unwrap();
        }
    }
}

/// FTP's LIST of the top folder on a fresh session: its final reply.
fn ftp_list(addr: SocketAddr) -> String {
    let mut f = Conn::open(addr);
    assert_eq!(f.cmd("USER anonymous").code, 230);
    let epsv = f.cmd("EPSV").last().trim_end().to_string();
    let port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|r| r.strip_suffix("|)"))
        .unwrap()
        .parse()
        .unwrap();
    let mut data = TcpStream::connect((addr.ip(), port)).unwrap();
    assert_eq!(f.cmd("LIST").code, 150);
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).unwrap();
    f.read_reply().last().trim_end().to_string()
}

/// An HTTP GET of `target` on a connection of its own: the whole response.
fn http_get(addr: SocketAddr, target: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
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
    let mut proven = (false, false, false, false);
    for _ in 0..5 {
        let started = Instant::now();
        let (server, share) = start_scanning(Config {
            http: Some(HttpAt::parse("127.0.0.1:0").unwrap()),
            ..config(there.path())
        });
        let web = server.http_addr().unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        let mut c = Conn::open(server.addr());

        let list = c.cmd("IndexGet longlist");
        if !share.scanned() {
            assert!(list.last().ends_with(MARK), "{:?}", list.last());
            proven.0 = true;
        }
        let listed = ftp_list(server.addr());
        let json = http_get(web, "/?format=json");
        let page = http_get(web, "/");
        if !share.scanned() {
            assert!(listed.ends_with(MARK), "{listed}");
            for r in [&json, &page] {
                assert!(
                    r.contains("\r\nP2PSHARE-Incomplete: first scan running\r\n"),
                    "{r}"
                );
            }
            assert!(json.contains("\"incomplete\":true"), "{json}");
            assert!(page.contains("Incomplete: the first scan"), "{page}");
            proven.3 = true;
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
        assert!(!ftp_list(server.addr()).contains("incomplete"));
        let json = http_get(web, "/?format=json");
        assert!(!json.contains("incomplete"), "{json}");
        server.stop();
        if proven.0 && proven.1 && proven.2 && proven.3 {
            return;
        }
    }
    panic!("the first scan always ended before the checks: {proven:?}");
}

/// The type of `name` in a fresh `IndexGet regex` of it.
fn type_of(c: &mut Conn, name: &str) -> String {
    let rows = c.cmd(&format!("IndexGet regex {}", quote(name))).rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0][3].clone()
}

fn the_first_scan_reads_no_file_and_the_hashing_reads_each_for_its_type() {
    let there = TempDir::new("scan-types");
    // Larger files are hashed first: the picture, the smallest, last.
    for d in 0..100 {
        for f in 0..200 {
            there.write(&format!("f/{d:02}/{f:03}"), "sixteen bytes..\n");
        }
    }
    // A PNG named .txt: its name says text/plain, its bytes image/png.
    let pic = "zz/a \t✓ picture.txt";
    fs::create_dir_all(there.path().join("zz")).unwrap();
    fs::write(there.path().join(pic), b"\x89PNG\r\n\x1a\n").unwrap();
    let mut proven = false;
    for _ in 0..5 {
        let (server, share) = start_scanning(config(there.path()));
        assert!(wait_until(Duration::from_secs(60), || share.scanned()));
        let mut c = Conn::open(server.addr());
        let guessed = type_of(&mut c, pic);
        if !share.hashed() {
            // Listed before the hashing read it: a guess from the name.
            assert_eq!(guessed, "text/plain");
            proven = true;
        }
        assert!(wait_until(Duration::from_secs(60), || share.hashed()));
        assert_eq!(type_of(&mut c, pic), "image/png");
        server.stop();
        if proven {
            break;
        }
    }
    assert!(proven, "the hashing always ended before the listing");
    // A restart knows the type from the md5 cache at once, reading nothing.
    let (server, share) = start_scanning(config(there.path()));
    assert!(wait_until(Duration::from_secs(60), || share.scanned()));
    let mut c = Conn::open(server.addr());
    assert_eq!(type_of(&mut c, pic), "image/png");
    let sums = c.cmd("FileHash checkall");
    assert_eq!(sums.rows().len(), 100 * 200 + 1);
    server.stop();
}

cases![
    the_first_scan_runs_behind_an_open_port_and_listings_say_so,
    the_first_scan_reads_no_file_and_the_hashing_reads_each_for_its_type
];
