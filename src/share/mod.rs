//! The shared folder: the rules for names in requests, opening files so a
//! request can never leave the folder, and the index with its md5 cache.

mod had;
pub mod hash;
mod ignore;
pub mod index;
pub mod mime;
mod opening;
mod partial;
mod place;
pub mod scan;
pub mod state;
mod upload;

use std::fmt;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::protocol::{FileOp, Reply};
use crate::sys;
use hash::{HashCache, Md5};
pub use ignore::{Ignore, IGNORE_FILE};
use index::Index;
use opening::{open_name, reopen};
pub use partial::{ResumeFrom, MAX_PARTIALS, PARTIAL_TTL};
pub use place::{place, place_by_placeholder, Mode, Placed};
use state::{StateChoice, StateDir};
pub use upload::Incoming;

/// The name of the state folder inside the share (hidden, so never shared).
pub const STATE_DIR: &str = ".p2pshare";

/// Why a folder cannot be shared, or its state cannot be kept.
#[derive(Debug)]
pub enum OpenError {
    /// The path names a file (or something else that is not a folder).
    NotAFolder(PathBuf),
    /// Neither the folder nor its parent exists: only the last component
    /// of a path is created, so a mistyped path is not served empty.
    ParentMissing {
        dir: PathBuf,
        parent: PathBuf,
    },
    Io(PathBuf, io::Error),
    /// The state folder given (or chosen) cannot be made or written.
    State {
        dir: PathBuf,
        error: io::Error,
    },
    /// The share cannot hold its state and the environment names no
    /// other place for it.
    NoState {
        tried: PathBuf,
        error: io::Error,
    },
    /// `--state` names the shared folder itself.
    StateIsShare(PathBuf),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotAFolder(p) => write!(f, "cannot share {}: not a folder", p.display()),
            OpenError::ParentMissing { dir, parent } => write!(
                f,
                "cannot share {}: the folder {} does not exist (only the last folder of the path is created)",
                dir.display(),
                parent.display()
            ),
            OpenError::Io(p, e) => write!(f, "cannot share {}: {e}", p.display()),
            OpenError::State { dir, error } => write!(
                f,
                "cannot keep state in {}: {error}; pass --state DIR (a writable folder)",
                dir.display()
            ),
            OpenError::NoState { tried, error } => write!(
                f,
                "cannot keep state in {}: {error}; pass --state DIR (a writable folder), \
                 or set HOME or XDG_STATE_HOME",
                tried.display()
            ),
            OpenError::StateIsShare(p) => write!(
                f,
                "--state {} is the shared folder itself; give the state a folder of its own",
                p.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// Checks a path to share without changing anything: true when it is a
/// folder, false when only its last component is missing (it may be
/// created), an error otherwise.
pub fn check_folder(dir: &Path) -> Result<bool, OpenError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(OpenError::NotAFolder(dir.to_path_buf())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match fs::metadata(parent) {
                Ok(m) if m.is_dir() => Ok(false),
                Ok(_) => Err(OpenError::NotAFolder(parent.to_path_buf())),
                Err(_) => Err(OpenError::ParentMissing {
                    dir: dir.to_path_buf(),
                    parent: parent.to_path_buf(),
                }),
            }
        }
        Err(e) => Err(OpenError::Io(dir.to_path_buf(), e)),
    }
}

/// What identifies one version of a file's content for the md5 cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileKey {
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(m: &Metadata) -> FileKey {
        FileKey {
            size: m.len(),
            mtime_s: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ino: m.ino(),
        }
    }
}

/// Why a request for a file was refused.
#[derive(Debug)]
pub enum ShareError {
    /// The name breaks the rules, or names nothing shared. Deliberately one
    /// case: the reply must not tell an outside file from a missing one.
    NotShared,
    /// A name inside the share, not ignored, that the server may not read
    /// (a file or a folder above it): said as such, never as missing.
    Denied,
    Io(io::Error),
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareError::NotShared => f.write_str("no such file or not shared"),
            ShareError::Denied => f.write_str("permission denied"),
            ShareError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ShareError {}

impl ShareError {
    /// The reply to a request for `name` refused with this error, when
    /// the server was about to `op` it. A name refused for an upload
    /// (`Store`) is one not allowed; for anything else it is one not
    /// shared. Opening and checking name the kind of error only.
    pub fn reply(&self, name: &str, op: FileOp) -> Reply<'static> {
        match (self, op) {
            (ShareError::NotShared, FileOp::Store) => Reply::name_not_allowed(name),
            (ShareError::NotShared, _) => Reply::not_shared(name),
            (ShareError::Denied, FileOp::Store) => Reply::cannot(op, name, &"permission denied"),
            (ShareError::Denied, _) => Reply::permission_denied(name),
            (ShareError::Io(e), FileOp::Store) => Reply::cannot(op, name, e),
            (ShareError::Io(e), _) => Reply::cannot(op, name, &e.kind()),
        }
    }
}

