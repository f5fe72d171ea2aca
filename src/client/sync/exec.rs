//! Carrying a sync plan out: the downloads through the client's download
//! path (verified, atomic, with the peer's time; two connections at once
//! for large files, so md5 runs on two cores), deletions into the trash
//! and the versions downloads replace kept there first ([`super::trash`]),
//! and each row shown as it is done.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::plan::{conflict_name, Action, Base, Decision, Files, Version};
use super::trash::Trash;
use super::Counts;
use crate::client::control::Client;
use crate::client::error::{Breach, ClientError};
use crate::client::fetch::{self, Batch, Outcome, Ui};
use crate::client::local::local_md5;
use crate::client::prompt::print_above;
use crate::client::settings::Settings;
use crate::client::ssh;
use crate::digest::Md5;
use crate::history::History;
use crate::protocol::{shown, Transport};
use crate::share::Share;

/// Downloads worth a second connection: at least this many bytes in all.
const PARALLEL_BYTES: u64 = 16 << 20;

/// The header of the rows a sync shows.
pub(super) const HEADER: [&str; 6] = ["action", "name", "size", "timestamp", "md5", "reason"];

/// A decision as the row shows it.
pub(super) fn fields(action: &str, d: &Decision, reason: &str) -> Vec<String> {
    vec![
        action.to_string(),
        d.name.clone(),
        d.version.size.to_string(),
        d.version.timestamp(),
        d.version.md5.to_string(),
        reason.to_string(),
    ]
}

/// Writes one row as it is done: TSV into a pipe, fields apart by two
/// spaces at a terminal; every field as it may be shown.
pub(super) fn print_row(out: &mut dyn Write, row: &[String], tty: bool) {
    let shown_fields: Vec<String> = row
        .iter()
        .enumerate()
        .map(|(i, f)| match (i, f.parse::<u64>()) {
            (2, Ok(n)) if tty => crate::client::show::human_size(n),
            _ => shown(f),
        })
        .collect();
    let _ = writeln!(out, "{}", shown_fields.join(if tty { "  " } else { "\t" }));
}

/// A row as [`print_row`] writes it, without its line end.
fn row_text(row: &[String], tty: bool) -> String {
    let mut b = Vec::new();
    print_row(&mut b, row, tty);
    String::from_utf8_lossy(&b)
        .trim_end_matches('\n')
        .to_string()
}

/// The reason a conflict row gives: which version won, and where the
/// other one is (`is`) or goes (`goes`) beside it.
pub(super) fn conflict_reason(d: &Decision, verb: &str) -> String {
    let at = d.beside.as_deref().unwrap_or_default();
    let at = at.rsplit('/').next().unwrap_or(at);
    let whose = match d.action {
        Action::Yield => "the peer's version wins; this side's",
        _ => "this side's version wins; the peer's",
    };
    format!("{}; {whose} {verb} beside it as {at}", d.reason)
}

/// What the run needs beyond the plan.
pub(super) struct Run<'a> {
    pub settings: &'a Settings,
    pub history: Arc<History>,
    pub share: &'a Share,
    pub state_dir: &'a Path,
    pub peer_id: &'a str,
    /// This side's files as planned: a download may replace its version.
    pub local: &'a Files,
    /// `YYYYMMDD-HHMMSS`, for conflict names and the trash folder.
    pub stamp: &'a str,
    pub tty: bool,
    /// Only the rows that change something are shown, above the
    /// console's prompt (peer mode).
    pub quiet: bool,
}

/// Shared by the connections of one run: counts, the new sync state
/// entries, where stdout goes.
struct Progress<'a> {
    counts: Counts,
    agreed: Vec<(String, Version)>,
    decisions: &'a HashMap<&'a str, (&'a Decision, String)>,
    /// The versions kept in the trash for the downloads that replace
    /// them, as rows show where.
    kept: &'a HashMap<String, String>,
    /// The names whose download landed.
    landed: Vec<String>,
    share: &'a Share,
    tty: bool,
    /// Peer mode: rows go above the console's prompt.
    above_prompt: bool,
    /// Rows not written yet: into a pipe they go out in blocks, not one
    /// write per file.
    rows: Vec<u8>,
}

