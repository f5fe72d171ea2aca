//! The UDP data channel's datagram layout: a checked view over the bytes of
//! one datagram, and parse/emit between it and [`Frame`].
//!
//! Every datagram starts with the same 14-byte header; the body depends on
//! the kind. All integers are big-endian. [`Datagram::new_checked`] checks
//! the length (and the body's inner consistency) before any field can be
//! read, so the accessors that follow never slice out of range; a datagram
//! that fails the check is dropped by the caller.
//!
//! ```text
//! header   0 version (1)   1 kind   2..10 token   10..14 transfer id
//! HELLO    14..22 offset   22..30 length   30..38 max data   38..40 payload size
//! DATA     14..22 packet number   22..30 offset   30..32 length   32 flags
//!          33.. payload
//! ACK      14..22 delivered   22..30 max data   30..34 ack delay (µs)
//!          34 range count   35.. ranges: (largest u64, smallest u64) each,
//!          descending, disjoint
//! DONE     14..22 delivered
//! DONE_ACK (header only)
//! ABORT    14..16 reply code
//! ```

use std::fmt;

/// The wire version this module speaks.
pub const VERSION: u8 = 1;

/// Token bytes carried in every datagram (the session token's 16 hex digits
/// as 8 bytes).
pub const TOKEN_LEN: usize = 8;

/// Bytes before a DATA frame's payload.
pub const DATA_HEADER_LEN: usize = field::DATA_PAYLOAD;

/// DATA flag: the sender waits for an acknowledgement (its window is full,
/// or it sent a probe or its last chunk), so the receiver should not hold
/// one back. Other flag bits are reserved, sent as 0 and ignored.
pub const DATA_FLAG_ACK_NOW: u8 = 1;

/// The most acknowledgement ranges one ACK carries.
pub const MAX_ACK_RANGES: usize = 64;

/// The largest payload a DATA frame may carry (so the datagram fits the
/// largest UDP payload over IPv4, 65507 bytes).
pub const MAX_PAYLOAD: usize = 65_000;

/// The smallest payload size a receiver may ask for.
pub const MIN_PAYLOAD: usize = 256;

/// The largest datagram any frame can take.
pub const MAX_DATAGRAM: usize = DATA_HEADER_LEN + MAX_PAYLOAD;

/// Field positions, named as smoltcp's wire modules name theirs.
pub mod field {
    use std::ops::Range;

    pub const VERSION: usize = 0;
    pub const KIND: usize = 1;
    pub const TOKEN: Range<usize> = 2..10;
    pub const TRANSFER: Range<usize> = 10..14;
    pub const HEADER_END: usize = 14;

    pub const HELLO_OFFSET: Range<usize> = 14..22;
    pub const HELLO_LENGTH: Range<usize> = 22..30;
    pub const HELLO_MAX_DATA: Range<usize> = 30..38;
    pub const HELLO_PAYLOAD: Range<usize> = 38..40;
    pub const HELLO_END: usize = 40;

    pub const DATA_PN: Range<usize> = 14..22;
    pub const DATA_OFFSET: Range<usize> = 22..30;
    pub const DATA_LEN: Range<usize> = 30..32;
    pub const DATA_FLAGS: usize = 32;
    pub const DATA_PAYLOAD: usize = 33;

    pub const ACK_DELIVERED: Range<usize> = 14..22;
    pub const ACK_MAX_DATA: Range<usize> = 22..30;
    pub const ACK_DELAY: Range<usize> = 30..34;
    pub const ACK_COUNT: usize = 34;
    pub const ACK_RANGES: usize = 35;
    pub const ACK_RANGE_LEN: usize = 16;

    pub const DONE_DELIVERED: Range<usize> = 14..22;
    pub const DONE_END: usize = 22;

    pub const ABORT_CODE: Range<usize> = 14..16;
    pub const ABORT_END: usize = 16;
}

