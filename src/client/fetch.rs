//! Downloads into the local shared folder: pipelined requests over one data
//! connection, md5 computed while receiving, a hidden partial file that is
//! renamed into place only when size and md5 match, resume after a broken
//! connection, and no silent overwrites.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{split_row, Client, ClientError, Reply};
use crate::digest::Md5;
use crate::protocol::{self, code, quote_word, Transport};
use crate::share::{check_name, hash};
use crate::timefmt;
use crate::transfer::udp;

/// How many downloads may be requested ahead of the one being received.
const WINDOW: usize = 32;

/// Receive buffer size.
const CHUNK: usize = 256 * 1024;

/// How long a UDP download waits for a silent sender.
const UDP_SILENCE: Duration = Duration::from_secs(30);

/// The data connection a client holds, reused across transfers.
pub(crate) struct DataConn {
    port: u16,
    token: String,
    stream: TcpStream,
}

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct Options {
    /// The folder downloads land in.
    pub dest: PathBuf,
    /// Replace a local file whose content differs.
    pub overwrite: bool,
    /// Further attempts after a failed one (md5 mismatch, 451, broken
    /// connection).
    pub retries: u32,
    pub transport: Transport,
    /// UDP payload size to ask for; None picks by path (1400 bytes, more
    /// on loopback).
    pub udp_payload: Option<usize>,
}

/// A file as the peer described it in the 150 line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub name: String,
    pub size: u64,
    pub timestamp: String,
    pub md5: String,
}

impl FileRow {
    pub fn fields(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.size.to_string(),
            self.timestamp.clone(),
            self.md5.clone(),
        ]
    }
}

/// How one download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Downloaded(FileRow),
    /// Sent to the peer, which stored it.
    Uploaded(FileRow),
    /// A local file with the same content was already there.
    UpToDate(FileRow),
    Failed {
        name: String,
        message: String,
    },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }
}

/// What the console is told while downloads run.
pub trait Ui {
    /// A transfer of `name` starts; `done` bytes of `total` are already here.
    fn start(&mut self, _name: &str, _total: u64, _done: u64) {}
    /// `done` bytes of the current transfer have arrived.
    fn progress(&mut self, _done: u64) {}
    /// The current transfer ended (either way).
    fn end(&mut self) {}
    /// One file is finished.
    fn outcome(&mut self, outcome: &Outcome);
    /// Something worth telling on the way (a retry, a wait).
    fn note(&mut self, _text: &str) {}
}

/// The local paths of one download.
struct Target {
    name: String,
    path: PathBuf,
    part: PathBuf,
    lock: Lock,
    attempts: u32,
}

/// Where a local file for `name` goes, and its hidden partial file beside
/// it (which is also the lock of that name, see [`Lock`]).
fn local_paths(dest: &Path, name: &str) -> (PathBuf, PathBuf) {
    let path = dest.join(name);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = name.rsplit('/').next().unwrap_or(name);
    (path, dir.join(format!(".{base}.p2pshare-part")))
}

