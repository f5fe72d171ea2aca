//! The FTP verbs (RFC 959, 2428, 3659, draft-bryan-ftpext-hash) that share
//! the control connection with the native commands: their declarations
//! ([`FTP_VERBS`], whose [`Spec`]s [`super::COMMANDS`] lists under
//! [`Dialect::Ftp`]), the typed [`Ftp`] request each parses into, and the
//! dialect's own parser entry, [`parse_ftp`]. Nothing here imports the
//! native commands.
//!
//! An FTP argument is the rest of the line after the verb and one space,
//! taken as it is (no quotes, no escapes): `RETR my file.txt` names the
//! file `my file.txt`, as every FTP client writes it.

use super::spec::{Dialect, ParseError, Spec, Verb};
use super::{shown, split_words};

/// An FTP request, with its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ftp {
    User(String),
    Pass(String),
    /// `AUTH TLS`, `AUTH SSL`: TLS is not offered (534).
    AuthTls,
    Syst,
    Feat,
    Opts(String),
    Pwd,
    Cwd(String),
    Cdup,
    Type(String),
    Mode(String),
    Stru(String),
    Stat(Option<String>),
    Abor,
    Pasv,
    Epsv(Option<String>),
    /// `PORT` or `EPRT`: active mode, refused.
    Active,
    /// `LIST` (`names_only` false) or `NLST`, of a folder or a file.
    List {
        names_only: bool,
        path: Option<String>,
    },
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Rest(u64),
    Retr(String),
    Hash(String),
    Xmd5(String),
    Stor(String),
    /// `APPE`: an upload resumed at the end of its partial file.
    Appe(String),
    /// `MKD`, `XMKD`.
    Mkd(String),
    /// `RMD`, `XRMD`: refused.
    Rmd(String),
}

/// The argument of an FTP line: the one raw word the parser hands on, or
/// none.
fn arg(args: &[String]) -> Option<&str> {
    args.first().map(String::as_str).filter(|a| !a.is_empty())
}

fn required(args: &[String], spec: &Spec) -> Result<String, ParseError> {
    arg(args)
        .map(str::to_string)
        .ok_or_else(|| ParseError::usage(spec.usage))
}

fn none(args: &[String], cmd: Ftp, spec: &Spec) -> Result<Ftp, ParseError> {
    match arg(args) {
        None => Ok(cmd),
        Some(_) => Err(ParseError::usage(spec.usage)),
    }
}

/// `LIST -la docs`: the options some clients put first are ignored (as
/// vsftpd does); what follows is the path.
fn listed_path(args: &[String]) -> Option<String> {
    let mut rest = arg(args)?;
    while rest.starts_with('-') {
        rest = rest
            .split_once(' ')
            .map_or("", |(_, r)| r.trim_start_matches(' '));
    }
    (!rest.is_empty()).then(|| rest.to_string())
}

macro_rules! ftp_spec {
    ($name:ident, $verb:literal, $usage:literal, $help:literal, $auth:literal, $parse:expr) => {
        pub(super) static $name: Verb<Ftp> = Verb {
            spec: Spec {
                verb: $verb,
                usage: $usage,
                help: $help,
                needs_auth: $auth,
                dialect: Dialect::Ftp,
            },
            parse: $parse,
        };
    };
}

