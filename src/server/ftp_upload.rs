//! The FTP verbs that write into the share, all only with
//! `--allow-upload`: `STOR` (from the start, or resumed after `REST`),
//! `APPE` (resumed at the end of what arrived before), `MKD`; and `RMD`,
//! always refused. The bytes go into a hidden temporary file; a file
//! appears under its name only once it arrived whole, and never over
//! another file. An upload that breaks off keeps what arrived as a
//! partial file for a resume (see [`crate::share::ResumeFrom`]).
//!
//! FTP announces neither size nor md5: an upload is whole when the
//! client closes the data connection and is still there on the control
//! connection to hear the reply. One whose data connection fails or
//! stalls, or whose control connection is gone by the time its data
//! ends (a client killed mid-transfer closes both), broke off.

use std::io::{self, BufWriter};
use std::time::Duration;

use super::core::Control;
use super::ftp_data;
use super::ftp_list::absolute;
use super::ftp_state::FtpFront;
use crate::digest::Md5;
use crate::protocol::{FileOp, Reply};
use crate::share::hash::md5_of_reader;
use crate::share::{Incoming, Placed, ResumeFrom, ShareError};
use crate::transfer::tcp::ReceiveOutcome;
use crate::transfer::token;

/// How long after the end of an upload's data the control connection
/// may still close for the upload to count as broken off: a client killed
/// mid-transfer closes its data connection and its control connection a
/// moment apart, in either order.
pub const HANG_UP_GRACE: Duration = Duration::from_millis(50);

/// Which verb stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Store {
    /// `STOR`, at the offset of a `REST` before it (0 without).
    Stor,
    /// `APPE`: at the end of the partial file, or from the start.
    Appe,
}

