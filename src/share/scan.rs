//! Walking the shared folder into an [`Index`], and the rescan thread that
//! does it on a timer and hashes what is new.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::hash::{FileKey, Md5, Saved};
use super::ignore::Ignore;
use super::index::{Builder, Index};
use super::opening::open_nonblocking;
use super::paths::visible_below;
use super::{mime, Share};
use crate::stop::Stop;

/// What one scan found different from the one before: how many files
/// were added, changed and removed, and what it newly left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Entries left out because their name is not valid UTF-8 or the
    /// server may not read them, found by this scan and not by the one
    /// before.
    pub unnamable: Vec<Skipped>,
}

/// An entry a walk left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: Why,
}

/// Why an entry is left out of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its name is not valid UTF-8: it cannot be named on the wire.
    NotUtf8,
    /// A file the server may not read (its permissions).
    FileDenied,
    /// A folder the server may not read: nothing below it is shared.
    FolderDenied,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.changed == 0 && self.removed == 0
    }
}

/// The most entries a walk reports as left out.
pub const MAX_UNNAMABLE: usize = 1000;

/// Records an entry a scan leaves out, up to [`MAX_UNNAMABLE`].
pub fn left_out(unnamable: &mut Vec<Skipped>, path: PathBuf, why: Why) {
    if unnamable.len() < MAX_UNNAMABLE {
        unnamable.push(Skipped { path, why });
    }
}

/// Walks `root` (canonical) and returns the index of what it shares:
/// regular files below it, hidden and ignored names left out, links
/// followed only where their target lies inside the share. Nothing is
/// read: each file is stat'ed once (an empty file's type and md5 are
/// known without reading it); types and md5s come from [`merge`] and the
/// hashing. None when the walk found exactly the files of `old` (names
/// and versions), the usual rescan: then no second index is built.
///
/// Entries whose name is not valid UTF-8 cannot be named on the wire, and
/// files and folders the server may not read (by their permission bits)
/// cannot be served: they are left out, and their paths (up to
/// [`MAX_UNNAMABLE`]) go to `unnamable`.
pub fn walk(
    root: &Path,
    old: &Index,
    ignore: &Ignore,
    unnamable: &mut Vec<Skipped>,
) -> Option<Index> {
    let mut w = Walker {
        root,
        ignore,
        unnamable,
        old,
        same: 0,
        diverged: false,
        found: Builder::default(),
        may_read: Reader::of_this_process(),
        seen_dirs: HashSet::new(),
        stack: vec![Walked::Dir(root.to_path_buf(), String::new())],
        linked: Vec::new(),
        children: Vec::new(),
    };
    if let Ok(m) = fs::metadata(root) {
        w.seen_dirs.insert((m.dev(), m.ino()));
    }
    while let Some((dir, rel)) = w.next_folder() {
        w.read_folder(&dir, &rel);
    }
    if !w.diverged {
        if w.same == old.len() {
            return None;
        }
        w.diverge();
    }
    // Folders reached through links come last and out of order: only then
    // is a sort needed (`finish` sees to it).
    Some(w.found.finish())
}

/// The names of the files [`walk`] finds under `root`, in name order,
/// without reading any of them: for a client that only matches names,
/// such as an upload pattern.
pub fn walk_names(root: &Path, ignore: &Ignore) -> Vec<String> {
    let index = walk(root, &Index::default(), ignore, &mut Vec::new()).unwrap_or_default();
    (0..index.len())
        .map(|i| index.name(i).to_string())
        .collect()
}

/// Stats every entry below a folder on several threads at once, results
/// thrown away, so that the inodes are in memory when the ordered walk
/// ([`walk`]) reaches them: the first walk of a share whose inodes are
/// not cached waits for the disk one entry at a time, and a few folders
/// read at once take a third to a half of that time. Hidden names are
/// skipped and links not followed; nothing below the share is opened.
pub struct Prefetch {
    /// The folders still to read, and how many threads are reading one.
    work: std::sync::Mutex<(Vec<PathBuf>, usize)>,
    more: std::sync::Condvar,
    /// Set when the walk is done: the threads stop.
    pub done: std::sync::atomic::AtomicBool,
}

