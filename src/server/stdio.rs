//! The stdio face: `p2pshare serve --stdio` serves one native session on
//! its standard input and output, as ssh runs it (`ssh HOST p2pshare
//! serve --stdio`), and opens no socket. The session is the same as on a
//! TCP connection (greeting, commands, limits, history rows, with the
//! peer named `stdio`); its file bytes travel inline (`inline.rs`).
//! Standard error only carries messages.
//!
//! A pipe has no read or write timeout, so a reader thread and a writer
//! thread do the waiting, and the session waits for them through
//! channels with its deadlines ([`Stdio`], a [`Wire`] like a socket).
//! Both hold at most a few chunks: memory stays bounded whatever the
//! other side sends or fails to read.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::wire::Wire;
use super::{core, session, Config, Shared};
use crate::history::History;
use crate::share::{scan, Share};
use crate::stop::Stop;

/// The most bytes one read of standard input takes, and one write hands
/// to the writer thread.
const CHUNK: usize = 64 * 1024;

/// Chunks read from standard input that may wait for the session.
const READ_AHEAD: usize = 2;

/// Serves one session on standard input and output until the client
/// quits, its input ends, or the session times out. Returns the exit
/// status: 0 when the session ended so, 1 when the share could not be
/// opened or the streams failed.
pub fn serve_stdio(config: Config) -> u8 {
    match serve(config) {
        Ok(()) => 0,
        Err(e) => {
            say(&e);
            1
        }
    }
}

/// How long a stdio session waits for the first scan before it greets:
/// a small share is whole in its first listing, a large one opens all the
/// same.
const FIRST_SCAN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

