//! The control connection to a peer, over any byte stream (see
//! [`super::transport`]): the greeting and the login, requests, and
//! replies as they arrive, each line and each whole reply within its
//! deadline (see [`super::deadline`]) and within the client's bounds; the
//! request history; and the data connection held between transfers (used
//! by `data`).
//!
//! With a secret, the login is the challenge-response of `login`, and
//! from then on this is the one place lines are written and replies
//! read: every request line leaves with its MAC, and every reply's MAC is
//! checked as its lines come, the final line's before the reply is handed
//! on, so nothing of a reply whose MAC fails is acted on.

use std::io::{self, BufRead, BufReader, IsTerminal};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::answer::{Answer, MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES};
use super::deadline::{self, Deadline};
use super::error::{duration_text, Bound, Breach, ClientError, Late, Wait};
use super::login::{self, Check, Seal};
use super::transport::{self, Peek, Peer, Transport};
use crate::history::{Direction, History};
use crate::proof::Mac;
use crate::protocol::{self, code, ReplyLine};

/// A TCP data connection held between transfers, with the channel (port
/// and token) it belongs to.
pub(crate) struct DataConn {
    pub(crate) port: u16,
    pub(crate) token: String,
    pub(crate) stream: TcpStream,
}

/// An open control connection to a peer.
pub struct Client {
    addr: Peer,
    /// The stream, read through a buffer under the deadline of the
    /// current wait; written to directly.
    reader: BufReader<Deadline>,
    history: Option<Arc<History>>,
    /// The data connection held for the next transfer (see `data`).
    pub(crate) data: Option<DataConn>,
    greeting: String,
    /// How long any one wait on the peer may take.
    timeout: Duration,
    /// The buffer each reply line is read into.
    line: Vec<u8>,
    /// After a challenge-response login: the MACs of requests and
    /// replies.
    seal: Option<Seal>,
    /// A reply's MAC failed: nothing more is read or sent here.
    changed: bool,
}

impl Client {
    /// Connects, reads the greeting, and logs in when `secret` is set
    /// (see [`Client::over`]). `timeout` bounds every wait on the peer
    /// from here on: the connect, the greeting, each reply line (and each
    /// whole reply, see `deadline`) and a stalled transfer.
    pub fn connect(
        target: &str,
        timeout: Duration,
        history: Option<Arc<History>>,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let (stream, addr) = connect_tcp(target, timeout)?;
        Client::over(Box::new(stream), Peer::Tcp(addr), timeout, history, secret)
    }

    /// [`Client::connect`] over a stream already open to the peer `addr`
    /// (whom messages name, and where data channels go to). With a
    /// secret, the login is the challenge-response one, and a peer that
    /// does not offer it, or does not prove the secret back, is refused;
    /// the secret itself is never sent.
    pub fn over(
        stream: Box<dyn Transport>,
        addr: Peer,
        timeout: Duration,
        history: Option<Arc<History>>,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let mut c = Client {
            addr,
            reader: BufReader::with_capacity(64 * 1024, Deadline::new(stream)),
            history,
            data: None,
            greeting: String::new(),
            timeout,
            line: Vec::with_capacity(256),
            seal: None,
            changed: false,
        };
        let g = c.read_reply().map_err(|e| match e {
            ClientError::Timeout(late) => ClientError::Timeout(Late {
                wait: Wait::Greeting,
                ..late
            }),
            e => e,
        })?;
        if g.code() != code::GREETING {
            return Err(ClientError::Protocol(Breach::Greeting(
                g.code(),
                g.text().to_string(),
            )));
        }
        c.greeting = g.text().to_string();
        match secret {
            Some(s) => c.log_in(s)?,
            // Over ssh, ssh protects the connection.
            None => {
                if let Peer::Tcp(a) = c.addr {
                    unprotected(a)
                }
            }
        }
        Ok(c)
    }

    /// The challenge-response login (see `login`): `AUTH PROOF`, then the
    /// `230`'s proof and MAC checked before the session goes on.
    fn log_in(&mut self, secret: &str) -> Result<(), ClientError> {
        let login = login::begin(secret, &self.greeting, &self.addr)?;
        // Recorded as `AUTH ***`, like every AUTH (see `record`).
        let r = self.request(&login.line)?;
        if r.code() != code::AUTHENTICATED {
            return Err(ClientError::LoginRefused(r.code(), r.text().to_string()));
        }
        self.seal = Some(login.finish(&r.lines, &self.addr)?);
        Ok(())
    }

