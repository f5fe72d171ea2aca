//! One control connection: the request loop, the AUTH gate, dispatch of
//! each request to the handler that makes its reply, and a history row for
//! every request.

use std::cell::Cell;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::ftp::{FtpState, LineEnds};
use super::limits::RowVerdict;
use super::transfers::Transfers;
use super::{listing, Shared};
use crate::history::Direction;
use crate::protocol::ftp_command::is_ftp_line;
use crate::protocol::{code, Command, Dialect, Parsed, Reply, Requests, Spec};
use crate::stop::Stop;
use crate::transfer::token;

/// Wrong AUTH tries before the connection is closed.
const MAX_WRONG_SECRETS: u8 = 3;

/// The reading side of a control connection, as the session needs it
/// beyond its bytes: the idle deadline, and an earlier wake-up.
pub(super) trait Control: Read {
    /// When the session times out if the client sends nothing more; None
    /// when too far to name.
    fn idle_deadline(&self) -> Option<Instant>;

    /// Counts now as activity (a transfer that just ended).
    fn touch(&mut self);

    /// Also ends a read by `at` (to release idle data channels).
    fn wake_at(&mut self, at: Option<Instant>);

    /// True when the client closed the connection (its end of stream is
    /// waiting to be read, or comes within `grace`), or it failed.
    /// Nothing is read.
    fn hung_up(&self, _grace: Duration) -> bool {
        false
    }

    /// How long until the idle deadline (zero once it passed).
    fn idle_left(&self) -> Duration {
        self.idle_deadline().map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    }
}

/// How late a read timeout already set may fire and still be kept, to save
/// setting it again before every read.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// How long the session's replies waited for the client to read them
/// since it last caught up: the time spent in writes to the control
/// connection that had to wait for room, summed. It starts again from zero
/// when the session goes to read a request and finds none waiting (the
/// client has read what it asked for and sent nothing since).
#[derive(Clone, Default)]
struct Unread(Rc<Cell<Duration>>);

/// A write that returns in less than this took what was given at once.
const WAITED: Duration = Duration::from_millis(1);

/// The control connection as the session writes it: a client whose
/// replies wait unread for `limit` in all, since it last caught up, is
/// cut off (the write fails, and the session ends), however little it
/// reads now and then.
struct Output<'a> {
    conn: &'a TcpStream,
    limit: Duration,
    unread: Unread,
    /// The write timeout set on the socket now.
    armed: Option<Duration>,
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.limit.saturating_sub(self.unread.0.get());
        if left < WAITED {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client has not read its replies for the data timeout",
            ));
        }
        if self
            .armed
            .is_none_or(|a| a > left || left - a > TIMEOUT_SLACK)
        {
            self.conn.set_write_timeout(Some(left))?;
            self.armed = Some(left);
        }
        let began = Instant::now();
        let written = (&*self.conn).write(buf);
        let took = began.elapsed();
        if took >= WAITED {
            self.unread.0.set(self.unread.0.get().saturating_add(took));
        }
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The control connection as the session reads it: it remembers when the
/// client last sent a byte, and sets each read's timeout so that the read
/// ends at the idle deadline counted from then.
struct Input<'a> {
    conn: &'a TcpStream,
    /// Cleared when a read finds nothing waiting.
    unread: Unread,
    idle: Duration,
    /// When the client last sent bytes, or a transfer last ended.
    active: Instant,
    /// Also end a read by then (to release idle data channels).
    wake_at: Option<Instant>,
    /// The read timeout set on the socket now.
    armed: Option<Duration>,
}

impl<'a> Input<'a> {
    fn new(conn: &'a TcpStream, idle: Duration, unread: Unread) -> Input<'a> {
        Input {
            conn,
            unread,
            idle,
            active: Instant::now(),
            wake_at: None,
            armed: None,
        }
    }
}

impl Control for Input<'_> {
    fn idle_deadline(&self) -> Option<Instant> {
        self.active.checked_add(self.idle)
    }

    fn touch(&mut self) {
        self.active = Instant::now();
    }

