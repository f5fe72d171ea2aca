//! Opening a shared file without opening anything else: the name alone
//! first (`O_PATH`), then, once that is known to be a regular file inside
//! the share, the file itself through its descriptor.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::sys;

/// Opens the name alone (`O_PATH`): nothing the name leads to is opened.
/// Where `O_PATH` is unknown, a regular file is opened for real, and
/// anything else refused (as not found) before it is opened.
pub(super) fn open_name(path: &Path) -> io::Result<File> {
    if sys::O_PATH == 0 && !std::fs::metadata(path)?.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_PATH | sys::O_NONBLOCK | sys::O_NOCTTY)
        .open(path)
}

/// Opens for reading the regular file an `O_PATH` descriptor names:
/// through its /proc/self/fd link, else through its real path, checked to
/// be the same file. (Without `O_PATH`, `named` is open for reading.)
pub(super) fn reopen(named: File, real: &Path, meta: &Metadata) -> io::Result<File> {
    if sys::O_PATH == 0 {
        return Ok(named);
    }
    if let Ok(f) = open_nonblocking(&sys::fd_link(&named)) {
        return Ok(f);
    }
    let f = open_no_follow(real)?;
    let m = f.metadata()?;
    if m.ino() != meta.ino() || m.dev() != meta.dev() || !m.is_file() {
        return Err(io::Error::other("the file changed while it was opened"));
    }
    Ok(f)
}

/// Whether a failure to open a name means nothing shared is there (so the
/// reply does not tell an outside file from a missing one).
pub(super) fn is_not_shared(e: &io::Error) -> bool {
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
pub(super) fn open_no_follow(path: &Path) -> io::Result<File> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::other("a symbolic link"));
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NOFOLLOW | sys::O_NONBLOCK | sys::O_NOCTTY)
        .open(path)
}

/// Opens for reading without blocking on a FIFO or claiming a terminal.
pub(super) fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(sys::O_NONBLOCK | sys::O_NOCTTY)
        .open(path)
}
