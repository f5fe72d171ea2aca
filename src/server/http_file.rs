//! `GET` and `HEAD` of a shared file: opened by the share's own rules
//! (a refused name is the same 404 as a missing one), with its md5 as
//! `ETag` and `Repr-Digest`, one byte range, and the conditional
//! requests that answer 304. Files are served so that they never run as
//! a page of this origin: `nosniff` and a `sandbox` CSP.

use std::io;

use super::http_exchange::Exchange;
use super::http_parse::{self, encode_component, one_range, Request};
use super::http_response::{not_found, Body, Response, NOSNIFF};
use crate::share::{OpenedFile, ShareError};

/// The CSP of every served file: no script, no plugin, an origin of its
/// own.
pub const FILE_CSP: &str =
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

pub(super) fn get(ex: &mut Exchange, req: &Request, name: &str) -> io::Result<Response> {
    let share = &ex.shared.share;
    let f = match share.open_file(name) {
        Ok(f) => f,
        Err(ShareError::NotShared) if is_folder(ex, name) => {
            // A folder asked for without its `/`.
            return Ok(Response::new(301)
                .header("Location", format!("{}/", http_parse::url_of(name)))
                .text(String::new()));
        }
        Err(ShareError::NotShared) => return Ok(not_found()),
        Err(ShareError::Denied) => return Ok(Response::error(403, "permission denied")),
        Err(ShareError::Io(e)) => return Ok(Response::error(500, &e.to_string())),
    };
    let md5 = match share.md5_of(&f) {
        Ok(d) => d,
        Err(e) => return Ok(Response::error(500, &e.to_string())),
    };
    let etag = format!("\"{md5}\"");
    let modified = http_parse::http_date(f.mtime);
    let mime = share
        .snapshot()
        .get(name)
        .map_or("application/octet-stream", |e| e.mime);
    let mut resp = Response::new(200)
        .header("Content-Type", content_type(mime))
        .header(NOSNIFF.0, NOSNIFF.1.into())
        .header("Content-Security-Policy", FILE_CSP.into())
        .header("ETag", etag.clone())
        .header("Last-Modified", modified.clone())
        .header(
            "Repr-Digest",
            format!("md5=:{}:", http_parse::base64(md5.bytes())),
        )
        .header("Accept-Ranges", "bytes".into())
        .header(
            "Content-Disposition",
            disposition(name, req.param("download").is_some()),
        );
    if not_modified(req, &etag, &f) {
        resp.status = 304;
        return Ok(resp);
    }
    let size = f.size();
    let range = match req.header("range") {
        Some(r) if if_range_holds(req, &etag, &modified) => one_range(r, size),
        _ => Ok(None),
    };
    match range {
        Err(()) => {
            let mut r = Response::error(416, "range not satisfiable");
            r.headers.push(("Content-Range", format!("bytes */{size}")));
            Ok(r)
        }
        Ok(Some((first, last))) => {
            resp.status = 206;
            resp.headers
                .push(("Content-Range", format!("bytes {first}-{last}/{size}")));
            resp.body = Body::File(f.file, first, last - first + 1);
            Ok(resp)
        }
        Ok(None) => {
            resp.body = Body::File(f.file, 0, size);
            Ok(resp)
        }
    }
}

/// True when `name` is a shared folder.
pub(super) fn is_folder(ex: &Exchange, name: &str) -> bool {
    let prefix = format!("{name}/");
    let snap = ex.shared.share.snapshot();
    let known = !snap.range_of(&prefix).is_empty();
    (known && crate::share::check_name(name).is_ok() && !ex.shared.share.is_ignored(name))
        || ex.shared.share.folder_exists(name)
}

/// A sniffed type as a header: text gets its charset.
fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// RFC 6266: an ASCII `filename` (other bytes as `_`) and the exact name
/// as RFC 8187 `filename*`.
pub fn disposition(name: &str, attachment: bool) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let ascii: String = base
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let kind = if attachment { "attachment" } else { "inline" };
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode_component(base)
    )
}

/// `If-None-Match` (which wins when present) or `If-Modified-Since`.
fn not_modified(req: &Request, etag: &str, f: &OpenedFile) -> bool {
    if let Some(tags) = req.header("if-none-match") {
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    match req
        .header("if-modified-since")
        .and_then(http_parse::parse_http_date)
    {
        Some(since) => http_parse::secs(f.mtime) <= http_parse::secs(since),
        None => false,
    }
}

/// `If-Range`: the range applies only to the version named (a strong
/// ETag, or exactly the `Last-Modified` date).
fn if_range_holds(req: &Request, etag: &str, modified: &str) -> bool {
    match req.header("if-range") {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => v == modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_keep_the_exact_name() {
        assert_eq!(
            disposition("d/caf\u{e9} \"x\".txt", false),
            "inline; filename=\"caf_ _x_.txt\"; filename*=UTF-8''caf%C3%A9%20%22x%22.txt"
        );
        assert!(disposition("a", true).starts_with("attachment; "));
    }
}
