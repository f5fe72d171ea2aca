//! The thin client: its settings and `run`, and the control connection to
//! a peer (replies as they arrive, within bounds; the request history).
//!
//! Below it: [`console`] runs commands, [`fetch`] downloads a batch of
//! files (one file's download in `download`, its local files in `local`),
//! [`send`] uploads, and `data` owns the data connections both use.

pub mod console;
mod data;
mod deadline;
mod download;
pub mod fetch;
mod help;
mod local;
pub mod out;
pub mod prompt;
pub mod send;
pub mod show;
pub mod sync;

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::deadline::Deadline;
use crate::history::{Direction, History};
use crate::protocol::{self, code, ReplyLine};
use crate::share::state::StateChoice;

/// The default control port.
pub const DEFAULT_PORT: u16 = 9000;

/// The longest reply line the client accepts from a peer.
pub const MAX_REPLY_LINE: usize = 256 * 1024;

/// The most lines one reply may have: twice the rows of a `FileHash
/// checkall` of a million files.
pub const MAX_REPLY_LINES: usize = 2_000_000;

/// The most bytes one reply may have: such a checkall with names of 200
/// bytes on average.
pub const MAX_REPLY_BYTES: u64 = 256 << 20;

/// Everything the client needs to reach a peer and store what it gets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The peer, `HOST[:PORT]`.
    pub target: String,
    /// The local shared folder: where downloads land, uploads come from.
    pub share: PathBuf,
    pub secret: Option<String>,
    /// Replace local files whose content differs.
    pub overwrite: bool,
    /// How long any one wait on the peer may take: connect, greeting,
    /// each reply line (a whole reply: scaled to its lines, see
    /// `deadline`), a stalled transfer.
    pub timeout: Duration,
    /// UDP payload size for `FileDownload UDP`; None picks by path.
    pub udp_payload: Option<usize>,
    /// How much Sync's trash keeps.
    pub trash: sync::trash::Bounds,
}

impl Default for Settings {
    /// The peer on this machine's default port, `./shared`, a minute's
    /// patience.
    fn default() -> Settings {
        Settings {
            target: format!("127.0.0.1:{DEFAULT_PORT}"),
            share: PathBuf::from("shared"),
            secret: None,
            overwrite: false,
            timeout: Duration::from_secs(60),
            udp_payload: None,
            trash: sync::trash::Bounds::default(),
        }
    }
}

/// What `p2pshare client` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Settings,
    /// The commands to run, in order; none: read them from stdin.
    pub commands: Vec<String>,
    /// Where the history goes.
    pub state: StateChoice,
}

/// Why talking to a peer failed.
#[derive(Debug)]
pub enum ClientError {
    /// The peer could not be reached at all.
    Connect(String, io::Error),
    /// The connection failed or closed.
    Io(io::Error),
    /// The peer said it closes the connection (`421`), with its text.
    Closed(String),
    /// The peer did not answer in time: what was waited for.
    Timeout(String),
    /// A reply broke the client's bounds (line length, lines, bytes):
    /// which one.
    TooLarge(String),
    /// The peer sent something that is not the protocol, or a reply that
    /// does not belong to the request.
    Protocol(String),
}

