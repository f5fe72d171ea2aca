//! The responses of the HTTP front end: status, headers and a body
//! (bytes, or a range of a file, sent by the kernel where it can), with
//! `Content-Length` always, and `Connection` as the exchange ends.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::net::TcpStream;
use std::time::SystemTime;

use super::http_parse;

/// The 404 of every name that is missing, refused or outside the share.
pub(super) fn not_found() -> Response {
    Response::error(404, "no such file or not shared")
}

/// What a response carries.
pub(super) enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of a file from `offset`.
    File(std::fs::File, u64, u64),
}

/// A response to write.
pub(super) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// The connection closes after it.
    pub close: bool,
}

/// The headers every file and page carries against content sniffing.
pub const NOSNIFF: (&str, &str) = ("X-Content-Type-Options", "nosniff");

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
        }
    }

    /// A short plain-text reply: the code and why.
    pub fn error(status: u16, why: &str) -> Response {
        Response::new(status).text(format!("{status} {why}\n"))
    }

    pub fn text(self, body: String) -> Response {
        self.typed("text/plain; charset=utf-8", body.into_bytes())
    }

    pub fn typed(mut self, mime: &str, body: Vec<u8>) -> Response {
        self.headers.push(("Content-Type", mime.to_string()));
        self.headers.push((NOSNIFF.0, NOSNIFF.1.into()));
        self.body = Body::Bytes(body);
        self
    }

    pub fn header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    fn len(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, _, n) => *n,
        }
    }

    /// Writes the response (the head only for `HEAD`).
    pub fn write(self, conn: &TcpStream, head_only: bool) -> io::Result<()> {
        let mut head = String::with_capacity(512);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let _ = write!(
            head,
            "Date: {}\r\n",
            http_parse::http_date(SystemTime::now())
        );
        head.push_str("Server: p2pshare\r\n");
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        if self.status != 304 && self.status != 204 {
            let _ = write!(head, "Content-Length: {}\r\n", self.len());
        }
        head.push_str(if self.close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        let mut out = BufWriter::with_capacity(64 * 1024, conn);
        out.write_all(head.as_bytes())?;
        if head_only || self.status == 304 {
            return out.flush();
        }
        match self.body {
            Body::Empty => out.flush(),
            Body::Bytes(b) => {
                out.write_all(&b)?;
                out.flush()
            }
            Body::File(mut f, offset, len) => {
                out.flush()?;
                drop(out);
                f.seek(io::SeekFrom::Start(offset))?;
                send_file(&mut f.take(len), conn, len)
            }
        }
    }
}

/// The read size of a file being sent: large reads and writes keep the
/// system calls per byte few (std copies a file to a socket through
/// user space).
pub const SEND_CHUNK: usize = 256 * 1024;

/// Sends exactly `len` bytes of `from`; an error when it has fewer (a
/// file that shrank while it was sent).
fn send_file(from: &mut impl Read, conn: &TcpStream, len: u64) -> io::Result<()> {
    let mut buf = vec![
        0u8;
        SEND_CHUNK
            .min(usize::try_from(len).unwrap_or(SEND_CHUNK))
            .max(1)
    ];
    let mut left = len;
    while left > 0 {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        (&*conn).write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// The reason phrase of a status.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}
