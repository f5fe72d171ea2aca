//! `FileDownload UDP` through the real client binary: the same guarantees
//! as over TCP (hidden partial file, md5 check, resume, no clobbering, the
//! server's mtime), with the path's payload size or one given on the
//! command line.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

fn client(addr: SocketAddr, dest: &Path, args: &[&str]) -> Finished {
    run(&client_args(addr, dest, args), "")
}

fn hidden_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".p2pshare" {
                continue;
            }
            if name.starts_with('.') {
                out.push(e.path().display().to_string());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// The server's history rows whose request starts with `prefix`.
fn requests(share: &Path, prefix: &str) -> Vec<String> {
    fs::read_to_string(share.join(".p2pshare/history.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(3).map(str::to_string))
        .filter(|r| r.starts_with(prefix))
        .collect()
}

fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn udp_downloads_land_verified_with_the_servers_mtime() {
    let src = TempDir::new("udp-cli-src");
    let dst = TempDir::new("udp-cli-dst");
    let big = noise(3 * 1024 * 1024 + 17, 1);
    let p = src.write("big.bin", &big);
    let when = unix(1_700_000_000);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(when)
        .unwrap();
    src.write("d/a.txt", "alpha\n");
    src.write("d/b.txt", "");
    let server = start(src.path());

    let out = client(
        server.addr(),
        dst.path(),
        &[
            "-c",
            "FileDownload UDP big.bin",
            "-c",
            "FileDownload UDP \"d/*\"",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dst.path().join("big.bin")).unwrap(), big);
    assert_eq!(
        fs::metadata(dst.path().join("big.bin"))
            .unwrap()
            .modified()
            .unwrap(),
        when
    );
    assert_eq!(fs::read(dst.path().join("d/a.txt")).unwrap(), b"alpha\n");
    assert_eq!(fs::read(dst.path().join("d/b.txt")).unwrap(), b"");
    assert_eq!(
        out.lines()[0],
        format!(
            "big.bin\t{}\t2023-11-14T22:13:20Z\t{}",
            big.len(),
            md5_hex(&big)
        )
    );
    assert!(
        hidden_below(dst.path()).is_empty(),
        "{:?}",
        hidden_below(dst.path())
    );
    assert_eq!(requests(src.path(), "FileDownload UDP").len(), 3);
}

fn a_udp_download_resumes_from_a_partial_file_and_checks_the_whole_md5() {
    let src = TempDir::new("udp-cli-resume-src");
    let dst = TempDir::new("udp-cli-resume-dst");
    let big = noise(2 * 1024 * 1024, 2);
    src.write("big.bin", &big);
    // What an interrupted earlier attempt left: the first 700,000 bytes.
    dst.write(".big.bin.p2pshare-part", &big[..700_000]);
    let server = start(src.path());

    let out = client(
        server.addr(),
        dst.path(),
        &["--udp-payload", "1400", "-c", "FileDownload UDP big.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dst.path().join("big.bin")).unwrap(), big);
    assert_eq!(
        requests(src.path(), "FileDownload UDP"),
        ["FileDownload UDP big.bin 700000"]
    );
    assert!(hidden_below(dst.path()).is_empty());
}

fn a_partial_file_from_other_content_is_caught_by_md5_and_refetched() {
    let src = TempDir::new("udp-cli-bad-src");
    let dst = TempDir::new("udp-cli-bad-dst");
    let big = noise(1024 * 1024, 3);
    src.write("big.bin", &big);
    // A partial file that is not a prefix of the peer's file.
    dst.write(".big.bin.p2pshare-part", noise(300_000, 4));
    let server = start(src.path());

    let out = client(
        server.addr(),
        dst.path(),
        &["-c", "FileDownload UDP big.bin"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dst.path().join("big.bin")).unwrap(), big);
    assert!(out.stderr.contains("md5 mismatch"), "{out}");
    assert_eq!(
        requests(src.path(), "FileDownload UDP"),
        [
            "FileDownload UDP big.bin 300000",
            "FileDownload UDP big.bin"
        ]
    );
}

fn udp_never_clobbers_a_different_local_file() {
    let src = TempDir::new("udp-cli-clobber-src");
    let dst = TempDir::new("udp-cli-clobber-dst");
    src.write("a.txt", "peer's\n");
    dst.write("a.txt", "mine\n");
    let server = start(src.path());

    let out = client(server.addr(), dst.path(), &["-c", "FileDownload UDP a.txt"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("--overwrite"), "{out}");
    assert_eq!(fs::read(dst.path().join("a.txt")).unwrap(), b"mine\n");

    let out = client(
        server.addr(),
        dst.path(),
        &["--overwrite", "-c", "FileDownload UDP a.txt"],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(fs::read(dst.path().join("a.txt")).unwrap(), b"peer's\n");
}

fn a_bad_payload_size_is_a_usage_error() {
    let dst = TempDir::new("udp-cli-usage");
    let out = client(
        "127.0.0.1:9".parse().unwrap(),
        dst.path(),
        &["--udp-payload", "70000", "-c", "NOOP"],
    );
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--udp-payload"), "{out}");
}

cases![
    udp_downloads_land_verified_with_the_servers_mtime,
    a_udp_download_resumes_from_a_partial_file_and_checks_the_whole_md5,
    a_partial_file_from_other_content_is_caught_by_md5_and_refetched,
    udp_never_clobbers_a_different_local_file,
    a_bad_payload_size_is_a_usage_error,
];
