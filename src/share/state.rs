//! Where a peer keeps its state (`history.tsv`, `hashes.tsv`): the folder
//! `--state` names, else `<share>/.p2pshare` when the share can be written,
//! else a folder of its own per share under the user's state folder
//! (`$XDG_STATE_HOME/p2pshare/` or `~/.local/state/p2pshare/`), so a
//! read-only share (a mounted disc, a read-only bind mount) can be served.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::OpenError;
use crate::sys;

/// The name of the state folder inside the share (hidden, so never shared).
pub const STATE_DIR: &str = ".p2pshare";

/// What decides where the state goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChoice {
    /// `--state DIR`: used as it is, created (with its parents) if missing.
    pub dir: Option<PathBuf>,
    /// The user's state folder for p2pshare, where a share that cannot
    /// hold its own state gets a folder; None when the environment names
    /// none (no `XDG_STATE_HOME`, no `HOME`).
    pub fallback_base: Option<PathBuf>,
}

/// The state folder chosen for a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub path: PathBuf,
    /// Set when the folder is not the one inside the share although no
    /// `--state` was given: says why and where, for stderr.
    pub note: Option<String>,
}

/// Chooses and creates the state folder of the share at `root`
/// (canonical), checking that it can be written. For a server, which
/// writes its md5 cache and history from the start.
pub fn open(root: &Path, choice: &StateChoice) -> Result<StateDir, OpenError> {
    if let Some(dir) = &choice.dir {
        let path = make_dir(dir).map_err(|error| OpenError::State {
            dir: dir.clone(),
            error,
        })?;
        if path == root {
            return Err(OpenError::StateIsShare(dir.clone()));
        }
        return Ok(StateDir { path, note: None });
    }
    let default = root.join(STATE_DIR);
    let why = match make_dir(&default) {
        Ok(path) => return Ok(StateDir { path, note: None }),
        Err(e) => e,
    };
    let Some(base) = &choice.fallback_base else {
        return Err(OpenError::NoState {
            tried: default,
            error: why,
        });
    };
    let dir = base.join(key(root));
    let path = make_dir(&dir).map_err(|error| OpenError::State { dir, error })?;
    Ok(StateDir {
        note: Some(elsewhere_note(&default, &why, &path)),
        path,
    })
}

/// Chooses the state folder of a client's share without creating
/// anything: the history creates it with its first row. The same choice
/// as [`open`]: the share's own folder unless that cannot be written.
pub fn plan(share: &Path, choice: &StateChoice) -> StateDir {
    if let Some(dir) = &choice.dir {
        return StateDir {
            path: dir.clone(),
            note: None,
        };
    }
    let default = share.join(STATE_DIR);
    // The nearest folder that is there already says whether the state
    // folder can be made: itself, else the share, else the share's parent.
    let parent = match share.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let probed = [default.as_path(), share, parent]
        .into_iter()
        .find(|p| p.is_dir())
        .map(probe_writable);
    let why = match probed {
        Some(Err(e)) => e,
        _ => {
            return StateDir {
                path: default,
                note: None,
            }
        }
    };
    let Some(base) = &choice.fallback_base else {
        // The first history row says that it cannot be written.
        return StateDir {
            path: default,
            note: None,
        };
    };
    let canonical = fs::canonicalize(share).unwrap_or_else(|_| share.to_path_buf());
    let path = base.join(key(&canonical));
    StateDir {
        note: Some(elsewhere_note(&default, &why, &path)),
        path,
    }
}

fn elsewhere_note(default: &Path, why: &io::Error, path: &Path) -> String {
    format!(
        "cannot keep state in {} ({why}); keeping it in {} (choose with --state DIR)",
        default.display(),
        path.display()
    )
}

/// Creates `dir` (and its parents) if missing and checks that files can
/// be made in it; returns its canonical path.
fn make_dir(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = fs::canonicalize(dir)?;
    probe_writable(&path)?;
    Ok(path)
}

/// Whether files can be created in the folder `dir`, found out without
/// leaving anything behind: an unnamed file (`O_TMPFILE`), gone when it
/// is closed. A refusal (read-only file system, no permission) is the
/// error; where the system cannot tell (no `O_TMPFILE` there), `Ok`: the
/// first real write then says.
pub fn probe_writable(dir: &Path) -> io::Result<()> {
    let Some(flags) = sys::O_TMPFILE else {
        return Ok(());
    };
    match OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .mode(0o600)
        .open(dir)
    {
        Ok(_) => Ok(()),
        // EPERM, EACCES, EROFS: refused. Anything else (EOPNOTSUPP,
        // EISDIR from a kernel without O_TMPFILE) cannot tell.
        Err(e)
            if e.raw_os_error()
                .is_some_and(|n| [sys::EPERM, sys::EACCES, sys::EROFS].contains(&n)) =>
        {
            Err(e)
        }
        Err(_) => Ok(()),
    }
}

/// The file in the state folder that holds the share id.
pub const SHARE_ID_FILE: &str = "share-id";

/// The share's id: 128 random bits as 32 lowercase hex digits, made once
/// and kept in `share-id` in the state folder `dir`, so that a client's
/// sync state follows the folder whatever address or port serves it. A
/// file that does not hold such an id is replaced by a new one.
pub fn share_id(dir: &Path) -> io::Result<String> {
    let path = dir.join(SHARE_ID_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        let id = text.trim();
        if is_share_id(id) {
            return Ok(id.to_string());
        }
    }
    let id = new_share_id()?;
    let tmp = dir.join(format!(".{SHARE_ID_FILE}.tmp-{}", std::process::id()));
    fs::write(&tmp, format!("{id}\n"))?;
    fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Is `s` a share id: exactly 32 lowercase hex digits?
pub fn is_share_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 128 bits from the OS's random source, as hex.
fn new_share_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    crate::sys::random_bytes(&mut bytes)?;
    Ok(crate::digest::hex(&bytes))
}

/// The name of a share's folder under the fallback base: the share's own
/// name (what a person looks for) and a digest of its canonical path
/// (what keeps two shares of one name apart).
pub fn key(root: &Path) -> String {
    let name: String = root
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(40)
                .collect()
        })
        .unwrap_or_default();
    let name = name.trim_start_matches('.');
    let name = if name.is_empty() { "root" } else { name };
    let digest = format!("{:x}", md5::compute(root.as_os_str().as_bytes()));
    format!("{name}-{}", &digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_share_and_keep_shares_of_one_name_apart() {
        let a = key(Path::new("/media/disc/photos"));
        let b = key(Path::new("/srv/photos"));
        assert!(
            a.starts_with("photos-") && b.starts_with("photos-"),
            "{a} {b}"
        );
        assert_ne!(a, b);
        assert_eq!(a, key(Path::new("/media/disc/photos")));
        assert_eq!(a.len(), "photos-".len() + 16);
        // Odd bytes become `_`; a leading dot would hide the folder.
        assert!(key(Path::new("/x/.my share\t*")).starts_with("my_share__-"));
        assert!(key(Path::new("/")).starts_with("root-"));
    }

    #[test]
    fn the_share_id_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("p2pshare-id-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let id = share_id(&dir).unwrap();
        assert!(is_share_id(&id), "{id}");
        assert_eq!(share_id(&dir).unwrap(), id);
        fs::write(dir.join(SHARE_ID_FILE), "garbage").unwrap();
        let new = share_id(&dir).unwrap();
        assert!(is_share_id(&new) && new != id);
        assert!(!is_share_id("ABCDEF0123456789abcdef0123456789"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_writable_folder_probes_writable_and_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("p2pshare-probe-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(probe_writable(&dir).is_ok());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
