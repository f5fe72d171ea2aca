//! One control connection: a capped line reader, dispatch of each request,
//! and a history row for every request.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{PortClaim, PortKind, RowVerdict, Shared};
use crate::digest::Md5;
use crate::history::Direction;
use crate::protocol::{
    self, code, write_multi, write_reply, write_table, Command, DataLine, Transport, HASH_HEADER,
    HISTORY_HEADER, LIST_HEADER,
};
use crate::share::index::Entry;
use crate::share::{OpenedFile, Placed, ShareError};
use crate::stop::Stop;
use crate::timefmt;
use crate::transfer::tcp::{self, DataChannel};
use crate::transfer::token;
use crate::transfer::udp::{SendLimits, UdpChannel};
use crate::transfer::SendOutcome;

/// Wrong AUTH tries before the connection is closed.
const MAX_WRONG_SECRETS: u8 = 3;

/// What reading one request line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    Line(Vec<u8>),
    /// The line was longer than the cap; the rest of it was read and thrown
    /// away.
    TooLong,
    Eof,
}

/// Reads one LF-terminated line of at most `cap` bytes (without the LF).
/// Memory stays bounded by `cap` whatever the peer sends.
pub fn read_line_capped(r: &mut impl BufRead, cap: usize) -> io::Result<LineRead> {
    LineReader::default().read(r, cap)
}

/// A capped line reader that keeps a line begun when a read fails (a
/// timeout), so the next call goes on with it.
#[derive(Debug, Default)]
pub struct LineReader {
    line: Vec<u8>,
    too_long: bool,
}

impl LineReader {
    /// Reads up to the end of one LF-terminated line of at most `cap` bytes
    /// (without the LF), see [`read_line_capped`]. On an error the part
    /// read so far is kept for the next call.
    pub fn read(&mut self, r: &mut impl BufRead, cap: usize) -> io::Result<LineRead> {
        loop {
            let available = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                // End of stream: a last unterminated line still counts.
                let line = std::mem::take(&mut self.line);
                return Ok(if std::mem::take(&mut self.too_long) {
                    LineRead::TooLong
                } else if line.is_empty() {
                    LineRead::Eof
                } else {
                    LineRead::Line(line)
                });
            }
            let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !self.too_long {
                if self.line.len() + chunk.len() > cap + 1 {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            let used = found.unwrap_or(available.len());
            r.consume(used);
            if found.is_some() {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.too_long) || line.len() > cap {
                    return Ok(LineRead::TooLong);
                }
                return Ok(LineRead::Line(line));
            }
        }
    }
}

/// How late a read timeout already set may fire and still be kept, to save
/// setting it again before every read.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// The control connection as the session reads it: it remembers when the
/// client last sent a byte, and sets each read's timeout so that the read
/// ends at the idle deadline counted from then.
struct Input<'a> {
    conn: &'a TcpStream,
    idle: Duration,
    /// When the client last sent bytes, or a transfer last ended.
    active: Instant,
    /// Also end a read by then (to release idle data channels).
    wake_at: Option<Instant>,
    /// The read timeout set on the socket now.
    armed: Option<Duration>,
}

