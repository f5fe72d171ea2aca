//! Data channels: where file bytes travel, apart from the control
//! connection. A channel reads the bytes it sends through [`Source`], so
//! it needs nothing from the layers above it.

use std::io::{self, Write};
use std::time::Duration;

use crate::digest::Md5;
use crate::protocol::{DataLine, FileOp, Reply, Waited};

pub mod net;
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

    /// Writes `len` bytes from `offset` on to `out` (fewer when the bytes
    /// end first); returns how many were written. Reads through
    /// [`Source::read_at`] into one buffer of `COPY_CHUNK` bytes, so a
    /// transfer costs two system calls per chunk and no more memory.
    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> Result<u64, CopyError> {
        let mut buf = vec![0u8; COPY_CHUNK.min(usize::try_from(len).unwrap_or(COPY_CHUNK))];
        let mut done = 0u64;
        while done < len {
            let want = buf
                .len()
                .min(usize::try_from(len - done).unwrap_or(buf.len()));
            let n = self
                .read_full_at(&mut buf[..want], offset + done)
                .map_err(CopyError::Read)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(CopyError::Write)?;
            done += n as u64;
        }
        Ok(done)
    }

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

/// How long a send waits, at most, for each thing.
#[derive(Debug, Clone)]
pub struct SendLimits {
    /// For the receiver's HELLO.
    pub wait: Duration,
    /// For any datagram from the receiver once the transfer runs.
    pub silence: Duration,
    /// For the receiver's in-order point to move on (a receiver that
    /// acknowledges but never gets further, or whose disk has stalled).
    pub stall: Duration,
}

/// A session's data channel, TCP or UDP, as the server uses it: where it
/// is, and sending a file over it. Everything up to the point where the
/// bytes move is the same for both.
pub trait Channel {
    /// Where a client finds the channel: the fields of the `150 DATA` line.
    fn data_line(&self) -> DataLine;

    /// Sends `file` from `offset` to its end, waiting for the receiver and
    /// giving up as `limits` say.
    fn send(&mut self, file: &dyn Source, offset: u64, limits: &SendLimits) -> SendOutcome;
}

/// A download as its final reply names it.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    pub name: &'a str,
    pub size: u64,
    pub md5: Md5,
    /// The channel it went over.
    pub data: &'a DataLine,
    /// How long the send waited for its receiver, at most.
    pub waited: Waited,
}

/// Bytes [`Source::copy_to`] reads at once.
const COPY_CHUNK: usize = 256 * 1024;

/// Why [`Source::copy_to`] stopped: reading the source, or writing to the
/// connection, failed.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// How sending a file over a data channel ended, TCP or UDP alike.
#[derive(Debug)]
pub enum SendOutcome {
    /// Every byte from the offset on arrived (UDP) or was sent (TCP), and
    /// the file did not change.
    Sent(u64),
    /// No receiver came within the wait: no data connection with the
    /// token (TCP), no valid HELLO (UDP).
    NoReceiver,
    /// UDP: the receiver went silent for this long.
    Silent(Duration),
    /// UDP: the receiver's in-order point did not move for this long.
    Stalled(Duration),
    /// The file changed (or shrank) while it was sent.
    Changed,
    /// Reading the file failed.
    ReadFailed(io::Error),
    /// The data connection (TCP) or socket (UDP) failed.
    Broken(io::Error),
}

impl SendOutcome {
    /// The final reply of the download `s` that ended so.
    pub fn reply(&self, s: &Sending<'_>) -> Reply<'static> {
        let transport = s.data.transport;
        match self {
            SendOutcome::Sent(_) => Reply::download_complete(s.name, s.size, s.md5),
            SendOutcome::NoReceiver => Reply::no_receiver(transport, s.data.port, s.waited),
            SendOutcome::Silent(d) => Reply::receiver_silent(*d),
            SendOutcome::Stalled(d) => Reply::receiver_stalled(*d),
            SendOutcome::Changed => Reply::changed_while_sent(s.name),
            SendOutcome::ReadFailed(e) => Reply::cannot(FileOp::Read, s.name, e),
            SendOutcome::Broken(e) => Reply::data_broken(transport, e),
        }
    }

    /// How a send that moved every byte ends: [`SendOutcome::Sent`] when
    /// the file is still what was opened.
    pub fn checked<S: Source + ?Sized>(file: &S, sent: u64) -> SendOutcome {
        match file.changed() {
            Ok(false) => SendOutcome::Sent(sent),
            Ok(true) => SendOutcome::Changed,
            Err(e) => SendOutcome::ReadFailed(e),
        }
    }
}

/// Data channel tokens: random, unguessable, compared in constant time.
pub mod token {
    use std::io;

    /// A new token: 64 random bits from the OS's random source
    /// ([`crate::sys::random_bytes`], which the server opens at start) as
    /// 16 hex digits. Never made any other way: an error without the
    /// source.
    pub fn new() -> io::Result<String> {
        Ok(crate::digest::hex(&random()?))
    }

    /// A transfer id that differs from the ids of earlier transfers: 32
    /// random bits.
    pub fn transfer_id() -> io::Result<u32> {
        let [a, b, c, d, ..] = random()?;
        Ok(u32::from_be_bytes([a, b, c, d]))
    }

    /// 64 random bits from the OS.
    fn random() -> io::Result<[u8; 8]> {
        let mut bytes = [0u8; 8];
        crate::sys::random_bytes(&mut bytes)?;
        Ok(bytes)
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
            let a = super::new().unwrap();
            let b = super::new().unwrap();
            assert_eq!(a.len(), 16);
            assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
            assert_ne!(a, b);
            assert!(super::equal(a.as_bytes(), a.as_bytes()));
            assert!(!super::equal(a.as_bytes(), b.as_bytes()));
            assert!(!super::equal(b"abc", b"ab"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// Bytes in memory, as a source.
    struct Bytes(Vec<u8>);

    impl Source for Bytes {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }

        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let rest = self.0.get(offset as usize..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }

        fn changed(&self) -> io::Result<bool> {
            Ok(false)
        }
    }

    #[test]
    fn a_source_is_sent_from_its_offset_through_read_at() {
        let data: Vec<u8> = (0..COPY_CHUNK * 2 + 999).map(|i| (i % 251) as u8).collect();
        let src = Bytes(data.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut conn = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            got
        });
        let outcome = tcp::send_file(&mut conn, &src, 7);
        assert!(matches!(outcome, SendOutcome::Sent(n) if n == data.len() as u64 - 7));
        // Past the end there is nothing more to copy.
        assert_eq!(src.copy_to(data.len() as u64, 10, &mut conn).unwrap(), 0);
        drop(conn);
        assert_eq!(reader.join().unwrap(), &data[7..]);
    }
}
