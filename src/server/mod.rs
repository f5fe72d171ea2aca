//! The server: binds the control port, hands each connection to its own
//! thread, and runs the rescan thread beside them.

pub mod session;
mod transfers;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::addr::Bind;
use crate::history::History;
use crate::protocol::{code, write_reply};
use crate::share::state::StateChoice;
use crate::share::{scan, OpenError, Share};
use crate::stop::Stop;
use crate::transfer::net::{AcceptBackoff, Waker};
use crate::transfer::tcp;

/// Everything `p2pshare serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub share: PathBuf,
    /// Where the state goes (`--state`, and the fallback for a read-only
    /// share).
    pub state: StateChoice,
    /// Where to listen: the first of these addresses that can be bound.
    pub bind: Bind,
    pub port: u16,
    pub rescan: Duration,
    pub data_ports: Option<(u16, u16)>,
    pub max_connections: usize,
    /// Concurrent control sessions from one address.
    pub max_per_ip: usize,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    /// The longest request line, in bytes.
    pub max_line: usize,
    /// How long a transfer waits for its data connection.
    pub data_wait: Duration,
    /// When set, how long a session keeps its data channels (listener, UDP
    /// socket, and their ports) when no transfer needs them; the next
    /// transfer opens new ones, with a new port and token. Unset (the
    /// default), they stay open for the whole session, as the protocol
    /// promises.
    pub data_idle: Option<Duration>,
    /// How long a UDP transfer waits for any datagram from its receiver
    /// before it gives up (426).
    pub udp_silence: Duration,
    /// Accept `FileUpload`.
    pub allow_upload: bool,
    /// When set, sessions must `AUTH` with it before anything but HELP,
    /// NOOP, AUTH and QUIT.
    pub secret: Option<String>,
    /// How long the answer to a wrong secret waits once an address has
    /// had its [`FREE_WRONG_SECRETS`]: this after the next one, doubling
    /// with each further one up to `auth_delay_max`.
    pub auth_delay: Duration,
    pub auth_delay_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            share: PathBuf::from("shared"),
            state: StateChoice::default(),
            bind: Bind::Any,
            port: 9000,
            rescan: Duration::from_secs(5),
            data_ports: None,
            max_connections: 256,
            max_per_ip: 32,
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            max_line: crate::protocol::MAX_LINE,
            data_wait: Duration::from_secs(30),
            data_idle: None,
            udp_silence: crate::transfer::udp::DEFAULT_SILENCE,
            allow_upload: false,
            secret: None,
            auth_delay: Duration::from_secs(1),
            auth_delay_max: Duration::from_secs(60),
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum ServerError {
    Share(OpenError),
    Bind(SocketAddr, io::Error),
    Io(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Share(e) => write!(f, "{e}"),
            ServerError::Bind(a, e) if e.kind() == io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {a}: the port is in use (is another server running? choose another with --port)"
            ),
            ServerError::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            ServerError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<io::Error> for ServerError {
    fn from(e: io::Error) -> Self {
        ServerError::Io(e)
    }
}

/// What every session shares.
pub(crate) struct Shared {
    pub share: Arc<Share>,
    pub history: Arc<History>,
    pub config: Config,
    /// Sessions admitted at once: `--max-connections`, or fewer when the
    /// open-file limit holds fewer (see [`sessions_within`]).
    pub max_sessions: usize,
    pub active: AtomicUsize,
    /// Open sessions per peer address.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Each open session's control connection, so that a stop can end
    /// their waits for the next request. Shared with the session, not
    /// duplicated: a session costs one descriptor for its control
    /// connection.
    pub sessions: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Data ports of `--data-ports` held per peer address, TCP and UDP.
    pub ports_held: Mutex<HashMap<IpAddr, [usize; 2]>>,
    /// History rows of refused and unauthenticated requests, per address.
    pub(crate) row_limits: Mutex<HashMap<IpAddr, RowBucket>>,
    /// Wrong secrets per address.
    pub(crate) auth_gate: AuthGate,
    pub next_session: AtomicU64,
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Stop,
    /// Ends the accept loop's wait.
    waker: Waker,
}

impl Server {
    /// Opens and indexes the shared folder, then binds the control port
    /// (port 0 picks a free one; see [`Server::local_addr`]).
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        let share = Share::open(&config.share, &config.state).map_err(ServerError::Share)?;
        let history = Arc::new(History::of_share(&share.state_dir()));
        Server::bind_with(config, Arc::new(share), history)
    }

    /// Like [`Server::bind`], with a share and history already open (peer
    /// mode shares them with its client).
    pub fn bind_with(
        config: Config,
        share: Arc<Share>,
        history: Arc<History>,
    ) -> Result<Server, ServerError> {
        let listener = config
            .bind
            .listen(config.port)
            .map_err(|(addr, e)| ServerError::Bind(addr, e))?;
        let local_addr = listener.local_addr()?;
        let mut max_sessions = config.max_connections;
        if let Some(limit) = open_file_limit() {
            let fit = sessions_within(limit);
            if fit < max_sessions {
                eprintln!(
                    "p2pshare: the open-file limit of {limit} fits {fit} sessions \
                     ({SESSION_FDS} descriptors each, {SERVER_FDS} for the server): \
                     admitting at most {fit}, not {max_sessions} (raise the limit \
                     with ulimit -n to admit more)"
                );
                max_sessions = fit;
            }
        }
        Ok(Server {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                share,
                history,
                config,
                max_sessions,
                active: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
                ports_held: Mutex::new(HashMap::new()),
                row_limits: Mutex::new(HashMap::new()),
                auth_gate: AuthGate::default(),
                next_session: AtomicU64::new(0),
            }),
            stop: Stop::new(),
            waker: Waker::for_listener(local_addr),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn share(&self) -> &Arc<Share> {
        &self.shared.share
    }

    /// A handle that stops the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Serves until stopped: the rescan thread plus one thread per
    /// connection.
    pub fn run(self) -> io::Result<()> {
        let rescan = scan::spawn(
            self.shared.share.clone(),
            self.shared.config.rescan,
            self.stop.clone(),
        )?;
        let mut backoff = AcceptBackoff::new();
        for conn in self.listener.incoming() {
            if self.waker.is_woken() || self.stop.is_set() {
                break;
            }
            match conn {
                Ok(conn) => {
                    backoff.succeeded();
                    self.admit(conn);
                }
                // Out of descriptors or a connection reset before accept:
                // back off instead of spinning.
                Err(_) => {
                    self.stop.wait(backoff.failed());
                }
            }
        }
        self.stop.set();
        // Sessions waiting for a request read the end of the stream now
        // and answer `421 shutting down`; one in the middle of a transfer
        // finishes it first.
        for c in lock(&self.shared.sessions).values() {
            let _ = c.shutdown(Shutdown::Read);
        }
        let _ = rescan.join();
        let _ = self.shared.share.save_hashes();
        Ok(())
    }

    /// Runs the server on a thread of its own; the returned value stops it
    /// when dropped.
    pub fn spawn(self) -> io::Result<RunningServer> {
        let handle = self.handle();
        let addr = self.local_addr;
        let thread = thread::Builder::new()
            .name("p2pshare-server".into())
            .spawn(move || self.run())?;
        Ok(RunningServer {
            handle,
            addr,
            thread: Some(thread),
        })
    }

    fn admit(&self, conn: TcpStream) {
        let shared = self.shared.clone();
        // An IPv4 client of a `[::]` listener arrives as ::ffff:a.b.c.d:
        // counted under its IPv4 address like any other.
        let ip = conn.peer_addr().map(|a| a.ip().to_canonical()).ok();
        let refusal = match ip {
            None => Some("cannot tell your address"),
            Some(_) if shared.active.load(Ordering::SeqCst) >= shared.max_sessions => {
                Some("too many connections; try again later")
            }
            Some(ip) if !shared.enter(ip) => {
                Some("too many connections from your address; try again later")
            }
            Some(_) => None,
        };
        if let Some(text) = refusal {
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_reply(&mut &conn, code::CLOSING, text);
            return;
        }
        let Some(ip) = ip else { return };
        shared.active.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_session.fetch_add(1, Ordering::SeqCst);
        let conn = Arc::new(conn);
        lock(&shared.sessions).insert(id, conn.clone());
        let stop = self.stop.clone();
        let session_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("p2pshare-session".into())
            .spawn(move || {
                session::run(&session_shared, &conn, &stop);
                drop(conn);
                lock(&session_shared.sessions).remove(&id);
                session_shared.leave(ip);
            });
        if spawned.is_err() {
            lock(&shared.sessions).remove(&id);
            shared.leave(ip);
        }
    }
}

impl Shared {
    /// Counts a new session from `ip`; false (and nothing counted) when
    /// that address already has its share.
    fn enter(&self, ip: IpAddr) -> bool {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.config.max_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    /// Uncounts a session that ended.
    fn leave(&self, ip: IpAddr) {
        self.active.fetch_sub(1, Ordering::SeqCst);
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// The two kinds of data port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortKind {
    Tcp = 0,
    Udp = 1,
}

/// A data port of `--data-ports` counted against its address's share; the
/// count goes when this is dropped (with the channel holding the port).
pub(crate) struct PortClaim<'a> {
    shared: &'a Shared,
    ip: IpAddr,
    kind: PortKind,
}

impl Shared {
    /// How many data ports of one kind an address may hold at once: half of
    /// the `--data-ports` range, at least one, so that one address never
    /// holds them all while another has one. None without a range.
    pub(crate) fn port_share(&self) -> Option<(usize, usize)> {
        let (lo, hi) = self.config.data_ports?;
        let n = usize::from(hi.saturating_sub(lo)) + 1;
        Some(((n / 2).max(1), n))
    }

    /// Counts a data port of `kind` for `ip`. Err with a text saying why
    /// when the address holds its share already; Ok(None) without a range.
    pub(crate) fn claim_port(
        &self,
        ip: IpAddr,
        kind: PortKind,
    ) -> Result<Option<PortClaim<'_>>, String> {
        let Some((share, n)) = self.port_share() else {
            return Ok(None);
        };
        let mut held = lock(&self.ports_held);
        let count = &mut held.entry(ip).or_insert([0, 0])[kind as usize];
        if *count >= share {
            let kind = match kind {
                PortKind::Tcp => "TCP",
                PortKind::Udp => "UDP",
            };
            return Err(format!(
                "your address holds {count} of the {n} {kind} data ports already, \
                 the most one address may hold; try again when a transfer of another \
                 of its sessions has ended"
            ));
        }
        *count += 1;
        Ok(Some(PortClaim {
            shared: self,
            ip,
            kind,
        }))
    }
}

impl Drop for PortClaim<'_> {
    fn drop(&mut self) {
        let mut held = lock(&self.shared.ports_held);
        if let Some(counts) = held.get_mut(&self.ip) {
            let c = &mut counts[self.kind as usize];
            *c = c.saturating_sub(1);
            if *counts == [0, 0] {
                held.remove(&self.ip);
            }
        }
    }
}

