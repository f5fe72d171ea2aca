//! The server: binds the control port, hands each connection to its own
//! thread, and runs the rescan thread beside them.
//!
//! - `session`: one control connection: the request loop, the AUTH gate,
//!   dispatch to the handlers, history rows.
//! - `listing`: the tables (`IndexGet`, `FileHash`, `History`).
//! - `macs`: after an `AUTH PROOF` login, the MAC of every reply, on the
//!   way from any front end to the line ends.
//! - `transfers`: downloads and uploads over the session's data channels.
//! - `limits`: what one address may hold or do over all its sessions.
//! - `ftp`, `ftp_data`, `ftp_list`: the FTP verbs on the same session,
//!   their passive data connections, their paths and listings.
//! - `http` and its `http_*` files: the HTTP/1.1 front end on a port of
//!   its own (`--http`), started beside the control listener.
//! - `stdio` (over `wire`): one session on stdin and stdout, no socket
//!   (`serve --stdio`); `inline`: its transfers' bytes on that stream.

mod core;
mod ftp;
mod ftp_data;
mod ftp_list;
mod ftp_state;
mod ftp_upload;
mod http;
mod http_auth;
mod http_exchange;
mod http_file;
mod http_folder;
mod http_form;
mod http_json;
mod http_nonce;
mod http_page;
mod http_parse;
mod http_response;
mod http_rows;
mod http_upload;
mod inline;
mod limits;
mod line_ends;
mod listing;
mod macs;
mod native;
pub mod session;
mod stdio;
mod transfers;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub use self::http::{url_for as http_url, HttpAt};
pub use self::limits::{auth_delay, AUTH_FORGET, FREE_WRONG_SECRETS, ROWS_PER_SECOND, ROW_BURST};
use self::limits::{AuthGate, RowBucket};
pub use self::stdio::serve_stdio;
use crate::addr::{Bind, Prefix, PrefixLens};
use crate::history::History;
use crate::protocol::Reply;
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
    /// What counts as one address for every per-address limit: IPv4
    /// addresses by their first `v4` bits (32), IPv6 ones by their first
    /// `v6` bits (64).
    pub prefix: PrefixLens,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    /// The longest request line, in bytes.
    pub max_line: usize,
    /// How long a transfer waits for its data connection.
    pub data_wait: Duration,
    /// How long a new data connection has to send its token before it is
    /// closed without a byte.
    pub token_deadline: Duration,
    /// When set, how long a session keeps its data channels (listener, UDP
    /// socket, and their ports, and an FTP passive listener) when no
    /// transfer needs them; the next
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
    /// Which forms of `AUTH` a peer with a secret takes (`--auth`).
    pub auth: AuthMode,
    /// How long the answer to a wrong secret waits once an address has
    /// had its [`FREE_WRONG_SECRETS`]: this after the next one, doubling
    /// with each further one up to `auth_delay_max`.
    pub auth_delay: Duration,
    pub auth_delay_max: Duration,
    /// With a secret: the password FTP logins take instead (FTP's `PASS`
    /// is plain text, so the secret is never taken there). None: a server
    /// with a secret refuses FTP logins; one without takes any.
    pub ftp_password: Option<String>,
    /// `--http [ADDR:]PORT`: serve HTTP/1.1 there too (off by default).
    pub http: Option<HttpAt>,
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
            prefix: PrefixLens::default(),
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            max_line: crate::protocol::MAX_LINE,
            data_wait: Duration::from_secs(30),
            token_deadline: crate::transfer::tcp::TOKEN_DEADLINE,
            data_idle: None,
            udp_silence: crate::transfer::udp::DEFAULT_SILENCE,
            allow_upload: false,
            secret: None,
            auth: AuthMode::Any,
            auth_delay: Duration::from_secs(1),
            auth_delay_max: Duration::from_secs(60),
            ftp_password: None,
            http: None,
        }
    }
}

