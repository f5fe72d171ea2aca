//! Whole datagrams as values, as smoltcp's `Repr` types are: [`Frame`]
//! parses a checked [`Datagram`] into its fields, and the `emit_*`
//! functions write one through the [`Datagram`] setters.

use super::{
    field, AckRanges, Datagram, Error, Kind, DATA_FLAG_ACK_NOW, DATA_HEADER_LEN, MAX_ACK_RANGES,
    MAX_PAYLOAD, TOKEN_LEN,
};

/// The kind-specific part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// `offset` and `length` name the bytes wanted; `max_data` is the first
    /// offset the receiver cannot take yet; `payload` the DATA payload size
    /// it wants.
    Hello {
        offset: u64,
        length: u64,
        max_data: u64,
        payload: u16,
    },
    /// `pn` numbers this transmission (never reused within a transfer);
    /// `offset` is the file offset of the payload's first byte; `ack_now`
    /// is [`DATA_FLAG_ACK_NOW`].
    Data {
        pn: u64,
        offset: u64,
        ack_now: bool,
        payload: &'a [u8],
    },
    /// `delivered`: every byte below this offset has arrived.
    /// `max_data`: the sender may send bytes below this offset.
    Ack {
        delivered: u64,
        max_data: u64,
        ack_delay_us: u32,
        ranges: AckRanges<'a>,
    },
    Done {
        delivered: u64,
    },
    DoneAck,
    Abort {
        code: u16,
    },
}

/// A whole parsed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub token: [u8; TOKEN_LEN],
    pub transfer: u32,
    pub body: Body<'a>,
}

impl<'a> Frame<'a> {
    /// Parses one datagram; anything malformed is an error, never a panic.
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, Error> {
        let d = Datagram::new_checked(bytes)?;
        let body = match d.kind() {
            Kind::Hello => Body::Hello {
                offset: d.hello_offset(),
                length: d.hello_length(),
                max_data: d.hello_max_data(),
                payload: d.hello_payload(),
            },
            Kind::Data => Body::Data {
                pn: d.data_pn(),
                offset: d.data_offset(),
                ack_now: d.data_flags() & DATA_FLAG_ACK_NOW != 0,
                payload: d.data_payload(),
            },
            Kind::Ack => Body::Ack {
                delivered: d.ack_delivered(),
                max_data: d.ack_max_data(),
                ack_delay_us: d.ack_delay_us(),
                ranges: d.ack_ranges(),
            },
            Kind::Done => Body::Done {
                delivered: d.done_delivered(),
            },
            Kind::DoneAck => Body::DoneAck,
            Kind::Abort => Body::Abort {
                code: d.abort_code(),
            },
        };
        Ok(Frame {
            token: d.token(),
            transfer: d.transfer(),
            body,
        })
    }
}

/// Clears `out` to `len` zero bytes and wraps it with its header written.
fn start<'a>(
    out: &'a mut Vec<u8>,
    len: usize,
    kind: Kind,
    token: &[u8; TOKEN_LEN],
    transfer: u32,
) -> Datagram<&'a mut [u8]> {
    out.clear();
    out.resize(len, 0);
    let mut d = Datagram::new_unchecked(&mut out[..]);
    d.set_header(kind, token, transfer);
    d
}

/// Emits a HELLO into `out` (cleared first).
pub fn emit_hello(
    out: &mut Vec<u8>,
    token: &[u8; TOKEN_LEN],
    transfer: u32,
    offset: u64,
    length: u64,
    max_data: u64,
    payload: u16,
) {
    let mut d = start(out, field::HELLO_END, Kind::Hello, token, transfer);
    d.set_hello_offset(offset);
    d.set_hello_length(length);
    d.set_hello_max_data(max_data);
    d.set_hello_payload(payload);
}

/// Emits a DATA frame into `out` (cleared first). `payload` must be 1 to
/// [`MAX_PAYLOAD`] bytes.
pub fn emit_data(
    out: &mut Vec<u8>,
    token: &[u8; TOKEN_LEN],
    transfer: u32,
    pn: u64,
    offset: u64,
    ack_now: bool,
    payload: &[u8],
) {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD);
    out.clear();
    out.resize(DATA_HEADER_LEN, 0);
    out.extend_from_slice(payload);
    emit_data_header(
        out,
        token,
        transfer,
        pn,
        offset,
        payload.len() as u16,
        ack_now,
    );
}

/// Writes a DATA header in place into the first [`DATA_HEADER_LEN`] bytes
/// of `out`, whose payload the caller has already put after it.
pub fn emit_data_header(
    out: &mut [u8],
    token: &[u8; TOKEN_LEN],
    transfer: u32,
    pn: u64,
    offset: u64,
    len: u16,
    ack_now: bool,
) {
    let mut d = Datagram::new_unchecked(out);
    d.set_header(Kind::Data, token, transfer);
    d.set_data_pn(pn);
    d.set_data_offset(offset);
    d.set_data_len(len);
    d.set_data_flags(if ack_now { DATA_FLAG_ACK_NOW } else { 0 });
}

/// Emits an ACK into `out` (cleared first). `ranges` are `(largest,
/// smallest)` pairs, descending and disjoint; at most [`MAX_ACK_RANGES`]
/// are written.
pub fn emit_ack(
    out: &mut Vec<u8>,
    token: &[u8; TOKEN_LEN],
    transfer: u32,
    delivered: u64,
    max_data: u64,
    ack_delay_us: u32,
    ranges: &[(u64, u64)],
) {
    let ranges = &ranges[..ranges.len().min(MAX_ACK_RANGES)];
    let len = field::ACK_RANGES + ranges.len() * field::ACK_RANGE_LEN;
    let mut d = start(out, len, Kind::Ack, token, transfer);
    d.set_ack_delivered(delivered);
    d.set_ack_max_data(max_data);
    d.set_ack_delay_us(ack_delay_us);
    d.set_ack_count(ranges.len() as u8);
    for (i, &(largest, smallest)) in ranges.iter().enumerate() {
        d.set_ack_range(i, largest, smallest);
    }
}

/// Emits a DONE into `out` (cleared first).
pub fn emit_done(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32, delivered: u64) {
    start(out, field::DONE_END, Kind::Done, token, transfer).set_done_delivered(delivered);
}

/// Emits a DONE_ACK into `out` (cleared first).
pub fn emit_done_ack(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32) {
    start(out, field::HEADER_END, Kind::DoneAck, token, transfer);
}

/// Emits an ABORT into `out` (cleared first).
pub fn emit_abort(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32, code: u16) {
    start(out, field::ABORT_END, Kind::Abort, token, transfer).set_abort_code(code);
}
