//! The session core: what every dialect of a control connection shares,
//! whichever front end parses its requests and writes its replies. The
//! control connection's two sides (the idle deadline on reading, the
//! unread-replies limit on writing), the session's state, the AUTH gate
//! and the history rows, and the native data transfers as handlers that
//! return their final reply. Its state is private to this file: the
//! native front end (`native.rs`) and FTP's (`ftp.rs`, `ftp_upload.rs`,
//! over `ftp_state.rs`) use its methods, and it imports neither. The
//! connection's loop (`session.rs`) hands each request to one of them.
//! Below the two sides lies a [`Wire`]: a TCP socket, or the standard
//! streams of `serve --stdio`.

use std::cell::Cell;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::limits::RowVerdict;
use super::line_ends::LineEnds;
use super::macs::Macs;
use super::transfers::Transfers;
use super::wire::Wire;
use super::{AuthMode, Shared};
use crate::digest::Md5;
use crate::history::Direction;
use crate::proof::{Mac, Nonce, Proofs};
use crate::protocol::{Dialect, Refusal, Reply, Request, Requests, Spec, Transport};
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

    /// While file bytes travel on the control stream itself (`Some`, the
    /// inline data mode of a stdio session): a read or a write fails only
    /// after `stall` without progress, as on a data connection, and its
    /// waits are neither idle time nor replies left unread. `None` ends
    /// that.
    fn transferring(&mut self, _stall: Option<Duration>) {}

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

/// Set while an inline transfer runs: how long a read or write of the
/// control stream may go without progress (see [`Control::transferring`]).
#[derive(Clone, Default)]
struct Stall(Rc<Cell<Option<Duration>>>);

/// A write that returns in less than this took what was given at once.
const WAITED: Duration = Duration::from_millis(1);

/// The control connection as the session writes it: a client whose
/// replies wait unread for `limit` in all, since it last caught up, is
/// cut off (the write fails, and the session ends), however little it
/// reads now and then.
pub(super) struct Output<'a, S: Wire + ?Sized> {
    conn: &'a S,
    limit: Duration,
    unread: Unread,
    stall: Stall,
    /// The write timeout set on the socket now.
    armed: Option<Duration>,
}

impl<S: Wire + ?Sized> Write for Output<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(stall) = self.stall.0.get() {
            if self.armed != Some(stall) {
                self.conn.set_write_timeout(Some(stall))?;
                self.armed = Some(stall);
            }
            return self.conn.send(buf);
        }
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
        let written = self.conn.send(buf);
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
pub(super) struct Input<'a, S: Wire + ?Sized> {
    conn: &'a S,
    /// Cleared when a read finds nothing waiting.
    unread: Unread,
    stall: Stall,
    idle: Duration,
    /// When the client last sent bytes, or a transfer last ended.
    active: Instant,
    /// Also end a read by then (to release idle data channels).
    wake_at: Option<Instant>,
    /// The read timeout set on the socket now.
    armed: Option<Duration>,
}

impl<'a, S: Wire + ?Sized> Input<'a, S> {
    fn new(conn: &'a S, idle: Duration, unread: Unread, stall: Stall) -> Input<'a, S> {
        Input {
            conn,
            unread,
            stall,
            idle,
            active: Instant::now(),
            wake_at: None,
            armed: None,
        }
    }
}

impl<S: Wire + ?Sized> Control for Input<'_, S> {
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
        // The wire's own read timeout is set again before the next read.
        self.conn.hung_up(grace)
    }

    fn transferring(&mut self, stall: Option<Duration>) {
        self.stall.0.set(stall);
    }
}

impl<S: Wire + ?Sized> Read for Input<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(stall) = self.stall.0.get() {
            return self.read_within(buf, Some(stall));
        }
        if !self.unread.0.get().is_zero() {
            match self.conn.receive_waiting(buf)? {
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
        self.read_within(buf, left)
    }
}

impl<S: Wire + ?Sized> Input<'_, S> {
    /// A read that waits up to `left` (None: without end) for bytes.
    fn read_within(&mut self, buf: &mut [u8], left: Option<Duration>) -> io::Result<usize> {
        let good_enough = match (self.armed, left) {
            (Some(a), Some(l)) => a >= l && a - l < TIMEOUT_SLACK,
            (a, l) => a == l,
        };
        if !good_enough {
            self.conn.set_read_timeout(left)?;
            self.armed = left;
        }
        let n = self.conn.receive(buf)?;
        if n > 0 {
            self.active = Instant::now();
        }
        Ok(n)
    }
}

