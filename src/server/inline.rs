//! The inline data mode of a stdio session (`serve --stdio`): a stream
//! that has no other socket carries a transfer's bytes itself. A
//! download answers its 150 row and `150 DATA inline bytes=<n>`, writes
//! exactly n raw bytes, then its final reply; an upload answers
//! `150 DATA inline bytes=<size>`, reads exactly size raw bytes, then its
//! final reply. The checks before and the placement after are those of
//! the data channels (`transfers.rs`). Like them it is not a front end:
//! the native front end hands a stdio session's transfers here.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::time::Duration;

use super::core::{Control, Session};
use super::transfers;
use crate::digest::Md5;
use crate::protocol::{inline_data_line, FileOp, Reply, Transport};
use crate::share::OpenedFile;
use crate::transfer::tcp::{receive_hashed, ReceiveOutcome};
use crate::transfer::{CopyError, Source};

impl<C: Control, W: Write> Session<'_, C, W> {
    /// `FileDownload` on a stdio session: its bytes inline (UDP refused);
    /// returns the final reply.
    pub(super) fn download_inline(
        &mut self,
        transport: Transport,
        name: &str,
        offset: u64,
    ) -> io::Result<Reply<'static>> {
        if transport == Transport::Udp {
            return Ok(Reply::udp_over_stdio());
        }
        let (f, md5) = match transfers::to_send(self.shared(), name, offset) {
            Ok(opened) => opened,
            Err(refused) => return Ok(refused),
        };
        let len = f.size() - offset;
        let data = inline_data_line(len);
        let row = Reply::download_announce(name, f.size(), f.mtime, md5, &data);
        self.announce(row)?;
        self.inline_transfer(Some(self.shared().config.data_timeout));
        let sent = send(&f, offset, len, &mut Stream(self));
        self.inline_transfer(None);
        Ok(match sent? {
            Sent::Whole => Reply::download_complete(name, f.size(), md5),
            Sent::Changed => Reply::changed_while_sent(name),
            Sent::ReadFailed(e) => Reply::cannot(FileOp::Read, name, &e),
        })
    }

    /// `FileUpload` on a stdio session: its bytes inline; returns the
    /// final reply. When they stop coming midway the stream is out of
    /// step: the session closes after the reply.
    pub(super) fn upload_inline(
        &mut self,
        name: &str,
        size: u64,
        want: Md5,
    ) -> io::Result<Reply<'static>> {
        let shared = self.shared();
        let incoming = match transfers::to_receive(shared, name, want)
            .and_then(|()| transfers::begin_upload(shared, name))
        {
            Ok(incoming) => incoming,
            Err(refused) => return Ok(refused),
        };
        self.announce(Reply::inline_data(size))?;
        let stall = shared.config.data_timeout;
        self.inline_transfer(Some(stall));
        let mut sink = match incoming.file() {
            Ok(f) => Sink::new(Ok(BufWriter::with_capacity(256 * 1024, f))),
            Err(e) => Sink::new(Err(e)),
        };
        let outcome = receive_hashed(&mut Stream(self), Some(size), &mut sink);
        self.inline_transfer(None);
        Ok(match (outcome, sink.failed()) {
            (ReceiveOutcome::Broken(got, e), _) => {
                self.close_after_reply();
                Reply::inline_upload_broken(got, size, &why_broken(&e, stall))
            }
            (_, Some(e)) => Reply::not_stored(name, &e),
            (outcome, None) => transfers::stored(incoming, &outcome, name, size, want),
        })
    }
}

/// The control stream of a session as file bytes cross it.
struct Stream<'s, 'a, C: Control, W: Write>(&'s mut Session<'a, C, W>);

impl<C: Control, W: Write> Write for Stream<'_, '_, C, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_inline(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<C: Control, W: Write> Read for Stream<'_, '_, C, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_inline(buf)
    }
}

/// How an inline download's bytes went: every one the file's own and the
/// file unchanged, or not.
enum Sent {
    Whole,
    Changed,
    ReadFailed(io::Error),
}

/// Writes exactly `len` bytes of `file` from `offset` on to `out`: the
/// file's own, then zeros in place of those it can no longer give (it
/// shrank, or reading it failed), so that the stream stays in step with
/// the count the 150 promised. An error only when writing fails.
fn send(file: &OpenedFile, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<Sent> {
    let mut counted = Counted { inner: out, n: 0 };
    let sent = match file.copy_to(offset, len, &mut counted) {
        Ok(n) if n == len => match file.changed() {
            Ok(false) => Sent::Whole,
            Ok(true) => Sent::Changed,
            Err(e) => Sent::ReadFailed(e),
        },
        Ok(_) => Sent::Changed,
        Err(CopyError::Read(e)) => Sent::ReadFailed(e),
        Err(CopyError::Write(e)) => return Err(e),
    };
    let missing = len - counted.n;
    pad(counted.inner, missing)?;
    Ok(sent)
}

/// Writes `n` zero bytes.
fn pad(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 8192] = [0; 8192];
    while n > 0 {
        let k = usize::try_from(n).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// A writer that counts what it took.
struct Counted<'w> {
    inner: &'w mut dyn Write,
    n: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where an inline upload's bytes go: its temporary file, until writing
/// it fails; from then on they are read and dropped, so that the stream
/// stays in step (the reply says nothing was stored).
struct Sink<'f> {
    file: Option<BufWriter<&'f File>>,
    failed: Option<io::Error>,
}

impl<'f> Sink<'f> {
    fn new(file: io::Result<BufWriter<&'f File>>) -> Sink<'f> {
        match file {
            Ok(f) => Sink {
                file: Some(f),
                failed: None,
            },
            Err(e) => Sink {
                file: None,
                failed: Some(e),
            },
        }
    }

    /// Why writing failed, if it did.
    fn failed(self) -> Option<io::Error> {
        self.failed
    }

    fn fail(&mut self, e: io::Error) {
        self.file = None;
        self.failed.get_or_insert(e);
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(buf) {
                self.fail(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush() {
                self.fail(e);
            }
        }
        Ok(())
    }
}

/// Why an inline upload's bytes stopped, in words.
fn why_broken(e: &io::Error, stall: Duration) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the stream ended".to_string(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("nothing came for {stall:?}")
        }
        _ => e.to_string(),
    }
}