impl From<io::Error> for ShareError {
    fn from(e: io::Error) -> Self {
        ShareError::Io(e)
    }
}

/// Checks a name from a request: a relative `/` path of visible, non-empty
/// components without `.`, `..` or NUL.
pub fn check_name(name: &str) -> Result<(), ShareError> {
    if name.is_empty() || name.len() > 4096 || name.contains('\0') || name.starts_with('/') {
        return Err(ShareError::NotShared);
    }
    if name.split('/').any(|c| c.is_empty() || c.starts_with('.')) {
        return Err(ShareError::NotShared);
    }
    Ok(())
}

/// The part of `real` (a resolved path) below the share `root`, when it
/// lies there with no hidden or non-normal component: what may be shared.
fn visible_below<'a>(root: &Path, real: &'a Path) -> Option<&'a Path> {
    let rel = real.strip_prefix(root).ok()?;
    let odd = rel.components().any(|c| match c {
        Component::Normal(s) => s.to_str().is_none_or(|s| s.starts_with('.')),
        _ => true,
    });
    (!odd).then_some(rel)
}

/// A shared file opened for reading, with what was checked about it.
pub struct OpenedFile {
    pub name: String,
    pub file: File,
    pub key: FileKey,
    pub mtime: SystemTime,
}

impl OpenedFile {
    pub fn size(&self) -> u64 {
        self.key.size
    }

    /// True when the open file no longer has the size and mtime it had when
    /// it was opened.
    pub fn changed(&self) -> io::Result<bool> {
        Ok(FileKey::of(&self.file.metadata()?) != self.key)
    }
}

/// A shared folder with its index and md5 cache.
pub struct Share {
    root: PathBuf,
    state: StateDir,
    /// The share id (see [`state::share_id`]).
    id: String,
    /// True when opening the share created its folder.
    created: bool,
    snapshot: RwLock<Arc<Index>>,
    hashes: HashCache,
    ignore: RwLock<Arc<Ignore>>,
    /// What the last walk left out because its name is not UTF-8.
    unnamable: RwLock<Vec<scan::Skipped>>,
    /// Earlier versions of files that changed or went (see [`Share::had`]).
    had: Mutex<had::Had>,
    /// The partial files of broken uploads kept for a resume.
    partials: partial::Partials,
}