    /// True after a challenge-response login: every reply carries a MAC.
    pub fn is_sealed(&self) -> bool {
        self.seal.is_some()
    }

    /// The peer's control address.
    pub fn addr(&self) -> &Peer {
        &self.addr
    }

    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// How long any one wait on the peer may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request line (or several, each with its line end), each
    /// with its MAC after a challenge-response login (a blank line, only
    /// spaces and TABs, which would get no reply, is not sent then).
    pub fn send(&mut self, line: &str) -> Result<(), ClientError> {
        if self.changed {
            return Err(ClientError::Changed(self.addr.clone()));
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        match &mut self.seal {
            None => {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
            Some(seal) => {
                let blank = |l: &&str| l.bytes().all(|b| b == b' ' || b == b'\t');
                for l in line.split('\n').filter(|l| !blank(l)) {
                    buf.extend_from_slice(seal.seal(l).as_bytes());
                    buf.push(b'\n');
                }
            }
        }
        self.reader
            .get_mut()
            .stream()
            .write_all(&buf)
            .map_err(|e| self.timed_out(e, Wait::Reply))?;
        Ok(())
    }

    /// Reads bytes a transfer sends inline on the control stream (after
    /// its `150 DATA inline`), what is buffered first; waits at most the
    /// timeout. 0: the stream ended.
    pub(crate) fn read_inline(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let until = deadline::after(Instant::now(), self.timeout);
        self.reader.get_mut().set(until);
        io::Read::read(&mut self.reader, buf)
    }

    /// Writes bytes of a transfer inline on the control stream.
    pub(crate) fn write_inline(&mut self, buf: &[u8]) -> io::Result<()> {
        self.reader.get_mut().stream().write_all(buf)
    }

    /// A read or write that failed: one that waited out the timeout (as
    /// a wait for `wait`) said as such, any other as it is.
    pub(crate) fn timed_out(&self, e: io::Error, wait: Wait) -> ClientError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ClientError::Timeout(self.late(wait))
            }
            _ => ClientError::Io(e),
        }
    }

    /// Reads one reply line: it must come whole within the timeout, and
    /// by `reply` (the deadline of the whole reply) when that is earlier.
    /// It goes into `check` (the reply's MAC) when there is one; a final
    /// line comes with the MAC it carried, its word taken off.
    fn read_line(
        &mut self,
        reply: Option<Instant>,
        check: Option<&mut Check>,
    ) -> Result<(ReplyLine, Option<Mac>), ClientError> {
        let own = deadline::after(Instant::now(), self.timeout);
        let until = deadline::earliest(own, reply);
        self.reader.get_mut().set(until);
        let mut buf = std::mem::take(&mut self.line);
        buf.clear();
        let read = io::Read::take(&mut self.reader, MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                let wait = if until != own {
                    Wait::WholeReply
                } else if !buf.is_empty() {
                    Wait::ReplyLine
                } else {
                    Wait::Reply
                };
                self.timed_out(e, wait)
            });
        let line = read.and_then(|n| self.parse_line(&buf, n, check));
        self.line = buf;
        line
    }

    /// A wait on this peer that ran out.
    pub(crate) fn late(&self, wait: Wait) -> Late {
        Late {
            wait,
            peer: self.addr.clone(),
            timeout: self.timeout,
        }
    }

    fn parse_line(
        &self,
        buf: &[u8],
        n: usize,
        check: Option<&mut Check>,
    ) -> Result<(ReplyLine, Option<Mac>), ClientError> {
        if n == 0 {
            return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n > MAX_REPLY_LINE {
                ClientError::TooLarge(Bound::Line(self.addr.clone()))
            } else {
                ClientError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
        let (buf, mac) = match check {
            None => (buf, None),
            // The MAC covers the line as it came, without its line end.
            Some(check) => {
                let raw = &buf[..buf.len() - 1];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let last = raw.len() == 3 || raw.get(3) == Some(&b' ');
                check.line(raw, last)
            }
        };
        // Checked first as it is (the usual case, and much the cheaper).
        let text = match std::str::from_utf8(buf) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(buf),
        };
        let line = protocol::parse_reply_line(&text).ok_or_else(|| {
            let start: String = text.trim_end().chars().take(80).collect();
            ClientError::Protocol(Breach::Line(start))
        })?;
        Ok((line, mac))
    }

    /// Reads one whole reply, handing each line to `each` as it arrives
    /// (so long tables can be printed without being held). A reply of more
    /// than [`MAX_REPLY_LINES`] lines or [`MAX_REPLY_BYTES`] bytes is an
    /// error, and so is a `421` (the peer closes the connection after it),
    /// and a reply that does not come whole in time (see `deadline`).
    /// After a challenge-response login, so is a reply whose MAC is
    /// missing or wrong: it is checked before the final line is handed
    /// on, so whoever gets the lines acts on them only after the last
    /// (see [`Client::read_table`]).
    pub fn read_reply_with(
        &mut self,
        each: &mut dyn FnMut(&ReplyLine),
    ) -> Result<ReplyLine, ClientError> {
        if self.changed {
            return Err(ClientError::Changed(self.addr.clone()));
        }
        let mut check = self.seal.as_ref().map(Seal::next_reply);
        let mut lines = 0usize;
        let mut bytes = 0u64;
        let start = Instant::now();
        loop {
            // The first line's own deadline is the reply's too.
            let by = (lines > 0)
                .then(|| deadline::reply_deadline(start, self.timeout, lines))
                .flatten();
            let (line, mac) = self.read_line(by, check.as_mut())?;
            lines += 1;
            bytes += line.text.len() as u64 + 5;
            if lines > MAX_REPLY_LINES || bytes > MAX_REPLY_BYTES {
                return Err(ClientError::TooLarge(Bound::Reply(self.addr.clone())));
            }
            if let Some(c) = check.take_if(|_| line.last) {
                if !c.holds(mac, line.code) {
                    self.changed = true;
                    return Err(ClientError::Changed(self.addr.clone()));
                }
                if let Some(seal) = &mut self.seal {
                    seal.answered(line.code);
                }
            }
            if line.last && line.code == code::CLOSING {
                return Err(ClientError::Closed(line.code, line.text));
            }
            each(&line);
            if line.last {
                return Ok(line);
            }
        }
    }

    /// Reads one whole reply.
    pub fn read_reply(&mut self) -> Result<Answer, ClientError> {
        let mut lines = Vec::new();
        self.read_reply_with(&mut |l| lines.push(l.clone()))?;
        Ok(Answer { lines })
    }

    /// Reads one reply, handing the text of each row of a `213` table to
    /// `row` (header and count left out; fields escaped as on the wire)
    /// without holding the table. Returns the final line. The rows of a
    /// reply whose MAC fails were handed on all the same, so `row` only
    /// gathers: what it gathered is used once this returned `Ok`.
    pub fn read_table(&mut self, row: &mut dyn FnMut(&str)) -> Result<ReplyLine, ClientError> {
        let mut header = true;
        self.read_reply_with(&mut |l| {
            if l.code == code::TABLE && !l.last {
                if header {
                    header = false;
                } else {
                    row(&l.text);
                }
            }
        })
    }

    /// Sends a request, reads its reply, and records it in the history.
    pub fn request(&mut self, line: &str) -> Result<Answer, ClientError> {
        self.send(line)?;
        let r = self.read_reply()?;
        self.record(line, r.code());
        Ok(r)
    }

    /// Records a request this client made (direction `out`).
    pub fn record(&self, request: &str, reply: u16) {
        if let Some(h) = &self.history {
            let request = protocol::without_secret(request);
            let _ = h.append(Direction::Out, &self.addr.to_string(), request, reply);
        }
    }

    /// Says goodbye; errors are of no interest at this point, and a peer
    /// that does not answer keeps the client at most a second.
    pub fn quit(&mut self) {
        self.timeout = self.timeout.min(Duration::from_secs(1));
        if self.send("QUIT").is_ok() {
            if let Ok(r) = self.read_reply() {
                self.record("QUIT", r.code());
            }
        }
    }

    /// False when the connection is of no use for a next request: the
    /// peer closed it, or said something nobody asked for (a `421` before
    /// it closes). Only looks, without waiting.
    pub fn is_open(&mut self) -> bool {
        !self.changed
            && self.reader.buffer().is_empty()
            && self.reader.get_mut().stream().poll(Duration::ZERO) == Peek::Nothing
    }

    /// True when the peer has sent something (or closed the connection)
    /// that a read would get now. Only looks, without waiting.
    pub(crate) fn reply_pending(&mut self) -> bool {
        self.reply_within(Duration::ZERO)
    }

    /// [`Client::reply_pending`], waiting up to `wait` for something to
    /// arrive.
    pub(crate) fn reply_within(&mut self, wait: Duration) -> bool {
        !self.reader.buffer().is_empty()
            || self.reader.get_mut().stream().poll(wait) != Peek::Nothing
    }
}

