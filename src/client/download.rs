//! One file's download, in the states it goes through, each with the one
//! function that takes it on:
//!
//! - requested: the `FileDownload` is sent; [`Attempt::requested`] reads
//!   the first reply and checks that it answers this request;
//! - announced: the `150` named the file and its data channel;
//!   [`Attempt::announced`] opens the partial file;
//! - receiving: [`Attempt::receiving`] takes exactly the announced bytes
//!   into it, and the final reply;
//! - verifying: [`Attempt::verifying`] checks length and md5 against the
//!   `150`'s;
//! - verified: [`Attempt::place`] gives the file its name, never over a
//!   different one unless asked to: placed.
//!
//! Any state can end the attempt instead ([`Step`]): with an outcome, or
//! with a retry that the batch sends again.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::answer::{split_row, Answer};
use super::control::Client;
use super::data::{self, Channel, Span};
use super::error::{Breach, ClientError};
use super::local::{local_md5, shown_path, Lock, Sink};
use super::outcome::{Cause, FileRow, Outcome, Ui};
use super::show;
use crate::digest::Md5;
use crate::protocol::{code, shown, Transport};
use crate::share::{self, real_path_inside, Mode, Placed};
use crate::timefmt;

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
    /// The client's state folder: nothing is downloaded into it, wherever
    /// it lies (a `--state` inside the share is left alone like a hidden
    /// name).
    pub state_dir: Option<PathBuf>,
}

/// The peer's md5 and timestamp of the files that are here already.
pub(super) type RemoteHashes = HashMap<String, (String, String)>;

/// A file of the batch whose local places are known: its final path and
/// its hidden partial file beside it.
pub(super) struct Planned {
    /// Its place in the batch.
    pub index: usize,
    pub path: PathBuf,
    pub part: PathBuf,
    /// The md5 of a local file it may replace.
    pub replace: Option<String>,
    /// The md5 it must arrive with, if only one version will do.
    pub expect: Option<String>,
}

/// One download: its name, its local paths and the lock on its partial
/// file, held from the request until it is placed or given up.
pub(super) struct Target {
    pub index: usize,
    pub name: String,
    pub path: PathBuf,
    pub part: PathBuf,
    pub lock: Lock,
    pub attempts: u32,
    /// The md5 of a local file it may replace.
    pub replace: Option<String>,
    /// The md5 it must arrive with, if only one version will do.
    pub expect: Option<String>,
}

