//! The TCP data channel of a session: one listener and token, reused by every
//! transfer of the session.
//!
//! An acceptor thread takes connections, closes at once those from any
//! address but the control peer's, and hands on those that send the right
//! token within its token deadline ([`TOKEN_DEADLINE`] unless the
//! server is configured otherwise). The session picks them up when a
//! transfer needs one. What a channel holds is capped: the connection in
//! use, [`MAX_QUEUED`] more with the right token, and [`MAX_PENDING`] still
//! sending theirs; anything past that is closed at once, so one session
//! holds at most [`CHANNEL_FDS`] descriptors here whatever its client does.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::net::{bind_port, AcceptBackoff, Waker};
use super::{token, Channel, CopyError, SendLimits, SendOutcome, Source};
use crate::digest::Md5;
use crate::protocol::{DataLine, Reply, Transport};

/// How long a new data connection has to send its token, by default.
pub const TOKEN_DEADLINE: Duration = Duration::from_secs(10);

/// Connections with the right token kept for the next transfers, besides
/// the one in use; more are closed at once.
pub const MAX_QUEUED: usize = 2;

/// Connections still sending their token, each read by a thread of its
/// own; more are closed at once.
pub const MAX_PENDING: usize = 4;

/// The most descriptors a channel holds at once: its listener, the
/// connection in use, the queued ones, those still sending their token,
/// and both ends of the connection that wakes the acceptor when the
/// channel closes.
pub const CHANNEL_FDS: usize = 1 + 1 + MAX_QUEUED + MAX_PENDING + 2;

/// How often a thread reading a token looks whether its channel closed.
const TOKEN_POLL: Duration = Duration::from_millis(250);

/// A session's TCP data channel.
pub struct DataChannel {
    port: u16,
    token: String,
    shelf: Arc<Shelf>,
    current: Option<TcpStream>,
    /// Stops the acceptor and the threads reading tokens.
    stop: Waker,
}

/// The connections that sent the right token and wait for a transfer, and
/// the count of those still sending it.
struct Shelf {
    state: Mutex<ShelfState>,
    ready: Condvar,
}

struct ShelfState {
    queued: VecDeque<TcpStream>,
    pending: usize,
    closed: bool,
}

impl Shelf {
    fn lock(&self) -> MutexGuard<'_, ShelfState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection as reading its token, when there is room
    /// for it: fewer than [`MAX_PENDING`] pending, and a free place in the
    /// queue (queued connections the client closed meanwhile are dropped).
    fn admit(&self) -> bool {
        let mut st = self.lock();
        if st.closed || st.pending >= MAX_PENDING || !st.room() {
            return false;
        }
        st.pending += 1;
        true
    }

    /// A connection that sent the right token: queued when there is room,
    /// else closed.
    fn offer(&self, conn: TcpStream) {
        let mut st = self.lock();
        if !st.closed && st.room() {
            st.queued.push_back(conn);
            self.ready.notify_one();
        }
    }

    fn pending_done(&self) {
        let mut st = self.lock();
        st.pending = st.pending.saturating_sub(1);
    }

