//! Uploads over HTTP, only with `--allow-upload`: `PUT` of one file (what
//! `curl -T` sends) and the page's upload form (`POST`,
//! `multipart/form-data`). Each file goes into a hidden temporary file,
//! is checked against a `Repr-Digest: md5=:...:` or `Content-MD5` the
//! client sent, and only then takes its name, by the share's placement
//! rules: never over another file.

use std::io::{self, Read, Write};

use super::http_exchange::Exchange;
use super::http_file::is_folder;
use super::http_parse::{self, base64, name_of_path, Request};
use super::http_response::{not_found, Response};
use super::http_rows::full_name;
use super::Shared;
use crate::digest::Md5;
use crate::share::hash::Streaming;
use crate::share::{Incoming, Placed, ShareError};
use crate::transfer::token;

/// The largest upload body (413 past it).
pub const MAX_UPLOAD: u64 = 1 << 40;

/// The most files one form may post.
pub const MAX_FORM_FILES: usize = 256;

fn refused_upload() -> Response {
    Response::error(
        403,
        "uploads are not allowed (the server runs without --allow-upload)",
    )
}

/// The body's announced length: 411 without one (chunked bodies are not
/// taken), 413 past [`MAX_UPLOAD`].
fn body_length(req: &Request) -> Result<u64, Response> {
    if req.header("transfer-encoding").is_some() {
        return Err(Response::error(
            411,
            "send a Content-Length (chunked bodies are not taken)",
        ));
    }
    let n: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Response::error(411, "a Content-Length is required"))?;
    if n > MAX_UPLOAD {
        return Err(Response::error(413, "upload too large"));
    }
    Ok(n)
}

/// The md5 the client announced, if any; an error for one that is not
/// an md5 in base64.
fn announced_md5(req: &Request) -> Result<Option<Md5>, Response> {
    let b64 = if let Some(rd) = req.header("repr-digest") {
        let md5 = rd.split(',').find_map(|d| {
            let (alg, v) = d.trim().split_once('=')?;
            alg.trim()
                .eq_ignore_ascii_case("md5")
                .then(|| v.trim().trim_matches(':').to_string())
        });
        match md5 {
            Some(v) => v,
            None => return Ok(None),
        }
    } else if let Some(cm) = req.header("content-md5") {
        cm.to_string()
    } else {
        return Ok(None);
    };
    unbase64(&b64)
        .map(Some)
        .ok_or_else(|| Response::error(400, "the md5 is not 16 bytes in base64"))
}

/// 16 bytes from 24 characters of padded base64.
fn unbase64(s: &str) -> Option<Md5> {
    let mut d = [0u8; 16];
    let want = s.trim();
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = want.strip_suffix("==")?.as_bytes();
    if b.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::with_capacity(16);
    for &c in b {
        let v = A.iter().position(|&x| x == c)? as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    if out.len() != 16 || bits != 0 {
        return None;
    }
    d.copy_from_slice(&out);
    Some(Md5(d))
}

/// Copies exactly `n` bytes of `from` into `incoming`, with their md5.
fn receive(from: &mut impl Read, n: u64, incoming: &Incoming) -> io::Result<Md5> {
    let mut out = io::BufWriter::with_capacity(256 * 1024, incoming.file()?);
    let mut md5 = Streaming::new();
    let mut left = n;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = from.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        md5.consume(&buf[..got]);
        out.write_all(&buf[..got])?;
        left -= got as u64;
    }
    out.flush()?;
    md5.finalize()
}

/// Begins the upload of `name` (beside a shared file of that name, which
/// it then never replaces).
fn begin(shared: &Shared, name: &str) -> Result<Incoming, Response> {
    let share = &shared.share;
    let tag = token::new().map_err(|e| Response::error(500, &e.to_string()))?;
    let begun = if share.open_file(name).is_ok() {
        share.begin_upload_beside(name, &tag)
    } else {
        share.begin_upload(name, &tag)
    };
    begun.map_err(|e| match e {
        ShareError::NotShared => not_found(),
        ShareError::Denied => Response::error(403, "permission denied"),
        ShareError::Io(e) => Response::error(500, &e.to_string()),
    })
}