impl Prefetch {
    pub fn new(root: &Path) -> Prefetch {
        Prefetch {
            work: std::sync::Mutex::new((vec![root.to_path_buf()], 0)),
            more: std::sync::Condvar::new(),
            done: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn stopped(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One thread's share of the work, until every folder is read or the
    /// walk is done.
    pub fn run(&self) {
        while let Some(dir) = self.next() {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if self.stopped() {
                        break;
                    }
                    if entry.file_name().as_encoded_bytes().starts_with(b".") {
                        continue;
                    }
                    match entry.file_type() {
                        Ok(t) if t.is_dir() => {
                            let mut w = self.work.lock().unwrap_or_else(|e| e.into_inner());
                            w.0.push(entry.path());
                            self.more.notify_one();
                        }
                        Ok(t) if t.is_file() => {
                            let _ = entry.metadata();
                        }
                        _ => {}
                    }
                }
            }
            let mut w = self.work.lock().unwrap_or_else(|e| e.into_inner());
            w.1 -= 1;
            if w.1 == 0 && w.0.is_empty() {
                self.more.notify_all();
            }
        }
    }

    /// The next folder to read; None when all are read or the walk is
    /// done.
    fn next(&self) -> Option<PathBuf> {
        let mut w = self.work.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopped() {
                return None;
            }
            if let Some(dir) = w.0.pop() {
                w.1 += 1;
                return Some(dir);
            }
            if w.1 == 0 {
                return None;
            }
            w = self
                .more
                .wait_timeout(w, Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
    }
}

/// Threads per core that [`Prefetch`] uses.
pub const PREFETCH_PER_CORE: usize = 4;

/// Fills the types and md5s of `new` (a fresh [`walk`]) from `old` (the
/// index before it) where a file is unchanged (same name, size, mtime and
/// inode), else from `saved` (the md5 cache read back at the first scan)
/// by version. Tells `gone` the md5s of the files changed or removed
/// since `old`. Returns what changed, and the positions of the files of
/// `new` still not read (their type unknown).
pub fn merge(
    old: &Index,
    new: &Index,
    saved: &Saved,
    gone: &mut dyn FnMut(&str, Md5),
) -> (Changes, Vec<usize>) {
    let mut c = Changes::default();
    let mut unread = Vec::new();
    // Both are in name order: one pass over the two side by side.
    let mut j = 0;
    for i in 0..new.len() {
        let name = new.name(i);
        while j < old.len() && old.name(j) < name {
            if let Some(d) = old.md5(j) {
                gone(old.name(j), d);
            }
            c.removed += 1;
            j += 1;
        }
        let key = new.key(i);
        if j < old.len() && old.name(j) == name {
            j += 1;
            if old.key(j - 1) == key {
                new.take(i, old, j - 1);
                continue;
            }
            if let Some(d) = old.md5(j - 1) {
                gone(name, d);
            }
            c.changed += 1;
        } else {
            c.added += 1;
        }
        if let Some((d, t)) = saved.get(&key) {
            new.fill(i, t, Some(d));
        }
        if !new.read(i) {
            unread.push(i);
        }
    }
    for j in j..old.len() {
        if let Some(d) = old.md5(j) {
            gone(old.name(j), d);
        }
        c.removed += 1;
    }
    (c, unread)
}

/// Whether this process may read a file, by its permission bits: what
/// `open` would say, but for access control lists (a file they refuse is
/// left out when the hashing finds it cannot be opened).
#[derive(Debug, Default)]
struct Reader {
    /// The process reads every file (root's capability to bypass
    /// permission checks).
    any: bool,
    uid: u32,
    groups: Vec<u32>,
}

impl Reader {
    fn of_this_process() -> Reader {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> Vec<&str> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| rest.split_whitespace().collect())
                .unwrap_or_default()
        };
        let Some(uid) = field("Uid:").get(1).and_then(|u| u.parse().ok()) else {
            // No such file here: let every open decide.
            return Reader {
                any: true,
                ..Reader::default()
            };
        };
        // CAP_DAC_OVERRIDE (1) or CAP_DAC_READ_SEARCH (2).
        let caps = field("CapEff:")
            .first()
            .and_then(|c| u64::from_str_radix(c, 16).ok())
            .unwrap_or(0);
        let mut groups: Vec<u32> = field("Groups:")
            .iter()
            .filter_map(|g| g.parse().ok())
            .collect();
        groups.extend(field("Gid:").get(1).and_then(|g| g.parse::<u32>().ok()));
        Reader {
            any: caps & 0b110 != 0,
            uid,
            groups,
        }
    }