/// Which forms of `AUTH` a peer with a secret takes (`--auth`,
/// PROTOCOL.md section 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// `AUTH PROOF`, and the plain `AUTH <secret>` a person types.
    #[default]
    Any,
    /// Only `AUTH PROOF`: the secret itself is never taken.
    ProofOnly,
}

impl AuthMode {
    /// As `--auth` names it: `any` or `proof-only`.
    pub fn from_word(word: &str) -> Option<AuthMode> {
        match word {
            "any" => Some(AuthMode::Any),
            "proof-only" => Some(AuthMode::ProofOnly),
            _ => None,
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
    /// Open sessions per peer address (by prefix, see [`Config::prefix`]).
    pub per_ip: Mutex<HashMap<Prefix, usize>>,
    /// Each open session's control connection, so that a stop can end
    /// their waits for the next request. Shared with the session, not
    /// duplicated: a session costs one descriptor for its control
    /// connection.
    pub sessions: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Data ports of `--data-ports` held per peer address, TCP and UDP.
    pub ports_held: Mutex<HashMap<Prefix, [usize; 2]>>,
    /// History rows of refused and unauthenticated requests, per address.
    pub(crate) row_limits: Mutex<HashMap<Prefix, RowBucket>>,
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
    /// The HTTP listener of `--http`.
    http: Option<http::Listener>,
    /// Say on stderr when the first scan is done ([`Server::announcing`]).
    announce: bool,
}

impl Server {
    /// Opens the shared folder and binds the control port (port 0 picks a
    /// free one; see [`Server::local_addr`]). The first scan runs in the
    /// rescan thread once [`Server::run`] starts it.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        crate::sys::open_random()?;
        let share =
            Share::open_unscanned(&config.share, &config.state).map_err(ServerError::Share)?;
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
        // Every token comes from the OS's random source, open from now
        // on: a server that cannot read it does not start.
        crate::sys::open_random()?;
        let listener = config
            .bind
            .listen(config.port)
            .map_err(|(addr, e)| ServerError::Bind(addr, e))?;
        let local_addr = listener.local_addr()?;
        let http = http::bind(&config)?;
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
            shared: Arc::new(Shared::new(config, share, history, max_sessions)),
            stop: Stop::new(),
            waker: Waker::for_listener(local_addr),
            http,
            announce: false,
        })
    }

    /// Says on stderr when the first scan is done
    /// (`p2pshare: the first scan is done: N files`).
    pub fn announcing(mut self) -> Server {
        self.announce = true;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `--http` listens, when it was given.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
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
    pub fn run(mut self) -> io::Result<()> {
        let rescan = scan::spawn(
            self.shared.share.clone(),
            self.shared.config.rescan,
            self.stop.clone(),
            self.announce,
        )?;
        let http = match self.http.take() {
            Some(l) => {
                eprintln!("p2pshare: HTTP on {}", http::url_for(l.addr));
                Some(http::spawn(l, self.shared.clone(), self.stop.clone())?)
            }
            None => None,
        };
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
        if let Some(http) = http {
            http.end();
        }
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
        let http_addr = self.http_addr();
        let thread = thread::Builder::new()
            .name("p2pshare-server".into())
            .spawn(move || self.run())?;
        Ok(RunningServer {
            handle,
            addr,
            http_addr,
            thread: Some(thread),
        })
    }

    fn admit(&self, conn: TcpStream) {
        let shared = self.shared.clone();
        // An IPv4 client of a `[::]` listener arrives as ::ffff:a.b.c.d:
        // counted under its IPv4 address like any other.
        let ip = conn.peer_addr().map(|a| a.ip().to_canonical()).ok();
        let refusal = match ip {
            None => Some(Reply::unknown_address()),
            Some(_) if shared.active.load(Ordering::SeqCst) >= shared.max_sessions => {
                Some(Reply::too_many_connections())
            }
            Some(ip) if !shared.enter(ip) => Some(Reply::too_many_from_address()),
            Some(_) => None,
        };
        if let Some(reply) = refusal {
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = reply.write_to(&mut &conn);
            return;
        }
        let Some(ip) = ip else { return };
        let slot = Slot::take(shared, ip, conn);
        let stop = self.stop.clone();
        // A session thread that cannot start drops its slot here, and one
        // that ends, even by a panic, drops it there: either way the slot
        // is given back and the connection closed.
        let _ = thread::Builder::new()
            .name("p2pshare-session".into())
            .spawn(move || {
                session::run(&slot.shared, &slot.conn, &stop);
                drop(slot);
            });
    }
}

