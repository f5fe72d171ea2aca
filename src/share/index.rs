//! The in-memory index of the shared folder: one immutable snapshot per
//! scan, sorted by name, with the queries the protocol answers from it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::FileKey;

/// One shared file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    pub mtime: SystemTime,
    pub key: FileKey,
    pub mime: &'static str,
}

/// A snapshot of the shared files, keyed by relative `/` path. A `String`
/// orders by bytes, which is the order the protocol promises.
#[derive(Debug, Default, Clone)]
pub struct Index {
    pub files: BTreeMap<String, Entry>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl Index {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.files.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.files.iter()
    }

    /// Files whose mtime, in whole seconds, lies in `start..=end`.
    pub fn modified_between(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> impl Iterator<Item = (&String, &Entry)> {
        self.files.iter().filter(move |(_, e)| {
            let t = crate::timefmt::clamp(e.mtime);
            start <= t && t <= end
        })
    }

    /// Files matching a shell pattern: against the base name when the
    /// pattern has no `/`, else against the whole path (where `*` stays
    /// within one folder and `**` crosses folders).
    pub fn matching(&self, pattern: &str) -> Result<Vec<(&String, &Entry)>, PatternError> {
        let matcher = Matcher::new(pattern)?;
        Ok(self
            .files
            .iter()
            .filter(|(name, _)| matcher.matches(name))
            .collect())
    }
}

/// A compiled shell pattern as `IndexGet regex` uses it.
pub struct Matcher {
    pattern: glob::Pattern,
    whole_path: bool,
}

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
        Ok(Matcher {
            pattern: compiled,
            whole_path,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        if self.whole_path {
            self.pattern.matches_with(name, opts)
        } else {
            let base = name.rsplit('/').next().unwrap_or(name);
            self.pattern.matches_with(base, opts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn index(names: &[(&str, u64)]) -> Index {
        let mut files = BTreeMap::new();
        for (n, t) in names {
            files.insert(
                n.to_string(),
                Entry {
                    size: 1,
                    mtime: UNIX_EPOCH + Duration::from_millis(*t),
                    key: FileKey::default(),
                    mime: "text/plain",
                },
            );
        }
        Index { files }
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
                .map(|(n, _)| n.clone())
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
    fn shortlist_compares_whole_seconds_inclusively() {
        let idx = index(&[("a", 1_000), ("b", 2_999), ("c", 3_000)]);
        let s = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        let names: Vec<_> = idx.modified_between(s(1), s(2)).map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
