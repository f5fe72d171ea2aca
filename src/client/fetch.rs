//! Downloads into the local shared folder: pipelined requests over one data
//! connection, each reply checked to belong to its request, md5 computed
//! while receiving, a hidden partial file inside the share that is placed
//! under its name only when size and md5 match, resume after a broken
//! connection, retries that start at once, and no silent overwrites.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{console, peek_now, split_row, Client, ClientError, Peek, Reply};
use crate::digest::Md5;
use crate::protocol::{self, code, quote_word, shown, Transport};
use crate::share::{check_name, folder_inside, hash, real_path_inside, ShareError};
use crate::timefmt;
use crate::transfer::udp;

/// How many downloads may be requested ahead of the one being received.
const WINDOW: usize = 32;

/// Receive buffer size.
const CHUNK: usize = 256 * 1024;

/// How long one read of a data connection waits before the control
/// connection is looked at.
const SLICE: Duration = Duration::from_millis(100);

/// How long bytes may still arrive after the final reply of their
/// transfer (they were sent before it, but travel on another connection).
const SHORT_GRACE: Duration = Duration::from_secs(3);

/// How long a transfer of zero bytes without a data connection waits for
/// the final reply before it makes a data connection after all (for a
/// peer that waits for one even then).
const ZERO_GRACE: Duration = Duration::from_millis(200);

/// The data connection a client holds, reused across transfers.
pub(crate) struct DataConn {
    port: u16,
    token: String,
    pub(crate) stream: TcpStream,
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
    /// A transfer of `name` continues a partial file of `offset` bytes.
    fn resume(&mut self, _name: &str, _offset: u64) {}
}

/// The local paths of one download.
struct Target {
    /// Its place in the batch.
    index: usize,
    name: String,
    path: PathBuf,
    part: PathBuf,
    lock: Lock,
    attempts: u32,
}

/// The folder a local file for `name` goes into below `root` (the share
/// folder's real path), found or made by [`folder_inside`], so never
/// through a link that leads out of the share; else why not, to follow
/// the name in a message. Its hidden partial file goes beside it (see
/// [`Lock`]).
fn local_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    let mut created = Vec::new();
    match folder_inside(root, name, &mut created) {
        Ok((dir, _)) => Ok(dir),
        Err(ShareError::NotShared) => Err(
            "its folder is not a folder inside the share (a link leading outside the share, or a file); not stored"
                .into(),
        ),
        Err(ShareError::Io(e)) => Err(format!("cannot create its folder: {e}")),
    }
}

/// A local path as it may be shown: it holds a name the peer chose.
fn shown_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::names::shown_bytes(p.as_os_str().as_bytes())
}

/// The share folder's real path: what every local path of a download is
/// checked against. The folder itself is made when missing, but not its
/// parents (a typo in `--share` is not a new tree of folders).
fn share_root(dest: &Path) -> io::Result<PathBuf> {
    match fs::create_dir(dest) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => fs::canonicalize(dest),
    }
    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shown_path(dest))))
}

/// How many files of a command ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub downloaded: usize,
    pub up_to_date: usize,
    pub failed: usize,
}

/// The files of one download command and how far it got, so that a
/// command cut off by a dropped connection goes on from there on a new
/// one (each file whose outcome was told is not asked for again).
pub struct Batch {
    names: Vec<String>,
    done: Vec<bool>,
    pub tally: Tally,
}