    /// The next queued connection within `wait`.
    fn take(&self, wait: Duration) -> Option<TcpStream> {
        let deadline = crate::stop::deadline_in(wait);
        let mut st = self.lock();
        loop {
            if let Some(c) = st.queued.pop_front() {
                return Some(c);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || st.closed {
                return None;
            }
            st = self
                .ready
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Closes every queued connection, and any that arrive later.
    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queued.clear();
        self.ready.notify_all();
    }
}

impl ShelfState {
    fn room(&mut self) -> bool {
        if self.queued.len() >= MAX_QUEUED {
            self.queued.retain(is_alive);
        }
        self.queued.len() < MAX_QUEUED
    }
}

impl DataChannel {
    /// Opens a listener on `local_ip` (the control connection's local
    /// address), on an ephemeral port or the first free one of `ports`,
    /// accepting only `peer_ip`, whose connections have `token_deadline`
    /// to send their token.
    pub fn open(
        local_ip: IpAddr,
        peer_ip: IpAddr,
        ports: Option<(u16, u16)>,
        token_deadline: Duration,
    ) -> io::Result<DataChannel> {
        let listener: TcpListener = bind_port(local_ip, ports)?;
        let local = listener.local_addr()?;
        let token = token::new()?;
        let shelf = Arc::new(Shelf {
            state: Mutex::new(ShelfState {
                queued: VecDeque::new(),
                pending: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let stop = Waker::for_listener(local);
        let acceptor = Acceptor {
            listener,
            peer_ip,
            token: token.clone(),
            token_deadline,
            shelf: shelf.clone(),
            stop: stop.clone(),
        };
        thread::Builder::new()
            .name("p2pshare-data-accept".into())
            .spawn(move || acceptor.run())?;
        Ok(DataChannel {
            port: local.port(),
            token,
            shelf,
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
        let deadline = crate::stop::deadline_in(wait);
        while self.current.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let c = self.shelf.take(left)?;
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
                ReceiveOutcome::Received(..) => return Some(outcome),
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

impl Channel for DataChannel {
    fn data_line(&self) -> DataLine {
        DataLine {
            transport: Transport::Tcp,
            port: self.port,
            token: self.token.clone(),
        }
    }

    /// Sends over the next data connection (see [`DataChannel::connection`]),
    /// with `limits.stall` as its write timeout; a connection whose send
    /// failed is dropped. With nothing to send (the offset is the end) no
    /// connection is needed, and the client need not open one.
    fn send(&mut self, file: &dyn Source, offset: u64, limits: &SendLimits) -> SendOutcome {
        if offset >= file.len() {
            return SendOutcome::checked(file, 0);
        }
        let Some(conn) = self.connection(limits.wait) else {
            return SendOutcome::NoReceiver;
        };
        let _ = conn.set_write_timeout(Some(limits.stall));
        let outcome = send_file(conn, file, offset);
        if !matches!(outcome, SendOutcome::Sent(_)) {
            self.drop_connection();
        }
        outcome
    }
}

impl Drop for DataChannel {
    fn drop(&mut self) {
        self.shelf.close();
        self.stop.wake();
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
    token_deadline: Duration,
    shelf: Arc<Shelf>,
    stop: Waker,
}

impl Acceptor {
    fn run(self) {
        let mut backoff = AcceptBackoff::new();
        while !self.stop.is_woken() {
            let conn = match self.listener.accept() {
                Ok((conn, from)) => {
                    backoff.succeeded();
                    (from.ip() == self.peer_ip).then_some(conn)
                }
                Err(_) => {
                    // Out of descriptors (EMFILE) or a connection reset
                    // before accept: accept would fail again at once.
                    thread::sleep(backoff.failed());
                    None
                }
            };
            if self.stop.is_woken() {
                return;
            }
            // From another address, or no room: closed at once, not a
            // byte read or sent.
            let Some(conn) = conn.filter(|_| self.shelf.admit()) else {
                continue;
            };
            let token = self.token.clone();
            let deadline = crate::stop::deadline_in(self.token_deadline);
            let shelf = self.shelf.clone();
            let stop = self.stop.clone();
            let spawned = thread::Builder::new()
                .name("p2pshare-data-token".into())
                .spawn(move || {
                    if read_token(&conn, &token, deadline, &stop) {
                        let _ = conn.set_nodelay(true);
                        shelf.offer(conn);
                    }
                    shelf.pending_done();
                });
            if spawned.is_err() {
                self.shelf.pending_done();
            }
        }
    }
}

/// Reads one line before `deadline` and compares it with the token in
/// constant time. Gives up early when the channel closes.
fn read_token(conn: &TcpStream, token: &str, deadline: Instant, stop: &Waker) -> bool {
    let mut line = Vec::with_capacity(80);
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || stop.is_woken()
            || conn.set_read_timeout(Some(left.min(TOKEN_POLL))).is_err()
        {
            return false;
        }
        match (&*conn).read(&mut byte) {
            Ok(0) => return false,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= 128 => return false,
            Ok(_) => line.push(byte[0]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let _ = conn.set_read_timeout(None);
    token::equal(&line, token.as_bytes())
}

/// Sends `file` from `offset` to its end over `conn`, through
/// [`Source::copy_to`] (a large buffer: two system calls per chunk).
pub fn send_file<S: Source + ?Sized>(conn: &mut TcpStream, file: &S, offset: u64) -> SendOutcome {
    let want = file.len().saturating_sub(offset);
    match file.copy_to(offset, want, conn) {
        Ok(n) if n == want => SendOutcome::checked(file, n),
        Ok(_) => SendOutcome::Changed,
        Err(CopyError::Read(e)) => SendOutcome::ReadFailed(e),
        Err(CopyError::Write(e)) => {
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
    /// Every byte arrived: this many, with this md5.
    Received(u64, Md5),
    /// The data connection closed or failed after this many bytes.
    Broken(u64, io::Error),
    /// Writing the file failed (the connection is out of step now).
    WriteFailed(io::Error),
}

impl ReceiveOutcome {
    /// The reply to an upload of `name` (`size` bytes announced with the
    /// md5 `want`) that did not arrive as announced; None when every byte
    /// came, with that md5.
    pub fn refusal(&self, name: &str, size: u64, want: Md5) -> Option<Reply<'static>> {
        match self {
            ReceiveOutcome::Received(_, got) if *got == want => None,
            ReceiveOutcome::Received(_, got) => Some(Reply::md5_mismatch(*got, want)),
            ReceiveOutcome::Broken(n, e) => Some(Reply::upload_broken(*n, size, e)),
            ReceiveOutcome::WriteFailed(e) => Some(Reply::not_stored(name, e)),
        }
    }
}

/// Receives exactly `want` bytes from `conn` into `out`, hashing them.
pub fn receive_file(conn: &mut TcpStream, want: u64, out: &mut impl io::Write) -> ReceiveOutcome {
    receive_hashed(conn, Some(want), out)
}

/// Receives from `conn` into `out`, hashing the bytes: exactly `want` of
/// them, or with None all until the sender closes the connection (an FTP
/// STOR). A connection that closes short of `want` is `Broken` with
/// `UnexpectedEof`.
pub fn receive_hashed(
    conn: &mut impl Read,
    want: Option<u64>,
    out: &mut impl io::Write,
) -> ReceiveOutcome {
    let mut md5 = md5::Context::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while want.is_none_or(|w| got < w) {
        let left = want.map_or(u64::MAX, |w| w - got);
        let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        match conn.read(&mut buf[..n]) {
            Ok(0) if want.is_none() => break,
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
    ReceiveOutcome::Received(got, md5.finalize().into())
}
