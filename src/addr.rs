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

/// How much of a peer's address the per-address limits look at: the
/// leading `v4` bits of an IPv4 address and `v6` bits of an IPv6 one
/// (`--prefix-v4`, `--prefix-v6`). One host on IPv6 usually has a /64 of
/// its own, so a whole /64 counts as one address by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixLens {
    pub v4: u8,
    pub v6: u8,
}

impl Default for PrefixLens {
    fn default() -> Self {
        PrefixLens { v4: 32, v6: 64 }
    }
}

/// The network an address counts under for the per-address limits: its
/// leading bits, the rest zero, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    net: IpAddr,
    len: u8,
}

impl PrefixLens {
    /// The prefix `ip` counts under. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is the IPv4 address it maps.
    pub fn of(&self, ip: IpAddr) -> Prefix {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let len = self.v4.min(32);
                let mask = u32::MAX.checked_shl(u32::from(32 - len)).unwrap_or(0);
                Prefix {
                    net: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = self.v6.min(128);
                let mask = u128::MAX.checked_shl(u32::from(128 - len)).unwrap_or(0);
                Prefix {
                    net: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                    len,
                }
            }
        }
    }
}

impl fmt::Display for Prefix {
    /// A whole address as itself, a shorter prefix as `net/len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.net, self.len) {
            (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128) => write!(f, "{}", self.net),
            (net, len) => write!(f, "{net}/{len}"),
        }
    }
}

/// A `HOST[:PORT]` a client is to connect to, checked: the host (an IPv6
/// address without its brackets) and the port, when one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: Option<u16>,
}

/// Checks a `HOST[:PORT]` a client is to connect to, naming the part
/// that is wrong: `host`, `host:port`, `1.2.3.4:port`, `[v6]`, `[v6]:port`
/// or a bare IPv6 address; or an `ssh://[user@]host[:port][/path]` (see
/// [`parse_ssh`]).
pub fn check_target(t: &str) -> Result<(), String> {
    match parse_ssh(t) {
        Some(ssh) => ssh.map(|_| ()),
        None => parse_target(t).map(|_| ()),
    }
}

/// A peer reached through ssh: `ssh://[user@]host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The login name, when one was given (else ssh's own choice).
    pub user: Option<String>,
    /// The host as ssh takes it: a name (an alias of the ssh config too),
    /// an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    /// The ssh port, when one was given (else ssh's own choice).
    pub port: Option<u16>,
    /// The share on the remote side (`--share` of its `serve --stdio`),
    /// percent-decoded; None: the remote default. `/srv/files` is
    /// absolute; `/~/files` is `files`, relative to the remote home.
    pub path: Option<String>,
}

impl SshTarget {
    /// `[user@]host`, as the ssh command line names the destination.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

const SSH_FORMS: &str = "ssh://[USER@]HOST[:PORT][/PATH], e.g. ssh://me@example.org:2222/srv/files";

/// Reads `ssh://[user@]host[:port][/path]`: None when `t` is not an ssh
/// URL at all (no `ssh://` in front, in any case), else the target or
/// what is wrong with it. An IPv6 host goes in brackets; the path may
/// hold `%XX` escapes (any byte but NUL, the result UTF-8).
pub fn parse_ssh(t: &str) -> Option<Result<SshTarget, String>> {
    let scheme = t.get(..6)?;
    if !scheme.eq_ignore_ascii_case("ssh://") {
        return None;
    }
    Some(parse_ssh_rest(t, &t[6..]))
}

fn parse_ssh_rest(t: &str, rest: &str) -> Result<SshTarget, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(u) = user {
        let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$');
        if u.is_empty() || u.starts_with('-') || !u.chars().all(fine) {
            return Err(format!(
                "'{t}': '{u}' is not a user name (letters, digits, '.', '_', '-'; {SSH_FORMS})"
            ));
        }
    }
    if hostport.is_empty() {
        return Err(format!("'{t}' has no host ({SSH_FORMS})"));
    }
    let target = parse_target(hostport).map_err(|e| format!("'{t}': {e}"))?;
    let host_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '%');
    if target.host.starts_with('-') || !target.host.chars().all(host_ok) {
        return Err(format!(
            "'{t}': '{}' is not a host name or address ({SSH_FORMS})",
            target.host
        ));
    }
    if !hostport.starts_with('[') && target.host.contains(':') {
        return Err(format!(
            "'{t}': an IPv6 address goes in brackets: ssh://[{}]",
            target.host
        ));
    }
    let path = match path {
        None | Some("/") => None,
        Some(p) => {
            let p = percent_decode(p).map_err(|e| format!("'{t}': {e}"))?;
            Some(match p.strip_prefix("/~/") {
                Some(home) if !home.is_empty() => home.to_string(),
                Some(_) => return Err(format!("'{t}': '/~/' names no folder")),
                None => p,
            })
        }
    };
    Ok(SshTarget {
        user: user.map(str::to_string),
        host: target.host,
        port: target.port,
        path,
    })
}

/// Decodes `%XX` escapes; any other `%`, a NUL, or bytes that are not
/// UTF-8 are refused.
fn percent_decode(p: &str) -> Result<String, String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = p
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    "'%' in the path must begin an escape of two hex digits, as %20".to_string()
                })?;
            if byte == 0 {
                return Err("the path holds %00 (NUL), which no path can".into());
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the path's %-escapes are not UTF-8".to_string())
}

