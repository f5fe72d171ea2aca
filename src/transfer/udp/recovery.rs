//! Loss recovery as RFC 9002 does it: the packets in flight, the
//! round-trip estimate (section 5), the packet and time thresholds that
//! declare a packet lost (6.1), and the probe timeout that recovers a lost
//! tail (6.2), doubled on each expiry without an acknowledgement.
//!
//! Recovery knows packet numbers, times and byte counts, not what a packet
//! carried: it tells the sender's chunk bookkeeping ([`Chunks`]) which
//! packets arrived and which were lost, and the congestion controller what
//! it needs to size the window. Time is always passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::congestion::Controller;
use crate::stop::deadline;

/// The ack delay the sender allows for in its probe timeout: when the
/// sender flags that it waits for an ACK, the receiver sends one as soon as
/// it has read every queued datagram, so only its scheduling delays it.
pub const MAX_ACK_DELAY: Duration = Duration::from_micros(100);

/// Timer granularity (RFC 9002 suggests 1 ms for operating-system timers;
/// the sender waits on a queue with finer timers, and a loopback or LAN
/// round trip takes tens of microseconds).
const GRANULARITY: Duration = Duration::from_micros(100);

/// A packet is lost once one sent this many packet numbers later has been
/// acknowledged.
const PACKET_THRESHOLD: u64 = 3;

/// The RTT assumed before the first sample.
const INITIAL_RTT: Duration = Duration::from_millis(100);

/// RFC 9002 section 5: smoothed RTT and variance.
#[derive(Debug, Clone)]
pub struct Rtt {
    pub(super) latest: Duration,
    pub(super) smoothed: Duration,
    pub(super) var: Duration,
    pub(super) min: Duration,
    pub(super) sampled: bool,
}

impl Default for Rtt {
    fn default() -> Rtt {
        Rtt {
            latest: INITIAL_RTT,
            smoothed: INITIAL_RTT,
            var: INITIAL_RTT / 2,
            min: INITIAL_RTT,
            sampled: false,
        }
    }
}

impl Rtt {
    /// Takes one sample: `latest` from sending a packet to its first ACK,
    /// of which the receiver says it held the ACK back for `ack_delay`.
    pub fn sample(&mut self, latest: Duration, ack_delay: Duration) {
        self.latest = latest;
        if !self.sampled {
            self.sampled = true;
            self.min = latest;
            self.smoothed = latest;
            self.var = latest / 2;
            return;
        }
        self.min = self.min.min(latest);
        let ack_delay = ack_delay.min(MAX_ACK_DELAY);
        let adjusted = if latest >= self.min + ack_delay {
            latest - ack_delay
        } else {
            latest
        };
        let diff = self.smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// The smoothed RTT, once there has been a sample.
    pub fn smoothed(&self) -> Option<Duration> {
        self.sampled.then_some(self.smoothed)
    }

    /// The probe timeout before backoff.
    pub fn pto(&self) -> Duration {
        self.smoothed + (self.var * 4).max(GRANULARITY) + MAX_ACK_DELAY
    }

    /// How much older than an acknowledged packet a packet may be before
    /// it counts as lost: 9/8 of the larger of the smoothed and latest RTT.
    pub fn loss_delay(&self) -> Duration {
        (self.latest.max(self.smoothed) * 9 / 8).max(GRANULARITY)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PacketState {
    Outstanding,
    Acked,
    Lost,
}

/// A packet declared lost, kept a while (see [`Recovery::lost`]).
#[derive(Debug, Clone, Copy)]
struct LostPacket {
    pn: u64,
    offset: u64,
    at: Instant,
}

/// Lost packets are remembered for this many probe timeouts after they
/// were sent: an acknowledgement later than that is not expected (the
/// criterion msquic and quinn use).
const LOST_KEPT_PTOS: u32 = 2;

/// One transmission, kept until it is acknowledged or declared lost.
#[derive(Debug, Clone, Copy)]
struct SentPacket {
    offset: u64,
    len: u32,
    at: Instant,
    state: PacketState,
}

/// What recovery tells the bookkeeping of what the packets carried.
pub trait Chunks {
    /// A packet carrying the chunk at `offset` was acknowledged.
    fn acked(&mut self, offset: u64);

    /// Packet `pn`, which carried the `len` bytes at `offset`, is lost.
    /// False when those bytes are known to have arrived anyway, so it does
    /// not count as a loss.
    fn lost(&mut self, pn: u64, offset: u64, len: u64) -> bool;
}

/// What [`Recovery::on_ack`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Some packet was acknowledged for the first time.
    pub newly: bool,
    /// Window decreases undone because their losses proved spurious.
    pub undone: u64,
}

/// What a timer expiry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Nothing was due.
    Nothing,
    /// The loss timer: this many packets were declared lost.
    Lost(u64),
    /// The probe timeout: two probes are due.
    Probe,
}

/// The packets in flight, by packet number, and the timers over them.
#[derive(Debug)]
pub struct Recovery {
    /// Packets from `base` on, by packet number; the last is `next_pn - 1`.
    packets: VecDeque<SentPacket>,
    base: u64,
    /// Packets declared lost (and counted as lost), by packet number, so
    /// that an acknowledgement that comes after all shows the loss was
    /// spurious: reordering, or a late ACK.
    lost: VecDeque<LostPacket>,
    next_pn: u64,
    largest_acked: Option<u64>,
    in_flight: u64,
    last_sent_at: Instant,
    loss_time: Option<Instant>,
    pto_count: u32,
    rtt: Rtt,
}

impl Recovery {
    pub fn new(now: Instant) -> Recovery {
        Recovery {
            packets: VecDeque::new(),
            base: 0,
            lost: VecDeque::new(),
            next_pn: 0,
            largest_acked: None,
            in_flight: 0,
            last_sent_at: now,
            loss_time: None,
            pto_count: 0,
            rtt: Rtt::default(),
        }
    }

