//! A real TCP relay between a client and a server, for tests of what
//! someone in the middle can see and do: the client connects to the relay
//! on 127.0.0.2, the relay connects on to the server on 127.0.0.1 and
//! carries every byte both ways, the data channels too.
//!
//! The server runs with `--data-ports LO-HI` (`Config::data_ports`), and
//! the relay listens on 127.0.0.2 at the same port numbers and carries
//! each to the same port of 127.0.0.1: the client takes its data
//! connections to the host of its control connection, so a `150 DATA`
//! row needs no change to lead them through the relay. [`Relay::bind`]
//! picks the ports (below the kernel's ephemeral range, so that tests
//! running at once do not collide) and holds them from the start.
//!
//! What it offers:
//!
//! - a capture of every byte each side sent, on every connection
//!   ([`Relay::capture`]);
//! - hooks on the control connections, a line at a time, one for each
//!   direction ([`Hooks::on_server_lines`], [`Hooks::on_client_lines`]): each line
//!   goes in with its line end, and what the hook returns goes on in its
//!   place (no line drops it, several add or release held ones);
//! - a hook on the data connections' bytes ([`Hooks::on_data`]), which may
//!   change them in place;
//! - a record of the lines each control connection's server sent
//!   ([`Relay::server_lines`]), and [`replay`], a hook that plays such a
//!   record into a later session;
//! - UDP too: each data port of the relay takes datagrams on 127.0.0.2
//!   and sends them on to the same port of 127.0.0.1 from a socket of its
//!   own there (one for each client address, a *flow*), and the server's
//!   answers go back from the port the client sent to; a hook changes
//!   datagrams in place ([`Hooks::on_datagrams`]), and the capture keeps
//!   every datagram's bytes.
//!
//! ```ignore
//! let relay = Relay::bind(8);
//! let served = Share::new("t").with(|c| Config { data_ports: Some(relay.data_ports()), ..c }).serve();
//! let relay = relay.start(served.addr(), Hooks::default());
//! // p2pshare client <relay.addr()> ...
//! ```
//!
//! Dropping the relay closes every connection and listener and joins
//! every thread.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Where the relay listens: another loopback address than the server's,
/// so the same port numbers can be used on both.
pub const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Where the server listens.
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// One line of a control connection as it crossed: its bytes, with its
/// line end (LF or CR LF; none for a last line cut short).
pub type Line = Vec<u8>;

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// Where a line is: its control connection (0 for the first the relay
/// took) and its place among the lines that went that way on it (0 for
/// the first; the greeting is the server's line 0).
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub conn: usize,
    pub line: usize,
}

/// Where a piece of a data connection is: its port, its data connection
/// (0 for the first the relay took, on any port), which way it goes and
/// the offset of its first byte in that direction. For a datagram: its
/// port, its flow on that port (0 first), which way it goes and how many
/// bytes went that way in the flow before it.
#[derive(Debug, Clone, Copy)]
pub struct DataAt {
    pub port: u16,
    pub conn: usize,
    pub dir: Dir,
    pub offset: u64,
}

pub type LineHook = Box<dyn FnMut(At, Line) -> Vec<Line> + Send>;
pub type DataHook = Box<dyn FnMut(DataAt, &mut [u8]) + Send>;

/// What the relay does to what it carries; by default nothing.
#[derive(Default)]
pub struct Hooks {
    /// Each line the server sends on a control connection.
    pub to_client: Option<LineHook>,
    /// Each line the client sends on a control connection.
    pub to_server: Option<LineHook>,
    /// Each piece of a data connection, either way, changed in place.
    pub data: Option<DataHook>,
    /// Each datagram of a UDP data channel, either way, changed in place.
    pub datagram: Option<DataHook>,
}

impl Hooks {
    pub fn on_server_lines(
        mut self,
        f: impl FnMut(At, Line) -> Vec<Line> + Send + 'static,
    ) -> Hooks {
        self.to_client = Some(Box::new(f));
        self
    }

    pub fn on_client_lines(
        mut self,
        f: impl FnMut(At, Line) -> Vec<Line> + Send + 'static,
    ) -> Hooks {
        self.to_server = Some(Box::new(f));
        self
    }

    pub fn on_data(mut self, f: impl FnMut(DataAt, &mut [u8]) + Send + 'static) -> Hooks {
        self.data = Some(Box::new(f));
        self
    }

    pub fn on_datagrams(mut self, f: impl FnMut(DataAt, &mut [u8]) + Send + 'static) -> Hooks {
        self.datagram = Some(Box::new(f));
        self
    }
}

/// What kind of connection a [`Stream`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Control,
    /// A data connection, on this port.
    Data(u16),
    /// A UDP flow, on this port: every datagram's bytes, one after the
    /// other.
    Udp(u16),
}

