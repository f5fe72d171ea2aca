//! The per-address limits count by network prefix (PROTOCOL.md section
//! 9): every address of one IPv6 /64 is one address for the sessions, the
//! AUTH tries, the data ports and the history rows, and another /64 is
//! another address. Run as root in a network namespace of its own, whose
//! loopback holds fd00::1/64 and takes any address of fd00::/48 as local,
//! so that a client can come from any of them (`nc -s`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::run_again_inside;
use crate::support::*;

use p2pshare::addr::Bind;
use p2pshare::server::Config;

/// Set in the environment of this test's run inside the namespace.
const NETNS_ENV: &str = "P2PSHARE_TEST_IN_PREFIX_NETNS";

/// Sets up the namespace: loopback up, fd00::1/64 on it, fd00::/48 local,
/// and binding to an address not (yet) on an interface allowed.
const SETUP: &str = "ip link set lo up \
    && ip -6 addr add fd00::1/64 dev lo nodad \
    && ip -6 route add local fd00::/48 dev lo table local \
    && sysctl -q -w net.ipv6.ip_nonlocal_bind=1 \
    && exec \"$0\" \"$@\"";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Runs this same test again inside a new network namespace (`unshare
/// -n`), where it is [`one_prefix_one_limit`].
fn every_address_of_an_ipv6_64_shares_one_limit() {
    if std::env::var_os(NETNS_ENV).is_some() {
        one_prefix_one_limit();
        return;
    }
    assert!(is_root(), "a network namespace needs root");
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let this_test = format!("{module}::every_address_of_an_ipv6_64_shares_one_limit");
    let mut wrap = Command::new("unshare");
    wrap.args(["-n", "sh", "-c", SETUP]);
    run_again_inside(wrap, &this_test, (NETNS_ENV, "1".as_ref()), "netns");
}

/// A session from source address `src` to fd00::1, through `nc -s`.
struct Nc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    src: String,
}

impl Nc {
    fn open(src: &str, port: u16) -> Nc {
        let mut child = Command::new("nc")
            .args(["-s", src, "fd00::1", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nc");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        Nc {
            stdin: child.stdin.take().unwrap(),
            child,
            lines,
            src: src.to_string(),
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("from {}: no line ({e})", self.src))
    }

    /// The lines of one reply, up to the one with `DDD `.
    fn reply(&self) -> Vec<String> {
        let mut lines = vec![self.line()];
        while lines.last().unwrap().as_bytes().get(3) == Some(&b'-') {
            lines.push(self.line());
        }
        lines
    }

    fn cmd(&mut self, line: &str) -> Vec<String> {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
        self.reply()
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        // Only the nc this value started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`every_address_of_an_ipv6_64_shares_one_limit`] runs inside the
/// namespace.
fn one_prefix_one_limit() {
    let dir = TempDir::new("prefix-netns");
    dir.write("a.txt", "a\n");
    let v6 = |c: Config| Config {
        bind: Bind::parse("fd00::1").unwrap(),
        ..c
    };
    // Sessions: two from the /64, whichever addresses.
    let server = start_with(v6(Config {
        max_per_ip: 2,
        ..config(dir.path())
    }));
    let port = server.addr().port();
    let a = Nc::open("fd00::a", port);
    assert!(a.line().starts_with("220 "));
    let b = Nc::open("fd00::ffff:ffff:ffff:ffff", port);
    assert!(b.line().starts_with("220 "));
    let c = Nc::open("fd00::1234:5678:9abc:def0", port);
    assert_eq!(
        c.line(),
        "421 too many connections from your address; try again later"
    );
    let elsewhere = Nc::open("fd00:0:0:1::a", port);
    assert!(elsewhere.line().starts_with("220 "), "another /64");
    drop(a);
    let mut admitted = false;
    assert!(wait_until(Duration::from_secs(10), || {
        admitted = Nc::open("fd00::c", port).line().starts_with("220 ");
        admitted
    }));
    drop((b, c, elsewhere, server));

    // AUTH tries: three wrong ones from the /64 answered at once, the
    // fourth, from yet another address of it, late; another /64 at once.
    let server = start_with(v6(Config {
        secret: Some("s3cret".into()),
        auth_delay: Duration::from_secs(4),
        data_ports: Some((47100, 47103)),
        max_per_ip: 100,
        ..config(dir.path())
    }));
    let port = server.addr().port();
    let timed = |src: &str, line: &str| {
        let mut s = Nc::open(src, port);
        assert!(s.line().starts_with("220 "));
        let began = Instant::now();
        let reply = s.cmd(line);
        (reply, began.elapsed(), s)
    };
    for src in ["fd00::1:1", "fd00::1:2", "fd00::1:3"] {
        let (r, took, _s) = timed(src, "AUTH wrong");
        assert_eq!(r, ["530 wrong secret (1 of 3 tries)"], "{src}");
        assert!(took < Duration::from_secs(3), "{src}: {took:?}");
    }
    let (r, took, _s) = timed("fd00:0:0:1::1", "AUTH wrong");
    assert_eq!(r, ["530 wrong secret (1 of 3 tries)"]);
    assert!(took < Duration::from_secs(3), "another /64: {took:?}");
    let (r, took, _s) = timed("fd00::1:4", "AUTH wrong");
    assert_eq!(r, ["530 wrong secret (1 of 3 tries)"]);
    assert!(took >= Duration::from_millis(3500), "the 4th: {took:?}");

    // Data ports: of 4 TCP ports, 2 for the /64 whichever its addresses.
    let mut held = Vec::new();
    for src in ["fd00::2:1", "fd00::2:2", "fd00::2:3", "fd00:0:0:2::1"] {
        let mut s = Nc::open(src, port);
        assert!(s.line().starts_with("220 "));
        assert_eq!(s.cmd("AUTH s3cret"), ["230 authenticated"]);
        let r = s.cmd("FileDownload a.txt");
        held.push((src, r.last().unwrap().clone(), s));
    }
    let said: Vec<(&str, &str)> = held.iter().map(|(s, r, _)| (*s, r.as_str())).collect();
    for (i, (src, last)) in said.iter().enumerate() {
        if i == 2 {
            assert!(
                last.starts_with("425 cannot open a data port: your address holds 2 of the 4"),
                "{src}: {said:?}"
            );
        } else {
            assert!(last.starts_with("150 DATA tcp"), "{src}: {said:?}");
        }
    }
    drop(server);

    // History rows of refused requests: at most 64 at once for the /64.
    let rows_dir = TempDir::new("prefix-netns-rows");
    let server = start_with(v6(Config {
        secret: Some("s3cret".into()),
        max_per_ip: 100,
        ..config(rows_dir.path())
    }));
    let port = server.addr().port();
    for i in 0..10 {
        let mut s = Nc::open(&format!("fd00::3:{i:x}"), port);
        assert!(s.line().starts_with("220 "));
        for j in 0..10 {
            assert_eq!(s.cmd(&format!("junk {i} {j}"))[0].get(..3), Some("500"));
        }
    }
    let history =
        std::fs::read_to_string(rows_dir.path().join(".p2pshare/history.tsv")).unwrap_or_default();
    let junk = history.lines().filter(|l| l.contains("\tjunk ")).count();
    assert_eq!(junk, 64, "{history}");
}

cases![
    #[ignore = "needs root, ip and nc -s (a network namespace with a /64 on its loopback)"]
    every_address_of_an_ipv6_64_shares_one_limit,
];
