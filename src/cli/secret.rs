//! `p2pshare secret`: a new random secret, easy to type and to read
//! aloud, and the warning at start about a secret weaker than one.
//!
//! A secret is 28 characters of lowercase Crockford base32 (the digits
//! and the letters but `i`, `l`, `o` and `u`, which read like `1`, `1`,
//! `0` and `v`), 5 bits each, so 140 bits from the OS's random source, in
//! 7 groups of 4 joined by `-`: `3fk9-...`. Whoever records one
//! challenge-response login can test guesses at the secret offline, as
//! fast as they can compute HMAC-MD5: only a secret too large to guess
//! holds against that.

use std::io;

/// Lowercase Crockford base32: 32 symbols, none of them easily confused.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Groups of a generated secret, and characters in each.
const GROUPS: usize = 7;
const GROUP_LEN: usize = 4;

/// The fewest letters and digits of a secret that is not called short:
/// 26 base32 characters are 130 bits, the first count past 128.
pub const STRONG_LEN: usize = 26;

pub const SECRET_USAGE: &str = "\
usage: p2pshare secret

Prints a new random secret for --secret (or P2PSHARE_SECRET): 28 characters
of lowercase base32 (digits and letters but i, l, o, u) in 7 groups of 4,
140 bits from the system's random source. The same secret goes to both
peers; the dashes are part of it.

Why so long: the secret never crosses the wire, but whoever records one
login can test guesses at it offline, as fast as a computer can, without
ever asking the peer. A short or made-up secret falls to that; one of
these does not. serve, client and peer warn at start about a secret with
fewer than 26 letters and digits.

options:
  -h, --help             show this help
";

/// A new secret: 7 groups of 4 lowercase base32 characters joined by
/// `-` (140 bits), from [`crate::sys::random_bytes`].
pub fn generate() -> io::Result<String> {
    let mut bytes = [0u8; 18];
    crate::sys::random_bytes(&mut bytes)?;
    Ok(encode(&bytes))
}

/// The first 140 bits of `bytes` (18 of them) as the secret's text.
fn encode(bytes: &[u8; 18]) -> String {
    let mut out = String::with_capacity(GROUPS * (GROUP_LEN + 1));
    for i in 0..GROUPS * GROUP_LEN {
        if i > 0 && i % GROUP_LEN == 0 {
            out.push('-');
        }
        // Symbol i is bits 5i .. 5i+4, most significant first.
        let bit = i * 5;
        let pair = u16::from(bytes[bit / 8]) << 8 | u16::from(bytes[bit / 8 + 1]);
        let value = (pair >> (11 - bit % 8)) & 0x1f;
        out.push(char::from(ALPHABET[usize::from(value)]));
    }
    out
}

/// The warning for a secret with fewer letters and digits than
/// [`STRONG_LEN`]; None for a strong one.
pub fn weak(secret: &str) -> Option<String> {
    let n = secret.chars().filter(|c| c.is_alphanumeric()).count();
    (n < STRONG_LEN).then(|| {
        format!(
            "p2pshare: warning: the secret is short ({n} letters and digits, fewer than \
             {STRONG_LEN}): whoever records one login can guess it offline; \
             'p2pshare secret' prints a strong one"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_seven_groups_of_four_base32_characters() {
        let s = encode(&[0; 18]);
        assert_eq!(s, "0000-0000-0000-0000-0000-0000-0000");
        let s = encode(&[0xff; 18]);
        assert_eq!(s, "zzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzz");
        // 0b00001_00010_00011_... : one symbol per 5 bits, in order.
        let mut b = [0u8; 18];
        b[0] = 0b0000_1000;
        b[1] = 0b1000_0110;
        assert!(encode(&b).starts_with("123"), "{}", encode(&b));
        let g = generate().unwrap();
        assert_eq!(g.len(), 34);
        assert!(g
            .split('-')
            .all(|p| p.len() == 4 && p.bytes().all(|c| ALPHABET.contains(&c))));
        assert!(weak(&g).is_none());
        assert_ne!(g, generate().unwrap());
    }

    #[test]
    fn a_secret_below_26_letters_and_digits_is_short() {
        assert!(weak("s3cret").is_some());
        assert!(weak(&"a".repeat(25)).is_some());
        assert!(weak(&"-".repeat(40)).is_some());
        assert!(weak(&"a".repeat(26)).is_none());
    }
}
