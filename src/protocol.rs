//! The control protocol, free of sockets and files: request parsing, reply
//! codes, and reply/table formatting.
//!
//! Everything here is pure so it can be tested as tables of input line to
//! expected result (see the tests at the bottom and PROTOCOL.md).

use std::fmt;
use std::io::{self, Write};
use std::time::SystemTime;

use crate::digest::Md5;
use crate::names::unescape_one;
pub use crate::names::{escape_field, quote_word, shown, unescape_field, Escapes};
use crate::timefmt;

/// The longest request line accepted, in bytes, without its line end.
pub const MAX_LINE: usize = 4096;

/// The longest pattern `IndexGet regex` accepts.
pub const MAX_PATTERN: usize = 1024;

/// Default and largest row counts of `History`.
pub const HISTORY_DEFAULT: usize = 50;
pub const HISTORY_MAX: usize = 10_000;

/// Reply codes, named so that no handler writes a bare number.
pub mod code {
    pub const DATA: u16 = 150;
    pub const OK: u16 = 200;
    pub const STATUS: u16 = 211;
    pub const TABLE: u16 = 213;
    pub const HELP: u16 = 214;
    pub const GREETING: u16 = 220;
    pub const BYE: u16 = 221;
    pub const COMPLETE: u16 = 226;
    pub const AUTHENTICATED: u16 = 230;
    pub const CLOSING: u16 = 421;
    pub const NO_DATA: u16 = 425;
    pub const ABORTED: u16 = 426;
    pub const LOCAL_ERROR: u16 = 451;
    pub const SYNTAX: u16 = 500;
    pub const BAD_ARGS: u16 = 501;
    pub const AUTH_REQUIRED: u16 = 530;
    pub const NOT_FOUND: u16 = 550;
    pub const NAME_NOT_ALLOWED: u16 = 553;
}

/// Which data channel a transfer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    LongList,
    ShortList {
        start: SystemTime,
        end: SystemTime,
    },
    Glob(String),
    Verify(String),
    CheckAll,
    Download {
        transport: Transport,
        name: String,
        offset: u64,
    },
    Upload {
        name: String,
        size: u64,
        md5: Md5,
    },
    History(usize),
    Help(Option<String>),
    Noop,
    Auth(String),
    Quit,
}

/// Why a line was refused: the reply code (500 or 501) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: u16,
    pub message: String,
}

impl ParseError {
    fn syntax(message: impl Into<String>) -> Self {
        ParseError {
            code: code::SYNTAX,
            message: message.into(),
        }
    }
    fn usage(usage: &str) -> Self {
        ParseError {
            code: code::BAD_ARGS,
            message: format!("usage: {usage}"),
        }
    }
    fn args(message: impl Into<String>) -> Self {
        ParseError {
            code: code::BAD_ARGS,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Every command with its usage, in the order HELP lists them.
pub const USAGE: &[(&str, &str, &str)] = &[
    (
        "IndexGet",
        "IndexGet longlist | shortlist <start> <end> | regex <pattern>",
        "list shared files: all, modified between start and end, or matching a shell pattern",
    ),
    (
        "FileHash",
        "FileHash verify <name> | checkall",
        "md5 and last-modified time of one file or of every file",
    ),
    (
        "FileDownload",
        "FileDownload [TCP|UDP] <name> [<offset>]",
        "send a file over the session's data channel, from offset on",
    ),
    (
        "FileUpload",
        "FileUpload <name> <size> <md5>",
        "store a file sent over the data channel (when the peer allows uploads)",
    ),
    (
        "History",
        "History [<n>]",
        "the last n requests this peer recorded (default 50)",
    ),
    (
        "HELP",
        "HELP [<command>]",
        "this list, or one command's usage",
    ),
    ("NOOP", "NOOP", "do nothing, answer 200"),
    (
        "AUTH",
        "AUTH <secret>",
        "authenticate where the peer requires a secret",
    ),
    ("QUIT", "QUIT", "close the connection"),
];

/// The usage line of a command (matched case-insensitively).
pub fn usage_of(verb: &str) -> Option<&'static str> {
    USAGE
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(verb))
        .map(|(_, usage, _)| *usage)
}

fn usage(verb: &str) -> &'static str {
    usage_of(verb).unwrap_or("HELP")
}

