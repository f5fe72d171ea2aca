//! The request history: an append-only TSV file in the state folder, one
//! row per request either received (`in`) or made (`out`) by this peer.
//!
//! The file is bounded on disk: an append that would take it past
//! [`MAX_FILE`] first renames it to `history.tsv.1` (replacing the older
//! one), so the history holds at most two files. [`History::rows`] reads
//! the last rows across that boundary, once, in time linear in what it
//! reads and memory that does not grow with it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::protocol::{escape_field, unescape_field, HistoryFilter, Reply, HISTORY_MAX};
use crate::timefmt;

/// The longest request text kept in a row, in characters.
pub const MAX_REQUEST: usize = 512;

/// The size at which the history file is rotated: 16 MiB.
pub const MAX_FILE: u64 = 16 << 20;

/// A line of the file longer than this is damaged (rows are at most about
/// 2.2 KiB): it is skipped when read, without being held whole.
const MAX_ROW: usize = 16 * 1024;

/// How much of the file is read at once, backwards and forwards.
const CHUNK: usize = 64 * 1024;

/// Which way a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received by this peer's server.
    In,
    /// Made by this peer's client.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Why the history could not be read.
#[derive(Debug)]
pub struct ReadError(pub io::Error);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ReadError {}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError(e)
    }
}

impl ReadError {
    /// The 451 of a `History` that could not be read.
    pub fn reply(&self) -> Reply<'static> {
        Reply::history_unreadable(&self.0)
    }
}

/// The history file of one share.
pub struct History {
    path: PathBuf,
    /// `history.tsv.1`: the file before the last rotation.
    old_path: PathBuf,
    max_file: u64,
    /// The file opened for appending, kept open between rows (one write
    /// per row instead of an open, a write and a close).
    file: Mutex<Option<Appending>>,
    /// Set once a failure to open the file was reported.
    warned: AtomicBool,
}

/// The file rows are appended to, and which file it is.
struct Appending {
    file: File,
    dev: u64,
    ino: u64,
}

