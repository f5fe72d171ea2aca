//! FTP's passive data connections: PASV and EPSV open one listener for
//! one transfer, on the control connection's local address (a port of
//! `--data-ports` when given, counted against the address's share of
//! them like a native data port). It takes one connection, and only from
//! the control connection's peer address: any other is closed at once
//! without a byte. The listener closes when its connection is taken, or
//! when the next PASV or EPSV replaces it.

use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::limits::PortClaim;
use super::Shared;
use crate::protocol::{Reply, Transport};
use crate::stop::Stop;
use crate::transfer::net::bind_port;
use crate::transfer::tcp::{self, ReceiveOutcome};

/// How often a waiting transfer looks for its data connection at first,
/// and at most later on: clients connect right after the PASV reply, so
/// the connection is usually there at the first look.
const FIRST_POLL: Duration = Duration::from_millis(1);
const MAX_POLL: Duration = Duration::from_millis(20);

/// A passive listener waiting for its one data connection.
pub(super) struct Passive<'a> {
    listener: TcpListener,
    port: u16,
    _claim: Option<PortClaim<'a>>,
}

impl<'a> Passive<'a> {
    /// Opens a listener on `local`, for a connection from `peer`.
    pub fn open(shared: &'a Shared, local: IpAddr, peer: IpAddr) -> Result<Self, Reply<'static>> {
        let claim = shared.claim_port(peer, Transport::Tcp)?;
        let listener: TcpListener = bind_port(local, shared.config.data_ports)
            .map_err(|e| Reply::no_data_port(Transport::Tcp, &e))?;
        let port = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a.port()))
            .map_err(|e| Reply::no_data_port(Transport::Tcp, &e))?;
        Ok(Passive {
            listener,
            port,
            _claim: claim,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data connection from `peer`, within `wait`; connections from
    /// any other address are closed as they come. None when none came (or
    /// the server stops). The listener closes here either way.
    pub fn accept(self, peer: IpAddr, wait: Duration, stop: &Stop) -> Option<TcpStream> {
        let deadline = crate::stop::deadline_in(wait);
        let mut poll = FIRST_POLL;
        loop {
            match self.listener.accept() {
                Ok((conn, from)) if from.ip().to_canonical() == peer => {
                    conn.set_nonblocking(false).ok()?;
                    let _ = conn.set_nodelay(true);
                    return Some(conn);
                }
                // From another address: closed, nothing read or sent.
                Ok((conn, _)) => drop(conn),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || stop.is_set() {
                        return None;
                    }
                    thread::sleep(poll.min(left));
                    poll = (poll * 2).min(MAX_POLL);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Out of descriptors, or a connection reset before it was
                // taken: wait as for nothing.
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || stop.is_set() {
                        return None;
                    }
                    thread::sleep(MAX_POLL.min(left));
                }
            }
        }
    }
}

/// Ends a data connection after a transfer: what was written goes out,
/// then the client reads the end of the stream.
pub(super) fn close(conn: TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
}

/// Writes listing lines with CR LF over the data connection.
pub(super) fn send_lines<I>(conn: &TcpStream, stall: Duration, lines: I) -> io::Result<u64>
where
    I: IntoIterator<Item = String>,
{
    conn.set_write_timeout(Some(stall))?;
    let mut out = BufWriter::with_capacity(64 * 1024, conn);
    let mut n = 0u64;
    for line in lines {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\r\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Receives a STOR: everything until the client closes the connection,
/// into `out`, hashed on the way; a read stalled for `stall` breaks it.
pub(super) fn receive(
    conn: &mut TcpStream,
    stall: Duration,
    out: &mut impl Write,
) -> ReceiveOutcome {
    if let Err(e) = conn.set_read_timeout(Some(stall)) {
        return ReceiveOutcome::Broken(0, e);
    }
    tcp::receive_hashed(conn, None, out)
}
