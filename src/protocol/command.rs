//! The native commands: one declaration each (a [`Verb`] in [`NATIVE`],
//! whose [`Spec`] is also listed in [`super::COMMANDS`]), the typed
//! [`Command`] a native request line parses into, and [`parse`]. FTP's
//! verbs are not here: they have their own table and request type in
//! [`super::ftp_command`].

use std::time::SystemTime;

use super::spec::{Dialect, ParseError, Spec, Verb};
use super::{find, shown, split_words, Transport, HISTORY_DEFAULT, HISTORY_MAX, MAX_PATTERN};
use crate::digest::Md5;
use crate::proof::{Mac, Nonce};
use crate::timefmt;

/// A parsed request, with its arguments as typed values.
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
    /// `History [<n>] [--only <verb>] [--no-poll]`: the last n rows the
    /// filter keeps.
    History(usize, HistoryFilter),
    /// `HELP`, or `HELP <command>` for a command the table holds.
    Help(Option<&'static Spec>),
    Noop,
    Auth(String),
    /// `AUTH PROOF <client-nonce> <client-proof>` (PROTOCOL.md section 12).
    AuthProof {
        nonce: Nonce,
        proof: Proof,
    },
    Quit,
}

/// The client's proof of `AUTH PROOF`: compared only in constant time
/// ([`Mac::same_as`]), and never shown.
#[derive(Clone, Copy)]
pub struct Proof(pub Mac);

impl PartialEq for Proof {
    fn eq(&self, other: &Proof) -> bool {
        self.0.same_as(&other.0)
    }
}

impl Eq for Proof {}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Proof(..)")
    }
}

/// How `AUTH PROOF` is used, as its malformed forms are answered.
pub const AUTH_PROOF_USAGE: &str = "AUTH PROOF <client-nonce> <client-proof> (32 hex digits each)";

pub(super) static INDEX_GET: Verb<Command> = Verb {
    spec: Spec {
        verb: "IndexGet",
        usage: "IndexGet longlist | shortlist <start> <end> | regex <pattern>",
        help: "list shared files: all, modified between start and end, or matching a shell pattern",
        needs_auth: true,
        dialect: Dialect::P2pshare,
    },
    parse: parse_indexget,
};

pub(super) static FILE_HASH: Verb<Command> = Verb {
    spec: Spec {
        verb: "FileHash",
        usage: "FileHash verify <name> | checkall",
        help: "md5 and last-modified time of one file or of every file",
        needs_auth: true,
        dialect: Dialect::P2pshare,
    },
    parse: parse_filehash,
};

pub(super) static FILE_DOWNLOAD: Verb<Command> = Verb {
    spec: Spec {
        verb: "FileDownload",
        usage: "FileDownload [TCP|UDP] <name> [<offset>]",
        help: "send a file over the session's data channel, from offset on",
        needs_auth: true,
        dialect: Dialect::P2pshare,
    },
    parse: parse_download,
};

pub(super) static FILE_UPLOAD: Verb<Command> = Verb {
    spec: Spec {
        verb: "FileUpload",
        usage: "FileUpload <name> <size> <md5>",
        help: "store a file sent over the data channel (when the peer allows uploads)",
        needs_auth: true,
        dialect: Dialect::P2pshare,
    },
    parse: parse_upload,
};

pub(super) static HISTORY: Verb<Command> = Verb {
    spec: Spec {
        verb: "History",
        usage: "History [<n>] [--only <verb>] [--no-poll]",
        help: "the last n requests this peer recorded (default 50); --only: those of one command; --no-poll: without the FileHash checkall rows of pollers",
        needs_auth: true,
        dialect: Dialect::P2pshare,
    },
    parse: parse_history,
};

pub(super) static HELP: Verb<Command> = Verb {
    spec: Spec {
        verb: "HELP",
        usage: "HELP [<command>]",
        help: "this list, or one command's usage",
        needs_auth: false,
        dialect: Dialect::P2pshare,
    },
    parse: parse_help,
};

pub(super) static NOOP: Verb<Command> = Verb {
    spec: Spec {
        verb: "NOOP",
        usage: "NOOP",
        help: "do nothing, answer 200",
        needs_auth: false,
        dialect: Dialect::P2pshare,
    },
    parse: |args| no_args(args, Command::Noop, &NOOP),
};

