//! p2pshare: two peers share a folder each over a human-readable line
//! protocol on TCP (see PROTOCOL.md).
//!
//! Bytes flow one way through the layers: socket bytes → capped line reader
//! ([`server::session`]) → [`protocol::parse`] (pure) → session dispatch →
//! [`share`] (index, md5 cache, safe open) or [`transfer`] (data channels) →
//! reply formatting ([`protocol`], pure) → socket. Nothing below the session
//! knows about sockets; nothing in [`protocol`] knows about files.
//!
//! - [`cli`]: the hand-written argument parser and usage texts.
//! - [`addr`]: `--bind` addresses and host names, `HOST[:PORT]` targets.
//! - [`client`]: the thin client: connection, verified downloads, console.
//! - [`peer`]: peer mode, a server and a console at once.
//! - [`server`]: the accept loop, limits, and one thread per session.
//! - [`share`]: the shared folder: name rules, index, rescan, md5 cache, MIME.
//! - [`transfer`]: the data channels.
//! - [`history`]: the request history, `history.tsv` in the state folder.
//! - [`timefmt`]: timestamps on the wire.
//!
//! [`transfer`] reads the bytes it sends through [`transfer::Source`]
//! (which the server implements for the share's open files) and imports nothing
//! from the layers above. The UDP channel is built in layers: the wire
//! format ([`transfer::frame`]), loss recovery, congestion control and
//! pacing, the sender and receiver state machines (time and bytes in,
//! datagrams and deadlines out), and one module that does the socket and
//! clock I/O ([`transfer::udp`] lists them).

#![forbid(unsafe_code)]

pub mod addr;
pub mod cli;
pub mod client;
pub mod digest;
pub mod history;
pub mod names;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod share;
pub mod stop;
pub mod sys;
pub mod timefmt;
pub mod transfer;
