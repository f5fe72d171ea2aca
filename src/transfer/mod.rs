//! Data channels: where file bytes travel, apart from the control
//! connection. A channel reads the bytes it sends through [`Source`], so
//! it needs nothing from the layers above it.

use std::io;
use std::time::Duration;

pub mod tcp;
pub mod udp;

/// The UDP datagram layout, at the path the rest of the crate knows.
pub use udp::frame;

/// Bytes a data channel sends: the file being served, read at offsets, so
/// the channels need not know where it came from (a shared file, or bytes
/// in memory in a test).
pub trait Source {
    /// The size the bytes had when they were opened.
    fn len(&self) -> u64;

    /// True when there are no bytes to send.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads at `offset` into `buf`, as `pread` does: the bytes read, 0 at
    /// the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// True when the bytes may no longer be those that were opened (the
    /// file's size or modification time changed), so what was sent cannot
    /// be vouched for.
    fn changed(&self) -> io::Result<bool>;

    /// Reads until `buf` is full or the bytes end; returns the bytes read.
    fn read_full_at(&self, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match self.read_at(rest, offset) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
}

/// How long an accept loop sleeps after a failed accept. A listener out of
/// descriptors (EMFILE) fails again at once for as long as the shortage
/// lasts, so sleeping is what keeps the loop from spinning: 10 ms after
/// the first failure, doubling up to 500 ms while they go on, and back to
/// 10 ms after a success.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MAX: Duration = Duration::from_millis(500);

    pub fn new() -> AcceptBackoff {
        AcceptBackoff { next: Self::FIRST }
    }

    /// The pause after this failure.
    pub fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

/// Data channel tokens: random, unguessable, compared in constant time.
pub mod token {
    use std::fs::File;
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A new token: 64 random bits from the OS as 16 hex digits.
    pub fn new() -> String {
        crate::digest::hex(&random())
    }

    /// A transfer id that differs from the ids of earlier transfers: 32
    /// random bits.
    pub fn transfer_id() -> u32 {
        let [a, b, c, d, ..] = random();
        u32::from_be_bytes([a, b, c, d])
    }

    /// 64 random bits from the OS.
    fn random() -> [u8; 8] {
        let mut bytes = [0u8; 8];
        let from_os = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        if from_os.is_err() {
            // No OS randomness: mix what differs between calls and
            // processes. Weaker, and only a fallback.
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let seed = format!(
                "{:?} {} {} {:p}",
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default(),
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                &bytes
            );
            bytes.copy_from_slice(&md5::compute(seed).0[..8]);
        }
        bytes
    }

    /// Compares without an early exit, so the time taken does not tell how
    /// much of a guess was right.
    pub fn equal(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn tokens_are_16_hex_digits_and_differ() {
            let a = super::new();
            let b = super::new();
            assert_eq!(a.len(), 16);
            assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
            assert_ne!(a, b);
            assert!(super::equal(a.as_bytes(), a.as_bytes()));
            assert!(!super::equal(a.as_bytes(), b.as_bytes()));
            assert!(!super::equal(b"abc", b"ab"));
        }
    }
}
