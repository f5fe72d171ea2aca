//! The rules for names in requests, and the checks that keep every path
//! made from one inside the share: a name's form ([`check_name`]), the
//! visible part of a resolved path below the root, the folder a name goes
//! into ([`folder_inside`], for uploads and downloads alike) and the real
//! path of what was opened or made there ([`real_path_inside`]).

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::error::ShareError;
use crate::sys;

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
pub(super) fn visible_below<'a>(root: &Path, real: &'a Path) -> Option<&'a Path> {
    let rel = real.strip_prefix(root).ok()?;
    let odd = rel.components().any(|c| match c {
        Component::Normal(s) => s.to_str().is_none_or(|s| s.starts_with('.')),
        _ => true,
    });
    (!odd).then_some(rel)
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

/// The real path of an open file: from /proc (what the descriptor really
/// is), else by resolving the name again and checking it is still the
/// same inode.
pub(super) fn real_path_of(file: &File, path: &Path, meta: &Metadata) -> Option<PathBuf> {
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