impl History {
    /// The history kept at `path` (created on the first append).
    pub fn at(path: &Path) -> History {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        History {
            path: path.to_path_buf(),
            old_path: PathBuf::from(old),
            max_file: MAX_FILE,
            file: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// The history file of a shared folder.
    pub fn of_share(state_dir: &Path) -> History {
        History::at(&state_dir.join("history.tsv"))
    }

    /// The same history, rotated at `bytes` instead of [`MAX_FILE`].
    pub fn with_max_file(mut self, bytes: u64) -> History {
        self.max_file = bytes.max(1);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the rows before the last rotation are (`history.tsv.1`).
    pub fn old_path(&self) -> &Path {
        &self.old_path
    }

    /// Appends one row, whole or not at all (see `append_whole`). The
    /// row is written with a single write to a file opened for appending
    /// (and locked), so rows from several processes never mix.
    pub fn append(
        &self,
        direction: Direction,
        peer: &str,
        request: &str,
        reply: u16,
    ) -> io::Result<()> {
        let request: String = request.chars().take(MAX_REQUEST).collect();
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\n",
            timefmt::format(SystemTime::now()),
            direction.as_str(),
            escape_field(peer),
            escape_field(&request),
            reply
        );
        let mut held = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // The file under the name now: a file removed or rotated meanwhile
        // (by this process or another) is left for the new one, so rows
        // never go to a file nobody reads.
        let now = fs::metadata(&self.path).ok();
        let ours = match (&*held, &now) {
            (Some(a), Some(m)) => a.dev == m.dev() && a.ino == m.ino(),
            _ => false,
        };
        if !ours {
            *held = None;
        }
        if let Some(m) = &now {
            if ours && m.len() > 0 && m.len() + line.len() as u64 > self.max_file {
                *held = None;
                // Another process may have rotated it first: then the name
                // is already the new file, and that is where the row goes.
                let _ = fs::rename(&self.path, &self.old_path);
            }
        }
        let f = match held.as_mut() {
            Some(a) => &mut a.file,
            None => {
                let file = self.open_for_append()?;
                let m = file.metadata()?;
                &mut held
                    .insert(Appending {
                        file,
                        dev: m.dev(),
                        ino: m.ino(),
                    })
                    .file
            }
        };
        let written = append_whole(f, line.as_bytes());
        if written.is_err() {
            *held = None;
        }
        written
    }

    /// Opens the file for appending. Its folder is made with the first
    /// row, so a client that never records anything leaves nothing
    /// behind. The first failure is reported on stderr, once: the caller
    /// goes on without a history.
    fn open_for_append(&self) -> io::Result<File> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        };
        let opened = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self
                .path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| open()),
            other => other,
        };
        if let Err(e) = &opened {
            if !self.warned.swap(true, Ordering::Relaxed) {
                // Never a panic where stderr cannot take it.
                let _ = writeln!(
                    io::stderr().lock(),
                    "p2pshare: warning: cannot write the history {}: {e}; going on without it \
                     (--state DIR keeps it elsewhere)",
                    self.path.display()
                );
            }
        }
        opened
    }

    /// The last `n` rows (at most [`HISTORY_MAX`]), oldest first, each as
    /// its five fields, as an iterator that reads them as it goes: the
    /// memory it holds does not grow with `n`. Rows the file holds that do
    /// not have five fields are skipped (they count towards `n`). Reads the
    /// file from its end, so the cost follows `n`, not the length of the
    /// history; reads the file before the last rotation too when the
    /// current one has fewer than `n` rows.
    pub fn rows(&self, n: usize) -> Result<Rows, ReadError> {
        let n = n.min(HISTORY_MAX);
        let mut segments = Vec::new();
        if n == 0 {
            return Ok(Rows::new(segments));
        }
        // The current file first: should it be rotated between the two
        // opens, the old name then holds the same file, which is skipped.
        let current = open_if_there(&self.path)?;
        let mut want = n;
        let mut current_id = None;
        if let Some(f) = current {
            let m = f.metadata()?;
            current_id = Some((m.dev(), m.ino()));
            let (segment, found) = tail(f, m.len(), want)?;
            want -= found;
            segments.push(segment);
        }
        if want > 0 {
            if let Some(f) = open_if_there(&self.old_path)? {
                let m = f.metadata()?;
                if current_id != Some((m.dev(), m.ino())) {
                    let (segment, _) = tail(f, m.len(), want)?;
                    segments.insert(0, segment);
                }
            }
        }
        Ok(Rows::new(segments))
    }

    /// The last `n` rows (at most [`HISTORY_MAX`]) that `filter` keeps,
    /// oldest first, as an iterator that reads them as it goes. Reads the
    /// whole history (both files, at most twice the rotation size) twice,
    /// once to count the rows kept and once to hand on the last `n`, and
    /// holds one row at a time.
    pub fn matching(
        &self,
        n: usize,
        filter: &HistoryFilter,
    ) -> Result<impl Iterator<Item = Vec<String>> + 'static, ReadError> {
        let n = n.min(HISTORY_MAX);
        let mut segments = Vec::new();
        let current = open_if_there(&self.path)?;
        let current_id = match &current {
            Some(f) => {
                let m = f.metadata()?;
                Some((m.dev(), m.ino()))
            }
            None => None,
        };
        if let Some(f) = open_if_there(&self.old_path)? {
            let m = f.metadata()?;
            if current_id != Some((m.dev(), m.ino())) {
                let end = m.len();
                segments.push(Segment {
                    file: f,
                    start: 0,
                    end,
                });
            }
        }
        if let Some(f) = current {
            let end = f.metadata()?.len();
            segments.push(Segment {
                file: f,
                start: 0,
                end,
            });
        }
        // The second pass reads the same open files, whatever was renamed
        // or appended meanwhile (up to the lengths seen now).
        let again = segments
            .iter()
            .map(|s| {
                Ok(Segment {
                    file: s.file.try_clone()?,
                    start: s.start,
                    end: s.end,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let kept = Rows::new(segments).filter(|r| filter.keeps(&r[3])).count();
        let filter = filter.clone();
        Ok(Rows::new(again)
            .filter(move |r| filter.keeps(&r[3]))
            .skip(kept.saturating_sub(n)))
    }

    /// The last `n` rows, as [`History::rows`], collected.
    pub fn last(&self, n: usize) -> Result<Vec<Vec<String>>, ReadError> {
        Ok(self.rows(n)?.collect())
    }
}

/// Appends `row` whole or not at all: a write cut short (a full disk, a
/// file size limit) is taken back by cutting the file to where the row
/// began, so the file only ever holds whole rows. The file is locked for
/// it, so that another process's row is never written after the part nor
/// cut with it; where locks are not supported, the part is cut only when
/// nothing was written after it.
fn append_whole(f: &mut File, row: &[u8]) -> io::Result<()> {
    let locked = f.lock().is_ok();
    let start = f.metadata()?.len();
    let mut done = 0;
    let written = loop {
        match f.write(&row[done..]) {
            Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) if done + n == row.len() => break Ok(()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if written.is_err() && done > 0 {
        let end = f.metadata().map(|m| m.len());
        if end.is_ok_and(|end| end == start + done as u64) {
            let _ = f.set_len(start);
        }
    }
    if locked {
        let _ = f.unlock();
    }
    written
}

fn open_if_there(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A part of one file to read rows from: bytes `start..end`.
struct Segment {
    file: File,
    start: u64,
    end: u64,
}

/// Finds where the last `want` lines of the first `len` bytes of `f`
/// start, reading backwards a chunk at a time and counting line ends as
/// it goes (each byte is looked at once). Returns the segment holding
/// them and how many lines it holds (fewer than `want` when the file
/// holds fewer).
fn tail(mut f: File, len: u64, want: usize) -> io::Result<(Segment, usize)> {
    let mut buf = vec![0u8; CHUNK];
    // The line end of the last line is not the start of a line.
    let mut pos = len;
    if len > 0 {
        f.seek(SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] == b'\n' {
            pos -= 1;
        }
    }
    let mut found = 0usize;
    let mut start = 0u64;
    'scan: while pos > 0 {
        let step = (CHUNK as u64).min(pos);
        pos -= step;
        let chunk = &mut buf[..step as usize];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(chunk)?;
        for (i, &b) in chunk.iter().enumerate().rev() {
            if b == b'\n' {
                found += 1;
                if found == want {
                    start = pos + i as u64 + 1;
                    break 'scan;
                }
            }
        }
    }
    // Without `want` line ends, the file's first line is one more.
    let lines = if found == want {
        found
    } else if len > 0 {
        found + 1
    } else {
        0
    };
    Ok((
        Segment {
            file: f,
            start,
            end: len,
        },
        lines.min(want),
    ))
}

/// The rows of [`History::rows`], read as they are taken.
pub struct Rows {
    segments: std::vec::IntoIter<Segment>,
    reader: Option<io::Take<BufReader<File>>>,
    line: Vec<u8>,
}

impl Rows {
    fn new(segments: Vec<Segment>) -> Rows {
        Rows {
            segments: segments.into_iter(),
            reader: None,
            line: Vec::new(),
        }
    }

    /// The next line of the segments, None at their end (or on an error:
    /// the rows end there). A line longer than [`MAX_ROW`] comes back
    /// empty.
    fn next_line(&mut self) -> Option<()> {
        loop {
            if self.reader.is_none() {
                let mut s = self.segments.next()?;
                s.file.seek(SeekFrom::Start(s.start)).ok()?;
                let r = BufReader::with_capacity(CHUNK, s.file).take(s.end - s.start);
                self.reader = Some(r);
            }
            let r = self.reader.as_mut()?;
            self.line.clear();
            let mut too_long = false;
            let mut any = false;
            loop {
                let buf = match r.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.segments = Vec::new().into_iter();
                        self.reader = None;
                        return None;
                    }
                };
                if buf.is_empty() {
                    break;
                }
                any = true;
                let (part, used, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], i + 1, true),
                    None => (buf, buf.len(), false),
                };
                if !too_long && self.line.len() + part.len() <= MAX_ROW {
                    self.line.extend_from_slice(part);
                } else {
                    too_long = true;
                    self.line.clear();
                }
                r.consume(used);
                if done {
                    break;
                }
            }
            if !any {
                self.reader = None;
                continue;
            }
            return Some(());
        }
    }
}