/// The two sides of the control connection `conn` as a session reads and
/// writes them. Reader and writer share the one wire (a socket reads and
/// writes through `&TcpStream`): no duplicated descriptor.
pub(super) fn control_of<'a, S: Wire + ?Sized>(
    shared: &Shared,
    conn: &'a S,
) -> (Input<'a, S>, Output<'a, S>) {
    let unread = Unread::default();
    let stall = Stall::default();
    let input = Input::new(
        conn,
        shared.config.idle_timeout,
        unread.clone(),
        stall.clone(),
    );
    let output = Output {
        conn,
        limit: shared.config.data_timeout,
        unread,
        stall,
        armed: None,
    };
    (input, output)
}

/// One session: its requests, its replies, its data channels.
pub(super) struct Session<'a, C: Control, W: Write> {
    shared: &'a Shared,
    stop: &'a Stop,
    requests: Requests<BufReader<C>>,
    out: Macs<BufWriter<LineEnds<W>>>,
    peer: SocketAddr,
    /// The address the client reached (where data listeners bind).
    local: IpAddr,
    transfers: Transfers<'a>,
    /// True once AUTH succeeded, or from the start when no secret is set.
    authed: bool,
    wrong_secrets: u8,
    /// True for the one session of `serve --stdio`: its history rows name
    /// the peer `stdio`, and its file bytes travel inline.
    stdio: bool,
    /// Set when the control stream is out of step (an inline upload that
    /// broke midway): the session ends after the reply.
    closing: bool,
    /// The server's nonce of this connection, for `AUTH PROOF` (only
    /// with a secret).
    nonce: Option<Nonce>,
}

impl<'a, C: Control, W: Write> Session<'a, C, W> {
    /// A session over `input` and `output`, before its greeting.
    pub(super) fn new(
        shared: &'a Shared,
        stop: &'a Stop,
        input: C,
        output: W,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Session<'a, C, W> {
        Session {
            shared,
            stop,
            requests: Requests::new(
                BufReader::with_capacity(8192, input),
                shared.config.max_line,
            ),
            out: Macs::new(BufWriter::with_capacity(
                64 * 1024,
                LineEnds {
                    inner: output,
                    crlf: false,
                },
            )),
            peer,
            local: local.ip(),
            transfers: Transfers::new(shared, local.ip(), peer.ip()),
            authed: shared.config.secret.is_none(),
            wrong_secrets: 0,
            stdio: false,
            closing: false,
            nonce: None,
        }
    }