/// Places a received file; the status says how it went.
fn place(shared: &Shared, name: &str, incoming: Incoming, md5: Md5) -> (u16, String) {
    let share = &shared.share;
    match incoming.place(&md5) {
        Ok(Placed::Stored) => {
            share.discard_partial(name);
            share.remember_md5(name, md5);
            share.index_now(name);
            (201, format!("{md5}  {name}\n"))
        }
        Ok(Placed::Same) => (200, format!("{md5}  {name}\n")),
        Ok(Placed::Exists) => (
            409,
            format!("409 a different file is already there: {name} (nothing was changed)\n"),
        ),
        Err(e) => (500, format!("500 cannot store {name}: {e}\n")),
    }
}

fn with_md5(status: u16, text: String, md5: Md5) -> Response {
    let mut r = Response::new(status).text(text);
    if status < 300 {
        r.headers
            .push(("Repr-Digest", format!("md5=:{}:", base64(md5.bytes()))));
        r.headers.push(("ETag", format!("\"{md5}\"")));
    }
    r
}

/// `PUT /name`: one file, its bytes the body.
pub(super) fn put(ex: &mut Exchange, req: &Request) -> io::Result<Response> {
    if !ex.shared.config.allow_upload {
        return Ok(refused_upload());
    }
    let Some((name, folder)) = name_of_path(&req.path) else {
        return Ok(not_found());
    };
    if folder || is_folder(ex, &name) {
        return Ok(Response::error(409, "a folder is there"));
    }
    let n = match body_length(req) {
        Ok(n) => n,
        Err(r) => return Ok(r),
    };
    let expected = match announced_md5(req) {
        Ok(e) => e,
        Err(r) => return Ok(r),
    };
    let incoming = match begin(ex.shared, &name) {
        Ok(i) => i,
        Err(r) => return Ok(r),
    };
    if req
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        (&*ex.conn).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    // A body that breaks off ends the connection; the temporary file
    // goes with `incoming`.
    let md5 = receive(&mut *ex.reader, n, &incoming)?;
    ex.body_read = true;
    if expected.is_some_and(|e| e != md5) {
        return Ok(Response::error(
            400,
            &format!("md5 mismatch: the body's md5 is {md5}; nothing was stored"),
        ));
    }
    let (status, text) = place(ex.shared, &name, incoming, md5);
    Ok(with_md5(status, text, md5))
}

/// `POST /folder/` from the upload form: each file part of the
/// multipart body into the folder, under the part's file name.
pub(super) fn post(ex: &mut Exchange, req: &Request) -> io::Result<Response> {
    if !ex.shared.config.allow_upload {
        return Ok(refused_upload());
    }
    let Some((folder, true)) = name_of_path(&req.path) else {
        return Ok(Response::error(405, "post the upload form to a folder"));
    };
    if !folder.is_empty() && !is_folder(ex, &folder) {
        return Ok(not_found());
    }
    let n = match body_length(req) {
        Ok(n) => n,
        Err(r) => return Ok(r),
    };
    let boundary = req
        .header("content-type")
        .filter(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"))
        .and_then(|t| {
            t.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70);
    let Some(boundary) = boundary else {
        return Ok(Response::error(
            400,
            "a multipart/form-data body is expected",
        ));
    };
    let shared = ex.shared;
    let mut body = (&mut *ex.reader).take(n);
    let mut parts = super::http_form::Parts::new(&mut body, &boundary);
    let mut report = String::new();
    let mut worst = 200;
    let mut files = 0;
    while let Some(filename) = parts.next_file()? {
        files += 1;
        if files > MAX_FORM_FILES {
            return Ok(Response::error(413, "too many files in one form").closing());
        }
        let name = full_name(&folder, &filename);
        let incoming = match begin(shared, &name) {
            Ok(i) => i,
            Err(r) => {
                parts.skip_part()?;
                worst = worst.max(r.status);
                report.push_str(&format!("{} refused: {filename}\n", r.status));
                continue;
            }
        };
        let md5 = parts.copy_part(&incoming)?;
        let (status, text) = place(shared, &name, incoming, md5);
        worst = worst.max(status);
        report.push_str(&text);
    }
    io::copy(&mut body, &mut io::sink())?;
    ex.body_read = true;
    if worst >= 300 {
        return Ok(Response::new(worst).text(report));
    }
    let back = format!("{}/", http_parse::url_of(&folder).trim_end_matches('/'));
    Ok(Response::new(303).header("Location", back).text(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_md5_in_base64() {
        let d = Md5::of(b"hello");
        assert_eq!(unbase64(&base64(d.bytes())), Some(d));
        assert_eq!(unbase64("xx"), None);
    }
}
