//! Transfers whose bytes go inline on the control stream itself, as a
//! session over `serve --stdio` (through ssh) sends them: after the
//! `150 DATA inline bytes=N` line come exactly N raw bytes, then the
//! final reply. There is no other channel to fail, so the stream must
//! stay in step whatever happens here: every announced byte is read (or
//! written) even when the local file cannot take (or give) them, and a
//! stream that stalls or ends in between is an error of the connection.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use super::control::Client;
use super::error::{ClientError, Wait};

/// How many bytes one read or write takes at most.
const CHUNK: usize = 256 * 1024;

/// Reads the `want` bytes that follow on the control stream into `out`,
/// telling `progress` how many are in. The outer error: the stream
/// stalled for the timeout or ended (the connection is of no more use);
/// the inner one: `out` could not take them (all were read all the
/// same, so the final reply comes next).
pub(crate) fn receive(
    client: &mut Client,
    want: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<io::Result<()>, ClientError> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(want).unwrap_or(CHUNK)).max(1)];
    let mut left = want;
    let mut stored: io::Result<()> = Ok(());
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        let got = match client.read_inline(&mut buf[..n]) {
            Ok(0) => {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stream ended after {} of {want} bytes", want - left),
                )))
            }
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(client.timed_out(e, Wait::Inline)),
        };
        left -= got as u64;
        if stored.is_ok() {
            stored = out.write_all(&buf[..got]);
            progress(want - left);
        }
    }
    Ok(stored)
}

/// Writes the first `len` bytes of `file` (from its start) on the control
/// stream, telling `progress` how many went. A file that gives fewer
/// (it shrank, or a read failed) is made up to `len` with zeros, which
/// the peer's md5 check refuses, and the inner error says why; the outer
/// one: the stream took no more.
pub(crate) fn send(
    client: &mut Client,
    file: &mut File,
    len: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<io::Result<()>, ClientError> {
    let mut read: io::Result<()> = file.seek(io::SeekFrom::Start(0)).map(|_| ());
    let mut reader = file.take(len);
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < len {
        let room = buf
            .len()
            .min(usize::try_from(len - sent).unwrap_or(buf.len()));
        let n = if read.is_ok() {
            match reader.read(&mut buf[..room]) {
                Ok(0) => {
                    read = Err(io::Error::other("the file shrank while it was sent"));
                    0
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    read = Err(e);
                    0
                }
            }
        } else {
            0
        };
        let n = if n == 0 {
            buf[..room].fill(0);
            room
        } else {
            n
        };
        client
            .write_inline(&buf[..n])
            .map_err(|e| client.timed_out(e, Wait::Inline))?;
        sent += n as u64;
        progress(sent);
    }
    Ok(read)
}
