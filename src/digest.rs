//! Hex and MD5 on the wire: the one codec for every digest, token and
//! byte string written as hex digits. Strict in, lowercase out: a hex
//! string is exactly two ASCII hex digits per byte (either case), nothing
//! else (no sign, no space, no prefix).

use std::fmt;
use std::str::FromStr;

/// Lowercase hex of `bytes`, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    push_hex(&mut s, bytes);
    s
}

/// Appends the lowercase hex of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The `N` bytes that `s` spells as exactly `2 * N` hex digits (either
/// case); None for anything else.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The value of one hex digit.
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// An MD5 digest: what `FileHash`, `FileDownload` and `FileUpload` name a
/// file's content by. Shown (and written on the wire) as 32 lowercase hex
/// digits; read from 32 hex digits of either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Md5(pub [u8; 16]);

impl Md5 {
    /// The digest of `data`.
    pub fn of(data: impl AsRef<[u8]>) -> Md5 {
        Md5(md5::compute(data).0)
    }

    /// Parses exactly 32 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Md5> {
        from_hex(s).map(Md5)
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl From<md5::Digest> for Md5 {
    fn from(d: md5::Digest) -> Md5 {
        Md5(d.0)
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(32);
        push_hex(&mut s, &self.0);
        f.write_str(&s)
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5({self})")
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnMd5;

impl fmt::Display for NotAnMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("md5 must be 32 hex digits")
    }
}

impl std::error::Error for NotAnMd5 {}

impl FromStr for Md5 {
    type Err = NotAnMd5;

    fn from_str(s: &str) -> Result<Md5, NotAnMd5> {
        Md5::from_hex(s).ok_or(NotAnMd5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "900150983cd24fb0d6963f7d28e17f72";

    #[test]
    fn md5_is_lowercase_hex_and_reads_back() {
        let d = Md5::of(b"abc");
        assert_eq!(d.to_string(), ABC);
        assert_eq!(format!("{d:?}"), format!("Md5({ABC})"));
        assert_eq!(Md5::from_hex(ABC), Some(d));
        assert_eq!(Md5::from_hex(&ABC.to_ascii_uppercase()), Some(d));
        assert_eq!(ABC.parse::<Md5>(), Ok(d));
        assert_eq!(Md5::of([]).to_string(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn only_hex_digits_are_read() {
        // Each would pass a parser built on u8::from_str_radix, which takes
        // a sign, or on a loose length check.
        for bad in [
            "+f0150983cd24fb0d6963f7d28e17f72",
            "9+0150983cd24fb0d6963f7d28e17f72",
            "-f0150983cd24fb0d6963f7d28e17f72",
            " 900150983cd24fb0d6963f7d28e17f7",
            "0x0150983cd24fb0d6963f7d28e17f72",
            "900150983cd24fb0d6963f7d28e17f7g",
            "900150983cd24fb0d6963f7d28e17f7",
            "900150983cd24fb0d6963f7d28e17f722",
            "é00150983cd24fb0d6963f7d28e17f7",
            "",
        ] {
            assert_eq!(Md5::from_hex(bad), None, "{bad:?}");
            assert_eq!(bad.parse::<Md5>(), Err(NotAnMd5), "{bad:?}");
        }
        assert_eq!(from_hex::<1>("+f"), None);
        assert_eq!(from_hex::<1>("0f"), Some([0x0f]));
        assert_eq!(from_hex::<1>("F0"), Some([0xf0]));
        assert_eq!(from_hex::<0>(""), Some([]));
    }

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let h = hex(&all);
        assert_eq!(&h[..8], "00010203");
        assert_eq!(&h[h.len() - 4..], "feff");
        let back: [u8; 256] = from_hex(&h).unwrap();
        assert_eq!(back.as_slice(), all.as_slice());
        assert_eq!(from_hex::<256>(&h.to_ascii_uppercase()), Some(back));
    }
}