/// A session's place in the server: its count in the sessions in all and
/// from its address, and its control connection in [`Shared::sessions`].
/// Dropping it (when the session ends, or its thread unwinds from a
/// panic) gives all of that back and closes the connection, so that no
/// session, however it ends, keeps its slot.
pub(crate) struct Slot {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: Arc<TcpStream>,
    ip: IpAddr,
    id: u64,
}

impl Slot {
    /// Counts a session from `ip` already let in by [`Shared::enter`].
    fn take(shared: Arc<Shared>, ip: IpAddr, conn: TcpStream) -> Slot {
        shared.active.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_session.fetch_add(1, Ordering::SeqCst);
        let conn = Arc::new(conn);
        lock(&shared.sessions).insert(id, conn.clone());
        Slot {
            shared,
            conn,
            ip,
            id,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "p2pshare: a session from {} failed; its connection is closed",
                self.conn
                    .peer_addr()
                    .map_or_else(|_| self.ip.to_string(), |a| a.to_string())
            );
        }
        let _ = self.conn.shutdown(Shutdown::Both);
        lock(&self.shared.sessions).remove(&self.id);
        self.shared.leave(self.ip);
    }
}

impl Shared {
    fn new(
        config: Config,
        share: Arc<Share>,
        history: Arc<History>,
        max_sessions: usize,
    ) -> Shared {
        Shared {
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
        }
    }

    /// What `ip` counts as for the per-address limits: its prefix.
    pub(crate) fn key(&self, ip: IpAddr) -> Prefix {
        self.config.prefix.of(ip)
    }

    /// Counts a new session from `ip`; false (and nothing counted) when
    /// that address already has its share.
    fn enter(&self, ip: IpAddr) -> bool {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(self.key(ip)).or_insert(0);
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
        let key = self.key(ip);
        if let Some(n) = map.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&key);
            }
        }
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
    http_addr: Option<SocketAddr>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Where `--http` listens, when it was given.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
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
    fn a_session_that_panics_gives_its_slot_back_and_closes_its_connection() {
        use std::io::{Read, Write};
        let dir = std::env::temp_dir().join(format!("p2pshare-slot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let share = Share::open(&dir, &StateChoice::default()).unwrap();
        let history = Arc::new(History::of_share(&share.state_dir()));
        let config = Config {
            max_per_ip: 1,
            ..Config::default()
        };
        let shared = Arc::new(Shared::new(config, Arc::new(share), history, 4));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, peer) = listener.accept().unwrap();
        assert!(shared.enter(peer.ip()));
        assert!(!shared.enter(peer.ip()), "one session from an address");
        let slot = Slot::take(shared.clone(), peer.ip(), conn);
        assert_eq!(shared.active.load(Ordering::SeqCst), 1);
        // A real panic on the session's own thread, holding its slot.
        let session = thread::spawn(move || {
            let slot = slot;
            let _ = (&*slot.conn).write(b"220 hello\n");
            panic!("a session fails on purpose");
        });
        assert!(session.join().is_err());
        assert_eq!(shared.active.load(Ordering::SeqCst), 0);
        assert!(lock(&shared.per_ip).is_empty());
        assert!(lock(&shared.sessions).is_empty());
        assert!(shared.enter(peer.ip()), "the address may come again");
        // The client sees its connection closed, not left open.
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "220 hello\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_data_connection_has_10_s_for_its_token_by_default() {
        assert_eq!(Config::default().token_deadline, Duration::from_secs(10));
    }
}