/// History rows one address may write at once for refused (5xx) and
/// unauthenticated requests.
pub const ROW_BURST: u32 = 64;

/// ... and how many a second after that.
pub const ROWS_PER_SECOND: u32 = 2;

/// Addresses whose row counts are kept before the full ones are
/// forgotten.
const ROW_ADDRESSES: usize = 1024;

/// A token bucket of history rows for one address.
pub(crate) struct RowBucket {
    /// Rows that may be written now, in thousandths.
    milli: u64,
    at: Instant,
    /// Rows left out since the last one written, and the reply of the last
    /// of them.
    left_out: u64,
    last_reply: u16,
}

impl RowBucket {
    const FULL: u64 = ROW_BURST as u64 * 1000;

    fn refill(&mut self, now: Instant) {
        let elapsed = u64::try_from(now.saturating_duration_since(self.at).as_millis());
        let gained = elapsed
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(ROWS_PER_SECOND));
        self.milli = (self.milli.saturating_add(gained)).min(Self::FULL);
        self.at = now;
    }

    fn take(&mut self) -> bool {
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// What to record for a limited request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RowVerdict {
    /// Write the row; before it, a summary of this many rows left out
    /// (with the reply code of the last of them) when not zero.
    Write { left_out: u64, last_reply: u16 },
    /// Leave it out (it is counted).
    LeaveOut,
}

