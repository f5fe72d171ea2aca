//! The UDP data channel: a reliable, paced, congestion-controlled file
//! transfer over datagrams (the format is in [`frame`], the rules in
//! PROTOCOL.md, "UDP data channel").
//!
//! Sender ([`UdpChannel::send`], one socket per session). Every datagram
//! carries a fresh packet number, and the sender keeps what each one
//! carried. The receiver acknowledges packet numbers in ranges, as QUIC's
//! ACK frames do, together with how many bytes it has in order and how far
//! the sender may go. Loss is detected as RFC 9002 does it: a packet is
//! lost when one sent three packets later was acknowledged, or when it is
//! older than 9/8 of the round-trip time; a probe timeout (smoothed RTT +
//! 4 × variance + ack delay, doubled on each expiry) recovers a lost tail.
//! Only the chunks of lost packets are sent again, lowest offset first,
//! under new packet numbers. The congestion window grows with acknowledged
//! bytes (slow start, then one packet per window) and shrinks once per loss
//! episode by half the running share of packets lost per round, as DCTCP
//! scales its decrease by the share of marked packets: an overflowing queue
//! (much loss, round after round) halves it, a noisy link (a small share
//! lost at random) costs a few percent. A decrease whose losses all prove
//! spurious is undone. Sending is paced at 1.25 × window / smoothed RTT. A
//! reader thread per channel queues the receiver's datagrams, so the sender
//! waits on a queue with timers far finer than a socket timeout's
//! scheduler tick.
//!
//! Receiver ([`receive`]). A network thread reads datagrams, puts chunks
//! in order in a ring, acknowledges (every 16 packets, every 4 while it
//! sees gaps, at once for anything out of order, as soon as its queue is
//! empty when the sender flagged that it waits for an ACK, and otherwise
//! after a quiet millisecond) and hands in-order bytes in batches to the
//! calling thread, which writes them to `out`; the window it advertises
//! counts from what `out` has taken, so memory stays bounded by two
//! windows.
//!
//! The transfer ends when the receiver reports every byte (DONE) and the
//! sender confirms (DONE_ACK). The sender gives up when no valid datagram
//! has come from the receiver for a bounded time, or its in-order point has
//! not moved for another; the receiver gives up when no data has come for
//! its idle time. Either side abandons a transfer it cannot finish with
//! ABORT, so the other need not wait.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use self::channel::Waiter;
use self::frame::{Body, Frame, MAX_DATAGRAM, TOKEN_LEN};
use super::token;

mod channel;
mod chunks;
pub mod congestion;
pub mod frame;
mod pacing;
mod recovery;
pub mod sender;

pub use self::channel::UdpChannel;
pub use self::sender::{Sender, Transmit};

/// DATA payload size a receiver asks for unless told otherwise: with the
/// 33-byte header, 8 bytes of UDP and 20 (IPv4) or 40 (IPv6) of IP it stays
/// under the 1500-byte Ethernet MTU, so nothing is fragmented.
pub const DEFAULT_PAYLOAD: usize = 1400;

/// DATA payload size on a loopback path: the loopback device carries 64 KiB
/// datagrams unfragmented, and with its headers a datagram of this size
/// still fits one 16 KiB kernel buffer. Far fewer datagrams per byte make
/// the transfer several times cheaper than at [`DEFAULT_PAYLOAD`].
pub const LOOPBACK_PAYLOAD: usize = 15_800;

/// How much a receiver buffers beyond the bytes it has written, by default.
pub const DEFAULT_WINDOW: usize = 8 << 20;

/// How long the sender waits for any datagram from the receiver before it
/// gives up on a transfer, by default.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);

/// The receiver acknowledges at least every this many data packets, and
/// every [`ACK_EVERY_LOSSY`] while it has seen a gap in the last
/// [`LOSSY_SPAN`] packets: where ACKs are lost too, more of them keep the
/// sender from waiting for its probe timeout.
const ACK_EVERY: u32 = 16;
const ACK_EVERY_LOSSY: u32 = 4;
const LOSSY_SPAN: u64 = 64;

