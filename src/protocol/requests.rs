//! The reading side of a control connection, generic over [`BufRead`]:
//! lines capped in length, and one [`Request`] or [`Refusal`] for each
//! line that is not blank. A line whose verb is FTP's is parsed by FTP's
//! parser, any other by the native one ([`Parsed`] says which).

use std::io::{self, BufRead};

use super::{command, ftp_command, Command, Dialect, Ftp, ParseError, Reply, Spec};
use crate::proof::{split_mac, SessionKey};

/// A request line that parsed.
#[derive(Debug)]
pub struct Request {
    /// The declaration of its command.
    pub spec: &'static Spec,
    pub command: Parsed,
    /// The line as the history records it: trimmed, with any secret
    /// masked ([`without_secret`]).
    pub line: String,
    /// The line as it came, for the MACs of its replies.
    pub said: Said,
}

/// A request line as the client sent it, without its line end and its
/// ` mac=` word: what the MACs of its replies cover (PROTOCOL.md section
/// 12). It may hold a secret or a proof, so it is never shown.
#[derive(Default)]
pub struct Said(pub String);

impl std::fmt::Debug for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Said(..)")
    }
}

/// What a request line parsed into: a command of one dialect or the
/// other. A line is FTP's when its verb is an FTP verb (or it is `AUTH
/// TLS`); any other line is parsed as a native command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Native(Command),
    Ftp(Ftp),
}

/// Parses one request line in the dialect its verb belongs to. A blank
/// line is `Ok(None)`: it gets no reply.
pub fn parse_request(line: &str) -> Result<Option<(&'static Spec, Parsed)>, ParseError> {
    if let Some(ftp) = ftp_command::parse_ftp(line) {
        return ftp.map(|(spec, f)| Some((spec, Parsed::Ftp(f))));
    }
    Ok(command::parse_request(line)?.map(|(spec, c)| (spec, Parsed::Native(c))))
}

/// A line refused before it could be a request: too long, not UTF-8, or
/// not a command with its arguments.
#[derive(Debug)]
pub struct Refusal {
    /// The 500 or 501 that answers it.
    pub reply: Reply<'static>,
    /// The line as the history records it.
    pub line: String,
    /// Whose words refuse it: FTP's for a line whose verb is FTP's, the
    /// native protocol's for any other.
    pub dialect: Dialect,
    /// The line as it came, for the MAC of its reply.
    pub said: Said,
    /// True when the session ends after this reply (a request whose MAC
    /// does not match).
    pub closes: bool,
}

impl Refusal {
    /// The refusal of `line` (as the history records it) with `reply`.
    fn new(reply: Reply<'static>, line: String, said: Said) -> Refusal {
        let dialect = if ftp_command::is_ftp_line(&line) {
            Dialect::Ftp
        } else {
            Dialect::P2pshare
        };
        Refusal {
            reply,
            line,
            dialect,
            said,
            closes: false,
        }
    }

    /// The refusal of a line whose MAC is missing or wrong, or that cannot
    /// be checked (`said` empty then): the session ends.
    fn changed(line: String, said: Said) -> Refusal {
        Refusal {
            reply: Reply::request_changed(),
            line,
            dialect: Dialect::P2pshare,
            said,
            closes: true,
        }
    }
}

/// What checks the MACs of request lines after a proof login.
struct RequestMacs {
    key: SessionKey,
    /// The number of the last request counted.
    n: u64,
}

/// The requests of a connection, a line at a time: an iterator of
/// `io::Result<Result<Request, Refusal>>`, ending at the end of the
/// stream. A read error (a timeout) is handed on as it is, and the line
/// begun is kept: the next call goes on with it.
pub struct Requests<R> {
    input: R,
    lines: LineReader,
    max_line: usize,
    macs: Option<RequestMacs>,
}

impl<R: BufRead> Requests<R> {
    /// Requests from `input`, of at most `max_line` bytes each.
    pub fn new(input: R, max_line: usize) -> Requests<R> {
        Requests {
            input,
            lines: LineReader::default(),
            max_line,
            macs: None,
        }
    }