impl Progress<'_> {
    fn flush(&mut self) {
        let mut out = crate::client::out::stdout();
        let _ = out.write_all(&self.rows);
        let _ = out.flush();
        self.rows.clear();
    }
}

impl Progress<'_> {
    fn outcome(&mut self, outcome: &Outcome) {
        let row = match outcome {
            Outcome::Downloaded(row) | Outcome::UpToDate(row) | Outcome::Uploaded(row) => row,
            Outcome::Failed { message, .. } => {
                print_above(&format!("p2pshare: {message}"), true);
                self.counts.failed += 1;
                return;
            }
        };
        let Some((d, local)) = self.decisions.get(row.name.as_str()) else {
            return;
        };
        // Verified against the md5 the plan knew: the same either way.
        let md5 = Md5::from_hex(&row.md5).unwrap_or(d.version.md5);
        self.share.remember_md5(local, md5);
        let landed = matches!(outcome, Outcome::Downloaded(_));
        if landed {
            self.landed.push(d.name.clone());
        }
        let version = Version {
            md5,
            size: row.size,
            mtime: super::plan::parse_time(&row.timestamp).unwrap_or(d.version.mtime),
        };
        let shown_as = Decision {
            version: version.clone(),
            ..(*d).clone()
        };
        let (action, reason) = if matches!(d.action, Action::Conflict | Action::Yield) {
            self.counts.conflicts += 1;
            ("conflict", conflict_reason(d, "is"))
        } else {
            self.counts.downloaded += 1;
            match self.kept.get(&d.name).filter(|_| landed) {
                Some(at) => (
                    "download",
                    format!("{}; the version here went to {at}", d.reason),
                ),
                None => ("download", d.reason.to_string()),
            }
        };
        let row = fields(action, &shown_as, &reason);
        if self.above_prompt {
            print_above(&row_text(&row, self.tty), false);
        } else {
            print_row(&mut self.rows, &row, self.tty);
            if self.tty || self.rows.len() >= 64 * 1024 {
                self.flush();
            }
        }
        self.agreed.push((d.name.clone(), version));
    }
}

/// Reports the outcomes of one connection's batch.
struct RowUi<'a, 'b>(&'a Mutex<Progress<'b>>);

impl Ui for RowUi<'_, '_> {
    fn outcome(&mut self, outcome: &Outcome) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outcome(outcome);
    }

    fn note(&mut self, text: &str) {
        print_above(&format!("p2pshare: {text}"), true);
    }
}

/// Carries out `decisions`, showing each row as it is done, and returns
/// the counts and the new sync state (from `base`, with what changed).
/// Every version a step removes or replaces goes into the trash first; a
/// step the trash has no room for is refused: its file stays as it is.
pub(super) fn carry_out(
    client: &mut Client,
    run: &Run,
    decisions: &[Decision],
    base: &Files,
) -> Result<(Counts, Files), ClientError> {
    let mut trash = Trash::open(run.state_dir, run.stamp, run.settings.trash, false);
    let mut base = base.clone();
    let mut counts = Counts::default();
    let emptied = local_steps(run, decisions, &mut base, &mut counts, &mut trash);
    remove_emptied(run.share.root(), &emptied);
    let unmoved = move_losers(run, decisions, &mut counts);
    let (kept, refused) = keep_replaced(run, decisions, &mut counts, &mut trash);
    let todo: Vec<Decision> = decisions
        .iter()
        .filter(|d| !refused.contains(d.name.as_str()) && !unmoved.contains(d.name.as_str()))
        .cloned()
        .collect();
    let shown: HashMap<String, String> = kept
        .iter()
        .map(|(n, at)| (n.clone(), trash.shown(at)))
        .collect();
    let (got, agreed, landed, fetched) = download(client, run, &todo, &shown);
    for (name, at) in &kept {
        if !landed.contains(name) {
            trash.give_back(at);
        }
    }
    fetched?;
    counts.add(&got);
    for (name, v) in agreed {
        base.insert(name, v);
    }
    Ok((counts, base))
}