/// How a UDP send ended.
#[derive(Debug)]
pub enum UdpOutcome {
    /// Every byte from the offset on arrived, and the file did not change.
    Sent(u64),
    /// No valid HELLO came within the wait.
    NoReceiver,
    /// The receiver went silent for this long.
    Silent(Duration),
    /// The receiver's in-order point did not move for this long.
    Stalled(Duration),
    /// The file changed (or shrank) while it was sent.
    Changed,
    /// Reading the file failed.
    ReadFailed(io::Error),
    /// The socket failed.
    Broken(io::Error),
}

/// How long a send waits, at most, for each thing.
#[derive(Debug, Clone)]
pub struct SendLimits {
    /// For the receiver's HELLO.
    pub wait: Duration,
    /// For any datagram from the receiver once the transfer runs.
    pub silence: Duration,
    /// For the receiver's in-order point to move on (a receiver that
    /// acknowledges but never gets further, or whose disk has stalled).
    pub stall: Duration,
}

/// Transfer figures, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u64,
    pub retransmitted: u64,
    pub lost: u64,
    pub probes: u64,
    pub acks: u64,
    /// Window reductions undone because their losses proved spurious.
    pub undone: u64,
}

/// Receiver settings beyond the defaults of [`receive`].
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// DATA payload size to ask for ([`frame::MIN_PAYLOAD`] to
    /// [`frame::MAX_PAYLOAD`]); more than [`DEFAULT_PAYLOAD`] only where the
    /// path carries bigger datagrams without fragmenting them (loopback,
    /// jumbo frames).
    pub payload: usize,
    /// Bytes buffered beyond those written, for data that arrived out of
    /// order.
    pub window: usize,
    /// Give up when the sender has sent nothing for this long.
    pub idle: Duration,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            payload: DEFAULT_PAYLOAD,
            window: DEFAULT_WINDOW,
            idle: DEFAULT_SILENCE,
        }
    }
}

impl ReceiveOptions {
    /// The defaults for a path to `server`: [`LOOPBACK_PAYLOAD`] when it is
    /// a loopback address, [`DEFAULT_PAYLOAD`] anywhere else.
    pub fn for_path(server: SocketAddr) -> ReceiveOptions {
        let ip = match server.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        ReceiveOptions {
            payload: if ip.is_loopback() {
                LOOPBACK_PAYLOAD
            } else {
                DEFAULT_PAYLOAD
            },
            ..ReceiveOptions::default()
        }
    }
}

/// Why a receive failed, beyond I/O errors.
#[derive(Debug)]
pub struct Aborted(pub u16);

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the sender abandoned the transfer (reply code {})",
            self.0
        )
    }
}

impl std::error::Error for Aborted {}

/// Receives `len` bytes starting at `offset` of the file announced by a
/// `150 DATA udp port=<p> token=<t>` reply from `server` (the data port),
/// writing them in order to `out` and calling `progress` with the bytes
/// written so far. The payload size suits the path
/// ([`ReceiveOptions::for_path`]). Returns the bytes written (always `len`). Fails when the
/// sender is silent for `idle`, abandons the transfer, or `out` fails.
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
    let token = frame::token_bytes(token).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a data channel token: {token:?}"),
        )
    })?;
    if !(frame::MIN_PAYLOAD..=frame::MAX_PAYLOAD).contains(&opts.payload) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "payload size {} is outside {}..={}",
                opts.payload,
                frame::MIN_PAYLOAD,
                frame::MAX_PAYLOAD
            ),
        ));
    }
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset + length overflows"))?;
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(server)?;
    let net = Receiver::new(socket, token, offset, end, opts);
    let written = net.written.clone();
    let writer_failed = net.writer_failed.clone();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    // The network side runs on its own thread so that reading datagrams
    // and acknowledging them never waits for `out` (hashing, the disk):
    // the socket's small buffer would overflow while it did.
    thread::scope(|scope| {
        let net_thread = thread::Builder::new()
            .name("p2pshare-udp-rx".into())
            .spawn_scoped(scope, move || net.run(tx, pool_rx))?;
        let mut total = 0u64;
        let mut reported = 0u64;
        let mut write_error = None;
        for mut batch in rx.iter() {
            if let Err(e) = out.write_all(&batch) {
                write_error = Some(e);
                writer_failed.store(true, Ordering::SeqCst);
                break;
            }
            total += batch.len() as u64;
            written.store(total, Ordering::Release);
            if total - reported >= PROGRESS_STEP {
                reported = total;
                progress(total);
            }
            batch.clear();
            let _ = pool_tx.send(batch);
        }
        drop(rx);
        let net_result = net_thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the UDP receive thread panicked")));
        if let Some(e) = write_error {
            return Err(e);
        }
        net_result?;
        out.flush()?;
        progress(total);
        Ok(total)
    })
}