/// Splits a request line into words (see PROTOCOL.md sections 1 and 11):
/// separated by runs of spaces or tabs; a word starting with `"` runs to
/// the next unescaped `"`. In bare and quoted words alike `\\`, `\t`,
/// `\n` and `\r` stand for a backslash, TAB, LF and CR; inside quotes
/// `\"` stands for a quote. A backslash before anything else stays as it is.
pub fn split_words(line: &str) -> Result<Vec<String>, ParseError> {
    split_words_with(line, Escapes::Wire)
}

/// [`split_words`] with the escapes of `escapes`.
pub fn split_words_with(line: &str, escapes: Escapes) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(words);
        }
        let quoted = rest.starts_with('"');
        if quoted {
            rest = &rest[1..];
        }
        let mut word = String::new();
        let mut closed = false;
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if quoted => {
                    closed = true;
                    end = i + 1;
                    break;
                }
                ' ' | '\t' if !quoted => {
                    end = i;
                    break;
                }
                '\\' => {
                    let after = &rest[i + 1..];
                    match unescape_one(after, quoted, escapes) {
                        Some((ch, used)) => {
                            word.push(ch);
                            // Skip what the escape took after the backslash.
                            for _ in 0..after[..used].chars().count() {
                                chars.next();
                            }
                        }
                        None => word.push('\\'),
                    }
                }
                c => word.push(c),
            }
        }
        if quoted && !closed {
            return Err(ParseError::syntax("syntax error: unterminated quote"));
        }
        rest = &rest[end..];
        if quoted && !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(ParseError::syntax(
                "syntax error: a closing quote must end the word",
            ));
        }
        words.push(word);
    }
}

/// Parses one request line (without its line end). A blank line is
/// `Ok(None)`: it gets no reply.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let words = split_words(line)?;
    let Some((verb, args)) = words.split_first() else {
        return Ok(None);
    };
    let verb_lc = verb.to_ascii_lowercase();
    let cmd = match verb_lc.as_str() {
        "indexget" => parse_indexget(args)?,
        "filehash" => parse_filehash(args)?,
        "filedownload" => parse_download(args)?,
        "fileupload" => parse_upload(args)?,
        "history" => match args {
            [] => Command::History(HISTORY_DEFAULT),
            [n] => match n.parse::<usize>() {
                Ok(n) if n <= HISTORY_MAX => Command::History(n),
                _ => {
                    return Err(ParseError::args(format!(
                        "History takes a count from 0 to {HISTORY_MAX}; usage: History [<n>]"
                    )))
                }
            },
            _ => return Err(ParseError::usage(usage("History"))),
        },
        "help" => match args {
            [] => Command::Help(None),
            [c] => Command::Help(Some(c.clone())),
            _ => return Err(ParseError::usage(usage("HELP"))),
        },
        "noop" => no_args(args, Command::Noop, "NOOP")?,
        "quit" => no_args(args, Command::Quit, "QUIT")?,
        "auth" => match args {
            [s] => Command::Auth(s.clone()),
            _ => return Err(ParseError::usage(usage("AUTH"))),
        },
        _ => {
            let shown: String = verb.chars().take(64).collect();
            return Err(ParseError::syntax(format!(
                "unknown command '{}'; HELP lists commands",
                crate::names::shown(&shown)
            )));
        }
    };
    Ok(Some(cmd))
}

fn no_args(args: &[String], cmd: Command, verb: &str) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::usage(usage(verb)))
    }
}

