//! The sending side of one UDP transfer as a state machine without I/O, in
//! the manner of quinn-proto's `Connection`: the caller hands in datagrams
//! ([`Sender::handle_datagram`]) and the time ([`Sender::handle_timeout`]),
//! takes out datagrams to send ([`Sender::poll_transmit`]) and the next
//! deadline ([`Sender::poll_timeout`]), and at the end the outcome
//! ([`Sender::poll_outcome`]). The time is always passed in, never read;
//! file bytes come through [`Source`].
//!
//! ```text
//!  AWAIT_HELLO --wait--> NoReceiver
//!      | HELLO for exactly these bytes, of no finished transfer
//!      v
//!   SENDING --silent / stalled--> ABORT 426     --file changed--> ABORT 451
//!      | DONE, or an ACK of every byte           --receiver ABORT--> Broken
//!      v
//!   DONE_ACK x3, then Sent (or Changed)
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::chunks::{ChunkMap, ReadAhead};
use super::congestion::{Controller, LossScaled};
use super::frame::{self, Body, Frame, DATA_HEADER_LEN, MAX_ACK_RANGES, TOKEN_LEN};
use super::pacing::Pacer;
use super::recovery::{Expired, Recovery};
use super::{SendLimits, SendStats};
use crate::protocol::code;
use crate::stop::deadline;
use crate::transfer::{token, SendOutcome, Source};

/// DONE_ACK (and ABORT) is sent this many times: it is the last word, and
/// a lost one costs the receiver its retry timer.
const LAST_WORD_COPIES: usize = 3;

/// Finished transfer ids remembered, to answer a repeated DONE.
const FINISHED_KEPT: usize = 16;

/// Control datagrams queued at most between two polls; more are dropped.
const OUTBOX_MAX: usize = 1024;

/// True when a datagram from `from` may be queued for a sender serving the
/// control connection's peer `peer_ip` with `token`: it comes from that
/// address, is no longer than a receiver ever sends, and carries the token.
/// The queue holds only such datagrams, so its memory stays bounded.
pub fn admissible(
    peer_ip: IpAddr,
    from: SocketAddr,
    bytes: &[u8],
    token: &[u8; TOKEN_LEN],
) -> bool {
    from.ip() == peer_ip
        && bytes.len() <= frame::MAX_FROM_RECEIVER
        && frame::carries_token(bytes, token)
}

/// The ids of a channel's last finished transfers: a HELLO naming one is
/// refused, a DONE naming one is answered again.
#[derive(Debug, Clone, Default)]
pub struct Finished(VecDeque<u32>);

impl Finished {
    pub fn contains(&self, id: u32) -> bool {
        self.0.contains(&id)
    }

    pub fn push(&mut self, id: u32) {
        if self.0.len() >= FINISHED_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(id);
    }
}

/// One datagram to send.
#[derive(Debug)]
pub struct Transmit<'a> {
    pub to: SocketAddr,
    pub bytes: &'a [u8],
    /// A DATA frame: it counts as sent only once [`Sender::on_sent`] says
    /// so. Anything else is sent at most once, whatever becomes of it.
    pub data: bool,
}

/// How the transfer ended, before the outcome is taken.
#[derive(Debug)]
enum Ending {
    /// The receiver has every byte; whether the file held still is
    /// checked when the outcome is taken.
    Confirmed,
    Outcome(SendOutcome),
}

#[derive(Debug)]
enum Phase {
    AwaitHello,
    Sending,
    /// None once the outcome has been taken.
    Over(Option<Ending>),
}

/// The sender of one transfer: the bytes from an offset to the end of a
/// [`Source`], to the receiver whose HELLO asks for exactly them.
pub struct Sender<'a, S: Source + ?Sized> {
    source: &'a S,
    token: [u8; TOKEN_LEN],
    start: u64,
    end: u64,
    limits: SendLimits,
    finished: Finished,
    hello_deadline: Instant,
    phase: Phase,
    transfer: Option<Box<Transfer>>,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    sending: Vec<u8>,
    stats: SendStats,
}