impl Iterator for Rows {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        loop {
            self.next_line()?;
            let text = String::from_utf8_lossy(&self.line);
            let fields: Vec<String> = text
                .split('\t')
                .map(|f| {
                    if f.contains('\\') {
                        unescape_field(f)
                    } else {
                        f.to_string()
                    }
                })
                .collect();
            if fields.len() == 5 {
                return Some(fields);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("p2pshare-history-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn requests(rows: &[Vec<String>]) -> Vec<String> {
        rows.iter().map(|r| r[3].clone()).collect()
    }

    #[test]
    fn reads_the_last_rows_whatever_the_chunks() {
        let dir = temp("tail");
        let h = History::at(&dir.join("history.tsv"));
        assert!(h.last(5).unwrap().is_empty());
        for i in 0..3000 {
            // Rows of many lengths, so line ends fall everywhere in the
            // chunks.
            let req = format!("r{i} {}", "x".repeat(i % 97));
            h.append(Direction::In, "127.0.0.1:1", &req, 200).unwrap();
        }
        for n in [0, 1, 2, 50, 1000, 2999, 3000, 3001, 20_000] {
            let got = requests(&h.last(n).unwrap());
            let from = 3000usize.saturating_sub(n.min(HISTORY_MAX));
            let want: Vec<String> = (from..3000)
                .map(|i| format!("r{i} {}", "x".repeat(i % 97)))
                .collect();
            assert_eq!(got, want, "n = {n}");
        }
        // A damaged line is skipped, and counts.
        let mut f = OpenOptions::new().append(true).open(h.path()).unwrap();
        f.write_all(b"damaged\n").unwrap();
        f.write_all(&vec![b'y'; MAX_ROW * 3]).unwrap();
        f.write_all(b"\n").unwrap();
        h.append(Direction::Out, "x", "last", 226).unwrap();
        assert_eq!(requests(&h.last(3).unwrap()), ["last"]);
        let last4 = requests(&h.last(4).unwrap());
        assert_eq!(
            last4,
            [format!("r2999 {}", "x".repeat(2999 % 97)), "last".into()]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotates_and_reads_across_the_rotation() {
        let dir = temp("rotate");
        let h = History::at(&dir.join("history.tsv")).with_max_file(4096);
        for i in 0..200 {
            h.append(Direction::In, "127.0.0.1:1", &format!("row {i:03}"), 200)
                .unwrap();
            assert!(fs::metadata(h.path()).unwrap().len() <= 4096);
        }
        let old = fs::metadata(h.old_path()).unwrap().len();
        assert!(old > 3000 && old <= 4096, "{old}");
        // Every row of both files, in order, and no more.
        let both = requests(&h.last(10_000).unwrap());
        let first: usize = both[0][4..].parse().unwrap();
        let want: Vec<String> = (first..200).map(|i| format!("row {i:03}")).collect();
        assert_eq!(both, want);
        let cur = requests(&h.last(3).unwrap());
        assert_eq!(cur, ["row 197", "row 198", "row 199"]);
        // Just past what the current file holds.
        let in_current = fs::read_to_string(h.path()).unwrap().lines().count();
        let across = requests(&h.last(in_current + 2).unwrap());
        assert_eq!(across.len(), in_current + 2);
        assert_eq!(across.last().unwrap(), "row 199");
        // Removed meanwhile: the next row starts a new file.
        fs::remove_file(h.path()).unwrap();
        h.append(Direction::In, "x", "after", 200).unwrap();
        assert_eq!(requests(&h.last(1).unwrap()), ["after"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
