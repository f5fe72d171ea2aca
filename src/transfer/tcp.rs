//! The TCP data channel of a session: one listener and token, reused by every
//! transfer of the session.
//!
//! An acceptor thread takes connections, closes at once those from any
//! address but the control peer's, and hands on those that send the right
//! token within [`TOKEN_DEADLINE`]. The session picks them up when a
//! transfer needs one.

use std::io::{self, Read, Seek, SeekFrom};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::token;
use crate::share::OpenedFile;

/// How long a new data connection has to send its token.
pub const TOKEN_DEADLINE: Duration = Duration::from_secs(10);

/// Connections waiting to send their token at once; more are closed.
const MAX_PENDING: usize = 8;

/// A session's TCP data channel.
pub struct DataChannel {
    port: u16,
    token: String,
    local: SocketAddr,
    incoming: mpsc::Receiver<TcpStream>,
    current: Option<TcpStream>,
    stop: Arc<AtomicBool>,
}

impl DataChannel {
    /// Opens a listener on `local_ip` (the control connection's local
    /// address), on an ephemeral port or the first free one of `ports`,
    /// accepting only `peer_ip`.
    pub fn open(
        local_ip: IpAddr,
        peer_ip: IpAddr,
        ports: Option<(u16, u16)>,
    ) -> io::Result<DataChannel> {
        let listener = match ports {
            None => TcpListener::bind((local_ip, 0))?,
            Some((lo, hi)) => (lo..=hi)
                .find_map(|p| TcpListener::bind((local_ip, p)).ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("no free data port in {lo}-{hi}"),
                    )
                })?,
        };
        let local = listener.local_addr()?;
        let token = token::new();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = Acceptor {
            listener,
            peer_ip,
            token: token.clone(),
            tx,
            stop: stop.clone(),
            pending: Arc::new(AtomicUsize::new(0)),
        };
        thread::Builder::new()
            .name("p2pshare-data-accept".into())
            .spawn(move || acceptor.run())?;
        Ok(DataChannel {
            port: local.port(),
            token,
            local,
            incoming: rx,
            current: None,
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data connection for the next transfer: the one held if the
    /// client has not closed it, else the next good one to arrive within
    /// `wait`. None when none came.
    pub fn connection(&mut self, wait: Duration) -> Option<&mut TcpStream> {
        if self.current.as_ref().is_some_and(|c| !is_alive(c)) {
            self.current = None;
        }
        let deadline = Instant::now() + wait;
        while self.current.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let c = self.incoming.recv_timeout(left).ok()?;
            // One that waited in the queue may have been closed meanwhile.
            if is_alive(&c) {
                self.current = Some(c);
            }
        }
        self.current.as_mut()
    }

    /// Receives an upload of `size` bytes into `out` over the next data
    /// connection (see [`DataChannel::connection`]), giving up on a stall
    /// of `stall`; None when no connection came within `wait`. A held
    /// connection that reads as closed before its first byte was closed by
    /// the client just before it opened a new one: the new one is used.
    /// A connection that broke or is out of step afterwards is dropped.
    pub fn receive(
        &mut self,
        wait: Duration,
        stall: Duration,
        size: u64,
        out: &mut impl io::Write,
    ) -> Option<ReceiveOutcome> {
        let mut held = self.current.is_some();
        loop {
            let conn = self.connection(wait)?;
            let _ = conn.set_read_timeout(Some(stall));
            let outcome = receive_file(conn, size, out);
            let _ = conn.set_read_timeout(None);
            match outcome {
                ReceiveOutcome::Broken(0, ref e)
                    if held && e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    self.drop_connection();
                    held = false;
                }
                ReceiveOutcome::Received(_) => return Some(outcome),
                _ => {
                    self.drop_connection();
                    return Some(outcome);
                }
            }
        }
    }

    /// Forgets the current connection (after it broke).
    pub fn drop_connection(&mut self) {
        if let Some(c) = self.current.take() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for DataChannel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept() so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_secs(1));
    }
}