impl<'a, S: Source + ?Sized> Sender<'a, S> {
    /// A sender of `source` from `offset` to its end, under the channel's
    /// `token`, that waits from `now` for a HELLO; `finished` are the
    /// channel's last transfers.
    pub fn new(
        now: Instant,
        source: &'a S,
        offset: u64,
        token: [u8; TOKEN_LEN],
        limits: &SendLimits,
        finished: &Finished,
    ) -> Sender<'a, S> {
        let end = source.len().max(offset);
        Sender {
            source,
            token,
            start: offset,
            end,
            limits: limits.clone(),
            finished: finished.clone(),
            hello_deadline: deadline(now, limits.wait),
            phase: Phase::AwaitHello,
            transfer: None,
            outbox: VecDeque::new(),
            sending: Vec::new(),
            stats: SendStats::default(),
        }
    }

    /// The receiver's transfer id, once its HELLO came.
    pub fn transfer_id(&self) -> Option<u32> {
        self.transfer.as_ref().map(|t| t.id)
    }

    /// Figures of the transfer so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// True once the transfer is over (its last datagrams may still wait
    /// in [`Sender::poll_transmit`]).
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over(_))
    }

    /// Takes one datagram that came from `from` at `now`. Anything not
    /// meant for this transfer is ignored.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(f) = Frame::parse(bytes) else {
            return;
        };
        if !token::equal(&f.token, &self.token) {
            return;
        }
        match self.phase {
            Phase::AwaitHello => self.await_hello(now, from, &f),
            Phase::Sending => {
                let Some(t) = self.transfer.as_mut() else {
                    return;
                };
                t.staged = None;
                if from != t.to || f.transfer != t.id {
                    return;
                }
                if let Some(ending) = t.handle(now, f.body, self.end, &mut self.stats) {
                    self.finish(ending);
                }
            }
            Phase::Over(_) => {}
        }
    }

    fn await_hello(&mut self, now: Instant, from: SocketAddr, f: &Frame<'_>) {
        match f.body {
            Body::Hello {
                offset,
                length,
                max_data,
                payload,
            } if offset == self.start
                && length == self.end - self.start
                && !self.finished.contains(f.transfer) =>
            {
                let hello = Hello {
                    from,
                    id: f.transfer,
                    max_data,
                    payload: u64::from(payload),
                };
                let t = Transfer::new(now, hello, self.start, self.end);
                self.transfer = Some(Box::new(t));
                self.phase = Phase::Sending;
            }
            Body::Done { .. } if self.finished.contains(f.transfer) => {
                let mut out = Vec::with_capacity(frame::field::HEADER_END);
                frame::emit_done_ack(&mut out, &self.token, f.transfer);
                self.queue(from, out);
            }
            _ => {}
        }
    }

    /// Acts on whatever is due at `now`: the wait for the HELLO, the
    /// receiver's silence, a stalled transfer, loss and probe timers.
    /// Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::AwaitHello if now >= self.hello_deadline => {
                self.phase = Phase::Over(Some(Ending::Outcome(SendOutcome::NoReceiver)));
            }
            Phase::Sending => {
                let Some(t) = self.transfer.as_mut() else {
                    return;
                };
                t.staged = None;
                let (silence, stall) = (self.limits.silence, self.limits.stall);
                if now.duration_since(t.last_heard) >= silence {
                    self.abort(code::ABORTED, SendOutcome::Silent(silence));
                } else if now.duration_since(t.progress_at) >= stall {
                    self.abort(code::ABORTED, SendOutcome::Stalled(stall));
                } else {
                    t.on_timers(now, &mut self.stats);
                }
            }
            _ => {}
        }
    }

    /// The next datagram to send at `now`: queued answers first, then the
    /// DATA that the window, the pacer and the receiver's limit allow.
    /// None when nothing may be sent now.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_>> {
        if let Some((to, bytes)) = self.outbox.pop_front() {
            self.sending = bytes;
            return Some(Transmit {
                to,
                bytes: &self.sending,
                data: false,
            });
        }
        if !matches!(self.phase, Phase::Sending) {
            return None;
        }
        let t = self.transfer.as_mut()?;
        match t.stage(now, self.source, &self.token, self.end) {
            Ok(Some(n)) => {
                let t = self.transfer.as_ref()?;
                let bytes = t.packet.get(..n)?;
                Some(Transmit {
                    to: t.to,
                    bytes,
                    data: true,
                })
            }
            Ok(None) => None,
            Err(outcome) => {
                self.abort(code::LOCAL_ERROR, outcome);
                self.poll_transmit(now)
            }
        }
    }

    /// The DATA of the last [`Sender::poll_transmit`] left at `now`. Call
    /// it once the socket took the datagram, and not at all when it did
    /// not: an unconfirmed DATA was never sent and is picked again.
    pub fn on_sent(&mut self, now: Instant) {
        if let Some(t) = self.transfer.as_mut() {
            t.on_sent(now, &mut self.stats);
        }
    }

    /// When [`Sender::handle_timeout`] should run next, at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitHello => Some(self.hello_deadline),
            Phase::Sending => self.transfer.as_ref().map(|t| t.timeout(&self.limits)),
            Phase::Over(_) => None,
        }
    }

    /// How the transfer ended, once it is over and its last datagrams have
    /// been taken; Some only once.
    pub fn poll_outcome(&mut self) -> Option<SendOutcome> {
        if !self.outbox.is_empty() {
            return None;
        }
        let Phase::Over(ending) = &mut self.phase else {
            return None;
        };
        Some(match ending.take()? {
            Ending::Confirmed => SendOutcome::checked(self.source, self.end - self.start),
            Ending::Outcome(o) => o,
        })
    }

    fn queue(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        if self.outbox.len() < OUTBOX_MAX {
            self.outbox.push_back((to, bytes));
        }
    }

    /// Ends the transfer; the receiver's DONE is answered.
    fn finish(&mut self, ending: Ending) {
        if let (Ending::Confirmed, Some(t)) = (&ending, self.transfer.as_ref()) {
            let (to, id) = (t.to, t.id);
            let mut out = Vec::with_capacity(frame::field::HEADER_END);
            frame::emit_done_ack(&mut out, &self.token, id);
            for _ in 0..LAST_WORD_COPIES {
                self.queue(to, out.clone());
            }
        }
        self.phase = Phase::Over(Some(ending));
    }

    /// Ends the transfer with `outcome`, and tells the receiver so with the
    /// reply code the control connection will give.
    fn abort(&mut self, code: u16, outcome: SendOutcome) {
        if let Some(t) = self.transfer.as_ref() {
            let (to, id) = (t.to, t.id);
            let mut out = Vec::with_capacity(frame::field::ABORT_END);
            frame::emit_abort(&mut out, &self.token, id, code);
            for _ in 0..LAST_WORD_COPIES {
                self.queue(to, out.clone());
            }
        }
        self.phase = Phase::Over(Some(Ending::Outcome(outcome)));
    }
}

