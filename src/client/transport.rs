//! The byte streams a control connection runs over. The client reads and
//! writes its control connection through [`Transport`] only: a TCP socket
//! is one such stream, and any other (a child process's pipes, an
//! in-memory pair in a test) is another implementation of the same trait,
//! with the same deadlines, bounds and replies above it (see
//! `control`).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The default control port.
pub const DEFAULT_PORT: u16 = 9000;

/// A control connection's byte stream: reads, writes, a bound on how long
/// a read may wait, and a look at what there is to read.
pub trait Transport: Read + Write + Send {
    /// How long each read from now on may wait before it fails with
    /// `TimedOut` or `WouldBlock`; None waits without end. Never zero.
    fn set_read_timeout(&mut self, wait: Option<Duration>) -> io::Result<()>;

    /// What a read would find, waiting at most `wait` for something to
    /// come (zero: only a look). Takes nothing from the stream.
    fn poll(&mut self, wait: Duration) -> Peek;
}

/// Who is at the other end of a control connection, as messages and the
/// history name it: the socket address of a TCP peer, or the `ssh://`
/// URL of a peer reached through ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    Ssh(String),
}

impl Peer {
    /// The address data channels go to: a TCP peer's. A peer reached
    /// through ssh has none (its transfers go inline on the stream).
    pub fn ip(&self) -> io::Result<IpAddr> {
        match self {
            Peer::Tcp(a) => Ok(a.ip()),
            Peer::Ssh(url) => Err(io::Error::other(format!(
                "{url} is reached through ssh: it has no data channel of its own"
            ))),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Ssh(url) => f.write_str(url),
        }
    }
}

/// What a look at a stream found.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// Nothing to read yet: open and quiet.
    Nothing,
    /// Bytes are waiting.
    Data,
    /// End of file, or an error: closed.
    Closed,
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, wait: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, wait)
    }

    fn poll(&mut self, wait: Duration) -> Peek {
        if wait.is_zero() {
            return peek_now(self);
        }
        if TcpStream::set_read_timeout(self, Some(wait.max(Duration::from_millis(1)))).is_err() {
            return Peek::Closed;
        }
        // The next read sets the deadline of its own wait (see
        // [`super::deadline`]).
        let mut b = [0u8; 1];
        loop {
            match self.peek(&mut b) {
                Ok(0) => break Peek::Closed,
                Ok(_) => break Peek::Data,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Peek::Nothing
                }
                Err(_) => break Peek::Closed,
            }
        }
    }
}

/// Looks at what a socket has to read, without taking it and without
/// waiting.
pub(crate) fn peek_now(s: &TcpStream) -> Peek {
    if s.set_nonblocking(true).is_err() {
        return Peek::Closed;
    }
    let mut b = [0u8; 1];
    let seen = loop {
        match s.peek(&mut b) {
            Ok(0) => break Peek::Closed,
            Ok(_) => break Peek::Data,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Peek::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break Peek::Closed,
        }
    };
    if s.set_nonblocking(false).is_err() {
        return Peek::Closed;
    }
    seen
}

/// Resolves `HOST[:PORT]` (port 9000 when left out; `[v6]:port` too),
/// as [`crate::addr::parse_target`] reads it.
pub fn resolve(target: &str) -> io::Result<SocketAddr> {
    let t = crate::addr::parse_target(target)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    (t.host.as_str(), t.port.unwrap_or(DEFAULT_PORT))
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {target}")))
}
