//! The in-memory index of the shared folder: one snapshot per scan,
//! sorted by name, with the queries the protocol answers from it.
//!
//! It is kept lean for shares of millions of files: every name is one run
//! of bytes in one string, a file is a fixed row of numbers beside it (its
//! size, times, inode, a one-byte type and its md5 once known), and the
//! md5 and type are filled in place as the hashing learns them, so a
//! snapshot is never copied to add them. About 56 bytes and the name's
//! length per file.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::hash::{FileKey, Md5};
use super::mime;
use crate::protocol::Reply;

/// One shared file, as read from the index (a copy: cheap to make).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    pub mtime: SystemTime,
    pub key: FileKey,
    /// Its type: sniffed from its content once the file has been read,
    /// guessed from its name before ([`mime::guess`]).
    pub mime: &'static str,
    /// Its md5, once known.
    pub md5: Option<Md5>,
}

/// One file of the index. Its name is `names[at..]` up to the next row's.
#[derive(Debug, Default)]
struct Row {
    at: u64,
    size: u64,
    ino: u64,
    mtime_s: i64,
    mtime_ns: u32,
    /// [`mime::code`] of its type; 0 until the file has been read.
    mime: AtomicU8,
    /// Set (after `md5`) once the md5 is known.
    hashed: AtomicBool,
    md5: [AtomicU64; 2],
}

impl Row {
    fn key(&self) -> FileKey {
        FileKey {
            size: self.size,
            mtime_s: self.mtime_s,
            mtime_ns: i64::from(self.mtime_ns),
            ino: self.ino,
        }
    }

    fn md5(&self) -> Option<Md5> {
        if !self.hashed.load(Ordering::Acquire) {
            return None;
        }
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&self.md5[0].load(Ordering::Relaxed).to_le_bytes());
        d[8..].copy_from_slice(&self.md5[1].load(Ordering::Relaxed).to_le_bytes());
        Some(Md5(d))
    }

    fn set_md5(&self, d: Md5) {
        let (a, b) = d.0.split_at(8);
        let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        self.md5[0].store(word(a), Ordering::Relaxed);
        self.md5[1].store(word(b), Ordering::Relaxed);
        self.hashed.store(true, Ordering::Release);
    }
}

/// The modification time a key records, as the metadata gives it.
pub fn mtime_of(key: &FileKey) -> SystemTime {
    let ns = Duration::from_nanos(key.mtime_ns.clamp(0, 999_999_999) as u64);
    let t = if key.mtime_s >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(key.mtime_s as u64))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(key.mtime_s.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(ns))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A snapshot of the shared files, sorted by relative `/` path in byte
/// order, which is the order the protocol promises.
#[derive(Debug, Default)]
pub struct Index {
    names: String,
    rows: Vec<Row>,
}

/// The longest `IndexGet regex` may spend matching names before it gives
/// up with 501, so no pattern can keep a core busy for long.
pub const MATCH_BUDGET: Duration = Duration::from_millis(500);

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl PatternError {
    /// The 501 that refuses the pattern.
    pub fn reply(&self) -> Reply<'static> {
        Reply::bad_pattern(&self.0)
    }
}

/// An index being built, one file at a time in name order (see
/// [`Builder::finish`] for the rare walk that is not).
#[derive(Debug, Default)]
pub struct Builder {
    index: Index,
}

impl Builder {
    /// A builder with room for about `files` files.
    pub fn with_capacity(files: usize) -> Builder {
        Builder {
            index: Index {
                names: String::with_capacity(files.saturating_mul(24)),
                rows: Vec::with_capacity(files),
            },
        }
    }

    /// Adds a file with its type code (0: not read yet) and md5, if known.
    pub fn push(&mut self, name: &str, key: FileKey, mime: u8, md5: Option<Md5>) {
        let row = Row {
            at: self.index.names.len() as u64,
            size: key.size,
            ino: key.ino,
            mtime_s: key.mtime_s,
            mtime_ns: key.mtime_ns.clamp(0, i64::from(u32::MAX)) as u32,
            mime: AtomicU8::new(mime),
            ..Row::default()
        };
        if let Some(d) = md5 {
            row.set_md5(d);
        }
        self.index.names.push_str(name);
        self.index.rows.push(row);
    }