impl ClientError {
    /// True when the connection went away (closed, reset, or closed with
    /// a `421`): a new connection may do what this one could not.
    pub fn is_drop(&self) -> bool {
        matches!(self, ClientError::Io(_) | ClientError::Closed(_))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(target, e) => write!(f, "cannot connect to {target}: {e}"),
            ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("the peer closed the connection")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Closed(text) => write!(f, "the peer closed the connection: {text}"),
            ClientError::Timeout(what) | ClientError::TooLarge(what) => f.write_str(what),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A duration as `--timeout` takes it (`2s`, `1m 30s`).
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A whole reply: its lines in order, the last one final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// The code of the final line.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// The text of the final line.
    pub fn text(&self) -> &str {
        self.lines.last().map_or("", |l| l.text.as_str())
    }

    pub fn is_ok(&self) -> bool {
        (100..400).contains(&self.code())
    }

    /// The rows of a 213 table (header and count left out), split on TAB
    /// and unescaped.
    pub fn table_rows(&self) -> Vec<Vec<String>> {
        if self.code() != code::TABLE || self.lines.len() < 2 {
            return Vec::new();
        }
        self.lines[1..self.lines.len() - 1]
            .iter()
            .map(|l| split_row(&l.text))
            .collect()
    }

    /// The rows of a `FileHash` table as name → (md5, timestamp).
    pub fn hash_rows<C: FromIterator<(String, (String, String))>>(&self) -> C {
        self.table_rows()
            .into_iter()
            .filter_map(|row| {
                let mut f = row.into_iter();
                Some((f.next()?, (f.next()?, f.next()?)))
            })
            .collect()
    }
}

/// Splits a table line on TAB and unescapes each field.
pub fn split_row(text: &str) -> Vec<String> {
    text.split('\t').map(unescape).collect()
}

/// [`protocol::unescape_field`], with no work for a field without a
/// backslash (most of them), which it leaves as it is.
pub fn unescape(field: &str) -> String {
    if field.contains('\\') {
        protocol::unescape_field(field)
    } else {
        field.to_string()
    }
}

/// Resolves `HOST[:PORT]` (port 9000 when left out; `[v6]:port` too).
pub fn resolve(target: &str) -> io::Result<SocketAddr> {
    let with_port = if target.parse::<SocketAddr>().is_ok() {
        target.to_string()
    } else if target.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{target}]:{DEFAULT_PORT}")
    } else if target
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        target.to_string()
    } else {
        format!("{target}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {target}")))
}

/// An open control connection to a peer.
pub struct Client {
    addr: SocketAddr,
    reader: BufReader<Deadline>,
    writer: TcpStream,
    history: Option<Arc<History>>,
    /// The data connection held for the next transfer (see [`data`]).
    pub(crate) data: Option<data::DataConn>,
    greeting: String,
    /// How long any one wait on the peer may take.
    timeout: Duration,
    /// The buffer each reply line is read into.
    line: Vec<u8>,
}

impl Client {
    /// Connects, reads the greeting, and authenticates when `secret` is
    /// set. `timeout` bounds every wait on the peer from here on: the
    /// connect, the greeting, each reply line (and each whole reply, see
    /// `deadline`) and a stalled transfer.
    pub fn connect(
        target: &str,
        timeout: Duration,
        history: Option<Arc<History>>,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let addr = resolve(target).map_err(|e| ClientError::Connect(target.to_string(), e))?;
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
        let writer = stream.try_clone()?;
        let mut c = Client {
            addr,
            reader: BufReader::with_capacity(64 * 1024, Deadline::new(stream)),
            writer,
            history,
            data: None,
            greeting: String::new(),
            timeout,
            line: Vec::with_capacity(256),
        };
        let g = c.read_reply().map_err(|e| match e {
            ClientError::Timeout(_) => ClientError::Timeout(format!(
                "no greeting from {addr} within {}",
                duration_text(timeout)
            )),
            e => e,
        })?;
        if g.code() != code::GREETING {
            return Err(ClientError::Protocol(format!(
                "{} {}",
                g.code(),
                show::peer_text(g.text())
            )));
        }
        c.greeting = g.text().to_string();
        if let Some(s) = secret {
            // Recorded as `AUTH ***`, like every AUTH (see `record`).
            let r = c.request(&format!("AUTH {}", protocol::quote_word(s)))?;
            if r.code() != code::AUTHENTICATED {
                return Err(ClientError::Protocol(format!(
                    "authentication failed: {} {}",
                    r.code(),
                    show::peer_text(r.text())
                )));
            }
        }
        Ok(c)
    }

