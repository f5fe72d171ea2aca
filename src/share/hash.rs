//! MD5s of shared files: kept in the index rows themselves (see
//! [`super::index`]), here the few the index does not hold yet, and the
//! file in the state folder (`hashes.tsv`) that keeps them, with each
//! file's type, by [`FileKey`] (size, mtime, inode): so a restart neither
//! rehashes nor reads again an unchanged share.

use std::collections::{HashMap, HashSet};

use super::mime;
use std::fs::{self, File, Metadata};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

pub use crate::digest::Md5;

/// What identifies one version of a file's content for the md5 cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FileKey {
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(m: &Metadata) -> FileKey {
        FileKey {
            size: m.len(),
            mtime_s: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ino: m.ino(),
        }
    }
}

/// Read size for hashing: large reads keep the MD5 loop busy.
const CHUNK: usize = 1 << 20;

/// Hashes everything `r` yields.
pub fn md5_of_reader(r: impl Read) -> io::Result<Md5> {
    md5_with_head(r, &mut read_buffer(), &mut Vec::new())
}

/// Hashes everything `r` yields, reading into `buf` (a buffer the caller
/// keeps from file to file), and keeps the first [`mime::SNIFF_LEN`]
/// bytes in `head`: one read of a file gives both its md5 and its type.
pub fn md5_with_head(mut r: impl Read, buf: &mut [u8], head: &mut Vec<u8>) -> io::Result<Md5> {
    head.clear();
    let mut ctx = md5::Context::new();
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(ctx.finalize().into()),
            Ok(n) => {
                let want = mime::SNIFF_LEN.saturating_sub(head.len()).min(n);
                head.extend_from_slice(&buf[..want]);
                ctx.consume(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The read buffer [`md5_with_head`] is given: large reads keep the MD5
/// loop busy.
pub fn read_buffer() -> Vec<u8> {
    vec![0u8; CHUNK]
}

/// How many bytes a [`Streaming`] hash takes in on the caller's thread
/// before it moves to a thread of its own.
const THREAD_AFTER: u64 = 4 << 20;

/// Bytes handed to the hashing thread at once.
const BATCH: usize = 1 << 20;

/// Batches that may wait for the hashing thread; the writer blocks beyond
/// that, so memory stays bounded whatever the speeds.
const QUEUED: usize = 4;

/// The MD5 of a stream of bytes as they go by (a download being written).
/// Short streams are hashed on the caller's thread; once a stream passes a
/// few MiB the hashing moves to a thread of its own, fed through a bounded
/// queue, so hashing one part overlaps receiving and writing the next.
pub struct Streaming {
    state: Stream,
}

enum Stream {
    Inline {
        ctx: md5::Context,
        seen: u64,
    },
    Thread {
        batch: Vec<u8>,
        tx: std::sync::mpsc::SyncSender<Vec<u8>>,
        spare: std::sync::mpsc::Receiver<Vec<u8>>,
        worker: std::thread::JoinHandle<md5::Context>,
    },
}

impl Default for Streaming {
    fn default() -> Self {
        Streaming::new()
    }
}

impl Streaming {
    pub fn new() -> Streaming {
        Streaming {
            state: Stream::Inline {
                ctx: md5::Context::new(),
                seen: 0,
            },
        }
    }

    pub fn consume(&mut self, data: &[u8]) {
        match &mut self.state {
            Stream::Inline { ctx, seen } => {
                ctx.consume(data);
                *seen += data.len() as u64;
                if *seen >= THREAD_AFTER {
                    self.start_thread();
                }
            }
            Stream::Thread {
                batch, tx, spare, ..
            } => {
                batch.extend_from_slice(data);
                if batch.len() >= BATCH {
                    let next = spare
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(2 * BATCH));
                    let full = std::mem::replace(batch, next);
                    // The worker only ends when `tx` is dropped, so this
                    // cannot fail; if it did, finalize reports it.
                    let _ = tx.send(full);
                }
            }
        }
    }

    /// Hands the context to a new thread. Stays inline if none can start.
    fn start_thread(&mut self) {
        let Stream::Inline { ctx, .. } = &self.state else {
            return;
        };
        let mut ctx = ctx.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (spare_tx, spare) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("p2pshare-md5".into())
            .spawn(move || {
                for mut b in rx {
                    ctx.consume(&b);
                    b.clear();
                    let _ = spare_tx.send(b);
                }
                ctx
            });
        if let Ok(worker) = started {
            self.state = Stream::Thread {
                batch: Vec::with_capacity(2 * BATCH),
                tx,
                spare,
                worker,
            };
        }
    }

    /// The digest of everything consumed.
    pub fn finalize(self) -> io::Result<Md5> {
        match self.state {
            Stream::Inline { ctx, .. } => Ok(ctx.finalize().into()),
            Stream::Thread {
                batch, tx, worker, ..
            } => {
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                drop(tx);
                let ctx = worker
                    .join()
                    .map_err(|_| io::Error::other("the md5 thread failed"))?;
                Ok(ctx.finalize().into())
            }
        }
    }
}

/// The md5s of file versions the index does not hold (files hashed or
/// stored before a scan found them), with the file they are all saved in
/// and the hashing in progress.
pub struct HashCache {
    path: PathBuf,
    /// At most [`MAX_EXTRA`]; a scan moves into the index those of the
    /// files it finds.
    extra: Mutex<HashMap<FileKey, Md5>>,
    dirty: AtomicBool,
    /// Keys being hashed right now, so that a file asked for by several
    /// requests (and the hashing thread) at once is read and hashed once.
    busy: Mutex<HashSet<FileKey>>,
    /// Signalled when a key leaves `busy`.
    done: Condvar,
}

/// The most md5s kept outside the index; past it the oldest are
/// forgotten (a rehash later, nothing worse).
pub const MAX_EXTRA: usize = 65_536;

/// The right to hash one key, from [`HashCache::claim`]; dropping it lets
/// the waiters for that key go on.
pub struct Claim<'a> {
    cache: &'a HashCache,
    key: FileKey,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.cache.busy_lock().remove(&self.key);
        self.cache.done.notify_all();
    }
}