ftp_spec!(
    USER,
    "USER",
    "USER <name>",
    "log in (any name; the password is the peer's FTP password)",
    false,
    |a| Ok(Ftp::User(required(a, &USER)?))
);
ftp_spec!(
    PASS,
    "PASS",
    "PASS <password>",
    "the peer's FTP password (--ftp-password; never its secret)",
    false,
    |a| Ok(Ftp::Pass(arg(a).unwrap_or_default().to_string()))
);
ftp_spec!(SYST, "SYST", "SYST", "the system type", false, |a| none(
    a,
    Ftp::Syst,
    &SYST
));
ftp_spec!(
    FEAT,
    "FEAT",
    "FEAT",
    "the extensions supported",
    false,
    |a| none(a, Ftp::Feat, &FEAT)
);
ftp_spec!(
    OPTS,
    "OPTS",
    "OPTS UTF8 ON | MLST <facts> | HASH MD5",
    "set an option",
    false,
    |a| Ok(Ftp::Opts(required(a, &OPTS)?))
);
ftp_spec!(PWD, "PWD", "PWD", "the current folder", true, |a| none(
    a,
    Ftp::Pwd,
    &PWD
));
ftp_spec!(
    XPWD,
    "XPWD",
    "XPWD",
    "the current folder (PWD)",
    true,
    |a| none(a, Ftp::Pwd, &XPWD)
);
ftp_spec!(
    CWD,
    "CWD",
    "CWD <folder>",
    "change the current folder",
    true,
    |a| Ok(Ftp::Cwd(required(a, &CWD)?))
);
ftp_spec!(CDUP, "CDUP", "CDUP", "go up one folder", true, |a| none(
    a,
    Ftp::Cdup,
    &CDUP
));
ftp_spec!(
    TYPE,
    "TYPE",
    "TYPE A | I",
    "transfer type (both send the bytes unchanged)",
    true,
    |a| Ok(Ftp::Type(required(a, &TYPE)?))
);
ftp_spec!(
    MODE,
    "MODE",
    "MODE S",
    "transfer mode (stream only)",
    true,
    |a| Ok(Ftp::Mode(required(a, &MODE)?))
);
ftp_spec!(
    STRU,
    "STRU",
    "STRU F",
    "file structure (file only)",
    true,
    |a| Ok(Ftp::Stru(required(a, &STRU)?))
);
ftp_spec!(
    STAT,
    "STAT",
    "STAT [<path>]",
    "the session's status, or a listing on this connection",
    true,
    |a| Ok(Ftp::Stat(listed_path(a)))
);
ftp_spec!(
    ABOR,
    "ABOR",
    "ABOR",
    "abort (transfers end before the next command is read)",
    true,
    |a| none(a, Ftp::Abor, &ABOR)
);
ftp_spec!(
    PASV,
    "PASV",
    "PASV",
    "open a passive data port (IPv4)",
    true,
    |a| none(a, Ftp::Pasv, &PASV)
);
ftp_spec!(
    EPSV,
    "EPSV",
    "EPSV [1|2|ALL]",
    "open a passive data port (RFC 2428)",
    true,
    |a| Ok(Ftp::Epsv(arg(a).map(str::to_string)))
);
ftp_spec!(
    PORT,
    "PORT",
    "PORT h1,h2,h3,h4,p1,p2",
    "active mode: refused, use PASV or EPSV",
    true,
    |_| Ok(Ftp::Active)
);
ftp_spec!(
    EPRT,
    "EPRT",
    "EPRT |af|addr|port|",
    "active mode: refused, use PASV or EPSV",
    true,
    |_| Ok(Ftp::Active)
);
ftp_spec!(
    LIST,
    "LIST",
    "LIST [<path>]",
    "list a folder in ls -l form over the data connection",
    true,
    |a| Ok(Ftp::List {
        names_only: false,
        path: listed_path(a)
    })
);
ftp_spec!(
    NLST,
    "NLST",
    "NLST [<path>]",
    "list names over the data connection",
    true,
    |a| Ok(Ftp::List {
        names_only: true,
        path: listed_path(a)
    })
);
ftp_spec!(
    MLSD,
    "MLSD",
    "MLSD [<folder>]",
    "list a folder with size, modify and type facts",
    true,
    |a| Ok(Ftp::Mlsd(arg(a).map(str::to_string)))
);
ftp_spec!(
    MLST,
    "MLST",
    "MLST [<path>]",
    "the facts of one file or folder",
    true,
    |a| Ok(Ftp::Mlst(arg(a).map(str::to_string)))
);
ftp_spec!(
    SIZE,
    "SIZE",
    "SIZE <file>",
    "a file's size in bytes",
    true,
    |a| Ok(Ftp::Size(required(a, &SIZE)?))
);
ftp_spec!(
    MDTM,
    "MDTM",
    "MDTM <file>",
    "a file's modification time (UTC)",
    true,
    |a| Ok(Ftp::Mdtm(required(a, &MDTM)?))
);
ftp_spec!(
    REST,
    "REST",
    "REST <offset>",
    "start the next RETR, or the resumed STOR, at this byte",
    true,
    parse_rest
);
ftp_spec!(
    RETR,
    "RETR",
    "RETR <file>",
    "send a file over the data connection",
    true,
    |a| Ok(Ftp::Retr(required(a, &RETR)?))
);
ftp_spec!(
    HASH,
    "HASH",
    "HASH <file>",
    "a file's md5 (draft-bryan-ftpext-hash)",
    true,
    |a| Ok(Ftp::Hash(required(a, &HASH)?))
);
ftp_spec!(XMD5, "XMD5", "XMD5 <file>", "a file's md5", true, |a| Ok(
    Ftp::Xmd5(required(a, &XMD5)?)
));
ftp_spec!(
    STOR,
    "STOR",
    "STOR <file>",
    "store a file (when the peer allows uploads)",
    true,
    |a| Ok(Ftp::Stor(required(a, &STOR)?))
);

