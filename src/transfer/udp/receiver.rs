//! The receiving side of one UDP transfer as a state machine without I/O:
//! the caller hands in datagrams ([`Receiver::handle_datagram`], with the
//! sink the in-order bytes go to), says when it has read every queued
//! datagram ([`Receiver::handle_queue_empty`]) and what time it is
//! ([`Receiver::handle_timeout`]), and sends what
//! [`Receiver::poll_transmit`] gives until [`Receiver::poll_outcome`] says
//! the transfer is over. Time is always passed in.
//!
//! ```text
//!  RECEIVING (HELLO, repeated until DATA) --idle--> Idle   --ABORT--> Aborted
//!      | every byte in: DONE
//!      v
//!   CLOSING (DONE repeated on a timer, and on DATA) --DONE_ACK, ABORT, 2 s--> Complete
//! ```
//!
//! Chunks that arrive out of order wait in a ring of one window; bytes go
//! to the sink strictly in order, each exactly once. The window it grants
//! the sender counts from the bytes the caller reports as written
//! ([`Receiver::set_written`]), so a sink that hands bytes on to a slower
//! writer bounds what is buffered to two windows.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::frame::{self, Body, Frame, TOKEN_LEN};
use super::{ReceiveOptions, Received};
use crate::protocol::code;
use crate::stop::deadline;
use crate::transfer::token;

/// The receiver acknowledges at least every this many data packets, and
/// every [`ACK_EVERY_LOSSY`] while it has seen a gap in the last
/// [`LOSSY_SPAN`] packets: where ACKs are lost too, more of them keep the
/// sender from waiting for its probe timeout.
const ACK_EVERY: u32 = 16;
const ACK_EVERY_LOSSY: u32 = 4;
const LOSSY_SPAN: u64 = 64;

/// An ACK the sender did not ask for is sent once nothing more has come
/// for this long.
pub const LINGER: Duration = Duration::from_millis(1);

/// The first HELLO repeat, doubled up to [`HELLO_RTO_MAX`] until DATA
/// comes.
const HELLO_RTO: Duration = Duration::from_millis(20);
const HELLO_RTO_MAX: Duration = Duration::from_secs(1);

/// DONE is repeated after three round trips, at least this; the closing
/// lasts at most [`CLOSING_MAX`] (or the idle time, if shorter).
const DONE_RTO_MIN: Duration = Duration::from_millis(5);
const CLOSING_MAX: Duration = Duration::from_secs(2);

/// Datagrams queued at most between two polls; more are dropped.
const OUTBOX_MAX: usize = 64;

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// HELLO sent; DATA taken until every byte is in.
    Receiving,
    /// Every byte is in: DONE until the sender confirms.
    Closing {
        began: Instant,
        sent_at: Instant,
        rto: Duration,
    },
    /// None once the outcome has been taken (or the sink failed).
    Over(Option<Received>),
}

/// Packet numbers received, as disjoint ranges `(largest, smallest)`,
/// largest first, at most [`frame::MAX_ACK_RANGES`] of them (the oldest are
/// forgotten: the sender has long settled them).
#[derive(Debug, Default)]
pub(super) struct PnRanges(pub(super) Vec<(u64, u64)>);

impl PnRanges {
    /// Records `pn`; false if it was already recorded.
    pub(super) fn insert(&mut self, pn: u64) -> bool {
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

    pub(super) fn largest(&self) -> Option<u64> {
        self.0.first().map(|&(hi, _)| hi)
    }
}

/// The receiver of one transfer: `len` bytes from `offset`, in chunks of
/// the payload size it asks for.
pub struct Receiver {
    token: [u8; TOKEN_LEN],
    transfer: u32,
    start: u64,
    end: u64,
    payload: u64,
    chunks: u64,
    idle: Duration,
    phase: Phase,

    /// Chunks below this one went to the sink.
    next: u64,
    /// Bytes the sink's consumer has taken (see [`Receiver::set_written`]).
    written: u64,
    /// Out-of-order chunks: chunk k in slot k % slots.
    slots: u64,
    ring: Vec<u8>,
    present: Vec<bool>,