fn parse_indexget(args: &[String]) -> Result<Command, ParseError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(ParseError::usage(usage("IndexGet")));
    };
    match sub.to_ascii_lowercase().as_str() {
        "longlist" if rest.is_empty() => Ok(Command::LongList),
        "longlist" => Err(ParseError::usage("IndexGet longlist")),
        "shortlist" => {
            let (start, end) = match rest {
                [a, b] => (a.clone(), b.clone()),
                [d1, t1, d2, t2] => (format!("{d1} {t1}"), format!("{d2} {t2}")),
                _ => return Err(ParseError::usage("IndexGet shortlist <start> <end>")),
            };
            let start = timefmt::parse(&start).map_err(ParseError::args)?;
            let end = timefmt::parse(&end).map_err(ParseError::args)?;
            if end < start {
                return Err(ParseError::args(
                    "the end is before the start; usage: IndexGet shortlist <start> <end>",
                ));
            }
            Ok(Command::ShortList { start, end })
        }
        "regex" => match rest {
            [p] if p.is_empty() => Err(ParseError::args("empty pattern")),
            [p] if p.len() > MAX_PATTERN => Err(ParseError::args(format!(
                "pattern longer than {MAX_PATTERN} bytes"
            ))),
            [p] => Ok(Command::Glob(p.clone())),
            _ => Err(ParseError::usage("IndexGet regex <pattern>")),
        },
        _ => Err(ParseError::usage(usage("IndexGet"))),
    }
}

fn parse_filehash(args: &[String]) -> Result<Command, ParseError> {
    match args {
        [sub, name] if sub.eq_ignore_ascii_case("verify") => Ok(Command::Verify(name.clone())),
        [sub] if sub.eq_ignore_ascii_case("checkall") => Ok(Command::CheckAll),
        [sub, ..] if sub.eq_ignore_ascii_case("verify") => {
            Err(ParseError::usage("FileHash verify <name>"))
        }
        _ => Err(ParseError::usage(usage("FileHash"))),
    }
}

fn transport_of(word: &str) -> Option<Transport> {
    if word.eq_ignore_ascii_case("tcp") {
        Some(Transport::Tcp)
    } else if word.eq_ignore_ascii_case("udp") {
        Some(Transport::Udp)
    } else {
        None
    }
}

fn parse_offset(word: &str) -> Result<u64, ParseError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::args(format!(
            "offset must be a number of bytes, not '{}'; usage: {}",
            crate::names::shown(word),
            usage("FileDownload")
        )));
    }
    word.parse::<u64>()
        .map_err(|_| ParseError::args("offset out of range"))
}

fn parse_download(args: &[String]) -> Result<Command, ParseError> {
    let (transport, rest) = match args {
        [first, rest @ ..] if !rest.is_empty() => match transport_of(first) {
            Some(t) => (t, rest),
            None => (Transport::Tcp, args),
        },
        _ => (Transport::Tcp, args),
    };
    let (name, offset) = match rest {
        [name] => (name, 0),
        [name, offset] => (name, parse_offset(offset)?),
        _ => return Err(ParseError::usage(usage("FileDownload"))),
    };
    if name.is_empty() {
        return Err(ParseError::usage(usage("FileDownload")));
    }
    Ok(Command::Download {
        transport,
        name: name.clone(),
        offset,
    })
}

fn parse_upload(args: &[String]) -> Result<Command, ParseError> {
    let [name, size, md5] = args else {
        return Err(ParseError::usage(usage("FileUpload")));
    };
    let size = parse_offset(size).map_err(|_| {
        ParseError::args(format!(
            "size must be a number of bytes; usage: {}",
            usage("FileUpload")
        ))
    })?;
    let Some(md5) = Md5::from_hex(md5) else {
        return Err(ParseError::args(format!(
            "md5 must be 32 hex digits; usage: {}",
            usage("FileUpload")
        )));
    };
    Ok(Command::Upload {
        name: name.clone(),
        size,
        md5,
    })
}

