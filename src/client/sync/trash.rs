//! The trash: every version Sync replaces (a download over this side's
//! file) or removes (`--delete`) goes here first, as
//! `trash/<YYYYMMDD-HHMMSS>/<name>` in the state folder (one folder per
//! run, in UTC; `.2` to `.9` after it when a run of the same second has
//! one already), so that `Sync --restore` can bring it back.
//!
//! The trash is bounded by age and by size ([`Bounds`]): each run first
//! drops the versions older than the age bound, and when a new version
//! would take it past the size bound, the oldest versions of earlier runs
//! go first. What the current run put there is never dropped: a step
//! that would need more room than that is refused.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::plan::{Action, Decision, Files};
use crate::client::show::human_size;

/// The trash folder in the state folder.
pub const DIR: &str = "trash";

/// How much the trash keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Versions older than this are dropped (`--trash-max-age`).
    pub max_age: Duration,
    /// The bytes all versions may take together (`--trash-max-size`).
    pub max_bytes: u64,
}

impl Default for Bounds {
    /// 30 days and 1 GiB.
    fn default() -> Bounds {
        Bounds {
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_bytes: 1 << 30,
        }
    }
}

/// Reads a size: a whole number of bytes, or with a unit `K`, `M`, `G`,
/// `T` (powers of 1024; `KiB`, `KB`, `k`... alike), `B` or none for bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a size; e.g. 1GiB, 500MiB, 1048576");
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// One version in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The run's folder: `YYYYMMDD-HHMMSS` (UTC), maybe with `.N`.
    pub time: String,
    /// Its name in the share.
    pub name: String,
    pub size: u64,
    /// Its modification time.
    pub mtime: SystemTime,
}