/// What a HELLO told the sender.
struct Hello {
    from: SocketAddr,
    id: u32,
    max_data: u64,
    payload: u64,
}

/// A DATA frame built by [`Transfer::stage`], waiting for
/// [`Transfer::on_sent`].
#[derive(Debug, Clone, Copy)]
struct Staged {
    off: u64,
    len: u64,
    probe: bool,
    again: bool,
}

/// One running transfer: where to, and everything known about its packets.
struct Transfer {
    to: SocketAddr,
    id: u32,
    payload: u64,
    progress_at: Instant,
    last_heard: Instant,
    probes_due: u32,
    /// The last attempt to send was held back by the window, or by the
    /// pacer.
    window_limited: bool,
    paced: bool,
    chunks: ChunkMap,
    recovery: Recovery,
    cc: Box<dyn Controller>,
    pacer: Pacer,
    read_ahead: ReadAhead,
    /// The DATA datagram being built: header, then the chunk.
    packet: Vec<u8>,
    staged: Option<Staged>,
}

impl Transfer {
    fn new(now: Instant, hello: Hello, start: u64, end: u64) -> Transfer {
        let payload = hello.payload;
        Transfer {
            to: hello.from,
            id: hello.id,
            payload,
            progress_at: now,
            last_heard: now,
            probes_due: 0,
            window_limited: false,
            paced: false,
            chunks: ChunkMap::new(start, end, payload, hello.max_data),
            recovery: Recovery::new(now),
            cc: Box::new(LossScaled::new(payload)),
            pacer: Pacer::new(now, payload),
            read_ahead: ReadAhead::default(),
            packet: vec![0u8; DATA_HEADER_LEN + payload as usize],
            staged: None,
        }
    }

    /// Takes one datagram of this transfer; Some when the transfer is
    /// over: the receiver confirmed every byte, or abandoned the transfer.
    fn handle(
        &mut self,
        now: Instant,
        body: Body<'_>,
        end: u64,
        stats: &mut SendStats,
    ) -> Option<Ending> {
        match body {
            Body::Ack {
                delivered,
                max_data,
                ack_delay_us,
                ranges,
            } => {
                self.last_heard = now;
                stats.acks += 1;
                // Copied out of the datagram (at most MAX_ACK_RANGES).
                let mut rs = [(0u64, 0u64); MAX_ACK_RANGES];
                let mut count = 0;
                for (slot, r) in rs.iter_mut().zip(ranges) {
                    *slot = r;
                    count += 1;
                }
                let delay = Duration::from_micros(u64::from(ack_delay_us));
                self.on_ack(now, delivered, max_data, delay, &rs[..count], stats);
                // Every byte is there: as good as DONE.
                self.chunks.is_delivered().then_some(Ending::Confirmed)
            }
            Body::Done { delivered } if delivered == end => Some(Ending::Confirmed),
            Body::Hello { .. } => {
                self.last_heard = now;
                None
            }
            Body::Abort { code } => Some(Ending::Outcome(SendOutcome::Broken(io::Error::other(
                format!("the receiver abandoned the transfer ({code})"),
            )))),
            _ => None,
        }
    }

