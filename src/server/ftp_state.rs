//! What a session keeps for its FTP verbs (the current folder, the REST
//! offset, the passive listener), and FTP's front end over the session
//! core ([`FtpFront`]: the core and that state, for the handlers of
//! `ftp.rs` and `ftp_upload.rs`).

use std::io::Write;
use std::time::{Duration, Instant};

use super::core::{Control, Session};
use super::ftp_data::Passive;

/// What a session keeps for its FTP verbs, reached only through its
/// methods.
#[derive(Default)]
pub(super) struct FtpState<'a> {
    /// The current folder, as a share name (`""` at the top).
    cwd: String,
    /// The offset of the next RETR or STOR (REST).
    rest: u64,
    /// The listener of the next transfer (PASV, EPSV), and when it opened.
    passive: Option<Passive<'a>>,
    opened: Option<Instant>,
    /// After `EPSV ALL`, PASV is refused (RFC 2428).
    epsv_all: bool,
}

impl<'a> FtpState<'a> {
    /// The current folder, as a share name (`""` at the top).
    pub(super) fn cwd(&self) -> &str {
        &self.cwd
    }

    pub(super) fn set_cwd(&mut self, dir: String) {
        self.cwd = dir;
    }

    /// The offset of this RETR or STOR, which the next one starts from 0
    /// again.
    pub(super) fn take_rest(&mut self) -> u64 {
        std::mem::take(&mut self.rest)
    }

    /// REST: the offset of the next RETR or STOR.
    pub(super) fn set_rest(&mut self, offset: u64) {
        self.rest = offset;
    }

    /// The passive listener for this transfer (it takes one connection).
    pub(super) fn take_passive(&mut self) -> Option<Passive<'a>> {
        self.passive.take()
    }

    /// The listener of the next transfer, opened now.
    pub(super) fn set_passive(&mut self, passive: Passive<'a>) {
        self.passive = Some(passive);
        self.opened = Some(Instant::now());
    }

    /// True after `EPSV ALL`.
    pub(super) fn epsv_all(&self) -> bool {
        self.epsv_all
    }

    pub(super) fn set_epsv_all(&mut self) {
        self.epsv_all = true;
    }

    /// Closes the passive listener (a native transfer is about to open
    /// the session's data channels: a session never holds both).
    pub fn drop_passive(&mut self) {
        self.passive = None;
    }

    /// With `--data-idle`, a passive listener no transfer took for that
    /// long closes, as the native data channels do; returns when that is
    /// due for the one still open.
    pub fn release_idle(&mut self, idle: Option<Duration>) -> Option<Instant> {
        let due = self.passive.as_ref().and(self.opened)?.checked_add(idle?)?;
        if Instant::now() < due {
            return Some(due);
        }
        self.passive = None;
        None
    }
}

/// FTP's front end over one session: the session core, and what FTP
/// keeps between its verbs.
pub(super) struct FtpFront<'s, 'a, C: Control, W: Write> {
    pub(super) core: &'s mut Session<'a, C, W>,
    pub(super) state: &'s mut FtpState<'a>,
}

impl<'s, 'a, C: Control, W: Write> FtpFront<'s, 'a, C, W> {
    /// FTP's front end over `core`, with FTP's state `state`.
    pub(super) fn new(core: &'s mut Session<'a, C, W>, state: &'s mut FtpState<'a>) -> Self {
        FtpFront { core, state }
    }
}