/// The kind byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Receiver to sender: opens a transfer.
    Hello = 1,
    /// Sender to receiver: file bytes.
    Data = 2,
    /// Receiver to sender: what has arrived.
    Ack = 3,
    /// Receiver to sender: every byte has arrived.
    Done = 4,
    /// Sender to receiver: DONE was heard; the transfer is over.
    DoneAck = 5,
    /// Either way: the transfer is abandoned (with a reply code).
    Abort = 6,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Data,
            3 => Kind::Ack,
            4 => Kind::Done,
            5 => Kind::DoneAck,
            6 => Kind::Abort,
            _ => return None,
        })
    }
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header or than its kind needs.
    Truncated,
    /// Longer than its kind allows.
    TooLong,
    BadVersion(u8),
    BadKind(u8),
    /// A DATA length field that disagrees with the datagram, or a payload
    /// size out of range.
    BadLength,
    /// ACK ranges out of order, overlapping, inverted or too many.
    BadRanges,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("datagram truncated"),
            Error::TooLong => f.write_str("datagram longer than its kind allows"),
            Error::BadVersion(v) => write!(f, "unknown datagram version {v}"),
            Error::BadKind(k) => write!(f, "unknown datagram kind {k}"),
            Error::BadLength => f.write_str("length field disagrees with the datagram"),
            Error::BadRanges => f.write_str("malformed acknowledgement ranges"),
        }
    }
}

impl std::error::Error for Error {}

fn be_u16(b: &[u8]) -> u16 {
    b.iter().fold(0u16, |acc, &x| (acc << 8) | u16::from(x))
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

fn be_u64(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// A view over the bytes of one datagram. The only constructor,
/// [`Datagram::new_checked`], checks the bytes, and the accessors rely on
/// that check.
#[derive(Debug, Clone)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps bytes after [`Datagram::check`].
    pub fn new_checked(buffer: T) -> Result<Datagram<T>, Error> {
        let d = Datagram { buffer };
        d.check()?;
        Ok(d)
    }

    /// Checks that every field the kind has lies inside the bytes, that the
    /// length is exactly what the kind needs, and that the body is
    /// consistent (DATA length, ACK ranges, payload size).
    pub fn check(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_END {
            return Err(Error::Truncated);
        }
        if b[field::VERSION] != VERSION {
            return Err(Error::BadVersion(b[field::VERSION]));
        }
        let kind = Kind::from_byte(b[field::KIND]).ok_or(Error::BadKind(b[field::KIND]))?;
        let exact = |need: usize| match b.len() {
            n if n < need => Err(Error::Truncated),
            n if n > need => Err(Error::TooLong),
            _ => Ok(()),
        };
        match kind {
            Kind::Hello => {
                exact(field::HELLO_END)?;
                let p = usize::from(be_u16(&b[field::HELLO_PAYLOAD]));
                if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&p) {
                    return Err(Error::BadLength);
                }
                Ok(())
            }
            Kind::Data => {
                if b.len() < field::DATA_PAYLOAD {
                    return Err(Error::Truncated);
                }
                let len = usize::from(be_u16(&b[field::DATA_LEN]));
                if len == 0 || len > MAX_PAYLOAD || len != b.len() - field::DATA_PAYLOAD {
                    return Err(Error::BadLength);
                }
                Ok(())
            }
            Kind::Ack => {
                if b.len() < field::ACK_RANGES {
                    return Err(Error::Truncated);
                }
                let count = usize::from(b[field::ACK_COUNT]);
                if count > MAX_ACK_RANGES {
                    return Err(Error::BadRanges);
                }
                exact(field::ACK_RANGES + count * field::ACK_RANGE_LEN)?;
                // Descending and disjoint: each range lies wholly below the
                // previous one, with at least one missing number between.
                let mut floor: Option<u64> = None;
                for (largest, smallest) in AckRanges::over(&b[field::ACK_RANGES..]) {
                    if smallest > largest {
                        return Err(Error::BadRanges);
                    }
                    if let Some(prev_smallest) = floor {
                        if largest.checked_add(1).is_none_or(|l| l >= prev_smallest) {
                            return Err(Error::BadRanges);
                        }
                    }
                    floor = Some(smallest);
                }
                Ok(())
            }
            Kind::Done => exact(field::DONE_END),
            Kind::DoneAck => exact(field::HEADER_END),
            Kind::Abort => exact(field::ABORT_END),
        }
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    pub fn kind(&self) -> Kind {
        // Checked in `check`, so the fallback is never taken.
        Kind::from_byte(self.buffer.as_ref()[field::KIND]).unwrap_or(Kind::Data)
    }

    pub fn token(&self) -> [u8; TOKEN_LEN] {
        let mut t = [0u8; TOKEN_LEN];
        t.copy_from_slice(&self.buffer.as_ref()[field::TOKEN]);
        t
    }

    pub fn transfer(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::TRANSFER])
    }

    /// The body as a [`Body`], borrowing the payload or ranges.
    pub fn body(&self) -> Body<'_> {
        body_of(self.buffer.as_ref(), self.kind())
    }
}

