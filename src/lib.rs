//! p2pshare: two peers share a folder each over a human-readable line
//! protocol on TCP (see PROTOCOL.md).
//!
//! # Layers
//!
//! Modules import only from the layers below their own:
//!
//! ```text
//! cli, main        argument lexer and usage texts; the process's exit status
//! roles            server   client   peer
//! services         share    transfer    history
//! vocabulary       protocol  names  timefmt  digest  sys  stop  addr
//! ```
//!
//! - Vocabulary, free of sockets and files: [`protocol`] (the command
//!   table, [`protocol::Command`], the request reader, every
//!   [`protocol::Reply`]), [`names`] (the name codec), [`timefmt`]
//!   (timestamps), [`digest`] (hex and [`digest::Md5`]), [`sys`] (Linux
//!   constants), [`stop`] (a stop signal), [`addr`] (`--bind` addresses,
//!   `HOST[:PORT]` targets).
//! - Services: [`share`] (name rules, safe open, index, rescan, md5 cache,
//!   MIME), [`transfer`] (the data channels; reads the bytes it sends
//!   through [`transfer::Source`], and does not know [`share`]),
//!   [`history`] (`history.tsv` in the state folder). None imports
//!   another; each converts its own errors and outcomes into replies with
//!   [`protocol`]'s constructors (`ShareError::reply`,
//!   `SendOutcome::reply`, ...).
//! - Roles: [`server`] (the accept loop, per-address limits, one thread
//!   per session; it hands the share's open files to the data channels
//!   as [`transfer::Source`]; FTP's verbs are answered on the same
//!   session, on the same share, limits and AUTH), [`client`] (the thin client: the control
//!   connection, one module owning the data channels, a download batch
//!   and one file's download as explicit states, uploads, the console),
//!   [`peer`] (both at once). Each role takes its settings as a value
//!   ([`server::Config`], [`client::Settings`] and [`client::Options`],
//!   [`peer::Options`]); only [`cli`] knows the command line, and
//!   [`cli::Lexer`] takes it apart.
//!
//! # One request, one way
//!
//! ```text
//! socket bytes → protocol::Requests (capped lines → Request | Refusal)
//!   → server::session (AUTH gate from the command table, dispatch)
//!   → a handler: share / history tables, or a transfer over a
//!     transfer::Channel (one path for TCP and UDP up to Channel::send)
//!   → a protocol::Reply value → Reply::write_to → socket
//! ```
//!
//! The UDP channel is built in layers of its own: the wire format
//! ([`transfer::frame`]), loss recovery, congestion control and pacing,
//! the sender and receiver state machines (time and bytes in, datagrams
//! and deadlines out), and one module that does the socket and clock I/O
//! ([`transfer::udp`] lists them).
//!
//! Adding a command is described in [`protocol`].

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
