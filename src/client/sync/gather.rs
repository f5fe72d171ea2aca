//! What a sync plans from: the peer's files (one `FileHash checkall` and
//! one `IndexGet longlist`, sent in one write) and this side's (the
//! share's index and md5 cache).
//!
//! The peer's rows are read strictly: every field must be what the
//! protocol says it is (a name, 32 hex digits, a decimal size, an RFC 3339
//! time, a MIME type), or the whole listing is refused and nothing is
//! synced. A name this side cannot store (hidden, `..`, absolute) is left
//! out and counted instead: such a row is well formed, only not syncable.

use std::collections::BTreeSet;
use std::path::Path;

use super::plan::{Files, Had, Version};
use crate::client::answer::unescape;
use crate::client::control::Client;
use crate::client::error::ClientError;
use crate::client::show;
use crate::protocol::code;
use crate::share::{check_name, Share};
use crate::timefmt;

/// What reading the peer's two tables came to: its files, how many rows
/// were left out, the first malformed row.
#[derive(Default)]
struct Reading {
    /// `checkall`'s rows as they come (in name order from a real peer),
    /// made into `files` at its end: a map built from sorted rows at once
    /// has full nodes, one built by inserting has half-empty ones.
    rows: Vec<(String, Version)>,
    files: Files,
    left_out: usize,
    bad: Option<String>,
}

impl Reading {
    /// Notes the first malformed row of `table` (its number counted from 1
    /// after the header; 0 for the table as a whole).
    fn bad_row(&mut self, table: &str, row: usize, why: String) {
        if self.bad.is_none() {
            let row = match row {
                0 => String::new(),
                n => format!(" row {n}"),
            };
            self.bad = Some(format!(
                "the peer's {table}{row} is malformed ({why}); nothing was synced"
            ));
        }
    }

    /// One row of `FileHash checkall`: name, md5, timestamp.
    fn checkall_row(&mut self, row: usize, text: &str) {
        let t = "FileHash checkall";
        let Some([name, md5, ts]) = fields(text) else {
            return self.bad_row(t, row, field_count(text, 3));
        };
        let version = Version::parse(md5, "0", ts);
        let name_here = unescape(name);
        match (version, check_name(&name_here)) {
            (Err(why), _) => self.bad_row(t, row, why),
            (Ok(_), Err(_)) => self.left_out += 1,
            (Ok(v), Ok(())) => self.rows.push((name_here, v)),
        }
    }

    /// Makes `checkall`'s rows the map of files; a name listed twice is a
    /// malformed listing.
    fn end_checkall(&mut self) {
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
            let why = format!("{} is listed twice", show::peer_text(&w[0].0));
            self.bad_row("FileHash checkall", 0, why);
        }
        self.files = rows.into_iter().collect();
    }

    /// One row of `IndexGet longlist`: name, size, timestamp, type; the
    /// size goes to the file `checkall` listed (one that came or went
    /// between the two replies keeps what it has).
    fn longlist_row(&mut self, row: usize, text: &str) {
        let t = "IndexGet longlist";
        let Some([name, size, ts, mime]) = fields(text) else {
            return self.bad_row(t, row, field_count(text, 4));
        };
        let zero = "00000000000000000000000000000000";
        let size = match Version::parse(zero, size, ts) {
            Ok(v) => v.size,
            Err(why) => return self.bad_row(t, row, why),
        };
        if !is_mime_type(mime) {
            let why = format!("type \"{}\" is not a MIME type", show::peer_text(mime));
            return self.bad_row(t, row, why);
        }
        let found = match name.contains('\\') {
            true => self.files.get_mut(unescape(name).as_str()),
            false => self.files.get_mut(name),
        };
        if let Some(v) = found {
            v.size = size;
        }
    }
}

