//! Why talking to a peer failed: the client's one error type.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why talking to a peer failed.
#[derive(Debug)]
pub enum ClientError {
    /// The peer could not be reached at all.
    Connect(String, io::Error),
    /// The connection failed or closed.
    Io(io::Error),
    /// The peer said it closes the connection (`421`), with its text.
    Closed(String),
    /// The peer did not answer in time: what was waited for.
    Timeout(String),
    /// A reply broke the client's bounds (line length, lines, bytes):
    /// which one.
    TooLarge(String),
    /// The peer sent something that is not the protocol, or a reply that
    /// does not belong to the request.
    Protocol(String),
}

impl ClientError {
    /// True when the connection went away (closed, reset, or closed with
    /// a `421`): a new connection may do what this one could not.
    pub fn is_drop(&self) -> bool {
        matches!(self, ClientError::Io(_) | ClientError::Closed(_))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(target, e) => write!(f, "cannot connect to {target}: {e}"),
            ClientError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("the peer closed the connection")
            }
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Closed(text) => write!(f, "the peer closed the connection: {text}"),
            ClientError::Timeout(what) | ClientError::TooLarge(what) => f.write_str(what),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A duration as `--timeout` takes it (`2s`, `1m 30s`).
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
