//! Every reply as a value: one constructor per reply, each the only place
//! its text is written, and [`Reply::write_to`] that writes it to any
//! [`Write`]. A table streams its rows from an iterator as it is written,
//! so a table of 100,000 rows is never held in memory.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use super::{
    code, shown, DataLine, Dialect, Spec, Transport, COMMANDS, HASH_HEADER, HISTORY_HEADER,
};
use super::{INCOMPLETE, LIST_HEADER, SHARE_ID_WORD};
use crate::digest::Md5;
use crate::names::escape_field;
use crate::proof::{Mac, Nonce, NONCE_WORD};
use crate::timefmt;

/// A reply to write: its code and its lines.
pub struct Reply<'a> {
    code: u16,
    body: Body<'a>,
}

enum Body<'a> {
    /// `DDD text`.
    Line(Cow<'static, str>),
    /// `DDD-line` for each but the last, `DDD last`.
    Lines(Vec<String>),
    /// `DDD-first`, then each middle line as it is (starting with a
    /// space, as RFC 2389 and 3659 write them), then `DDD last`.
    Block {
        first: String,
        middle: Vec<String>,
        last: String,
    },
    /// `213-header`, `213-row` for each row, `213 N noun`.
    Table {
        header: &'static [&'static str],
        rows: Box<dyn RowSource + 'a>,
        noun: &'static str,
        /// Said after the count: `213 N noun; note`.
        note: Option<String>,
        /// Said after the count before any note: the rows are part of the
        /// share only, its first scan still running ([`INCOMPLETE`]).
        incomplete: bool,
    },
}

/// The rows of a table, made one at a time as it is written.
trait RowSource {
    /// Writes the next row's fields, escaped and TAB-separated, into
    /// `line` (empty); false when there are no more.
    fn next_row(&mut self, line: &mut String) -> bool;
}

/// Rows from an iterator, each written by `write`.
struct Rows<I, F> {
    iter: I,
    write: F,
}

impl<I: Iterator, F: FnMut(I::Item, &mut String)> RowSource for Rows<I, F> {
    fn next_row(&mut self, line: &mut String) -> bool {
        match self.iter.next() {
            Some(item) => {
                (self.write)(item, line);
                true
            }
            None => false,
        }
    }
}

/// One row of a file table (`IndexGet`).
#[derive(Debug, Clone, Copy)]
pub struct FileRow<'a> {
    pub name: &'a str,
    pub size: u64,
    pub mtime: SystemTime,
    pub mime: &'a str,
}

/// One row of a hash table (`FileHash`).
#[derive(Debug, Clone)]
pub struct HashRow<'a> {
    pub name: Cow<'a, str>,
    pub md5: Md5,
    pub mtime: SystemTime,
}

/// The fields of one row of [`Reply::table`].
pub type Row = Vec<String>;

/// What a reply says a server failed to do with a file: `cannot open`,
/// `cannot check`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    Open,
    /// Look whether a file of an upload's name is there already.
    Check,
    Hash,
    Read,
    Store,
}

impl FileOp {
    fn verb(self) -> &'static str {
        match self {
            FileOp::Open => "open",
            FileOp::Check => "check",
            FileOp::Hash => "hash",
            FileOp::Read => "read",
            FileOp::Store => "store",
        }
    }
}

/// How long a transfer waited for its receiver, as a 425 says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The whole wait (`--data-wait`): `within 30s`.
    Full(Duration),
    /// Less, because the idle timeout came first.
    CutByIdle,
}

impl Display for Waited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waited::Full(d) => write!(f, "within {}", humantime::format_duration(*d)),
            Waited::CutByIdle => f.write_str("before the idle timeout"),
        }
    }
}

