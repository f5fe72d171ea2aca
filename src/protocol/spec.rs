//! What every dialect's commands declare ([`Spec`]): the verb, its usage
//! and help, the AUTH gate; a dialect's own table pairs each with the
//! parser of its arguments ([`Verb`]); and why a line was refused
//! ([`ParseError`]).

use std::fmt;
use std::ops::Deref;

use super::{code, Reply};

/// Which protocol a command belongs to: p2pshare's own, or FTP's verbs
/// spoken on the same control connection (`HELP` lists each dialect's
/// commands apart; `HELP`, `NOOP`, `AUTH` and `QUIT` are both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    P2pshare,
    Ftp,
}

/// One command's declaration: everything the parser, `HELP`, the usage
/// errors, the AUTH gate and the client's help know of it.
#[derive(Debug)]
pub struct Spec {
    /// The verb as `HELP` writes it; matched case-insensitively.
    pub verb: &'static str,
    /// `usage: ...` of `HELP <verb>` and of the usage errors.
    pub usage: &'static str,
    /// The line `HELP` gives it.
    pub help: &'static str,
    /// False for what a session may send before `AUTH` succeeded.
    pub needs_auth: bool,
    pub dialect: Dialect,
}

impl Spec {
    /// The command's line in `HELP`.
    pub fn help_line(&self) -> String {
        format!("{}  -- {}", self.usage, self.help)
    }
}

/// Specs are told apart by their verb (a table holds each verb once per
/// dialect).
impl PartialEq for Spec {
    fn eq(&self, other: &Spec) -> bool {
        self.verb == other.verb && self.dialect == other.dialect
    }
}

impl Eq for Spec {}

/// A command of one dialect: its declaration, and the parser of the words
/// after its verb into that dialect's request type `C`.
#[derive(Debug)]
pub struct Verb<C: 'static> {
    pub spec: Spec,
    pub parse: fn(&[String]) -> Result<C, ParseError>,
}

impl<C> Deref for Verb<C> {
    type Target = Spec;

    fn deref(&self) -> &Spec {
        &self.spec
    }
}

/// Why a line was refused: the reply code (500 or 501) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: u16,
    pub message: String,
}

impl ParseError {
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        ParseError {
            code: code::SYNTAX,
            message: message.into(),
        }
    }

    pub(super) fn usage(usage: &str) -> Self {
        ParseError {
            code: code::BAD_ARGS,
            message: format!("usage: {usage}"),
        }
    }

    pub(super) fn args(message: impl Into<String>) -> Self {
        ParseError {
            code: code::BAD_ARGS,
            message: message.into(),
        }
    }

    /// The reply that refuses the line.
    pub fn reply(&self) -> Reply<'static> {
        Reply::refused(self.code, &self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for ParseError {}
