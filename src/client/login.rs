//! The client's side of the challenge-response login and of the MACs
//! that follow it (PROTOCOL.md section 12, "The challenge-response
//! login"), free of I/O: the `AUTH PROOF` line, the check of the server's
//! proof, and the session's [`Seal`], which numbers the requests and
//! replies, puts a MAC on each request line and gives the MAC each reply
//! must carry. The control connection (`control`) reads and writes.

use std::collections::VecDeque;

use super::error::ClientError;
use super::transport::Peer;
use crate::proof::{self, split_mac, Mac, Nonce, Proofs, ReplyMac, SessionKey, MAC_WORD};
use crate::protocol::ReplyLine;

/// A login under way: the `AUTH PROOF` line sent, and what the server's
/// `230` must prove.
pub(super) struct Login {
    /// `AUTH PROOF CN CP`.
    pub(super) line: String,
    server: Mac,
    key: SessionKey,
}

/// The `AUTH PROOF` line for `secret`, answering the nonce of `greeting`
/// (the text of the peer at `peer`) with a fresh one of the client's. A
/// greeting without a nonce is a peer that cannot prove the secret.
pub(super) fn begin(secret: &str, greeting: &str, peer: &Peer) -> Result<Login, ClientError> {
    let server_nonce =
        proof::greeting_nonce(greeting).ok_or_else(|| ClientError::NoChallenge(peer.clone()))?;
    let mut bytes = [0u8; 16];
    crate::sys::random_bytes(&mut bytes).map_err(ClientError::Random)?;
    let client_nonce = Nonce(bytes);
    let p = Proofs::new(secret.as_bytes(), &server_nonce, &client_nonce);
    Ok(Login {
        line: format!("AUTH PROOF {client_nonce} {}", p.client),
        server: p.server,
        key: p.key,
    })
}

impl Login {
    /// Checks the peer's `230` (its lines, as read): first its
    /// `proof=SP`, then its MAC as reply 0 answering the `AUTH PROOF`
    /// line. The session's seal when both hold.
    pub(super) fn finish(self, lines: &[ReplyLine], peer: &Peer) -> Result<Seal, ClientError> {
        let Some((last, rest)) = lines.split_last() else {
            return Err(ClientError::NoSecret(peer.clone()));
        };
        let (text, mac) = match split_mac(&last.text) {
            Some((text, mac)) => (text, Some(mac)),
            None => (last.text.as_str(), None),
        };
        let proven = text
            .split([' ', ';'])
            .find_map(|w| w.strip_prefix("proof="))
            .and_then(Mac::from_hex)
            .is_some_and(|sp| sp.same_as(&self.server));
        if !proven {
            return Err(ClientError::NoSecret(peer.clone()));
        }
        let mut want = self.key.reply_mac(0, &self.line);
        for l in rest {
            want.line(format!("{:03}-{}", l.code, l.text).as_bytes());
        }
        want.line(format!("{:03} {text}", last.code).as_bytes());
        if !mac.is_some_and(|m| m.same_as(&want.finish())) {
            return Err(ClientError::Changed(peer.clone()));
        }
        Ok(Seal {
            key: self.key,
            sent: 0,
            replies: 1,
            pending: VecDeque::new(),
        })
    }
}

/// An authenticated session's numbering: every request line sent gets
/// its MAC here, and every reply is checked against the one it must
/// carry.
pub(super) struct Seal {
    key: SessionKey,
    /// The number of the last request sent (0: none yet).
    sent: u64,
    /// The number of the next reply.
    replies: u64,
    /// The requests sent and not yet answered for good (a `150` leaves
    /// its request waiting for the final reply), oldest first: a
    /// pipeline holds a window of them.
    pending: VecDeque<String>,
}

impl Seal {
    /// `line` with its MAC word, as the next request.
    pub(super) fn seal(&mut self, line: &str) -> String {
        self.sent += 1;
        let mac = self.key.request_mac(self.sent, line);
        self.pending.push_back(line.to_string());
        format!("{line}{MAC_WORD}{mac}")
    }

    /// The MAC of the next reply, to be fed its lines: one answering the
    /// oldest pending request, and (for a `421`, which may answer none)
    /// one answering no request.
    pub(super) fn next_reply(&self) -> Check {
        let request = self.pending.front().map_or("", String::as_str);
        Check {
            mac: self.key.reply_mac(self.replies, request),
            unasked: (!request.is_empty()).then(|| self.key.reply_mac(self.replies, "")),
        }
    }

    /// Counts a reply, checked, whose final code is `code`: a `1xx`
    /// leaves its request waiting for the final reply.
    pub(super) fn answered(&mut self, code: u16) {
        self.replies += 1;
        if !(100..200).contains(&code) {
            self.pending.pop_front();
        }
    }
}

/// The MAC one reply must carry, fed as its lines come.
pub(super) struct Check {
    mac: ReplyMac,
    /// The same reply as answering no request: taken for a one-line
    /// `421` only.
    unasked: Option<ReplyMac>,
}

impl Check {
    /// Takes one line of the reply (without its line end); a final line
    /// is split first, and its MAC word returned (None when it has none).
    /// Returns the line's text to parse.
    pub(super) fn line<'a>(&mut self, raw: &'a [u8], last: bool) -> (&'a [u8], Option<Mac>) {
        let (text, mac) = if last { split_word(raw) } else { (raw, None) };
        self.mac.line(text);
        match &mut self.unasked {
            Some(u) if last => u.line(text),
            _ => self.unasked = None,
        }
        (text, mac)
    }

    /// True when `got` is the MAC of the reply fed, whose final code is
    /// `code`.
    pub(super) fn holds(self, got: Option<Mac>, code: u16) -> bool {
        let Some(got) = got else {
            return false;
        };
        let unasked = self
            .unasked
            .filter(|_| code == crate::protocol::code::CLOSING)
            .is_some_and(|u| got.same_as(&u.finish()));
        got.same_as(&self.mac.finish()) || unasked
    }
}

/// A final line split before its ` mac=` word, when it ends with one.
fn split_word(raw: &[u8]) -> (&[u8], Option<Mac>) {
    let cut = raw.len().saturating_sub(proof::MAC_WORD_LEN);
    match std::str::from_utf8(&raw[cut..]).ok().and_then(split_mac) {
        Some(("", mac)) => (&raw[..cut], Some(mac)),
        _ => (raw, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_line_loses_only_a_whole_mac_word() {
        let mac = proof::hmac_md5(b"k", b"m");
        let line = format!("213 2 files mac={mac}");
        let (text, got) = split_word(line.as_bytes());
        assert_eq!(text, b"213 2 files");
        assert!(got.unwrap().same_as(&mac));
        assert_eq!(split_word(b"213 2 files").1.map(|m| m.0), None);
        let short = format!("226 mac={}", &mac.to_string()[1..]);
        assert_eq!(split_word(short.as_bytes()).0, short.as_bytes());
        // Bytes that are not UTF-8 before the word do not matter.
        let mut odd = b"550 \xff".to_vec();
        odd.extend_from_slice(format!(" mac={mac}").as_bytes());
        assert_eq!(split_word(&odd).0, b"550 \xff");
    }
}
