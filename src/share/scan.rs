//! Walking the shared folder into an [`Index`], and the rescan thread that
//! does it on a timer and hashes what is new.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use super::index::{Entry, Index};
use super::{hidden_or_odd, mime, open_nonblocking, FileKey, Ignore, Share};
use crate::stop::Stop;

/// What one scan found different from the one before.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Walks `root` (canonical) and returns the index of what it shares: regular
/// files below it, hidden and ignored names left out, links followed only where their
/// target lies inside the share. Entries whose size, mtime and inode match
/// `old` keep their type without being read again.
pub fn walk(root: &Path, old: &Index, ignore: &Ignore) -> Index {
    let mut index = Index::default();
    let mut seen_dirs = HashSet::new();
    if let Ok(m) = fs::metadata(root) {
        seen_dirs.insert((m.dev(), m.ino()));
    }
    // An explicit stack: a deep tree cannot overflow the thread's stack.
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    // Folders reached through a symlink wait until every real folder has
    // been walked, so a folder is listed under its real name and an alias
    // of it is skipped, whatever order read_dir gives.
    let mut linked: Vec<(PathBuf, String, (u64, u64))> = Vec::new();
    loop {
        let (dir, rel) = match stack.pop() {
            Some(next) => next,
            None => match linked.pop() {
                Some((path, rel, id)) if seen_dirs.insert(id) => (path, rel),
                Some(_) => continue,
                None => break,
            },
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue; // not UTF-8: cannot be named on the wire
            };
            if name.starts_with('.') {
                continue;
            }
            let rel_name = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let meta = if file_type.is_symlink() {
                let Ok(target) = fs::canonicalize(&path) else {
                    continue;
                };
                match target.strip_prefix(root) {
                    Ok(r) if !hidden_or_odd(r) => {}
                    _ => continue,
                }
                match fs::metadata(&target) {
                    Ok(m) => m,
                    Err(_) => continue,
                }
            } else {
                match entry.metadata() {
                    Ok(m) => m,
                    Err(_) => continue,
                }
            };
            if ignore.matches_entry(&rel_name, meta.is_dir()) {
                continue;
            }
            if meta.is_dir() {
                if file_type.is_symlink() {
                    linked.push((path, rel_name, (meta.dev(), meta.ino())));
                } else if seen_dirs.insert((meta.dev(), meta.ino())) {
                    stack.push((path, rel_name));
                }
            } else if meta.is_file() {
                let key = FileKey::of(&meta);
                let mime = match old.get(&rel_name) {
                    Some(e) if e.key == key => e.mime,
                    _ => sniff_file(&path, &rel_name),
                };
                index.files.insert(
                    rel_name,
                    Entry {
                        size: key.size,
                        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        key,
                        mime,
                    },
                );
            }
        }
    }
    index
}

fn sniff_file(path: &Path, name: &str) -> &'static str {
    let mut head = Vec::with_capacity(mime::SNIFF_LEN);
    if let Ok(f) = open_nonblocking(path) {
        let _ = f.take(mime::SNIFF_LEN as u64).read_to_end(&mut head);
    }
    mime::sniff(&head, name)
}

/// The files added, changed (size, mtime or inode) and removed from `old`
/// to `new`.
pub fn diff(old: &Index, new: &Index) -> Changes {
    let mut c = Changes::default();
    for (name, e) in new.all() {
        match old.get(name) {
            None => c.added.push(name.clone()),
            Some(o) if o.key != e.key => c.changed.push(name.clone()),
            Some(_) => {}
        }
    }
    for (name, _) in old.all() {
        if new.get(name).is_none() {
            c.removed.push(name.clone());
        }
    }
    c
}

/// Starts the rescan thread: it hashes what the first scan found, then
/// every `interval` rescans and hashes what is new or changed, until `stop`.
pub fn spawn(
    share: Arc<Share>,
    interval: Duration,
    stop: Stop,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("p2pshare-rescan".into())
        .spawn(move || loop {
            share.hash_pending(&|| stop.is_set());
            if stop.wait(interval) {
                break;
            }
            share.rescan();
        })
}
