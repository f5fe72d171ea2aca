//! The MACs of a session's replies after a proof login (PROTOCOL.md
//! section 12): every reply a session writes passes here, whichever front
//! end wrote it, on its way to the line ends. Before the login (and in a
//! session without one) the bytes pass through as they are; after it,
//! each line is held until its LF, fed to the reply's MAC, and the last
//! line of each reply (`DDD text`) gets ` mac=<hex>` before its line end.
//! One line is held at a time: a table of any size streams.

use std::io::{self, Write};

use crate::proof::{ReplyMac, SessionKey, MAC_WORD};

/// A writer of replies that adds their MACs once it has a key.
pub(super) struct Macs<W> {
    inner: W,
    /// The request line the replies written now answer (empty for none).
    request: String,
    keyed: Option<Keyed>,
}

/// What a session with a key keeps for its replies' MACs.
struct Keyed {
    key: SessionKey,
    /// The number of the next reply.
    next: u64,
    /// The MAC of the reply being written, from its first line on.
    reply: Option<ReplyMac>,
    /// The line being written, up to its LF.
    line: Vec<u8>,
}

impl<W: Write> Macs<W> {
    pub(super) fn new(inner: W) -> Macs<W> {
        Macs {
            inner,
            request: String::new(),
            keyed: None,
        }
    }

    /// The replies written from now on answer `request` (as the client
    /// sent it, without its line end and its MAC word; empty for replies
    /// that answer none).
    pub(super) fn answering(&mut self, request: String) {
        self.request = request;
    }

    /// From the next reply on, every reply carries its MAC under `key`,
    /// numbered from 0.
    pub(super) fn set_key(&mut self, key: SessionKey) {
        self.keyed = Some(Keyed {
            key,
            next: 0,
            reply: None,
            line: Vec::with_capacity(256),
        });
    }

    pub(super) fn get_ref(&self) -> &W {
        &self.inner
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub(super) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Macs<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(k) = &mut self.keyed else {
            return self.inner.write(buf);
        };
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            k.line.extend_from_slice(&rest[..i]);
            k.end_line(&mut self.inner, &self.request)?;
            rest = &rest[i + 1..];
        }
        k.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Keyed {
    /// Writes the line held, with the reply's MAC when it is the reply's
    /// last, and its LF.
    fn end_line(&mut self, out: &mut impl Write, request: &str) -> io::Result<()> {
        let (key, next) = (&self.key, self.next);
        let mac = self
            .reply
            .get_or_insert_with(|| key.reply_mac(next, request));
        mac.line(&self.line);
        out.write_all(&self.line)?;
        if is_last_line(&self.line) {
            if let Some(mac) = self.reply.take() {
                write!(out, "{MAC_WORD}{}", mac.finish())?;
            }
            self.next += 1;
        }
        self.line.clear();
        out.write_all(b"\n")
    }
}

/// True for the last line of a reply: a code and a space (`DDD text`),
/// not `DDD-` nor a line of a block that starts with a space.
fn is_last_line(line: &[u8]) -> bool {
    line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' '
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::{Nonce, Proofs};

    #[test]
    fn without_a_key_the_bytes_pass_as_they_are() {
        let mut m = Macs::new(Vec::new());
        m.answering("NOOP".into());
        m.write_all(b"200 ok\n213-a\n213 1").unwrap();
        assert_eq!(m.into_inner(), b"200 ok\n213-a\n213 1");
    }

    #[test]
    fn each_reply_ends_with_the_mac_of_its_lines() {
        let p = Proofs::new(b"s", &Nonce([1; 16]), &Nonce([2; 16]));
        let mut m = Macs::new(Vec::new());
        m.answering("AUTH PROOF x y".into());
        m.set_key(p.key.clone());
        // Written in pieces that split lines anywhere.
        m.write_all(b"230 authenticated; pr").unwrap();
        m.write_all(b"oof=x\n").unwrap();
        m.answering("IndexGet longlist".into());
        m.write_all(b"213-name\n213-a\tb\n 1 2 3\n213 1 files\n")
            .unwrap();
        let text = String::from_utf8(m.into_inner()).unwrap();
        let mut first = p.key.reply_mac(0, "AUTH PROOF x y");
        first.line(b"230 authenticated; proof=x");
        let mut second = p.key.reply_mac(1, "IndexGet longlist");
        for l in ["213-name", "213-a\tb", " 1 2 3", "213 1 files"] {
            second.line(l.as_bytes());
        }
        assert_eq!(
            text,
            format!(
                "230 authenticated; proof=x mac={}\n\
                 213-name\n213-a\tb\n 1 2 3\n213 1 files mac={}\n",
                first.finish(),
                second.finish()
            )
        );
    }
}