/// The `N` fields of a row, split at its TABs; None for another count.
fn fields<const N: usize>(text: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut it = text.split('\t');
    for slot in out.iter_mut() {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

fn field_count(text: &str, want: usize) -> String {
    let n = text.split('\t').count();
    format!("{n} fields where there are {want}")
}

/// `type/subtype` in printable ASCII, as section 3 of PROTOCOL.md lists
/// them (no space, no escape).
fn is_mime_type(s: &str) -> bool {
    let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    s.len() <= 255 && s.split_once('/').is_some_and(|(a, b)| ok(a) && ok(b))
}

/// What the peer listed: its files with md5, size and time, how many
/// rows were left out because their name cannot be stored here, and
/// whether either table was marked incomplete (the peer's first scan still
/// running: a file it does not list may be there all the same).
pub(super) struct Remote {
    pub files: Files,
    pub left_out: usize,
    pub incomplete: bool,
}

/// True when a table's last line (past its code) carries the incomplete
/// mark (see [`crate::protocol::INCOMPLETE`]).
pub(super) fn marked_incomplete(last_text: &str) -> bool {
    last_text.contains(crate::protocol::INCOMPLETE)
}

/// The peer's files (see [`Remote`]). The peer's refusal, or a malformed
/// row, is the message to show.
pub(super) fn remote(client: &mut Client) -> Result<Result<Remote, String>, ClientError> {
    let (checkall, longlist) = ("FileHash checkall", "IndexGet longlist");
    client.send(&format!("{checkall}\n{longlist}"))?;
    let mut r = Reading::default();
    let mut row = 0;
    let last = client.read_table(&mut |text| {
        row += 1;
        r.checkall_row(row, text);
    })?;
    client.record(checkall, last.code);
    r.end_checkall();
    let mut row = 0;
    let listed = client.read_table(&mut |text| {
        row += 1;
        r.longlist_row(row, text);
    })?;
    client.record(longlist, listed.code);
    if last.code != code::TABLE {
        return Ok(Err(format!(
            "{} {}",
            last.code,
            show::peer_text(&last.text)
        )));
    }
    if let Some(bad) = r.bad {
        return Ok(Err(bad));
    }
    Ok(Ok(Remote {
        files: r.files,
        left_out: r.left_out,
        incomplete: marked_incomplete(&last.text) || marked_incomplete(&listed.text),
    }))
}

/// The state folders of this sync (the share's, and the one Sync writes
/// its state and trash into) as paths below the share's root, where they
/// lie inside it.
pub(super) fn state_below(share: &Share, state_dir: &Path) -> Vec<String> {
    let root = share.root();
    let dirs = [
        Some(share.state_dir()),
        std::fs::canonicalize(state_dir).ok(),
    ];
    let mut out: Vec<String> = dirs
        .into_iter()
        .flatten()
        .filter_map(|d| Some(d.strip_prefix(root).ok()?.to_str()?.to_string()))
        .filter(|rel| !rel.is_empty())
        .collect();
    out.dedup();
    out
}

/// True when `name` is the path `dir` or lies below it.
pub(super) fn is_below(name: &str, dir: &str) -> bool {
    name.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Waits until the first scan of `share` is done. A peer's server opens
/// its port before that scan and makes it on its rescan thread; a Sync
/// started meanwhile (typed at the console) waits for it rather than
/// walk and hash the same share a second time beside it, and reads the
/// peer's listing only then. Said once when it has to wait.
pub(super) fn await_first_scan(share: &Share) {
    if share.scanned() {
        return;
    }
    super::note("Sync waits for the first scan of this side's share");
    while !share.scanned() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// This side's files, from a fresh scan of the share with every md5
/// hashed or cached; the names that could not be hashed (unreadable, or
/// changing while hashed) are busy.
pub(super) fn local(share: &Share) -> (Files, BTreeSet<String>) {
    share.rescan();
    share.hash_pending(&|| false);
    let snap = share.snapshot();
    let mut files = Files::new();
    let mut busy = BTreeSet::new();
    for (name, e) in snap.all() {
        match e.md5 {
            Some(md5) => {
                let v = Version {
                    md5,
                    size: e.size,
                    mtime: timefmt::unix_secs(timefmt::clamp(e.mtime)),
                };
                files.insert(name.to_string(), v);
            }
            None => {
                busy.insert(name.to_string());
            }
        }
    }
    (files, busy)
}

/// The versions this side had before under each name (see
/// [`Share::had`]), as the planner compares them.
pub(super) fn had(share: &Share) -> Had {
    share.had().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "0cc175b9c0f1b6a831c399e269772661";
    const TS: &str = "2026-01-02T03:04:05Z";

    #[test]
    fn rows_are_read_field_by_field() {
        let mut r = Reading::default();
        r.checkall_row(1, &format!("tab\\there.txt\t{MD5}\t{TS}"));
        r.checkall_row(2, &format!(".hidden\t{MD5}\t{TS}"));
        r.end_checkall();
        r.longlist_row(1, &format!("tab\\there.txt\t7\t{TS}\ttext/plain"));
        assert!(r.bad.is_none(), "{:?}", r.bad);
        assert_eq!(r.left_out, 1);
        assert_eq!(r.files["tab\there.txt"].size, 7);
        let forged = format!("\\nthesis.txt\\t{MD5}\\t1\\t{TS}");
        let bad_checkall = [
            format!("a\t{MD5}{forged}\t{TS}"),
            format!("a\t{MD5}\t{TS}{forged}"),
            format!("a\t{MD5}\t{TS}\textra"),
            format!("a\t{MD5}"),
        ];
        for row in bad_checkall {
            let mut r = Reading::default();
            r.checkall_row(1, &row);
            assert!(r.bad.is_some_and(|b| b.contains("row 1")), "{row:?}");
        }
        let bad_longlist = [
            format!("a\t7{forged}\t{TS}\ttext/plain"),
            format!("a\t7\t{TS}{forged}\ttext/plain"),
            format!("a\t7\t{TS}\ttext/plain{forged}"),
            format!("a\t7\t{TS}\ttext plain"),
            format!("a\t7\t{TS}"),
        ];
        for row in bad_longlist {
            let mut r = Reading::default();
            r.longlist_row(1, &row);
            assert!(r.bad.is_some(), "{row:?}");
        }
        let mut twice = Reading::default();
        twice.checkall_row(1, &format!("a\t{MD5}\t{TS}"));
        twice.checkall_row(2, &format!("a\t{MD5}\t{TS}"));
        twice.end_checkall();
        assert!(twice.bad.is_some_and(|b| b.contains("twice")));
    }

    #[test]
    fn the_state_folder_and_what_lies_below_it() {
        assert!(is_below("st", "st"));
        assert!(is_below("st/sync/x.tsv", "st"));
        assert!(!is_below("stx/a", "st"));
        assert!(!is_below("a/st", "st"));
    }
}
