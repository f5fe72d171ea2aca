//! What the server must answer to a request line, worked out from the
//! grammar of PROTOCOL.md (sections 1, 6 and 11) and nothing else: the
//! oracle of the fuzz test. It shares no code with `src/protocol`, so a
//! parser that strays from the documented grammar shows up as a
//! disagreement.

/// The transport a download asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// The longest request line, in bytes, before its line end (section 1).
pub const MAX_LINE: usize = 4096;

/// The longest pattern `IndexGet regex` takes, in bytes (section 6).
const MAX_PATTERN: usize = 1024;

/// The most rows `History` shows (section 6).
const MAX_HISTORY: u64 = 10_000;

/// What the server should do with a line, as far as the grammar tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Blank: no reply at all.
    Nothing,
    /// This exact code.
    Code(u16),
    /// One of these codes: the grammar says the form is right, and what
    /// follows depends on the share (a pattern too costly, end before
    /// start).
    OneOf(&'static [u16]),
    /// QUIT: 221 and the close.
    Bye,
    /// A transfer may start (150), or fail with any reply.
    Download(Transport, u64),
    Upload(u64),
    /// Any well-formed reply (a name that may or may not exist).
    Any,
}

/// A request line (without its LF) as the grammar reads it.
pub fn expect(line: &[u8]) -> Expect {
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    if body.len() > MAX_LINE {
        return Expect::Code(500);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Expect::Code(500);
    };
    if is_ftp(text) {
        return Expect::Any;
    }
    let Some(words) = words(text) else {
        return Expect::Code(500);
    };
    let Some((verb, args)) = words.split_first() else {
        return Expect::Nothing;
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match verb.to_ascii_lowercase().as_str() {
        "indexget" => index_get(&args),
        "filehash" => match args.as_slice() {
            [sub, _name] if sub.eq_ignore_ascii_case("verify") => Expect::Any,
            [sub] if sub.eq_ignore_ascii_case("checkall") => Expect::Any,
            _ => Expect::Code(501),
        },
        "filedownload" => download(&args),
        "fileupload" => match args.as_slice() {
            [_name, size, md5] if is_md5(md5) => {
                number(size).map_or(Expect::Code(501), Expect::Upload)
            }
            _ => Expect::Code(501),
        },
        "history" => match args.as_slice() {
            [] => Expect::Any,
            // Section 6: the filters `--only <verb>` and `--no-poll`.
            _ if args.iter().any(|a| *a == "--only" || *a == "--no-poll") => Expect::Any,
            [n] if number(n).is_some_and(|n| n <= MAX_HISTORY) => Expect::Any,
            _ => Expect::Code(501),
        },
        "help" => match args.as_slice() {
            [] => Expect::Code(214),
            [word] if is_verb(word) => Expect::Code(214),
            _ => Expect::Code(501),
        },
        "noop" => bare(&args, Expect::Code(200)),
        // No secret is set on the fuzzed server: any AUTH is let in.
        "auth" => match args.as_slice() {
            [_secret] => Expect::Code(230),
            _ => Expect::Code(501),
        },
        "quit" => bare(&args, Expect::Bye),
        _ => Expect::Code(500),
    }
}

/// A command that takes no arguments: `then`, or 501 with any.
fn bare(args: &[&str], then: Expect) -> Expect {
    if args.is_empty() {
        then
    } else {
        Expect::Code(501)
    }
}

/// The FTP verbs of PROTOCOL.md section 13.
const FTP_VERBS: &[&str] = &[
    "user", "pass", "syst", "feat", "opts", "pwd", "xpwd", "cwd", "cdup", "type", "mode", "stru",
    "stat", "abor", "pasv", "epsv", "port", "eprt", "list", "nlst", "mlsd", "mlst", "size", "mdtm",
    "rest", "retr", "stor", "hash", "xmd5",
];

/// PROTOCOL.md section 13: a line whose first word is an FTP verb (any
/// case) is read the FTP way, its argument the rest of the line as typed;
/// so is `AUTH TLS` and its kin. What it gets depends on the session's
/// state, so the grammar only asks for a well-formed reply.
fn is_ftp(text: &str) -> bool {
    let mut words = text.split([' ', '\t']);
    let verb = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.next().unwrap_or("").to_ascii_lowercase();
    FTP_VERBS.contains(&verb.as_str())
        || (verb == "auth" && ["tls", "ssl", "tls-c", "tls-p"].contains(&arg.as_str()))
}

fn is_verb(word: &str) -> bool {
    [
        "indexget",
        "filehash",
        "filedownload",
        "fileupload",
        "history",
        "help",
        "noop",
        "auth",
        "quit",
    ]
    .contains(&word.to_ascii_lowercase().as_str())
        || FTP_VERBS.contains(&word.to_ascii_lowercase().as_str())
}

/// `indexget = "IndexGet" ws ( "longlist" / "shortlist" ws time ws time
/// / "shortlist" ws date ws clock ws date ws clock / "regex" ws pattern )`.
fn index_get(args: &[&str]) -> Expect {
    const TABLE_OR_501: Expect = Expect::OneOf(&[213, 501]);
    let Some((sub, rest)) = args.split_first() else {
        return Expect::Code(501);
    };
    match (sub.to_ascii_lowercase().as_str(), rest) {
        ("longlist", []) => Expect::Code(213),
        ("shortlist", [a, b]) if is_time(a) && is_time(b) => TABLE_OR_501,
        ("shortlist", [d1, c1, d2, c2])
            if is_date(d1)
                && (is_clock(c1) || is_minute(c1))
                && is_date(d2)
                && (is_clock(c2) || is_minute(c2)) =>
        {
            TABLE_OR_501
        }
        ("regex", [pattern]) if pattern.len() > MAX_PATTERN => Expect::Code(501),
        ("regex", [_pattern]) => TABLE_OR_501,
        _ => Expect::Code(501),
    }
}

/// `download = "FileDownload" ws [ ("TCP" / "UDP") ws ] name [ ws offset ]`,
/// the transport read first when the first of two words is one.
fn download(args: &[&str]) -> Expect {
    let (transport, rest) = match args.split_first() {
        Some((first, rest)) if !rest.is_empty() && transport(first).is_some() => {
            (transport(first).unwrap(), rest)
        }
        _ => (Transport::Tcp, args),
    };
    match rest {
        [_name] => Expect::Download(transport, 0),
        [_name, offset] => {
            number(offset).map_or(Expect::Code(501), |o| Expect::Download(transport, o))
        }
        _ => Expect::Code(501),
    }
}

fn transport(word: &str) -> Option<Transport> {
    if word.eq_ignore_ascii_case("tcp") {
        Some(Transport::Tcp)
    } else if word.eq_ignore_ascii_case("udp") {
        Some(Transport::Udp)
    } else {
        None
    }
}

/// `1*DIGIT`, as long as it fits in 64 bits.
fn number(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

/// `md5 = 32HEXDIG`.
fn is_md5(word: &str) -> bool {
    word.len() == 32 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `time = rfc3339 / date / unix-seconds / DQUOTE date SP clock [zone]
/// DQUOTE` (the quotes are the word's own: the word is `date SP clock`)
/// / "now" / DQUOTE date (SP / "T") minute DQUOTE`.
fn is_time(word: &str) -> bool {
    if number(word).is_some() || is_date(word) || word.eq_ignore_ascii_case("now") {
        return true;
    }
    if let Some((date, clock)) = word.split_once(' ') {
        return is_date(date) && (is_clock_zone(clock) || is_minute(clock));
    }
    match word.find(['T', 't']) {
        Some(at) => {
            is_date(&word[..at]) && (is_clock_zone(&word[at + 1..]) || is_minute(&word[at + 1..]))
        }
        None => false,
    }
}

/// `minute = 2DIGIT ":" 2DIGIT` (a time of day without seconds).
fn is_minute(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b.iter().enumerate().all(|(i, c)| match i {
            2 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// `date = 4DIGIT "-" 2DIGIT "-" 2DIGIT`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// `clock = 2DIGIT ":" 2DIGIT ":" 2DIGIT ["." 1*DIGIT]`.
fn is_clock(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8
        || !b[..8].iter().enumerate().all(|(i, c)| match i {
            2 | 5 => *c == b':',
            _ => c.is_ascii_digit(),
        })
    {
        return false;
    }
    match &s[8..] {
        "" => true,
        frac => frac
            .strip_prefix('.')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())),
    }
}

/// `clock [zone]`, `zone = "Z" / "z" / ("+" / "-") 2DIGIT ":" 2DIGIT`.
fn is_clock_zone(s: &str) -> bool {
    if is_clock(s) {
        return true;
    }
    if let Some(clock) = s.strip_suffix(['Z', 'z']) {
        return is_clock(clock);
    }
    let Some(at) = s.rfind(['+', '-']) else {
        return false;
    };
    let zone = &s.as_bytes()[at + 1..];
    is_clock(&s[..at])
        && zone.len() == 5
        && zone.iter().enumerate().all(|(i, c)| match i {
            2 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// The words of a line (section 1): runs of SP and HTAB cut it; a word
/// that starts with `"` runs to the next unescaped `"`, which must end it;
/// `\\`, `\t`, `\n`, `\r` (and `\"` inside quotes) are escapes, a
/// backslash before anything else is itself. None when the quoting is
/// bad (500).
pub fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| matches!(c, ' ' | '\t')).is_some() {}
        let Some(&first) = chars.peek() else {
            return Some(out);
        };
        let quoted = first == '"';
        if quoted {
            chars.next();
        }
        let mut word = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => {
                    closed = true;
                    break;
                }
                ' ' | '\t' if !quoted => break,
                '\\' => {
                    let escaped = match chars.peek() {
                        Some('\\') => Some('\\'),
                        Some('t') => Some('\t'),
                        Some('n') => Some('\n'),
                        Some('r') => Some('\r'),
                        Some('"') if quoted => Some('"'),
                        _ => None,
                    };
                    if escaped.is_some() {
                        chars.next();
                    }
                    word.push(escaped.unwrap_or('\\'));
                }
                c => word.push(c),
            }
        }
        if quoted && !closed {
            return None;
        }
        if quoted && chars.peek().is_some_and(|c| !matches!(c, ' ' | '\t')) {
            return None;
        }
        out.push(word);
    }
}

fn the_oracle_cuts_words_as_section_1_says() {
    let w = |l: &str| words(l).map(|w| w.join("|"));
    assert_eq!(w("  NOOP \t "), Some("NOOP".into()));
    assert_eq!(
        w(r#""my docs/read me.txt""#),
        Some("my docs/read me.txt".into())
    );
    assert_eq!(
        w(r"back\\slash two\nlines"),
        Some("back\\slash|two\nlines".into())
    );
    assert_eq!(
        w(r#""say \"hi\"\tnow.txt""#),
        Some("say \"hi\"\tnow.txt".into())
    );
    assert_eq!(w(r#"a"b a\b "a\b" """#), Some("a\"b|a\\b|a\\b|".into()));
    assert_eq!(w(r#"IndexGet regex "unterminated"#), None);
    assert_eq!(w(r#"IndexGet regex "a"b"#), None);
    assert_eq!(w(r#"x "a"	y"#), Some("x|a|y".into()));
}

fn the_oracle_reads_the_examples_of_protocol_md() {
    let e = |l: &str| expect(l.as_bytes());
    assert_eq!(e(""), Expect::Nothing);
    assert_eq!(e(" \t \r"), Expect::Nothing);
    assert_eq!(e("NOOP"), Expect::Code(200));
    assert_eq!(e("\"noop\""), Expect::Code(200));
    assert_eq!(e("NOOP now"), Expect::Code(501));
    assert_eq!(e("AUTH"), Expect::Code(501));
    assert_eq!(e("AUTH s3cret"), Expect::Code(230));
    assert_eq!(e("HELP"), Expect::Code(214));
    assert_eq!(e("HELP filedownload"), Expect::Code(214));
    assert_eq!(e("HELP nope"), Expect::Code(501));
    assert_eq!(e("HELP a b"), Expect::Code(501));
    // FTP verbs (section 13) take the rest of the line as typed.
    assert_eq!(e("Hash verify a.txt"), Expect::Any);
    assert_eq!(e("RETR \"unterminated"), Expect::Any);
    assert_eq!(e("AUTH tls"), Expect::Any);
    assert_eq!(e("HASHES x"), Expect::Code(500));
    assert_eq!(e("HELP retr"), Expect::Code(214));
    assert_eq!(e("History 5"), Expect::Any);
    assert_eq!(e("History x"), Expect::Code(501));
    assert_eq!(e("History 10001"), Expect::Code(501));
    assert_eq!(e("QUIT"), Expect::Bye);
    assert_eq!(e("nope"), Expect::Code(500));
    assert_eq!(e("indexget LONGLIST"), Expect::Code(213));
    assert_eq!(e("IndexGet regex \"unterminated"), Expect::Code(500));
    assert_eq!(e("IndexGet regex \"a\"b"), Expect::Code(500));
    let long = format!("NOOP{}", " ".repeat(MAX_LINE));
    assert_eq!(e(&long), Expect::Code(500));
    assert_eq!(expect(b"NOOP \xff"), Expect::Code(500));
}

fn the_oracle_reads_the_argument_forms_of_section_11() {
    let e = |l: &str| expect(l.as_bytes());
    let table = Expect::OneOf(&[213, 501]);
    assert_eq!(e("IndexGet shortlist 2020-01-01 2030-01-01"), table);
    assert_eq!(
        e("IndexGet shortlist 2026-11-27 10:00:00 2026-11-27 12:00:00.5"),
        table
    );
    assert_eq!(
        e("IndexGet shortlist 1764237600 \"2026-11-27 12:00:00+02:00\""),
        table
    );
    assert_eq!(e("IndexGet shortlist 2026-11-27t10:00:00Z 0"), table);
    assert_eq!(
        e("IndexGet shortlist 2026-11-27 10:00 0"),
        Expect::Code(501)
    );
    assert_eq!(e("IndexGet shortlist yesterday 0"), Expect::Code(501));
    assert_eq!(e("IndexGet shortlist 0"), Expect::Code(501));
    assert_eq!(e("IndexGet regex *.txt"), table);
    assert_eq!(
        e(&format!("IndexGet regex {}", "a".repeat(1025))),
        Expect::Code(501)
    );
    assert_eq!(e("IndexGet"), Expect::Code(501));
    assert_eq!(e("FileHash verify a.txt"), Expect::Any);
    assert_eq!(e("FileHash checkall x"), Expect::Code(501));
    assert_eq!(e("FileDownload a.txt"), Expect::Download(Transport::Tcp, 0));
    assert_eq!(
        e("FileDownload udp a.txt 7"),
        Expect::Download(Transport::Udp, 7)
    );
    assert_eq!(
        e("FileDownload a.txt 7"),
        Expect::Download(Transport::Tcp, 7)
    );
    assert_eq!(e("FileDownload TCP"), Expect::Download(Transport::Tcp, 0));
    assert_eq!(e("FileDownload a.txt x"), Expect::Code(501));
    assert_eq!(e("FileDownload SCTP a.txt 1"), Expect::Code(501));
    assert_eq!(e("FileDownload a 99999999999999999999"), Expect::Code(501));
    let md5 = "0123456789abcdefABCDEF0123456789";
    assert_eq!(e(&format!("FileUpload a 6 {md5}")), Expect::Upload(6));
    assert_eq!(e(&format!("FileUpload a +6 {md5}")), Expect::Code(501));
    assert_eq!(e("FileUpload a 6 0123"), Expect::Code(501));
}

cases![
    the_oracle_cuts_words_as_section_1_says,
    the_oracle_reads_the_examples_of_protocol_md,
    the_oracle_reads_the_argument_forms_of_section_11,
];
