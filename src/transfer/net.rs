//! Socket plumbing shared by both data channels and the server's accept
//! loop: binding a port of a range, waking a thread blocked on a socket,
//! and backing off after a failed accept.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A socket a data channel listens or receives on.
pub trait DataSocket: Sized {
    /// What the port is called in an error: "data port", "UDP data port".
    const NAME: &'static str;

    fn bind_to(addr: SocketAddr) -> io::Result<Self>;
}

impl DataSocket for TcpListener {
    const NAME: &'static str = "data port";

    fn bind_to(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr)
    }
}

impl DataSocket for UdpSocket {
    const NAME: &'static str = "UDP data port";

    fn bind_to(addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind(addr)
    }
}

/// Binds a data socket on `ip`: on an ephemeral port, or on the first free
/// one of `ports` (`--data-ports`) when given. How many ports of the range
/// one address may hold is the server's business; this finds a free one.
pub fn bind_port<S: DataSocket>(ip: IpAddr, ports: Option<(u16, u16)>) -> io::Result<S> {
    let Some((lo, hi)) = ports else {
        return S::bind_to(SocketAddr::new(ip, 0));
    };
    (lo..=hi)
        .find_map(|p| S::bind_to(SocketAddr::new(ip, p)).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("no free {} in {lo}-{hi}", S::NAME),
            )
        })
}

/// Wakes a thread blocked in `accept` or `recv` on a socket of its own, so
/// that it sees it is to stop: [`Waker::wake`] sets the flag the thread
/// reads after each wake-up, then connects to the listener (or sends the
/// socket a datagram), which ends the wait. Clones share the flag.
#[derive(Clone, Debug)]
pub struct Waker {
    woken: Arc<AtomicBool>,
    to: SocketAddr,
    by: By,
}

#[derive(Clone, Copy, Debug)]
enum By {
    Connect,
    Datagram,
}

impl Waker {
    /// For a thread accepting on the TCP listener bound to `listener`.
    pub fn for_listener(listener: SocketAddr) -> Waker {
        Waker::new(listener, By::Connect)
    }

    /// For a thread receiving on the UDP socket bound to `socket`.
    pub fn for_socket(socket: SocketAddr) -> Waker {
        Waker::new(socket, By::Datagram)
    }

    fn new(bound: SocketAddr, by: By) -> Waker {
        Waker {
            woken: Arc::new(AtomicBool::new(false)),
            to: reachable(bound),
            by,
        }
    }

    /// True once [`Waker::wake`] was called (on any clone).
    pub fn is_woken(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    /// Sets the flag, then wakes the thread. A wake-up that cannot be sent
    /// leaves the thread to notice the flag on its next wake-up of its own
    /// (a connection, a datagram, or its read timeout).
    pub fn wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
        match self.by {
            By::Connect => {
                let _ = TcpStream::connect_timeout(&self.to, Duration::from_secs(1));
            }
            By::Datagram => {
                if let Ok(s) = UdpSocket::bind((unspecified(self.to), 0)) {
                    let _ = s.send_to(&[0], self.to);
                }
            }
        }
    }
}

/// Where to reach a socket bound to `a`: `a` itself, or loopback when it
/// is bound to every address.
pub fn reachable(a: SocketAddr) -> SocketAddr {
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

/// The unspecified address of `addr`'s family.
pub fn unspecified(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// How long an accept loop sleeps after a failed accept. A listener out of
/// descriptors (EMFILE) fails again at once for as long as the shortage
/// lasts, so sleeping is what keeps the loop from spinning: 10 ms after
/// the first failure, doubling up to 500 ms while they go on, and back to
/// 10 ms after a success.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MAX: Duration = Duration::from_millis(500);

    pub fn new() -> AcceptBackoff {
        AcceptBackoff { next: Self::FIRST }
    }

    /// The pause after this failure.
    pub fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn binds_the_first_free_port_of_a_range() {
        let taken = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let p = taken.local_addr().unwrap().port();
        let e = bind_port::<TcpListener>(LOOPBACK, Some((p, p))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(e.to_string(), format!("no free data port in {p}-{p}"));
        let u = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let q = u.local_addr().unwrap().port();
        let e = bind_port::<UdpSocket>(LOOPBACK, Some((q, q))).unwrap_err();
        assert_eq!(e.to_string(), format!("no free UDP data port in {q}-{q}"));
        let any = bind_port::<UdpSocket>(LOOPBACK, None).unwrap();
        assert_ne!(any.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn wakes_a_blocked_accept_and_recv() {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let waker = Waker::for_listener(listener.local_addr().unwrap());
        let seen = waker.clone();
        let accepting = thread::spawn(move || {
            let _ = listener.accept();
            seen.is_woken()
        });
        waker.wake();
        assert!(accepting.join().unwrap());

        let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let waker = Waker::for_socket(socket.local_addr().unwrap());
        let seen = waker.clone();
        let receiving = thread::spawn(move || {
            let _ = socket.recv_from(&mut [0u8; 8]);
            seen.is_woken()
        });
        waker.wake();
        assert!(receiving.join().unwrap());
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = AcceptBackoff::new();
        let ms = Duration::from_millis;
        let got: Vec<Duration> = (0..8).map(|_| b.failed()).collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 320, 500, 500].map(ms));
        b.succeeded();
        assert_eq!(b.failed(), ms(10));
    }
}
