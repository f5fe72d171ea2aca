//! The UDP data channel's I/O: the only code of the channel that touches
//! sockets, clocks and threads. It reads datagrams and the time, feeds them
//! to the state machines of [`super::sender`] and [`super::receiver`], and
//! sends what they return when they say.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::frame::{self, MAX_DATAGRAM, TOKEN_LEN};
use super::pacing::BURST_PACKETS;
use super::sender::{self, Finished, Sender};
use super::{SendLimits, SendStats, UdpOutcome};
use crate::transfer::{token, Source};

/// Datagrams from the receiver waiting for the sender; more are dropped.
const INCOMING_QUEUE: usize = 1024;

/// A session's UDP data channel: one socket and token, reused by every UDP
/// transfer of the session.
pub struct UdpChannel {
    socket: UdpSocket,
    port: u16,
    token: String,
    token_bytes: [u8; TOKEN_LEN],
    local: SocketAddr,
    finished: Finished,
    incoming: mpsc::Receiver<Incoming>,
    stop: Arc<AtomicBool>,
    /// Figures of the last transfer.
    pub stats: SendStats,
}

impl UdpChannel {
    /// Opens a socket on `local_ip` (the control connection's local address),
    /// on an ephemeral port or the first free one of `ports`, that takes
    /// datagrams only from `peer_ip`.
    pub fn open(
        local_ip: IpAddr,
        peer_ip: IpAddr,
        ports: Option<(u16, u16)>,
    ) -> io::Result<UdpChannel> {
        let socket = match ports {
            None => UdpSocket::bind((local_ip, 0))?,
            Some((lo, hi)) => (lo..=hi)
                .find_map(|p| UdpSocket::bind((local_ip, p)).ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("no free UDP data port in {lo}-{hi}"),
                    )
                })?,
        };
        let local = socket.local_addr()?;
        let token = token::new();
        let token_bytes = frame::token_bytes(&token).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "token is not 16 hex digits")
        })?;
        let (tx, incoming) = mpsc::sync_channel(INCOMING_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            socket: socket.try_clone()?,
            peer_ip,
            token: token_bytes,
            tx,
            stop: stop.clone(),
        };
        // A backstop: the reader notices the stop flag within this even if
        // the wake-up datagram of Drop is lost.
        reader
            .socket
            .set_read_timeout(Some(Duration::from_secs(1)))?;
        thread::Builder::new()
            .name("p2pshare-udp-in".into())
            .spawn(move || reader.run())?;
        Ok(UdpChannel {
            socket,
            port: local.port(),
            token,
            token_bytes,
            local,
            finished: Finished::default(),
            incoming,
            stop,
            stats: SendStats::default(),
        })
    }

    /// The UDP port, for the 150 line.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The token (16 hex digits), for the 150 line.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends `file` from `offset` to its end: waits for the receiver's
    /// HELLO, then sends until the receiver confirms every byte, or gives up
    /// as `limits` say.
    pub fn send<S: Source + ?Sized>(
        &mut self,
        file: &S,
        offset: u64,
        limits: &SendLimits,
    ) -> UdpOutcome {
        let now = Instant::now();
        let mut s = Sender::new(now, file, offset, self.token_bytes, limits, &self.finished);
        let outcome = self.drive(&mut s).unwrap_or_else(UdpOutcome::Broken);
        self.stats = s.stats();
        if let Some(id) = s.transfer_id() {
            self.finished.push(id);
        }
        outcome
    }

    /// Runs a sender to its end: everything queued is handed in without
    /// waiting, then up to a burst of what may be sent goes out, and only
    /// when nothing could be sent does it wait, for a datagram or the
    /// sender's next deadline.
    fn drive<S: Source + ?Sized>(&self, s: &mut Sender<'_, S>) -> io::Result<UdpOutcome> {
        loop {
            loop {
                match self.incoming.try_recv() {
                    Ok(msg) => {
                        s.handle_datagram(Instant::now(), msg.from, &msg.bytes);
                        if s.is_over() {
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Err(reader_gone()),
                }
            }
            let now = Instant::now();
            s.handle_timeout(now);
            let sent = self.send_burst(s, now);
            if let Some(outcome) = s.poll_outcome() {
                return Ok(outcome);
            }
            if sent > 0 {
                continue;
            }
            let Some(until) = s.poll_timeout() else {
                continue;
            };
            let wait = until.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(wait) {
                Ok(msg) => s.handle_datagram(Instant::now(), msg.from, &msg.bytes),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(reader_gone()),
            }
        }
    }

    /// Sends what the sender gives, up to a burst of DATA; returns how
    /// many DATA went out.
    fn send_burst<S: Source + ?Sized>(&self, s: &mut Sender<'_, S>, now: Instant) -> u64 {
        let mut sent = 0;
        while sent < BURST_PACKETS {
            let Some(t) = s.poll_transmit(now) else {
                break;
            };
            let ok = self.socket.send_to(t.bytes, t.to).is_ok();
            if !t.data {
                continue;
            }
            if !ok {
                // A full send buffer or a passing routing error: back off a
                // little; the packet was not sent, so nothing is recorded.
                thread::sleep(Duration::from_micros(200));
                break;
            }
            s.on_sent(Instant::now());
            sent += 1;
        }
        sent
    }
}

impl Drop for UdpChannel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the reader blocked in recv so it sees the flag.
        if let Ok(s) = UdpSocket::bind((unspecified(self.local), 0)) {
            let _ = s.send_to(&[0], self.local);
        }
    }
}

