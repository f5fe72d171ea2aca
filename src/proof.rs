//! The challenge-response login and the MACs that follow it (PROTOCOL.md
//! section 12): HMAC-MD5 (RFC 2104) over the `md5` crate, and every
//! construction built on it, free of sockets, clocks and randomness. The
//! server's session core and the client's control connection both use
//! these, so the two sides compute one text each.
//!
//! With `S` the secret (its UTF-8 bytes), `SN` the server's nonce from
//! the greeting and `CN` the client's, both as 32 lowercase hex digits:
//!
//! - client proof: `HMAC-MD5(S, "p2pshare client proof SN CN")`
//! - server proof: `HMAC-MD5(S, "p2pshare server proof SN CN")`
//! - session key `K`: `HMAC-MD5(S, "p2pshare session key SN CN")` (16 bytes)
//! - request number `n` (1 for the first request after the login):
//!   `HMAC-MD5(K, "request n\n" + line)`
//! - reply number `r` (0 for the `230` that ends the login), answering
//!   request line `L` (empty when it answers none):
//!   `HMAC-MD5(K, "reply r\n" + L + "\n" + each line of the reply + "\n")`,
//!   the last line without its ` mac=` word.
//!
//! ```
//! use p2pshare::proof::{hmac_md5, Nonce, Proofs};
//!
//! // RFC 2104's first test vector.
//! let mac = hmac_md5(&[0x0b; 16], b"Hi There");
//! assert_eq!(mac.to_string(), "9294727a3638bb1c13f48ef8158bfc9d");
//!
//! let server = Nonce([1; 16]);
//! let client = Nonce([2; 16]);
//! let a = Proofs::new(b"s3cret", &server, &client);
//! let b = Proofs::new(b"s3cret", &server, &client);
//! assert!(a.client.same_as(&b.client));
//! assert!(!a.client.same_as(&a.server));
//! ```

use std::fmt;

use crate::digest;

/// HMAC's block size for MD5, in bytes.
const BLOCK: usize = 64;

/// The word that carries a MAC at the end of a line: ` mac=` and 32 hex
/// digits.
pub const MAC_WORD: &str = " mac=";

/// How many bytes [`MAC_WORD`] and its digits add to a line.
pub const MAC_WORD_LEN: usize = MAC_WORD.len() + 32;

/// The greeting's word that carries the server's nonce: `nonce=` and 32
/// lowercase hex digits.
pub const NONCE_WORD: &str = "nonce=";

/// HMAC-MD5 fed piece by piece, for messages too long to hold (a table
/// of a million rows).
#[derive(Clone)]
pub struct Hmac {
    inner: md5::Context,
    outer_key: [u8; BLOCK],
}

impl Hmac {
    /// A MAC keyed with `key` (of any length: a longer key than a block
    /// is hashed first, as RFC 2104 says).
    pub fn new(key: &[u8]) -> Hmac {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..16].copy_from_slice(&md5::compute(key).0);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner_key = [0u8; BLOCK];
        let mut outer_key = [0u8; BLOCK];
        for ((i, o), k) in inner_key.iter_mut().zip(outer_key.iter_mut()).zip(block) {
            *i = k ^ 0x36;
            *o = k ^ 0x5c;
        }
        let mut inner = md5::Context::new();
        inner.consume(inner_key);
        Hmac { inner, outer_key }
    }

    /// Adds `data` to the message.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.consume(data);
    }

    /// The MAC of everything added.
    pub fn finish(self) -> Mac {
        let inner = self.inner.finalize();
        let mut outer = md5::Context::new();
        outer.consume(self.outer_key);
        outer.consume(inner.0);
        Mac(outer.finalize().0)
    }
}

/// HMAC-MD5 of `message` under `key`.
pub fn hmac_md5(key: &[u8], message: &[u8]) -> Mac {
    let mut h = Hmac::new(key);
    h.update(message);
    h.finish()
}

/// A MAC or a proof: 16 bytes, written as 32 lowercase hex digits. It is
/// compared only with [`Mac::same_as`], which takes as long whichever
/// byte differs.
#[derive(Clone, Copy)]
pub struct Mac(pub [u8; 16]);

impl Mac {
    /// Parses exactly 32 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Mac> {
        digest::from_hex(s).map(Mac)
    }

    /// True when both are the same, compared without stopping at the
    /// first byte that differs.
    pub fn same_as(&self, other: &Mac) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&digest::hex(&self.0))
    }
}

/// Never shows its bytes: a proof or a MAC stays out of logs and panics.
impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mac(..)")
    }
}

/// A nonce: 128 bits from the OS's random source (made by the caller),
/// written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// Parses exactly 32 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Nonce> {
        digest::from_hex(s).map(Nonce)
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&digest::hex(&self.0))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

/// The server's nonce in a greeting's text: the word starting `nonce=`,
/// taken only when exactly 32 hex digits follow.
pub fn greeting_nonce(text: &str) -> Option<Nonce> {
    text.split([' ', ';'])
        .find_map(|w| w.strip_prefix(NONCE_WORD))
        .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(Nonce::from_hex)
}

/// The session key: what every MAC after the login is keyed with. Its
/// bytes never show ([`fmt::Debug`] hides them).
#[derive(Clone)]
pub struct SessionKey([u8; 16]);

impl SessionKey {
    /// The key as `openssl dgst -mac HMAC -macopt hexkey:` takes it (for
    /// tests and for people checking a session by hand).
    pub fn to_hex(&self) -> String {
        digest::hex(&self.0)
    }