/// The steps that need no peer: the files in step, keeps, skips and
/// deletions (into the trash), each shown as it is done. Returns the
/// folders the deletions took files out of.
fn local_steps(
    run: &Run,
    decisions: &[Decision],
    base: &mut Files,
    counts: &mut Counts,
    trash: &mut Trash,
) -> BTreeSet<String> {
    let mut emptied = BTreeSet::new();
    let mut out = crate::client::out::stdout();
    for d in decisions {
        let (action, reason) = match d.action {
            Action::InStep => {
                counts.in_step += 1;
                apply(base, d);
                continue;
            }
            Action::Download | Action::Conflict | Action::Yield => continue,
            Action::Keep => {
                counts.kept += 1;
                ("keep", d.reason.to_string())
            }
            Action::Skip => {
                counts.skipped += 1;
                ("skip", d.reason.to_string())
            }
            Action::Delete => match delete(run, d, trash) {
                Ok(to) => {
                    counts.deleted += 1;
                    emptied.extend(folders_of(&d.name));
                    ("delete", format!("{}; moved to {to}", d.reason))
                }
                Err(why) => {
                    counts.failed += 1;
                    refused(&mut out, run, d, &format!("not deleted: {why}"));
                    continue;
                }
            },
        };
        apply(base, d);
        if !run.quiet {
            print_row(&mut out, &fields(action, d, &reason), run.tty);
        } else if d.action == Action::Delete {
            print_above(&row_text(&fields(action, d, &reason), run.tty), false);
        }
    }
    emptied
}

/// Shows a step that was not taken, its file left as it is: a `skip`
/// row that says why, and the same on stderr.
fn refused(out: &mut dyn Write, run: &Run, d: &Decision, why: &str) {
    print_above(&format!("p2pshare: {}: {why}", shown(&d.name)), true);
    let row = fields("skip", d, &format!("{}; {why}", d.reason));
    if run.quiet {
        print_above(&row_text(&row, run.tty), false);
    } else {
        print_row(out, &row, run.tty);
    }
}

/// Moves this side's losing version of each conflict it lost to the
/// conflict name beside it ([`move_aside`]); the winner then comes in
/// under the name. Returns the names not moved (counted as failed, a
/// `skip` row says why), which are not fetched either.
fn move_losers<'d>(
    run: &Run,
    decisions: &'d [Decision],
    counts: &mut Counts,
) -> std::collections::HashSet<&'d str> {
    let mut unmoved = std::collections::HashSet::new();
    let mut out = crate::client::out::stdout();
    for d in decisions.iter().filter(|d| d.action == Action::Yield) {
        if let Err(why) = move_aside(run, d) {
            counts.failed += 1;
            unmoved.insert(d.name.as_str());
            refused(&mut out, run, d, &format!("conflict not resolved: {why}"));
        }
    }
    unmoved
}

/// Moves this side's losing version of a conflict to its conflict name
/// beside it, once it is checked to be still the version planned; never
/// over anything (a hard link, then the old name removed; where the file
/// system has no hard links, a rename after a look that the name is
/// free). Nothing is lost, so nothing goes to the trash.
fn move_aside(run: &Run, d: &Decision) -> Result<(), String> {
    let (Some(at), Some(l)) = (&d.beside, run.local.get(&d.name)) else {
        return Err("nothing planned to move".into());
    };
    let from = run.share.root().join(&d.name);
    let to = run.share.root().join(at);
    match local_md5(&from) {
        Ok(md5) if md5 == l.md5.to_string() => {}
        Ok(_) => return Err("it changed here since it was planned".into()),
        Err(e) => return Err(e.to_string()),
    }
    let in_the_way = || format!("{} is in the way", shown(at));
    match fs::hard_link(&from, &to) {
        Ok(()) => fs::remove_file(&from).map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(in_the_way()),
        Err(_) if fs::symlink_metadata(&to).is_ok() => Err(in_the_way()),
        Err(_) => fs::rename(&from, &to).map_err(|e| e.to_string()),
    }
}

