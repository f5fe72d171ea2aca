//! `FileDownload UDP` through the real client binary: the same guarantees
//! as over TCP (hidden partial file, md5 check, resume, no clobbering, the
//! server's mtime), with the path's payload size or one given on the
//! command line.

use crate::support::*;

use crate::process::*;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `p2pshare ARGS` inside the namespace.
    fn spawn(&self, args: &[&str]) -> Proc {
        let mut all = vec!["netns", "exec", &self.0, bin()];
        all.extend_from_slice(args);
        Proc::spawn_program("ip", &all, &[])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A UDP download whose data channel goes silent for longer than the
/// client's stall bound (every UDP datagram dropped by nftables for a
/// while, as when a link goes down) is retried once the peer has given
/// up on it, and resumes where it stopped: the whole file lands, its md5
/// checked, and the second request asks only for the rest.
fn a_udp_download_resumes_after_the_data_channel_stalls() {
    assert!(is_root(), "network namespaces need root");
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        have("ip", "-V") && have("nft", "--version"),
        "needs `ip` (iproute2) and `nft` (nftables)"
    );
    let ns = Netns(format!("p2ps-stall-{}", std::process::id()));
    let made = Command::new("ip").args(["netns", "add", &ns.0]).output();
    assert!(
        made.is_ok_and(|o| o.status.success()),
        "cannot create a network namespace"
    );
    ns.run(&["ip", "link", "set", "lo", "up"]);
    ns.run(&["nft", "add", "table", "inet", "t"]);
    // UDP slowed to about 4 MB/s, so the download is caught halfway.
    ns.run(&[
        "nft",
        "add chain inet t slow { type filter hook input priority 0; }",
    ]);
    ns.run(&[
        "nft",
        "add rule inet t slow meta l4proto udp limit rate over 4 mbytes/second drop",
    ]);
    ns.run(&[
        "nft",
        "add chain inet t stall { type filter hook input priority 1; }",
    ]);

    let content = noise(24 << 20, 77);
    let srv = TempDir::new("udp-stall-srv");
    srv.write("big.bin", &content);
    let dest = TempDir::new("udp-stall-dst");
    let srv_path = srv.path().display().to_string();
    let server = ns.spawn(&[
        "serve",
        "--share",
        &srv_path,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
    ]);
    let addr = server.serving_addr().to_string();
    let dest_path = dest.path().display().to_string();
    let client = ns.spawn(&[
        "client",
        &addr,
        "--share",
        &dest_path,
        "--timeout",
        "7s",
        "-c",
        "FileDownload UDP big.bin",
    ]);
    let part = dest.path().join(".big.bin.p2pshare-part");
    assert!(
        wait_until(Duration::from_secs(30), || {
            fs::metadata(&part).is_ok_and(|m| m.len() >= 2 << 20)
        }),
        "the download never got going: {}",
        client.dump()
    );
    // The link is down: no datagram either way, for longer than the
    // client's stall bound (7 s; the server's sender gives up after 10 s
    // of silence, within the client's next 7 s). This span is what is
    // tested, not a wait for something.
    ns.run(&["nft", "add rule inet t stall meta l4proto udp drop"]);
    std::thread::sleep(Duration::from_secs(9));
    ns.run(&["nft", "flush chain inet t stall"]);
    let out = client.finish();
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        fs::read(dest.path().join("big.bin")).unwrap(),
        content,
        "{out}"
    );
    assert!(out.stderr.contains("resuming big.bin at"), "{out}");
    let asked = requests(srv.path(), "FileDownload");
    assert_eq!(asked.len(), 2, "{asked:?} {out}");
    let offset: u64 = asked[1]
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(offset >= 2 << 20, "{asked:?}");
    assert!(hidden_below(dest.path()).is_empty(), "{out}");
}

cases![
    #[ignore = "needs root, ip and nft (network namespaces)"]
    a_udp_download_resumes_after_the_data_channel_stalls,
    udp_downloads_land_verified_with_the_servers_mtime,
    a_udp_download_resumes_from_a_partial_file_and_checks_the_whole_md5,
    a_partial_file_from_other_content_is_caught_by_md5_and_refetched,
    udp_never_clobbers_a_different_local_file,
    a_bad_payload_size_is_a_usage_error,
];
