//! The reading side of the control connection, under a deadline: each
//! read waits only for what is left until the deadline of what is being
//! read (the greeting, a reply line, a whole reply), so a peer that sends
//! a byte now and then cannot stretch a wait past it.
//!
//! The rule (PROTOCOL.md section 9, "The bundled client's limits"): a
//! reply line must come whole within the timeout of the moment the client
//! began to wait for it; a whole reply (a table) within the timeout plus
//! one more timeout for every [`LINES_PER_TIMEOUT`] lines it brought so
//! far.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::transport::Transport;

/// How many lines of a reply earn it one more timeout.
pub const LINES_PER_TIMEOUT: u32 = 16;

/// A control connection's reading side with the deadline of the current
/// wait; None waits without end (a timeout past what a clock holds).
pub(crate) struct Deadline {
    stream: Box<dyn Transport>,
    until: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(stream: Box<dyn Transport>) -> Deadline {
        Deadline {
            stream,
            until: None,
        }
    }

    /// The stream itself: for writes, and for looks that take nothing.
    pub(crate) fn stream(&mut self) -> &mut dyn Transport {
        &mut *self.stream
    }

    /// The deadline of the reads from now on.
    pub(crate) fn set(&mut self, until: Option<Instant>) {
        self.until = until;
    }
}

impl Read for Deadline {
    /// Waits for what is left until the deadline; an error of kind
    /// `TimedOut` (or `WouldBlock`, as a socket says it) once it passed.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = match self.until {
            None => None,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left)
            }
        };
        self.stream.set_read_timeout(left)?;
        self.stream.read(buf)
    }
}

/// `start + wait`; None (no deadline) when that is past what a clock holds.
pub(crate) fn after(start: Instant, wait: Duration) -> Option<Instant> {
    start.checked_add(wait)
}

/// When a reply begun at `start` must be whole, `lines` of it read:
/// `timeout` and one more for every [`LINES_PER_TIMEOUT`] lines.
pub(crate) fn reply_deadline(start: Instant, timeout: Duration, lines: usize) -> Option<Instant> {
    let lines = u32::try_from(lines).ok()?;
    let scaled = timeout.checked_mul(LINES_PER_TIMEOUT.checked_add(lines)?)? / LINES_PER_TIMEOUT;
    after(start, scaled)
}

/// The earlier of two deadlines (None is never).
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_earns_a_timeout_for_every_sixteen_lines() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        assert_eq!(reply_deadline(t0, s, 0), Some(t0 + s));
        assert_eq!(reply_deadline(t0, s, 8), Some(t0 + Duration::from_secs(3)));
        assert_eq!(reply_deadline(t0, s, 32), Some(t0 + Duration::from_secs(6)));
        // Past what a clock holds: no deadline, never a panic.
        assert_eq!(reply_deadline(t0, Duration::MAX, 1), None);
        assert_eq!(after(t0, Duration::MAX), None);
        assert_eq!(earliest(None, Some(t0)), Some(t0));
        assert_eq!(earliest(Some(t0 + s), Some(t0)), Some(t0));
        assert_eq!(earliest(None, None), None);
    }
}