/// The body of checked datagram bytes `b` of kind `kind`.
fn body_of(b: &[u8], kind: Kind) -> Body<'_> {
    let u64_at = |r: std::ops::Range<usize>| be_u64(&b[r]);
    match kind {
        Kind::Hello => Body::Hello {
            offset: u64_at(field::HELLO_OFFSET),
            length: u64_at(field::HELLO_LENGTH),
            max_data: u64_at(field::HELLO_MAX_DATA),
            payload: be_u16(&b[field::HELLO_PAYLOAD]),
        },
        Kind::Data => Body::Data {
            pn: u64_at(field::DATA_PN),
            offset: u64_at(field::DATA_OFFSET),
            ack_now: b[field::DATA_FLAGS] & DATA_FLAG_ACK_NOW != 0,
            payload: &b[field::DATA_PAYLOAD..],
        },
        Kind::Ack => Body::Ack {
            delivered: u64_at(field::ACK_DELIVERED),
            max_data: u64_at(field::ACK_MAX_DATA),
            ack_delay_us: be_u32(&b[field::ACK_DELAY]),
            ranges: AckRanges::over(&b[field::ACK_RANGES..]),
        },
        Kind::Done => Body::Done {
            delivered: u64_at(field::DONE_DELIVERED),
        },
        Kind::DoneAck => Body::DoneAck,
        Kind::Abort => Body::Abort {
            code: be_u16(&b[field::ABORT_CODE]),
        },
    }
}

/// The acknowledged packet-number ranges of an ACK, largest first, each as
/// `(largest, smallest)` inclusive. Iterates over the bytes without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRanges<'a> {
    bytes: &'a [u8],
}

impl<'a> AckRanges<'a> {
    fn over(bytes: &'a [u8]) -> AckRanges<'a> {
        AckRanges { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.len() < field::ACK_RANGE_LEN
    }
}

impl Iterator for AckRanges<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let (range, rest) = self.bytes.split_at_checked(field::ACK_RANGE_LEN)?;
        self.bytes = rest;
        Some((be_u64(&range[..8]), be_u64(&range[8..])))
    }
}

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
        Ok(Frame {
            token: d.token(),
            transfer: d.transfer(),
            body: body_of(bytes, d.kind()),
        })
    }
}

/// Writes the common header; `out` must hold at least 14 bytes.
fn emit_header(out: &mut [u8], kind: Kind, token: &[u8; TOKEN_LEN], transfer: u32) {
    out[field::VERSION] = VERSION;
    out[field::KIND] = kind as u8;
    out[field::TOKEN].copy_from_slice(token);
    out[field::TRANSFER].copy_from_slice(&transfer.to_be_bytes());
}

/// Fills a buffer front to back, remembering how far it got.
struct Emitter<'a> {
    out: &'a mut Vec<u8>,
}

impl Emitter<'_> {
    fn start<'a>(
        out: &'a mut Vec<u8>,
        kind: Kind,
        token: &[u8; TOKEN_LEN],
        transfer: u32,
    ) -> Emitter<'a> {
        out.clear();
        out.resize(field::HEADER_END, 0);
        emit_header(out, kind, token, transfer);
        Emitter { out }
    }
    fn u64(self, v: u64) -> Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(self, v: u32) -> Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u16(self, v: u16) -> Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u8(self, v: u8) -> Self {
        self.out.push(v);
        self
    }
    fn bytes(self, b: &[u8]) -> Self {
        self.out.extend_from_slice(b);
        self
    }
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
    Emitter::start(out, Kind::Hello, token, transfer)
        .u64(offset)
        .u64(length)
        .u64(max_data)
        .u16(payload);
}

/// Emits a DATA frame into `out` (cleared first). `payload` must be 1 to
/// [`MAX_PAYLOAD`] bytes.
#[allow(clippy::too_many_arguments)]
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
    Emitter::start(out, Kind::Data, token, transfer)
        .u64(pn)
        .u64(offset)
        .u16(payload.len() as u16)
        .u8(if ack_now { DATA_FLAG_ACK_NOW } else { 0 })
        .bytes(payload);
}

