//! What a session's control connection is made of, below its idle
//! deadline and its limit on unread replies (the session core's
//! `Input` and `Output`): a TCP socket, or the standard streams of a
//! `serve --stdio` process (`stdio.rs`). Each read and write ends by the
//! timeout set last, as a socket's do.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A control connection's bytes, each way, with timeouts.
pub(super) trait Wire {
    /// Ends each later read after `t` without bytes (None: never).
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;

    /// Ends each later write after `t` without room (None: never).
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;

    /// Reads what came, waiting up to the read timeout (then an error of
    /// kind `WouldBlock` or `TimedOut`); 0 at the end of the stream.
    fn receive(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// A read that returns at once: Some(what it got) when the client had
    /// sent something, None when nothing was waiting.
    fn receive_waiting(&self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Writes some of `buf`, waiting up to the write timeout for room.
    /// What it took may still be on its way (see [`Wire::flush_sent`]).
    fn send(&self, buf: &[u8]) -> io::Result<usize>;

    /// Waits, up to the write timeout, until every byte taken by
    /// [`Wire::send`] is written; an error when one failed. A socket's
    /// are at once.
    fn flush_sent(&self) -> io::Result<()> {
        Ok(())
    }

    /// True when the client closed its side (its end of stream is
    /// waiting to be read, or comes within `grace`), or it failed.
    /// Nothing is read.
    fn hung_up(&self, grace: Duration) -> bool;
}

impl Wire for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }

    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self).read(buf)
    }

    fn receive_waiting(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.set_nonblocking(true)?;
        let got = (&mut &*self).read(buf);
        self.set_nonblocking(false)?;
        match got {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self).write(buf)
    }

    fn hung_up(&self, grace: Duration) -> bool {
        let before = self.read_timeout().ok().flatten();
        if TcpStream::set_read_timeout(self, Some(grace)).is_err() {
            return false;
        }
        let peeked = self.peek(&mut [0u8; 1]);
        let _ = TcpStream::set_read_timeout(self, before);
        match peeked {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ),
        }
    }
}
