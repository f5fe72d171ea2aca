//! The local side of a download: the share folder's real path, the folder
//! a file goes into (never through a link out of the share), the hidden
//! partial file that is also the download's lock, and the md5 of what is
//! there already.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::data::{Span, CHUNK};
use crate::share::{folder_inside, hash, ShareError};
use crate::sys::O_NOFOLLOW;

/// The folder a local file for `name` goes into below `root` (the share
/// folder's real path), found or made by [`folder_inside`], so never
/// through a link that leads out of the share; else why not, to follow
/// the name in a message. Its hidden partial file goes beside it (see
/// [`Lock`]).
pub(super) fn local_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    let mut created = Vec::new();
    match folder_inside(root, name, &mut created) {
        Ok((dir, _)) => Ok(dir),
        Err(ShareError::NotShared) => Err(
            "its folder is not a folder inside the share (a link leading outside the share, or a file); not stored"
                .into(),
        ),
        Err(ShareError::Io(e)) => Err(format!("cannot create its folder: {e}")),
        Err(ShareError::Denied) => Err("cannot create its folder: permission denied".into()),
    }
}

/// A local path as it may be shown: it holds a name the peer chose.
pub(super) fn shown_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::names::shown_bytes(p.as_os_str().as_bytes())
}

/// The share folder's real path: what every local path of a download is
/// checked against. The folder itself is made when missing, but not its
/// parents (a typo in `--share` is not a new tree of folders).
pub(super) fn share_root(dest: &Path) -> io::Result<PathBuf> {
    match fs::create_dir(dest) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => fs::canonicalize(dest),
    }
    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shown_path(dest))))
}

/// The md5 of the regular file at `path`, never read through a link (a
/// link at a download's name could otherwise tell the peer whether a file
/// elsewhere holds what it offers).
pub(super) fn local_md5(path: &Path) -> io::Result<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(hash::md5_of_reader(f)?.to_string())
}

/// The partial file being written, hashed as it is written. It never
/// grows past the size the peer announced: a byte more is an error, not
/// a write.
pub(super) struct Sink {
    out: BufWriter<File>,
    md5: hash::Streaming,
    len: u64,
    /// The announced size.
    limit: u64,
}

impl Sink {
    /// Writes to the partial file through a second handle on the lock's
    /// open file (no second open): from the start, or (for a resume) after
    /// its first `offset` bytes, which are hashed so the md5 covers the
    /// whole file; at most the `want` bytes after them.
    pub(super) fn open(part: &File, span: Span, fresh: bool) -> io::Result<Sink> {
        let Span { offset, want } = span;
        let limit = offset
            .checked_add(want)
            .ok_or_else(|| io::Error::other("the announced size is too large"))?;
        let mut md5 = hash::Streaming::new();
        let mut f = part.try_clone()?;
        if fresh {
            // Just made, empty, never written: nothing to set up.
        } else if offset > 0 {
            // The handles share one file position: set it explicitly.
            f.seek(io::SeekFrom::Start(0))?;
            let mut buf = vec![0u8; CHUNK];
            let mut left = offset;
            while left > 0 {
                let n = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
                f.read_exact(&mut buf[..n])?;
                md5.consume(&buf[..n]);
                left -= n as u64;
            }
            f.set_len(offset)?;
        } else {
            f.seek(io::SeekFrom::Start(0))?;
            // Truncated only when it has bytes: on ext4 a truncation, even
            // of an empty file, makes its close flush the data at once
            // (auto_da_alloc), which costs a write to disk per small file.
            if f.metadata()?.len() > 0 {
                f.set_len(0)?;
            }
        }
        Ok(Sink {
            out: BufWriter::with_capacity(CHUNK, f),
            md5,
            len: offset,
            limit,
        })
    }

    /// Flushes and returns the file, its md5 and length.
    pub(super) fn finish(self) -> io::Result<(File, String, u64)> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((file, self.md5.finalize()?.to_string(), self.len))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.limit - self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer sent more than the {} bytes it announced",
                    self.limit
                ),
            ));
        }
        let n = self.out.write(buf)?;
        self.md5.consume(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The lock of one name in one folder, so two downloads of it take turns
/// instead of writing the same partial file. The lock file is the partial
/// file itself (one file made per download, not two), and the lock is the
/// file system's (flock) on it, so the kernel releases it when its process
/// ends in any way: what a killed client leaves is an unlocked partial file
/// that the next run resumes.
pub(super) struct Lock {
    path: PathBuf,
    /// The partial file, open for reading and writing.
    pub(super) file: File,
    /// Made by this lock and not written yet: empty, so a transfer starts
    /// at 0 without asking the file system.
    pub(super) fresh: bool,
    /// Placed under its final name (and its partial name removed): nothing
    /// is left to clean up.
    pub(super) placed: std::cell::Cell<bool>,
}

impl Lock {
    /// Takes the lock of the partial file at `path`, made if missing,
    /// waiting (and telling `note` once) while another download holds it.
    pub(super) fn acquire(path: &Path, note: &mut dyn FnMut(&str)) -> io::Result<Lock> {
        // The usual case: no partial file yet. Made here, nobody else can
        // have it open, so the lock is taken without the checks below.
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => match file.try_lock() {
                Ok(()) => return Ok(Lock::new(path, file, true)),
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    return Ok(Lock::new(path, file, true))
                }
                // Another download opened it in between and holds it now.
                Err(_) => {}
            },
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let mut told = false;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(O_NOFOLLOW)
                .open(path)?;
            match file.try_lock() {
                // The holder before may have removed the file after it was
                // opened here: only a lock on the file still at `path` counts.
                Ok(()) if same_file(&file, path) => return Ok(Lock::new(path, file, false)),
                Ok(()) => continue,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told {
                        note(&format!(
                            "waiting for another download of the same file to finish ({})",
                            shown_path(path)
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // A file system without locks: go ahead unguarded rather
                // than not at all (the final rename still never clobbers).
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    return Ok(Lock::new(path, file, false))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// Is `file` the file at `path` (and not one removed since it was opened)?
pub(super) fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Lock {
    fn new(path: &Path, file: File, fresh: bool) -> Lock {
        Lock {
            path: path.to_path_buf(),
            file,
            fresh,
            placed: std::cell::Cell::new(false),
        }
    }

    /// Bytes already in the partial file: where a transfer resumes.
    pub(super) fn len(&self) -> u64 {
        if self.fresh {
            return 0;
        }
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.placed.get() {
            return;
        }
        // A partial file with bytes in it stays for a later resume; once
        // placed (or removed) the name is no longer this file and is left
        // alone. An empty one is removed, while still locked, so that a
        // waiter that opened it sees it is gone (see `same_file`); the lock
        // goes with the file handle.
        let empty = self.file.metadata().is_ok_and(|m| m.len() == 0);
        if empty && same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_takes_no_byte_past_the_announced_size() {
        let path =
            std::env::temp_dir().join(format!(".p2ps-sink-{}.p2pshare-part", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let _ = fs::remove_file(&path);
        // A resume at 4 of 10 announced bytes: 6 more fit, not 7.
        file.set_len(4).unwrap();
        let span = Span { offset: 4, want: 6 };
        let mut sink = Sink::open(&file, span, false).unwrap();
        sink.write_all(b"abc").unwrap();
        let e = sink.write_all(b"defg").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        sink.write_all(b"def").unwrap();
        assert!(sink.write_all(b"x").is_err());
        let (file, _, len) = sink.finish().unwrap();
        assert_eq!(len, 10);
        assert_eq!(file.metadata().unwrap().len(), 10);
    }
}