    /// The peer's control address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// How long any one wait on the peer may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request line (or several, each with its line end).
    pub fn send(&mut self, line: &str) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.writer.write_all(&buf).map_err(|e| self.timed_out(e))?;
        Ok(())
    }

    /// A read or write that waited out the timeout, said as such.
    fn timed_out(&self, e: io::Error) -> ClientError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(format!(
                "no reply from {} within {}",
                self.addr,
                duration_text(self.timeout)
            )),
            _ => ClientError::Io(e),
        }
    }

    /// Reads one reply line: it must come whole within the timeout, and
    /// by `reply` (the deadline of the whole reply) when that is earlier.
    fn read_line(&mut self, reply: Option<Instant>) -> Result<ReplyLine, ClientError> {
        let own = deadline::after(Instant::now(), self.timeout);
        let until = deadline::earliest(own, reply);
        self.reader.get_mut().set(until);
        let mut buf = std::mem::take(&mut self.line);
        buf.clear();
        let read = io::Read::take(&mut self.reader, MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    ClientError::Timeout(self.late(!buf.is_empty(), until != own))
                }
                _ => ClientError::Io(e),
            });
        let line = read.and_then(|n| self.parse_line(&buf, n));
        self.line = buf;
        line
    }

    /// What a reply that missed its deadline was: nothing of its line
    /// came, part of the line came, or the whole reply took too long.
    fn late(&self, part_of_line: bool, whole_reply: bool) -> String {
        let (addr, t) = (self.addr, duration_text(self.timeout));
        if whole_reply {
            format!(
                "a reply from {addr} did not come whole in time ({t}, and {t} more for every {} of its lines)",
                deadline::LINES_PER_TIMEOUT
            )
        } else if part_of_line {
            format!("a reply line from {addr} did not come whole within {t}")
        } else {
            format!("no reply from {addr} within {t}")
        }
    }

    fn parse_line(&self, buf: &[u8], n: usize) -> Result<ReplyLine, ClientError> {
        if n == 0 {
            return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n > MAX_REPLY_LINE {
                ClientError::TooLarge(format!(
                    "a reply line from {} is longer than the client takes ({MAX_REPLY_LINE} bytes)",
                    self.addr
                ))
            } else {
                ClientError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
        // Checked first as it is (the usual case, and much the cheaper).
        let text = match std::str::from_utf8(buf) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(buf),
        };
        protocol::parse_reply_line(&text).ok_or_else(|| {
            let start: String = text.trim_end().chars().take(80).collect();
            ClientError::Protocol(format!("not a reply line: \"{}\"", protocol::shown(&start)))
        })
    }

    /// Reads one whole reply, handing each line to `each` as it arrives
    /// (so long tables can be printed without being held). A reply of more
    /// than [`MAX_REPLY_LINES`] lines or [`MAX_REPLY_BYTES`] bytes is an
    /// error, and so is a `421` (the peer closes the connection after it),
    /// and a reply that does not come whole in time (see `deadline`).
    pub fn read_reply_with(
        &mut self,
        each: &mut dyn FnMut(&ReplyLine),
    ) -> Result<ReplyLine, ClientError> {
        let mut lines = 0usize;
        let mut bytes = 0u64;
        let start = Instant::now();
        loop {
            // The first line's own deadline is the reply's too.
            let by = (lines > 0)
                .then(|| deadline::reply_deadline(start, self.timeout, lines))
                .flatten();
            let line = self.read_line(by)?;
            lines += 1;
            bytes += line.text.len() as u64 + 5;
            if lines > MAX_REPLY_LINES || bytes > MAX_REPLY_BYTES {
                return Err(ClientError::TooLarge(format!(
                    "a reply from {} is longer than the client takes (at most {MAX_REPLY_LINES} lines and {} MiB)",
                    self.addr,
                    MAX_REPLY_BYTES >> 20
                )));
            }
            if line.last && line.code == code::CLOSING {
                return Err(ClientError::Closed(format!(
                    "{} {}",
                    line.code,
                    show::peer_text(&line.text)
                )));
            }
            each(&line);
            if line.last {
                return Ok(line);
            }
        }
    }

    /// Reads one whole reply.
    pub fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        self.read_reply_with(&mut |l| lines.push(l.clone()))?;
        Ok(Reply { lines })
    }

    /// Reads one reply, handing the text of each row of a `213` table to
    /// `row` (header and count left out; fields escaped as on the wire)
    /// without holding the table. Returns the final line.
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
    pub fn request(&mut self, line: &str) -> Result<Reply, ClientError> {
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
        self.reader.buffer().is_empty() && peek_now(self.reader.get_ref().stream()) == Peek::Nothing
    }

    /// True when the peer has sent something (or closed the connection)
    /// that a read would get now. Only looks, without waiting.
    pub(crate) fn reply_pending(&mut self) -> bool {
        !self.reader.buffer().is_empty()
            || peek_now(self.reader.get_ref().stream()) != Peek::Nothing
    }

    /// [`Client::reply_pending`], waiting up to `wait` for something to
    /// arrive.
    pub(crate) fn reply_within(&mut self, wait: Duration) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let s = self.reader.get_ref().stream();
        if s.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .is_err()
        {
            return true;
        }
        // The next read sets the deadline of its own wait (see [`deadline`]).
        let mut b = [0u8; 1];
        loop {
            match s.peek(&mut b) {
                Ok(_) => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break false
                }
                Err(_) => break true,
            }
        }
    }
}