/// Downloads `names` into `opts.dest`, reporting each outcome to `ui`.
/// Returns how many failed. A broken control connection ends the batch
/// with an error.
pub fn fetch(
    client: &mut Client,
    names: &[String],
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<usize, ClientError> {
    let mut failed = 0;
    let fail = |ui: &mut dyn Ui, name: &str, message: String| {
        ui.outcome(&Outcome::Failed {
            name: name.to_string(),
            message,
        });
    };
    // First only the names and folders: locks are taken as files enter
    // the window, so a pattern of thousands of files never holds more
    // than a window's worth of open lock files.
    let mut pending: VecDeque<(String, PathBuf, PathBuf)> = VecDeque::new();
    let mut made_dir: Option<PathBuf> = None;
    for name in names {
        if check_name(name).is_err() {
            fail(
                ui,
                name,
                format!("{name}: not a name that can be stored locally"),
            );
            failed += 1;
            continue;
        }
        let (path, part) = local_paths(&opts.dest, name);
        if let Some(dir) = path.parent() {
            // A pattern's files come folder by folder: each folder is made
            // once, not once per file.
            if made_dir.as_deref() != Some(dir) {
                if let Err(e) = fs::create_dir_all(dir) {
                    fail(ui, name, format!("cannot create {}: {e}", dir.display()));
                    failed += 1;
                    continue;
                }
                made_dir = Some(dir.to_path_buf());
            }
        }
        pending.push_back((name.clone(), path, part));
    }
    // Where local files are already there, the peer's md5s say whether
    // they are up to date: asked once, before the pipeline starts.
    let remote = if pending.iter().any(|(_, path, _)| path.exists()) {
        Some(remote_hashes(client, names)?)
    } else {
        None
    };
    let mut queue: VecDeque<Target> = VecDeque::new();
    // UDP transfers use a socket each: they go one at a time.
    let window = if opts.transport == Transport::Udp {
        1
    } else {
        WINDOW
    };
    let mut inflight: VecDeque<(Target, u64, String)> = VecDeque::new();
    while !queue.is_empty() || !pending.is_empty() || !inflight.is_empty() {
        // The window is topped up once half of it has arrived, with the
        // new requests in one write: small files cost fewer system calls
        // on both sides (the server answers a batch in few packets too).
        let mut batch = String::new();
        while inflight.len() < window && (!batch.is_empty() || inflight.len() <= window / 2) {
            let t = match queue.pop_front() {
                Some(t) => t,
                None => {
                    let Some((name, path, part)) = pending.pop_front() else {
                        break;
                    };
                    match admit(name, path, part, remote.as_ref(), opts, ui) {
                        Ok(t) => t,
                        Err(outcome) => {
                            if !outcome.is_ok() {
                                failed += 1;
                            }
                            ui.outcome(&outcome);
                            continue;
                        }
                    }
                }
            };
            let offset = t.lock.len();
            let mut line = format!(
                "FileDownload {} {}",
                opts.transport.as_str().to_ascii_uppercase(),
                quote_word(&t.name)
            );
            if offset > 0 {
                line.push_str(&format!(" {offset}"));
            }
            if !batch.is_empty() {
                batch.push('\n');
            }
            batch.push_str(&line);
            inflight.push_back((t, offset, line));
        }
        if !batch.is_empty() {
            client.send(&batch)?;
        }
        let Some((mut t, offset, line)) = inflight.pop_front() else {
            break;
        };
        let (step, code) = receive_one(client, &t, offset, opts, ui)?;
        t.lock.fresh = false;
        client.record(&line, code);
        match step {
            Step::Done(outcome) => {
                if !outcome.is_ok() {
                    failed += 1;
                }
                ui.outcome(&outcome);
            }
            Step::Retry { reason, keep_part } => {
                if !keep_part {
                    // Emptied, not removed: the partial file is this
                    // download's lock.
                    let _ = t.lock.file.set_len(0);
                }
                t.attempts += 1;
                if t.attempts > opts.retries {
                    failed += 1;
                    ui.outcome(&Outcome::Failed {
                        name: t.name.clone(),
                        message: format!(
                            "{}: {reason} (gave up after {} attempts)",
                            t.name, t.attempts
                        ),
                    });
                } else {
                    ui.note(&format!("{}: {reason}; trying again", t.name));
                    queue.push_back(t);
                }
            }
        }
    }
    Ok(failed)
}

/// Takes the lock of one name and decides whether it is to be fetched: a
/// local file with the peer's md5 is up to date, one with other content is
/// kept unless overwriting was asked for.
fn admit(
    name: String,
    path: PathBuf,
    part: PathBuf,
    remote: Option<&HashMap<String, (String, String)>>,
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<Target, Outcome> {
    let failed = |message: String| Outcome::Failed {
        name: name.clone(),
        message,
    };
    let lock = Lock::acquire(&part, ui)
        .map_err(|e| failed(format!("cannot lock {}: {e}", part.display())))?;
    // Checked under the lock: another download may just have placed it.
    // A file that appeared after the peer's md5s were asked for is left
    // to the final placement, which never replaces a different file.
    if let Some((remote, Ok(meta))) = remote.map(|r| (r, fs::metadata(&path))) {
        let Some((md5, ts)) = remote.get(&name) else {
            return Err(failed(format!("{name}: no such file on the peer")));
        };
        let local = File::open(&path)
            .and_then(hash::md5_of_reader)
            .map(|d| d.to_string());
        match local {
            Ok(local) if local == *md5 => {
                return Err(Outcome::UpToDate(FileRow {
                    name: name.clone(),
                    size: meta.len(),
                    timestamp: ts.clone(),
                    md5: md5.clone(),
                }));
            }
            _ if !opts.overwrite => {
                return Err(failed(format!(
                    "{name}: a different local file is in the way (use --overwrite to replace it)"
                )));
            }
            _ => {}
        }
    }
    Ok(Target {
        name,
        path,
        part,
        lock,
        attempts: 0,
    })
}

/// The peer's md5 and timestamp for `names`: one `FileHash verify` for a
/// single name, one `FileHash checkall` for more.
fn remote_hashes(
    client: &mut Client,
    names: &[String],
) -> Result<HashMap<String, (String, String)>, ClientError> {
    let line = match names {
        [one] => format!("FileHash verify {}", quote_word(one)),
        _ => "FileHash checkall".to_string(),
    };
    let r = client.request(&line)?;
    Ok(r.hash_rows())
}

enum Step {
    Done(Outcome),
    Retry { reason: String, keep_part: bool },
}

fn failed(name: &str, r: &Reply) -> Step {
    Step::Done(Outcome::Failed {
        name: name.to_string(),
        message: format!("{} {}", r.code(), r.text()),
    })
}

/// Parses the file row of a 150 reply.
fn parse_row(text: &str) -> Option<FileRow> {
    let f = split_row(text);
    let [name, size, timestamp, md5] = f.as_slice() else {
        return None;
    };
    Md5::from_hex(md5)?;
    Some(FileRow {
        name: name.clone(),
        size: size.parse().ok()?,
        timestamp: timestamp.clone(),
        md5: md5.to_ascii_lowercase(),
    })
}

/// Receives the reply (and bytes) of one FileDownload already sent.
fn receive_one(
    client: &mut Client,
    t: &Target,
    offset: u64,
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<(Step, u16), ClientError> {
    let first = client.read_reply()?;
    if first.code() != code::DATA {
        let step = match first.code() {
            // The partial file is longer than the peer's file: it changed.
            code::BAD_ARGS if offset > 0 => Step::Retry {
                reason: "the partial download does not fit the peer's file".into(),
                keep_part: false,
            },
            code::LOCAL_ERROR | code::NO_DATA => Step::Retry {
                reason: format!("{} {}", first.code(), first.text()),
                keep_part: true,
            },
            _ => failed(&t.name, &first),
        };
        return Ok((step, first.code()));
    }
    let (Some(row), Some(data)) = (
        first
            .lines
            .first()
            .filter(|l| !l.last)
            .and_then(|l| parse_row(&l.text)),
        protocol::parse_data_line(first.text()),
    ) else {
        return Err(ClientError::Protocol(format!(
            "bad 150 reply: {:?}",
            first.lines
        )));
    };
    if offset > row.size {
        return Err(ClientError::Protocol(format!(
            "the peer accepted offset {offset} past the end of {} ({} bytes)",
            row.name, row.size
        )));
    }
    let mut sink = match Sink::open(&t.lock.file, offset, t.lock.fresh) {
        Ok(s) => s,
        Err(e) => {
            // The bytes are on their way: take them, then report.
            drain(client, &data, row.size - offset, opts.transport)?;
            let last = client.read_reply()?;
            return Ok((
                Step::Done(Outcome::Failed {
                    name: t.name.clone(),
                    message: format!("cannot write {}: {e}", t.part.display()),
                }),
                last.code(),
            ));
        }
    };
    let want = row.size - offset;
    ui.start(&t.name, row.size, offset);
    let received = match opts.transport {
        Transport::Tcp => receive_tcp(client, &data, want, &mut sink, offset, ui),
        Transport::Udp => receive_udp(
            client.addr(),
            &data,
            (offset, want),
            opts.udp_payload,
            &mut sink,
            ui,
        ),
    };
    ui.end();
    let last = client.read_reply()?;
    let code = last.code();
    if let Err(e) = received {
        client.data = None;
        let _ = sink.flush();
        let keep_part = code != code::LOCAL_ERROR;
        return Ok((
            Step::Retry {
                reason: format!("transfer broken ({e}); {} {}", code, last.text()),
                keep_part,
            },
            code,
        ));
    }
    match code {
        code::COMPLETE => {}
        code::ABORTED => {
            client.data = None;
            let _ = sink.flush();
            return Ok((
                Step::Retry {
                    reason: format!("{code} {}", last.text()),
                    keep_part: true,
                },
                code,
            ));
        }
        code::LOCAL_ERROR => {
            return Ok((
                Step::Retry {
                    reason: format!("{code} {}", last.text()),
                    keep_part: false,
                },
                code,
            ))
        }
        _ => return Ok((failed(&t.name, &last), code)),
    }
    let (file, md5, len) = match sink.finish() {
        Ok(x) => x,
        Err(e) => {
            return Ok((
                Step::Done(Outcome::Failed {
                    name: t.name.clone(),
                    message: format!("cannot write {}: {e}", t.part.display()),
                }),
                code,
            ))
        }
    };
    if len != row.size || md5 != row.md5 {
        return Ok((
            Step::Retry {
                reason: format!("md5 mismatch (got {md5}, expected {})", row.md5),
                keep_part: false,
            },
            code,
        ));
    }
    if let Ok(t) = timefmt::parse(&row.timestamp) {
        let _ = file.set_modified(t);
    }
    drop(file);
    Ok((place(t, row, opts.overwrite), code))
}

/// Moves a verified partial file to its final name, never replacing a
/// different file unless asked to.
fn place(t: &Target, row: FileRow, overwrite: bool) -> Step {
    let refuse = |t: &Target| {
        let _ = fs::remove_file(&t.part);
        t.lock.placed.set(true);
        Step::Done(Outcome::Failed {
            name: t.name.clone(),
            message: format!(
                "{}: a different local file appeared in the way (use --overwrite to replace it)",
                t.name
            ),
        })
    };
    if overwrite {
        return match fs::rename(&t.part, &t.path) {
            Ok(()) => {
                t.lock.placed.set(true);
                Step::Done(Outcome::Downloaded(row))
            }
            Err(e) => Step::Done(Outcome::Failed {
                name: t.name.clone(),
                message: format!("cannot rename into {}: {e}", t.path.display()),
            }),
        };
    }
    // A hard link fails if the name exists: an atomic "create if absent".
    match fs::hard_link(&t.part, &t.path) {
        Ok(()) => {
            let _ = fs::remove_file(&t.part);
            t.lock.placed.set(true);
            Step::Done(Outcome::Downloaded(row))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let same = File::open(&t.path)
                .and_then(hash::md5_of_reader)
                .is_ok_and(|d| d.to_string() == row.md5);
            if same {
                let _ = fs::remove_file(&t.part);
                Step::Done(Outcome::UpToDate(row))
            } else {
                refuse(t)
            }
        }
        Err(_) if t.path.exists() => refuse(t),
        // No hard links on this file system: fall back to a rename.
        Err(_) => match fs::rename(&t.part, &t.path) {
            Ok(()) => Step::Done(Outcome::Downloaded(row)),
            Err(e) => Step::Done(Outcome::Failed {
                name: t.name.clone(),
                message: format!("cannot rename into {}: {e}", t.path.display()),
            }),
        },
    }
}

/// The data connection for a transfer: the one held if it is for the same
/// port and token, else a new one.
pub(crate) fn data_stream<'a>(
    client: &'a mut Client,
    data: &protocol::DataLine,
) -> io::Result<&'a mut TcpStream> {
    let reuse = client
        .data
        .as_ref()
        .is_some_and(|d| d.port == data.port && d.token == data.token);
    if !reuse {
        let addr = SocketAddr::new(client.addr().ip(), data.port);
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        stream.write_all(format!("{}\n", data.token).as_bytes())?;
        client.data = Some(DataConn {
            port: data.port,
            token: data.token.clone(),
            stream,
        });
    }
    client
        .data
        .as_mut()
        .map(|d| &mut d.stream)
        .ok_or_else(|| io::Error::other("no data connection"))
}

fn receive_tcp(
    client: &mut Client,
    data: &protocol::DataLine,
    want: u64,
    sink: &mut Sink,
    offset: u64,
    ui: &mut dyn Ui,
) -> io::Result<()> {
    if want == 0 {
        return Ok(());
    }
    let stream = data_stream(client, data)?;
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(want).unwrap_or(CHUNK))];
    let mut left = want;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        let got = match stream.read(&mut buf[..n]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sink.write_all(&buf[..got])?;
        left -= got as u64;
        ui.progress(offset + want - left);
    }
    Ok(())
}