    fn on_ack(
        &mut self,
        now: Instant,
        delivered: u64,
        max_data: u64,
        ack_delay: Duration,
        ranges: &[(u64, u64)],
        stats: &mut SendStats,
    ) {
        let cc = &mut *self.cc;
        let limited = self.window_limited;
        let acked = (self.recovery).on_ack(now, ranges, ack_delay, limited, cc, &mut self.chunks);
        stats.undone += acked.undone;
        if self.chunks.on_ack(delivered, max_data) {
            self.progress_at = now;
        }
        stats.lost += self.recovery.detect_lost(now, cc, &mut self.chunks);
        if let Some(largest) = self.recovery.largest_acked() {
            cc.on_ack_done(largest, self.recovery.next_pn());
        }
        self.recovery.pop_settled();
    }

    fn on_timers(&mut self, now: Instant, stats: &mut SendStats) {
        let all_sent = self.chunks.all_sent();
        let cc = &mut *self.cc;
        match self
            .recovery
            .on_timeout(now, all_sent, cc, &mut self.chunks)
        {
            Expired::Nothing => {}
            Expired::Lost(n) => stats.lost += n,
            Expired::Probe => {
                self.probes_due = 2;
                stats.probes += 1;
            }
        }
    }

    fn pace_rate(&self) -> Option<f64> {
        Pacer::rate(self.cc.window(), self.recovery.rtt().smoothed())
    }

    /// The earliest of: the receiver's silence limit, the stall limit, the
    /// loss or probe timer, and, when the pacer held a packet back, the
    /// time it lets it go.
    fn timeout(&self, limits: &SendLimits) -> Instant {
        let mut at =
            deadline(self.last_heard, limits.silence).min(deadline(self.progress_at, limits.stall));
        if let Some(t) = self.recovery.timer(self.chunks.all_sent()) {
            at = at.min(t);
        }
        if self.paced {
            if let Some(t) = self.pacer.ready_at(self.pace_rate()) {
                at = at.min(t);
            }
        }
        at
    }

    /// Builds the next DATA in `packet` if one may go at `now`: a probe
    /// whatever the window, else what the window and the pacer allow.
    /// Ok(Some(length)) when one is ready; an outcome when the file can no
    /// longer be read as it was.
    fn stage<S: Source + ?Sized>(
        &mut self,
        now: Instant,
        source: &S,
        token: &[u8; TOKEN_LEN],
        end: u64,
    ) -> Result<Option<usize>, SendOutcome> {
        self.staged = None;
        self.window_limited = false;
        self.paced = false;
        let probe = self.probes_due > 0;
        if !probe {
            if self.recovery.in_flight() + self.payload > self.cc.window() {
                self.window_limited = true;
                return Ok(None);
            }
            if !self.pacer.admits(now, self.pace_rate()) {
                self.paced = true;
                return Ok(None);
            }
        }
        let Some(off) = self.chunks.pick(probe) else {
            self.probes_due = 0;
            return Ok(None);
        };
        let len = self.chunks.chunk_len(off);
        let Ok(len16) = u16::try_from(len) else {
            return Ok(None);
        };
        let again = self.chunks.was_sent(off);
        let total = DATA_HEADER_LEN + usize::from(len16);
        let Some(dst) = self.packet.get_mut(DATA_HEADER_LEN..total) else {
            return Ok(None);
        };
        match self.read_ahead.read(source, off, dst, again, end) {
            Ok(true) => {}
            Ok(false) => return Err(SendOutcome::Changed),
            Err(e) => return Err(SendOutcome::ReadFailed(e)),
        }
        let (in_flight, window) = (self.recovery.in_flight(), self.cc.window());
        let ack_now = probe || self.chunks.last_before_wait(off, len, in_flight, window);
        let pn = self.recovery.next_pn();
        frame::emit_data_header(&mut self.packet, token, self.id, pn, off, len16, ack_now);
        self.staged = Some(Staged {
            off,
            len,
            probe,
            again,
        });
        Ok(Some(total))
    }

    /// The staged DATA went out at `now`.
    fn on_sent(&mut self, now: Instant, stats: &mut SendStats) {
        let Some(s) = self.staged.take() else {
            return;
        };
        stats.packets += 1;
        if s.again {
            stats.retransmitted += 1;
        }
        let pn = self.recovery.next_pn();
        self.recovery.on_sent(now, s.off, s.len as u32);
        self.chunks.on_sent(s.off, s.len, pn);
        if s.probe {
            self.probes_due -= 1;
        } else {
            self.pacer.spend(s.len);
        }
    }
}
