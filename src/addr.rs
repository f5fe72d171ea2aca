//! Addresses as people type them: what `--bind` listens on (an address or
//! a host name), and the `HOST[:PORT]` a client connects to, with errors
//! that name the part that is wrong.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::str::FromStr;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Bind {
    /// Every address of the machine: `[::]`, which takes IPv4 clients
    /// too (as mapped addresses) where the system does that, else
    /// `0.0.0.0`.
    #[default]
    Any,
    /// What `--bind` named: an address, or the addresses a host name
    /// resolved to, in the resolver's order.
    Named { name: String, addrs: Vec<IpAddr> },
}

impl Bind {
    /// Reads `--bind`'s value: an IP address (`[::1]` with brackets too)
    /// or a host name, resolved now.
    pub fn parse(v: &str) -> Result<Bind, String> {
        let bare = v
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(v);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Bind::Named {
                name: v.to_string(),
                addrs: vec![ip],
            });
        }
        if v.is_empty() {
            return Err("give an address or a host name".into());
        }
        if v.contains(':') {
            return Err(format!(
                "'{v}' is not an address or a host name (the port goes in --port)"
            ));
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        let found = (v, 0)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{v}': {e}"))?;
        for a in found {
            if !addrs.contains(&a.ip()) {
                addrs.push(a.ip());
            }
        }
        if addrs.is_empty() {
            return Err(format!("'{v}' has no address"));
        }
        Ok(Bind::Named {
            name: v.to_string(),
            addrs,
        })
    }

    /// The addresses to try, in order.
    pub fn candidates(&self) -> Vec<IpAddr> {
        match self {
            Bind::Any if dual_stack() => vec![
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ],
            Bind::Any => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
            Bind::Named { addrs, .. } => addrs.clone(),
        }
    }

    /// Binds a listener on `port` at the first candidate that can be
    /// bound. A port in use ends the search there: another server holds
    /// it, and listening elsewhere instead would hide that. The error
    /// names the address it is about.
    pub fn listen(&self, port: u16) -> Result<TcpListener, (SocketAddr, io::Error)> {
        let mut first_error = None;
        for ip in self.candidates() {
            let addr = SocketAddr::new(ip, port);
            match TcpListener::bind(addr) {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err((addr, e)),
                Err(e) => {
                    first_error.get_or_insert((addr, e));
                }
            }
        }
        Err(first_error.unwrap_or_else(|| {
            (
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to listen on"),
            )
        }))
    }
}

/// True when a socket bound to `[::]` also takes IPv4 connections: on
/// Linux, when `net.ipv6.bindv6only` is 0 (the usual default). Without
/// IPv6 the setting is not there, and `0.0.0.0` is the only choice.
fn dual_stack() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0")
}

impl FromStr for Bind {
    type Err = String;

    fn from_str(s: &str) -> Result<Bind, String> {
        Bind::parse(s)
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Any => f.write_str("every address"),
            Bind::Named { name, .. } => f.write_str(name),
        }
    }
}

/// Checks a `HOST[:PORT]` a client is to connect to, naming the part
/// that is wrong: `host`, `host:port`, `1.2.3.4:port`, `[v6]`, `[v6]:port`
/// or a bare IPv6 address.
pub fn check_target(t: &str) -> Result<(), String> {
    const FORMS: &str = "HOST[:PORT], e.g. 127.0.0.1:9000, example.org or [::1]:9000";
    if let Some(rest) = t.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("'{t}': a '[' without its ']' ({FORMS})"));
        };
        // A zone (`%eth0`, `%2`) is the resolver's business.
        let ip = inside.split_once('%').map_or(inside, |(ip, _)| ip);
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("'{inside}' is not an IPv6 address ({FORMS})"));
        }
        return match after {
            "" => Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => check_port(port),
                None => Err(format!("'{t}': only ':PORT' may follow ']' ({FORMS})")),
            },
        };
    }
    if t.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (t, None),
    };
    if host.is_empty() {
        return Err(format!("'{t}' has no host ({FORMS})"));
    }
    if host.contains(':') {
        return Err(format!(
            "'{host}' is not a host; an IPv6 address with a port goes in brackets: [{host}]:PORT"
        ));
    }
    port.map_or(Ok(()), check_port)
}

fn check_port(p: &str) -> Result<(), String> {
    match p.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to; give the peer's port".into()),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("'{p}' is not a port number (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_wrong_part() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9000",
            "localhost",
            "example.org:1",
            "::1",
            "[::1]",
            "[::1]:9000",
            "[fe80::1%eth0]:9000",
        ] {
            assert_eq!(check_target(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("127.0.0.1:notaport", "'notaport' is not a port number"),
            ("host:99999", "'99999' is not a port number"),
            ("host:", "'' is not a port number"),
            ("host:0", "port 0"),
            (":9000", "has no host"),
            ("[::1", "without its ']'"),
            ("[nope]:1", "'nope' is not an IPv6 address"),
            ("[::1]x", "only ':PORT'"),
            ("[::1]:x", "'x' is not a port number"),
            ("a:b:c", "in brackets"),
        ] {
            let e = check_target(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn bind_takes_addresses_and_host_names() {
        assert_eq!(
            Bind::parse("127.0.0.1").unwrap().candidates(),
            [IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        assert_eq!(
            Bind::parse("[::1]").unwrap().candidates(),
            [IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let local = Bind::parse("localhost").unwrap();
        assert!(local.candidates().iter().all(|ip| ip.is_loopback()));
        assert_eq!(local.to_string(), "localhost");
        assert!(Bind::parse("127.0.0.1:9000")
            .unwrap_err()
            .contains("--port"));
        assert!(Bind::parse("").is_err());
    }
}
