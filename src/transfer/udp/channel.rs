//! The UDP data channel's I/O: the only code of the channel that touches
//! sockets, clocks and threads. It reads datagrams and the time, feeds them
//! to the state machines of [`super::sender`] and [`super::receiver`], and
//! sends what they return when they say.
//!
//! Sending ([`UdpChannel::send`], one socket per session): a reader thread
//! per channel queues the receiver's datagrams, so the sender waits on a
//! queue with timers far finer than a socket timeout's scheduler tick.
//!
//! Receiving ([`receive`]): a network thread reads datagrams and
//! acknowledges them, and hands in-order bytes in batches to the calling
//! thread, which writes them to `out`: reading never waits for hashing or
//! the disk, which would let the socket's small buffer overflow.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::frame::{self, MAX_DATAGRAM, TOKEN_LEN};
use super::pacing::BURST_PACKETS;
use super::receiver::{Receiver, LINGER};
use super::sender::{self, Finished, Sender};
use super::{ReceiveOptions, SendLimits, SendStats};
use crate::protocol::{DataLine, Transport};
use crate::transfer::net::{bind_port, unspecified, Waker};
use crate::transfer::{token, Channel, SendOutcome, Source};

/// Datagrams from the receiver waiting for the sender; more are dropped.
const INCOMING_QUEUE: usize = 1024;

