//! The HTTP/1.1 front end: a listener of its own (`--http [ADDR:]PORT`),
//! one thread per connection, keep-alive bounded by the control
//! sessions' idle time, and the same share, md5 cache, name rules,
//! per-address limits, history rows and `--allow-upload` as the native
//! and FTP front ends, which it never imports. A connection counts as a
//! session for `--max-connections` and `--max-per-ip`.
//!
//! - `http_parse`: request heads with their caps, paths, ranges, dates;
//! - `http_response`, `http_exchange`: a response, and one request being
//!   answered;
//! - `http_file`: `GET` and `HEAD` of a file;
//! - `http_folder` over `http_rows`, `http_page`, `http_json`: folder
//!   listings as HTML, as JSON, and as an md5sum manifest;
//! - `http_upload` and `http_form`: `PUT` and the upload form;
//! - `http_auth` and `http_nonce`: Digest authentication with `--secret`.

use std::io::{self, BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::http_exchange::Exchange;
use super::http_nonce::Nonces;
use super::http_parse::{self, ReadError, Request};
use super::http_response::{not_found, Response};
use super::limits::RowVerdict;
use super::{http_auth, http_file, http_folder, http_upload, Config, ServerError, Shared, Slot};
use crate::addr::Bind;
use crate::history::Direction;
use crate::stop::Stop;
use crate::transfer::net::{AcceptBackoff, Waker};

/// Where `--http` listens: an address (else that of `--bind`) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAt {
    pub bind: Option<Bind>,
    pub port: u16,
}

impl HttpAt {
    /// Reads `[ADDR:]PORT` (`8080`, `127.0.0.1:8080`, `[::1]:8080`).
    pub fn parse(v: &str) -> Result<HttpAt, String> {
        let (addr, port) = match v.rsplit_once(':') {
            Some((a, p)) => (Some(a), p),
            None => (None, v),
        };
        let port = port
            .parse()
            .map_err(|_| format!("'{port}' is not a port number (0 to 65535)"))?;
        let bind = addr.map(Bind::parse).transpose()?;
        Ok(HttpAt { bind, port })
    }
}

/// The largest body of a request that is not an upload; a longer one is
/// refused (413) without being read.
pub const MAX_SMALL_BODY: u64 = 64 * 1024;

/// A bound HTTP listener, not yet accepting.
pub(super) struct Listener {
    listener: TcpListener,
    pub(super) addr: SocketAddr,
}

/// Binds `--http`, when given.
pub(super) fn bind(config: &Config) -> Result<Option<Listener>, ServerError> {
    let Some(at) = &config.http else {
        return Ok(None);
    };
    let listener = at
        .bind
        .as_ref()
        .unwrap_or(&config.bind)
        .listen(at.port)
        .map_err(|(addr, e)| ServerError::Bind(addr, e))?;
    let addr = listener.local_addr()?;
    Ok(Some(Listener { listener, addr }))
}

/// The URL a person opens for a listener at `addr`.
pub fn url_for(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => format!("http://localhost:{}/", addr.port()),
        IpAddr::V6(ip) => format!("http://[{ip}]:{}/", addr.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}/", addr.port()),
    }
}

/// A running HTTP accept loop.
pub(super) struct Running {
    thread: thread::JoinHandle<()>,
    waker: Waker,
}

impl Running {
    /// Ends the accept loop (the server's stop is set already).
    pub(super) fn end(self) {
        self.waker.wake();
        let _ = self.thread.join();
    }
}

/// Starts accepting on `l`, one thread per connection.
pub(super) fn spawn(l: Listener, shared: Arc<Shared>, stop: Stop) -> io::Result<Running> {
    let waker = Waker::for_listener(l.addr);
    let woken = waker.clone();
    let thread = thread::Builder::new()
        .name("p2pshare-http".into())
        .spawn(move || accept_loop(l.listener, shared, stop, woken))?;
    Ok(Running { thread, waker })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Stop, waker: Waker) {
    let nonces = Arc::new(Nonces::default());
    let mut backoff = AcceptBackoff::new();
    for conn in listener.incoming() {
        if waker.is_woken() || stop.is_set() {
            break;
        }
        match conn {
            Ok(conn) => {
                backoff.succeeded();
                admit(&shared, &nonces, &stop, conn);
            }
            Err(_) => {
                stop.wait(backoff.failed());
            }
        }
    }
}

/// Counts the connection as a session (503 when the server or its
/// address has no room) and serves it on a thread of its own.
fn admit(shared: &Arc<Shared>, nonces: &Arc<Nonces>, stop: &Stop, conn: TcpStream) {
    let ip = conn.peer_addr().map(|a| a.ip().to_canonical()).ok();
    let refusal = match ip {
        None => Some("the peer's address is unknown"),
        Some(_) if shared.active.load(Ordering::SeqCst) >= shared.max_sessions => {
            Some("too many connections; try again later")
        }
        Some(ip) if !shared.enter(ip) => Some("too many connections from your address"),
        Some(_) => None,
    };
    if let Some(why) = refusal {
        let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = Response::error(503, why).closing().write(&conn, false);
        return;
    }
    let Some(ip) = ip else { return };
    let slot = Slot::take(shared.clone(), ip, conn);
    let nonces = nonces.clone();
    let stop = stop.clone();
    let _ = thread::Builder::new()
        .name("p2pshare-http-conn".into())
        .spawn(move || {
            serve(&slot.shared, &slot.conn, &nonces, &stop);
            drop(slot);
        });
}

