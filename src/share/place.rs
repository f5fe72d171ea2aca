//! Placement: how every file that arrives gets its final name, on the
//! server (a native `FileUpload`, an FTP `STOR`) and on the client (a
//! download), by one function, [`place`].
//!
//! A file arrives whole under a hidden temporary name beside its final
//! one and is verified there. It then takes its name in one step that
//! fails when the name is taken, so that it never lands over a file that
//! is there, whoever made that file and whenever:
//!
//! - a hard link of the temporary file to the final name (link(2) never
//!   replaces anything), after which the temporary name is removed;
//! - where the file system refuses hard links (vfat and exFAT, some
//!   network and FUSE file systems), a placeholder claims the name: an
//!   empty file made under it with create-new (`O_CREAT | O_EXCL`, which
//!   every file system does in one step, also where it has no hard
//!   links). The temporary file is then renamed over the placeholder,
//!   and only while the name still holds that very placeholder, still
//!   empty.
//!
//! Either way the name is claimed by a step that fails when it is taken,
//! never by a look followed by a rename: two placements of one name, or a
//! placement and another program that creates the file with create-new,
//! never both win, and the loser is told. With a placeholder, what is
//! left is the instant between its last look and the rename, in which
//! only a program that writes into (or renames over) an existing file
//! could still be replaced: such a program replaces whatever it finds
//! anyway. For that instant, an empty file shows under the name.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::hash::{self, Md5};
use super::opening::open_no_follow;
use crate::sys;

/// Where a file that arrived ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Under its name (and whatever was there, where that was asked for,
    /// is replaced).
    Stored,
    /// A file with the same content was already there: kept as it was.
    Same,
    /// Something else is under the name: nothing was changed.
    Exists,
}

/// What may be under the name already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Nothing: a file there stays, and the new one is not stored.
    New,
    /// A regular file with this md5 (the version both sides agreed on),
    /// which is replaced; anything else stays, as with [`Mode::New`].
    ReplaceIf(&'a Md5),
    /// Anything: replaced, as the user asked (`--overwrite`).
    Replace,
}

/// Gives the complete, verified file at `temp` (whose content has the md5
/// `md5`) the name `path` in the same folder, as `mode` allows (see the
/// module's text). On every `Ok` the name `temp` is gone: the file is
/// under `path`, or it was not needed or not allowed there and is
/// removed. On an error, `temp` is left to the caller.
pub fn place(temp: &Path, path: &Path, md5: &Md5, mode: Mode) -> io::Result<Placed> {
    if mode == Mode::Replace {
        fs::rename(temp, path)?;
        return Ok(Placed::Stored);
    }
    let claimed = match fs::hard_link(temp, path) {
        Ok(()) => {
            let _ = fs::remove_file(temp);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        // No hard links on this file system (vfat answers EPERM, others
        // EOPNOTSUPP). Any other failure is reported as it is: a missing
        // temporary file, say, means a folder on the way was swapped, and
        // a placeholder made then could land wherever the swap points.
        Err(e) if links_unsupported(&e) => claim_by_placeholder(temp, path)?,
        Err(e) => return Err(e),
    };
    if claimed {
        return Ok(Placed::Stored);
    }
    taken(temp, path, md5, mode)
}

/// Whether a failed hard link says the file system has none.
fn links_unsupported(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
    )
}

/// [`place`] as it goes without hard links, with [`Mode::New`]: an empty
/// placeholder made with create-new claims the name, and `temp` is
/// renamed over it only while it is still that placeholder, still empty.
/// Public for the tests of this way on file systems that do have hard
/// links.
pub fn place_by_placeholder(temp: &Path, path: &Path, md5: &Md5) -> io::Result<Placed> {
    if claim_by_placeholder(temp, path)? {
        return Ok(Placed::Stored);
    }
    taken(temp, path, md5, Mode::New)
}