impl<'a> Input<'a> {
    fn new(conn: &'a TcpStream, idle: Duration) -> Input<'a> {
        Input {
            conn,
            idle,
            active: Instant::now(),
            wake_at: None,
            armed: None,
        }
    }

    /// The idle deadline, None when too far to name.
    fn idle_deadline(&self) -> Option<Instant> {
        self.active.checked_add(self.idle)
    }

    /// How long until the idle deadline (zero once it passed).
    fn idle_left(&self) -> Duration {
        self.idle_deadline().map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    }

    /// Counts now as activity (a transfer that just ended).
    fn touch(&mut self) {
        self.active = Instant::now();
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = match (self.idle_deadline(), self.wake_at) {
            (Some(i), Some(w)) => Some(i.min(w)),
            (i, w) => i.or(w),
        };
        let left = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let good_enough = match (self.armed, left) {
            (Some(a), Some(l)) => a >= l && a - l < TIMEOUT_SLACK,
            (a, l) => a == l,
        };
        if !good_enough {
            self.conn.set_read_timeout(left)?;
            self.armed = left;
        }
        let n = (&*self.conn).read(buf)?;
        if n > 0 {
            self.active = Instant::now();
        }
        Ok(n)
    }
}

struct Session<'a> {
    shared: &'a Shared,
    stop: &'a Stop,
    // Reader and writer share the one control socket (`&TcpStream` reads
    // and writes): no duplicated descriptor.
    reader: BufReader<Input<'a>>,
    lines: LineReader,
    out: BufWriter<&'a TcpStream>,
    peer: SocketAddr,
    local: SocketAddr,
    // Each channel before its claim: a port is closed before it counts as
    // free again.
    tcp_data: Option<DataChannel>,
    tcp_claim: Option<PortClaim<'a>>,
    udp_data: Option<UdpChannel>,
    udp_claim: Option<PortClaim<'a>>,
    /// When a transfer last needed the data channels (or they opened).
    data_used: Instant,
    /// True once AUTH succeeded, or from the start when no secret is set.
    authed: bool,
    wrong_secrets: u8,
}

/// Serves one control connection until the peer quits or leaves.
pub(crate) fn run(shared: &Shared, conn: &TcpStream, stop: &Stop) {
    let (Ok(peer), Ok(local)) = (conn.peer_addr(), conn.local_addr()) else {
        return;
    };
    // Seen through a `[::]` listener, an IPv4 client and the address it
    // reached are ::ffff:a.b.c.d. As plain IPv4 they are what the history
    // records, what data listeners bind to and what the data channel
    // compares a connection's source with.
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (peer, local) = (canonical(peer), canonical(local));
    let _ = conn.set_nodelay(true);
    let _ = conn.set_write_timeout(Some(shared.config.data_timeout));
    let mut s = Session {
        shared,
        stop,
        reader: BufReader::with_capacity(8192, Input::new(conn, shared.config.idle_timeout)),
        lines: LineReader::default(),
        out: BufWriter::with_capacity(64 * 1024, conn),
        peer,
        local,
        tcp_data: None,
        tcp_claim: None,
        udp_data: None,
        udp_claim: None,
        data_used: Instant::now(),
        authed: shared.config.secret.is_none(),
        wrong_secrets: 0,
    };
    let _ = s.serve(stop);
    if let Some((n, last_reply)) = shared.left_out_rows(peer.ip()) {
        s.record_left_out(n, last_reply);
    }
}