/// Writes a DATA header in place into the first [`DATA_HEADER_LEN`] bytes
/// of `out`, whose payload the caller has already put after it.
#[allow(clippy::too_many_arguments)]
pub fn emit_data_header(
    out: &mut [u8],
    token: &[u8; TOKEN_LEN],
    transfer: u32,
    pn: u64,
    offset: u64,
    len: u16,
    ack_now: bool,
) {
    emit_header(out, Kind::Data, token, transfer);
    out[field::DATA_PN].copy_from_slice(&pn.to_be_bytes());
    out[field::DATA_OFFSET].copy_from_slice(&offset.to_be_bytes());
    out[field::DATA_LEN].copy_from_slice(&len.to_be_bytes());
    out[field::DATA_FLAGS] = if ack_now { DATA_FLAG_ACK_NOW } else { 0 };
}

/// Emits an ACK into `out` (cleared first). `ranges` are `(largest,
/// smallest)` pairs, descending and disjoint; at most [`MAX_ACK_RANGES`]
/// are written.
#[allow(clippy::too_many_arguments)]
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
    let mut e = Emitter::start(out, Kind::Ack, token, transfer)
        .u64(delivered)
        .u64(max_data)
        .u32(ack_delay_us)
        .u8(ranges.len() as u8);
    for &(largest, smallest) in ranges {
        e = e.u64(largest).u64(smallest);
    }
}

/// Emits a DONE into `out` (cleared first).
pub fn emit_done(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32, delivered: u64) {
    Emitter::start(out, Kind::Done, token, transfer).u64(delivered);
}

/// Emits a DONE_ACK into `out` (cleared first).
pub fn emit_done_ack(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32) {
    Emitter::start(out, Kind::DoneAck, token, transfer);
}

/// Emits an ABORT into `out` (cleared first).
pub fn emit_abort(out: &mut Vec<u8>, token: &[u8; TOKEN_LEN], transfer: u32, code: u16) {
    Emitter::start(out, Kind::Abort, token, transfer).u16(code);
}