impl<C: Control, W: io::Write> FtpFront<'_, '_, C, W> {
    /// `MKD`: the folder, made by the rules of an upload's name.
    pub(super) fn mkd(&mut self, path: &str) -> Reply<'static> {
        if !self.core.shared().config.allow_upload {
            return Reply::uploads_disabled();
        }
        let Some(name) = self.name_of(Some(path)).filter(|n| !n.is_empty()) else {
            return Reply::name_not_allowed(path);
        };
        match self.core.shared().share.make_folder(&name) {
            Ok(()) => Reply::ftp_made(&absolute(&name)),
            Err(ShareError::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                Reply::ftp_exists(path)
            }
            Err(e) => e.reply(path, FileOp::Store),
        }
    }

    /// `SIZE`: a shared file's size or, with uploads allowed, the size of
    /// the partial upload of that name, so that a client can resume it.
    pub(super) fn size(&mut self, path: &str) -> Reply<'static> {
        let Some(name) = self.name_of(Some(path)) else {
            return Reply::not_shared(path);
        };
        let share = &self.core.shared().share;
        match share.open_file(&name) {
            Ok(f) => Reply::ftp_size(f.size()),
            Err(e) => match share.partial_size(&name) {
                Some(n) if self.core.shared().config.allow_upload => Reply::ftp_size(n),
                _ => e.reply(path, FileOp::Open),
            },
        }
    }

    /// `STOR` and `APPE` (see the module's text). The 226 names the
    /// whole file's size and md5.
    pub(super) fn store(&mut self, path: &str, verb: Store) -> io::Result<Reply<'static>> {
        let offset = self.state.take_rest();
        let begun = self.begin_store(path, verb, offset);
        let ((incoming, offset), mut conn) = match self.when_ready(begun, path) {
            Ok(ready) => ready,
            Err(reply) => return Ok(reply),
        };
        let stall = self.core.shared().config.data_timeout;
        let received = match incoming.file() {
            Ok(f) => {
                let mut out = BufWriter::with_capacity(256 * 1024, f);
                ftp_data::receive(&mut conn, stall, &mut out)
            }
            Err(e) => ReceiveOutcome::WriteFailed(e),
        };
        drop(conn);
        self.core.touch();
        let share = &self.core.shared().share;
        let keep = |incoming: Incoming| match share.keep_partial(incoming) {
            Ok(kept) => Reply::ftp_upload_kept(path, kept),
            Err(e) => Reply::not_stored(path, &e),
        };
        Ok(match received {
            ReceiveOutcome::Received(..) if self.client_gone() => keep(incoming),
            ReceiveOutcome::Received(n, md5) => {
                let whole = match offset {
                    0 => Ok(md5),
                    _ => whole_md5(&incoming),
                };
                match whole {
                    Ok(md5) => self.place(path, incoming, offset + n, md5),
                    Err(e) => Reply::not_stored(path, &e),
                }
            }
            ReceiveOutcome::Broken(n, _) if offset + n > 0 => keep(incoming),
            ReceiveOutcome::Broken(n, e) => Reply::ftp_upload_broken(n, &e),
            ReceiveOutcome::WriteFailed(e) => Reply::not_stored(path, &e),
        })
    }

    /// True when the client closed the control connection: no command
    /// is waiting, and its end of stream (or an error) is, or comes within
    /// [`HANG_UP_GRACE`]. A client that waits for the reply costs that
    /// wait once per upload.
    fn client_gone(&self) -> bool {
        let buffered = self.core.requests().get_ref();
        buffered.buffer().is_empty() && buffered.get_ref().hung_up(HANG_UP_GRACE)
    }

    /// The upload `verb` begins, with the offset its bytes start at.
    fn begin_store(
        &mut self,
        path: &str,
        verb: Store,
        offset: u64,
    ) -> Result<(Incoming, u64), Reply<'static>> {
        let share = &self.core.shared().share;
        if !self.core.shared().config.allow_upload {
            return Err(Reply::uploads_disabled());
        }
        let name = self
            .name_of(Some(path))
            .ok_or_else(|| Reply::name_not_allowed(path))?;
        let stored = share.open_file(&name).is_ok();
        let partial = share.partial_size(&name);
        let from = match verb {
            Store::Appe if stored && partial.is_none() => return Err(Reply::ftp_no_append(path)),
            Store::Appe => ResumeFrom::End,
            Store::Stor if offset == 0 => ResumeFrom::Offset(0),
            Store::Stor if partial.is_some_and(|have| have >= offset) => ResumeFrom::Offset(offset),
            Store::Stor => return Err(Reply::ftp_bad_rest(path, offset, partial)),
        };
        let tag = token::new().map_err(|e| ShareError::Io(e).reply(path, FileOp::Store))?;
        let begun = match from {
            // A new upload: a partial file of the name stays until this
            // one is whole.
            ResumeFrom::Offset(0) if stored => {
                share.begin_upload_beside(&name, &tag).map(|i| (i, 0))
            }
            ResumeFrom::Offset(0) => share.begin_upload(&name, &tag).map(|i| (i, 0)),
            from => share.resume_upload(&name, &tag, from),
        };
        begun.map_err(|e| e.reply(path, FileOp::Store))
    }

    /// Puts a whole upload under its name; a partial upload of the name
    /// is not needed any more once it is there.
    fn place(&mut self, path: &str, incoming: Incoming, size: u64, md5: Md5) -> Reply<'static> {
        let share = &self.core.shared().share;
        let name = self.name_of(Some(path)).unwrap_or_default();
        match incoming.place(&md5) {
            Ok(placed) => {
                if placed != Placed::Exists {
                    share.discard_partial(&name);
                    // Listed at once, and with its md5 known: the next
                    // rescan finds nothing new to hash.
                    share.remember_md5(&name, md5);
                    share.index_now(&name);
                }
                match placed {
                    Placed::Stored => Reply::ftp_stored(path, size, md5),
                    Placed::Same => Reply::ftp_stored_same(path, size, md5),
                    Placed::Exists => Reply::exists_differently(path),
                }
            }
            Err(e) => Reply::cannot(FileOp::Store, path, &e),
        }
    }
}

/// The md5 of everything a resumed upload holds now.
fn whole_md5(incoming: &Incoming) -> io::Result<Md5> {
    md5_of_reader(incoming.reopen()?)
}
