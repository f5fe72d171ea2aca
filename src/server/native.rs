//! The native front end: p2pshare's own commands, each run over the
//! session core and answered with its reply (the tables written as they
//! are read from the share's snapshot). Its replies end with LF, the
//! session's line ends until FTP is spoken. It imports nothing of FTP's
//! front end.

use std::io::{self, Write};

use super::core::{Control, Session};
use super::listing;
use crate::protocol::{Command, Reply};

impl<C: Control, W: Write> Session<'_, C, W> {
    /// Runs one native command (past the AUTH gate), writes its reply and
    /// returns its final code for the history.
    pub(super) fn native(&mut self, command: Command) -> io::Result<u16> {
        let shared = self.shared();
        let share = &*shared.share;
        // The tables borrow the snapshot they are written from. Whether
        // the first scan is done is read before the snapshot is taken: a
        // snapshot taken after it reads done is the whole share.
        let incomplete = !share.scanned();
        let snapshot;
        let command_lists = matches!(
            command,
            Command::LongList | Command::ShortList { .. } | Command::Glob(_) | Command::CheckAll
        );
        let reply = match command {
            Command::LongList => {
                snapshot = share.snapshot();
                listing::files(snapshot.all())
            }
            Command::ShortList { start, end } => {
                snapshot = share.snapshot();
                listing::files(snapshot.modified_between(start, end))
            }
            Command::Glob(pattern) => {
                snapshot = share.snapshot();
                listing::matching(&snapshot, &pattern)
            }
            Command::Verify(name) => listing::verify(share, &name),
            Command::CheckAll => {
                snapshot = share.snapshot();
                listing::checkall(share, &snapshot)
            }
            Command::History(n, filter) => listing::history(&shared.history, n, &filter),
            Command::Help(topic) => Reply::help(topic),
            Command::Noop => Reply::ok(),
            Command::Auth(given) => self.auth(&given)?,
            Command::AuthProof { nonce, proof } => self.auth_proof(&nonce, &proof.0)?,
            Command::Quit => Reply::bye(),
            // A stdio session has no data channels: its bytes go inline.
            Command::Download {
                transport,
                name,
                offset,
            } if self.stdio() => self.download_inline(transport, &name, offset)?,
            Command::Download {
                transport,
                name,
                offset,
            } => self.download(transport, &name, offset)?,
            Command::Upload { name, size, md5 } if self.stdio() => {
                self.upload_inline(&name, size, md5)?
            }
            Command::Upload { name, size, md5 } => self.upload(&name, size, md5)?,
        };
        let reply = match command_lists {
            true => reply.incomplete(incomplete),
            false => reply,
        };
        self.send(reply)
    }
}