    ranges: PnRanges,
    unacked: u32,
    first_unacked_at: Option<Instant>,
    /// A DATA since the last ACK asked for one without delay.
    ack_requested: bool,
    /// When an ACK is sent if nothing more comes (set when the queue was
    /// found empty, cleared by any datagram).
    linger_until: Option<Instant>,
    /// Data packets taken, and the count when the last one came out of
    /// order.
    received: u64,
    last_gap: u64,

    got_data: bool,
    last_data: Instant,
    hello_at: Instant,
    hello_rto: Duration,
    /// From the last HELLO to the first DATA.
    rtt: Option<Duration>,

    outbox: VecDeque<Vec<u8>>,
    sending: Vec<u8>,
    spare: Vec<Vec<u8>>,
}

impl Receiver {
    /// A receiver of the `len` bytes at `offset`, for transfer id
    /// `transfer` under `token`, started at `now`: its HELLO (or, for no
    /// bytes at all, its DONE) is the first datagram to send. The payload
    /// size in `opts` must lie within [`frame::MIN_PAYLOAD`] and
    /// [`frame::MAX_PAYLOAD`], and `offset + len` must not overflow.
    pub fn new(
        now: Instant,
        token: [u8; TOKEN_LEN],
        transfer: u32,
        offset: u64,
        len: u64,
        opts: &ReceiveOptions,
    ) -> Receiver {
        let payload =
            (opts.payload as u64).clamp(frame::MIN_PAYLOAD as u64, frame::MAX_PAYLOAD as u64);
        let end = offset.saturating_add(len);
        let chunks = (end - offset).div_ceil(payload);
        let slots = ((opts.window as u64) / payload).clamp(1, chunks.max(1));
        let mut r = Receiver {
            token,
            transfer,
            start: offset,
            end,
            payload,
            chunks,
            idle: opts.idle,
            phase: Phase::Receiving,
            next: 0,
            written: 0,
            slots,
            ring: vec![0u8; (slots * payload) as usize],
            present: vec![false; slots as usize],
            ranges: PnRanges::default(),
            unacked: 0,
            first_unacked_at: None,
            ack_requested: false,
            linger_until: None,
            received: 0,
            last_gap: 0,
            got_data: false,
            last_data: now,
            hello_at: now,
            hello_rto: HELLO_RTO,
            rtt: None,
            outbox: VecDeque::new(),
            sending: Vec::new(),
            spare: Vec::new(),
        };
        if chunks > 0 {
            r.send_hello();
        } else {
            r.close(now);
        }
        r
    }

    /// True once every byte went to the sink.
    pub fn is_complete(&self) -> bool {
        self.next == self.chunks
    }

    /// The bytes the sink's consumer has taken so far. The window the
    /// sender may fill counts from here; a caller whose sink keeps what it
    /// is given reports every byte written to it.
    pub fn set_written(&mut self, total: u64) {
        self.written = total;
    }

    /// Takes one datagram that came at `now`, writing the bytes it
    /// completes, in order, to `sink`. Anything not meant for this transfer
    /// is ignored. A sink error ends the transfer (the sender is told) and
    /// is returned.
    pub fn handle_datagram<W: Write + ?Sized>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        sink: &mut W,
    ) -> io::Result<()> {
        self.linger_until = None;
        let Ok(f) = Frame::parse(bytes) else {
            return Ok(());
        };
        if !token::equal(&f.token, &self.token) || f.transfer != self.transfer {
            return Ok(());
        }
        match (self.phase, f.body) {
            (
                Phase::Receiving,
                Body::Data {
                    pn,
                    offset,
                    ack_now,
                    payload,
                },
            ) => {
                if let Err(e) = self.take_data(now, pn, offset, ack_now, payload, sink) {
                    self.abort();
                    return Err(e);
                }
            }
            (Phase::Receiving, Body::Abort { code }) => {
                self.phase = Phase::Over(Some(Received::Aborted(code)));
            }
            (Phase::Closing { .. }, Body::DoneAck | Body::Abort { .. }) => {
                self.phase = Phase::Over(Some(Received::Complete));
            }
            (
                Phase::Closing {
                    sent_at,
                    rto,
                    began,
                },
                Body::Data { .. },
            ) if now.duration_since(sent_at) >= rto / 4 => {
                // The sender has not heard the DONE yet.
                self.send_done();
                self.phase = Phase::Closing {
                    began,
                    sent_at: now,
                    rto,
                };
            }
            _ => {}
        }
        Ok(())
    }