    fn wake_at(&mut self, at: Option<Instant>) {
        self.wake_at = at;
    }

    fn hung_up(&self, grace: Duration) -> bool {
        let before = self.conn.read_timeout().ok().flatten();
        if self.conn.set_read_timeout(Some(grace)).is_err() {
            return false;
        }
        let peeked = self.conn.peek(&mut [0u8; 1]);
        let _ = self.conn.set_read_timeout(before);
        match peeked {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ),
        }
    }
}

impl Input<'_> {
    /// A read that returns at once: Some(what it got) when the client had
    /// sent something, None when nothing was waiting.
    fn read_waiting(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.conn.set_nonblocking(true)?;
        let got = (&*self.conn).read(buf);
        self.conn.set_nonblocking(false)?;
        match got {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.unread.0.get().is_zero() {
            match self.read_waiting(buf)? {
                Some(n) => {
                    if n > 0 {
                        self.active = Instant::now();
                    }
                    return Ok(n);
                }
                // Nothing more asked: the client has caught up.
                None => self.unread.0.set(Duration::ZERO),
            }
        }
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

/// One session: its requests, its replies, its data channels.
pub(super) struct Session<'a, C: Control, W: Write> {
    pub(super) shared: &'a Shared,
    pub(super) stop: &'a Stop,
    pub(super) requests: Requests<BufReader<C>>,
    pub(super) out: BufWriter<LineEnds<W>>,
    pub(super) peer: SocketAddr,
    /// The address the client reached (where data listeners bind).
    pub(super) local: IpAddr,
    pub(super) transfers: Transfers<'a>,
    /// What the FTP verbs keep: folder, REST offset, passive listener.
    pub(super) ftp: FtpState<'a>,
    /// True once AUTH succeeded, or from the start when no secret is set.
    pub(super) authed: bool,
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
    // Reader and writer share the one control socket (`&TcpStream` reads
    // and writes): no duplicated descriptor.
    let unread = Unread::default();
    let input = Input::new(conn, shared.config.idle_timeout, unread.clone());
    let output = Output {
        conn,
        limit: shared.config.data_timeout,
        unread,
        armed: None,
    };
    serve(shared, stop, input, output, peer, local);
}

/// Runs a session over `input` and `output` (a control connection, or
/// streams in memory in a test) until the peer quits or leaves.
fn serve<C: Control, W: Write>(
    shared: &Shared,
    stop: &Stop,
    input: C,
    output: W,
    peer: SocketAddr,
    local: SocketAddr,
) -> BufWriter<LineEnds<W>> {
    let mut s = Session {
        shared,
        stop,
        requests: Requests::new(
            BufReader::with_capacity(8192, input),
            shared.config.max_line,
        ),
        out: BufWriter::with_capacity(
            64 * 1024,
            LineEnds {
                inner: output,
                crlf: false,
            },
        ),
        peer,
        local: local.ip(),
        transfers: Transfers::new(shared, local.ip(), peer.ip()),
        ftp: FtpState::default(),
        authed: shared.config.secret.is_none(),
        wrong_secrets: 0,
    };
    let _ = s.serve();
    if let Some((n, last_reply)) = shared.left_out_rows(peer.ip()) {
        s.record_left_out(n, last_reply);
    }
    s.out
}

impl<C: Control, W: Write> Session<'_, C, W> {
    fn serve(&mut self) -> io::Result<()> {
        // The greeting ends with CR LF, as FTP clients wait for; the
        // native replies after it keep their LF.
        self.out.get_mut().crlf = true;
        Reply::greeting(self.authed, Some(self.shared.share.id())).write_to(&mut self.out)?;
        self.out.flush()?;
        self.out.get_mut().crlf = false;
        loop {
            let data_idle = self.shared.config.data_idle;
            let wake = match (
                self.transfers.release_idle(),
                self.ftp.release_idle(data_idle),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.input().wake_at(wake);
            let next = match self.requests.next() {
                Some(Ok(next)) => next,
                Some(Err(e)) if is_timeout(&e) => {
                    if !self.requests.get_ref().get_ref().idle_left().is_zero() {
                        continue;
                    }
                    let _ = Reply::idle_timeout().write_to(&mut self.out);
                    let _ = self.out.flush();
                    return Ok(());
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // A stopping server shuts the reading side of every
                    // session: this end of stream is that, not the client.
                    if self.stop.is_set() {
                        Reply::shutting_down().write_to(&mut self.out)?;
                    }
                    return self.out.flush();
                }
            };
            let (line, reply, quit) = match next {
                Ok(request) => {
                    let reply = self.respond(request.spec, request.command)?;
                    let quit = reply == code::BYE || self.wrong_secrets >= MAX_WRONG_SECRETS;
                    (request.line, reply, quit)
                }
                Err(refusal) => {
                    if is_ftp_line(&refusal.line) {
                        self.speak_ftp()?;
                    }
                    (refusal.line, self.send(refusal.reply)?, false)
                }
            };
            self.record(&line, reply);
            // Flush only when a further whole request is already waiting,
            // so a pipelining client gets its replies in few packets; a
            // line still being typed is no reason to hold a reply back.
            if quit || !self.requests.get_ref().buffer().contains(&b'\n') {
                self.out.flush()?;
            }
            if quit {
                return Ok(());
            }
        }
    }

    pub(super) fn input(&mut self) -> &mut C {
        self.requests.get_mut().get_mut()
    }

    /// Writes a reply; returns its code for the history.
    fn send(&mut self, reply: Reply<'_>) -> io::Result<u16> {
        let code = reply.code();
        reply.write_to(&mut self.out)?;
        Ok(code)
    }

    /// Runs one command (530 to what needs authentication before AUTH
    /// succeeded), writes its reply, and returns the final reply code for
    /// the history.
    fn respond(&mut self, spec: &Spec, command: Parsed) -> io::Result<u16> {
        if spec.needs_auth && !self.authed {
            return match spec.dialect {
                Dialect::Ftp => self.send(Reply::ftp_login_required()),
                Dialect::P2pshare => self.send(Reply::auth_required()),
            };
        }
        let command = match command {
            Parsed::Native(command) => command,
            Parsed::Ftp(ftp) => {
                let reply = self.ftp(ftp)?;
                return self.send(reply);
            }
        };
        let shared = self.shared;
        let share = &*shared.share;
        // The tables borrow the snapshot they are written from.
        let snapshot;
        let reply = match command {
            Command::LongList => {
                snapshot = share.snapshot();
                listing::files(snapshot.all())
            }
            Command::ShortList { start, end } => {
                snapshot = share.snapshot();
                listing::files(snapshot.modified_between(start, end))
            }
            Command::Glob(pattern) => {
                snapshot = share.snapshot();
                listing::matching(&snapshot, &pattern)
            }
            Command::Verify(name) => listing::verify(share, &name),
            Command::CheckAll => {
                snapshot = share.snapshot();
                listing::checkall(share, &snapshot)
            }
            Command::History(n, filter) => listing::history(&shared.history, n, &filter),
            Command::Help(topic) => Reply::help(topic),
            Command::Noop => Reply::ok(),
            Command::Auth(given) => self.auth(&given)?,
            Command::Quit => Reply::bye(),
            Command::Download {
                transport,
                name,
                offset,
            } => {
                self.ftp.drop_passive();
                let deadline = self.requests.get_ref().get_ref().idle_deadline();
                let out = &mut self.out;
                let done =
                    self.transfers
                        .download(transport, &name, offset, deadline, &mut |r| {
                            announce(out, r)
                        })?;
                self.transferred(done.active);
                done.reply
            }
            Command::Upload { name, size, md5 } => {
                self.ftp.drop_passive();
                let deadline = self.requests.get_ref().get_ref().idle_deadline();
                let out = &mut self.out;
                let done = self
                    .transfers
                    .upload(&name, size, md5, deadline, &mut |r| announce(out, r))?;
                self.transferred(done.active);
                done.reply
            }
        };
        self.send(reply)
    }

    /// The time a transfer the client took part in took is not its idle
    /// time.
    fn transferred(&mut self, active: bool) {
        if active {
            self.input().touch();
        }
    }

    pub(super) fn auth(&mut self, given: &str) -> io::Result<Reply<'static>> {
        let Some(secret) = self.shared.config.secret.as_deref() else {
            return Ok(Reply::no_secret_needed());
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
        self.input().touch();
        if right {
            self.authed = true;
            self.wrong_secrets = 0;
            return Ok(Reply::authenticated());
        }
        self.wrong_secrets += 1;
        Ok(Reply::wrong_secret(self.wrong_secrets, MAX_WRONG_SECRETS))
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
            &self.shared.key(self.peer.ip()).to_string(),
            &format!(
                "({n} more refused or unauthenticated requests from this address not recorded: \
                 over {} rows at once or {} a second)",
                super::ROW_BURST,
                super::ROWS_PER_SECOND
            ),
            last_reply,
        );
    }
}