/// The unspecified address of `addr`'s family.
fn unspecified(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn reader_gone() -> io::Error {
    io::Error::other("the UDP reader thread stopped")
}

/// One datagram from the control peer with the session's token.
struct Incoming {
    from: SocketAddr,
    bytes: Vec<u8>,
}

/// The channel's reading thread: it blocks on the socket so the sender can
/// wait on a queue with timers finer than a socket timeout allows, and
/// queues only what [`sender::admissible`] lets through.
struct Reader {
    socket: UdpSocket,
    peer_ip: IpAddr,
    token: [u8; TOKEN_LEN],
    tx: mpsc::SyncSender<Incoming>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let got = self.socket.recv_from(&mut buf);
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let (n, from) = match got {
                Ok(x) => x,
                Err(e) if quiet(&e) => continue,
                Err(_) => {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let bytes = buf.get(..n).unwrap_or_default();
            if !sender::admissible(self.peer_ip, from, bytes, &self.token) {
                continue;
            }
            let bytes = bytes.to_vec();
            match self.tx.try_send(Incoming { from, bytes }) {
                Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
                Err(mpsc::TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// Blocking mode and read timeout of a socket, set only when they change
/// (each change is a system call).
#[derive(Default)]
pub(super) struct Waiter {
    nonblocking: bool,
    timeout: Option<Duration>,
}

impl Waiter {
    /// One datagram: at once (`wait` None) or within `wait`. Ok(None) when
    /// none came. The kernel's timeout has a granularity of a few
    /// milliseconds, so short waits may last a little longer.
    pub(super) fn recv(
        &mut self,
        socket: &UdpSocket,
        buf: &mut [u8],
        wait: Option<Duration>,
    ) -> io::Result<Option<usize>> {
        self.prepare(socket, wait)?;
        match socket.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if quiet(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn prepare(&mut self, socket: &UdpSocket, wait: Option<Duration>) -> io::Result<()> {
        match wait {
            None => {
                if !self.nonblocking {
                    socket.set_nonblocking(true)?;
                    self.nonblocking = true;
                }
            }
            Some(w) => {
                if self.nonblocking {
                    socket.set_nonblocking(false)?;
                    self.nonblocking = false;
                }
                // Whole milliseconds, at least one: fewer distinct values,
                // fewer system calls, and never the invalid zero.
                let ms = w.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
                let w = Some(Duration::from_millis(ms));
                if self.timeout != w {
                    socket.set_read_timeout(w)?;
                    self.timeout = w;
                }
            }
        }
        Ok(())
    }
}

/// Errors that only mean "nothing arrived": a timeout, an interrupted call,
/// or an ICMP error reported for an earlier datagram.
fn quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    )
}
