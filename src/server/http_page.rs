//! A folder as an HTML page: no script at all, a strict CSP, readable on
//! a phone (one column that wraps), every name HTML-escaped and every
//! link percent-encoded. Column heads sort (`?sort=size&order=desc`); a
//! search form sends `glob`, `from` and `to` as plain query parameters,
//! so a search is a URL one can share; with `--allow-upload`, an upload
//! form posts files into the folder.

use std::fmt::Write as _;

use super::http_parse::{encode_component, url_of};
use super::http_response::Response;
use super::http_rows::{full_name, Row, View};
use crate::names::shown;

/// The page's CSP: nothing but its own inline style, forms to itself,
/// links and images of this origin.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
                            form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:sans-serif;margin:1em;max-width:70em}\
table{border-collapse:collapse;width:100%}td,th{padding:.3em;text-align:left;\
border-bottom:1px solid #ddd;vertical-align:top}td.n{word-break:break-all}\
td.m{font-family:monospace;font-size:.8em;word-break:break-all}\
form{margin:.5em 0}input{margin:.2em}@media(max-width:40em){.w{display:none}}";

/// `s` with `& < > " '` escaped, and shown as the console shows names
/// (control characters as `\u{..}`).
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in shown(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value: a URL, already percent-encoded, escaped anyway.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// The page of a folder's rows.
pub(super) fn page(view: &View, rows: &[Row], upload: bool) -> Response {
    let mut out = String::with_capacity(2048 + rows.len() * 300);
    let title = format!("/{}", view.folder);
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} - p2pshare</title><style>{STYLE}</style></head><body><h1>",
        html(&title)
    );
    crumbs(&mut out, view.folder);
    out.push_str("</h1>");
    search_form(&mut out, view);
    if let Some(why) = &view.refused {
        let _ = write!(out, "<p><strong>Search refused: {}</strong></p>", html(why));
    }
    if view.incomplete {
        out.push_str(
            "<p><strong>Incomplete: the first scan of the share is still running; \
             files not listed yet may be there.</strong></p>",
        );
    }
    let here = format!("{}/", url_of(view.folder).trim_end_matches('/'));
    let _ = write!(
        out,
        "<p><a href=\"{}?checkall\">md5 manifest</a> &middot; <a href=\"{}?format=json\">JSON</a></p>",
        attr(&here),
        attr(&here)
    );
    out.push_str("<table><thead><tr>");
    for (key, label, class) in [
        ("name", "Name", ""),
        ("size", "Size", ""),
        ("time", "Modified", ""),
        ("type", "Type", " class=\"w\""),
        ("md5", "MD5", " class=\"w\""),
    ] {
        let desc = view.sort == key && !view.desc;
        let _ = write!(
            out,
            "<th{class}><a href=\"{}\">{label}{}</a></th>",
            attr(&sort_link(view, key, desc)),
            if view.sort == key {
                if view.desc {
                    " &#9660;"
                } else {
                    " &#9650;"
                }
            } else {
                ""
            }
        );
    }
    out.push_str("</tr></thead><tbody>");
    if !view.folder.is_empty() && !view.searching() {
        out.push_str("<tr><td class=\"n\"><a href=\"../\">../</a></td><td></td><td></td><td class=\"w\"></td><td class=\"w\"></td></tr>");
    }
    for r in rows {
        row(&mut out, view, r);
    }
    out.push_str("</tbody></table>");
    if view.more > 0 {
        let _ = write!(out, "<p>{} more not shown.</p>", view.more);
    }
    if upload {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{}\" enctype=\"multipart/form-data\">\
             <input type=\"file\" name=\"file\" multiple> <input type=\"submit\" value=\"Upload\"></form>",
            attr(&here)
        );
    }
    out.push_str("</body></html>\n");
    Response::new(200)
        .typed("text/html; charset=utf-8", out.into_bytes())
        .header("Content-Security-Policy", PAGE_CSP.into())
        .header("Referrer-Policy", "no-referrer".into())
}

/// The folder's path, each part a link.
fn crumbs(out: &mut String, folder: &str) {
    out.push_str("<a href=\"/\">/</a>");
    if folder.is_empty() {
        return;
    }
    let mut so_far = String::new();
    for part in folder.split('/') {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        let _ = write!(
            out,
            "<a href=\"{}/\">{}</a>/",
            attr(&url_of(&so_far)),
            html(part)
        );
    }
}

fn search_form(out: &mut String, view: &View) {
    let val = |v: Option<&str>| attr(&html(v.unwrap_or("")));
    let _ = write!(
        out,
        "<form method=\"get\"><input name=\"glob\" placeholder=\"glob, e.g. *.txt\" value=\"{}\"> \
         from <input name=\"from\" placeholder=\"2026-01-01T00:00:00Z\" value=\"{}\"> \
         to <input name=\"to\" placeholder=\"2026-12-31T23:59:59Z\" value=\"{}\"> \
         <input type=\"submit\" value=\"Search\"></form>",
        val(view.glob),
        val(view.from),
        val(view.to)
    );
}

/// The same view, sorted by `key`.
fn sort_link(view: &View, key: &str, desc: bool) -> String {
    let mut q = format!("?sort={key}");
    if desc {
        q.push_str("&order=desc");
    }
    for (k, v) in [("glob", view.glob), ("from", view.from), ("to", view.to)] {
        if let Some(v) = v {
            let _ = write!(q, "&{k}={}", encode_component(v));
        }
    }
    q
}

fn row(out: &mut String, view: &View, r: &Row) {
    let mut url = url_of(&full_name(view.folder, r.name));
    let mut shown_name = html(r.name);
    if r.dir {
        url.push('/');
        shown_name.push('/');
    }
    let _ = write!(
        out,
        "<tr><td class=\"n\"><a href=\"{}\">{shown_name}</a></td><td>{}</td><td>{}</td>\
         <td class=\"w\">{}</td><td class=\"m w\">{}</td></tr>",
        attr(&url),
        r.size,
        crate::timefmt::display(r.mtime),
        html(r.mime),
        r.md5.map(|d| d.to_string()).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(html("<b>&\"x'\u{1b}"), "&lt;b&gt;&amp;&quot;x&#39;\\u{1b}");
    }
}