pub(super) static AUTH: Verb<Command> = Verb {
    spec: Spec {
        verb: "AUTH",
        usage: "AUTH <secret>",
        help: "authenticate where the peer requires a secret",
        needs_auth: false,
        dialect: Dialect::P2pshare,
    },
    parse: parse_auth,
};

pub(super) static QUIT: Verb<Command> = Verb {
    spec: Spec {
        verb: "QUIT",
        usage: "QUIT",
        help: "close the connection",
        needs_auth: false,
        dialect: Dialect::P2pshare,
    },
    parse: |args| no_args(args, Command::Quit, &QUIT),
};

/// Parses one request line (without its line end). A blank line is
/// `Ok(None)`: it gets no reply.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    Ok(parse_request(line)?.map(|(_, cmd)| cmd))
}

/// [`parse`], with the declaration of the command parsed.
pub fn parse_request(line: &str) -> Result<Option<(&'static Spec, Command)>, ParseError> {
    let words = split_words(line)?;
    let Some((verb, args)) = words.split_first() else {
        return Ok(None);
    };
    let Some(verb) = NATIVE.iter().find(|v| v.verb.eq_ignore_ascii_case(verb)) else {
        let verb: String = verb.chars().take(64).collect();
        return Err(ParseError::syntax(format!(
            "unknown command '{}'; HELP lists commands",
            shown(&verb)
        )));
    };
    Ok(Some((&verb.spec, (verb.parse)(args)?)))
}

/// The native commands, in the order `HELP` lists them.
pub static NATIVE: &[&Verb<Command>] = &[
    &INDEX_GET,
    &FILE_HASH,
    &FILE_DOWNLOAD,
    &FILE_UPLOAD,
    &HISTORY,
    &HELP,
    &NOOP,
    &AUTH,
    &QUIT,
];

fn no_args(args: &[String], cmd: Command, spec: &Spec) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::usage(spec.usage))
    }
}

fn parse_indexget(args: &[String]) -> Result<Command, ParseError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(ParseError::usage(INDEX_GET.usage));
    };
    match sub.to_ascii_lowercase().as_str() {
        "longlist" if rest.is_empty() => Ok(Command::LongList),
        "longlist" => Err(ParseError::usage("IndexGet longlist")),
        "shortlist" => parse_shortlist(rest),
        "regex" => match rest {
            [p] if p.is_empty() => Err(ParseError::args("empty pattern")),
            [p] if p.len() > MAX_PATTERN => Err(ParseError::args(format!(
                "pattern longer than {MAX_PATTERN} bytes"
            ))),
            [p] => Ok(Command::Glob(p.clone())),
            _ => Err(ParseError::usage("IndexGet regex <pattern>")),
        },
        _ => Err(ParseError::usage(INDEX_GET.usage)),
    }
}

fn parse_shortlist(args: &[String]) -> Result<Command, ParseError> {
    let (start, end) = match args {
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

fn parse_filehash(args: &[String]) -> Result<Command, ParseError> {
    match args {
        [sub, name] if sub.eq_ignore_ascii_case("verify") => Ok(Command::Verify(name.clone())),
        [sub] if sub.eq_ignore_ascii_case("checkall") => Ok(Command::CheckAll),
        [sub, ..] if sub.eq_ignore_ascii_case("verify") => {
            Err(ParseError::usage("FileHash verify <name>"))
        }
        _ => Err(ParseError::usage(FILE_HASH.usage)),
    }
}

fn parse_offset(word: &str) -> Result<u64, ParseError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::args(format!(
            "offset must be a number of bytes, not '{}'; usage: {}",
            shown(word),
            FILE_DOWNLOAD.usage
        )));
    }
    word.parse::<u64>()
        .map_err(|_| ParseError::args("offset out of range"))
}