fn receive_udp(
    server: SocketAddr,
    data: &protocol::DataLine,
    (offset, want): (u64, u64),
    payload: Option<usize>,
    sink: &mut Sink,
    ui: &mut dyn Ui,
) -> io::Result<()> {
    let addr = SocketAddr::new(server.ip(), data.port);
    let mut progress = |n: u64| ui.progress(offset + n);
    let defaults = udp::ReceiveOptions::for_path(addr);
    let opts = udp::ReceiveOptions {
        payload: payload.unwrap_or(defaults.payload),
        idle: UDP_SILENCE,
        ..defaults
    };
    udp::receive_with(addr, &data.token, offset, want, sink, &mut progress, &opts)?;
    Ok(())
}

/// Reads and throws away the bytes of a transfer that cannot be stored, so
/// the data connection stays in step.
fn drain(
    client: &mut Client,
    data: &protocol::DataLine,
    want: u64,
    transport: Transport,
) -> Result<(), ClientError> {
    if transport == Transport::Tcp && want > 0 {
        let copied =
            data_stream(client, data).and_then(|s| io::copy(&mut s.take(want), &mut io::sink()));
        if !matches!(copied, Ok(n) if n == want) {
            client.data = None;
        }
    }
    Ok(())
}

/// The partial file being written, hashed as it is written.
struct Sink {
    out: BufWriter<File>,
    md5: hash::Streaming,
    len: u64,
}