/// What a history shows of a request line: `AUTH ***` for any line that
/// starts with AUTH in any case, parsed or not (a misquoted or mistyped
/// AUTH line holds the secret too), whatever invisible characters come
/// before or between its letters (spaces of any kind, controls such as
/// NUL, format characters such as a byte-order mark or a zero-width
/// space, quotes, the stand-in for invalid UTF-8) and whatever follows
/// them (a no-break space, or nothing: `AUTHsecret`); else the line itself.
pub fn without_secret(request: &str) -> &str {
    let mut letters = request
        .chars()
        .filter(|&c| !invisible(c))
        .map(|c| folded(c).to_ascii_lowercase());
    if "auth".chars().all(|want| letters.next() == Some(want)) {
        "AUTH ***"
    } else {
        request
    }
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

/// Writes a one-line reply. Line breaks inside the text are replaced so a
/// reply can never be split by what it quotes.
pub fn write_reply(w: &mut impl Write, code: u16, text: &str) -> io::Result<()> {
    writeln!(w, "{code} {}", one_line(text))
}

/// Writes a multi-line reply: every line but the last with `-`.
pub fn write_multi(w: &mut impl Write, code: u16, lines: &[String]) -> io::Result<()> {
    let Some((last, first)) = lines.split_last() else {
        return write_reply(w, code, "");
    };
    for line in first {
        writeln!(w, "{code}-{}", one_line(line))?;
    }
    write_reply(w, code, last)
}

fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

/// Header of the file tables (`IndexGet`).
pub const LIST_HEADER: &[&str] = &["name", "size", "timestamp", "type"];
/// Header of the hash tables (`FileHash`).
pub const HASH_HEADER: &[&str] = &["name", "md5", "timestamp"];
/// Header of the `History` table.
pub const HISTORY_HEADER: &[&str] = &["time", "direction", "peer", "request", "reply"];

/// Writes a 213 table: header, one line per row, and `213 <N> <noun>`.
/// Fields are escaped here; rows come in already in order.
pub fn write_table<I, R>(w: &mut impl Write, header: &[&str], rows: I, noun: &str) -> io::Result<()>
where
    I: IntoIterator<Item = R>,
    R: AsRef<[String]>,
{
    writeln!(w, "{}-{}", code::TABLE, header.join("\t"))?;
    let mut n = 0usize;
    for row in rows {
        let row = row.as_ref();
        write!(w, "{}-", code::TABLE)?;
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                w.write_all(b"\t")?;
            }
            w.write_all(escape_field(field).as_bytes())?;
        }
        w.write_all(b"\n")?;
        n += 1;
    }
    writeln!(w, "{} {n} {noun}", code::TABLE)
}

/// One line of a reply as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    /// True on the last line of a reply (`DDD text`), false on `DDD-text`.
    pub last: bool,
    pub text: String,
}

/// Parses a reply line (`213-...` or `213 ...`). None when malformed.
pub fn parse_reply_line(line: &str) -> Option<ReplyLine> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = line.get(..3)?.parse().ok()?;
    let (last, text) = match bytes.get(3) {
        None => (true, ""),
        Some(b' ') => (true, line.get(4..)?),
        Some(b'-') => (false, line.get(4..)?),
        Some(_) => return None,
    };
    Some(ReplyLine {
        code,
        last,
        text: text.to_string(),
    })
}

/// The `150 DATA` line's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLine {
    pub transport: Transport,
    pub port: u16,
    pub token: String,
}

/// Formats the text of the `150 DATA` line.
pub fn data_line(d: &DataLine) -> String {
    format!(
        "DATA {} port={} token={}",
        d.transport.as_str(),
        d.port,
        d.token
    )
}