impl Batch {
    pub fn new(names: Vec<String>) -> Batch {
        Batch {
            done: vec![false; names.len()],
            names,
            tally: Tally::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Tells `ui` how file `i` ended and counts it.
fn report(done: &mut [bool], tally: &mut Tally, i: usize, outcome: &Outcome, ui: &mut dyn Ui) {
    if let Some(d) = done.get_mut(i) {
        *d = true;
    }
    match outcome {
        Outcome::Downloaded(_) | Outcome::Uploaded(_) => tally.downloaded += 1,
        Outcome::UpToDate(_) => tally.up_to_date += 1,
        Outcome::Failed { .. } => tally.failed += 1,
    }
    ui.outcome(outcome);
}

/// Downloads the files of `batch` not done yet into `opts.dest`,
/// reporting each outcome to `ui`. A broken control connection ends the
/// batch with an error; what was done stays done.
pub fn fetch(
    client: &mut Client,
    batch: &mut Batch,
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<(), ClientError> {
    let Batch { names, done, tally } = batch;
    let todo: Vec<usize> = (0..names.len()).filter(|&i| !done[i]).collect();
    let mut fail = |i: usize, message: String, ui: &mut dyn Ui| {
        let outcome = Outcome::Failed {
            name: names[i].clone(),
            message,
        };
        report(done, tally, i, &outcome, ui);
    };
    // First only the names and folders: locks are taken as files enter
    // the window, so a pattern of thousands of files never holds more
    // than a window's worth of open lock files.
    let mut pending: VecDeque<(usize, PathBuf, PathBuf)> = VecDeque::new();
    let root = match share_root(&opts.dest) {
        Ok(r) => r,
        Err(e) => {
            for i in todo {
                fail(i, format!("cannot use the share folder {e}"), ui);
            }
            return Ok(());
        }
    };
    // A pattern's files come folder by folder: each folder is looked up
    // (and made) once, not once per file.
    let mut last_dir: Option<(String, Result<PathBuf, String>)> = None;
    for i in todo {
        let name = names[i].as_str();
        if check_name(name).is_err() {
            let message = format!("{}: not a name that can be stored locally", shown(name));
            fail(i, message, ui);
            continue;
        }
        let dir_rel = name.rsplit_once('/').map_or("", |(d, _)| d);
        let base = name.rsplit('/').next().unwrap_or(name);
        let dir = match &last_dir {
            Some((d, dir)) if d == dir_rel => dir.clone(),
            _ => {
                let dir = local_dir(&root, name);
                last_dir = Some((dir_rel.to_string(), dir.clone()));
                dir
            }
        };
        match dir {
            Ok(dir) => pending.push_back((
                i,
                dir.join(base),
                dir.join(format!(".{base}.p2pshare-part")),
            )),
            Err(why) => {
                let message = format!("{}: {why}", shown(name));
                fail(i, message, ui);
            }
        }
    }
    // Where local files are already there, the peer's md5s say whether
    // they are up to date: asked once, before the pipeline starts.
    let here: Vec<&str> = pending
        .iter()
        .filter(|(_, path, _)| fs::symlink_metadata(path).is_ok())
        .map(|&(i, _, _)| names[i].as_str())
        .collect();
    let remote = if here.is_empty() {
        None
    } else {
        Some(remote_hashes(client, &here)?)
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
        let mut requests = String::new();
        while inflight.len() < window && (!requests.is_empty() || inflight.len() <= window / 2) {
            let t = match queue.pop_front() {
                Some(t) => t,
                None => {
                    let Some((i, path, part)) = pending.pop_front() else {
                        break;
                    };
                    match admit(i, &names[i], path, part, &root, remote.as_ref(), opts, ui) {
                        Ok(t) => t,
                        Err(outcome) => {
                            report(done, tally, i, &outcome, ui);
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
            if !requests.is_empty() {
                requests.push('\n');
            }
            requests.push_str(&line);
            inflight.push_back((t, offset, line));
        }
        if !requests.is_empty() {
            client.send(&requests)?;
        }
        let Some((mut t, offset, line)) = inflight.pop_front() else {
            break;
        };
        let (step, code) = receive_one(client, &t, offset, opts, ui)?;
        t.lock.fresh = false;
        client.record(&line, code);
        match step {
            Step::Done(outcome) => report(done, tally, t.index, &outcome, ui),
            Step::Retry { reason, keep_part } => {
                if !keep_part {
                    // Emptied, not removed: the partial file is this
                    // download's lock.
                    let _ = t.lock.file.set_len(0);
                }
                t.attempts += 1;
                if t.attempts > opts.retries {
                    let outcome = Outcome::Failed {
                        name: t.name.clone(),
                        message: format!(
                            "{}: {reason} (gave up after {} attempts)",
                            shown(&t.name),
                            t.attempts
                        ),
                    };
                    report(done, tally, t.index, &outcome, ui);
                } else {
                    ui.note(&format!("{}: {reason}; trying again", shown(&t.name)));
                    queue.push_back(t);
                }
            }
        }
    }
    Ok(())
}

/// Takes the lock of one name and decides whether it is to be fetched: a
/// local file with the peer's md5 is up to date, one with other content is
/// kept unless overwriting was asked for.
#[allow(clippy::too_many_arguments)]
fn admit(
    index: usize,
    name: &str,
    path: PathBuf,
    part: PathBuf,
    root: &Path,
    remote: Option<&HashMap<String, (String, String)>>,
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<Target, Outcome> {
    let name = name.to_string();
    let failed = |message: String| Outcome::Failed {
        name: name.clone(),
        message,
    };
    let lock = Lock::acquire(&part, ui)
        .map_err(|e| failed(format!("cannot lock {}: {e}", shown_path(&part))))?;
    // The partial file must be where it was meant to be, whatever a link
    // swapped meanwhile pointed at.
    if real_path_inside(root, &lock.file, &part).is_none() {
        // One this lock made is removed again (see `Lock`'s drop); one
        // that was there already is left alone.
        lock.placed.set(!lock.fresh);
        return Err(failed(format!(
            "{}: its folder now leads outside the share; not stored",
            shown(&name)
        )));
    }
    // Checked under the lock: another download may just have placed it.
    // A file that appeared after the peer's md5s were asked for is left
    // to the final placement, which never replaces a different file.
    if let Some((remote, Ok(meta))) = remote.map(|r| (r, fs::symlink_metadata(&path))) {
        let Some((md5, ts)) = remote.get(&name) else {
            return Err(failed(format!(
                "{}: no such file on the peer",
                shown(&name)
            )));
        };
        match local_md5(&path) {
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
                    "{}: a different local file is in the way (use --overwrite to replace it)",
                    shown(&name)
                )));
            }
            _ => {}
        }
    }
    Ok(Target {
        index,
        name,
        path,
        part,
        lock,
        attempts: 0,
    })
}

/// The md5 of the regular file at `path`, never read through a link (a
/// link at a download's name could otherwise tell the peer whether a file
/// elsewhere holds what it offers).
fn local_md5(path: &Path) -> io::Result<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(hash::md5_of_reader(f)?.to_string())
}

/// Opening fails on a symbolic link instead of following it.
const O_NOFOLLOW: i32 = 0o400000;

/// The names a `FileDownload` word stands for: the file of that name when
/// the peer has one (even where the name holds `*`, `?` or `[`), else,
/// for a word with those characters, every file matching it as a pattern
/// (`IndexGet regex`; only the names are kept), with true for a pattern.
/// The peer's refusal, or no match, is the message to show.
pub fn names_of(client: &mut Client, word: &str) -> Result<Result<Names, String>, ClientError> {
    if !word.contains(['*', '?', '[']) {
        return Ok(Ok((vec![word.to_string()], false)));
    }
    let line = format!("FileHash verify {}", quote_word(word));
    let r = client.request(&line)?;
    match r.code() {
        code::TABLE => {
            return match r.table_rows().first().and_then(|row| row.first()) {
                Some(name) if name == word => Ok(Ok((vec![word.to_string()], false))),
                _ => Err(out_of_step("FileHash verify", word)),
            }
        }
        code::NOT_FOUND => {}
        c => return Ok(Err(format!("{c} {}", console::peer_text(r.text())))),
    }
    let line = format!("IndexGet regex {}", quote_word(word));
    client.send(&line)?;
    let mut names = Vec::new();
    let last = client
        .read_table(&mut |text| names.extend(text.split('\t').next().map(super::unescape)))?;
    client.record(&line, last.code);
    if last.code != code::TABLE {
        return Ok(Err(format!(
            "{} {}",
            last.code,
            console::peer_text(&last.text)
        )));
    }
    if names.is_empty() {
        return Ok(Err(format!("no file on the peer matches {}", shown(word))));
    }
    Ok(Ok((names, true)))
}

/// The names a download word stands for, and whether it was a pattern.
pub type Names = (Vec<String>, bool);

/// The peer's md5 and timestamp for `names`: one `FileHash verify` for a
/// single name, one `FileHash checkall` for more, of which only the rows
/// of `names` are kept (the table is not held).
fn remote_hashes(
    client: &mut Client,
    names: &[&str],
) -> Result<HashMap<String, (String, String)>, ClientError> {
    let line = match names {
        [one] => format!("FileHash verify {}", quote_word(one)),
        _ => "FileHash checkall".to_string(),
    };
    let wanted: HashSet<&str> = names.iter().copied().collect();
    let mut found = HashMap::new();
    client.send(&line)?;
    let last = client.read_table(&mut |text| {
        if let [name, md5, ts] = split_row(text).as_slice() {
            if wanted.contains(name.as_str()) {
                found.insert(name.clone(), (md5.clone(), ts.clone()));
            }
        }
    })?;
    client.record(&line, last.code);
    if let [one] = names {
        // The one row of a verify names the file asked for, or the reply
        // is not the answer to that request.
        if last.code == code::TABLE && !found.contains_key(*one) {
            return Err(out_of_step("FileHash verify", one));
        }
    }
    Ok(found)
}

/// The error of a reply that does not answer its request.
pub(crate) fn out_of_step(request: &str, name: &str) -> ClientError {
    ClientError::Protocol(format!(
        "the peer's reply to {request} {} is about another file: its replies are out of step with the requests; the connection is dropped",
        shown(name)
    ))
}

enum Step {
    Done(Outcome),
    Retry { reason: String, keep_part: bool },
}

fn failed(name: &str, r: &Reply) -> Step {
    Step::Done(Outcome::Failed {
        name: name.to_string(),
        message: format!("{} {}", r.code(), console::peer_text(r.text())),
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
                reason: format!("{} {}", first.code(), console::peer_text(first.text())),
                keep_part: true,
            },
            _ => failed(&t.name, &first),
        };
        return Ok((step, first.code()));
    }
    let (Some(row), Some(data)) = (
        match first.lines.as_slice() {
            [row, _] => parse_row(&row.text),
            _ => None,
        },
        protocol::parse_data_line(first.text()),
    ) else {
        let shown_lines: Vec<String> = first
            .lines
            .iter()
            .map(|l| console::peer_text(&l.text))
            .collect();
        return Err(ClientError::Protocol(format!(
            "bad 150 reply to the download of {}: {}",
            shown(&t.name),
            shown_lines.join(" | ")
        )));
    };
    // Bytes are stored only under the name asked for, and only when the
    // peer's reply is about that file: a reply for another one means the
    // replies no longer follow the requests, and none after it can be
    // trusted to belong to its request either.
    if row.name != t.name || data.transport != opts.transport {
        return Err(ClientError::Protocol(format!(
            "the peer answered the {} download of {} with a {} one of {}: its replies are out of step with the requests; the connection is dropped",
            opts.transport.as_str().to_ascii_uppercase(),
            shown(&t.name),
            data.transport.as_str().to_ascii_uppercase(),
            shown(&row.name)
        )));
    }
    if offset > row.size {
        return Err(ClientError::Protocol(format!(
            "the peer accepted offset {offset} past the end of {} ({} bytes)",
            shown(&row.name),
            row.size
        )));
    }
    let want = row.size - offset;
    let mut sink = match Sink::open(&t.lock.file, offset, t.lock.fresh) {
        Ok(s) => s,
        Err(e) => {
            // The bytes are on their way: take them, then report.
            let r = receive_bytes(
                client,
                &data,
                (offset, want),
                opts,
                &mut io::sink(),
                &mut Quiet,
            )?;
            let last = final_reply(client, r, opts.transport)?;
            return Ok((
                Step::Done(Outcome::Failed {
                    name: t.name.clone(),
                    message: format!("cannot write {}: {e}", shown_path(&t.part)),
                }),
                last.code(),
            ));
        }
    };
    if offset > 0 {
        ui.resume(&t.name, offset);
    }
    ui.start(&t.name, row.size, offset);
    let received = receive_bytes(client, &data, (offset, want), opts, &mut sink, ui);
    ui.end();
    let received = received?;
    let broken = received.bytes.as_ref().err().map(|e| e.to_string());
    let last = final_reply(client, received, opts.transport)?;
    let code = last.code();
    if let Some(e) = broken {
        let _ = sink.flush();
        let keep_part = code != code::LOCAL_ERROR;
        return Ok((
            Step::Retry {
                reason: format!(
                    "transfer broken ({e}); {} {}",
                    code,
                    console::peer_text(last.text())
                ),
                keep_part,
            },
            code,
        ));
    }
    match code {
        code::COMPLETE => {}
        code::ABORTED => {
            let _ = sink.flush();
            return Ok((
                Step::Retry {
                    reason: format!("{code} {}", console::peer_text(last.text())),
                    keep_part: true,
                },
                code,
            ));
        }
        code::LOCAL_ERROR => {
            return Ok((
                Step::Retry {
                    reason: format!("{code} {}", console::peer_text(last.text())),
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
                    message: format!("cannot write {}: {e}", shown_path(&t.part)),
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
                shown(&t.name)
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
                message: format!("cannot rename into {}: {e}", shown_path(&t.path)),
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
            let same = local_md5(&t.path).is_ok_and(|d| d == row.md5);
            if same {
                let _ = fs::remove_file(&t.part);
                Step::Done(Outcome::UpToDate(row))
            } else {
                refuse(t)
            }
        }
        Err(_) if fs::symlink_metadata(&t.path).is_ok() => refuse(t),
        // No hard links on this file system: fall back to a rename.
        Err(_) => match fs::rename(&t.part, &t.path) {
            Ok(()) => Step::Done(Outcome::Downloaded(row)),
            Err(e) => Step::Done(Outcome::Failed {
                name: t.name.clone(),
                message: format!("cannot rename into {}: {e}", shown_path(&t.path)),
            }),
        },
    }
}

/// How the bytes of one transfer ended, and the transfer's final reply
/// when it was read while they were awaited.
struct Received {
    bytes: io::Result<()>,
    last: Option<Reply>,
}

impl Received {
    fn broken(e: io::Error) -> Received {
        Received {
            bytes: Err(e),
            last: None,
        }
    }
}

/// The final reply of a transfer: the one already read, else the next.
/// A TCP data connection is kept only after a transfer that went well,
/// as the peer keeps it only then.
fn final_reply(
    client: &mut Client,
    r: Received,
    transport: Transport,
) -> Result<Reply, ClientError> {
    let last = match r.last {
        Some(last) => last,
        None => client.read_reply()?,
    };
    if transport == Transport::Tcp && (r.bytes.is_err() || last.code() != code::COMPLETE) {
        client.data = None;
    }
    Ok(last)
}

/// Receives the `want` bytes from `offset` on announced by `data` into
/// `out`. A data channel that stays silent for the timeout ends the
/// command (an error naming it); any other failure is in the result, for
/// a retry.
fn receive_bytes(
    client: &mut Client,
    data: &protocol::DataLine,
    (offset, want): (u64, u64),
    opts: &Options,
    out: &mut dyn Write,
    ui: &mut dyn Ui,
) -> Result<Received, ClientError> {
    match opts.transport {
        Transport::Tcp => receive_tcp(client, data, (offset, want), out, ui),
        Transport::Udp => {
            let got = receive_udp(
                client.addr(),
                data,
                (offset, want),
                (opts.udp_payload, client.timeout()),
                out,
                ui,
            );
            match got {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(stalled(client, data)),
                bytes => Ok(Received { bytes, last: None }),
            }
        }
    }
}

/// The error of a data channel on which nothing arrived for the timeout.
fn stalled(client: &Client, data: &protocol::DataLine) -> ClientError {
    let channel = match data.transport {
        Transport::Tcp => "TCP data connection",
        Transport::Udp => "UDP data channel",
    };
    ClientError::Timeout(format!(
        "the {channel} from {}:{} stalled: nothing arrived within {}",
        client.addr().ip(),
        data.port,
        super::duration_text(client.timeout())
    ))
}

/// A new data connection to the channel `data` names, its token sent.
/// Reads on it wait [`SLICE`] at a time, so that a receive can look at the
/// control connection in between.
fn connect_data(client: &Client, data: &protocol::DataLine) -> io::Result<DataConn> {
    let addr = SocketAddr::new(client.addr().ip(), data.port);
    let mut stream = TcpStream::connect_timeout(&addr, client.timeout())?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(SLICE))?;
    stream.set_write_timeout(Some(client.timeout()))?;
    stream.write_all(format!("{}\n", data.token).as_bytes())?;
    Ok(DataConn {
        port: data.port,
        token: data.token.clone(),
        stream,
    })
}

/// Takes the data connection held for the channel `data` names, unless
/// the peer has closed it (a look that does not wait): a connection
/// closed at the other end is never written to nor read from again.
fn take_held(client: &mut Client, data: &protocol::DataLine) -> Option<DataConn> {
    client.data.take().filter(|d| {
        d.port == data.port && d.token == data.token && peek_now(&d.stream) != Peek::Closed
    })
}

/// The data connection for a transfer: the one held (see [`take_held`]),
/// else a new one. The caller puts it back into `client.data` when the
/// transfer went well.
pub(crate) fn data_conn(client: &mut Client, data: &protocol::DataLine) -> io::Result<DataConn> {
    match take_held(client, data) {
        Some(c) => Ok(c),
        None => connect_data(client, data),
    }
}

/// Receives over TCP, watching the control connection meanwhile: a final
/// reply that arrives while bytes are missing ends the wait for them once
/// nothing more came for [`SHORT_GRACE`] (or the timeout, when shorter),
/// and a data connection silent for the timeout ends the command.
fn receive_tcp(
    client: &mut Client,
    data: &protocol::DataLine,
    (offset, want): (u64, u64),
    out: &mut dyn Write,
    ui: &mut dyn Ui,
) -> Result<Received, ClientError> {
    let held = take_held(client, data);
    if want == 0 {
        // Nothing to read. A peer that needs no data connection for zero
        // bytes answers at once; one that waits for it gets one.
        if held.is_some() || client.reply_within(ZERO_GRACE) {
            client.data = held;
        } else {
            match connect_data(client, data) {
                Ok(c) => client.data = Some(c),
                Err(e) => return Ok(Received::broken(e)),
            }
        }
        return Ok(Received {
            bytes: Ok(()),
            last: None,
        });
    }
    let mut conn = match held.map_or_else(|| connect_data(client, data), Ok) {
        Ok(c) => c,
        Err(e) => return Ok(Received::broken(e)),
    };
    let timeout = client.timeout();
    let grace = SHORT_GRACE.min(timeout);
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(want).unwrap_or(CHUNK))];
    let mut left = want;
    let mut last_byte = Instant::now();
    let mut last: Option<(Reply, Instant)> = None;
    let ended = |last: Option<(Reply, Instant)>, e: io::Error| Received {
        bytes: Err(e),
        last: last.map(|(r, _)| r),
    };
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        match conn.stream.read(&mut buf[..n]) {
            Ok(0) => return Ok(ended(last, io::ErrorKind::UnexpectedEof.into())),
            Ok(got) => {
                if let Err(e) = out.write_all(&buf[..got]) {
                    return Ok(ended(last, e));
                }
                left -= got as u64;
                last_byte = Instant::now();
                ui.progress(offset + want - left);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last.is_none() && client.reply_pending() {
                    let r = client.read_reply()?;
                    let complete = r.code() == code::COMPLETE;
                    last = Some((r, Instant::now()));
                    if !complete {
                        // The peer gave up on the transfer (and closes
                        // the data connection).
                        let e = io::Error::other(format!(
                            "the peer ended it after {} of {want} bytes",
                            want - left
                        ));
                        return Ok(ended(last, e));
                    }
                }
                match &last {
                    // Bytes sent before the final reply may still be on
                    // their way; none came for the grace time: they never
                    // will.
                    Some((_, at)) if at.elapsed() >= grace && last_byte.elapsed() >= grace => {
                        let e = io::Error::other(format!(
                            "only {} of {want} bytes came before the peer's final reply",
                            want - left
                        ));
                        return Ok(ended(last, e));
                    }
                    None if last_byte.elapsed() >= timeout => return Err(stalled(client, data)),
                    _ => {}
                }
            }
            Err(e) => return Ok(ended(last, e)),
        }
    }
    client.data = Some(conn);
    Ok(Received {
        bytes: Ok(()),
        last: last.map(|(r, _)| r),
    })
}

fn receive_udp(
    server: SocketAddr,
    data: &protocol::DataLine,
    (offset, want): (u64, u64),
    (payload, idle): (Option<usize>, Duration),
    out: &mut dyn Write,
    ui: &mut dyn Ui,
) -> io::Result<()> {
    let addr = SocketAddr::new(server.ip(), data.port);
    let mut progress = |n: u64| ui.progress(offset + n);
    let defaults = udp::ReceiveOptions::for_path(addr);
    let opts = udp::ReceiveOptions {
        payload: payload.unwrap_or(defaults.payload),
        idle,
        ..defaults
    };
    udp::receive_with(addr, &data.token, offset, want, out, &mut progress, &opts)?;
    Ok(())
}

/// Tells nothing: for bytes taken only to keep the data channel in step.
struct Quiet;

impl Ui for Quiet {
    fn outcome(&mut self, _: &Outcome) {}
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
            .custom_flags(O_NOFOLLOW)
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
                .custom_flags(O_NOFOLLOW)
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
                            shown_path(path)
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