/// Says once per process, at a terminal, that a connection without a
/// secret is not protected.
fn unprotected(addr: SocketAddr) {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if io::stderr().is_terminal() && !TOLD.swap(true, Ordering::Relaxed) {
        super::prompt::print_above(
            &format!(
                "p2pshare: the connection to {addr} is not protected (no secret; see README \"Security\")"
            ),
            true,
        );
    }
}

/// A TCP control connection to `target` and the address it reached,
/// made within `timeout`; writes on it wait at most `timeout` too.
fn connect_tcp(target: &str, timeout: Duration) -> Result<(TcpStream, SocketAddr), ClientError> {
    let addr =
        transport::resolve(target).map_err(|e| ClientError::Connect(target.to_string(), e))?;
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        let e = if e.kind() == io::ErrorKind::TimedOut {
            io::Error::new(
                e.kind(),
                format!("no answer within {}", duration_text(timeout)),
            )
        } else {
            e
        };
        ClientError::Connect(target.to_string(), e)
    })?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(timeout))?;
    Ok((stream, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A control connection over a Unix socket pair, not TCP: a stream
    /// that only reads and writes, with one byte of lookahead for
    /// [`Transport::poll`], as a child process's pipes would have.
    struct Pipe {
        stream: UnixStream,
        held: Option<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.held.take(), buf.first_mut()) {
                (Some(b), Some(first)) => {
                    *first = b;
                    Ok(1)
                }
                (held, _) => {
                    self.held = held;
                    self.stream.read(buf)
                }
            }
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.stream.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.stream.flush()
        }
    }

    impl Transport for Pipe {
        fn set_read_timeout(&mut self, wait: Option<Duration>) -> io::Result<()> {
            self.stream.set_read_timeout(wait)
        }
        fn poll(&mut self, wait: Duration) -> Peek {
            if self.held.is_some() {
                return Peek::Data;
            }
            let _ = self
                .stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            let mut b = [0u8; 1];
            match self.stream.read(&mut b) {
                Ok(0) => Peek::Closed,
                Ok(_) => {
                    self.held = Some(b[0]);
                    Peek::Data
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Peek::Nothing
                }
                Err(_) => Peek::Closed,
            }
        }
    }

    fn over_pipe(timeout: Duration) -> (Result<Client, ClientError>, UnixStream) {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"220 p2pshare ready\n").unwrap();
        let pipe = Pipe {
            stream: ours,
            held: None,
        };
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        (
            Client::over(Box::new(pipe), Peer::Tcp(addr), timeout, None, None),
            peer,
        )
    }

    /// Reads what the client sent: one request line.
    fn request_of(peer: &mut UnixStream) -> String {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while peer.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn replies_are_read_over_a_stream_that_is_not_tcp() {
        let (c, mut peer) = over_pipe(Duration::from_secs(30));
        let mut c = c.unwrap();
        assert_eq!(c.greeting(), "p2pshare ready");
        assert!(c.is_open());
        peer.write_all(b"213-name\tsize\n213-a\\tb\t3\n213 1 file\n")
            .unwrap();
        assert!(c.reply_within(Duration::from_secs(30)));
        let r = c.request("FileList").unwrap();
        assert_eq!(request_of(&mut peer), "FileList");
        assert_eq!(r.code(), code::TABLE);
        assert_eq!(r.table_rows(), [vec!["a\tb".to_string(), "3".to_string()]]);
        // The bound on a reply line holds on any stream.
        let long = format!("200 {}\n", "x".repeat(MAX_REPLY_LINE));
        let writer = std::thread::spawn(move || {
            let _ = peer.write_all(long.as_bytes());
        });
        let e = c.read_reply().unwrap_err();
        drop(c);
        writer.join().unwrap();
        assert!(
            e.to_string().contains("longer than the client takes"),
            "{e}"
        );
        // So does the deadline of a reply that never comes, and a peer
        // that goes away is seen.
        let (c, peer) = over_pipe(Duration::from_millis(200));
        let mut c = c.unwrap();
        let e = c.request("FileList").unwrap_err();
        assert!(e.to_string().starts_with("no reply from"), "{e}");
        drop(peer);
        assert!(!c.is_open());
    }
}
