//! The request history: an append-only TSV file in the state folder, one
//! row per request either received (`in`) or made (`out`) by this peer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::protocol::{escape_field, unescape_field};
use crate::timefmt;

/// The longest request text kept in a row, in characters.
pub const MAX_REQUEST: usize = 512;

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

/// The history file of one share.
pub struct History {
    path: PathBuf,
    /// The file opened for appending, kept open between rows (one write
    /// per row instead of an open, a write and a close).
    file: Mutex<Option<File>>,
    /// Set once a failure to open the file was reported.
    warned: AtomicBool,
}

impl History {
    /// The history kept at `path` (created on the first append).
    pub fn at(path: &Path) -> History {
        History {
            path: path.to_path_buf(),
            file: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// The history file of a shared folder.
    pub fn of_share(state_dir: &Path) -> History {
        History::at(&state_dir.join("history.tsv"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one row. The row is written with a single write to a file
    /// opened for appending, so rows from several processes never mix.
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
        // A file removed meanwhile (no links left) is opened anew, so rows
        // never go to a file nobody can see.
        if held
            .as_ref()
            .is_some_and(|f| f.metadata().map_or(true, |m| m.nlink() == 0))
        {
            *held = None;
        }
        let f = match held.as_mut() {
            Some(f) => f,
            None => held.insert(self.open_for_append()?),
        };
        let written = f.write_all(line.as_bytes());
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
                eprintln!(
                    "p2pshare: warning: cannot write the history {}: {e}; going on without it \
                     (--state DIR keeps it elsewhere)",
                    self.path.display()
                );
            }
        }
        opened
    }

    /// The last `n` rows, oldest first, each as its five fields. Reads the file from its end, so the
    /// cost follows `n`, not the length of the history.
    pub fn last(&self, n: usize) -> io::Result<Vec<Vec<String>>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = f.seek(SeekFrom::End(0))?;
        let mut pos = len;
        let mut tail: Vec<u8> = Vec::new();
        const CHUNK: u64 = 64 * 1024;
        // One more line than asked for, so the first kept line is whole.
        while pos > 0 && tail.iter().filter(|&&b| b == b'\n').count() <= n {
            let step = CHUNK.min(pos);
            pos -= step;
            f.seek(SeekFrom::Start(pos))?;
            let mut chunk = vec![0u8; step as usize];
            f.read_exact(&mut chunk)?;
            chunk.extend_from_slice(&tail);
            tail = chunk;
        }
        let text = String::from_utf8_lossy(&tail);
        let mut lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        if pos > 0 && !lines.is_empty() {
            lines.remove(0); // cut in the middle
        }
        let start = lines.len().saturating_sub(n);
        Ok(lines[start..]
            .iter()
            .filter_map(|l| {
                let fields: Vec<String> = l.split('\t').map(unescape_field).collect();
                (fields.len() == 5).then_some(fields)
            })
            .collect())
    }
}