/// Parses the words after `FileDownload` (see [`parse`]).
pub fn parse_download(args: &[String]) -> Result<Command, ParseError> {
    let (transport, rest) = match args {
        [first, rest @ ..] if !rest.is_empty() => match Transport::from_word(first) {
            Some(t) => (t, rest),
            None => (Transport::Tcp, args),
        },
        _ => (Transport::Tcp, args),
    };
    let not_transport = |word: &str| format!("'{}' is not a transport (TCP or UDP)", shown(word));
    let (name, offset) = match rest {
        [name] => (name, 0),
        // Two words, the second not a number: either the first was meant
        // as a transport or the second as an offset. Both are said.
        [name, offset] if args.len() == 2 && !offset.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ParseError::args(format!(
                "{}, and '{}' is not an offset in bytes; usage: {}",
                not_transport(name),
                shown(offset),
                FILE_DOWNLOAD.usage
            )))
        }
        [name, offset] => (name, parse_offset(offset)?),
        [first, _, _] if Transport::from_word(first).is_none() => {
            return Err(ParseError::args(format!(
                "{}; usage: {}",
                not_transport(first),
                FILE_DOWNLOAD.usage
            )))
        }
        _ => return Err(ParseError::usage(FILE_DOWNLOAD.usage)),
    };
    if name.is_empty() {
        return Err(ParseError::usage(FILE_DOWNLOAD.usage));
    }
    Ok(Command::Download {
        transport,
        name: name.clone(),
        offset,
    })
}

fn parse_upload(args: &[String]) -> Result<Command, ParseError> {
    let [name, size, md5] = args else {
        return Err(ParseError::usage(FILE_UPLOAD.usage));
    };
    let size = parse_offset(size).map_err(|_| {
        ParseError::args(format!(
            "size must be a number of bytes; usage: {}",
            FILE_UPLOAD.usage
        ))
    })?;
    let Some(md5) = Md5::from_hex(md5) else {
        return Err(ParseError::args(format!(
            "md5 must be 32 hex digits; usage: {}",
            FILE_UPLOAD.usage
        )));
    };
    Ok(Command::Upload {
        name: name.clone(),
        size,
        md5,
    })
}

fn parse_history(args: &[String]) -> Result<Command, ParseError> {
    let (n, filter) = parse_history_args(args)?;
    Ok(Command::History(n, filter))
}

/// Which history rows a `History` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only requests with this command word (case-insensitive).
    pub only: Option<String>,
    /// Leave out `FileHash checkall`, what peer mode's poller sends every
    /// poll.
    pub no_poll: bool,
}

impl HistoryFilter {
    /// True when it keeps every row.
    pub fn is_all(&self) -> bool {
        self.only.is_none() && !self.no_poll
    }

    /// Does it keep a row with this request?
    pub fn keeps(&self, request: &str) -> bool {
        let mut words = request.split_whitespace();
        let verb = words.next().unwrap_or("");
        if let Some(only) = &self.only {
            if !verb.eq_ignore_ascii_case(only) {
                return false;
            }
        }
        let poll = verb.eq_ignore_ascii_case("FileHash")
            && words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("checkall"));
        !(self.no_poll && poll)
    }
}

/// The words after `History` (or the console's `history`): a count, and
/// the filter, in any order.
pub fn parse_history_args(args: &[String]) -> Result<(usize, HistoryFilter), ParseError> {
    let mut n = None;
    let mut filter = HistoryFilter::default();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("--no-poll") {
            filter.no_poll = true;
        } else if w.eq_ignore_ascii_case("--only") && filter.only.is_none() {
            let verb = words
                .next()
                .ok_or_else(|| ParseError::usage(HISTORY.usage))?;
            filter.only = Some(verb.clone());
        } else if n.is_none() && !w.starts_with('-') {
            match w.parse::<usize>() {
                Ok(c) if c <= HISTORY_MAX => n = Some(c),
                _ => {
                    return Err(ParseError::args(format!(
                        "History takes a count from 0 to {HISTORY_MAX}; usage: {}",
                        HISTORY.usage
                    )))
                }
            }
        } else {
            return Err(ParseError::usage(HISTORY.usage));
        }
    }
    Ok((n.unwrap_or(HISTORY_DEFAULT), filter))
}

fn parse_help(args: &[String]) -> Result<Command, ParseError> {
    match args {
        [] => Ok(Command::Help(None)),
        [verb] => match find(verb) {
            Some(spec) => Ok(Command::Help(Some(spec))),
            None => Err(ParseError::args(format!(
                "unknown command '{}'; HELP lists commands",
                shown(verb)
            ))),
        },
        _ => Err(ParseError::usage(HELP.usage)),
    }
}