    /// The index, sorted by name: a walk that reached folders through
    /// links out of order is sorted here, with each name once (the first
    /// added wins).
    pub fn finish(self) -> Index {
        let mut index = self.index;
        let sorted = (1..index.len()).all(|i| index.name(i - 1) < index.name(i));
        if !sorted {
            let mut order: Vec<usize> = (0..index.len()).collect();
            order.sort_by(|&a, &b| index.name(a).cmp(index.name(b)).then(a.cmp(&b)));
            order.dedup_by(|b, a| index.name(*a) == index.name(*b));
            let mut out = Builder::with_capacity(order.len());
            for i in order {
                index.copy_to(&mut out, i);
            }
            index = out.index;
        }
        index.names.shrink_to_fit();
        index.rows.shrink_to_fit();
        index
    }
}

impl Clone for Index {
    fn clone(&self) -> Index {
        let mut b = Builder::with_capacity(self.len());
        for i in 0..self.len() {
            self.copy_to(&mut b, i);
        }
        b.index
    }
}

impl Index {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The name of the `i`th file.
    pub fn name(&self, i: usize) -> &str {
        let start = self.rows[i].at as usize;
        let end = self
            .rows
            .get(i + 1)
            .map_or(self.names.len(), |r| r.at as usize);
        &self.names[start..end]
    }

    /// The `i`th file.
    pub fn entry(&self, i: usize) -> Entry {
        let r = &self.rows[i];
        let key = r.key();
        let mime = mime::by_code(r.mime.load(Ordering::Relaxed))
            .unwrap_or_else(|| mime::guess(self.name(i), r.size));
        Entry {
            size: r.size,
            mtime: mtime_of(&key),
            key,
            mime,
            md5: r.md5(),
        }
    }

    /// Adds the `i`th file to `b`, with its type and md5 when known.
    fn copy_to(&self, b: &mut Builder, i: usize) {
        let r = &self.rows[i];
        b.push(
            self.name(i),
            r.key(),
            r.mime.load(Ordering::Relaxed),
            r.md5(),
        );
    }

    /// The version of the `i`th file (no name, no time conversion).
    pub fn key(&self, i: usize) -> FileKey {
        self.rows[i].key()
    }

    /// True once the `i`th file has been read (its type sniffed).
    pub fn read(&self, i: usize) -> bool {
        self.rows[i].mime.load(Ordering::Relaxed) != 0
    }

    /// The md5 of the `i`th file, once known.
    pub fn md5(&self, i: usize) -> Option<Md5> {
        self.rows[i].md5()
    }

    /// Sets the type code (when not 0) and the md5 (when given) of the
    /// `i`th file.
    pub fn fill(&self, i: usize, mime: u8, md5: Option<Md5>) {
        let r = &self.rows[i];
        if mime != 0 {
            r.mime.store(mime, Ordering::Relaxed);
        }
        if let Some(d) = md5 {
            r.set_md5(d);
        }
    }

    /// Gives the `i`th file the type and md5 `other` knows of its `j`th.
    pub fn take(&self, i: usize, other: &Index, j: usize) {
        let r = &other.rows[j];
        self.fill(i, r.mime.load(Ordering::Relaxed), r.md5());
    }

    /// This index without the files at `drop` (positions in order).
    pub fn without(&self, drop: &[usize]) -> Index {
        let mut b = Builder::with_capacity(self.len());
        let mut skip = drop.iter().peekable();
        for i in 0..self.len() {
            if skip.next_if(|&&d| d == i).is_some() {
                continue;
            }
            self.copy_to(&mut b, i);
        }
        b.finish()
    }

