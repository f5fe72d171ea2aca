//! The UDP data channel's datagram layout, in the manner of smoltcp's wire
//! modules: [`Datagram`] is a view over the bytes of one datagram whose
//! getters and setters read and write through the same named field ranges
//! ([`field`]); [`Frame`] is the parsed value of a whole datagram, and the
//! `emit_*` functions write one.
//!
//! Every datagram starts with the same 14-byte header; the body depends on
//! the kind. All integers are big-endian. [`Datagram::new_checked`] checks
//! the length (and the body's inner consistency) before any field can be
//! read, so the accessors that follow never read out of range; a datagram
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
use std::ops::Range;

mod repr;

pub use self::repr::{
    emit_abort, emit_ack, emit_data, emit_data_header, emit_done, emit_done_ack, emit_hello, Body,
    Frame,
};

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

/// The longest datagram a receiver sends (an ACK with every range).
pub const MAX_FROM_RECEIVER: usize = field::ACK_RANGES + MAX_ACK_RANGES * field::ACK_RANGE_LEN;

/// Field positions, named as smoltcp's wire modules name theirs. Getters
/// and setters both go through these.
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

    /// The `i`th ACK range: largest, then smallest packet number.
    pub const fn ack_range(i: usize) -> (Range<usize>, Range<usize>) {
        let at = ACK_RANGES + i * ACK_RANGE_LEN;
        (at..at + 8, at + 8..at + 16)
    }

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

/// Big-endian integer at `r`; 0 where the bytes do not reach (never after
/// [`Datagram::check`]).
fn get_be(b: &[u8], r: Range<usize>) -> u64 {
    b.get(r)
        .unwrap_or_default()
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// Writes the low bytes of `v` big-endian over `r`.
fn set_be(b: &mut [u8], r: Range<usize>, v: u64) {
    if let Some(dst) = b.get_mut(r) {
        let n = dst.len();
        for (i, d) in dst.iter_mut().enumerate() {
            *d = (v >> (8 * (n - 1 - i))) as u8;
        }
    }
}

/// A view over the bytes of one datagram. Reading needs
/// [`Datagram::new_checked`] (or a buffer the caller filled itself); the
/// setters write through the same [`field`] ranges the getters read.
#[derive(Debug, Clone)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps bytes without checking them: for a buffer about to be
    /// written (the setters never write past its end).
    pub fn new_unchecked(buffer: T) -> Datagram<T> {
        Datagram { buffer }
    }

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
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_END {
            return Err(Error::Truncated);
        }
        if self.version() != VERSION {
            return Err(Error::BadVersion(self.version()));
        }
        let byte = self.kind_byte();
        let kind = Kind::from_byte(byte).ok_or(Error::BadKind(byte))?;
        let exact = |need: usize| match len {
            n if n < need => Err(Error::Truncated),
            n if n > need => Err(Error::TooLong),
            _ => Ok(()),
        };
        match kind {
            Kind::Hello => {
                exact(field::HELLO_END)?;
                let p = usize::from(self.hello_payload());
                if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&p) {
                    return Err(Error::BadLength);
                }
                Ok(())
            }
            Kind::Data => {
                if len < field::DATA_PAYLOAD {
                    return Err(Error::Truncated);
                }
                let n = usize::from(self.data_len());
                if n == 0 || n > MAX_PAYLOAD || n != len - field::DATA_PAYLOAD {
                    return Err(Error::BadLength);
                }
                Ok(())
            }
            Kind::Ack => {
                if len < field::ACK_RANGES {
                    return Err(Error::Truncated);
                }
                let count = usize::from(self.ack_count());
                if count > MAX_ACK_RANGES {
                    return Err(Error::BadRanges);
                }
                exact(field::ACK_RANGES + count * field::ACK_RANGE_LEN)?;
                self.check_ranges()
            }
            Kind::Done => exact(field::DONE_END),
            Kind::DoneAck => exact(field::HEADER_END),
            Kind::Abort => exact(field::ABORT_END),
        }
    }

    /// Descending and disjoint: each range lies wholly below the previous
    /// one, with at least one missing number between.
    fn check_ranges(&self) -> Result<(), Error> {
        let mut floor: Option<u64> = None;
        for (largest, smallest) in ranges_in(self.bytes(), self.ack_count()) {
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

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes().get(at).copied().unwrap_or(0)
    }

    pub fn version(&self) -> u8 {
        self.byte(field::VERSION)
    }

    fn kind_byte(&self) -> u8 {
        self.byte(field::KIND)
    }

    pub fn kind(&self) -> Kind {
        // Checked in `check`, so the fallback is never taken.
        Kind::from_byte(self.kind_byte()).unwrap_or(Kind::Data)
    }

    pub fn token(&self) -> [u8; TOKEN_LEN] {
        let mut t = [0u8; TOKEN_LEN];
        if let Some(src) = self.bytes().get(field::TOKEN) {
            t.copy_from_slice(src);
        }
        t
    }
}

