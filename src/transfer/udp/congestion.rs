//! Congestion control: how many bytes the sender may have in flight.
//!
//! [`Controller`] is what recovery and the sender ask and tell; [`LossScaled`]
//! is the controller the channel uses. Its window grows with acknowledged
//! bytes (slow start, then one packet per window) and shrinks once per loss
//! episode by half the running share of packets lost per round, as DCTCP
//! (RFC 8257) scales its decrease by the share of marked packets: an
//! overflowing queue (much loss, round after round) halves it, a noisy link
//! (a small share lost at random) costs a few percent. A decrease whose
//! losses all prove spurious is undone.

use std::time::Instant;

/// The largest congestion window, and the largest window the sender
/// believes beyond what was delivered: they bound the sender's
/// bookkeeping whatever a receiver claims.
pub const MAX_WINDOW: u64 = 64 << 20;

/// Weight of one round's loss fraction in the running estimate (DCTCP's
/// g, RFC 8257).
const LOSS_GAIN: f64 = 1.0 / 16.0;

/// Initial and smallest congestion windows, in packets.
const INITIAL_WINDOW_PACKETS: u64 = 32;
const MIN_WINDOW_PACKETS: u64 = 4;

/// What the sender and its loss recovery tell a congestion controller.
pub trait Controller: Send {
    /// Bytes that may be in flight.
    fn window(&self) -> u64;

    /// A packet of `bytes` sent at `sent_at` was acknowledged;
    /// `in_flight_before` bytes were in flight before the ACK, and
    /// `window_limited` says whether the window held the sender back the
    /// last time it tried to send.
    fn on_acked(
        &mut self,
        sent_at: Instant,
        bytes: u64,
        in_flight_before: u64,
        window_limited: bool,
    );

    /// `lost` packets were declared lost at `now`, the newest of them sent
    /// at `newest_sent_at`.
    fn on_lost(&mut self, now: Instant, newest_sent_at: Instant, lost: u64);

    /// A packet sent at `sent_at` and declared lost was acknowledged after
    /// all. True when that undid a decrease.
    fn on_spurious(&mut self, sent_at: Instant) -> bool;

    /// An ACK has been taken in full: `largest_acked` is the largest packet
    /// number acknowledged so far, `next_pn` the next one to be sent.
    fn on_ack_done(&mut self, largest_acked: u64, next_pn: u64);
}

/// The window before a loss episode, and how many of its losses have
/// proved spurious.
#[derive(Debug, Clone, Copy)]
struct Undo {
    cwnd: u64,
    ssthresh: u64,
    lost: u64,
    spurious: u64,
}

/// Slow start, then one packet per window acknowledged; a decrease by
/// half the running loss share once per loss episode (see the module).
#[derive(Debug, Clone)]
pub struct LossScaled {
    /// Bytes per packet.
    mss: u64,
    cwnd: u64,
    ssthresh: u64,
    /// Bytes acknowledged towards the next one-packet increase.
    growth: u64,
    /// When the current loss episode began.
    recovery_start: Option<Instant>,
    undo: Option<Undo>,
    /// Running share of packets lost per round, and the current round's
    /// counts (a round ends when a packet sent after it began is acked).
    alpha: f64,
    round_end: u64,
    round_acked: u64,
    round_lost: u64,
}

impl LossScaled {
    /// A controller for packets of `mss` bytes.
    pub fn new(mss: u64) -> LossScaled {
        LossScaled {
            mss,
            cwnd: INITIAL_WINDOW_PACKETS * mss,
            ssthresh: u64::MAX,
            growth: 0,
            recovery_start: None,
            undo: None,
            alpha: 1.0,
            round_end: 0,
            round_acked: 0,
            round_lost: 0,
        }
    }

    fn in_episode(&self, sent_at: Instant) -> bool {
        self.recovery_start.is_some_and(|r| sent_at <= r)
    }
}

impl Controller for LossScaled {
    fn window(&self) -> u64 {
        self.cwnd
    }

    fn on_acked(
        &mut self,
        sent_at: Instant,
        bytes: u64,
        in_flight_before: u64,
        window_limited: bool,
    ) {
        self.round_acked += 1;
        if self.in_episode(sent_at) {
            return;
        }
        // No growth while the window was not the limit (RFC 9002 7.8).
        if !window_limited && in_flight_before * 2 < self.cwnd {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += bytes;
        } else {
            self.growth += bytes;
            if self.growth >= self.cwnd {
                self.growth -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
        self.cwnd = self.cwnd.min(MAX_WINDOW);
    }

    /// Multiplicative decrease once per loss episode (losses of packets
    /// sent before the episode began belong to it), remembering the window
    /// so a loss that proves spurious can be undone.
    fn on_lost(&mut self, now: Instant, newest_sent_at: Instant, lost: u64) {
        self.round_lost += lost;
        if self.in_episode(newest_sent_at) {
            if let Some(u) = self.undo.as_mut() {
                u.lost += lost;
            }
            return;
        }
        self.recovery_start = Some(now);
        self.undo = Some(Undo {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            lost,
            spurious: 0,
        });
        let kept = 1.0 - self.alpha / 2.0;
        let cwnd = (self.cwnd as f64 * kept) as u64;
        self.cwnd = cwnd.max(MIN_WINDOW_PACKETS * self.mss);
        self.ssthresh = self.cwnd;
        self.growth = 0;
    }

    /// When every loss of the episode proves spurious (reordering, a late
    /// ACK), the window goes back to what it was.
    fn on_spurious(&mut self, sent_at: Instant) -> bool {
        if !self.in_episode(sent_at) {
            return false;
        }
        let Some(u) = self.undo.as_mut() else {
            return false;
        };
        u.spurious += 1;
        if u.spurious < u.lost {
            return false;
        }
        self.cwnd = self.cwnd.max(u.cwnd);
        self.ssthresh = u.ssthresh;
        self.undo = None;
        true
    }

    fn on_ack_done(&mut self, largest_acked: u64, next_pn: u64) {
        if largest_acked < self.round_end {
            return;
        }
        let seen = self.round_acked + self.round_lost;
        if seen > 0 {
            let share = self.round_lost as f64 / seen as f64;
            self.alpha = self.alpha * (1.0 - LOSS_GAIN) + share * LOSS_GAIN;
        }
        self.round_acked = 0;
        self.round_lost = 0;
        self.round_end = next_pn;
    }
}
