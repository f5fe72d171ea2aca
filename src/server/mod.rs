//! The server: binds the control port, hands each connection to its own
//! thread, and runs the rescan thread beside them.

pub mod session;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::history::History;
use crate::protocol::{code, write_reply};
use crate::share::{scan, Share};
use crate::stop::Stop;

/// Everything `p2pshare serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub share: PathBuf,
    pub bind: IpAddr,
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
    /// How long a UDP transfer waits for any datagram from its receiver
    /// before it gives up (426).
    pub udp_silence: Duration,
    /// Accept `FileUpload`.
    pub allow_upload: bool,
    /// When set, sessions must `AUTH` with it before anything but HELP,
    /// NOOP, AUTH and QUIT.
    pub secret: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            share: PathBuf::from("shared"),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 9000,
            rescan: Duration::from_secs(5),
            data_ports: None,
            max_connections: 256,
            max_per_ip: 32,
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            max_line: crate::protocol::MAX_LINE,
            data_wait: Duration::from_secs(30),
            udp_silence: crate::transfer::udp::DEFAULT_SILENCE,
            allow_upload: false,
            secret: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum ServerError {
    Share(PathBuf, io::Error),
    Bind(SocketAddr, io::Error),
    Io(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Share(p, e) => {
                write!(f, "cannot use {} as the shared folder: {e}", p.display())
            }
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
    pub active: AtomicUsize,
    /// Open sessions per peer address.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Each open session's control connection, so that a stop can end
    /// their waits for the next request. Shared with the session, not
    /// duplicated: a session costs one descriptor for its control
    /// connection.
    pub sessions: Mutex<HashMap<u64, Arc<TcpStream>>>,
    pub next_session: AtomicU64,
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Stop,
}

impl Server {
    /// Opens and indexes the shared folder, then binds the control port
    /// (port 0 picks a free one; see [`Server::local_addr`]).
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        let share =
            Share::open(&config.share).map_err(|e| ServerError::Share(config.share.clone(), e))?;
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
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| ServerError::Bind(addr, e))?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                share,
                history,
                config,
                active: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(0),
            }),
            stop: Stop::new(),
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
            wake: wake_addr(self.local_addr),
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
        for conn in self.listener.incoming() {
            if self.stop.is_set() {
                break;
            }
            match conn {
                Ok(conn) => self.admit(conn),
                Err(e) if is_transient(&e) => {
                    // Out of descriptors or a connection reset before
                    // accept: back off a little instead of spinning.
                    thread::sleep(Duration::from_millis(20));
                }
                Err(_) => {}
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
        let ip = conn.peer_addr().map(|a| a.ip()).ok();
        let refusal = match ip {
            None => Some("cannot tell your address"),
            Some(_) if shared.active.load(Ordering::SeqCst) >= shared.config.max_connections => {
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

/// Locks a mutex, taking it over from a thread that panicked holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) // ENFILE, EMFILE, ENOBUFS, ENOMEM
}

/// Where to connect to wake the accept loop: the bound address, or loopback
/// when bound to every address.
fn wake_addr(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

/// Stops a running server.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Stop,
    wake: SocketAddr,
}

impl ServerHandle {
    /// Asks the server to stop: no new connections are accepted and the
    /// rescan thread ends.
    pub fn stop(&self) {
        self.stop.set();
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
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