/// Declares each integer field once, by its range: a getter, and a setter
/// that writes the same bytes.
macro_rules! fields {
    ($($get:ident / $set:ident: $ty:ty = $range:expr;)*) => {
        impl<T: AsRef<[u8]>> Datagram<T> {
            $(
                pub fn $get(&self) -> $ty {
                    get_be(self.bytes(), $range) as $ty
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
            $(
                pub fn $set(&mut self, v: $ty) {
                    set_be(self.bytes_mut(), $range, v.into());
                }
            )*
        }
    };
}

/// A one-byte field as a range.
const fn at(i: usize) -> Range<usize> {
    i..i + 1
}

fields! {
    transfer / set_transfer: u32 = field::TRANSFER;
    hello_offset / set_hello_offset: u64 = field::HELLO_OFFSET;
    hello_length / set_hello_length: u64 = field::HELLO_LENGTH;
    hello_max_data / set_hello_max_data: u64 = field::HELLO_MAX_DATA;
    hello_payload / set_hello_payload: u16 = field::HELLO_PAYLOAD;
    data_pn / set_data_pn: u64 = field::DATA_PN;
    data_offset / set_data_offset: u64 = field::DATA_OFFSET;
    data_len / set_data_len: u16 = field::DATA_LEN;
    data_flags / set_data_flags: u8 = at(field::DATA_FLAGS);
    ack_delivered / set_ack_delivered: u64 = field::ACK_DELIVERED;
    ack_max_data / set_ack_max_data: u64 = field::ACK_MAX_DATA;
    ack_delay_us / set_ack_delay_us: u32 = field::ACK_DELAY;
    ack_count / set_ack_count: u8 = at(field::ACK_COUNT);
    done_delivered / set_done_delivered: u64 = field::DONE_DELIVERED;
    abort_code / set_abort_code: u16 = field::ABORT_CODE;
}

impl<'a, T: AsRef<[u8]> + ?Sized> Datagram<&'a T> {
    /// A DATA frame's payload.
    pub fn data_payload(&self) -> &'a [u8] {
        self.buffer
            .as_ref()
            .get(field::DATA_PAYLOAD..)
            .unwrap_or_default()
    }

    /// An ACK's ranges, as many as the count field says (all of them, after
    /// [`Datagram::check`]).
    pub fn ack_ranges(&self) -> AckRanges<'a> {
        ranges_in(self.buffer.as_ref(), self.ack_count())
    }
}