    /// The first position whose name is not below `name` in byte order.
    fn lower_bound(&self, name: &str) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.name(mid) < name {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The position of the file `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        let i = self.lower_bound(name);
        (i < self.len() && self.name(i) == name).then_some(i)
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.find(name).map(|i| self.entry(i))
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, Entry)> + '_ {
        (0..self.len()).map(|i| (self.name(i), self.entry(i)))
    }

    /// The positions of the files whose names start with `prefix` (all
    /// for `""`): one run of the sorted index.
    pub fn range_of(&self, prefix: &str) -> std::ops::Range<usize> {
        let start = self.lower_bound(prefix);
        let (mut lo, mut hi) = (start, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.name(mid).starts_with(prefix) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        start..lo
    }

    /// The files whose names start with `prefix` (all for `""`), in name
    /// order.
    pub fn starting_with(&self, prefix: &str) -> impl Iterator<Item = (&str, Entry)> + '_ {
        self.range_of(prefix).map(|i| (self.name(i), self.entry(i)))
    }

    /// Files whose mtime, in whole seconds, lies in `start..=end`.
    pub fn modified_between(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> impl Iterator<Item = (&str, Entry)> {
        self.all().filter(move |(_, e)| {
            let t = crate::timefmt::clamp(e.mtime);
            start <= t && t <= end
        })
    }

    /// Files matching a shell pattern: against the base name when the
    /// pattern has no `/`, else against the whole path (where `*` stays
    /// within one folder and `**` crosses folders).
    ///
    /// Matching one name takes at most time proportional to the name's
    /// length times the pattern's; past [`MATCH_BUDGET`] for the whole
    /// index the pattern is refused.
    pub fn matching(&self, pattern: &str) -> Result<Vec<(&str, Entry)>, PatternError> {
        let matcher = Matcher::new(pattern)?;
        let deadline = crate::stop::deadline_in(MATCH_BUDGET);
        let mut rows = Vec::new();
        for i in 0..self.len() {
            if Instant::now() > deadline {
                return Err(PatternError(format!(
                    "pattern too costly: matching it against {} files took over {}; use a simpler one",
                    self.len(),
                    humantime::format_duration(MATCH_BUDGET)
                )));
            }
            let name = self.name(i);
            if matcher.matches(name) {
                rows.push((name, self.entry(i)));
            }
        }
        Ok(rows)
    }

    /// This index with the file `name` added or replaced (the index is
    /// shared read-only, so this is a copy: a cost in proportion to the
    /// files shared).
    pub fn with(&self, name: &str, key: FileKey, mime: &str, md5: Option<Md5>) -> Index {
        let at = self.lower_bound(name);
        let mut b = Builder::with_capacity(self.len() + 1);
        (0..at).for_each(|i| self.copy_to(&mut b, i));
        b.push(name, key, mime::code(mime), md5);
        let skip = usize::from(at < self.len() && self.name(at) == name);
        (at + skip..self.len()).for_each(|i| self.copy_to(&mut b, i));
        b.index
    }
}

/// A compiled shell pattern as `IndexGet regex` uses it.
///
/// A whole-path pattern is matched one `/`-separated component at a
/// time: glob's own matcher, given a whole path, backtracks over every
/// way to place the `*`s before a `/` and takes time exponential in their
/// number (`*a*a*a*a*a*a*a*b/*` against a long folder name). Within one
/// component its matcher takes at most (name length x pattern length)
/// steps, and `**` components are placed by a table over the path's
/// components.
pub struct Matcher {
    pattern: glob::Pattern,
    whole_path: bool,
    /// The components of a whole-path pattern.
    parts: Vec<Part>,
}

/// One component of a whole-path pattern.
enum Part {
    /// `**`: any number of whole components (at least one at the end of
    /// the pattern, as glob has it).
    AnyDepth,
    /// A pattern for exactly one component.
    Name(glob::Pattern),
}

/// How every pattern is matched: case-sensitive, `*` and `?` never
/// matching a `/`, a leading `.` matched like any character.
const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Matcher {
    pub fn new(pattern: &str) -> Result<Matcher, PatternError> {
        Matcher::with_mode(pattern, pattern.contains('/'))
    }

    /// A pattern matched against the whole path, or against the base name.
    pub fn with_mode(pattern: &str, whole_path: bool) -> Result<Matcher, PatternError> {
        let compiled = glob::Pattern::new(pattern).map_err(|e| {
            PatternError(format!(
                "invalid pattern at character {}: {}",
                e.pos + 1,
                e.msg
            ))
        })?;
        let mut parts = Vec::new();
        if whole_path {
            let mut split = split_components(pattern);
            // `a/**/` is `a/**`: glob's `**` takes its `/` along.
            if split.len() > 1
                && split[split.len() - 1].is_empty()
                && split[split.len() - 2] == "**"
            {
                split.pop();
            }
            for part in split {
                parts.push(if part == "**" {
                    Part::AnyDepth
                } else {
                    Part::Name(glob::Pattern::new(&part).map_err(|e| {
                        PatternError(format!("invalid pattern component '{part}': {}", e.msg))
                    })?)
                });
            }
        }
        Ok(Matcher {
            pattern: compiled,
            whole_path,
            parts,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        if self.whole_path {
            self.matches_path(name)
        } else {
            let base = name.rsplit('/').next().unwrap_or(name);
            self.pattern.matches_with(base, MATCH_OPTIONS)
        }
    }

    /// Whole-path matching, component by component: `reach[j]` says the
    /// parts so far can match exactly the first `j` components of `name`.
    fn matches_path(&self, name: &str) -> bool {
        let comps: Vec<&str> = name.split('/').collect();
        let n = comps.len();
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for (k, part) in self.parts.iter().enumerate() {
            let mut next = vec![false; n + 1];
            match part {
                Part::AnyDepth => {
                    let at_least_one = k + 1 == self.parts.len();
                    let mut seen = false;
                    for j in 0..=n {
                        if reach[j] && !at_least_one {
                            seen = true;
                        }
                        next[j] = seen;
                        if reach[j] {
                            seen = true;
                        }
                    }
                }
                Part::Name(p) => {
                    for j in 0..n {
                        if reach[j] && p.matches_with(comps[j], MATCH_OPTIONS) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            if !next.contains(&true) {
                return false;
            }
            reach = next;
        }
        reach[n]
    }
}

/// Splits a pattern glob has accepted at each `/` that is not inside a
/// `[...]` class, finding where a class ends exactly as glob's parser
/// does (the first character after `[` or `[!` always belongs to it).
fn split_components(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            let end = if i + 4 <= chars.len() && chars[i + 1] == '!' {
                chars[i + 3..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|j| i + 3 + j)
            } else if i + 3 <= chars.len() && chars[i + 1] != '!' {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|j| i + 2 + j)
            } else {
                None
            };
            if let Some(end) = end {
                cur.extend(&chars[i..=end]);
                i = end + 1;
                continue;
            }
        }
        if chars[i] == '/' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(chars[i]);
        }
        i += 1;
    }
    parts.push(cur);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn index(names: &[(&str, u64)]) -> Index {
        let mut b = Builder::default();
        for (n, t) in names {
            let key = FileKey {
                size: 1,
                mtime_s: (*t / 1000) as i64,
                mtime_ns: (*t % 1000 * 1_000_000) as i64,
                ino: 0,
            };
            b.push(n, key, mime::code("text/plain"), None);
        }
        b.finish()
    }

    #[test]
    fn a_lean_index_finds_ranges_and_learns_in_place() {
        let key = |ino| FileKey {
            size: 5,
            mtime_s: -1,
            mtime_ns: 500,
            ino,
        };
        // Out of order, as a walk through a link gives, with a name twice.
        let mut b = Builder::default();
        for (n, ino) in [
            ("b/x", 1),
            ("a", 2),
            ("b/y\n\u{1f600}", 3),
            ("a", 9),
            ("b", 4),
        ] {
            b.push(n, key(ino), 0, None);
        }
        let idx = b.finish();
        let names: Vec<&str> = idx.all().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "b/x", "b/y\n\u{1f600}"]);
        assert_eq!(idx.get("a").unwrap().key.ino, 2, "the first added wins");
        assert_eq!(idx.find("b/x"), Some(2));
        assert_eq!(idx.find("b/"), None);
        assert_eq!(idx.range_of("b/"), 2..4);
        assert_eq!(idx.range_of(""), 0..4);
        assert!(idx.range_of("c").is_empty());
        // A time before 1970 reads back as the metadata gives it.
        let e = idx.get("b").unwrap();
        assert_eq!(
            e.mtime,
            SystemTime::UNIX_EPOCH - Duration::from_secs(1) + Duration::from_nanos(500)
        );
        // Not read yet: the type is a guess, no md5; then learnt in place,
        // seen through every holder of the snapshot.
        assert_eq!(e.mime, "application/octet-stream");
        assert!(!idx.read(1) && idx.md5(1).is_none());
        let shared = std::sync::Arc::new(idx);
        let other = shared.clone();
        shared.fill(1, mime::code("text/plain"), Some(Md5::of(b"hello")));
        let e = other.get("b").unwrap();
        assert_eq!((e.mime, e.md5), ("text/plain", Some(Md5::of(b"hello"))));
        // Copies keep what was learnt.
        let with = other.with("aa", key(7), "image/png", None);
        assert_eq!(with.len(), 5);
        assert_eq!(with.get("aa").unwrap().mime, "image/png");
        assert_eq!(with.get("b").unwrap().md5, Some(Md5::of(b"hello")));
        let replaced = with.with("aa", key(8), "text/plain", None);
        assert_eq!(replaced.len(), 5);
        assert_eq!(replaced.get("aa").unwrap().key.ino, 8);
        let fewer = replaced.without(&[0, 2]);
        let names: Vec<&str> = fewer.all().map(|(n, _)| n).collect();
        assert_eq!(names, ["aa", "b/x", "b/y\n\u{1f600}"]);
        assert_eq!(fewer.clone().get("aa").unwrap().mime, "text/plain");
        // A row is a fixed 56 bytes: the name is all else a file costs.
        assert!(std::mem::size_of::<Row>() <= 56);
    }

    #[test]
    fn globs_by_base_name_or_path() {
        let idx = index(&[
            ("a.txt", 0),
            ("docs/b.txt", 0),
            ("docs/deep/c.txt", 0),
            ("docs/d.pdf", 0),
            ("small/x/y/z", 0),
        ]);
        let names = |p: &str| -> Vec<String> {
            idx.matching(p)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect()
        };
        assert_eq!(names("*.txt"), ["a.txt", "docs/b.txt", "docs/deep/c.txt"]);
        assert_eq!(names("docs/*.txt"), ["docs/b.txt"]);
        assert_eq!(names("docs/**/*.txt"), ["docs/b.txt", "docs/deep/c.txt"]);
        assert_eq!(names("small/**/*"), ["small/x/y/z"]);
        assert_eq!(names("?.txt"), ["a.txt", "docs/b.txt", "docs/deep/c.txt"]);
        assert_eq!(names("docs/?.txt"), ["docs/b.txt"]);
        assert_eq!(names("[ab].*"), ["a.txt", "docs/b.txt"]);
        assert_eq!(names("*.TXT"), Vec::<String>::new());
        assert!(idx.matching("[").is_err());
        assert!(idx.matching("a/***").is_err());
    }