/// [`check_target`], keeping what it found.
pub fn parse_target(t: &str) -> Result<Target, String> {
    const FORMS: &str = "HOST[:PORT], e.g. 127.0.0.1:9000, example.org or [::1]:9000";
    let target = |host: &str, port| Target {
        host: host.to_string(),
        port,
    };
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
            "" => Ok(target(inside, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok(target(inside, Some(check_port(port)?))),
                None => Err(format!("'{t}': only ':PORT' may follow ']' ({FORMS})")),
            },
        };
    }
    if t.parse::<Ipv6Addr>().is_ok() {
        return Ok(target(t, None));
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
    let port = port.map(check_port).transpose()?;
    Ok(target(host, port))
}

fn check_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to; give the peer's port".into()),
        Ok(n) => Ok(n),
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
        let t = |host: &str, port| Target {
            host: host.into(),
            port,
        };
        assert_eq!(parse_target("example.org"), Ok(t("example.org", None)));
        assert_eq!(parse_target("[::1]:9000"), Ok(t("::1", Some(9000))));
        assert_eq!(parse_target("::1"), Ok(t("::1", None)));
        assert_eq!(parse_target("1.2.3.4:5"), Ok(t("1.2.3.4", Some(5))));
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
    fn ssh_urls_are_read_and_their_mistakes_named() {
        let ssh = |user: Option<&str>, host: &str, port, path: Option<&str>| SshTarget {
            user: user.map(Into::into),
            host: host.into(),
            port,
            path: path.map(Into::into),
        };
        for (url, want) in [
            ("ssh://laptop", ssh(None, "laptop", None, None)),
            ("SSH://laptop/", ssh(None, "laptop", None, None)),
            (
                "ssh://me@example.org:2222/srv/files",
                ssh(Some("me"), "example.org", Some(2222), Some("/srv/files")),
            ),
            ("ssh://[::1]:22", ssh(None, "::1", Some(22), None)),
            (
                "ssh://u@[fe80::1%eth0]",
                ssh(Some("u"), "fe80::1%eth0", None, None),
            ),
            (
                "ssh://h/~/my%20files",
                ssh(None, "h", None, Some("my files")),
            ),
            (
                "ssh://h/a%2Fb%25%C3%A9",
                ssh(None, "h", None, Some("/a/b%\u{e9}")),
            ),
            (
                "ssh://1.2.3.4/x y",
                ssh(None, "1.2.3.4", None, Some("/x y")),
            ),
        ] {
            assert_eq!(parse_ssh(url), Some(Ok(want)), "{url}");
            assert_eq!(check_target(url), Ok(()), "{url}");
        }
        assert_eq!(ssh(Some("me"), "h", None, None).destination(), "me@h");
        assert_eq!(ssh(None, "::1", None, None).destination(), "::1");
        assert_eq!(parse_ssh("laptop:22"), None);
        assert_eq!(parse_ssh("ssh:/"), None);
        for (bad, says) in [
            ("ssh://", "has no host"),
            ("ssh://me@", "has no host"),
            ("ssh://:22", "has no host"),
            ("ssh://@h", "is not a user name"),
            ("ssh://-oProxyCommand=x@h", "is not a user name"),
            ("ssh://-oProxyCommand=x", "is not a host name"),
            ("ssh://h:0", "port 0"),
            ("ssh://h:ssh", "'ssh' is not a port number"),
            ("ssh://::1", "in brackets"),
            ("ssh://[::1", "without its ']'"),
            ("ssh://h/a%2", "two hex digits"),
            ("ssh://h/a%zz", "two hex digits"),
            ("ssh://h/a%00", "NUL"),
            ("ssh://h/%ff", "not UTF-8"),
            ("ssh://h/~/", "names no folder"),
            ("ssh://h;rm/x", "is not a host name"),
        ] {
            let e = check_target(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_count_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lens = PrefixLens::default();
        let key = |s: &str| lens.of(ip(s));
        // A whole IPv6 /64 is one key; the next /64 is another.
        assert_eq!(key("fd00::1"), key("fd00::ffff:ffff:ffff:ffff"));
        assert_eq!(key("fd00::1"), key("fd00::1234:5:6:7"));
        assert_ne!(key("fd00::1"), key("fd00:0:0:1::1"));
        assert_eq!(key("2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
        // IPv4 by whole address, and a mapped one is the same address.
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_eq!(key("::ffff:10.0.0.1").to_string(), "10.0.0.1");
        // Other lengths, down to none and up to the whole address.
        let wide = PrefixLens { v4: 24, v6: 48 };
        assert_eq!(wide.of(ip("10.0.0.1")), wide.of(ip("::ffff:10.0.0.200")));
        assert_eq!(wide.of(ip("10.0.0.1")).to_string(), "10.0.0.0/24");
        assert_ne!(wide.of(ip("10.0.0.1")), wide.of(ip("10.0.1.1")));
        assert_eq!(
            wide.of(ip("fd00:1:2:3::1")),
            wide.of(ip("fd00:1:2:ffff::1"))
        );
        let none = PrefixLens { v4: 0, v6: 0 };
        assert_eq!(none.of(ip("1.2.3.4")), none.of(ip("5.6.7.8")));
        assert_eq!(none.of(ip("::1")).to_string(), "::/0");
        assert_ne!(none.of(ip("1.2.3.4")), none.of(ip("::1")));
        let whole = PrefixLens { v4: 32, v6: 128 };
        assert_ne!(whole.of(ip("fd00::1")), whole.of(ip("fd00::2")));
        assert_eq!(whole.of(ip("fd00::1")).to_string(), "fd00::1");
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