/// The first `count` ACK ranges in `b`, or as many as it holds.
fn ranges_in(b: &[u8], count: u8) -> AckRanges<'_> {
    let end = field::ACK_RANGES + usize::from(count) * field::ACK_RANGE_LEN;
    AckRanges {
        bytes: b
            .get(field::ACK_RANGES..end.min(b.len()))
            .unwrap_or_default(),
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Writes the common header: version, kind, token, transfer id.
    pub fn set_header(&mut self, kind: Kind, token: &[u8; TOKEN_LEN], transfer: u32) {
        let b = self.bytes_mut();
        if let Some(h) = b.get_mut(..field::HEADER_END) {
            h[field::VERSION] = VERSION;
            h[field::KIND] = kind as u8;
            h[field::TOKEN].copy_from_slice(token);
        }
        self.set_transfer(transfer);
    }

    /// The payload bytes after a DATA header, to fill in place.
    pub fn data_payload_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
            .get_mut(field::DATA_PAYLOAD..)
            .unwrap_or_default()
    }

    /// Writes the `i`th range (count it in [`Datagram::set_ack_count`]).
    pub fn set_ack_range(&mut self, i: usize, largest: u64, smallest: u64) {
        let (hi, lo) = field::ack_range(i);
        set_be(self.bytes_mut(), hi, largest);
        set_be(self.bytes_mut(), lo, smallest);
    }
}

/// The acknowledged packet-number ranges of an ACK, largest first, each as
/// `(largest, smallest)` inclusive. Iterates over the bytes without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRanges<'a> {
    bytes: &'a [u8],
}

impl AckRanges<'_> {
    pub fn is_empty(&self) -> bool {
        self.bytes.len() < field::ACK_RANGE_LEN
    }
}

impl Iterator for AckRanges<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let (range, rest) = self.bytes.split_at_checked(field::ACK_RANGE_LEN)?;
        self.bytes = rest;
        Some((get_be(range, 0..8), get_be(range, 8..16)))
    }
}

/// The token's wire form: 16 hex digits as 8 bytes. None for any other
/// text.
pub fn token_bytes(token: &str) -> Option<[u8; TOKEN_LEN]> {
    crate::digest::from_hex(token)
}