/// Writes a preliminary reply and flushes it: the client must see it
/// before the bytes can flow.
fn announce<W: Write>(out: &mut BufWriter<W>, reply: Reply<'_>) -> io::Result<()> {
    reply.write_to(out)?;
    out.flush()
}

/// Errors that only mean a read timed out.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::server::Config;
    use crate::share::state::StateChoice;
    use crate::share::Share;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// A client's side in memory: these bytes, then the end of the stream
    /// (or, when `idle`, a read timeout past the idle deadline).
    struct Script {
        bytes: io::Cursor<Vec<u8>>,
        idle: bool,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.bytes.read(buf)? {
                0 if self.idle => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    impl Control for Script {
        fn idle_deadline(&self) -> Option<Instant> {
            self.idle.then(Instant::now)
        }

        fn touch(&mut self) {}

        fn wake_at(&mut self, _: Option<Instant>) {}
    }

    struct Folder(PathBuf);

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A shared folder holding `a.txt` ("hello"), and what sessions share.
    fn shared(tag: &str, config: Config) -> (Folder, Shared) {
        let dir =
            std::env::temp_dir().join(format!("p2pshare-session-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "hello").unwrap();
        let share = Share::open(&dir, &StateChoice::default()).unwrap();
        let history = Arc::new(History::of_share(&share.state_dir()));
        let shared = Shared::new(config, Arc::new(share), history, 1);
        (Folder(dir), shared)
    }

    /// What the session wrote for `input`, after the greeting.
    fn transcript(shared: &Shared, stop: &Stop, input: &[u8], idle: bool) -> String {
        let script = Script {
            bytes: io::Cursor::new(input.to_vec()),
            idle,
        };
        let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let out = serve(shared, stop, script, Vec::new(), addr, addr);
        let text = String::from_utf8(out.into_inner().unwrap().inner).unwrap();
        let (greeting, rest) = text.split_once("\r\n").unwrap();
        assert!(greeting.starts_with("220 p2pshare "), "{greeting}");
        assert!(!greeting.contains('\n'), "{greeting}");
        rest.to_string()
    }

    #[test]
    fn a_session_answers_each_line_in_order() {
        let (_dir, shared) = shared("order", Config::default());
        let long = "x".repeat(shared.config.max_line + 1);
        let input = format!(
            "NOOP\r\n\n  \t\nfrob\nHELP frob\nhelp history\n{long}\nNOOP now\n\
             FileDownload missing.txt\nFileDownload a.txt 9\n\
             FileUpload b.txt 5 5d41402abc4b2a76b9719d911017c592\nQUIT\nNOOP\n"
        );
        let mut input = input.into_bytes();
        input.splice(6..6, b"\xff\n".iter().copied());
        let got = transcript(&shared, &Stop::new(), &input, false);
        assert_eq!(
            got,
            "200 ok\n\
             500 invalid UTF-8 in request\n\
             500 unknown command 'frob'; HELP lists commands\n\
             501 unknown command 'frob'; HELP lists commands\n\
             214 usage: History [<n>] [--only <verb>] [--no-poll]\n\
             500 line too long (the limit is 4096 bytes)\n\
             501 usage: NOOP\n\
             550 no such file or not shared: missing.txt\n\
             501 offset 9 is past the end of a.txt (5 bytes)\n\
             550 uploads are disabled on this peer\n\
             221 bye\n"
        );
        let requests: Vec<String> = shared
            .history
            .last(20)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r[4], r[3]))
            .collect();
        assert_eq!(requests[0], "200 NOOP");
        assert_eq!(requests[1], "500 \u{fffd}");
        assert_eq!(requests[5], "500 (line too long)");
        assert_eq!(requests.last().unwrap(), "221 QUIT");
    }

    #[test]
    fn tables_come_from_the_share() {
        let (dir, shared) = shared("tables", Config::default());
        let mtime = std::fs::metadata(dir.0.join("a.txt"))
            .unwrap()
            .modified()
            .unwrap();
        let ts = crate::timefmt::format(mtime);
        let got = transcript(
            &shared,
            &Stop::new(),
            b"IndexGet longlist\nFileHash verify a.txt\nFileHash checkall\nIndexGet regex *.md\n",
            false,
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "213-name\tsize\ttimestamp\ttype");
        assert!(
            lines[1].starts_with(&format!("213-a.txt\t5\t{ts}\t")),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "213 1 files");
        let hash_table = format!(
            "213-name\tmd5\ttimestamp\n\
             213-a.txt\t5d41402abc4b2a76b9719d911017c592\t{ts}\n\
             213 1 files\n"
        );
        let rest = lines[3..].join("\n") + "\n";
        assert_eq!(
            rest,
            format!("{hash_table}{hash_table}213-name\tsize\ttimestamp\ttype\n213 0 files\n")
        );
    }

    #[test]
    fn nothing_but_help_noop_auth_and_quit_before_auth() {
        let config = Config {
            secret: Some("s3cret".into()),
            auth_delay: Duration::ZERO,
            ..Config::default()
        };
        let (_dir, shared) = shared("auth", config);
        let got = transcript(
            &shared,
            &Stop::new(),
            b"IndexGet longlist\nAUTH wrong\nNOOP\nHELP AUTH\nAUTH s3cret\nHistory 2\nQUIT\n",
            false,
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "530 authentication required: send AUTH <secret> first",
                "530 wrong secret (1 of 3 tries)",
                "200 ok",
                "214 usage: AUTH <secret>",
                "230 authenticated",
            ]
        );
        assert_eq!(lines[5], "213-time\tdirection\tpeer\trequest\treply");
        assert!(lines[6].ends_with("\tin\t127.0.0.1:40000\tHELP AUTH\t214"));
        assert!(lines[7].ends_with("\tin\t127.0.0.1:40000\tAUTH ***\t230"));
        assert_eq!(lines[8..], ["213 2 requests", "221 bye"]);

        let got = transcript(
            &shared,
            &Stop::new(),
            b"AUTH a\nAUTH b\nAUTH c\nNOOP\n",
            false,
        );
        assert_eq!(
            got,
            "530 wrong secret (1 of 3 tries)\n\
             530 wrong secret (2 of 3 tries)\n\
             530 wrong secret; closing the connection\n"
        );
    }

    #[test]
    fn the_session_ends_with_421_when_idle_or_stopping() {
        let (_dir, shared) = shared("end", Config::default());
        let got = transcript(&shared, &Stop::new(), b"NOOP\n", true);
        assert_eq!(got, "200 ok\n421 idle timeout\n");
        let stop = Stop::new();
        stop.set();
        assert_eq!(
            transcript(&shared, &stop, b"NOOP\n", false),
            "200 ok\n421 shutting down\n"
        );
        assert_eq!(
            transcript(&shared, &Stop::new(), b"NOOP", false),
            "200 ok\n"
        );
    }
}