impl Entry {
    /// Where it lies below the trash folder `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.time).join(&self.name)
    }

    /// When it went to the trash (the start of its run).
    fn taken(&self) -> SystemTime {
        run_time(&self.time).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The time a run folder's name stands for; None for a name that is not
/// one (left alone: it is not Sync's).
fn run_time(folder: &str) -> Option<SystemTime> {
    let stamp = match folder.split_once('.') {
        Some((s, n)) if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => s,
        Some(_) => return None,
        None => folder,
    };
    let b = stamp.as_bytes();
    let shaped = b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    crate::timefmt::parse(&rfc).ok()
}

/// Every version in the trash folder `dir`, oldest first (by run, then
/// name). Only regular files below run folders count; names that are not
/// UTF-8 cannot be Sync's and are left out.
pub fn entries(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(runs) = fs::read_dir(dir) else {
        return out;
    };
    for run in runs.flatten() {
        let Some(time) = run.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if run_time(&time).is_none() || !run.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let mut stack = vec![(run.path(), String::new())];
        while let Some((folder, prefix)) = stack.pop() {
            for e in fs::read_dir(&folder).into_iter().flatten().flatten() {
                let (Ok(kind), Some(base)) =
                    (e.file_type(), e.file_name().to_str().map(String::from))
                else {
                    continue;
                };
                let name = format!("{prefix}{base}");
                if kind.is_dir() {
                    stack.push((e.path(), format!("{name}/")));
                } else if let (true, Ok(m)) = (kind.is_file(), e.metadata()) {
                    let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    let (time, size) = (time.clone(), m.len());
                    out.push(Entry {
                        time,
                        name,
                        size,
                        mtime,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.time, &a.name).cmp(&(&b.time, &b.name)));
    out
}

/// The trash as one run uses it.
pub struct Trash {
    dir: PathBuf,
    /// This run's folder name.
    folder: String,
    bounds: Bounds,
    /// The versions of earlier runs, oldest first: the ones to drop first.
    older: VecDeque<Entry>,
    /// Bytes of every version in the trash.
    total: u64,
    /// Bytes this run put there.
    mine: u64,
    /// A dry run: nothing is moved or dropped, only counted.
    dry: bool,
}

impl Trash {
    /// Opens the trash of `state_dir` for a run that started at `stamp`
    /// (`YYYYMMDD-HHMMSS`), dropping the versions past the age bound
    /// (counting them out only, for a dry run).
    pub fn open(state_dir: &Path, stamp: &str, bounds: Bounds, dry: bool) -> Trash {
        let dir = state_dir.join(DIR);
        let now = run_time(stamp).unwrap_or_else(SystemTime::now);
        let mut older = VecDeque::new();
        let mut total = 0;
        for e in entries(&dir) {
            let age = now.duration_since(e.taken()).unwrap_or_default();
            if age > bounds.max_age {
                if !dry {
                    remove(&dir, &e);
                }
                continue;
            }
            total += e.size;
            older.push_back(e);
        }
        let folder = std::iter::once(stamp.to_string())
            .chain((2..=9).map(|n| format!("{stamp}.{n}")))
            .find(|f| !dir.join(f).exists())
            .unwrap_or_else(|| stamp.to_string());
        Trash {
            dir,
            folder,
            bounds,
            older,
            total,
            mine: 0,
            dry,
        }
    }

    /// The trash folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes room for `size` more bytes, dropping the oldest versions of
    /// earlier runs as needed; else says why there is none.
    pub fn reserve(&mut self, size: u64) -> Result<(), String> {
        let max = self.bounds.max_bytes;
        if self.mine.saturating_add(size) > max {
            let why = if size > max {
                format!("it takes {}", human_size(size))
            } else {
                format!(
                    "this Sync put {} there already, and this version takes {}",
                    human_size(self.mine),
                    human_size(size)
                )
            };
            return Err(format!(
                "the trash would outgrow its bound of {} (--trash-max-size): {why}",
                human_size(max)
            ));
        }
        while self.total.saturating_add(size) > max {
            let Some(e) = self.older.pop_front() else {
                break;
            };
            if !self.dry {
                remove(&self.dir, &e);
            }
            self.total -= e.size.min(self.total);
        }
        self.total += size;
        self.mine += size;
        Ok(())
    }

    /// Where `name` goes in this run's folder, its folders made.
    fn place_for(&self, name: &str) -> Result<PathBuf, String> {
        let to = self.dir.join(&self.folder).join(name);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        if fs::symlink_metadata(&to).is_ok() {
            return Err(format!("{} is in the way in the trash", to.display()));
        }
        Ok(to)
    }

    /// Moves the file at `from` (the share's `name`) into the trash: never
    /// unlinked; across file systems it is copied, then removed.
    pub fn take(&mut self, from: &Path, name: &str) -> Result<PathBuf, String> {
        let size = fs::symlink_metadata(from).map_err(|e| e.to_string())?.len();
        self.reserve(size)?;
        let to = self.place_for(name).inspect_err(|_| self.unreserve(size))?;
        let moved = match fs::rename(from, &to) {
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                copy(from, &to).and_then(|()| fs::remove_file(from))
            }
            r => r,
        };
        moved.map(|()| to).map_err(|e| {
            self.unreserve(size);
            e.to_string()
        })
    }

    /// Keeps the version at `from` (the share's `name`), which a download
    /// is about to replace: a hard link where the file system allows one
    /// (nothing is copied), else a copy with its modification time.
    pub fn keep(&mut self, from: &Path, name: &str) -> Result<PathBuf, String> {
        let size = fs::symlink_metadata(from).map_err(|e| e.to_string())?.len();
        self.reserve(size)?;
        let to = self.place_for(name).inspect_err(|_| self.unreserve(size))?;
        let kept = fs::hard_link(from, &to).or_else(|_| copy(from, &to));
        kept.map(|()| to).map_err(|e| {
            self.unreserve(size);
            e.to_string()
        })
    }

    /// Takes back a version this run kept that turned out not to be
    /// replaced (its download failed or found it up to date).
    pub fn give_back(&mut self, at: &Path) {
        let size = fs::symlink_metadata(at).map(|m| m.len()).unwrap_or(0);
        if fs::remove_file(at).is_ok() {
            self.unreserve(size);
            prune(&self.dir, at);
        }
    }

    fn unreserve(&mut self, size: u64) {
        self.total -= size.min(self.total);
        self.mine -= size.min(self.mine);
    }

    /// `at` (a path in the trash) as rows show it: from `trash/` on.
    pub fn shown(&self, at: &Path) -> String {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        at.strip_prefix(parent).unwrap_or(at).display().to_string()
    }
}

/// Copies `from` to `to` (made new), with its modification time.
pub(super) fn copy(from: &Path, to: &Path) -> io::Result<()> {
    let mtime = fs::metadata(from)?.modified()?;
    fs::copy(from, to)?;
    fs::File::options()
        .write(true)
        .open(to)?
        .set_modified(mtime)
}

/// Drops one version, and the folders it leaves empty.
fn remove(dir: &Path, e: &Entry) {
    let at = e.path(dir);
    if fs::remove_file(&at).is_ok() {
        prune(dir, &at);
    }
}

/// Removes the folders above `at` that are empty now, up to (not
/// including) the trash folder `dir`.
pub fn prune(dir: &Path, at: &Path) {
    let mut folder = at.parent();
    while let Some(f) = folder {
        if f == dir || !f.starts_with(dir) || fs::remove_dir(f).is_err() {
            break;
        }
        folder = f.parent();
    }
}

/// For a dry run: what each step that puts a version into the trash
/// adds to its row's reason, by name, in the order a run takes them
/// (deletions, then downloads over this side's files), with the
/// refusals the bounds would make; and whether any step would be
/// refused.
pub fn dry_notes(
    decisions: &[Decision],
    local: &Files,
    trash: &mut Trash,
) -> (std::collections::HashMap<String, String>, bool) {
    let mut notes = std::collections::HashMap::new();
    let mut refused = false;
    let deletions = decisions.iter().filter(|d| d.action == Action::Delete);
    let replaced = decisions
        .iter()
        .filter(|d| d.action == Action::Download && local.contains_key(&d.name));
    for d in deletions.chain(replaced) {
        let size = local.get(&d.name).map_or(d.version.size, |v| v.size);
        let note = match (trash.reserve(size), d.action) {
            (Ok(()), Action::Delete) => "; it goes to the trash".to_string(),
            (Ok(()), _) => "; the version here goes to the trash".to_string(),
            (Err(why), _) => {
                refused = true;
                format!("; would be refused: {why}")
            }
        };
        notes.insert(d.name.clone(), note);
    }
    (notes, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("20M"), Ok(20 << 20));
        assert_eq!(parse_size("3 kb"), Ok(3 << 10));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "GiB", "1.5G", "-1", "1 parsec", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    /// A fresh folder for one test, removed again by the test.
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("p2pshare-trash-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_oldest_go_first_and_never_what_this_run_put_there() {
        let state = scratch("bound");
        let share = state.join("share");
        fs::create_dir_all(state.join("trash/20261201-000000/d")).unwrap();
        fs::write(state.join("trash/20261201-000000/d/old"), "123456").unwrap();
        fs::write(state.join("trash/20261202-000000"), "not a folder").unwrap();
        fs::create_dir_all(&share).unwrap();
        for (n, c) in [("a", "aaaaa"), ("b", "bbbbb"), ("c", "c")] {
            fs::write(share.join(n), c).unwrap();
        }
        let bounds = Bounds {
            max_age: Duration::from_secs(3600 * 24 * 30),
            max_bytes: 10,
        };
        let mut t = Trash::open(&state, "20261203-000000", bounds, false);
        let a = t.take(&share.join("a"), "a").unwrap();
        assert!(
            !state.join("trash/20261201-000000").exists(),
            "the oldest went"
        );
        let b = t.keep(&share.join("b"), "b").unwrap();
        assert!(share.join("b").exists(), "kept, not moved");
        let refused = t.take(&share.join("c"), "c").unwrap_err();
        assert!(
            refused.contains("this Sync put 10 B there already"),
            "{refused}"
        );
        assert!(a.exists() && b.exists() && share.join("c").exists());
        t.give_back(&b);
        assert!(!b.exists() && share.join("b").exists());
        t.take(&share.join("c"), "c").unwrap();
        let names: Vec<String> = entries(&state.join("trash"))
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a", "c"]);
        // A later run past the age bound drops both.
        let later = Bounds {
            max_age: Duration::from_secs(60),
            ..bounds
        };
        let _ = Trash::open(&state, "20261204-000000", later, false);
        assert!(entries(&state.join("trash")).is_empty());
        assert!(
            state.join("trash/20261202-000000").is_file(),
            "not Sync's: left alone"
        );
        fs::remove_dir_all(&state).unwrap();
    }

    #[test]
    fn run_folders_read_as_times() {
        let t = run_time("20261207-135100").unwrap();
        assert_eq!(crate::timefmt::format(t), "2026-12-07T13:51:00Z");
        assert_eq!(run_time("20261207-135100.2"), Some(t));
        for bad in ["2026-12-07", "20261207-13510x", "20261207-135100.10", "x"] {
            assert_eq!(run_time(bad), None, "{bad}");
        }
    }
}
