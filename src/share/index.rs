//! The in-memory index of the shared folder: one immutable snapshot per
//! scan, sorted by name, with the queries the protocol answers from it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::hash::FileKey;
use crate::protocol::Reply;

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
    ///
    /// Matching one name takes at most time proportional to the name's
    /// length times the pattern's; past [`MATCH_BUDGET`] for the whole
    /// index the pattern is refused.
    pub fn matching(&self, pattern: &str) -> Result<Vec<(&String, &Entry)>, PatternError> {
        let matcher = Matcher::new(pattern)?;
        let deadline = crate::stop::deadline_in(MATCH_BUDGET);
        let mut rows = Vec::new();
        for (name, e) in &self.files {
            if Instant::now() > deadline {
                return Err(PatternError(format!(
                    "pattern too costly: matching it against {} files took over {}; use a simpler one",
                    self.files.len(),
                    humantime::format_duration(MATCH_BUDGET)
                )));
            }
            if matcher.matches(name) {
                rows.push((name, e));
            }
        }
        Ok(rows)
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