impl Sink {
    /// Writes to the partial file through a second handle on the lock's
    /// open file (no second open): from the start, or (for a resume) after
    /// its first `offset` bytes, which are hashed so the md5 covers the
    /// whole file.
    fn open(part: &File, offset: u64, fresh: bool) -> io::Result<Sink> {
        let mut md5 = hash::Streaming::new();
        let mut f = part.try_clone()?;
        if fresh {
            // Just made, empty, never written: nothing to set up.
        } else if offset > 0 {
            // The handles share one file position: set it explicitly.
            f.seek(io::SeekFrom::Start(0))?;
            let mut buf = vec![0u8; CHUNK];
            let mut left = offset;
            while left > 0 {
                let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
                f.read_exact(&mut buf[..n])?;
                md5.consume(&buf[..n]);
                left -= n as u64;
            }
            f.set_len(offset)?;
        } else {
            f.seek(io::SeekFrom::Start(0))?;
            // Truncated only when it has bytes: on ext4 a truncation, even
            // of an empty file, makes its close flush the data at once
            // (auto_da_alloc), which costs a write to disk per small file.
            if f.metadata()?.len() > 0 {
                f.set_len(0)?;
            }
        }
        Ok(Sink {
            out: BufWriter::with_capacity(CHUNK, f),
            md5,
            len: offset,
        })
    }

