//! UDP downloads (PROTOCOL.md, "UDP data channel") against a real server:
//!
//! ```text
//! > FileDownload UDP big.bin
//! < 150-big.bin<TAB>5242880<TAB>2026-11-26T09:00:00Z<TAB><md5>
//! < 150 DATA udp port=40123 token=5f2a9c0e81d3b7aa
//!   (the receiver sends HELLO to UDP port 40123, takes DATA, sends ACKs,
//!    and DONE once it has every byte)
//! < 226 big.bin 5242880 bytes md5=<md5>
//! ```
//!
//! Loss, duplication and reordering come from a relay thread between the
//! receiver and the server, and from the kernel itself in a network
//! namespace with an nftables rule when the tests run as root.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::process::run_again_inside;
use crate::support::*;
use p2pshare::server::Config;
use p2pshare::transfer::frame;
use p2pshare::transfer::udp::{self, ReceiveOptions};

const IDLE: Duration = Duration::from_secs(10);

/// What one UDP download gave.
struct Got {
    r150: Reply,
    bytes: Vec<u8>,
    received: io::Result<u64>,
    done: Reply,
}

/// Asks for `name` over UDP and receives it through `via` (the server's
/// data port unless a relay stands between), with the path's payload size
/// unless `payload` says otherwise.
fn udp_get(
    c: &mut Conn,
    name: &str,
    offset: Option<u64>,
    via: impl FnOnce(SocketAddr) -> SocketAddr,
) -> Got {
    udp_get_with(c, name, offset, via, None)
}

fn udp_get_with(
    c: &mut Conn,
    name: &str,
    offset: Option<u64>,
    via: impl FnOnce(SocketAddr) -> SocketAddr,
    payload: Option<usize>,
) -> Got {
    let mut line = format!("FileDownload UDP {}", quote(name));
    if let Some(o) = offset {
        line.push_str(&format!(" {o}"));
    }
    let r150 = c.cmd(&line);
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    assert!(
        r150.lines[1].starts_with("150 DATA udp port="),
        "{:?}",
        r150.lines
    );
    let size: u64 = row_of_150(&r150)[1].parse().unwrap();
    let (port, token) = data_of(&r150);
    let data = SocketAddr::new(c.stream.peer_addr().unwrap().ip(), port);
    let mut bytes = Vec::new();
    let mut last_progress = 0;
    let via = via(data);
    let mut progress = |n| {
        assert!(n >= last_progress, "progress goes forward");
        last_progress = n;
    };
    let (offset, len) = (offset.unwrap_or(0), size - offset.unwrap_or(0));
    let received = match payload {
        None => udp::receive(via, &token, offset, len, &mut bytes, &mut progress, IDLE),
        Some(payload) => {
            let opts = ReceiveOptions {
                payload,
                idle: IDLE,
                ..ReceiveOptions::default()
            };
            udp::receive_with(via, &token, offset, len, &mut bytes, &mut progress, &opts)
        }
    };
    if let Ok(n) = &received {
        assert_eq!(
            last_progress, *n,
            "the last progress call reports every byte"
        );
    }
    let done = c.read_reply();
    Got {
        r150,
        bytes,
        received,
        done,
    }
}

fn direct(a: SocketAddr) -> SocketAddr {
    a
}

/// Checks a whole-file download: the bytes, their md5 in 150 and 226.
fn assert_exact(got: &Got, content: &[u8]) {
    let md5 = md5_hex(content);
    assert_eq!(row_of_150(&got.r150)[3], md5);
    assert_eq!(got.received.as_ref().ok(), Some(&(content.len() as u64)));
    assert_eq!(got.bytes.len(), content.len());
    assert!(got.bytes == content, "bytes differ");
    assert_eq!(got.done.code, 226, "{:?}", got.done.lines);
    assert!(
        got.done.last().ends_with(&format!("md5={md5}")),
        "{:?}",
        got.done.lines
    );
}

