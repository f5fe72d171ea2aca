//! Downloads into the local shared folder: the files of one command as a
//! batch, their requests pipelined over one control connection (a window
//! of them ahead of the one being received, each batch of requests in one
//! write) and their bytes over one data connection, each reply checked to
//! belong to its request; retries that start at once, a batch cut off by
//! a dropped connection going on from where it was, and no silent
//! overwrites. One file's download is `download`'s (with the download
//! [`Options`]), the local files' rules `local`'s, and what a download
//! comes to (`Outcome`, `FileRow`, the `Ui` it tells) is `outcome`'s,
//! shared with uploads and the console.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use super::answer::{split_row, unescape};
use super::control::Client;
pub use super::download::Options;
use super::download::{self, Planned, RemoteHashes, Step, Target};
use super::error::{Breach, ClientError};
use super::local::{local_dir, share_root};
pub use super::outcome::{Cause, FileRow, Outcome, Ui};
use super::show;
use crate::protocol::{code, quote_word, shown, Transport};
use crate::share::check_name;

/// How many downloads may be requested ahead of the one being received.
const WINDOW: usize = 32;

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
    /// The local name a file is stored under where it is not its own (the
    /// peer's version beside a conflicting local one).
    local: Vec<Option<String>>,
    /// The md5 a local file in the way may have and still be replaced
    /// (the version both sides last agreed on).
    replace: Vec<Option<String>>,
    /// The md5 a file must arrive with (the version a sync planned to
    /// store); another version fails it.
    expect: Vec<Option<String>>,
    /// The peer's md5s, when known already: not asked for again.
    remote: Option<RemoteHashes>,
    pub tally: Tally,
}

impl Batch {
    pub fn new(names: Vec<String>) -> Batch {
        Batch {
            done: vec![false; names.len()],
            local: vec![None; names.len()],
            replace: vec![None; names.len()],
            expect: vec![None; names.len()],
            names,
            remote: None,
            tally: Tally::default(),
        }
    }

    /// Stores file `i` under the local name `local` instead of its own.
    pub fn store_as(&mut self, i: usize, local: String) {
        if let Some(l) = self.local.get_mut(i) {
            *l = Some(local);
        }
    }

    /// Lets file `i` replace a local file whose md5 is `md5`.
    pub fn may_replace(&mut self, i: usize, md5: String) {
        if let Some(r) = self.replace.get_mut(i) {
            *r = Some(md5);
        }
    }

    /// Takes file `i` only as the version whose md5 is `md5`: one the
    /// peer changed since it listed it fails, without another attempt.
    pub fn expecting(&mut self, i: usize, md5: String) {
        if let Some(e) = self.expect.get_mut(i) {
            *e = Some(md5.to_ascii_lowercase());
        }
    }

    /// The peer's md5 and timestamp of each file, known already.
    pub fn knowing(mut self, remote: HashMap<String, (String, String)>) -> Batch {
        self.remote = Some(remote);
        self
    }