impl Share {
    /// Opens the folder `dir` (creating it when only its last component is
    /// missing) and its state folder (see [`state::open`]), loads the
    /// saved md5 cache and indexes the folder once.
    pub fn open(dir: &Path, state: &StateChoice) -> Result<Share, OpenError> {
        let created = !check_folder(dir)?
            && match fs::create_dir(dir) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(OpenError::Io(dir.to_path_buf(), e)),
            };
        let root = fs::canonicalize(dir).map_err(|e| OpenError::Io(dir.to_path_buf(), e))?;
        let state = state::open(&root, state)?;
        let hashes = HashCache::load(&state.path.join("hashes.tsv"));
        let id = state::share_id(&state.path).map_err(|error| OpenError::State {
            dir: state.path.clone(),
            error,
        })?;
        let share = Share {
            root,
            state,
            id,
            created,
            snapshot: RwLock::new(Arc::new(Index::default())),
            hashes,
            ignore: RwLock::new(Arc::new(Ignore::default())),
            unnamable: RwLock::new(Vec::new()),
            had: Mutex::new(had::Had::default()),
            partials: partial::Partials::default(),
        };
        share.rescan();
        Ok(share)
    }

    /// What the last scan left out because its name is not valid UTF-8 or
    /// the server may not read it (at most [`scan::MAX_UNNAMABLE`]).
    pub fn unnamable(&self) -> Vec<scan::Skipped> {
        self.unnamable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The canonical path of the folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The share id: random, made once, kept in the state folder.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state folder: `.p2pshare/` inside the share, or where
    /// [`state::open`] put it.
    pub fn state_dir(&self) -> PathBuf {
        self.state.path.clone()
    }

    /// What a person should know about how the share was opened (its
    /// folder created, its state kept elsewhere), one line each.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.created {
            notes.push(format!("created the folder {}", self.root.display()));
        }
        notes.extend(self.state.note.clone());
        notes
    }

    /// The state folder's path below the root when it lies inside the
    /// share with a visible name: it must not be shared all the same. (A
    /// hidden one is left out like every hidden name.)
    fn state_inside(&self) -> Option<String> {
        let rel = visible_below(&self.root, &self.state.path)?.to_str()?;
        (!rel.is_empty()).then(|| rel.to_string())
    }

    /// The current index. Cheap: a clone of an `Arc`, so a slow reader never
    /// holds up the next scan.
    pub fn snapshot(&self) -> Arc<Index> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Walks the folder and swaps in the new index. Unchanged files are only
    /// stat'ed: their type carries over from the previous snapshot.
    pub fn rescan(&self) -> scan::Changes {
        let old = self.snapshot();
        let mut ignore = Ignore::load(&self.root);
        ignore.folders.extend(self.state_inside());
        let ignore = Arc::new(ignore);
        *self.ignore.write().unwrap_or_else(|e| e.into_inner()) = ignore.clone();
        let mut unnamable = Vec::new();
        let found = scan::walk_sorted(&self.root, &old, &ignore, &mut unnamable);
        let newly_unnamable = {
            let mut known = self.unnamable.write().unwrap_or_else(|e| e.into_inner());
            let new: Vec<scan::Skipped> = unnamable
                .iter()
                .filter(|p| !known.contains(p))
                .cloned()
                .collect();
            *known = unnamable;
            new
        };
        // The usual case: nothing changed. The current index stays, and no
        // second one is built beside it.
        if scan::unchanged(&old, &found) {
            return scan::Changes {
                unnamable: newly_unnamable,
                ..scan::Changes::default()
            };
        }
        let new = Index {
            files: found.into_iter().collect(),
        };
        let mut changes = scan::diff(&old, &new);
        changes.unnamable = newly_unnamable;
        let new = Arc::new(new);
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        self.note_had(&old, &changes);
        if !changes.is_empty() || self.hashes.len() > new.len() {
            let live: std::collections::HashSet<FileKey> = new.all().map(|(_, e)| e.key).collect();
            self.hashes.retain(|k| live.contains(k));
        }
        changes
    }

    /// Hashes every indexed file whose md5 is not cached yet, on one thread
    /// per core (largest files first, so they spread evenly), then saves the
    /// cache. A file another thread is hashing already is left to it. Stops
    /// early when `stop` says so. Returns how many files are left without
    /// an md5 (unreadable, changed while hashed, hashed elsewhere right
    /// now, or not reached before the stop).
    pub fn hash_pending(&self, stop: &(dyn Fn() -> bool + Sync)) -> usize {
        let snap = self.snapshot();
        let cached = self.hashes.get_many(snap.all().map(|(_, e)| &e.key));
        let mut todo: Vec<(&String, u64)> = snap
            .all()
            .zip(cached)
            .filter(|(_, have)| have.is_none())
            .map(|((name, e), _)| (name, e.size))
            .collect();
        todo.sort_by_key(|t| std::cmp::Reverse(t.1));
        let next = AtomicUsize::new(0);
        let hashed = AtomicUsize::new(0);
        let work = || {
            while !stop() {
                let Some((name, _)) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                if let Ok(f) = self.open_file(name) {
                    if let Ok(Some(_)) = self.hash_once(&f, false) {
                        hashed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(todo.len());
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(work);
            }
            work();
        });
        let left = todo.len() - hashed.into_inner();
        // The cache is an optimisation: failing to save it costs a rehash
        // after a restart, nothing more.
        let _ = self.hashes.save();
        left
    }

    /// Caches `md5` for the file `name` as it is now (one this process
    /// just wrote and verified), so that it is not hashed again.
    pub fn remember_md5(&self, name: &str, md5: Md5) {
        if let Ok(m) = fs::symlink_metadata(self.root.join(name)) {
            if m.is_file() {
                self.hashes.insert(FileKey::of(&m), md5);
            }
        }
    }

    /// Saves the md5 cache now if it changed.
    pub fn save_hashes(&self) -> io::Result<()> {
        self.hashes.save()
    }

    /// The cached md5 of a file version, if known.
    pub fn cached_md5(&self, key: &FileKey) -> Option<Md5> {
        self.hashes.get(key)
    }

    /// Cached md5s of many keys at once.
    pub fn cached_md5s<'a>(&self, keys: impl Iterator<Item = &'a FileKey>) -> Vec<Option<Md5>> {
        self.hashes.get_many(keys)
    }

    /// The md5 of an opened file: from the cache, or hashed now from the
    /// open file and cached. If the file changes while it is hashed the
    /// result is not cached and an error says so.
    pub fn md5_of(&self, f: &OpenedFile) -> io::Result<Md5> {
        self.hash_once(f, true)?
            .ok_or_else(|| io::Error::other(format!("{} is being hashed", f.name)))
    }

    /// [`Share::md5_of`], hashing each file version once however many
    /// threads ask for it at the same time: the others wait for the result
    /// (`wait`), or get `None` at once.
    fn hash_once(&self, f: &OpenedFile, wait: bool) -> io::Result<Option<Md5>> {
        if let Some(d) = self.hashes.get(&f.key) {
            return Ok(Some(d));
        }
        let _claim = match self.hashes.claim(&f.key, wait) {
            Ok(claim) => claim,
            Err(known) => return Ok(known),
        };
        let mut file = f.file.try_clone()?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))?;
        let d = hash::md5_of_reader(io::Read::take(file, f.key.size))?;
        if f.changed()? {
            return Err(io::Error::other(format!(
                "{} changed while it was hashed",
                f.name
            )));
        }
        self.hashes.insert(f.key, d);
        Ok(Some(d))
    }

    /// Opens a shared file by its name from a request.
    ///
    /// The name is checked first ([`check_name`]); then the name alone is
    /// opened (`O_PATH`, following links), and what it leads to is
    /// checked: a regular file whose real path lies inside the share with
    /// no hidden component. Only then is that very file opened for
    /// reading, through its descriptor. So a device, socket or FIFO, or a
    /// file outside the share, is refused (550) without ever being opened,
    /// and a symlink swapped between the check and the open cannot escape.
    pub fn open_file(&self, name: &str) -> Result<OpenedFile, ShareError> {
        check_name(name)?;
        if self.is_ignored(name) {
            return Err(ShareError::NotShared);
        }
        let path = self.root.join(name);
        let named = match open_name(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && self.denied_inside(&path) => {
                return Err(ShareError::Denied)
            }
            Err(e) if is_not_shared(&e) => return Err(ShareError::NotShared),
            Err(e) => return Err(ShareError::Io(e)),
        };
        let meta = named.metadata()?;
        if !meta.is_file() {
            return Err(ShareError::NotShared);
        }
        let real = real_path_of(&named, &path, &meta).ok_or(ShareError::NotShared)?;
        match visible_below(&self.root, &real) {
            Some(rel) if !rel.to_str().is_some_and(|r| self.is_ignored(r)) => {}
            _ => return Err(ShareError::NotShared),
        }
        // Checked to be a shared file inside: one the server may not read
        // is refused as such (O_PATH above opens it without that right).
        let file = match reopen(named, &real, &meta) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(ShareError::Denied)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(OpenedFile {
            name: name.to_string(),
            key: FileKey::of(&meta),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            file,
        })
    }
}

