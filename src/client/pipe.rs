//! A control connection over a child process's pipes (the ssh command
//! that runs `p2pshare serve --stdio` on the other side): its stdin and
//! stdout are the stream, behind [`Transport`] like a TCP socket.
//!
//! Pipes have no read or write timeout, so a thread of its own reads the
//! child's stdout into a bounded channel (at most [`QUEUED`] chunks of
//! [`CHUNK`] bytes wait there), and a read waits on that channel for as
//! long as the deadline allows; another thread writes, and a write waits
//! (within the write timeout) only while [`IN_FLIGHT`] writes before it
//! are not done yet. The child's stderr
//! passes through to ours line by line (control characters escaped):
//! held back (at most [`HELD_LINES`]) until [`Held::release`] or
//! [`Held::take`] says what becomes of them, so that a connection that
//! fails the same way again and again says so once; its last lines are
//! kept for the message that says why a child ended.
//!
//! Dropping the pipe closes the child's stdin, gives it [`GRACE`] to end
//! on its own, kills it if it did not, and reaps it: no process is left
//! behind, and no drop waits longer than that.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::transport::{Peek, Transport};

/// How many bytes one read of the child's stdout takes at most.
const CHUNK: usize = 64 * 1024;

/// How many chunks may wait to be read (so at most 1 MiB is held).
const QUEUED: usize = 16;

/// How many writes may be handed to the writer thread and not done yet
/// (each at most what one write of the client is: a request line, or a
/// chunk of an upload).
const IN_FLIGHT: usize = 8;

/// How long a child whose stdin was closed may take to end before it is
/// killed.
const GRACE: Duration = Duration::from_secs(2);

/// How many of the child's last stderr lines are kept, and how long each.
const TAIL_LINES: usize = 8;
const TAIL_LINE_BYTES: usize = 1024;

/// How many stderr lines are held back at most; later ones are dropped
/// until the held ones are released.
const HELD_LINES: usize = 64;

/// The child's stderr lines held back so far; None once they pass
/// through as they come.
#[derive(Clone)]
pub(crate) struct Held(Arc<Mutex<Option<Vec<String>>>>);

impl Held {
    fn new() -> Held {
        Held(Arc::new(Mutex::new(Some(Vec::new()))))
    }

    /// Lets the held lines and every later one through to our stderr.
    pub(crate) fn release(&self) {
        let lines = self.take();
        let mut err = io::stderr().lock();
        for l in lines {
            let _ = writeln!(err, "{l}");
        }
    }

    /// The held lines, for the caller to show or not; later ones pass
    /// through.
    pub(crate) fn take(&self) -> Vec<String> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.take().unwrap_or_default()
    }

    /// Holds `line` back; false when it is to pass through now.
    fn hold(&self, line: &str) -> bool {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(v) => {
                if v.len() < HELD_LINES {
                    v.push(line.to_string());
                }
                true
            }
            None => false,
        }
    }
}

/// What is known of a child once it ended: its exit status and its last
/// lines on stderr. Filled in when the pipe is dropped.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    pub status: Option<ExitStatus>,
    pub tail: Vec<String>,
}

/// A child process's stdin and stdout as a control connection's stream.
pub(crate) struct ChildPipe {
    child: Child,
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// The chunk being read, and how far.
    held: Vec<u8>,
    pos: usize,
    /// The child closed its stdout (or reading it failed).
    eof: bool,
    read_timeout: Option<Duration>,
    /// Writes go to the writer thread; `acks` says how each went.
    writes: Option<SyncSender<Vec<u8>>>,
    acks: Receiver<io::Result<()>>,
    /// Writes handed over and not yet done.
    unacked: usize,
    write_timeout: Duration,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr_held: Held,
    stderr_done: Option<Receiver<()>>,
    ended: Arc<Mutex<Ended>>,
}