/// In-order bytes handed from the network thread to the writer at once, at
/// most (less when the socket has nothing more queued).
const BATCH: usize = 256 << 10;

/// A smaller batch is handed over, and an ACK the sender did not ask for
/// sent, only when no datagram has come for [`LINGER`] (the socket timeout
/// rounds it up to the scheduler tick).
const MIN_BATCH: usize = 64 << 10;
const LINGER: Duration = Duration::from_millis(1);

fn now_plus(d: Duration) -> Instant {
    Instant::now() + d
}

/// `progress` is called at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// Packet numbers received, as disjoint ranges `(largest, smallest)`,
/// largest first, at most [`frame::MAX_ACK_RANGES`] of them (the oldest are
/// forgotten: the sender has long settled them).
#[derive(Debug, Default)]
struct PnRanges(Vec<(u64, u64)>);

impl PnRanges {
    /// Records `pn`; false if it was already recorded.
    fn insert(&mut self, pn: u64) -> bool {
        let r = &mut self.0;
        match r.iter().position(|&(_, lo)| pn >= lo) {
            Some(i) => {
                let (hi, _) = r[i];
                if pn <= hi {
                    return false;
                }
                let joins_above = i > 0 && r[i - 1].1 == pn + 1;
                if pn == hi + 1 {
                    r[i].0 = pn;
                    if joins_above {
                        r[i].0 = r[i - 1].0;
                        r.remove(i - 1);
                    }
                } else if joins_above {
                    r[i - 1].1 = pn;
                } else {
                    r.insert(i, (pn, pn));
                }
            }
            None => match r.last_mut() {
                Some(last) if last.1 == pn + 1 => last.1 = pn,
                _ => r.push((pn, pn)),
            },
        }
        r.truncate(frame::MAX_ACK_RANGES);
        true
    }

    fn largest(&self) -> Option<u64> {
        self.0.first().map(|&(hi, _)| hi)
    }
}

/// The network side of one receive: reads datagrams, puts chunks in order,
/// acknowledges, and hands in-order bytes to the writer.
struct Receiver {
    socket: UdpSocket,
    waiter: Waiter,
    token: [u8; TOKEN_LEN],
    transfer: u32,
    start: u64,
    end: u64,
    payload: u64,
    chunks: u64,
    idle: Duration,

    /// Chunks below this one are handed to the writer.
    next: u64,
    /// Bytes the writer has written (it stores, this thread reads), and
    /// whether it failed.
    written: Arc<AtomicU64>,
    writer_failed: Arc<AtomicBool>,
    /// Out-of-order chunks: chunk k in slot k % slots.
    slots: u64,
    ring: Vec<u8>,
    present: Vec<bool>,
    batch: Vec<u8>,