/// What a look at a socket found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Nothing to read yet: open and quiet.
    Nothing,
    /// Bytes are waiting.
    Data,
    /// End of file, or an error: closed.
    Closed,
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

/// The history of the local shared folder: in the state folder that
/// `state` and the share choose (see [`crate::share::state::plan`]), which
/// is created only with the first row. A note about where it is goes to
/// stderr.
pub fn local_history(share: &std::path::Path, state: &StateChoice) -> History {
    let state = crate::share::state::plan(share, state);
    if let Some(note) = &state.note {
        out::tell!("p2pshare: {note}");
    }
    History::of_share(&state.path)
}

/// `p2pshare client`: runs the commands and returns the exit status (0 all
/// succeeded, 1 some failed, 2 the peer could not be reached or a `-c`
/// command was a usage error).
pub fn run(args: Options) -> u8 {
    // Nothing is created here: downloads make the folder when they need
    // it, the history with its first row. A path that cannot become a
    // folder is a mistake to tell now.
    if let Err(e) = crate::share::check_folder(&args.settings.share) {
        out::tell!("p2pshare: {e}");
        return 2;
    }
    let history = Arc::new(local_history(&args.settings.share, &args.state));
    let mut console = console::Console::new(args.settings, history);
    match console.connect() {
        Ok(_) => {}
        // Not reached at all: 2, like a usage error. Reached but refused
        // (a wrong secret, not a p2pshare peer): the command failed, 1.
        // A peer that accepts and never greets is as unreachable.
        Err(e @ (ClientError::Connect(..) | ClientError::Timeout(_))) => {
            out::tell!("p2pshare: {e}");
            return 2;
        }
        Err(e) => {
            out::tell!("p2pshare: {e}");
            return 1;
        }
    }
    let mut failures = 0;
    if args.commands.is_empty() {
        failures += console.run_stdin();
    } else {
        for c in &args.commands {
            match console.execute(c) {
                console::Status::Ok => {}
                console::Status::Failed => failures += 1,
                console::Status::Quit => break,
            }
        }
        // A command given with -c that could not even be sent is a
        // mistake on the command line.
        if console.usage_errors() > 0 {
            console.close();
            return 2;
        }
    }
    console.close();
    // Output that could not be written fails the run, whatever wrote it.
    let _ = out::stdout().flush();
    out::report_failure();
    u8::from(failures > 0 || out::any_failed())
}
