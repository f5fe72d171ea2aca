//! The UDP data channel: a reliable, paced, congestion-controlled file
//! transfer over datagrams (the rules are in PROTOCOL.md, "UDP data
//! channel").
//!
//! Layers, from the bottom; each uses only those below it, and only the
//! last touches sockets, clocks or the operating system's scheduling:
//!
//! ```text
//! frame       the datagram layout: a checked view, parse and emit
//! recovery    packets in flight, RTT, RFC 9002 loss detection, probe timeout
//! congestion  the Controller trait and the loss-scaled controller
//! pacing      a token bucket at 1.25 x window / smoothed RTT
//! chunks      what the sender knows of each chunk; read-ahead via Source
//! sender      Sender: one transfer's sending side, a state machine
//! receiver    Receiver: one transfer's receiving side, a state machine
//! channel     UdpChannel::send and receive: sockets, time, and the loops
//!             that feed the state machines
//! ```
//!
//! The state machines take the time and incoming bytes and return
//! datagrams and their next deadline, as quinn-proto's `Connection` does,
//! so they can be driven just as well by a simulated link with a virtual
//! clock (tests/udp_sim.rs) as by real sockets.
//!
//! Sender. Every datagram carries a fresh packet number, and the sender
//! keeps what each one carried. The receiver acknowledges packet numbers
//! in ranges, as QUIC's ACK frames do, together with how many bytes it has
//! in order and how far the sender may go. Loss is detected as RFC 9002
//! does it: a packet is lost when one sent three packets later was
//! acknowledged, or when it is older than 9/8 of the round-trip time; a
//! probe timeout (smoothed RTT + 4 × variance + ack delay, doubled on each
//! expiry) recovers a lost tail. Only the chunks of lost packets are sent
//! again, lowest offset first, under new packet numbers. The congestion
//! window grows with acknowledged bytes and shrinks once per loss episode
//! by half the running share of packets lost per round (see
//! [`congestion`]); a decrease whose losses all prove spurious is undone.
//!
//! Receiver. It puts chunks in order in a ring, acknowledges (every 16
//! packets, every 4 while it sees gaps, at once for anything out of order,
//! as soon as it has read every queued datagram when the sender flagged
//! that it waits for an ACK, and otherwise after a quiet millisecond) and
//! writes in-order bytes to its sink; the window it advertises counts from
//! what the sink's consumer has taken, so memory stays bounded by two
//! windows.
//!
//! The transfer ends when the receiver reports every byte (DONE) and the
//! sender confirms (DONE_ACK). The sender gives up when no valid datagram
//! has come from the receiver for a bounded time, or its in-order point has
//! not moved for another; the receiver gives up when no data has come for
//! its idle time. Either side abandons a transfer it cannot finish with
//! ABORT, so the other need not wait.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use self::frame::TOKEN_LEN;

mod channel;
mod chunks;
pub mod congestion;
pub mod frame;
mod pacing;
pub mod receiver;
mod recovery;
pub mod sender;

pub use self::channel::{receive, receive_with, UdpChannel};
pub use self::receiver::Receiver;
pub use self::sender::{Sender, Transmit};
pub use super::SendLimits;

/// DATA payload size a receiver asks for unless told otherwise: with the
/// 33-byte header, 8 bytes of UDP and 20 (IPv4) or 40 (IPv6) of IP it stays
/// under the 1500-byte Ethernet MTU, so nothing is fragmented.
pub const DEFAULT_PAYLOAD: usize = 1400;

/// DATA payload size on a loopback path: the loopback device carries 64 KiB
/// datagrams unfragmented, and with its headers a datagram of this size
/// still fits one 16 KiB kernel buffer. Far fewer datagrams per byte make
/// the transfer several times cheaper than at [`DEFAULT_PAYLOAD`].
pub const LOOPBACK_PAYLOAD: usize = 15_800;

/// How much a receiver buffers beyond the bytes it has written, by default.
pub const DEFAULT_WINDOW: usize = 8 << 20;

/// How long the sender waits for any datagram from the receiver before it
/// gives up on a transfer, by default.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);

/// How a receive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Every byte went to the sink.
    Complete,
    /// No DATA came for this long.
    Idle(Duration),
    /// The sender abandoned the transfer with this reply code.
    Aborted(u16),
}

impl Received {
    /// What a receive returns for this outcome.
    pub fn result(self) -> io::Result<()> {
        match self {
            Received::Complete => Ok(()),
            Received::Idle(idle) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no data from the sender for {}",
                    humantime::format_duration(idle)
                ),
            )),
            Received::Aborted(code) => Err(io::Error::other(Aborted(code))),
        }
    }
}

/// Transfer figures, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u64,
    pub retransmitted: u64,
    pub lost: u64,
    pub probes: u64,
    pub acks: u64,
    /// Window reductions undone because their losses proved spurious.
    pub undone: u64,
}

/// Receiver settings beyond the defaults of [`receive`].
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// DATA payload size to ask for ([`frame::MIN_PAYLOAD`] to
    /// [`frame::MAX_PAYLOAD`]); more than [`DEFAULT_PAYLOAD`] only where the
    /// path carries bigger datagrams without fragmenting them (loopback,
    /// jumbo frames).
    pub payload: usize,
    /// Bytes buffered beyond those written, for data that arrived out of
    /// order.
    pub window: usize,
    /// Give up when the sender has sent nothing for this long.
    pub idle: Duration,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            payload: DEFAULT_PAYLOAD,
            window: DEFAULT_WINDOW,
            idle: DEFAULT_SILENCE,
        }
    }
}

impl ReceiveOptions {
    /// Checks a receive's arguments before anything is sent: the token of
    /// a 150 line as its 8 wire bytes, a payload size within
    /// [`frame::MIN_PAYLOAD`] and [`frame::MAX_PAYLOAD`], and a length that
    /// ends within 64 bits.
    pub fn check(&self, token: &str, offset: u64, len: u64) -> io::Result<[u8; TOKEN_LEN]> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let token = frame::token_bytes(token)
            .ok_or_else(|| invalid(format!("not a data channel token: {token:?}")))?;
        let (lo, hi) = (frame::MIN_PAYLOAD, frame::MAX_PAYLOAD);
        if !(lo..=hi).contains(&self.payload) {
            let p = self.payload;
            return Err(invalid(format!("payload size {p} is outside {lo}..={hi}")));
        }
        if offset.checked_add(len).is_none() {
            return Err(invalid("offset + length overflows".into()));
        }
        Ok(token)
    }

    /// The defaults for a path to `server`: [`LOOPBACK_PAYLOAD`] when it is
    /// a loopback address, [`DEFAULT_PAYLOAD`] anywhere else.
    pub fn for_path(server: SocketAddr) -> ReceiveOptions {
        let ip = match server.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        ReceiveOptions {
            payload: if ip.is_loopback() {
                LOOPBACK_PAYLOAD
            } else {
                DEFAULT_PAYLOAD
            },
            ..ReceiveOptions::default()
        }
    }
}

/// Why a receive failed, beyond I/O errors.
#[derive(Debug)]
pub struct Aborted(pub u16);

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the sender abandoned the transfer (reply code {})",
            self.0
        )
    }
}

impl std::error::Error for Aborted {}
