//! The nonces of Digest authentication: random, each used with rising
//! counts only, forgotten after [`NONCE_TTL`], at most [`MAX_NONCES`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a nonce may be used.
pub const NONCE_TTL: Duration = Duration::from_secs(300);
/// The most nonces remembered; the oldest go first.
pub const MAX_NONCES: usize = 10_000;

/// The nonces handed out: when, and the highest count used with each.
#[derive(Default)]
pub(super) struct Nonces {
    issued: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Nonces {
    pub fn issue(&self) -> Option<String> {
        let nonce = format!(
            "{}{}",
            crate::transfer::token::new().ok()?,
            crate::transfer::token::new().ok()?
        );
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (t, _)| now.duration_since(*t) < NONCE_TTL);
        if map.len() >= MAX_NONCES {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(nonce.clone(), (now, 0));
        Some(nonce)
    }

    /// Checks a nonce and count; on success the count is used up.
    pub fn take(&self, nonce: &str, nc: u64) -> Verdict {
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(nonce) {
            None => Verdict::Unknown,
            Some((t, _)) if t.elapsed() >= NONCE_TTL => {
                map.remove(nonce);
                Verdict::Stale
            }
            Some((_, last)) if nc <= *last => Verdict::Replayed,
            Some((_, last)) => {
                *last = nc;
                Verdict::Fresh
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Fresh,
    Stale,
    Replayed,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_count_is_used_once() {
        let n = Nonces::default();
        crate::sys::open_random().unwrap();
        let nonce = n.issue().unwrap();
        assert_eq!(n.take(&nonce, 1), Verdict::Fresh);
        assert_eq!(n.take(&nonce, 1), Verdict::Replayed);
        assert_eq!(n.take(&nonce, 2), Verdict::Fresh);
        assert_eq!(n.take("nope", 3), Verdict::Unknown);
    }
}