    /// The packet number the next packet gets.
    pub fn next_pn(&self) -> u64 {
        self.next_pn
    }

    /// Bytes sent and neither acknowledged nor declared lost.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    pub fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    /// Records packet [`Recovery::next_pn`], carrying `len` bytes at
    /// `offset`, as sent at `now`.
    pub fn on_sent(&mut self, now: Instant, offset: u64, len: u32) {
        self.next_pn += 1;
        self.packets.push_back(SentPacket {
            offset,
            len,
            at: now,
            state: PacketState::Outstanding,
        });
        self.in_flight += u64::from(len);
        self.last_sent_at = now;
    }

    /// Takes the ranges of an ACK (largest first): settles each packet
    /// they name, tells `cc` and `chunks`, and samples the RTT when the
    /// largest packet named was newly acknowledged. `window_limited` says
    /// whether the window held the sender back the last time it tried.
    pub fn on_ack(
        &mut self,
        now: Instant,
        ranges: &[(u64, u64)],
        ack_delay: Duration,
        window_limited: bool,
        cc: &mut dyn Controller,
        chunks: &mut dyn Chunks,
    ) -> Acked {
        let in_flight_before = self.in_flight;
        let mut out = Acked::default();
        let mut largest_newly: Option<(u64, Instant)> = None;
        let top = self.next_pn;
        for &(hi, lo) in ranges {
            if hi < self.base || lo >= top {
                continue;
            }
            for pn in lo.max(self.base)..=hi.min(top - 1) {
                let Some(p) = self.packets.get_mut((pn - self.base) as usize) else {
                    break;
                };
                if p.state != PacketState::Outstanding {
                    continue;
                }
                p.state = PacketState::Acked;
                let len = u64::from(p.len);
                self.in_flight = self.in_flight.saturating_sub(len);
                out.newly = true;
                if largest_newly.is_none_or(|(l, _)| pn > l) {
                    largest_newly = Some((pn, p.at));
                }
                cc.on_acked(p.at, len, in_flight_before, window_limited);
                chunks.acked(p.offset);
            }
        }
        out.undone = self.detect_spurious(ranges, cc, chunks);
        if let Some(&(largest, _)) = ranges.first() {
            let largest = largest.min(top.saturating_sub(1));
            if top > 0 && self.largest_acked.is_none_or(|l| largest > l) {
                self.largest_acked = Some(largest);
            }
            if let Some((pn, at)) = largest_newly {
                if pn == largest {
                    self.rtt.sample(now.duration_since(at), ack_delay);
                }
            }
        }
        if out.newly {
            self.pto_count = 0;
        }
        out
    }

    /// Packets declared lost that `ranges` acknowledge after all: their
    /// bytes did arrive. Returns the window decreases that undid.
    fn detect_spurious(
        &mut self,
        ranges: &[(u64, u64)],
        cc: &mut dyn Controller,
        chunks: &mut dyn Chunks,
    ) -> u64 {
        let mut undone = 0;
        for &(hi, lo) in ranges {
            let from = self.lost.partition_point(|l| l.pn < lo);
            let to = self.lost.partition_point(|l| l.pn <= hi);
            if from >= to {
                continue;
            }
            for l in self.lost.drain(from..to) {
                chunks.acked(l.offset);
                if cc.on_spurious(l.at) {
                    undone += 1;
                }
            }
        }
        undone
    }