impl Share {
    /// For a path whose open was refused for its permissions: true when
    /// it names a file inside the share that would be shared (its real
    /// path visible below the root, not ignored), so that the refusal may
    /// say so without telling anything about a file outside the share.
    /// A folder on the way that cannot be searched counts too, when the
    /// folder itself is inside.
    fn denied_inside(&self, path: &Path) -> bool {
        let mut probe = path.to_path_buf();
        loop {
            // A link whose target cannot be looked at may lead anywhere.
            if fs::symlink_metadata(&probe).is_ok_and(|m| m.file_type().is_symlink())
                && fs::canonicalize(&probe).is_err()
            {
                return false;
            }
            if let Ok(real) = fs::canonicalize(&probe) {
                let shared = visible_below(&self.root, &real)
                    .and_then(|rel| rel.to_str().map(|r| !self.is_ignored(r)))
                    .unwrap_or(false);
                return shared && (probe == path || real.is_dir());
            }
            if !probe.pop() || !probe.starts_with(&self.root) || probe == self.root {
                return false;
            }
        }
    }

    /// True when `.p2pignore` keeps `name` (or a folder above it) out.
    pub fn is_ignored(&self, name: &str) -> bool {
        self.ignore
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .matches(name)
    }
}

/// The real folder that holds `name` (a relative name [`check_name`]
/// accepts) below `root` (a canonical path), with the name's last
/// component. Missing folders on the way are made, and each one made is
/// added to `created`, outermost first. A folder on the way that is a
/// link is followed only when it leads to a visible folder inside `root`;
/// anything else on the way (a link leading out or into a hidden folder,
/// a file) refuses the name. So nothing is ever made outside `root`, and
/// what goes into the folder returned lands inside it (unless a link is
/// swapped meanwhile: check what was made with [`real_path_inside`]).
/// Uploads to the server and the client's downloads are placed alike.
pub fn folder_inside<'n>(
    root: &Path,
    name: &'n str,
    created: &mut Vec<PathBuf>,
) -> Result<(PathBuf, &'n str), ShareError> {
    let (dir_rel, base) = match name.rsplit_once('/') {
        Some((d, b)) => (Some(d), b),
        None => (None, name),
    };
    let mut dir = root.to_path_buf();
    for comp in dir_rel.into_iter().flat_map(|d| d.split('/')) {
        let next = dir.join(comp);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => dir = next,
            Ok(m) if m.file_type().is_symlink() => {
                let real = fs::canonicalize(&next).map_err(|_| ShareError::NotShared)?;
                match visible_below(root, &real) {
                    Some(_) if real.is_dir() => dir = real,
                    _ => return Err(ShareError::NotShared),
                }
            }
            Ok(_) => return Err(ShareError::NotShared),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&next) {
                    Ok(()) => created.push(next.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(ShareError::Io(e)),
                }
                dir = next;
            }
            Err(e) => return Err(ShareError::Io(e)),
        }
    }
    Ok((dir, base))
}