/// Keeps in the trash each version here that a download is to replace.
/// Returns where each went, and the names refused (counted as failed):
/// no download replaces a version the trash could not keep.
fn keep_replaced<'d>(
    run: &Run,
    decisions: &'d [Decision],
    counts: &mut Counts,
    trash: &mut Trash,
) -> (HashMap<String, PathBuf>, std::collections::HashSet<&'d str>) {
    let mut kept = HashMap::new();
    let mut refusals = std::collections::HashSet::new();
    let mut out = crate::client::out::stdout();
    let replacing = decisions
        .iter()
        .filter(|d| d.action == Action::Download && run.local.contains_key(&d.name));
    for d in replacing {
        let from = run.share.root().join(&d.name);
        match fs::symlink_metadata(&from) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            _ => {}
        }
        match trash.keep(&from, &d.name) {
            Ok(at) => {
                kept.insert(d.name.clone(), at);
            }
            Err(why) => {
                counts.failed += 1;
                refusals.insert(d.name.as_str());
                refused(&mut out, run, d, &format!("not downloaded: {why}"));
            }
        }
    }
    (kept, refusals)
}

/// The folders `name` lies in, `a/b/c` for `a` and `a/b`.
fn folders_of(name: &str) -> Vec<String> {
    name.match_indices('/')
        .map(|(i, _)| name[..i].to_string())
        .collect()
}

/// Removes the folders this run emptied by taking files out of them,
/// deepest first: only empty ones (`rmdir` refuses any other, so nothing
/// that appeared meanwhile is lost), never the share itself. A folder
/// emptied here before the run holds no file this run took, so it stays.
fn remove_emptied(root: &Path, folders: &BTreeSet<String>) {
    let mut deepest_first: Vec<&String> = folders.iter().collect();
    deepest_first.sort_by_key(|f| std::cmp::Reverse(f.matches('/').count()));
    for f in deepest_first {
        let _ = fs::remove_dir(root.join(f));
    }
}

/// What `d` leaves in the sync state (a download's entry is set once it
/// landed, by [`Progress`]).
fn apply(base: &mut Files, d: &Decision) {
    match &d.base {
        Base::Unchanged => {}
        Base::Set(v) => {
            base.insert(d.name.clone(), v.clone());
        }
        Base::Forget => {
            base.remove(&d.name);
        }
    }
}

/// The downloads and conflicts of the plan: one batch on `client`, or,
/// for large files, two batches of about equal bytes, the second on a
/// connection of its own in a thread.
/// Returns the counts, the new sync state entries and the names that
/// landed, with how the fetching ended.
fn download(
    client: &mut Client,
    run: &Run,
    decisions: &[Decision],
    kept: &HashMap<String, String>,
) -> Fetched {
    let wanted: Vec<&Decision> = decisions
        .iter()
        .filter(|d| {
            matches!(
                d.action,
                Action::Download | Action::Conflict | Action::Yield
            )
        })
        .collect();
    let by_name: HashMap<&str, (&Decision, String)> = wanted
        .iter()
        .map(|d| {
            let local = match d.action {
                Action::Conflict => d
                    .beside
                    .clone()
                    .unwrap_or_else(|| conflict_name(&d.name, run.stamp, &run.peer_id[..8])),
                _ => d.name.clone(),
            };
            (d.name.as_str(), (*d, local))
        })
        .collect();
    let progress = Mutex::new(Progress {
        counts: Counts::default(),
        agreed: Vec::new(),
        decisions: &by_name,
        kept,
        landed: Vec::new(),
        share: run.share,
        tty: run.tty,
        above_prompt: run.quiet,
        rows: Vec::new(),
    });
    // Over ssh one connection carries everything: a second would be a
    // second ssh login, and the bytes share one stream anyway.
    let (first, second) = if ssh::is_ssh(&run.settings.target) {
        (wanted.clone(), Vec::new())
    } else {
        split(&wanted)
    };
    let opts = fetch::Options {
        dest: run.share.root().to_path_buf(),
        overwrite: false,
        retries: 3,
        transport: Transport::Tcp,
        udp_payload: run.settings.udp_payload,
        state_dir: Some(run.state_dir.to_path_buf()),
    };
    let batch_of = |part: &[&Decision]| batch(part, &by_name, run.local);
    let fetched = std::thread::scope(|s| {
        let other = (!second.is_empty()).then(|| {
            let (opts, progress, run) = (&opts, &progress, &*run);
            let mut b = batch_of(&second);
            s.spawn(move || second_connection(run, &mut b, opts, progress))
        });
        let mut b = batch_of(&first);
        let mine = fetch::fetch(client, &mut b, &opts, &mut RowUi(&progress));
        let theirs = other.map(|h| h.join().unwrap_or(Err(ClientError::Panicked)));
        mine.and(theirs.unwrap_or(Ok(())))
    });
    let mut p = progress.into_inner().unwrap_or_else(|e| e.into_inner());
    p.flush();
    (p.counts, p.agreed, p.landed, fetched)
}