impl Shared {
    /// Whether a row for a refused or unauthenticated request from `ip`
    /// with this `reply` may be written: at most [`ROW_BURST`] at once
    /// and [`ROWS_PER_SECOND`] after that, per address, whatever its
    /// sessions.
    pub(crate) fn limited_row(&self, ip: IpAddr, reply: u16) -> RowVerdict {
        let now = Instant::now();
        let mut map = lock(&self.row_limits);
        if map.len() >= ROW_ADDRESSES && !map.contains_key(&ip) {
            // Forget the addresses back at a full bucket with nothing left
            // out: they are as good as new.
            map.retain(|_, b| {
                b.refill(now);
                b.milli < RowBucket::FULL || b.left_out > 0
            });
        }
        let b = map.entry(ip).or_insert(RowBucket {
            milli: RowBucket::FULL,
            at: now,
            left_out: 0,
            last_reply: 0,
        });
        b.refill(now);
        if b.take() {
            let verdict = RowVerdict::Write {
                left_out: b.left_out,
                last_reply: b.last_reply,
            };
            b.left_out = 0;
            verdict
        } else {
            b.left_out += 1;
            b.last_reply = reply;
            RowVerdict::LeaveOut
        }
    }

    /// The rows from `ip` left out and not yet summed up, taken when the
    /// address may write a row now (at the end of a session).
    pub(crate) fn left_out_rows(&self, ip: IpAddr) -> Option<(u64, u16)> {
        let mut map = lock(&self.row_limits);
        let b = map.get_mut(&ip)?;
        b.refill(Instant::now());
        if b.left_out == 0 || !b.take() {
            return None;
        }
        let n = std::mem::take(&mut b.left_out);
        Some((n, b.last_reply))
    }
}

