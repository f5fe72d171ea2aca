//! What FTP clients need of the share beyond a whole upload: folders
//! made on request (`MKD`), and uploads resumed where they broke off
//! (`APPE`, `REST` + `STOR`).
//!
//! An upload that breaks off keeps what arrived as a *partial file*, a
//! hidden file beside the name it is for (`.NAME.p2pshare-partial`),
//! never shared and never under the name itself. A resume takes it over
//! (renamed to the resuming upload's own temporary name, so that two
//! resumes of one name never write into one file), appends to it, and the
//! file appears under its name only once it is complete, exactly as a
//! whole upload does. At most [`MAX_PARTIALS`] partial files are kept
//! per share, each for at most [`PARTIAL_TTL`]: keeping one more removes
//! the oldest, and those older than that.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{self, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::ShareError;
use super::paths::{check_name, folder_inside, real_path_of, visible_below};
use super::upload::Incoming;
use super::{scan, Share};
use crate::sys;

/// How many partial files a share keeps at most.
pub const MAX_PARTIALS: usize = 16;

/// How long a partial file is kept at most.
pub const PARTIAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// The partial files kept, oldest first.
#[derive(Default)]
pub(super) struct Partials(std::sync::Mutex<VecDeque<PathBuf>>);

/// Where a resumed upload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// At the end of the partial file (`APPE`).
    End,
    /// At this byte of it (`REST` + `STOR`), which must be within it.
    Offset(u64),
}

/// The partial file of `path` (a file's final path).
fn partial_path(path: &Path) -> Option<PathBuf> {
    let base = path.file_name()?.to_str()?;
    Some(path.with_file_name(format!(".{base}.p2pshare-partial")))
}

impl Share {
    /// The folder `name` (a share name, `""` the top) when it is a real
    /// folder on the disk, visibly inside the share and not ignored: a
    /// folder just made holds no file the index could know it by.
    pub fn folder_exists(&self, name: &str) -> bool {
        name.is_empty() || self.folder_time(name).is_some()
    }

    /// The modification time of the folder `name` when it is one by the
    /// rules of [`Share::folder_exists`].
    pub fn folder_time(&self, name: &str) -> Option<SystemTime> {
        if check_name(name).is_err() || self.is_ignored(name) {
            return None;
        }
        let real = fs::canonicalize(self.root.join(name)).ok()?;
        let rel = visible_below(&self.root, &real)?.to_str()?;
        if rel.is_empty() || self.is_ignored(rel) {
            return None;
        }
        let m = fs::metadata(&real).ok()?;
        m.is_dir()
            .then(|| m.modified().unwrap_or(SystemTime::UNIX_EPOCH))
    }