/// What [`download`] returns.
type Fetched = (
    Counts,
    Vec<(String, Version)>,
    Vec<String>,
    Result<(), ClientError>,
);

/// A batch of these decisions: conflicts stored under their conflict
/// name, downloads allowed to replace the version both sides agreed on,
/// the peer's md5s known from the plan.
fn batch(part: &[&Decision], by_name: &HashMap<&str, (&Decision, String)>, local: &Files) -> Batch {
    let names: Vec<String> = part.iter().map(|d| d.name.clone()).collect();
    let remote = part
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                (d.version.md5.to_string(), d.version.timestamp()),
            )
        })
        .collect();
    let mut b = Batch::new(names).knowing(remote);
    for (i, d) in part.iter().enumerate() {
        if let (Action::Conflict, Some((_, local))) = (d.action, by_name.get(d.name.as_str())) {
            // The copy holds the loser's version, the one planned, and no
            // other: both sides must end with the same copy.
            b.store_as(i, local.clone());
            b.expecting(i, d.version.md5.to_string());
        }
        if let (Action::Download, Some(here)) = (d.action, local.get(&d.name)) {
            b.may_replace(i, here.md5.to_string());
        }
    }
    b
}

/// Splits the downloads in two of about equal bytes when they are large
/// enough for a second connection to pay, else keeps them together.
fn split<'a>(wanted: &[&'a Decision]) -> (Vec<&'a Decision>, Vec<&'a Decision>) {
    let total: u64 = wanted.iter().map(|d| d.version.size).sum();
    if wanted.len() < 2 || total < PARALLEL_BYTES {
        return (wanted.to_vec(), Vec::new());
    }
    let mut sorted = wanted.to_vec();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.version.size));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut sa, mut sb) = (0u64, 0u64);
    for d in sorted {
        if sa <= sb {
            sa += d.version.size;
            a.push(d);
        } else {
            sb += d.version.size;
            b.push(d);
        }
    }
    (a, b)
}

/// Runs one batch on a second connection to the same peer (checked to be
/// the same share).
fn second_connection(
    run: &Run,
    b: &mut Batch,
    opts: &fetch::Options,
    progress: &Mutex<Progress>,
) -> Result<(), ClientError> {
    let s = run.settings;
    let mut c = ssh::connect(s, Some(run.history.clone()))?;
    if crate::protocol::greeting_share_id(c.greeting()) != Some(run.peer_id) {
        return Err(ClientError::Protocol(Breach::OtherShare));
    }
    let r = fetch::fetch(&mut c, b, opts, &mut RowUi(progress));
    c.quit();
    r
}

/// Moves the file of a deletion into the trash, once it is checked to be
/// still the version both sides agreed on; returns where it went, as rows
/// show it.
fn delete(run: &Run, d: &Decision, trash: &mut Trash) -> Result<String, String> {
    let from = run.share.root().join(&d.name);
    match local_md5(&from) {
        Ok(md5) if md5 == d.version.md5.to_string() => {}
        Ok(_) => return Err("it changed here since it was planned".into()),
        Err(e) => return Err(e.to_string()),
    }
    trash.take(&from, &d.name).map(|to| trash.shown(&to))
}