impl Session<'_> {
    fn serve(&mut self, stop: &Stop) -> io::Result<()> {
        write_reply(
            &mut self.out,
            code::GREETING,
            &format!(
                "p2pshare {} ready; {}",
                env!("CARGO_PKG_VERSION"),
                if self.authed {
                    "HELP lists commands"
                } else {
                    "AUTH <secret> required"
                }
            ),
        )?;
        self.out.flush()?;
        loop {
            self.release_idle_data();
            let max_line = self.shared.config.max_line;
            let read = match self.lines.read(&mut self.reader, max_line) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !self.reader.get_ref().idle_left().is_zero() {
                        continue;
                    }
                    let _ = write_reply(&mut self.out, code::CLOSING, "idle timeout");
                    let _ = self.out.flush();
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let (request, reply, quit) = match read {
                LineRead::Eof => {
                    // A stopping server shuts the reading side of every
                    // session: this end of stream is that, not the client.
                    if stop.is_set() {
                        write_reply(&mut self.out, code::CLOSING, "shutting down")?;
                    }
                    return self.out.flush();
                }
                LineRead::TooLong => {
                    write_reply(
                        &mut self.out,
                        code::SYNTAX,
                        &format!("line too long (the limit is {max_line} bytes)"),
                    )?;
                    ("(line too long)".to_string(), code::SYNTAX, false)
                }
                LineRead::Line(bytes) => match String::from_utf8(bytes) {
                    Err(e) => {
                        write_reply(&mut self.out, code::SYNTAX, "invalid UTF-8 in request")?;
                        (
                            String::from_utf8_lossy(e.as_bytes()).into_owned(),
                            code::SYNTAX,
                            false,
                        )
                    }
                    Ok(line) => match protocol::parse(&line) {
                        Ok(None) => continue,
                        Ok(Some(cmd)) => {
                            let reply = self.dispatch_checked(cmd)?;
                            let quit =
                                reply == code::BYE || self.wrong_secrets >= MAX_WRONG_SECRETS;
                            (line, reply, quit)
                        }
                        Err(e) => {
                            write_reply(&mut self.out, e.code, &e.message)?;
                            (line, e.code, false)
                        }
                    },
                },
            };
            self.record(protocol::without_secret(request.trim()), reply);
            // Flush only when no further request is already waiting, so a
            // pipelining client gets its replies in few packets.
            if quit || self.reader.buffer().is_empty() {
                self.out.flush()?;
            }
            if quit {
                return Ok(());
            }
        }
    }

    /// Writes the history row of a request. Rows of refused (5xx) and
    /// unauthenticated requests are limited per address; those left out
    /// are counted, and summed up in one row before the next one written.
    fn record(&mut self, request: &str, reply: u16) {
        let history = &self.shared.history;
        let limited = reply >= 500 || !self.authed;
        if limited {
            match self.shared.limited_row(self.peer.ip(), reply) {
                RowVerdict::LeaveOut => return,
                RowVerdict::Write {
                    left_out,
                    last_reply,
                } => {
                    if left_out > 0 {
                        self.record_left_out(left_out, last_reply);
                    }
                }
            }
        }
        let _ = history.append(Direction::In, &self.peer.to_string(), request, reply);
    }

    /// The row that says how many rows from this address were left out.
    fn record_left_out(&self, n: u64, last_reply: u16) {
        let _ = self.shared.history.append(
            Direction::In,
            &self.peer.ip().to_string(),
            &format!(
                "({n} more refused or unauthenticated requests from this address not recorded: \
                 over {} rows at once or {} a second)",
                super::ROW_BURST,
                super::ROWS_PER_SECOND
            ),
            last_reply,
        );
    }

    /// Answers 530 to what needs authentication before AUTH succeeded,
    /// else runs the command.
    fn dispatch_checked(&mut self, cmd: Command) -> io::Result<u16> {
        let open = matches!(
            cmd,
            Command::Help(_) | Command::Noop | Command::Auth(_) | Command::Quit
        );
        if !self.authed && !open {
            return self.reply(
                code::AUTH_REQUIRED,
                "authentication required: send AUTH <secret> first",
            );
        }
        self.dispatch(cmd)
    }

    fn auth(&mut self, given: &str) -> io::Result<u16> {
        let Some(secret) = self.shared.config.secret.as_deref() else {
            return self.reply(code::AUTHENTICATED, "no secret is needed on this peer");
        };
        // Replies to requests before this one go out now: the answer to a
        // wrong secret may wait.
        self.out.flush()?;
        let right = self.shared.auth_gate.try_secret(
            self.peer.ip(),
            &self.shared.config,
            self.stop,
            || token::equal(given.as_bytes(), secret.as_bytes()),
        );
        // The time this peer made the client wait is not the client's idle
        // time.
        self.reader.get_mut().touch();
        if right {
            self.authed = true;
            self.wrong_secrets = 0;
            return self.reply(code::AUTHENTICATED, "authenticated");
        }
        self.wrong_secrets += 1;
        if self.wrong_secrets >= MAX_WRONG_SECRETS {
            self.reply(code::AUTH_REQUIRED, "wrong secret; closing the connection")
        } else {
            self.reply(
                code::AUTH_REQUIRED,
                &format!(
                    "wrong secret ({} of {MAX_WRONG_SECRETS} tries)",
                    self.wrong_secrets
                ),
            )
        }
    }

    /// Runs one command, writes its reply, and returns the final reply code
    /// for the history.
    fn dispatch(&mut self, cmd: Command) -> io::Result<u16> {
        let share = &self.shared.share;
        match cmd {
            Command::LongList => {
                let snap = share.snapshot();
                self.list(snap.all())
            }
            Command::ShortList { start, end } => {
                let snap = share.snapshot();
                self.list(snap.modified_between(start, end))
            }
            Command::Glob(pattern) => {
                let snap = share.snapshot();
                match snap.matching(&pattern) {
                    Ok(rows) => self.list(rows.into_iter()),
                    Err(e) => self.reply(code::BAD_ARGS, &e.0),
                }
            }
            Command::Verify(name) => {
                let f = match share.open_file(&name) {
                    Ok(f) => f,
                    Err(e) => return self.share_error(&name, e),
                };
                match share.md5_of(&f) {
                    Ok(d) => {
                        let row = vec![name, d.to_string(), timefmt::format(f.mtime)];
                        write_table(&mut self.out, HASH_HEADER, [row], "files")?;
                        Ok(code::TABLE)
                    }
                    Err(e) => self.reply(
                        code::LOCAL_ERROR,
                        &format!("cannot hash {}: {e}", protocol::shown(&name)),
                    ),
                }
            }
            Command::CheckAll => self.checkall(),
            Command::Download {
                transport,
                name,
                offset,
            } => {
                let reply = self.download(transport, &name, offset);
                self.data_used = Instant::now();
                reply
            }
            Command::Upload { name, size, md5 } => {
                let reply = self.upload(&name, size, md5);
                self.data_used = Instant::now();
                reply
            }
            // Rows are read from the file as they are written: a large
            // history costs no table in memory.
            Command::History(n) => match self.shared.history.rows(n) {
                Ok(rows) => {
                    write_table(&mut self.out, HISTORY_HEADER, rows, "requests")?;
                    Ok(code::TABLE)
                }
                Err(e) => self.reply(code::LOCAL_ERROR, &format!("cannot read the history: {e}")),
            },
            Command::Help(None) => {
                let mut lines: Vec<String> = protocol::USAGE
                    .iter()
                    .map(|(_, usage, what)| format!("{usage}  -- {what}"))
                    .collect();
                lines.insert(
                    0,
                    "commands (case-insensitive; quote names with spaces):".into(),
                );
                lines.push("end of help".into());
                write_multi(&mut self.out, code::HELP, &lines)?;
                Ok(code::HELP)
            }
            Command::Help(Some(verb)) => match protocol::usage_of(&verb) {
                Some(usage) => self.reply(code::HELP, &format!("usage: {usage}")),
                None => self.reply(
                    code::BAD_ARGS,
                    &format!(
                        "unknown command '{}'; HELP lists commands",
                        protocol::shown(&verb)
                    ),
                ),
            },
            Command::Noop => self.reply(code::OK, "ok"),
            Command::Auth(given) => self.auth(&given),
            Command::Quit => self.reply(code::BYE, "bye"),
        }
    }

    fn reply(&mut self, code: u16, text: &str) -> io::Result<u16> {
        write_reply(&mut self.out, code, text)?;
        Ok(code)
    }

    fn share_error(&mut self, name: &str, e: ShareError) -> io::Result<u16> {
        match e {
            ShareError::NotShared => self.reply(
                code::NOT_FOUND,
                &format!("no such file or not shared: {}", protocol::shown(name)),
            ),
            ShareError::Io(e) => self.reply(
                code::LOCAL_ERROR,
                &format!("cannot open {}: {}", protocol::shown(name), e.kind()),
            ),
        }
    }

    fn list<'e>(&mut self, rows: impl Iterator<Item = (&'e String, &'e Entry)>) -> io::Result<u16> {
        let rows = rows.map(|(name, e)| {
            vec![
                name.clone(),
                e.size.to_string(),
                timefmt::format(e.mtime),
                e.mime.to_string(),
            ]
        });
        write_table(&mut self.out, LIST_HEADER, rows, "files")?;
        Ok(code::TABLE)
    }

    fn checkall(&mut self) -> io::Result<u16> {
        let share = self.shared.share.clone();
        let snap = share.snapshot();
        let cached = share.cached_md5s(snap.all().map(|(_, e)| &e.key));
        // Rows are made as they are written, so a large share costs no
        // table in memory.
        let rows = snap.all().zip(cached).filter_map(|((name, e), md5)| {
            let (d, mtime) = match md5 {
                Some(d) => (d, e.mtime),
                // Not hashed yet: hash it now. A file that vanished or
                // cannot be read since the scan is left out.
                None => {
                    let f = share.open_file(name).ok()?;
                    (share.md5_of(&f).ok()?, f.mtime)
                }
            };
            Some([name.clone(), d.to_string(), timefmt::format(mtime)])
        });
        write_table(&mut self.out, HASH_HEADER, rows, "files")?;
        Ok(code::TABLE)
    }

    /// How long a transfer waits for its data connection: `data_wait`, but
    /// no longer than what is left of the idle timeout, counted from the
    /// last bytes the client sent. Waiting for a connection that never
    /// comes is idle time, so pipelined requests cannot stretch a session
    /// past its idle timeout.
    fn data_wait(&self) -> Duration {
        self.shared
            .config
            .data_wait
            .min(self.reader.get_ref().idle_left())
    }

    /// The 425 reply when no data connection came within `waited`.
    fn no_data(&mut self, port: u16, waited: Duration) -> io::Result<u16> {
        let within = self.waited_text(waited);
        self.reply(
            code::NO_DATA,
            &format!("no data connection {within}: connect to port {port} and send the token line"),
        )
    }

    /// `within 30s`, or `before the idle timeout` when the idle timeout cut
    /// the wait short.
    fn waited_text(&self, waited: Duration) -> String {
        let full = self.shared.config.data_wait;
        if waited < full {
            "before the idle timeout".to_string()
        } else {
            format!("within {}", humantime::format_duration(full))
        }
    }

    /// Closes the data channels when no transfer has needed them for
    /// `data_idle` (when set), so that an idle session holds no data port;
    /// else has the reader wake when that time comes.
    fn release_idle_data(&mut self) {
        let open = self.tcp_data.is_some() || self.udp_data.is_some();
        let due = match self.shared.config.data_idle {
            Some(idle) if open => self.data_used.checked_add(idle),
            _ => None,
        };
        match due {
            Some(at) if Instant::now() >= at => {
                self.tcp_data = None;
                self.tcp_claim = None;
                self.udp_data = None;
                self.udp_claim = None;
                self.reader.get_mut().wake_at = None;
            }
            due => self.reader.get_mut().wake_at = due,
        }
    }

    /// The session's TCP data channel (opened on first use), as the
    /// `150 DATA` line names it.
    fn tcp_data_line(&mut self) -> io::Result<DataLine> {
        if self.tcp_data.is_none() {
            let claim = self
                .shared
                .claim_port(self.peer.ip(), PortKind::Tcp)
                .map_err(io::Error::other)?;
            self.tcp_data = Some(DataChannel::open(
                self.local.ip(),
                self.peer.ip(),
                self.shared.config.data_ports,
            )?);
            self.tcp_claim = claim;
            self.data_used = Instant::now();
        }
        let Some(data) = self.tcp_data.as_ref() else {
            return Err(io::Error::other("no data channel"));
        };
        Ok(DataLine {
            transport: Transport::Tcp,
            port: data.port(),
            token: data.token().to_string(),
        })
    }

    /// `FileUpload`: receives `size` bytes into a hidden temporary file and
    /// stores it under `name` only when the md5 matches and no other file
    /// is in the way.
    fn upload(&mut self, name: &str, size: u64, want: Md5) -> io::Result<u16> {
        if !self.shared.config.allow_upload {
            return self.reply(code::NOT_FOUND, "uploads are disabled on this peer");
        }
        let shown = protocol::shown(name).to_string();
        let share = self.shared.share.clone();
        match share.open_file(name) {
            Ok(f) => {
                return match share.md5_of(&f) {
                    Ok(d) if d == want => self.placed(&shown, Placed::Same),
                    Ok(_) => self.placed(&shown, Placed::Exists),
                    Err(e) => self.reply(code::LOCAL_ERROR, &format!("cannot hash {shown}: {e}")),
                };
            }
            Err(ShareError::NotShared) => {}
            Err(ShareError::Io(e)) => {
                return self.reply(
                    code::LOCAL_ERROR,
                    &format!("cannot check {shown}: {}", e.kind()),
                )
            }
        }
        let data_line = match self.tcp_data_line() {
            Ok(d) => d,
            Err(e) => return self.reply(code::NO_DATA, &format!("cannot open a data port: {e}")),
        };
        let incoming = match share.begin_upload(name, &token::new()) {
            Ok(i) => i,
            Err(ShareError::NotShared) => {
                return self.reply(
                    code::NAME_NOT_ALLOWED,
                    &format!("name not allowed: {shown}"),
                )
            }
            Err(ShareError::Io(e)) => {
                return self.reply(code::LOCAL_ERROR, &format!("cannot store {shown}: {e}"))
            }
        };
        write_reply(&mut self.out, code::DATA, &protocol::data_line(&data_line))?;
        self.out.flush()?;
        let wait = self.data_wait();
        let data_timeout = self.shared.config.data_timeout;
        let Some(data) = self.tcp_data.as_mut() else {
            return self.reply(code::NO_DATA, "no data channel");
        };
        let outcome = match incoming.file() {
            // Nothing to receive: no data connection is needed.
            Ok(_) if size == 0 => Some(tcp::ReceiveOutcome::Received(Md5::of([]))),
            Ok(f) => {
                let mut out = io::BufWriter::with_capacity(256 * 1024, f);
                data.receive(wait, data_timeout, size, &mut out)
            }
            Err(e) => {
                data.drop_connection();
                Some(tcp::ReceiveOutcome::WriteFailed(e))
            }
        };
        let Some(outcome) = outcome else {
            return self.no_data(data_line.port, wait);
        };
        self.reader.get_mut().touch();
        match outcome {
            tcp::ReceiveOutcome::Received(got) if got == want => match incoming.place(&want) {
                Ok(placed) => self.placed(&shown, placed),
                Err(e) => self.reply(code::LOCAL_ERROR, &format!("cannot store {shown}: {e}")),
            },
            tcp::ReceiveOutcome::Received(got) => self.reply(
                code::NOT_FOUND,
                &format!(
                    "md5 mismatch: received {}, announced {}; nothing stored",
                    got, want
                ),
            ),
            tcp::ReceiveOutcome::Broken(n, e) => self.reply(
                code::ABORTED,
                &format!("data connection broken after {n} of {size} bytes ({e}); nothing stored"),
            ),
            tcp::ReceiveOutcome::WriteFailed(e) => self.reply(
                code::LOCAL_ERROR,
                &format!("cannot store {shown}: {e}; nothing stored"),
            ),
        }
    }

    /// The final reply of an upload by where it ended up.
    fn placed(&mut self, shown: &str, placed: Placed) -> io::Result<u16> {
        match placed {
            Placed::Stored => self.reply(code::COMPLETE, &format!("stored {shown}")),
            Placed::Same => self.reply(
                code::COMPLETE,
                &format!("stored {shown} (same content already here)"),
            ),
            Placed::Exists => self.reply(
                code::NAME_NOT_ALLOWED,
                &format!("{shown} exists with other content; nothing was overwritten"),
            ),
        }
    }

    fn download(&mut self, transport: Transport, name: &str, offset: u64) -> io::Result<u16> {
        let share = self.shared.share.clone();
        let shown = protocol::shown(name);
        let f: OpenedFile = match share.open_file(name) {
            Ok(f) => f,
            Err(e) => return self.share_error(name, e),
        };
        if offset > f.size() {
            return self.reply(
                code::BAD_ARGS,
                &format!(
                    "offset {offset} is past the end of {shown} ({} bytes)",
                    f.size()
                ),
            );
        }
        let md5 = match share.md5_of(&f) {
            Ok(d) => d,
            Err(e) => return self.reply(code::LOCAL_ERROR, &format!("cannot hash {shown}: {e}")),
        };
        if transport == Transport::Udp {
            return self.download_udp(name, &f, offset, &md5.to_string());
        }
        let data_line = match self.tcp_data_line() {
            Ok(d) => d,
            Err(e) => return self.reply(code::NO_DATA, &format!("cannot open a data port: {e}")),
        };
        self.write_download_150(name, &f, &md5.to_string(), &data_line)?;
        if offset == f.size() {
            // Nothing to send: no data connection is needed, and the client
            // need not open one.
            return match f.changed() {
                Ok(false) => self.reply(
                    code::COMPLETE,
                    &format!("{shown} {} bytes md5={}", f.size(), md5),
                ),
                Ok(true) => self.reply(
                    code::LOCAL_ERROR,
                    &format!("{shown} changed while it was being sent; try again"),
                ),
                Err(e) => self.reply(code::LOCAL_ERROR, &format!("cannot read {shown}: {e}")),
            };
        }
        let wait = self.data_wait();
        let data_timeout = self.shared.config.data_timeout;
        let Some(data) = self.tcp_data.as_mut() else {
            return self.reply(code::NO_DATA, "no data channel");
        };
        let outcome = match data.connection(wait) {
            None => SendOutcome::NoReceiver,
            Some(conn) => {
                let _ = conn.set_write_timeout(Some(data_timeout));
                let outcome = tcp::send_file(conn, &f, offset);
                if !matches!(outcome, SendOutcome::Sent(_)) {
                    data.drop_connection();
                }
                outcome
            }
        };
        let md5 = md5.to_string();
        self.sent(
            Transport::Tcp,
            name,
            f.size(),
            &md5,
            data_line.port,
            wait,
            outcome,
        )
    }

    /// Writes the two-line 150 of a download (the file's row, then the data
    /// channel) and flushes it: the client must see it before the bytes
    /// can flow.
    fn write_download_150(
        &mut self,
        name: &str,
        f: &OpenedFile,
        md5: &str,
        data_line: &DataLine,
    ) -> io::Result<()> {
        let row = [
            name.to_string(),
            f.size().to_string(),
            timefmt::format(f.mtime),
            md5.to_string(),
        ]
        .map(|s| protocol::escape_field(&s))
        .join("\t");
        write_multi(
            &mut self.out,
            code::DATA,
            &[row, protocol::data_line(data_line)],
        )?;
        self.out.flush()
    }

    /// The UDP path of `download`: the session's UDP channel (opened on
    /// first use), the same two-line 150, then 226 / 425 / 426 / 451.
    fn download_udp(
        &mut self,
        name: &str,
        f: &OpenedFile,
        offset: u64,
        md5: &str,
    ) -> io::Result<u16> {
        if self.udp_data.is_none() {
            let opened = self
                .shared
                .claim_port(self.peer.ip(), PortKind::Udp)
                .map_err(io::Error::other)
                .and_then(|claim| {
                    let c = UdpChannel::open(
                        self.local.ip(),
                        self.peer.ip(),
                        self.shared.config.data_ports,
                    )?;
                    Ok((c, claim))
                });
            match opened {
                Ok((c, claim)) => {
                    self.udp_data = Some(c);
                    self.udp_claim = claim;
                    self.data_used = Instant::now();
                }
                Err(e) => {
                    return self.reply(code::NO_DATA, &format!("cannot open a UDP data port: {e}"))
                }
            }
        }
        let Some(data_line) = self.udp_data.as_ref().map(|d| DataLine {
            transport: Transport::Udp,
            port: d.port(),
            token: d.token().to_string(),
        }) else {
            return self.reply(code::NO_DATA, "no data channel");
        };
        self.write_download_150(name, f, md5, &data_line)?;
        let limits = SendLimits {
            wait: self.data_wait(),
            silence: self.shared.config.udp_silence,
            stall: self.shared.config.data_timeout,
        };
        let Some(data) = self.udp_data.as_mut() else {
            return self.reply(code::NO_DATA, "no data channel");
        };
        let outcome = data.send(f, offset, &limits);
        self.sent(
            Transport::Udp,
            name,
            f.size(),
            md5,
            data_line.port,
            limits.wait,
            outcome,
        )
    }

    /// The final reply of a download by how its send ended.
    #[allow(clippy::too_many_arguments)]
    fn sent(
        &mut self,
        transport: Transport,
        name: &str,
        size: u64,
        md5: &str,
        port: u16,
        wait: Duration,
        outcome: SendOutcome,
    ) -> io::Result<u16> {
        let shown = protocol::shown(name);
        if !matches!(outcome, SendOutcome::NoReceiver) {
            self.reader.get_mut().touch();
        }
        match (outcome, transport) {
            (SendOutcome::Sent(_), _) => {
                self.reply(code::COMPLETE, &format!("{shown} {size} bytes md5={md5}"))
            }
            (SendOutcome::NoReceiver, Transport::Tcp) => self.no_data(port, wait),
            (SendOutcome::NoReceiver, Transport::Udp) => {
                let within = self.waited_text(wait);
                self.reply(
                    code::NO_DATA,
                    &format!(
                        "no datagram from the receiver {within}: send the HELLO to UDP port {port}"
                    ),
                )
            }
            (SendOutcome::Silent(d), _) => self.reply(
                code::ABORTED,
                &format!(
                    "transfer aborted: the receiver was silent for {}",
                    humantime::format_duration(d)
                ),
            ),
            (SendOutcome::Stalled(d), _) => self.reply(
                code::ABORTED,
                &format!(
                    "transfer aborted: the receiver got no further for {}",
                    humantime::format_duration(d)
                ),
            ),
            (SendOutcome::Changed, _) => self.reply(
                code::LOCAL_ERROR,
                &format!("{shown} changed while it was being sent; try again"),
            ),
            (SendOutcome::ReadFailed(e), _) => {
                self.reply(code::LOCAL_ERROR, &format!("cannot read {shown}: {e}"))
            }
            (SendOutcome::Broken(e), Transport::Tcp) => {
                self.reply(code::ABORTED, &format!("data connection broken: {e}"))
            }
            (SendOutcome::Broken(e), Transport::Udp) => {
                self.reply(code::ABORTED, &format!("UDP data channel failed: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_bounds_lines() {
        let long = "x".repeat(100);
        let input = format!("short\r\n{long}\nok\nlast");
        let mut r = io::BufReader::with_capacity(16, input.as_bytes());
        let mut got = Vec::new();
        loop {
            match read_line_capped(&mut r, 10).unwrap() {
                LineRead::Eof => break,
                other => got.push(other),
            }
        }
        assert_eq!(
            got,
            vec![
                LineRead::Line(b"short".to_vec()),
                LineRead::TooLong,
                LineRead::Line(b"ok".to_vec()),
                LineRead::Line(b"last".to_vec()),
            ]
        );
    }

    /// Gives its chunks one read at a time, with a timeout between them.
    struct Stuttering(Vec<&'static [u8]>);

    impl Read for Stuttering {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.first_mut() {
                None => Ok(0),
                Some([]) => {
                    self.0.remove(0);
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Some(c) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    *c = &c[n..];
                    if c.is_empty() {
                        self.0.remove(0);
                    }
                    Ok(n)
                }
            }
        }
    }

    #[test]
    fn a_line_cut_by_a_timeout_goes_on_in_the_next_call() {
        let input = Stuttering(vec![
            b"NO",
            b"",
            b"OP\nHEL",
            b"",
            b"P\n",
            b"",
            b"xxxxxxxxxxxxxxxxxxxx",
            b"",
            b"\nlast",
        ]);
        let mut r = BufReader::with_capacity(4, input);
        let mut lines = LineReader::default();
        let mut got = Vec::new();
        loop {
            match lines.read(&mut r, 10) {
                Ok(LineRead::Eof) => break,
                Ok(l) => got.push(l),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(
            got,
            vec![
                LineRead::Line(b"NOOP".to_vec()),
                LineRead::Line(b"HELP".to_vec()),
                LineRead::TooLong,
                LineRead::Line(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn capped_reader_takes_exactly_the_cap() {
        let input = format!("{}\n{}\n", "a".repeat(10), "b".repeat(11));
        let mut r = io::BufReader::with_capacity(4, input.as_bytes());
        assert_eq!(
            read_line_capped(&mut r, 10).unwrap(),
            LineRead::Line(b"a".repeat(10))
        );
        assert_eq!(read_line_capped(&mut r, 10).unwrap(), LineRead::TooLong);
    }
}
