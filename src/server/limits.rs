//! What one address may hold or do at once, over all its sessions: data
//! ports of `--data-ports`, history rows of refused and unauthenticated
//! requests, and AUTH tries. An address here is its prefix
//! ([`Config::prefix`]): an IPv4 address, or an IPv6 /64, by default.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{lock, Config, Shared};
use crate::addr::Prefix;
use crate::history::Direction;
use crate::protocol::{Reply, Transport};
use crate::stop::Stop;

/// A data port of `--data-ports` counted against its address's share; the
/// count goes when this is dropped (with the channel holding the port).
pub(crate) struct PortClaim<'a> {
    shared: &'a Shared,
    key: Prefix,
    kind: usize,
}

/// Where a transport's count is kept in [`Shared::ports_held`].
fn slot(transport: Transport) -> usize {
    match transport {
        Transport::Tcp => 0,
        Transport::Udp => 1,
    }
}

impl Shared {
    /// How many data ports of one kind an address may hold at once: half of
    /// the `--data-ports` range, at least one, so that one address never
    /// holds them all while another has one. None without a range.
    pub(crate) fn port_share(&self) -> Option<(usize, usize)> {
        let (lo, hi) = self.config.data_ports?;
        let n = usize::from(hi.saturating_sub(lo)) + 1;
        Some(((n / 2).max(1), n))
    }

    /// Counts a data port of `transport` for `ip`; the 425 that refuses it
    /// when the address holds its share already. Ok(None) without a range.
    pub(crate) fn claim_port(
        &self,
        ip: IpAddr,
        transport: Transport,
    ) -> Result<Option<PortClaim<'_>>, Reply<'static>> {
        let Some((share, n)) = self.port_share() else {
            return Ok(None);
        };
        let mut held = lock(&self.ports_held);
        let kind = slot(transport);
        let key = self.key(ip);
        let count = &mut held.entry(key).or_insert([0, 0])[kind];
        if *count >= share {
            return Err(Reply::ports_held(transport, *count, n));
        }
        *count += 1;
        Ok(Some(PortClaim {
            shared: self,
            key,
            kind,
        }))
    }
}

impl Drop for PortClaim<'_> {
    fn drop(&mut self) {
        let mut held = lock(&self.shared.ports_held);
        if let Some(counts) = held.get_mut(&self.key) {
            let c = &mut counts[self.kind];
            *c = c.saturating_sub(1);
            if *counts == [0, 0] {
                held.remove(&self.key);
            }
        }
    }
}

/// History rows one address may write at once for refused (5xx) and
/// unauthenticated requests.
pub const ROW_BURST: u32 = 64;

/// ... and how many a second after that.
pub const ROWS_PER_SECOND: u32 = 2;

/// Addresses whose row counts are kept before the full ones are
/// forgotten.
const ROW_ADDRESSES: usize = 1024;

/// A token bucket of history rows for one address.
pub(crate) struct RowBucket {
    /// Rows that may be written now, in thousandths.
    milli: u64,
    at: Instant,
    /// Rows left out since the last one written, and the reply of the last
    /// of them.
    left_out: u64,
    last_reply: u16,
}

impl RowBucket {
    const FULL: u64 = ROW_BURST as u64 * 1000;

    fn refill(&mut self, now: Instant) {
        let elapsed = u64::try_from(now.saturating_duration_since(self.at).as_millis());
        let gained = elapsed
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(ROWS_PER_SECOND));
        self.milli = (self.milli.saturating_add(gained)).min(Self::FULL);
        self.at = now;
    }

    fn take(&mut self) -> bool {
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// What to record for a limited request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RowVerdict {
    /// Write the row; before it, a summary of this many rows left out
    /// (with the reply code of the last of them) when not zero.
    Write { left_out: u64, last_reply: u16 },
    /// Leave it out (it is counted).
    LeaveOut,
}

impl Shared {
    /// Whether a row for a refused or unauthenticated request from `ip`
    /// with this `reply` may be written: at most [`ROW_BURST`] at once
    /// and [`ROWS_PER_SECOND`] after that, per address, whatever its
    /// sessions.
    pub(crate) fn limited_row(&self, ip: IpAddr, reply: u16) -> RowVerdict {
        let now = Instant::now();
        let ip = self.key(ip);
        let mut map = lock(&self.row_limits);
        if map.len() >= ROW_ADDRESSES && !map.contains_key(&ip) {
            // Forget the addresses back at a full bucket with nothing left
            // out: they are as good as new.
            map.retain(|_, b| {
                b.refill(now);
                b.milli < RowBucket::FULL || b.left_out > 0
            });
        }
        let b = map.entry(ip).or_insert(RowBucket {
            milli: RowBucket::FULL,
            at: now,
            left_out: 0,
            last_reply: 0,
        });
        b.refill(now);
        if b.take() {
            let verdict = RowVerdict::Write {
                left_out: b.left_out,
                last_reply: b.last_reply,
            };
            b.left_out = 0;
            verdict
        } else {
            b.left_out += 1;
            b.last_reply = reply;
            RowVerdict::LeaveOut
        }
    }

