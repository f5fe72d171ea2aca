//! The sync state: for each file, the version both folders held when they
//! last agreed, one file per peer (`sync/<share-id>.tsv` in the client's
//! state folder), so that the state follows the other folder, not its
//! address. Written whole after each run, to a temporary file that is
//! then renamed over the old one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::plan::{Files, Version};
use crate::names::{escape_field, shown, unescape_field};
use crate::share::check_name;

/// The header line of a sync state file.
pub const HEADER: &str = "name\tmd5\tsize\ttimestamp";

/// The sync state file for the peer whose share id is `peer`.
pub fn path(state_dir: &Path, peer: &str) -> PathBuf {
    state_dir.join("sync").join(format!("{peer}.tsv"))
}

/// Reads a sync state file; a missing or empty one is empty (the first
/// sync). Strict: a file that does not read whole (no header, a row that
/// is not four well-formed fields, a name twice) is an error that names
/// the file and the line, and nothing is synced from it.
pub fn load(path: &Path) -> Result<Files, String> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Files::new()),
        Err(e) => {
            return Err(format!(
                "cannot read the sync state {}: {e}",
                path.display()
            ))
        }
    };
    parse(&text).map_err(|(line, why)| {
        format!(
            "the sync state {} does not read at line {line}: {why}; nothing was synced \
             (move the file away to sync from scratch: files that differ become conflicts)",
            path.display()
        )
    })
}

/// The rows of a sync state file's bytes; else the first line (from 1)
/// that does not read, and why.
pub fn parse(bytes: &[u8]) -> Result<Files, (usize, String)> {
    let mut files = Files::new();
    if bytes.is_empty() {
        return Ok(files);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        (line, "not UTF-8".to_string())
    })?;
    let Some(body) = text.strip_suffix('\n') else {
        let line = text.lines().count();
        return Err((
            line,
            "the last line has no line end (a file cut short)".into(),
        ));
    };
    let mut lines = body.split('\n');
    if lines.next() != Some(HEADER) {
        return Err((1, format!("the header is not \"{}\"", shown(HEADER))));
    }
    for (i, line) in lines.enumerate() {
        let (name, version) = row(line).map_err(|why| (i + 2, why))?;
        if files.insert(name, version).is_some() {
            return Err((i + 2, "a name listed twice".into()));
        }
    }
    Ok(files)
}

/// One row: four fields, each escaped as tables escape them (and written
/// so: a field read back and escaped again is the field), the name one
/// that could be shared.
fn row(line: &str) -> Result<(String, Version), String> {
    let f: Vec<&str> = line.split('\t').collect();
    let [name, md5, size, timestamp] = f[..] else {
        return Err(format!("{} fields where there are 4", f.len()));
    };
    let mut read = [""; 4].map(String::from);
    for (slot, field) in read.iter_mut().zip([name, md5, size, timestamp]) {
        *slot = unescape_field(field);
        if escape_field(slot) != field {
            return Err(format!(
                "the field \"{}\" is not escaped as tables are",
                shown(field)
            ));
        }
    }
    let [name, md5, size, timestamp] = read;
    check_name(&name)
        .map_err(|_| format!("\"{}\" is not a name that can be synced", shown(&name)))?;
    Ok((name, Version::parse(&md5, &size, &timestamp)?))
}

/// The text of a sync state file: every field escaped as tables escape
/// them, so that no field can reshape a row.
pub fn format(files: &Files) -> String {
    let mut out = String::with_capacity(64 * (files.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for (name, v) in files {
        let fields = [
            name.clone(),
            v.md5.to_string(),
            v.size.to_string(),
            v.timestamp(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(&escape_field(f));
        }
        out.push('\n');
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
        assert_eq!(parse(text.as_bytes()), Ok(files));
        assert_eq!(parse(b""), Ok(Files::new()));
    }

    #[test]
    fn a_row_that_does_not_read_is_an_error_with_its_line() {
        let md5 = "0cc175b9c0f1b6a831c399e269772661";
        let good = format!("a.txt\t{md5}\t1\t2026-12-01T10:00:00Z");
        let bad = [
            "broken row".to_string(),
            "x\tnot-an-md5\t1\t2026-12-01T10:00:00Z".to_string(),
            format!("x\t{md5}\t-1\t2026-12-01T10:00:00Z"),
            format!("x\t{md5}\t1\t2026-12-01T10:00:00Z\textra"),
            format!("x\t{md5}\t1\tyesterday"),
            format!("x\\q\t{md5}\t1\t2026-12-01T10:00:00Z"),
            format!("../x\t{md5}\t1\t2026-12-01T10:00:00Z"),
            format!(".p2pshare/x\t{md5}\t1\t2026-12-01T10:00:00Z"),
            format!("\t{md5}\t1\t2026-12-01T10:00:00Z"),
            good.clone(),
        ];
        for b in &bad {
            let text = format!("{HEADER}\n{good}\n{b}\n");
            let got = parse(text.as_bytes());
            assert_eq!(got.as_ref().map_err(|e| e.0), Err(3), "{b:?}: {got:?}");
        }
        let no_header = format!("{good}\n");
        assert_eq!(parse(no_header.as_bytes()).map_err(|e| e.0), Err(1));
        let cut = format!("{HEADER}\n{good}");
        assert_eq!(parse(cut.as_bytes()).map_err(|e| e.0), Err(2));
    }
}