    fn may_read(&self, m: &fs::Metadata) -> bool {
        let mode = m.mode();
        self.any
            || if m.uid() == self.uid {
                mode & 0o400 != 0
            } else if self.groups.contains(&m.gid()) {
                mode & 0o040 != 0
            } else {
                mode & 0o004 != 0
            }
    }
}

/// The state of one walk of [`walk`].
struct Walker<'a> {
    root: &'a Path,
    ignore: &'a Ignore,
    unnamable: &'a mut Vec<Skipped>,
    /// The index before this walk: as long as the walk meets its files
    /// in its order (`same` of them so far), nothing is built.
    old: &'a Index,
    same: usize,
    /// Set once the walk met a file `old` does not have there: from then
    /// on every file goes into `found`.
    diverged: bool,
    found: Builder,
    may_read: Reader,
    /// Folders walked already, by (device, inode), so a folder reached
    /// twice (through a link) is walked once.
    seen_dirs: HashSet<(u64, u64)>,
    /// An explicit stack (a deep tree cannot overflow the thread's stack)
    /// of what is still to do, the next item on top. Each folder's entries
    /// go on in reverse name order, a folder's name counting as `name/`:
    /// then the walk meets the paths in byte order and the list needs no
    /// sort.
    stack: Vec<Walked>,
    /// Folders reached through a symlink wait until every real folder has
    /// been walked, so a folder is listed under its real name and an alias
    /// of it is skipped, whatever order read_dir gives.
    linked: Vec<(PathBuf, String, (u64, u64))>,
    /// The entries of the folder being read, before they go on the stack.
    children: Vec<(String, Walked)>,
}

impl Walker<'_> {
    /// Takes the files on top of the stack into `found`, and returns the
    /// next folder to read, if any is left.
    fn next_folder(&mut self) -> Option<(PathBuf, String)> {
        loop {
            match self.stack.pop() {
                Some(Walked::File(name, key)) => self.found_file(&name, key),
                Some(Walked::Dir(dir, rel)) => return Some((dir, rel)),
                None => match self.linked.pop() {
                    Some((path, rel, id)) if self.seen_dirs.insert(id) => return Some((path, rel)),
                    Some(_) => {}
                    None => return None,
                },
            }
        }
    }

    /// One file found, in the walk's order.
    fn found_file(&mut self, name: &str, key: FileKey) {
        if !self.diverged {
            let i = self.same;
            if i < self.old.len() && self.old.key(i) == key && self.old.name(i) == name {
                self.same += 1;
                return;
            }
            self.diverge();
        }
        push_found(&mut self.found, name, key);
    }

    /// From here on the walk differs from `old`: the files it had met
    /// already go into `found`.
    fn diverge(&mut self) {
        self.diverged = true;
        let old = self.old;
        self.found = Builder::with_capacity(old.len() + old.len() / 16);
        for i in 0..self.same {
            push_found(&mut self.found, old.name(i), old.key(i));
        }
    }

    fn left_out(&mut self, path: PathBuf, why: Why) {
        left_out(self.unnamable, path, why);
    }

    /// Puts what the folder `dir` (the share's `rel`) shares on the stack.
    fn read_folder(&mut self, dir: &Path, rel: &str) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    self.left_out(dir.to_path_buf(), Why::FolderDenied);
                }
                return;
            }
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                self.left_out(entry.path(), Why::NotUtf8);
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let mut rel_name = String::with_capacity(rel.len() + 1 + name.len());
            if !rel.is_empty() {
                rel_name.push_str(rel);
                rel_name.push('/');
            }
            rel_name.push_str(name);
            self.add(&entry, rel_name);
        }
        self.children
            .sort_unstable_by(|a, b| sort_key(b).cmp(sort_key(a)));
        self.stack.extend(self.children.drain(..).map(|(_, w)| w));
    }

    /// Adds one entry of a folder to `children`, when it is shared.
    fn add(&mut self, entry: &fs::DirEntry, rel_name: String) {
        let Ok(file_type) = entry.file_type() else {
            return;
        };
        let meta = if file_type.is_symlink() {
            match self.link_target(entry) {
                Some(m) => m,
                None => return,
            }
        } else {
            match entry.metadata() {
                Ok(m) => m,
                Err(_) => return,
            }
        };
        if self.ignore.matches_entry(&rel_name, meta.is_dir()) {
            return;
        }
        if meta.is_dir() {
            if file_type.is_symlink() {
                self.linked
                    .push((entry.path(), rel_name, (meta.dev(), meta.ino())));
            } else if self.seen_dirs.insert((meta.dev(), meta.ino())) {
                let mut sort_key = rel_name.clone();
                sort_key.push('/');
                self.children
                    .push((sort_key, Walked::Dir(entry.path(), rel_name)));
            }
        } else if meta.is_file() {
            if !self.may_read.may_read(&meta) {
                self.left_out(entry.path(), Why::FileDenied);
                return;
            }
            self.children
                .push((String::new(), Walked::File(rel_name, FileKey::of(&meta))));
        }
    }

    /// What a symbolic link leads to, when that may be shared: a target
    /// inside the share, visible and not ignored (what `open_file` refuses
    /// is not listed either).
    fn link_target(&self, entry: &fs::DirEntry) -> Option<fs::Metadata> {
        let target = fs::canonicalize(entry.path()).ok()?;
        let inside = visible_below(self.root, &target)?;
        let m = fs::metadata(&target).ok()?;
        let ignored = inside
            .to_str()
            .is_some_and(|r| self.ignore.matches(r) || self.ignore.matches_entry(r, m.is_dir()));
        (!ignored).then_some(m)
    }
}