/// The token's wire form: 16 hex digits as 8 bytes. None for any other
/// text.
pub fn token_bytes(token: &str) -> Option<[u8; TOKEN_LEN]> {
    let t = token.as_bytes();
    if t.len() != 2 * TOKEN_LEN {
        return None;
    }
    let mut out = [0u8; TOKEN_LEN];
    for (o, pair) in out.iter_mut().zip(t.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3];

    fn header(kind: u8) -> Vec<u8> {
        let mut v = vec![1, kind];
        v.extend_from_slice(&T);
        v.extend_from_slice(&[0, 0, 0, 7]);
        v
    }

    fn with(mut h: Vec<u8>, rest: &[u8]) -> Vec<u8> {
        h.extend_from_slice(rest);
        h
    }

    #[test]
    fn fixed_byte_arrays_parse_or_fail_as_expected() {
        #[rustfmt::skip]
        let hello = with(header(1), &[
            0, 0, 0, 0, 0, 0, 0, 5,          // offset 5
            0, 0, 0, 0, 0, 0, 1, 0,          // length 256
            0, 0, 0, 0, 0, 0x10, 0, 0,       // max data 1 MiB
            0x05, 0x78,                      // payload 1400
        ]);
        #[rustfmt::skip]
        let data = with(header(2), &[
            0, 0, 0, 0, 0, 0, 0, 9,          // pn 9
            0, 0, 0, 0, 0, 0, 0, 3,          // offset 3
            0, 2,                            // length 2
            0x81,                            // flags: ACK_NOW, reserved bit ignored
            b'h', b'i',
        ]);
        #[rustfmt::skip]
        let ack = with(header(3), &[
            0, 0, 0, 0, 0, 0, 0, 100,        // delivered
            0, 0, 0, 0, 0, 0, 1, 0,          // max data
            0, 0, 0, 25,                     // ack delay
            2,                               // two ranges
            0, 0, 0, 0, 0, 0, 0, 20,  0, 0, 0, 0, 0, 0, 0, 15,
            0, 0, 0, 0, 0, 0, 0, 10,  0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let done = with(header(4), &[0, 0, 0, 0, 0, 0, 1, 5]);
        let done_ack = header(5);
        let abort = with(header(6), &[0x01, 0xc3]);

        let ok: Vec<(&[u8], Body)> = vec![
            (
                &hello,
                Body::Hello {
                    offset: 5,
                    length: 256,
                    max_data: 1 << 20,
                    payload: 1400,
                },
            ),
            (
                &data,
                Body::Data {
                    pn: 9,
                    offset: 3,
                    ack_now: true,
                    payload: b"hi",
                },
            ),
            (&done, Body::Done { delivered: 261 }),
            (&done_ack, Body::DoneAck),
            (&abort, Body::Abort { code: 451 }),
        ];
        for (bytes, body) in ok {
            let f = Frame::parse(bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
            assert_eq!(f.token, T);
            assert_eq!(f.transfer, 7);
            assert_eq!(f.body, body);
        }
        let f = Frame::parse(&ack).unwrap();
        let Body::Ack {
            delivered,
            max_data,
            ack_delay_us,
            ranges,
        } = f.body
        else {
            panic!("not an ack: {f:?}");
        };
        assert_eq!((delivered, max_data, ack_delay_us), (100, 256, 25));
        assert_eq!(ranges.collect::<Vec<_>>(), [(20, 15), (10, 0)]);

        let mut bad_version = hello.clone();
        bad_version[0] = 2;
        let mut bad_len = data.clone();
        bad_len[31] = 3; // says 3 bytes, carries 2
        let mut zero_len = header(2);
        zero_len.extend_from_slice(&[0; 19]);
        let mut small_payload = hello.clone();
        small_payload[38..40].copy_from_slice(&[0, 10]);
        let mut huge_payload = hello.clone();
        huge_payload[38..40].copy_from_slice(&[0xff, 0xff]);
        let mut overlapping = ack.clone();
        overlapping[35 + 16 + 7] = 15; // second range's largest = first's smallest
        let mut inverted = ack.clone();
        inverted[35 + 15] = 21; // first range smallest 21 > largest 20
        let mut too_many = ack.clone();
        too_many[34] = 65;
        let mut count_short = ack.clone();
        count_short[34] = 3;
        let mut count_long = ack.clone();
        count_long[34] = 1;

        let bad: Vec<(Vec<u8>, Error)> = vec![
            (vec![], Error::Truncated),
            (vec![1], Error::Truncated),
            (hello[..13].to_vec(), Error::Truncated),
            (bad_version, Error::BadVersion(2)),
            (with(header(0), &[]), Error::BadKind(0)),
            (with(header(7), &[]), Error::BadKind(7)),
            (with(header(255), &[0; 40]), Error::BadKind(255)),
            (hello[..39].to_vec(), Error::Truncated),
            (with(hello.clone(), &[0]), Error::TooLong),
            (small_payload, Error::BadLength),
            (huge_payload, Error::BadLength),
            (data[..32].to_vec(), Error::Truncated),
            (data[..33].to_vec(), Error::BadLength),
            (data[..34].to_vec(), Error::BadLength),
            (with(data.clone(), b"!"), Error::BadLength),
            (bad_len, Error::BadLength),
            (zero_len, Error::BadLength),
            (ack[..34].to_vec(), Error::Truncated),
            (ack[..ack.len() - 1].to_vec(), Error::Truncated),
            (overlapping, Error::BadRanges),
            (inverted, Error::BadRanges),
            (too_many, Error::BadRanges),
            (count_short, Error::Truncated),
            (count_long, Error::TooLong),
            (done[..21].to_vec(), Error::Truncated),
            (with(done.clone(), &[0]), Error::TooLong),
            (with(done_ack.clone(), &[0]), Error::TooLong),
            (abort[..15].to_vec(), Error::Truncated),
        ];
        for (bytes, want) in bad {
            assert_eq!(Frame::parse(&bytes), Err(want), "{bytes:?}");
        }
    }

    #[test]
    fn adjacent_ack_ranges_are_refused() {
        // Adjacent ranges should have been one; a receiver never sends them.
        let mut v = Vec::new();
        emit_ack(&mut v, &T, 7, 0, 0, 0, &[(20, 11), (10, 0)]);
        assert_eq!(Frame::parse(&v), Err(Error::BadRanges));
        emit_ack(&mut v, &T, 7, 0, 0, 0, &[(20, 12), (10, 0)]);
        assert!(Frame::parse(&v).is_ok());
        emit_ack(&mut v, &T, 7, 0, 0, 0, &[(u64::MAX, 0)]);
        assert!(Frame::parse(&v).is_ok());
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let mut v = Vec::new();
        emit_hello(&mut v, &T, 42, 10, 20, 30, 1400);
        assert_eq!(
            Frame::parse(&v).unwrap().body,
            Body::Hello {
                offset: 10,
                length: 20,
                max_data: 30,
                payload: 1400
            }
        );
        emit_data(&mut v, &T, 42, 3, 4, false, b"abc");
        assert_eq!(v.len(), DATA_HEADER_LEN + 3);
        assert_eq!(
            Frame::parse(&v).unwrap().body,
            Body::Data {
                pn: 3,
                offset: 4,
                ack_now: false,
                payload: b"abc"
            }
        );
        let mut w = vec![0u8; DATA_HEADER_LEN + 3];
        w[DATA_HEADER_LEN..].copy_from_slice(b"abc");
        emit_data_header(&mut w, &T, 42, 3, 4, 3, false);
        assert_eq!(w, v);
        emit_data(&mut v, &T, 42, 3, 4, true, b"abc");
        emit_data_header(&mut w, &T, 42, 3, 4, 3, true);
        assert_eq!(w, v);
        let ranges: Vec<(u64, u64)> = (0..70).rev().map(|i| (i * 3 + 1, i * 3)).collect();
        emit_ack(&mut v, &T, 42, 5, 6, 7, &ranges);
        let f = Frame::parse(&v).unwrap();
        assert_eq!(f.transfer, 42);
        let Body::Ack { ranges: got, .. } = f.body else {
            panic!()
        };
        assert_eq!(got.collect::<Vec<_>>(), ranges[..MAX_ACK_RANGES].to_vec());
        emit_done(&mut v, &T, 42, 99);
        assert_eq!(Frame::parse(&v).unwrap().body, Body::Done { delivered: 99 });
        emit_done_ack(&mut v, &T, 42);
        assert_eq!(Frame::parse(&v).unwrap().body, Body::DoneAck);
        emit_abort(&mut v, &T, 42, 426);
        assert_eq!(Frame::parse(&v).unwrap().body, Body::Abort { code: 426 });
    }

    #[test]
    fn every_prefix_and_every_single_byte_change_is_handled() {
        // Nothing a peer sends may panic the parser: every truncation and
        // every one-byte corruption of valid frames either parses or fails.
        let mut frames = Vec::new();
        let mut v = Vec::new();
        emit_hello(&mut v, &T, 1, 0, 5000, 9000, 1400);
        frames.push(v.clone());
        emit_data(&mut v, &T, 1, 0, 0, true, &[7u8; 40]);
        frames.push(v.clone());
        emit_ack(&mut v, &T, 1, 0, 0, 0, &[(9, 8), (5, 1)]);
        frames.push(v.clone());
        emit_done(&mut v, &T, 1, 5000);
        frames.push(v.clone());
        emit_abort(&mut v, &T, 1, 451);
        frames.push(v.clone());
        for f in &frames {
            for n in 0..=f.len() {
                let _ = Frame::parse(&f[..n]);
            }
            for i in 0..f.len() {
                for x in [0u8, 1, 0x7f, 0x80, 0xff] {
                    let mut g = f.clone();
                    g[i] = x;
                    if let Ok(fr) = Frame::parse(&g) {
                        if let Body::Ack { ranges, .. } = fr.body {
                            assert!(ranges.count() <= MAX_ACK_RANGES);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tokens_convert_from_hex_only() {
        assert_eq!(token_bytes("deadbeef00010203"), Some(T));
        assert_eq!(token_bytes("DEADBEEF00010203"), Some(T));
        assert_eq!(token_bytes("deadbeef0001020"), None);
        assert_eq!(token_bytes("deadbeef000102033"), None);
        assert_eq!(token_bytes("deadbeef0001020g"), None);
        assert_eq!(token_bytes("ééééééé00"), None);
        assert_eq!(token_bytes(""), None);
    }
}