/// True when `bytes` are at least a header long and carry `token`: the
/// cheap first filter before a datagram is queued or parsed.
pub fn carries_token(bytes: &[u8], token: &[u8; TOKEN_LEN]) -> bool {
    bytes.len() >= field::HEADER_END
        && bytes
            .get(field::TOKEN)
            .is_some_and(|t| crate::transfer::token::equal(t, token))
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

    #[rustfmt::skip]
    fn fixed_hello() -> Vec<u8> {
        with(header(1), &[
            0, 0, 0, 0, 0, 0, 0, 5,          // offset 5
            0, 0, 0, 0, 0, 0, 1, 0,          // length 256
            0, 0, 0, 0, 0, 0x10, 0, 0,       // max data 1 MiB
            0x05, 0x78,                      // payload 1400
        ])
    }

    #[rustfmt::skip]
    fn fixed_data(flags: u8) -> Vec<u8> {
        with(header(2), &[
            0, 0, 0, 0, 0, 0, 0, 9,          // pn 9
            0, 0, 0, 0, 0, 0, 0, 3,          // offset 3
            0, 2,                            // length 2
            flags,
            b'h', b'i',
        ])
    }

    #[rustfmt::skip]
    fn fixed_ack() -> Vec<u8> {
        with(header(3), &[
            0, 0, 0, 0, 0, 0, 0, 100,        // delivered
            0, 0, 0, 0, 0, 0, 1, 0,          // max data
            0, 0, 0, 25,                     // ack delay
            2,                               // two ranges
            0, 0, 0, 0, 0, 0, 0, 20,  0, 0, 0, 0, 0, 0, 0, 15,
            0, 0, 0, 0, 0, 0, 0, 10,  0, 0, 0, 0, 0, 0, 0, 0,
        ])
    }

    fn fixed_done() -> Vec<u8> {
        with(header(4), &[0, 0, 0, 0, 0, 0, 1, 5])
    }

    fn fixed_abort() -> Vec<u8> {
        with(header(6), &[0x01, 0xc3])
    }

    #[test]
    fn fixed_byte_arrays_parse_or_fail_as_expected() {
        let hello = fixed_hello();
        // ACK_NOW, and a reserved bit that is ignored.
        let data = fixed_data(0x81);
        let ack = fixed_ack();
        let done = fixed_done();
        let done_ack = header(5);
        let abort = fixed_abort();

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

    #[test]
    fn emit_writes_the_fixed_byte_arrays() {
        let mut v = Vec::new();
        let table: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                {
                    emit_hello(&mut v, &T, 7, 5, 256, 1 << 20, 1400);
                    v.clone()
                },
                fixed_hello(),
            ),
            (
                {
                    emit_data(&mut v, &T, 7, 9, 3, true, b"hi");
                    v.clone()
                },
                fixed_data(DATA_FLAG_ACK_NOW),
            ),
            (
                {
                    emit_data(&mut v, &T, 7, 9, 3, false, b"hi");
                    v.clone()
                },
                fixed_data(0),
            ),
            (
                {
                    emit_ack(&mut v, &T, 7, 100, 256, 25, &[(20, 15), (10, 0)]);
                    v.clone()
                },
                fixed_ack(),
            ),
            (
                {
                    emit_done(&mut v, &T, 7, 261);
                    v.clone()
                },
                fixed_done(),
            ),
            (
                {
                    emit_done_ack(&mut v, &T, 7);
                    v.clone()
                },
                header(5),
            ),
            (
                {
                    emit_abort(&mut v, &T, 7, 451);
                    v.clone()
                },
                fixed_abort(),
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
        // The in-place DATA header writes the same bytes as emit_data.
        let mut w = fixed_data(0);
        w[..DATA_HEADER_LEN].fill(0xee);
        emit_data_header(&mut w, &T, 7, 9, 3, 2, true);
        assert_eq!(w, fixed_data(DATA_FLAG_ACK_NOW));
    }

    #[test]
    fn setters_write_what_getters_read() {
        let mut b = [0u8; field::HELLO_END];
        let mut d = Datagram::new_unchecked(&mut b[..]);
        d.set_header(Kind::Hello, &T, 0xfeed_beef);
        d.set_hello_offset(u64::MAX - 1);
        d.set_hello_length(2);
        d.set_hello_max_data(3);
        d.set_hello_payload(MAX_PAYLOAD as u16);
        let d = Datagram::new_checked(&b[..]).unwrap();
        assert_eq!(
            (d.version(), d.kind(), d.token()),
            (VERSION, Kind::Hello, T)
        );
        assert_eq!(d.transfer(), 0xfeed_beef);
        assert_eq!(d.hello_offset(), u64::MAX - 1);
        assert_eq!((d.hello_length(), d.hello_max_data()), (2, 3));
        assert_eq!(usize::from(d.hello_payload()), MAX_PAYLOAD);

        let mut b = vec![0u8; field::ack_range(2).0.start];
        let mut d = Datagram::new_unchecked(&mut b[..]);
        d.set_header(Kind::Ack, &T, 1);
        d.set_ack_count(2);
        d.set_ack_range(0, 9, 7);
        d.set_ack_range(1, 5, 5);
        // A range past the end of the buffer is not written.
        d.set_ack_range(2, 1, 0);
        let d = Datagram::new_checked(&b[..]).unwrap();
        assert_eq!(d.ack_ranges().collect::<Vec<_>>(), [(9, 7), (5, 5)]);
    }

    #[test]
    fn the_token_filter_needs_a_header_and_the_token() {
        let mut v = Vec::new();
        emit_done_ack(&mut v, &T, 3);
        assert!(carries_token(&v, &T));
        assert!(!carries_token(&v[..13], &T));
        let mut other = T;
        other[7] ^= 1;
        assert!(!carries_token(&v, &other));
        assert!(!carries_token(b"", &T));
    }
}
