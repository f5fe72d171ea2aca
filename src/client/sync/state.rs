//! The sync state: for each file, the version both folders held when they
//! last agreed, one file per peer (`sync/<share-id>.tsv` in the client's
//! state folder), so that the state follows the other folder, not its
//! address. Written whole after each run, to a temporary file that is
//! then renamed over the old one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::plan::{Files, Version};
use crate::names::{escape_field, unescape_field};

/// The header line of a sync state file.
pub const HEADER: &str = "name\tmd5\tsize\ttimestamp";

/// The sync state file for the peer whose share id is `peer`.
pub fn path(state_dir: &Path, peer: &str) -> PathBuf {
    state_dir.join("sync").join(format!("{peer}.tsv"))
}

/// Reads a sync state file; a missing one is empty (the first sync), and
/// a row that does not read as one (a damaged file) is left out, which
/// costs at worst a conflict where there was none.
pub fn load(path: &Path) -> io::Result<Files> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Files::new()),
        Err(e) => return Err(e),
    };
    Ok(parse(&text))
}

/// The rows of a sync state file's text.
pub fn parse(text: &str) -> Files {
    text.lines()
        .skip_while(|l| *l == HEADER)
        .filter_map(|line| {
            let [name, md5, size, mtime] = line.split('\t').collect::<Vec<_>>()[..] else {
                return None;
            };
            let version = Version::parse(md5, size, mtime).ok()?;
            Some((unescape_field(name), version))
        })
        .collect()
}

/// The text of a sync state file.
pub fn format(files: &Files) -> String {
    let mut out = String::with_capacity(64 * (files.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for (name, v) in files {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            escape_field(name),
            v.md5,
            v.size,
            v.timestamp()
        ));
    }
    out
}

/// Writes `files` to `path` atomically: a hidden temporary file beside it,
/// then renamed over the old one. Not forced to disk: on ext4 an fsync
/// here would also commit the metadata of every file the sync just made,
/// which costs more than the whole sync of many small files; the rename
/// over an existing file flushes its data first (auto_da_alloc), as for
/// `hashes.tsv`.
pub fn save(path: &Path, files: &Files) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    // One temporary name per write, so that two syncs of one process
    // (peer mode's poller and its console) never write the same one.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".sync-state.tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(format(files).as_bytes())
    })();
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_survives_a_round_trip() {
        let v = Version::parse(
            "0cc175b9c0f1b6a831c399e269772661",
            "7",
            "2026-12-01T10:00:00Z",
        )
        .unwrap();
        let names = [
            "plain.txt",
            "tab\there",
            "line\nfeed",
            "cr\r",
            "back\\slash",
            "🦀 *?[].txt",
            "d/e f",
        ];
        let files: Files = names.iter().map(|n| (n.to_string(), v.clone())).collect();
        let text = format(&files);
        assert!(text.starts_with("name\tmd5\tsize\ttimestamp\n"));
        assert_eq!(text.lines().count(), names.len() + 1);
        assert_eq!(parse(&text), files);
        // Damaged rows are left out, the rest stays.
        let damaged = format!("{text}broken row\nx\tnot-an-md5\t1\tt\n");
        assert_eq!(parse(&damaged), files);
    }
}