    /// The session of `serve --stdio` over `input` and `output`: no
    /// address, no data channels (its transfers go inline).
    pub(super) fn over_stdio(
        shared: &'a Shared,
        stop: &'a Stop,
        input: C,
        output: W,
    ) -> Session<'a, C, W> {
        let nowhere = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        let mut s = Session::new(shared, stop, input, output, nowhere, nowhere);
        s.stdio = true;
        s
    }

    /// True for the session of `serve --stdio`.
    pub(super) fn stdio(&self) -> bool {
        self.stdio
    }

    /// Ends the session after the reply being written (the control
    /// stream is out of step).
    pub(super) fn close_after_reply(&mut self) {
        self.closing = true;
    }

    /// True once the session must end after its reply.
    pub(super) fn closing(&self) -> bool {
        self.closing
    }

    /// The peer as the history names it: its address, or `stdio`.
    fn peer_name(&self) -> String {
        match self.stdio {
            true => "stdio".to_string(),
            false => self.peer.to_string(),
        }
    }

    /// The greeting: with a secret, a fresh nonce from the OS's random
    /// source in it; an error (nothing written) when that cannot be read.
    pub(super) fn greeting(&mut self) -> io::Result<Reply<'static>> {
        let id = Some(self.shared.share.id());
        if self.shared.config.secret.is_none() {
            return Ok(Reply::greeting(true, id));
        }
        let mut bytes = [0u8; 16];
        crate::sys::random_bytes(&mut bytes)?;
        let nonce = Nonce(bytes);
        self.nonce = Some(nonce);
        let proof_only = self.shared.config.auth == AuthMode::ProofOnly;
        Ok(Reply::challenge(id, &nonce, proof_only))
    }

    /// Ends the session: the row of what was left out of the history, if
    /// anything was; returns the output.
    pub(super) fn finish(self) -> BufWriter<LineEnds<W>> {
        if let Some((n, last_reply)) = self.shared.left_out_rows(self.peer.ip()) {
            self.record_left_out(n, last_reply);
        }
        self.out.into_inner()
    }

    /// True once the client gave too many wrong secrets: the connection
    /// closes.
    pub(super) fn refused_too_often(&self) -> bool {
        self.wrong_secrets >= MAX_WRONG_SECRETS
    }

    /// What every session of the server shares: the share, the
    /// settings, the history.
    pub(super) fn shared(&self) -> &'a Shared {
        self.shared
    }

    /// Set when the server stops.
    pub(super) fn stop(&self) -> &'a Stop {
        self.stop
    }

    /// The client's address.
    pub(super) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The address the client reached (where data listeners bind).
    pub(super) fn local(&self) -> IpAddr {
        self.local
    }

    /// True once AUTH succeeded, or from the start when no secret is set.
    pub(super) fn authed(&self) -> bool {
        self.authed
    }

    /// Sends what was written so far.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes a preliminary reply (a 150) and sends it at once: the
    /// client must see it before the bytes flow.
    pub(super) fn announce(&mut self, reply: Reply<'_>) -> io::Result<()> {
        announce(&mut self.out, reply)
    }

    /// True when replies end with CR LF.
    pub(super) fn crlf(&self) -> bool {
        self.out.get_ref().get_ref().crlf
    }

    /// Ends the replies from now on with CR LF (`true`) or LF.
    pub(super) fn set_crlf(&mut self, crlf: bool) {
        self.out.get_mut().get_mut().crlf = crlf;
    }

    /// The replies written from now on answer `request` (as the client
    /// sent it: what their MACs cover after a proof login).
    pub(super) fn answering(&mut self, request: String) {
        self.out.answering(request);
    }

    /// The requests of the connection, and what is read of them.
    pub(super) fn requests(&self) -> &Requests<BufReader<C>> {
        &self.requests
    }

    /// The next request.
    pub(super) fn next_request(&mut self) -> Option<io::Result<Result<Request, Refusal>>> {
        self.requests.next()
    }

    /// When the session times out if the client sends nothing more.
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        self.requests.get_ref().get_ref().idle_deadline()
    }

    /// Closes the native data channels (FTP's passive listener is about
    /// to open: a session never holds both).
    pub(super) fn close_data_channels(&mut self) {
        self.transfers.close();
    }

    /// Counts now as activity (a transfer that just ended).
    pub(super) fn touch(&mut self) {
        self.requests.get_mut().get_mut().touch();
    }

    /// Also ends the wait for the next request by `at`.
    pub(super) fn wake_at(&mut self, at: Option<Instant>) {
        self.requests.get_mut().get_mut().wake_at(at);
    }

    /// The refusal of a request that needs AUTH before it succeeded, in
    /// the words of the request's dialect.
    pub(super) fn gate(&self, spec: &Spec) -> Option<Reply<'static>> {
        (spec.needs_auth && !self.authed).then(|| match spec.dialect {
            Dialect::Ftp => Reply::ftp_login_required(),
            Dialect::P2pshare => Reply::auth_required(),
        })
    }

    /// Closes the native data channels that waited too long
    /// (`--data-idle`); returns when the next one is due.
    pub(super) fn release_idle_data(&mut self) -> Option<Instant> {
        self.transfers.release_idle()
    }

    /// Sends a file over a native data channel (announced with 150
    /// first); returns the final reply.
    pub(super) fn download(
        &mut self,
        transport: Transport,
        name: &str,
        offset: u64,
    ) -> io::Result<Reply<'static>> {
        let deadline = self.idle_deadline();
        let out = &mut self.out;
        let done = self
            .transfers
            .download(transport, name, offset, deadline, &mut |r| announce(out, r))?;
        self.transferred(done.active);
        Ok(done.reply)
    }

    /// Takes a file over a native data channel (announced with 150
    /// first); returns the final reply.
    pub(super) fn upload(&mut self, name: &str, size: u64, md5: Md5) -> io::Result<Reply<'static>> {
        let deadline = self.idle_deadline();
        let out = &mut self.out;
        let done = self
            .transfers
            .upload(name, size, md5, deadline, &mut |r| announce(out, r))?;
        self.transferred(done.active);
        Ok(done.reply)
    }

    /// Starts (`Some(stall)`) or ends (`None`) a transfer whose bytes
    /// travel on the control stream itself (see
    /// [`Control::transferring`]); its end counts as activity.
    pub(super) fn inline_transfer(&mut self, stall: Option<Duration>) {
        let input = self.requests.get_mut().get_mut();
        input.transferring(stall);
        if stall.is_none() {
            input.touch();
        }
    }

    /// Writes file bytes on the control stream itself, as they are: past
    /// the replies' MACs, their buffer (flushed with the 150 before the
    /// bytes) and their line ends.
    pub(super) fn write_inline(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.get_mut().get_mut().inner.write(buf)
    }

    /// Reads file bytes from the control stream itself: what follows the
    /// last request read (buffered first).
    pub(super) fn read_inline(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.requests.get_mut().read(buf)
    }

    /// Writes a reply; returns its code for the history.
    pub(super) fn send(&mut self, reply: Reply<'_>) -> io::Result<u16> {
        let code = reply.code();
        reply.write_to(&mut self.out)?;
        Ok(code)
    }

    /// The time a transfer the client took part in took is not its idle
    /// time.
    fn transferred(&mut self, active: bool) {
        if active {
            self.touch();
        }
    }

    pub(super) fn auth(&mut self, given: &str) -> io::Result<Reply<'static>> {
        let Some(secret) = self.shared.config.secret.as_deref() else {
            return Ok(Reply::no_secret_needed());
        };
        if self.requests.checks_macs() {
            return Ok(Reply::already_proven());
        }
        if self.shared.config.auth == AuthMode::ProofOnly {
            // Not a try: the secret is not even compared.
            return Ok(Reply::proof_only());
        }
        self.try_login(|| token::equal(given.as_bytes(), secret.as_bytes()))
    }

    /// A login by a plain word (the secret, or FTP's own password),
    /// `right` telling whether it is the right one, under the throttle of
    /// wrong secrets.
    pub(super) fn try_login(&mut self, right: impl FnOnce() -> bool) -> io::Result<Reply<'static>> {
        if self.requests.checks_macs() {
            return Ok(Reply::already_proven());
        }
        // Replies to requests before this one go out now: the answer to a
        // wrong secret may wait.
        self.out.flush()?;
        let right =
            self.shared
                .auth_gate
                .try_secret(self.peer.ip(), &self.shared.config, self.stop, right);
        // The time this peer made the client wait is not the client's idle
        // time.
        self.touch();
        if right {
            self.authed = true;
            self.wrong_secrets = 0;
            return Ok(Reply::authenticated());
        }
        self.wrong_secrets += 1;
        Ok(Reply::wrong_secret(self.wrong_secrets, MAX_WRONG_SECRETS))
    }

    /// `AUTH PROOF`: the client's proof checked under the throttle of
    /// wrong secrets; when right, the server's proof, and the session's
    /// key for every MAC from its `230` on (PROTOCOL.md section 12).
    pub(super) fn auth_proof(&mut self, client: &Nonce, proof: &Mac) -> io::Result<Reply<'static>> {
        let (Some(secret), Some(server)) = (self.shared.config.secret.as_deref(), self.nonce)
        else {
            return Ok(Reply::no_secret_needed());
        };
        if self.requests.checks_macs() {
            return Ok(Reply::already_proven());
        }
        self.out.flush()?;
        let proofs = Proofs::new(secret.as_bytes(), &server, client);
        let right = self.shared.auth_gate.try_secret(
            self.peer.ip(),
            &self.shared.config,
            self.stop,
            || proofs.client.same_as(proof),
        );
        self.touch();
        if right {
            self.authed = true;
            self.wrong_secrets = 0;
            self.requests.check_macs(proofs.key.clone());
            self.out.set_key(proofs.key);
            return Ok(Reply::proof_accepted(&proofs.server));
        }
        self.wrong_secrets += 1;
        Ok(Reply::wrong_secret(self.wrong_secrets, MAX_WRONG_SECRETS))
    }

    /// Writes the history row of a request. Rows of refused (5xx) and
    /// unauthenticated requests are limited per address; those left out
    /// are counted, and summed up in one row before the next one written.
    pub(super) fn record(&mut self, request: &str, reply: u16) {
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
        let _ = history.append(Direction::In, &self.peer_name(), request, reply);
    }

    /// The row that says how many rows from this address were left out.
    fn record_left_out(&self, n: u64, last_reply: u16) {
        let who = match self.stdio {
            true => self.peer_name(),
            false => self.shared.key(self.peer.ip()).to_string(),
        };
        self.shared.record_left_out(&who, n, last_reply);
    }
}

/// Writes a preliminary reply and flushes it: the client must see it
/// before the bytes can flow.
fn announce(out: &mut impl Write, reply: Reply<'_>) -> io::Result<()> {
    reply.write_to(out)?;
    out.flush()
}