fn serve(config: Config) -> io::Result<()> {
    // The same start as a listening server's: no random source, no start.
    crate::sys::open_random()?;
    let share = Share::open_unscanned(&config.share, &config.state).map_err(io::Error::other)?;
    for note in share.notes() {
        say(&note);
    }
    let history = Arc::new(History::of_share(&share.state_dir()));
    let shared = Shared::new(config, Arc::new(share), history, 1);
    let stop = Stop::new();
    let rescan = scan::spawn(
        shared.share.clone(),
        shared.config.rescan,
        stop.clone(),
        false,
    )?;
    // The session opens at once; a small share is scanned by then, so
    // its first listing is whole. A large one is listed as incomplete
    // until its scan is done.
    let start = std::time::Instant::now();
    while !shared.share.scanned() && start.elapsed() < FIRST_SCAN_GRACE {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let wire = Stdio::open()?;
    let (input, output) = core::control_of(&shared, &wire);
    let served = session::serve_stdio(&shared, &stop, input, output)
        .and_then(|()| wire.flush_sent())
        .map_err(|e| io::Error::new(e.kind(), format!("the session on stdio ended: {e}")));
    stop.set();
    let _ = rescan.join();
    let _ = shared.share.save_hashes();
    served
}

/// A message on standard error; one that cannot be written is dropped
/// (standard output carries the protocol, and nothing else).
fn say(what: &dyn std::fmt::Display) {
    let _ = writeln!(io::stderr(), "p2pshare: {what}");
}

/// Standard input and output as a session's [`Wire`].
pub(super) struct Stdio {
    /// Chunks the reader thread read: an empty one at the end of input,
    /// an error when reading failed.
    chunks: Receiver<io::Result<Vec<u8>>>,
    pending: RefCell<Pending>,
    read_timeout: Cell<Option<Duration>>,
    /// Chunks for the writer thread, one at a time, and its answers
    /// (with the chunk's buffer, for the next one).
    to_writer: SyncSender<Vec<u8>>,
    written: Receiver<(Vec<u8>, io::Result<()>)>,
    write_timeout: Cell<Option<Duration>>,
    /// True while the writer thread writes a chunk whose answer has not
    /// been taken: the session prepares the next one meanwhile, and waits
    /// for that answer before it hands the next one over.
    in_flight: Cell<bool>,
    /// A buffer back from the writer thread.
    spare: RefCell<Vec<u8>>,
    /// Set once a write failed or timed out: the writer may still hold
    /// bytes of it, so nothing more is written.
    broken: Cell<bool>,
}

/// What is left of the chunk being read, and whether input ended.
#[derive(Default)]
struct Pending {
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Stdio {
    /// Starts the reader and writer threads.
    fn open() -> io::Result<Stdio> {
        let (chunk_tx, chunks) = mpsc::sync_channel(READ_AHEAD);
        thread::Builder::new()
            .name("p2pshare-stdin".into())
            .spawn(move || read_input(&chunk_tx))?;
        // A descriptor of its own for standard output, unbuffered: the
        // bytes go out as the session hands them over.
        let mut out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let (to_writer, chunks_out) = mpsc::sync_channel::<Vec<u8>>(1);
        let (written_tx, written) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("p2pshare-stdout".into())
            .spawn(move || {
                for chunk in chunks_out {
                    let result = out.write_all(&chunk);
                    let failed = result.is_err();
                    if written_tx.send((chunk, result)).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Stdio {
            chunks,
            pending: RefCell::default(),
            read_timeout: Cell::new(None),
            to_writer,
            written,
            write_timeout: Cell::new(None),
            in_flight: Cell::new(false),
            spare: RefCell::default(),
            broken: Cell::new(false),
        })
    }

    /// Makes sure bytes or the end of input are at hand, waiting up to
    /// `wait` (None: without end) for the reader thread. False when
    /// nothing came in time; an error when reading failed (once: input
    /// has ended after it).
    fn fill(&self, wait: Option<Duration>) -> io::Result<bool> {
        let mut p = self.pending.borrow_mut();
        if p.at < p.chunk.len() || p.ended {
            return Ok(true);
        }
        let got = match wait {
            Some(t) => self.chunks.recv_timeout(t),
            None => self
                .chunks
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(Ok(chunk)) if !chunk.is_empty() => {
                p.chunk = chunk;
                p.at = 0;
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Disconnected) => p.ended = true,
            Ok(Err(e)) => {
                p.ended = true;
                return Err(e);
            }
            Err(RecvTimeoutError::Timeout) => return Ok(false),
        }
        Ok(true)
    }

    /// Takes bytes at hand into `buf`: 0 at the end of input.
    fn take(&self, buf: &mut [u8]) -> usize {
        let mut p = self.pending.borrow_mut();
        let rest = &p.chunk[p.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        p.at += n;
        n
    }
}

/// The reader thread: standard input in chunks, until it ends or fails
/// or the session is gone.
fn read_input(chunks: &SyncSender<io::Result<Vec<u8>>>) {
    let mut input = io::stdin();
    loop {
        let mut buf = vec![0u8; CHUNK];
        let sent = match input.read(&mut buf) {
            Ok(0) => {
                let _ = chunks.send(Ok(Vec::new()));
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                if n < CHUNK / 4 {
                    buf.shrink_to_fit();
                }
                chunks.send(Ok(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = chunks.send(Err(e));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

impl Wire for Stdio {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(t);
        Ok(())
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(t);
        Ok(())
    }

    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.fill(self.read_timeout.get())? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nothing came on standard input in time",
            ));
        }
        Ok(self.take(buf))
    }

    fn receive_waiting(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.fill(Some(Duration::ZERO))? {
            return Ok(None);
        }
        Ok(Some(self.take(buf)))
    }

    /// Hands `buf` (its first 256 KiB) to the writer thread once the
    /// chunk before it was written, waiting for that up to the write
    /// timeout.
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.flush_sent()?;
        let buf = &buf[..buf.len().min(CHUNK * 4)];
        let mut chunk = std::mem::take(&mut *self.spare.borrow_mut());
        chunk.clear();
        chunk.extend_from_slice(buf);
        if self.to_writer.send(chunk).is_err() {
            self.broken.set(true);
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.in_flight.set(true);
        Ok(buf.len())
    }

    fn flush_sent(&self) -> io::Result<()> {
        if self.broken.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "standard output failed earlier",
            ));
        }
        if !self.in_flight.get() {
            return Ok(());
        }
        let answer = match self.write_timeout.get() {
            Some(t) => self.written.recv_timeout(t),
            None => self
                .written
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        let failed = match answer {
            Ok((buf, Ok(()))) => {
                self.in_flight.set(false);
                *self.spare.borrow_mut() = buf;
                return Ok(());
            }
            Ok((_, Err(e))) => e,
            Err(RecvTimeoutError::Timeout) => io::Error::new(
                io::ErrorKind::TimedOut,
                "standard output took nothing in time",
            ),
            Err(RecvTimeoutError::Disconnected) => io::ErrorKind::BrokenPipe.into(),
        };
        self.broken.set(true);
        Err(failed)
    }

    fn hung_up(&self, grace: Duration) -> bool {
        match self.fill(Some(grace)) {
            Ok(true) => {
                let p = self.pending.borrow();
                p.ended && p.at >= p.chunk.len()
            }
            Ok(false) => false,
            Err(_) => true,
        }
    }
}