/// Takes the lock of one name and decides whether it is to be fetched: a
/// local file with the peer's md5 (in `remote`) is up to date, one with
/// other content is kept unless `overwrite`.
pub(super) fn admit(
    p: Planned,
    name: &str,
    root: &Path,
    (remote, overwrite): (Option<&RemoteHashes>, bool),
    note: &mut dyn FnMut(&str),
) -> Result<Target, Outcome> {
    let name = name.to_string();
    let failed = |message: String| Outcome::failed(&name, message);
    let lock = Lock::acquire(&p.part, note).map_err(|e| {
        if is_no_space(&e) {
            no_space_outcome(&name, &p.part, &e)
        } else {
            failed(format!("cannot lock {}: {e}", shown_path(&p.part)))
        }
    })?;
    // The partial file must be where it was meant to be, whatever a link
    // swapped meanwhile pointed at.
    if real_path_inside(root, &lock.file, &p.part).is_none() {
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
    if let Some((remote, Ok(meta))) = remote.map(|r| (r, fs::symlink_metadata(&p.path))) {
        let Some((md5, ts)) = remote.get(&name) else {
            return Err(failed(format!(
                "{}: no such file on the peer",
                shown(&name)
            )));
        };
        match local_md5(&p.path) {
            Ok(local) if local == *md5 => {
                return Err(Outcome::UpToDate(FileRow {
                    name: name.clone(),
                    size: meta.len(),
                    timestamp: ts.clone(),
                    md5: md5.clone(),
                }));
            }
            Ok(local) if p.replace.as_ref() == Some(&local) => {}
            _ if !overwrite => {
                return Err(failed(format!(
                    "{}: a different local file is in the way (use --overwrite to replace it)",
                    shown(&name)
                )));
            }
            _ => {}
        }
    }
    Ok(Target {
        index: p.index,
        name,
        path: p.path,
        part: p.part,
        lock,
        attempts: 0,
        replace: p.replace,
        expect: p.expect,
    })
}

/// How one attempt at a download ended.
pub(super) enum Step {
    Done(Outcome),
    /// Worth another attempt; `keep_part`: the partial file holds good
    /// bytes to resume from.
    Retry {
        reason: String,
        keep_part: bool,
    },
}

fn retry(reason: impl Into<String>, keep_part: bool) -> Step {
    Step::Retry {
        reason: reason.into(),
        keep_part,
    }
}

fn failed(name: &str, message: String) -> Step {
    Step::Done(Outcome::failed(name, message))
}

/// Whether `e` says the local disk (or the user's quota on it) is full.
/// A full disk is not a network fault: another attempt meets it again.
pub(super) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// The failure of `name`, whose partial file `part` met a full disk.
fn no_space_outcome(name: &str, part: &Path, e: &io::Error) -> Outcome {
    let what = if e.kind() == io::ErrorKind::QuotaExceeded {
        "disk quota exceeded"
    } else {
        "no space left on device"
    };
    Outcome::Failed {
        name: name.to_string(),
        message: format!(
            "{}: {what} (writing {}); its partial file is removed, and a full disk is not retried",
            shown(name),
            shown_path(part)
        ),
        cause: Cause::NoSpace,
    }
}

/// The end of a download that met a full disk: nothing a disk that full
/// could hold is worth resuming, so its partial file is emptied at once
/// (and removed with its lock: see `Lock`'s drop), and the bytes it held
/// are free for the next file.
fn no_space(t: &Target, e: &io::Error) -> Step {
    let _ = t.lock.file.set_len(0);
    Step::Done(no_space_outcome(&t.name, &t.part, e))
}

/// A reply's code and text, as they may be shown.
fn said(r: &Answer) -> String {
    format!("{} {}", r.code(), show::peer_text(r.text()))
}

/// What the `150` announced.
struct Announced {
    row: FileRow,
    channel: Channel,
    span: Span,
}

/// Where one attempt stands (see the module's text).
enum State {
    Requested {
        offset: u64,
    },
    Announced(Announced),
    Receiving(Announced, Sink),
    /// Every byte is in the partial file and the peer said `226`.
    Verifying(FileRow, Sink),
    /// The partial file holds the peer's file.
    Verified(FileRow),
    Ended(Step),
}

/// What one attempt works with.
struct Attempt<'a> {
    client: &'a mut Client,
    t: &'a Target,
    opts: &'a Options,
    ui: &'a mut dyn Ui,
    /// The code of the reply that ended the request, for the history.
    code: u16,
}

/// Runs one attempt at the download of `t`, whose request (from
/// `offset`) is sent, through its states until it ends. Returns how it
/// ended and the code of the reply that ended the request.
pub(super) fn attempt(
    client: &mut Client,
    t: &Target,
    offset: u64,
    opts: &Options,
    ui: &mut dyn Ui,
) -> Result<(Step, u16), ClientError> {
    let mut a = Attempt {
        client,
        t,
        opts,
        ui,
        code: 0,
    };
    let mut state = State::Requested { offset };
    loop {
        state = match state {
            State::Requested { offset } => a.requested(offset)?,
            State::Announced(x) => a.announced(x)?,
            State::Receiving(x, sink) => a.receiving(x, sink)?,
            State::Verifying(row, sink) => a.verifying(row, sink),
            State::Verified(row) => a.place(row),
            State::Ended(step) => return Ok((step, a.code)),
        }
    }
}