/// True unless the peer has closed the connection (reads as end of file) or
/// it failed. Only peeks: bytes the client already sent (the start of an
/// upload) stay where they are.
fn is_alive(c: &TcpStream) -> bool {
    if c.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    let alive = loop {
        match c.peek(&mut buf) {
            Ok(0) => break false,
            Ok(_) => break true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    c.set_nonblocking(false).is_ok() && alive
}

struct Acceptor {
    listener: TcpListener,
    peer_ip: IpAddr,
    token: String,
    tx: mpsc::Sender<TcpStream>,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicUsize>,
}

impl Acceptor {
    fn run(self) {
        for conn in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else {
                continue;
            };
            let from_peer = conn.peer_addr().is_ok_and(|a| a.ip() == self.peer_ip);
            if !from_peer || self.pending.load(Ordering::SeqCst) >= MAX_PENDING {
                drop(conn); // closed at once, not a byte sent
                continue;
            }
            self.pending.fetch_add(1, Ordering::SeqCst);
            let token = self.token.clone();
            let tx = self.tx.clone();
            let pending = self.pending.clone();
            let spawned = thread::Builder::new()
                .name("p2pshare-data-token".into())
                .spawn(move || {
                    if read_token(&conn, &token) {
                        let _ = conn.set_nodelay(true);
                        let _ = tx.send(conn);
                    }
                    pending.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Reads one line within [`TOKEN_DEADLINE`] and compares it with the token
/// in constant time.
fn read_token(conn: &TcpStream, token: &str) -> bool {
    let deadline = Instant::now() + TOKEN_DEADLINE;
    let mut line = Vec::with_capacity(80);
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match (&*conn).read(&mut byte) {
            Ok(0) => return false,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= 128 => return false,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let _ = conn.set_read_timeout(None);
    token::equal(&line, token.as_bytes())
}

/// How a send ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// Every byte from the offset on was sent, and the file did not change.
    Sent(u64),
    /// The data connection failed.
    Broken(io::Error),
    /// The file changed (or shrank) while it was sent.
    Changed,
    /// Reading the file failed.
    ReadFailed(io::Error),
}

/// Sends `file` from `offset` to its end over `conn`, through the kernel's
/// zero-copy path where there is one (`io::copy` from a file to a socket
/// uses sendfile on Linux).
pub fn send_file(conn: &mut TcpStream, file: &OpenedFile, offset: u64) -> SendOutcome {
    let want = file.size().saturating_sub(offset);
    let mut f = match file.file.try_clone() {
        Ok(f) => f,
        Err(e) => return SendOutcome::ReadFailed(e),
    };
    if let Err(e) = f.seek(SeekFrom::Start(offset)) {
        return SendOutcome::ReadFailed(e);
    }
    let sent = io::copy(&mut f.take(want), conn);
    match sent {
        Ok(n) if n == want => match file.changed() {
            Ok(false) => SendOutcome::Sent(n),
            Ok(true) => SendOutcome::Changed,
            Err(e) => SendOutcome::ReadFailed(e),
        },
        Ok(_) => SendOutcome::Changed,
        Err(e) => {
            if file.changed().unwrap_or(false) {
                SendOutcome::Changed
            } else {
                SendOutcome::Broken(e)
            }
        }
    }
}

/// How receiving an upload ended.
#[derive(Debug)]
pub enum ReceiveOutcome {
    /// Every byte arrived; here is their md5.
    Received(crate::share::hash::Md5),
    /// The data connection closed or failed after this many bytes.
    Broken(u64, io::Error),
    /// Writing the file failed (the connection is out of step now).
    WriteFailed(io::Error),
}

/// Receives exactly `want` bytes from `conn` into `out`, hashing them.
pub fn receive_file(conn: &mut TcpStream, want: u64, out: &mut impl io::Write) -> ReceiveOutcome {
    let mut md5 = md5::Context::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < want {
        let n = buf
            .len()
            .min(usize::try_from(want - got).unwrap_or(buf.len()));
        match conn.read(&mut buf[..n]) {
            Ok(0) => {
                return ReceiveOutcome::Broken(got, io::ErrorKind::UnexpectedEof.into());
            }
            Ok(n) => {
                if let Err(e) = out.write_all(&buf[..n]) {
                    return ReceiveOutcome::WriteFailed(e);
                }
                md5.consume(&buf[..n]);
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return ReceiveOutcome::Broken(got, e),
        }
    }
    if let Err(e) = out.flush() {
        return ReceiveOutcome::WriteFailed(e);
    }
    ReceiveOutcome::Received(md5.finalize().0)
}