/// Every byte each side of one connection sent, as it sent it (before
/// any hook).
#[derive(Debug, Clone)]
pub struct Stream {
    pub kind: Kind,
    /// The connection's number among those of its kind (0 first).
    pub conn: usize,
    pub from_client: Vec<u8>,
    pub from_server: Vec<u8>,
}

/// Every connection the relay carried, in the order it took them.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub streams: Vec<Stream>,
}

impl Capture {
    /// True when `needle` is anywhere in any byte either side sent.
    pub fn contains(&self, needle: &[u8]) -> bool {
        let found =
            |hay: &[u8]| !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle);
        self.streams
            .iter()
            .any(|s| found(&s.from_client) || found(&s.from_server))
    }

    /// The control connections.
    pub fn control(&self) -> Vec<&Stream> {
        self.streams
            .iter()
            .filter(|s| s.kind == Kind::Control)
            .collect()
    }

    /// The data connections and UDP flows.
    pub fn data(&self) -> Vec<&Stream> {
        self.streams
            .iter()
            .filter(|s| s.kind != Kind::Control)
            .collect()
    }
}

/// A relay whose listeners are bound and held, before it knows its server
/// (whose `--data-ports` come from [`Bound::data_ports`]).
pub struct Bound {
    control: TcpListener,
    data: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
    range: (u16, u16),
}

/// `n` consecutive ports below the kernel's ephemeral range, free for
/// TCP on the server's address (and UDP, for the server's UDP channels)
/// and bound now on the relay's, for TCP and UDP.
type Ports = ((u16, u16), Vec<TcpListener>, Vec<UdpSocket>);
fn bind_range(n: u16) -> Option<Ports> {
    let (lo, hi) = super::free_port_range(n);
    let listeners: Vec<TcpListener> = (lo..=hi)
        .map_while(|p| TcpListener::bind((RELAY_IP, p)).ok())
        .collect();
    let udp: Vec<UdpSocket> = (lo..=hi)
        .map_while(|p| UdpSocket::bind((RELAY_IP, p)).ok())
        .collect();
    let all = listeners.len() == usize::from(n) && udp.len() == usize::from(n);
    all.then_some(((lo, hi), listeners, udp))
}

impl Bound {
    /// The data port range for the server's config.
    pub fn data_ports(&self) -> (u16, u16) {
        self.range
    }

    /// Starts carrying connections to the server at `server` (on
    /// 127.0.0.1), doing `hooks` to them.
    pub fn start(self, server: SocketAddr, hooks: Hooks) -> Relay {
        assert_eq!(
            server.ip(),
            SERVER_IP,
            "the server must listen on 127.0.0.1"
        );
        let addr = self.control.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            hooks: Mutex::new(hooks),
            capture: Mutex::new(Capture::default()),
            server_lines: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
        });
        let mut listeners = vec![(Kind::Control, server.port(), self.control)];
        for (l, port) in self.data.into_iter().zip(self.range.0..=self.range.1) {
            listeners.push((Kind::Data(port), port, l));
        }
        for (_, _, l) in &listeners {
            l.set_nonblocking(true).unwrap();
        }
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_loop(&shared, listeners))
        };
        for (socket, port) in self.udp.into_iter().zip(self.range.0..=self.range.1) {
            let s = shared.clone();
            let h = thread::spawn(move || udp_loop(&s, port, socket));
            shared.pumps.lock().unwrap().push(h);
        }
        Relay {
            addr,
            range: self.range,
            shared,
            acceptor: Some(acceptor),
        }
    }
}

/// A running relay: see the module's text.
pub struct Relay {
    addr: SocketAddr,
    range: (u16, u16),
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    hooks: Mutex<Hooks>,
    capture: Mutex<Capture>,
    /// For each control connection, the lines its server sent (before
    /// any hook).
    server_lines: Mutex<Vec<Vec<Line>>>,
    /// Every socket of every connection, to close them all at the end.
    sockets: Mutex<Vec<TcpStream>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

impl Relay {
    /// Binds a control port and `n` data ports on 127.0.0.2, the data
    /// ports at numbers free on 127.0.0.1 too, below the ephemeral range.
    pub fn bind(n: u16) -> Bound {
        for _ in 0..20 {
            let control = TcpListener::bind((RELAY_IP, 0)).expect("bind 127.0.0.2");
            if let Some((range, data, udp)) = bind_range(n) {
                return Bound {
                    control,
                    data,
                    udp,
                    range,
                };
            }
        }
        panic!("no {n} ports free on both 127.0.0.1 and 127.0.0.2");
    }

    /// Where clients connect: 127.0.0.2 and the relay's control port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_ports(&self) -> (u16, u16) {
        self.range
    }

    /// Every byte carried so far.
    pub fn capture(&self) -> Capture {
        self.shared.capture.lock().unwrap().clone()
    }