    /// From the next line on, every non-blank line must end with its MAC
    /// under `key` (PROTOCOL.md section 12), numbered from 1; the word is
    /// taken off before the line is parsed.
    pub fn check_macs(&mut self, key: SessionKey) {
        self.macs = Some(RequestMacs { key, n: 0 });
    }

    /// True once [`Requests::check_macs`] was called.
    pub fn checks_macs(&self) -> bool {
        self.macs.is_some()
    }

    /// `read` checked against its MAC, when MACs are checked: the line
    /// without its MAC word; None for a blank line (not counted).
    fn checked(&mut self, read: Vec<u8>) -> Option<Result<Vec<u8>, Refusal>> {
        let Some(macs) = &mut self.macs else {
            return Some(Ok(read));
        };
        if read.iter().all(|&b| b == b' ' || b == b'\t') {
            return None;
        }
        macs.n += 1;
        let mut line = match String::from_utf8(read) {
            Ok(line) => line,
            Err(e) => {
                let shown = String::from_utf8_lossy(e.as_bytes()).into_owned();
                return Some(Err(Refusal::changed(recorded(shown), Said::default())));
            }
        };
        let Some((text, mac)) = split_mac(&line) else {
            let said = Said(line.clone());
            return Some(Err(Refusal::changed(recorded(line), said)));
        };
        let right = macs.key.request_mac(macs.n, text).same_as(&mac);
        let len = text.len();
        line.truncate(len);
        Some(if right {
            Ok(line.into_bytes())
        } else {
            let said = Said(line.clone());
            Err(Refusal::changed(recorded(line), said))
        })
    }

    pub fn get_ref(&self) -> &R {
        &self.input
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// What one line read comes to; None for a blank line.
    fn request_of(read: Vec<u8>) -> Option<Result<Request, Refusal>> {
        let line = match String::from_utf8(read) {
            Ok(line) => line,
            Err(e) => {
                let line = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let said = Said(line.clone());
                return Some(Err(Refusal::new(
                    Reply::invalid_utf8(),
                    recorded(line),
                    said,
                )));
            }
        };
        let parsed = parse_request(&line);
        let said = Said(line.clone());
        match parsed {
            Ok(None) => None,
            Ok(Some((spec, command))) => Some(Ok(Request {
                spec,
                command,
                line: recorded(line),
                said,
            })),
            Err(e) => Some(Err(Refusal::new(e.reply(), recorded(line), said))),
        }
    }
}

impl<R: BufRead> Iterator for Requests<R> {
    type Item = io::Result<Result<Request, Refusal>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let read = match self.lines.read(&mut self.input, self.max_line) {
                Ok(LineRead::Eof) => return None,
                Ok(LineRead::TooLong) => {
                    let line = "(line too long)".to_string();
                    if let Some(macs) = &mut self.macs {
                        // Its MAC cannot be checked: it was not kept.
                        macs.n += 1;
                        return Some(Ok(Err(Refusal::changed(line, Said::default()))));
                    }
                    return Some(Ok(Err(Refusal::new(
                        Reply::line_too_long(self.max_line),
                        line,
                        Said::default(),
                    ))));
                }
                Ok(LineRead::Line(bytes)) => bytes,
                Err(e) => return Some(Err(e)),
            };
            let read = match self.checked(read) {
                None => continue,
                Some(Ok(read)) => read,
                Some(Err(refusal)) => return Some(Ok(Err(refusal))),
            };
            if let Some(r) = Self::request_of(read) {
                return Some(Ok(r));
            }
        }
    }
}

/// A request line as the history records it: trimmed, and `AUTH ***` for
/// one that may hold a secret. Trimmed in place: no copy of the line.
fn recorded(mut line: String) -> String {
    if let Some(mask) = masked(&line) {
        return mask.to_string();
    }
    let end = line.trim_end().len();
    line.truncate(end);
    let start = line.len() - line.trim_start().len();
    line.drain(..start);
    line
}

/// What reading one request line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    Line(Vec<u8>),
    /// The line was longer than the cap; the rest of it was read and thrown
    /// away.
    TooLong,
    Eof,
}

