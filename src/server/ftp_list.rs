//! FTP paths and listings: a path typed after CWD, LIST, RETR, ... turned
//! into a share name by the native rules, and the rows of LIST, NLST, MLSD
//! and MLST made from the share's index (folders are what the files below
//! them make).

use std::time::SystemTime;

use crate::protocol::ftp_reply::{listable, Entry};
use crate::share::index::Index;

/// The share name (`""` for the top) that `arg` names from the current
/// folder `cwd`: `/` starts at the top of the share, `.` and empty
/// components are skipped. None for anything the native rules refuse: a
/// `..` (traversal, in any spelling), a hidden component, a NUL.
pub(super) fn resolve(cwd: &str, arg: &str) -> Option<String> {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|c| !c.is_empty()).collect()
    };
    for comp in arg.split('/') {
        match comp {
            "" | "." => {}
            c if c.starts_with('.') || c.contains('\0') => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// The folder above `dir` (the top stays the top).
pub(super) fn parent(dir: &str) -> &str {
    dir.rsplit_once('/').map_or("", |(p, _)| p)
}

/// `/` and the folder: how PWD and MLST write a share name.
pub(super) fn absolute(name: &str) -> String {
    format!("/{name}")
}

/// True when `dir` is the top or a folder holding at least one shared
/// file.
pub(super) fn is_folder(snap: &Index, dir: &str) -> bool {
    dir.is_empty() || below(snap, dir).next().is_some()
}

/// The index entries below the folder `dir` (not the top), in name order:
/// the names that start with `dir/`, one run of the sorted index.
fn below<'s>(
    snap: &'s Index,
    dir: &str,
) -> impl Iterator<Item = (&'s str, crate::share::index::Entry)> {
    snap.starting_with(&format!("{dir}/"))
}

/// What a folder holds, one entry per file or folder directly in it, in
/// name order. A folder's time is the latest of the files below it. Names
/// FTP cannot carry on a line are left out ([`listable`]).
pub(super) fn entries<'s>(snap: &'s Index, dir: &str) -> Vec<Entry<'s>> {
    let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
    let all: Box<dyn Iterator<Item = _>> = if dir.is_empty() {
        Box::new(snap.all())
    } else {
        Box::new(below(snap, dir))
    };
    let mut out: Vec<Entry<'s>> = Vec::new();
    for (name, e) in all {
        let rest = &name[skip..];
        let (child, dir) = match rest.split_once('/') {
            Some((folder, _)) => (folder, true),
            None => (rest, false),
        };
        if !listable(child) {
            continue;
        }
        match out.last_mut() {
            // The files of one folder are one run of the sorted index.
            Some(last) if dir && last.dir && last.name == child => {
                last.mtime = last.mtime.max(e.mtime);
            }
            _ => out.push(Entry {
                name: child,
                dir,
                size: if dir { 0 } else { e.size },
                mtime: e.mtime,
            }),
        }
    }
    out
}

/// The entry a share name is: a file of the index, or a folder. None when
/// it is neither. Its name is the last component, borrowed from the index.
pub(super) fn entry<'s>(snap: &'s Index, name: &str) -> Option<Entry<'s>> {
    let base = |full: &'s str| full.rsplit('/').next().unwrap_or(full);
    if let Some(i) = snap.find(name) {
        let e = snap.entry(i);
        return Some(Entry {
            name: base(snap.name(i)),
            dir: false,
            size: e.size,
            mtime: e.mtime,
        });
    }
    if name.is_empty() {
        let mtime = snap.all().map(|(_, e)| e.mtime).max();
        return Some(Entry {
            name: "/",
            dir: true,
            size: 0,
            mtime: mtime.unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    let mut files = below(snap, name).peekable();
    let (first, _) = files.peek()?;
    let folder = base(&first[..name.len()]);
    let mtime = files.map(|(_, e)| e.mtime).max();
    Some(Entry {
        name: folder,
        dir: true,
        size: 0,
        mtime: mtime.unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// The rows a LIST, NLST or MLSD of `name` gives: the folder's entries,
/// or the file alone (LIST and NLST only). None when `name` is neither.
pub(super) fn rows<'s>(snap: &'s Index, name: &str, files_too: bool) -> Option<Vec<Entry<'s>>> {
    if is_folder(snap, name) {
        return Some(entries(snap, name));
    }
    match entry(snap, name) {
        Some(e) if files_too && listable(e.name) => Some(vec![e]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_share_only() {
        assert_eq!(resolve("", "a.txt").as_deref(), Some("a.txt"));
        assert_eq!(resolve("docs", "a b.txt").as_deref(), Some("docs/a b.txt"));
        assert_eq!(resolve("docs", "/x/./y").as_deref(), Some("x/y"));
        assert_eq!(resolve("docs", "//x//").as_deref(), Some("x"));
        assert_eq!(resolve("docs", "/").as_deref(), Some(""));
        assert_eq!(resolve("docs", ".").as_deref(), Some("docs"));
        for bad in [
            "..",
            "../x",
            "a/../b",
            "/..",
            "..\\x",
            ".hidden",
            "a/.p2pshare/h",
            "a\0b",
        ] {
            assert_eq!(resolve("docs", bad), None, "{bad:?}");
        }
        assert_eq!(parent("a/b"), "a");
        assert_eq!(parent("a"), "");
        assert_eq!(parent(""), "");
        assert_eq!(absolute("a/b"), "/a/b");
    }
}
