//! A stop signal that threads can poll or sleep on.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest duration any option takes: 10 years of 365.25 days
/// (`10y`). Every deadline counted from one stays within the clock's
/// range.
pub const MAX_DURATION: Duration = Duration::from_secs(315_576_000);

/// `from + d`, or the farthest instant the clock can name on the way
/// there: a deadline never overflows, however long `d`.
pub fn deadline(from: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = from.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// `deadline(Instant::now(), d)`.
pub fn deadline_in(d: Duration) -> Instant {
    deadline(Instant::now(), d)
}

/// Cloneable; once set it stays set, and wakes every waiter.
#[derive(Clone, Default)]
pub struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn set(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `d`; returns true as soon as the signal is set.
    pub fn wait(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let deadline = deadline_in(d);
        let mut set = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*set {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            set = cv
                .wait_timeout(set, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(deadline(now, Duration::MAX) > now + MAX_DURATION);
        assert!(deadline_in(MAX_DURATION) > now);
        // A wait that long still ends at once when the stop is set.
        let stop = Stop::new();
        stop.set();
        assert!(stop.wait(Duration::MAX));
    }
}