impl ChildPipe {
    /// Takes over `child`, whose stdin, stdout and stderr must be piped;
    /// writes wait at most `write_timeout`. `ended` is filled in when the
    /// pipe is dropped.
    pub(crate) fn new(
        mut child: Child,
        write_timeout: Duration,
        ended: Arc<Mutex<Ended>>,
    ) -> io::Result<ChildPipe> {
        let missing = || io::Error::other("the child's pipes are not there");
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(missing());
                }
            };
        let (chunk_tx, chunks) = mpsc::sync_channel(QUEUED);
        let (write_tx, write_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (ack_tx, acks) = mpsc::channel();
        let (done_tx, stderr_done) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let held = Held::new();
        let spawned = spawn("p2pshare-pipe-read", move || read_loop(stdout, &chunk_tx))
            .and_then(|_| {
                spawn("p2pshare-pipe-write", move || {
                    write_loop(stdin, &write_rx, &ack_tx)
                })
            })
            .and_then(|_| {
                let (tail, held) = (tail.clone(), held.clone());
                spawn("p2pshare-pipe-stderr", move || {
                    pass_stderr(stderr, &tail, &held);
                    let _ = done_tx.send(());
                })
            });
        if let Err(e) = spawned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(ChildPipe {
            child,
            chunks,
            held: Vec::new(),
            pos: 0,
            eof: false,
            read_timeout: None,
            writes: Some(write_tx),
            acks,
            unacked: 0,
            write_timeout,
            tail,
            stderr_held: held,
            stderr_done: Some(stderr_done),
            ended,
        })
    }

    /// The child's stderr lines held back (see [`Held`]).
    pub(crate) fn held(&self) -> Held {
        self.stderr_held.clone()
    }

    /// Takes how the writes handed over went, until at most `left` are
    /// not done yet, waiting (at most the write timeout for each) for
    /// those that must be; the first that failed fails this.
    fn settle(&mut self, left: usize) -> io::Result<()> {
        while self.unacked > 0 {
            let ack = match self.acks.try_recv() {
                Ok(r) => Ok(r),
                Err(_) if self.unacked <= left => return Ok(()),
                Err(_) => self.acks.recv_timeout(self.write_timeout),
            };
            match ack {
                Ok(r) => {
                    self.unacked -= 1;
                    r?;
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the other side takes nothing in",
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
        Ok(())
    }

    /// Takes a chunk that came into `held`.
    fn take(&mut self, got: Result<io::Result<Vec<u8>>, ()>) -> io::Result<()> {
        match got {
            Ok(Ok(chunk)) => {
                self.held = chunk;
                self.pos = 0;
                Ok(())
            }
            Ok(Err(e)) => {
                self.eof = true;
                Err(e)
            }
            Err(()) => {
                self.eof = true;
                Ok(())
            }
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
}

/// Reads the child's stdout into chunks until it ends; the channel's end
/// is the stream's end.
fn read_loop(mut from: impl Read, to: &SyncSender<io::Result<Vec<u8>>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.send(Ok(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = to.send(Err(e));
                return;
            }
        }
    }
}

/// Writes what comes to the child's stdin, saying how each write went;
/// the channel's end closes the child's stdin.
fn write_loop(mut to: impl Write, from: &Receiver<Vec<u8>>, acks: &mpsc::Sender<io::Result<()>>) {
    while let Ok(buf) = from.recv() {
        let r = to.write_all(&buf).and_then(|()| to.flush());
        let failed = r.is_err();
        if acks.send(r).is_err() || failed {
            return;
        }
    }
}

/// Passes the child's stderr to ours (or to `held`), a line at a time
/// with control characters escaped, keeping the last [`TAIL_LINES`].
fn pass_stderr(from: ChildStderr, tail: &Mutex<VecDeque<String>>, held: &Held) {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut from)
            .take(TAIL_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let shown = crate::names::shown_bytes(text);
        if !held.hold(&shown) {
            let _ = writeln!(io::stderr().lock(), "{shown}");
        }
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(shown);
        }
    }
}

impl Read for ChildPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.held.len() {
            if self.eof {
                return Ok(0);
            }
            let got = match self.read_timeout {
                None => self.chunks.recv().map_err(|_| ()),
                Some(wait) => match self.chunks.recv_timeout(wait) {
                    Ok(c) => Ok(c),
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                },
            };
            self.take(got)?;
        }
        let n = buf.len().min(self.held.len() - self.pos);
        buf[..n].copy_from_slice(&self.held[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for ChildPipe {
    /// Hands `buf` to the writer thread, once fewer than [`IN_FLIGHT`]
    /// writes before it are not done (waiting at most the write timeout
    /// for one).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.settle(IN_FLIGHT - 1)?;
        let Some(w) = &self.writes else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        w.send(buf.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        self.unacked += 1;
        Ok(buf.len())
    }

    /// Waits (at most the write timeout for each) until every write is
    /// done.
    fn flush(&mut self) -> io::Result<()> {
        self.settle(0)
    }
}

impl Transport for ChildPipe {
    fn set_read_timeout(&mut self, wait: Option<Duration>) -> io::Result<()> {
        if wait == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a read timeout of zero",
            ));
        }
        self.read_timeout = wait;
        Ok(())
    }

    fn poll(&mut self, wait: Duration) -> Peek {
        if self.pos < self.held.len() {
            return Peek::Data;
        }
        if self.eof {
            return Peek::Closed;
        }
        let got = if wait.is_zero() {
            match self.chunks.try_recv() {
                Ok(c) => Ok(c),
                Err(TryRecvError::Empty) => return Peek::Nothing,
                Err(TryRecvError::Disconnected) => Err(()),
            }
        } else {
            match self.chunks.recv_timeout(wait) {
                Ok(c) => Ok(c),
                Err(RecvTimeoutError::Timeout) => return Peek::Nothing,
                Err(RecvTimeoutError::Disconnected) => Err(()),
            }
        };
        match self.take(got) {
            Ok(()) if self.pos < self.held.len() => Peek::Data,
            _ => Peek::Closed,
        }
    }
}