/// Adds a file a walk found: an empty one needs no reading for its type
/// or md5.
fn push_found(found: &mut Builder, name: &str, key: FileKey) {
    let empty = key.size == 0;
    found.push(
        name,
        key,
        if empty {
            mime::code("inode/x-empty")
        } else {
            0
        },
        empty.then(|| Md5::of(b"")),
    );
}

/// Work left for [`walk`]: a file found, or a folder to read.
enum Walked {
    File(String, FileKey),
    Dir(PathBuf, String),
}

/// The order of a folder's entries: a file by its path, a folder by its
/// path and a `/`, as the paths below it sort.
fn sort_key(c: &(String, Walked)) -> &str {
    match &c.1 {
        Walked::File(name, _) => name,
        Walked::Dir(..) => &c.0,
    }
}

/// The type of a file from its first bytes; None when the server may not
/// open it (its permissions).
pub(super) fn sniff_file(path: &Path, name: &str) -> Option<&'static str> {
    let mut head = Vec::with_capacity(mime::SNIFF_LEN);
    match open_nonblocking(path) {
        Ok(f) => {
            let _ = f.take(mime::SNIFF_LEN as u64).read_to_end(&mut head);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return None,
        Err(_) => {}
    }
    Some(mime::sniff(&head, name))
}

/// Reads the type of each file of `index` at `unread` (a rescan's new and
/// changed files; the first scan leaves this to the hashing). Returns the
/// positions of those the server may not open.
pub fn sniff_unread(root: &Path, index: &Index, unread: &[usize]) -> Vec<usize> {
    let mut denied = Vec::new();
    for &i in unread {
        let name = index.name(i);
        match sniff_file(&root.join(name), name) {
            Some(t) => index.fill(i, mime::code(t), None),
            None => denied.push(i),
        }
    }
    denied
}

/// Tells on stderr which entries are not shared because their names are
/// not valid UTF-8 or the server may not read them, so that a person can
/// find out why a file is missing.
pub fn report_unnamable(skipped: &[Skipped]) {
    for s in skipped {
        let why = match s.why {
            Why::NotUtf8 => "the name is not valid UTF-8 (rename it to share it)",
            Why::FileDenied => "permission denied (the server cannot read this file)",
            Why::FolderDenied => {
                "permission denied (the server cannot read this folder; nothing below it is shared)"
            }
        };
        eprintln!(
            "p2pshare: not shared: {}: {why}",
            crate::names::shown_bytes(std::os::unix::ffi::OsStrExt::as_bytes(s.path.as_os_str()))
        );
    }
}