    /// The lines the server sent on control connection `conn` (0 first),
    /// as it sent them: a record to [`replay`] into a later session.
    pub fn server_lines(&self, conn: usize) -> Vec<Line> {
        self.shared
            .server_lines
            .lock()
            .unwrap()
            .get(conn)
            .cloned()
            .unwrap_or_default()
    }

    /// Does `hooks` from now on, in place of the ones before (a line
    /// already in a hook is not touched again).
    pub fn set_hooks(&self, hooks: Hooks) {
        *self.shared.hooks.lock().unwrap() = hooks;
    }

    /// How many control connections the relay has taken.
    pub fn control_connections(&self) -> usize {
        self.shared.server_lines.lock().unwrap().len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        // The acceptor is gone, and the UDP loops see the stop: no socket
        // or pump is added any more.
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let pumps: Vec<_> = self.shared.pumps.lock().unwrap().drain(..).collect();
        for p in pumps {
            let _ = p.join();
        }
    }
}

/// A hook that plays `record` (the server's lines of an earlier session,
/// from [`Relay::server_lines`]) into every later session: the server's
/// line `i` for `i >= from` is replaced by the record's line `i`, as long
/// as the record has one (the real lines go on after it). `from` 1 keeps
/// the real greeting and replays every reply.
pub fn replay(record: Vec<Line>, from: usize) -> impl FnMut(At, Line) -> Vec<Line> + Send {
    move |at, line| match record.get(at.line) {
        Some(old) if at.line >= from => vec![old.clone()],
        _ => vec![line],
    }
}

/// The text of a line without its line end, for hooks that look at it.
pub fn text(line: &[u8]) -> String {
    let t = line.strip_suffix(b"\n").unwrap_or(line);
    let t = t.strip_suffix(b"\r").unwrap_or(t);
    String::from_utf8_lossy(t).into_owned()
}

/// `text` as a line, with the line end `like` has.
pub fn line_like(like: &[u8], text: &str) -> Line {
    let end: &[u8] = if like.ends_with(b"\r\n") {
        b"\r\n"
    } else if like.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    };
    [text.as_bytes(), end].concat()
}

fn accept_loop(shared: &Arc<Shared>, listeners: Vec<(Kind, u16, TcpListener)>) {
    let mut counts = (0usize, 0usize);
    while !shared.stop.load(Ordering::SeqCst) {
        let mut took = false;
        for (kind, port, l) in &listeners {
            let Ok((client, _)) = l.accept() else {
                continue;
            };
            took = true;
            let _ = client.set_nonblocking(false);
            let Ok(server) = TcpStream::connect_timeout(
                &SocketAddr::new(SERVER_IP, *port),
                Duration::from_secs(10),
            ) else {
                continue;
            };
            let n = match kind {
                Kind::Control => &mut counts.0,
                Kind::Data(_) | Kind::Udp(_) => &mut counts.1,
            };
            carry(shared, *kind, *n, client, server);
            *n += 1;
        }
        if !took {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts the two pumps of one connection.
fn carry(shared: &Arc<Shared>, kind: Kind, conn: usize, client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let index = {
        let mut cap = shared.capture.lock().unwrap();
        cap.streams.push(Stream {
            kind,
            conn,
            from_client: Vec::new(),
            from_server: Vec::new(),
        });
        cap.streams.len() - 1
    };
    if kind == Kind::Control {
        shared.server_lines.lock().unwrap().push(Vec::new());
    }
    {
        let mut sockets = shared.sockets.lock().unwrap();
        sockets.push(client.try_clone().unwrap());
        sockets.push(server.try_clone().unwrap());
    }
    let pumps = [
        (
            Dir::ToServer,
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
        ),
        (Dir::ToClient, server, client),
    ];
    let mut handles = shared.pumps.lock().unwrap();
    for (dir, from, to) in pumps {
        let shared = shared.clone();
        handles.push(thread::spawn(move || {
            let pump = Pump {
                shared: &shared,
                kind,
                conn,
                index,
                dir,
            };
            pump.run(from, to);
        }));
    }
}

/// One direction of one connection.
struct Pump<'a> {
    shared: &'a Shared,
    kind: Kind,
    conn: usize,
    /// The connection's place in the capture.
    index: usize,
    dir: Dir,
}

impl Pump<'_> {
    fn run(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut lines = 0usize;
        let mut offset = 0u64;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            };
            self.captured(&buf[..n]);
            let out = match self.kind {
                Kind::Control => {
                    pending.extend_from_slice(&buf[..n]);
                    let mut out = Vec::new();
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Line = pending.drain(..=i).collect();
                        out.extend(self.line(&mut lines, line).concat());
                    }
                    out
                }
                Kind::Data(port) | Kind::Udp(port) => {
                    let piece = &mut buf[..n];
                    if let Some(hook) = self.shared.hooks.lock().unwrap().data.as_mut() {
                        let at = DataAt {
                            port,
                            conn: self.conn,
                            dir: self.dir,
                            offset,
                        };
                        hook(at, piece);
                    }
                    offset += n as u64;
                    piece.to_vec()
                }
            };
            if to.write_all(&out).is_err() {
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
        }
        // The end of the stream: a last line cut short goes on as it is,
        // then the end is passed on.
        if !pending.is_empty() {
            let line = std::mem::take(&mut pending);
            let _ = to.write_all(&self.line(&mut lines, line).concat());
        }
        let _ = to.shutdown(Shutdown::Write);
    }

    /// Keeps a copy of bytes the sender sent.
    fn captured(&self, bytes: &[u8]) {
        let mut cap = self.shared.capture.lock().unwrap();
        let s = &mut cap.streams[self.index];
        match self.dir {
            Dir::ToServer => s.from_client.extend_from_slice(bytes),
            Dir::ToClient => s.from_server.extend_from_slice(bytes),
        }
    }

    /// One whole line of a control connection through its hook.
    fn line(&self, count: &mut usize, line: Line) -> Vec<Line> {
        if self.dir == Dir::ToClient {
            if let Some(record) = self.shared.server_lines.lock().unwrap().get_mut(self.conn) {
                record.push(line.clone());
            }
        }
        let at = At {
            conn: self.conn,
            line: *count,
        };
        *count += 1;
        let mut hooks = self.shared.hooks.lock().unwrap();
        let hook = match self.dir {
            Dir::ToClient => hooks.to_client.as_mut(),
            Dir::ToServer => hooks.to_server.as_mut(),
        };
        match hook {
            Some(h) => h(at, line),
            None => vec![line],
        }
    }
}

