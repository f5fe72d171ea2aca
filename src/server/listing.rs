//! The tables a session answers with: `IndexGet` from a snapshot of the
//! index, `FileHash` from the md5 cache, `History` from the history file.
//! Each streams its rows as the reply is written.

use std::borrow::Cow;

use crate::history::History;
use crate::protocol::{FileOp, FileRow, HashRow, HistoryFilter, Reply};
use crate::share::index::{Entry, Index};
use crate::share::Share;

/// A file table of index entries.
pub(super) fn files<'a, I>(rows: I) -> Reply<'a>
where
    I: IntoIterator<Item = (&'a str, Entry)>,
    I::IntoIter: 'a,
{
    Reply::files(rows.into_iter().map(|(name, e)| FileRow {
        name,
        size: e.size,
        mtime: e.mtime,
        mime: e.mime,
    }))
}

/// `IndexGet regex`: the files matching `pattern`, or why it cannot be
/// used.
/// When nothing matched a pattern that looks like a regular expression,
/// the last line says how to write it shell-style.
pub(super) fn matching<'a>(snap: &'a Index, pattern: &str) -> Reply<'a> {
    match snap.matching(pattern) {
        Ok(rows) if rows.is_empty() => match regex_hint(pattern) {
            Some(hint) => files(rows).with_note(hint),
            None => files(rows),
        },
        Ok(rows) => files(rows),
        Err(e) => e.reply(),
    }
}

/// For a pattern that looks like a regular expression (starts with `^`,
/// ends with `$`, or holds `\.`, `.+` or a `.*` that does not start a
/// path component, where it is a shell pattern for hidden names): a note
/// that patterns are shell-style, with the pattern written that way.
pub(super) fn regex_hint(pattern: &str) -> Option<String> {
    let inner_dot_star = pattern
        .match_indices(".*")
        .any(|(i, _)| i > 0 && !pattern[..i].ends_with('/'));
    let regexy = pattern.starts_with('^')
        || pattern.ends_with('$')
        || pattern.contains("\\.")
        || pattern.contains(".+")
        || inner_dot_star;
    if !regexy {
        return None;
    }
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = body.strip_suffix('$').unwrap_or(body);
    let glob = body
        .replace(".*", "*")
        .replace(".+", "?*")
        .replace("\\.", ".");
    Some(format!(
        "the pattern is shell-style (* ? [...]), not a regular expression: try \"{}\"",
        crate::names::shown(&glob)
    ))
}

/// `FileHash verify`: one file's md5, from the cache or hashed now.
pub(super) fn verify(share: &Share, name: &str) -> Reply<'static> {
    let f = match share.open_file(name) {
        Ok(f) => f,
        Err(e) => return e.reply(name, FileOp::Open),
    };
    match share.md5_of(&f) {
        Ok(md5) => Reply::hashes([HashRow {
            name: Cow::Owned(name.to_string()),
            md5,
            mtime: f.mtime,
        }]),
        Err(e) => Reply::cannot(FileOp::Hash, name, &e),
    }
}

/// `FileHash checkall`: every indexed file's md5. Files not hashed yet
/// are hashed as their row is written; one that vanished or cannot be
/// read since the scan is left out.
pub(super) fn checkall<'a>(share: &'a Share, snap: &'a Index) -> Reply<'a> {
    let rows = snap.all().filter_map(move |(name, e)| {
        let (md5, mtime) = match e.md5 {
            Some(d) => (d, e.mtime),
            None => {
                let f = share.open_file(name).ok()?;
                (share.md5_of(&f).ok()?, f.mtime)
            }
        };
        Some(HashRow {
            name: Cow::Borrowed(name),
            md5,
            mtime,
        })
    });
    Reply::hashes(rows)
}

/// `History`: the last `n` rows, read from the file as they are written,
/// so a long history costs no table in memory; with a filter, the last n
/// rows it keeps, read the same way.
pub(super) fn history(history: &History, n: usize, filter: &HistoryFilter) -> Reply<'static> {
    if !filter.is_all() {
        return match history.matching(n, filter) {
            Ok(rows) => Reply::history(rows),
            Err(e) => e.reply(),
        };
    }
    match history.rows(n) {
        Ok(rows) => Reply::history(rows),
        Err(e) => e.reply(),
    }
}

#[cfg(test)]
mod tests {
    use super::regex_hint;

    #[test]
    fn a_pattern_that_looks_like_a_regular_expression_gets_a_shell_style_hint() {
        let hint = regex_hint("^docs/.*\\.txt$").unwrap();
        assert!(hint.contains("shell-style"), "{hint}");
        assert!(hint.contains("\"docs/*.txt\""), "{hint}");
        assert!(regex_hint(".*\\.pdf").unwrap().contains("\"*.pdf\""));
        assert!(regex_hint("a$").is_some());
        assert!(regex_hint("a.*b").is_some());
        // A shell pattern for hidden names is not a regular expression.
        assert_eq!(regex_hint(".*"), None);
        assert_eq!(regex_hint("docs/.*"), None);
        assert_eq!(regex_hint("docs/*.txt"), None);
        assert_eq!(regex_hint("[^a]*"), None);
        // A control character in the pattern is shown escaped.
        assert!(!regex_hint("^a\u{1b}b$").unwrap().contains('\u{1b}'));
    }
}