/// Starts the rescan thread: it makes the first scan when the share has
/// had none yet, hashes what the first scan found, then
/// every `interval` rescans and hashes what is new or changed, until `stop`.
/// With `announce`, the end of a first scan made here is said on stderr
/// (`p2pshare: the first scan is done: N files`).
pub fn spawn(
    share: Arc<Share>,
    interval: Duration,
    stop: Stop,
    announce: bool,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("p2pshare-rescan".into())
        .spawn(move || {
            restarting("the rescan thread", &stop, interval, || {
                // Hashing is only looked at again when a scan found a change
                // or files were left unhashed: an idle share costs its scans
                // only.
                let mut pending = true;
                // A server opens its port before the first scan: it runs
                // here, and the listings say they are incomplete until it
                // is done.
                let first = !share.scanned();
                if first {
                    report_unnamable(&share.rescan().unnamable);
                    if announce {
                        eprintln!(
                            "p2pshare: the first scan is done: {} files",
                            share.snapshot().len()
                        );
                    }
                }
                let mut first_hashing = first && announce;
                let mut pause = interval;
                loop {
                    if pending {
                        let done = share.hash_pending(&|| stop.is_set());
                        pending = done.left > 0;
                        if std::mem::take(&mut first_hashing) && !stop.is_set() {
                            announce_hashing(share.snapshot().len(), done);
                        }
                    }
                    if stop.wait(pause) {
                        break;
                    }
                    let (before, began) = (thread_cpu(), std::time::Instant::now());
                    let changes = share.rescan();
                    pause = paced(interval, before, thread_cpu(), began.elapsed());
                    report_unnamable(&changes.unnamable);
                    pending |= !changes.is_empty();
                }
            });
        })
}

/// How many times the CPU time of its last walk a rescan waits at least:
/// rescanning costs at most about 1/26 of a core (4 %), however large the
/// share and short `--rescan`.
pub const PACE: u32 = 25;

/// The pause before the next rescan: `interval`, or [`PACE`] times the
/// CPU time the last walk took (`before` to `after`), when longer. The
/// CPU time is counted in ticks of 10 ms: a walk of a millisecond may read
/// as a whole tick, so no more than the walk's wall time `took` counts.
fn paced(
    interval: Duration,
    before: Option<Duration>,
    after: Option<Duration>,
    took: Duration,
) -> Duration {
    match (before, after) {
        (Some(b), Some(a)) => interval.max(a.saturating_sub(b).min(took).saturating_mul(PACE)),
        _ => interval,
    }
}

/// The CPU time (user and system) the calling thread has used, from
/// `/proc/thread-self/stat`; None where that cannot be read.
fn thread_cpu() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/thread-self/stat").ok()?;
    // After the command name in parentheses: the state is field 3, utime
    // field 14 and stime field 15, in clock ticks of 1/100 s.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        utime.saturating_add(stime).saturating_mul(10),
    ))
}

/// Says on stderr that the hashing after the first scan is done:
/// `p2pshare: every md5 is known: N files, H hashed now` (H is 0 after a
/// restart on an unchanged share, whose md5s come from the cache), or how
/// many are left without one (unreadable, or changing while read).
fn announce_hashing(files: usize, done: super::front::Hashing) {
    if done.left == 0 {
        eprintln!(
            "p2pshare: every md5 is known: {files} files, {} hashed now",
            done.hashed
        );
    } else {
        eprintln!(
            "p2pshare: the first hashing is done: {files} files, {} hashed now, {} left without an md5 (unreadable or changing)",
            done.hashed, done.left
        );
    }
}