    /// The MAC of request number `n`, whose line (without its line end
    /// and its ` mac=` word) is `line`.
    pub fn request_mac(&self, n: u64, line: &str) -> Mac {
        let mut h = Hmac::new(&self.0);
        h.update(format!("request {n}\n").as_bytes());
        h.update(line.as_bytes());
        h.finish()
    }

    /// The MAC of reply number `r` to the request line `request` (empty
    /// when it answers none): feed it the reply's lines with
    /// [`ReplyMac::line`], then [`ReplyMac::finish`].
    pub fn reply_mac(&self, r: u64, request: &str) -> ReplyMac {
        let mut h = Hmac::new(&self.0);
        h.update(format!("reply {r}\n").as_bytes());
        h.update(request.as_bytes());
        h.update(b"\n");
        ReplyMac(h)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// The MAC of one reply, fed line by line.
#[derive(Clone)]
pub struct ReplyMac(Hmac);

impl ReplyMac {
    /// Adds one line of the reply, given without its line end (and, for
    /// the last one, without its ` mac=` word).
    pub fn line(&mut self, line: &[u8]) {
        self.0.update(line);
        self.0.update(b"\n");
    }

    pub fn finish(self) -> Mac {
        self.0.finish()
    }
}

/// Everything the login derives from the secret and the two nonces.
pub struct Proofs {
    /// What the client sends in `AUTH PROOF`.
    pub client: Mac,
    /// What the server answers in its `230`.
    pub server: Mac,
    /// What every later MAC is keyed with.
    pub key: SessionKey,
}

impl Proofs {
    pub fn new(secret: &[u8], server: &Nonce, client: &Nonce) -> Proofs {
        let of = |label: &str| {
            hmac_md5(
                secret,
                format!("p2pshare {label} {server} {client}").as_bytes(),
            )
        };
        Proofs {
            client: of("client proof"),
            server: of("server proof"),
            key: SessionKey(of("session key").0),
        }
    }
}

/// Splits a line into its text and the MAC of its last word: Some when
/// it ends with exactly ` mac=` and 32 hex digits.
pub fn split_mac(line: &str) -> Option<(&str, Mac)> {
    let cut = line.len().checked_sub(MAC_WORD_LEN)?;
    let text = line.get(..cut)?;
    let word = line.get(cut..)?;
    let mac = Mac::from_hex(word.strip_prefix(MAC_WORD)?)?;
    Some((text, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2104_and_2202_vectors() {
        assert_eq!(
            hmac_md5(b"Jefe", b"what do ya want for nothing?").to_string(),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hmac_md5(&[0xaa; 16], &[0xdd; 50]).to_string(),
            "56be34521d144c88dbb8c733f0e8b3f6"
        );
        // A key longer than a block is hashed first (RFC 2202, test 6).
        assert_eq!(
            hmac_md5(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .to_string(),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn fed_in_pieces_is_the_same_as_whole() {
        let mut h = Hmac::new(b"k");
        h.update(b"hello ");
        h.update(b"world");
        assert!(h.finish().same_as(&hmac_md5(b"k", b"hello world")));
    }

    #[test]
    fn the_constructions_are_their_documented_texts() {
        let sn = Nonce([0x11; 16]);
        let cn = Nonce([0x22; 16]);
        let p = Proofs::new(b"s3cret", &sn, &cn);
        let text = format!("p2pshare client proof {sn} {cn}");
        assert!(p.client.same_as(&hmac_md5(b"s3cret", text.as_bytes())));
        // As `printf 'p2pshare client proof %s %s' SN CN | openssl dgst
        // -md5 -hmac s3cret` prints it.
        assert_eq!(p.client.to_string(), "fbd8800fbd78edc58bf921f9c57c9ab1");
        let key = hmac_md5(
            b"s3cret",
            format!("p2pshare session key {sn} {cn}").as_bytes(),
        );
        assert_eq!(p.key.to_hex(), key.to_string());
        assert!(p
            .key
            .request_mac(1, "IndexGet longlist")
            .same_as(&hmac_md5(&key.0, b"request 1\nIndexGet longlist")));
        let mut r = p.key.reply_mac(3, "NOOP");
        r.line(b"200 ok");
        assert!(r
            .finish()
            .same_as(&hmac_md5(&key.0, b"reply 3\nNOOP\n200 ok\n")));
    }

    #[test]
    fn mac_words_split_only_when_whole() {
        let mac = hmac_md5(b"k", b"m");
        let line = format!("200 ok mac={mac}");
        let (text, got) = split_mac(&line).unwrap();
        assert_eq!(text, "200 ok");
        assert!(got.same_as(&mac));
        assert!(split_mac("200 ok").is_none());
        assert!(split_mac(&format!("200 okmac={mac}")).is_none());
        assert!(split_mac(&format!("200 ok mac={}", &mac.to_string()[1..])).is_none());
        assert!(split_mac(&format!("é mac={}x", &mac.to_string()[1..])).is_none());
    }

    #[test]
    fn greeting_nonces_are_whole_words() {
        let n = Nonce([0xab; 16]);
        let g = format!("p2pshare 0.1.0 ready; share-id=00; nonce={n}; AUTH required");
        assert_eq!(greeting_nonce(&g), Some(n));
        assert_eq!(greeting_nonce("ready; nonce=abc"), None);
        assert_eq!(greeting_nonce("ready"), None);
    }
}
