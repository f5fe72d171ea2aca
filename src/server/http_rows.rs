//! The rows of a folder as the HTTP front end lists it, from the share's
//! index: the files and subfolders right inside it, or, with a search
//! (`glob`, as `IndexGet regex`; `from`/`to`, as `IndexGet shortlist`),
//! every matching file below it, sorted by a query parameter.

use std::time::SystemTime;

use crate::digest::Md5;
use crate::share::index::{Entry, Index};

/// The most rows a search returns; more are counted, not listed.
pub const MAX_SEARCH_ROWS: usize = 100_000;

/// One row: a file, or a subfolder summed up.
pub(super) struct Row<'a> {
    /// The name below the folder listed (a path for search results).
    pub name: &'a str,
    pub dir: bool,
    pub size: u64,
    pub mtime: SystemTime,
    pub mime: &'static str,
    pub md5: Option<Md5>,
}

impl<'a> Row<'a> {
    /// The row of the file `e`, shown as `name`.
    fn file(name: &'a str, e: &Entry) -> Row<'a> {
        Row {
            name,
            dir: false,
            size: e.size,
            mtime: e.mtime,
            mime: e.mime,
            md5: e.md5,
        }
    }
}

/// What was asked of a folder.
pub(super) struct View<'q> {
    /// The folder's share name (`""` for the top).
    pub folder: &'q str,
    pub glob: Option<&'q str>,
    pub from: Option<&'q str>,
    pub to: Option<&'q str>,
    pub sort: &'q str,
    pub desc: bool,
    /// Rows a search found beyond [`MAX_SEARCH_ROWS`].
    pub more: usize,
    /// Why the search was refused, if it was.
    pub refused: Option<String>,
    /// The share's first scan still runs: the rows are part of it only.
    pub incomplete: bool,
}

impl View<'_> {
    pub fn searching(&self) -> bool {
        self.glob.is_some() || self.from.is_some() || self.to.is_some()
    }
}

pub(super) fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

/// `folder/name`, or `name` for the top.
pub(super) fn full_name(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// The rows of the view: the folder's children, or the search's files.
pub(super) fn rows<'s>(snap: &'s Index, view: &mut View) -> Result<Vec<Row<'s>>, String> {
    let prefix = if view.folder.is_empty() {
        String::new()
    } else {
        format!("{}/", view.folder)
    };
    let below = snap.starting_with(&prefix);
    if !view.searching() {
        return Ok(children(below, prefix.len()));
    }
    let time = |v: Option<&str>, default: SystemTime| match v {
        None => Ok(default),
        Some(s) => crate::timefmt::parse(s.trim()).map_err(|e| format!("bad time '{s}': {e}")),
    };
    let from = time(view.from, SystemTime::UNIX_EPOCH)?;
    let to = time(
        view.to,
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 40),
    )?;
    let matcher = match view.glob {
        Some(g) => Some(crate::share::index::Matcher::new(g).map_err(|e| e.0)?),
        None => None,
    };
    let deadline = crate::stop::deadline_in(crate::share::index::MATCH_BUDGET);
    let mut out = Vec::new();
    for (n, e) in below {
        let e = &e;
        let t = crate::timefmt::clamp(e.mtime);
        if t < from || t > to {
            continue;
        }
        if let Some(m) = &matcher {
            if std::time::Instant::now() > deadline {
                return Err("pattern too costly; use a simpler one".into());
            }
            if !m.matches(n) {
                continue;
            }
        }
        if out.len() >= MAX_SEARCH_ROWS {
            view.more += 1;
            continue;
        }
        out.push(Row::file(&n[prefix.len()..], e));
    }
    Ok(out)
}

/// The files right inside a folder, and its subfolders summed up, from
/// the index's entries below it (`skip`: the length of the folder's
/// prefix).
fn children<'s>(below: impl Iterator<Item = (&'s str, Entry)>, skip: usize) -> Vec<Row<'s>> {
    let mut out: Vec<Row> = Vec::new();
    for (n, e) in below {
        let e = &e;
        let rest = &n[skip..];
        match rest.split_once('/') {
            None => out.push(Row::file(rest, e)),
            Some((sub, _)) => match out.last_mut() {
                Some(last) if last.dir && last.name == sub => {
                    last.size += e.size;
                    last.mtime = last.mtime.max(e.mtime);
                }
                _ => out.push(Row {
                    name: sub,
                    dir: true,
                    size: e.size,
                    mtime: e.mtime,
                    mime: "folder",
                    md5: None,
                }),
            },
        }
    }
    out
}

/// Folders first, then by the column asked for (`name`, `size`, `time`,
/// `type`, `md5`), ties by name.
pub(super) fn sort(rows: &mut [Row], by: &str, desc: bool) {
    rows.sort_by(|a, b| {
        let key = match by {
            "size" => a.size.cmp(&b.size),
            "time" => a.mtime.cmp(&b.mtime),
            "type" => a.mime.cmp(b.mime),
            "md5" => a.md5.map(|d| d.0).cmp(&b.md5.map(|d| d.0)),
            _ => std::cmp::Ordering::Equal,
        };
        let key = key.then_with(|| a.name.cmp(b.name));
        let key = if desc { key.reverse() } else { key };
        b.dir.cmp(&a.dir).then(key)
    });
}