/// Parses the text of a `150 DATA ...` line.
pub fn parse_data_line(text: &str) -> Option<DataLine> {
    let mut words = text.split_whitespace();
    if words.next()? != "DATA" {
        return None;
    }
    let transport = transport_of(words.next()?)?;
    let mut port = None;
    let mut token = None;
    for w in words {
        if let Some(p) = w.strip_prefix("port=") {
            port = p.parse().ok();
        } else if let Some(t) = w.strip_prefix("token=") {
            token = Some(t.to_string());
        }
    }
    Some(DataLine {
        transport,
        port: port?,
        token: token?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn parses_commands() {
        let dl = |transport, name: &str, offset| {
            Some(Command::Download {
                transport,
                name: name.into(),
                offset,
            })
        };
        let cases: Vec<(&str, Option<Command>)> = vec![
            ("", None),
            ("  \t ", None),
            ("IndexGet longlist", Some(Command::LongList)),
            ("indexget LONGLIST", Some(Command::LongList)),
            ("  IndexGet\tlonglist  ", Some(Command::LongList)),
            (
                "IndexGet shortlist 1795773600 1795780800",
                Some(Command::ShortList {
                    start: t(1795773600),
                    end: t(1795780800),
                }),
            ),
            (
                "IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 12:00:00",
                Some(Command::ShortList {
                    start: t(1795773600),
                    end: t(1795780800),
                }),
            ),
            (
                "IndexGet shortlist 2026-11-27T10:00:00Z 2026-11-27T14:00:00+02:00",
                Some(Command::ShortList {
                    start: t(1795773600),
                    end: t(1795780800),
                }),
            ),
            (
                "IndexGet shortlist 2026-11-27 2026-11-28",
                Some(Command::ShortList {
                    start: t(1795737600),
                    end: t(1795824000),
                }),
            ),
            ("IndexGet regex *.txt", Some(Command::Glob("*.txt".into()))),
            (
                "IndexGet regex \"my docs/*\"",
                Some(Command::Glob("my docs/*".into())),
            ),
            (
                "FileHash verify a.txt",
                Some(Command::Verify("a.txt".into())),
            ),
            ("filehash CHECKALL", Some(Command::CheckAll)),
            ("FileDownload a.txt", dl(Transport::Tcp, "a.txt", 0)),
            ("FileDownload TCP a.txt", dl(Transport::Tcp, "a.txt", 0)),
            ("FileDownload udp a.txt", dl(Transport::Udp, "a.txt", 0)),
            (
                "FileDownload tcp a.txt 100",
                dl(Transport::Tcp, "a.txt", 100),
            ),
            ("FileDownload a.txt 100", dl(Transport::Tcp, "a.txt", 100)),
            ("FileDownload TCP", dl(Transport::Tcp, "TCP", 0)),
            (
                "FileDownload \"a \\\"b\\\" \\\\c\"",
                dl(Transport::Tcp, "a \"b\" \\c", 0),
            ),
            (
                "FileUpload a.txt 3 900150983CD24FB0D6963F7D28E17F72",
                Some(Command::Upload {
                    name: "a.txt".into(),
                    size: 3,
                    md5: Md5::of(b"abc"),
                }),
            ),
            ("History", Some(Command::History(HISTORY_DEFAULT))),
            ("history 5", Some(Command::History(5))),
            ("HELP", Some(Command::Help(None))),
            (
                "help indexget",
                Some(Command::Help(Some("indexget".into()))),
            ),
            ("NOOP", Some(Command::Noop)),
            ("AUTH s3cret", Some(Command::Auth("s3cret".into()))),
            ("quit", Some(Command::Quit)),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "line {line:?}");
        }
    }

    #[test]
    fn refuses_bad_lines_with_the_right_code() {
        let cases: &[(&str, u16, &str)] = &[
            ("frobnicate", 500, "unknown command"),
            ("IndexGet", 501, "usage: IndexGet"),
            ("IndexGet sideways", 501, "usage: IndexGet"),
            ("IndexGet longlist extra", 501, "usage"),
            ("IndexGet shortlist 5", 501, "usage: IndexGet shortlist"),
            ("IndexGet shortlist 10 5", 501, "before the start"),
            ("IndexGet shortlist yesterday today", 501, "time"),
            ("IndexGet regex", 501, "usage"),
            ("IndexGet regex \"\"", 501, "empty"),
            ("FileHash", 501, "usage: FileHash"),
            ("FileHash verify", 501, "usage: FileHash verify"),
            ("FileHash checkall x", 501, "usage"),
            ("FileDownload", 501, "usage: FileDownload"),
            ("FileDownload TCP a b", 501, "offset"),
            ("FileDownload a -1", 501, "offset"),
            ("FileDownload a 99999999999999999999999", 501, "range"),
            ("FileUpload a 3", 501, "usage: FileUpload"),
            (
                "FileUpload a x 900150983cd24fb0d6963f7d28e17f72",
                501,
                "size",
            ),
            ("FileUpload a 3 abc", 501, "md5"),
            ("History x", 501, "History"),
            ("History 99999999", 501, "History"),
            ("NOOP now", 501, "usage: NOOP"),
            ("AUTH", 501, "usage: AUTH"),
            ("IndexGet regex \"unterminated", 500, "unterminated quote"),
            ("IndexGet regex \"a\"b", 500, "closing quote"),
        ];
        for (line, code, text) in cases {
            let err = parse(line).expect_err(line);
            assert_eq!(err.code, *code, "line {line:?}: {err}");
            assert!(err.message.contains(text), "line {line:?}: {err}");
        }
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
    fn long_patterns_are_refused() {
        let line = format!("IndexGet regex {}", "*".repeat(MAX_PATTERN + 1));
        assert_eq!(parse(&line).unwrap_err().code, 501);
    }

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "a\tb", "line\nbreak\r", "back\\slash", "\\t"] {
            assert_eq!(unescape_field(&escape_field(s)), s);
        }
        assert_eq!(escape_field("a\tb\\"), "a\\tb\\\\");
    }

    #[test]
    fn quoting_round_trips_through_split_words() {
        for s in [
            "plain",
            "two words",
            "q\"uote",
            "back\\slash",
            "",
            "tab\there",
        ] {
            let line = format!("verb {}", quote_word(s));
            assert_eq!(
                split_words(&line).unwrap(),
                vec!["verb".to_string(), s.into()]
            );
        }
    }

    #[test]
    fn formats_tables_and_replies() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            HASH_HEADER,
            vec![vec!["a\tb".to_string(), "x".into(), "y".into()]],
            "files",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "213-name\tmd5\ttimestamp\n213-a\\tb\tx\ty\n213 1 files\n"
        );
        let mut out = Vec::new();
        write_multi(
            &mut out,
            150,
            &["row".into(), "DATA tcp port=1 token=ab".into()],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "150-row\n150 DATA tcp port=1 token=ab\n"
        );
        let mut out = Vec::new();
        write_reply(&mut out, 550, "no\nsuch").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "550 no such\n");
    }

    #[test]
    fn parses_reply_and_data_lines() {
        type Want = Option<(u16, bool, &'static str)>;
        let cases: &[(&str, Want)] = &[
            ("213-name\tsize", Some((213, false, "name\tsize"))),
            ("213 3 files\n", Some((213, true, "3 files"))),
            ("200", Some((200, true, ""))),
            ("2x0 nope", None),
            ("20", None),
            ("200x", None),
        ];
        for (line, want) in cases {
            let got = parse_reply_line(line).map(|r| (r.code, r.last, r.text));
            assert_eq!(
                got,
                want.map(|(c, l, t)| (c, l, t.to_string())),
                "line {line:?}"
            );
        }
        let d = parse_data_line("DATA tcp port=40123 token=5f2a9c0e81d3b7aa").unwrap();
        assert_eq!(d.port, 40123);
        assert_eq!(d.token, "5f2a9c0e81d3b7aa");
        assert_eq!(d.transport, Transport::Tcp);
        assert_eq!(data_line(&d), "DATA tcp port=40123 token=5f2a9c0e81d3b7aa");
        assert_eq!(parse_data_line("DATA tcp port=x token=y"), None);
        assert_eq!(parse_data_line("DATA sctp port=1 token=y"), None);
    }
}
