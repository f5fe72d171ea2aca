//! What a session keeps for its FTP verbs (the current folder, the REST
//! offset, the passive listener), and FTP's front end over the session
//! core ([`FtpFront`]: the core and that state, for the handlers of
//! `ftp.rs` and `ftp_upload.rs`).

use std::io::Write;
use std::time::{Duration, Instant};

use super::core::{Control, Session};
use super::ftp_data::Passive;

/// What a session keeps for its FTP verbs.
#[derive(Default)]
pub(super) struct FtpState<'a> {
    /// The current folder, as a share name (`""` at the top).
    pub(super) cwd: String,
    /// The offset of the next RETR or STOR (REST).
    pub(super) rest: u64,
    /// The listener of the next transfer (PASV, EPSV), and when it opened.
    pub(super) passive: Option<Passive<'a>>,
    pub(super) opened: Option<Instant>,
    /// After `EPSV ALL`, PASV is refused (RFC 2428).
    pub(super) epsv_all: bool,
}

impl FtpState<'_> {
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
