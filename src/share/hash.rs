//! MD5s of shared files, cached by [`FileKey`] (size, mtime, inode) so an
//! unchanged file is never read twice, and persisted in the state folder so
//! a restart does not rehash an unchanged share.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::FileKey;

/// An MD5 digest.
pub type Md5 = [u8; 16];

/// Read size for hashing: large reads keep the MD5 loop busy.
const CHUNK: usize = 1 << 20;

/// Lowercase hex of a digest.
pub fn hex(d: &Md5) -> String {
    let mut s = String::with_capacity(32);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses 32 hex digits.
pub fn parse_hex(s: &str) -> Option<Md5> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut d = [0u8; 16];
    for (i, byte) in d.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(d)
}

/// Hashes everything `r` yields.
pub fn md5_of_reader(mut r: impl Read) -> io::Result<Md5> {
    let mut ctx = md5::Context::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(ctx.finalize().0),
            Ok(n) => ctx.consume(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The cache: key to digest, with the file it is saved in.
pub struct HashCache {
    path: PathBuf,
    map: Mutex<HashMap<FileKey, (Md5, String)>>,
    dirty: AtomicBool,
}

impl HashCache {
    /// Loads the cache saved at `path`; a missing or damaged file is an
    /// empty cache (its lines are checked, never trusted).
    pub fn load(path: &Path) -> HashCache {
        let mut map = HashMap::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Some((key, md5, name)) = parse_line(&line) {
                    map.insert(key, (md5, name));
                }
            }
        }
        HashCache {
            path: path.to_path_buf(),
            map: Mutex::new(map),
            dirty: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileKey, (Md5, String)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &FileKey) -> Option<Md5> {
        self.lock().get(key).map(|(d, _)| *d)
    }

    /// Looks up many keys under one lock.
    pub fn get_many<'a>(&self, keys: impl Iterator<Item = &'a FileKey>) -> Vec<Option<Md5>> {
        let map = self.lock();
        keys.map(|k| map.get(k).map(|(d, _)| *d)).collect()
    }

    pub fn insert(&self, key: FileKey, md5: Md5, name: &str) {
        let old = self.lock().insert(key, (md5, name.to_string()));
        if old.map(|(d, _)| d) != Some(md5) {
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
        let mut text = String::new();
        for (k, (d, name)) in self.lock().iter() {
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                k.ino,
                k.size,
                k.mtime_s,
                k.mtime_ns,
                hex(d),
                crate::protocol::escape_field(name)
            ));
        }
        let tmp = self.path.with_extension("tmp");
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
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

fn parse_line(line: &str) -> Option<(FileKey, Md5, String)> {
    let mut f = line.split('\t');
    let key = FileKey {
        ino: f.next()?.parse().ok()?,
        size: f.next()?.parse().ok()?,
        mtime_s: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
    };
    let md5 = parse_hex(f.next()?)?;
    let name = crate::protocol::unescape_field(f.next().unwrap_or(""));
    Some((key, md5, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = md5_of_reader(&b"abc"[..]).unwrap();
        assert_eq!(hex(&d), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(parse_hex(&hex(&d)), Some(d));
        assert_eq!(parse_hex("xyz"), None);
        assert_eq!(parse_hex("é00150983cd24fb0d6963f7d28e17f7"), None);
    }

    #[test]
    fn damaged_lines_are_skipped() {
        assert!(parse_line("1\t2\t3\t4\tnothex\tname").is_none());
        assert!(parse_line("1\t2").is_none());
        assert!(parse_line("1\t2\t3\t4\t900150983cd24fb0d6963f7d28e17f72\ta").is_some());
    }
}