/// Wrong secrets from one address, over all its connections, answered
/// without delay; after them each wrong one waits before its answer.
pub const FREE_WRONG_SECRETS: u32 = 3;

/// How long an address's wrong secrets are remembered after its last one.
pub const AUTH_FORGET: Duration = Duration::from_secs(600);

/// Addresses whose wrong secrets are remembered before the harmless ones
/// are forgotten.
const AUTH_ADDRESSES: usize = 4096;

/// The delay before the answer to the `failures`-th wrong secret in a row
/// from one address: none for the first [`FREE_WRONG_SECRETS`], then
/// `first`, doubling with each further one, at most `max`.
pub fn auth_delay(failures: u32, first: Duration, max: Duration) -> Duration {
    let Some(past) = failures.checked_sub(FREE_WRONG_SECRETS + 1) else {
        return Duration::ZERO;
    };
    first.saturating_mul(1u32 << past.min(31)).min(max)
}

/// The AUTH tries of every address: checked one at a time per address,
/// and slowed down as its wrong secrets add up, so that opening more
/// connections does not try more secrets. Other addresses are not held up.
#[derive(Default)]
pub(crate) struct AuthGate {
    tries: Mutex<HashMap<IpAddr, Tries>>,
    turn: Condvar,
}

struct Tries {
    failures: u32,
    last: Instant,
    /// A try from this address is being checked (or waits out its delay).
    busy: bool,
}

