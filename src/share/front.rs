//! The `Share` front end: a shared folder opened with its state folder,
//! its index and its md5 cache, and the file requests answered from it
//! (open a file only inside the share, its md5 hashed once). Uploads,
//! partial files and earlier versions add their methods to [`Share`] in
//! upload.rs, partial.rs and had.rs.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::error::{OpenError, ShareError};
use super::hash::{self, FileKey, HashCache, Md5};
use super::ignore::Ignore;
use super::index::Index;
use super::opening::{is_not_shared, open_name, reopen};
use super::paths::{check_name, real_path_of, visible_below};
use super::state::{self, StateChoice, StateDir};
use super::{had, partial, scan};

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

/// What one [`Share::hash_pending`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashing {
    /// Files read and hashed.
    pub hashed: usize,
    /// Files left without an md5.
    pub left: usize,
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
///
/// The fields that upload.rs, partial.rs and had.rs use in their own
/// methods are open to the module (`pub(super)`); the rest stay here.
pub struct Share {
    pub(super) root: PathBuf,
    state: StateDir,
    /// The share id (see [`state::share_id`]).
    id: String,
    /// True when opening the share created its folder.
    created: bool,
    pub(super) snapshot: RwLock<Arc<Index>>,
    pub(super) hashes: HashCache,
    ignore: RwLock<Arc<Ignore>>,
    /// What the last walk left out because its name is not UTF-8.
    unnamable: RwLock<Vec<scan::Skipped>>,
    /// Earlier versions of files that changed or went (see [`Share::had`]).
    pub(super) had: Mutex<had::Had>,
    /// The partial files of broken uploads kept for a resume.
    pub(super) partials: partial::Partials,
    /// True once the first scan has swapped in its index; until then every
    /// listing is incomplete.
    scanned: AtomicBool,
}

impl Share {
    /// Opens the folder `dir` (creating it when only its last component is
    /// missing) and its state folder (see [`state::open`]), loads the
    /// saved md5 cache and indexes the folder once.
    pub fn open(dir: &Path, state: &StateChoice) -> Result<Share, OpenError> {
        let share = Share::open_unscanned(dir, state)?;
        share.rescan();
        Ok(share)
    }

    /// Like [`Share::open`], without the first scan: the index is empty
    /// and [`Share::scanned`] false until a [`Share::rescan`] (the server's
    /// rescan thread makes the first one, so that its port opens at once).
    /// Files are found by name all the same ([`Share::open_file`]).
    pub fn open_unscanned(dir: &Path, state: &StateChoice) -> Result<Share, OpenError> {
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
            scanned: AtomicBool::new(false),
        };
        // The ignore rules hold from the start: a file asked for by name
        // before the first scan is refused as the scan would leave it out.
        let mut ignore = Ignore::load(&share.root);
        ignore.folders.extend(share.state_inside());
        *share.ignore.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ignore);
        Ok(share)
    }

    /// True once the first scan is done: before, the index holds only
    /// part of the folder (or nothing), and listings say they are
    /// incomplete.
    pub fn scanned(&self) -> bool {
        self.scanned.load(Ordering::Acquire)
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
            self.scanned.store(true, Ordering::Release);
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
        self.scanned.store(true, Ordering::Release);
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
    /// now, or not reached before the stop), and how many were hashed.
    pub fn hash_pending(&self, stop: &(dyn Fn() -> bool + Sync)) -> Hashing {
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
        let hashed = hashed.into_inner();
        // The cache is an optimisation: failing to save it costs a rehash
        // after a restart, nothing more.
        let _ = self.hashes.save();
        Hashing {
            hashed,
            left: todo.len() - hashed,
        }
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