/// One UDP flow: a client address, and the relay's socket on 127.0.0.1
/// that speaks for it to the server.
struct Flow {
    client: SocketAddr,
    back: UdpSocket,
    /// Its place in the capture.
    index: usize,
    /// Bytes that went each way so far: to the server, to the client.
    sent: [u64; 2],
}

/// Carries the datagrams of one data port both ways until the relay
/// stops.
fn udp_loop(shared: &Shared, port: u16, front: UdpSocket) {
    let _ = front.set_nonblocking(true);
    let mut flows: Vec<Flow> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::SeqCst) {
        let mut busy = false;
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            busy = true;
            let i = match flows.iter().position(|f| f.client == from) {
                Some(i) => i,
                None => {
                    let Some(flow) = new_flow(shared, port, from) else {
                        continue;
                    };
                    flows.push(flow);
                    flows.len() - 1
                }
            };
            let d = datagram(shared, port, i, &mut flows[i], Dir::ToServer, &mut buf[..n]);
            let _ = flows[i].back.send(d);
        }
        for (i, f) in flows.iter_mut().enumerate() {
            while let Ok(n) = f.back.recv(&mut buf) {
                busy = true;
                let d = datagram(shared, port, i, f, Dir::ToClient, &mut buf[..n]);
                let _ = front.send_to(d, f.client);
            }
        }
        if !busy {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A socket on 127.0.0.1 for datagrams from `client`, sent on to the
/// server's `port`, and its place in the capture.
fn new_flow(shared: &Shared, port: u16, client: SocketAddr) -> Option<Flow> {
    let back = UdpSocket::bind((SERVER_IP, 0)).ok()?;
    back.connect((SERVER_IP, port)).ok()?;
    back.set_nonblocking(true).ok()?;
    let mut cap = shared.capture.lock().unwrap();
    let conn = cap
        .streams
        .iter()
        .filter(|s| s.kind == Kind::Udp(port))
        .count();
    cap.streams.push(Stream {
        kind: Kind::Udp(port),
        conn,
        from_client: Vec::new(),
        from_server: Vec::new(),
    });
    Some(Flow {
        client,
        back,
        index: cap.streams.len() - 1,
        sent: [0, 0],
    })
}

/// One datagram of flow `conn`: captured, then through the hook.
fn datagram<'a>(
    shared: &Shared,
    port: u16,
    conn: usize,
    flow: &mut Flow,
    dir: Dir,
    bytes: &'a mut [u8],
) -> &'a [u8] {
    {
        let mut cap = shared.capture.lock().unwrap();
        let s = &mut cap.streams[flow.index];
        match dir {
            Dir::ToServer => s.from_client.extend_from_slice(bytes),
            Dir::ToClient => s.from_server.extend_from_slice(bytes),
        }
    }
    let sent = &mut flow.sent[usize::from(dir == Dir::ToClient)];
    if let Some(hook) = shared.hooks.lock().unwrap().datagram.as_mut() {
        let at = DataAt {
            port,
            conn,
            dir,
            offset: *sent,
        };
        hook(at, bytes);
    }
    *sent += bytes.len() as u64;
    bytes
}