impl AuthGate {
    /// Runs `check` (is the secret right?) for a try from `ip`, after any
    /// other try of that address has ended. A right secret clears the
    /// address's count; a wrong one adds to it and, past the free ones,
    /// waits [`auth_delay`] before returning, holding up the address's
    /// next try meanwhile. A stop ends the waits.
    pub(crate) fn try_secret(
        &self,
        ip: IpAddr,
        config: &Config,
        stop: &Stop,
        check: impl FnOnce() -> bool,
    ) -> bool {
        let mut tries = lock(&self.tries);
        loop {
            let now = Instant::now();
            let t = tries.entry(ip).or_insert(Tries {
                failures: 0,
                last: now,
                busy: false,
            });
            if !t.busy {
                if now.saturating_duration_since(t.last) > AUTH_FORGET {
                    t.failures = 0;
                }
                t.busy = true;
                break;
            }
            if stop.is_set() {
                return false;
            }
            tries = self
                .turn
                .wait_timeout(tries, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(tries);
        let right = check();
        let delay = {
            let mut tries = lock(&self.tries);
            if right {
                tries.remove(&ip);
                Duration::ZERO
            } else {
                let t = tries.entry(ip).or_insert(Tries {
                    failures: 0,
                    last: Instant::now(),
                    busy: true,
                });
                t.failures = t.failures.saturating_add(1);
                t.last = Instant::now();
                auth_delay(t.failures, config.auth_delay, config.auth_delay_max)
            }
        };
        if !delay.is_zero() {
            stop.wait(delay);
        }
        let mut tries = lock(&self.tries);
        if let Some(t) = tries.get_mut(&ip) {
            t.busy = false;
        }
        if tries.len() > AUTH_ADDRESSES {
            let now = Instant::now();
            tries.retain(|_, t| {
                t.busy
                    || (t.failures > FREE_WRONG_SECRETS
                        && now.saturating_duration_since(t.last) <= AUTH_FORGET)
            });
        }
        self.turn.notify_all();
        right
    }
}

/// Locks a mutex, taking it over from a thread that panicked holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Descriptors the server keeps for itself besides its sessions: the
/// standard streams, the control listener, the history (appending, and
/// the `History` readers), the md5 cache and rescans, a refused
/// connection being answered, and the client side of peer mode.
pub const SERVER_FDS: u64 = 64;

/// The most descriptors one session holds at once: its control connection,
/// its TCP data channel ([`tcp::CHANNEL_FDS`]), its UDP data channel (the
/// socket, the reader's copy of it, and the socket that wakes the reader
/// when the channel closes) and the file it sends or receives with up to
/// two copies of its handle.
pub const SESSION_FDS: u64 = 1 + tcp::CHANNEL_FDS as u64 + 3 + 3;

/// The soft limit on open files of this process, from
/// `/proc/self/limits`; None when unlimited or unknown.
pub fn open_file_limit() -> Option<u64> {
    soft_open_file_limit(&std::fs::read_to_string(crate::sys::PROC_SELF_LIMITS).ok()?)
}

/// The soft open-file limit in the text of a `/proc/PID/limits` file.
fn soft_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How many sessions fit in an open-file limit of `limit`:
/// `(limit - SERVER_FDS) / SESSION_FDS`, at least one.
pub fn sessions_within(limit: u64) -> usize {
    let fit = limit.saturating_sub(SERVER_FDS) / SESSION_FDS;
    usize::try_from(fit).unwrap_or(usize::MAX).max(1)
}

/// Stops a running server.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Stop,
    waker: Waker,
}

impl ServerHandle {
    /// Asks the server to stop: no new connections are accepted and the
    /// rescan thread ends.
    pub fn stop(&self) {
        self.stop.set();
        self.waker.wake();
    }
}

/// A server running on its own thread; stops when dropped.
pub struct RunningServer {
    handle: ServerHandle,
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Waits until the server stops (from a handle, or never).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the server and waits for its accept loop to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63457                63457                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(soft_open_file_limit(unlimited), None);
        assert_eq!(soft_open_file_limit(""), None);
        assert!(open_file_limit().is_some_and(|l| l > 0));
    }

    #[test]
    fn sessions_fit_the_limit() {
        assert_eq!(SESSION_FDS, 17);
        assert_eq!(sessions_within(1024), 56);
        assert_eq!(sessions_within(256), 11);
        assert_eq!(sessions_within(10), 1);
        assert_eq!(sessions_within(1 << 20), 61_677);
    }

    #[test]
    fn auth_delays_double_after_the_free_tries() {
        let s = Duration::from_secs;
        let got: Vec<Duration> = (1..=12).map(|n| auth_delay(n, s(1), s(60))).collect();
        let want = [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60].map(s);
        assert_eq!(got, want);
        assert_eq!(auth_delay(u32::MAX, s(1), s(60)), s(60));
    }
}
