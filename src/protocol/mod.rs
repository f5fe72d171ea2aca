//! The control protocol, free of sockets and files (PROTOCOL.md is the
//! contract):
//!
//! - [`spec`]: what every command declares ([`Spec`]: verb, usage, help,
//!   whether it needs AUTH, dialect) and [`ParseError`]; [`COMMANDS`]
//!   (here) lists every dialect's declarations, in `HELP`'s order.
//! - [`command`]: the native commands ([`Command`], their table and
//!   [`parse`]); [`ftp_command`]: FTP's verbs ([`Ftp`], their table and
//!   [`parse_ftp`]). Neither imports the other.
//! - [`words`]: how a request line splits into words.
//! - [`requests`]: the connection loop's reading side, generic over
//!   [`std::io::BufRead`]: capped lines in, one [`Request`] or
//!   [`Refusal`] per non-blank line out.
//! - [`reply`]: every reply as a value ([`Reply`]), one constructor per
//!   reply, each writing itself to any [`std::io::Write`]; tables stream
//!   their rows.
//! - [`lines`]: reading replies back (a client's side): reply lines and
//!   the `150 DATA` line (a data channel's, or the inline data mode's).
//! - [`stdio_reply`]: the replies only a stdio session (`serve --stdio`)
//!   gives: its inline data mode and what it refuses.
//!
//! Nothing here imports anything above the vocabulary ([`crate::names`],
//! [`crate::timefmt`], [`crate::digest`]); the services convert their
//! own errors and outcomes into replies with the constructors here.
//!
//! Adding a command starts here, with a [`Verb`] in `command.rs` (or in
//! `ftp_command.rs` for an FTP verb) listed in [`COMMANDS`]; the crate
//! documentation ([`crate`], "Adding a command") has every step.

pub mod command;
pub mod ftp_command;
pub mod ftp_reply;
pub mod lines;
pub mod reply;
pub mod requests;
pub mod spec;
pub mod stdio_reply;
pub mod words;

pub use self::command::{
    parse, parse_download, parse_history_args, parse_request, Command, HistoryFilter,
};
pub use self::ftp_command::{parse_ftp, Ftp};
pub use self::lines::{
    data_line, greeting_share_id, inline_data_line, parse_data_line, parse_inline_data_line,
    parse_reply_line, DataLine, ReplyLine, SHARE_ID_WORD,
};
pub use self::reply::{FileOp, FileRow, HashRow, Reply, Row, Waited};
pub use self::requests::{
    read_line_capped, without_secret, LineRead, LineReader, Parsed, Refusal, Request, Requests,
};
pub use self::spec::{Dialect, ParseError, Spec, Verb};
pub use self::words::{split_words, split_words_with};
pub use crate::names::{escape_field, quote_word, shown, unescape_field, Escapes};

/// Every command, in the order `HELP` lists them: the native ones, then
/// the FTP verbs.
pub static COMMANDS: &[&Spec] = &[
    &command::INDEX_GET.spec,
    &command::FILE_HASH.spec,
    &command::FILE_DOWNLOAD.spec,
    &command::FILE_UPLOAD.spec,
    &command::HISTORY.spec,
    &command::HELP.spec,
    &command::NOOP.spec,
    &command::AUTH.spec,
    &command::QUIT.spec,
    &ftp_command::USER.spec,
    &ftp_command::PASS.spec,
    &ftp_command::SYST.spec,
    &ftp_command::FEAT.spec,
    &ftp_command::OPTS.spec,
    &ftp_command::PWD.spec,
    &ftp_command::XPWD.spec,
    &ftp_command::CWD.spec,
    &ftp_command::CDUP.spec,
    &ftp_command::TYPE.spec,
    &ftp_command::MODE.spec,
    &ftp_command::STRU.spec,
    &ftp_command::STAT.spec,
    &ftp_command::ABOR.spec,
    &ftp_command::PASV.spec,
    &ftp_command::EPSV.spec,
    &ftp_command::PORT.spec,
    &ftp_command::EPRT.spec,
    &ftp_command::LIST.spec,
    &ftp_command::NLST.spec,
    &ftp_command::MLSD.spec,
    &ftp_command::MLST.spec,
    &ftp_command::SIZE.spec,
    &ftp_command::MDTM.spec,
    &ftp_command::REST.spec,
    &ftp_command::RETR.spec,
    &ftp_command::HASH.spec,
    &ftp_command::XMD5.spec,
    &ftp_command::STOR.spec,
    &ftp_command::APPE.spec,
    &ftp_command::MKD.spec,
    &ftp_command::XMKD.spec,
    &ftp_command::RMD.spec,
    &ftp_command::XRMD.spec,
];

/// The command a verb names (case-insensitively), in either dialect.
pub fn find(verb: &str) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .copied()
        .find(|s| s.verb.eq_ignore_ascii_case(verb))
}

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
    pub const BAD_SEQUENCE: u16 = 503;
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
    /// As the `150 DATA` line writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    /// As a request word names it (either case): `TCP`, `udp`.
    pub fn from_word(word: &str) -> Option<Transport> {
        if word.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else if word.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else {
            None
        }
    }
}

/// What a listing made while the share's first scan runs says of itself:
/// in parentheses after the count of a 213 table, after the text of FTP's
/// 226 that ends a listing, in HTTP's `P2PSHARE-Incomplete` header. A
/// reader takes no missing row of such a listing for a deletion.
pub const INCOMPLETE: &str = "incomplete: the first scan is still running";

/// Header of the file tables (`IndexGet`).
pub const LIST_HEADER: &[&str] = &["name", "size", "timestamp", "type"];
/// Header of the hash tables (`FileHash`).
pub const HASH_HEADER: &[&str] = &["name", "md5", "timestamp"];
/// Header of the `History` table.
pub const HISTORY_HEADER: &[&str] = &["time", "direction", "peer", "request", "reply"];
