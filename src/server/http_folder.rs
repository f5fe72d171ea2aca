//! A folder over HTTP: its rows (`http_rows`) written as a page
//! (`http_page`), as JSON or as an md5sum manifest (`http_json`), as the
//! request asks.

use std::io;

use super::http_exchange::Exchange;
use super::http_file::is_folder;
use super::http_parse::Request;
use super::http_response::{not_found, Response};
use super::http_rows::{non_empty, rows, sort, View};
use super::{http_json, http_page};

/// A folder's listing, in the form asked for.
pub(super) fn folder(ex: &mut Exchange, req: &Request, name: &str) -> io::Result<Response> {
    if !name.is_empty() && !is_folder(ex, name) {
        return Ok(not_found());
    }
    let mut view = View {
        folder: name,
        glob: non_empty(req.param("glob")),
        from: non_empty(req.param("from")),
        to: non_empty(req.param("to")),
        sort: req.param("sort").unwrap_or("name"),
        desc: req.param("order") == Some("desc"),
        more: 0,
        refused: None,
        // Read before the snapshot: one taken after the first scan reads
        // done is the whole share.
        incomplete: !ex.shared.share.scanned(),
    };
    let snap = ex.shared.share.snapshot();
    let share = &ex.shared.share;
    if req.param("checkall").is_some() {
        return Ok(marked(
            http_json::manifest(share, &snap, name),
            view.incomplete,
        ));
    }
    let mut rows = match rows(&snap, &mut view) {
        Ok(rows) => rows,
        Err(why) => {
            view.refused = Some(why);
            Vec::new()
        }
    };
    sort(&mut rows, view.sort, view.desc);
    let json = req.param("format") == Some("json")
        || req
            .header("accept")
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    let bad = view.refused.is_some();
    let resp = if json {
        http_json::listing(&view, &rows)
    } else {
        http_page::page(&view, &rows, ex.shared.config.allow_upload)
    };
    let resp = marked(resp, view.incomplete);
    Ok(if bad {
        Response {
            status: 400,
            ..resp
        }
    } else {
        resp
    })
}

/// A listing made during the share's first scan carries the
/// `P2PSHARE-Incomplete` header.
fn marked(resp: Response, incomplete: bool) -> Response {
    match incomplete {
        true => resp.header(INCOMPLETE_HEADER, "first scan running".into()),
        false => resp,
    }
}

/// The header that marks a listing made during the first scan.
pub(super) const INCOMPLETE_HEADER: &str = "P2PSHARE-Incomplete";
