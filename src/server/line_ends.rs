//! The line ends of a session's replies: LF as the native protocol
//! writes them, CR LF once the session speaks FTP.

use std::io::{self, Write};

/// The output of a session: LF line ends as the native protocol writes
/// them, or CR LF once the session speaks FTP.
#[derive(Debug)]
pub(super) struct LineEnds<W> {
    pub inner: W,
    pub crlf: bool,
}

impl<W: Write> Write for LineEnds<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.crlf {
            return self.inner.write(buf);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(0) => self.inner.write_all(b"\r\n").map(|()| 1),
            Some(i) => self.inner.write(&buf[..i]),
            None => self.inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
