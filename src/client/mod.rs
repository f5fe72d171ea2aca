//! The thin client's connection to a peer: the control connection, replies
//! as they arrive, the request history, and the data connection it reuses.

pub mod console;
pub mod fetch;
pub mod prompt;
pub mod send;

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::history::{Direction, History};
use crate::protocol::{self, code, ReplyLine};

/// The default control port.
pub const DEFAULT_PORT: u16 = 9000;

/// The longest reply line the client accepts from a server.
const MAX_REPLY_LINE: usize = 256 * 1024;

/// Why talking to a peer failed.
#[derive(Debug)]
pub enum ClientError {
    /// The peer could not be reached at all.
    Connect(String, io::Error),
    /// The connection failed or closed.
    Io(io::Error),
    /// The peer sent something that is not the protocol.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(target, e) => write!(f, "cannot connect to {target}: {e}"),
            ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("the peer closed the connection")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
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
    text.split('\t').map(protocol::unescape_field).collect()
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
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    history: Option<Arc<History>>,
    pub(crate) data: Option<fetch::DataConn>,
    greeting: String,
}

impl Client {
    /// Connects, reads the greeting, and authenticates when `secret` is set.
    pub fn connect(
        target: &str,
        timeout: Duration,
        history: Option<Arc<History>>,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let addr = resolve(target).map_err(|e| ClientError::Connect(target.to_string(), e))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| ClientError::Connect(target.to_string(), e))?;
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone()?;
        let mut c = Client {
            addr,
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            history,
            data: None,
            greeting: String::new(),
        };
        let g = c.read_reply()?;
        if g.code() != code::GREETING {
            return Err(ClientError::Protocol(format!("{} {}", g.code(), g.text())));
        }
        c.greeting = g.text().to_string();
        if let Some(s) = secret {
            // Recorded as `AUTH ***`, like every AUTH (see `record`).
            let r = c.request(&format!("AUTH {}", protocol::quote_word(s)))?;
            if r.code() != code::AUTHENTICATED {
                return Err(ClientError::Protocol(format!(
                    "authentication failed: {} {}",
                    r.code(),
                    r.text()
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

    /// Sets how long a read may wait for the peer.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(t)
    }

    /// Sends one request line.
    pub fn send(&mut self, line: &str) -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.writer.write_all(&buf)?;
        Ok(())
    }

    /// Reads one reply line.
    pub fn read_line(&mut self) -> Result<ReplyLine, ClientError> {
        let mut buf = Vec::new();
        let n = io::Read::take(&mut self.reader, MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n > MAX_REPLY_LINE {
                ClientError::Protocol("reply line too long".into())
            } else {
                ClientError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
        let text = String::from_utf8_lossy(&buf);
        protocol::parse_reply_line(&text).ok_or_else(|| {
            let shown: String = text.trim_end().chars().take(80).collect();
            ClientError::Protocol(format!("not a reply line: {shown:?}"))
        })
    }

    /// Reads one whole reply, handing each line to `each` as it arrives
    /// (so long tables can be printed without being held).
    pub fn read_reply_with(
        &mut self,
        each: &mut dyn FnMut(&ReplyLine),
    ) -> Result<ReplyLine, ClientError> {
        loop {
            let line = self.read_line()?;
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

    /// Says goodbye; errors are of no interest at this point.
    pub fn quit(&mut self) {
        if self.send("QUIT").is_ok() {
            if let Ok(r) = self.read_reply() {
                self.record("QUIT", r.code());
            }
        }
    }
}

/// The history of the local shared folder: in the state folder that
/// `state` and the share choose (see [`crate::share::state::plan`]), which
/// is created only with the first row. A note about where it is goes to
/// stderr.
pub fn local_history(share: &std::path::Path, state: &crate::share::state::StateChoice) -> History {
    let state = crate::share::state::plan(share, state);
    if let Some(note) = &state.note {
        eprintln!("p2pshare: {note}");
    }
    History::of_share(&state.path)
}

/// `p2pshare client`: runs the commands and returns the exit status (0 all
/// succeeded, 1 some failed, 2 the peer could not be reached).
pub fn run(args: crate::cli::ClientArgs) -> u8 {
    // Nothing is created here: downloads make the folder when they need
    // it, the history with its first row. A path that cannot become a
    // folder is a mistake to tell now.
    if let Err(e) = crate::share::check_folder(&args.settings.share) {
        eprintln!("p2pshare: {e}");
        return 2;
    }
    let history = Arc::new(local_history(&args.settings.share, &args.state));
    let mut console = console::Console::new(args.settings, history);
    match console.connect() {
        Ok(_) => {}
        // Not reached at all: 2, like a usage error. Reached but refused
        // (a wrong secret, not a p2pshare peer): the command failed, 1.
        Err(e @ ClientError::Connect(..)) => {
            eprintln!("p2pshare: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("p2pshare: {e}");
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
    }
    console.close();
    u8::from(failures > 0)
}