impl Attempt<'_> {
    /// Reads the first reply. Bytes are stored only under the name asked
    /// for, and only when the peer's `150` is about that file: a reply for
    /// another one means the replies no longer follow the requests, and
    /// none after it can be trusted to belong to its request either.
    fn requested(&mut self, offset: u64) -> Result<State, ClientError> {
        let first = self.client.read_reply()?;
        self.code = first.code();
        let step = match first.code() {
            code::DATA => None,
            // The partial file is longer than the peer's file: it changed.
            code::BAD_ARGS if offset > 0 => Some(retry(
                "the partial download does not fit the peer's file",
                false,
            )),
            code::LOCAL_ERROR | code::NO_DATA => Some(retry(said(&first), true)),
            _ => Some(failed(&self.t.name, said(&first))),
        };
        if let Some(step) = step {
            return Ok(State::Ended(step));
        }
        let (row, channel) = announcement(&self.t.name, &first)?;
        let transport = self.opts.transport;
        // Inline bytes answer a TCP download (over `serve --stdio`).
        let fits = match &channel {
            Channel::Net(line) => line.transport == transport,
            Channel::Inline(_) => transport == Transport::Tcp,
        };
        if row.name != self.t.name || !fits {
            return Err(ClientError::Protocol(Breach::OtherDownload {
                how: transport,
                asked: self.t.name.clone(),
                got_how: channel.name(),
                got: row.name,
            }));
        }
        if offset > row.size {
            return Err(ClientError::Protocol(Breach::PastEnd {
                name: row.name,
                offset,
                size: row.size,
            }));
        }
        let span = Span {
            offset,
            want: row.size - offset,
        };
        if let Channel::Inline(n) = channel {
            if n != span.want {
                return Err(ClientError::Protocol(Breach::InlineBytes {
                    what: "download",
                    name: row.name,
                    announced: n,
                    due: span.want,
                }));
            }
        }
        Ok(State::Announced(Announced { row, channel, span }))
    }

    /// Opens the partial file for the bytes to come (after the `offset`
    /// it holds). One that cannot be written fails the file, once the
    /// bytes on their way were taken.
    fn announced(&mut self, a: Announced) -> Result<State, ClientError> {
        let (t, span) = (self.t, a.span);
        match Sink::open(&t.lock.file, span, t.lock.fresh) {
            Ok(sink) => {
                if span.offset > 0 {
                    self.ui.resume(&t.name, span.offset);
                }
                self.ui.start(&t.name, a.row.size, span.offset);
                Ok(State::Receiving(a, sink))
            }
            Err(e) => {
                let udp_payload = self.opts.udp_payload;
                let taken = data::discard(self.client, &a.channel, span, udp_payload)?;
                let (_, last) = taken.finish(self.client)?;
                self.code = last.code();
                if is_no_space(&e) {
                    return Ok(State::Ended(no_space(t, &e)));
                }
                let message = format!("cannot write {}: {e}", shown_path(&t.part));
                Ok(State::Ended(failed(&t.name, message)))
            }
        }
    }

    /// Takes the announced bytes into the partial file, and the final
    /// reply. What broke on the way is retried, resuming from what came
    /// unless the peer says its side failed (`451`).
    fn receiving(&mut self, a: Announced, mut sink: Sink) -> Result<State, ClientError> {
        let Announced { row, channel, span } = a;
        let ui = &mut *self.ui;
        let mut progress = |n: u64| ui.progress(span.offset + n);
        let udp_payload = self.opts.udp_payload;
        let received = data::receive(
            self.client,
            &channel,
            span,
            udp_payload,
            &mut sink,
            &mut progress,
        );
        self.ui.end();
        let (bytes, last) = received?.finish(self.client)?;
        self.code = last.code();
        if let Err(e) = bytes {
            if is_no_space(&e) {
                drop(sink);
                return Ok(State::Ended(no_space(self.t, &e)));
            }
            let _ = sink.flush();
            let keep_part = last.code() != code::LOCAL_ERROR;
            let reason = format!("transfer broken ({e}); {}", said(&last));
            return Ok(State::Ended(retry(reason, keep_part)));
        }
        Ok(match last.code() {
            code::COMPLETE => State::Verifying(row, sink),
            code::ABORTED => {
                let _ = sink.flush();
                State::Ended(retry(said(&last), true))
            }
            code::LOCAL_ERROR => State::Ended(retry(said(&last), false)),
            _ => State::Ended(failed(&self.t.name, said(&last))),
        })
    }

    /// Checks what came against the `150`'s size and md5, and gives the
    /// partial file the peer's modification time.
    fn verifying(&mut self, row: FileRow, sink: Sink) -> State {
        let (file, md5, len) = match sink.finish() {
            Ok(x) => x,
            Err(e) if is_no_space(&e) => return State::Ended(no_space(self.t, &e)),
            Err(e) => {
                let message = format!("cannot write {}: {e}", shown_path(&self.t.part));
                return State::Ended(failed(&self.t.name, message));
            }
        };
        if len != row.size || md5 != row.md5 {
            let reason = format!("md5 mismatch (got {md5}, expected {})", row.md5);
            return State::Ended(retry(reason, false));
        }
        if self.t.expect.as_ref().is_some_and(|want| md5 != *want) {
            let message = format!(
                "{}: changed on the peer since it was listed; not stored, left for the next sync",
                shown(&self.t.name)
            );
            return State::Ended(failed(&self.t.name, message));
        }
        if let Ok(t) = timefmt::parse(&row.timestamp) {
            let _ = file.set_modified(t);
        }
        State::Verified(row)
    }

    /// Gives the verified partial file its final name (see
    /// [`share::place`]), never replacing a different file unless asked
    /// to: `--overwrite`, or a sync's agreed version.
    fn place(&mut self, row: FileRow) -> State {
        let t = self.t;
        let agreed = t.replace.as_deref().and_then(Md5::from_hex);
        let mode = match (&agreed, self.opts.overwrite) {
            (_, true) => Mode::Replace,
            (Some(md5), false) => Mode::ReplaceIf(md5),
            (None, false) => Mode::New,
        };
        let placed = match Md5::from_hex(&row.md5) {
            Some(md5) => share::place(&t.part, &t.path, &md5, mode),
            None => Err(io::Error::other("the peer's md5 is not one")),
        };
        State::Ended(match placed {
            Ok(placed) => {
                // The partial name is gone whichever way it went.
                t.lock.placed.set(true);
                match placed {
                    Placed::Stored => Step::Done(Outcome::Downloaded(row)),
                    Placed::Same => Step::Done(Outcome::UpToDate(row)),
                    Placed::Exists => {
                        let message = format!(
                            "{}: a different local file appeared in the way (use --overwrite to replace it)",
                            shown(&t.name)
                        );
                        failed(&t.name, message)
                    }
                }
            }
            Err(e) if is_no_space(&e) => no_space(t, &e),
            Err(e) => failed(
                &t.name,
                format!("cannot place it as {}: {e}", shown_path(&t.path)),
            ),
        })
    }
}

/// The file row and data channel of a `150` reply; one that lacks
/// either breaks the protocol.
fn announcement(name: &str, first: &Answer) -> Result<(FileRow, Channel), ClientError> {
    let row = match first.lines.as_slice() {
        [row, _] => parse_row(&row.text),
        _ => None,
    };
    if let (Some(row), Some(data)) = (row, Channel::parse(first.text())) {
        return Ok((row, data));
    }
    Err(ClientError::Protocol(Breach::Announcement {
        what: "download",
        name: name.to_string(),
        lines: first.lines.iter().map(|l| l.text.clone()).collect(),
    }))
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