    /// RFC 9002 6.1: declares lost every outstanding packet at or below the
    /// largest acknowledged one that is [`PACKET_THRESHOLD`] numbers or the
    /// loss delay older than it, and arms the loss timer for the rest.
    /// Returns how many counted as lost.
    pub fn detect_lost(
        &mut self,
        now: Instant,
        cc: &mut dyn Controller,
        chunks: &mut dyn Chunks,
    ) -> u64 {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else {
            return 0;
        };
        let kept = self.rtt.pto() * LOST_KEPT_PTOS;
        while self
            .lost
            .front()
            .is_some_and(|l| now.duration_since(l.at) > kept)
        {
            self.lost.pop_front();
        }
        let loss_delay = self.rtt.loss_delay();
        let lost_before = now.checked_sub(loss_delay);
        let mut newest_lost: Option<Instant> = None;
        let mut lost = 0;
        for (pn, p) in (self.base..).zip(self.packets.iter_mut()) {
            if pn > largest {
                break;
            }
            if p.state != PacketState::Outstanding {
                continue;
            }
            let by_time = lost_before.is_some_and(|b| p.at <= b);
            if by_time || largest >= pn + PACKET_THRESHOLD {
                let len = u64::from(p.len);
                self.in_flight = self.in_flight.saturating_sub(len);
                p.state = PacketState::Lost;
                if chunks.lost(pn, p.offset, len) {
                    lost += 1;
                    newest_lost = Some(newest_lost.map_or(p.at, |t| t.max(p.at)));
                    self.lost.push_back(LostPacket {
                        pn,
                        offset: p.offset,
                        at: p.at,
                    });
                }
            } else {
                let t = deadline(p.at, loss_delay);
                self.loss_time = Some(self.loss_time.map_or(t, |l| l.min(t)));
            }
        }
        if let Some(at) = newest_lost {
            cc.on_lost(now, at, lost);
        }
        lost
    }

    /// The largest packet number acknowledged so far.
    pub fn largest_acked(&self) -> Option<u64> {
        self.largest_acked
    }

    /// Forgets the settled packets at the front.
    pub fn pop_settled(&mut self) {
        while self
            .packets
            .front()
            .is_some_and(|p| p.state != PacketState::Outstanding)
        {
            self.packets.pop_front();
            self.base += 1;
        }
    }

    /// The earliest timer: loss detection, or else the probe timeout.
    /// `all_sent` says that every chunk has been sent and none waits to be
    /// sent again.
    pub fn timer(&self, all_sent: bool) -> Option<Instant> {
        if let Some(t) = self.loss_time {
            return Some(t);
        }
        if all_sent && self.in_flight == 0 {
            // Everything is acknowledged: the receiver's DONE is due, and
            // a probe would only make it repeat itself.
            return Some(deadline(
                self.last_sent_at,
                self.rtt.pto().saturating_mul(8),
            ));
        }
        let backoff = 1u32 << self.pto_count.min(10);
        Some(deadline(
            self.last_sent_at,
            self.rtt.pto().saturating_mul(backoff),
        ))
    }

    /// Acts on the timer if it is due at `now`.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        all_sent: bool,
        cc: &mut dyn Controller,
        chunks: &mut dyn Chunks,
    ) -> Expired {
        if self.loss_time.is_some_and(|t| now >= t) {
            let lost = self.detect_lost(now, cc, chunks);
            self.pop_settled();
            return Expired::Lost(lost);
        }
        if self.timer(all_sent).is_some_and(|t| now >= t) {
            self.pto_count += 1;
            self.last_sent_at = now;
            return Expired::Probe;
        }
        Expired::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_follows_rfc_9002() {
        let mut rtt = Rtt::default();
        rtt.sample(Duration::from_millis(10), Duration::ZERO);
        assert_eq!(rtt.smoothed, Duration::from_millis(10));
        assert_eq!(rtt.var, Duration::from_millis(5));
        // The reported ack delay counts up to MAX_ACK_DELAY (100 µs):
        // adjusted 17.9 ms, var = (3 × 5 + 7.9) / 4, srtt = (7 × 10 + 17.9) / 8.
        rtt.sample(Duration::from_millis(18), Duration::from_millis(1));
        assert_eq!(rtt.var, Duration::from_micros(5725));
        assert_eq!(rtt.smoothed, Duration::from_nanos(10_987_500));
        assert_eq!(rtt.min, Duration::from_millis(10));
    }
}
