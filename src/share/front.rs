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

/// Files from this size on are hashed on one thread per core: the md5
/// keeps a core busy. Smaller ones are read on [`SMALL_READERS`] threads a
/// core, as reading them mostly waits for the disk.
const SMALL_FILE: u64 = 1 << 20;

/// Threads per core that read small files (see [`SMALL_FILE`]).
const SMALL_READERS: usize = 4;

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
    /// True once a hashing pass ran to its end after the first scan: every
    /// file then has been read for its md5 and type (or could not be).
    hashed: AtomicBool,
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
        // Read back at the first scan, not here: the port opens first.
        let hashes = HashCache::new(&state.path.join("hashes.tsv"));
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
            hashed: AtomicBool::new(false),
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

    /// True once every file the first scan found has been read for its
    /// md5 and type (or could not be): before, a type may be a guess from
    /// the name ([`super::mime::guess`]).
    pub fn hashed(&self) -> bool {
        self.hashed.load(Ordering::Acquire)
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
    /// stat'ed: their type and md5 carry over from the previous snapshot,
    /// or at the first scan from the saved md5 cache. New and changed
    /// files are read for their type here, but at the first scan, which
    /// reads nothing (the hashing after it reads each file once).
    pub fn rescan(&self) -> scan::Changes {
        let old = self.snapshot();
        let first = !self.scanned();
        let mut ignore = Ignore::load(&self.root);
        ignore.folders.extend(self.state_inside());
        let ignore = Arc::new(ignore);
        *self.ignore.write().unwrap_or_else(|e| e.into_inner()) = ignore.clone();
        let mut unnamable = Vec::new();
        // At the first scan the saved md5 cache is read on a thread of its
        // own while the walk waits for the disk.
        let prefetch = scan::Prefetch::new(&self.root);
        let (walked, saved) = std::thread::scope(|s| {
            let saved = first.then(|| s.spawn(|| hash::Saved::load(self.hashes.path())));
            if first {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                for _ in 0..cores * scan::PREFETCH_PER_CORE {
                    s.spawn(|| prefetch.run());
                }
            }
            let new = scan::walk(&self.root, &old, &ignore, &mut unnamable);
            prefetch.done.store(true, Ordering::Relaxed);
            let saved = saved.map_or_else(hash::Saved::default, |t| t.join().unwrap_or_default());
            (new, saved)
        });
        // The usual case: nothing changed. The current index stays, and no
        // second one was built.
        let Some(mut new) = walked else {
            self.scanned.store(true, Ordering::Release);
            return scan::Changes {
                unnamable: self.newly_unnamable(unnamable),
                ..scan::Changes::default()
            };
        };
        let (mut changes, unread) = {
            let mut had = self.had.lock().unwrap_or_else(|e| e.into_inner());
            scan::merge(&old, &new, &saved, &mut |name, md5| had.note(name, md5))
        };
        drop(saved);
        self.hashes.with_extra(|extra| {
            if extra.is_empty() {
                return;
            }
            // Every version the index now holds leaves the map, known
            // there already (a file added to the index at once) or not.
            for i in 0..new.len() {
                if let Some(d) = extra.remove(&new.key(i)) {
                    if new.md5(i).is_none() {
                        new.fill(i, 0, Some(d));
                    }
                }
            }
        });
        if !first {
            let denied = scan::sniff_unread(&self.root, &new, &unread);
            if !denied.is_empty() {
                for &i in &denied {
                    let path = self.root.join(new.name(i));
                    scan::left_out(&mut unnamable, path, scan::Why::FileDenied);
                }
                changes.added -= denied.len().min(changes.added);
                new = new.without(&denied);
            }
        }
        changes.unnamable = self.newly_unnamable(unnamable);
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        self.scanned.store(true, Ordering::Release);
        if !changes.is_empty() {
            self.hashes.changed();
        }
        changes
    }

    /// Records what a walk left out, and returns what the walk before did
    /// not.
    fn newly_unnamable(&self, unnamable: Vec<scan::Skipped>) -> Vec<scan::Skipped> {
        let mut known = self.unnamable.write().unwrap_or_else(|e| e.into_inner());
        let new: Vec<scan::Skipped> = unnamable
            .iter()
            .filter(|p| !known.contains(p))
            .cloned()
            .collect();
        *known = unnamable;
        new
    }

    /// Reads and hashes every indexed file whose md5 is not known yet,
    /// learning its type from the same read, on one thread per core
    /// (largest files first, so they spread evenly), then saves the md5
    /// cache. A large file another thread is hashing already is left to
    /// it. Stops early when `stop` says so. Returns how many files were
    /// hashed and how many are left without an md5 (unreadable, changed
    /// since the scan or while hashed, hashed elsewhere right now, or not
    /// reached before the stop).
    pub fn hash_pending(&self, stop: &(dyn Fn() -> bool + Sync)) -> Hashing {
        let snap = self.snapshot();
        // A file whose md5 is known but not its type (kept by an older
        // version, or stored by this process) is read for its type only.
        let mut todo: Vec<u32> = (0..snap.len())
            .filter(|&i| snap.md5(i).is_none() || !snap.read(i))
            .map(|i| i as u32)
            .collect();
        // Stable: files of one size stay in name order, which is mostly
        // the order they lie on the disk.
        todo.sort_by_key(|&i| std::cmp::Reverse(snap.key(i as usize).size));
        // Large files keep a core busy each; small ones mostly wait for
        // the disk, so more of them are read at once.
        let small = todo.partition_point(|&i| snap.key(i as usize).size >= SMALL_FILE);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hashed = self.hash_list(&snap, &todo[..small], cores, stop)
            + self.hash_list(&snap, &todo[small..], cores * SMALL_READERS, stop);
        let left = (0..snap.len()).filter(|&i| snap.md5(i).is_none()).count();
        if !stop() && self.scanned() {
            self.hashed.store(true, Ordering::Release);
        }
        // The cache is an optimisation: failing to save it costs a rehash
        // after a restart, nothing more.
        let _ = self.save_hashes();
        Hashing { hashed, left }
    }

    /// Hashes the files of `snap` at `list` on `threads` threads (fewer
    /// when the list is short). Returns how many were hashed.
    fn hash_list(
        &self,
        snap: &Index,
        list: &[u32],
        threads: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> usize {
        let next = AtomicUsize::new(0);
        let hashed = AtomicUsize::new(0);
        let work = || {
            let mut buf = hash::read_buffer();
            let mut head = Vec::with_capacity(super::mime::SNIFF_LEN);
            while !stop() {
                let Some(&i) = list.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                if self.hash_indexed(snap, i as usize, &mut buf, &mut head) {
                    hashed.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads.min(list.len()) {
                s.spawn(work);
            }
            work();
        });
        hashed.into_inner()
    }

    /// Reads the `i`th file of `snap` for its md5 and type. The name is
    /// opened as the walk found it, and used only when it is still that
    /// very file (its inode, size and mtime, which the walk checked to be
    /// a shared file): cheaper than [`Share::open_file`], which checks a
    /// name from a request. A file whose md5 is known is read for its
    /// type only. True when it was hashed.
    fn hash_indexed(&self, snap: &Index, i: usize, buf: &mut [u8], head: &mut Vec<u8>) -> bool {
        let key = snap.key(i);
        let name = snap.name(i);
        if let Some(d) = snap.md5(i) {
            if let Some(t) = scan::sniff_file(&self.root.join(name), name) {
                snap.fill(i, super::mime::code(t), Some(d));
                self.hashes.changed();
            }
            return false;
        }
        // A large file may be asked for by a request at the same time:
        // hashed once. A small one costs less to read twice than to claim.
        let _claim = if key.size >= SMALL_FILE {
            match self.hashes.claim(&key, false, || snap.md5(i)) {
                Ok(c) => Some(c),
                Err(_) => return false,
            }
        } else {
            None
        };
        let Ok(file) = super::opening::open_nonblocking(&self.root.join(name)) else {
            return false;
        };
        let same = |f: &File| {
            f.metadata()
                .is_ok_and(|m| m.is_file() && FileKey::of(&m) == key)
        };
        if !same(&file) {
            return false;
        }
        let Ok(d) = hash::md5_with_head(io::Read::take(&file, key.size), buf, head) else {
            return false;
        };
        if !same(&file) {
            return false;
        }
        self.store_md5(
            Some((snap, i)),
            name,
            key,
            d,
            Some(super::mime::sniff(head, name)),
        );
        true
    }

    /// Keeps the md5 (and type, when read) of the file `name` at version
    /// `key`: in its row of the current index, else outside the index
    /// until a scan finds it. `at`: where the caller saw it, when in an
    /// index.
    fn store_md5(
        &self,
        at: Option<(&Index, usize)>,
        name: &str,
        key: FileKey,
        md5: Md5,
        mime: Option<&str>,
    ) {
        let current = self.snapshot();
        let found = match at {
            Some((snap, i)) if std::ptr::eq(snap, &*current) => Some(i),
            _ => current.find(name).filter(|&i| current.key(i) == key),
        };
        match found {
            Some(i) => {
                current.fill(i, mime.map_or(0, super::mime::code), Some(md5));
                self.hashes.changed();
            }
            None => self.hashes.insert_extra(key, md5),
        }
    }

    /// Caches `md5` for the file `name` as it is now (one this process
    /// just wrote and verified), so that it is not hashed again.
    pub fn remember_md5(&self, name: &str, md5: Md5) {
        if let Ok(m) = fs::symlink_metadata(self.root.join(name)) {
            if m.is_file() {
                self.store_md5(None, name, FileKey::of(&m), md5, None);
            }
        }
    }

    /// Saves the md5 cache now if it changed.
    pub fn save_hashes(&self) -> io::Result<()> {
        let snap = self.snapshot();
        self.hashes.save((0..snap.len()).filter_map(|i| {
            let t = if snap.read(i) {
                snap.entry(i).mime
            } else {
                "-"
            };
            Some((snap.key(i), snap.md5(i)?, t))
        }))
    }

    /// The md5 of the file `name` at version `key`, if known.
    pub fn known_md5(&self, name: &str, key: &FileKey) -> Option<Md5> {
        let snap = self.snapshot();
        snap.find(name)
            .filter(|&i| snap.key(i) == *key)
            .and_then(|i| snap.md5(i))
            .or_else(|| self.hashes.extra(key))
    }

    /// The md5 of an opened file: known, or hashed now from the open file
    /// and kept. If the file changes while it is hashed the result is not
    /// kept and an error says so.
    pub fn md5_of(&self, f: &OpenedFile) -> io::Result<Md5> {
        self.hash_once(f, true)?
            .ok_or_else(|| io::Error::other(format!("{} is being hashed", f.name)))
    }

    /// [`Share::md5_of`], hashing each file version once however many
    /// threads ask for it at the same time: the others wait for the result
    /// (`wait`), or get `None` at once.
    fn hash_once(&self, f: &OpenedFile, wait: bool) -> io::Result<Option<Md5>> {
        if let Some(d) = self.known_md5(&f.name, &f.key) {
            return Ok(Some(d));
        }
        let _claim = match self
            .hashes
            .claim(&f.key, wait, || self.known_md5(&f.name, &f.key))
        {
            Ok(claim) => claim,
            Err(known) => return Ok(known),
        };
        let mut file = f.file.try_clone()?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))?;
        let mut head = Vec::new();
        let mut buf = hash::read_buffer();
        let d = hash::md5_with_head(io::Read::take(file, f.key.size), &mut buf, &mut head)?;
        if f.changed()? {
            return Err(io::Error::other(format!(
                "{} changed while it was hashed",
                f.name
            )));
        }
        let mime = super::mime::sniff(&head, &f.name);
        self.store_md5(None, &f.name, f.key, d, Some(mime));
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
