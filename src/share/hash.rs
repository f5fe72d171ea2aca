//! MD5s of shared files, cached by [`FileKey`] (size, mtime, inode) so an
//! unchanged file is never read twice, and persisted in the state folder so
//! a restart does not rehash an unchanged share.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

pub use crate::digest::Md5;

/// What identifies one version of a file's content for the md5 cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
pub fn md5_of_reader(mut r: impl Read) -> io::Result<Md5> {
    let mut ctx = md5::Context::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(ctx.finalize().into()),
            Ok(n) => ctx.consume(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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

/// The cache: key to digest, with the file it is saved in. Names are not
/// kept: the key alone identifies a version of a file, and a share of many
/// files would hold every name twice.
pub struct HashCache {
    path: PathBuf,
    map: Mutex<HashMap<FileKey, Md5>>,
    dirty: AtomicBool,
    /// Keys being hashed right now, so that a file asked for by several
    /// requests (and the rescan thread) at once is read and hashed once.
    busy: Mutex<HashSet<FileKey>>,
    /// Signalled when a key leaves `busy`.
    done: Condvar,
}

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

impl HashCache {
    /// Loads the cache saved at `path`; a missing or damaged file is an
    /// empty cache (its lines are checked, never trusted).
    pub fn load(path: &Path) -> HashCache {
        let mut map = HashMap::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Some((key, md5)) = parse_line(&line) {
                    map.insert(key, md5);
                }
            }
        }
        HashCache {
            path: path.to_path_buf(),
            map: Mutex::new(map),
            dirty: AtomicBool::new(false),
            busy: Mutex::new(HashSet::new()),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileKey, Md5>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy_lock(&self) -> std::sync::MutexGuard<'_, HashSet<FileKey>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the hashing of `key`: `Ok` means hash it, [`insert`] the
    /// digest, then drop the claim. `Err(Some(d))`: the digest is known
    /// (another thread hashed it meanwhile). `Err(None)`: another thread is
    /// hashing it right now and `wait` is false; with `wait` this waits for
    /// that thread instead, and claims the key itself if that one failed.
    ///
    /// [`insert`]: HashCache::insert
    pub fn claim(&self, key: &FileKey, wait: bool) -> Result<Claim<'_>, Option<Md5>> {
        let mut busy = self.busy_lock();
        loop {
            if let Some(d) = self.get(key) {
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

    pub fn get(&self, key: &FileKey) -> Option<Md5> {
        self.lock().get(key).copied()
    }

    /// Looks up many keys under one lock.
    pub fn get_many<'a>(&self, keys: impl Iterator<Item = &'a FileKey>) -> Vec<Option<Md5>> {
        let map = self.lock();
        keys.map(|k| map.get(k).copied()).collect()
    }

    pub fn insert(&self, key: FileKey, md5: Md5) {
        let old = self.lock().insert(key, md5);
        if old != Some(md5) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Drops the entries of files that are gone or changed.
    pub fn retain(&self, keep: impl Fn(&FileKey) -> bool) {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|k, _| keep(k));
        if map.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the cache if it changed since the last save: to a temporary
    /// file, then renamed over the old one, so a crash leaves either.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let result = (|| {
            // Written as it is formatted: a large cache costs no second
            // copy in memory.
            let mut f = io::BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
            for (k, d) in self.lock().iter() {
                writeln!(
                    f,
                    "{}\t{}\t{}\t{}\t{}",
                    k.ino, k.size, k.mtime_s, k.mtime_ns, d,
                )?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            self.dirty.store(true, Ordering::Relaxed);
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn parse_line(line: &str) -> Option<(FileKey, Md5)> {
    let mut f = line.split('\t');
    let key = FileKey {
        ino: f.next()?.parse().ok()?,
        size: f.next()?.parse().ok()?,
        mtime_s: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
    };
    let md5 = Md5::from_hex(f.next()?)?;
    Some((key, md5))
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
        // A sixth column (a name, as older caches had) is ignored.
        assert!(parse_line("1\t2\t3\t4\t900150983cd24fb0d6963f7d28e17f72\ta").is_some());
    }
}