/// A session's UDP data channel: one socket and token, reused by every UDP
/// transfer of the session.
pub struct UdpChannel {
    socket: UdpSocket,
    port: u16,
    token: String,
    token_bytes: [u8; TOKEN_LEN],
    finished: Finished,
    incoming: mpsc::Receiver<Incoming>,
    /// Stops the reader thread.
    stop: Waker,
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
        let socket: UdpSocket = bind_port(local_ip, ports)?;
        let local = socket.local_addr()?;
        let token = token::new()?;
        let token_bytes = frame::token_bytes(&token).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "token is not 16 hex digits")
        })?;
        let (tx, incoming) = mpsc::sync_channel(INCOMING_QUEUE);
        let stop = Waker::for_socket(local);
        let reader = Reader {
            socket: socket.try_clone()?,
            peer_ip,
            token: token_bytes,
            tx,
            stop: stop.clone(),
        };
        // A backstop: the reader notices the stop flag within this even if
        // the wake-up datagram is lost.
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
    ) -> SendOutcome {
        let now = Instant::now();
        let mut s = Sender::new(now, file, offset, self.token_bytes, limits, &self.finished);
        let outcome = self.drive(&mut s).unwrap_or_else(SendOutcome::Broken);
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
    fn drive<S: Source + ?Sized>(&self, s: &mut Sender<'_, S>) -> io::Result<SendOutcome> {
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

impl Channel for UdpChannel {
    fn data_line(&self) -> DataLine {
        DataLine {
            transport: Transport::Udp,
            port: self.port,
            token: self.token.clone(),
        }
    }

    fn send(&mut self, file: &dyn Source, offset: u64, limits: &SendLimits) -> SendOutcome {
        UdpChannel::send(self, file, offset, limits)
    }
}

impl Drop for UdpChannel {
    fn drop(&mut self) {
        self.stop.wake();
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
    stop: Waker,
}

impl Reader {
    fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let got = self.socket.recv_from(&mut buf);
            if self.stop.is_woken() {
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

/// Receives `len` bytes starting at `offset` of the file announced by a
/// `150 DATA udp port=<p> token=<t>` reply from `server` (the data port),
/// writing them in order to `out` and calling `progress` with the bytes
/// written so far. The payload size suits the path
/// ([`ReceiveOptions::for_path`]). Returns the bytes written (always
/// `len`). Fails when the sender is silent for `idle`, abandons the
/// transfer, or `out` fails.
pub fn receive(
    server: SocketAddr,
    token: &str,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
    idle: Duration,
) -> io::Result<u64> {
    let opts = ReceiveOptions {
        idle,
        ..ReceiveOptions::for_path(server)
    };
    receive_with(server, token, offset, len, out, progress, &opts)
}

/// [`receive`] with every setting.
pub fn receive_with(
    server: SocketAddr,
    token: &str,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
    opts: &ReceiveOptions,
) -> io::Result<u64> {
    let token = opts.check(token, offset, len)?;
    let socket = UdpSocket::bind((unspecified(server), 0))?;
    socket.connect(server)?;
    let r = Receiver::new(
        Instant::now(),
        token,
        token::transfer_id()?,
        offset,
        len,
        opts,
    );
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (pool_tx, pool) = mpsc::channel::<Vec<u8>>();
    let net = Net {
        socket,
        waiter: Waiter::default(),
        written: Arc::new(AtomicU64::new(0)),
        writer_failed: Arc::new(AtomicBool::new(false)),
        batch: Vec::new(),
        tx: Some(tx),
        pool,
    };
    let (written, writer_failed) = (net.written.clone(), net.writer_failed.clone());
    // The network side runs on its own thread so that reading datagrams
    // and acknowledging them never waits for `out` (hashing, the disk):
    // the socket's small buffer would overflow while it did.
    thread::scope(|scope| {
        let net_thread = thread::Builder::new()
            .name("p2pshare-udp-rx".into())
            .spawn_scoped(scope, move || net.run(r))?;
        let writer = Writer {
            written,
            writer_failed,
            pool: pool_tx,
        };
        let written = writer.run(rx, out, progress);
        let net_result = net_thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the UDP receive thread panicked")));
        let total = written?;
        net_result?;
        out.flush()?;
        progress(total);
        Ok(total)
    })
}

/// In-order bytes handed from the network thread to the writer at once, at
/// most (less when the socket has nothing more queued).
const BATCH: usize = 256 << 10;

/// A smaller batch is handed over only when no datagram has come for
/// [`LINGER`] (the socket timeout rounds it up to the scheduler tick).
const MIN_BATCH: usize = 64 << 10;

/// `progress` is called at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// The calling thread's side of a receive: writes the batches to `out`.
struct Writer {
    /// Bytes written so far (the network thread counts its window from
    /// them), and whether writing failed.
    written: Arc<AtomicU64>,
    writer_failed: Arc<AtomicBool>,
    /// Emptied batches go back for reuse.
    pool: mpsc::Sender<Vec<u8>>,
}

impl Writer {
    /// Writes every batch until the network thread is done; returns the
    /// bytes written, or the first write error.
    fn run(
        self,
        rx: mpsc::Receiver<Vec<u8>>,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<u64> {
        let mut total = 0u64;
        let mut reported = 0u64;
        for mut batch in rx.iter() {
            if let Err(e) = out.write_all(&batch) {
                self.writer_failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
            total += batch.len() as u64;
            self.written.store(total, Ordering::Release);
            if total - reported >= PROGRESS_STEP {
                reported = total;
                progress(total);
            }
            batch.clear();
            let _ = self.pool.send(batch);
        }
        Ok(total)
    }
}

/// The network thread of a receive: reads datagrams and the time, feeds
/// the receiver, sends what it says, and hands in-order bytes to the
/// writer in batches.
struct Net {
    socket: UdpSocket,
    waiter: Waiter,
    written: Arc<AtomicU64>,
    writer_failed: Arc<AtomicBool>,
    /// In-order bytes not yet handed to the writer: the receiver's sink.
    batch: Vec<u8>,
    /// None once every batch is handed on, so the writer may finish.
    tx: Option<mpsc::Sender<Vec<u8>>>,
    pool: mpsc::Receiver<Vec<u8>>,
}

impl Net {
    fn run(mut self, mut r: Receiver) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        self.send_all(&mut r);
        while !r.is_complete() {
            if self.writer_failed.load(Ordering::SeqCst) {
                return Err(self.writer_gone(&mut r));
            }
            let got = self.next_datagram(&mut r, &mut buf)?;
            let now = Instant::now();
            r.set_written(self.written.load(Ordering::Acquire));
            r.handle_timeout(now);
            self.send_all(&mut r);
            if let Some(o) = r.poll_outcome() {
                return o.result();
            }
            let Some(bytes) = got.and_then(|n| buf.get(..n)) else {
                continue;
            };
            r.handle_datagram(now, bytes, &mut self.batch)?;
            if self.batch.len() >= BATCH {
                self.flush(&mut r)?;
            }
            self.send_all(&mut r);
            if let Some(o) = r.poll_outcome() {
                return o.result();
            }
        }
        self.flush(&mut r)?;
        // Every byte is here: the writer may finish while DONE is settled.
        self.tx = None;
        self.close(&mut r, &mut buf)
    }

    /// A datagram already queued; or else, once the batch and the ACK the
    /// sender asked for are handed on, one within the receiver's next
    /// deadline (a small batch waits [`LINGER`] for more).
    fn next_datagram(&mut self, r: &mut Receiver, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(n) = self.waiter.recv(&self.socket, buf, None)? {
            return Ok(Some(n));
        }
        // Each hand-over wakes the writer, so small batches wait.
        if self.batch.len() >= MIN_BATCH {
            self.flush(r)?;
        }
        r.set_written(self.written.load(Ordering::Acquire));
        r.handle_queue_empty(Instant::now());
        self.send_all(r);
        let now = Instant::now();
        let mut until = r.poll_timeout().unwrap_or(now);
        if !self.batch.is_empty() {
            until = until.min(crate::stop::deadline(now, LINGER));
        }
        let wait = until.saturating_duration_since(Instant::now());
        let got = self.waiter.recv(&self.socket, buf, Some(wait))?;
        if got.is_none() {
            self.flush(r)?;
        }
        Ok(got)
    }

    /// Settles DONE: every byte is already here, so a sender that never
    /// confirms costs time, not data.
    fn close(&mut self, r: &mut Receiver, buf: &mut [u8]) -> io::Result<()> {
        loop {
            self.send_all(r);
            if let Some(o) = r.poll_outcome() {
                return o.result();
            }
            let now = Instant::now();
            let until = r.poll_timeout().unwrap_or(now);
            let wait = until.saturating_duration_since(now);
            let got = self.waiter.recv(&self.socket, buf, Some(wait))?;
            let now = Instant::now();
            if let Some(bytes) = got.and_then(|n| buf.get(..n)) {
                r.handle_datagram(now, bytes, &mut io::sink())?;
            }
            r.handle_timeout(now);
        }
    }

    fn send_all(&mut self, r: &mut Receiver) {
        while let Some(d) = r.poll_transmit() {
            let _ = self.socket.send(d);
        }
    }

    /// Hands the batch to the writer.
    fn flush(&mut self, r: &mut Receiver) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let fresh = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, fresh);
        match &self.tx {
            Some(tx) if tx.send(full).is_ok() => Ok(()),
            _ => Err(self.writer_gone(r)),
        }
    }

    fn writer_gone(&mut self, r: &mut Receiver) -> io::Error {
        r.abort();
        self.send_all(r);
        io::Error::other("the writer stopped")
    }
}

/// Blocking mode and read timeout of a socket, set only when they change
/// (each change is a system call).
#[derive(Default)]
struct Waiter {
    nonblocking: bool,
    timeout: Option<Duration>,
}

impl Waiter {
    /// One datagram: at once (`wait` None) or within `wait`. Ok(None) when
    /// none came. The kernel's timeout has a granularity of a few
    /// milliseconds, so short waits may last a little longer.
    fn recv(
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