/// Runs `body` until it returns. A panic in it is said on stderr and
/// `body` runs again after `pause` (at least a second), so that a thread
/// the server relies on never just stops; a stop ends the pause.
pub fn restarting(what: &str, stop: &Stop, pause: Duration, mut body: impl FnMut()) {
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut body));
        let Err(panic) = run else { return };
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        eprintln!("p2pshare: {what} failed ({why}); restarting it");
        if stop.wait(pause.max(Duration::from_secs(1))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_panics_is_restarted() {
        let stop = Stop::new();
        let mut runs = 0;
        let t = std::time::Instant::now();
        restarting("a test thread", &stop, Duration::from_millis(1), || {
            runs += 1;
            if runs < 3 {
                panic!("failing on purpose, run {runs}");
            }
        });
        assert_eq!(runs, 3);
        assert!(t.elapsed() >= Duration::from_secs(2));
        // A stop during the pause ends it.
        let stop = Stop::new();
        stop.set();
        let mut runs = 0;
        restarting("a test thread", &stop, Duration::from_secs(60), || {
            runs += 1;
            panic!("failing on purpose");
        });
        assert_eq!(runs, 1);
    }

    #[test]
    fn rescans_are_paced_by_the_cpu_time_of_the_last_walk() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let long = s(60);
        assert_eq!(paced(s(30), Some(s(5)), Some(s(5) + ms(400)), long), s(30));
        assert_eq!(paced(s(30), Some(s(5)), Some(s(7)), long), s(50));
        assert_eq!(
            paced(ms(100), Some(s(1)), Some(s(1) + ms(20)), long),
            ms(500)
        );
        assert_eq!(paced(s(30), None, Some(s(7)), long), s(30));
        // A tick counted for a walk of a millisecond does not slow the
        // next rescan down.
        assert_eq!(
            paced(ms(100), Some(s(1)), Some(s(1) + ms(10)), ms(1)),
            ms(100)
        );
        // The thread's own CPU time grows as it works.
        let before = thread_cpu().expect("/proc/thread-self/stat");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while thread_cpu().unwrap() - before < ms(100) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            assert!(t.elapsed() < s(30), "no CPU time counted");
        }
        assert!(x != 1);
    }

    #[test]
    fn a_prefetch_ends_once_every_folder_is_read_or_the_walk_is_done() {
        let dir = std::env::temp_dir().join(format!("p2pshare-prefetch-{}", std::process::id()));
        for d in 0..20 {
            let folder = dir.join(format!("a{d}/b/c"));
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("f"), "x").unwrap();
        }
        fs::create_dir_all(dir.join(".hidden/x")).unwrap();
        for stop_early in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel();
            let root = dir.clone();
            thread::spawn(move || {
                let p = Prefetch::new(&root);
                if stop_early {
                    p.done.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                thread::scope(|s| {
                    for _ in 0..4 {
                        s.spawn(|| p.run());
                    }
                });
                let w = p.work.lock().unwrap();
                let _ = tx.send((w.0.len(), w.1));
            });
            let (left, busy) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the prefetch threads never ended");
            assert_eq!(busy, 0);
            if !stop_early {
                assert_eq!(left, 0, "every folder read");
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn walking_names_finds_what_the_index_walk_finds() {
        let dir = std::env::temp_dir().join(format!("p2pshare-walk-names-{}", std::process::id()));
        for (rel, body) in [
            ("b.txt", "b"),
            ("a/one.pdf", "%PDF-1.4"),
            ("a/.hidden", "h"),
            ("state/history.tsv", "t"),
            ("z/two", ""),
        ] {
            let path = dir.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
        let root = fs::canonicalize(&dir).unwrap();
        let mut ignore = Ignore::default();
        ignore.folders.push("state".into());
        let index = walk(&root, &Index::default(), &ignore, &mut Vec::new()).unwrap();
        // Walked again with nothing changed: no second index.
        assert!(walk(&root, &index, &ignore, &mut Vec::new()).is_none());
        fs::write(dir.join("b.txt"), "changed").unwrap();
        let again = walk(&root, &index, &ignore, &mut Vec::new()).unwrap();
        assert_eq!(again.len(), 3);
        fs::write(dir.join("b.txt"), "b").unwrap();
        fs::remove_file(dir.join("z/two")).unwrap();
        assert_eq!(
            walk(&root, &index, &ignore, &mut Vec::new()).unwrap().len(),
            2
        );
        fs::write(dir.join("z/two"), "").unwrap();
        let names = walk_names(&root, &ignore);
        assert_eq!(names, ["a/one.pdf", "b.txt", "z/two"]);
        assert!(index
            .all()
            .map(|(n, _)| n)
            .eq(names.iter().map(String::as_str)));
        // Nothing was read: types wait for the hashing, but for the
        // empty file's.
        assert!(!index.read(0) && !index.read(1));
        assert_eq!(index.get("z/two").unwrap().mime, "inode/x-empty");
        assert_eq!(index.get("z/two").unwrap().md5, Some(Md5::of(b"")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