impl Drop for ChildPipe {
    /// Closes the child's stdin, waits [`GRACE`] for it to end, kills it
    /// if it did not, reaps it, and tells `ended` how it went.
    fn drop(&mut self) {
        self.writes = None;
        let until = Instant::now() + GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        // The last lines of stderr come before its end (unless another
        // process holds it open: then what came so far).
        if let Some(done) = self.stderr_done.take() {
            let _ = done.recv_timeout(Duration::from_millis(500));
        }
        let tail: Vec<String> = self
            .tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        if let Ok(mut e) = self.ended.lock() {
            e.status = status;
            e.tail = tail;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::Client;
    use crate::client::transport::Peer;
    use std::process::{Command, Stdio};

    fn child(script: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_child_that_says_nothing_times_out_and_is_killed_and_reaped_on_drop() {
        let ended = Arc::new(Mutex::new(Ended::default()));
        // It greets, then neither answers nor ends when its stdin does.
        let script = "trap '' HUP; echo '220 hello'; echo 'a word on stderr' >&2; exec sleep 600";
        let pipe = ChildPipe::new(child(script), Duration::from_secs(5), ended.clone()).unwrap();
        let peer = Peer::Ssh("ssh://test".into());
        let mut c =
            Client::over(Box::new(pipe), peer, Duration::from_millis(300), None, None).unwrap();
        assert_eq!(c.greeting(), "hello");
        let e = c.request("IndexGet longlist").unwrap_err();
        assert_eq!(e.to_string(), "no reply from ssh://test within 300ms");
        let start = Instant::now();
        drop(c);
        assert!(start.elapsed() < GRACE + Duration::from_secs(3));
        let ended = ended.lock().unwrap();
        let status = ended.status.expect("reaped");
        assert_eq!(status.code(), None, "killed: {status}");
        assert_eq!(ended.tail, ["a word on stderr"]);
    }

    #[test]
    fn a_child_that_ends_with_its_stdin_is_reaped_with_its_status() {
        let ended = Arc::new(Mutex::new(Ended::default()));
        let script = "echo '220 hi'; cat >/dev/null; printf 'bye\\033[2J\\n' >&2; exit 7";
        let pipe = ChildPipe::new(child(script), Duration::from_secs(5), ended.clone()).unwrap();
        let peer = Peer::Ssh("ssh://test".into());
        let mut c =
            Client::over(Box::new(pipe), peer, Duration::from_secs(20), None, None).unwrap();
        c.send("anything").unwrap();
        drop(c);
        let ended = ended.lock().unwrap();
        assert_eq!(ended.status.and_then(|s| s.code()), Some(7));
        assert_eq!(ended.tail, ["bye\\u{1b}[2J"], "escaped");
    }
}