    /// Whether file `i` is done (its outcome told).
    pub fn is_done(&self, i: usize) -> bool {
        self.done.get(i).copied().unwrap_or(true)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl Batch {
    /// Tells `ui` how file `i` ended and counts it.
    fn report(&mut self, i: usize, outcome: &Outcome, ui: &mut dyn Ui) {
        if let Some(d) = self.done.get_mut(i) {
            *d = true;
        }
        match outcome {
            Outcome::Downloaded(_) | Outcome::Uploaded(_) => self.tally.downloaded += 1,
            Outcome::UpToDate(_) => self.tally.up_to_date += 1,
            Outcome::Failed { .. } => self.tally.failed += 1,
        }
        ui.outcome(outcome);
    }

    fn fail(&mut self, i: usize, message: String, ui: &mut dyn Ui) {
        let outcome = Outcome::failed(&self.names[i], message);
        self.report(i, &outcome, ui);
    }
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
    let todo: Vec<usize> = (0..batch.len()).filter(|&i| !batch.done[i]).collect();
    let root = match share_root(&opts.dest) {
        Ok(r) => r,
        Err(e) => {
            for i in todo {
                batch.fail(i, format!("cannot use the share folder {e}"), ui);
            }
            return Ok(());
        }
    };
    let state_dir = opts.state_dir.as_deref().map(|d| {
        fs::canonicalize(d)
            .or_else(|_| std::path::absolute(d))
            .unwrap_or_else(|_| d.to_path_buf())
    });
    let in_state = |p: &Path| state_dir.as_deref().is_some_and(|s| p.starts_with(s));
    let refuse = |batch: &mut Batch, i: usize, ui: &mut dyn Ui| {
        let message = format!(
            "{}: inside the client's state folder; not stored",
            shown(&batch.names[i])
        );
        batch.fail(i, message, ui);
    };
    // By name first (no folder is made there), then by the real place
    // (a link inside the share may lead into it).
    let mut todo = todo;
    todo.retain(|&i| {
        let stored = batch.local[i].as_deref().unwrap_or(&batch.names[i]);
        let inside = in_state(&root.join(stored));
        if inside {
            refuse(batch, i, ui);
        }
        !inside
    });
    let mut pending = plan(batch, todo, &root, ui);
    pending.retain(|p| {
        let inside = in_state(&p.path);
        if inside {
            refuse(batch, p.index, ui);
        }
        !inside
    });
    // Where local files are already there, the peer's md5s say whether
    // they are up to date: asked once, before the pipeline starts.
    let here: Vec<&str> = pending
        .iter()
        .filter(|p| fs::symlink_metadata(&p.path).is_ok())
        .map(|p| batch.names[p.index].as_str())
        .collect();
    let remote = if let Some(known) = batch.remote.take() {
        Some(known)
    } else if here.is_empty() {
        None
    } else {
        Some(remote_hashes(client, &here)?)
    };
    let mut pipe = Pipeline {
        client,
        opts,
        root,
        remote,
        pending,
        again: VecDeque::new(),
        inflight: VecDeque::new(),
        // UDP transfers use a socket each: they go one at a time.
        window: if opts.transport == Transport::Udp {
            1
        } else {
            WINDOW
        },
    };
    pipe.run(batch, ui)
}

/// The local places of the files `todo` of `batch`, in order; a name that
/// cannot be stored here fails at once.
fn plan(batch: &mut Batch, todo: Vec<usize>, root: &Path, ui: &mut dyn Ui) -> VecDeque<Planned> {
    // First only the names and folders: locks are taken as files enter
    // the window, so a pattern of thousands of files never holds more
    // than a window's worth of open lock files.
    let mut pending = VecDeque::new();
    // A pattern's files come folder by folder: each folder is looked up
    // (and made) once, not once per file.
    let mut last_dir: Option<(String, Result<PathBuf, String>)> = None;
    for i in todo {
        let name = batch.names[i].as_str();
        let stored = batch.local[i].as_deref().unwrap_or(name);
        if check_name(name).is_err() || check_name(stored).is_err() {
            let message = format!("{}: not a name that can be stored locally", shown(name));
            batch.fail(i, message, ui);
            continue;
        }
        let dir_rel = name.rsplit_once('/').map_or("", |(d, _)| d);
        let base = stored.rsplit('/').next().unwrap_or(stored);
        let dir = match &last_dir {
            Some((d, dir)) if d == dir_rel => dir.clone(),
            _ => {
                let dir = local_dir(root, name);
                last_dir = Some((dir_rel.to_string(), dir.clone()));
                dir
            }
        };
        match dir {
            Ok(dir) => pending.push_back(Planned {
                index: i,
                path: dir.join(base),
                part: dir.join(format!(".{base}.p2pshare-part")),
                replace: batch.replace[i].clone(),
                expect: batch.expect[i].clone(),
            }),
            Err(why) => {
                let message = format!("{}: {why}", shown(name));
                batch.fail(i, message, ui);
            }
        }
    }
    pending
}

/// A download whose request is sent: from which offset, and the line.
struct Request {
    target: Target,
    offset: u64,
    line: String,
}

/// The downloads of one batch on their way through one connection.
struct Pipeline<'a> {
    client: &'a mut Client,
    opts: &'a Options,
    root: PathBuf,
    remote: Option<RemoteHashes>,
    /// Not requested yet.
    pending: VecDeque<Planned>,
    /// To be requested again after a failed attempt.
    again: VecDeque<Target>,
    /// Requested, in the order the replies come.
    inflight: VecDeque<Request>,
    window: usize,
}

impl Pipeline<'_> {
    fn run(&mut self, batch: &mut Batch, ui: &mut dyn Ui) -> Result<(), ClientError> {
        while !self.again.is_empty() || !self.pending.is_empty() || !self.inflight.is_empty() {
            self.top_up(batch, ui)?;
            let Some(Request {
                mut target,
                offset,
                line,
            }) = self.inflight.pop_front()
            else {
                break;
            };
            let (step, code) = download::attempt(self.client, &target, offset, self.opts, ui)
                .inspect_err(|e| {
                    if matches!(e, ClientError::Changed(_)) {
                        // Nothing that came under a reply whose MAC
                        // failed is kept, not even to resume from: the
                        // emptied partial file goes with its lock.
                        let _ = target.lock.file.set_len(0);
                    }
                })?;
            target.lock.fresh = false;
            self.client.record(&line, code);
            match step {
                Step::Done(outcome) => batch.report(target.index, &outcome, ui),
                Step::Retry { reason, keep_part } => {
                    self.retry(batch, target, (reason, keep_part), ui);
                }
            }
        }
        Ok(())
    }