/// The name `path` is taken: `Same` when it holds a regular file with
/// the md5 `md5`; `Stored` when `mode` lets `temp` replace what is there,
/// and it did; else `Exists`. `temp` is gone afterwards.
fn taken(temp: &Path, path: &Path, md5: &Md5, mode: Mode) -> io::Result<Placed> {
    if has_md5(path, md5) {
        let _ = fs::remove_file(temp);
        return Ok(Placed::Same);
    }
    if let Mode::ReplaceIf(agreed) = mode {
        // The agreed version is replaced on purpose: the caller decided
        // so, and this look at its md5 is that decision.
        if has_md5(path, agreed) {
            fs::rename(temp, path)?;
            return Ok(Placed::Stored);
        }
    }
    let _ = fs::remove_file(temp);
    Ok(Placed::Exists)
}

/// Whether `path` is a regular file whose content has the md5 `md5`.
/// Never read through a link, which could confirm the content of a file
/// outside the share.
fn has_md5(path: &Path, md5: &Md5) -> bool {
    open_no_follow(path)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                hash::md5_of_reader(f)
            } else {
                Err(io::Error::other("not a regular file"))
            }
        })
        .is_ok_and(|d| d == *md5)
}

/// Claims `path` for `temp` without a hard link: true when `temp` is
/// under the name now, false when the name is another's.
fn claim_by_placeholder(temp: &Path, path: &Path) -> io::Result<bool> {
    let holder = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(sys::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    let ours = holder.metadata()?;
    drop(holder);
    // Another program may have written into the placeholder, or put its
    // own file under the name, since it was made: then the name is its.
    let still_ours = || {
        fs::symlink_metadata(path)
            .is_ok_and(|m| m.dev() == ours.dev() && m.ino() == ours.ino() && m.len() == 0)
    };
    if !still_ours() {
        return Ok(false);
    }
    if let Err(e) = fs::rename(temp, path) {
        if still_ours() {
            let _ = fs::remove_file(path);
        }
        return Err(e);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::{Arc, Barrier};

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("p2ps-place-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn md5(b: &[u8]) -> Md5 {
        hash::md5_of_reader(b).unwrap()
    }

    /// `n` threads place files of their own content under one name at
    /// the same moment, each with `how`: exactly one is stored, every
    /// other is told the name is taken, and the file there is the one
    /// stored, whole.
    fn race(tag: &str, how: fn(&Path, &Path, &Md5) -> io::Result<Placed>) {
        let dir = Dir::new(tag);
        let n = 16;
        let gate = Arc::new(Barrier::new(n));
        let path = dir.0.join("same name \t*?.txt");
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (gate, path) = (gate.clone(), path.clone());
                let temp = dir.0.join(format!(".same.p2pshare-up-{i}"));
                let content = format!("version {i}\n").repeat(1000 + i);
                fs::write(&temp, &content).unwrap();
                std::thread::spawn(move || {
                    gate.wait();
                    let placed = how(&temp, &path, &md5(content.as_bytes())).unwrap();
                    assert!(!temp.exists(), "the temporary file is gone");
                    (placed, content)
                })
            })
            .collect();
        let threads: Vec<_> = handles.into_iter().map(|t| t.join().unwrap()).collect();
        let stored: Vec<_> = threads
            .iter()
            .filter(|(p, _)| *p == Placed::Stored)
            .collect();
        assert_eq!(
            stored.len(),
            1,
            "{:?}",
            threads.iter().map(|t| t.0).collect::<Vec<_>>()
        );
        let exists = threads.iter().filter(|(p, _)| *p == Placed::Exists).count();
        assert_eq!(exists, n - 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), stored[0].1);
        let left: Vec<_> = fs::read_dir(&dir.0).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    fn new_only(temp: &Path, path: &Path, md5: &Md5) -> io::Result<Placed> {
        place(temp, path, md5, Mode::New)
    }

    #[test]
    fn concurrent_placements_of_one_name_store_exactly_one() {
        race("race-link", new_only);
    }

    #[test]
    fn concurrent_placements_by_placeholder_store_exactly_one() {
        race("race-holder", place_by_placeholder);
    }
}