    /// The rows from `ip` left out and not yet summed up, taken when the
    /// address may write a row now (at the end of a session).
    pub(crate) fn left_out_rows(&self, ip: IpAddr) -> Option<(u64, u16)> {
        let mut map = lock(&self.row_limits);
        let b = map.get_mut(&self.key(ip))?;
        b.refill(Instant::now());
        if b.left_out == 0 || !b.take() {
            return None;
        }
        let n = std::mem::take(&mut b.left_out);
        Some((n, b.last_reply))
    }

    /// Writes the history row that says `n` rows from `who` (an address's
    /// prefix, or the name of a stdio session's peer) were left out, the
    /// last of them answered `last_reply`.
    pub(crate) fn record_left_out(&self, who: &str, n: u64, last_reply: u16) {
        let _ = self.history.append(
            Direction::In,
            who,
            &format!(
                "({n} more refused or unauthenticated requests from this address not recorded: \
                 over {} rows at once or {} a second)",
                super::ROW_BURST,
                super::ROWS_PER_SECOND
            ),
            last_reply,
        );
    }
}

/// Wrong secrets from one address, over all its connections, answered
/// without delay; after them each wrong one waits before its answer.
pub const FREE_WRONG_SECRETS: u32 = 3;

/// How long an address's wrong secrets are remembered after its last one.
pub const AUTH_FORGET: Duration = Duration::from_secs(600);

/// Addresses whose wrong secrets are remembered before the harmless ones
/// are forgotten.
const AUTH_ADDRESSES: usize = 4096;

/// The delay before the answer to the `failures`-th wrong secret in a row
/// from one address: none for the first [`FREE_WRONG_SECRETS`], then
/// `first`, doubling with each further one, at most `max`.
pub fn auth_delay(failures: u32, first: Duration, max: Duration) -> Duration {
    let Some(past) = failures.checked_sub(FREE_WRONG_SECRETS + 1) else {
        return Duration::ZERO;
    };
    first.saturating_mul(1u32 << past.min(31)).min(max)
}

/// The AUTH tries of every address: checked one at a time per address,
/// and slowed down as its wrong secrets add up, so that opening more
/// connections does not try more secrets. Other addresses are not held up.
#[derive(Default)]
pub(crate) struct AuthGate {
    tries: Mutex<HashMap<Prefix, Tries>>,
    turn: Condvar,
}

struct Tries {
    failures: u32,
    last: Instant,
    /// A try from this address is being checked (or waits out its delay).
    busy: bool,
}

impl AuthGate {
    /// Runs `check` (is the secret right?) for a try from `ip`, after any
    /// other try of that address has ended. A right secret clears the
    /// address's count; a wrong one adds to it and, past the free ones,
    /// waits [`auth_delay`] before returning, holding up the address's
    /// next try meanwhile. A stop ends the waits.
    pub(crate) fn try_secret(
        &self,
        ip: IpAddr,
        config: &Config,
        stop: &Stop,
        check: impl FnOnce() -> bool,
    ) -> bool {
        let ip = config.prefix.of(ip);
        let mut tries = lock(&self.tries);
        loop {
            let now = Instant::now();
            let t = tries.entry(ip).or_insert(Tries {
                failures: 0,
                last: now,
                busy: false,
            });
            if !t.busy {
                if now.saturating_duration_since(t.last) > AUTH_FORGET {
                    t.failures = 0;
                }
                t.busy = true;
                break;
            }
            if stop.is_set() {
                return false;
            }
            tries = self
                .turn
                .wait_timeout(tries, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(tries);
        let right = check();
        let delay = {
            let mut tries = lock(&self.tries);
            if right {
                tries.remove(&ip);
                Duration::ZERO
            } else {
                let t = tries.entry(ip).or_insert(Tries {
                    failures: 0,
                    last: Instant::now(),
                    busy: true,
                });
                t.failures = t.failures.saturating_add(1);
                t.last = Instant::now();
                auth_delay(t.failures, config.auth_delay, config.auth_delay_max)
            }
        };
        if !delay.is_zero() {
            stop.wait(delay);
        }
        let mut tries = lock(&self.tries);
        if let Some(t) = tries.get_mut(&ip) {
            t.busy = false;
        }
        if tries.len() > AUTH_ADDRESSES {
            let now = Instant::now();
            tries.retain(|_, t| {
                t.busy
                    || (t.failures > FREE_WRONG_SECRETS
                        && now.saturating_duration_since(t.last) <= AUTH_FORGET)
            });
        }
        self.turn.notify_all();
        right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_delays_double_after_the_free_tries() {
        let s = Duration::from_secs;
        let got: Vec<Duration> = (1..=12).map(|n| auth_delay(n, s(1), s(60))).collect();
        let want = [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60].map(s);
        assert_eq!(got, want);
        assert_eq!(auth_delay(u32::MAX, s(1), s(60)), s(60));
    }
}
