//! Walking the shared folder into an [`Index`], and the rescan thread that
//! does it on a timer and hashes what is new.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use super::hash::FileKey;
use super::ignore::Ignore;
use super::index::{Entry, Index};
use super::opening::open_nonblocking;
use super::paths::visible_below;
use super::{mime, Share};
use crate::stop::Stop;

/// What one scan found different from the one before.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
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
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Walks `root` (canonical) and returns the index of what it shares: regular
/// files below it, hidden and ignored names left out, links followed only where their
/// target lies inside the share. Entries whose size, mtime and inode match
/// `old` keep their type without being read again.
pub fn walk(root: &Path, old: &Index, ignore: &Ignore) -> Index {
    Index {
        files: walk_sorted(root, old, ignore, &mut Vec::new())
            .into_iter()
            .collect(),
    }
}

/// The most entries [`walk_sorted`] reports as left out in one walk.
pub const MAX_UNNAMABLE: usize = 1000;

/// What [`walk`] finds, as a list sorted by name. Entries whose name is not
/// valid UTF-8 cannot be named on the wire, and files and folders the
/// server may not read cannot be served: they are left out, and their
/// paths (up to [`MAX_UNNAMABLE`]) go to `unnamable`. A new or changed
/// file is opened to sniff its type; one whose open is refused for its
/// permissions is such a file.
pub fn walk_sorted(
    root: &Path,
    old: &Index,
    ignore: &Ignore,
    unnamable: &mut Vec<Skipped>,
) -> Vec<(String, Entry)> {
    let mut found = walk_unsniffed(root, old.len(), ignore, unnamable);
    let mut denied = Vec::new();
    // One pass beside the old index (both in name order) instead of a
    // lookup per file: a rescan of an unchanged share costs little more
    // than its stat calls.
    let mut olds = old.files.iter().peekable();
    for (name, e) in &mut found {
        while olds.next_if(|(o, _)| o.as_str() < name.as_str()).is_some() {}
        e.mime = match olds.peek() {
            Some((o, oe)) if *o == name && oe.key == e.key => oe.mime,
            _ => match sniff_file(&root.join(&*name), name) {
                Some(mime) => mime,
                None => {
                    denied.push(name.clone());
                    ""
                }
            },
        };
    }
    if !denied.is_empty() {
        found.retain(|(name, _)| denied.binary_search(name).is_err());
        for name in denied {
            if unnamable.len() < MAX_UNNAMABLE {
                unnamable.push(Skipped {
                    path: root.join(name),
                    why: Why::FileDenied,
                });
            }
        }
    }
    found
}

/// The names of the files [`walk`] finds under `root`, in name order,
/// without reading any of them (no type is sniffed): for a client that
/// only matches names, such as an upload pattern.
pub fn walk_names(root: &Path, ignore: &Ignore) -> Vec<String> {
    walk_unsniffed(root, 0, ignore, &mut Vec::new())
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The walk of [`walk_sorted`], every entry's type left empty.
fn walk_unsniffed(
    root: &Path,
    capacity: usize,
    ignore: &Ignore,
    unnamable: &mut Vec<Skipped>,
) -> Vec<(String, Entry)> {
    let mut w = Walker {
        root,
        ignore,
        unnamable,
        found: Vec::with_capacity(capacity),
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
    let mut found = w.found;
    // Folders reached through links come last and out of order: only then
    // is a sort needed.
    if !found.is_sorted_by(|a, b| a.0 <= b.0) {
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    found
}

/// The state of one walk of [`walk_unsniffed`].
struct Walker<'a> {
    root: &'a Path,
    ignore: &'a Ignore,
    unnamable: &'a mut Vec<Skipped>,
    found: Vec<(String, Entry)>,
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
                Some(Walked::File(name, entry)) => self.found.push((name, entry)),
                Some(Walked::Dir(dir, rel)) => return Some((dir, rel)),
                None => match self.linked.pop() {
                    Some((path, rel, id)) if self.seen_dirs.insert(id) => return Some((path, rel)),
                    Some(_) => {}
                    None => return None,
                },
            }
        }
    }

    /// Puts what the folder `dir` (the share's `rel`) shares on the stack.
    fn read_folder(&mut self, dir: &Path, rel: &str) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    && self.unnamable.len() < MAX_UNNAMABLE
                {
                    self.unnamable.push(Skipped {
                        path: dir.to_path_buf(),
                        why: Why::FolderDenied,
                    });
                }
                return;
            }
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                if self.unnamable.len() < MAX_UNNAMABLE {
                    self.unnamable.push(Skipped {
                        path: entry.path(),
                        why: Why::NotUtf8,
                    });
                }
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
            let key = FileKey::of(&meta);
            let entry = Entry {
                size: key.size,
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                key,
                // Filled in by `walk_sorted`, from `old` or by sniffing.
                mime: "",
            };
            self.children
                .push((String::new(), Walked::File(rel_name, entry)));
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

/// Work left for [`walk_sorted`]: a file found, or a folder to read.
enum Walked {
    File(String, Entry),
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

/// True when a sorted walk found exactly the files of `old`, unchanged.
pub fn unchanged(old: &Index, found: &[(String, Entry)]) -> bool {
    old.len() == found.len()
        && old
            .all()
            .zip(found)
            .all(|((on, oe), (n, e))| on == n && oe.key == e.key)
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

/// The files added, changed (size, mtime or inode) and removed from `old`
/// to `new`.
pub fn diff(old: &Index, new: &Index) -> Changes {
    // Both are in name order: one pass over the two side by side.
    let mut c = Changes::default();
    let mut olds = old.all().peekable();
    for (name, e) in new.all() {
        while let Some((gone, _)) = olds.next_if(|(o, _)| *o < name) {
            c.removed.push(gone.clone());
        }
        match olds.next_if(|(o, _)| *o == name) {
            None => c.added.push(name.clone()),
            Some((_, o)) if o.key != e.key => c.changed.push(name.clone()),
            Some(_) => {}
        }
    }
    c.removed.extend(olds.map(|(gone, _)| gone.clone()));
    c
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
                loop {
                    if pending {
                        let done = share.hash_pending(&|| stop.is_set());
                        pending = done.left > 0;
                        if std::mem::take(&mut first_hashing) && !stop.is_set() {
                            announce_hashing(share.snapshot().len(), done);
                        }
                    }
                    if stop.wait(interval) {
                        break;
                    }
                    let changes = share.rescan();
                    report_unnamable(&changes.unnamable);
                    pending |= !changes.is_empty();
                }
            });
        })
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
        let index = walk(&root, &Index::default(), &ignore);
        let names = walk_names(&root, &ignore);
        assert_eq!(names, ["a/one.pdf", "b.txt", "z/two"]);
        assert!(index.all().map(|(n, _)| n).eq(names.iter()));
        fs::remove_dir_all(&dir).unwrap();
    }
}