    ranges: PnRanges,
    unacked: u32,
    first_unacked_at: Option<Instant>,
    /// A DATA since the last ACK asked for one without delay.
    ack_requested: bool,
    /// Data packets taken, and the count when the last one came out of
    /// order.
    received: u64,
    last_gap: u64,
    out_buf: Vec<u8>,
    rtt: Option<Duration>,
}

impl Receiver {
    fn new(
        socket: UdpSocket,
        token: [u8; TOKEN_LEN],
        start: u64,
        end: u64,
        opts: &ReceiveOptions,
    ) -> Receiver {
        let payload = opts.payload as u64;
        let chunks = (end - start).div_ceil(payload);
        let slots = ((opts.window as u64) / payload).clamp(1, chunks.max(1));
        Receiver {
            socket,
            waiter: Waiter::default(),
            token,
            transfer: new_transfer_id(),
            start,
            end,
            payload,
            chunks,
            idle: opts.idle,
            next: 0,
            written: Arc::new(AtomicU64::new(0)),
            writer_failed: Arc::new(AtomicBool::new(false)),
            slots,
            ring: vec![0u8; (slots * payload) as usize],
            present: vec![false; slots as usize],
            batch: Vec::new(),
            ranges: PnRanges::default(),
            unacked: 0,
            first_unacked_at: None,
            ack_requested: false,
            received: 0,
            last_gap: 0,
            out_buf: Vec::with_capacity(64),
            rtt: None,
        }
    }

    /// Chunks below this one may be sent: the window counts from what the
    /// writer has written, so buffered bytes never exceed two windows.
    fn allowed(&self) -> u64 {
        (self.written.load(Ordering::Acquire) / self.payload + self.slots).min(self.chunks)
    }

    fn max_data(&self) -> u64 {
        (self.start + self.allowed() * self.payload).min(self.end)
    }

    fn delivered(&self) -> u64 {
        (self.start + self.next * self.payload).min(self.end)
    }

    fn chunk_len(&self, k: u64) -> u64 {
        self.payload.min(self.end - self.start - k * self.payload)
    }

    fn send_hello(&mut self) {
        let max_data = self.max_data();
        frame::emit_hello(
            &mut self.out_buf,
            &self.token,
            self.transfer,
            self.start,
            self.end - self.start,
            max_data,
            self.payload as u16,
        );
        let _ = self.socket.send(&self.out_buf);
    }

    fn send_ack(&mut self) {
        let delay = self.first_unacked_at.map_or(0, |t| {
            t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
        });
        let (delivered, max_data) = (self.delivered(), self.max_data());
        frame::emit_ack(
            &mut self.out_buf,
            &self.token,
            self.transfer,
            delivered,
            max_data,
            delay,
            &self.ranges.0,
        );
        let _ = self.socket.send(&self.out_buf);
        self.unacked = 0;
        self.first_unacked_at = None;
        self.ack_requested = false;
    }

    fn send_done(&mut self) {
        if self.chunks == 0 {
            // Nothing to send: the sender still needs the HELLO to learn
            // where the DONE comes from.
            self.send_hello();
        }
        frame::emit_done(&mut self.out_buf, &self.token, self.transfer, self.end);
        let _ = self.socket.send(&self.out_buf);
    }

    fn send_abort(&mut self) {
        let code = crate::protocol::code::ABORTED;
        frame::emit_abort(&mut self.out_buf, &self.token, self.transfer, code);
        let _ = self.socket.send(&self.out_buf);
    }