    /// Tops the window up once half of it has arrived, with the new
    /// requests in one write: small files cost fewer system calls on both
    /// sides (the server answers a batch in few packets too).
    fn top_up(&mut self, batch: &mut Batch, ui: &mut dyn Ui) -> Result<(), ClientError> {
        let mut requests = String::new();
        while self.inflight.len() < self.window
            && (!requests.is_empty() || self.inflight.len() <= self.window / 2)
        {
            let Some(target) = self.next_target(batch, ui) else {
                break;
            };
            let offset = target.lock.len();
            let mut line = format!(
                "FileDownload {} {}",
                self.opts.transport.as_str().to_ascii_uppercase(),
                quote_word(&target.name)
            );
            if offset > 0 {
                line.push_str(&format!(" {offset}"));
            }
            if !requests.is_empty() {
                requests.push('\n');
            }
            requests.push_str(&line);
            self.inflight.push_back(Request {
                target,
                offset,
                line,
            });
        }
        if !requests.is_empty() {
            self.client.send(&requests)?;
        }
        Ok(())
    }

    /// The next download to request: a retry first, else the next planned
    /// file that is to be fetched (see [`download::admit`]).
    fn next_target(&mut self, batch: &mut Batch, ui: &mut dyn Ui) -> Option<Target> {
        if let Some(t) = self.again.pop_front() {
            return Some(t);
        }
        while let Some(p) = self.pending.pop_front() {
            let i = p.index;
            let local = (self.remote.as_ref(), self.opts.overwrite);
            let mut note = |text: &str| ui.note(text);
            match download::admit(p, &batch.names[i], &self.root, local, &mut note) {
                Ok(t) => return Some(t),
                Err(outcome) => batch.report(i, &outcome, ui),
            }
        }
        None
    }

    /// Queues `t` for another attempt, or gives up on it after
    /// `opts.retries` of them.
    fn retry(
        &mut self,
        batch: &mut Batch,
        mut t: Target,
        (reason, keep_part): (String, bool),
        ui: &mut dyn Ui,
    ) {
        if !keep_part {
            // Emptied, not removed: the partial file is this download's
            // lock.
            let _ = t.lock.file.set_len(0);
        }
        t.attempts += 1;
        if t.attempts > self.opts.retries {
            let message = format!(
                "{}: {reason} (gave up after {} attempts)",
                shown(&t.name),
                t.attempts
            );
            batch.fail(t.index, message, ui);
        } else {
            ui.note(&format!("{}: {reason}; trying again", shown(&t.name)));
            self.again.push_back(t);
        }
    }
}

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
        c => return Ok(Err(format!("{c} {}", show::peer_text(r.text())))),
    }
    let line = format!("IndexGet regex {}", quote_word(word));
    client.send(&line)?;
    let mut names = Vec::new();
    let last =
        client.read_table(&mut |text| names.extend(text.split('\t').next().map(unescape)))?;
    client.record(&line, last.code);
    if last.code != code::TABLE {
        return Ok(Err(format!(
            "{} {}",
            last.code,
            show::peer_text(&last.text)
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
fn remote_hashes(client: &mut Client, names: &[&str]) -> Result<RemoteHashes, ClientError> {
    let line = match names {
        [one] => format!("FileHash verify {}", quote_word(one)),
        _ => "FileHash checkall".to_string(),
    };
    let wanted: HashSet<&str> = names.iter().copied().collect();
    let mut found = RemoteHashes::new();
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
    ClientError::Protocol(Breach::OutOfStep {
        request: request.to_string(),
        name: name.to_string(),
    })
}