    #[test]
    fn component_matching_agrees_with_glob_on_whole_paths() {
        let patterns = [
            "a/b",
            "a/*",
            "*/b",
            "a/**",
            "a/**/",
            "**/",
            "**/b",
            "**/**/b",
            "a/**/b",
            "a/**/**/c",
            "**/*.txt",
            "a/*/c",
            "*/*",
            "?/b",
            "a/[b/]",
            "a/[!/x]c",
            "[]/]/b",
            "[!]]/*",
            "a/[a-c]*/**",
            "/a",
            "a//b",
            "a/b/",
            "*a*a*/b",
            "x[/]y/*",
            "**/a/**",
            "**/**",
            "**/**/",
            "a*/**/*b",
            "é/[é]*",
            "a/?",
        ];
        let paths = [
            "a",
            "b",
            "a/b",
            "a/c",
            "a/b/c",
            "a/x/y/c",
            "a/b/c/d",
            "x/b",
            "b/b",
            "a/a/b",
            "aa/b",
            "a/bc",
            "ab/c/xb",
            "]/b",
            "é/é1",
            "a/b.txt",
            "t.txt",
            "d/e/f.txt",
            "a/xc",
            "a/a",
        ];
        for p in patterns {
            let full = glob::Pattern::new(p).unwrap();
            let m = Matcher::with_mode(p, true).unwrap();
            for name in paths {
                assert_eq!(
                    m.matches(name),
                    full.matches_with(name, MATCH_OPTIONS),
                    "pattern {p:?} on {name:?}"
                );
            }
        }
    }

    #[test]
    fn stars_before_a_slash_do_not_backtrack_exponentially() {
        let name = format!("{}/x.txt", "a".repeat(200));
        let m = Matcher::new(&format!("{}b/*", "*a".repeat(12))).unwrap();
        let t = std::time::Instant::now();
        assert!(!m.matches(&name));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn shortlist_compares_whole_seconds_inclusively() {
        let idx = index(&[("a", 1_000), ("b", 2_999), ("c", 3_000)]);
        let s = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        let names: Vec<_> = idx.modified_between(s(1), s(2)).map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