/// Reads one LF-terminated line of at most `cap` bytes (without the LF).
/// Memory stays bounded by `cap` whatever the peer sends.
pub fn read_line_capped(r: &mut impl BufRead, cap: usize) -> io::Result<LineRead> {
    LineReader::default().read(r, cap)
}

/// A capped line reader that keeps a line begun when a read fails (a
/// timeout), so the next call goes on with it.
#[derive(Debug, Default)]
pub struct LineReader {
    line: Vec<u8>,
    too_long: bool,
}

impl LineReader {
    /// Reads up to the end of one LF-terminated line of at most `cap` bytes
    /// (without the LF), see [`read_line_capped`]. On an error the part
    /// read so far is kept for the next call.
    pub fn read(&mut self, r: &mut impl BufRead, cap: usize) -> io::Result<LineRead> {
        loop {
            let available = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                // End of stream: a last unterminated line still counts.
                let line = std::mem::take(&mut self.line);
                return Ok(if std::mem::take(&mut self.too_long) {
                    LineRead::TooLong
                } else if line.is_empty() {
                    LineRead::Eof
                } else {
                    LineRead::Line(line)
                });
            }
            let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !self.too_long {
                if self.line.len() + chunk.len() > cap + 1 {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            let used = found.unwrap_or(available.len());
            r.consume(used);
            if found.is_some() {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.too_long) || line.len() > cap {
                    return Ok(LineRead::TooLong);
                }
                return Ok(LineRead::Line(line));
            }
        }
    }
}

/// What a history shows of a request line: `AUTH ***` for any line that
/// starts with AUTH in any case (`PASS ***` for FTP's PASS), parsed or not (a misquoted or mistyped
/// AUTH line holds the secret too), whatever invisible characters come
/// before or between its letters (spaces of any kind, controls such as
/// NUL, format characters such as a byte-order mark or a zero-width
/// space, quotes, the stand-in for invalid UTF-8) and whatever follows
/// them (a no-break space, or nothing: `AUTHsecret`); else the line itself.
pub fn without_secret(request: &str) -> &str {
    masked(request).unwrap_or(request)
}

/// What the history shows for a line that may hold a secret: `AUTH ***`,
/// or `PASS ***` for FTP's password line.
fn masked(request: &str) -> Option<&'static str> {
    if starts_with_word(request, "auth") {
        Some("AUTH ***")
    } else if starts_with_word(request, "pass") {
        Some("PASS ***")
    } else {
        None
    }
}

/// True when the visible letters of `request` begin with `word`.
fn starts_with_word(request: &str, word: &str) -> bool {
    let mut letters = request
        .chars()
        .filter(|&c| !invisible(c))
        .map(|c| folded(c).to_ascii_lowercase());
    word.chars().all(|want| letters.next() == Some(want))
}

/// Characters that a person does not see as part of a command word.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '"' | '\'' | '`'
                | '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffd}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// A fullwidth ASCII letter (`Ａ`) as its ASCII one.
