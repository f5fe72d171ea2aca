//! The replies only a stdio session gives (`p2pshare serve --stdio`, as
//! ssh runs it): the announcement of bytes that travel inline on the
//! control stream, and the refusals of what needs a socket of its own.

use std::fmt::Display;

use super::ftp_reply::code::NOT_IMPLEMENTED;
use super::lines::inline_data_line;
use super::{code, Reply};

impl<'a> Reply<'a> {
    /// The 150 of an inline upload: send exactly `bytes` raw bytes now.
    pub fn inline_data(bytes: u64) -> Reply<'a> {
        Reply::line(code::DATA, inline_data_line(bytes))
    }

    /// `FileDownload UDP` on a stdio session: there is no socket for it.
    pub fn udp_over_stdio() -> Reply<'a> {
        Reply::line(
            code::NOT_FOUND,
            "UDP is not available over a stdio session (it has no socket of its own); \
             FileDownload TCP <name> [<offset>] sends the bytes inline on this stream",
        )
    }

    /// FTP's `PASV` or `EPSV` on a stdio session: no listener is opened.
    pub fn passive_over_stdio() -> Reply<'a> {
        Reply::line(
            NOT_IMPLEMENTED,
            "passive mode is not available over a stdio session (it opens no socket); \
             the native FileDownload and FileUpload send file bytes inline",
        )
    }

    /// An inline upload whose bytes stopped coming after `got` of `size`:
    /// the stream ended or stalled. The session closes after it, the
    /// stream being out of step.
    pub fn inline_upload_broken(got: u64, size: u64, e: &dyn Display) -> Reply<'a> {
        Reply::line(
            code::ABORTED,
            format!(
                "upload broken after {got} of {size} bytes ({e}); nothing stored; \
                 closing the session"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Reply<'_>) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stdio_replies_read_as_they_should() {
        assert_eq!(text(Reply::inline_data(15)), "150 DATA inline bytes=15\n");
        assert!(text(Reply::udp_over_stdio()).starts_with("550 UDP is not available"));
        assert!(text(Reply::passive_over_stdio()).starts_with("502 passive mode"));
        assert_eq!(
            text(Reply::inline_upload_broken(3, 9, &"stalled")),
            "426 upload broken after 3 of 9 bytes (stalled); nothing stored; closing the session\n"
        );
    }
}