fn edge_sizes_round_trip_on_one_reused_channel() {
    let dir = TempDir::new("udp-sizes");
    let (small, big) = (udp::DEFAULT_PAYLOAD, udp::LOOPBACK_PAYLOAD);
    let files = [
        ("empty", Vec::new()),
        ("one", vec![0x5a]),
        ("exact-small", pseudo_random(small, 1)),
        ("exact-small-plus-one", pseudo_random(small + 1, 2)),
        ("exact-big", pseudo_random(big, 3)),
        ("exact-big-plus-one", pseudo_random(big + 1, 4)),
        ("several-mib", pseudo_random(5 << 20, 5)),
    ];
    for (name, content) in &files {
        dir.write(name, content);
    }
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let mut channel = None;
    // Both the Ethernet-sized payload and the loopback default, so that
    // "exactly one datagram" and "one plus one byte" hold for each.
    for payload in [Some(small), None] {
        for (name, content) in &files {
            let got = udp_get_with(&mut c, name, None, direct, payload);
            assert_exact(&got, content);
            // One UDP socket and token per session, reused.
            let d = data_of(&got.r150);
            assert_eq!(channel.get_or_insert(d.clone()), &d);
        }
    }
    // TCP and UDP channels live side by side.
    let (_, bytes, done) = download(&mut c, server.addr(), "exact-small");
    assert_eq!((bytes.as_slice(), done.code), (files[2].1.as_slice(), 226));
}

fn resumes_from_an_offset() {
    let content = pseudo_random(300_000, 4);
    let server = Share::new("udp-offset").file("f.bin", &content).serve();
    let mut c = Conn::open(server.addr());
    for offset in [1, 1400, 123_457, 299_999, 300_000] {
        let got = udp_get(&mut c, "f.bin", Some(offset), direct);
        assert_eq!(got.received.as_ref().ok(), Some(&(300_000 - offset)));
        assert!(got.bytes == content[offset as usize..], "offset {offset}");
        assert_eq!(got.done.code, 226, "{:?}", got.done.lines);
        // The md5 is always the whole file's.
        assert!(got.done.last().ends_with(&md5_hex(&content)));
    }
    let past = c.cmd("FileDownload UDP f.bin 300001");
    assert_eq!(past.code, 501, "{:?}", past.lines);
}