ftp_spec!(
    APPE,
    "APPE",
    "APPE <file>",
    "resume an upload at the end of what arrived before",
    true,
    |a| Ok(Ftp::Appe(required(a, &APPE)?))
);
ftp_spec!(
    MKD,
    "MKD",
    "MKD <folder>",
    "make a folder (when the peer allows uploads)",
    true,
    |a| Ok(Ftp::Mkd(required(a, &MKD)?))
);
ftp_spec!(
    XMKD,
    "XMKD",
    "XMKD <folder>",
    "make a folder (MKD)",
    true,
    |a| Ok(Ftp::Mkd(required(a, &XMKD)?))
);
ftp_spec!(
    RMD,
    "RMD",
    "RMD <folder>",
    "remove a folder: refused, nothing is ever removed",
    true,
    |a| Ok(Ftp::Rmd(required(a, &RMD)?))
);
ftp_spec!(
    XRMD,
    "XRMD",
    "XRMD <folder>",
    "remove a folder (RMD): refused",
    true,
    |a| Ok(Ftp::Rmd(required(a, &XRMD)?))
);

fn parse_rest(args: &[String]) -> Result<Ftp, ParseError> {
    let word = required(args, &REST)?;
    if !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::args(format!(
            "REST takes a number of bytes, not '{}'",
            shown(&word)
        )));
    }
    word.parse()
        .map(Ftp::Rest)
        .map_err(|_| ParseError::args("offset out of range"))
}

/// The FTP verbs, in the order `HELP` lists them.
pub static FTP_VERBS: &[&Verb<Ftp>] = &[
    &USER, &PASS, &SYST, &FEAT, &OPTS, &PWD, &XPWD, &CWD, &CDUP, &TYPE, &MODE, &STRU, &STAT, &ABOR,
    &PASV, &EPSV, &PORT, &EPRT, &LIST, &NLST, &MLSD, &MLST, &SIZE, &MDTM, &REST, &RETR, &HASH,
    &XMD5, &STOR, &APPE, &MKD, &XMKD, &RMD, &XRMD,
];

/// The FTP verb `verb` names (case-insensitively).
fn verb_of(verb: &str) -> Option<&'static Verb<Ftp>> {
    FTP_VERBS
        .iter()
        .copied()
        .find(|v| v.verb.eq_ignore_ascii_case(verb))
}

/// Parses a line of the FTP dialect: one whose verb is an FTP verb (its
/// argument is the rest of the line after one space, unquoted: RFC 959),
/// or `AUTH` asking for TLS. None for any other line: it is not FTP's.
pub fn parse_ftp(line: &str) -> Option<Result<(&'static Spec, Ftp), ParseError>> {
    let line = line.trim_start_matches([' ', '\t']);
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let Some(v) = verb_of(verb) else {
        return auth_tls(line).map(Ok);
    };
    let args = if rest.trim_matches([' ', '\t']).is_empty() {
        Vec::new()
    } else {
        vec![rest.to_string()]
    };
    Some((v.parse)(&args).map(|f| (&v.spec, f)))
}