impl Reply<'_> {
    /// The reply code (of its last line).
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Writes the reply. Line breaks inside a text are replaced, so a
    /// reply can never be split by what it quotes; table fields are
    /// escaped.
    pub fn write_to<W: Write + ?Sized>(self, w: &mut W) -> io::Result<()> {
        let code = self.code;
        match self.body {
            Body::Line(text) => writeln!(w, "{code} {}", one_line(&text)),
            Body::Lines(lines) => {
                let Some((last, first)) = lines.split_last() else {
                    return writeln!(w, "{code} ");
                };
                for line in first {
                    writeln!(w, "{code}-{}", one_line(line))?;
                }
                writeln!(w, "{code} {}", one_line(last))
            }
            Body::Block {
                first,
                middle,
                last,
            } => {
                writeln!(w, "{code}-{}", one_line(&first))?;
                for line in middle {
                    writeln!(w, " {}", one_line(&line))?;
                }
                writeln!(w, "{code} {}", one_line(&last))
            }
            Body::Table {
                header,
                mut rows,
                noun,
                note,
                incomplete,
            } => {
                writeln!(w, "{code}-{}", header.join("\t"))?;
                let prefix = format!("{code}-");
                let mut line = String::with_capacity(256);
                let mut n = 0u64;
                while rows.next_row(&mut line) {
                    w.write_all(prefix.as_bytes())?;
                    line.push('\n');
                    w.write_all(line.as_bytes())?;
                    line.clear();
                    n += 1;
                }
                let mark = if incomplete {
                    format!(" ({INCOMPLETE})")
                } else {
                    String::new()
                };
                match note {
                    Some(note) => writeln!(w, "{code} {n} {noun}{mark}; {}", one_line(&note)),
                    None => writeln!(w, "{code} {n} {noun}{mark}"),
                }
            }
        }
    }
}

impl fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            Body::Line(text) => write!(f, "Reply({} {text:?})", self.code),
            Body::Lines(lines) => write!(f, "Reply({} {lines:?})", self.code),
            Body::Block { first, middle, .. } => {
                write!(f, "Reply({} {first:?} {middle:?})", self.code)
            }
            Body::Table { noun, .. } => write!(f, "Reply({} table of {noun})", self.code),
        }
    }
}

fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

/// Appends a table field, escaped.
fn push_field(line: &mut String, field: &str) {
    if field.contains(['\t', '\n', '\r', '\\']) {
        line.push_str(&escape_field(field));
    } else {
        line.push_str(field);
    }
}

/// Appends a field that needs no escaping (a number, a timestamp, hex).
fn push_plain(line: &mut String, field: impl Display) {
    let _ = write!(line, "{field}");
}

impl<'a> Reply<'a> {
    pub(crate) fn line(code: u16, text: impl Into<Cow<'static, str>>) -> Reply<'a> {
        Reply {
            code,
            body: Body::Line(text.into()),
        }
    }

    /// A multi-line reply whose middle lines carry no code (FEAT, MLST,
    /// STAT).
    pub(crate) fn block(code: u16, first: &str, middle: Vec<String>, last: &str) -> Reply<'a> {
        Reply {
            code,
            body: Body::Block {
                first: first.to_string(),
                middle,
                last: last.to_string(),
            },
        }
    }