/// The first line of a saved cache that holds each file's type.
const HEADER: &str = "# p2pshare md5 cache 2: inode size mtime mtime-ns md5 type";

/// A saved cache as read back: what a first scan takes md5s and types
/// from, sorted by key. About 50 bytes a file, dropped after that scan.
#[derive(Debug, Default)]
pub struct Saved {
    entries: Vec<(FileKey, Md5, u8)>,
}

impl Saved {
    /// Reads the cache saved at `path`; a missing or damaged file is an
    /// empty cache (its lines are checked, never trusted).
    pub fn load(path: &Path) -> Saved {
        let mut entries = Vec::new();
        if let Ok(f) = File::open(path) {
            let mut typed = false;
            let mut r = BufReader::with_capacity(1 << 16, f);
            // One line buffer for the whole file: a million lines cost no
            // million allocations.
            let mut line = String::new();
            let mut first = true;
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                let text = line.trim_end_matches('\n');
                if std::mem::take(&mut first) && text == HEADER {
                    typed = true;
                } else if let Some((key, md5, t)) = parse_line(text) {
                    entries.push((key, md5, if typed { mime::code(t) } else { 0 }));
                }
                line.clear();
            }
        }
        entries.sort_unstable_by_key(|a| a.0);
        entries.dedup_by(|b, a| a.0 == b.0);
        entries.shrink_to_fit();
        Saved { entries }
    }

    /// The md5 and type code (0: not known) saved for `key`.
    pub fn get(&self, key: &FileKey) -> Option<(Md5, u8)> {
        let i = self.entries.binary_search_by(|e| e.0.cmp(key)).ok()?;
        let (_, d, t) = self.entries[i];
        Some((d, t))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl HashCache {
    /// The cache kept at `path` (read back by [`Saved::load`]), empty.
    pub fn new(path: &Path) -> HashCache {
        HashCache {
            path: path.to_path_buf(),
            extra: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            busy: Mutex::new(HashSet::new()),
            done: Condvar::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn extra_lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileKey, Md5>> {
        self.extra.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy_lock(&self) -> std::sync::MutexGuard<'_, HashSet<FileKey>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the hashing of `key`: `Ok` means hash it, store the digest,
    /// then drop the claim. `Err(Some(d))`: the digest is known (`known`
    /// says, another thread may have hashed it meanwhile). `Err(None)`:
    /// another thread is hashing it right now and `wait` is false; with
    /// `wait` this waits for that thread instead, and claims the key
    /// itself if that one failed.
    pub fn claim(
        &self,
        key: &FileKey,
        wait: bool,
        known: impl Fn() -> Option<Md5>,
    ) -> Result<Claim<'_>, Option<Md5>> {
        let mut busy = self.busy_lock();
        loop {
            if let Some(d) = known() {
                return Err(Some(d));
            }
            if busy.insert(*key) {
                return Ok(Claim {
                    cache: self,
                    key: *key,
                });
            }
            if !wait {
                return Err(None);
            }
            busy = self.done.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The md5 of a version the index does not hold, if known.
    pub fn extra(&self, key: &FileKey) -> Option<Md5> {
        self.extra_lock().get(key).copied()
    }

    /// Keeps the md5 of a version the index does not hold.
    pub fn insert_extra(&self, key: FileKey, md5: Md5) {
        let mut extra = self.extra_lock();
        if extra.len() >= MAX_EXTRA && !extra.contains_key(&key) {
            extra.clear();
        }
        if extra.insert(key, md5) != Some(md5) {
            self.changed();
        }
    }

    /// Lets a scan take out the md5s of the versions it found.
    pub fn with_extra(&self, f: impl FnOnce(&mut HashMap<FileKey, Md5>)) {
        f(&mut self.extra_lock())
    }

    /// Notes that what [`HashCache::save`] would write changed.
    pub fn changed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the md5s of `known` (each version with its type, `-` when
    /// not read) and those held outside the index, if anything changed
    /// since the last save: to a temporary file, then renamed over the old
    /// one, so a crash leaves either.
    pub fn save<'a>(&self, known: impl Iterator<Item = (FileKey, Md5, &'a str)>) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let result = (|| {
            // Written as it is formatted: a large cache costs no second
            // copy in memory.
            let mut f = io::BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
            writeln!(f, "{HEADER}")?;
            let line = |f: &mut io::BufWriter<File>, k: &FileKey, d: &Md5, t: &str| {
                writeln!(
                    f,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    k.ino, k.size, k.mtime_s, k.mtime_ns, d, t
                )
            };
            for (k, d, t) in known {
                line(&mut f, &k, &d, t)?;
            }
            for (k, d) in self.extra_lock().iter() {
                line(&mut f, k, d, "-")?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            self.changed();
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// One saved line: the key, the md5 and the type column (empty when the
/// line has none).
fn parse_line(line: &str) -> Option<(FileKey, Md5, &str)> {
    let mut f = line.split('\t');
    let key = FileKey {
        ino: f.next()?.parse().ok()?,
        size: f.next()?.parse().ok()?,
        mtime_s: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
    };
    let md5 = Md5::from_hex(f.next()?)?;
    Some((key, md5, f.next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_a_reader() {
        let d = md5_of_reader(&b"abc"[..]).unwrap();
        assert_eq!(d.to_string(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn streaming_matches_one_pass_on_either_side_of_the_thread() {
        let data: Vec<u8> = (0..(THREAD_AFTER as usize + 3 * BATCH + 12345))
            .map(|i| (i * 7 + i / 5000) as u8)
            .collect();
        for len in [0, 1, 1000, THREAD_AFTER as usize, data.len()] {
            let mut s = Streaming::new();
            // Uneven pieces, as reads from a socket come.
            let mut at = 0;
            let mut step = 1;
            while at < len {
                let end = (at + step).min(len);
                s.consume(&data[at..end]);
                at = end;
                step = step * 3 % 300_001 + 1;
            }
            assert_eq!(s.finalize().unwrap(), Md5::of(&data[..len]), "length {len}");
        }
    }

    #[test]
    fn damaged_lines_are_skipped() {
        assert!(parse_line("1\t2\t3\t4\tnothex\tname").is_none());
        assert!(parse_line("1\t2\t3\t4\t+f0150983cd24fb0d6963f7d28e17f72").is_none());
        assert!(parse_line("1\t2").is_none());
        assert!(parse_line("1\t2\t3\t4\t900150983cd24fb0d6963f7d28e17f72").is_some());
        // A sixth column (a type, or a name as older caches had) is
        // read as a type only under the header.
        assert!(parse_line("1\t2\t3\t4\t900150983cd24fb0d6963f7d28e17f72\ta").is_some());
        let dir = std::env::temp_dir().join(format!("p2pshare-saved-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let d = "900150983cd24fb0d6963f7d28e17f72";
        let old = dir.join("old.tsv");
        fs::write(&old, format!("1\t2\t3\t4\t{d}\ttext/plain\n")).unwrap();
        let typed = dir.join("typed.tsv");
        fs::write(
            &typed,
            format!("{HEADER}\n1\t2\t3\t4\t{d}\ttext/plain\nbad\n"),
        )
        .unwrap();
        let key = FileKey {
            ino: 1,
            size: 2,
            mtime_s: 3,
            mtime_ns: 4,
        };
        let want = Md5::from_hex(d).unwrap();
        assert_eq!(Saved::load(&old).get(&key), Some((want, 0)));
        let saved = Saved::load(&typed);
        assert_eq!(saved.len(), 1);
        assert_eq!(saved.get(&key), Some((want, mime::code("text/plain"))));
        assert_eq!(Saved::load(&dir.join("missing.tsv")).len(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