    /// Flushes and returns the file, its md5 and length.
    fn finish(self) -> io::Result<(File, String, u64)> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((file, self.md5.finalize()?.to_string(), self.len))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.md5.consume(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The lock of one name in one folder, so two downloads of it take turns
/// instead of writing the same partial file. The lock file is the partial
/// file itself (one file made per download, not two), and the lock is the
/// file system's (flock) on it, so the kernel releases it when its process
/// ends in any way: what a killed client leaves is an unlocked partial file
/// that the next run resumes.
struct Lock {
    path: PathBuf,
    /// The partial file, open for reading and writing.
    file: File,
    /// Made by this lock and not written yet: empty, so a transfer starts
    /// at 0 without asking the file system.
    fresh: bool,
    /// Placed under its final name (and its partial name removed): nothing
    /// is left to clean up.
    placed: std::cell::Cell<bool>,
}

impl Lock {
    fn acquire(path: &Path, ui: &mut dyn Ui) -> io::Result<Lock> {
        // The usual case: no partial file yet. Made here, nobody else can
        // have it open, so the lock is taken without the checks below.
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(file) => match file.try_lock() {
                Ok(()) => return Ok(Lock::new(path, file, true)),
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    return Ok(Lock::new(path, file, true))
                }
                // Another download opened it in between and holds it now.
                Err(_) => {}
            },
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let mut told = false;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            match file.try_lock() {
                // The holder before may have removed the file after it was
                // opened here: only a lock on the file still at `path` counts.
                Ok(()) if same_file(&file, path) => return Ok(Lock::new(path, file, false)),
                Ok(()) => continue,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told {
                        ui.note(&format!(
                            "waiting for another download of the same file to finish ({})",
                            path.display()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // A file system without locks: go ahead unguarded rather
                // than not at all (the final rename still never clobbers).
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    return Ok(Lock::new(path, file, false))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// Is `file` the file at `path` (and not one removed since it was opened)?
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Lock {
    fn new(path: &Path, file: File, fresh: bool) -> Lock {
        Lock {
            path: path.to_path_buf(),
            file,
            fresh,
            placed: std::cell::Cell::new(false),
        }
    }

    /// Bytes already in the partial file: where a transfer resumes.
    fn len(&self) -> u64 {
        if self.fresh {
            return 0;
        }
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.placed.get() {
            return;
        }
        // A partial file with bytes in it stays for a later resume; once
        // placed (or removed) the name is no longer this file and is left
        // alone. An empty one is removed, while still locked, so that a
        // waiter that opened it sees it is gone (see `same_file`); the lock
        // goes with the file handle.
        let empty = self.file.metadata().is_ok_and(|m| m.len() == 0);
        if empty && same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