/// One connection: requests one after another until the client closes,
/// says `Connection: close`, stays idle past `--idle-timeout`, or sends
/// what cannot be read.
fn serve(shared: &Shared, conn: &TcpStream, nonces: &Nonces, stop: &Stop) {
    let Ok(peer) = conn.peer_addr() else { return };
    let _ = conn.set_write_timeout(Some(shared.config.data_timeout));
    let mut reader = BufReader::with_capacity(16 * 1024, conn);
    loop {
        let _ = conn.set_read_timeout(Some(shared.config.idle_timeout));
        let req = match http_parse::read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Closed) => break,
            Err(ReadError::Status(code, why)) => {
                if Response::error(code, why)
                    .closing()
                    .write(conn, false)
                    .is_ok()
                {
                    linger(&mut reader);
                }
                record(shared, peer, "HTTP (unreadable request)", code);
                break;
            }
        };
        let _ = conn.set_read_timeout(Some(shared.config.data_timeout));
        let mut ex = Exchange {
            shared,
            conn,
            reader: &mut reader,
            peer,
            nonces,
            stop,
            body_read: false,
        };
        let resp = answer(&mut ex, &req);
        let body_left = !ex.body_read && has_body(&req);
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => Response::error(500, &e.to_string()).closing(),
        };
        if body_left || !req.keep_alive() || stop.is_set() {
            resp.close = true;
        }
        let code = resp.status;
        let close = resp.close;
        let written = resp.write(conn, req.method == "HEAD");
        let shown = format!("HTTP {} {}", req.method, req.target);
        record(shared, peer, &shown, code);
        if written.is_ok() && body_left {
            linger(&mut reader);
        }
        if written.is_err() || close {
            break;
        }
    }
    if let Some((n, last)) = shared.left_out_rows(peer.ip()) {
        record_left_out(shared, peer.ip(), n, last);
    }
}

/// What a connection closed with unread bytes may still take in, and
/// for how long, after its last response: closed at once, the unread
/// bytes would make the kernel reset it, and the client could lose the
/// response it has not read yet.
pub const LINGER_BYTES: u64 = 256 * 1024;
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Ends the sending side, then reads and drops what the client still
/// sends, up to [`LINGER_BYTES`] or [`LINGER_TIME`].
fn linger(reader: &mut BufReader<&TcpStream>) {
    let conn = *reader.get_ref();
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = conn.set_read_timeout(Some(LINGER_TIME));
    let deadline = crate::stop::deadline_in(LINGER_TIME);
    let mut left = LINGER_BYTES;
    let mut buf = [0u8; 8192];
    while left > 0 && std::time::Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// True when the request announces a body.
fn has_body(req: &Request) -> bool {
    req.header("transfer-encoding").is_some()
        || req
            .header("content-length")
            .is_some_and(|v| v.trim() != "0")
}

/// A history row; refusals (4xx, 5xx) are limited per address as the
/// control sessions' are.
fn record(shared: &Shared, peer: SocketAddr, request: &str, code: u16) {
    if code >= 400 {
        match shared.limited_row(peer.ip(), code.max(500)) {
            RowVerdict::LeaveOut => return,
            RowVerdict::Write {
                left_out,
                last_reply,
            } if left_out > 0 => record_left_out(shared, peer.ip(), left_out, last_reply),
            RowVerdict::Write { .. } => {}
        }
    }
    let _ = shared
        .history
        .append(Direction::In, &peer.to_string(), request, code);
}

fn record_left_out(shared: &Shared, ip: IpAddr, n: u64, last: u16) {
    shared.record_left_out(&shared.key(ip).to_string(), n, last);
}

/// The response to one request.
fn answer(ex: &mut Exchange, req: &Request) -> io::Result<Response> {
    if let Some(secret) = &ex.shared.config.secret {
        if let Some(refused) = http_auth::check(ex, req, secret) {
            return Ok(refused);
        }
    }
    match req.method.as_str() {
        "GET" | "HEAD" => get(ex, req),
        "PUT" => http_upload::put(ex, req),
        "POST" => http_upload::post(ex, req),
        "OPTIONS" => Ok(Response::new(204).header("Allow", ALLOW.into())),
        _ => Ok(Response::error(405, "method not allowed").header("Allow", ALLOW.into())),
    }
}

fn get(ex: &mut Exchange, req: &Request) -> io::Result<Response> {
    if has_body(req) {
        // A body nobody reads: small ones are skipped, the connection
        // closes after larger ones.
        let n: u64 = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        if n > MAX_SMALL_BODY || req.header("transfer-encoding").is_some() {
            return Ok(Response::error(413, "a GET has no body").closing());
        }
        io::copy(&mut (&mut *ex.reader).take(n), &mut io::sink())?;
        ex.body_read = true;
    }
    let Some((name, folder)) = http_parse::name_of_path(&req.path) else {
        return Ok(not_found());
    };
    if folder {
        return http_folder::folder(ex, req, &name);
    }
    http_file::get(ex, req, &name)
}

const ALLOW: &str = "GET, HEAD, PUT, POST, OPTIONS";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_at_reads_a_port_or_an_address_and_port() {
        assert_eq!(
            HttpAt::parse("8080"),
            Ok(HttpAt {
                bind: None,
                port: 8080
            })
        );
        let at = HttpAt::parse("127.0.0.1:0").unwrap();
        assert_eq!(at.port, 0);
        assert!(at.bind.is_some());
        assert!(HttpAt::parse("[::1]:80").is_ok());
        assert!(HttpAt::parse("x:y").is_err());
        assert!(HttpAt::parse("70000").is_err());
    }
}