/// `AUTH TLS` (or SSL, TLS-C, TLS-P), with the declaration of the `AUTH`
/// that both dialects share.
fn auth_tls(line: &str) -> Option<(&'static Spec, Ftp)> {
    let words = split_words(line).ok()?;
    match words.as_slice() {
        [auth, word] if auth.eq_ignore_ascii_case("AUTH") && asks_for_tls(word) => {
            Some((super::find("AUTH")?, Ftp::AuthTls))
        }
        _ => None,
    }
}

/// True when `line` starts with a verb of the FTP dialect (whether the
/// rest of it parses or not).
pub fn is_ftp_line(line: &str) -> bool {
    let verb = line
        .trim_start_matches([' ', '\t'])
        .split([' ', '\t'])
        .next();
    verb.is_some_and(|v| verb_of(v).is_some())
}

/// True for the argument of `AUTH` that asks for TLS (RFC 4217), not a
/// secret.
pub fn asks_for_tls(word: &str) -> bool {
    ["TLS", "SSL", "TLS-C", "TLS-P"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftp(line: &str) -> Ftp {
        match parse_ftp(line) {
            Some(Ok((_, f))) => f,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn arguments_are_the_rest_of_the_line_as_typed() {
        assert_eq!(ftp("RETR my file.txt"), Ftp::Retr("my file.txt".into()));
        assert_eq!(ftp("retr \"q\" \\t.txt"), Ftp::Retr("\"q\" \\t.txt".into()));
        assert_eq!(ftp("STOR  lead"), Ftp::Stor(" lead".into()));
        assert_eq!(ftp("CWD /docs/old"), Ftp::Cwd("/docs/old".into()));
        assert_eq!(ftp("USER anonymous"), Ftp::User("anonymous".into()));
        assert_eq!(ftp("PASS"), Ftp::Pass(String::new()));
        assert_eq!(ftp("REST 100"), Ftp::Rest(100));
        assert_eq!(ftp("EPSV"), Ftp::Epsv(None));
        assert_eq!(ftp("EPSV ALL"), Ftp::Epsv(Some("ALL".into())));
        assert_eq!(ftp("PORT 127,0,0,3,4,1"), Ftp::Active);
        assert_eq!(ftp("eprt |1|10.0.0.1|6000|"), Ftp::Active);
        assert_eq!(ftp("AUTH TLS"), Ftp::AuthTls);
        assert_eq!(ftp("MKD new \"q\" dir"), Ftp::Mkd("new \"q\" dir".into()));
        assert_eq!(ftp("xmkd a/b"), Ftp::Mkd("a/b".into()));
        assert_eq!(ftp("XRMD a"), Ftp::Rmd("a".into()));
        assert_eq!(ftp("APPE big.bin"), Ftp::Appe("big.bin".into()));
        assert_eq!(ftp("auth ssl"), Ftp::AuthTls);
        assert!(is_ftp_line("retr") && is_ftp_line("  Rest x") && is_ftp_line("PASS ***"));
        assert!(!is_ftp_line("NOOP") && !is_ftp_line("IndexGet longlist") && !is_ftp_line(""));
    }

    #[test]
    fn list_options_are_skipped() {
        let list = |path: Option<&str>| Ftp::List {
            names_only: false,
            path: path.map(str::to_string),
        };
        assert_eq!(ftp("LIST"), list(None));
        assert_eq!(ftp("LIST -la"), list(None));
        assert_eq!(ftp("LIST -a docs"), list(Some("docs")));
        assert_eq!(ftp("LIST a b"), list(Some("a b")));
        assert_eq!(
            ftp("NLST docs"),
            Ftp::List {
                names_only: true,
                path: Some("docs".into())
            }
        );
    }

    #[test]
    fn bad_ftp_lines_get_501() {
        for line in [
            "RETR", "SIZE", "MKD", "APPE", "RMD", "REST x", "REST -1", "SYST now", "CWD", "USER",
        ] {
            let err = parse_ftp(line).unwrap().expect_err(line);
            assert_eq!(err.code, 501, "{line}: {err}");
        }
    }
}
