//! `.p2pignore`: the files and folders of a share that are not shared.

use std::fs::File;
use std::io;
use std::path::Path;

use super::index;

/// The patterns of `<share>/.p2pignore`: files (and folders) not to share.
/// One shell pattern per line, `#` starts a comment; a pattern without `/`
/// matches a file or folder name at any depth, one with `/` the path from
/// the share's top (a leading `/` is allowed); a trailing `/` matches
/// folders only.
#[derive(Default)]
pub struct Ignore {
    patterns: Vec<(index::Matcher, bool)>,
    /// Folders left out whatever the patterns say, by their path from the
    /// share's top: a state folder inside the share.
    pub folders: Vec<String>,
}

/// The ignore file's name.
pub const IGNORE_FILE: &str = ".p2pignore";

impl Ignore {
    /// Reads the ignore file of a share (at most 64 KiB and 1000 patterns;
    /// invalid lines are skipped).
    pub fn load(root: &Path) -> Ignore {
        let mut text = String::new();
        if let Ok(f) = File::open(root.join(IGNORE_FILE)) {
            let _ = io::Read::read_to_string(&mut io::Read::take(f, 64 * 1024), &mut text);
        }
        Ignore::parse(&text)
    }

    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .take(1000)
            .filter_map(|l| {
                let dir_only = l.ends_with('/');
                let p = l.trim_end_matches('/');
                let (p, whole_path) = match p.strip_prefix('/') {
                    Some(anchored) => (anchored, true),
                    None => (p, p.contains('/')),
                };
                index::Matcher::with_mode(p, whole_path)
                    .ok()
                    .map(|m| (m, dir_only))
            })
            .collect();
        Ignore {
            patterns,
            folders: Vec::new(),
        }
    }

    /// True when `rel` or a folder above it is ignored.
    pub fn matches(&self, rel: &str) -> bool {
        if self.patterns.is_empty() && self.folders.is_empty() {
            return false;
        }
        let mut end = 0;
        loop {
            let next = rel[end..].find('/').map(|i| end + i);
            let prefix = &rel[..next.unwrap_or(rel.len())];
            let is_dir = next.is_some();
            if self.hit(prefix, is_dir) {
                return true;
            }
            match next {
                Some(i) => end = i + 1,
                None => return false,
            }
        }
    }

    /// True when the entry `rel` itself (not a folder above it) is
    /// ignored; the walk checks each folder as it enters it.
    pub fn matches_entry(&self, rel: &str, is_dir: bool) -> bool {
        !(self.patterns.is_empty() && self.folders.is_empty()) && self.hit(rel, is_dir)
    }

    fn hit(&self, path: &str, is_dir: bool) -> bool {
        (is_dir && self.folders.iter().any(|f| f == path))
            || self
                .patterns
                .iter()
                .any(|(m, dir_only)| (is_dir || !dir_only) && m.matches(path))
    }
}