    /// Hands the batch to the writer.
    fn flush(
        &mut self,
        tx: &mpsc::Sender<Vec<u8>>,
        pool: &mpsc::Receiver<Vec<u8>>,
    ) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let fresh = pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, fresh);
        if tx.send(full).is_err() {
            return Err(self.writer_gone());
        }
        Ok(())
    }

    fn writer_gone(&mut self) -> io::Error {
        self.send_abort();
        io::Error::other("the writer stopped")
    }

    fn run(mut self, tx: mpsc::Sender<Vec<u8>>, pool: mpsc::Receiver<Vec<u8>>) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let started = Instant::now();
        let mut last_data = started;
        let mut hello_at = started;
        let mut hello_rto = Duration::from_millis(20);
        let mut got_data = false;
        if self.chunks > 0 {
            self.send_hello();
        }
        while self.next < self.chunks {
            if self.writer_failed.load(Ordering::SeqCst) {
                return Err(self.writer_gone());
            }
            // Drain what is queued; hand on and acknowledge before
            // blocking.
            let got = match self.waiter.recv(&self.socket, &mut buf, None)? {
                Some(n) => Some(n),
                None => {
                    // Small batches wait a little for more: each hand-over
                    // wakes the writer. ACKs wait too, unless the sender
                    // said it waits for one.
                    if self.batch.len() >= MIN_BATCH {
                        self.flush(&tx, &pool)?;
                    }
                    if self.unacked > 0 && self.ack_requested {
                        self.send_ack();
                    }
                    let mut until = last_data + self.idle;
                    if !got_data {
                        until = until.min(hello_at + hello_rto);
                    }
                    if !self.batch.is_empty() || self.unacked > 0 {
                        until = until.min(now_plus(LINGER));
                    }
                    let wait = until.saturating_duration_since(Instant::now());
                    let got = self.waiter.recv(&self.socket, &mut buf, Some(wait))?;
                    if got.is_none() {
                        self.flush(&tx, &pool)?;
                        if self.unacked > 0 {
                            self.send_ack();
                        }
                    }
                    got
                }
            };
            let now = Instant::now();
            if now.duration_since(last_data) >= self.idle {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no data from the sender for {}",
                        humantime::format_duration(self.idle)
                    ),
                ));
            }
            if !got_data && now >= hello_at + hello_rto {
                self.send_hello();
                hello_at = now;
                hello_rto = (hello_rto * 2).min(Duration::from_secs(1));
            }
            let Some(n) = got else { continue };
            let Some(bytes) = buf.get(..n) else { continue };
            let Ok(f) = Frame::parse(bytes) else { continue };
            if !token::equal(&f.token, &self.token) || f.transfer != self.transfer {
                continue;
            }
            match f.body {
                Body::Data {
                    pn,
                    offset,
                    ack_now,
                    payload,
                } => {
                    self.ack_requested |= ack_now;
                    if !got_data {
                        got_data = true;
                        self.rtt = Some(now.duration_since(hello_at));
                    }
                    last_data = now;
                    let urgent = self.on_data(pn, offset, payload);
                    if self.batch.len() >= BATCH {
                        self.flush(&tx, &pool)?;
                    }
                    let every = if self.received < self.last_gap + LOSSY_SPAN {
                        ACK_EVERY_LOSSY
                    } else {
                        ACK_EVERY
                    };
                    if self.next < self.chunks && (urgent || self.unacked >= every) {
                        self.send_ack();
                    }
                }
                Body::Abort { code } => return Err(io::Error::other(Aborted(code))),
                _ => {}
            }
        }
        self.flush(&tx, &pool)?;
        // Every byte is here: the writer may finish while DONE is settled.
        drop(tx);
        self.finish(&mut buf)
    }

    /// Takes one DATA frame. True when it should be acknowledged at once
    /// (out of order or a repeat).
    fn on_data(&mut self, pn: u64, offset: u64, payload: &[u8]) -> bool {
        if offset < self.start
            || offset >= self.end
            || !(offset - self.start).is_multiple_of(self.payload)
        {
            return false;
        }
        let k = (offset - self.start) / self.payload;
        if payload.len() as u64 != self.chunk_len(k) || k >= self.allowed() {
            // Not what this transfer's chunks look like, or past the
            // window: dropped, and not acknowledged.
            return false;
        }
        let in_order = self.ranges.largest().is_none_or(|hi| pn == hi + 1);
        if !self.ranges.insert(pn) {
            return true;
        }
        self.received += 1;
        if !in_order {
            self.last_gap = self.received;
        }
        if self.first_unacked_at.is_none() {
            self.first_unacked_at = Some(Instant::now());
        }
        self.unacked += 1;
        if k < self.next {
            return true;
        }
        if k == self.next {
            self.batch.extend_from_slice(payload);
            self.next += 1;
            while self.next < self.chunks {
                let slot = (self.next % self.slots) as usize;
                if !self.present.get(slot).copied().unwrap_or(false) {
                    break;
                }
                let len = self.chunk_len(self.next) as usize;
                let from = slot * self.payload as usize;
                if let Some(b) = self.ring.get(from..from + len) {
                    self.batch.extend_from_slice(b);
                }
                if let Some(p) = self.present.get_mut(slot) {
                    *p = false;
                }
                self.next += 1;
            }
        } else {
            // k < next + slots (the window never exceeds it), so slot k %
            // slots held a chunk already handed on.
            let slot = (k % self.slots) as usize;
            let from = slot * self.payload as usize;
            if !self.present.get(slot).copied().unwrap_or(true) {
                if let Some(dst) = self.ring.get_mut(from..from + payload.len()) {
                    dst.copy_from_slice(payload);
                    if let Some(p) = self.present.get_mut(slot) {
                        *p = true;
                    }
                }
            }
        }
        !in_order
    }

    /// Sends DONE until the sender confirms it. Every byte is already
    /// here, so a sender that never confirms costs time, not data.
    fn finish(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut rto = self.rtt.map_or(Duration::from_millis(5), |r| {
            (r * 3).max(Duration::from_millis(5))
        });
        let began = Instant::now();
        let limit = self.idle.min(Duration::from_secs(2));
        self.send_done();
        let mut sent_at = Instant::now();
        loop {
            let now = Instant::now();
            if now.duration_since(began) >= limit {
                return Ok(());
            }
            let wait = (sent_at + rto).saturating_duration_since(now);
            match self.waiter.recv(&self.socket, buf, Some(wait))? {
                None => {
                    self.send_done();
                    sent_at = Instant::now();
                    rto *= 2;
                }
                Some(n) => {
                    let Some(Ok(f)) = buf.get(..n).map(Frame::parse) else {
                        continue;
                    };
                    if !token::equal(&f.token, &self.token) || f.transfer != self.transfer {
                        continue;
                    }
                    match f.body {
                        Body::DoneAck | Body::Abort { .. } => return Ok(()),
                        Body::Data { .. } if now.duration_since(sent_at) >= rto / 4 => {
                            // The sender has not heard the DONE yet.
                            self.send_done();
                            sent_at = now;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// A transfer id that differs from the ids of earlier transfers.
fn new_transfer_id() -> u32 {
    let t = token::new();
    let hex = t.get(..8).unwrap_or("0");
    u32::from_str_radix(hex, 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_packet_numbers_merge_into_ranges() {
        let mut r = PnRanges::default();
        for pn in [0, 1, 2, 5, 6, 4, 9, 3, 8, 7] {
            assert!(r.insert(pn));
        }
        assert_eq!(r.0, [(9, 0)]);
        assert!(!r.insert(5));
        let mut r = PnRanges::default();
        for pn in [10, 2, 6, 7, 3] {
            r.insert(pn);
        }
        assert_eq!(r.0, [(10, 10), (7, 6), (3, 2)]);
        r.insert(5);
        r.insert(9);
        assert_eq!(r.0, [(10, 9), (7, 5), (3, 2)]);
        r.insert(8);
        r.insert(4);
        assert_eq!(r.0, [(10, 2)]);
        assert_eq!(r.largest(), Some(10));
    }

    #[test]
    fn ranges_stay_bounded() {
        let mut r = PnRanges::default();
        for pn in (0..1000).map(|i| i * 2) {
            r.insert(pn);
        }
        assert_eq!(r.0.len(), frame::MAX_ACK_RANGES);
        assert_eq!(r.0[0], (1998, 1998));
    }
}