    fn take_data<W: Write + ?Sized>(
        &mut self,
        now: Instant,
        pn: u64,
        offset: u64,
        ack_now: bool,
        payload: &[u8],
        sink: &mut W,
    ) -> io::Result<()> {
        self.ack_requested |= ack_now;
        if !self.got_data {
            self.got_data = true;
            self.rtt = Some(now.duration_since(self.hello_at));
        }
        self.last_data = now;
        let urgent = self.on_data(now, pn, offset, payload, sink)?;
        let every = if self.received < self.last_gap + LOSSY_SPAN {
            ACK_EVERY_LOSSY
        } else {
            ACK_EVERY
        };
        if self.next < self.chunks && (urgent || self.unacked >= every) {
            self.send_ack(now);
        }
        if self.is_complete() {
            self.close(now);
        }
        Ok(())
    }

    /// Every datagram that had arrived has been handed in: an ACK the
    /// sender asked for goes now; one it did not ask for waits for
    /// [`LINGER`].
    pub fn handle_queue_empty(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Receiving) {
            return;
        }
        if self.unacked > 0 && self.ack_requested {
            self.send_ack(now);
        }
        if self.unacked > 0 && self.linger_until.is_none() {
            self.linger_until = Some(deadline(now, LINGER));
        }
    }

    /// Acts on whatever is due at `now`: an ACK held back, the idle limit,
    /// a HELLO or DONE repeat, the end of the closing. Harmless when
    /// nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Receiving => {
                if self.linger_until.is_some_and(|t| now >= t) {
                    self.linger_until = None;
                    if self.unacked > 0 {
                        self.send_ack(now);
                    }
                }
                if now.duration_since(self.last_data) >= self.idle {
                    self.phase = Phase::Over(Some(Received::Idle(self.idle)));
                    return;
                }
                if !self.got_data && now >= deadline(self.hello_at, self.hello_rto) {
                    self.send_hello();
                    self.hello_at = now;
                    self.hello_rto = (self.hello_rto * 2).min(HELLO_RTO_MAX);
                }
            }
            Phase::Closing {
                began,
                sent_at,
                rto,
            } => {
                if now.duration_since(began) >= self.idle.min(CLOSING_MAX) {
                    self.phase = Phase::Over(Some(Received::Complete));
                } else if now >= deadline(sent_at, rto) {
                    self.send_done();
                    self.phase = Phase::Closing {
                        began,
                        sent_at: now,
                        rto: rto * 2,
                    };
                }
            }
            Phase::Over(_) => {}
        }
    }

    /// When [`Receiver::handle_timeout`] should run next, at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Receiving => {
                let mut at = deadline(self.last_data, self.idle);
                if !self.got_data {
                    at = at.min(deadline(self.hello_at, self.hello_rto));
                }
                if self.unacked > 0 {
                    if let Some(t) = self.linger_until {
                        at = at.min(t);
                    }
                }
                Some(at)
            }
            Phase::Closing {
                began,
                sent_at,
                rto,
            } => Some(deadline(began, self.idle.min(CLOSING_MAX)).min(deadline(sent_at, rto))),
            Phase::Over(_) => None,
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        let next = self.outbox.pop_front()?;
        let done = std::mem::replace(&mut self.sending, next);
        self.spare.push(done);
        Some(&self.sending)
    }

    /// How the transfer ended, once it is over and its last datagrams have
    /// been taken; Some only once.
    pub fn poll_outcome(&mut self) -> Option<Received> {
        if !self.outbox.is_empty() {
            return None;
        }
        match &mut self.phase {
            Phase::Over(o) => o.take(),
            _ => None,
        }
    }

    /// Gives up (the bytes cannot be stored), telling the sender.
    pub fn abort(&mut self) {
        let (token, transfer) = (self.token, self.transfer);
        self.emit(|out| frame::emit_abort(out, &token, transfer, code::ABORTED));
        self.phase = Phase::Over(None);
    }

    /// Chunks below this one may be sent: the window counts from what the
    /// consumer has taken, so buffered bytes never exceed two windows.
    fn allowed(&self) -> u64 {
        (self.written / self.payload + self.slots).min(self.chunks)
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

    /// Queues a datagram written by `write` into a reused buffer.
    fn emit(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.outbox.len() >= OUTBOX_MAX {
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        write(&mut buf);
        self.outbox.push_back(buf);
    }

    fn send_hello(&mut self) {
        let (token, transfer, start) = (self.token, self.transfer, self.start);
        let (len, max_data, payload) = (self.end - start, self.max_data(), self.payload as u16);
        self.emit(|out| frame::emit_hello(out, &token, transfer, start, len, max_data, payload));
    }

    fn send_ack(&mut self, now: Instant) {
        let delay = self.first_unacked_at.map_or(0, |t| {
            now.duration_since(t).as_micros().min(u128::from(u32::MAX)) as u32
        });
        let (token, transfer) = (self.token, self.transfer);
        let (delivered, max_data) = (self.delivered(), self.max_data());
        let ranges = std::mem::take(&mut self.ranges.0);
        self.emit(|out| {
            frame::emit_ack(out, &token, transfer, delivered, max_data, delay, &ranges);
        });
        self.ranges.0 = ranges;
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
        let (token, transfer, end) = (self.token, self.transfer, self.end);
        self.emit(|out| frame::emit_done(out, &token, transfer, end));
    }

    /// Every byte is in: DONE, repeated after three round trips.
    fn close(&mut self, now: Instant) {
        let rto = self.rtt.map_or(DONE_RTO_MIN, |r| (r * 3).max(DONE_RTO_MIN));
        self.send_done();
        self.phase = Phase::Closing {
            began: now,
            sent_at: now,
            rto,
        };
    }

    /// Takes one DATA frame. True when it should be acknowledged at once
    /// (out of order or a repeat).
    fn on_data<W: Write + ?Sized>(
        &mut self,
        now: Instant,
        pn: u64,
        offset: u64,
        payload: &[u8],
        sink: &mut W,
    ) -> io::Result<bool> {
        if offset < self.start
            || offset >= self.end
            || !(offset - self.start).is_multiple_of(self.payload)
        {
            return Ok(false);
        }
        let k = (offset - self.start) / self.payload;
        if payload.len() as u64 != self.chunk_len(k) || k >= self.allowed() {
            // Not what this transfer's chunks look like, or past the
            // window: dropped, and not acknowledged.
            return Ok(false);
        }
        let in_order = self.ranges.largest().is_none_or(|hi| pn == hi + 1);
        if !self.ranges.insert(pn) {
            return Ok(true);
        }
        self.received += 1;
        if !in_order {
            self.last_gap = self.received;
        }
        if self.first_unacked_at.is_none() {
            self.first_unacked_at = Some(now);
        }
        self.unacked += 1;
        if k < self.next {
            return Ok(true);
        }
        if k == self.next {
            sink.write_all(payload)?;
            self.next += 1;
            self.drain_ring(sink)?;
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
        Ok(!in_order)
    }

    /// Writes the chunks waiting in the ring that now follow in order.
    fn drain_ring<W: Write + ?Sized>(&mut self, sink: &mut W) -> io::Result<()> {
        while self.next < self.chunks {
            let slot = (self.next % self.slots) as usize;
            if !self.present.get(slot).copied().unwrap_or(false) {
                break;
            }
            let len = self.chunk_len(self.next) as usize;
            let from = slot * self.payload as usize;
            if let Some(b) = self.ring.get(from..from + len) {
                sink.write_all(b)?;
            }
            if let Some(p) = self.present.get_mut(slot) {
                *p = false;
            }
            self.next += 1;
        }
        Ok(())
    }
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
