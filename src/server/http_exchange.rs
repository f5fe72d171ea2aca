//! One HTTP request being answered: the connection it came on, what of
//! its body may still be read, and what the server shares.

use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};

use super::http_nonce::Nonces;
use super::Shared;
use crate::stop::Stop;

/// One request being answered, with what it may read more of.
pub(super) struct Exchange<'a, 'r> {
    pub shared: &'a Shared,
    pub conn: &'a TcpStream,
    pub reader: &'r mut BufReader<&'a TcpStream>,
    pub peer: SocketAddr,
    pub nonces: &'a Nonces,
    pub stop: &'a Stop,
    /// The request's body was read (or there was none to read).
    pub body_read: bool,
}