    /// A 213 table: `header`, then one line per row of `rows` as they come,
    /// then `213 <N> <noun>`. Fields are escaped here.
    pub fn table<I>(header: &'static [&'static str], rows: I, noun: &'static str) -> Reply<'a>
    where
        I: IntoIterator<Item = Row>,
        I::IntoIter: 'a,
    {
        Reply::rows(header, noun, rows, |row: Row, line| {
            for (i, field) in row.iter().enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                push_field(line, field);
            }
        })
    }

    fn rows<I, F>(header: &'static [&'static str], noun: &'static str, rows: I, write: F) -> Self
    where
        I: IntoIterator,
        I::IntoIter: 'a,
        F: FnMut(I::Item, &mut String) + 'a,
    {
        Reply {
            code: code::TABLE,
            body: Body::Table {
                header,
                rows: Box::new(Rows {
                    iter: rows.into_iter(),
                    write,
                }),
                noun,
                note: None,
                incomplete: false,
            },
        }
    }

    /// A table with `note` said on its last line after the count; any
    /// other reply as it is.
    pub fn with_note(mut self, note: String) -> Reply<'a> {
        if let Body::Table { note: n, .. } = &mut self.body {
            *n = Some(note);
        }
        self
    }

    /// A table marked incomplete: its last line says so after the count
    /// (`213 N files (incomplete: the first scan is still running)`); any
    /// other reply as it is.
    pub fn incomplete(mut self, yes: bool) -> Reply<'a> {
        if let Body::Table { incomplete, .. } = &mut self.body {
            *incomplete = yes;
        }
        self
    }

    /// The file table of `IndexGet`: name, size, timestamp, type.
    pub fn files<I>(rows: I) -> Reply<'a>
    where
        I: IntoIterator<Item = FileRow<'a>>,
        I::IntoIter: 'a,
    {
        Reply::rows(LIST_HEADER, "files", rows, |r: FileRow<'a>, line| {
            push_field(line, r.name);
            line.push('\t');
            push_plain(line, r.size);
            line.push('\t');
            push_plain(line, timefmt::display(r.mtime));
            line.push('\t');
            push_field(line, r.mime);
        })
    }

    /// The hash table of `FileHash`: name, md5, timestamp.
    pub fn hashes<I>(rows: I) -> Reply<'a>
    where
        I: IntoIterator<Item = HashRow<'a>>,
        I::IntoIter: 'a,
    {
        Reply::rows(HASH_HEADER, "files", rows, |r: HashRow<'a>, line| {
            push_field(line, &r.name);
            line.push('\t');
            push_plain(line, r.md5);
            line.push('\t');
            push_plain(line, timefmt::display(r.mtime));
        })
    }

    /// The table of `History`: rows of the history file as they are read.
    pub fn history<I>(rows: I) -> Reply<'a>
    where
        I: IntoIterator<Item = Row>,
        I::IntoIter: 'a,
    {
        Reply::table(HISTORY_HEADER, rows, "requests")
    }

    /// The preliminary 150 of a download: the file's row (name, size,
    /// timestamp, md5), then where its data channel is (a [`DataLine`]),
    /// or that its bytes follow inline (`DATA inline bytes=<n>`).
    pub fn download_announce(
        name: &str,
        size: u64,
        mtime: SystemTime,
        md5: Md5,
        data: &dyn Display,
    ) -> Reply<'a> {
        let mut row = String::with_capacity(name.len() + 64);
        push_field(&mut row, name);
        row.push('\t');
        push_plain(&mut row, size);
        row.push('\t');
        push_plain(&mut row, timefmt::display(mtime));
        row.push('\t');
        push_plain(&mut row, md5);
        Reply {
            code: code::DATA,
            body: Body::Lines(vec![row, data.to_string()]),
        }
    }

    /// The preliminary 150 of an upload: where its data channel is.
    pub fn data(data: &DataLine) -> Reply<'a> {
        Reply::line(code::DATA, data.to_string())
    }

    /// `HELP`: every command with its usage and what it does; `HELP
    /// <command>`: its usage.
    pub fn help(topic: Option<&Spec>) -> Reply<'a> {
        if let Some(spec) = topic {
            return Reply::line(code::HELP, format!("usage: {}", spec.usage));
        }
        let mut lines = Vec::with_capacity(COMMANDS.len() + 3);
        lines.push("commands (case-insensitive; quote names with spaces):".to_string());
        let of = |d: Dialect| COMMANDS.iter().filter(move |s| s.dialect == d);
        lines.extend(of(Dialect::P2pshare).map(|s| s.help_line()));
        lines.push("FTP verbs (the argument is the rest of the line, unquoted):".to_string());
        lines.extend(of(Dialect::Ftp).map(|s| s.help_line()));
        lines.push("end of help".to_string());
        Reply {
            code: code::HELP,
            body: Body::Lines(lines),
        }
    }

    /// The greeting: what the session must send first, with the share id
    /// (`share-id=<hex>`) after `ready;` when there is one.
    pub fn greeting(authed: bool, share_id: Option<&str>) -> Reply<'a> {
        let next = if authed {
            "HELP lists commands"
        } else {
            "AUTH <secret> required"
        };
        Reply::greeting_with(share_id, "", next)
    }

    /// The greeting's line: the version, the share id (if any), `nonce`
    /// (a word and its `;`, or nothing), then what to send.
    fn greeting_with(share_id: Option<&str>, nonce: &str, next: &str) -> Reply<'a> {
        let version = env!("CARGO_PKG_VERSION");
        let id = share_id.map_or(String::new(), |id| format!(" {SHARE_ID_WORD}{id};"));
        Reply::line(
            code::GREETING,
            format!("p2pshare {version} ready;{id}{nonce} {next}"),
        )
    }

    /// The greeting of a peer with a secret: the share id, then the
    /// server's nonce for `AUTH PROOF` (`nonce=<hex>`), then what to send.
    pub fn challenge(share_id: Option<&str>, nonce: &Nonce, proof_only: bool) -> Reply<'a> {
        let next = if proof_only {
            "AUTH PROOF required"
        } else {
            "AUTH <secret> required"
        };
        Reply::greeting_with(share_id, &format!(" {NONCE_WORD}{nonce};"), next)
    }

    /// A connection refused because no nonce could be made for it.
    pub fn no_random(e: &io::Error) -> Reply<'a> {
        Reply::line(
            code::CLOSING,
            format!("cannot read the random source ({e}); try again later"),
        )
    }

    pub fn ok() -> Reply<'a> {
        Reply::line(code::OK, "ok")
    }

    pub fn bye() -> Reply<'a> {
        Reply::line(code::BYE, "bye")
    }

    /// A line refused by the parser (see [`super::ParseError::reply`]).
    pub(crate) fn refused(code: u16, message: &str) -> Reply<'a> {
        Reply::line(code, message.to_string())
    }

    pub fn line_too_long(max: usize) -> Reply<'a> {
        Reply::line(
            code::SYNTAX,
            format!("line too long (the limit is {max} bytes)"),
        )
    }

    pub fn invalid_utf8() -> Reply<'a> {
        Reply::line(code::SYNTAX, "invalid UTF-8 in request")
    }

    pub fn idle_timeout() -> Reply<'a> {
        Reply::line(code::CLOSING, "idle timeout")
    }

    pub fn shutting_down() -> Reply<'a> {
        Reply::line(code::CLOSING, "shutting down")
    }

    pub fn unknown_address() -> Reply<'a> {
        Reply::line(code::CLOSING, "cannot tell your address")
    }

    pub fn too_many_connections() -> Reply<'a> {
        Reply::line(code::CLOSING, "too many connections; try again later")
    }

    pub fn too_many_from_address() -> Reply<'a> {
        Reply::line(
            code::CLOSING,
            "too many connections from your address; try again later",
        )
    }

    pub fn auth_required() -> Reply<'a> {
        Reply::line(
            code::AUTH_REQUIRED,
            "authentication required: send AUTH <secret> first",
        )
    }

    pub fn no_secret_needed() -> Reply<'a> {
        Reply::line(code::AUTHENTICATED, "no secret is needed on this peer")
    }

    pub fn authenticated() -> Reply<'a> {
        Reply::line(code::AUTHENTICATED, "authenticated")
    }

    /// The end of a right `AUTH PROOF`: the server's own proof.
    pub fn proof_accepted(server_proof: &Mac) -> Reply<'a> {
        Reply::line(
            code::AUTHENTICATED,
            format!("authenticated; proof={server_proof}"),
        )
    }

    /// Plain `AUTH <secret>` (or FTP's `PASS`) to a peer run with
    /// `--auth proof-only`.
    pub fn proof_only() -> Reply<'a> {
        Reply::line(
            code::AUTH_REQUIRED,
            "this peer takes only AUTH PROOF (PROTOCOL.md section 12)",
        )
    }

    /// Any `AUTH` after a proof login: the session keeps its key.
    pub fn already_proven() -> Reply<'a> {
        Reply::line(
            code::BAD_SEQUENCE,
            "already authenticated by AUTH PROOF; this session keeps its key",
        )
    }

    /// A request line whose MAC is missing or wrong (or that cannot be
    /// checked) after a proof login: the connection closes.
    pub fn request_changed() -> Reply<'a> {
        Reply::line(
            code::AUTH_REQUIRED,
            "request changed on the way (its mac does not match); closing the connection",
        )
    }

    /// The `tries`-th wrong secret of a session that may try `max` times;
    /// the last one closes the connection.
    pub fn wrong_secret(tries: u8, max: u8) -> Reply<'a> {
        if tries >= max {
            Reply::line(code::AUTH_REQUIRED, "wrong secret; closing the connection")
        } else {
            Reply::line(
                code::AUTH_REQUIRED,
                format!("wrong secret ({tries} of {max} tries)"),
            )
        }
    }

    /// A pattern `IndexGet regex` cannot use, and why.
    pub fn bad_pattern(why: &str) -> Reply<'a> {
        Reply::line(code::BAD_ARGS, why.to_string())
    }

    /// The name breaks the rules or names nothing shared: deliberately one
    /// reply, so an outside file cannot be told from a missing one.
    pub fn not_shared(name: &str) -> Reply<'a> {
        Reply::line(
            code::NOT_FOUND,
            format!("no such file or not shared: {}", shown(name)),
        )
    }

    /// A shared name the server may not read (its permissions): not
    /// listed, and refused as such rather than as missing.
    pub fn permission_denied(name: &str) -> Reply<'a> {
        Reply::line(
            code::NOT_FOUND,
            format!(
                "permission denied: {} (the server cannot read it; it is not shared)",
                shown(name)
            ),
        )
    }

    /// An upload's name that may not be stored.
    pub fn name_not_allowed(name: &str) -> Reply<'a> {
        Reply::line(
            code::NAME_NOT_ALLOWED,
            format!("name not allowed: {}", shown(name)),
        )
    }

    /// A local failure with a file: `cannot <op> <name>: <detail>`.
    pub fn cannot(op: FileOp, name: &str, detail: &dyn Display) -> Reply<'a> {
        Reply::line(
            code::LOCAL_ERROR,
            format!("cannot {} {}: {detail}", op.verb(), shown(name)),
        )
    }

    pub fn history_unreadable(e: &dyn Display) -> Reply<'a> {
        Reply::line(code::LOCAL_ERROR, format!("cannot read the history: {e}"))
    }

    pub fn offset_past_end(name: &str, offset: u64, size: u64) -> Reply<'a> {
        Reply::line(
            code::BAD_ARGS,
            format!(
                "offset {offset} is past the end of {} ({size} bytes)",
                shown(name)
            ),
        )
    }

    /// No data channel could be opened for a transfer.
    pub fn no_data_port(transport: Transport, e: &dyn Display) -> Reply<'a> {
        let what = match transport {
            Transport::Tcp => "a",
            Transport::Udp => "a UDP",
        };
        Reply::line(code::NO_DATA, format!("cannot open {what} data port: {e}"))
    }

    /// The address already holds its share of `--data-ports`: `held` of
    /// the `of` ports of the range.
    pub fn ports_held(transport: Transport, held: usize, of: usize) -> Reply<'a> {
        let kind = match transport {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        };
        let why = format!(
            "your address holds {held} of the {of} {kind} data ports already, \
             the most one address may hold; try again when a transfer of another \
             of its sessions has ended"
        );
        Reply::no_data_port(transport, &why)
    }

    /// No receiver came to the data channel within the wait.
    pub fn no_receiver(transport: Transport, port: u16, waited: Waited) -> Reply<'a> {
        let text = match transport {
            Transport::Tcp => format!(
                "no data connection {waited}: connect to port {port} and send the token line"
            ),
            Transport::Udp => {
                format!("no datagram from the receiver {waited}: send the HELLO to UDP port {port}")
            }
        };
        Reply::line(code::NO_DATA, text)
    }

    pub fn download_complete(name: &str, size: u64, md5: Md5) -> Reply<'a> {
        Reply::line(
            code::COMPLETE,
            format!("{} {size} bytes md5={md5}", shown(name)),
        )
    }

    pub fn changed_while_sent(name: &str) -> Reply<'a> {
        Reply::line(
            code::LOCAL_ERROR,
            format!("{} changed while it was being sent; try again", shown(name)),
        )
    }

    pub fn receiver_silent(d: Duration) -> Reply<'a> {
        Reply::line(
            code::ABORTED,
            format!(
                "transfer aborted: the receiver was silent for {}",
                humantime::format_duration(d)
            ),
        )
    }

    pub fn receiver_stalled(d: Duration) -> Reply<'a> {
        Reply::line(
            code::ABORTED,
            format!(
                "transfer aborted: the receiver got no further for {}",
                humantime::format_duration(d)
            ),
        )
    }

    /// The data connection (TCP) or socket (UDP) failed mid-transfer.
    pub fn data_broken(transport: Transport, e: &dyn Display) -> Reply<'a> {
        let text = match transport {
            Transport::Tcp => format!("data connection broken: {e}"),
            Transport::Udp => format!("UDP data channel failed: {e}"),
        };
        Reply::line(code::ABORTED, text)
    }

    pub fn uploads_disabled() -> Reply<'a> {
        Reply::line(code::NOT_FOUND, "uploads are disabled on this peer")
    }

    pub fn md5_mismatch(received: Md5, announced: Md5) -> Reply<'a> {
        Reply::line(
            code::NOT_FOUND,
            format!("md5 mismatch: received {received}, announced {announced}; nothing stored"),
        )
    }

    /// An upload's data connection ended after `got` of `size` bytes.
    pub fn upload_broken(got: u64, size: u64, e: &dyn Display) -> Reply<'a> {
        Reply::line(
            code::ABORTED,
            format!("data connection broken after {got} of {size} bytes ({e}); nothing stored"),
        )
    }

    /// Writing an upload failed on the way.
    pub fn not_stored(name: &str, e: &dyn Display) -> Reply<'a> {
        Reply::line(
            code::LOCAL_ERROR,
            format!("cannot store {}: {e}; nothing stored", shown(name)),
        )
    }

    pub fn stored(name: &str) -> Reply<'a> {
        Reply::line(code::COMPLETE, format!("stored {}", shown(name)))
    }

    pub fn stored_same(name: &str) -> Reply<'a> {
        Reply::line(
            code::COMPLETE,
            format!("stored {} (same content already here)", shown(name)),
        )
    }

    pub fn exists_differently(name: &str) -> Reply<'a> {
        Reply::line(
            code::NAME_NOT_ALLOWED,
            format!(
                "{} exists with other content; nothing was overwritten",
                shown(name)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn bytes(r: Reply<'_>) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn every_line_reply_writes_its_exact_bytes() {
        let md5 = Md5::of(b"abc");
        let err = io::Error::other("boom");
        let tab = "a\tb";
        let cases: Vec<(Reply, &str)> = vec![
            (Reply::ok(), "200 ok\n"),
            (Reply::bye(), "221 bye\n"),
            (
                Reply::greeting(true, None),
                concat!(
                    "220 p2pshare ",
                    env!("CARGO_PKG_VERSION"),
                    " ready; HELP lists commands\n"
                ),
            ),
            (
                Reply::greeting(true, Some("0123456789abcdef0123456789abcdef")),
                concat!(
                    "220 p2pshare ",
                    env!("CARGO_PKG_VERSION"),
                    " ready; share-id=0123456789abcdef0123456789abcdef; HELP lists commands\n"
                ),
            ),
            (
                Reply::greeting(false, None),
                concat!(
                    "220 p2pshare ",
                    env!("CARGO_PKG_VERSION"),
                    " ready; AUTH <secret> required\n"
                ),
            ),
            (
                Reply::line_too_long(4096),
                "500 line too long (the limit is 4096 bytes)\n",
            ),
            (Reply::invalid_utf8(), "500 invalid UTF-8 in request\n"),
            (Reply::idle_timeout(), "421 idle timeout\n"),
            (Reply::shutting_down(), "421 shutting down\n"),
            (Reply::unknown_address(), "421 cannot tell your address\n"),
            (
                Reply::too_many_connections(),
                "421 too many connections; try again later\n",
            ),
            (
                Reply::too_many_from_address(),
                "421 too many connections from your address; try again later\n",
            ),
            (
                Reply::auth_required(),
                "530 authentication required: send AUTH <secret> first\n",
            ),
            (
                Reply::no_secret_needed(),
                "230 no secret is needed on this peer\n",
            ),
            (Reply::authenticated(), "230 authenticated\n"),
            (
                Reply::wrong_secret(1, 3),
                "530 wrong secret (1 of 3 tries)\n",
            ),
            (
                Reply::wrong_secret(3, 3),
                "530 wrong secret; closing the connection\n",
            ),
            (
                Reply::bad_pattern("invalid pattern"),
                "501 invalid pattern\n",
            ),
            (
                Reply::not_shared(tab),
                "550 no such file or not shared: a\\tb\n",
            ),
            (
                Reply::name_not_allowed("x\ny"),
                "553 name not allowed: x\\ny\n",
            ),
            (
                Reply::cannot(FileOp::Open, "f", &io::ErrorKind::NotFound),
                "451 cannot open f: entity not found\n",
            ),
            (
                Reply::cannot(FileOp::Check, "f", &err),
                "451 cannot check f: boom\n",
            ),
            (
                Reply::cannot(FileOp::Hash, "f", &err),
                "451 cannot hash f: boom\n",
            ),
            (
                Reply::cannot(FileOp::Read, "f", &err),
                "451 cannot read f: boom\n",
            ),
            (
                Reply::cannot(FileOp::Store, "f", &err),
                "451 cannot store f: boom\n",
            ),
            (
                Reply::history_unreadable(&err),
                "451 cannot read the history: boom\n",
            ),
            (
                Reply::offset_past_end("f", 9, 3),
                "501 offset 9 is past the end of f (3 bytes)\n",
            ),
            (
                Reply::no_data_port(Transport::Tcp, &err),
                "425 cannot open a data port: boom\n",
            ),
            (
                Reply::no_data_port(Transport::Udp, &err),
                "425 cannot open a UDP data port: boom\n",
            ),
            (
                Reply::ports_held(Transport::Tcp, 2, 4),
                "425 cannot open a data port: your address holds 2 of the 4 TCP data ports \
                 already, the most one address may hold; try again when a transfer of \
                 another of its sessions has ended\n",
            ),
            (
                Reply::ports_held(Transport::Udp, 1, 2),
                "425 cannot open a UDP data port: your address holds 1 of the 2 UDP data \
                 ports already, the most one address may hold; try again when a transfer \
                 of another of its sessions has ended\n",
            ),
            (
                Reply::no_receiver(Transport::Tcp, 4000, Waited::Full(Duration::from_secs(30))),
                "425 no data connection within 30s: connect to port 4000 and send the token line\n",
            ),
            (
                Reply::no_receiver(Transport::Udp, 4000, Waited::CutByIdle),
                "425 no datagram from the receiver before the idle timeout: send the HELLO to \
                 UDP port 4000\n",
            ),
            (
                Reply::download_complete("a b", 3, md5),
                "226 a b 3 bytes md5=900150983cd24fb0d6963f7d28e17f72\n",
            ),
            (
                Reply::changed_while_sent("f"),
                "451 f changed while it was being sent; try again\n",
            ),
            (
                Reply::receiver_silent(Duration::from_secs(10)),
                "426 transfer aborted: the receiver was silent for 10s\n",
            ),
            (
                Reply::receiver_stalled(Duration::from_millis(1500)),
                "426 transfer aborted: the receiver got no further for 1s 500ms\n",
            ),
            (
                Reply::data_broken(Transport::Tcp, &err),
                "426 data connection broken: boom\n",
            ),
            (
                Reply::data_broken(Transport::Udp, &err),
                "426 UDP data channel failed: boom\n",
            ),
            (
                Reply::uploads_disabled(),
                "550 uploads are disabled on this peer\n",
            ),
            (
                Reply::md5_mismatch(Md5::of(b""), md5),
                "550 md5 mismatch: received d41d8cd98f00b204e9800998ecf8427e, announced \
                 900150983cd24fb0d6963f7d28e17f72; nothing stored\n",
            ),
            (
                Reply::upload_broken(1, 3, &err),
                "426 data connection broken after 1 of 3 bytes (boom); nothing stored\n",
            ),
            (
                Reply::not_stored("f", &err),
                "451 cannot store f: boom; nothing stored\n",
            ),
            (Reply::stored("f"), "226 stored f\n"),
            (
                Reply::stored_same("f"),
                "226 stored f (same content already here)\n",
            ),
            (
                Reply::exists_differently("f"),
                "553 f exists with other content; nothing was overwritten\n",
            ),
            (
                Reply::data(&DataLine {
                    transport: Transport::Tcp,
                    port: 1,
                    token: "ab".into(),
                }),
                "150 DATA tcp port=1 token=ab\n",
            ),
            (Reply::refused(501, "usage: NOOP"), "501 usage: NOOP\n"),
            // A line break in what a reply quotes never splits it.
            (Reply::bad_pattern("two\nlines\r"), "501 two lines \n"),
        ];
        for (reply, want) in cases {
            let code: u16 = want[..3].parse().unwrap();
            assert_eq!(reply.code(), code, "{want:?}");
            assert_eq!(bytes(reply), want);
        }
    }

    #[test]
    fn tables_stream_their_rows_escaped() {
        let rows = vec![
            FileRow {
                name: "a\tb",
                size: 3,
                mtime: t(1795773600),
                mime: "text/plain",
            },
            FileRow {
                name: "back\\slash",
                size: 0,
                mtime: t(0),
                mime: "application/octet-stream",
            },
        ];
        assert_eq!(
            bytes(Reply::files(rows)),
            "213-name\tsize\ttimestamp\ttype\n\
             213-a\\tb\t3\t2026-11-27T10:00:00Z\ttext/plain\n\
             213-back\\\\slash\t0\t1970-01-01T00:00:00Z\tapplication/octet-stream\n\
             213 2 files\n"
        );
        let row = HashRow {
            name: "x y".into(),
            md5: Md5::of(b"abc"),
            mtime: t(1795773600),
        };
        assert_eq!(
            bytes(Reply::hashes([row])),
            "213-name\tmd5\ttimestamp\n\
             213-x y\t900150983cd24fb0d6963f7d28e17f72\t2026-11-27T10:00:00Z\n\
             213 1 files\n"
        );
        assert_eq!(
            bytes(Reply::hashes(std::iter::empty())),
            "213-name\tmd5\ttimestamp\n213 0 files\n"
        );
        let history = vec![vec![
            "2026-11-27T10:00:00Z".to_string(),
            "in".into(),
            "127.0.0.1:5".into(),
            "FileDownload \"a\tb\"".into(),
            "226".into(),
        ]];
        assert_eq!(
            bytes(Reply::history(history)),
            "213-time\tdirection\tpeer\trequest\treply\n\
             213-2026-11-27T10:00:00Z\tin\t127.0.0.1:5\tFileDownload \"a\\tb\"\t226\n\
             213 1 requests\n"
        );
        // Rows are made only as they are written.
        let mut made = 0;
        let lazy = (0..3).map(|i| {
            made += 1;
            vec![i.to_string()]
        });
        let reply = Reply::table(&["n"], lazy, "numbers");
        assert_eq!(bytes(reply), "213-n\n213-0\n213-1\n213-2\n213 3 numbers\n");
        assert_eq!(made, 3);
    }

    #[test]
    fn multi_line_replies_mark_all_but_the_last() {
        let data = DataLine {
            transport: Transport::Udp,
            port: 40123,
            token: "5f2a9c0e81d3b7aa".into(),
        };
        assert_eq!(
            bytes(Reply::download_announce(
                "my\tfile",
                3,
                t(1795773600),
                Md5::of(b"abc"),
                &data
            )),
            "150-my\\tfile\t3\t2026-11-27T10:00:00Z\t900150983cd24fb0d6963f7d28e17f72\n\
             150 DATA udp port=40123 token=5f2a9c0e81d3b7aa\n"
        );
        let help = bytes(Reply::help(None));
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(
            lines[0],
            "214-commands (case-insensitive; quote names with spaces):"
        );
        assert_eq!(
            lines[1],
            "214-IndexGet longlist | shortlist <start> <end> | regex <pattern>  -- list shared \
             files: all, modified between start and end, or matching a shell pattern"
        );
        assert_eq!(lines.len(), COMMANDS.len() + 3);
        assert_eq!(*lines.last().unwrap(), "214 end of help");
        assert_eq!(
            bytes(Reply::help(super::super::find("history"))),
            "214 usage: History [<n>] [--only <verb>] [--no-poll]\n"
        );
    }
}