/// Seeded xorshift, so a relay's choices repeat run to run.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Default)]
struct RelayCounts {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

/// A UDP relay between one receiver and the server's data port that drops,
/// duplicates and reorders datagrams in both directions at set rates.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<RelayCounts>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(server: SocketAddr, seed: u64, drop: f64, dup: f64, reorder: f64) -> Relay {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(RelayCounts::default());
        let (st, cn) = (stop.clone(), counts.clone());
        let thread = thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            let mut client: Option<SocketAddr> = None;
            // Held datagrams: (forwards left before release, bytes, to).
            let mut held: Vec<(u32, Vec<u8>, SocketAddr)> = Vec::new();
            let mut buf = vec![0u8; 70_000];
            while !st.load(Ordering::Relaxed) {
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(_) => {
                        // Quiet: let everything held go.
                        for (_, b, to) in held.drain(..) {
                            let _ = socket.send_to(&b, to);
                        }
                        continue;
                    }
                };
                let to = if from == server {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    server
                };
                let r = rng.unit();
                if r < drop {
                    cn.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if r < drop + reorder {
                    cn.reordered.fetch_add(1, Ordering::Relaxed);
                    let after = 1 + (rng.unit() * 4.0) as u32;
                    held.push((after, buf[..n].to_vec(), to));
                    continue;
                }
                let _ = socket.send_to(&buf[..n], to);
                cn.forwarded.fetch_add(1, Ordering::Relaxed);
                if rng.unit() < dup {
                    cn.duplicated.fetch_add(1, Ordering::Relaxed);
                    let _ = socket.send_to(&buf[..n], to);
                }
                for h in held.iter_mut() {
                    h.0 -= 1;
                }
                for (_, b, to) in held.iter().filter(|h| h.0 == 0) {
                    let _ = socket.send_to(b, *to);
                }
                held.retain(|h| h.0 > 0);
            }
        });
        Relay {
            addr,
            stop,
            counts,
            thread: Some(thread),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn exact_through_a_relay_that_drops_duplicates_and_reorders() {
    let content = pseudo_random(3 << 20, 5);
    let small = pseudo_random(5000, 6);
    let server = Share::new("udp-relay")
        .file("f.bin", &content)
        .file("small.bin", &small)
        .serve();
    let mut c = Conn::open(server.addr());
    for (seed, drop, dup, reorder) in [(1, 0.05, 0.05, 0.05), (2, 0.15, 0.02, 0.10)] {
        let began = Instant::now();
        let (got, relay) = get_via_relay(&mut c, "f.bin", seed, drop, dup, reorder);
        assert_exact(&got, &content);
        let counts = &relay.counts;
        assert!(counts.dropped.load(Ordering::Relaxed) > 50, "{counts:?}");
        assert!(counts.duplicated.load(Ordering::Relaxed) > 10, "{counts:?}");
        assert!(counts.reordered.load(Ordering::Relaxed) > 10, "{counts:?}");
        eprintln!(
            "relay drop={drop} dup={dup} reorder={reorder}: {:?} {counts:?}",
            began.elapsed()
        );
        // Small transfers (all end game) survive it too.
        for i in 0..5 {
            let (got, _) = get_via_relay(&mut c, "small.bin", seed * 10 + i, drop, dup, reorder);
            assert_exact(&got, &small);
        }
    }
}

/// A UDP download through a fresh relay.
fn get_via_relay(
    c: &mut Conn,
    name: &str,
    seed: u64,
    drop: f64,
    dup: f64,
    reorder: f64,
) -> (Got, Relay) {
    let mut relay = None;
    let via = |data| {
        let r = Relay::start(data, seed, drop, dup, reorder);
        let a = r.addr;
        relay = Some(r);
        a
    };
    // The Ethernet-sized payload: many datagrams, as on a real network.
    let got = udp_get_with(c, name, None, via, Some(udp::DEFAULT_PAYLOAD));
    (got, relay.unwrap())
}

trait IntoAddr {
    fn into_addr(self, c: &Conn) -> SocketAddr;
}

impl IntoAddr for u16 {
    /// The server's data port as an address, on the control peer's IP.
    fn into_addr(self, c: &Conn) -> SocketAddr {
        SocketAddr::new(c.stream.peer_addr().unwrap().ip(), self)
    }
}

/// Sends a HELLO by hand, as a receiver that then vanishes would.
fn hello_from(socket: &UdpSocket, to: SocketAddr, token: &str, len: u64, transfer: u32) {
    let mut v = Vec::new();
    let t = frame::token_bytes(token).expect("16 hex digit token");
    frame::emit_hello(&mut v, &t, transfer, 0, len, len, 1400);
    socket.send_to(&v, to).unwrap();
}

fn a_vanished_receiver_is_given_up_in_bounded_time_and_others_are_served() {
    let content = pseudo_random(2 << 20, 7);
    let server = Share::new("udp-vanish")
        .file("f.bin", &content)
        .with(|c| Config {
            udp_silence: Duration::from_millis(800),
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    c.send("FileDownload UDP f.bin");
    let r150 = c.read_reply();
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    hello_from(
        &socket,
        port.into_addr(&c),
        &token,
        content.len() as u64,
        99,
    );
    let began = Instant::now();
    // Data arrives, and the receiver never answers.
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 2000];
    let (n, _) = socket.recv_from(&mut buf).expect("data after HELLO");
    assert!(matches!(
        frame::Frame::parse(&buf[..n]).unwrap().body,
        frame::Body::Data { .. }
    ));

    // Meanwhile another session is served, over UDP and TCP.
    let mut other = Conn::open(server.addr());
    let got = udp_get(&mut other, "f.bin", None, direct);
    assert_exact(&got, &content);
    let (_, bytes, done) = download(&mut other, server.addr(), "f.bin");
    assert!(bytes == content && done.code == 226);

    let gave_up = c.read_reply();
    let took = began.elapsed();
    assert_eq!(gave_up.code, 426, "{:?}", gave_up.lines);
    assert!(gave_up.last().contains("silent"), "{:?}", gave_up.lines);
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The session goes on, and its channel still works.
    c.assert_alive();
    let got = udp_get(&mut c, "f.bin", None, direct);
    assert_exact(&got, &content);
    assert_eq!(data_of(&got.r150), (port, token));
}

/// True when a datagram arrives on `socket` within `wait`.
fn hears_anything(socket: &UdpSocket, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2000];
    socket.recv_from(&mut buf).is_ok()
}

fn wrong_tokens_foreign_addresses_and_junk_are_ignored() {
    let content = pseudo_random(200_000, 8);
    let server = Share::new("udp-foreign").file("f.bin", &content).serve();
    let mut c = Conn::open(server.addr());
    c.send("FileDownload UDP f.bin");
    let r150 = c.read_reply();
    assert_eq!(r150.code, 150, "{:?}", r150.lines);
    let (port, token) = data_of(&r150);
    let data = port.into_addr(&c);
    let len = content.len() as u64;

    // The right token from another address (127.0.0.2 is loopback too).
    let foreign = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    hello_from(&foreign, data, &token, len, 1);
    // A wrong token from the right address.
    let wrong = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut bad = token.clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    hello_from(&wrong, data, std::str::from_utf8(&bad).unwrap(), len, 2);
    // Junk and truncated datagrams.
    let mut v = Vec::new();
    frame::emit_hello(
        &mut v,
        &frame::token_bytes(&token).unwrap(),
        3,
        0,
        len,
        len,
        1400,
    );
    for junk in [&b""[..], b"\x01", b"hello\n", &v[..20], &[0xffu8; 1500][..]] {
        wrong.send_to(junk, data).unwrap();
    }
    // A HELLO for other bytes than the request's.
    frame::emit_hello(
        &mut v,
        &frame::token_bytes(&token).unwrap(),
        4,
        7,
        len,
        len,
        1400,
    );
    wrong.send_to(&v, data).unwrap();

    assert!(!hears_anything(&foreign, Duration::from_millis(300)));
    assert!(!hears_anything(&wrong, Duration::from_millis(50)));

    // The real receiver is then served as if nothing had happened, even
    // with junk arriving during the transfer.
    let junk_stop = Arc::new(AtomicBool::new(false));
    let js = junk_stop.clone();
    let t = token.clone();
    let junk = thread::spawn(move || {
        let mut v = Vec::new();
        let tb = frame::token_bytes(&t).unwrap();
        while !js.load(Ordering::Relaxed) {
            // A forged DONE from a foreign address, and junk.
            frame::emit_done(&mut v, &tb, 0, len);
            let _ = foreign.send_to(&v, data);
            let _ = foreign.send_to(b"\x01\x03garbage", data);
            thread::sleep(Duration::from_millis(1));
        }
    });
    let mut bytes = Vec::new();
    let n = udp::receive(data, &token, 0, len, &mut bytes, &mut |_| {}, IDLE).unwrap();
    junk_stop.store(true, Ordering::Relaxed);
    junk.join().unwrap();
    assert_eq!(n, len);
    assert!(bytes == content);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{:?}", done.lines);
}

fn the_receiver_gives_up_on_a_silent_sender() {
    // A socket that takes the HELLO and never answers.
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let began = Instant::now();
    let err = udp::receive(
        mute.local_addr().unwrap(),
        "0123456789abcdef",
        0,
        10,
        &mut Vec::new(),
        &mut |_| {},
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(began.elapsed() < Duration::from_secs(3));
    let mut buf = [0u8; 100];
    let (n, _) = mute.recv_from(&mut buf).unwrap();
    assert!(matches!(
        frame::Frame::parse(&buf[..n]).unwrap().body,
        frame::Body::Hello { length: 10, .. }
    ));
    // A token that is not 16 hex digits is refused before anything is sent.
    let bad = udp::receive(
        mute.local_addr().unwrap(),
        "nothex",
        0,
        1,
        &mut Vec::new(),
        &mut |_| {},
        IDLE,
    );
    assert_eq!(bad.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

fn a_larger_payload_where_the_path_allows() {
    let content = pseudo_random(1 << 20, 9);
    let server = Share::new("udp-jumbo").file("f.bin", &content).serve();
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload UDP f.bin");
    let (port, token) = data_of(&r150);
    let mut bytes = Vec::new();
    let opts = ReceiveOptions {
        payload: 16_000,
        ..ReceiveOptions::default()
    };
    let n = udp::receive_with(
        port.into_addr(&c),
        &token,
        0,
        content.len() as u64,
        &mut bytes,
        &mut |_| {},
        &opts,
    )
    .unwrap();
    assert_eq!(n, content.len() as u64);
    assert!(bytes == content);
    assert_eq!(c.read_reply().code, 226);
}

// Real kernel loss: a network namespace whose loopback drops a share of UDP
// packets (nftables `numgen random`), as ../shared/design/testing.md
// describes. The test binary runs itself inside the namespace.

const NETNS_ENV: &str = "P2PSHARE_TEST_IN_LOSSY_NETNS";

fn tool_works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Sets up a network namespace whose loopback drops 5 % of UDP packets
/// (nftables), then runs this same test inside it, where it is
/// [`lossy_transfers`].
fn real_kernel_loss_in_a_network_namespace() {
    if std::env::var_os(NETNS_ENV).is_some() {
        lossy_transfers();
        return;
    }
    assert!(is_root(), "network namespaces need root");
    assert!(
        tool_works("ip", "-V") && tool_works("nft", "--version"),
        "needs `ip` (iproute2) and `nft` (nftables)"
    );
    let ns = Netns(format!("p2ps-udp-{}", std::process::id()));
    let made = Command::new("ip").args(["netns", "add", &ns.0]).output();
    assert!(
        made.as_ref().is_ok_and(|o| o.status.success()),
        "cannot create a network namespace here: {made:?}"
    );
    ns.run(&["ip", "link", "set", "lo", "up"]).unwrap();
    ns.run(&["nft", "add", "table", "inet", "loss"]).unwrap();
    ns.run(&[
        "nft",
        "add chain inet loss in { type filter hook input priority 0; }",
    ])
    .unwrap();
    ns.run(&[
        "nft",
        "add rule inet loss in meta l4proto udp numgen random mod 100 < 5 counter drop",
    ])
    .unwrap();
    // The test's name without the binary's: `udp::real_kernel_loss_...`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let this_test = format!("{module}::real_kernel_loss_in_a_network_namespace");
    let mut wrap = Command::new("ip");
    wrap.args(["netns", "exec", &ns.0]);
    run_again_inside(wrap, &this_test, (NETNS_ENV, "1".as_ref()), "netns");
    // The kernel really dropped packets.
    let rules = ns.run(&["nft", "list", "ruleset"]).unwrap();
    let dropped: u64 = rules
        .split("counter packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 50, "too few drops: {rules}");
    eprintln!("kernel dropped {dropped} UDP packets");
}

/// What `real_kernel_loss_in_a_network_namespace` runs inside the
/// namespace: a server and a receiver over the lossy loopback.
fn lossy_transfers() {
    let content = pseudo_random(4 << 20, 10);
    let small = pseudo_random(3000, 11);
    let server = Share::new("udp-netns")
        .file("f.bin", &content)
        .file("small.bin", &small)
        .serve();
    let mut c = Conn::open(server.addr());
    assert!(matches!(server.addr().ip(), IpAddr::V4(ip) if ip.is_loopback()));
    for payload in [Some(udp::DEFAULT_PAYLOAD), None] {
        let began = Instant::now();
        let got = udp_get_with(&mut c, "f.bin", None, direct, payload);
        assert_exact(&got, &content);
        eprintln!(
            "4 MiB over 5% kernel loss, payload {payload:?}: {:?}",
            began.elapsed()
        );
    }
    for _ in 0..10 {
        assert_exact(&udp_get(&mut c, "small.bin", None, direct), &small);
    }
    let got = udp_get(&mut c, "f.bin", Some(1_000_001), direct);
    assert!(got.bytes == content[1_000_001..] && got.done.code == 226);
}

/// A writer that fails after `left` bytes, as a full disk does.
struct FailingWriter {
    left: usize,
}

impl io::Write for FailingWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() > self.left {
            return Err(io::Error::other("disk full"));
        }
        self.left -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn a_receiver_whose_writer_fails_tells_the_sender_at_once() {
    let dir = TempDir::new("udp-writer-fails");
    let content = pseudo_random(4 << 20, 12);
    dir.write("f.bin", &content);
    let server = start(dir.path()); // silence stays at its 10 s default
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload UDP f.bin");
    let (port, token) = data_of(&r150);
    let began = Instant::now();
    let err = udp::receive(
        port.into_addr(&c),
        &token,
        0,
        content.len() as u64,
        &mut FailingWriter { left: 300_000 },
        &mut |_| {},
        IDLE,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    let done = c.read_reply();
    assert_eq!(done.code, 426, "{:?}", done.lines);
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    c.assert_alive();
}

fn a_file_that_shrinks_mid_transfer_ends_in_451() {
    let dir = TempDir::new("udp-shrinks");
    let content = pseudo_random(4 << 20, 13);
    let path = dir.write("f.bin", &content);
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload UDP f.bin");
    let (port, token) = data_of(&r150);
    // The sender reads the file only once the receiver's HELLO is in.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(1 << 20))
        .unwrap();
    let began = Instant::now();
    let err = udp::receive(
        port.into_addr(&c),
        &token,
        0,
        content.len() as u64,
        &mut Vec::new(),
        &mut |_| {},
        IDLE,
    )
    .unwrap_err();
    assert!(err.to_string().contains("451"), "{err}");
    let done = c.read_reply();
    assert_eq!(done.code, 451, "{:?}", done.lines);
    assert!(began.elapsed() < Duration::from_secs(3));
}

fn a_receiver_that_answers_but_never_gets_further_is_given_up() {
    let content = pseudo_random(1 << 20, 14);
    let server = Share::new("udp-stall")
        .file("f.bin", &content)
        .with(|c| Config {
            data_timeout: Duration::from_millis(700),
            ..c
        })
        .serve();
    let mut c = Conn::open(server.addr());
    let r150 = c.cmd("FileDownload UDP f.bin");
    let (port, token) = data_of(&r150);
    let data = port.into_addr(&c);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let len = content.len() as u64;
    hello_from(&socket, data, &token, len, 77);
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // Keep answering with ACKs that report nothing delivered.
    let began = Instant::now();
    let tb = frame::token_bytes(&token).unwrap();
    let mut v = Vec::new();
    let mut buf = [0u8; 2000];
    c.stream.set_nonblocking(true).unwrap();
    let mut line = String::new();
    loop {
        let _ = socket.recv_from(&mut buf);
        frame::emit_ack(&mut v, &tb, 77, 0, len, 0, &[]);
        socket.send_to(&v, data).unwrap();
        if std::io::BufRead::read_line(&mut c.reader, &mut line).is_ok() && line.ends_with('\n') {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(5), "no reply");
    }
    c.stream.set_nonblocking(false).unwrap();
    assert!(line.starts_with("426 "), "{line:?}");
    assert!(line.contains("no further"), "{line:?}");
    assert!(began.elapsed() >= Duration::from_millis(600));
    c.assert_alive();
}

cases![
    edge_sizes_round_trip_on_one_reused_channel,
    resumes_from_an_offset,
    exact_through_a_relay_that_drops_duplicates_and_reorders,
    a_vanished_receiver_is_given_up_in_bounded_time_and_others_are_served,
    wrong_tokens_foreign_addresses_and_junk_are_ignored,
    the_receiver_gives_up_on_a_silent_sender,
    a_larger_payload_where_the_path_allows,
    #[ignore = "needs root, `ip netns` (iproute2) and `nft` (nftables)"]
    real_kernel_loss_in_a_network_namespace,
    a_receiver_whose_writer_fails_tells_the_sender_at_once,
    a_file_that_shrinks_mid_transfer_ends_in_451,
    a_receiver_that_answers_but_never_gets_further_is_given_up,
];