/// The real path of `file` (just opened or made at `path`) when the
/// folder it really is in lies visibly inside `root`: what was made
/// through [`folder_inside`] is checked with this, so that a link swapped
/// in between cannot lead it out.
pub fn real_path_inside(root: &Path, file: &File, path: &Path) -> Option<PathBuf> {
    let meta = file.metadata().ok()?;
    let real = real_path_of(file, path, &meta)?;
    let inside = real
        .parent()
        .is_some_and(|p| visible_below(root, p).is_some());
    inside.then_some(real)
}

fn is_not_shared(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::InvalidInput
    ) || e
        .raw_os_error()
        .is_some_and(|n| n == sys::ENAMETOOLONG || n == sys::ELOOP)
}

/// Opens for reading, failing on a symbolic link instead of following it.
fn open_no_follow(path: &Path) -> io::Result<File> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::other("a symbolic link"));
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NOFOLLOW | sys::O_NONBLOCK | sys::O_NOCTTY)
        .open(path)
}

/// Opens for reading without blocking on a FIFO or claiming a terminal.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NONBLOCK | sys::O_NOCTTY)
        .open(path)
}

/// The real path of an open file: from /proc (what the descriptor really
/// is), else by resolving the name again and checking it is still the
/// same inode.
fn real_path_of(file: &File, path: &Path, meta: &Metadata) -> Option<PathBuf> {
    if let Ok(p) = fs::read_link(sys::fd_link(file)) {
        return Some(p);
    }
    let real = fs::canonicalize(path).ok()?;
    let again = fs::metadata(&real).ok()?;
    (again.ino() == meta.ino() && again.dev() == meta.dev()).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        for ok in ["a", "a.txt", "docs/a.txt", "x y/z", "a..b", "tab\there"] {
            assert!(check_name(ok).is_ok(), "{ok:?} should pass");
        }
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "./a",
            "a/./b",
            ".hidden",
            "a/.p2pshare/x",
            "a//b",
            "a/",
            "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
