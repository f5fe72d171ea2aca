//! Why talking to a peer failed: the client's one error type. Each
//! variant carries what it is about (the peer's address, the wait, the
//! bound, the underlying I/O error), and its text is made here, once.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::deadline::LINES_PER_TIMEOUT;
use super::show::peer_text;
use super::transport::Peer;
use crate::protocol::Transport;

/// Why talking to a peer failed.
#[derive(Debug)]
pub enum ClientError {
    /// The peer could not be reached at all: the target, and why.
    Connect(String, io::Error),
    /// The peer was reached but cannot be used as asked, and trying
    /// again will not change that (through ssh: the remote command is
    /// missing, the login or host key was refused): the target, and why.
    Unusable(String, io::Error),
    /// The connection failed or closed.
    Io(io::Error),
    /// The peer said it closes the connection (`421`): its code and text.
    Closed(u16, String),
    /// The peer did not answer in time.
    Timeout(Late),
    /// A reply broke the client's bounds.
    TooLarge(Bound),
    /// The peer sent something that is not the protocol, or a reply that
    /// does not belong to the request.
    Protocol(String),
}

/// A wait on the peer that ran out: what was waited for, from whom, and
/// the timeout.
#[derive(Debug, Clone)]
pub struct Late {
    pub wait: Wait,
    pub peer: Peer,
    pub timeout: Duration,
}

/// What a wait that ran out waited for.
#[derive(Debug, Clone)]
pub enum Wait {
    /// The greeting.
    Greeting,
    /// A reply, of which nothing came.
    Reply,
    /// The rest of a reply line that began.
    ReplyLine,
    /// The rest of a long reply (see `deadline`).
    WholeReply,
    /// Bytes on a data channel: its transport and port.
    Channel(Transport, u16),
    /// Bytes of a transfer inline on the control stream.
    Inline,
}

/// Which of the client's bounds a reply broke, and whose.
#[derive(Debug, Clone)]
pub enum Bound {
    /// A line longer than [`super::answer::MAX_REPLY_LINE`].
    Line(Peer),
    /// More than [`super::answer::MAX_REPLY_LINES`] lines or
    /// [`super::answer::MAX_REPLY_BYTES`] bytes.
    Reply(Peer),
}

impl ClientError {
    /// True when the connection went away (closed, reset, or closed with
    /// a `421`): a new connection may do what this one could not.
    pub fn is_drop(&self) -> bool {
        matches!(self, ClientError::Io(_) | ClientError::Closed(..))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(target, e) | ClientError::Unusable(target, e) => {
                write!(f, "cannot connect to {target}: {e}")
            }
            ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("the peer closed the connection")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Closed(code, text) => write!(
                f,
                "the peer closed the connection: {code} {}",
                peer_text(text)
            ),
            ClientError::Timeout(late) => late.fmt(f),
            ClientError::TooLarge(Bound::Line(addr)) => write!(
                f,
                "a reply line from {addr} is longer than the client takes ({} bytes)",
                super::answer::MAX_REPLY_LINE
            ),
            ClientError::TooLarge(Bound::Reply(addr)) => write!(
                f,
                "a reply from {addr} is longer than the client takes (at most {} lines and {} MiB)",
                super::answer::MAX_REPLY_LINES,
                super::answer::MAX_REPLY_BYTES >> 20
            ),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl fmt::Display for Late {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (addr, t) = (&self.peer, duration_text(self.timeout));
        match self.wait {
            Wait::Greeting => write!(f, "no greeting from {addr} within {t}"),
            Wait::Reply => write!(f, "no reply from {addr} within {t}"),
            Wait::ReplyLine => write!(f, "a reply line from {addr} did not come whole within {t}"),
            Wait::WholeReply => write!(
                f,
                "a reply from {addr} did not come whole in time ({t}, and {t} more for every {LINES_PER_TIMEOUT} of its lines)"
            ),
            Wait::Inline => write!(
                f,
                "the transfer from {addr} stalled: nothing arrived within {t}"
            ),
            Wait::Channel(transport, port) => {
                let channel = match transport {
                    Transport::Tcp => "TCP data connection",
                    Transport::Udp => "UDP data channel",
                };
                match addr.ip() {
                    Ok(ip) => write!(
                        f,
                        "the {channel} from {} stalled: nothing arrived within {t}",
                        SocketAddr::new(ip, port)
                    ),
                    Err(_) => write!(f, "the transfer from {addr} stalled: nothing arrived within {t}"),
                }
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect(_, e) | ClientError::Unusable(_, e) | ClientError::Io(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A duration as `--timeout` takes it (`2s`, `1m 30s`).
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn an_io_error_is_the_source_and_a_wait_names_its_peer() {
        let e = ClientError::Connect("h:1".into(), io::ErrorKind::ConnectionRefused.into());
        assert!(e.source().is_some());
        assert!(e.to_string().starts_with("cannot connect to h:1: "), "{e}");
        let late = ClientError::Timeout(Late {
            wait: Wait::Channel(Transport::Udp, 7),
            peer: Peer::Tcp("127.0.0.1:9000".parse().unwrap()),
            timeout: Duration::from_secs(2),
        });
        assert!(late.source().is_none());
        assert_eq!(
            late.to_string(),
            "the UDP data channel from 127.0.0.1:7 stalled: nothing arrived within 2s"
        );
    }
}
