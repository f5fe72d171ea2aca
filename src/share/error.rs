//! Why a share cannot be opened ([`OpenError`]) and why a request for a
//! file in it was refused ([`ShareError`], with the reply that says so).

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::protocol::{FileOp, Reply};

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