fn parse_auth(args: &[String]) -> Result<Command, ParseError> {
    match args {
        [word, rest @ ..] if word.eq_ignore_ascii_case("PROOF") => parse_proof(rest),
        [secret] => Ok(Command::Auth(secret.clone())),
        [] => Err(ParseError::usage(AUTH.usage)),
        _ => Err(ParseError::args(format!(
            "usage: {}; a secret with spaces is quoted: AUTH \"my secret\"",
            AUTH.usage
        ))),
    }
}

/// The words after `AUTH PROOF`: the client's nonce and proof, 32 hex
/// digits each.
fn parse_proof(args: &[String]) -> Result<Command, ParseError> {
    let hex = |w: &String| w.len() == 32 && w.bytes().all(|b| b.is_ascii_hexdigit());
    match args {
        [nonce, proof] if hex(nonce) && hex(proof) => {
            match (Nonce::from_hex(nonce), Mac::from_hex(proof)) {
                (Some(nonce), Some(proof)) => Ok(Command::AuthProof {
                    nonce,
                    proof: Proof(proof),
                }),
                _ => Err(ParseError::usage(AUTH_PROOF_USAGE)),
            }
        }
        _ => Err(ParseError::usage(AUTH_PROOF_USAGE)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::COMMANDS;
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
            (
                "History",
                Some(Command::History(HISTORY_DEFAULT, HistoryFilter::default())),
            ),
            (
                "history 5",
                Some(Command::History(5, HistoryFilter::default())),
            ),
            (
                "History --no-poll 5 --only fileDownload",
                Some(Command::History(
                    5,
                    HistoryFilter {
                        only: Some("fileDownload".into()),
                        no_poll: true,
                    },
                )),
            ),
            ("HELP", Some(Command::Help(None))),
            ("help indexget", Some(Command::Help(find("IndexGet")))),
            ("NOOP", Some(Command::Noop)),
            ("AUTH s3cret", Some(Command::Auth("s3cret".into()))),
            (
                "auth proof 0101010101010101010101010101010A 0202020202020202020202020202020b",
                Some(Command::AuthProof {
                    nonce: Nonce([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 10]),
                    proof: Proof(Mac([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 11])),
                }),
            ),
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
            ("FileDownload SCTP x", 501, "'SCTP' is not a transport"),
            ("FileDownload sctp a 5", 501, "'sctp' is not a transport"),
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
            (
                "HELP frob",
                501,
                "unknown command 'frob'; HELP lists commands",
            ),
            ("HELP a b", 501, "usage: HELP"),
            ("NOOP now", 501, "usage: NOOP"),
            ("AUTH", 501, "usage: AUTH"),
            ("AUTH s3cret pass", 501, "quoted: AUTH \"my secret\""),
            ("AUTH PROOF", 501, "usage: AUTH PROOF <client-nonce>"),
            ("AUTH proof 00", 501, "usage: AUTH PROOF <client-nonce>"),
            (
                "AUTH PROOF 0123456789abcdef0123456789abcdef 0123456789abcdef0123456789abcdeg",
                501,
                "(32 hex digits each)",
            ),
            (
                "AUTH PROOF 0123456789abcdef0123456789abcdef +123456789abcdef0123456789abcdef",
                501,
                "(32 hex digits each)",
            ),
            (
                "AUTH PROOF 0123456789abcdef0123456789abcdef 0123456789abcdef0123456789abcdef x",
                501,
                "(32 hex digits each)",
            ),
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
    fn long_patterns_are_refused() {
        let line = format!("IndexGet regex {}", "*".repeat(MAX_PATTERN + 1));
        assert_eq!(parse(&line).unwrap_err().code, 501);
    }

    #[test]
    fn the_table_holds_each_verb_once_and_gates_all_but_four() {
        for (i, s) in COMMANDS.iter().enumerate() {
            assert_eq!(find(s.verb), Some(*s));
            assert_eq!(find(&s.verb.to_ascii_lowercase()), Some(*s));
            assert!(COMMANDS[..i].iter().all(|o| o.verb != s.verb));
            assert!(s.usage.starts_with(s.verb), "{}", s.usage);
        }
        let open: Vec<&str> = COMMANDS
            .iter()
            .filter(|s| !s.needs_auth && s.dialect == Dialect::P2pshare)
            .map(|s| s.verb)
            .collect();
        assert_eq!(open, ["HELP", "NOOP", "AUTH", "QUIT"]);
        assert_eq!(find("frob"), None);
    }
}