fn folded(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::code;
    use std::io::{BufReader, Read};

    #[test]
    fn each_line_goes_to_the_parser_of_its_dialect() {
        let input = "RETR\nretr a b.txt\nAUTH tls\nAUTH s\nfrob\nPASS\nNOOP x\n";
        let got: Vec<String> = Requests::new(input.as_bytes(), 100)
            .map(|r| match r.unwrap() {
                Ok(Request { command, .. }) => format!("{command:?}"),
                Err(refusal) => format!("{:?} {}", refusal.dialect, refusal.reply.code()),
            })
            .collect();
        assert_eq!(
            got,
            [
                "Ftp 501",
                "Ftp(Retr(\"a b.txt\"))",
                "Ftp(AuthTls)",
                "Native(Auth(\"s\"))",
                "P2pshare 500",
                "Ftp(Pass(\"\"))",
                "P2pshare 501",
            ]
        );
    }

    #[test]
    fn capped_reader_bounds_lines() {
        let long = "x".repeat(100);
        let input = format!("short\r\n{long}\nok\nlast");
        let mut r = io::BufReader::with_capacity(16, input.as_bytes());
        let mut got = Vec::new();
        loop {
            match read_line_capped(&mut r, 10).unwrap() {
                LineRead::Eof => break,
                other => got.push(other),
            }
        }
        assert_eq!(
            got,
            vec![
                LineRead::Line(b"short".to_vec()),
                LineRead::TooLong,
                LineRead::Line(b"ok".to_vec()),
                LineRead::Line(b"last".to_vec()),
            ]
        );
    }

    /// Gives its chunks one read at a time, with a timeout between them.
    struct Stuttering(Vec<&'static [u8]>);

    impl Read for Stuttering {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.first_mut() {
                None => Ok(0),
                Some([]) => {
                    self.0.remove(0);
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Some(c) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    *c = &c[n..];
                    if c.is_empty() {
                        self.0.remove(0);
                    }
                    Ok(n)
                }
            }
        }
    }

    #[test]
    fn a_line_cut_by_a_timeout_goes_on_in_the_next_call() {
        let input = Stuttering(vec![
            b"NO",
            b"",
            b"OP\nHEL",
            b"",
            b"P\n",
            b"",
            b"xxxxxxxxxxxxxxxxxxxx",
            b"",
            b"\nlast",
        ]);
        let mut r = BufReader::with_capacity(4, input);
        let mut lines = LineReader::default();
        let mut got = Vec::new();
        loop {
            match lines.read(&mut r, 10) {
                Ok(LineRead::Eof) => break,
                Ok(l) => got.push(l),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(
            got,
            vec![
                LineRead::Line(b"NOOP".to_vec()),
                LineRead::Line(b"HELP".to_vec()),
                LineRead::TooLong,
                LineRead::Line(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn capped_reader_takes_exactly_the_cap() {
        let input = format!("{}\n{}\n", "a".repeat(10), "b".repeat(11));
        let mut r = io::BufReader::with_capacity(4, input.as_bytes());
        assert_eq!(
            read_line_capped(&mut r, 10).unwrap(),
            LineRead::Line(b"a".repeat(10))
        );
        assert_eq!(read_line_capped(&mut r, 10).unwrap(), LineRead::TooLong);
    }

    #[test]
    fn every_auth_spelling_is_masked() {
        for line in [
            "AUTH s",
            "auth s",
            "aUtH s",
            "AUTH\u{a0}s",
            "\u{feff}AUTH s",
            "\u{0}AUTH s",
            "AUTHs",
            "AUTH",
            "\"AUTH\" s",
            "'auth' s",
            "\"AUTH s",
            "  \t AUTH s",
            "\u{3000}AUTH s",
            "A\u{200b}UTH s",
            "\u{fffd}AUTH s",
            "\u{ff21}\u{ff35}\u{ff34}\u{ff28} s",
            "\u{1b}AUTH s",
            "AUTH\ts",
        ] {
            assert_eq!(without_secret(line), "AUTH ***", "{line:?}");
        }
        for line in [
            "NOOP",
            "FileDownload auth.txt",
            "AUT",
            "HELP AUTH",
            "xAUTH s",
            "",
        ] {
            assert_eq!(without_secret(line), line, "{line:?}");
        }
    }

    #[test]
    fn requests_come_a_line_at_a_time_as_the_history_records_them() {
        let input: &[u8] = b"  NOOP  \r\n\n \t\nfrob x\nAUTH s3cret\n\xff\xfeQUIT\n";
        let long = format!("{}\nHELP\n", "x".repeat(40));
        let all = [input, long.as_bytes()].concat();
        let got: Vec<(String, Option<u16>)> = Requests::new(&all[..], 32)
            .map(|r| match r.unwrap() {
                Ok(req) => (req.line, None),
                Err(refusal) => (refusal.line, Some(refusal.reply.code())),
            })
            .collect();
        let want: Vec<(String, Option<u16>)> = vec![
            ("NOOP".into(), None),
            ("frob x".into(), Some(code::SYNTAX)),
            ("AUTH ***".into(), None),
            ("\u{fffd}\u{fffd}QUIT".into(), Some(code::SYNTAX)),
            ("(line too long)".into(), Some(code::SYNTAX)),
            ("HELP".into(), None),
        ];
        assert_eq!(got, want);
    }
}
