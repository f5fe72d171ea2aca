//! The upload form's body (`multipart/form-data`, RFC 7578), read as it
//! arrives: part headers bounded, file bytes streamed to their upload
//! with their md5, never held whole.

use std::io::{self, BufRead, Write};

use crate::digest::Md5;
use crate::share::hash::Streaming;
use crate::share::Incoming;

/// The most bytes of one part's headers, and of the preamble.
pub const MAX_PART_HEAD: usize = 8 * 1024;

/// The parts of one body.
pub(super) struct Parts<'r, R: BufRead> {
    from: &'r mut R,
    /// `CR LF -- boundary`: what ends a part's body.
    end: Vec<u8>,
    /// Bytes read and not used yet.
    pending: Vec<u8>,
    /// The closing delimiter was read (or the body ended).
    done: bool,
    started: bool,
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl<'r, R: BufRead> Parts<'r, R> {
    pub fn new(from: &'r mut R, boundary: &str) -> Self {
        Parts {
            from,
            end: format!("\r\n--{boundary}").into_bytes(),
            pending: Vec::new(),
            done: false,
            started: false,
        }
    }

    /// Reads more into `pending`; false at the end of the body.
    fn fill(&mut self) -> io::Result<bool> {
        let buf = self.from.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let n = buf.len();
        self.pending.extend_from_slice(buf);
        self.from.consume(n);
        Ok(true)
    }

    /// One line (without CR LF), at most [`MAX_PART_HEAD`] bytes.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.pending.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(l);
            }
            if self.pending.len() > MAX_PART_HEAD {
                return Err(bad("form line too long"));
            }
            if !self.fill()? {
                return Err(bad("form body ended early"));
            }
        }
    }

    /// The next part that holds a file: its file name. Other fields and
    /// empty file inputs are skipped. None after the last part.
    pub fn next_file(&mut self) -> io::Result<Option<String>> {
        if !self.started {
            self.started = true;
            // The preamble, up to the first delimiter line.
            let first = self.end[2..].to_vec();
            let mut seen = 0;
            loop {
                let l = self.line()?;
                if l == first {
                    break;
                }
                seen += l.len() + 2;
                if seen > MAX_PART_HEAD {
                    return Err(bad("no form boundary"));
                }
            }
        }
        while !self.done {
            let mut filename = None;
            let mut seen = 0;
            loop {
                let l = self.line()?;
                if l.is_empty() {
                    break;
                }
                seen += l.len() + 2;
                if seen > MAX_PART_HEAD {
                    return Err(bad("form part headers too large"));
                }
                let l = String::from_utf8_lossy(&l);
                if let Some((h, v)) = l.split_once(':') {
                    if h.trim().eq_ignore_ascii_case("content-disposition") {
                        filename = file_name_of(v);
                    }
                }
            }
            match filename {
                Some(f) if !f.is_empty() => return Ok(Some(f)),
                _ => self.skip_part()?,
            }
        }
        Ok(None)
    }

    /// Streams the part's body to `out`; then reads what follows its
    /// delimiter.
    fn body_to(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let n = self.end.len();
        loop {
            if let Some(i) = find(&self.pending, &self.end) {
                out(&self.pending[..i])?;
                self.pending.drain(..i + n);
                break;
            }
            if self.pending.len() >= n {
                let keep = self.pending.len() - (n - 1);
                out(&self.pending[..keep])?;
                self.pending.drain(..keep);
            }
            if !self.fill()? {
                return Err(bad("form body ended inside a part"));
            }
        }
        // `--` closes the body; otherwise the rest of the line is padding.
        while self.pending.len() < 2 {
            if !self.fill()? {
                self.done = true;
                return Ok(());
            }
        }
        if self.pending.starts_with(b"--") {
            self.done = true;
        } else {
            self.line()?;
        }
        Ok(())
    }

    pub fn skip_part(&mut self) -> io::Result<()> {
        self.body_to(&mut |_| Ok(()))
    }

    /// Writes the part's bytes into `incoming`; their md5.
    pub fn copy_part(&mut self, incoming: &Incoming) -> io::Result<Md5> {
        let mut file = io::BufWriter::with_capacity(256 * 1024, incoming.file()?);
        let mut md5 = Streaming::new();
        self.body_to(&mut |b| {
            md5.consume(b);
            file.write_all(b)
        })?;
        file.flush()?;
        md5.finalize()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `filename` of a `Content-Disposition: form-data` value, as
/// browsers write it (`"` as `%22`, CR and LF as `%0D`, `%0A`), its last
/// path component only.
fn file_name_of(v: &str) -> Option<String> {
    let i = v.find("filename=\"")?;
    let rest = &v[i + "filename=\"".len()..];
    let mut name = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => name.push(c),
                c => {
                    name.push('\\');
                    name.push(c);
                }
            },
            c => name.push(c),
        }
    }
    let name = name
        .replace("%22", "\"")
        .replace("%0D", "\r")
        .replace("%0A", "\n");
    Some(name.rsplit('/').next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_skips_fields() {
        let body = "pre\r\n--XY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nfield\r\n\
                    --XY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"q%22 x.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nline\r\n--X not yet\r\n--XY--\r\n";
        let mut r = io::Cursor::new(body.as_bytes().to_vec());
        let mut p = Parts::new(&mut r, "XY");
        assert_eq!(p.next_file().unwrap().as_deref(), Some("q\" x.txt"));
        let mut got = Vec::new();
        p.body_to(&mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, b"line\r\n--X not yet");
        assert_eq!(p.next_file().unwrap(), None);
    }
}
