//! Listings for scripts: a folder's rows as JSON (`?format=json` or
//! `Accept: application/json`), and the checkall of a folder as an
//! md5sum manifest (`?checkall`), so that `curl URL | md5sum -c`
//! verifies a download of it.

use std::fmt::Write as _;

use super::http_parse::url_of;
use super::http_response::Response;
use super::http_rows::{full_name, Row, View};
use crate::share::index::Index;
use crate::share::Share;

/// `s` as a JSON string, quotes included.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The rows as one JSON object.
pub(super) fn listing(view: &View, rows: &[Row]) -> Response {
    let mut out = String::with_capacity(64 + rows.len() * 200);
    out.push_str("{\"folder\":");
    json_str(&mut out, view.folder);
    let _ = write!(
        out,
        ",\"search\":{},\"more\":{},",
        view.searching(),
        view.more
    );
    if view.incomplete {
        out.push_str("\"incomplete\":true,");
    }
    if let Some(why) = &view.refused {
        out.push_str("\"error\":");
        json_str(&mut out, why);
        out.push(',');
    }
    out.push_str("\"files\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, r.name);
        let _ = write!(
            out,
            ",\"type\":\"{}\",\"size\":{},\"mtime\":\"{}\",\"mime\":",
            if r.dir { "folder" } else { "file" },
            r.size,
            crate::timefmt::display(r.mtime)
        );
        json_str(&mut out, r.mime);
        match r.md5 {
            Some(d) => {
                let _ = write!(out, ",\"md5\":\"{d}\"");
            }
            None => out.push_str(",\"md5\":null"),
        }
        out.push_str(",\"url\":");
        let mut url = url_of(&full_name(view.folder, r.name));
        if r.dir {
            url.push('/');
        }
        json_str(&mut out, &url);
        out.push('}');
    }
    out.push_str("]}\n");
    Response::new(200).typed("application/json", out.into_bytes())
}

/// A name as md5sum writes it: with `\\`, `\n`, `\r` escaped, and the
/// line then starting with a backslash, when it holds any of them.
fn md5sum_line(out: &mut String, md5: &str, name: &str) {
    if name.contains(['\\', '\n', '\r']) {
        out.push('\\');
        out.push_str(md5);
        out.push_str("  ");
        for c in name.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    } else {
        out.push_str(md5);
        out.push_str("  ");
        out.push_str(name);
    }
    out.push('\n');
}

/// Every file below `folder` as `md5  name` lines, names relative to the
/// folder. md5s not cached yet are hashed now (as `FileHash checkall`
/// does); a file that cannot be hashed is left out.
pub(super) fn manifest(share: &Share, snap: &Index, folder: &str) -> Response {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let files = snap.range_of(&prefix);
    let mut out = String::with_capacity(files.len() * 80);
    for (name, e) in snap.starting_with(&prefix) {
        let d = e.md5.or_else(|| {
            let f = share.open_file(name).ok()?;
            share.md5_of(&f).ok()
        });
        if let Some(d) = d {
            md5sum_line(&mut out, &d.to_string(), &name[prefix.len()..]);
        }
    }
    Response::new(200).text(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_every_control_character() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\t\u{1b}😀");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\t\\u001b😀\"");
    }

    #[test]
    fn md5sum_lines_escape_as_md5sum_does() {
        let mut s = String::new();
        md5sum_line(&mut s, "d", "a b");
        md5sum_line(&mut s, "d", "x\\y\nz");
        assert_eq!(s, "d  a b\n\\d  x\\\\y\\nz\n");
    }
}