    /// Makes the folder `name` (and the folders above it that are
    /// missing), by the rules of an upload's name: visible names only,
    /// never outside the share, never through a link that leads out.
    /// `AlreadyExists` when something is under the name already.
    pub fn make_folder(&self, name: &str) -> Result<(), ShareError> {
        check_name(name)?;
        if self.is_ignored(name) {
            return Err(ShareError::NotShared);
        }
        let mut created = Vec::new();
        let made = folder_inside(&self.root, name, &mut created).and_then(|(dir, base)| {
            let path = dir.join(base);
            fs::create_dir(&path)?;
            created.push(path.clone());
            // A link swapped in on the way cannot have led it out.
            let real = fs::canonicalize(&path)?;
            let inside = visible_below(&self.root, &real)
                .and_then(Path::to_str)
                .is_some_and(|r| !self.is_ignored(r));
            if inside {
                Ok(())
            } else {
                Err(ShareError::NotShared)
            }
        });
        if made.is_err() {
            for dir in created.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
        made
    }

    /// Adds the file `name`, just stored, to the index at once, so that
    /// listings show it before the next rescan. The index is copied to do
    /// so (it is shared read-only): a cost in proportion to the files
    /// shared, paid once per upload.
    pub fn index_now(&self, name: &str) {
        let Ok(f) = self.open_file(name) else {
            return;
        };
        // The server stored it, so it can read it; if not, the next
        // rescan leaves it out as it does every unreadable file.
        let Some(mime) = scan::sniff_file(&self.root.join(name), name) else {
            return;
        };
        let mut current = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        if current
            .get(name)
            .is_some_and(|e| e.key == f.key && e.mime == mime)
        {
            return;
        }
        let md5 = self.hashes.extra(&f.key);
        *current = std::sync::Arc::new(current.with(name, f.key, mime, md5));
    }

    /// The size of the partial file kept for `name`, if there is one.
    pub fn partial_size(&self, name: &str) -> Option<u64> {
        let path = self.final_path(name)?;
        let m = fs::symlink_metadata(partial_path(&path)?).ok()?;
        m.is_file().then_some(m.len())
    }

    /// The real path an upload of `name` is placed at, when its folder is
    /// there already (nothing is made).
    fn final_path(&self, name: &str) -> Option<PathBuf> {
        check_name(name).ok()?;
        if self.is_ignored(name) {
            return None;
        }
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        if !self.folder_exists(dir) {
            return None;
        }
        let real = fs::canonicalize(self.root.join(dir)).ok()?;
        Some(real.join(base))
    }

    /// Resumes the upload of `name` from its partial file, which this
    /// upload takes over (see the module's text). With [`ResumeFrom::End`] and
    /// no partial file, a new upload begins. Returns the upload, appending
    /// from the offset returned.
    pub fn resume_upload(
        &self,
        name: &str,
        tag: &str,
        from: ResumeFrom,
    ) -> Result<(Incoming, u64), ShareError> {
        let fresh = || self.begin_upload_beside(name, tag).map(|i| (i, 0));
        let Some(path) = self.final_path(name) else {
            return match from {
                ResumeFrom::End | ResumeFrom::Offset(0) => fresh(),
                ResumeFrom::Offset(_) => Err(no_partial()),
            };
        };
        let partial = partial_path(&path).ok_or(ShareError::NotShared)?;
        let temp = path.with_file_name(format!(
            ".{}.p2pshare-up-{tag}",
            path.file_name()
                .and_then(|b| b.to_str())
                .unwrap_or_default()
        ));
        match fs::symlink_metadata(&partial) {
            Ok(m) if m.is_file() => {}
            _ if matches!(from, ResumeFrom::End | ResumeFrom::Offset(0)) => return fresh(),
            _ => return Err(no_partial()),
        }
        fs::rename(&partial, &temp).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => no_partial(),
            _ => ShareError::Io(e),
        })?;
        self.forget_partial(&partial);
        let mut incoming = Incoming {
            path,
            temp,
            file: None,
            created: Vec::new(),
        };
        let mut file = OpenOptions::new()
            .write(true)
            .custom_flags(sys::O_NOFOLLOW)
            .open(&incoming.temp)?;
        let meta = file.metadata()?;
        if real_path_of(&file, &incoming.temp, &meta).as_ref() != Some(&incoming.temp) {
            // A link swapped in on the way led elsewhere: nothing there is
            // removed through it.
            incoming.temp = PathBuf::new();
            return Err(ShareError::NotShared);
        }
        let offset = match from {
            ResumeFrom::End => meta.len(),
            ResumeFrom::Offset(n) if n <= meta.len() => {
                file.set_len(n)?;
                n
            }
            ResumeFrom::Offset(n) => {
                // Kept for a resume from where it really ends.
                let have = meta.len();
                incoming.file = Some(file);
                let _ = self.keep_partial(incoming);
                return Err(ShareError::Io(io::Error::other(format!(
                    "the partial upload holds {have} bytes, not {n}: resume from {have}"
                ))));
            }
        };
        file.seek(io::SeekFrom::Start(offset))?;
        incoming.file = Some(file);
        Ok((incoming, offset))
    }

    /// Keeps what `incoming` received as the partial file of its name,
    /// for a resume; the oldest partial files go beyond the bounds (see
    /// the module's text). Returns its size.
    pub fn keep_partial(&self, mut incoming: Incoming) -> io::Result<u64> {
        let partial = partial_path(&incoming.path).ok_or_else(|| io::Error::other("no name"))?;
        if let Some(f) = incoming.file.take() {
            f.sync_all()?;
        }
        // Room is made before the new partial file appears, so that there
        // are never more than the bound, not even for a moment.
        let mut kept = self.partials.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|p| p != &partial);
        let now = SystemTime::now();
        kept.retain(|p| {
            let old = fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > PARTIAL_TTL));
            if old {
                let _ = fs::remove_file(p);
            }
            !old
        });
        while kept.len() >= MAX_PARTIALS {
            if let Some(oldest) = kept.pop_front() {
                let _ = fs::remove_file(oldest);
            }
        }
        fs::rename(&incoming.temp, &partial)?;
        incoming.temp = PathBuf::new();
        incoming.created.clear();
        let size = fs::symlink_metadata(&partial).map_or(0, |m| m.len());
        kept.push_back(partial);
        Ok(size)
    }

    /// Removes the partial file of `name` (its upload is whole now).
    pub fn discard_partial(&self, name: &str) {
        if let Some(partial) = self.final_path(name).as_deref().and_then(partial_path) {
            self.forget_partial(&partial);
            let _ = fs::remove_file(partial);
        }
    }

    fn forget_partial(&self, partial: &Path) {
        let mut kept = self.partials.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|p| p != partial);
    }
}

impl Incoming {
    /// The bytes received so far, read from the start.
    pub fn reopen(&self) -> io::Result<fs::File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(sys::O_NOFOLLOW)
            .open(&self.temp)
    }
}

fn no_partial() -> ShareError {
    ShareError::Io(io::Error::new(
        io::ErrorKind::NotFound,
        "no partial upload of this name to resume: send it from the start",
    ))
}
