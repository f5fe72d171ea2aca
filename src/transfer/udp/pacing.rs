//! Pacing: packets leave spread over the round trip at 1.25 × window /
//! smoothed RTT, instead of in one burst per window that a queue on the
//! path would have to absorb. A token bucket allows bursts of at most
//! [`BURST_PACKETS`].

use std::time::{Duration, Instant};

/// The pacer's burst allowance in packets, and the most packets sent back
/// to back before acknowledgements are read again.
pub const BURST_PACKETS: u64 = 16;

/// A token bucket in bytes, refilled at the pacing rate.
#[derive(Debug, Clone)]
pub struct Pacer {
    mss: u64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// A full bucket for packets of `mss` bytes.
    pub fn new(now: Instant, mss: u64) -> Pacer {
        Pacer {
            mss,
            tokens: (BURST_PACKETS * mss) as f64,
            last: now,
        }
    }

    /// Bytes per second for a `window` and a smoothed RTT, once there is
    /// an RTT; before that nothing is paced.
    pub fn rate(window: u64, smoothed_rtt: Option<Duration>) -> Option<f64> {
        let srtt = smoothed_rtt?.as_secs_f64().max(1e-6);
        Some(1.25 * window as f64 / srtt)
    }

    /// True when a whole packet may go at `now` at `rate`.
    pub fn admits(&mut self, now: Instant, rate: Option<f64>) -> bool {
        let Some(rate) = rate else {
            return true;
        };
        self.refill(now, rate);
        self.tokens >= self.mss as f64
    }

    /// `bytes` went out.
    pub fn spend(&mut self, bytes: u64) {
        self.tokens -= bytes as f64;
    }

    /// When a whole packet may go at `rate`, if not at once.
    pub fn ready_at(&self, rate: Option<f64>) -> Option<Instant> {
        let rate = rate?;
        let need = self.mss as f64 - self.tokens;
        if need <= 0.0 {
            return None;
        }
        // A rate near zero (or not a number) waits as long as any wait.
        let wait = Duration::try_from_secs_f64(need / rate).unwrap_or(crate::stop::MAX_DURATION);
        Some(crate::stop::deadline(self.last, wait))
    }

    fn refill(&mut self, now: Instant, rate: f64) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let burst = (BURST_PACKETS * self.mss) as f64;
        self.tokens = (self.tokens + dt * rate).min(burst);
    }
}
